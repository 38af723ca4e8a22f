//! Enrollments made elsewhere: from pairs of user and secret, or from google-authenticator
//! files; all or none, checked before anything is stored.

use super::{Caller, Core, bounded};
use std::time::Duration;

use pam_mfa_api::Error;
use pam_mfa_api::limits::MAX_IMPORT;

use crate::audit::Event;
use crate::clock::Clock;
use crate::codes::recovery;
use crate::codes::totp::{Params, Secret};
use crate::store::Imported;
use crate::users::{self, Lookup, LookupError, UserName};

impl<C: Clock> Core<C> {
    pub fn import(&self, caller: &Caller, entries: &[(String, String)]) -> Result<u32, Error> {
        self.check_import_size(entries.len())?;
        let params = self.params();
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
                recovery: Vec::new(),
            });
        }
        self.store_imported(caller, parsed)
    }

    /// Imports what google-authenticator's files hold: `(user, Base32 secret, period, scratch
    /// codes)`. Secrets of 80 bits and more are accepted (its classic ones are 80); codes are
    /// 6 digits, SHA1, as google-authenticator makes them; scratch codes become recovery codes.
    pub fn import_google_authenticator(
        &self,
        caller: &Caller,
        entries: &[(String, String, u32, Vec<String>)],
    ) -> Result<u32, Error> {
        self.check_import_size(entries.len())?;
        let mut parsed = Vec::with_capacity(entries.len());
        for (user, secret, period, scratch) in entries {
            let user = UserName::parse(user)
                .map_err(|reason| Error::InvalidArgument(format!("{user:.64?}: {reason}")))?;
            let secret = Secret::from_base32_imported(secret)
                .map_err(|reason| Error::InvalidArgument(format!("{user}: {reason}")))?;
            let period = pam_mfa_config::Period::try_from(i64::from(*period))
                .map_err(|reason| Error::InvalidArgument(format!("{user}: {reason}")))?;
            let mut recovery = Vec::with_capacity(scratch.len());
            for code in scratch {
                let typed = recovery::normalize(code).ok_or_else(|| {
                    Error::InvalidArgument(format!(
                        "{user}: a scratch code is not 8 digits (nothing was imported)"
                    ))
                })?;
                recovery.push(recovery::hash(&typed).map_err(|error| {
                    Error::Internal(format!("no randomness for a salt: {error}"))
                })?);
            }
            parsed.push(Imported {
                user,
                secret,
                params: Params {
                    algorithm: pam_mfa_config::Algorithm::Sha1,
                    digits: 6,
                    period: period.get(),
                },
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
