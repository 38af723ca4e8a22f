//! Every operation of the store, written once in SQL that SQLite and PostgreSQL both take
//! (see [`super::sql`]), over a backend's transactions.
//!
//! A change about one user first takes that user's lock ([`Tx::lock_users`]), then decides
//! what it decides by conditional updates (a time step spent only if no later one was, a
//! recovery code used only if unused), never by a read to be written back later, so concurrent
//! logins on one host, or on many hosts sharing one database, cannot both succeed.

use pam_mfa_config::Algorithm;

use super::sql::{Bound, Tx, Value, placeholders, values};
use super::{
    Attempt, AuditFilter, AuditRow, CodeTry, Enrollment, EnrollmentId, Enrollments, Imported,
    LockoutRule, NextTry, Origin, Proof, RecoveryId, RememberTerms, Remembered, Result, Store,
    StoreError, StoredSwitches, Tried, TryCount, TryRecords, UserEnrollment,
};
use crate::audit::Event;
use crate::recovery::Hashed;
use crate::totp::{Params, Secret};
use crate::users::UserName;

/// The key of the global enforcement switch in `settings`.
const GLOBAL_ENFORCEMENT: &str = "enforce_all_users";

/// Rows one statement of an import inserts at most (each with six values: well within both
/// databases' limits on a statement's parameters).
const IMPORT_CHUNK: usize = 1000;

/// Which of a user's enrollments.
#[derive(Clone, Copy)]
enum Which {
    Active,
    Pending,
    All,
}

impl Store {
    /// Runs `work` in one write transaction; commits what it says to keep (`(value, true)`).
    fn write<T>(&self, bound: Bound, work: impl FnOnce(&dyn Tx) -> Result<(T, bool)>) -> Result<T> {
        let mut work = Some(work);
        let mut value = None;
        self.backend.write(bound, &mut |tx| {
            let work = work
                .take()
                .ok_or_else(|| StoreError::Failed("a transaction ran its work twice".into()))?;
            let (made, keep) = work(tx)?;
            value = Some(made);
            Ok(keep)
        })?;
        value.ok_or_else(|| StoreError::Failed("a transaction ended without its work".into()))
    }

    /// Runs `work`, which only reads, on what is committed.
    fn read<T>(&self, work: impl FnOnce(&dyn Tx) -> Result<T>) -> Result<T> {
        let mut work = Some(work);
        let mut value = None;
        self.backend.read(&mut |tx| {
            let work = work
                .take()
                .ok_or_else(|| StoreError::Failed("a read ran its work twice".into()))?;
            value = Some(work(tx)?);
            Ok(())
        })?;
        value.ok_or_else(|| StoreError::Failed("a read ended without its work".into()))
    }

    /// A change about `user` (or about no user): takes the user's lock, runs `work`, and
    /// when it makes something (`Some`), records `event` and commits; when it declines
    /// (`None`), nothing of it stays.
    fn change<T>(
        &self,
        user: Option<&UserName>,
        now: i64,
        event: &Event,
        work: impl FnOnce(&dyn Tx) -> Result<Option<T>>,
    ) -> Result<Option<T>> {
        self.write(Bound::Call, |tx| {
            if let Some(user) = user {
                tx.lock_users(&[user.as_str()])?;
            }
            let made = work(tx)?;
            if made.is_some() {
                self.append(tx, now, event)?;
            }
            let keep = made.is_some();
            Ok((made, keep))
        })
    }

    /// Appends `event` to the audit trail (when it is kept there), a pair as its two rows.
    fn append(&self, tx: &dyn Tx, now: i64, event: &Event) -> Result<()> {
        if let Event::Pair(first, second) = event {
            let at = match **first {
                Event::Challenged { at, .. } => at,
                _ => now,
            };
            self.append(tx, at, first)?;
            return self.append(tx, now, second);
        }
        if event.is_kept() {
            let line = event.to_string();
            tx.execute(
                "INSERT INTO audit (time, kind, username, host, line) VALUES ($1, $2, $3, $4, $5)",
                values![
                    now,
                    event.kind(),
                    event.user(),
                    self.host.as_str(),
                    line.as_str()
                ],
            )?;
        }
        Ok(())
    }

    /// The user's enrollments.
    pub fn enrollments(&self, user: &UserName) -> Result<Enrollments> {
        let found = self.read(|tx| read_enrollments(tx, user))?;
        if found.active.is_none() {
            // Not found might be a damaged index: trusted only once the backend says so.
            self.backend.trust_absence()?;
        }
        Ok(found)
    }

