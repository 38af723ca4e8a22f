//! The audit trail: every kind of event is one line in mfad's log and a row in the store, read
//! back with `mfactl audit`; no secret, code or recovery code is in any of them.

use std::collections::BTreeSet;

use pam_mfa_tests::Env;

const ALICE: u32 = 1000;

/// Whether `text` holds `code` as a whole word (a 6-digit code inside a Unix time is not one).
fn holds_word(text: &str, code: &str) -> bool {
    text.split(|c: char| !c.is_ascii_alphanumeric())
        .any(|word| word == code)
}

#[test]
fn every_event_is_a_log_line_and_a_row_and_none_holds_a_secret() {
    let env = Env::new()
        .config("[remember.services]\nsshd = 3600\n[exemptions]\ngroups = [\"breakglass\"]\n")
        .module_args("notrequired=success")
        .group("breakglass", 2001, &["dave"])
        .start();
    let secret = env.enroll("alice");
    let mut used = Vec::new();
    let code = env.fresh_code("alice");
    used.push(code.clone());
    env.login("alice")
        .service("sshd")
        .rhost("192.0.2.1")
        .answer(&code)
        .run()
        .expect("PAM_SUCCESS");
    // Remembered from the same place.
    env.login("alice")
        .service("sshd")
        .rhost("192.0.2.1")
        .run()
        .expect("PAM_SUCCESS");
    // New recovery codes, then one of them at a login.
    let code = env.fresh_code("alice");
    used.push(code.clone());
    let out = env.ctl_as(
        Some(ALICE),
        &["--json", "recovery-codes"],
        &format!("{code}\n"),
    );
    assert!(out.success, "{}", out.stderr);
    let report: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let recovery: Vec<String> = (report["recovery_codes"].as_array().unwrap().iter())
        .map(|code| code.as_str().unwrap().to_owned())
        .collect();
    env.login("alice")
        .service("su")
        .answer(&recovery[0])
        .run()
        .expect("PAM_SUCCESS")
        .shows("Recovery code accepted.");
    // Wrong codes until locked, then unlocked.
    let wrong = env.wrong_code("alice");
    env.lock_out("alice", "su");
    assert!(env.ctl(&["unlock", "alice"], "").success);
    // A login asked for a code that is never given; an enrollment at login never finished.
    // Abandoned again at once, and by alice's own program: logged, but one row a minute and
    // none for unprivileged callers, so nobody makes mfad write at will.
    for _ in 0..2 {
        env.login("alice")
            .service("su")
            .run()
            .expect("PAM_CONV_ERR");
    }
    env.login("alice")
        .service("su")
        .as_uid(ALICE)
        .run()
        .expect("PAM_CONV_ERR");
    assert!(env.ctl(&["enforce", "bob", "on"], "").success);
    env.login("bob").service("su").run().expect("PAM_CONV_ERR");
    // A break-glass login; the same by dave's own program is logged only.
    env.login("dave")
        .service("sshd")
        .rhost("192.0.2.9")
        .run()
        .expect("PAM_SUCCESS");
    env.login("dave")
        .service("sshd")
        .rhost("192.0.2.9")
        .as_uid(1003)
        .run()
        .expect("PAM_SUCCESS");
    // The user removes their app; an administrator resets bob's unfinished enrollment.
    let code = env.fresh_code("alice");
    used.push(code.clone());
    let out = env.ctl_as(Some(ALICE), &["disable"], &format!("{code}\n"));
    assert!(out.success, "{}", out.stderr);
    assert!(env.ctl(&["reset", "--yes", "bob"], "").success);
    // The policy changes by reload; a broken configuration is refused.
    env.write_config(
        "[enforcement]\nservices = [\"sshd\"]\n[exemptions]\ngroups = [\"breakglass\"]\n\
         [remember.services]\nsshd = 3600\n",
    );
    assert!(env.ctl(&["reload"], "").success);
    env.write_config("[enforcement]\nservices = [\"\"]\n");
    assert!(!env.ctl(&["reload"], "").success);

    // Abandoned logins are recorded by a sweep every few seconds.
    let kinds = || -> BTreeSet<String> {
        let out = env.ctl(&["--json", "audit", "--limit", "10000"], "");
        let rows: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        (rows.as_array().unwrap().iter())
            .map(|row| row["event"].as_str().unwrap().to_owned())
            .collect()
    };
    pam_mfa_tests::wait_until("the abandoned logins are recorded", || {
        let kinds = kinds();
        kinds.contains("login-abandoned") && kinds.contains("enrollment-abandoned")
    });
    let expected = [
        "challenged",
        "login-allowed",
        "remembered-login",
        "recovery-code-used",
        "recovery-codes-renewed",
        "login-denied",
        "locked-out",
        "unlocked",
        "login-abandoned",
        "enrollment-started",
        "enrollment-confirmed",
        "enrollment-abandoned",
        "enrollment-reset",
        "enrollment-disabled",
        "enforcement-set",
        "login-exempt",
        "config-reloaded",
        "policy-changed",
        "config-refused",
    ];
    let found = kinds();
    for kind in expected {
        assert!(found.contains(kind), "no {kind} row in {found:?}");
    }
    let trail = env.ctl(&["audit", "--limit", "10000"], "").stdout;
    eprintln!("{trail}");
    let log = env.daemon_log();
    for kind_line in [
        "challenged: user=alice asked for a code (not enforced) service=sshd rhost=192.0.2.1",
        "login allowed: user=alice remembered from a right code at ",
        "login exempt: user=dave no second factor asked (exempt group breakglass)",
        "login abandoned: user=alice no code given before the login ended service=su",
        "enrollment abandoned: user=bob no code from the app before the login ended service=su",
        "policy changed: enforcement.services: [] -> [\"sshd\"] by uid 0",
    ] {
        assert!(
            trail.contains(kind_line),
            "{kind_line:?} not in the trail:\n{trail}"
        );
        assert!(
            log.contains(kind_line),
            "{kind_line:?} not in the log:\n{log}"
        );
    }
    let in_log = |line: &str| log.matches(line).count();
    let in_trail = |line: &str| trail.matches(line).count();
    let abandoned = "login abandoned: user=alice";
    assert_eq!(
        (in_trail(abandoned), in_log(abandoned)),
        (1, 3),
        "{trail}\n{log}"
    );
    let exempt = "login exempt: user=dave";
    assert_eq!((in_trail(exempt), in_log(exempt)), (1, 2), "{trail}\n{log}");
    // No secret and no code, in the trail or the log.
    let all = env.ctl(&["--json", "audit", "--limit", "10000"], "").stdout;
    let mut secrets = used;
    secrets.push(wrong);
    secrets.extend(recovery.iter().cloned());
    secrets.extend(recovery.iter().map(|code| code.replace('-', "")));
    for text in [&all, &log] {
        assert!(!text.contains(&secret), "the secret in:\n{text}");
        for code in &secrets {
            assert!(!holds_word(text, code), "{code} in:\n{text}");
        }
    }
}

