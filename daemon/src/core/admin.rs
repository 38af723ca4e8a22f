//! What administrators do: status and users, enrollment on someone's behalf, unlock,
//! reset, enforcement switches, the audit trail.

use super::{Caller, Core, new_secret};

use pam_mfa_api::limits::{MAX_AUDIT_PAGE, MAX_REPLY_LEN};
use pam_mfa_api::{
    AuditEntry, AuditPage, AuditQuery, Error, NewEnrollment, ResetOutcome, UserStatus,
};

use crate::audit::{Event, Scope};
use crate::clock::Clock;
use crate::codes::totp::{Kind, Secret, resync_hotp};
use crate::policy;
use crate::sealing::KeySet;
use crate::store::{AuditFilter, StoreError, UserEnrollment};
use crate::users::UserName;

impl<C: Clock> Core<C> {
    /// A page of audit entries (see [`crate::store::Store::audit`]). Administrators read
    /// anyone's (`user` empty: everyone's); any other caller reads only their own, whatever
    /// `user` says.
    pub fn audit(&self, caller: &Caller, query: &AuditQuery) -> Result<AuditPage, Error> {
        let AuditQuery {
            user,
            since,
            kind,
            limit,
            before,
        } = query;
        let (since, limit, before) = (*since, *limit, *before);
        let admin = caller.uid == 0 || self.in_admin_group(caller.uid)?;
        let user = if admin {
            (!user.is_empty())
                .then(|| UserName::parse(user).map_err(Error::from))
                .transpose()?
        } else {
            Some(self.own_account(caller)?)
        };
        if limit == 0 || limit as usize > MAX_AUDIT_PAGE {
            return Err(Error::InvalidArgument(format!(
                "limit {limit}: ask for 1 to {MAX_AUDIT_PAGE} entries a page"
            )));
        }
        if before < 0 {
            return Err(Error::InvalidArgument(format!(
                "before {before}: expected 0 (the newest entries) or where a page ended"
            )));
        }
        let filter = AuditFilter {
            user,
            since,
            kind: (!kind.is_empty()).then(|| kind.to_owned()),
            limit: limit as usize,
            before: (before > 0).then_some(before),
        };
        let page = self.store.audit(&filter)?;
        Ok(AuditPage {
            entries: page
                .rows
                .into_iter()
                .map(|row| AuditEntry {
                    time: row.time,
                    kind: row.kind,
                    user: row.user.unwrap_or_default(),
                    host: row.host,
                    line: row.line,
                })
                .collect(),
            next: page.next.unwrap_or(0),
        })
    }

    pub fn status(&self, user: &str) -> Result<UserStatus, Error> {
        let user = self.admin_user(user)?;
        self.status_of(&user)
    }

    /// Whether MFA is required of `user` wherever they log in from: the rules about users and
    /// groups (a login adds those about its service and remote host).
    pub(super) fn requirement(
        &self,
        user: &UserName,
        known: bool,
    ) -> Result<policy::Requirement, Error> {
        let facts = policy::Facts {
            switches: self.dialogue.switches(user)?,
            member_of: self.memberships(user, known, false)?,
        };
        let settings = self.config();
        Ok(policy::requirement(
            &settings.config,
            user,
            &facts,
            policy::Place::default(),
        ))
    }

    pub(super) fn status_of(&self, user: &UserName) -> Result<UserStatus, Error> {
        let requirement = self.requirement(user, true)?;
        self.status_with(user, requirement).map_err(Error::from)
    }

    pub(super) fn status_with(
        &self,
        user: &UserName,
        requirement: policy::Requirement,
    ) -> Result<UserStatus, StoreError> {
        let enrollments = self.store.enrollments(user)?;
        let recovery_codes_left = match &enrollments.active {
            Some(active) => {
                let active = UserEnrollment {
                    user,
                    id: active.id,
                };
                self.store.recovery_codes(active)?.len() as u32
            }
            None => 0,
        };
        let locked_until = self.store.locked_until(user, self.now())?.unwrap_or(0);
        let state = policy::State {
            enrolled: enrollments.active.is_some(),
            locked_until: (locked_until > 0).then_some(locked_until),
            remembered_until: None,
            known: true,
            enroll_at_login: self.config().config.login.enroll_at_login,
        };
        let next_login = policy::next_login(&requirement, state);
        let enrollment = enrollments.active;
        Ok(UserStatus {
            user: user.to_string(),
            enrolled: enrollment.is_some(),
            enforced: requirement.required,
            enforced_by: requirement.by,
            algorithm: enrollment
                .as_ref()
                .map(|e| e.params.algorithm.name().to_owned())
                .unwrap_or_default(),
            token: enrollment
                .as_ref()
                .map(|e| e.params.kind.name().to_owned())
                .unwrap_or_default(),
            counter: enrollment
                .as_ref()
                .filter(|e| e.params.kind == Kind::Hotp)
                .and_then(|e| e.last_step)
                .map_or(-1, |counter| counter as i64),
            digits: enrollment.as_ref().map_or(0, |e| e.params.digits),
            period: enrollment.as_ref().map_or(0, |e| e.params.period),
            enrolled_at: enrollment.as_ref().and_then(|e| e.confirmed).unwrap_or(0),
            last_used: enrollment.as_ref().and_then(|e| e.last_used).unwrap_or(0),
            pending: enrollments.pending.is_some(),
            recovery_codes_left,
            locked_until,
            next_login,
            contacts: self.verified_contacts(user)?,
        })
    }

