//! Failure modes and hostile input: the module fails closed and bounded, the daemon keeps
//! serving, callers only get what their uid allows.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use pam_mfa_api::{Action, Error, Turn, UNAVAILABLE_NOTICE};
use pam_mfa_tests::login_proxy::LoginProxy;
use pam_mfa_tests::{Env, Transcript};

/// Slack on top of the module's timeout for process start-up and libpam, in the liveness checks
/// below. They check that a login returns at all while the bus or daemon is stopped; they do not
/// measure speed.
const SLACK: Duration = Duration::from_secs(4);

#[test]
fn daemon_stopped_fails_closed_by_default_and_open_with_failmode_safe() {
    let env = Env::new().start();
    env.enroll("alice");
    env.stop_daemon();
    env.login("alice")
        .run()
        .expect("PAM_AUTHINFO_UNAVAIL")
        .shows(&format!("ERROR_MSG {UNAVAILABLE_NOTICE}"));
    let login = env.login("alice").service("mfa-safe").run();
    login.expect("PAM_SUCCESS");
    assert_eq!(login.prompts(), 0);
    assert!(
        login
            .lines
            .iter()
            .all(|line| !line.contains(UNAVAILABLE_NOTICE))
    );
}

/// Runs a login of alice on `service`, which must end with `result` within the timeout (plus
/// slack), and returns what the login program saw.
fn returns_within(env: &Env, service: &str, timeout: Duration, result: &str) -> Transcript {
    let start = Instant::now();
    let login = env.login("alice").service(service).run();
    login.expect(result);
    let elapsed = start.elapsed();
    assert!(
        elapsed < timeout + SLACK,
        "{service} took {elapsed:?} with timeout {timeout:?}"
    );
    login
}

#[test]
fn stopped_daemon_denies_within_the_timeout_even_with_failmode_safe() {
    let env = Env::new().module_args("timeout=1").start();
    env.enroll("alice");
    env.freeze_daemon(true);
    for service in ["mfa", "mfa-safe"] {
        returns_within(
            &env,
            service,
            Duration::from_secs(1),
            "PAM_AUTHINFO_UNAVAIL",
        )
        .shows(&format!("ERROR_MSG {UNAVAILABLE_NOTICE}"));
    }
    env.freeze_daemon(false);
    env.login("alice")
        .answer(&env.fresh_code("alice"))
        .run()
        .expect("PAM_SUCCESS");
}

#[test]
fn unknown_module_arguments_deny() {
    let env = Env::new().start();
    env.login("alice")
        .service("mfa-bad-args")
        .run()
        .expect("PAM_SERVICE_ERR");
}

#[test]
fn a_malformed_socket_path_denies_even_with_failmode_safe() {
    let env = Env::new().start();
    let module = pam_mfa_tests::target_dir().join("libpam_mfa.so");
    std::fs::write(
        env.confdir().join("typo"),
        format!(
            "auth required {} socket=run/pam-mfa/login.socket failmode=safe\n",
            module.display()
        ),
    )
    .unwrap();
    env.login("alice")
        .service("typo")
        .run()
        .expect("PAM_SERVICE_ERR");
}

#[test]
fn a_user_may_authenticate_only_itself() {
    let env = Env::new().start();
    env.enroll("alice");
    // nobody (65534) asking for alice, as a screen locker of another user would.
    env.login("alice")
        .as_uid(65534)
        .run()
        .expect("PAM_PERM_DENIED");
    // alice (1000) for herself.
    env.login("alice")
        .as_uid(1000)
        .answer(&env.fresh_code("alice"))
        .run()
        .expect("PAM_SUCCESS");
    assert!(
        env.daemon_log()
            .contains("uid 65534 asked to authenticate alice")
    );
}

#[test]
fn a_non_root_caller_cannot_administer() {
    let env = Env::new().start();
    env.enroll("alice");
    for args in [
        &["enforce", "--all", "on"][..],
        &["enforce", "bob", "on"],
        &["reset", "--yes", "alice"],
        &["users"],
        &["status", "alice"],
        &["enroll", "bob"],
    ] {
        let out = env.ctl_as(Some(65534), args, "");
        assert!(!out.success, "nobody ran mfactl {args:?}: {}", out.stdout);
        assert!(
            out.stderr.contains("permission denied"),
            "{args:?}: {}",
            out.stderr
        );
        assert!(
            out.stderr.contains("run mfactl as root"),
            "{args:?}: {}",
            out.stderr
        );
    }
    let status = env.ctl(&["--json", "status", "alice"], "");
    assert!(
        status.stdout.contains("\"enrolled\": true"),
        "{}",
        status.stdout
    );
    assert!(
        status.stdout.contains("\"enforced\": false"),
        "{}",
        status.stdout
    );
}

