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
//!
//! What is particular to PostgreSQL is here: the connection settings and TLS, the pool, the
//! users' advisory locks, the bounds on every call, the migrations. The operations are written
//! once, in `store::operations`.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode};
use pam_mfa_config::{StoreSettings, Tls};
use postgres_openssl::MakeTlsConnector;
use tokio_postgres::config::{Host, SslMode, TargetSessionAttrs};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};
use tokio_postgres::{Client, NoTls, SimpleQueryMessage, Statement, Transaction};

use super::sql::{Backend, Bound, Field, Lane, Row, Server, Tx, Value};
use super::{Result, StoreError};

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
    // 2: secrets sealed at rest: the number of the key that sealed each (none: not sealed
    // yet, which mfad mends when it starts).
    "ALTER TABLE enrollments ADD COLUMN sealed_with BIGINT;
    CREATE INDEX enrollments_sealed_with ON enrollments (sealed_with, id);",
    // 3: counter-based tokens (HOTP) beside time-based ones: `last_step` holds the counter of
    // the last code accepted.
    "ALTER TABLE enrollments ADD COLUMN kind TEXT NOT NULL DEFAULT 'totp';",
    // 4: contacts (email addresses, phone numbers), sealed, each with the code last sent
    // there, sealed too. Numbers are never reused: a sealed value is bound to its row's. When
    // each user was last sent a code (or one was tried), kept apart from the contacts so that
    // removing one does not lift the wait.
    "CREATE TABLE contacts (
        id BIGSERIAL PRIMARY KEY,
        username TEXT NOT NULL,
        kind TEXT NOT NULL,
        address BYTEA NOT NULL,
        masked TEXT NOT NULL,
        sealed_with BIGINT NOT NULL,
        added BIGINT NOT NULL,
        verified BIGINT,
        code BYTEA,
        code_sealed_with BIGINT,
        code_sent BIGINT,
        code_expires BIGINT
    );
    CREATE INDEX contacts_username_lower ON contacts (lower(username));
    CREATE INDEX contacts_sealed_with ON contacts (sealed_with, id);
    CREATE TABLE contact_sends (
        username TEXT PRIMARY KEY,
        verify_sent BIGINT,
        login_sent BIGINT
    );",
];

/// The first key of pam-mfa's advisory locks (the second is one of the [`USER_LOCKS`] users'
/// locks, or -1 for migrations), so that they never meet another application's in the same
/// database.
const LOCK_SPACE: i32 = 0x6d_66_61; // "mfa"

/// Connections one mfad keeps to the server at most; more callers wait for one (within the
/// timeout).
const MAX_CONNECTIONS: usize = 16;

/// Of [`MAX_CONNECTIONS`], how many listings ([`Lane::Listing`]) may use at once: the others
/// stay for logins, however many listings any users ask for.
const LISTING_CONNECTIONS: usize = 2;

/// Locks the users' rows are spread over (a power of two). More means fewer unrelated logins
/// waiting for each other; an import takes at most this many locks in one transaction, and a
/// server's lock table holds max_locks_per_transaction (64 by default) times its connections.
const USER_LOCKS: i32 = 1024;

/// Prepared statements one connection keeps at most; statements past it (an import's, whose
/// text depends on its size) are prepared for each use.
const STATEMENT_CACHE: usize = 128;

/// After a failure to reach the server, how long calls fail at once without trying again.
const FAIL_FAST: Duration = Duration::from_secs(1);

/// The least time given to connecting to one of several hosts (see [`PostgresBackend::open`]).
const LEAST_CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

/// The bound on one batch of an import (up to 10,000 users).
const IMPORT_TIMEOUT: Duration = Duration::from_secs(120);

