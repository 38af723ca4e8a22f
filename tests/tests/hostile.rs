//! Hostile local users and faults: nobody without privileges can starve, lock out or open a
//! login; damaged or unsafe state is refused; secrets leave no copy behind.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use pam_mfa_tests::login_proxy::LoginProxy;
use pam_mfa_tests::{Env, random_secret, stall_nss_module, wait_bounded, wait_until};

const NOBODY: u32 = 65534;

/// The module's default time limit for each exchange with mfad.
const MODULE_TIMEOUT: Duration = Duration::from_secs(5);

/// One flood for both checks: two floods at once would measure the machine, not mfad.
#[test]
fn a_flood_from_an_unprivileged_user_neither_stops_nor_opens_a_root_login() {
    let env = Env::new().start();
    env.enroll("alice");
    // As nobody, Introspect, Begin and Answer in turn: 128 connections x 128 calls in flight
    // on the bus and on mfad's login socket at once.
    let size = "128";
    let args = [
        "--connections",
        size,
        "--in-flight",
        size,
        "--seconds",
        "20",
    ];
    let flood = env.flood_as(NOBODY, &args);
    let socket_flood = env.flood_socket_as(NOBODY, &args);
    std::thread::sleep(Duration::from_secs(3));
    let mut times = Vec::new();
    for _ in 0..3 {
        let code = env.fresh_code("alice");
        let start = Instant::now();
        let login = env.login("alice").answer(&code).run();
        times.push(start.elapsed());
        login.expect("PAM_SUCCESS");
        // With failmode=safe and no code, the flood must not make the login pass: mfad
        // answers (asks for the code) and the login fails without a code.
        let unanswered = env.login("alice").service("mfa-safe").run();
        assert_ne!(unanswered.result(), "PAM_SUCCESS", "{:?}", unanswered.lines);
        assert_eq!(unanswered.prompts(), 1, "{:?}", unanswered.lines);
    }
    let flooded = wait_bounded(flood, "flood");
    let summary = String::from_utf8_lossy(&flooded.stdout);
    eprintln!("flood: {summary}root logins under the flood took {times:?}");
    let flooded = wait_bounded(socket_flood, "flood of the login socket");
    let socket_summary = String::from_utf8_lossy(&flooded.stdout);
    let refused_connections = String::from_utf8_lossy(&flooded.stderr)
        .matches("connection refused")
        .count();
    eprintln!("login socket flood: {socket_summary}");
    assert!(
        !socket_summary.contains("calls 0 "),
        "the socket flood did not run: {socket_summary}"
    );
    // nobody's 16 connections are shared with the bus flood's, which may take some first.
    assert!(
        refused_connections >= 128 - 16,
        "nobody gets no more than 16 connections to the login socket, as on the bus: \
         {refused_connections} refused"
    );
    let calls: u64 = summary
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(calls > 1000, "the flood did not run: {summary}");
    assert!(
        !summary.contains("refused 0"),
        "mfad never refused the flood's excess calls: {summary}"
    );
    // Liveness, not speed: each login was answered within the module's own time limit.
    for time in &times {
        assert!(*time < MODULE_TIMEOUT, "{times:?}");
    }
}

/// A login goes to mfad's socket: it needs no bus, and a frozen bus does not hold it up.
#[test]
fn a_login_on_the_login_socket_needs_no_bus() {
    let env = Env::new().start();
    env.enroll("alice");
    env.freeze_bus(true);
    let code = env.fresh_code("alice");
    let start = Instant::now();
    env.login("alice").answer(&code).run().expect("PAM_SUCCESS");
    assert!(start.elapsed() < MODULE_TIMEOUT);
    env.login("alice")
        .answer(&env.wrong_code("alice"))
        .answer(&env.wrong_code("alice"))
        .answer(&env.wrong_code("alice"))
        .run()
        .expect("PAM_MAXTRIES");
    env.freeze_bus(false);
}