#[test]
fn malformed_user_names_are_denied_cleanly() {
    let env = Env::new().start();
    assert!(env.ctl(&["enforce", "--all", "on"], "").success);
    let long = "a".repeat(10_240);
    for user in [
        "",
        long.as_str(),
        "älice",
        "ali ce",
        "ali/ce",
        "-alice",
        "zed",
    ] {
        let login = env.login(user).run();
        assert_ne!(login.result(), "PAM_SUCCESS", "user {user:.20?}");
        assert_eq!(login.prompts(), 0, "user {user:.20?} was asked a question");
    }
    env.enroll("alice");
    env.login("alice")
        .answer(&env.fresh_code("alice"))
        .run()
        .expect("PAM_SUCCESS");
}

#[test]
fn malformed_codes_are_denied_cleanly() {
    let env = Env::new()
        .config("[login]\nmax_tries = 6\n[lockout]\nfailures = 10\n")
        .start();
    let secret = env.enroll("alice");
    let long = "1".repeat(10_240);
    let login = env
        .login("alice")
        .answer("")
        .answer(&long)
        .answer("١٢٣٤٥٦")
        .answer("12\\03456")
        .answer("' OR 1=1 --")
        .answer(&secret)
        .run();
    login.expect("PAM_MAXTRIES");
    assert_eq!(login.prompts(), 6);
    env.login("alice")
        .answer(&env.fresh_code("alice"))
        .run()
        .expect("PAM_SUCCESS");
}

fn connect(env: &Env) -> zbus::Connection {
    env.login_connection()
}

fn login_proxy(connection: &zbus::Connection) -> LoginProxy<'_> {
    zbus::block_on(LoginProxy::new(connection)).unwrap()
}

#[test]
fn raw_dbus_garbage_is_refused_and_the_daemon_keeps_serving() {
    let env = Env::new().start();
    env.enroll("alice");
    let connection = connect(&env);
    let login = login_proxy(&connection);
    // Up to the longest call mfad takes: answered (a name too long to be one denied by name).
    for user in ["\u{1}\n", "a\tb", "x".repeat(4000).as_str()] {
        let (session, wire) = zbus::block_on(login.begin(user, HashMap::new())).unwrap();
        let turn = Turn::try_from(wire).unwrap();
        assert!(
            matches!(turn.action, Action::Deny(_)),
            "{user:.10?}: {turn:?}"
        );
        assert!(session.is_empty());
    }
    let huge_context = HashMap::from([("service", "s\u{7f}".repeat(2000))]);
    let huge_context: HashMap<&str, &str> =
        huge_context.iter().map(|(k, v)| (*k, v.as_str())).collect();
    zbus::block_on(login.begin("bob", huge_context)).unwrap();
    for session in ["", "nonexistent", &"f".repeat(4000)] {
        let error = zbus::block_on(login.answer(session, "123456")).unwrap_err();
        assert!(matches!(error, Error::NoSuchSession(_)), "{error:?}");
    }
    drop(login);
    env.login("alice")
        .answer(&env.fresh_code("alice"))
        .run()
        .expect("PAM_SUCCESS");
}

#[test]
fn a_session_belongs_to_the_connection_that_began_it() {
    let env = Env::new().start();
    env.enroll("alice");
    let (first, second) = (connect(&env), connect(&env));
    let (session, _) = zbus::block_on(login_proxy(&first).begin("alice", HashMap::new())).unwrap();
    assert!(!session.is_empty());
    let code = env.fresh_code("alice");
    let stolen = zbus::block_on(login_proxy(&second).answer(&session, &code)).unwrap_err();
    assert!(matches!(stolen, Error::NoSuchSession(_)), "{stolen:?}");
    let own = zbus::block_on(login_proxy(&first).answer(&session, &code)).unwrap();
    assert_eq!(Turn::try_from(own).unwrap().action, Action::Allow);
}

/// A client that says its connection carries one login, as pam_mfa.so does, has it closed by
/// mfad as soon as that login ends; any other client keeps its connection for more logins.
#[test]
fn a_connection_that_carries_one_login_is_closed_when_the_login_ends() {
    let env = Env::new().start();
    for (user, one_login) in [("alice", false), ("bob", true)] {
        env.enroll(user);
        let connection = connect(&env);
        let login = login_proxy(&connection);
        let context = match one_login {
            true => HashMap::from([(pam_mfa_api::context::ONE_LOGIN, "1")]),
            false => HashMap::new(),
        };
        let (session, _) = zbus::block_on(login.begin(user, context)).unwrap();
        let turn = zbus::block_on(login.answer(&session, &env.fresh_code(user))).unwrap();
        assert_eq!(Turn::try_from(turn).unwrap().action, Action::Allow);
        let next = zbus::block_on(login.begin(user, HashMap::new()));
        assert_eq!(next.is_err(), one_login, "{user}: {next:?}");
    }
}

