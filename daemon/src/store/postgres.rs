//! The PostgreSQL store: one database shared by every mfad of a fleet.
//!
//! Each operation is one transaction. What decides something under concurrency is a
//! conditional update (a time step spent only if no later one was, a recovery code used only
//! if unused), and every change about one user first takes a transaction-scoped advisory lock
//! on that user's name, so the logins and commands of one user on every host take their turns
//! as they do on one host's SQLite file, while other users' go on in parallel. Nothing is read
//! on one host to be written back later.
//!
//! Calls block the calling thread (never the bus executor: callers run them off it) and each
//! is bounded by `store.timeout`, connecting included; past it the call fails, its connection
//! is dropped, and the request that needed it is denied. Nothing is kept locally instead.

use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode};
use pam_mfa_config::{Algorithm, StoreSettings, Tls};
use postgres_openssl::MakeTlsConnector;
use std::cell::RefCell;
use std::collections::HashMap;
use tokio_postgres::config::{Host, SslMode};

use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, NoTls, Row, Statement, Transaction};

use super::{
    Attempt, AuditFilter, AuditRow, Enrollment, EnrollmentId, Enrollments, Imported, LockoutRule,
    NextTry, Origin, Proof, RecoveryId, RememberTerms, Remembered, Result, Store, StoreError,
    StoredSwitches, Tried, TryCount,
};
use crate::audit::Event;
use crate::recovery::Hashed;
use crate::totp::{Params, Secret};
use crate::users::UserName;

/// Migrations, applied in order; the table `pam_mfa_schema` records how many ran.
const MIGRATIONS: &[&str] = &[
    // 1: everything the SQLite store has at its version 7, and the host of each audit entry.
    "CREATE TABLE enrollments (
        id BIGSERIAL PRIMARY KEY,
        username TEXT NOT NULL,
        secret BYTEA NOT NULL,
        algorithm TEXT NOT NULL,
        digits INTEGER NOT NULL,
        period INTEGER NOT NULL,
        active BOOLEAN NOT NULL,
        created BIGINT NOT NULL,
        confirmed BIGINT,
        last_step BIGINT,
        last_used BIGINT,
        UNIQUE (username, active)
    );
    CREATE INDEX enrollments_username_lower ON enrollments (lower(username));
    CREATE TABLE recovery_codes (
        id BIGSERIAL PRIMARY KEY,
        enrollment BIGINT NOT NULL,
        salt BYTEA NOT NULL,
        hash BYTEA NOT NULL,
        used BIGINT
    );
    CREATE INDEX recovery_codes_enrollment ON recovery_codes (enrollment);
    CREATE TABLE user_settings (
        username TEXT PRIMARY KEY,
        enforced BOOLEAN NOT NULL
    );
    CREATE INDEX user_settings_username_lower ON user_settings (lower(username));
    CREATE TABLE settings (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    CREATE TABLE lockout (
        username TEXT PRIMARY KEY,
        tries INTEGER NOT NULL,
        since BIGINT NOT NULL,
        locked_until BIGINT NOT NULL,
        locks INTEGER NOT NULL
    );
    CREATE TABLE remembered (
        username TEXT NOT NULL,
        service TEXT NOT NULL,
        rhost TEXT NOT NULL,
        enrollment BIGINT NOT NULL,
        verified BIGINT NOT NULL,
        last_seen BIGINT NOT NULL,
        PRIMARY KEY (username, service, rhost)
    );
    CREATE TABLE audit (
        id BIGSERIAL PRIMARY KEY,
        time BIGINT NOT NULL,
        kind TEXT NOT NULL,
        username TEXT,
        host TEXT NOT NULL,
        line TEXT NOT NULL
    );
    CREATE INDEX audit_username ON audit (username, id);
    CREATE INDEX audit_time ON audit (time);",
];

const GLOBAL_ENFORCEMENT: &str = "enforce_all_users";

/// The first key of pam-mfa's advisory locks (the second is one of the [`USER_LOCKS`] users'
/// locks, or -1 for migrations), so that they never meet another application's in the same
/// database.
const LOCK_SPACE: i32 = 0x6d_66_61; // "mfa"

/// Connections one mfad keeps to the server at most; more callers wait for one (within the
/// timeout).
const MAX_CONNECTIONS: usize = 16;

/// Locks the users' rows are spread over (a power of two). More means fewer unrelated logins
/// waiting for each other; an import takes at most this many locks in one transaction, and a
/// server's lock table holds max_locks_per_transaction (64 by default) times its connections.
const USER_LOCKS: i32 = 1024;

/// What the error says when the tables are newer than this mfad: the one failure at start
/// that is not waited out, since no retry mends it.
const NEWER_SCHEMA: &str = "newer than this mfad knows";

/// After a failure to reach the server, how long calls fail at once without trying again.
const FAIL_FAST: Duration = Duration::from_secs(1);

/// The bound on one batch of an import (up to 10,000 users).
const IMPORT_TIMEOUT: Duration = Duration::from_secs(120);

impl From<tokio_postgres::Error> for StoreError {
    fn from(error: tokio_postgres::Error) -> Self {
        StoreError(format!("database error: {}", explain(&error)))
    }
}

/// An error with its causes ("error performing TLS handshake: certificate verify failed"): the
/// server's message, or the library's, never a statement's parameters (no secrets).
fn explain(error: &tokio_postgres::Error) -> String {
    let mut text = error.to_string();
    let mut cause = std::error::Error::source(error);
    while let Some(inner) = cause {
        // OpenSSL's errors repeat themselves down the chain: each line once.
        let line = inner.to_string();
        if !text.contains(&line) {
            text.push_str(": ");
            text.push_str(&line);
        }
        cause = inner.source();
    }
    text
}

/// A connection of the pool, with the statements prepared on it (each statement is parsed
/// once per connection; later calls cost one round trip).
struct Conn {
    client: Client,
    statements: RefCell<HashMap<&'static str, Statement>>,
}

/// What one call's work runs its statements on: a transaction, or (for a read of one
/// statement or a few independent ones) the connection itself, which saves the BEGIN and
/// COMMIT round trips.
pub(crate) struct Tx<'a> {
    on: On<'a>,
    statements: &'a RefCell<HashMap<&'static str, Statement>>,
}

enum On<'a> {
    Transaction(Transaction<'a>),
    Connection(&'a Client),
}

type Values<'a> = [&'a (dyn ToSql + Sync)];

impl Tx<'_> {
    async fn statement(&self, sql: &'static str) -> Result<Statement> {
        if let Some(statement) = self.statements.borrow().get(sql) {
            return Ok(statement.clone());
        }
        let statement = match &self.on {
            On::Transaction(transaction) => transaction.prepare(sql).await?,
            On::Connection(client) => client.prepare(sql).await?,
        };
        self.statements.borrow_mut().insert(sql, statement.clone());
        Ok(statement)
    }

    /// Statements without parameters, not prepared (settings of the transaction).
    async fn batch_execute(&self, sql: &str) -> Result<()> {
        match &self.on {
            On::Transaction(transaction) => transaction.batch_execute(sql).await?,
            On::Connection(client) => client.batch_execute(sql).await?,
        }
        Ok(())
    }

    async fn execute(&self, sql: &'static str, params: &Values<'_>) -> Result<u64> {
        let statement = self.statement(sql).await?;
        Ok(match &self.on {
            On::Transaction(transaction) => transaction.execute(&statement, params).await?,
            On::Connection(client) => client.execute(&statement, params).await?,
        })
    }

    async fn query(&self, sql: &'static str, params: &Values<'_>) -> Result<Vec<Row>> {
        let statement = self.statement(sql).await?;
        Ok(match &self.on {
            On::Transaction(transaction) => transaction.query(&statement, params).await?,
            On::Connection(client) => client.query(&statement, params).await?,
        })
    }

    async fn query_opt(&self, sql: &'static str, params: &Values<'_>) -> Result<Option<Row>> {
        let statement = self.statement(sql).await?;
        Ok(match &self.on {
            On::Transaction(transaction) => transaction.query_opt(&statement, params).await?,
            On::Connection(client) => client.query_opt(&statement, params).await?,
        })
    }

    async fn query_one(&self, sql: &'static str, params: &Values<'_>) -> Result<Row> {
        let statement = self.statement(sql).await?;
        Ok(match &self.on {
            On::Transaction(transaction) => transaction.query_one(&statement, params).await?,
            On::Connection(client) => client.query_one(&statement, params).await?,
        })
    }
}