impl From<tokio_postgres::Error> for StoreError {
    fn from(error: tokio_postgres::Error) -> Self {
        let message = format!("database error: {}", explain(&error));
        let Some(code) = error.code() else {
            // No answer from the server: the connection failed or was closed (the backend
            // names the server, see `PostgresBackend::named`).
            return StoreError::Unavailable(format!("lost the connection: {}", explain(&error)));
        };
        if [
            SqlState::LOCK_NOT_AVAILABLE,
            SqlState::QUERY_CANCELED,
            SqlState::T_R_SERIALIZATION_FAILURE,
            SqlState::T_R_DEADLOCK_DETECTED,
        ]
        .contains(code)
        {
            StoreError::Conflict(message)
        } else if code.code().starts_with("08")
            || code.code().starts_with("53")
            || code.code().starts_with("57P")
        {
            // Connection exceptions, insufficient resources, the server shutting down.
            StoreError::Unavailable(message)
        } else if code.code().starts_with("XX") {
            StoreError::Damaged(message)
        } else {
            StoreError::Failed(message)
        }
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
    statements: RefCell<HashMap<String, Statement>>,
}

/// A transaction of the PostgreSQL store (or, for reads, its connection outside any): each
/// statement blocks the calling thread on the store's runtime, all of them within the call's
/// deadline.
struct PgTx<'a> {
    store: &'a PostgresBackend,
    on: On<'a>,
    statements: &'a RefCell<HashMap<String, Statement>>,
    deadline: tokio::time::Instant,
    limit: Duration,
}

enum On<'a> {
    Transaction(Transaction<'a>),
    Connection(&'a Client),
}

type Values<'a> = [&'a (dyn ToSql + Sync)];

impl ToSql for Value<'_> {
    /// Integers fit the column's size (the operations' numbers are `i64`, some columns
    /// `INTEGER`); every other kind goes as it is, checked against the parameter's type.
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> std::result::Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match *self {
            Value::OptInt(None) => Ok(IsNull::Yes),
            Value::OptInt(Some(value)) => Value::Int(value).to_sql(ty, out),
            Value::Int(value) if *ty == Type::INT4 => i32::try_from(value)?.to_sql_checked(ty, out),
            Value::Int(value) if *ty == Type::INT2 => i16::try_from(value)?.to_sql_checked(ty, out),
            Value::Int(value) => value.to_sql_checked(ty, out),
            Value::Bool(value) => value.to_sql_checked(ty, out),
            Value::Text(text) => text.to_sql_checked(ty, out),
            Value::Bytes(bytes) => bytes.to_sql_checked(ty, out),
            Value::OptText(text) => text.to_sql_checked(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        // Each kind checks the type itself, in to_sql.
        true
    }

    to_sql_checked!();
}

/// A column of a row as the operations read it.
fn field(row: &tokio_postgres::Row, index: usize) -> Result<Field> {
    let ty = row.columns()[index].type_();
    let read = |error: tokio_postgres::Error| {
        StoreError::Damaged(format!("column {index} of a stored row: {error}"))
    };
    let field = match *ty {
        Type::INT2 => row
            .try_get::<_, Option<i16>>(index)
            .map_err(read)?
            .map(|value| Field::Int(value.into())),
        Type::INT4 => row
            .try_get::<_, Option<i32>>(index)
            .map_err(read)?
            .map(|value| Field::Int(value.into())),
        Type::INT8 => row
            .try_get::<_, Option<i64>>(index)
            .map_err(read)?
            .map(Field::Int),
        Type::BOOL => row
            .try_get::<_, Option<bool>>(index)
            .map_err(read)?
            .map(|value| Field::Int(value.into())),
        Type::BYTEA => row
            .try_get::<_, Option<Vec<u8>>>(index)
            .map_err(read)?
            .map(Field::Bytes),
        _ => row
            .try_get::<_, Option<String>>(index)
            .map_err(read)?
            .map(Field::Text),
    };
    Ok(field.unwrap_or(Field::Null))
}

