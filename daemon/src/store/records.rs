//! Enforcement switches, the users the store knows, and the audit trail.

use super::sql::{Bound, Lane, values};
use super::{AuditFilter, AuditPage, AuditRow, Result, Store, StoreError, StoredSwitches};
use crate::audit::Event;
use crate::users::UserName;

/// The key of the global enforcement switch in `settings`.
pub(super) const GLOBAL_ENFORCEMENT: &str = "enforce_all_users";

/// The lowest number and the count of the rows an audit page looks at: the newest below a
/// number, of one user (through the index on the user's name) and of everyone.
pub(super) const AUDIT_EXAMINED: [&str; 2] = [
    "SELECT min(id), count(*) FROM (SELECT id FROM audit
        WHERE username = $1 AND id < $2 ORDER BY id DESC LIMIT $3) AS examined",
    "SELECT min(id), count(*) FROM (SELECT id FROM audit
        WHERE id < $1 ORDER BY id DESC LIMIT $2) AS examined",
];

/// The rows of an audit page that match its filter, among those [`AUDIT_EXAMINED`] counted.
pub(super) const AUDIT_PAGE: [&str; 2] = [
    "SELECT time, kind, username, host, line FROM audit
     WHERE username = $1 AND id >= $2 AND id < $3 AND time >= $4
        AND (CAST($5 AS TEXT) IS NULL OR kind = $5)
     ORDER BY id",
    "SELECT time, kind, username, host, line FROM audit
     WHERE id >= $1 AND id < $2 AND time >= $3 AND (CAST($4 AS TEXT) IS NULL OR kind = $4)
     ORDER BY id",
];

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
        let page = self.audit(&AuditFilter {
            user: None,
            since: 0,
            kind: None,
            limit,
            before: None,
        })?;
        Ok(page.rows)
    }

    /// A page of the audit trail: of the newest `filter.limit` rows about the user (all rows
    /// when no user is named) below `filter.before`, those that match the rest of the filter.
    /// However many rows the trail holds and however few match, one page looks at no more than
    /// `filter.limit` of them, through the index on the user's name, and is read on the
    /// listings' lane: it never holds up a login.
    pub fn audit(&self, filter: &AuditFilter) -> Result<AuditPage> {
        let limit = i64::try_from(filter.limit).unwrap_or(i64::MAX);
        let before = filter.before.unwrap_or(i64::MAX);
        let kind = filter.kind.as_deref();
        let user = filter.user.as_ref().map(UserName::as_str);
        let (lowest, rows) = self.read_on(Lane::Listing, |tx| {
            // The lowest row number among the rows looked at, and how many there are; the
            // inner query reads the index alone.
            let mut examined = match user {
                Some(user) => tx.query_one(AUDIT_EXAMINED[0], values![user, before, limit]),
                None => tx.query_one(AUDIT_EXAMINED[1], values![before, limit]),
            }?;
            let (Some(lowest), count) = (examined.opt_int(0)?, examined.int(1)?) else {
                return Ok((None, Vec::new()));
            };
            let rows = match user {
                Some(user) => tx.query(
                    AUDIT_PAGE[0],
                    values![user, lowest, before, filter.since, kind],
                ),
                None => tx.query(AUDIT_PAGE[1], values![lowest, before, filter.since, kind]),
            }?;
            Ok(((count == limit).then_some(lowest), rows))
        })?;
        let rows = rows
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
        Ok(AuditPage { rows, next: lowest })
    }

    /// Every user with an enrollment or a setting, sorted by name.
    pub fn users(&self) -> Result<Vec<UserName>> {
        let rows = self.read_on(Lane::Listing, |tx| {
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
}

fn stored_name(name: &str) -> Result<UserName> {
    UserName::parse(name)
        .map_err(|reason| StoreError::Damaged(format!("stored user name {name:?}: {reason}")))
}
