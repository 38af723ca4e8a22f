//! Secrets sealed at rest, with real mfad processes and SQLite files: the database and its log
//! hold no secret in any encoding; mfad refuses to start without its keys or with keys that do
//! not open what is stored, and changes nothing then; a store written before secrets were
//! sealed is sealed at the first start; a new key replaces the old one for every secret, even
//! when mfad is killed in the middle.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use pam_mfa_tests::{Env, built, code_at, current_step, random_secret, run_bounded};

/// The ways a secret could be written down: its bytes, Base32 in either case, hexadecimal in
/// either case.
fn encodings(secret: &str) -> Vec<(String, Vec<u8>)> {
    let raw = raw(secret);
    let hex: String = raw.iter().map(|byte| format!("{byte:02x}")).collect();
    vec![
        ("raw".into(), raw),
        ("Base32".into(), secret.as_bytes().to_vec()),
        ("base32".into(), secret.to_lowercase().into_bytes()),
        ("hex".into(), hex.clone().into_bytes()),
        ("HEX".into(), hex.to_uppercase().into_bytes()),
    ]
}

/// The bytes of a Base32 secret.
fn raw(secret: &str) -> Vec<u8> {
    let secret = totp_rs::Secret::try_from_base32(secret).expect("Base32 secret");
    secret.as_bytes().to_vec()
}

/// Fails if any of `files` holds any of `secrets` in any encoding.
fn assert_no_secret(files: &[(String, Vec<u8>)], secrets: &[String]) {
    for secret in secrets {
        for (encoding, needle) in encodings(secret) {
            for (name, bytes) in files {
                assert!(
                    !bytes.windows(needle.len()).any(|window| window == needle),
                    "{name} holds a secret ({encoding})"
                );
            }
        }
    }
}

/// The database and its write-ahead log and index, as they are on disk now.
fn database_files(env: &Env) -> Vec<(String, Vec<u8>)> {
    ["mfad.sqlite3", "mfad.sqlite3-wal", "mfad.sqlite3-shm"]
        .iter()
        .filter_map(|name| {
            let bytes = std::fs::read(env.state_dir().join(name)).ok()?;
            Some((name.to_string(), bytes))
        })
        .collect()
}

fn database(env: &Env) -> rusqlite::Connection {
    rusqlite::Connection::open(env.state_dir().join("mfad.sqlite3")).unwrap()
}

/// The number of the key each stored secret is sealed with (none: not sealed).
fn sealed_with(env: &Env) -> Vec<Option<i64>> {
    let db = database(env);
    let mut statement = db
        .prepare("SELECT sealed_with FROM enrollments ORDER BY id")
        .unwrap();
    let keys = statement.query_map([], |row| row.get(0)).unwrap();
    keys.map(|key| key.unwrap()).collect()
}

/// `mfad --new-key PATH`.
fn new_key(path: &Path) -> String {
    let out = run_bounded(
        Command::new(built("mfad")).arg("--new-key").arg(path),
        "mfad",
    );
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{said}");
    said
}

/// Imports `count` users named u0, u1... with new secrets; returns the secrets.
fn import(env: &Env, count: usize) -> Vec<String> {
    let secrets: Vec<String> = (0..count).map(|_| random_secret()).collect();
    let text: String = (secrets.iter().enumerate())
        .map(|(index, secret)| format!("u{index} {secret}\n"))
        .collect();
    let file = env.dir().join("import.txt");
    std::fs::write(&file, text).unwrap();
    let out = env.ctl(&["import", file.to_str().unwrap()], "");
    assert!(out.success, "{}", out.stderr);
    std::fs::remove_file(&file).unwrap();
    secrets
}

/// Runs mfad on `env`'s bus and state until it exits (it must refuse to start); returns its
/// exit code and what it said.
fn refused(env: &Env, keys: &Path) -> String {
    let out = env.run_daemon_with_keys(
        keys,
        &format!("state_dir = \"{}\"\n", env.state_dir().display()),
    );
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert_eq!(said.lines().count(), 1, "one line: {said}");
    said
}