impl PgTx<'_> {
    /// Runs `work` on the store's runtime, within the call's deadline.
    fn within<T>(&self, work: impl Future<Output = Result<T>>) -> Result<T> {
        self.store.within(self.deadline, self.limit, work)
    }

    async fn statement(&self, sql: &str) -> Result<Statement> {
        if let Some(statement) = self.statements.borrow().get(sql) {
            return Ok(statement.clone());
        }
        let statement = match &self.on {
            On::Transaction(transaction) => transaction.prepare(sql).await?,
            On::Connection(client) => client.prepare(sql).await?,
        };
        let mut statements = self.statements.borrow_mut();
        if statements.len() < STATEMENT_CACHE {
            statements.insert(sql.to_owned(), statement.clone());
        }
        Ok(statement)
    }

    /// A statement with parameters of PostgreSQL's own types (the users' locks).
    fn execute_typed(&self, sql: &str, values: &Values<'_>) -> Result<u64> {
        self.within(async {
            let statement = self.statement(sql).await?;
            Ok(match &self.on {
                On::Transaction(transaction) => transaction.execute(&statement, values).await?,
                On::Connection(client) => client.execute(&statement, values).await?,
            })
        })
    }

    fn params<'v>(values: &'v [Value<'_>]) -> Vec<&'v (dyn ToSql + Sync)> {
        values
            .iter()
            .map(|value| value as &(dyn ToSql + Sync))
            .collect()
    }
}

