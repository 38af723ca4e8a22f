//! A user's own account: their status, a new phone, new recovery codes, removing their app;
//! each change spends a proof (a current code, or a recovery code) in its transaction.

use super::{Caller, Core, Fault, WRONG_CODES_ALLOWED, WRONG_CODES_WINDOW, new_secret};

use pam_mfa_api::{Error, NewEnrollment, UserStatus};

use crate::audit::{Context, Event};
use crate::clock::Clock;
use crate::codes::recovery;
use crate::codes::totp::{self, Kind, Params, Secret};
use crate::store::{Attempt, Enrollment, Proof, UserEnrollment};
use crate::users::UserName;

impl<C: Clock> Core<C> {
    /// Counts a wrong code given by `user` to a self-service command; refuses once there were
    /// too many lately, so a session left open cannot be used to guess codes.
    pub(super) fn check_throttle(&self, user: &UserName, wrong: bool) -> Result<(), Error> {
        let now = self.now() as u64;
        let mut counts = self.wrong_codes.lock().unwrap_or_else(|p| p.into_inner());
        counts.retain(|_, (_, since)| now < *since + WRONG_CODES_WINDOW);
        let entry = counts.entry(user.clone()).or_insert((0, now));
        if wrong {
            entry.0 += 1;
        }
        if entry.0 >= WRONG_CODES_ALLOWED {
            let minutes = (entry.1 + WRONG_CODES_WINDOW)
                .saturating_sub(now)
                .div_ceil(60);
            return Err(Error::TooManyRequests(format!(
                "too many wrong codes; try again in {minutes} minutes"
            )));
        }
        Ok(())
    }

    /// What the user typed, as proof for a change of their own active enrollment: a current
    /// code from the app, or, when `recovery` allows, a recovery code. The try counts towards
    /// the lockout; the caller spends the proof in its change (see [`Core::spent`]).
    pub(super) fn proof(
        &self,
        user: &UserName,
        active: &Enrollment,
        code: &str,
        recovery: bool,
    ) -> Result<Proof, Error> {
        let now = self.now();
        // Recorded when this try locks the account; the store sets the lock's end.
        let locking = Event::LockedOut {
            user: user.clone(),
            context: Context::new("mfactl", ""),
            until: 0,
        };
        let attempt = self
            .store
            .begin_attempt(user, now, self.dialogue.lockout(), &locking)?;
        if let Attempt::Locked { until, .. } = attempt {
            return Err(Error::TooManyRequests(crate::core::texts::locked(
                until, now,
            )));
        }
        if recovery && let Some(typed) = recovery::normalize(code) {
            let stored = self.store.recovery_codes(UserEnrollment {
                user,
                id: active.id,
            })?;
            if let Some(id) = recovery::find(&typed, &stored) {
                return Ok(Proof::RecoveryCode(*id));
            }
        }
        let step = self.dialogue.verify(active, code);
        match (step, active.params.kind) {
            (Some(step), _) => Ok(Proof::Step(step)),
            (None, Kind::Totp) => Err(Error::WrongCode(
                "the code does not match: type the code the app shows now".into(),
            )),
            (None, Kind::Hotp) => Err(Error::WrongCode(
                "the code does not match: press the token's button and type the code it shows"
                    .into(),
            )),
        }
    }

    /// After a change: a proof that could not be spent (used meanwhile) is a wrong code. (A
    /// spent one cleared the count of tries in the change's transaction.)
    pub(super) fn spent(spent: bool) -> Result<(), Error> {
        if spent {
            return Ok(());
        }
        Err(Error::WrongCode(
            "that code was already used; wait for the next one".into(),
        ))
    }

    /// The user's active enrollment, or the error that says there is none.
    pub(super) fn active(&self, user: &UserName) -> Result<Enrollment, Error> {
        self.store
            .enrollments(user)?
            .active
            .ok_or_else(|| Error::NotEnrolled(format!("{user} has no authenticator app set up")))
    }

    pub fn own_status(&self, caller: &Caller) -> Result<UserStatus, Error> {
        let user = self.own_account(caller)?;
        self.status_of(&user)
    }

