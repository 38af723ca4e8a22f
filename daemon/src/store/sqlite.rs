//! The embedded SQLite store, the default.
//!
//! One database file in a private state directory, in write-ahead-log mode with
//! `synchronous=FULL`: a change is on disk before the call returns. Checkpoints run on a thread
//! of their own. Deleted content is zeroed (`secure_delete`), and after a secret is removed the
//! log is checkpointed and truncated, so no copy of it stays in either file.

use std::fs::{self, DirBuilder, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use pam_mfa_config::Algorithm;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use super::{
    Attempt, AuditFilter, AuditRow, Enrollment, EnrollmentId, Enrollments, Imported, LockoutRule,
    NextTry, Origin, Proof, RecoveryId, RememberTerms, Remembered, Result, Store, StoreError,
    StoredSwitches, Tried, TryCount,
};
use crate::audit::Event;
use crate::recovery::Hashed;
use crate::totp::{Params, Secret};
use crate::users::UserName;

/// File name of the database inside the state directory.
pub const DB_FILE: &str = "mfad.sqlite3";

/// Databases up to this size are checked in full before mfad serves; larger ones are checked in
/// the background while it serves (see [`Integrity`]).
const CHECK_BEFORE_SERVING: i64 = 16 << 20;

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
    // 2: enrollments get an id that is never reused; names differing only in case are found
    // through an index; the audit trail.
    "CREATE TABLE enrollments_2 (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        user TEXT NOT NULL UNIQUE,
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
    INSERT INTO enrollments_2
        (user, secret, algorithm, digits, period, active, created, confirmed, last_step,
         last_used)
        SELECT user, secret, algorithm, digits, period, active, created, confirmed, last_step,
               last_used
        FROM enrollments ORDER BY user;
    DROP TABLE enrollments;
    ALTER TABLE enrollments_2 RENAME TO enrollments;
    CREATE INDEX enrollments_user_nocase ON enrollments (user COLLATE NOCASE);
    CREATE INDEX user_settings_user_nocase ON user_settings (user COLLATE NOCASE);
    CREATE TABLE audit (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        time INTEGER NOT NULL,
        kind TEXT NOT NULL,
        user TEXT,
        line TEXT NOT NULL
    ) STRICT;",
    // 3: recovery codes, as salted hashes, each belonging to one enrollment.
    "CREATE TABLE recovery_codes (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        enrollment INTEGER NOT NULL,
        salt BLOB NOT NULL,
        hash BLOB NOT NULL,
        used INTEGER
    ) STRICT;
    CREATE INDEX recovery_codes_enrollment ON recovery_codes (enrollment);",
    // 4: a user may have an active enrollment and a pending one (a new phone that replaces the
    // one in use once confirmed). Ids are kept, and so is the id sequence, so none is reused.
    "CREATE TABLE enrollments_4 (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        user TEXT NOT NULL,
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
    INSERT INTO enrollments_4
        (id, user, secret, algorithm, digits, period, active, created, confirmed, last_step,
         last_used)
        SELECT id, user, secret, algorithm, digits, period, active, created, confirmed,
               last_step, last_used
        FROM enrollments ORDER BY id;
    DELETE FROM sqlite_sequence WHERE name = 'enrollments_4';
    INSERT INTO sqlite_sequence (name, seq)
        SELECT 'enrollments_4', seq FROM sqlite_sequence WHERE name = 'enrollments';
    DROP TABLE enrollments;
    ALTER TABLE enrollments_4 RENAME TO enrollments;
    CREATE UNIQUE INDEX enrollments_user ON enrollments (user, active);
    CREATE INDEX enrollments_user_nocase ON enrollments (user COLLATE NOCASE);",
    // 5: tries of codes and locks, per user, kept across restarts.
    "CREATE TABLE lockout (
        user TEXT PRIMARY KEY NOT NULL,
        tries INTEGER NOT NULL,
        since INTEGER NOT NULL,
        locked_until INTEGER NOT NULL,
        locks INTEGER NOT NULL
    ) STRICT;",
    // 6: the audit trail read by user.
    "CREATE INDEX audit_user ON audit (user, id);",
    // 7: remembered logins: the right code of `enrollment` given at `verified` covers logins of
    // the user through `service` from `rhost` while used within the configured time.
    "CREATE TABLE remembered (
        user TEXT NOT NULL,
        service TEXT NOT NULL,
        rhost TEXT NOT NULL,
        enrollment INTEGER NOT NULL,
        verified INTEGER NOT NULL,
        last_seen INTEGER NOT NULL,
        PRIMARY KEY (user, service, rhost)
    ) STRICT;",
];

const GLOBAL_ENFORCEMENT: &str = "enforce_all_users";

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> Self {
        StoreError(format!("state database error: {error}"))
    }
}

/// The outcome of the start-up integrity check, which covers every table and index.
///
/// A damaged index could hide an enrollment: a lookup through it finds nothing, and the login
/// would be treated as one of a user who never enrolled. So while the check runs, "nothing
/// found" waits for its result; rows that are found are used at once.
#[derive(Default)]
struct Integrity {
    state: Mutex<Option<std::result::Result<(), String>>>,
    done: Condvar,
}

impl Integrity {
    fn finish(&self, result: std::result::Result<(), String>) {
        *self.state.lock().unwrap_or_else(|p| p.into_inner()) = Some(result);
        self.done.notify_all();
    }

    fn wait(&self) -> Result<()> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        while state.is_none() {
            state = self.done.wait(state).unwrap_or_else(|p| p.into_inner());
        }
        match state.as_ref() {
            Some(Err(problem)) => Err(StoreError(problem.clone())),
            _ => Ok(()),
        }
    }
}

pub struct SqliteStore {
    path: PathBuf,
    /// Every change, made in shared transactions ([`SqliteStore::write`]).
    writer: Mutex<Writer>,
    /// Callers of [`SqliteStore::write`] waiting for `writer`: while there are some, the open
    /// transaction is left for them to join.
    joining: AtomicUsize,
    /// Signalled when a shared transaction ends.
    ended: Condvar,
    /// Shared transactions committed since the store was opened.
    commits: AtomicU64,
    /// The log must be emptied once the open transaction is committed ([`Self::purge_log`]).
    purge: AtomicBool,
    /// Reads, of what is committed: they never wait for a commit in progress.
    reader: Mutex<Connection>,
    integrity: Arc<Integrity>,
    /// The database's size, in bytes, when the integrity check began in the background.
    checking_in_background: Option<i64>,
}

/// Write-ahead-log frames (pages) past which the checkpointer starts the log over.
const RESTART_FRAMES: i64 = 1000;
/// Bytes the write-ahead log file is cut back to when it starts over after a burst.
const LOG_SIZE_LIMIT: i64 = 16 * 1024 * 1024;

