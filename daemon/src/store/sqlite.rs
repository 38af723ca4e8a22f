//! The embedded SQLite store, the default.
//!
//! One database file in a private state directory, in write-ahead-log mode with
//! `synchronous=FULL`: a change is on disk before the call returns. Checkpoints run on a thread
//! of their own. Deleted content is zeroed (`secure_delete`), and after a secret is removed the
//! log is checkpointed and truncated, so no copy of it stays in either file.
//!
//! What is particular to SQLite is here: the file and its checks, the one write connection
//! whose transactions concurrent logins share (one commit for many), the reader, the
//! checkpoints, the migrations. The operations are written once, in `store::operations`.

use std::fs::{self, DirBuilder, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, ErrorCode, OpenFlags, ToSql};

use super::sql::{Backend, Bound, Field, Lane, Row, Tx, Value};
use super::{Result, StoreError};
use migrations::MIGRATIONS;

/// File name of the database inside the state directory.
pub const DB_FILE: &str = "mfad.sqlite3";

/// Databases up to this size are checked in full before mfad serves; larger ones are checked in
/// the background while it serves (see [`Integrity`]).
const CHECK_BEFORE_SERVING: i64 = 16 << 20;

/// Prepared statements each connection keeps (every statement of the operations fits).
const STATEMENT_CACHE: usize = 128;

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> Self {
        let message = format!("state database error: {error}");
        match error.sqlite_error_code() {
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
                StoreError::Conflict(message)
            }
            Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => {
                StoreError::Damaged(message)
            }
            _ => StoreError::Failed(message),
        }
    }
}

/// The outcome of the start-up integrity check, which covers every table and index.
///
/// A damaged index could hide an enrollment: a lookup through it finds nothing, and the login
/// would be treated as one of a user who never enrolled. So while the check runs, "nothing
/// found" waits for its result; rows that are found are used at once.
#[derive(Default)]
struct Integrity {
    state: Mutex<Option<Result<()>>>,
    done: Condvar,
}

impl Integrity {
    fn finish(&self, result: Result<()>) {
        *self.state.lock().unwrap_or_else(|p| p.into_inner()) = Some(result);
        self.done.notify_all();
    }

    fn wait(&self) -> Result<()> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        while state.is_none() {
            state = self.done.wait(state).unwrap_or_else(|p| p.into_inner());
        }
        state.clone().unwrap_or(Ok(()))
    }
}

pub struct SqliteBackend {
    path: PathBuf,
    /// Every change, made in shared transactions ([`SqliteBackend::write`]).
    writer: Mutex<Writer>,
    /// Callers of [`SqliteBackend::write`] waiting for `writer`: while there are some, the open
    /// transaction is left for them to join.
    joining: AtomicUsize,
    /// Signalled when a shared transaction ends.
    ended: Condvar,
    /// Shared transactions committed since the store was opened.
    commits: AtomicU64,
    /// The log must be emptied once the open transaction is committed
    /// ([`Tx::secret_removed`]).
    purge: AtomicBool,
    /// Logins' reads, of what is committed, while the write connection is busy: they never
    /// wait for a commit in progress (an idle write connection takes them; see `read`).
    reader: Mutex<Connection>,
    /// Listings' reads ([`Lane::Listing`]), on a connection of their own: a long one never
    /// holds up a login's.
    lister: Mutex<Connection>,
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
    outcome: OnceLock<Result<()>>,
}

/// Checks that `dir` and every directory above it can be trusted with secrets (see
/// [`crate::dirs::check_trusted`]).
fn check_directories(dir: &Path) -> Result<()> {
    let purpose = crate::dirs::Purpose {
        what: "the state directory",
        setting: "state_dir",
    };
    crate::dirs::check_trusted(dir, purpose).map_err(StoreError::Setup)
}

