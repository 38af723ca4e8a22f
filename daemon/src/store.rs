//! The SQLite store: enrollments, enforcement settings.
//!
//! Every state change is one statement or one transaction, so a crash leaves either the old or
//! the new state. The replay check-and-consume is a single conditional `UPDATE`, atomic against
//! concurrent logins.

use std::fs::{self, DirBuilder, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use pam_mfa_config::Algorithm;
use rusqlite::{Connection, OptionalExtension, params};

use crate::totp::{Params, Secret};

/// File name of the database inside the state directory.
pub const DB_FILE: &str = "mfad.sqlite3";

/// Migrations, applied in order; `PRAGMA user_version` records how many ran.
const MIGRATIONS: &[&str] = &[
    // 1: enrollments and enforcement.
    "CREATE TABLE enrollments (
        user TEXT PRIMARY KEY NOT NULL,
        secret BLOB NOT NULL,
        algorithm TEXT NOT NULL,
        digits INTEGER NOT NULL,
        period INTEGER NOT NULL,
        active INTEGER NOT NULL,
        created INTEGER NOT NULL,
        confirmed INTEGER,
        last_step INTEGER,
        last_used INTEGER
    ) STRICT;
    CREATE TABLE user_settings (
        user TEXT PRIMARY KEY NOT NULL,
        enforced INTEGER NOT NULL
    ) STRICT;
    CREATE TABLE settings (
        key TEXT PRIMARY KEY NOT NULL,
        value TEXT NOT NULL
    ) STRICT;",
];

const GLOBAL_ENFORCEMENT: &str = "enforce_all_users";

#[derive(Debug)]
pub struct StoreError(String);

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StoreError {}

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> Self {
        StoreError(format!("state database error: {error}"))
    }
}

type Result<T> = std::result::Result<T, StoreError>;

/// An enrollment as stored.
#[derive(Debug, Clone)]
pub struct Enrollment {
    pub secret: Secret,
    pub params: Params,
    /// Confirmed with a code; only active enrollments count at login.
    pub active: bool,
    pub confirmed: Option<i64>,
    pub last_used: Option<i64>,
}

pub struct Store {
    path: PathBuf,
    connection: Mutex<Connection>,
}