    /// Starts an enrollment of the caller's own account. With an app in use, this is its
    /// replacement, which needs a proof from that app (a current code) or a recovery code (the
    /// phone is lost): whoever has only the user's session must not swap the second factor.
    /// Without one, an unfinished enrollment made within `enroll_resume_minutes` is handed back
    /// as it is, so calls in a loop write nothing.
    pub fn own_begin_enrollment(
        &self,
        caller: &Caller,
        kind: &str,
        proof: &str,
    ) -> Result<NewEnrollment, Error> {
        let user = self.own_account(caller)?;
        let kind = super::admin::token_kind(kind)?;
        let enrollments = self.store.enrollments(&user)?;
        let Some(active) = enrollments.active else {
            let resume = i64::from(self.config().config.login.enroll_resume_minutes.get()) * 60;
            if let Some(pending) = enrollments.pending.filter(|pending| {
                pending.created + resume > self.now() && pending.params.kind == kind
            }) {
                return self.shown(&user, &pending.secret, pending.params);
            }
            return self.start_enrollment(caller, user, kind, "");
        };
        if proof.is_empty() {
            return Err(Error::WrongCode(format!(
                "{user} already has an authenticator app: replacing it needs a current code \
                 from it, or a recovery code if the phone is lost"
            )));
        }
        let proof = self.proof(&user, &active, proof, true)?;
        let secret = new_secret()?;
        let params = self.params_of(kind);
        let event = Event::EnrollmentStarted { user: user.clone() }.by(caller.uid);
        let stored = self.store.put_replacement(
            (
                UserEnrollment {
                    user: &user,
                    id: active.id,
                },
                proof,
            ),
            &secret,
            params,
            self.now(),
            &event,
        )?;
        Self::spent(stored.is_some())?;
        self.emit(caller, &[event]);
        self.shown(&user, &secret, params)
    }

    pub fn own_confirm_enrollment(
        &self,
        caller: &Caller,
        code: &str,
    ) -> Result<Vec<String>, Error> {
        let user = self.own_account(caller)?;
        self.check_throttle(&user, false)?;
        let confirmed = self.finish_enrollment(caller, user.clone(), code);
        if matches!(confirmed, Err(Error::WrongCode(_))) {
            self.check_throttle(&user, true)?;
        }
        confirmed
    }

    pub fn renew_recovery_codes(&self, caller: &Caller, code: &str) -> Result<Vec<String>, Error> {
        let user = self.own_account(caller)?;
        let active = self.active(&user)?;
        let proof = self.proof(&user, &active, code, false)?;
        let issued = self.dialogue.issue_recovery_codes()?;
        let hashes: Vec<_> = issued.iter().map(|(_, hashed)| hashed.clone()).collect();
        let event = Event::RecoveryCodesRenewed { user: user.clone() }.by(caller.uid);
        let spent = self.store.replace_recovery_codes(
            UserEnrollment {
                user: &user,
                id: active.id,
            },
            proof,
            &hashes,
            self.now(),
            &event,
        )?;
        Self::spent(spent)?;
        self.emit(caller, &[event]);
        Ok(issued
            .into_iter()
            .map(|(code, _)| code.to_string())
            .collect())
    }

    pub fn disable(&self, caller: &Caller, code: &str) -> Result<(), Error> {
        let user = self.own_account(caller)?;
        let requirement = self.requirement(&user, true)?;
        if requirement.required {
            return Err(Error::Required(format!(
                "MFA is required of {user} (enforced for {}): only an administrator can remove \
                 your app (mfactl reset {user})",
                requirement.by
            )));
        }
        if let Some(service) = self.config().config.enforcement.services.first() {
            return Err(Error::Required(format!(
                "MFA is required for logins through {service} (enforcement.services): only an \
                 administrator can remove your app (mfactl reset {user})"
            )));
        }
        let active = self.active(&user)?;
        let proof = self.proof(&user, &active, code, true)?;
        let event = Event::EnrollmentDisabled { user: user.clone() }.by(caller.uid);
        let spent = self.store.disable(
            UserEnrollment {
                user: &user,
                id: active.id,
            },
            proof,
            self.now(),
            &event,
        )?;
        Self::spent(spent)?;
        self.dialogue.end_user(&user);
        self.emit(caller, &[event]);
        Ok(())
    }

    /// What a person is shown to set up `secret` for `user`: the secret and its URI.
    pub(super) fn shown(
        &self,
        user: &UserName,
        secret: &Secret,
        params: Params,
    ) -> Result<NewEnrollment, Error> {
        let issuer = self.dialogue.new_enrollments().issuer;
        let uri = totp::otpauth_uri(secret, params, &issuer, user.as_str())
            .map_err(|error| Error::from(Fault::Uri(error)))?;
        Ok(NewEnrollment {
            secret: secret.to_base32(),
            uri,
        })
    }
}