/// Parts one shared transaction takes at most; the part that reaches it commits.
const MAX_BATCH: usize = 64;

/// The write connection and its open shared transaction, if any.
struct Writer {
    connection: Connection,
    batch: Option<Arc<Batch>>,
    /// Parts the open transaction holds.
    parts: usize,
}

/// One shared write transaction.
#[derive(Default)]
struct Batch {
    /// Set when it ends: committed, or why not.
    outcome: OnceLock<std::result::Result<(), String>>,
}

/// Checks that `dir` and every directory above it can be trusted with secrets: owned by root
/// (or by mfad's own user), not writable by others (a root-owned sticky directory such as /tmp
/// is fine: nobody else can rename or remove what mfad created in it), and `dir` not a symlink.
fn check_directories(dir: &Path) -> Result<()> {
    let euid = nix::unistd::geteuid().as_raw();
    let mut path = PathBuf::new();
    let components: Vec<_> = dir.components().collect();
    for (index, component) in components.iter().enumerate() {
        path.push(component);
        let last = index + 1 == components.len();
        let link = match fs::symlink_metadata(&path) {
            Ok(meta) => meta,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(error) => {
                return Err(StoreError(format!(
                    "cannot check {}: {error}",
                    path.display()
                )));
            }
        };
        if link.file_type().is_symlink() {
            if last {
                return Err(StoreError(format!(
                    "the state directory {} is a symbolic link: set state_dir to the real \
                     directory",
                    path.display()
                )));
            }
            if link.uid() != 0 && link.uid() != euid {
                return Err(StoreError(format!(
                    "{} is a symbolic link owned by uid {}: the state directory must be reached \
                     only through root's directories",
                    path.display(),
                    link.uid()
                )));
            }
        }
        let meta = fs::metadata(&path)
            .map_err(|error| StoreError(format!("cannot check {}: {error}", path.display())))?;
        if !meta.is_dir() {
            return Err(StoreError(format!("{} is not a directory", path.display())));
        }
        if meta.uid() != 0 && meta.uid() != euid {
            return Err(StoreError(format!(
                "{} is owned by uid {}: the state directory and every directory above it must \
                 be owned by root",
                path.display(),
                meta.uid()
            )));
        }
        let writable_by_others = meta.mode() & 0o022 != 0;
        let sticky = meta.mode() & 0o1000 != 0 && meta.uid() == 0;
        if writable_by_others && (last || !sticky) {
            return Err(StoreError(format!(
                "{} is writable by other users (mode {:o}): the state directory and every \
                 directory above it must be writable by root only",
                path.display(),
                meta.mode() & 0o7777
            )));
        }
    }
    Ok(())
}

/// Refuses a database file (or its log) that is a symlink, not a regular file, or not owned by
/// mfad's user.
fn check_file(path: &Path) -> Result<()> {
    let euid = nix::unistd::geteuid().as_raw();
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => Err(StoreError(format!(
            "{} is a symbolic link: mfad follows no link for its files; remove it",
            path.display()
        ))),
        Ok(meta) if !meta.is_file() => Err(StoreError(format!(
            "{} is not a regular file",
            path.display()
        ))),
        Ok(meta) if meta.uid() != euid => Err(StoreError(format!(
            "{} is owned by uid {}, not by mfad's user (uid {euid})",
            path.display(),
            meta.uid()
        ))),
        Ok(_) => Ok(()),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(StoreError(format!(
            "cannot check {}: {error}",
            path.display()
        ))),
    }
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn run_integrity_check(connection: &Connection, path: &Path) -> std::result::Result<(), String> {
    let mut statement = connection
        .prepare("PRAGMA integrity_check")
        .map_err(|error| format!("cannot check {}: {error}", path.display()))?;
    let problems: Vec<String> = statement
        .query_map([], |row| row.get::<_, String>(0))
        .and_then(|rows| rows.collect())
        .map_err(|error| format!("{} is damaged: {error}", path.display()))?;
    if problems.len() == 1 && problems[0] == "ok" {
        return Ok(());
    }
    Err(format!(
        "{} is damaged ({}): restore it from a backup, or move it away to start with no \
         enrollments",
        path.display(),
        problems.into_iter().take(3).collect::<Vec<_>>().join("; ")
    ))
}