    pub fn users(&self) -> Result<Vec<UserStatus>, Error> {
        let names = self.store.users()?;
        names.iter().map(|user| self.status_of(user)).collect()
    }

    pub fn begin_enrollment(
        &self,
        caller: &Caller,
        user: &str,
        kind: &str,
        secret: &str,
    ) -> Result<NewEnrollment, Error> {
        let user = self.admin_user(user)?;
        let kind = token_kind(kind)?;
        self.start_enrollment(caller, user, kind, secret)
    }

    /// A pending enrollment of `kind` for `user` with `secret` (Base32), or a new secret when
    /// empty.
    pub(super) fn start_enrollment(
        &self,
        caller: &Caller,
        user: UserName,
        kind: Kind,
        secret: &str,
    ) -> Result<NewEnrollment, Error> {
        let secret = if secret.is_empty() {
            new_secret()?
        } else {
            Secret::from_base32(secret)?
        };
        let params = self.params_of(kind);
        let event = Event::EnrollmentStarted { user: user.clone() }.by(caller.uid);
        self.store
            .put_pending(&user, &secret, params, self.now(), &event)?;
        self.emit(caller, &[event]);
        self.shown(&user, &secret, params)
    }

    pub fn confirm_enrollment(
        &self,
        caller: &Caller,
        user: &str,
        code: &str,
    ) -> Result<Vec<String>, Error> {
        let user = self.admin_user(user)?;
        self.finish_enrollment(caller, user, code)
    }

    /// Activates the pending enrollment of `user` with a current `code` from its app.
    pub(super) fn finish_enrollment(
        &self,
        caller: &Caller,
        user: UserName,
        code: &str,
    ) -> Result<Vec<String>, Error> {
        let pending = self.store.enrollments(&user)?.pending.ok_or_else(|| {
            Error::NoPendingEnrollment(format!(
                "{user} has no enrollment waiting for confirmation: run `mfactl enroll {user}`"
            ))
        })?;
        let now = self.now();
        let step = self.dialogue.verify(&pending, code).ok_or_else(|| {
            Error::WrongCode(match pending.params.kind {
                Kind::Totp => "the code does not match: type the code the app shows now, and \
                               check that the phone's clock is set automatically"
                    .into(),
                Kind::Hotp => format!(
                    "the code does not match: press the token's button and type the code it \
                     shows (the first {} codes of a new token are looked for)",
                    self.config().config.hotp.look_ahead.get()
                ),
            })
        })?;
        let issued = self.dialogue.issue_recovery_codes()?;
        let hashes: Vec<_> = issued.iter().map(|(_, hashed)| hashed.clone()).collect();
        let event = Event::EnrollmentConfirmed { user: user.clone() }.by(caller.uid);
        if !self.store.activate(
            UserEnrollment {
                user: &user,
                id: pending.id,
            },
            step,
            &hashes,
            now,
            &event,
        )? {
            return Err(Error::NoPendingEnrollment(format!(
                "the enrollment of {user} changed meanwhile: run `mfactl status {user}`"
            )));
        }
        self.emit(caller, &[event]);
        Ok(issued
            .into_iter()
            .map(|(code, _)| code.to_string())
            .collect())
    }

    /// Reads the sealing keys again and seals every stored secret with the newest
    /// ([`crate::store::Store::use_keys`]); keys that do not open what is stored are refused,
    /// and those in use stay.
    pub fn reseal(&self, caller: &Caller) -> Result<pam_mfa_api::Resealed, Error> {
        let file = self.config().config.sealing_key_file.clone();
        let keys = KeySet::load(&file).map_err(Error::InvalidArgument)?;
        let source = keys.source().to_owned();
        let done = self
            .store
            .use_keys(std::sync::Arc::new(keys))
            .map_err(|error| match error {
                StoreError::WrongKeys(why) => Error::InvalidArgument(why),
                other => other.into(),
            })?;
        let event = Event::SecretsResealed {
            key: done.key,
            count: done.count as u64,
        }
        .by(caller.uid);
        self.store.record(self.now(), &event)?;
        self.emit(caller, &[event]);
        Ok(pam_mfa_api::Resealed {
            key: done.key,
            resealed: done.count as u64,
            keys: source,
        })
    }

    /// Where the state is, the database server in use, whether the store answers now (it is
    /// asked) and its last failure. Administrators only (checked by the bus interface): the
    /// database's hosts are the fleet's.
    pub fn health(&self) -> pam_mfa_api::StoreHealth {
        let health = self.store.health();
        let (server, server_since) = health
            .server
            .map_or((String::new(), 0), |server| (server.address, server.since));
        let (last_error_at, last_error) = health.last_error.unwrap_or_default();
        pam_mfa_api::StoreHealth {
            store: health.store,
            server,
            server_since,
            answering: health.answering,
            last_error,
            last_error_at,
        }
    }

