//! Enrollments made elsewhere: from pairs of user and secret, or tokens read from other tools'
//! files; all or none, checked before anything is stored.

use super::{Caller, Core, bounded};
use std::time::Duration;

use pam_mfa_api::limits::MAX_IMPORT;
use pam_mfa_api::{Error, TokenImport};
use pam_mfa_config::{Algorithm, Digits, Period};

use crate::audit::Event;
use crate::clock::Clock;
use crate::codes::recovery;
use crate::codes::totp::{Kind, Params, Secret};
use crate::store::Imported;
use crate::users::{self, Lookup, LookupError, UserName};

/// The highest time step or counter value an import may say was used: far beyond any token's
/// life (a press a second for a hundred million years), and far from where counting overflows.
const MAX_LAST_USED: i64 = 1 << 52;

impl<C: Clock> Core<C> {
    pub fn import(&self, caller: &Caller, entries: &[(String, String)]) -> Result<u32, Error> {
        self.check_import_size(entries.len())?;
        let params = self.params_of(Kind::Totp);
        let mut parsed = Vec::with_capacity(entries.len());
        for (user, secret) in entries {
            let user = UserName::parse(user)
                .map_err(|reason| Error::InvalidArgument(format!("{user:.64?}: {reason}")))?;
            let secret = Secret::from_base32(secret)
                .map_err(|reason| Error::InvalidArgument(format!("{user}: {reason}")))?;
            parsed.push(Imported {
                user,
                secret,
                params,
                last_step: None,
                recovery: Vec::new(),
            });
        }
        self.store_imported(caller, parsed)
    }

    /// Imports tokens made elsewhere ([`TokenImport`]): google-authenticator's files,
    /// pam_oath's users file, PSKC files, as mfactl reads them. Secrets of 80 bits and more are
    /// accepted (google-authenticator's classic ones are 80); a code used there stays used
    /// (`last_used`); 8-digit codes become recovery codes. All or none, every entry checked
    /// first: an error names the entry's user and what is wrong.
    pub fn import_tokens(&self, caller: &Caller, entries: &[TokenImport]) -> Result<u32, Error> {
        self.check_import_size(entries.len())?;
        let mut parsed = Vec::with_capacity(entries.len());
        for entry in entries {
            let user = UserName::parse(&entry.user).map_err(|reason| {
                Error::InvalidArgument(format!("{:.64?}: {reason}", entry.user))
            })?;
            let invalid = |what: String| {
                Error::InvalidArgument(format!("{user}: {what} (nothing was imported)"))
            };
            let kind = Kind::from_name(&entry.kind).ok_or_else(|| {
                invalid(format!(
                    "unknown kind of token {:.16?}: expected totp or hotp",
                    entry.kind
                ))
            })?;
            let secret =
                Secret::from_base32_imported(&entry.secret).map_err(|e| invalid(e.to_string()))?;
            let algorithm = Algorithm::from_name(&entry.algorithm).ok_or_else(|| {
                invalid(format!(
                    "unknown algorithm {:.16?}: expected SHA1, SHA256 or SHA512",
                    entry.algorithm
                ))
            })?;
            let digits = Digits::try_from(i64::from(entry.digits)).map_err(invalid)?;
            let params = match kind {
                Kind::Totp => Params {
                    kind,
                    algorithm,
                    digits: digits.get(),
                    period: Period::try_from(i64::from(entry.period))
                        .map_err(invalid)?
                        .get(),
                },
                Kind::Hotp => Params::hotp(algorithm, digits.get()),
            };
            let last_step = match entry.last_used {
                -1 => None,
                used @ 0..=MAX_LAST_USED => Some(used as u64),
                used => {
                    return Err(invalid(format!(
                        "last used {used}: expected a time step or counter value from 0 to \
                         {MAX_LAST_USED}, or -1"
                    )));
                }
            };
            let mut recovery = Vec::with_capacity(entry.recovery_codes.len());
            for code in &entry.recovery_codes {
                let typed = recovery::normalize(code)
                    .ok_or_else(|| invalid("a scratch code is not 8 digits".into()))?;
                recovery.push(recovery::hash(&typed).map_err(|error| {
                    Error::Internal(format!("no randomness for a salt: {error}"))
                })?);
            }
            parsed.push(Imported {
                user,
                secret,
                params,
                last_step,
                recovery,
            });
        }
        self.store_imported(caller, parsed)
    }

    pub(super) fn check_import_size(&self, count: usize) -> Result<(), Error> {
        if count > MAX_IMPORT {
            return Err(Error::InvalidArgument(format!(
                "{count} entries in one call; send at most {MAX_IMPORT} at a time"
            )));
        }
        Ok(())
    }

    /// Stores imported enrollments under the system's own spelling of each name; names the
    /// system does not know are kept as given (directory users not visible on this host),
    /// unless they are case variants.
    pub(super) fn store_imported(
        &self,
        caller: &Caller,
        mut parsed: Vec<Imported>,
    ) -> Result<u32, Error> {
        let mut seen = std::collections::HashSet::new();
        let names: Vec<UserName> = parsed.iter().map(|entry| entry.user.clone()).collect();
        let limit = self.lookup_limit() + Duration::from_millis(names.len() as u64);
        let found = bounded(limit, move || {
            names
                .iter()
                .map(|name| {
                    Ok(match users::by_name(name)? {
                        Lookup::Found(account) => (Some(account.name), None),
                        Lookup::Unknown => (None, users::case_variant(name)?),
                    })
                })
                .collect::<Result<Vec<_>, LookupError>>()
        })?;
        for (entry, (own, variant)) in parsed.iter_mut().zip(found) {
            let user = &mut entry.user;
            if let Some(other) = variant {
                return Err(Error::InvalidArgument(format!(
                    "{user} is not a user here, but {other} is: user names are case-sensitive; \
                     nothing was imported"
                )));
            }
            if let Some(own) = own {
                *user = own;
            }
            if !seen.insert(user.clone()) {
                return Err(Error::InvalidArgument(format!(
                    "{user} appears twice in the import"
                )));
            }
        }
        let event = Event::EnrollmentsImported {
            count: parsed.len(),
        }
        .by(caller.uid);
        match self.store.import(&parsed, self.now(), &event)? {
            Ok(count) => {
                self.emit(caller, &[event]);
                Ok(count as u32)
            }
            Err(user) => match self.store.spelled_otherwise(&user)? {
                Some(other) => Err(Error::InvalidArgument(format!(
                    "{user} differs only in case from {other}, who is already known here; \
                     nothing was imported: user names are case-sensitive, use {other}"
                ))),
                None => Err(Error::AlreadyEnrolled(format!(
                    "{user} is already enrolled; nothing was imported: run `mfactl reset \
                     {user}` or leave {user} out of the import"
                ))),
            },
        }
    }
}