/// mfad's login socket serves the Login interface and nothing else (no introspection, as on
/// the bus), closes connections that sit idle longer than a login waits for its answer, and a
/// handshake that goes wrong gives the connection's place back.
#[test]
fn the_login_socket_serves_only_logins_and_lets_go_of_idle_and_broken_connections() {
    let env = Env::new().config("[login]\nsession_timeout = 10\n").start();
    env.enroll("alice");
    let connection = env.login_connection();
    let introspect = zbus::block_on(connection.call_method(
        None::<&str>,
        pam_mfa_api::OBJECT_PATH,
        Some("org.freedesktop.DBus.Introspectable"),
        "Introspect",
        &(),
    ));
    let error = introspect.unwrap_err().to_string();
    assert!(error.contains("AccessDenied"), "{error}");
    let ping = zbus::block_on(connection.call_method(
        None::<&str>,
        pam_mfa_api::OBJECT_PATH,
        Some("org.freedesktop.DBus.Peer"),
        "Ping",
        &(),
    ));
    assert!(ping.is_err());
    // Login calls work on the same connection.
    let login = zbus::block_on(LoginProxy::new(&connection)).unwrap();
    let (session, _) = zbus::block_on(login.begin("alice", HashMap::new())).unwrap();
    assert!(!session.is_empty());
    // Idle past session_timeout (10 s) and its slack: closed.
    std::thread::sleep(Duration::from_secs(17));
    let late = zbus::block_on(login.answer(&session, &env.fresh_code("alice")));
    assert!(late.is_err(), "{late:?}");
    // 20 connections of nobody that break the handshake, then a well-formed one: the broken
    // ones gave their places back (16 per uid).
    let socket = env.login_socket().display().to_string();
    let flood = env.flood_socket_as(
        NOBODY,
        &[
            "--garbage",
            "20",
            "--connections",
            "1",
            "--in-flight",
            "1",
            "--seconds",
            "1",
        ],
    );
    let out = wait_bounded(flood, "flood");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("connection refused"), "{socket}: {stderr}");
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(!summary.contains("calls 0 "), "{summary}");
}

/// An mfad whose name service hangs for one user, `slowpoke` (LDAP or SSSD with its server
/// down), until the test removes the returned `hold` file.
fn with_a_hung_name_service(config: &str) -> (Env, std::path::PathBuf) {
    let stall = std::env::temp_dir().join(format!(
        "pam-mfa-stall-{}-{}",
        std::process::id(),
        config.len()
    ));
    let _ = std::fs::remove_dir_all(&stall);
    std::fs::create_dir_all(&stall).unwrap();
    std::fs::write(stall.join("hold"), "").unwrap();
    let env = Env::new()
        .config(config)
        .daemon_env("NSS_WRAPPER_MODULE_SO_PATH", stall_nss_module())
        .daemon_env("NSS_WRAPPER_MODULE_FN_PREFIX", "stall")
        .daemon_env("STALL_NSS_DIR", &stall)
        .start();
    (env, stall)
}

/// Another user's login goes through while a lookup is hung. mfad waits for the lookup far
/// longer than the whole test takes (60 s), so a daemon that served one request at a time would
/// make alice's logins time out in the module (5 s).
#[test]
fn a_hung_name_lookup_does_not_delay_another_users_login() {
    let (env, stall) = with_a_hung_name_service("lookup_timeout = 60\n");
    env.enroll("alice");
    let slow = env.login("slowpoke").spawn();
    wait_until("the lookup of slowpoke to hang", || {
        stall.join("entered").exists()
    });
    for _ in 0..2 {
        env.login("alice")
            .answer(&env.fresh_code("alice"))
            .run()
            .expect("PAM_SUCCESS");
    }
    assert!(stall.join("hold").exists(), "the lookup is still hung");
    // slowpoke's own login: the module stops waiting (its timeout), with the one-line notice.
    slow.finish()
        .expect("PAM_AUTHINFO_UNAVAIL")
        .shows(pam_mfa_api::UNAVAILABLE_NOTICE);
    std::fs::remove_file(stall.join("hold")).unwrap();
    let _ = std::fs::remove_dir_all(&stall);
}