/// Everything stored that a refused start must leave as it was.
fn content(env: &Env) -> String {
    let db = database(env);
    let mut text = String::new();
    for table in ["enrollments", "settings", "audit", "recovery_codes"] {
        let mut statement = db.prepare(&format!("SELECT * FROM {table}")).unwrap();
        let columns = statement.column_count();
        let mut rows = statement.query([]).unwrap();
        while let Some(row) = rows.next().unwrap() {
            for column in 0..columns {
                let value: rusqlite::types::Value = row.get(column).unwrap();
                text.push_str(&format!("{value:?}|"));
            }
            text.push('\n');
        }
    }
    text
}

#[test]
fn the_database_and_its_log_hold_no_secret() {
    let env = Env::new().start();
    let mut secrets = vec![env.enroll("alice")];
    secrets.extend(import(&env, 50));
    // A pending enrollment: bob is shown a QR code at login and goes away.
    assert!(env.ctl(&["enforce", "bob", "on"], "").success);
    let mut login = env.login("bob").drive();
    let shown = login.prompt();
    let pending = shown
        .iter()
        .find_map(|line| {
            line.split_once("by hand: ")
                .map(|(_, s)| s.replace(' ', ""))
        })
        .expect("the secret shown");
    drop(login);
    secrets.push(pending);
    assert_eq!(sealed_with(&env).len(), 52);
    assert!(sealed_with(&env).iter().all(|key| *key == Some(1)));
    // While mfad runs, with its log as it is, and after it stopped.
    assert_no_secret(&database_files(&env), &secrets);
    // The secrets still work.
    env.login("alice")
        .answer(&env.fresh_code("alice"))
        .run()
        .expect("PAM_SUCCESS");
    env.stop_daemon();
    assert_no_secret(&database_files(&env), &secrets);
}