impl SqliteStore {
    /// Opens (creating if needed) the store in `dir`: the directory mode 0700, the files 0600.
    ///
    /// A small database is checked for damage before this returns; a larger one in the
    /// background, and `on_damage` is called from there if it is damaged.
    pub fn open(dir: &Path, on_damage: impl FnOnce(String) + Send + 'static) -> Result<Self> {
        check_directories(dir)?;
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|error| StoreError(format!("cannot create {}: {error}", dir.display())))?;
        check_directories(dir)?;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(|error| {
            StoreError(format!(
                "cannot set mode 0700 on {}: {error}",
                dir.display()
            ))
        })?;
        let path = dir.join(DB_FILE);
        for suffix in ["", "-wal", "-shm"] {
            check_file(&sibling(&path, suffix))?;
        }
        // Create the file ourselves so it is never world-readable, even for an instant.
        OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .map_err(|error| StoreError(format!("cannot open {}: {error}", path.display())))?;
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_NOFOLLOW;
        let connection = Connection::open_with_flags(&path, flags)?;
        connection.busy_timeout(Duration::from_secs(5))?;
        connection.pragma_update(None, "journal_mode", "WAL")?;
        connection.pragma_update(None, "synchronous", "FULL")?;
        connection.pragma_update(None, "secure_delete", "ON")?;
        // Checkpoints run on their own thread (`spawn_checkpointer`), not inside the commit of
        // whichever login happens to cross the threshold.
        connection.pragma_update(None, "wal_autocheckpoint", 0)?;
        connection.pragma_update(None, "journal_size_limit", LOG_SIZE_LIMIT)?;
        let integrity = Arc::new(Integrity::default());
        let size: i64 = connection.query_row(
            "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()",
            [],
            |row| row.get(0),
        )?;
        let checking_in_background = (size > CHECK_BEFORE_SERVING).then_some(size);
        if checking_in_background.is_none() {
            run_integrity_check(&connection, &path).map_err(StoreError)?;
            integrity.finish(Ok(()));
        } else {
            let checker = Connection::open_with_flags(
                &path,
                OpenFlags::SQLITE_OPEN_READ_ONLY
                    | OpenFlags::SQLITE_OPEN_NO_MUTEX
                    | OpenFlags::SQLITE_OPEN_NOFOLLOW,
            )?;
            let integrity = integrity.clone();
            let checked = path.clone();
            std::thread::Builder::new()
                .name("integrity check".into())
                .spawn(move || {
                    let result = run_integrity_check(&checker, &checked);
                    if let Err(problem) = &result {
                        on_damage(problem.clone());
                    }
                    integrity.finish(result);
                })
                .map_err(|error| {
                    StoreError(format!("cannot start the integrity check: {error}"))
                })?;
        }
        let reader = Connection::open_with_flags(&path, flags)?;
        reader.busy_timeout(Duration::from_secs(5))?;
        let store = SqliteStore {
            path,
            writer: Mutex::new(Writer {
                connection,
                batch: None,
                parts: 0,
            }),
            joining: AtomicUsize::new(0),
            ended: Condvar::new(),
            commits: AtomicU64::new(0),
            purge: AtomicBool::new(false),
            reader: Mutex::new(reader),
            integrity,
            checking_in_background,
        };
        store.migrate()?;
        store.restrict_file_modes()?;
        Ok(store)
    }

    /// Copies committed pages from the write-ahead log into the database every `interval`, on
    /// a thread with its own connection, so that logins never pay for a checkpoint. A PASSIVE
    /// checkpoint waits for no one: frames a reader still needs stay for the next round.
    pub fn spawn_checkpointer(&self, interval: Duration) -> Result<()> {
        let connection = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_NOFOLLOW,
        )?;
        connection.busy_timeout(Duration::from_secs(5))?;
        std::thread::Builder::new()
            .name("checkpointer".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(interval);
                    let frames = |mode: &str| {
                        connection.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |row| {
                            row.get::<_, i64>(1)
                        })
                    };
                    // Under steady logins a passive checkpoint never catches up with the log,
                    // so the log would only grow, and every commit append to it (which costs
                    // a commit about twice what writing over the log's start does). Past a
                    // size, a RESTART checkpoint makes the next commit start the log over; it
                    // holds commits back only while it copies what the passive one left.
                    let checked = frames("PASSIVE").and_then(|log| {
                        if log >= RESTART_FRAMES {
                            frames("RESTART")
                        } else {
                            Ok(log)
                        }
                    });
                    if let Err(error) = checked {
                        crate::log::warning(&format!("write-ahead log checkpoint failed: {error}"));
                    }
                }
            })
            .map_err(|error| StoreError(format!("cannot start the checkpoint thread: {error}")))?;
        Ok(())
    }

    /// Write transactions committed since the store was opened (each one sync of the log).
    pub fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A new pending enrollment replacing any earlier pending one; with `proof`, only if it
    /// can be spent for that active enrollment, in the same transaction.
    fn store_pending(
        &self,
        user: &UserName,
        proof: Option<(EnrollmentId, Proof)>,
        secret: &Secret,
        params: Params,
        now: i64,
        event: &Event,
    ) -> Result<Option<EnrollmentId>> {
        let mut replaced = 0;
        let id = self.change(now, event, |transaction| {
            if let Some((active, proof)) = proof
                && !spend(transaction, user, active, proof, now)?
            {
                return Ok(Err(()));
            }
            delete_recovery_codes(transaction, user, "active = 0")?;
            replaced = transaction
                .prepare_cached("DELETE FROM enrollments WHERE user = ?1 AND active = 0")?
                .execute(params![user.as_str()])?;
            transaction
                .prepare_cached(
                    "INSERT INTO enrollments
                        (user, secret, algorithm, digits, period, active, created)
                     VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6)",
                )?
                .execute(params![
                    user.as_str(),
                    secret.as_bytes(),
                    params.algorithm.name(),
                    params.digits,
                    params.period,
                    now
                ])?;
            Ok(Ok(EnrollmentId(transaction.last_insert_rowid())))
        })?;
        if replaced > 0 {
            self.purge_log();
        }
        Ok(id.ok())
    }

    /// The connection for reads. A panic while holding it cannot leave a half-done change
    /// (it makes none), so it is safe to use after poisoning.
    fn read(&self) -> MutexGuard<'_, Connection> {
        self.reader
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn writer(&self) -> MutexGuard<'_, Writer> {
        // After a panic in a change, the transaction it was part of is rolled back (see
        // `write`), so the connection is safe to use after poisoning.
        self.writer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs `work` as part of a shared write transaction and, when it says its change must be
    /// kept (`true`), returns once the transaction holding it is committed: on disk
    /// (`synchronous=FULL`). Work that arrives while a transaction is open and others are
    /// still to join it goes into the same transaction, so concurrent logins share one commit
    /// (one write-ahead-log sync) instead of paying one each. Each part runs in a savepoint of
    /// its own: a part that fails or declines is undone alone. The changes of a transaction
    /// are seen by the parts that join it after them (as if they were committed, which they
    /// will be, or every part waiting for them fails), and by no read until it is committed.
    /// Work that keeps nothing returns at once.
    fn write<T>(&self, work: impl FnOnce(&Connection) -> Result<(T, bool)>) -> Result<T> {
        self.joining.fetch_add(1, Ordering::SeqCst);
        let mut writer = self.writer();
        self.joining.fetch_sub(1, Ordering::SeqCst);
        let batch = match &writer.batch {
            Some(batch) => batch.clone(),
            None => {
                writer.connection.execute_batch("BEGIN IMMEDIATE")?;
                let batch = Arc::new(Batch::default());
                writer.batch = Some(batch.clone());
                writer.parts = 0;
                batch
            }
        };
        writer.parts += 1;
        let saved = writer
            .connection
            .execute_batch("SAVEPOINT part")
            .map_err(StoreError::from);
        let in_part = saved.is_ok();
        let outcome = saved.and_then(|()| {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(&writer.connection)))
                .unwrap_or_else(|_| Err(StoreError("a change panicked; it was undone".into())))
        });
        let kept = matches!(outcome, Ok((_, true)));
        let closed = if !in_part {
            // Nothing of this part was done; the transaction is as it was.
            false
        } else if writer.connection.is_autocommit() {
            // SQLite rolled the whole transaction back (a full disk, say).
            true
        } else if kept {
            writer.connection.execute_batch("RELEASE part").is_err()
        } else {
            writer
                .connection
                .execute_batch("ROLLBACK TO part; RELEASE part")
                .is_err()
        };
        if closed {
            self.end(&mut writer, &batch, Err("the transaction was lost".into()));
        } else if self.joining.load(Ordering::SeqCst) == 0 || writer.parts >= MAX_BATCH {
            let committed = writer
                .connection
                .execute_batch("COMMIT")
                .map_err(|error| error.to_string());
            self.end(&mut writer, &batch, committed);
        }
        if !kept {
            return outcome.map(|(value, _)| value);
        }
        // Left open for others to join: the last of them commits.
        while batch.outcome.get().is_none() {
            writer = self
                .ended
                .wait(writer)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
        drop(writer);
        match batch.outcome.get() {
            Some(Ok(())) => outcome.map(|(value, _)| value),
            Some(Err(problem)) => Err(StoreError(format!(
                "the change could not be committed: {problem}"
            ))),
            None => unreachable!("waited for the outcome"),
        }
    }

    /// Ends `batch`, the writer's open transaction, with `outcome` (rolled back when it failed,
    /// so nothing of it stays open for the next one to trip on), and wakes its waiters. After a
    /// commit, empties the log if a removed secret asked for it ([`Self::purge_log`]).
    fn end(&self, writer: &mut Writer, batch: &Batch, outcome: std::result::Result<(), String>) {
        let committed = outcome.is_ok();
        if committed {
            self.commits.fetch_add(1, Ordering::Relaxed);
        } else if !writer.connection.is_autocommit() {
            let _ = writer.connection.execute_batch("ROLLBACK");
        }
        let _ = batch.outcome.set(outcome);
        writer.batch = None;
        self.ended.notify_all();
        if committed && self.purge.swap(false, Ordering::SeqCst) {
            empty_log(&mut writer.connection);
        }
    }

    /// The size of the database, in bytes, if it was too large to check before serving and is
    /// being checked in the background.
    pub fn checking_in_background(&self) -> Option<i64> {
        self.checking_in_background
    }

    fn migrate(&self) -> Result<()> {
        // At start-up, before anything else uses the store.
        let mut writer = self.writer();
        let connection = &mut writer.connection;
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
            let path = sibling(&self.path, suffix);
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

    /// Runs `work` in one write transaction. When it succeeds (`Ok(Ok(..))`), `event` is
    /// appended to the audit trail and the whole is committed; when it declines
    /// (`Ok(Err(..))`), nothing of it stays.
    fn change<T, R>(
        &self,
        now: i64,
        event: &Event,
        work: impl FnOnce(&Connection) -> Result<std::result::Result<T, R>>,
    ) -> Result<std::result::Result<T, R>> {
        self.write(|connection| {
            let outcome = work(connection)?;
            if outcome.is_ok() {
                append(connection, now, event)?;
            }
            let kept = outcome.is_ok();
            Ok((outcome, kept))
        })
    }

    /// After a secret was deleted or replaced: copy everything into the database (whose
    /// deleted content `secure_delete` zeroed) and empty the log, which still holds older
    /// page images with the secret.
    fn purge_log(&self) {
        let mut writer = self.writer();
        if writer.batch.is_some() {
            // Others are joining a transaction: its committer empties the log after it.
            self.purge.store(true, Ordering::SeqCst);
            return;
        }
        empty_log(&mut writer.connection);
    }
}

