//! The store boundary: what the daemon keeps, as operations that mean what they do.
//!
//! Every operation is one transaction in the backend. The ones that decide something under
//! concurrency ("consume this time step", "activate this enrollment") are conditional updates,
//! never a read followed by a write, so that concurrent logins on one host, or on many hosts
//! sharing one database, cannot both succeed. Enrollments are named by their id, which is never
//! reused: an enrollment replaced meanwhile is never touched by a login that read the old one.
//!
//! Operations that change state take the audit [`Event`] that records the change; a backend
//! appends it (when [`Event::is_kept`]) in the same transaction, so the trail never misses or
//! invents a change.
//!
//! Calls block (on the disk, or on a database server): callers run them off the bus executor.

pub mod contacts;
mod health;
pub use health::Health;
mod import;
mod logins;
mod operations;
pub mod postgres;
pub(super) mod records;
mod sealed;
pub use sealed::Resealed;
pub mod sql;
pub mod sqlite;

#[cfg(test)]
pub mod contract;

use std::fmt;
use std::sync::{Arc, Mutex, RwLock};

use crate::audit::Event;
use crate::codes::recovery::Hashed;
use crate::codes::totp::{Params, Secret};
use crate::sealing::KeySet;
use crate::users::UserName;

/// A storage failure. The message is for mfad's log, not for users; it never holds a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// The database could not be reached, or did not answer in time.
    Unavailable(String),
    /// A commit was sent but not confirmed in time: the change may have been made.
    Unconfirmed(String),
    /// Another change held what this one needed for too long (a lock, a busy file).
    Conflict(String),
    /// What is stored cannot be read as it must be: a damaged file, a row out of range.
    Damaged(String),
    /// The tables were made by a newer mfad: no retry mends it.
    NewerSchema(String),
    /// The store cannot be used as configured: an unsafe directory, a bad connection string.
    Setup(String),
    /// The sealing keys are not those that sealed what is stored; nothing was written.
    WrongKeys(String),
    /// A secret is sealed with a key the keys in use lack.
    KeyMissing(u32, String),
    /// Any other failure of a statement (a full disk, say).
    Failed(String),
}

