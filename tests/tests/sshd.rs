//! Logins over real OpenSSH (sshd on a loopback port, its PAM stack through pam_wrapper, the
//! ssh client on a pseudo-terminal): the code is asked in the client's keyboard-interactive
//! prompt, a right one runs the remote command; a wrong one, a stopped mfad and a frozen one
//! are refused. OpenSSH shows PAM's messages only with a following prompt, so a refusal shows
//! as its own "Permission denied".

use pam_mfa_tests::Env;
use pam_mfa_tests::sshd::{self, Sshd};

/// Code only: keyboard-interactive with the code as the one factor.
const CODE_ONLY: &str = "auth required @MODULE@\naccount required pam_permit.so\n\
                         session required pam_permit.so\n";
const KBD: &str = "KbdInteractiveAuthentication yes\nPasswordAuthentication no\n\
                   PubkeyAuthentication no\nAuthenticationMethods keyboard-interactive\n";
/// One keyboard-interactive attempt (ssh's default is three, each a new PAM login).
const KBD_ONLY: &[&str] = &[
    "-o",
    "PreferredAuthentications=keyboard-interactive",
    "-o",
    "NumberOfPasswordPrompts=1",
];

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
    let session = sshd::ssh(&sshd, "alice", "echo remote-$((6*7))", KBD_ONLY, &[&code]);
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
    let session = sshd::ssh(&sshd, "alice", "echo remote-$((6*7))", KBD_ONLY, &[&wrong]);
    assert!(!session.screen.contains("remote-42"), "{}", session.screen);
    assert!(
        session.screen.contains("Permission denied"),
        "{}",
        session.screen
    );
    assert_eq!(session.status, 255);
}

#[test]
fn with_mfad_stopped_ssh_is_refused_without_a_question() {
    let (env, sshd) = with_sshd();
    env.stop_daemon();
    let session = sshd::ssh(&sshd, "alice", "echo remote-$((6*7))", KBD_ONLY, &[]);
    assert!(!session.screen.contains("remote-42"), "{}", session.screen);
    assert!(
        !session.screen.contains("Verification code"),
        "{}",
        session.screen
    );
    assert!(
        session.screen.contains("Permission denied"),
        "{}",
        session.screen
    );
    assert_eq!(session.status, 255);
}

#[test]
fn with_mfad_frozen_ssh_is_refused_once_the_module_gives_up() {
    let (env, sshd) = with_sshd();
    env.freeze_daemon(true);
    let session = sshd::ssh(&sshd, "alice", "echo remote-$((6*7))", KBD_ONLY, &[]);
    env.freeze_daemon(false);
    assert!(!session.screen.contains("remote-42"), "{}", session.screen);
    assert!(
        session.screen.contains("Permission denied"),
        "{}",
        session.screen
    );
    assert_eq!(session.status, 255);
}