    pub fn unlock(&self, caller: &Caller, user: &str) -> Result<bool, Error> {
        let user = self.admin_user(user)?;
        let event = Event::Unlocked { user: user.clone() }.by(caller.uid);
        let unlocked = self.store.unlock(&user, self.now(), &event)?;
        if unlocked {
            self.emit(caller, &[event]);
        }
        Ok(unlocked)
    }

    /// Brings the counter-based token of `user` back in step with two codes it showed one after
    /// the other (`first`, `second`), looked for within `hotp.resync_window` values after its
    /// counter: the second's value becomes the last one used (with every value before it).
    /// Returns that value.
    pub fn resync(
        &self,
        caller: &Caller,
        user: &str,
        (first, second): (&str, &str),
    ) -> Result<u64, Error> {
        let user = self.admin_user(user)?;
        let active = self.active(&user)?;
        if active.params.kind != Kind::Hotp {
            return Err(Error::InvalidArgument(format!(
                "{user} has an authenticator app (time-based codes), which has no counter to \
                 bring back in step: check the phone's clock instead"
            )));
        }
        let hotp = &self.config().config.hotp;
        let ranges = (hotp.look_ahead.get(), hotp.resync_window.get());
        let short = first.len() <= MAX_REPLY_LEN && second.len() <= MAX_REPLY_LEN;
        let codes = (first, second);
        let counter = short
            .then(|| {
                resync_hotp(
                    &active.secret,
                    active.params,
                    codes,
                    active.last_step,
                    ranges,
                )
            })
            .flatten()
            .ok_or_else(|| {
                Error::WrongCode(format!(
                    "these are not two codes in a row of {user}'s token within the {} values \
                     after the last one used (hotp.look_ahead and hotp.resync_window): press \
                     the button twice and type both codes, in the order shown",
                    u64::from(ranges.0) + u64::from(ranges.1)
                ))
            })?;
        let event = Event::TokenResynced {
            user: user.clone(),
            counter,
        }
        .by(caller.uid);
        let resynced = self.store.resync(
            UserEnrollment {
                user: &user,
                id: active.id,
            },
            counter,
            self.now(),
            &event,
        )?;
        if !resynced {
            return Err(Error::WrongCode(format!(
                "{user}'s token was used or replaced meanwhile: press the button twice and \
                 try again"
            )));
        }
        self.emit(caller, &[event]);
        Ok(counter)
    }

    /// Removes the user's enrollment, pending or active, with its recovery codes, ends their
    /// logins under way, and says what their next login does now. Recorded in the audit trail
    /// when something was removed; logged either way.
    pub fn reset(&self, caller: &Caller, user: &str) -> Result<ResetOutcome, Error> {
        let user = self.admin_user(user)?;
        let reset = |removed| {
            Event::EnrollmentReset {
                user: user.clone(),
                removed,
            }
            .by(caller.uid)
        };
        // The trail records what was removed; the log says also that nothing was.
        let removed = self
            .store
            .remove_enrollment(&user, self.now(), &reset(true))?;
        self.dialogue.end_user(&user);
        self.emit(caller, &[reset(removed)]);
        let next_login = self.status_of(&user)?.next_login;
        Ok(ResetOutcome {
            removed,
            next_login,
        })
    }

    pub fn set_global_enforcement(&self, caller: &Caller, on: bool) -> Result<(), Error> {
        let event = Event::EnforcementSet {
            scope: Scope::AllUsers,
            on,
        }
        .by(caller.uid);
        self.store.set_global_enforcement(on, self.now(), &event)?;
        self.emit(caller, &[event]);
        Ok(())
    }

    pub fn global_enforcement(&self) -> Result<bool, Error> {
        let stored = self.store.switches(None)?;
        Ok(stored
            .global
            .unwrap_or(self.config().config.enforcement.all_users))
    }

    pub fn set_user_enforcement(&self, caller: &Caller, user: &str, on: bool) -> Result<(), Error> {
        let user = self.admin_user(user)?;
        let event = Event::EnforcementSet {
            scope: Scope::User(user.clone()),
            on,
        }
        .by(caller.uid);
        self.store
            .set_user_enforcement(&user, on, self.now(), &event)?;
        self.emit(caller, &[event]);
        Ok(())
    }
}

/// The kind of token a caller asked for: `totp` (also when empty) or `hotp`.
pub(super) fn token_kind(kind: &str) -> Result<Kind, Error> {
    if kind.is_empty() {
        return Ok(Kind::Totp);
    }
    Kind::from_name(kind).ok_or_else(|| {
        Error::InvalidArgument(format!(
            "unknown kind of token {kind:.16?}: expected totp (an authenticator app) or hotp \
             (a counter-based token)"
        ))
    })
}
