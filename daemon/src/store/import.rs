//! Enrollments made elsewhere, stored all or none in a few statements per thousand users.

use super::operations::{IMPORT_CHUNK, insert_recovery_codes, store_secrets};
use super::sql::{Bound, Tx, Value, placeholders, values};
use super::{Imported, Result, Store, StoreError};
use crate::audit::Event;
use crate::codes::recovery::Hashed;
use crate::users::UserName;

impl Store {
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
        let keys = self.keys()?;
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
                // Rows are made with no secret; each is sealed for its number below.
                for entry in chunk {
                    values.extend(values![
                        entry.user.as_str(),
                        &[][..],
                        entry.params.kind.name(),
                        entry.params.algorithm.name(),
                        entry.params.digits,
                        entry.params.period,
                        true,
                        now,
                        now,
                        entry.last_step.map(|step| step as i64)
                    ]);
                }
                let rows = tx.query(
                    &format!(
                        "INSERT INTO enrollments
                            (username, secret, kind, algorithm, digits, period, active, created,
                             confirmed, last_step)
                         VALUES {} RETURNING username, id",
                        placeholders(chunk.len(), 10, 1)
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
                let mut secrets = Vec::with_capacity(chunk.len());
                for entry in chunk {
                    let id = ids[entry.user.as_str()];
                    secrets.push((entry.user.as_str(), id, entry.secret.as_bytes()));
                    owners.push((id, entry.recovery.as_slice()));
                }
                store_secrets(tx, &keys, &secrets)?;
            }
            insert_recovery_codes(tx, &owners)?;
            self.append(tx, now, event)?;
            Ok((Ok(entries.len()), true))
        })
    }
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
