//! What `failmode=safe` lets through (only a daemon that is definitely absent), what the user is
//! told when the second factor cannot be checked, and what the module sends to whoever owns
//! `org.pam_mfa.Mfad1` (nothing unless it is root; never an overlong reply).

use std::time::{Duration, Instant};

use pam_mfa_api::UNAVAILABLE_NOTICE;
use pam_mfa_api::limits::MAX_REPLY_LEN;
use pam_mfa_tests::fake::{FakeBus, Mute, mute_socket, service, silent_login};
use pam_mfa_tests::{Env, Transcript};

/// Slack on top of the module's timeout for process start-up and libpam, in the liveness check
/// below (that a login returns at all); not a measure of speed.
const SLACK: Duration = Duration::from_secs(4);

fn notice() -> String {
    format!("ERROR_MSG {UNAVAILABLE_NOTICE}")
}

fn shows_no_notice(login: &Transcript) {
    assert!(
        login
            .lines
            .iter()
            .all(|line| !line.contains(UNAVAILABLE_NOTICE)),
        "{:?}",
        login.lines
    );
}

#[test]
fn a_missing_bus_socket_is_absence_and_failmode_safe_lets_the_login_through() {
    let env = Env::new().start();
    let address = format!("unix:path={}", env.dir().join("no-such-socket").display());
    service(&env, "gone", &format!("bus={address}"));
    service(&env, "gone-safe", &format!("bus={address} failmode=safe"));
    env.login("alice")
        .service("gone")
        .run()
        .expect("PAM_AUTHINFO_UNAVAIL")
        .shows(&notice());
    let login = env.login("alice").service("gone-safe").run();
    login.expect("PAM_SUCCESS");
    assert_eq!(login.prompts(), 0);
    shows_no_notice(&login);
}

#[test]
fn a_socket_that_hangs_up_in_the_handshake_denies_even_with_failmode_safe() {
    let env = Env::new().start();
    let address = mute_socket(&env.dir().join("hangs-up"), Mute::HangsUp);
    service(
        &env,
        "hangs-up-safe",
        &format!("bus={address} failmode=safe"),
    );
    let login = env.login("alice").service("hangs-up-safe").run();
    login.expect("PAM_AUTHINFO_UNAVAIL").shows(&notice());
    assert_eq!(login.prompts(), 0);
}

#[test]
fn a_socket_that_never_answers_denies_within_the_timeout_even_with_failmode_safe() {
    let env = Env::new().start();
    let address = mute_socket(&env.dir().join("silent"), Mute::Silent);
    service(
        &env,
        "silent-safe",
        &format!("bus={address} failmode=safe timeout=1"),
    );
    let start = Instant::now();
    let login = env.login("alice").service("silent-safe").run();
    assert!(start.elapsed() < Duration::from_secs(1) + SLACK);
    login.expect("PAM_AUTHINFO_UNAVAIL").shows(&notice());
}

#[test]
fn a_daemon_name_owned_by_a_non_root_user_receives_nothing_even_with_failmode_safe() {
    let env = Env::new().start();
    let fake = FakeBus::start(env.dir(), 1000);
    service(
        &env,
        "impostor-safe",
        &format!("bus={} failmode=safe", fake.address),
    );
    let login = env
        .login("alice")
        .service("impostor-safe")
        .answer("123456")
        .run();
    login.expect("PAM_PERM_DENIED");
    assert_eq!(login.prompts(), 0);
    // Also a login for alice run by alice herself (a screen locker) sends nothing.
    env.login("alice")
        .service("impostor-safe")
        .as_uid(1000)
        .answer("123456")
        .run()
        .expect("PAM_PERM_DENIED");
    assert_eq!(fake.calls(), ["ready"]);
}

#[test]
fn an_overlong_reply_reaches_the_daemon_as_an_empty_one() {
    let env = Env::new().start();
    let fake = FakeBus::start(env.dir(), 0);
    service(&env, "fake", &format!("bus={}", fake.address));
    let longest = "1".repeat(MAX_REPLY_LEN);
    let ten_kb = "1".repeat(10_240);
    for reply in [&longest, &ten_kb] {
        env.login("alice")
            .service("fake")
            .answer(reply)
            .run()
            .expect("PAM_AUTH_ERR");
    }
    let answers: Vec<String> = fake
        .calls()
        .into_iter()
        .filter(|line| line.starts_with("answer "))
        .collect();
    assert_eq!(
        answers,
        [format!("answer {MAX_REPLY_LEN}"), "answer 0".into()]
    );
}