/// Copies the log into the database and empties it (see [`SqliteStore::purge_log`]); on the
/// write connection, between transactions.
fn empty_log(connection: &mut Connection) {
    let result = connection.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| {
        row.get::<_, i64>(0)
    });
    match result {
        Ok(0) => {}
        Ok(_) => crate::log::warning(
            "the write-ahead log could not be emptied after a secret was removed (a reader \
             was busy); it will be on the next removal",
        ),
        Err(error) => crate::log::warning(&format!(
            "the write-ahead log could not be emptied after a secret was removed: {error}"
        )),
    }
}

/// `Ok(())` when a statement changed exactly one row, `Err(())` when it changed none.
fn only_one(changed: usize) -> std::result::Result<(), ()> {
    if changed == 1 { Ok(()) } else { Err(()) }
}

fn append(transaction: &Connection, now: i64, event: &Event) -> Result<()> {
    if let Event::Pair(first, second) = event {
        let at = match **first {
            Event::Challenged { at, .. } => at,
            _ => now,
        };
        append(transaction, at, first)?;
        return append(transaction, now, second);
    }
    if event.is_kept() {
        transaction
            .prepare_cached("INSERT INTO audit (time, kind, user, line) VALUES (?1, ?2, ?3, ?4)")?
            .execute(params![now, event.kind(), event.user(), event.to_string()])?;
    }
    Ok(())
}

fn read_enrollments(connection: &Connection, user: &UserName) -> Result<Enrollments> {
    let mut statement = connection.prepare_cached(
        "SELECT id, secret, algorithm, digits, period, active, created, confirmed, last_used
         FROM enrollments WHERE user = ?1",
    )?;
    let rows = statement.query_map(params![user.as_str()], |row| {
        Ok((
            row.get::<_, i64>(0)?,
            row.get::<_, Vec<u8>>(1)?,
            row.get::<_, String>(2)?,
            row.get::<_, u32>(3)?,
            row.get::<_, u32>(4)?,
            row.get::<_, bool>(5)?,
            row.get::<_, i64>(6)?,
            row.get::<_, Option<i64>>(7)?,
            row.get::<_, Option<i64>>(8)?,
        ))
    })?;
    let mut found = Enrollments::default();
    for row in rows {
        let (id, secret, algorithm, digits, period, active, created, confirmed, last_used) = row?;
        let algorithm = Algorithm::from_name(&algorithm).ok_or_else(|| {
            StoreError(format!(
                "the enrollment of {user} names an unknown algorithm {algorithm:?}"
            ))
        })?;
        let enrollment = Enrollment {
            id: EnrollmentId(id),
            secret: Secret::from_bytes(secret),
            params: Params {
                algorithm,
                digits,
                period,
            },
            active,
            created,
            confirmed,
            last_used,
        };
        if active {
            found.active = Some(enrollment);
        } else {
            found.pending = Some(enrollment);
        }
    }
    Ok(found)
}

/// Spends `proof` for active enrollment `id` of `user`: one conditional update. False if it was
/// spent already (or a later step was), or `id` is not the user's active enrollment. A right
/// code clears the user's count of tries and of locks in a row, in the same transaction.
fn spend(
    transaction: &Connection,
    user: &UserName,
    id: EnrollmentId,
    proof: Proof,
    now: i64,
) -> Result<bool> {
    spend_from(transaction, user, id, proof, now, None)
}

