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

pub mod postgres;
pub mod sqlite;

#[cfg(test)]
pub mod contract;

use std::fmt;

use crate::audit::Event;
use crate::recovery::Hashed;
use crate::totp::{Params, Secret};
use crate::users::UserName;

/// A storage failure. The message is for mfad's log, not for users.
#[derive(Debug)]
pub struct StoreError(pub String);

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StoreError {}

pub type Result<T> = std::result::Result<T, StoreError>;

/// Identifies one enrollment for its whole life; never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EnrollmentId(pub i64);

/// An enrollment as stored.
#[derive(Debug, Clone)]
pub struct Enrollment {
    pub id: EnrollmentId,
    pub secret: Secret,
    pub params: Params,
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

/// What one try of a code did ([`Store::try_step`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tried {
    /// No try: the account is locked until this Unix time. `new` when this try locked it.
    Locked { until: i64, new: bool },
    /// The code's time step was spent: the login may go on.
    Spent,
    /// The code did not match, or its step was used already; the try counts.
    NotSpent,
}

/// An enrollment made elsewhere, to be stored as active.
#[derive(Debug, Clone)]
pub struct Imported {
    pub user: UserName,
    pub secret: Secret,
    pub params: Params,
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

/// Which audit rows to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditFilter {
    pub user: Option<UserName>,
    /// Rows at or after this Unix time.
    pub since: i64,
    pub kind: Option<String>,
    pub limit: usize,
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

pub trait Store: Send + Sync + 'static {
    /// The user's enrollments.
    fn enrollments(&self, user: &UserName) -> Result<Enrollments>;

    /// Stores a new pending enrollment, replacing an earlier pending one (which gets no further
    /// use: the new one has a new id). An active enrollment stays as it is until this one is
    /// activated.
    fn put_pending(
        &self,
        user: &UserName,
        secret: &Secret,
        params: Params,
        now: i64,
        event: &Event,
    ) -> Result<EnrollmentId>;

    /// Spends `spending`'s proof for its active enrollment and stores a new pending enrollment
    /// (a new phone), as [`Store::put_pending`] does, in one transaction. `None`, and nothing
    /// changed, if the proof was spent already or that is not the user's active enrollment.
    fn put_replacement(
        &self,
        user: &UserName,
        spending: (EnrollmentId, Proof),
        secret: &Secret,
        params: Params,
        now: i64,
        event: &Event,
    ) -> Result<Option<EnrollmentId>>;

    /// Activates pending enrollment `id`, whose code for `step` was just verified (that step is
    /// spent), with `recovery` as its recovery codes; the user's earlier active enrollment, if
    /// any, and its recovery codes are removed in the same transaction. False if `id` is no
    /// longer the user's pending enrollment.
    fn activate(
        &self,
        user: &UserName,
        id: EnrollmentId,
        step: u64,
        recovery: &[Hashed],
        now: i64,
        event: &Event,
    ) -> Result<bool>;

    /// Spends `proof` and replaces the recovery codes of active enrollment `id` with
    /// `recovery`. False, and nothing changed, if `id` is not the user's active enrollment any
    /// more or the proof was already spent.
    fn replace_recovery_codes(
        &self,
        user: &UserName,
        id: EnrollmentId,
        proof: Proof,
        recovery: &[Hashed],
        now: i64,
        event: &Event,
    ) -> Result<bool>;

    /// Spends `proof` and removes every enrollment of the user (active and pending) with their
    /// recovery codes, as [`Store::remove_enrollment`] does. False, and nothing changed, if
    /// `id` is not the user's active enrollment any more or the proof was already spent.
    fn disable(
        &self,
        user: &UserName,
        id: EnrollmentId,
        proof: Proof,
        now: i64,
        event: &Event,
    ) -> Result<bool>;

    /// The unused recovery codes of active enrollment `id`.
    fn recovery_codes(
        &self,
        user: &UserName,
        id: EnrollmentId,
    ) -> Result<Vec<(RecoveryId, Hashed)>>;

    /// Uses recovery code `code` of active enrollment `id`: `Some(unused codes left)` for
    /// exactly one of any number of concurrent calls, `None` for the others and once the code
    /// was used or `id` is not the user's active enrollment any more.
    fn consume_recovery_code(
        &self,
        user: &UserName,
        id: EnrollmentId,
        code: RecoveryId,
        now: i64,
        origin: Option<Origin<'_>>,
        event: &Event,
    ) -> Result<Option<usize>>;

