//! What `failmode=safe` lets through (only a daemon that is definitely absent), what the user is
//! told when the second factor cannot be checked, and what the module sends to whoever serves
//! the login socket (nothing unless it is root; never an overlong reply).

use std::time::{Duration, Instant};

use pam_mfa_api::UNAVAILABLE_NOTICE;
use pam_mfa_api::limits::MAX_REPLY_LEN;
use pam_mfa_tests::fake::{FakeSocket, Mute, mute_socket, service, silent_login};
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

/// Absence, once: no socket file, a socket nothing listens on, or a connection closed before
/// a word. failmode=secure denies and says so; failmode=safe lets the login through.
#[test]
fn a_missing_refusing_or_unserved_socket_is_absence_and_only_failmode_safe_lets_the_login_through()
{
    let env = Env::new().start();
    let missing = env.dir().join("no-such-socket");
    let stale = env.dir().join("stale.socket");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    let unserved = env.dir().join("hangs-up.socket");
    mute_socket(&unserved, Mute::HangsUp);
    for (name, socket) in [
        ("missing", &missing),
        ("stale", &stale),
        ("unserved", &unserved),
    ] {
        service(&env, name, &format!("socket={}", socket.display()));
        let safe = format!("{name}-safe");
        service(
            &env,
            &safe,
            &format!("socket={} failmode=safe", socket.display()),
        );
        let login = env.login("alice").service(name).run();
        login.expect("PAM_AUTHINFO_UNAVAIL").shows(&notice());
        assert_eq!(login.prompts(), 0, "{name}");
        let login = env.login("alice").service(&safe).run();
        login.expect("PAM_SUCCESS");
        assert_eq!(login.prompts(), 0, "{name}");
        shows_no_notice(&login);
    }
}

/// A refusal after connecting (mfad refuses a uid over its limits in one line) is not absence.
#[test]
fn a_socket_that_refuses_the_connection_denies_even_with_failmode_safe() {
    let env = Env::new().start();
    let socket = env.dir().join("refuses.socket");
    mute_socket(&socket, Mute::Refuses);
    service(
        &env,
        "refuses-safe",
        &format!("socket={} failmode=safe", socket.display()),
    );
    let login = env.login("alice").service("refuses-safe").run();
    login.expect("PAM_PERM_DENIED");
    assert_eq!(login.prompts(), 0);
}

/// A time-out is not absence: any local user can slow mfad down.
#[test]
fn a_socket_that_never_answers_denies_within_the_timeout_even_with_failmode_safe() {
    let env = Env::new().start();
    let socket = env.dir().join("silent.socket");
    mute_socket(&socket, Mute::Silent);
    service(
        &env,
        "silent-safe",
        &format!("socket={} failmode=safe timeout=1", socket.display()),
    );
    let start = Instant::now();
    let login = env.login("alice").service("silent-safe").run();
    assert!(start.elapsed() < Duration::from_secs(1) + SLACK);
    login.expect("PAM_AUTHINFO_UNAVAIL").shows(&notice());
}

#[test]
fn an_overlong_reply_reaches_the_daemon_as_an_empty_one() {
    let env = Env::new().start();
    let fake = FakeSocket::start(env.dir(), "fake.socket");
    service(&env, "fake", &format!("socket={}", fake.path.display()));
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
    let fake = FakeSocket::start(env.dir(), "fake.socket");
    service(&env, "fake", &format!("socket={}", fake.path.display()));
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

/// An mfad that is gone leaves its socket behind: nothing listens on it, so mfad is absent.
#[test]
fn the_socket_of_an_mfad_that_is_gone_is_absence() {
    let env = Env::new().start();
    env.enroll("alice");
    env.stop_daemon();
    assert!(env.login_socket().exists());
    env.login("alice")
        .run()
        .expect("PAM_AUTHINFO_UNAVAIL")
        .shows(&notice());
    let login = env.login("alice").service("mfa-safe").run();
    login.expect("PAM_SUCCESS");
    assert_eq!(login.prompts(), 0);
    // Back: the code is asked again.
    env.start_daemon();
    env.login("alice")
        .answer(&env.fresh_code("alice"))
        .run()
        .expect("PAM_SUCCESS");
}

/// A PAM line written for an earlier version (`bus=`, `socket=none`) keeps letting people in:
/// the arguments are ignored, and one warning in syslog says what replaced them.
#[test]
fn obsolete_arguments_are_ignored_with_one_warning_in_syslog() {
    use std::os::unix::net::UnixDatagram;
    let env = Env::new().private_dev().start();
    env.enroll("alice");
    let syslog = UnixDatagram::bind(env.dev().join("log")).unwrap();
    service(
        &env,
        "old",
        &format!(
            "bus=unix:path=/run/dbus/system_bus_socket socket=none socket={}",
            env.login_socket().display()
        ),
    );
    env.login("alice")
        .service("old")
        .in_private_dev()
        .answer(&env.fresh_code("alice"))
        .run()
        .expect("PAM_SUCCESS");
    syslog
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut warnings = Vec::new();
    let mut buffer = [0u8; 4096];
    while let Ok(length) = syslog.recv(&mut buffer) {
        let line = String::from_utf8_lossy(&buffer[..length]).into_owned();
        if line.contains("obsolete argument") {
            warnings.push(line);
        }
    }
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    assert!(
        warnings[0].contains("bus=unix:path=/run/dbus/system_bus_socket")
            && warnings[0].contains("socket=none")
            && warnings[0].contains("login socket"),
        "{}",
        warnings[0]
    );
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
        &format!("socket={} failmode=safe", socket.display()),
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