/// [`spend`], and where `origin` is given, remembers the right code for logins from there.
fn spend_from(
    transaction: &Connection,
    user: &UserName,
    id: EnrollmentId,
    proof: Proof,
    now: i64,
    origin: Option<Origin<'_>>,
) -> Result<bool> {
    let changed = match proof {
        Proof::Step(step) => transaction
            .prepare_cached(
                "UPDATE enrollments SET last_step = ?3, last_used = ?4
                 WHERE id = ?1 AND user = ?2 AND active = 1
                    AND (last_step IS NULL OR last_step < ?3)",
            )?
            .execute(params![id.0, user.as_str(), step as i64, now])?,
        Proof::RecoveryCode(code) => transaction
            .prepare_cached(
                "UPDATE recovery_codes SET used = ?4
                 WHERE id = ?3 AND enrollment = ?1 AND used IS NULL
                    AND EXISTS (SELECT 1 FROM enrollments
                                WHERE id = ?1 AND user = ?2 AND active = 1)",
            )?
            .execute(params![id.0, user.as_str(), code.0, now])?,
    };
    if changed != 1 {
        return Ok(false);
    }
    transaction
        .prepare_cached("DELETE FROM lockout WHERE user = ?1")?
        .execute(params![user.as_str()])?;
    if let Some(origin) = origin {
        transaction
            .prepare_cached(
                "INSERT INTO remembered (user, service, rhost, enrollment, verified, last_seen)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?5)
                 ON CONFLICT (user, service, rhost) DO UPDATE SET
                    enrollment = excluded.enrollment, verified = excluded.verified,
                    last_seen = excluded.last_seen",
            )?
            .execute(params![
                user.as_str(),
                origin.service,
                origin.rhost,
                id.0,
                now
            ])?;
    }
    Ok(true)
}

/// Counts one try of a code by `user` (see [`Store::begin_attempt`]), in `transaction`. When
/// the try is allowed, `spend` runs first: if it spends the code, which clears the count, the
/// try is not written only to be deleted (one page less for the commit to write).
fn attempt(
    transaction: &Connection,
    user: &UserName,
    now: i64,
    rule: LockoutRule,
    locked: &dyn Fn(i64) -> Event,
    spend: &mut dyn FnMut() -> Result<bool>,
) -> Result<(Attempt, bool)> {
    let count = transaction
        .prepare_cached("SELECT tries, since, locked_until, locks FROM lockout WHERE user = ?1")?
        .query_row(params![user.as_str()], |row| {
            Ok(TryCount {
                tries: row.get(0)?,
                since: row.get(1)?,
                locked_until: row.get(2)?,
                locks: row.get(3)?,
            })
        })
        .optional()?;
    let count = match rule.next(count, now) {
        NextTry::Locked { until } => return Ok((Attempt::Locked { until, new: false }, false)),
        NextTry::Locks { count } => {
            append(transaction, now, &locked(count.locked_until))?;
            transaction
                .prepare_cached(
                    "INSERT INTO lockout (user, tries, since, locked_until, locks)
                     VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (user) DO UPDATE SET tries = excluded.tries,
                        since = excluded.since, locked_until = excluded.locked_until,
                        locks = excluded.locks",
                )?
                .execute(params![
                    user.as_str(),
                    count.tries,
                    count.since,
                    count.locked_until,
                    count.locks
                ])?;
            let until = count.locked_until;
            return Ok((Attempt::Locked { until, new: true }, false));
        }
        NextTry::Counts { count } => count,
    };
    if spend()? {
        return Ok((Attempt::Allowed, true));
    }
    transaction
        .prepare_cached(
            "INSERT INTO lockout (user, tries, since, locked_until, locks)
             VALUES (?1, ?2, ?3, 0, ?4)
             ON CONFLICT (user) DO UPDATE SET tries = excluded.tries, since = excluded.since",
        )?
        .execute(params![
            user.as_str(),
            count.tries,
            count.since,
            count.locks
        ])?;
    Ok((Attempt::Allowed, false))
}

/// Forgets every remembered login of the user (a reset, a disable, a new phone).
fn forget_remembered(transaction: &Connection, user: &UserName) -> Result<()> {
    transaction
        .prepare_cached("DELETE FROM remembered WHERE user = ?1")?
        .execute(params![user.as_str()])?;
    Ok(())
}

/// Removes the recovery codes of the user's enrollments that match `which` (an SQL condition
/// on `enrollments`).
fn delete_recovery_codes(transaction: &Connection, user: &UserName, which: &str) -> Result<usize> {
    Ok(transaction
        .prepare_cached(&format!(
            "DELETE FROM recovery_codes WHERE enrollment IN
                (SELECT id FROM enrollments WHERE user = ?1 AND {which})"
        ))?
        .execute(params![user.as_str()])?)
}

impl Store for SqliteStore {
    fn enrollments(&self, user: &UserName) -> Result<Enrollments> {
        let found = read_enrollments(&self.read(), user)?;
        if found.active.is_none() {
            // Not found might be a damaged index: trust it only once the check has passed.
            self.integrity.wait()?;
        }
        Ok(found)
    }

    fn put_pending(
        &self,
        user: &UserName,
        secret: &Secret,
        params: Params,
        now: i64,
        event: &Event,
    ) -> Result<EnrollmentId> {
        let id = self.store_pending(user, None, secret, params, now, event)?;
        Ok(id
            .unwrap_or_else(|| unreachable!("without a proof the insert either succeeds or fails")))
    }

    fn put_replacement(
        &self,
        user: &UserName,
        spending: (EnrollmentId, Proof),
        secret: &Secret,
        params: Params,
        now: i64,
        event: &Event,
    ) -> Result<Option<EnrollmentId>> {
        self.store_pending(user, Some(spending), secret, params, now, event)
    }

    fn activate(
        &self,
        user: &UserName,
        id: EnrollmentId,
        step: u64,
        recovery: &[Hashed],
        now: i64,
        event: &Event,
    ) -> Result<bool> {
        let mut replaced = 0;
        let changed = self.change(now, event, |transaction| {
            let pending = transaction
                .prepare_cached(
                    "SELECT 1 FROM enrollments WHERE id = ?1 AND user = ?2 AND active = 0",
                )?
                .exists(params![id.0, user.as_str()])?;
            if !pending {
                return Ok(Err(()));
            }
            // The phone this one replaces stops working now, and so does what it proved.
            delete_recovery_codes(transaction, user, "active = 1")?;
            forget_remembered(transaction, user)?;
            replaced = transaction
                .prepare_cached("DELETE FROM enrollments WHERE user = ?1 AND active = 1")?
                .execute(params![user.as_str()])?;
            let changed = transaction
                .prepare_cached(
                    "UPDATE enrollments SET active = 1, confirmed = ?3, last_step = ?4
                     WHERE id = ?1 AND user = ?2 AND active = 0",
                )?
                .execute(params![id.0, user.as_str(), now, step as i64])?;
            if only_one(changed).is_err() {
                return Ok(Err(()));
            }
            let mut insert = transaction.prepare_cached(
                "INSERT INTO recovery_codes (enrollment, salt, hash) VALUES (?1, ?2, ?3)",
            )?;
            for code in recovery {
                insert.execute(params![id.0, code.salt.as_slice(), code.hash.as_slice()])?;
            }
            Ok(Ok(()))
        })?;
        if changed.is_ok() && replaced > 0 {
            self.purge_log();
        }
        Ok(changed.is_ok())
    }