#[test]
fn a_failed_conversation_cancels_the_session_on_the_daemon() {
    let env = Env::new().start();
    let fake = FakeBus::start(env.dir(), 0);
    service(&env, "fake", &format!("bus={}", fake.address));
    // No answer for the prompt: the application's conversation fails.
    env.login("alice")
        .service("fake")
        .run()
        .expect("PAM_CONV_ERR");
    let calls = fake.calls();
    assert!(calls.contains(&"cancel fake-session".into()), "{calls:?}");
}

#[test]
fn a_login_abandoned_at_the_prompt_does_not_hold_the_users_only_session_slot() {
    let env = Env::new()
        .config("[login]\nmax_sessions_per_user = 1\n")
        .start();
    env.enroll("alice");
    let abandoned = env.login("alice").run();
    abandoned.expect("PAM_CONV_ERR");
    assert_eq!(abandoned.prompts(), 1);
    let login = env.login("alice").answer(&env.fresh_code("alice")).run();
    login.expect("PAM_SUCCESS");
    assert!(
        login
            .lines
            .iter()
            .all(|line| !line.contains("Too many logins")),
        "{:?}",
        login.lines
    );
}

/// sudo passes PAM_SILENT by default; the user must still learn why the login failed.
#[test]
fn the_unavailable_notice_is_shown_even_under_pam_silent() {
    let env = Env::new().start();
    env.enroll("alice");
    env.stop_daemon();
    silent_login(&env, "mfa", "alice", &[])
        .expect("PAM_AUTHINFO_UNAVAIL")
        .shows(&notice());
    let safe = silent_login(&env, "mfa-safe", "alice", &[]);
    safe.expect("PAM_SUCCESS");
    shows_no_notice(&safe);
}

/// mfad's login socket is tried first: a socket nothing listens on any more (left by an mfad
/// that is gone), or none at all, sends the login to the bus.
#[test]
fn a_stale_or_missing_login_socket_falls_back_to_the_bus() {
    let env = Env::new().start();
    env.enroll("alice");
    let stale = env.dir().join("stale.socket");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    let missing = env.dir().join("missing.socket");
    for (name, socket) in [("stale", &stale), ("missing", &missing)] {
        service(
            &env,
            name,
            &format!("bus={} socket={}", env.address, socket.display()),
        );
        env.login("alice")
            .service(name)
            .answer(&env.fresh_code("alice"))
            .run()
            .expect("PAM_SUCCESS");
    }
    // With mfad gone too, the bus says it is absent: failmode=safe applies.
    env.stop_daemon();
    service(
        &env,
        "stale-safe",
        &format!(
            "bus={} socket={} failmode=safe",
            env.address,
            stale.display()
        ),
    );
    let login = env.login("alice").service("stale-safe").run();
    login.expect("PAM_SUCCESS");
    assert_eq!(login.prompts(), 0);
}

#[test]
fn a_login_socket_that_never_answers_denies_within_the_timeout_even_with_failmode_safe() {
    let env = Env::new().start();
    let socket = env.dir().join("silent.socket");
    mute_socket(&socket, Mute::Silent);
    service(
        &env,
        "silent-socket-safe",
        &format!(
            "bus={} socket={} failmode=safe timeout=1",
            env.address,
            socket.display()
        ),
    );
    let start = Instant::now();
    let login = env.login("alice").service("silent-socket-safe").run();
    assert!(start.elapsed() < Duration::from_secs(1) + SLACK);
    login.expect("PAM_AUTHINFO_UNAVAIL").shows(&notice());
}

/// A login socket another user listens on (in a directory anyone may write to, say) gets
/// nothing: the module checks the peer is root before the handshake.
#[test]
fn a_login_socket_served_by_a_non_root_user_receives_nothing_even_with_failmode_safe() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let env = Env::new().start();
    let open = env.dir().join("open");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
    let socket = open.join("login.socket");
    let received = open.join("received");
    let mut listener = std::process::Command::new(pam_mfa_tests::built("listen"))
        .arg(&socket)
        .arg(&received)
        .uid(1000)
        .gid(1000)
        .spawn()
        .unwrap();
    pam_mfa_tests::wait_until("the impostor to listen", || socket.exists());
    service(
        &env,
        "impostor-socket-safe",
        &format!(
            "bus={} socket={} failmode=safe",
            env.address,
            socket.display()
        ),
    );
    let login = env
        .login("alice")
        .service("impostor-socket-safe")
        .answer("123456")
        .run();
    login.expect("PAM_PERM_DENIED");
    assert_eq!(login.prompts(), 0);
    pam_mfa_tests::wait_until("the impostor to count", || received.exists());
    let _ = listener.kill();
    let _ = listener.wait();
    assert_eq!(std::fs::read_to_string(&received).unwrap().trim(), "0");
}