enum Connector {
    Plain,
    Tls(MakeTlsConnector),
}

pub struct PostgresStore {
    runtime: tokio::runtime::Runtime,
    config: tokio_postgres::Config,
    connector: Connector,
    idle: Mutex<Vec<Conn>>,
    slots: tokio::sync::Semaphore,
    timeout: Duration,
    host: String,
    /// Where the database is, for messages (no password).
    describe: String,
    /// After a failure to reach the server: until when calls fail at once with that failure,
    /// so that the several calls of one login wait for the server once, not each in turn.
    unreachable: Mutex<Option<(Instant, String)>>,
}

/// Reads the connection string named by the settings; a file must be root's and private
/// (checked on the file opened, so it cannot change between the check and the read).
fn connection_string(settings: &StoreSettings) -> Result<String> {
    use std::io::Read;
    use std::os::unix::fs::MetadataExt;
    let Some(path) = &settings.url_file else {
        return Ok(settings.url.get_ref().clone());
    };
    let failed =
        |error: std::io::Error| StoreError(format!("store.url_file {}: {error}", path.display()));
    let mut file = std::fs::File::open(path).map_err(failed)?;
    let meta = file.metadata().map_err(failed)?;
    if meta.uid() != 0 || meta.mode() & 0o077 != 0 {
        return Err(StoreError(format!(
            "store.url_file {} may hold a password, so it must belong to root and be readable \
             by no one else (chown root {0}; chmod 600 {0})",
            path.display()
        )));
    }
    let mut text = String::new();
    file.read_to_string(&mut text).map_err(failed)?;
    let text = text.trim().to_owned();
    if text.is_empty() {
        return Err(StoreError(format!(
            "store.url_file {} is empty: write the connection string in it",
            path.display()
        )));
    }
    Ok(text)
}

impl PostgresStore {
    /// Connects to the database the settings name, as `host` in the audit trail, and creates or
    /// upgrades its tables. Fails on settings that cannot work and on tables newer than this
    /// mfad; a server that cannot be reached is not a failure (it is logged): mfad serves, and
    /// denies every login that needs the database until it answers, so that a database outage
    /// never looks like an absent mfad to the PAM module.
    pub fn open(settings: &StoreSettings, host: String) -> Result<Self> {
        let text = connection_string(settings)?;
        let mut config: tokio_postgres::Config = text.parse().map_err(|error| {
            StoreError(format!(
                "the store's connection string is not valid: {error}"
            ))
        })?;
        // Whatever the configuration's own check found, the parser decides what a password
        // is (a URI's user information runs to its first "@", keys may be percent-encoded).
        if settings.url_file.is_none() && config.get_password().is_some() {
            return Err(StoreError(
                "store.url holds a password, and mfad.toml is readable by every user: put the \
                 connection string in store.url_file (mode 0600) instead"
                    .into(),
            ));
        }
        let timeout = Duration::from_secs(settings.timeout.get().into());
        config.connect_timeout(timeout);
        // A server that stops answering is noticed by the kernel: unacknowledged data gives
        // up after the timeout, an idle connection is probed.
        config.tcp_user_timeout(timeout);
        config.keepalives(true);
        config.keepalives_idle(Duration::from_secs(30));
        if config.get_application_name().is_none() {
            config.application_name("mfad");
        }
        // Only Unix sockets go without TLS whatever tls says: a hostaddr= (an IP address) is
        // TCP even when no host= is given.
        let hosts = config.get_hosts();
        let local = !hosts.is_empty()
            && hosts.iter().all(|host| matches!(host, Host::Unix(_)))
            && config.get_hostaddrs().is_empty();
        if !local
            && settings.tls != Tls::Disable
            && !hosts.iter().any(|host| matches!(host, Host::Tcp(_)))
        {
            return Err(StoreError(
                "TLS to the database needs its name, and the connection string gives only an \
                 address: add host=NAME (the name in the server's certificate; hostaddr= may \
                 stay, to skip the name's lookup)"
                    .into(),
            ));
        }
        // Unix sockets never use TLS.
        let connector = if local || settings.tls == Tls::Disable {
            config.ssl_mode(SslMode::Disable);
            Connector::Plain
        } else {
            config.ssl_mode(SslMode::Require);
            let mut builder = SslConnector::builder(SslMethod::tls())
                .map_err(|error| StoreError(format!("TLS set-up: {error}")))?;
            let check = settings.tls == Tls::VerifyFull;
            if !check {
                builder.set_verify(SslVerifyMode::NONE);
            } else if let Some(ca) = &settings.ca_file {
                // These authorities only: the system's would let anyone with a public
                // certificate for the server's name stand in for it.
                builder.set_cert_store(only_authorities(ca)?);
            }
            let mut connector = MakeTlsConnector::new(builder.build());
            connector.set_callback(move |connect, _| {
                connect.set_verify_hostname(check);
                Ok(())
            });
            Connector::Tls(connector)
        };
        let describe = describe(&config);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("postgres")
            .enable_all()
            .build()
            .map_err(|error| StoreError(format!("cannot start the database runtime: {error}")))?;
        let store = PostgresStore {
            runtime,
            config,
            connector,
            idle: Mutex::new(Vec::new()),
            slots: tokio::sync::Semaphore::new(MAX_CONNECTIONS),
            timeout,
            host,
            describe,
            unreachable: Mutex::new(None),
        };
        // Connecting checks the tables (see check_out); no statement is needed beyond that.
        match store.read(async |_| Ok(())) {
            Ok(()) => {}
            Err(error) if error.0.contains(NEWER_SCHEMA) => return Err(error),
            Err(error) => crate::log::warning(&format!(
                "{error}; logins that need the database are denied until it answers"
            )),
        }
        Ok(store)
    }

    /// Where the database is, for mfad's log: hosts, port and database name.
    pub fn describe(&self) -> &str {
        &self.describe
    }

    async fn connect(&self) -> Result<Client> {
        let unreachable = |error: tokio_postgres::Error| {
            StoreError(format!(
                "cannot connect to {}: {}",
                self.describe,
                explain(&error)
            ))
        };
        let client = match &self.connector {
            Connector::Plain => {
                let (client, connection) = self.config.connect(NoTls).await.map_err(unreachable)?;
                tokio::spawn(connection);
                client
            }
            Connector::Tls(tls) => {
                let (client, connection) = self
                    .config
                    .connect(tls.clone())
                    .await
                    .map_err(unreachable)?;
                tokio::spawn(connection);
                client
            }
        };
        // The server gives up too, so a lock or a statement never outlives its caller long.
        let millis = self.timeout.as_millis();
        client
            .batch_execute(&format!(
                "SET statement_timeout = {millis}; SET lock_timeout = {millis};
                 SET idle_in_transaction_session_timeout = {}",
                millis * 2
            ))
            .await?;
        Ok(client)
    }

