//! Remembered logins: after a right code, logins of the same user through the same service
//! from the same remote host skip the code for the configured time; never across users,
//! services or hosts; forgotten by a reset, a disable and a new phone.

use pam_mfa_tests::Env;

const ALICE: u32 = 1000;

fn asked(env: &Env, user: &str, service: &str, rhost: &str) -> bool {
    let login = env.login(user).service(service).rhost(rhost).run();
    if login.result() == "PAM_SUCCESS" && login.prompts() == 0 {
        return false;
    }
    login.shows("PROMPT_ECHO_OFF Verification code: ");
    true
}

fn log_in_with_code(env: &Env, user: &str, service: &str, rhost: &str) {
    env.login(user)
        .service(service)
        .rhost(rhost)
        .answer(&env.fresh_code(user))
        .run()
        .expect("PAM_SUCCESS");
}

#[test]
fn a_right_code_covers_only_the_same_user_service_and_host() {
    let env = Env::new()
        .config("[remember.services]\nsshd = 3600\n")
        .start();
    env.enroll("alice");
    env.enroll("bob");
    assert!(
        asked(&env, "alice", "sshd", "192.0.2.1"),
        "nothing remembered yet"
    );
    log_in_with_code(&env, "alice", "sshd", "192.0.2.1");
    assert!(!asked(&env, "alice", "sshd", "192.0.2.1"), "remembered");
    assert!(!asked(&env, "alice", "sshd", "192.0.2.1"), "and again");
    let explained = env.ctl(
        &[
            "explain",
            "alice",
            "--service",
            "sshd",
            "--rhost",
            "192.0.2.1",
        ],
        "",
    );
    assert!(
        explained
            .stdout
            .contains("decision: remembered (no code) until "),
        "{}",
        explained.stdout
    );
    assert!(asked(&env, "alice", "sshd", "192.0.2.2"), "another host");
    assert!(asked(&env, "alice", "sudo", "192.0.2.1"), "another service");
    assert!(asked(&env, "bob", "sshd", "192.0.2.1"), "another user");
    // Services without `remember` always ask, even after a right code there.
    log_in_with_code(&env, "alice", "sudo", "");
    assert!(asked(&env, "alice", "sudo", ""));
    // Only logins run by root (sshd, su, sudo) use remembered codes: a user's own program
    // asking for a code gets asked.
    let own = env
        .login("alice")
        .service("sshd")
        .rhost("192.0.2.1")
        .as_uid(ALICE)
        .run();
    own.shows("PROMPT_ECHO_OFF Verification code: ");
    // The audit trail has each remembered login.
    let trail = env
        .ctl(&["audit", "--event", "remembered-login"], "")
        .stdout;
    assert_eq!(
        trail.matches("remembered from a right code at").count(),
        2,
        "{trail}"
    );
}

#[test]
fn a_reset_a_new_phone_and_a_disable_forget_remembered_codes() {
    let env = Env::new().config("[remember]\nduration = 3600\n").start();
    env.enroll("alice");
    log_in_with_code(&env, "alice", "sshd", "192.0.2.1");
    assert!(!asked(&env, "alice", "sshd", "192.0.2.1"));
    // An administrator resets the lost phone; the new one is set up.
    assert!(env.ctl(&["reset", "--yes", "alice"], "").success);
    env.enroll("alice");
    assert!(asked(&env, "alice", "sshd", "192.0.2.1"), "after a reset");
    log_in_with_code(&env, "alice", "sshd", "192.0.2.1");
    assert!(!asked(&env, "alice", "sshd", "192.0.2.1"));
    // A new phone replaces the old one (no reset in between).
    env.enroll("alice");
    assert!(
        asked(&env, "alice", "sshd", "192.0.2.1"),
        "after a new phone"
    );
    log_in_with_code(&env, "alice", "sshd", "192.0.2.1");
    assert!(!asked(&env, "alice", "sshd", "192.0.2.1"));
    // The user removes their app, then sets one up again.
    let out = env.ctl_as(
        Some(ALICE),
        &["disable"],
        &format!("{}\n", env.fresh_code("alice")),
    );
    assert!(out.success, "{}", out.stderr);
    env.enroll("alice");
    assert!(asked(&env, "alice", "sshd", "192.0.2.1"), "after a disable");
}

/// A remembered code covers logins while used within `remember` seconds of each other.
#[test]
fn a_remembered_code_runs_out_when_unused_for_its_time() {
    let env = Env::new().config("[remember.services]\nsshd = 5\n").start();
    env.enroll("alice");
    log_in_with_code(&env, "alice", "sshd", "192.0.2.1");
    assert!(!asked(&env, "alice", "sshd", "192.0.2.1"));
    std::thread::sleep(std::time::Duration::from_secs(6));
    assert!(asked(&env, "alice", "sshd", "192.0.2.1"), "unused for 6 s");
}

/// A locked account stays locked from a remembered place; logins without a remote host and
/// recovery codes are never remembered.
#[test]
fn a_lock_beats_a_remembered_code_and_local_logins_are_not_remembered() {
    let env = Env::new().config("[remember]\nduration = 3600\n").start();
    env.enroll("alice");
    log_in_with_code(&env, "alice", "sshd", "192.0.2.1");
    assert!(!asked(&env, "alice", "sshd", "192.0.2.1"));
    env.lock_out("alice", "su");
    env.login("alice")
        .service("sshd")
        .rhost("192.0.2.1")
        .run()
        .expect("PAM_AUTH_ERR")
        .shows("Too many wrong codes: this account is locked until ");
    assert!(env.ctl(&["unlock", "alice"], "").success);
    assert!(
        !asked(&env, "alice", "sshd", "192.0.2.1"),
        "unlocked: remembered again"
    );
    // su, sudo and the console name no remote host: every terminal and every invoking user
    // would look like one place, so nothing is remembered there.
    env.login("alice")
        .service("su")
        .answer(&env.fresh_code("alice"))
        .run()
        .expect("PAM_SUCCESS");
    env.login("alice")
        .service("su")
        .run()
        .shows("PROMPT_ECHO_OFF Verification code: ");
    // A recovery code lets one login in, and is not remembered.
    let code = env.fresh_code("alice");
    let out = env.ctl_as(
        Some(ALICE),
        &["--json", "recovery-codes"],
        &format!("{code}\n"),
    );
    assert!(out.success, "{}", out.stderr);
    let report: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let recovery = report["recovery_codes"][0].as_str().unwrap().to_owned();
    env.login("alice")
        .service("sshd")
        .rhost("192.0.2.5")
        .answer(&recovery)
        .run()
        .expect("PAM_SUCCESS");
    assert!(
        asked(&env, "alice", "sshd", "192.0.2.5"),
        "a recovery code is not remembered"
    );
}
