//! Enforcement switches, the users the store knows, and the audit trail.

use super::sql::{Bound, values};
use super::{AuditFilter, AuditRow, Result, Store, StoreError, StoredSwitches};
use crate::audit::Event;
use crate::users::UserName;

/// The key of the global enforcement switch in `settings`.
pub(super) const GLOBAL_ENFORCEMENT: &str = "enforce_all_users";

impl Store {
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
