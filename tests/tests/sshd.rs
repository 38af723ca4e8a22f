//! Logins over real OpenSSH (sshd on a loopback port, its PAM stack through pam_wrapper, the
//! ssh client on a pseudo-terminal): the code is asked in the client's keyboard-interactive
//! prompt, a right one runs the remote command; a wrong one, a stopped mfad and a frozen one
//! are refused; a first login sets up the app from the text shown with the prompt, and a
//! recovery code shown there logs in once; the documented stacks (password then code, public
//! key then code) work over SSH. A refusal shows the module's one line (sshd passes PAM's
//! messages of a failed login as the last keyboard-interactive request; the client shows them at
//! its default log level), then ssh's own "Permission denied".

use pam_mfa_api::UNAVAILABLE_NOTICE;
use pam_mfa_tests::sshd::{self, CODE_ONLY, KBD, KBD_ONLY, Sshd};
use pam_mfa_tests::{Env, away_from_step_end, code_at, current_step, system_library};

/// The login was refused by sshd, with `line` shown, and the remote command did not run.
fn assert_refused(session: &sshd::Session, line: &str) {
    assert!(session.screen.contains(line), "{}", session.screen);
    assert!(!session.screen.contains("remote-42"), "{}", session.screen);
    assert!(
        session.screen.contains("Permission denied"),
        "{}",
        session.screen
    );
    assert_eq!(session.status, 255, "{}", session.screen);
}

/// alice logs in over SSH to run `echo remote-$((6*7))`, giving `answers` at the questions.
fn remote(sshd: &Sshd, answers: &[&str]) -> sshd::Session {
    sshd::ssh(
        sshd.port,
        "alice",
        "echo remote-$((6*7))",
        KBD_ONLY,
        answers,
    )
}

fn with_sshd() -> (Env, Sshd) {
    assert!(
        sshd::available(),
        "OpenSSH is not installed: scripts/install-deps.sh installs it"
    );
    let env = Env::new().config("[login]\nmax_tries = 1\n").start();
    env.enroll("alice");
    let sshd = Sshd::start(&env, CODE_ONLY, KBD);
    (env, sshd)
}

#[test]
fn a_right_code_over_ssh_runs_the_remote_command() {
    let (env, sshd) = with_sshd();
    let code = env.fresh_code("alice");
    let session = remote(&sshd, &[&code]);
    assert!(
        session.screen.contains("Verification code: "),
        "{}",
        session.screen
    );
    assert!(session.screen.contains("remote-42"), "{}", session.screen);
    assert_eq!(session.status, 0, "{}\n{}", session.screen, sshd.log());
    assert!(
        sshd.log()
            .contains("Accepted keyboard-interactive/pam for alice")
    );
}

#[test]
fn a_wrong_code_over_ssh_is_refused() {
    let (env, sshd) = with_sshd();
    let wrong = env.wrong_code("alice");
    let session = remote(&sshd, &[&wrong]);
    assert_refused(&session, "Wrong code.");
}

#[test]
fn with_mfad_stopped_ssh_is_refused_without_a_question() {
    let (env, sshd) = with_sshd();
    env.stop_daemon();
    let session = remote(&sshd, &[]);
    assert!(
        !session.screen.contains("Verification code"),
        "{}",
        session.screen
    );
    assert_refused(&session, UNAVAILABLE_NOTICE);
}

#[test]
fn with_mfad_frozen_ssh_is_refused_once_the_module_gives_up() {
    let (env, sshd) = with_sshd();
    env.freeze_daemon(true);
    let session = remote(&sshd, &[]);
    env.freeze_daemon(false);
    assert_refused(&session, UNAVAILABLE_NOTICE);
}

#[test]
fn a_first_login_over_ssh_sets_up_the_app_from_the_text_with_the_prompt() {
    let (env, sshd) = with_sshd();
    let out = env.ctl(&["enforce", "bob", "on"], "");
    assert!(out.success, "{}", out.stderr);
    let mut confirmed = None;
    let mut recovery = Vec::new();
    let mut respond = |fresh: &str| {
        if fresh.ends_with("Code shown by the app: ") {
            assert!(fresh.contains("otpauth://totp/"), "{fresh}");
            let secret = pam_mfa_tests::secret_shown(fresh)
                .unwrap_or_else(|| panic!("no secret with the prompt:\n{fresh}"));
            away_from_step_end(3);
            let step = current_step();
            confirmed = Some((secret.clone(), step));
            return Some(code_at(&secret, step));
        }
        if fresh.ends_with("Press Enter once you have saved these codes: ") {
            recovery = fresh
                .lines()
                .filter_map(|line| line.strip_prefix("    "))
                .map(str::to_owned)
                .collect();
            return Some(String::new());
        }
        None
    };
    let session = sshd::ssh_with(
        sshd.port,
        "bob",
        "echo remote-$((6*7))",
        KBD_ONLY,
        &mut respond,
    );
    assert!(session.screen.contains("remote-42"), "{}", session.screen);
    assert_eq!(recovery.len(), 10, "{}", session.screen);
    // The app set up over SSH gives the codes of the next logins.
    let (secret, step) = confirmed.expect("the code was asked");
    env.learn_secret("bob", &secret, step);
    let code = env.fresh_code("bob");
    let again = sshd::ssh(sshd.port, "bob", "echo again", KBD_ONLY, &[&code]);
    assert!(again.screen.contains("again"), "{}", again.screen);
    assert_eq!(again.status, 0);
    // A recovery code shown there logs in once.
    let rescued = sshd::ssh(sshd.port, "bob", "echo rescued", KBD_ONLY, &[&recovery[0]]);
    assert_eq!(rescued.status, 0, "{}", rescued.screen);
    assert!(rescued.screen.contains("rescued"), "{}", rescued.screen);
    let twice = sshd::ssh(sshd.port, "bob", "echo rescued", KBD_ONLY, &[&recovery[0]]);
    assert_eq!(twice.status, 255, "{}", twice.screen);
}