    /// One try of a code from the app, whole in one transaction, so that a login with a code
    /// costs one durable commit whatever its outcome: the try is counted as
    /// [`Store::begin_attempt`] counts it (a locked account gets no try, and `locked(until)` is
    /// recorded when this try locks it); then, when `step` is given (the code matched that time
    /// step), the step is spent as [`Store::consume_step`] spends it (which clears the count)
    /// and `spent` is recorded. When nothing was spent, `failed(replayed)` is recorded if it
    /// gives an event (`replayed`: the code matched, but its step was used already).
    #[allow(clippy::too_many_arguments)]
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
    ) -> Result<Tried>;

    /// Consumes time step `step` of active enrollment `id`: true for exactly one of any number
    /// of concurrent calls with that step, and for none once that step or a later one was used,
    /// or once `id` is not the user's active enrollment any more. With `origin`, the right code
    /// is remembered for logins from there (see [`Store::use_remembered`]), in the same
    /// transaction; so is a used recovery code ([`Store::consume_recovery_code`]).
    fn consume_step(
        &self,
        user: &UserName,
        id: EnrollmentId,
        step: u64,
        now: i64,
        origin: Option<Origin<'_>>,
        event: &Event,
    ) -> Result<bool>;

    /// The remembered right code of active enrollment `id` for logins from `origin`, if any
    /// (whether it still covers a login is for [`Store::use_remembered`] to say).
    fn remembered(
        &self,
        user: &UserName,
        id: EnrollmentId,
        origin: Origin<'_>,
    ) -> Result<Option<Remembered>>;

    /// Lets a login from `origin` through on a remembered right code of active enrollment
    /// `id`, if it was last used less than `terms.duration` ago and given less than
    /// `terms.limit` ago, and the user is not locked; marks it used at `now` and records
    /// `event`, in one conditional update. False, and nothing written, otherwise. Resets, disables and new enrollments
    /// forget every remembered code of the user.
    fn use_remembered(
        &self,
        user: &UserName,
        id: EnrollmentId,
        origin: Origin<'_>,
        now: i64,
        terms: RememberTerms,
        event: &Event,
    ) -> Result<bool>;

    /// Adds active enrollments with their recovery codes, all or none, replacing pending ones.
    /// A user with an active enrollment, or one spelled differently only in case, stops the
    /// import and is returned in `Ok(Err(..))`.
    fn import(
        &self,
        entries: &[Imported],
        now: i64,
        event: &Event,
    ) -> Result<std::result::Result<usize, UserName>>;

    /// Removes the user's enrollment, pending or active, and its recovery codes. The SQLite
    /// backend leaves no copy of the secret in its files; a PostgreSQL server keeps the old row
    /// until it is vacuumed, and in its write-ahead log and backups. Returns whether there was
    /// one; `event` is recorded only if there was.
    fn remove_enrollment(&self, user: &UserName, now: i64, event: &Event) -> Result<bool>;

    /// Counts a try of a code by `user` before it is checked, in one transaction: a user may
    /// have `rule.failures` tries in `rule.window`; the next one locks the account (the lock
    /// doubles each time it follows another without a right code in between, up to
    /// `rule.max_duration`), and a locked account gets no try at all. So parallel logins get
    /// no more tries than one. `locked(until)` is recorded when this try locks the account.
    fn begin_attempt(
        &self,
        user: &UserName,
        now: i64,
        rule: LockoutRule,
        locked: &dyn Fn(i64) -> Event,
    ) -> Result<Attempt>;

    /// Until when the user is locked, if they are at `now`.
    fn locked_until(&self, user: &UserName, now: i64) -> Result<Option<i64>>;

    /// Ends a lock and clears the count. Returns whether the user was locked.
    fn unlock(&self, user: &UserName, now: i64, event: &Event) -> Result<bool>;

    /// The global switch, and `user`'s own switch when a user is named.
    fn switches(&self, user: Option<&UserName>) -> Result<StoredSwitches>;

    fn set_global_enforcement(&self, on: bool, now: i64, event: &Event) -> Result<()>;

    fn set_user_enforcement(
        &self,
        user: &UserName,
        on: bool,
        now: i64,
        event: &Event,
    ) -> Result<()>;

    /// Every user with an enrollment or a setting, sorted by name.
    fn users(&self) -> Result<Vec<UserName>>;

    /// A stored user whose name differs from `user` only in case, if any.
    fn spelled_otherwise(&self, user: &UserName) -> Result<Option<UserName>>;

    /// Appends an event that changes no state (a denied login) to the audit trail.
    fn record(&self, now: i64, event: &Event) -> Result<()>;

    /// The newest `limit` audit rows, oldest first.
    fn audit_tail(&self, limit: usize) -> Result<Vec<AuditRow>> {
        self.audit(&AuditFilter {
            user: None,
            since: 0,
            kind: None,
            limit,
        })
    }

    /// Removes the remembered codes given `limit` seconds or more before `now`, which cover no
    /// login any more; returns how many.
    fn prune_remembered(&self, now: i64, limit: i64) -> Result<usize>;

    /// Removes the audit rows older than `before` (Unix time); returns how many.
    fn prune_audit(&self, before: i64) -> Result<usize>;

    /// The newest `filter.limit` audit rows that match `filter`, oldest first.
    fn audit(&self, filter: &AuditFilter) -> Result<Vec<AuditRow>>;
}
