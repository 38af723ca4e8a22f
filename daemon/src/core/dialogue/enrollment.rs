//! Enrollment at login: the QR code and secret shown, the app's code(s) confirmed, the
//! recovery codes shown once.

use super::{Dialogue, Reply, Retry, Settings};
use pam_mfa_api::{Action, Notice, Turn};

use super::Result;
use crate::audit::{Event, Rejection};
use crate::clock::Clock;
use crate::codes::recovery::Hashed;
use crate::codes::totp::{self, Kind, Secret};
use crate::core::Fault;
use crate::core::dialogue::sessions::{Session, Step};
use crate::core::texts;
use crate::store::{Enrollment, EnrollmentId, UserEnrollment};
use crate::users::UserName;
use zeroize::Zeroizing;

impl<C: Clock> Dialogue<C> {
    /// The first turn of an enrollment at login: the pending enrollment the user was shown
    /// within `enroll_resume_minutes` (same secret), else a new one.
    pub(super) fn start_enrollment(
        &self,
        settings: &Settings,
        user: &UserName,
        pending: Option<Enrollment>,
        now: u64,
    ) -> Result<(Step, Turn, Vec<Event>)> {
        let login = &settings.config.login;
        let resume = u64::from(login.enroll_resume_minutes.get()) * 60;
        // An unfinished enrollment of a counter-based token (an administrator's, say) is not
        // shown at a login: a hardware token's secret is not for the user's phone.
        let recent =
            pending.filter(|e| e.created as u64 + resume > now && e.params.kind == Kind::Totp);
        let (id, secret, params, heading, events) = match recent {
            Some(pending) => (
                pending.id,
                pending.secret,
                pending.params,
                texts::ENROLL_RESUMED_HEADING,
                Vec::new(),
            ),
            None => {
                let secret = Secret::generate().map_err(Fault::NoRandomness)?;
                let params = settings.new_enrollments.params;
                let event = Event::EnrollmentStarted { user: user.clone() };
                let id = self
                    .store
                    .put_pending(user, &secret, params, now as i64, &event)?;
                (id, secret, params, texts::ENROLL_HEADING, vec![event])
            }
        };
        let uri = totp::otpauth_uri(
            &secret,
            params,
            &settings.new_enrollments.issuer,
            user.as_str(),
        )
        .map_err(Fault::Uri)?;
        let base32 = Zeroizing::new(secret.to_base32());
        let block = pam_mfa_qr::enrollment_block(heading, &uri, &base32, login.qr_background);
        let step = Step::Enrolling {
            enrollment: id,
            first_step: None,
            tries_left: login.max_tries.get(),
        };
        let turn = Turn::new(Action::AskHidden(texts::ENROLL_PROMPT.into()))
            .with_notice(Notice::Info(block));
        Ok((step, turn, events))
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn confirm(
        &self,
        id: &str,
        session: Session,
        expected: EnrollmentId,
        first_step: Option<u64>,
        tries_left: u32,
        reply: &str,
        now: u64,
    ) -> Result<Reply> {
        let user = session.user.clone();
        let pending = self
            .store
            .enrollments(&user)?
            .pending
            .filter(|e| e.id == expected);
        let Some(pending) = pending else {
            return self.reset_during_login(session, now);
        };
        let matched = self.verify(&pending, reply);
        let prompt = if first_step.is_some() {
            texts::ENROLL_NEXT_PROMPT
        } else {
            texts::ENROLL_PROMPT
        };
        let Some(step) = matched else {
            let tries_left = tries_left.saturating_sub(1);
            let next = Step::Enrolling {
                enrollment: expected,
                first_step,
                tries_left,
            };
            let retry = Retry {
                next,
                tries_left,
                why: Rejection::Wrong,
                again: texts::ENROLL_WRONG,
                last: texts::ENROLL_WRONG_LAST,
                prompt,
            };
            return self.wrong(id, session, retry, now, false);
        };
        if first_step.is_some_and(|first| step <= first) {
            // Not a try used up: the user typed the same code again too soon.
            let mut session = session;
            session.step = Step::Enrolling {
                enrollment: expected,
                first_step,
                tries_left,
            };
            self.sessions().put_back(id.to_owned(), session);
            return Ok(Reply {
                session: id.to_owned(),
                turn: Turn::new(Action::AskHidden(texts::ENROLL_NEXT_PROMPT.into()))
                    .with_notice(Notice::Error(texts::ENROLL_NOT_LATER.into())),
                events: Vec::new(),
            });
        }
        let needed = self.login().enroll_confirm_codes.get();
        if first_step.is_none() && needed > 1 {
            let mut session = session;
            session.step = Step::Enrolling {
                enrollment: expected,
                first_step: Some(step),
                tries_left,
            };
            // Time to wait for the app's next code.
            session.expires = now + u64::from(self.login().session_timeout.get());
            self.sessions().put_back(id.to_owned(), session);
            return Ok(Reply {
                session: id.to_owned(),
                turn: Turn::new(Action::AskHidden(texts::ENROLL_NEXT_PROMPT.into())),
                events: Vec::new(),
            });
        }
        let issued = self.issue_recovery_codes()?;
        let hashes: Vec<Hashed> = issued.iter().map(|(_, hashed)| hashed.clone()).collect();
        let confirmed = Event::EnrollmentConfirmed { user: user.clone() };
        if !self.store.activate(
            UserEnrollment {
                user: &user,
                id: expected,
            },
            step,
            &hashes,
            now as i64,
            &confirmed,
        )? {
            return self.reset_during_login(session, now);
        }
        if issued.is_empty() {
            let allowed = Event::LoginAllowed {
                user,
                context: session.context,
            };
            self.store.record(now as i64, &allowed)?;
            let turn = Turn::new(Action::Allow)
                .with_notice(Notice::Info(texts::ENROLLED_NO_RECOVERY.into()));
            return Ok(Reply {
                session: String::new(),
                turn,
                events: vec![confirmed, allowed],
            });
        }
        let shown: Vec<&str> = issued.iter().map(|(code, _)| code.as_str()).collect();
        let block = texts::recovery_codes(&shown);
        let mut session = session;
        session.step = Step::SavingRecoveryCodes {
            enrollment: expected,
        };
        // Time to read and save the codes, whatever the enrollment took so far.
        session.expires = now + u64::from(self.login().session_timeout.get());
        self.sessions().put_back(id.to_owned(), session);
        Ok(Reply {
            session: id.to_owned(),
            turn: Turn::new(Action::AskVisible(texts::SAVED_PROMPT.into()))
                .with_notice(Notice::Info(block)),
            events: vec![confirmed],
        })
    }
}