/// mfad gives up on a hung lookup after `lookup_timeout`, and says why.
#[test]
fn a_hung_name_lookup_fails_only_its_own_login_after_lookup_timeout() {
    let (env, stall) = with_a_hung_name_service("lookup_timeout = 1\n");
    env.login("slowpoke")
        .run()
        .expect("PAM_AUTHINFO_UNAVAIL")
        .shows(pam_mfa_api::UNAVAILABLE_NOTICE);
    assert!(
        env.daemon_log()
            .contains("the system user database did not answer within 1 s"),
        "{}",
        env.daemon_log()
    );
    std::fs::remove_file(stall.join("hold")).unwrap();
    let _ = std::fs::remove_dir_all(&stall);
}

#[test]
fn abandoned_logins_do_not_lock_the_user_out() {
    let env = Env::new().start();
    env.enroll("alice");
    // 33 logins that went away at the code prompt: their connections closed.
    for _ in 0..33 {
        let connection = env.login_connection();
        let login = zbus::block_on(LoginProxy::new(&connection)).unwrap();
        let (session, _) = zbus::block_on(login.begin("alice", HashMap::new())).unwrap();
        assert!(!session.is_empty());
        drop(login);
        zbus::block_on(connection.close()).unwrap();
    }
    // mfad ends a socket connection's logins as it sees the connection close: wait until a
    // login can begin again (32 unfinished ones would refuse it).
    wait_until("mfad to see the socket connections go", || {
        let connection = env.login_connection();
        let login = zbus::block_on(LoginProxy::new(&connection)).unwrap();
        let (session, _) = zbus::block_on(login.begin("alice", HashMap::new())).unwrap();
        !session.is_empty()
    });
    // 33 more whose conversation failed (the application gave no answer).
    for _ in 0..33 {
        env.login("alice").run().expect("PAM_CONV_ERR");
    }
    env.login("alice")
        .answer(&env.fresh_code("alice"))
        .run()
        .expect("PAM_SUCCESS");
}

#[test]
fn importing_a_case_variant_never_leaves_the_real_account_without_mfa() {
    let env = Env::new().start();
    let out = env.ctl(&["import", "-"], &format!("Alice {}\n", random_secret()));
    assert!(!out.success);
    assert!(
        out.stderr
            .contains("Alice is not a user here, but alice is: user names are case-sensitive"),
        "{}",
        out.stderr
    );
    let status = env.ctl(&["--json", "status", "Alice"], "");
    assert!(!status.success, "{}", status.stdout);
    // Once alice is enrolled, no spelling of her name replaces her authenticator.
    env.enroll("alice");
    for spelling in ["ALICE", "aLiCe"] {
        let out = env.ctl(
            &["import", "-"],
            &format!("{spelling} {}\n", random_secret()),
        );
        assert!(!out.success, "{spelling}: {}", out.stdout);
    }
    let out = env.ctl(&["enforce", "ALICE", "off"], "");
    assert!(!out.success, "{}", out.stdout);
    env.login("alice")
        .answer(&env.fresh_code("alice"))
        .run()
        .expect("PAM_SUCCESS");
    let users = env.ctl(&["users"], "").stdout;
    for spelling in ["Alice", "ALICE", "aLiCe"] {
        assert!(!users.contains(spelling), "{users}");
    }
}