#[test]
fn too_many_unfinished_logins_are_refused() {
    let env = Env::new()
        .config("[login]\nmax_sessions_per_user = 2\n")
        .start();
    env.enroll("alice");
    let connection = connect(&env);
    let login = login_proxy(&connection);
    for _ in 0..2 {
        let (session, _) = zbus::block_on(login.begin("alice", HashMap::new())).unwrap();
        assert!(!session.is_empty());
    }
    let (session, wire) = zbus::block_on(login.begin("alice", HashMap::new())).unwrap();
    assert!(session.is_empty());
    assert!(matches!(
        Turn::try_from(wire).unwrap().action,
        Action::Deny(_)
    ));
    // Other users are not affected.
    env.enroll("bob");
    env.login("bob")
        .answer(&env.fresh_code("bob"))
        .run()
        .expect("PAM_SUCCESS");
}

#[test]
fn no_thread_or_descriptor_outlives_a_login() {
    let env = Env::new().config("[login]\nmax_tries = 1\n").start();
    let secret = env.enroll("alice");
    // Not enrolled: one exchange. Enrolled with a wrong code: two.
    for (user, answer) in [("bob", String::new()), ("alice", env.wrong_code("alice"))] {
        let login = env
            .login(user)
            .answer(&answer)
            .repeat_with_resources(20)
            .run();
        assert_eq!(login.results().len(), 20);
        let (before, after) = login.resource("FDS");
        assert_eq!(before, after, "descriptors left open by {user}'s logins");
        let (before, after) = login.resource("THREADS");
        assert_eq!(before, after, "threads left running by {user}'s logins");
    }
    let _ = secret;
}

#[test]
fn codes_and_secrets_never_reach_the_log() {
    let env = Env::new().start();
    let secret = env.enroll("alice");
    let wrong = env.wrong_code("alice");
    let right = env.fresh_code("alice");
    env.login("alice")
        .answer(&wrong)
        .answer(&right)
        .run()
        .expect("PAM_SUCCESS");
    let log = env.daemon_log();
    assert!(log.contains("login allowed: user=alice"), "{log}");
    for needle in [&secret, &wrong, &right] {
        assert!(
            !log.contains(needle.as_str()),
            "{needle} appears in the log:\n{log}"
        );
    }
}

/// sshd, login and su are C programs: a module that needed libgcc_s.so.1 would make each of
/// them load it (about 200 µs per login process, see docs/BENCHMARKS.md).
#[test]
fn the_module_carries_its_own_unwinder() {
    let env = Env::new().start();
    let module = pam_mfa_tests::target_dir().join("libpam_mfa.so");
    let out = std::process::Command::new("ldd")
        .arg(&module)
        .output()
        .unwrap();
    let needed = String::from_utf8_lossy(&out.stdout);
    assert!(needed.contains("libpam.so"), "{needed}");
    assert!(!needed.contains("libgcc_s"), "{needed}");
    // Still unwinds and catches as before: the whole dialogue works.
    env.enroll("alice");
    env.login("alice")
        .answer(&env.fresh_code("alice"))
        .run()
        .expect("PAM_SUCCESS");
}

/// The module is a thin relay in the login program's own thread: it links no bus library or
/// runtime, and cannot start a thread (no pthread_create or clone among the symbols it needs).
#[test]
fn the_module_links_no_bus_library_and_starts_no_thread() {
    let module = pam_mfa_tests::target_dir().join("libpam_mfa.so");
    let out = std::process::Command::new("nm")
        .args(["--dynamic", "--undefined-only"])
        .arg(&module)
        .output()
        .expect("nm (binutils)");
    assert!(out.status.success());
    let needed = String::from_utf8_lossy(&out.stdout);
    assert!(needed.contains("pam_get_item"), "{needed}");
    for symbol in ["pthread_create", " clone", "clone3"] {
        assert!(
            !needed.contains(symbol),
            "the module needs {symbol}:\n{needed}"
        );
    }
    let bytes = std::fs::read(&module).unwrap();
    for library in ["zbus", "tokio", "async_io", "async_executor"] {
        assert!(
            !bytes
                .windows(library.len())
                .any(|window| window == library.as_bytes()),
            "the module contains {library}"
        );
    }
}