/// A trail of thousands of rows is read in pages: a user reads their own newest entries
/// however many other users' there are, and an administrator reads past the first page.
#[test]
fn a_long_trail_is_read_in_pages() {
    let env = Env::new().start();
    env.enroll("alice");
    env.stop_daemon();
    // 1,500 rows of alice's among 3,000 of bob's, one a second over the last hours, written
    // straight into mfad's database.
    let start = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 5000;
    let db = rusqlite::Connection::open(env.state_dir().join("mfad.sqlite3")).unwrap();
    db.execute(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 4500)
         INSERT INTO audit (time, kind, username, host, line)
         SELECT ?1 + i, 'login-denied', CASE WHEN i % 3 = 0 THEN 'alice' ELSE 'bob' END, '',
                'login denied: row ' || i FROM n",
        [start as i64],
    )
    .unwrap();
    drop(db);
    env.start_daemon();

    let entries = |uid: Option<u32>, args: &[&str]| -> Vec<serde_json::Value> {
        let mut all = vec!["--json", "audit"];
        all.extend_from_slice(args);
        let out = env.ctl_as(uid, &all, "");
        assert!(out.success, "{}", out.stderr);
        serde_json::from_str::<serde_json::Value>(&out.stdout)
            .unwrap()
            .as_array()
            .unwrap()
            .clone()
    };
    let lines = |rows: &[serde_json::Value]| -> Vec<String> {
        rows.iter()
            .map(|row| row["line"].as_str().unwrap().to_owned())
            .collect()
    };
    // Alice: her own newest 1,200, oldest first, across two pages; never bob's.
    let own = entries(Some(ALICE), &["--event", "login-denied", "--limit", "1200"]);
    let expected: Vec<String> = (1..=4500)
        .filter(|i| i % 3 == 0)
        .skip(300)
        .map(|i| format!("login denied: row {i}"))
        .collect();
    assert_eq!(own.len(), expected.len());
    assert!(lines(&own) == expected, "{:?}", &own[..2]);
    assert!(own.iter().all(|row| row["user"] == "alice"));
    // Asking for bob's changes nothing for her.
    let asked = entries(Some(ALICE), &["--user", "bob", "--limit", "5"]);
    assert!(asked.iter().all(|row| row["user"] == "alice"), "{asked:?}");
    // An administrator: every row since a time, from several pages.
    let since = (start + 2000).to_string();
    let since = entries(None, &["--since", &since, "--limit", "100000"]);
    // Alice's enrollment (started and confirmed, the first rows), then rows 2000 to 4500.
    assert_eq!(since.len(), 2 + 4500 - 1999);
    assert_eq!(lines(&since[2..3]), ["login denied: row 2000"]);
    assert_eq!(lines(&since[since.len() - 1..]), ["login denied: row 4500"]);
    // A page larger than mfad gives is refused, by name.
    let out = env.ctl(&["audit", "--limit", "0"], "");
    assert!(
        !out.success && out.stderr.contains("--limit"),
        "{}",
        out.stderr
    );
}