    /// Stores a new pending enrollment, replacing an earlier pending one (which gets no further
    /// use: the new one has a new id). An active enrollment stays as it is until this one is
    /// activated.
    pub fn put_pending(
        &self,
        user: &UserName,
        secret: &Secret,
        params: Params,
        now: i64,
        event: &Event,
    ) -> Result<EnrollmentId> {
        self.store_pending(user, None, secret, params, (now, event))?
            .ok_or_else(|| StoreError::Failed("a new enrollment was not stored".into()))
    }

    /// Spends the proof for the user's active enrollment and stores a new pending enrollment
    /// (a new phone), as [`Store::put_pending`] does, in one transaction. `None`, and nothing
    /// changed, if the proof was spent already or that is not the user's active enrollment.
    pub fn put_replacement(
        &self,
        spending: (UserEnrollment<'_>, Proof),
        secret: &Secret,
        params: Params,
        now: i64,
        event: &Event,
    ) -> Result<Option<EnrollmentId>> {
        let (active, proof) = spending;
        self.store_pending(
            active.user,
            Some((active.id, proof)),
            secret,
            params,
            (now, event),
        )
    }

    fn store_pending(
        &self,
        user: &UserName,
        spending: Option<(EnrollmentId, Proof)>,
        secret: &Secret,
        params: Params,
        (now, event): (i64, &Event),
    ) -> Result<Option<EnrollmentId>> {
        self.change(Some(user), now, event, |tx| {
            if let Some((active, proof)) = spending
                && !spend(tx, UserEnrollment { user, id: active }, proof, now, None)?
            {
                return Ok(None);
            }
            remove_enrollments(tx, user, Which::Pending)?;
            let mut row = tx.query_one(
                "INSERT INTO enrollments
                    (username, secret, algorithm, digits, period, active, created)
                 VALUES ($1, $2, $3, $4, $5, FALSE, $6) RETURNING id",
                values![
                    user.as_str(),
                    secret.as_bytes(),
                    params.algorithm.name(),
                    params.digits,
                    params.period,
                    now
                ],
            )?;
            Ok(Some(EnrollmentId(row.int(0)?)))
        })
    }

    /// Activates the pending enrollment, whose code for `step` was just verified (that step is
    /// spent), with `recovery` as its recovery codes; the user's earlier active enrollment, if
    /// any, and its recovery codes are removed in the same transaction. False if it is no
    /// longer the user's pending enrollment.
    pub fn activate(
        &self,
        pending: UserEnrollment<'_>,
        step: u64,
        recovery: &[Hashed],
        now: i64,
        event: &Event,
    ) -> Result<bool> {
        let UserEnrollment { user, id } = pending;
        let changed = self.change(Some(user), now, event, |tx| {
            let waiting = tx.query_opt(
                "SELECT 1 FROM enrollments WHERE id = $1 AND username = $2 AND NOT active",
                values![id.0, user.as_str()],
            )?;
            if waiting.is_none() {
                return Ok(None);
            }
            // The phone this one replaces stops working now, and so does what it proved.
            remove_enrollments(tx, user, Which::Active)?;
            let changed = tx.execute(
                "UPDATE enrollments SET active = TRUE, confirmed = $3, last_step = $4
                 WHERE id = $1 AND username = $2 AND NOT active",
                values![id.0, user.as_str(), now, step as i64],
            )?;
            if changed != 1 {
                return Ok(None);
            }
            insert_recovery_codes(tx, &[(id.0, recovery)])?;
            Ok(Some(()))
        })?;
        Ok(changed.is_some())
    }

    /// Spends `proof` and replaces the recovery codes of the active enrollment with
    /// `recovery`. False, and nothing changed, if it is not the user's active enrollment any
    /// more or the proof was already spent.
    pub fn replace_recovery_codes(
        &self,
        active: UserEnrollment<'_>,
        proof: Proof,
        recovery: &[Hashed],
        now: i64,
        event: &Event,
    ) -> Result<bool> {
        let changed = self.change(Some(active.user), now, event, |tx| {
            if !spend(tx, active, proof, now, None)? {
                return Ok(None);
            }
            tx.execute(
                "DELETE FROM recovery_codes WHERE enrollment = $1",
                values![active.id.0],
            )?;
            insert_recovery_codes(tx, &[(active.id.0, recovery)])?;
            Ok(Some(()))
        })?;
        Ok(changed.is_some())
    }

    /// Spends `proof` and removes every enrollment of the user (active and pending) with their
    /// recovery codes, as [`Store::remove_enrollment`] does. False, and nothing changed, if
    /// it is not the user's active enrollment any more or the proof was already spent.
    pub fn disable(
        &self,
        active: UserEnrollment<'_>,
        proof: Proof,
        now: i64,
        event: &Event,
    ) -> Result<bool> {
        let removed = self.change(Some(active.user), now, event, |tx| {
            if !spend(tx, active, proof, now, None)? {
                return Ok(None);
            }
            remove_enrollments(tx, active.user, Which::All)?;
            Ok(Some(()))
        })?;
        Ok(removed.is_some())
    }

    /// The unused recovery codes of the active enrollment.
    pub fn recovery_codes(&self, active: UserEnrollment<'_>) -> Result<Vec<(RecoveryId, Hashed)>> {
        let rows = self.read(|tx| {
            tx.query(
                "SELECT recovery_codes.id, salt, hash FROM recovery_codes
                 JOIN enrollments ON enrollments.id = recovery_codes.enrollment
                 WHERE enrollments.id = $1 AND enrollments.username = $2
                    AND enrollments.active AND used IS NULL
                 ORDER BY recovery_codes.id",
                values![active.id.0, active.user.as_str()],
            )
        })?;
        rows.into_iter()
            .map(|mut row| {
                let code = row.int(0)?;
                let (Ok(salt), Ok(hash)) = (row.bytes(1)?.try_into(), row.bytes(2)?.try_into())
                else {
                    return Err(StoreError::Damaged(format!(
                        "recovery code {code} of {} is damaged (wrong length)",
                        active.user
                    )));
                };
                Ok((RecoveryId(code), Hashed { salt, hash }))
            })
            .collect()
    }

    /// Uses recovery code `code` of the active enrollment: `Some(unused codes left)` for
    /// exactly one of any number of concurrent calls, `None` for the others and once the code
    /// was used or it is not the user's active enrollment any more.
    pub fn consume_recovery_code(
        &self,
        active: UserEnrollment<'_>,
        code: RecoveryId,
        now: i64,
        origin: Option<Origin<'_>>,
        event: &Event,
    ) -> Result<Option<usize>> {
        self.change(Some(active.user), now, event, |tx| {
            if !spend(tx, active, Proof::RecoveryCode(code), now, origin)? {
                return Ok(None);
            }
            let left = tx
                .query_one(
                    "SELECT count(*) FROM recovery_codes WHERE enrollment = $1 AND used IS NULL",
                    values![active.id.0],
                )?
                .int(0)?;
            Ok(Some(usize::try_from(left).unwrap_or(0)))
        })
    }

    /// One try of a code from the app, whole in one transaction, so that a login with a code
    /// costs one durable commit whatever its outcome: the try is counted as
    /// [`Store::begin_attempt`] counts it (a locked account gets no try, and `records.locked`
    /// is recorded when this try locks it); then, when the code matched a time step, the step
    /// is spent as [`Store::consume_step`] spends it (which clears the count) and
    /// `records.spent` is recorded. When nothing was spent, `records.wrong` or
    /// `records.replayed` (the code matched, but its step was used already) is recorded.
    pub fn try_step(&self, code: &CodeTry<'_>, records: &TryRecords) -> Result<Tried> {
        self.write(Bound::Call, |tx| {
            tx.lock_users(&[code.active.user.as_str()])?;
            let spend = || match code.step {
                Some(step) => spend(tx, code.active, Proof::Step(step), code.now, code.origin),
                None => Ok(false),
            };
            let user = code.active.user;
            let tried = match self.attempt(tx, user, code.now, code.rule, &records.locked, spend)? {
                (Attempt::Locked { until, new }, _) => Tried::Locked { until, new },
                (Attempt::Allowed, true) => {
                    self.append(tx, code.now, &records.spent)?;
                    Tried::Spent
                }
                (Attempt::Allowed, false) => {
                    let record = match code.step {
                        Some(_) => &records.replayed,
                        None => &records.wrong,
                    };
                    if let Some(event) = record {
                        self.append(tx, code.now, event)?;
                    }
                    Tried::NotSpent
                }
            };
            Ok((tried, true))
        })
    }

    /// Counts a try of a code by `user` before it is checked, in one transaction: a user may
    /// have `rule.failures` tries in `rule.window`; the next one locks the account (the lock
    /// doubles each time it follows another without a right code in between, up to
    /// `rule.max_duration`), and a locked account gets no try at all. So parallel logins get
    /// no more tries than one. `locked` (completed with the lock's end, see
    /// [`Event::with_lock_end`]) is recorded when this try locks the account.
    pub fn begin_attempt(
        &self,
        user: &UserName,
        now: i64,
        rule: LockoutRule,
        locked: &Event,
    ) -> Result<Attempt> {
        self.write(Bound::Call, |tx| {
            tx.lock_users(&[user.as_str()])?;
            let (attempt, _) = self.attempt(tx, user, now, rule, locked, || Ok(false))?;
            Ok((attempt, true))
        })
    }

    /// Counts one try of a code by `user` (see [`Store::begin_attempt`]); the caller holds the
    /// user's lock. When the try is allowed, `spend` runs first: if it spends the code, which
    /// clears the count, the try is not written only to be deleted.
    fn attempt(
        &self,
        tx: &dyn Tx,
        user: &UserName,
        now: i64,
        rule: LockoutRule,
        locked: &Event,
        spend: impl FnOnce() -> Result<bool>,
    ) -> Result<(Attempt, bool)> {
        let count = tx
            .query_opt(
                "SELECT tries, since, locked_until, locks FROM lockout WHERE username = $1",
                values![user.as_str()],
            )?
            .map(|mut row| {
                Ok::<_, StoreError>(TryCount {
                    tries: row.int(0)?,
                    since: row.int(1)?,
                    locked_until: row.int(2)?,
                    locks: row.int(3)?,
                })
            })
            .transpose()?;
        let count = match rule.next(count, now) {
            NextTry::Locked { until } => return Ok((Attempt::Locked { until, new: false }, false)),
            NextTry::Locks { count } => {
                self.append(tx, now, &locked.with_lock_end(count.locked_until))?;
                tx.execute(
                    "INSERT INTO lockout (username, tries, since, locked_until, locks)
                     VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (username) DO UPDATE SET tries = excluded.tries,
                        since = excluded.since, locked_until = excluded.locked_until,
                        locks = excluded.locks",
                    values![
                        user.as_str(),
                        count.tries,
                        count.since,
                        count.locked_until,
                        count.locks
                    ],
                )?;
                let until = count.locked_until;
                return Ok((Attempt::Locked { until, new: true }, false));
            }
            NextTry::Counts { count } => count,
        };
        if spend()? {
            return Ok((Attempt::Allowed, true));
        }
        tx.execute(
            "INSERT INTO lockout (username, tries, since, locked_until, locks)
             VALUES ($1, $2, $3, 0, $4)
             ON CONFLICT (username) DO UPDATE SET tries = excluded.tries, since = excluded.since",
            values![user.as_str(), count.tries, count.since, count.locks],
        )?;
        Ok((Attempt::Allowed, false))
    }

    /// Consumes time step `step` of the active enrollment: true for exactly one of any number
    /// of concurrent calls with that step, and for none once that step or a later one was used,
    /// or once it is not the user's active enrollment any more. With `origin`, the right code
    /// is remembered for logins from there (see [`Store::use_remembered`]), in the same
    /// transaction; so is a used recovery code ([`Store::consume_recovery_code`]).
    pub fn consume_step(
        &self,
        active: UserEnrollment<'_>,
        step: u64,
        now: i64,
        origin: Option<Origin<'_>>,
        event: &Event,
    ) -> Result<bool> {
        let spent = self.change(Some(active.user), now, event, |tx| {
            Ok(spend(tx, active, Proof::Step(step), now, origin)?.then_some(()))
        })?;
        Ok(spent.is_some())
    }

    /// The remembered right code of the active enrollment for logins from `origin`, if any
    /// (whether it still covers a login is for [`Store::use_remembered`] to say).
    pub fn remembered(
        &self,
        active: UserEnrollment<'_>,
        origin: Origin<'_>,
    ) -> Result<Option<Remembered>> {
        let row = self.read(|tx| {
            tx.query_opt(
                "SELECT verified, last_seen FROM remembered
                 WHERE username = $1 AND service = $2 AND rhost = $3 AND enrollment = $4",
                values![
                    active.user.as_str(),
                    origin.service,
                    origin.rhost,
                    active.id.0
                ],
            )
        })?;
        row.map(|mut row| {
            Ok(Remembered {
                verified: row.int(0)?,
                last_seen: row.int(1)?,
            })
        })
        .transpose()
    }

    /// Lets a login from `origin` through on a remembered right code of the active
    /// enrollment, if it was last used less than `terms.duration` ago and given less than
    /// `terms.limit` ago, and the user is not locked; marks it used at `now` and records
    /// `event`, in one conditional update. False, and nothing written, otherwise. Resets,
    /// disables and new enrollments forget every remembered code of the user.
    pub fn use_remembered(
        &self,
        active: UserEnrollment<'_>,
        origin: Origin<'_>,
        now: i64,
        terms: RememberTerms,
        event: &Event,
    ) -> Result<bool> {
        let used = self.change(Some(active.user), now, event, |tx| {
            let changed = tx.execute(
                "UPDATE remembered SET last_seen = $5
                 WHERE username = $1 AND service = $2 AND rhost = $3 AND enrollment = $4
                    AND last_seen + $6 > $5 AND verified + $7 > $5
                    AND EXISTS (SELECT 1 FROM enrollments
                                WHERE id = $4 AND username = $1 AND active)
                    AND NOT EXISTS (SELECT 1 FROM lockout
                                    WHERE username = $1 AND locked_until > $5)",
                values![
                    active.user.as_str(),
                    origin.service,
                    origin.rhost,
                    active.id.0,
                    now,
                    terms.duration,
                    terms.limit
                ],
            )?;
            Ok((changed == 1).then_some(()))
        })?;
        Ok(used.is_some())
    }

    /// Adds active enrollments with their recovery codes, all or none, replacing pending ones.
    /// A user with an active enrollment, or one spelled differently only in case (stored, or
    /// earlier in `entries`), stops the import and is returned in `Ok(Err(..))`: the first such
    /// entry, in the order given. A few statements per thousand users, whatever their number.
    pub fn import(
        &self,
        entries: &[Imported],
        now: i64,
        event: &Event,
    ) -> Result<std::result::Result<usize, UserName>> {
        let names: Vec<&str> = entries.iter().map(|entry| entry.user.as_str()).collect();
        self.write(Bound::Long, |tx| {
            tx.lock_users(&names)?;
            if let Some(refused) = refused_import(tx, entries)? {
                return Ok((Err(refused), false));
            }
            let mut owners: Vec<(i64, &[Hashed])> = Vec::new();
            for chunk in entries.chunks(IMPORT_CHUNK) {
                let names: Vec<&str> = chunk.iter().map(|entry| entry.user.as_str()).collect();
                let list = placeholders(1, names.len(), 1);
                let mut values: Vec<Value<'_>> = names.iter().map(|name| (*name).into()).collect();
                tx.execute(
                    &format!(
                        "DELETE FROM recovery_codes WHERE enrollment IN
                            (SELECT id FROM enrollments WHERE username IN {list} AND NOT active)"
                    ),
                    &values,
                )?;
                let removed = tx.execute(
                    &format!("DELETE FROM enrollments WHERE username IN {list} AND NOT active"),
                    &values,
                )?;
                if removed > 0 {
                    tx.secret_removed();
                }
                values.clear();
                for entry in chunk {
                    values.extend(values![
                        entry.user.as_str(),
                        entry.secret.as_bytes(),
                        entry.params.algorithm.name(),
                        entry.params.digits,
                        entry.params.period,
                        true,
                        now,
                        now
                    ]);
                }
                let rows = tx.query(
                    &format!(
                        "INSERT INTO enrollments
                            (username, secret, algorithm, digits, period, active, created,
                             confirmed)
                         VALUES {} RETURNING username, id",
                        placeholders(chunk.len(), 8, 1)
                    ),
                    &values,
                )?;
                if rows.len() != chunk.len() {
                    return Err(StoreError::Failed(format!(
                        "the import stored {} of {} enrollments",
                        rows.len(),
                        chunk.len()
                    )));
                }
                let mut ids = std::collections::HashMap::new();
                for mut row in rows {
                    ids.insert(row.text(0)?, row.int(1)?);
                }
                for entry in chunk {
                    owners.push((ids[entry.user.as_str()], entry.recovery.as_slice()));
                }
            }
            insert_recovery_codes(tx, &owners)?;
            self.append(tx, now, event)?;
            Ok((Ok(entries.len()), true))
        })
    }

    /// Removes the user's enrollment, pending or active, and its recovery codes. The SQLite
    /// backend leaves no copy of the secret in its files; a PostgreSQL server keeps the old row
    /// until it is vacuumed, and in its write-ahead log and backups. Returns whether there was
    /// one; `event` is recorded only if there was.
    pub fn remove_enrollment(&self, user: &UserName, now: i64, event: &Event) -> Result<bool> {
        let removed = self.change(Some(user), now, event, |tx| {
            // An active and a pending enrollment are two rows: both go.
            Ok((remove_enrollments(tx, user, Which::All)? > 0).then_some(()))
        })?;
        Ok(removed.is_some())
    }

    /// Until when the user is locked, if they are at `now`.
    pub fn locked_until(&self, user: &UserName, now: i64) -> Result<Option<i64>> {
        let until = self.read(|tx| {
            tx.query_opt(
                "SELECT locked_until FROM lockout WHERE username = $1",
                values![user.as_str()],
            )?
            .map(|mut row| row.int(0))
            .transpose()
        })?;
        Ok(until.filter(|until| *until > now))
    }

    /// Ends a lock and clears the count. Returns whether the user was locked.
    pub fn unlock(&self, user: &UserName, now: i64, event: &Event) -> Result<bool> {
        let was_locked = self.change(Some(user), now, event, |tx| {
            let row = tx.query_opt(
                "DELETE FROM lockout WHERE username = $1 RETURNING locked_until > $2",
                values![user.as_str(), now],
            )?;
            let locked = row.map(|mut row| row.bool(0)).transpose()?;
            Ok((locked == Some(true)).then_some(()))
        })?;
        Ok(was_locked.is_some())
    }

    /// The global switch, and `user`'s own switch when a user is named; one statement.
    pub fn switches(&self, user: Option<&UserName>) -> Result<StoredSwitches> {
        let mut row = self.read(|tx| {
            tx.query_one(
                "SELECT (SELECT value FROM settings WHERE key = $1),
                        (SELECT enforced FROM user_settings WHERE username = $2)",
                values![GLOBAL_ENFORCEMENT, user.map(UserName::as_str)],
            )
        })?;
        Ok(StoredSwitches {
            global: row.opt_text(0)?.map(|value| value == "on"),
            user: row.opt_bool(1)?,
        })
    }

    pub fn set_global_enforcement(&self, on: bool, now: i64, event: &Event) -> Result<()> {
        self.change(None, now, event, |tx| {
            tx.execute(
                "INSERT INTO settings (key, value) VALUES ($1, $2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                values![GLOBAL_ENFORCEMENT, if on { "on" } else { "off" }],
            )?;
            Ok(Some(()))
        })
        .map(drop)
    }

    pub fn set_user_enforcement(
        &self,
        user: &UserName,
        on: bool,
        now: i64,
        event: &Event,
    ) -> Result<()> {
        self.change(Some(user), now, event, |tx| {
            tx.execute(
                "INSERT INTO user_settings (username, enforced) VALUES ($1, $2)
                 ON CONFLICT (username) DO UPDATE SET enforced = excluded.enforced",
                values![user.as_str(), on],
            )?;
            Ok(Some(()))
        })
        .map(drop)
    }

    /// Every user with an enrollment or a setting, sorted by name.
    pub fn users(&self) -> Result<Vec<UserName>> {
        let rows = self.read(|tx| {
            tx.query(
                "SELECT username FROM enrollments UNION SELECT username FROM user_settings
                 ORDER BY 1",
                &[],
            )
        })?;
        rows.into_iter()
            .map(|mut row| stored_name(&row.text(0)?))
            .collect()
    }

    /// A stored user whose name differs from `user` only in case, if any.
    pub fn spelled_otherwise(&self, user: &UserName) -> Result<Option<UserName>> {
        let row = self.read(|tx| {
            tx.query_opt(
                "SELECT username FROM enrollments
                    WHERE lower(username) = lower($1) AND username <> $1
                 UNION
                 SELECT username FROM user_settings
                    WHERE lower(username) = lower($1) AND username <> $1
                 LIMIT 1",
                values![user.as_str()],
            )
        })?;
        row.map(|mut row| stored_name(&row.text(0)?)).transpose()
    }

    /// Appends an event that changes no state (a denied login) to the audit trail; a pair's
    /// two rows go together.
    pub fn record(&self, now: i64, event: &Event) -> Result<()> {
        self.write(Bound::Call, |tx| Ok((self.append(tx, now, event)?, true)))
    }

    /// Removes the remembered codes given `limit` seconds or more before `now`, which cover no
    /// login any more; returns how many.
    pub fn prune_remembered(&self, now: i64, limit: i64) -> Result<usize> {
        self.write(Bound::Call, |tx| {
            let removed = tx.execute(
                "DELETE FROM remembered WHERE verified + $2 <= $1",
                values![now, limit],
            )?;
            Ok((removed as usize, true))
        })
    }

    /// Removes this host's audit rows older than `before` (Unix time); returns how many. Each
    /// host of a shared store removes the entries it wrote, by its own retention: a host
    /// configured for a short trail never shortens the others'.
    pub fn prune_audit(&self, before: i64) -> Result<usize> {
        self.write(Bound::Call, |tx| {
            let removed = tx.execute(
                "DELETE FROM audit WHERE time < $1 AND host = $2",
                values![before, self.host.as_str()],
            )?;
            Ok((removed as usize, true))
        })
    }

    /// The newest `limit` audit rows, oldest first.
    pub fn audit_tail(&self, limit: usize) -> Result<Vec<AuditRow>> {
        self.audit(&AuditFilter {
            user: None,
            since: 0,
            kind: None,
            limit,
        })
    }

    /// The newest `filter.limit` audit rows that match `filter`, oldest first. A user's rows
    /// are found through the index on the user's name.
    pub fn audit(&self, filter: &AuditFilter) -> Result<Vec<AuditRow>> {
        let limit = i64::try_from(filter.limit).unwrap_or(i64::MAX);
        let kind = filter.kind.as_deref();
        let rows = self.read(|tx| match &filter.user {
            Some(user) => tx.query(
                "SELECT time, kind, username, host, line FROM audit
                 WHERE username = $1 AND time >= $2 AND (CAST($3 AS TEXT) IS NULL OR kind = $3)
                 ORDER BY id DESC LIMIT $4",
                values![user.as_str(), filter.since, kind, limit],
            ),
            None => tx.query(
                "SELECT time, kind, username, host, line FROM audit
                 WHERE time >= $1 AND (CAST($2 AS TEXT) IS NULL OR kind = $2)
                 ORDER BY id DESC LIMIT $3",
                values![filter.since, kind, limit],
            ),
        })?;
        let mut rows = rows
            .into_iter()
            .map(|mut row| {
                Ok(AuditRow {
                    time: row.int(0)?,
                    kind: row.text(1)?,
                    user: row.opt_text(2)?,
                    host: row.text(3)?,
                    line: row.text(4)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        rows.reverse();
        Ok(rows)
    }
}

fn stored_name(name: &str) -> Result<UserName> {
    UserName::parse(name)
        .map_err(|reason| StoreError::Damaged(format!("stored user name {name:?}: {reason}")))
}

fn read_enrollments(tx: &dyn Tx, user: &UserName) -> Result<Enrollments> {
    let rows = tx.query(
        "SELECT id, secret, algorithm, digits, period, active, created, confirmed, last_used
         FROM enrollments WHERE username = $1",
        values![user.as_str()],
    )?;
    let mut found = Enrollments::default();
    for mut row in rows {
        let algorithm = row.text(2)?;
        let algorithm = Algorithm::from_name(&algorithm).ok_or_else(|| {
            StoreError::Damaged(format!(
                "the enrollment of {user} names an unknown algorithm {algorithm:?}"
            ))
        })?;
        let active = row.bool(5)?;
        let enrollment = Enrollment {
            id: EnrollmentId(row.int(0)?),
            secret: Secret::from_bytes(row.bytes(1)?),
            params: Params {
                algorithm,
                digits: row.small(3)?,
                period: row.small(4)?,
            },
            active,
            created: row.int(6)?,
            confirmed: row.opt_int(7)?,
            last_used: row.opt_int(8)?,
        };
        if active {
            found.active = Some(enrollment);
        } else {
            found.pending = Some(enrollment);
        }
    }
    Ok(found)
}

/// Spends `proof` for the active enrollment: one conditional update. False if it was spent
/// already (or a later step was), or it is not the user's active enrollment. A right code
/// clears the user's count of tries and of locks in a row, and where `origin` is given, it is
/// remembered for logins from there, in the same transaction.
fn spend(
    tx: &dyn Tx,
    active: UserEnrollment<'_>,
    proof: Proof,
    now: i64,
    origin: Option<Origin<'_>>,
) -> Result<bool> {
    let UserEnrollment { user, id } = active;
    let changed = match proof {
        Proof::Step(step) => tx.execute(
            "UPDATE enrollments SET last_step = $3, last_used = $4
             WHERE id = $1 AND username = $2 AND active
                AND (last_step IS NULL OR last_step < $3)",
            values![id.0, user.as_str(), step as i64, now],
        )?,
        Proof::RecoveryCode(code) => tx.execute(
            "UPDATE recovery_codes SET used = $4
             WHERE id = $3 AND enrollment = $1 AND used IS NULL
                AND EXISTS (SELECT 1 FROM enrollments
                            WHERE id = $1 AND username = $2 AND active)",
            values![id.0, user.as_str(), code.0, now],
        )?,
    };
    if changed != 1 {
        return Ok(false);
    }
    tx.execute(
        "DELETE FROM lockout WHERE username = $1",
        values![user.as_str()],
    )?;
    if let Some(origin) = origin {
        tx.execute(
            "INSERT INTO remembered (username, service, rhost, enrollment, verified, last_seen)
             VALUES ($1, $2, $3, $4, $5, $5)
             ON CONFLICT (username, service, rhost) DO UPDATE SET
                enrollment = excluded.enrollment, verified = excluded.verified,
                last_seen = excluded.last_seen",
            values![user.as_str(), origin.service, origin.rhost, id.0, now],
        )?;
    }
    Ok(true)
}

/// Removes the user's enrollments of one kind (or all) with their recovery codes; removing
/// an active one forgets what it proved (remembered logins). Returns how many were removed.
fn remove_enrollments(tx: &dyn Tx, user: &UserName, which: Which) -> Result<u64> {
    let (codes, enrollments) = match which {
        Which::Active => (
            "DELETE FROM recovery_codes WHERE enrollment IN
                (SELECT id FROM enrollments WHERE username = $1 AND active)",
            "DELETE FROM enrollments WHERE username = $1 AND active",
        ),
        Which::Pending => (
            "DELETE FROM recovery_codes WHERE enrollment IN
                (SELECT id FROM enrollments WHERE username = $1 AND NOT active)",
            "DELETE FROM enrollments WHERE username = $1 AND NOT active",
        ),
        Which::All => (
            "DELETE FROM recovery_codes WHERE enrollment IN
                (SELECT id FROM enrollments WHERE username = $1)",
            "DELETE FROM enrollments WHERE username = $1",
        ),
    };
    tx.execute(codes, values![user.as_str()])?;
    if !matches!(which, Which::Pending) {
        tx.execute(
            "DELETE FROM remembered WHERE username = $1",
            values![user.as_str()],
        )?;
    }
    let removed = tx.execute(enrollments, values![user.as_str()])?;
    if removed > 0 {
        tx.secret_removed();
    }
    Ok(removed)
}

/// Stores recovery codes, each pair's for enrollment id `.0`: a few statements, whatever their
/// number.
fn insert_recovery_codes(tx: &dyn Tx, owners: &[(i64, &[Hashed])]) -> Result<()> {
    let codes: Vec<(i64, &Hashed)> = owners
        .iter()
        .flat_map(|(id, codes)| codes.iter().map(move |code| (*id, code)))
        .collect();
    for chunk in codes.chunks(IMPORT_CHUNK) {
        let mut values = Vec::with_capacity(chunk.len() * 3);
        for (id, code) in chunk {
            values.extend(values![*id, code.salt.as_slice(), code.hash.as_slice()]);
        }
        tx.execute(
            &format!(
                "INSERT INTO recovery_codes (enrollment, salt, hash) VALUES {}",
                placeholders(chunk.len(), 3, 1)
            ),
            &values,
        )?;
    }
    Ok(())
}

/// The first entry of an import that must not be imported, in the order given: a user with an
/// active enrollment, a stored user whose name differs only in case, or a name given earlier in
/// the import (exactly or in another case).
fn refused_import(tx: &dyn Tx, entries: &[Imported]) -> Result<Option<UserName>> {
    let mut stored: std::collections::HashMap<String, Vec<(String, bool)>> = Default::default();
    for chunk in entries.chunks(IMPORT_CHUNK) {
        let values: Vec<Value<'_>> = chunk
            .iter()
            .map(|entry| entry.user.as_str().into())
            .collect();
        let list = (1..=chunk.len())
            .map(|index| format!("lower(${index})"))
            .collect::<Vec<_>>()
            .join(", ");
        let rows = tx.query(
            &format!("SELECT username, active FROM enrollments WHERE lower(username) IN ({list})"),
            &values,
        )?;
        for mut row in rows {
            let name = row.text(0)?;
            let active = row.bool(1)?;
            stored
                .entry(name.to_ascii_lowercase())
                .or_default()
                .push((name, active));
        }
    }
    let mut seen = std::collections::HashSet::new();
    for entry in entries {
        let name = entry.user.as_str();
        let folded = name.to_ascii_lowercase();
        let clash = stored.get(&folded).is_some_and(|rows| {
            rows.iter()
                .any(|(stored, active)| stored != name || *active)
        });
        if !seen.insert(folded) || clash {
            return Ok(Some(entry.user.clone()));
        }
    }
    Ok(None)
}