/// Flips `alice` to `alicf` in the index over enrollments' user names, so that a lookup through
/// the index no longer finds her row.
/// Flips a byte of `alice` in the index of enrollments by user, so a lookup of alice through
/// the index finds nothing. `alice` must be the first name in the index (the other names sort
/// after it): it is then in the index's leftmost leaf page.
fn damage_the_user_index(db: &std::path::Path) {
    let connection = rusqlite::Connection::open(db).unwrap();
    connection
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .unwrap();
    let page_size: i64 = connection
        .query_row("PRAGMA page_size", [], |row| row.get(0))
        .unwrap();
    let root: i64 = connection
        .query_row(
            "SELECT rootpage FROM sqlite_schema WHERE type = 'index' AND name = 'enrollments_user'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    drop(connection);
    let mut bytes = std::fs::read(db).unwrap();
    let page_size = page_size as usize;
    // Down the B-tree's leftmost path: an interior index page (type 2) holds, in each cell, the
    // number of the page left of that cell's key (https://sqlite.org/fileformat2.html).
    let mut page = root as usize;
    let leaf = loop {
        let start = (page - 1) * page_size;
        let header = if page == 1 { start + 100 } else { start };
        match bytes[header] {
            2 => {
                let first_cell = u16::from_be_bytes([bytes[header + 12], bytes[header + 13]]);
                let cell = start + first_cell as usize;
                page = u32::from_be_bytes(bytes[cell..cell + 4].try_into().unwrap()) as usize;
            }
            10 => break start..start + page_size,
            other => panic!("page {page} of the index has type {other}"),
        }
    };
    let at = bytes[leaf.clone()]
        .windows(5)
        .position(|window| window == b"alice")
        .expect("alice in the index's first leaf")
        + leaf.start;
    bytes[at + 4] = b'f';
    std::fs::write(db, bytes).unwrap();
}

#[test]
fn a_damaged_index_is_found_at_start_up() {
    let env = Env::new().start();
    env.enroll("alice");
    env.stop_daemon();
    let db = env.state_dir().join("mfad.sqlite3");
    damage_the_user_index(&db);
    let out = env.run_daemon_with(&format!("state_dir = \"{}\"\n", env.state_dir().display()));
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&db.display().to_string()), "{stderr}");
    assert!(stderr.contains("is damaged"), "{stderr}");
    // No daemon: alice is not let in.
    env.login("alice").run().expect("PAM_AUTHINFO_UNAVAIL");
}

/// Adds enrollments of `user000000`, `user000001`... until the database is larger than mfad
/// checks before serving (16 MiB).
fn grow(db: &std::path::Path) {
    let mut connection = rusqlite::Connection::open(db).unwrap();
    let mut next = 0;
    loop {
        let size: i64 = connection
            .query_row(
                "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()",
                [],
                |row| row.get(0),
            )
            .unwrap();
        if size > 17 << 20 {
            break;
        }
        let transaction = connection.transaction().unwrap();
        {
            let mut insert = transaction
                .prepare(
                    // Filler, never used at a login: marked sealed with the key in use, so
                    // that mfad does not seal it again at its start.
                    "INSERT INTO enrollments (username, secret, algorithm, digits, period, active,
                     created, confirmed, sealed_with) VALUES (?1, ?2, 'SHA1', 6, 30, 1, 0, 0, 1)",
                )
                .unwrap();
            for _ in 0..20_000 {
                let secret: Vec<u8> = (0..20).map(|i| (next + i) as u8).collect();
                insert
                    .execute(rusqlite::params![format!("user{next:06}"), secret])
                    .unwrap();
                next += 1;
            }
        }
        transaction.commit().unwrap();
    }
}

/// A database too large to check before serving is checked while mfad serves: mfad says so,
/// and on finding the damage it stops, naming the file. Whichever comes first, a login of the
/// user whose row the damaged index hides is never let through.
#[test]
fn a_damaged_index_in_a_large_database_is_found_while_serving() {
    use std::process::{Command, Stdio};
    let env = Env::new().start();
    env.enroll("alice");
    env.stop_daemon();
    let db = env.state_dir().join("mfad.sqlite3");
    grow(&db);
    damage_the_user_index(&db);
    let config = env.dir().join("large.toml");
    std::fs::write(&config, env.state_settings()).unwrap();
    let mut mfad = Command::new(pam_mfa_tests::built("mfad"))
        .arg("--bus")
        .arg(&env.address)
        .arg("--config")
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Its lines, as they come; the logins start once it serves.
    let (lines, read) = std::sync::mpsc::channel();
    let stderr = mfad.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        use std::io::BufRead;
        let mut all = String::new();
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = lines.send(line.clone());
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let serving = read
        .iter()
        .any(|line| line.contains("serving org.pam_mfa.Mfad1"));
    // After a password check and with no code to give: a login treated as one of a user who
    // never enrolled would pass.
    let mut results = Vec::new();
    while mfad.try_wait().unwrap().is_none() && results.len() < 100 {
        let login = env.login("alice").service("permit-then-mfa").run();
        results.push(login.result().to_owned());
    }
    eprintln!("logins while mfad ran: {results:?}");
    let status = wait_bounded(mfad, "mfad").status;
    assert!(!status.success());
    let stderr = reader.join().unwrap();
    assert!(serving, "{stderr}");
    assert!(
        stderr.contains(&format!("checking {} (", db.display())),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("{} is damaged", db.display())),
        "{stderr}"
    );
    assert!(
        !results.iter().any(|result| result == "PAM_SUCCESS"),
        "{results:?}"
    );
    env.login("alice").run().expect("PAM_AUTHINFO_UNAVAIL");
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