    /// Runs `work` in one transaction, on a connection of the pool, within the timeout; commits
    /// when it says so (`(value, true)`), else rolls back. A connection that failed or timed
    /// out is dropped, not reused.
    fn run<T>(&self, work: impl AsyncFnOnce(&Tx<'_>) -> Result<(T, bool)>) -> Result<T> {
        self.run_within(self.timeout, true, work)
    }

    /// Runs `work`, which only reads, on a connection of the pool outside any transaction,
    /// within the timeout.
    fn read<T>(&self, work: impl AsyncFnOnce(&Tx<'_>) -> Result<T>) -> Result<T> {
        self.run_within(self.timeout, false, async |tx| Ok((work(tx).await?, false)))
    }

    /// [`PostgresStore::run`] with another bound, for work that is long by nature (an import
    /// of many users).
    fn run_within<T>(
        &self,
        limit: Duration,
        transaction: bool,
        work: impl AsyncFnOnce(&Tx<'_>) -> Result<(T, bool)>,
    ) -> Result<T> {
        if let Some((until, failure)) = self.unreachable().as_ref()
            && Instant::now() < *until
        {
            return Err(StoreError(failure.clone()));
        }
        let late = || {
            StoreError(format!(
                "the database at {} did not answer within {} s",
                self.describe,
                limit.as_secs()
            ))
        };
        self.runtime.block_on(async {
            let deadline = tokio::time::Instant::now() + limit;
            let checked_out = tokio::time::timeout_at(deadline, self.check_out()).await;
            let (_slot, mut conn) = match checked_out {
                Ok(Ok(checked_out)) => checked_out,
                Ok(Err(error)) => return Err(self.note_unreachable(error)),
                Err(_) => return Err(self.note_unreachable(late())),
            };
            let Conn { client, statements } = &mut conn;
            let outcome = if transaction {
                let worked = tokio::time::timeout_at(deadline, async {
                    let tx = Tx {
                        on: On::Transaction(client.transaction().await?),
                        statements,
                    };
                    let (value, commit) = work(&tx).await?;
                    Ok::<_, StoreError>((tx, value, commit))
                })
                .await
                .unwrap_or_else(|_| Err(late()));
                match worked {
                    Ok((tx, value, commit)) => {
                        let On::Transaction(transaction) = tx.on else {
                            unreachable!("a transaction was begun")
                        };
                        // The end of a transaction has a bound of its own, and a commit that
                        // runs out of it may have been made: the caller denies, and says so.
                        let ended = if commit {
                            tokio::time::timeout(limit, transaction.commit()).await
                        } else {
                            tokio::time::timeout(limit, transaction.rollback()).await
                        };
                        match ended {
                            Ok(Ok(())) => Ok(value),
                            Ok(Err(error)) => Err(error.into()),
                            Err(_) if commit => Err(StoreError(format!(
                                "the database at {} did not confirm a change within {} s; it \
                                 may have been made",
                                self.describe,
                                limit.as_secs()
                            ))),
                            Err(_) => Err(late()),
                        }
                    }
                    Err(error) => Err(error),
                }
            } else {
                let tx = Tx {
                    on: On::Connection(client),
                    statements,
                };
                tokio::time::timeout_at(deadline, work(&tx))
                    .await
                    .unwrap_or_else(|_| Err(late()))
                    .map(|(value, _)| value)
            };
            if outcome.is_ok() {
                *self.unreachable() = None;
                self.idle
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .push(conn);
            }
            outcome
        })
    }

    fn unreachable(&self) -> std::sync::MutexGuard<'_, Option<(Instant, String)>> {
        self.unreachable
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Remembers that the server could not be reached: calls in the next [`FAIL_FAST`] fail
    /// at once with the same error, so that the calls of one login wait for an unreachable
    /// server once, not each in turn (and the login ends within the module's timeout).
    fn note_unreachable(&self, error: StoreError) -> StoreError {
        *self.unreachable() = Some((Instant::now() + FAIL_FAST, error.0.clone()));
        error
    }

    /// A connection of the pool, or a new one (whose tables are checked, and created or
    /// upgraded, first: another host may have upgraded them since this mfad started), with the
    /// permit that counts it.
    async fn check_out(&self) -> Result<(tokio::sync::SemaphorePermit<'_>, Conn)> {
        let slot = self
            .slots
            .acquire()
            .await
            .map_err(|_| StoreError("the database pool is closed".into()))?;
        let reused = self
            .idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .pop()
            .filter(|conn| !conn.client.is_closed());
        if let Some(conn) = reused {
            return Ok((slot, conn));
        }
        let mut client = self.connect().await?;
        migrate(&mut client).await?;
        Ok((
            slot,
            Conn {
                client,
                statements: RefCell::new(HashMap::new()),
            },
        ))
    }

    /// [`PostgresStore::run`] for a change about `user`: takes the user's lock first, appends
    /// `event` when `work` succeeds (`Ok(..)`), and keeps nothing of it when it declines.
    fn change<T>(
        &self,
        user: &UserName,
        now: i64,
        event: &Event,
        work: impl AsyncFnOnce(&Tx<'_>) -> Result<std::result::Result<T, ()>>,
    ) -> Result<std::result::Result<T, ()>> {
        self.run(async |transaction| {
            lock_user(transaction, user).await?;
            let outcome = work(transaction).await?;
            if outcome.is_ok() {
                append(transaction, &self.host, now, event).await?;
            }
            let commit = outcome.is_ok();
            Ok((outcome, commit))
        })
    }
}

/// Creates or upgrades the tables, one mfad at a time (several hosts may start at once).
async fn migrate(client: &mut Client) -> Result<()> {
    let known = MIGRATIONS.len() as i32;
    let transaction = client.transaction().await?;
    transaction
        .execute("SELECT pg_advisory_xact_lock($1, -1)", &[&LOCK_SPACE])
        .await?;
    transaction
        .batch_execute("CREATE TABLE IF NOT EXISTS pam_mfa_schema (version INTEGER NOT NULL)")
        .await?;
    let version: i32 = match transaction
        .query_opt("SELECT version FROM pam_mfa_schema", &[])
        .await?
    {
        Some(row) => row.get(0),
        None => {
            transaction
                .execute("INSERT INTO pam_mfa_schema (version) VALUES (0)", &[])
                .await?;
            0
        }
    };
    if version > known {
        return Err(StoreError(format!(
            "the database holds pam-mfa tables of version {version}, {NEWER_SCHEMA} \
             ({known}): upgrade mfad on this host"
        )));
    }
    for migration in &MIGRATIONS[version as usize..] {
        transaction.batch_execute(migration).await?;
    }
    transaction
        .execute("UPDATE pam_mfa_schema SET version = $1", &[&known])
        .await?;
    transaction.commit().await?;
    Ok(())
}

/// A certificate store holding only the authorities in the PEM file `path`.
fn only_authorities(path: &Path) -> Result<openssl::x509::store::X509Store> {
    let failed = |error: String| StoreError(format!("store.ca_file {}: {error}", path.display()));
    let pem = std::fs::read(path).map_err(|error| failed(error.to_string()))?;
    let certificates =
        openssl::x509::X509::stack_from_pem(&pem).map_err(|error| failed(error.to_string()))?;
    if certificates.is_empty() {
        return Err(failed("no certificate in it (PEM expected)".into()));
    }
    let mut store =
        openssl::x509::store::X509StoreBuilder::new().map_err(|error| failed(error.to_string()))?;
    for certificate in certificates {
        store
            .add_cert(certificate)
            .map_err(|error| failed(error.to_string()))?;
    }
    Ok(store.build())
}

/// Hosts, port and database of a connection string, without user or password.
fn describe(config: &tokio_postgres::Config) -> String {
    let mut hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .map(|host| match host {
            Host::Tcp(name) => name.clone(),
            Host::Unix(path) => path.display().to_string(),
        })
        .collect();
    hosts.extend(
        config
            .get_hostaddrs()
            .iter()
            .map(|address| address.to_string()),
    );
    let port = config
        .get_ports()
        .first()
        .map_or(String::new(), |port| format!(":{port}"));
    format!(
        "PostgreSQL {}{port} database {}",
        hosts.join(","),
        config.get_dbname().unwrap_or("(the user's)")
    )
}

/// Waits for (then holds, until the transaction ends) the lock of `user`'s rows, so that
/// changes about one user take their turns on every host. Users share [`USER_LOCKS`] locks
/// (a hash of the name picks one), so that an import of thousands takes no more than that.
async fn lock_user(transaction: &Tx<'_>, user: &UserName) -> Result<()> {
    transaction
        .execute(
            "SELECT pg_advisory_xact_lock($1, hashtext($2) & $3)",
            &[&LOCK_SPACE, &user.as_str(), &(USER_LOCKS - 1)],
        )
        .await?;
    Ok(())
}

async fn append(transaction: &Tx<'_>, host: &str, now: i64, event: &Event) -> Result<()> {
    if let Event::Pair(first, second) = event {
        let at = match **first {
            Event::Challenged { at, .. } => at,
            _ => now,
        };
        Box::pin(append(transaction, host, at, first)).await?;
        return Box::pin(append(transaction, host, now, second)).await;
    }
    if event.is_kept() {
        transaction
            .execute(
                "INSERT INTO audit (time, kind, username, host, line)
                 VALUES ($1, $2, $3, $4, $5)",
                &[
                    &now,
                    &event.kind(),
                    &event.user(),
                    &host,
                    &event.to_string(),
                ],
            )
            .await?;
    }
    Ok(())
}

fn to_u32(value: i32, what: &str) -> Result<u32> {
    u32::try_from(value).map_err(|_| StoreError(format!("stored {what} {value} is out of range")))
}

async fn read_enrollments(transaction: &Tx<'_>, user: &UserName) -> Result<Enrollments> {
    let rows = transaction
        .query(
            "SELECT id, secret, algorithm, digits, period, active, created, confirmed, last_used
             FROM enrollments WHERE username = $1",
            &[&user.as_str()],
        )
        .await?;
    let mut found = Enrollments::default();
    for row in rows {
        let algorithm: String = row.get(2);
        let algorithm = Algorithm::from_name(&algorithm).ok_or_else(|| {
            StoreError(format!(
                "the enrollment of {user} names an unknown algorithm {algorithm:?}"
            ))
        })?;
        let active: bool = row.get(5);
        let enrollment = Enrollment {
            id: EnrollmentId(row.get(0)),
            secret: Secret::from_bytes(row.get(1)),
            params: Params {
                algorithm,
                digits: to_u32(row.get(3), "digits")?,
                period: to_u32(row.get(4), "period")?,
            },
            active,
            created: row.get(6),
            confirmed: row.get(7),
            last_used: row.get(8),
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
/// code clears the user's count of tries, and where `origin` is given, it is remembered for
/// logins from there.
async fn spend(
    transaction: &Tx<'_>,
    user: &UserName,
    id: EnrollmentId,
    proof: Proof,
    now: i64,
    origin: Option<Origin<'_>>,
) -> Result<bool> {
    let changed = match proof {
        Proof::Step(step) => {
            transaction
                .execute(
                    "UPDATE enrollments SET last_step = $3, last_used = $4
                     WHERE id = $1 AND username = $2 AND active
                        AND (last_step IS NULL OR last_step < $3)",
                    &[&id.0, &user.as_str(), &(step as i64), &now],
                )
                .await?
        }
        Proof::RecoveryCode(code) => {
            transaction
                .execute(
                    "UPDATE recovery_codes SET used = $4
                     WHERE id = $3 AND enrollment = $1 AND used IS NULL
                        AND EXISTS (SELECT 1 FROM enrollments
                                    WHERE id = $1 AND username = $2 AND active)",
                    &[&id.0, &user.as_str(), &code.0, &now],
                )
                .await?
        }
    };
    if changed != 1 {
        return Ok(false);
    }
    transaction
        .execute("DELETE FROM lockout WHERE username = $1", &[&user.as_str()])
        .await?;
    if let Some(origin) = origin {
        transaction
            .execute(
                "INSERT INTO remembered (username, service, rhost, enrollment, verified, last_seen)
                 VALUES ($1, $2, $3, $4, $5, $5)
                 ON CONFLICT (username, service, rhost) DO UPDATE SET
                    enrollment = excluded.enrollment, verified = excluded.verified,
                    last_seen = excluded.last_seen",
                &[&user.as_str(), &origin.service, &origin.rhost, &id.0, &now],
            )
            .await?;
    }
    Ok(true)
}

/// Counts one try of a code by `user` (see [`Store::begin_attempt`]); the caller holds the
/// user's lock. When the try is allowed, `spend` runs first: if it spends the code, which
/// clears the count, the try is not written only to be deleted.
async fn attempt(
    transaction: &Tx<'_>,
    host: &str,
    user: &UserName,
    now: i64,
    rule: LockoutRule,
    locked: &dyn Fn(i64) -> Event,
    spend: impl AsyncFnOnce() -> Result<bool>,
) -> Result<(Attempt, bool)> {
    let count = transaction
        .query_opt(
            "SELECT tries, since, locked_until, locks FROM lockout WHERE username = $1",
            &[&user.as_str()],
        )
        .await?
        .map(|row| TryCount {
            tries: row.get::<_, i32>(0).into(),
            since: row.get(1),
            locked_until: row.get(2),
            locks: row.get::<_, i32>(3).into(),
        });
    let small = |value: i64| value.clamp(0, i32::MAX.into()) as i32;
    let count = match rule.next(count, now) {
        NextTry::Locked { until } => return Ok((Attempt::Locked { until, new: false }, false)),
        NextTry::Locks { count } => {
            append(transaction, host, now, &locked(count.locked_until)).await?;
            transaction
                .execute(
                    "INSERT INTO lockout (username, tries, since, locked_until, locks)
                     VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (username) DO UPDATE SET tries = excluded.tries,
                        since = excluded.since, locked_until = excluded.locked_until,
                        locks = excluded.locks",
                    &[
                        &user.as_str(),
                        &small(count.tries),
                        &count.since,
                        &count.locked_until,
                        &small(count.locks),
                    ],
                )
                .await?;
            let until = count.locked_until;
            return Ok((Attempt::Locked { until, new: true }, false));
        }
        NextTry::Counts { count } => count,
    };
    if spend().await? {
        return Ok((Attempt::Allowed, true));
    }
    transaction
        .execute(
            "INSERT INTO lockout (username, tries, since, locked_until, locks)
             VALUES ($1, $2, $3, 0, $4)
             ON CONFLICT (username) DO UPDATE SET tries = excluded.tries, since = excluded.since",
            &[
                &user.as_str(),
                &small(count.tries),
                &count.since,
                &small(count.locks),
            ],
        )
        .await?;
    Ok((Attempt::Allowed, false))
}

/// Forgets every remembered login of the user (a reset, a disable, a new phone).
async fn forget_remembered(transaction: &Tx<'_>, user: &UserName) -> Result<()> {
    transaction
        .execute(
            "DELETE FROM remembered WHERE username = $1",
            &[&user.as_str()],
        )
        .await?;
    Ok(())
}

/// Removes the recovery codes of the user's enrollments: the active one's, the pending one's,
/// or (`None`) all.
async fn delete_recovery_codes(
    transaction: &Tx<'_>,
    user: &UserName,
    active: Option<bool>,
) -> Result<u64> {
    transaction
        .execute(
            "DELETE FROM recovery_codes WHERE enrollment IN
                (SELECT id FROM enrollments
                 WHERE username = $1 AND ($2::BOOLEAN IS NULL OR active = $2))",
            &[&user.as_str(), &active],
        )
        .await
}

async fn insert_recovery_codes(transaction: &Tx<'_>, id: i64, recovery: &[Hashed]) -> Result<()> {
    if recovery.is_empty() {
        return Ok(());
    }
    let ids = vec![id; recovery.len()];
    let salts: Vec<&[u8]> = recovery.iter().map(|code| code.salt.as_slice()).collect();
    let hashes: Vec<&[u8]> = recovery.iter().map(|code| code.hash.as_slice()).collect();
    transaction
        .execute(
            "INSERT INTO recovery_codes (enrollment, salt, hash)
             SELECT * FROM unnest($1::BIGINT[], $2::BYTEA[], $3::BYTEA[])",
            &[&ids, &salts, &hashes],
        )
        .await?;
    Ok(())
}

/// For each entry, whether its name was given before in the batch, exactly or in another
/// case: as one-by-one inserts would find it (the earlier one stored, or its other spelling).
fn repeated_spellings(entries: &[Imported]) -> Vec<bool> {
    let mut seen = std::collections::HashSet::new();
    entries
        .iter()
        .map(|entry| !seen.insert(entry.user.as_str().to_lowercase()))
        .collect()
}

fn stored_name(name: &str) -> Result<UserName> {
    UserName::parse(name)
        .map_err(|reason| StoreError(format!("stored user name {name:?}: {reason}")))
}

impl PostgresStore {
    fn store_pending(
        &self,
        user: &UserName,
        proof: Option<(EnrollmentId, Proof)>,
        secret: &Secret,
        params: Params,
        now: i64,
        event: &Event,
    ) -> Result<Option<EnrollmentId>> {
        let id = self.change(user, now, event, async |transaction| {
            if let Some((active, proof)) = proof
                && !spend(transaction, user, active, proof, now, None).await?
            {
                return Ok(Err(()));
            }
            delete_recovery_codes(transaction, user, Some(false)).await?;
            transaction
                .execute(
                    "DELETE FROM enrollments WHERE username = $1 AND NOT active",
                    &[&user.as_str()],
                )
                .await?;
            let row = transaction
                .query_one(
                    "INSERT INTO enrollments
                        (username, secret, algorithm, digits, period, active, created)
                     VALUES ($1, $2, $3, $4, $5, FALSE, $6) RETURNING id",
                    &[
                        &user.as_str(),
                        &secret.as_bytes(),
                        &params.algorithm.name(),
                        &(params.digits as i32),
                        &(params.period as i32),
                        &now,
                    ],
                )
                .await?;
            Ok(Ok(EnrollmentId(row.get(0))))
        })?;
        Ok(id.ok())
    }
}

impl Store for PostgresStore {
    fn enrollments(&self, user: &UserName) -> Result<Enrollments> {
        self.read(async |transaction| Ok(read_enrollments(transaction, user).await?))
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
        let changed = self.change(user, now, event, async |transaction| {
            let pending = transaction
                .query_opt(
                    "SELECT 1 FROM enrollments WHERE id = $1 AND username = $2 AND NOT active",
                    &[&id.0, &user.as_str()],
                )
                .await?;
            if pending.is_none() {
                return Ok(Err(()));
            }
            // The phone this one replaces stops working now, and so does what it proved.
            delete_recovery_codes(transaction, user, Some(true)).await?;
            forget_remembered(transaction, user).await?;
            transaction
                .execute(
                    "DELETE FROM enrollments WHERE username = $1 AND active",
                    &[&user.as_str()],
                )
                .await?;
            let changed = transaction
                .execute(
                    "UPDATE enrollments SET active = TRUE, confirmed = $3, last_step = $4
                     WHERE id = $1 AND username = $2 AND NOT active",
                    &[&id.0, &user.as_str(), &now, &(step as i64)],
                )
                .await?;
            if changed != 1 {
                return Ok(Err(()));
            }
            insert_recovery_codes(transaction, id.0, recovery).await?;
            Ok(Ok(()))
        })?;
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
        let changed = self.change(user, now, event, async |transaction| {
            if !spend(transaction, user, id, proof, now, None).await? {
                return Ok(Err(()));
            }
            transaction
                .execute("DELETE FROM recovery_codes WHERE enrollment = $1", &[&id.0])
                .await?;
            insert_recovery_codes(transaction, id.0, recovery).await?;
            Ok(Ok(()))
        })?;
        Ok(changed.is_ok())
    }

    fn disable(
        &self,
        user: &UserName,
        id: EnrollmentId,
        proof: Proof,
        now: i64,
        event: &Event,
    ) -> Result<bool> {
        let removed = self.change(user, now, event, async |transaction| {
            if !spend(transaction, user, id, proof, now, None).await? {
                return Ok(Err(()));
            }
            delete_recovery_codes(transaction, user, None).await?;
            forget_remembered(transaction, user).await?;
            transaction
                .execute(
                    "DELETE FROM enrollments WHERE username = $1",
                    &[&user.as_str()],
                )
                .await?;
            Ok(Ok(()))
        })?;
        Ok(removed.is_ok())
    }

    fn recovery_codes(
        &self,
        user: &UserName,
        id: EnrollmentId,
    ) -> Result<Vec<(RecoveryId, Hashed)>> {
        self.read(async |transaction| {
            let rows = transaction
                .query(
                    "SELECT recovery_codes.id, salt, hash FROM recovery_codes
                     JOIN enrollments ON enrollments.id = recovery_codes.enrollment
                     WHERE enrollments.id = $1 AND enrollments.username = $2
                        AND enrollments.active AND used IS NULL
                     ORDER BY recovery_codes.id",
                    &[&id.0, &user.as_str()],
                )
                .await?;
            let mut codes = Vec::new();
            for row in rows {
                let code: i64 = row.get(0);
                let (Ok(salt), Ok(hash)) = (
                    row.get::<_, Vec<u8>>(1).try_into(),
                    row.get::<_, Vec<u8>>(2).try_into(),
                ) else {
                    return Err(StoreError(format!(
                        "recovery code {code} of {user} is damaged (wrong length)"
                    )));
                };
                codes.push((RecoveryId(code), Hashed { salt, hash }));
            }
            Ok(codes)
        })
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
        let left = self.change(user, now, event, async |transaction| {
            let proof = Proof::RecoveryCode(code);
            if !spend(transaction, user, id, proof, now, origin).await? {
                return Ok(Err(()));
            }
            let left: i64 = transaction
                .query_one(
                    "SELECT count(*) FROM recovery_codes WHERE enrollment = $1 AND used IS NULL",
                    &[&id.0],
                )
                .await?
                .get(0);
            Ok(Ok(left as usize))
        })?;
        Ok(left.ok())
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
        self.run(async |transaction| {
            lock_user(transaction, user).await?;
            let spend = async || match step {
                Some(step) => spend(transaction, user, id, Proof::Step(step), now, origin).await,
                None => Ok(false),
            };
            let tried =
                match attempt(transaction, &self.host, user, now, rule, locked, spend).await? {
                    (Attempt::Locked { until, new }, _) => Tried::Locked { until, new },
                    (Attempt::Allowed, true) => {
                        append(transaction, &self.host, now, spent).await?;
                        Tried::Spent
                    }
                    (Attempt::Allowed, false) => {
                        if let Some(event) = failed(step.is_some()) {
                            append(transaction, &self.host, now, &event).await?;
                        }
                        Tried::NotSpent
                    }
                };
            Ok((tried, true))
        })
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
        let spent = self.change(user, now, event, async |transaction| {
            let spent = spend(transaction, user, id, Proof::Step(step), now, origin).await?;
            Ok(spent.then_some(()).ok_or(()))
        })?;
        Ok(spent.is_ok())
    }

    fn remembered(
        &self,
        user: &UserName,
        id: EnrollmentId,
        origin: Origin<'_>,
    ) -> Result<Option<Remembered>> {
        self.read(async |transaction| {
            let row = transaction
                .query_opt(
                    "SELECT verified, last_seen FROM remembered
                     WHERE username = $1 AND service = $2 AND rhost = $3 AND enrollment = $4",
                    &[&user.as_str(), &origin.service, &origin.rhost, &id.0],
                )
                .await?;
            let found = row.map(|row| Remembered {
                verified: row.get(0),
                last_seen: row.get(1),
            });
            Ok(found)
        })
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
        let used = self.change(user, now, event, async |transaction| {
            let changed = transaction
                .execute(
                    "UPDATE remembered SET last_seen = $5
                     WHERE username = $1 AND service = $2 AND rhost = $3 AND enrollment = $4
                        AND last_seen + $6 > $5 AND verified + $7 > $5
                        AND EXISTS (SELECT 1 FROM enrollments
                                    WHERE id = $4 AND username = $1 AND active)
                        AND NOT EXISTS (SELECT 1 FROM lockout
                                        WHERE username = $1 AND locked_until > $5)",
                    &[
                        &user.as_str(),
                        &origin.service,
                        &origin.rhost,
                        &id.0,
                        &now,
                        &terms.duration,
                        &terms.limit,
                    ],
                )
                .await?;
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
        let repeated = repeated_spellings(entries);
        let names: Vec<&str> = entries.iter().map(|entry| entry.user.as_str()).collect();
        // Set-based, a few statements per batch whatever its size, and longer than one
        // login's bound.
        let imported = self.run_within(IMPORT_TIMEOUT, true, async |transaction| {
            // The batch's statements may take longer than a login's.
            let millis = IMPORT_TIMEOUT.as_millis();
            transaction
                .batch_execute(&format!(
                    "SET LOCAL statement_timeout = {millis}; SET LOCAL lock_timeout = {millis}"
                ))
                .await?;
            // The users' locks, in one order, so that two imports cannot wait for each other.
            transaction
                .execute(
                    "SELECT pg_advisory_xact_lock($1, lock) FROM
                        (SELECT DISTINCT hashtext(name) & $3 AS lock
                         FROM unnest($2::TEXT[]) AS name ORDER BY 1) AS ordered",
                    &[&LOCK_SPACE, &names, &(USER_LOCKS - 1)],
                )
                .await?;
            // A stored user spelled otherwise, or one with an app already, stops the import:
            // the first such entry, in the order given, is named.
            let refused: Vec<String> = transaction
                .query(
                    "SELECT name FROM unnest($1::TEXT[]) AS name
                     WHERE EXISTS (SELECT 1 FROM enrollments
                                   WHERE lower(username) = lower(name)
                                     AND (username <> name OR active))",
                    &[&names],
                )
                .await?
                .iter()
                .map(|row| row.get(0))
                .collect();
            if let Some((entry, _)) = entries.iter().zip(&repeated).find(|(entry, repeated)| {
                **repeated || refused.iter().any(|name| name == entry.user.as_str())
            }) {
                return Ok((Err(entry.user.clone()), false));
            }
            transaction
                .execute(
                    "DELETE FROM recovery_codes WHERE enrollment IN
                        (SELECT id FROM enrollments
                         WHERE username = ANY($1::TEXT[]) AND NOT active)",
                    &[&names],
                )
                .await?;
            transaction
                .execute(
                    "DELETE FROM enrollments WHERE username = ANY($1::TEXT[]) AND NOT active",
                    &[&names],
                )
                .await?;
            let secrets: Vec<&[u8]> = entries.iter().map(|e| e.secret.as_bytes()).collect();
            let algorithms: Vec<&str> = entries.iter().map(|e| e.params.algorithm.name()).collect();
            let digits: Vec<i32> = entries.iter().map(|e| e.params.digits as i32).collect();
            let periods: Vec<i32> = entries.iter().map(|e| e.params.period as i32).collect();
            let ids: HashMap<String, i64> = transaction
                .query(
                    "INSERT INTO enrollments
                        (username, secret, algorithm, digits, period, active, created, confirmed)
                     SELECT name, secret, algorithm, digits, period, TRUE, $6, $6
                     FROM unnest($1::TEXT[], $2::BYTEA[], $3::TEXT[], $4::INTEGER[],
                                 $5::INTEGER[])
                        WITH ORDINALITY AS entry (name, secret, algorithm, digits, period, n)
                     ORDER BY n
                     RETURNING username, id",
                    &[&names, &secrets, &algorithms, &digits, &periods, &now],
                )
                .await?
                .iter()
                .map(|row| (row.get(0), row.get(1)))
                .collect();
            if ids.len() != entries.len() {
                return Err(StoreError(format!(
                    "the import stored {} of {} enrollments",
                    ids.len(),
                    entries.len()
                )));
            }
            let mut owners = Vec::new();
            let mut salts: Vec<&[u8]> = Vec::new();
            let mut hashes: Vec<&[u8]> = Vec::new();
            for entry in entries {
                for code in &entry.recovery {
                    owners.push(ids[entry.user.as_str()]);
                    salts.push(code.salt.as_slice());
                    hashes.push(code.hash.as_slice());
                }
            }
            if !owners.is_empty() {
                transaction
                    .execute(
                        "INSERT INTO recovery_codes (enrollment, salt, hash)
                         SELECT * FROM unnest($1::BIGINT[], $2::BYTEA[], $3::BYTEA[])",
                        &[&owners, &salts, &hashes],
                    )
                    .await?;
            }
            append(transaction, &self.host, now, event).await?;
            Ok((Ok(entries.len()), true))
        })?;
        Ok(imported)
    }

    fn remove_enrollment(&self, user: &UserName, now: i64, event: &Event) -> Result<bool> {
        let removed = self.change(user, now, event, async |transaction| {
            delete_recovery_codes(transaction, user, None).await?;
            forget_remembered(transaction, user).await?;
            let removed = transaction
                .execute(
                    "DELETE FROM enrollments WHERE username = $1",
                    &[&user.as_str()],
                )
                .await?;
            Ok(if removed > 0 { Ok(()) } else { Err(()) })
        })?;
        Ok(removed.is_ok())
    }

    fn begin_attempt(
        &self,
        user: &UserName,
        now: i64,
        rule: LockoutRule,
        locked: &dyn Fn(i64) -> Event,
    ) -> Result<Attempt> {
        self.run(async |transaction| {
            lock_user(transaction, user).await?;
            let (attempt, _) = attempt(
                transaction,
                &self.host,
                user,
                now,
                rule,
                locked,
                async || Ok(false),
            )
            .await?;
            Ok((attempt, true))
        })
    }

    fn locked_until(&self, user: &UserName, now: i64) -> Result<Option<i64>> {
        self.read(async |transaction| {
            let until: Option<i64> = transaction
                .query_opt(
                    "SELECT locked_until FROM lockout WHERE username = $1",
                    &[&user.as_str()],
                )
                .await?
                .map(|row| row.get(0));
            Ok(until.filter(|until| *until > now))
        })
    }

    fn unlock(&self, user: &UserName, now: i64, event: &Event) -> Result<bool> {
        let was_locked = self.change(user, now, event, async |transaction| {
            let locked: Option<bool> = transaction
                .query_opt(
                    "DELETE FROM lockout WHERE username = $1 RETURNING locked_until > $2",
                    &[&user.as_str(), &now],
                )
                .await?
                .map(|row| row.get(0));
            Ok(if locked == Some(true) {
                Ok(())
            } else {
                Err(())
            })
        })?;
        Ok(was_locked.is_ok())
    }

    fn switches(&self, user: Option<&UserName>) -> Result<StoredSwitches> {
        self.read(async |transaction| {
            // Both in one statement: one round trip at every login.
            let row = transaction
                .query_one(
                    "SELECT (SELECT value FROM settings WHERE key = $1),
                            (SELECT enforced FROM user_settings WHERE username = $2)",
                    &[&GLOBAL_ENFORCEMENT, &user.map(UserName::as_str)],
                )
                .await?;
            let global: Option<String> = row.get(0);
            Ok(StoredSwitches {
                global: global.map(|value| value == "on"),
                user: row.get(1),
            })
        })
    }

    fn set_global_enforcement(&self, on: bool, now: i64, event: &Event) -> Result<()> {
        self.run(async |transaction| {
            transaction
                .execute(
                    "INSERT INTO settings (key, value) VALUES ($1, $2)
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    &[&GLOBAL_ENFORCEMENT, &(if on { "on" } else { "off" })],
                )
                .await?;
            append(transaction, &self.host, now, event).await?;
            Ok(((), true))
        })
    }

    fn set_user_enforcement(
        &self,
        user: &UserName,
        on: bool,
        now: i64,
        event: &Event,
    ) -> Result<()> {
        self.change(user, now, event, async |transaction| {
            transaction
                .execute(
                    "INSERT INTO user_settings (username, enforced) VALUES ($1, $2)
                     ON CONFLICT (username) DO UPDATE SET enforced = excluded.enforced",
                    &[&user.as_str(), &on],
                )
                .await?;
            Ok(Ok(()))
        })
        .map(drop)
    }

    fn users(&self) -> Result<Vec<UserName>> {
        let names: Vec<String> = self.read(async |transaction| {
            let rows = transaction
                .query(
                    "SELECT username FROM enrollments UNION SELECT username FROM user_settings
                     ORDER BY 1",
                    &[],
                )
                .await?;
            Ok(rows.iter().map(|row| row.get(0)).collect())
        })?;
        names.iter().map(|name| stored_name(name)).collect()
    }

    fn spelled_otherwise(&self, user: &UserName) -> Result<Option<UserName>> {
        let found: Option<String> = self.read(async |transaction| {
            let row = transaction
                .query_opt(
                    "SELECT username FROM enrollments
                        WHERE lower(username) = lower($1) AND username <> $1
                     UNION
                     SELECT username FROM user_settings
                        WHERE lower(username) = lower($1) AND username <> $1
                     LIMIT 1",
                    &[&user.as_str()],
                )
                .await?;
            Ok(row.map(|row| row.get(0)))
        })?;
        found.map(|name| stored_name(&name)).transpose()
    }

    fn record(&self, now: i64, event: &Event) -> Result<()> {
        self.run(async |transaction| {
            append(transaction, &self.host, now, event).await?;
            Ok(((), true))
        })
    }

    fn prune_remembered(&self, now: i64, limit: i64) -> Result<usize> {
        self.run(async |transaction| {
            let removed = transaction
                .execute(
                    "DELETE FROM remembered WHERE verified + $2 <= $1",
                    &[&now, &limit],
                )
                .await?;
            Ok((removed as usize, true))
        })
    }

    fn prune_audit(&self, before: i64) -> Result<usize> {
        self.run(async |transaction| {
            // Each host removes its own entries, by its own audit.retention_days: a host
            // configured for a short trail never shortens the others'.
            let removed = transaction
                .execute(
                    "DELETE FROM audit WHERE time < $1 AND host = $2",
                    &[&before, &self.host],
                )
                .await?;
            Ok((removed as usize, true))
        })
    }

    fn audit(&self, filter: &AuditFilter) -> Result<Vec<AuditRow>> {
        self.read(async |transaction| {
            let rows = transaction
                .query(
                    "SELECT time, kind, username, host, line FROM audit
                     WHERE ($1::TEXT IS NULL OR username = $1) AND time >= $2
                        AND ($3::TEXT IS NULL OR kind = $3)
                     ORDER BY id DESC LIMIT $4",
                    &[
                        &filter.user.as_ref().map(UserName::as_str),
                        &filter.since,
                        &filter.kind.as_deref(),
                        &(filter.limit as i64),
                    ],
                )
                .await?;
            let mut rows: Vec<AuditRow> = rows
                .iter()
                .map(|row| AuditRow {
                    time: row.get(0),
                    kind: row.get(1),
                    user: row.get(2),
                    host: row.get(3),
                    line: row.get(4),
                })
                .collect();
            rows.reverse();
            Ok(rows)
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use pam_mfa_config::{Config, StoreSettings};
    use pam_mfa_tests::postgres::{Postgres, certificates};

    use super::*;

    fn settings(url: &str) -> StoreSettings {
        let text = format!("[store]\nkind = \"postgres\"\nurl = \"{url}\"\ntls = \"disable\"\n");
        Config::parse(&text).unwrap().store
    }

    /// The same contract as the SQLite store's, each check on a new database of one server.
    #[test]
    fn the_contract_holds() {
        let server = Postgres::start();
        let next = AtomicUsize::new(0);
        super::super::contract::run_all(|| {
            let name = format!("contract_{}", next.fetch_add(1, Ordering::Relaxed));
            server.create_database(&name);
            let store = PostgresStore::open(&settings(&server.url(&name)), "host-a".into())
                .unwrap_or_else(|error| panic!("{error}\n{}", server.log()));
            (store, || {})
        });
    }

    /// Hosts starting at once create the tables once; a newer schema is refused.
    #[test]
    fn migrations_run_once_and_a_newer_schema_is_refused() {
        let server = Postgres::start();
        server.create_database("fleet");
        let url = server.url("fleet");
        let opened: Vec<_> = (0..4)
            .map(|host| {
                let settings = settings(&url);
                std::thread::spawn(move || PostgresStore::open(&settings, format!("host-{host}")))
            })
            .collect();
        for opened in opened {
            opened.join().unwrap().unwrap();
        }
        assert_eq!(
            server.sql("fleet", "SELECT version FROM pam_mfa_schema"),
            MIGRATIONS.len().to_string()
        );
        server.sql("fleet", "UPDATE pam_mfa_schema SET version = version + 1");
        let error = PostgresStore::open(&settings(&url), "host-a".into())
            .err()
            .expect("a newer schema is refused");
        assert!(
            error.to_string().contains("newer than this mfad"),
            "{error}"
        );
    }

    /// A server that is down makes each call fail within the timeout, naming the database;
    /// once it is back, calls work again on new connections.
    #[test]
    fn an_unreachable_server_fails_calls_within_the_timeout() {
        let server = Postgres::start();
        server.create_database("fleet");
        let mut settings = settings(&server.url("fleet"));
        settings.timeout = Config::parse("[store]\ntimeout = 2\n")
            .unwrap()
            .store
            .timeout;
        let store = PostgresStore::open(&settings, "host-a".into()).unwrap();
        let alice = UserName::parse("alice").unwrap();
        assert!(store.enrollments(&alice).unwrap().is_empty());
        server.stop();
        let started = std::time::Instant::now();
        let error = store.enrollments(&alice).unwrap_err().to_string();
        assert!(started.elapsed() < Duration::from_secs(3), "{error}");
        assert!(error.contains("127.0.0.1"), "{error}");
        // Calls fail at once for a second after a failure, then reach the server again.
        assert!(store.enrollments(&alice).is_err());
        server.start_again();
        let back = std::time::Instant::now();
        while store.enrollments(&alice).is_err() {
            assert!(
                back.elapsed() < Duration::from_secs(5),
                "the store never came back"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(store.enrollments(&alice).unwrap().is_empty());
    }

    fn tls_settings(url: &str, tls: &str, ca: Option<&std::path::Path>) -> StoreSettings {
        let ca = ca.map_or(String::new(), |ca| {
            format!("ca_file = \"{}\"\n", ca.display())
        });
        let text = format!(
            "[store]\nkind = \"postgres\"\nurl = \"{url}\"\ntls = \"{tls}\"\n{ca}timeout = 2\n"
        );
        Config::parse(&text).unwrap().store
    }

    /// Over TCP to a server that refuses connections without TLS: verify-full works with the
    /// authority that signed the server's certificate, and fails with another or with a
    /// certificate for another name; require works without checking; disable is refused by
    /// the server.
    #[test]
    fn tls_is_used_and_the_server_checked() {
        let server = Postgres::start();
        server.create_database("fleet");
        let dir = server.dir().join("tls");
        std::fs::create_dir_all(&dir).unwrap();
        let (ca, cert, key) = certificates(&dir, "IP:127.0.0.1");
        server.require_tls(&cert, &key);
        let url = server.url("fleet");
        let alice = UserName::parse("alice").unwrap();
        let works = |settings: StoreSettings| {
            let store = PostgresStore::open(&settings, "host-a".into()).unwrap();
            store.enrollments(&alice)
        };
        works(tls_settings(&url, "verify-full", Some(&ca))).expect("verified TLS");
        works(tls_settings(&url, "require", None)).expect("unverified TLS");
        let plain = works(tls_settings(&url, "disable", None)).unwrap_err();
        assert!(plain.to_string().contains("no encryption"), "{plain}");
        // The system's authorities never signed the test authority.
        let unknown = works(tls_settings(&url, "verify-full", None)).unwrap_err();
        assert!(
            unknown
                .to_string()
                .contains("unable to get local issuer certificate"),
            "{unknown}"
        );
        // A certificate for another name is refused even from the right authority.
        let other = server.dir().join("other");
        std::fs::create_dir_all(&other).unwrap();
        let (other_ca, other_cert, other_key) = certificates(&other, "DNS:db.example.org");
        server.require_tls(&other_cert, &other_key);
        let misnamed = works(tls_settings(&url, "verify-full", Some(&other_ca))).unwrap_err();
        assert!(misnamed.to_string().contains("mismatch"), "{misnamed}");
    }

    /// An address without a host name (hostaddr=) is TCP all the same, never taken for a Unix
    /// socket: without a name for TLS it is refused before anything is sent, unless TLS is
    /// off, and then the server (which wants TLS) refuses it.
    #[test]
    fn an_address_alone_still_uses_tls() {
        let server = Postgres::start();
        server.create_database("fleet");
        let dir = server.dir().join("tls");
        std::fs::create_dir_all(&dir).unwrap();
        let (ca, cert, key) = certificates(&dir, "IP:127.0.0.1");
        server.require_tls(&cert, &key);
        let url = format!(
            "hostaddr=127.0.0.1 port={} user=postgres dbname=fleet",
            server.port()
        );
        let alice = UserName::parse("alice").unwrap();
        for tls in ["verify-full", "require"] {
            let error = PostgresStore::open(&tls_settings(&url, tls, None), "a".into())
                .err()
                .expect("TLS without a name is refused");
            assert!(error.to_string().contains("add host=NAME"), "{error}");
        }
        let plain = PostgresStore::open(&tls_settings(&url, "disable", None), "a".into())
            .unwrap()
            .enrollments(&alice)
            .unwrap_err();
        assert!(plain.to_string().contains("no encryption"), "{plain}");
        // With the name, and the address to reach it by, TLS is checked against the name.
        let named = format!("host=db.example.org {url}");
        let misnamed =
            PostgresStore::open(&tls_settings(&named, "verify-full", Some(&ca)), "a".into())
                .unwrap()
                .enrollments(&alice)
                .unwrap_err();
        assert!(misnamed.to_string().contains("mismatch"), "{misnamed}");
        let works = PostgresStore::open(&tls_settings(&named, "require", None), "a".into());
        assert!(works.unwrap().enrollments(&alice).unwrap().is_empty());
    }

    /// Each host removes the audit entries it wrote, by its own retention, never another's.
    #[test]
    fn a_host_prunes_only_its_own_audit_entries() {
        let server = Postgres::start();
        server.create_database("fleet");
        let settings = settings(&server.url("fleet"));
        let a = PostgresStore::open(&settings, "host-a".into()).unwrap();
        let b = PostgresStore::open(&settings, "host-b".into()).unwrap();
        let event = Event::ConfigReloaded {
            changed: "nothing".into(),
        };
        a.record(1_000, &event).unwrap();
        b.record(1_000, &event).unwrap();
        b.record(5_000, &event).unwrap();
        assert_eq!(a.prune_audit(10_000).unwrap(), 1);
        let hosts: Vec<String> = a
            .audit_tail(10)
            .unwrap()
            .into_iter()
            .map(|row| format!("{}@{}", row.host, row.time))
            .collect();
        assert_eq!(hosts, ["host-b@1000", "host-b@5000"]);
    }

    /// A file holding the connection string must be root's alone; a password in it is fine.
    #[test]
    fn a_connection_string_file_must_be_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("pam-mfa-url-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("url");
        std::fs::write(&path, "host=127.0.0.1 port=1 dbname=x password=secret\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let text = format!(
            "[store]\nkind = \"postgres\"\nurl_file = \"{}\"\ntls = \"disable\"\n",
            path.display()
        );
        let settings = Config::parse(&text).unwrap().store;
        let error = connection_string(&settings).unwrap_err().to_string();
        assert!(error.contains("readable by no one else"), "{error}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        if nix::unistd::geteuid().is_root() {
            assert!(
                connection_string(&settings)
                    .unwrap()
                    .contains("password=secret")
            );
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
