//! Every operation of the store, written once in SQL that SQLite and PostgreSQL both take
//! (see [`super::sql`]), over a backend's transactions.
//!
//! A change about one user first takes that user's lock ([`Tx::lock_users`]), then decides
//! what it decides by conditional updates (a time step spent only if no later one was, a
//! recovery code used only if unused), never by a read to be written back later, so concurrent
//! logins on one host, or on many hosts sharing one database, cannot both succeed.

use pam_mfa_config::Algorithm;

use super::sql::{Bound, Lane, Tx, Value, placeholders, values};
use super::{
    Enrollment, EnrollmentId, Enrollments, Origin, Proof, RecoveryId, Result, Store, StoreError,
    UserEnrollment,
};
use crate::audit::Event;
use crate::codes::recovery::Hashed;
use crate::codes::totp::{Kind, Params, Secret};
use crate::sealing::{Binding, KeySet};
use crate::users::UserName;

/// Rows one statement of an import inserts at most (each with ten values: well within both
/// databases' limits on a statement's parameters).
pub(super) const IMPORT_CHUNK: usize = 1000;

/// Which of a user's enrollments.
#[derive(Clone, Copy)]
pub(super) enum Which {
    Active,
    Pending,
    All,
}

impl Store {
    /// Runs `work` in one write transaction; commits what it says to keep (`(value, true)`).
    pub(super) fn write<T>(
        &self,
        bound: Bound,
        work: impl FnOnce(&dyn Tx) -> Result<(T, bool)>,
    ) -> Result<T> {
        let mut work = Some(work);
        let mut value = None;
        self.noted(self.backend.write(bound, &mut |tx| {
            let work = work
                .take()
                .ok_or_else(|| StoreError::Failed("a transaction ran its work twice".into()))?;
            let (made, keep) = work(tx)?;
            value = Some(made);
            Ok(keep)
        }))?;
        value.ok_or_else(|| StoreError::Failed("a transaction ended without its work".into()))
    }

    /// Runs `work`, which only reads a few rows, on what is committed.
    pub(super) fn read<T>(&self, work: impl FnOnce(&dyn Tx) -> Result<T>) -> Result<T> {
        self.read_on(Lane::Login, work)
    }

    /// Runs `work`, which only reads, on what is committed, among the readers of `lane`.
    pub(super) fn read_on<T>(
        &self,
        lane: Lane,
        work: impl FnOnce(&dyn Tx) -> Result<T>,
    ) -> Result<T> {
        let mut work = Some(work);
        let mut value = None;
        self.noted(self.backend.read(lane, &mut |tx| {
            let work = work
                .take()
                .ok_or_else(|| StoreError::Failed("a read ran its work twice".into()))?;
            value = Some(work(tx)?);
            Ok(())
        }))?;
        value.ok_or_else(|| StoreError::Failed("a read ended without its work".into()))
    }