#[test]
fn a_reset_leaves_no_copy_of_the_secret() {
    let env = Env::new().start();
    let secret = env.enroll("alice");
    env.login("alice")
        .answer(&env.fresh_code("alice"))
        .run()
        .expect("PAM_SUCCESS");
    let _ = secret;
    // The secret as stored (sealed: no copy of it in the clear is ever written; see
    // sealing.rs), which must go too.
    let stored = |user: &str| -> Vec<u8> {
        rusqlite::Connection::open(env.state_dir().join("mfad.sqlite3"))
            .unwrap()
            .query_row(
                "SELECT secret FROM enrollments WHERE username = ?1",
                [user],
                |row| row.get(0),
            )
            .unwrap()
    };
    let raw = stored("alice");
    let raw = raw.as_slice();
    let files = ["mfad.sqlite3", "mfad.sqlite3-wal"].map(|name| env.state_dir().join(name));
    let everywhere = || -> Vec<u8> {
        files
            .iter()
            .flat_map(|file| std::fs::read(file).unwrap_or_default())
            .collect()
    };
    assert!(
        contains(&everywhere(), raw),
        "the test looks for the wrong bytes"
    );
    assert!(env.ctl(&["reset", "--yes", "alice"], "").success);
    assert!(!contains(&everywhere(), raw), "the secret is still on disk");
    // A pending enrollment replaced by another: the first secret goes too.
    let first = random_secret();
    let out = env.ctl(&["enroll", "bob", "--secret", &first], "");
    assert!(!out.success, "no code was given: {}", out.stdout);
    let first = stored("bob");
    assert!(contains(&everywhere(), &first));
    env.enroll("bob");
    assert!(!contains(&everywhere(), &first));
}

#[test]
fn mfad_exits_when_it_loses_the_bus() {
    let env = Env::new().start();
    env.kill_bus();
    let status = env.daemon_exit();
    assert!(!status.success(), "{status:?}");
    assert!(
        env.daemon_log().contains("lost the connection to the bus"),
        "{}",
        env.daemon_log()
    );
}

#[test]
fn an_unsafe_state_directory_is_refused() {
    let env = Env::new().start();
    let theirs = env.dir().join("theirs");
    std::fs::create_dir(&theirs).unwrap();
    std::os::unix::fs::chown(&theirs, Some(1000), Some(1000)).unwrap();
    let out = env.run_daemon_with(&format!(
        "state_dir = \"{}\"\n",
        theirs.join("state").display()
    ));
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("{} is owned by uid 1000", theirs.display())),
        "{stderr}"
    );
}

#[test]
fn lines_caused_by_an_unprivileged_user_are_rate_limited() {
    let env = Env::new().start();
    env.enroll("alice");
    // nobody asks 300 times to authenticate alice: refused each time.
    let flood = env.flood_socket_as(
        NOBODY,
        &[
            "--connections",
            "1",
            "--in-flight",
            "1",
            "--seconds",
            "20",
            "--user",
            "alice",
            "--count",
            "900",
        ],
    );
    wait_bounded(flood, "flood");
    let log = env.daemon_log();
    let refused = log.matches("uid 65534 asked to authenticate alice").count();
    assert!(refused >= 1, "{log}");
    assert!(refused <= 60, "{refused} lines for one user's flood");
    assert!(log.contains("caused by uid 65534 were left out") || refused < 300);
    // Root's lines are not limited.
    env.login("alice")
        .answer(&env.fresh_code("alice"))
        .run()
        .expect("PAM_SUCCESS");
    assert!(env.daemon_log().contains("login allowed: user=alice"));
}