impl Store {
    /// Opens (creating if needed) the store in `dir`: the directory mode 0700, the files 0600.
    pub fn open(dir: &Path) -> Result<Store> {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|error| StoreError(format!("cannot create {}: {error}", dir.display())))?;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(|error| {
            StoreError(format!(
                "cannot set mode 0700 on {}: {error}",
                dir.display()
            ))
        })?;
        let path = dir.join(DB_FILE);
        // Create the file ourselves so it is never world-readable, even for an instant.
        OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&path)
            .map_err(|error| StoreError(format!("cannot open {}: {error}", path.display())))?;
        let connection = Connection::open(&path)?;
        connection.busy_timeout(std::time::Duration::from_secs(5))?;
        connection.pragma_update(None, "journal_mode", "WAL")?;
        connection.pragma_update(None, "synchronous", "FULL")?;
        // Checkpoints run on their own thread (`spawn_checkpointer`), not inside the commit of
        // whichever login happens to cross the threshold.
        connection.pragma_update(None, "wal_autocheckpoint", 0)?;
        let store = Store {
            path,
            connection: Mutex::new(connection),
        };
        store.migrate()?;
        store.restrict_file_modes()?;
        Ok(store)
    }

    /// Copies committed pages from the write-ahead log into the database every `interval`, on
    /// a thread with its own connection, so that logins never pay for a checkpoint. A PASSIVE
    /// checkpoint waits for no one: frames a reader still needs stay for the next round.
    pub fn spawn_checkpointer(&self, interval: std::time::Duration) -> Result<()> {
        let connection = Connection::open(&self.path)?;
        connection.busy_timeout(std::time::Duration::from_secs(5))?;
        std::thread::Builder::new()
            .name("checkpointer".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(interval);
                    if let Err(error) =
                        connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
                    {
                        crate::log::warning(&format!("write-ahead log checkpoint failed: {error}"));
                    }
                }
            })
            .map_err(|error| StoreError(format!("cannot start the checkpoint thread: {error}")))?;
        Ok(())
    }

    #[cfg(test)]
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave a half-done change: every change is a
        // transaction SQLite rolls back. So the connection is safe to use after poisoning.
        self.connection
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn migrate(&self) -> Result<()> {
        let mut connection = self.lock();
        let version: i64 = connection.pragma_query_value(None, "user_version", |row| row.get(0))?;
        let version = usize::try_from(version).unwrap_or(usize::MAX);
        if version > MIGRATIONS.len() {
            return Err(StoreError(format!(
                "{} was written by a newer mfad (schema {version}, this one knows {}): \
                 upgrade mfad or restore a backup",
                self.path.display(),
                MIGRATIONS.len()
            )));
        }
        for (index, migration) in MIGRATIONS.iter().enumerate().skip(version) {
            let transaction = connection.transaction()?;
            transaction.execute_batch(migration)?;
            transaction.pragma_update(None, "user_version", (index + 1) as i64)?;
            transaction.commit()?;
        }
        Ok(())
    }

    /// The WAL and shared-memory files SQLite creates inherit the process umask; tighten them.
    fn restrict_file_modes(&self) -> Result<()> {
        for suffix in ["", "-wal", "-shm"] {
            let mut name = self.path.clone().into_os_string();
            name.push(suffix);
            let path = PathBuf::from(name);
            if path.exists() {
                fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).map_err(|error| {
                    StoreError(format!(
                        "cannot set mode 0600 on {}: {error}",
                        path.display()
                    ))
                })?;
            }
        }
        Ok(())
    }

    pub fn enrollment(&self, user: &str) -> Result<Option<Enrollment>> {
        let connection = self.lock();
        read_enrollment(&connection, user)
    }

    /// Stores a pending enrollment, replacing an earlier pending one. Fails with `Ok(false)` if
    /// the user already has an active enrollment.
    pub fn put_pending(
        &self,
        user: &str,
        secret: &Secret,
        params: Params,
        now: i64,
    ) -> Result<bool> {
        let connection = self.lock();
        let changed = connection.execute(
            "INSERT INTO enrollments (user, secret, algorithm, digits, period, active, created)
             VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6)
             ON CONFLICT (user) DO UPDATE SET
                secret = excluded.secret, algorithm = excluded.algorithm,
                digits = excluded.digits, period = excluded.period, created = excluded.created
             WHERE active = 0",
            params![
                user,
                secret.as_bytes(),
                params.algorithm.name(),
                params.digits,
                params.period,
                now
            ],
        )?;
        Ok(changed == 1)
    }

    /// Adds active enrollments in one transaction: all or none. A user who already has an active
    /// enrollment stops the import; that user's name is returned in `Ok(Err(..))`.
    pub fn import(
        &self,
        entries: &[(String, Secret)],
        params: Params,
        now: i64,
    ) -> Result<std::result::Result<usize, String>> {
        let mut connection = self.lock();
        let transaction = connection.transaction()?;
        {
            let mut insert = transaction.prepare(
                "INSERT INTO enrollments
                    (user, secret, algorithm, digits, period, active, created, confirmed)
                 VALUES (?1, ?2, ?3, ?4, ?5, 1, ?6, ?6)
                 ON CONFLICT (user) DO UPDATE SET
                    secret = excluded.secret, algorithm = excluded.algorithm,
                    digits = excluded.digits, period = excluded.period, active = 1,
                    created = excluded.created, confirmed = excluded.confirmed,
                    last_step = NULL, last_used = NULL
                 WHERE active = 0",
            )?;
            for (user, secret) in entries {
                let changed = insert.execute(params![
                    user,
                    secret.as_bytes(),
                    params.algorithm.name(),
                    params.digits,
                    params.period,
                    now
                ])?;
                if changed != 1 {
                    return Ok(Err(user.clone()));
                }
            }
        }
        transaction.commit()?;
        Ok(Ok(entries.len()))
    }

    /// Activates a pending enrollment whose code for `step` was just verified.
    /// Only the enrollment whose `secret` verified the code is changed, so an enrollment
    /// replaced meanwhile is left alone.
    pub fn activate(&self, user: &str, secret: &Secret, step: u64, now: i64) -> Result<bool> {
        let connection = self.lock();
        let changed = connection.execute(
            "UPDATE enrollments SET active = 1, confirmed = ?2, last_step = ?3
             WHERE user = ?1 AND active = 0 AND secret = ?4",
            params![user, now, step as i64, secret.as_bytes()],
        )?;
        Ok(changed == 1)
    }

    /// Records that the code of `step` was used, if no code of that step or a later one was
    /// used before. Returns false for a replay. Atomic: of concurrent calls with the same step,
    /// exactly one returns true. Only the enrollment whose `secret` verified the code counts:
    /// one replaced meanwhile (reset and enrolled again) is left alone.
    pub fn consume_step(&self, user: &str, secret: &Secret, step: u64, now: i64) -> Result<bool> {
        let connection = self.lock();
        let changed = connection.execute(
            "UPDATE enrollments SET last_step = ?2, last_used = ?3
             WHERE user = ?1 AND active = 1 AND (last_step IS NULL OR last_step < ?2)
                AND secret = ?4",
            params![user, step as i64, now, secret.as_bytes()],
        )?;
        Ok(changed == 1)
    }

    /// Removes the user's enrollment, pending or active. Returns whether there was one.
    pub fn remove_enrollment(&self, user: &str) -> Result<bool> {
        let connection = self.lock();
        let changed =
            connection.execute("DELETE FROM enrollments WHERE user = ?1", params![user])?;
        Ok(changed == 1)
    }

    pub fn global_enforcement(&self) -> Result<Option<bool>> {
        let connection = self.lock();
        let value: Option<String> = connection
            .query_row(
                "SELECT value FROM settings WHERE key = ?1",
                params![GLOBAL_ENFORCEMENT],
                |row| row.get(0),
            )
            .optional()?;
        Ok(value.map(|value| value == "on"))
    }

    pub fn set_global_enforcement(&self, on: bool) -> Result<()> {
        let connection = self.lock();
        connection.execute(
            "INSERT INTO settings (key, value) VALUES (?1, ?2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            params![GLOBAL_ENFORCEMENT, if on { "on" } else { "off" }],
        )?;
        Ok(())
    }

    pub fn user_enforcement(&self, user: &str) -> Result<Option<bool>> {
        let connection = self.lock();
        Ok(connection
            .query_row(
                "SELECT enforced FROM user_settings WHERE user = ?1",
                params![user],
                |row| row.get(0),
            )
            .optional()?)
    }

    pub fn set_user_enforcement(&self, user: &str, on: bool) -> Result<()> {
        let connection = self.lock();
        connection.execute(
            "INSERT INTO user_settings (user, enforced) VALUES (?1, ?2)
             ON CONFLICT (user) DO UPDATE SET enforced = excluded.enforced",
            params![user, on],
        )?;
        Ok(())
    }

    /// Every user with an enrollment or a setting, sorted by name.
    pub fn users(&self) -> Result<Vec<String>> {
        let connection = self.lock();
        let names = connection
            .prepare(
                "SELECT user FROM enrollments UNION SELECT user FROM user_settings ORDER BY 1",
            )?
            .query_map([], |row| row.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(names)
    }
}