    /// A change about `user` (or about no user): takes the user's lock, runs `work`, and
    /// when it makes something (`Some`), records `event` and commits; when it declines
    /// (`None`), nothing of it stays.
    pub(super) fn change<T>(
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
    pub(super) fn append(&self, tx: &dyn Tx, now: i64, event: &Event) -> Result<()> {
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
        let found = self.with_keys(|keys| self.read(|tx| read_enrollments(tx, user, keys)))?;
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

    pub(super) fn store_pending(
        &self,
        user: &UserName,
        spending: Option<(EnrollmentId, Proof)>,
        secret: &Secret,
        params: Params,
        (now, event): (i64, &Event),
    ) -> Result<Option<EnrollmentId>> {
        let keys = self.keys()?;
        self.change(Some(user), now, event, |tx| {
            if let Some((active, proof)) = spending
                && !spend(tx, UserEnrollment { user, id: active }, proof, now, None)?
            {
                return Ok(None);
            }
            remove_enrollments(tx, user, Which::Pending)?;
            // The row is made first, with no secret: the seal is bound to its number.
            let mut row = tx.query_one(
                "INSERT INTO enrollments
                    (username, secret, kind, algorithm, digits, period, active, created)
                 VALUES ($1, $2, $3, $4, $5, $6, FALSE, $7) RETURNING id",
                values![
                    user.as_str(),
                    &[][..],
                    params.kind.name(),
                    params.algorithm.name(),
                    params.digits,
                    params.period,
                    now
                ],
            )?;
            let id = row.int(0)?;
            store_secret(tx, &keys, user.as_str(), id, secret.as_bytes())?;
            Ok(Some(EnrollmentId(id)))
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
        self.codes_of(active, false)
    }

    /// The recovery codes of the active enrollment that were used, to tell a user who types
    /// one again that it was used (not that it is wrong).
    pub fn used_recovery_codes(
        &self,
        active: UserEnrollment<'_>,
    ) -> Result<Vec<(RecoveryId, Hashed)>> {
        self.codes_of(active, true)
    }

    fn codes_of(
        &self,
        active: UserEnrollment<'_>,
        used: bool,
    ) -> Result<Vec<(RecoveryId, Hashed)>> {
        let rows = self.read(|tx| {
            tx.query(
                "SELECT recovery_codes.id, salt, hash FROM recovery_codes
                 JOIN enrollments ON enrollments.id = recovery_codes.enrollment
                 WHERE enrollments.id = $1 AND enrollments.username = $2
                    AND enrollments.active AND (used IS NOT NULL) = $3
                 ORDER BY recovery_codes.id",
                values![active.id.0, active.user.as_str(), used],
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
}

/// The user's enrollments, their secrets opened with `keys`.
pub(super) fn read_enrollments(tx: &dyn Tx, user: &UserName, keys: &KeySet) -> Result<Enrollments> {
    let rows = tx.query(
        "SELECT id, secret, algorithm, digits, period, active, created, confirmed, last_used,
                sealed_with, kind, last_step
         FROM enrollments WHERE username = $1",
        values![user.as_str()],
    )?;
    let mut found = Enrollments::default();
    for mut row in rows {
        let id = row.int(0)?;
        let secret = open_secret(keys, user.as_str(), id, row.bytes(1)?, row.opt_int(9)?)?;
        let algorithm = row.text(2)?;
        let algorithm = Algorithm::from_name(&algorithm).ok_or_else(|| {
            StoreError::Damaged(format!(
                "the enrollment of {user} names an unknown algorithm {algorithm:?}"
            ))
        })?;
        let kind = row.text(10)?;
        let kind = Kind::from_name(&kind).ok_or_else(|| {
            StoreError::Damaged(format!(
                "the enrollment of {user} is of an unknown kind {kind:?}"
            ))
        })?;
        let last_step = row
            .opt_int(11)?
            .map(|step| {
                u64::try_from(step).map_err(|_| {
                    StoreError::Damaged(format!(
                        "the enrollment of {user} has a negative counter or time step {step}"
                    ))
                })
            })
            .transpose()?;
        let active = row.bool(5)?;
        let enrollment = Enrollment {
            id: EnrollmentId(id),
            secret,
            last_step,
            params: Params {
                kind,
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

/// The secret of enrollment `id` of `user` as stored: opened with the key that sealed it, or as
/// it is when it was stored before secrets were sealed (mfad seals those when it starts).
pub(super) fn open_secret(
    keys: &KeySet,
    user: &str,
    id: i64,
    stored: Vec<u8>,
    sealed_with: Option<i64>,
) -> Result<Secret> {
    let Some(key) = sealed_with else {
        return Ok(Secret::from_bytes(stored));
    };
    let key = u32::try_from(key).map_err(|_| {
        StoreError::Damaged(format!(
            "enrollment {id} of {user} names key {key}, out of range"
        ))
    })?;
    let binding = Binding {
        user,
        enrollment: id,
    };
    let mut opened = keys.open(binding, key, &stored).map_err(|reason| {
        let message = format!("the secret of enrollment {id} of {user} {reason}");
        if keys.holds(key) {
            StoreError::Damaged(message)
        } else {
            StoreError::KeyMissing(key, message)
        }
    })?;
    // The opened bytes move into the secret (wiped when it is dropped), not copied.
    Ok(Secret::from_bytes(std::mem::take(&mut *opened)))
}

/// Seals `secret` for enrollment `id` of `user` and stores it in its row.
pub(super) fn store_secret(
    tx: &dyn Tx,
    keys: &KeySet,
    user: &str,
    id: i64,
    secret: &[u8],
) -> Result<()> {
    store_secrets(tx, keys, &[(user, id, secret)])
}

/// Secrets sealed in one statement: at most this many (each with two values).
const SECRETS_PER_STATEMENT: usize = 250;

/// Seals each `(user, enrollment id, secret)` with the newest of `keys` and stores it, a few
/// hundred in each statement (an import of a million users must not take a round trip to the
/// database for each). The sealed secret is chosen by `CASE id WHEN ...`: its `ELSE` (the
/// column itself) gives PostgreSQL the parameters' type, and SQLite takes it as it is.
pub(super) fn store_secrets(
    tx: &dyn Tx,
    keys: &KeySet,
    secrets: &[(&str, i64, &[u8])],
) -> Result<()> {
    for batch in secrets.chunks(SECRETS_PER_STATEMENT) {
        let mut sealed = Vec::with_capacity(batch.len());
        for (user, id, secret) in batch {
            let binding = Binding {
                user,
                enrollment: *id,
            };
            sealed.push((*id, keys.seal(binding, secret).map_err(StoreError::Failed)?));
        }
        let key = i64::from(keys.current());
        let mut values: Vec<Value<'_>> = vec![key.into()];
        let mut cases = String::new();
        let mut ids = Vec::with_capacity(sealed.len());
        for (index, (id, secret)) in sealed.iter().enumerate() {
            let (id_param, secret_param) = (2 * index + 2, 2 * index + 3);
            cases.push_str(&format!(" WHEN ${id_param} THEN ${secret_param}"));
            ids.push(format!("${id_param}"));
            values.push((*id).into());
            values.push(secret.bytes.as_slice().into());
        }
        let updated = tx.execute(
            &format!(
                "UPDATE enrollments SET secret = CASE id{cases} ELSE secret END, \
                 sealed_with = $1 WHERE id IN ({})",
                ids.join(", ")
            ),
            &values,
        )?;
        if updated != batch.len() as u64 {
            return Err(StoreError::Failed(format!(
                "{updated} of {} sealed secrets were stored",
                batch.len()
            )));
        }
    }
    Ok(())
}

/// Spends `proof` for the active enrollment: one conditional update. False if it was spent
/// already (or a later step was), or it is not the user's active enrollment. A right code
/// clears the user's count of tries and of locks in a row, and where `origin` is given, it is
/// remembered for logins from there, in the same transaction.
pub(super) fn spend(
    tx: &dyn Tx,
    active: UserEnrollment<'_>,
    proof: Proof,
    now: i64,
    origin: Option<Origin<'_>>,
) -> Result<bool> {
    spend_counted(tx, active, proof, now, origin, true)
}

/// [`spend`], when the caller knows whether the user has a count of tries stored (`counted`),
/// having read it with the user's lock held: with none, there is none to clear.
pub(super) fn spend_counted(
    tx: &dyn Tx,
    active: UserEnrollment<'_>,
    proof: Proof,
    now: i64,
    origin: Option<Origin<'_>>,
    counted: bool,
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
    if counted {
        tx.execute(
            "DELETE FROM lockout WHERE username = $1",
            values![user.as_str()],
        )?;
    }
    if let Some(origin) = origin {
        remember(tx, user, origin, id, now)?;
    }
    Ok(true)
}

/// Remembers a right code given at `now` for logins of `user` from `origin`, with enrollment
/// `id` (see [`Store::use_remembered`]).
pub(super) fn remember(
    tx: &dyn Tx,
    user: &UserName,
    origin: Origin<'_>,
    id: EnrollmentId,
    now: i64,
) -> Result<()> {
    tx.execute(
        "INSERT INTO remembered (username, service, rhost, enrollment, verified, last_seen)
         VALUES ($1, $2, $3, $4, $5, $5)
         ON CONFLICT (username, service, rhost) DO UPDATE SET
            enrollment = excluded.enrollment, verified = excluded.verified,
            last_seen = excluded.last_seen",
        values![user.as_str(), origin.service, origin.rhost, id.0, now],
    )?;
    Ok(())
}

/// Removes the user's enrollments of one kind (or all) with their recovery codes; removing
/// an active one forgets what it proved (remembered logins). Returns how many were removed.
pub(super) fn remove_enrollments(tx: &dyn Tx, user: &UserName, which: Which) -> Result<u64> {
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
pub(super) fn insert_recovery_codes(tx: &dyn Tx, owners: &[(i64, &[Hashed])]) -> Result<()> {
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