impl StoreError {
    fn message(&self) -> &str {
        match self {
            StoreError::Unavailable(message)
            | StoreError::Unconfirmed(message)
            | StoreError::Conflict(message)
            | StoreError::Damaged(message)
            | StoreError::NewerSchema(message)
            | StoreError::Setup(message)
            | StoreError::WrongKeys(message)
            | StoreError::KeyMissing(_, message)
            | StoreError::Failed(message) => message,
        }
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for StoreError {}

pub type Result<T> = std::result::Result<T, StoreError>;

/// The daemon's state: every operation, written once over a backend ([`sql::Backend`]).
pub struct Store {
    backend: Arc<dyn sql::Backend>,
    /// This host's name in the audit trail of a store shared by several; empty in a store of
    /// one.
    host: String,
    /// The keys secrets are sealed with ([`crate::sealing`]), and whether they were checked
    /// against what is stored.
    keys: RwLock<(Arc<KeySet>, bool)>,
    /// Held while the keys are checked; when they were last read again
    /// ([`Store::with_keys`]).
    checking: Mutex<Option<std::time::Instant>>,
    /// The last failure of the backend's calls ([`Store::health`]).
    failures: health::Failures,
}

impl Store {
    /// The store kept by `backend`, whose audit entries name `host` (empty: a store of one
    /// host), its secrets sealed with `keys`. The keys are checked against what is stored
    /// ([`Store::use_keys`]) before the first secret is read or written.
    pub fn new(backend: Arc<dyn sql::Backend>, host: String, keys: Arc<KeySet>) -> Self {
        Store {
            backend,
            host,
            keys: RwLock::new((keys, false)),
            checking: Mutex::new(None),
            failures: health::Failures::default(),
        }
    }

    /// A store of one host in an SQLite file in `dir`, with a key of its own (for tests).
    #[cfg(test)]
    pub fn open_sqlite(dir: &std::path::Path) -> Store {
        let backend = sqlite::SqliteBackend::open(dir, |problem| panic!("{problem}"))
            .unwrap_or_else(|error| panic!("{error}"));
        Store::new(Arc::new(backend), String::new(), test_keys())
    }

    /// The keys in use, checked against what is stored first if they were not yet (a
    /// database that could not be reached when mfad started is checked when it answers).
    /// Never called inside a transaction.
    fn keys(&self) -> Result<Arc<KeySet>> {
        let current = || {
            let keys = self
                .keys
                .read()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            (keys.0.clone(), keys.1)
        };
        if let (keys, true) = current() {
            return Ok(keys);
        }
        let _checking = self
            .checking
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let (keys, checked) = current();
        if !checked {
            self.use_keys(keys.clone())?;
        }
        Ok(keys)
    }

    /// Runs `work` with the keys in use. When it meets a secret sealed with a key they lack
    /// (another host of a fleet sealed it with a key added since this mfad read its keys),
    /// the keys are read again from where they came, at most once a second, and put in use
    /// if they hold it and fit what is stored; `work` then runs again.
    fn with_keys<T>(&self, work: impl Fn(&KeySet) -> Result<T>) -> Result<T> {
        let keys = self.keys()?;
        let (key, message) = match work(&keys) {
            Err(StoreError::KeyMissing(key, message)) => (key, message),
            done => return done,
        };
        let now = std::time::Instant::now();
        let fresh = {
            let mut last = self
                .checking
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if last.is_some_and(|at| now.duration_since(at) < std::time::Duration::from_secs(1)) {
                None
            } else {
                *last = Some(now);
                keys.read_again().ok().filter(|fresh| fresh.holds(key))
            }
        };
        let Some(fresh) = fresh else {
            return Err(StoreError::Damaged(message));
        };
        let fresh = Arc::new(fresh);
        self.adopt_keys(&fresh)?;
        crate::log::info(&format!(
            "sealing keys read again from {}: key {key} was added",
            fresh.source()
        ));
        work(&fresh)
    }
}

/// A key set for tests: one key, the same for every store of a test run.
#[cfg(test)]
pub fn test_keys() -> Arc<KeySet> {
    let text = "1 5f3c0e1d2b4a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0\n";
    Arc::new(KeySet::parse(text, "the test key").unwrap())
}

/// Identifies one enrollment for its whole life; never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EnrollmentId(pub i64);

/// An enrollment as stored.
#[derive(Debug, Clone)]
pub struct Enrollment {
    pub id: EnrollmentId,
    pub secret: Secret,
    pub params: Params,
    /// The time step (TOTP) or counter value (HOTP) of the last code accepted, as read: a
    /// counter-based token's next codes are looked for after it.
    pub last_step: Option<u64>,
    /// Confirmed with a code; only active enrollments count at login.
    pub active: bool,
    /// Unix time the enrollment was made (for a pending one: when the user was first shown it).
    pub created: i64,
    pub confirmed: Option<i64>,
    pub last_used: Option<i64>,
}

/// A user's enrollments: the one in use, and one waiting for confirmation (a first enrollment,
/// or a new phone replacing the one in use, which keeps working until the new one is confirmed).
#[derive(Debug, Clone, Default)]
pub struct Enrollments {
    pub active: Option<Enrollment>,
    pub pending: Option<Enrollment>,
}

impl Enrollments {
    pub fn is_empty(&self) -> bool {
        self.active.is_none() && self.pending.is_none()
    }
}

/// What a login of one user is decided on, read at once ([`Store::login_facts`]).
#[derive(Debug, Clone, Default)]
pub struct LoginFacts {
    pub enrollments: Enrollments,
    pub switches: StoredSwitches,
    /// The end of the user's last lock, as stored (it may be past).
    pub locked_until: Option<i64>,
    /// The remembered right code of the active enrollment for logins from the origin asked
    /// about, if one was asked about and there is one.
    pub remembered: Option<Remembered>,
}

/// How tries are counted and locks last (from the configuration), in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutRule {
    pub failures: u32,
    pub window: i64,
    pub duration: i64,
    pub max_duration: i64,
}

/// A user's stored count of tries and locks, as both backends keep it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TryCount {
    pub tries: i64,
    /// When the window of the counted tries began.
    pub since: i64,
    pub locked_until: i64,
    /// Locks in a row without a right code in between.
    pub locks: i64,
}

/// What one more try does to a count ([`LockoutRule::next`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextTry {
    /// The account is locked until then; nothing changes.
    Locked { until: i64 },
    /// This try locks the account: store `count` (tries cleared) and record the lock.
    Locks { count: TryCount },
    /// The try may go on; if it spends no code, store `count` (this try counted).
    Counts { count: TryCount },
}

impl LockoutRule {
    /// The lockout rule, stated once for every backend: a user has `failures` tries in
    /// `window`; the next one locks the account for `duration`, doubled for each lock that
    /// follows another without a right code in between, up to `max_duration`; a locked
    /// account gets no try at all. `count` is what the store holds (`None`: nothing yet).
    pub fn next(&self, count: Option<TryCount>, now: i64) -> NextTry {
        let mut count = count.unwrap_or(TryCount {
            tries: 0,
            since: now,
            locked_until: 0,
            locks: 0,
        });
        if count.locked_until > now {
            return NextTry::Locked {
                until: count.locked_until,
            };
        }
        if count.since + self.window <= now {
            count.tries = 0;
            count.since = now;
        }
        if count.tries >= i64::from(self.failures) {
            let factor = 1i64 << count.locks.clamp(0, 30);
            let until = now + self.duration.saturating_mul(factor).min(self.max_duration);
            return NextTry::Locks {
                count: TryCount {
                    tries: 0,
                    since: now,
                    locked_until: until,
                    locks: count.locks + 1,
                },
            };
        }
        count.tries += 1;
        NextTry::Counts { count }
    }
}