/// Runs logins that mfad logs (bob is neither enrolled nor enforced) until one of its lines
/// arrives at `syslog`; false if none did after 40 logins.
fn reaches_syslog(env: &Env, syslog: &std::os::unix::net::UnixDatagram) -> bool {
    syslog
        .set_read_timeout(Some(Duration::from_millis(250)))
        .unwrap();
    let mut buffer = [0u8; 2048];
    for _ in 0..40 {
        env.login("bob")
            .service("permit-then-mfa")
            .run()
            .expect("PAM_SUCCESS");
        while let Ok(length) = syslog.recv(&mut buffer) {
            let line = String::from_utf8_lossy(&buffer[..length]);
            if line.contains("mfad") && line.contains("login skipped: user=bob") {
                return true;
            }
        }
    }
    false
}

/// mfad starts with no syslog (its lines go to stderr), finds /dev/log once it appears, loses
/// it when syslog stops, and finds the new one after a restart.
#[test]
fn mfad_logs_to_syslog_again_when_it_comes_back() {
    use std::os::unix::net::UnixDatagram;
    let env = Env::new().private_dev().start();
    let dev_log = env.dev().join("log");
    assert!(!dev_log.exists());

    let syslog = UnixDatagram::bind(&dev_log).unwrap();
    assert!(reaches_syslog(&env, &syslog), "{}", env.daemon_log());

    // syslog stops: its socket goes away. Lines still reach stderr.
    drop(syslog);
    std::fs::remove_file(&dev_log).unwrap();
    let before = env.daemon_log().matches("login skipped: user=bob").count();
    env.login("bob")
        .service("permit-then-mfa")
        .run()
        .expect("PAM_SUCCESS");
    assert!(
        env.daemon_log().matches("login skipped: user=bob").count() > before,
        "{}",
        env.daemon_log()
    );

    // syslog starts again, on a new socket at the same path.
    let syslog = UnixDatagram::bind(&dev_log).unwrap();
    assert!(reaches_syslog(&env, &syslog), "{}", env.daemon_log());
}

/// A login socket in a directory that another user owns is refused at start, naming it: that
/// user could move mfad's directory aside and listen in its place.
#[test]
fn a_login_socket_under_another_users_directory_is_refused() {
    let env = Env::new().start();
    let theirs = env.dir().join("theirs");
    std::fs::create_dir(&theirs).unwrap();
    std::os::unix::fs::chown(&theirs, Some(1000), Some(1000)).unwrap();
    let out = env.run_daemon_with(&format!(
        "state_dir = \"{}\"\nlogin_socket = \"{}\"\n",
        env.dir().join("other-state").display(),
        theirs.join("run/login.socket").display()
    ));
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let said = format!(
        "{} is owned by uid 1000: the login socket's directory and every directory above it \
         must be owned by root",
        theirs.display()
    );
    assert_eq!(stderr.matches(&said).count(), 1, "{stderr}");
    assert!(!theirs.join("run").exists());
}

/// A handshake line longer than 512 bytes closes the connection, whether or not it ends; a
/// call longer than mfad takes is answered with an error and closes the connection; logins
/// go on.
#[test]
fn long_handshake_lines_and_long_calls_close_their_connection() {
    use std::io::{Read, Write};
    let env = Env::new().start();
    env.enroll("alice");
    for line in [
        format!("\0AUTH EXTERNAL {}\r\n", "30".repeat(2000)),
        format!("\0AUTH {}", "X".repeat(4000)),
    ] {
        let mut stream = std::os::unix::net::UnixStream::connect(env.login_socket()).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        stream.write_all(line.as_bytes()).unwrap();
        let mut heard = Vec::new();
        let read = stream.read_to_end(&mut heard);
        assert!(
            read.is_ok() && heard.is_empty(),
            "{} bytes sent: {read:?}, {:?}",
            line.len(),
            String::from_utf8_lossy(&heard)
        );
    }
    let connection = env.login_connection();
    let login = zbus::block_on(LoginProxy::new(&connection)).unwrap();
    let long = "x".repeat(pam_mfa_api::wire::MAX_CALL_LEN);
    let error = zbus::block_on(login.begin(&long, HashMap::new())).unwrap_err();
    assert!(error.to_string().contains("LimitsExceeded"), "{error}");
    // The connection is gone.
    let again = zbus::block_on(login.begin("alice", HashMap::new()));
    assert!(again.is_err(), "{again:?}");
    env.login("alice")
        .answer(&env.fresh_code("alice"))
        .run()
        .expect("PAM_SUCCESS");
}