/// Refuses a database file (or its log) that is a symlink, not a regular file, or not owned by
/// mfad's user.
fn check_file(path: &Path) -> Result<()> {
    let euid = nix::unistd::geteuid().as_raw();
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => Err(StoreError::Setup(format!(
            "{} is a symbolic link: mfad follows no link for its files; remove it",
            path.display()
        ))),
        Ok(meta) if !meta.is_file() => Err(StoreError::Setup(format!(
            "{} is not a regular file",
            path.display()
        ))),
        Ok(meta) if meta.uid() != euid => Err(StoreError::Setup(format!(
            "{} is owned by uid {}, not by mfad's user (uid {euid})",
            path.display(),
            meta.uid()
        ))),
        Ok(_) => Ok(()),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(StoreError::Setup(format!(
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

fn run_integrity_check(connection: &Connection, path: &Path) -> Result<()> {
    let mut statement = connection
        .prepare("PRAGMA integrity_check")
        .map_err(|error| {
            StoreError::Damaged(format!("cannot check {}: {error}", path.display()))
        })?;
    let problems: Vec<String> = statement
        .query_map([], |row| row.get::<_, String>(0))
        .and_then(|rows| rows.collect())
        .map_err(|error| StoreError::Damaged(format!("{} is damaged: {error}", path.display())))?;
    if problems.len() == 1 && problems[0] == "ok" {
        return Ok(());
    }
    Err(StoreError::Damaged(format!(
        "{} is damaged ({}): restore it from a backup, or move it away to start with no \
         enrollments",
        path.display(),
        problems.into_iter().take(3).collect::<Vec<_>>().join("; ")
    )))
}

impl SqliteBackend {
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
            .map_err(|error| {
                StoreError::Setup(format!("cannot create {}: {error}", dir.display()))
            })?;
        check_directories(dir)?;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(|error| {
            StoreError::Setup(format!(
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
            .map_err(|error| {
                StoreError::Setup(format!("cannot open {}: {error}", path.display()))
            })?;
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_NOFOLLOW;
        let connection = Connection::open_with_flags(&path, flags)?;
        connection.busy_timeout(Duration::from_secs(5))?;
        connection.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
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
            run_integrity_check(&connection, &path)?;
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
                        on_damage(problem.to_string());
                    }
                    integrity.finish(result);
                })
                .map_err(|error| {
                    StoreError::Setup(format!("cannot start the integrity check: {error}"))
                })?;
        }
        let reader = || -> Result<Connection> {
            let reader = Connection::open_with_flags(&path, flags)?;
            reader.busy_timeout(Duration::from_secs(5))?;
            reader.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
            Ok(reader)
        };
        let (lister, reader) = (reader()?, reader()?);
        let store = SqliteBackend {
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
            lister: Mutex::new(lister),
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
            .map_err(|error| {
                StoreError::Setup(format!("cannot start the checkpoint thread: {error}"))
            })?;
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

    /// The connection for reads of `lane`. A panic while holding it cannot leave a half-done
    /// change (it makes none), so it is safe to use after poisoning.
    fn reader(&self, lane: Lane) -> MutexGuard<'_, Connection> {
        match lane {
            Lane::Login => &self.reader,
            Lane::Listing => &self.lister,
        }
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn writer(&self) -> MutexGuard<'_, Writer> {
        // After a panic in a change, the transaction it was part of is rolled back (see
        // `write`), and a panic in a read on it leaves no transaction open (reads begin none,
        // and each statement is reset), so the connection is safe to use after poisoning.
        self.writer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs `work` as part of a shared write transaction and, when it says its change must be
    /// kept (`true`), returns once the transaction holding it is committed: on disk
    /// (`synchronous=FULL`). Work that arrives while a transaction is open and others are
    /// still to join it goes into the same transaction, so concurrent logins share one commit
    /// (one write-ahead-log sync) instead of paying one each. Each part after the first runs
    /// in a savepoint of its own: a part that fails or declines is undone alone (the first, by
    /// rolling back the transaction it alone is in). The changes of a transaction
    /// are seen by the parts that join it after them (as if they were committed, which they
    /// will be, or every part waiting for them fails), and by no read until it is committed.
    /// Work that keeps nothing returns at once.
    fn write_shared<T>(&self, work: impl FnOnce(&Connection) -> Result<(T, bool)>) -> Result<T> {
        self.joining.fetch_add(1, Ordering::SeqCst);
        let mut writer = self.writer();
        self.joining.fetch_sub(1, Ordering::SeqCst);
        let first = writer.batch.is_none();
        let batch = match &writer.batch {
            Some(batch) => batch.clone(),
            None => {
                run(&writer.connection, "BEGIN IMMEDIATE")?;
                let batch = Arc::new(Batch::default());
                writer.batch = Some(batch.clone());
                writer.parts = 0;
                batch
            }
        };
        writer.parts += 1;
        // The first part of a transaction needs no savepoint: undoing it is undoing the
        // transaction, which holds nothing else.
        let saved = if first {
            Ok(())
        } else {
            run(&writer.connection, "SAVEPOINT part")
        };
        let in_part = saved.is_ok();
        let outcome = saved.and_then(|()| {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(&writer.connection)))
                .unwrap_or_else(|_| {
                    Err(StoreError::Failed(
                        "a change panicked; it was undone".into(),
                    ))
                })
        });
        let kept = matches!(outcome, Ok((_, true)));
        if first && !kept {
            // Nothing else is in the transaction (the writer was held throughout): roll it
            // back whole. No part waits for its outcome.
            let undone = StoreError::Failed("the transaction's only part was undone".into());
            self.end(&mut writer, &batch, Err(undone));
            return outcome.map(|(value, _)| value);
        }
        let closed = if !in_part {
            // Nothing of this part was done; the transaction is as it was.
            false
        } else if writer.connection.is_autocommit() {
            // SQLite rolled the whole transaction back (a full disk, say).
            true
        } else if kept {
            !first && run(&writer.connection, "RELEASE part").is_err()
        } else {
            run(&writer.connection, "ROLLBACK TO part")
                .and_then(|()| run(&writer.connection, "RELEASE part"))
                .is_err()
        };
        if closed {
            let lost = StoreError::Failed("the transaction was lost".into());
            self.end(&mut writer, &batch, Err(lost));
        } else if self.joining.load(Ordering::SeqCst) == 0 || writer.parts >= MAX_BATCH {
            let committed = run(&writer.connection, "COMMIT");
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
            Some(Err(problem)) => Err(StoreError::Failed(format!(
                "the change could not be committed: {problem}"
            ))),
            None => unreachable!("waited for the outcome"),
        }
    }

    /// Ends `batch`, the writer's open transaction, with `outcome` (rolled back when it failed,
    /// so nothing of it stays open for the next one to trip on), and wakes its waiters. After a
    /// commit, empties the log if a removed secret asked for it ([`Tx::secret_removed`]).
    fn end(&self, writer: &mut Writer, batch: &Batch, outcome: Result<()>) {
        let committed = outcome.is_ok();
        if committed {
            self.commits.fetch_add(1, Ordering::Relaxed);
        } else if !writer.connection.is_autocommit() {
            let _ = run(&writer.connection, "ROLLBACK");
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
            return Err(StoreError::NewerSchema(format!(
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
                    StoreError::Setup(format!(
                        "cannot set mode 0600 on {}: {error}",
                        path.display()
                    ))
                })?;
            }
        }
        Ok(())
    }
}

/// After a secret was deleted or replaced: copies everything into the database (whose deleted
/// content `secure_delete` zeroed) and empties the log, which still holds older page images
/// with the secret. On the write connection, between transactions.
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

/// Runs `sql`, one statement that returns no rows, prepared once per connection: the
/// statements that begin and end every transaction and savepoint are not parsed again each
/// time.
fn run(connection: &Connection, sql: &str) -> Result<()> {
    connection.prepare_cached(sql)?.raw_execute()?;
    Ok(())
}

/// A transaction (or, for reads, the reader connection) of the SQLite store.
struct SqliteTx<'a> {
    connection: &'a Connection,
    /// Set when the transaction removes a secret: the log is emptied after its commit.
    purge: &'a AtomicBool,
}

/// Statements of more values than this (an import's rows) are prepared with `?N` for the
/// operations' `$N`: SQLite looks up each named parameter among those before it while parsing,
/// which costs the square of their number.
const NAMED_PARAMETERS: usize = 64;

/// Prepares `sql` on `connection`, once per connection (the cache), for `values` values.
fn prepare<'c>(
    connection: &'c Connection,
    sql: &str,
    values: usize,
) -> Result<rusqlite::CachedStatement<'c>> {
    if values > NAMED_PARAMETERS {
        return Ok(connection.prepare_cached(&sql.replace('$', "?"))?);
    }
    Ok(connection.prepare_cached(sql)?)
}

