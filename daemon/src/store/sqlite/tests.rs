//! The SQLite backend on real files in temporary directories.

use pam_mfa_config::Algorithm;

use super::*;
use crate::audit::Event;
use crate::codes::totp::{Params, Secret};
use crate::store::{EnrollmentId, Imported, Store, UserEnrollment};
use crate::users::UserName;

pub fn temp_dir(name: &str) -> PathBuf {
    static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "mfad-store-{name}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
    ));
    let _ = fs::remove_dir_all(&dir);
    dir
}

fn open_backend(dir: &Path) -> Arc<SqliteBackend> {
    Arc::new(SqliteBackend::open(dir, |problem| panic!("{problem}")).unwrap())
}

fn open(dir: &Path) -> Store {
    Store::new(open_backend(dir), String::new(), crate::store::test_keys())
}

#[test]
fn concurrent_changes_share_commits_and_each_is_kept() {
    let dir = temp_dir("group-commit");
    let backend = open_backend(&dir);
    let store = Arc::new(Store::new(
        backend.clone(),
        String::new(),
        crate::store::test_keys(),
    ));
    let secret = Secret::from_bytes(b"12345678901234567890".to_vec());
    let params = Params {
        kind: crate::codes::totp::Kind::Totp,
        algorithm: Algorithm::Sha1,
        digits: 6,
        period: 30,
    };
    let users: Vec<UserName> = (0..64)
        .map(|index| UserName::parse(&format!("user{index}")).unwrap())
        .collect();
    let entries: Vec<Imported> = users
        .iter()
        .map(|user| Imported {
            user: user.clone(),
            last_step: None,
            secret: secret.clone(),
            params,
            recovery: Vec::new(),
        })
        .collect();
    let imported = Event::EnrollmentsImported { count: 64 };
    assert_eq!(store.import(&entries, 1, &imported).unwrap(), Ok(64));
    let ids: Vec<EnrollmentId> = users
        .iter()
        .map(|user| store.enrollments(user).unwrap().active.unwrap().id)
        .collect();
    let before = backend.commits();
    let threads: Vec<_> = (0..16)
        .map(|thread| {
            let (store, users, ids) = (store.clone(), users.clone(), ids.clone());
            std::thread::spawn(move || {
                (thread * 4..thread * 4 + 4)
                    .filter(|&index| {
                        let event = Event::EnrollmentsImported { count: 0 };
                        let active = UserEnrollment {
                            user: &users[index],
                            id: ids[index],
                        };
                        store.consume_step(active, 7, 2, None, &event).unwrap()
                    })
                    .count()
            })
        })
        .collect();
    let spent: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(spent, 64, "every step spent once");
    let commits = backend.commits() - before;
    assert!(
        commits < 64,
        "64 changes from 16 threads took {commits} commits"
    );
    // What was acknowledged is in the database for the next connection to see.
    drop(store);
    drop(backend);
    let store = open(&dir);
    let event = Event::EnrollmentsImported { count: 0 };
    for (user, id) in users.iter().zip(&ids) {
        let active = UserEnrollment { user, id: *id };
        assert!(!store.consume_step(active, 7, 3, None, &event).unwrap());
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_contract_holds() {
    super::super::contract::run_all(|| {
        let dir = temp_dir("contract");
        let store = open(&dir);
        (store, move || {
            let _ = fs::remove_dir_all(&dir);
        })
    });
}

#[test]
fn files_are_private() {
    let dir = temp_dir("modes");
    let backend = open_backend(&dir.join("state"));
    let mode = |path: &Path| fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir.join("state")), 0o700);
    assert_eq!(mode(backend.path()), 0o600);
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_newer_schema_is_refused() {
    let dir = temp_dir("newer");
    drop(open_backend(&dir));
    let connection = Connection::open(dir.join(DB_FILE)).unwrap();
    connection.pragma_update(None, "user_version", 99).unwrap();
    drop(connection);
    let error = SqliteBackend::open(&dir, |_| {}).err().unwrap().to_string();
    assert!(error.contains("newer mfad"), "{error}");
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_version_1_database_is_migrated_with_its_enrollments() {
    let dir = temp_dir("migrate");
    fs::create_dir_all(&dir).unwrap();
    let connection = Connection::open(dir.join(DB_FILE)).unwrap();
    connection.execute_batch(MIGRATIONS[0]).unwrap();
    connection
        .execute(
            "INSERT INTO enrollments (user, secret, algorithm, digits, period, active,
             created, confirmed, last_step) VALUES ('alice', x'3132', 'SHA1', 6, 30, 1, 1, 1, 7)",
            [],
        )
        .unwrap();
    connection.pragma_update(None, "user_version", 1).unwrap();
    drop(connection);
    let store = open(&dir);
    let alice = UserName::parse("alice").unwrap();
    let enrollment = store.enrollments(&alice).unwrap().active.unwrap();
    assert!(enrollment.active);
    assert_eq!(enrollment.secret.as_bytes(), b"12");
    let event = Event::EnrollmentsImported { count: 0 };
    let active = UserEnrollment {
        user: &alice,
        id: enrollment.id,
    };
    assert!(
        !store.consume_step(active, 7, 2, None, &event).unwrap(),
        "the spent step stays spent"
    );
    assert!(store.consume_step(active, 8, 2, None, &event).unwrap());
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn audit_rows_keep_their_numbers_and_order_when_the_trail_drops_autoincrement() {
    let dir = temp_dir("migrate-audit");
    fs::create_dir_all(&dir).unwrap();
    let connection = Connection::open(dir.join(DB_FILE)).unwrap();
    for migration in &MIGRATIONS[..8] {
        connection.execute_batch(migration).unwrap();
    }
    connection
        .execute_batch(
            "INSERT INTO audit (time, kind, username, line) VALUES
                (1, 'login-allowed', 'alice', 'first'), (2, 'login-allowed', 'bob', 'second');",
        )
        .unwrap();
    connection.pragma_update(None, "user_version", 8).unwrap();
    drop(connection);
    let store = open(&dir);
    store
        .record(3, &Event::EnrollmentsImported { count: 1 })
        .unwrap();
    let lines: Vec<String> = store
        .audit_tail(10)
        .unwrap()
        .into_iter()
        .map(|row| row.line)
        .collect();
    assert_eq!(lines[..2], ["first", "second"]);
    assert_eq!(lines.len(), 3);
    let backend = open_backend(&dir);
    drop(store);
    let connection = backend.reader(Lane::Login);
    let ids: Vec<i64> = connection
        .prepare("SELECT id FROM audit ORDER BY id")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    assert_eq!(ids, [1, 2, 3]);
    let sequences: i64 = connection
        .query_row(
            "SELECT count(*) FROM sqlite_sequence WHERE name LIKE 'audit%'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(
        sequences, 0,
        "the trail has no AUTOINCREMENT sequence any more"
    );
    drop(connection);
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_checkpointer_empties_the_log() {
    let dir = temp_dir("checkpoint");
    let backend = open_backend(&dir);
    let store = Store::new(backend.clone(), String::new(), crate::store::test_keys());
    let secret = Secret::from_bytes(b"12345678901234567890".to_vec());
    let params = Params {
        kind: crate::codes::totp::Kind::Totp,
        algorithm: Algorithm::Sha1,
        digits: 6,
        period: 30,
    };
    let event = Event::EnrollmentsImported { count: 0 };
    for index in 0..50 {
        let user = UserName::parse(&format!("user{index}")).unwrap();
        store
            .put_pending(&user, &secret, params, 1, &event)
            .unwrap();
    }
    let frames = |backend: &SqliteBackend| -> (i64, i64) {
        backend
            .reader(Lane::Login)
            .query_row("PRAGMA wal_checkpoint(NOOP)", [], |row| {
                Ok((row.get(1)?, row.get(2)?))
            })
            .unwrap()
    };
    let (logged, done) = frames(&backend);
    assert!(
        logged >= 50 && done == 0,
        "no checkpoint runs in commits: {logged} {done}"
    );
    backend
        .spawn_checkpointer(Duration::from_millis(10))
        .unwrap();
    let start = std::time::Instant::now();
    while frames(&backend).1 < logged {
        assert!(start.elapsed().as_secs() < 10, "no checkpoint");
        std::thread::sleep(Duration::from_millis(10));
    }
    drop(store);
    drop(backend);
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn unsafe_state_directories_and_files_are_refused() {
    let dir = temp_dir("unsafe");
    fs::create_dir_all(&dir).unwrap();
    // Writable by others, not sticky.
    let open_dir = dir.join("open");
    fs::create_dir(&open_dir).unwrap();
    fs::set_permissions(&open_dir, fs::Permissions::from_mode(0o777)).unwrap();
    let error = SqliteBackend::open(&open_dir.join("state"), |_| {})
        .err()
        .unwrap()
        .to_string();
    assert!(error.contains("writable by other users"), "{error}");
    assert!(error.contains(&open_dir.display().to_string()), "{error}");
    // Owned by another user.
    let theirs = dir.join("theirs");
    fs::create_dir(&theirs).unwrap();
    nix::unistd::chown(&theirs, Some(nix::unistd::Uid::from_raw(1000)), None).unwrap();
    let error = SqliteBackend::open(&theirs.join("state"), |_| {})
        .err()
        .unwrap()
        .to_string();
    assert!(error.contains("owned by uid 1000"), "{error}");
    // The state directory itself a link.
    let real = dir.join("real");
    fs::create_dir(&real).unwrap();
    std::os::unix::fs::symlink(&real, dir.join("link")).unwrap();
    let error = SqliteBackend::open(&dir.join("link"), |_| {})
        .err()
        .unwrap()
        .to_string();
    assert!(error.contains("is a symbolic link"), "{error}");
    // The database file a link to a file elsewhere.
    let state = dir.join("state");
    fs::create_dir(&state).unwrap();
    fs::write(dir.join("elsewhere"), b"").unwrap();
    std::os::unix::fs::symlink(dir.join("elsewhere"), state.join(DB_FILE)).unwrap();
    let error = SqliteBackend::open(&state, |_| {})
        .err()
        .unwrap()
        .to_string();
    assert!(error.contains("is a symbolic link"), "{error}");
    assert!(error.contains(DB_FILE), "{error}");
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn parameters_are_bound_by_their_numbers_whatever_their_order() {
    let connection = Connection::open_in_memory().unwrap();
    let tx = SqliteTx {
        connection: &connection,
        purge: &AtomicBool::new(false),
    };
    let mut row = tx
        .query_one(
            "SELECT $3 - $1, $2",
            &[Value::Int(1), Value::Text("two"), Value::Int(10)],
        )
        .unwrap();
    assert_eq!(row.int(0).unwrap(), 9);
    assert_eq!(row.text(1).unwrap(), "two");
    let short = tx.query("SELECT $1 + $2", &[Value::Int(1)]).err().unwrap();
    assert!(short.to_string().contains("takes 2 values"), "{short}");
    // Many values (an import's rows), out of order too.
    let numbers: Vec<Value<'_>> = (1..=200).map(Value::Int).collect();
    let sql = format!(
        "SELECT $200 - $1, {}",
        (2..200)
            .map(|n| format!("${n}"))
            .collect::<Vec<_>>()
            .join(" + ")
    );
    let mut row = tx.query_one(&sql, &numbers).unwrap();
    assert_eq!(row.int(0).unwrap(), 199);
    assert_eq!(row.int(1).unwrap(), (2..200).sum::<i64>());
}

/// An audit page reads a range of rows, through the index on the user's name when it is about
/// one user: never the whole trail, whoever asks and however long the trail is.
#[test]
fn audit_pages_never_scan_the_whole_trail() {
    use crate::store::records::{AUDIT_EXAMINED, AUDIT_PAGE};
    let dir = temp_dir("audit-plan");
    let backend = open_backend(&dir);
    let connection = backend.reader(Lane::Listing);
    let plan = |sql: &str| -> Vec<String> {
        let mut statement = connection
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap();
        let unbound = vec![rusqlite::types::Null; statement.parameter_count()];
        let steps = statement.query_map(rusqlite::params_from_iter(unbound), |row| {
            row.get::<_, String>(3)
        });
        steps.unwrap().map(|step| step.unwrap()).collect()
    };
    for (index, sql) in AUDIT_EXAMINED.iter().chain(&AUDIT_PAGE).enumerate() {
        let plan = plan(sql);
        let reads: Vec<&String> = plan.iter().filter(|step| step.contains(" audit")).collect();
        assert!(!reads.is_empty(), "{plan:?}");
        for step in reads {
            assert!(
                step.starts_with("SEARCH audit "),
                "a scan of the trail: {plan:?}"
            );
            if index % 2 == 0 {
                assert!(step.contains("INDEX audit_user"), "{plan:?}");
            }
        }
    }
}