/// Sockets process `pid` has open.
fn open_sockets(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|entry| {
            std::fs::read_link(entry.path())
                .is_ok_and(|target| target.to_string_lossy().starts_with("socket:"))
        })
        .count()
}

/// Sixteen users each holding all the connections to the login socket they may (16), calling
/// all the while, leave room for another user's own login, as a screen locker runs it; and
/// calls that move no login on do not keep their connections open.
#[test]
fn users_holding_login_socket_connections_leave_room_for_another_users_login() {
    let env = Env::new().start();
    env.enroll("alice");
    let mfad = env.daemon_pid().unwrap();
    let before = open_sockets(mfad);
    let mut floods: Vec<_> = (0..16)
        .map(|n| {
            env.flood_socket_as(
                20_000 + n,
                &["--connections", "16", "--in-flight", "1", "--seconds", "60"],
            )
        })
        .collect();
    // Each holds what it could get.
    for flood in &mut floods {
        use std::io::BufRead;
        let stderr = std::io::BufReader::new(flood.stderr.take().unwrap());
        let connected = stderr
            .lines()
            .map_while(Result::ok)
            .any(|line| line.contains("connections open"));
        assert!(connected);
    }
    assert!(open_sockets(mfad) >= before + 12 * 16);
    let login = env
        .login("alice")
        .as_uid(1000)
        .answer(&env.fresh_code("alice"))
        .run();
    login.expect("PAM_SUCCESS");
    assert_eq!(login.prompts(), 1, "{:?}", login.lines);
    // Their calls (refused: each asks for another user's login, or for no login) keep nothing
    // open: their connections are closed while they still call.
    wait_until(
        "mfad to close the connections that move no login on",
        || open_sockets(mfad) < before + 16,
    );
    for flood in floods {
        let out = wait_bounded(flood, "flood");
        let summary = String::from_utf8_lossy(&out.stdout);
        assert!(!summary.contains("calls 0 "), "{summary}");
    }
}

/// A code the user typed leaves no copy in memory once the login is over: neither in mfad nor
/// in the login program that ran the module (after `pam_end`), whatever buffers it went
/// through on the way.
#[test]
fn a_typed_code_leaves_no_copy_in_memory() {
    let env = Env::new().start();
    env.enroll("alice");
    // A guess at a recovery code, its letters spaced out (a recovery code is read without its
    // dashes and spaces): 57 bytes typed, so that even a copy whose first 16 bytes malloc
    // reused on freeing it shows (its tail is searched for), and nothing else in memory
    // matches by chance. It is normalized, then hashed with each stored code's salt.
    let letters: String = random_secret()
        .to_lowercase()
        .chars()
        .filter(|c| "23456789abcdefghjkmnpqrstuvwxyz".contains(*c))
        .take(15)
        .collect();
    assert_eq!(letters.len(), 15);
    let typed = letters
        .to_uppercase()
        .chars()
        .map(String::from)
        .collect::<Vec<_>>();
    let typed = typed.join(" - ");
    assert_eq!(typed.len(), 57);
    let mut login = env.login("alice").hold().drive();
    login.prompt();
    login.reply(&typed);
    let again = login.prompt();
    assert!(
        again.iter().any(|line| line.contains("Wrong code")),
        "{again:?}"
    );
    login.reply(&env.fresh_code("alice"));
    let (shown, held) = login.held();
    assert!(
        shown.contains(&"RESULT PAM_SUCCESS".to_owned()),
        "{shown:?}"
    );
    let mfad = env.daemon_pid().unwrap();
    for (process, pid) in [("mfad", mfad), ("the login program", held)] {
        for form in [&typed[16..], &letters] {
            let copies = pam_mfa_tests::copies_in_memory(pid, form.as_bytes());
            assert_eq!(copies, 0, "{form:?} is in the memory of {process}");
        }
    }
    login.finish().expect("PAM_SUCCESS");
}
