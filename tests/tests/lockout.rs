//! Lockout after too many wrong codes: kept by mfad across services and restarts, counted
//! exactly under parallel logins, ended by `mfactl unlock`.

use pam_mfa_tests::Env;

#[test]
fn too_many_wrong_codes_lock_the_account_on_every_service_until_unlocked() {
    let env = Env::new().start();
    env.enroll("alice");
    let wrong = env.wrong_code("alice");
    env.login("alice")
        .answer(&wrong)
        .answer(&wrong)
        .answer(&wrong)
        .run()
        .expect("PAM_MAXTRIES");
    // Two more wrong codes are allowed (5 in 5 minutes); the sixth try locks.
    let locked = env
        .login("alice")
        .answer(&wrong)
        .answer(&wrong)
        .answer(&env.fresh_code("alice"))
        .run();
    locked
        .expect("PAM_AUTH_ERR")
        .shows("ERROR_MSG Too many wrong codes: this account is locked until ");
    // Locked everywhere: another service, the right code, a restart of mfad.
    env.stop_daemon();
    env.start_daemon();
    let refused = env.login("alice").service("permit-then-mfa").run();
    refused
        .expect("PAM_AUTH_ERR")
        .shows("(in 5 minutes). Try again then, or ask an administrator to unlock it.");
    // sudo passes PAM_SILENT: the lock is said all the same, or the user would read sudo's
    // "Sorry, try again." as a wrong password.
    env.login("alice")
        .silent()
        .run()
        .expect("PAM_AUTH_ERR")
        .shows("ERROR_MSG Too many wrong codes: this account is locked until ");
    assert_eq!(
        refused.prompts(),
        0,
        "a locked user is not asked for a code"
    );
    let status = env.ctl(&["status", "alice"], "");
    assert!(
        status.stdout.contains("locked:    until "),
        "{}",
        status.stdout
    );
    assert!(env.daemon_log().contains("locked out: user=alice"));
    let out = env.ctl(&["unlock", "alice"], "");
    assert!(out.stdout.contains("alice: unlocked"), "{}", out.stdout);
    env.login("alice")
        .answer(&env.fresh_code("alice"))
        .run()
        .expect("PAM_SUCCESS");
}

/// Eight logins guessing at once get the tries of one: five wrong codes in all, then locked.
#[test]
fn parallel_guessers_get_no_more_tries_than_one() {
    let env = Env::new().start();
    env.enroll("alice");
    let wrong = env.wrong_code("alice");
    let guessers: Vec<_> = (0..8)
        .map(|_| {
            env.login("alice")
                .answer(&wrong)
                .answer(&wrong)
                .answer(&wrong)
                .spawn()
        })
        .collect();
    let transcripts: Vec<_> = guessers.into_iter().map(|g| g.finish()).collect();
    let checked: usize = transcripts
        .iter()
        .map(|t| {
            t.lines
                .iter()
                .filter(|line| line.starts_with("ERROR_MSG Wrong code"))
                .count()
        })
        .sum();
    assert_eq!(checked, 5, "{transcripts:#?}");
    let locked = transcripts
        .iter()
        .filter(|t| t.lines.iter().any(|l| l.contains("this account is locked")))
        .count();
    assert!(locked >= 1, "{transcripts:#?}");
}

/// The audit trail of a small story, read with `mfactl audit`: administrators read anyone's,
/// users only their own.
#[test]
fn the_audit_trail_tells_the_story_and_users_read_only_their_own() {
    let env = Env::new().start();
    env.enroll("alice");
    env.login("alice")
        .answer(&env.fresh_code("alice"))
        .run()
        .expect("PAM_SUCCESS");
    let wrong = env.wrong_code("alice");
    for _ in 0..2 {
        env.login("alice")
            .answer(&wrong)
            .answer(&wrong)
            .answer(&wrong)
            .run();
    }
    assert!(env.ctl(&["unlock", "alice"], "").success);
    assert!(env.ctl(&["reset", "--yes", "alice"], "").success);
    let out = env.ctl(&["audit", "--user", "alice"], "");
    assert!(out.success, "{}", out.stderr);
    eprintln!("{}", out.stdout);
    let story = [
        "enrollment started: user=alice by uid 0",
        "enrollment confirmed: user=alice by uid 0",
        "login allowed: user=alice",
        "login denied: user=alice wrong code, no tries left",
        "locked out: user=alice too many wrong codes, locked until 20",
        "unlocked: user=alice by uid 0",
        "enrollment reset: user=alice removed=true by uid 0",
    ];
    // Times as people read them, never in Unix seconds.
    assert!(
        out.stdout
            .lines()
            .any(|line| line.contains("locked until 20") && line.contains(" UTC ")),
        "{}",
        out.stdout
    );
    let mut rest = out.stdout.as_str();
    for line in story {
        let at = rest
            .find(line)
            .unwrap_or_else(|| panic!("{line:?} missing or out of order in:\n{}", out.stdout));
        rest = &rest[at + line.len()..];
    }
    let locked = env.ctl(&["--json", "audit", "--event", "locked-out"], "");
    let locked: serde_json::Value = serde_json::from_str(&locked.stdout).unwrap();
    assert_eq!(locked.as_array().unwrap().len(), 1, "{locked}");
    assert_eq!(locked[0]["user"], "alice");
    // bob is no administrator: he reads his own entries only, whatever he asks for.
    let bob = env.ctl_as(Some(1001), &["audit", "--user", "alice"], "");
    assert!(bob.success, "{}", bob.stderr);
    assert_eq!(bob.stdout.trim(), "no audit entries");
    // Nothing in the trail is a secret or a code.
    let all = env.ctl(&["--json", "audit", "--limit", "10000"], "").stdout;
    assert!(!all.contains(&wrong), "{all}");
}

/// Entries older than `audit.retention_days` are removed when mfad starts; newer ones stay.
#[test]
fn audit_entries_older_than_the_retention_are_removed() {
    let env = Env::new().config("[audit]\nretention_days = 30\n").start();
    env.enroll("alice");
    env.stop_daemon();
    let db = rusqlite::Connection::open(env.state_dir().join("mfad.sqlite3")).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    for (days, line) in [(31, "from 31 days ago"), (29, "from 29 days ago")] {
        db.execute(
            "INSERT INTO audit (time, kind, username, line) VALUES (?1, 'unlocked', 'alice', ?2)",
            rusqlite::params![now - days * 86_400, line],
        )
        .unwrap();
    }
    drop(db);
    env.start_daemon();
    let trail = env.ctl(&["audit", "--user", "alice"], "").stdout;
    assert!(!trail.contains("from 31 days ago"), "{trail}");
    assert!(trail.contains("from 29 days ago"), "{trail}");
    assert!(
        trail.contains("enrollment confirmed: user=alice"),
        "{trail}"
    );
    assert!(
        env.daemon_log()
            .contains("removed 1 audit entries older than 30 days"),
        "{}",
        env.daemon_log()
    );
}