/// Whether a parameter's name (`$3` or `?3`) gives it the number `number`.
fn is_numbered(name: &str, number: usize) -> bool {
    name.get(1..)
        .and_then(|digits| digits.parse::<usize>().ok())
        .is_some_and(|found| found == number)
}

/// Binds `values` to the statement's parameters `$1`, `$2`, ... SQLite takes `$1` as a
/// parameter named "$1" and numbers parameters in the order they first appear, which need not
/// be the order of their numbers; a parameter whose place does not match its number is found
/// by its name. A statement prepared with `?N` (more than [`NAMED_PARAMETERS`] values) has
/// each parameter at its number already: its names are not looked at (SQLite finds a
/// parameter's name by walking the list of them, so asking for each costs the square of their
/// number: 94% of an import's time). Every parameter must get a value.
fn bind(statement: &mut rusqlite::Statement<'_>, values: &[Value<'_>]) -> Result<()> {
    if statement.parameter_count() != values.len() {
        return Err(StoreError::Failed(format!(
            "a statement takes {} values, and {} were given",
            statement.parameter_count(),
            values.len()
        )));
    }
    let numbered = values.len() > NAMED_PARAMETERS;
    for (at, value) in values.iter().enumerate() {
        let number = at + 1;
        let in_place = numbered
            || statement
                .parameter_name(number)
                .is_some_and(|name| is_numbered(name, number));
        let index = if in_place {
            number
        } else {
            statement
                .parameter_index(&format!("${number}"))?
                .ok_or_else(|| {
                    StoreError::Failed(format!("a statement has no parameter ${number}"))
                })?
        };
        statement.raw_bind_parameter(index, value)?;
    }
    Ok(())
}