const PASSWORD: &str = "correct horse";

#[test]
fn password_then_code_over_ssh() {
    let env = Env::new().config("[login]\nmax_tries = 1\n").start();
    env.enroll("alice");
    let passdb = env.dir().join("passdb");
    std::fs::write(&passdb, format!("alice:{PASSWORD}:sshd\n")).unwrap();
    let stack = format!(
        "auth requisite {} passdb={}\n{CODE_ONLY}",
        system_library("pam_wrapper/pam_matrix.so").display(),
        passdb.display()
    );
    let sshd = Sshd::start(&env, &stack, KBD);
    let code = env.fresh_code("alice");
    let session = sshd::ssh(
        sshd.port,
        "alice",
        "echo both",
        KBD_ONLY,
        &[PASSWORD, &code],
    );
    assert!(session.screen.contains("Password: "), "{}", session.screen);
    assert!(
        session.screen.contains("Verification code: "),
        "{}",
        session.screen
    );
    assert!(session.screen.contains("both"), "{}", session.screen);
    assert_eq!(session.status, 0);
    // A wrong password ends the login before any code is asked.
    let refused = sshd::ssh(
        sshd.port,
        "alice",
        "echo both",
        KBD_ONLY,
        &["wrong", "000000"],
    );
    assert!(
        !refused.screen.contains("Verification code"),
        "{}",
        refused.screen
    );
    assert_eq!(refused.status, 255);
}

#[test]
fn public_key_then_code_over_ssh() {
    let env = Env::new().config("[login]\nmax_tries = 1\n").start();
    env.enroll("alice");
    let keys = env.dir().join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    let key = keys.join("alice");
    sshd::keygen(&key);
    std::fs::copy(keys.join("alice.pub"), keys.join("authorized_alice")).unwrap();
    let config = format!(
        "KbdInteractiveAuthentication yes\nPasswordAuthentication no\nPubkeyAuthentication yes\n\
         AuthenticationMethods publickey,keyboard-interactive\nAuthorizedKeysFile {}/authorized_%u\n",
        keys.display()
    );
    let sshd = Sshd::start(&env, CODE_ONLY, &config);
    let key_options = [
        "-i",
        key.to_str().unwrap(),
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "PreferredAuthentications=publickey,keyboard-interactive",
        "-o",
        "NumberOfPasswordPrompts=1",
    ];
    let code = env.fresh_code("alice");
    let session = sshd::ssh(sshd.port, "alice", "echo keyed", &key_options, &[&code]);
    assert!(
        session.screen.contains("Verification code: "),
        "{}",
        session.screen
    );
    assert!(session.screen.contains("keyed"), "{}", session.screen);
    assert_eq!(session.status, 0);
    // A right code without the key is not enough.
    let code = env.fresh_code("alice");
    let keyless = sshd::ssh(
        sshd.port,
        "alice",
        "echo keyed",
        &[
            "-o",
            "PubkeyAuthentication=no",
            "-o",
            "NumberOfPasswordPrompts=1",
        ],
        &[&code],
    );
    assert!(!keyless.screen.contains("keyed"), "{}", keyless.screen);
    assert_eq!(keyless.status, 255);
    // The key alone is not enough.
    let wrong = env.wrong_code("alice");
    let refused = sshd::ssh(sshd.port, "alice", "echo keyed", &key_options, &[&wrong]);
    assert!(!refused.screen.contains("keyed"), "{}", refused.screen);
    assert_eq!(refused.status, 255);
}

#[test]
fn a_locked_account_is_refused_over_ssh_even_with_a_right_code() {
    // Two wrong codes are all the rule allows; the third try finds the account locked.
    let env = Env::new()
        .config("[login]\nmax_tries = 1\n[lockout]\nfailures = 2\n")
        .start();
    env.enroll("alice");
    let sshd = Sshd::start(&env, CODE_ONLY, KBD);
    env.lock_out("alice", "sshd");
    let code = env.fresh_code("alice");
    let session = remote(&sshd, &[&code]);
    assert_refused(&session, "this account is locked until");
    assert!(
        env.daemon_log()
            .contains("locked out: user=alice too many wrong codes"),
        "{}",
        env.daemon_log()
    );
}