/// Whether a user may try a code now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// Yes; the try counts as a failure until a right code is spent (which clears the count).
    Allowed,
    /// No: the account is locked until this Unix time. `new` when this try locked it.
    Locked { until: i64, new: bool },
}

/// One enrollment of one user, as operations name it: an operation about it does nothing once
/// `id` is not the user's enrollment of that kind any more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserEnrollment<'a> {
    pub user: &'a UserName,
    pub id: EnrollmentId,
}

/// One try of a code from the app ([`Store::try_step`]).
#[derive(Debug, Clone, Copy)]
pub struct CodeTry<'a> {
    /// The user's active enrollment, whose code was typed.
    pub active: UserEnrollment<'a>,
    /// The time step the code matched, if it matched one.
    pub step: Option<u64>,
    /// Where the login comes from, when a right code is to be remembered for logins from there.
    pub origin: Option<Origin<'a>>,
    pub now: i64,
    pub rule: LockoutRule,
}

/// What a try records in the audit trail, for each of its outcomes: the caller decides what
/// each outcome means; the store records the one that happened, in the try's transaction.
#[derive(Debug, Clone)]
pub struct TryRecords {
    /// When this try locks the account: a [`Event::LockedOut`] (alone or second in a pair),
    /// which the store completes with the end of the lock ([`Event::with_lock_end`]).
    pub locked: Event,
    /// When the code's step was spent.
    pub spent: Event,
    /// When nothing was spent because the code was wrong, if that is recorded.
    pub wrong: Option<Event>,
    /// When nothing was spent because the code's step was used already, if that is recorded.
    pub replayed: Option<Event>,
}

/// What one try of a code did ([`Store::try_step`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tried {
    /// No try: the account is locked until this Unix time. `new` when this try locked it.
    Locked { until: i64, new: bool },
    /// The code's time step was spent: the login may go on.
    Spent,
    /// The code did not match, or its step was used already; the try counts.
    NotSpent,
    /// The enrollment is not the user's active one any more (reset or replaced since the
    /// login began): nothing was counted, spent or recorded.
    Vanished,
}

/// An enrollment made elsewhere, to be stored as active.
#[derive(Debug, Clone)]
pub struct Imported {
    pub user: UserName,
    pub secret: Secret,
    pub params: Params,
    /// The time step or counter value of the last code used with it where it came from: that
    /// code and those before it stay used.
    pub last_step: Option<u64>,
    pub recovery: Vec<Hashed>,
}

/// Identifies one stored recovery code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RecoveryId(pub i64);

/// What the user gave to be allowed a change of their own enrollment; spent by the change, in
/// its transaction, so one code never authorizes two changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proof {
    /// A code from the app for this time step.
    Step(u64),
    /// This recovery code.
    RecoveryCode(RecoveryId),
}

/// The stored enforcement switches for one user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StoredSwitches {
    pub global: Option<bool>,
    pub user: Option<bool>,
}

/// Which audit rows to read: a page of the trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditFilter {
    pub user: Option<UserName>,
    /// Rows at or after this Unix time.
    pub since: i64,
    pub kind: Option<String>,
    /// Rows looked at, at most: the newest rows about `user` below `before`. Those that match
    /// `since` and `kind` are the page.
    pub limit: usize,
    /// Where the page ends: rows older than the one with this number (`None`: the newest).
    pub before: Option<i64>,
}

/// A page of the audit trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditPage {
    /// The rows, oldest first.
    pub rows: Vec<AuditRow>,
    /// Where the next (older) page ends, if there may be one.
    pub next: Option<i64>,
}

/// Where a login comes from, for remembered logins: its PAM service and remote host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin<'a> {
    pub service: &'a str,
    pub rhost: &'a str,
}

/// A remembered right code: when it was given and when it last covered a login.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Remembered {
    pub verified: i64,
    pub last_seen: i64,
}

impl Remembered {
    /// Until when it covers logins under `terms`.
    pub fn until(&self, terms: RememberTerms) -> i64 {
        (self.last_seen + terms.duration).min(self.verified + terms.limit)
    }
}

/// How long remembered codes cover logins: `duration` seconds after their last use, and
/// never past `limit` seconds after the code was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RememberTerms {
    pub duration: i64,
    pub limit: i64,
}

/// One row of the audit trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRow {
    pub time: i64,
    pub kind: String,
    pub user: Option<String>,
    /// The host whose mfad recorded it, in a store shared by several; empty in a store of one.
    pub host: String,
    pub line: String,
}