fn read_enrollment(connection: &Connection, user: &str) -> Result<Option<Enrollment>> {
    let row = connection
        .query_row(
            "SELECT secret, algorithm, digits, period, active, confirmed, last_used
             FROM enrollments WHERE user = ?1",
            params![user],
            |row| {
                Ok((
                    row.get::<_, Vec<u8>>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, u32>(2)?,
                    row.get::<_, u32>(3)?,
                    row.get::<_, bool>(4)?,
                    row.get::<_, Option<i64>>(5)?,
                    row.get::<_, Option<i64>>(6)?,
                ))
            },
        )
        .optional()?;
    let Some((secret, algorithm, digits, period, active, confirmed, last_used)) = row else {
        return Ok(None);
    };
    let algorithm = Algorithm::from_name(&algorithm).ok_or_else(|| {
        StoreError(format!(
            "the enrollment of {user} names an unknown algorithm {algorithm:?}"
        ))
    })?;
    Ok(Some(Enrollment {
        secret: Secret::from_bytes(secret),
        params: Params {
            algorithm,
            digits,
            period,
        },
        active,
        confirmed,
        last_used,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("mfad-store-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    fn params() -> Params {
        Params {
            algorithm: Algorithm::Sha1,
            digits: 6,
            period: 30,
        }
    }

    #[test]
    fn files_are_private() {
        let dir = temp_dir("modes");
        let store = Store::open(&dir.join("state")).unwrap();
        let mode = |path: &Path| fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir.join("state")), 0o700);
        assert_eq!(mode(store.path()), 0o600);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn enrollment_lifecycle_and_replay() {
        let dir = temp_dir("lifecycle");
        let store = Store::open(&dir).unwrap();
        let secret = Secret::from_bytes(b"12345678901234567890".to_vec());
        assert!(store.put_pending("alice", &secret, params(), 100).unwrap());
        assert!(!store.enrollment("alice").unwrap().unwrap().active);
        assert!(
            !store.consume_step("alice", &secret, 5, 100).unwrap(),
            "pending cannot log in"
        );
        assert!(store.activate("alice", &secret, 5, 101).unwrap());
        assert!(
            !store.put_pending("alice", &secret, params(), 102).unwrap(),
            "active is kept"
        );
        assert!(
            !store.consume_step("alice", &secret, 5, 103).unwrap(),
            "confirm code is spent"
        );
        assert!(store.consume_step("alice", &secret, 6, 104).unwrap());
        assert!(!store.consume_step("alice", &secret, 6, 105).unwrap());
        let enrollment = store.enrollment("alice").unwrap().unwrap();
        assert!(
            !store.consume_step("alice", &secret, 5, 106).unwrap(),
            "older steps stay spent"
        );
        assert_eq!(enrollment.last_used, Some(104));
        assert!(store.remove_enrollment("alice").unwrap());
        assert!(store.enrollment("alice").unwrap().is_none());
        drop(store);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn import_is_all_or_nothing() {
        let dir = temp_dir("import");
        let store = Store::open(&dir).unwrap();
        let secret = Secret::from_bytes(b"12345678901234567890".to_vec());
        store.put_pending("carol", &secret, params(), 1).unwrap();
        let batch = |names: &[&str]| -> Vec<(String, Secret)> {
            names
                .iter()
                .map(|n| (n.to_string(), secret.clone()))
                .collect()
        };
        assert_eq!(
            store
                .import(&batch(&["alice", "carol"]), params(), 2)
                .unwrap(),
            Ok(2)
        );
        assert!(
            store.enrollment("carol").unwrap().unwrap().active,
            "pending is replaced"
        );
        assert!(store.consume_step("alice", &secret, 1, 3).unwrap());
        let refused = store
            .import(&batch(&["bob", "alice"]), params(), 4)
            .unwrap();
        assert_eq!(refused, Err("alice".to_owned()));
        assert!(
            store.enrollment("bob").unwrap().is_none(),
            "nothing of a refused import stays"
        );
        drop(store);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn settings_persist_across_reopen() {
        let dir = temp_dir("reopen");
        let store = Store::open(&dir).unwrap();
        assert_eq!(store.global_enforcement().unwrap(), None);
        store.set_global_enforcement(true).unwrap();
        store.set_user_enforcement("bob", true).unwrap();
        drop(store);
        let store = Store::open(&dir).unwrap();
        assert_eq!(store.global_enforcement().unwrap(), Some(true));
        assert_eq!(store.user_enforcement("bob").unwrap(), Some(true));
        assert_eq!(store.user_enforcement("carol").unwrap(), None);
        let users = store.users().unwrap();
        assert_eq!(users, ["bob"]);
        drop(store);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_checkpointer_empties_the_log() {
        let dir = temp_dir("checkpoint");
        let store = Store::open(&dir).unwrap();
        let secret = Secret::from_bytes(b"12345678901234567890".to_vec());
        for index in 0..50 {
            store
                .put_pending(&format!("user{index}"), &secret, params(), 1)
                .unwrap();
        }
        let wal = dir.join(format!("{DB_FILE}-wal"));
        let frames = |store: &Store| -> (i64, i64) {
            store
                .lock()
                .query_row("PRAGMA wal_checkpoint(NOOP)", [], |row| {
                    Ok((row.get(1)?, row.get(2)?))
                })
                .unwrap()
        };
        let (logged, done) = frames(&store);
        assert!(
            logged >= 50 && done == 0,
            "no checkpoint runs in commits: {logged} {done}"
        );
        store
            .spawn_checkpointer(std::time::Duration::from_millis(10))
            .unwrap();
        let start = std::time::Instant::now();
        while frames(&store).1 < logged {
            assert!(start.elapsed().as_secs() < 10, "no checkpoint");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(wal.exists());
        drop(store);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = temp_dir("newer");
        drop(Store::open(&dir).unwrap());
        let connection = Connection::open(dir.join(DB_FILE)).unwrap();
        connection.pragma_update(None, "user_version", 99).unwrap();
        drop(connection);
        let error = Store::open(&dir).err().unwrap().to_string();
        assert!(error.contains("newer mfad"), "{error}");
        fs::remove_dir_all(&dir).unwrap();
    }
}