#[test]
fn mfad_refuses_to_start_without_its_keys_or_with_others_and_changes_nothing() {
    let env = Env::new().start();
    env.enroll("alice");
    env.stop_daemon();
    let before = content(&env);

    let missing = env.dir().join("no-such.key");
    let said = refused(&env, &missing);
    assert!(
        said.contains(&format!(
            "no sealing key: {} does not exist",
            missing.display()
        )) && said.contains("mfad --new-key"),
        "{said}"
    );
    // Another key under the same number.
    let other = env.dir().join("other.key");
    new_key(&other);
    let said = refused(&env, &other);
    assert!(
        said.contains("its key 1 is not the key 1 the stored secrets were sealed with"),
        "{said}"
    );
    // A newer key without the one the secrets are sealed with.
    let text = std::fs::read_to_string(env.sealing_key_file()).unwrap();
    let newer = env.dir().join("newer.key");
    std::fs::copy(env.sealing_key_file(), &newer).unwrap();
    new_key(&newer);
    let only_newer: String = std::fs::read_to_string(&newer)
        .unwrap()
        .lines()
        .filter(|line| !text.contains(*line))
        .map(|line| format!("{line}\n"))
        .collect();
    std::fs::write(&newer, only_newer).unwrap();
    let said = refused(&env, &newer);
    assert!(
        said.contains("secrets are sealed with key 1, which it does not hold"),
        "{said}"
    );
    // A key file others may read.
    let open = env.dir().join("open.key");
    std::fs::copy(env.sealing_key_file(), &open).unwrap();
    std::fs::set_permissions(&open, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let said = refused(&env, &open);
    assert!(said.contains("readable by no one else"), "{said}");
    // A damaged line.
    let damaged = env.dir().join("damaged.key");
    std::fs::copy(env.sealing_key_file(), &damaged).unwrap();
    std::fs::write(&damaged, "1 not-hex\n").unwrap();
    let said = refused(&env, &damaged);
    assert!(
        said.contains("line 1: the key must be 64 hexadecimal digits"),
        "{said}"
    );

    // A key file in a directory another user owns (who could put a file of theirs there).
    let theirs = env.dir().join("theirs");
    std::fs::create_dir(&theirs).unwrap();
    std::fs::copy(env.sealing_key_file(), theirs.join("sealing.key")).unwrap();
    std::os::unix::fs::chown(&theirs, Some(1000), Some(1000)).unwrap();
    let said = refused(&env, &theirs.join("sealing.key"));
    assert!(
        said.contains(&theirs.display().to_string()) && said.contains("owned by uid 1000"),
        "{said}"
    );

    assert_eq!(content(&env), before, "a refused start changed the store");
    env.start_daemon();
    env.login("alice")
        .answer(&env.fresh_code("alice"))
        .run()
        .expect("PAM_SUCCESS");
}

#[test]
fn a_store_written_before_sealing_is_sealed_at_the_first_start() {
    let env = Env::new().start();
    let alice = env.enroll("alice");
    let secrets = import(&env, 20);
    env.stop_daemon();
    // As a store written before secrets were sealed holds them: in the clear, no key named.
    let db = database(&env);
    let rows: Vec<(i64, String)> = {
        let mut statement = db.prepare("SELECT id, username FROM enrollments").unwrap();
        let rows = statement
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
            .unwrap();
        rows.map(Result::unwrap).collect()
    };
    for (id, user) in rows {
        let secret = if user == "alice" {
            alice.clone()
        } else {
            secrets[user[1..].parse::<usize>().unwrap()].clone()
        };
        let raw = raw(&secret);
        db.execute(
            "UPDATE enrollments SET secret = ?1, sealed_with = NULL WHERE id = ?2",
            rusqlite::params![raw, id],
        )
        .unwrap();
    }
    drop(db);
    env.start_daemon();
    assert!(
        env.daemon_log().contains("; 21 sealed with it now"),
        "{}",
        env.daemon_log()
    );
    assert!(sealed_with(&env).iter().all(|key| *key == Some(1)));
    let mut all = secrets.clone();
    all.push(alice);
    assert_no_secret(&database_files(&env), &all);
    env.login("alice")
        .answer(&env.fresh_code("alice"))
        .run()
        .expect("PAM_SUCCESS");
    let step = current_step();
    env.login("u7")
        .answer(&code_at(&secrets[7], step))
        .run()
        .expect("PAM_SUCCESS");
}

#[test]
fn a_new_key_reseals_every_secret_even_across_a_kill() {
    let env = Env::new().start();
    let secrets = import(&env, 20_000);
    let said = new_key(&env.sealing_key_file());
    assert!(said.contains("key 2 added to"), "{said}");
    // mfactl reseal, and mfad killed once some secrets but not all are sealed with key 2.
    let mut reseal = Command::new(built("mfactl"))
        .args(["--bus", &env.address, "reseal"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let db = database(&env);
    let start = Instant::now();
    let counted = loop {
        let count: i64 = db
            .query_row(
                "SELECT count(*) FROM enrollments WHERE sealed_with = 2",
                [],
                |row| row.get(0),
            )
            .unwrap_or(0);
        if count > 0 {
            break count;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "nothing was resealed"
        );
    };
    // SIGKILL, as kill -9.
    env.stop_daemon();
    let _ = reseal.kill();
    let _ = reseal.wait();
    let halfway: i64 = db
        .query_row(
            "SELECT count(*) FROM enrollments WHERE sealed_with = 2",
            [],
            |row| row.get(0),
        )
        .unwrap();
    drop(db);
    assert!(
        (counted..20_000).contains(&halfway),
        "the kill came after the whole job ({halfway})"
    );
    // Users log in in between, their secrets under either key.
    env.start_daemon();
    assert!(
        env.daemon_log()
            .contains(&format!("; {} sealed with it now", 20_000 - halfway)),
        "{}",
        env.daemon_log()
    );
    assert!(sealed_with(&env).iter().all(|key| *key == Some(2)));
    let step = current_step();
    for user in [0, 9_999, 19_999] {
        env.login(&format!("u{user}"))
            .answer(&code_at(&secrets[user], step))
            .run()
            .expect("PAM_SUCCESS");
    }
    // The old key may go now: mfad starts with key 2 alone.
    let text = std::fs::read_to_string(env.sealing_key_file()).unwrap();
    let key_2: String = text
        .lines()
        .filter(|line| line.starts_with("2 "))
        .map(|line| format!("{line}\n"))
        .collect();
    std::fs::write(env.sealing_key_file(), key_2).unwrap();
    env.stop_daemon();
    env.start_daemon();
    env.login("u5")
        .answer(&code_at(&secrets[5], step + 1))
        .run()
        .expect("PAM_SUCCESS");
    // mfactl reseal with nothing left to do says so.
    let out = env.ctl(&["reseal"], "");
    assert!(out.success, "{}", out.stderr);
    assert!(
        out.stdout.contains("every secret is sealed with key 2"),
        "{}",
        out.stdout
    );
}
