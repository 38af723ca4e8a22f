//! What a login does to the store: tries counted, codes and recovery codes spent, locks,
//! remembered logins.

use super::operations::{read_enrollments, spend, spend_counted};
use super::records::GLOBAL_ENFORCEMENT;
use super::sql::{Bound, Tx, values};
use super::{
    Attempt, CodeTry, LockoutRule, LoginFacts, NextTry, Origin, Proof, RecoveryId, RememberTerms,
    Remembered, Result, Store, StoreError, StoredSwitches, Tried, TryCount, TryRecords,
    UserEnrollment,
};
use crate::audit::Event;
use crate::users::UserName;

/// Whose try is counted, when, and under which rule.
#[derive(Clone, Copy)]
pub(super) struct Counted<'a> {
    pub user: &'a UserName,
    pub now: i64,
    pub rule: LockoutRule,
}

impl Store {
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
    /// When the code's step was not spent and the enrollment is not the user's active one any
    /// more, nothing of the try stays ([`Tried::Vanished`]): the caller may have checked the
    /// code against an enrollment it read before, and the try is checked here, in its
    /// transaction, against what is stored.
    pub fn try_step(&self, code: &CodeTry<'_>, records: &TryRecords) -> Result<Tried> {
        self.write(Bound::Call, |tx| {
            tx.lock_users(&[code.active.user.as_str()])?;
            let spend = |counted: bool| match code.step {
                Some(step) => {
                    let proof = Proof::Step(step);
                    spend_counted(tx, code.active, proof, code.now, code.origin, counted)
                }
                None => Ok(false),
            };
            let user = code.active.user;
            let counted = Counted {
                user,
                now: code.now,
                rule: code.rule,
            };
            let vanished = || {
                let active = tx.query_opt(
                    "SELECT 1 FROM enrollments WHERE id = $1 AND username = $2 AND active",
                    values![code.active.id.0, user.as_str()],
                )?;
                Ok::<_, StoreError>(active.is_none())
            };
            let tried = match self.attempt(tx, counted, &records.locked, spend)? {
                // A spent step proves the enrollment active (the update checks it); any other
                // outcome is undone if it is not.
                (Attempt::Locked { .. }, _) | (Attempt::Allowed, false) if vanished()? => {
                    return Ok((Tried::Vanished, false));
                }
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
            let counted = Counted { user, now, rule };
            let (attempt, _) = self.attempt(tx, counted, locked, |_| Ok(false))?;
            Ok((attempt, true))
        })
    }

    /// Counts one try of a code by `user` (see [`Store::begin_attempt`]); the caller holds the
    /// user's lock. When the try is allowed, `spend` runs first: if it spends the code, which
    /// clears the count, the try is not written only to be deleted. `spend` is told whether a
    /// count is stored (with the user's lock held, none appears meanwhile).
    pub(super) fn attempt(
        &self,
        tx: &dyn Tx,
        counted: Counted<'_>,
        locked: &Event,
        spend: impl FnOnce(bool) -> Result<bool>,
    ) -> Result<(Attempt, bool)> {
        let Counted { user, now, rule } = counted;
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
        let stored = count.is_some();
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
        if spend(stored)? {
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

    /// Brings a counter-based token back in step: spends counter value `counter` of the active
    /// enrollment (with every value before it), as [`Store::consume_step`] does, but leaves the
    /// user's count of tries and any lock as they are (an administrator's resync is no right
    /// code typed at a login). False if that value or a later one was used, or it is not the
    /// user's active enrollment any more.
    pub fn resync(
        &self,
        active: UserEnrollment<'_>,
        counter: u64,
        now: i64,
        event: &Event,
    ) -> Result<bool> {
        let spent = self.change(Some(active.user), now, event, |tx| {
            let proof = Proof::Step(counter);
            Ok(spend_counted(tx, active, proof, now, None, false)?.then_some(()))
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
        self.read(|tx| remembered(tx, active, origin))
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

    /// Everything a login of `user` is decided on, in one read of what is committed: the
    /// user's enrollments, the enforcement switches, the end of the user's last lock and, when
    /// `origin` is given, the active enrollment's remembered right code for logins from there.
    pub fn login_facts(&self, user: &UserName, origin: Option<Origin<'_>>) -> Result<LoginFacts> {
        // (One statement that joins the enrollments to the rest is re-prepared by SQLite at
        // every run, since its plan could depend on the values bound: three statements that
        // stay prepared cost less.)
        let facts = self.with_keys(|keys| {
            self.read(|tx| {
                let mut row = tx.query_one(
                    "SELECT (SELECT value FROM settings WHERE key = $1),
                        (SELECT enforced FROM user_settings WHERE username = $2),
                        (SELECT locked_until FROM lockout WHERE username = $2)",
                    values![GLOBAL_ENFORCEMENT, user.as_str()],
                )?;
                let mut facts = LoginFacts {
                    switches: StoredSwitches {
                        global: row.opt_text(0)?.map(|value| value == "on"),
                        user: row.opt_bool(1)?,
                    },
                    locked_until: row.opt_int(2)?,
                    enrollments: read_enrollments(tx, user, keys)?,
                    remembered: None,
                };
                if let (Some(origin), Some(active)) = (origin, &facts.enrollments.active) {
                    facts.remembered = remembered(
                        tx,
                        UserEnrollment {
                            user,
                            id: active.id,
                        },
                        origin,
                    )?;
                }
                Ok(facts)
            })
        })?;
        if facts.enrollments.active.is_none() {
            // Not found might be a damaged index: trusted only once the backend says so.
            self.backend.trust_absence()?;
        }
        Ok(facts)
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
}

/// The remembered right code of the active enrollment for logins from `origin`, if any.
fn remembered(
    tx: &dyn Tx,
    active: UserEnrollment<'_>,
    origin: Origin<'_>,
) -> Result<Option<Remembered>> {
    let row = tx.query_opt(
        "SELECT verified, last_seen FROM remembered
         WHERE username = $1 AND service = $2 AND rhost = $3 AND enrollment = $4",
        values![
            active.user.as_str(),
            origin.service,
            origin.rhost,
            active.id.0
        ],
    )?;
    row.map(|mut row| {
        Ok(Remembered {
            verified: row.int(0)?,
            last_seen: row.int(1)?,
        })
    })
    .transpose()
}