impl Tx for PgTx<'_> {
    fn execute(&self, sql: &str, values: &[Value<'_>]) -> Result<u64> {
        self.execute_typed(sql, &Self::params(values))
    }

    fn query(&self, sql: &str, values: &[Value<'_>]) -> Result<Vec<Row>> {
        let params = Self::params(values);
        let rows = self.within(async {
            let statement = self.statement(sql).await?;
            Ok(match &self.on {
                On::Transaction(transaction) => transaction.query(&statement, &params).await?,
                On::Connection(client) => client.query(&statement, &params).await?,
            })
        })?;
        rows.iter()
            .map(|row| {
                (0..row.len())
                    .map(|index| field(row, index))
                    .collect::<Result<Vec<_>>>()
                    .map(Row)
            })
            .collect()
    }

    /// Users share [`USER_LOCKS`] advisory locks (a hash of the name picks one), so that an
    /// import of thousands takes no more than that; several are taken in one order, so that
    /// two transactions cannot wait for each other.
    fn lock_users(&self, users: &[&str]) -> Result<()> {
        if let [user] = users {
            self.execute_typed(
                "SELECT pg_advisory_xact_lock($1, hashtext($2) & $3)",
                &[&LOCK_SPACE, user, &(USER_LOCKS - 1)],
            )?;
        } else {
            self.execute_typed(
                "SELECT pg_advisory_xact_lock($1, lock) FROM
                    (SELECT DISTINCT hashtext(name) & $3 AS lock
                     FROM unnest($2::TEXT[]) AS name ORDER BY 1) AS ordered",
                &[&LOCK_SPACE, &users, &(USER_LOCKS - 1)],
            )?;
        }
        Ok(())
    }
}

enum Connector {
    Plain,
    Tls(MakeTlsConnector),
}

pub struct PostgresBackend {
    runtime: tokio::runtime::Runtime,
    config: tokio_postgres::Config,
    connector: Connector,
    idle: Mutex<Vec<Conn>>,
    slots: tokio::sync::Semaphore,
    /// Of `slots`, those listings may take.
    listing_slots: tokio::sync::Semaphore,
    timeout: Duration,
    /// Where the database is, for messages (no password).
    describe: String,
    /// After a failure to reach the server: until when calls fail at once with that failure,
    /// so that the several calls of one login wait for the server once, not each in turn.
    unreachable: Mutex<Option<(Instant, String)>>,
    /// The server the newest connection reached.
    server: Mutex<Option<Server>>,
}

/// Reads the connection string named by the settings; a file must be root's and private
/// (checked on the file opened, so it cannot change between the check and the read).
fn connection_string(settings: &StoreSettings) -> Result<String> {
    use std::io::Read;
    use std::os::unix::fs::MetadataExt;
    let Some(path) = &settings.url_file else {
        return Ok(settings.url.get_ref().clone());
    };
    let failed = |error: std::io::Error| {
        StoreError::Setup(format!("store.url_file {}: {error}", path.display()))
    };
    let mut file = std::fs::File::open(path).map_err(failed)?;
    let meta = file.metadata().map_err(failed)?;
    if meta.uid() != 0 || meta.mode() & 0o077 != 0 {
        return Err(StoreError::Setup(format!(
            "store.url_file {} may hold a password, so it must belong to root and be readable \
             by no one else (chown root {0}; chmod 600 {0})",
            path.display()
        )));
    }
    let mut text = String::new();
    file.read_to_string(&mut text).map_err(failed)?;
    let text = text.trim().to_owned();
    if text.is_empty() {
        return Err(StoreError::Setup(format!(
            "store.url_file {} is empty: write the connection string in it",
            path.display()
        )));
    }
    Ok(text)
}

impl PostgresBackend {
    /// Connects to the database the settings name, and creates or
    /// upgrades its tables. Fails on settings that cannot work and on tables newer than this
    /// mfad; a server that cannot be reached is not a failure (it is logged): mfad serves, and
    /// denies every login that needs the database until it answers, so that a database outage
    /// never looks like an absent mfad to the PAM module.
    pub fn open(settings: &StoreSettings) -> Result<Self> {
        let text = connection_string(settings)?;
        let mut config: tokio_postgres::Config = text.parse().map_err(|error| {
            StoreError::Setup(format!(
                "the store's connection string is not valid: {error}"
            ))
        })?;
        // Whatever the configuration's own check found, the parser decides what a password
        // is (a URI's user information runs to its first "@", keys may be percent-encoded).
        if settings.url_file.is_none() && config.get_password().is_some() {
            return Err(StoreError::Setup(
                "store.url holds a password, and mfad.toml is readable by every user: put the \
                 connection string in store.url_file (mode 0600) instead"
                    .into(),
            ));
        }
        // mfad writes at every login: of several hosts (a primary and its standbys), only the
        // one that accepts writes will do, wherever it is in the list after a failover.
        if config.get_target_session_attrs() == TargetSessionAttrs::ReadOnly {
            return Err(StoreError::Setup(
                "the store's connection string asks for a read-only server \
                 (target_session_attrs=read-only), and mfad writes at every login: remove it"
                    .into(),
            ));
        }
        config.target_session_attrs(TargetSessionAttrs::ReadWrite);
        let timeout = Duration::from_secs(settings.timeout.get().into());
        // Hosts are tried in turn, each for its share of the bound, so that a dead primary
        // that does not answer (a machine gone, a cut link) leaves time for the next host.
        // (The share bounds the TCP connection to each address; a server that accepts it and
        // then hangs takes the whole bound.) A shorter connect_timeout in the string stays.
        let hosts = config
            .get_hosts()
            .len()
            .max(config.get_hostaddrs().len())
            .max(1);
        let share = (timeout / hosts as u32).max(LEAST_CONNECT_TIMEOUT);
        let share = config
            .get_connect_timeout()
            .map_or(share, |own| share.min(*own));
        config.connect_timeout(share);
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
            return Err(StoreError::Setup(
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
                .map_err(|error| StoreError::Setup(format!("TLS set-up: {error}")))?;
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
            .map_err(|error| {
                StoreError::Setup(format!("cannot start the database runtime: {error}"))
            })?;
        let store = PostgresBackend {
            runtime,
            config,
            connector,
            idle: Mutex::new(Vec::new()),
            slots: tokio::sync::Semaphore::new(MAX_CONNECTIONS),
            listing_slots: tokio::sync::Semaphore::new(LISTING_CONNECTIONS),
            timeout,
            describe,
            unreachable: Mutex::new(None),
            server: Mutex::new(None),
        };
        // Connecting checks the tables (see check_out); no statement is needed beyond that.
        match store.transaction(Bound::Call, Lane::Login, false, &mut |_| Ok(false)) {
            Ok(()) => {}
            Err(error @ StoreError::NewerSchema(_)) => return Err(error),
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
            StoreError::Setup(format!(
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
        // The server gives up too, so a lock or a statement never outlives its caller long;
        // and says where it is (of several hosts, the one that accepts writes answered).
        // Its statement timer runs twice mfad's bound: a COMMIT waiting for a synchronous
        // standby that the timer ends is kept on the primary alone and reported as done, so
        // mfad must always stop waiting first (and deny, the change unconfirmed).
        let millis = self.timeout.as_millis();
        let messages = client
            .simple_query(&format!(
                "SET statement_timeout = {}; SET lock_timeout = {millis};
                 SET idle_in_transaction_session_timeout = {};
                 SELECT CASE
                     WHEN inet_server_addr() IS NULL
                         THEN 'local socket, port ' || current_setting('port')
                     WHEN family(inet_server_addr()) = 6
                         THEN '[' || host(inet_server_addr()) || ']:' || inet_server_port()
                     ELSE host(inet_server_addr()) || ':' || inet_server_port() END",
                millis * 2,
                millis * 2
            ))
            .await?;
        let address = messages.iter().find_map(|message| match message {
            SimpleQueryMessage::Row(row) => row.get(0).map(str::to_owned),
            _ => None,
        });
        self.reached(address.unwrap_or_else(|| "an unknown address".into()));
        Ok(client)
    }

    /// Notes the server a new connection reached; a server other than the last one (after a
    /// failover, the promoted standby) is logged.
    fn reached(&self, address: String) {
        let mut server = self
            .server
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if server
            .as_ref()
            .is_some_and(|known| known.address == address)
        {
            return;
        }
        match server.as_ref() {
            Some(known) => crate::log::warning(&format!(
                "the database server that accepts writes is now {address} (it was {}): \
                 connections go there",
                known.address
            )),
            None => crate::log::info(&format!(
                "connected to the database server at {address}, which accepts writes"
            )),
        }
        let since = crate::clock::Clock::now(&crate::clock::SystemClock) as i64;
        *server = Some(Server { address, since });
    }

    /// Runs `work` on the runtime within `deadline`; past it, fails naming the database and
    /// `limit`.
    fn within<T>(
        &self,
        deadline: tokio::time::Instant,
        limit: Duration,
        work: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        self.runtime
            .block_on(async { tokio::time::timeout_at(deadline, work).await })
            .unwrap_or_else(|_| Err(self.late(limit)))
            .map_err(|error| self.named(error))
    }

    /// A connection lost under a statement (the kernel gave up on the link, the server went
    /// away), with the database it was to.
    fn named(&self, error: StoreError) -> StoreError {
        match error {
            StoreError::Unavailable(message) if message.starts_with("lost the connection") => {
                StoreError::Unavailable(format!("{message} (to the database at {})", self.describe))
            }
            other => other,
        }
    }

    fn late(&self, limit: Duration) -> StoreError {
        StoreError::Unavailable(format!(
            "the database at {} did not answer within {} s",
            self.describe,
            limit.as_secs()
        ))
    }

    /// Runs `work` on a connection of the pool, within the bound: in one transaction
    /// (`write`), committed when `work` says so and else rolled back, or outside any (reads).
    /// A connection that failed or timed out is dropped, not reused.
    fn transaction(
        &self,
        bound: Bound,
        lane: Lane,
        write: bool,
        work: &mut dyn FnMut(&dyn Tx) -> Result<bool>,
    ) -> Result<()> {
        if let Some((until, failure)) = self.unreachable().as_ref()
            && Instant::now() < *until
        {
            return Err(StoreError::Unavailable(failure.clone()));
        }
        let limit = match bound {
            Bound::Call => self.timeout,
            Bound::Long => IMPORT_TIMEOUT,
        };
        let deadline = tokio::time::Instant::now() + limit;
        // Waiting for a listing's place says nothing about the server: it is not noted as
        // unreachable (which would fail logins at once).
        let _listing = match lane {
            Lane::Login => None,
            Lane::Listing => Some(self.within(deadline, limit, async {
                self.listing_slots
                    .acquire()
                    .await
                    .map_err(|_| StoreError::Unavailable("the database pool is closed".into()))
            })?),
        };
        let (_slot, mut conn) = self
            .within(deadline, limit, self.check_out())
            .map_err(|error| self.note_unreachable(error))?;
        let Conn { client, statements } = &mut conn;
        let outcome = if write {
            self.write_in(client, statements, deadline, limit, work)
        } else {
            let tx = PgTx {
                store: self,
                on: On::Connection(client),
                statements,
                deadline,
                limit,
            };
            work(&tx).map(drop)
        };
        if outcome.is_ok() {
            *self.unreachable() = None;
            self.idle
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .push(conn);
        }
        outcome
    }

    /// [`PostgresBackend::transaction`]'s write: a transaction begun on `client`, whose end
    /// has a bound of its own; a commit that runs out of it may have been made, and the caller
    /// denies, and says so.
    fn write_in(
        &self,
        client: &mut Client,
        statements: &RefCell<HashMap<String, Statement>>,
        deadline: tokio::time::Instant,
        limit: Duration,
        work: &mut dyn FnMut(&dyn Tx) -> Result<bool>,
    ) -> Result<()> {
        let transaction =
            self.within(deadline, limit, async { Ok(client.transaction().await?) })?;
        let tx = PgTx {
            store: self,
            on: On::Transaction(transaction),
            statements,
            deadline,
            limit,
        };
        if limit > self.timeout {
            // Statements of long work may take longer than a login's (the server's timer
            // still runs longer than mfad's wait for the commit, as in `connect`).
            let millis = limit.as_millis() * 2;
            tx.within(async {
                let On::Transaction(transaction) = &tx.on else {
                    unreachable!("a transaction was begun")
                };
                Ok(transaction
                    .batch_execute(&format!(
                        "SET LOCAL statement_timeout = {millis}; SET LOCAL lock_timeout = {millis}"
                    ))
                    .await?)
            })?;
        }
        let commit = work(&tx)?;
        let On::Transaction(transaction) = tx.on else {
            unreachable!("a transaction was begun")
        };
        let ended = self.runtime.block_on(async {
            if commit {
                tokio::time::timeout(limit, transaction.commit()).await
            } else {
                tokio::time::timeout(limit, transaction.rollback()).await
            }
        });
        match ended {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(self.named(error.into())),
            Err(_) if commit => Err(StoreError::Unconfirmed(format!(
                "the database at {} did not confirm a change within {} s; it may have been made",
                self.describe,
                limit.as_secs()
            ))),
            Err(_) => Err(self.late(limit)),
        }
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
        *self.unreachable() = Some((Instant::now() + FAIL_FAST, error.to_string()));
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
            .map_err(|_| StoreError::Unavailable("the database pool is closed".into()))?;
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
        return Err(StoreError::NewerSchema(format!(
            "the database holds pam-mfa tables of version {version}, newer than this mfad \
             knows ({known}): upgrade mfad on this host"
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
    let failed =
        |error: String| StoreError::Setup(format!("store.ca_file {}: {error}", path.display()));
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

/// Hosts with their ports, and the database, of a connection string, without user or
/// password: `PostgreSQL db1:5432,db2:5432 database mfa`.
fn describe(config: &tokio_postgres::Config) -> String {
    let names = config.get_hosts();
    let addresses = config.get_hostaddrs();
    let ports = config.get_ports();
    let hosts: Vec<String> = (0..names.len().max(addresses.len()))
        .map(|index| {
            let name = match (names.get(index), addresses.get(index)) {
                (Some(Host::Tcp(name)), Some(address)) => format!("{name} ({address})"),
                (Some(Host::Tcp(name)), None) => name.clone(),
                (Some(Host::Unix(path)), _) => path.display().to_string(),
                (None, Some(address)) => address.to_string(),
                (None, None) => String::new(),
            };
            // One port for every host, or one for each; libpq's default otherwise.
            let port = ports.get(index).or(ports.first()).copied().unwrap_or(5432);
            format!("{name}:{port}")
        })
        .collect();
    format!(
        "PostgreSQL {} database {}",
        hosts.join(","),
        config.get_dbname().unwrap_or("(the user's)")
    )
}

impl Backend for PostgresBackend {
    fn write(&self, bound: Bound, work: &mut dyn FnMut(&dyn Tx) -> Result<bool>) -> Result<()> {
        self.transaction(bound, Lane::Login, true, work)
    }

    fn read(&self, lane: Lane, work: &mut dyn FnMut(&dyn Tx) -> Result<()>) -> Result<()> {
        self.transaction(Bound::Call, lane, false, &mut |tx| work(tx).map(|()| false))
    }

    fn describe(&self) -> String {
        self.describe.clone()
    }

    fn server(&self) -> Option<Server> {
        self.server
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }
}

#[cfg(test)]
mod tests;