    fn replace_recovery_codes(
        &self,
        user: &UserName,
        id: EnrollmentId,
        proof: Proof,
        recovery: &[Hashed],
        now: i64,
        event: &Event,
    ) -> Result<bool> {
        let changed = self.change(now, event, |transaction| {
            if !spend(transaction, user, id, proof, now)? {
                return Ok(Err(()));
            }
            transaction
                .prepare_cached("DELETE FROM recovery_codes WHERE enrollment = ?1")?
                .execute(params![id.0])?;
            let mut insert = transaction.prepare_cached(
                "INSERT INTO recovery_codes (enrollment, salt, hash) VALUES (?1, ?2, ?3)",
            )?;
            for code in recovery {
                insert.execute(params![id.0, code.salt.as_slice(), code.hash.as_slice()])?;
            }
            Ok(Ok(()))
        })?;
        Ok(changed.is_ok())
    }

    fn recovery_codes(
        &self,
        user: &UserName,
        id: EnrollmentId,
    ) -> Result<Vec<(RecoveryId, Hashed)>> {
        let connection = self.read();
        let mut statement = connection.prepare_cached(
            "SELECT recovery_codes.id, salt, hash FROM recovery_codes
             JOIN enrollments ON enrollments.id = recovery_codes.enrollment
             WHERE enrollments.id = ?1 AND enrollments.user = ?2 AND enrollments.active = 1
                AND used IS NULL
             ORDER BY recovery_codes.id",
        )?;
        let rows = statement.query_map(params![id.0, user.as_str()], |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, Vec<u8>>(1)?,
                row.get::<_, Vec<u8>>(2)?,
            ))
        })?;
        let mut codes = Vec::new();
        for row in rows {
            let (code, salt, hash) = row?;
            let (Ok(salt), Ok(hash)) = (salt.try_into(), hash.try_into()) else {
                return Err(StoreError(format!(
                    "recovery code {code} of {user} is damaged (wrong length)"
                )));
            };
            codes.push((RecoveryId(code), Hashed { salt, hash }));
        }
        Ok(codes)
    }

    fn consume_recovery_code(
        &self,
        user: &UserName,
        id: EnrollmentId,
        code: RecoveryId,
        now: i64,
        origin: Option<Origin<'_>>,
        event: &Event,
    ) -> Result<Option<usize>> {
        let left = self.change(now, event, |transaction| {
            let proof = Proof::RecoveryCode(code);
            if !spend_from(transaction, user, id, proof, now, origin)? {
                return Ok(Err(()));
            }
            let left: i64 = transaction
                .prepare_cached(
                    "SELECT count(*) FROM recovery_codes WHERE enrollment = ?1 AND used IS NULL",
                )?
                .query_row(params![id.0], |row| row.get(0))?;
            Ok(Ok(left as usize))
        })?;
        Ok(left.ok())
    }

    fn consume_step(
        &self,
        user: &UserName,
        id: EnrollmentId,
        step: u64,
        now: i64,
        origin: Option<Origin<'_>>,
        event: &Event,
    ) -> Result<bool> {
        let spent = self.change(now, event, |transaction| {
            Ok(
                spend_from(transaction, user, id, Proof::Step(step), now, origin)?
                    .then_some(())
                    .ok_or(()),
            )
        })?;
        Ok(spent.is_ok())
    }

    fn remembered(
        &self,
        user: &UserName,
        id: EnrollmentId,
        origin: Origin<'_>,
    ) -> Result<Option<Remembered>> {
        Ok(self
            .read()
            .prepare_cached(
                "SELECT verified, last_seen FROM remembered
                 WHERE user = ?1 AND service = ?2 AND rhost = ?3 AND enrollment = ?4",
            )?
            .query_row(
                params![user.as_str(), origin.service, origin.rhost, id.0],
                |row| {
                    Ok(Remembered {
                        verified: row.get(0)?,
                        last_seen: row.get(1)?,
                    })
                },
            )
            .optional()?)
    }

    fn use_remembered(
        &self,
        user: &UserName,
        id: EnrollmentId,
        origin: Origin<'_>,
        now: i64,
        terms: RememberTerms,
        event: &Event,
    ) -> Result<bool> {
        let used = self.change(now, event, |transaction| {
            let changed = transaction
                .prepare_cached(
                    "UPDATE remembered SET last_seen = ?5
                     WHERE user = ?1 AND service = ?2 AND rhost = ?3 AND enrollment = ?4
                        AND last_seen + ?6 > ?5 AND verified + ?7 > ?5
                        AND EXISTS (SELECT 1 FROM enrollments
                                    WHERE id = ?4 AND user = ?1 AND active = 1)
                        AND NOT EXISTS (SELECT 1 FROM lockout
                                        WHERE user = ?1 AND locked_until > ?5)",
                )?
                .execute(params![
                    user.as_str(),
                    origin.service,
                    origin.rhost,
                    id.0,
                    now,
                    terms.duration,
                    terms.limit
                ])?;
            Ok(if changed == 1 { Ok(()) } else { Err(()) })
        })?;
        Ok(used.is_ok())
    }

    fn import(
        &self,
        entries: &[Imported],
        now: i64,
        event: &Event,
    ) -> Result<std::result::Result<usize, UserName>> {
        let mut replaced = 0;
        let imported = self.change(now, event, |transaction| {
            let mut other_spelling = transaction.prepare_cached(
                "SELECT 1 FROM enrollments WHERE user = ?1 COLLATE NOCASE AND user <> ?1",
            )?;
            let mut drop_pending = transaction
                .prepare_cached("DELETE FROM enrollments WHERE user = ?1 AND active = 0")?;
            let mut insert = transaction.prepare_cached(
                "INSERT INTO enrollments
                    (user, secret, algorithm, digits, period, active, created, confirmed)
                 VALUES (?1, ?2, ?3, ?4, ?5, 1, ?6, ?6)
                 ON CONFLICT (user, active) DO NOTHING",
            )?;
            let mut insert_code = transaction.prepare_cached(
                "INSERT INTO recovery_codes (enrollment, salt, hash) VALUES (?1, ?2, ?3)",
            )?;
            for entry in entries {
                let user = &entry.user;
                if other_spelling.exists(params![user.as_str()])? {
                    return Ok(Err(user.clone()));
                }
                delete_recovery_codes(transaction, user, "active = 0")?;
                replaced += drop_pending.execute(params![user.as_str()])?;
                let inserted = insert.execute(params![
                    user.as_str(),
                    entry.secret.as_bytes(),
                    entry.params.algorithm.name(),
                    entry.params.digits,
                    entry.params.period,
                    now
                ])?;
                if inserted != 1 {
                    return Ok(Err(user.clone()));
                }
                let id = transaction.last_insert_rowid();
                for code in &entry.recovery {
                    insert_code.execute(params![id, code.salt.as_slice(), code.hash.as_slice()])?;
                }
            }
            Ok(Ok(entries.len()))
        })?;
        if imported.is_ok() && replaced > 0 {
            self.purge_log();
        }
        Ok(imported)
    }

    fn disable(
        &self,
        user: &UserName,
        id: EnrollmentId,
        proof: Proof,
        now: i64,
        event: &Event,
    ) -> Result<bool> {
        let removed = self.change(now, event, |transaction| {
            if !spend(transaction, user, id, proof, now)? {
                return Ok(Err(()));
            }
            delete_recovery_codes(transaction, user, "1")?;
            forget_remembered(transaction, user)?;
            transaction
                .prepare_cached("DELETE FROM enrollments WHERE user = ?1")?
                .execute(params![user.as_str()])?;
            Ok(Ok(()))
        })?;
        if removed.is_ok() {
            self.purge_log();
        }
        Ok(removed.is_ok())
    }

    fn remove_enrollment(&self, user: &UserName, now: i64, event: &Event) -> Result<bool> {
        let removed = self.change(now, event, |transaction| {
            delete_recovery_codes(transaction, user, "1")?;
            forget_remembered(transaction, user)?;
            let removed = transaction
                .prepare_cached("DELETE FROM enrollments WHERE user = ?1")?
                .execute(params![user.as_str()])?;
            // An active and a pending enrollment are two rows: both go.
            Ok(if removed > 0 { Ok(()) } else { Err(()) })
        })?;
        let removed = removed.is_ok();
        if removed {
            self.purge_log();
        }
        Ok(removed)
    }

    fn begin_attempt(
        &self,
        user: &UserName,
        now: i64,
        rule: LockoutRule,
        locked: &dyn Fn(i64) -> Event,
    ) -> Result<Attempt> {
        self.write(|connection| {
            let (attempt, _) = attempt(connection, user, now, rule, locked, &mut || Ok(false))?;
            Ok((attempt, true))
        })
    }

    fn try_step(
        &self,
        user: &UserName,
        now: i64,
        rule: LockoutRule,
        locked: &dyn Fn(i64) -> Event,
        id: EnrollmentId,
        step: Option<u64>,
        origin: Option<Origin<'_>>,
        spent: &Event,
        failed: &dyn Fn(bool) -> Option<Event>,
    ) -> Result<Tried> {
        self.write(|transaction| {
            let mut spend = || match step {
                Some(step) => spend_from(transaction, user, id, Proof::Step(step), now, origin),
                None => Ok(false),
            };
            let tried = match attempt(transaction, user, now, rule, locked, &mut spend)? {
                (Attempt::Locked { until, new }, _) => Tried::Locked { until, new },
                (Attempt::Allowed, true) => {
                    append(transaction, now, spent)?;
                    Tried::Spent
                }
                (Attempt::Allowed, false) => {
                    if let Some(event) = failed(step.is_some()) {
                        append(transaction, now, &event)?;
                    }
                    Tried::NotSpent
                }
            };
            Ok((tried, true))
        })
    }

    fn locked_until(&self, user: &UserName, now: i64) -> Result<Option<i64>> {
        let until: Option<i64> = self
            .read()
            .prepare_cached("SELECT locked_until FROM lockout WHERE user = ?1")?
            .query_row(params![user.as_str()], |row| row.get(0))
            .optional()?;
        Ok(until.filter(|until| *until > now))
    }

    fn unlock(&self, user: &UserName, now: i64, event: &Event) -> Result<bool> {
        let was_locked = self.change(now, event, |transaction| {
            let locked: Option<bool> = transaction
                .prepare_cached("DELETE FROM lockout WHERE user = ?1 RETURNING locked_until > ?2")?
                .query_row(params![user.as_str(), now], |row| row.get(0))
                .optional()?;
            Ok(if locked == Some(true) {
                Ok(())
            } else {
                Err(())
            })
        })?;
        Ok(was_locked.is_ok())
    }

    fn switches(&self, user: Option<&UserName>) -> Result<StoredSwitches> {
        let connection = self.read();
        let global: Option<String> = connection
            .prepare_cached("SELECT value FROM settings WHERE key = ?1")?
            .query_row(params![GLOBAL_ENFORCEMENT], |row| row.get(0))
            .optional()?;
        let user: Option<bool> = match user {
            Some(user) => connection
                .prepare_cached("SELECT enforced FROM user_settings WHERE user = ?1")?
                .query_row(params![user.as_str()], |row| row.get(0))
                .optional()?,
            None => None,
        };
        Ok(StoredSwitches {
            global: global.map(|value| value == "on"),
            user,
        })
    }

    fn set_global_enforcement(&self, on: bool, now: i64, event: &Event) -> Result<()> {
        self.change(now, event, |transaction| {
            transaction
                .prepare_cached(
                    "INSERT INTO settings (key, value) VALUES (?1, ?2)
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                )?
                .execute(params![GLOBAL_ENFORCEMENT, if on { "on" } else { "off" }])?;
            Ok(Ok::<_, ()>(()))
        })
        .map(drop)
    }

    fn set_user_enforcement(
        &self,
        user: &UserName,
        on: bool,
        now: i64,
        event: &Event,
    ) -> Result<()> {
        self.change(now, event, |transaction| {
            transaction
                .prepare_cached(
                    "INSERT INTO user_settings (user, enforced) VALUES (?1, ?2)
                     ON CONFLICT (user) DO UPDATE SET enforced = excluded.enforced",
                )?
                .execute(params![user.as_str(), on])?;
            Ok(Ok::<_, ()>(()))
        })
        .map(drop)
    }

    fn users(&self) -> Result<Vec<UserName>> {
        let connection = self.read();
        let names: Vec<String> = connection
            .prepare_cached(
                "SELECT user FROM enrollments UNION SELECT user FROM user_settings ORDER BY 1",
            )?
            .query_map([], |row| row.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        names
            .iter()
            .map(|name| {
                UserName::parse(name)
                    .map_err(|reason| StoreError(format!("stored user name {name:?}: {reason}")))
            })
            .collect()
    }

    fn spelled_otherwise(&self, user: &UserName) -> Result<Option<UserName>> {
        let connection = self.read();
        let found: Option<String> = connection
            .prepare_cached(
                "SELECT user FROM enrollments WHERE user = ?1 COLLATE NOCASE AND user <> ?1
                 UNION
                 SELECT user FROM user_settings WHERE user = ?1 COLLATE NOCASE AND user <> ?1
                 LIMIT 1",
            )?
            .query_row(params![user.as_str()], |row| row.get(0))
            .optional()?;
        found
            .map(|name| {
                UserName::parse(&name)
                    .map_err(|reason| StoreError(format!("stored user name {name:?}: {reason}")))
            })
            .transpose()
    }

    fn record(&self, now: i64, event: &Event) -> Result<()> {
        // A pair's two rows go together.
        self.write(|connection| Ok((append(connection, now, event)?, true)))
    }

    fn prune_remembered(&self, now: i64, limit: i64) -> Result<usize> {
        self.write(|connection| {
            let removed = connection
                .prepare_cached("DELETE FROM remembered WHERE verified + ?2 <= ?1")?
                .execute(params![now, limit])?;
            Ok((removed, true))
        })
    }

    fn prune_audit(&self, before: i64) -> Result<usize> {
        self.write(|connection| {
            let removed = connection
                .prepare_cached("DELETE FROM audit WHERE time < ?1")?
                .execute(params![before])?;
            Ok((removed, true))
        })
    }

    fn audit(&self, filter: &AuditFilter) -> Result<Vec<AuditRow>> {
        let connection = self.read();
        let mut rows: Vec<AuditRow> = connection
            .prepare_cached(
                "SELECT time, kind, user, line FROM audit
                 WHERE (?1 IS NULL OR user = ?1) AND time >= ?2 AND (?3 IS NULL OR kind = ?3)
                 ORDER BY id DESC LIMIT ?4",
            )?
            .query_map(
                params![
                    filter.user.as_ref().map(UserName::as_str),
                    filter.since,
                    filter.kind.as_deref(),
                    filter.limit as i64
                ],
                |row| {
                    Ok(AuditRow {
                        time: row.get(0)?,
                        kind: row.get(1)?,
                        user: row.get(2)?,
                        host: String::new(),
                        line: row.get(3)?,
                    })
                },
            )?
            .collect::<rusqlite::Result<_>>()?;
        rows.reverse();
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    fn open(dir: &Path) -> SqliteStore {
        SqliteStore::open(dir, |problem| panic!("{problem}")).unwrap()
    }

    #[test]
    fn concurrent_changes_share_commits_and_each_is_kept() {
        let dir = temp_dir("group-commit");
        let store = Arc::new(open(&dir));
        let secret = Secret::from_bytes(b"12345678901234567890".to_vec());
        let params = Params {
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
        let before = store.commits();
        let threads: Vec<_> = (0..16)
            .map(|thread| {
                let (store, users, ids) = (store.clone(), users.clone(), ids.clone());
                std::thread::spawn(move || {
                    (thread * 4..thread * 4 + 4)
                        .filter(|&index| {
                            let event = Event::EnrollmentsImported { count: 0 };
                            store
                                .consume_step(&users[index], ids[index], 7, 2, None, &event)
                                .unwrap()
                        })
                        .count()
                })
            })
            .collect();
        let spent: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert_eq!(spent, 64, "every step spent once");
        let commits = store.commits() - before;
        assert!(
            commits < 64,
            "64 changes from 16 threads took {commits} commits"
        );
        // What was acknowledged is in the database for the next connection to see.
        drop(store);
        let store = open(&dir);
        let event = Event::EnrollmentsImported { count: 0 };
        for (user, id) in users.iter().zip(&ids) {
            assert!(!store.consume_step(user, *id, 7, 3, None, &event).unwrap());
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
        let store = open(&dir.join("state"));
        let mode = |path: &Path| fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir.join("state")), 0o700);
        assert_eq!(mode(store.path()), 0o600);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = temp_dir("newer");
        drop(open(&dir));
        let connection = Connection::open(dir.join(DB_FILE)).unwrap();
        connection.pragma_update(None, "user_version", 99).unwrap();
        drop(connection);
        let error = SqliteStore::open(&dir, |_| {}).err().unwrap().to_string();
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
        assert!(
            !store
                .consume_step(&alice, enrollment.id, 7, 2, None, &event)
                .unwrap(),
            "the spent step stays spent"
        );
        assert!(
            store
                .consume_step(&alice, enrollment.id, 8, 2, None, &event)
                .unwrap()
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_checkpointer_empties_the_log() {
        let dir = temp_dir("checkpoint");
        let store = open(&dir);
        let secret = Secret::from_bytes(b"12345678901234567890".to_vec());
        let params = Params {
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
        let frames = |store: &SqliteStore| -> (i64, i64) {
            store
                .read()
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
        store.spawn_checkpointer(Duration::from_millis(10)).unwrap();
        let start = std::time::Instant::now();
        while frames(&store).1 < logged {
            assert!(start.elapsed().as_secs() < 10, "no checkpoint");
            std::thread::sleep(Duration::from_millis(10));
        }
        drop(store);
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
        let error = SqliteStore::open(&open_dir.join("state"), |_| {})
            .err()
            .unwrap()
            .to_string();
        assert!(error.contains("writable by other users"), "{error}");
        assert!(error.contains(&open_dir.display().to_string()), "{error}");
        // Owned by another user.
        let theirs = dir.join("theirs");
        fs::create_dir(&theirs).unwrap();
        nix::unistd::chown(&theirs, Some(nix::unistd::Uid::from_raw(1000)), None).unwrap();
        let error = SqliteStore::open(&theirs.join("state"), |_| {})
            .err()
            .unwrap()
            .to_string();
        assert!(error.contains("owned by uid 1000"), "{error}");
        // The state directory itself a link.
        let real = dir.join("real");
        fs::create_dir(&real).unwrap();
        std::os::unix::fs::symlink(&real, dir.join("link")).unwrap();
        let error = SqliteStore::open(&dir.join("link"), |_| {})
            .err()
            .unwrap()
            .to_string();
        assert!(error.contains("is a symbolic link"), "{error}");
        // The database file a link to a file elsewhere.
        let state = dir.join("state");
        fs::create_dir(&state).unwrap();
        fs::write(dir.join("elsewhere"), b"").unwrap();
        std::os::unix::fs::symlink(dir.join("elsewhere"), state.join(DB_FILE)).unwrap();
        let error = SqliteStore::open(&state, |_| {}).err().unwrap().to_string();
        assert!(error.contains("is a symbolic link"), "{error}");
        assert!(error.contains(DB_FILE), "{error}");
        fs::remove_dir_all(&dir).unwrap();
    }
}
