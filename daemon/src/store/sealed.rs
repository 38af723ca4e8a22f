//! The keys the store's secrets are sealed with ([`crate::sealing`]): checked against what is
//! stored before they are used, and every secret sealed again with the newest.

use std::sync::Arc;

use super::operations::{open_secret, store_secrets};
use super::sql::{Bound, values};
use super::{Result, Store, StoreError};
use crate::sealing::{Binding, KeySet};

/// Where a key's check value is kept in `settings`: this, then the key's number.
const CHECK_KEY: &str = "sealing_check_";

/// Secrets sealed again in one transaction: a restart in the middle of many finds each one
/// sealed with one key or the other, and goes on.
const SEAL_BATCH: i64 = 500;

/// What [`Store::use_keys`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resealed {
    /// The number of the key that now seals every secret.
    pub key: u32,
    /// Secrets that were sealed with another key, or not at all, and now are with it.
    pub count: usize,
}

impl Store {
    /// Puts `keys` in use: checks that they open what is stored (refused before anything is
    /// written if not), keeps a check value for each new key, and seals every secret that is
    /// not sealed with the newest key, in short transactions that logins go on between.
    pub fn use_keys(&self, keys: Arc<KeySet>) -> Result<Resealed> {
        self.adopt_keys(&keys)?;
        let mut count = 0;
        loop {
            let sealed = self.seal_batch(&keys)?;
            if sealed == 0 {
                break;
            }
            count += sealed;
        }
        Ok(Resealed {
            key: keys.current(),
            count,
        })
    }

    /// Puts `keys` in use once they are checked against what is stored, with a check value
    /// kept for each new key; seals nothing again.
    pub(super) fn adopt_keys(&self, keys: &Arc<KeySet>) -> Result<()> {
        self.check_keys(keys)?;
        self.write(Bound::Call, |tx| {
            for id in keys.ids() {
                let value = keys.check_value(id).map_err(StoreError::Failed)?;
                tx.execute(
                    "INSERT INTO settings (key, value) VALUES ($1, $2)
                     ON CONFLICT (key) DO NOTHING",
                    values![format!("{CHECK_KEY}{id}").as_str(), value.as_str()],
                )?;
            }
            Ok(((), true))
        })?;
        // Another host may have stored its own check value first, for another key under the
        // same number.
        self.check_keys(keys)?;
        *self
            .keys
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = (keys.clone(), true);
        Ok(())
    }

    /// Seals with the newest of `keys` up to a batch of secrets that are not sealed with it,
    /// in one transaction; returns how many.
    fn seal_batch(&self, keys: &KeySet) -> Result<usize> {
        self.write(Bound::Long, |tx| {
            // Through the index on the key's number, whatever the number of enrollments.
            let current = i64::from(keys.current());
            let mut rows = tx.query(
                "SELECT id, username, secret, sealed_with FROM enrollments
                 WHERE sealed_with IS NULL LIMIT $1",
                values![SEAL_BATCH],
            )?;
            for sql in [
                "SELECT id, username, secret, sealed_with FROM enrollments
                 WHERE sealed_with < $1 LIMIT $2",
                "SELECT id, username, secret, sealed_with FROM enrollments
                 WHERE sealed_with > $1 LIMIT $2",
            ] {
                rows.extend(tx.query(sql, values![current, SEAL_BATCH])?);
            }
            let found = rows.len();
            let mut opened = Vec::with_capacity(found);
            for mut row in rows {
                let (id, user) = (row.int(0)?, row.text(1)?);
                let secret = open_secret(keys, &user, id, row.bytes(2)?, row.opt_int(3)?)?;
                opened.push((user, id, secret));
            }
            let secrets: Vec<(&str, i64, &[u8])> = opened
                .iter()
                .map(|(user, id, secret)| (user.as_str(), *id, secret.as_bytes()))
                .collect();
            store_secrets(tx, keys, &secrets)?;
            let found = found + super::contacts::reseal_batch(tx, keys, SEAL_BATCH)?;
            if found > 0 {
                // What was there before (in the clear, or under an older key) leaves no
                // copy in the backend's files.
                tx.secret_removed();
            }
            Ok((found, found > 0))
        })
    }

    /// Refuses `keys` unless they are the keys that sealed what is stored: a stored check
    /// value a key under its number does not open, or secrets sealed with a key they lack or
    /// that does not open them. Reads only.
    fn check_keys(&self, keys: &KeySet) -> Result<()> {
        let refused = |why: String| {
            StoreError::WrongKeys(format!(
                "the sealing keys of {} do not fit the state database: {why}; mfad changed \
                 nothing",
                keys.source()
            ))
        };
        let (checks, samples) = self.read(|tx| {
            let checks = tx.query(
                "SELECT key, value FROM settings WHERE key LIKE $1",
                values![format!("{CHECK_KEY}%").as_str()],
            )?;
            // One secret of each key, to be opened: the keys found one after the other
            // through the index on the key's number, whatever the number of enrollments.
            let mut samples = Vec::new();
            let mut after = i64::MIN;
            while let Some(mut row) = tx.query_opt(
                "SELECT id, username, secret, sealed_with FROM enrollments
                 WHERE sealed_with > $1 ORDER BY sealed_with, id LIMIT 1",
                values![after],
            )? {
                after = row.int(3)?;
                samples.push((row.int(0)?, row.text(1)?, row.bytes(2)?, after));
            }
            Ok((checks, samples))
        })?;
        for mut row in checks {
            let name = row.text(0)?;
            let Ok(id) = name[CHECK_KEY.len().min(name.len())..].parse::<u32>() else {
                continue;
            };
            if keys.holds(id) && !keys.checks(id, &row.text(1)?) {
                return Err(refused(format!(
                    "its key {id} is not the key {id} the stored secrets were sealed with"
                )));
            }
        }
        for (id, user, sealed, sealed_with) in samples {
            let key = u32::try_from(sealed_with).unwrap_or(0);
            if !keys.holds(key) {
                return Err(refused(format!(
                    "secrets are sealed with key {sealed_with}, which it does not hold (put \
                     that key back)"
                )));
            }
            let binding = Binding {
                user: &user,
                enrollment: id,
            };
            if let Err(why) = keys.open(binding, key, &sealed) {
                return Err(refused(format!("the secret of enrollment {id} {why}")));
            }
        }
        Ok(())
    }
}