impl ToSql for Value<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match *self {
            Value::Int(value) => ValueRef::Integer(value),
            Value::Bool(value) => ValueRef::Integer(value.into()),
            Value::Text(text) => ValueRef::Text(text.as_bytes()),
            Value::Bytes(bytes) => ValueRef::Blob(bytes),
            Value::OptText(None) => ValueRef::Null,
            Value::OptText(Some(text)) => ValueRef::Text(text.as_bytes()),
            Value::OptInt(None) => ValueRef::Null,
            Value::OptInt(Some(value)) => ValueRef::Integer(value),
        }))
    }
}

impl Tx for SqliteTx<'_> {
    fn execute(&self, sql: &str, values: &[Value<'_>]) -> Result<u64> {
        let mut statement = prepare(self.connection, sql, values.len())?;
        bind(&mut statement, values)?;
        Ok(statement.raw_execute()? as u64)
    }

    fn query(&self, sql: &str, values: &[Value<'_>]) -> Result<Vec<Row>> {
        let mut statement = prepare(self.connection, sql, values.len())?;
        bind(&mut statement, values)?;
        let columns = statement.column_count();
        let mut rows = statement.raw_query();
        let mut found = Vec::new();
        while let Some(row) = rows.next()? {
            let fields = (0..columns)
                .map(|index| {
                    Ok(match row.get_ref(index)? {
                        ValueRef::Null => Field::Null,
                        ValueRef::Integer(value) => Field::Int(value),
                        ValueRef::Text(text) => {
                            Field::Text(String::from_utf8(text.to_vec()).map_err(|_| {
                                StoreError::Damaged("a stored text is not UTF-8".into())
                            })?)
                        }
                        ValueRef::Blob(bytes) => Field::Bytes(bytes.to_vec()),
                        ValueRef::Real(_) => {
                            return Err(StoreError::Damaged(
                                "a stored number is not an integer".into(),
                            ));
                        }
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            found.push(Row(fields));
        }
        Ok(found)
    }

    fn lock_users(&self, _users: &[&str]) -> Result<()> {
        // Every change is made on the one write connection, one at a time.
        Ok(())
    }

    fn secret_removed(&self) {
        self.purge.store(true, Ordering::SeqCst);
    }
}

impl Backend for SqliteBackend {
    fn write(&self, _bound: Bound, work: &mut dyn FnMut(&dyn Tx) -> Result<bool>) -> Result<()> {
        self.write_shared(|connection| {
            let tx = SqliteTx {
                connection,
                purge: &self.purge,
            };
            Ok(((), work(&tx)?))
        })
    }

    fn read(&self, lane: Lane, work: &mut dyn FnMut(&dyn Tx) -> Result<()>) -> Result<()> {
        // A login's read goes to the write connection when it is idle (no transaction open,
        // nobody holding it): its page cache holds what it committed last, where the reader's
        // is emptied by every commit and read again from the file. When the writer is busy,
        // the read goes to the reader and waits for no commit; a commit that comes during a
        // read on the writer waits for that read of a few rows. So read work must never write:
        // on the writer it would wait for itself. A poisoned lock is taken as `writer` takes
        // it; a connection left inside a transaction (a rollback that failed) is not read on.
        if lane == Lane::Login {
            let idle = match self.writer.try_lock() {
                Ok(writer) => Some(writer),
                Err(std::sync::TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
                Err(std::sync::TryLockError::WouldBlock) => None,
            };
            if let Some(writer) = idle
                && writer.batch.is_none()
                && writer.connection.is_autocommit()
            {
                return work(&SqliteTx {
                    connection: &writer.connection,
                    purge: &self.purge,
                });
            }
        }
        let connection = self.reader(lane);
        work(&SqliteTx {
            connection: &connection,
            purge: &self.purge,
        })
    }

    fn trust_absence(&self) -> Result<()> {
        self.integrity.wait()
    }

    fn describe(&self) -> String {
        format!("SQLite {}", self.path.display())
    }
}

mod migrations;
#[cfg(test)]
pub(crate) mod tests;
