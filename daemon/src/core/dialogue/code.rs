//! A code typed at a login: counted, checked, spent and recorded; the answers to wrong and
//! replayed codes, and to a login whose enrollment was reset meanwhile.

use super::{Dialogue, Reply, Retry, origin, rejection, with_challenge};
use pam_mfa_api::{Action, Notice, Turn};

use super::Result;
use crate::audit::{Denial, Event, Rejection};
use crate::clock::Clock;
use crate::codes::contact::Address;
use crate::codes::recovery::{self};
use crate::codes::totp::Kind;
use crate::core::dialogue::sessions::{Session, Step};
use crate::core::texts;
use crate::store::contacts::{ContactRecords, ContactTried, Purpose};
use crate::store::{Attempt, CodeTry, Enrollment, EnrollmentId, Tried, TryRecords, UserEnrollment};
use pam_mfa_config::ContactKind;

/// What a login waits for: a code of enrollment `enrollment`, with `tries_left`; see
/// [`Step::AwaitingCode`] for `ahead` and `sent`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Awaited {
    pub enrollment: EnrollmentId,
    pub tries_left: u32,
    pub ahead: Option<u64>,
    pub sent: bool,
}

/// The word a user types at the code question to get a code sent to a contact of that kind.
fn contact_word(reply: &str) -> Option<(&'static str, ContactKind)> {
    match reply.trim().to_ascii_lowercase().as_str() {
        "email" | "e-mail" | "mail" => Some(("email", ContactKind::Email)),
        "sms" | "text" | "phone" => Some(("sms", ContactKind::Phone)),
        _ => None,
    }
}

/// What a typed code matched: the time step or counter value it is the code of, if accepted
/// as such; else, for a counter-based token, the value beyond the look-ahead it matched.
#[derive(Debug, Clone, Copy, Default)]
struct Matched {
    step: Option<u64>,
    ahead: Option<u64>,
    /// `step` is the value after the last try's `ahead`: spending it brings the token back in
    /// step.
    resyncs: bool,
}

impl<C: Clock> Dialogue<C> {
    /// What `reply` matched of `enrollment`, the code of the login's last try having matched
    /// counter value `ahead` beyond the look-ahead, if it did: the code of the value after it
    /// is accepted, which brings the token back in step (two codes in a row, as RFC 4226's
    /// resynchronisation asks).
    fn matched(&self, enrollment: &Enrollment, reply: &str, ahead: Option<u64>) -> Matched {
        if let Some(step) = self.verify(enrollment, reply) {
            return Matched {
                step: Some(step),
                ..Matched::default()
            };
        }
        if let Some(next) = ahead.and_then(|ahead| ahead.checked_add(1))
            && self.is_code_of(enrollment, reply, next)
        {
            return Matched {
                step: Some(next),
                ahead: None,
                resyncs: true,
            };
        }
        Matched {
            step: None,
            ahead: self.ahead(enrollment, reply),
            resyncs: false,
        }
    }

    pub(super) fn code(
        &self,
        id: &str,
        session: Session,
        awaited: Awaited,
        reply: &str,
        now: u64,
    ) -> Result<Reply> {
        let Awaited {
            enrollment: expected,
            tries_left,
            ahead,
            sent,
        } = awaited;
        let user = session.user.clone();
        if let Some((word, kind)) = contact_word(reply)
            && session.contact_codes
            && self.settings().config.contacts.allows(kind)
        {
            return self.send_at_login(id, session, awaited, (word, kind));
        }
        let typed = recovery::normalize(reply);
        // A code from the app is checked against the enrollment read when the login began
        // (its id never names another secret); the try's transaction checks that it is still
        // the user's active one ([`Tried::Vanished`]). A recovery code, or a login that kept
        // none, reads it again.
        let kept = (session.enrollment.as_ref())
            .filter(|enrollment| typed.is_none() && enrollment.id == expected);
        let (matched, kind) = match kept {
            Some(enrollment) => (
                self.matched(enrollment, reply, ahead),
                enrollment.params.kind,
            ),
            None => {
                let enrollment = self
                    .store
                    .enrollments(&user)?
                    .active
                    .filter(|e| e.id == expected);
                let Some(enrollment) = enrollment else {
                    return self.reset_during_login(session, now);
                };
                (
                    self.matched(&enrollment, reply, ahead),
                    enrollment.params.kind,
                )
            }
        };
        let Matched {
            step: matched,
            ahead,
            resyncs,
        } = matched;
        let retry = |why| Self::code_retry(expected, tries_left, why, (kind, ahead), sent);
        let locked_out = |until| Event::LockedOut {
            user: user.clone(),
            context: session.context.clone(),
            until,
        };
        // Recorded when a try locks the account; the store sets the lock's end.
        let locking = with_challenge(&session, locked_out(0));
        let settings = self.settings();
        let locked = |until: i64, new: bool| {
            let turn = Turn::new(Action::Deny("locked".into()))
                .with_notice(Notice::Error(texts::locked(until, now as i64)));
            if new {
                return Ok(Reply::verdict(turn, locked_out(until)));
            }
            // Locked by another login meanwhile, which recorded the lock.
            let event = Event::LoginDenied {
                user: user.to_string(),
                context: session.context.clone(),
                why: Denial::Locked(until),
            };
            Ok(Reply::verdict(turn, event))
        };
        // A right code from the app, in a root-run login, is remembered where `remember`
        // says so (not by a service whose password comes with the code: it always asks for
        // both). A recovery code is not: a stolen one must not buy more than one login.
        let origin = (session.caller_uid == 0 && !session.context.joined)
            .then(|| settings.remember_terms(&session.context))
            .flatten()
            .map(|_| origin(&session.context));
        let allowed = Event::LoginAllowed {
            user: user.clone(),
            context: session.context.clone(),
        };
        // A login that brings a token back in step says so in the trail, with the login.
        let resynced = matched
            .filter(|_| resyncs)
            .map(|counter| Event::TokenResynced {
                user: user.clone(),
                counter,
            });
        let recorded_allowed = match (&resynced, with_challenge(&session, allowed.clone())) {
            (Some(event), recorded) => Event::Pair(Box::new(event.clone()), Box::new(recorded)),
            (None, recorded) => recorded,
        };
        let verdict_allowed = |allowed: Event, resynced: Option<Event>| {
            let mut reply = Reply::verdict(Turn::new(Action::Allow), allowed);
            reply.events.splice(0..0, resynced);
            reply
        };
        let Some(typed) = typed else {
            // A code from the app (the common case): counted, checked, spent and recorded in
            // one transaction, the last try's denial included.
            let last_try = tries_left <= 1;
            let denied = |why: Rejection| {
                last_try.then(|| {
                    with_challenge(
                        &session,
                        Event::LoginDenied {
                            user: user.to_string(),
                            context: session.context.clone(),
                            why: Denial::NoTriesLeft(why),
                        },
                    )
                })
            };
            if sent && matched.is_none() {
                // Not the app's code: perhaps the one sent to a contact.
                let used = |to: String| Event::ContactCodeUsed {
                    user: user.clone(),
                    context: session.context.clone(),
                    to,
                };
                let spent = |to: &Address| with_challenge(&session, used(to.masked()));
                let records = ContactRecords {
                    locked: locking,
                    spent: &spent,
                    wrong: denied(Rejection::Wrong),
                    // Remembered as a code from the app is, only where configured.
                    remember: origin
                        .filter(|_| settings.config.contacts.remember)
                        .map(|origin| (origin, expected)),
                };
                let tried = self.store.try_contact_code(
                    &user,
                    Purpose::Login,
                    reply,
                    (now as i64, settings.lockout),
                    &records,
                )?;
                return match tried {
                    ContactTried::Locked { until, new } => locked(until, new),
                    ContactTried::Spent(address) => Ok(Reply::verdict(
                        Turn::new(Action::Allow),
                        used(address.masked()),
                    )),
                    ContactTried::NotSpent => {
                        self.wrong(id, session, retry(Rejection::Wrong), now, true)
                    }
                };
            }
            let code = CodeTry {
                active: UserEnrollment {
                    user: &user,
                    id: expected,
                },
                step: matched,
                origin,
                now: now as i64,
                rule: settings.lockout,
            };
            let records = TryRecords {
                locked: locking,
                spent: recorded_allowed,
                wrong: denied(Rejection::Wrong),
                replayed: denied(Rejection::Replayed),
            };
            let tried = self.store.try_step(&code, &records)?;
            let why = match tried {
                Tried::Locked { until, new } => return locked(until, new),
                Tried::Vanished => return self.reset_during_login(session, now),
                Tried::Spent => return Ok(verdict_allowed(allowed, resynced)),
                Tried::NotSpent => rejection(matched.is_some()),
            };
            return self.wrong(id, session, retry(why), now, true);
        };
        if let Attempt::Locked { until, new } =
            self.store
                .begin_attempt(&user, now as i64, settings.lockout, &locking)?
        {
            return locked(until, new);
        }
        let active = UserEnrollment {
            user: &user,
            id: expected,
        };
        let stored = self.store.recovery_codes(active)?;
        if let Some(code) = recovery::find(&typed, &stored) {
            let used = Event::RecoveryCodeUsed {
                user: user.clone(),
                context: session.context.clone(),
                left: stored.len() - 1,
            };
            let recorded = with_challenge(&session, used.clone());
            if let Some(left) = self
                .store
                .consume_recovery_code(active, *code, now as i64, None, &recorded)?
            {
                let turn = Turn::new(Action::Allow)
                    .with_notice(Notice::Info(texts::recovery_code_used(left)));
                return Ok(Reply::verdict(turn, used));
            }
        }
        let why = match matched {
            None if recovery::find(&typed, &self.store.used_recovery_codes(active)?).is_some() => {
                Rejection::RecoveryCodeUsed
            }
            Some(step) => {
                let active = UserEnrollment {
                    user: &user,
                    id: expected,
                };
                if self
                    .store
                    .consume_step(active, step, now as i64, origin, &recorded_allowed)?
                {
                    return Ok(verdict_allowed(allowed, resynced));
                }
                Rejection::Replayed
            }
            None => Rejection::Wrong,
        };
        self.wrong(id, session, retry(why), now, false)
    }

    /// Another try at a code after a wrong one (`why`), with `tries_left` before it, of a token
    /// of `kind`; `ahead`: the wrong code matched this counter value beyond the look-ahead.
    pub(super) fn code_retry(
        expected: EnrollmentId,
        tries_left: u32,
        why: Rejection,
        (kind, ahead): (Kind, Option<u64>),
        sent: bool,
    ) -> Retry<'static> {
        let tries_left = tries_left.saturating_sub(1);
        let (again, last) = match (why, kind) {
            (Rejection::Replayed, Kind::Totp) => (texts::REPLAYED, texts::REPLAYED),
            (Rejection::Replayed, Kind::Hotp) => (texts::REPLAYED_HOTP, texts::REPLAYED_HOTP),
            (Rejection::Wrong, Kind::Hotp) if ahead.is_some() => {
                (texts::TOKEN_AHEAD, texts::TOKEN_AHEAD_LAST)
            }
            (Rejection::Wrong, _) => (texts::WRONG_CODE_AGAIN, texts::WRONG_CODE),
            (Rejection::RecoveryCodeUsed, _) => {
                (texts::RECOVERY_CODE_USED_AGAIN, texts::RECOVERY_CODE_USED)
            }
        };
        let next = Step::AwaitingCode {
            enrollment: expected,
            tries_left,
            ahead,
            sent,
        };
        Retry {
            next,
            tries_left,
            why,
            again,
            last,
            prompt: texts::CODE_PROMPT,
        }
    }

    /// A wrong answer: ask again while tries remain, else end the login.
    /// `recorded`: the denial of a last try is in the audit trail already (written with the
    /// try).
    pub(super) fn wrong(
        &self,
        id: &str,
        mut session: Session,
        retry: Retry<'_>,
        now: u64,
        recorded: bool,
    ) -> Result<Reply> {
        if retry.tries_left == 0 {
            let event = with_challenge(
                &session,
                Event::LoginDenied {
                    user: session.user.to_string(),
                    context: session.context.clone(),
                    why: Denial::NoTriesLeft(retry.why),
                },
            );
            if !recorded {
                self.store.record(now as i64, &event)?;
            }
            let turn = Turn::new(Action::MaxTries).with_notice(Notice::Error(retry.last.into()));
            return Ok(Reply::verdict(turn, event));
        }
        let event = Event::CodeRejected {
            user: session.user.clone(),
            context: session.context.clone(),
            why: retry.why,
            tries_left: retry.tries_left,
        };
        session.step = retry.next;
        self.sessions().put_back(id.to_owned(), session);
        Ok(Reply {
            session: id.to_owned(),
            turn: Turn::new(Action::AskHidden(retry.prompt.into()))
                .with_notice(Notice::Error(retry.again.into())),
            events: vec![event],
        })
    }

    /// The user typed `word` at the code question: a code is sent to their verified contact
    /// of `kind`, and the question asked again (no try is spent on the word).
    fn send_at_login(
        &self,
        id: &str,
        mut session: Session,
        awaited: Awaited,
        (word, kind): (&str, ContactKind),
    ) -> Result<Reply> {
        use super::contact::Sent;
        let target = Address {
            kind,
            text: String::new(),
        };
        let user = session.user.clone();
        let context = session.context.clone();
        let uid = session.caller_uid;
        let mut events = Vec::new();
        // `pending`: a code sent lately (by this login, or by another one cut off since) is
        // taken from now on.
        let (notice, pending) =
            match self.send_code(&user, Purpose::Login, &target, Some(&context), uid)? {
                Sent::To(address) => {
                    events.push(Event::ContactCodeSent {
                        user: user.clone(),
                        to: address.masked(),
                        login: Some(context),
                    });
                    let minutes =
                        i64::from(self.settings().config.contacts.code_lifetime.get()) / 60;
                    let text = texts::contact_code_sent(&address.masked(), minutes);
                    (Notice::Info(text), true)
                }
                Sent::TooSoon(seconds) => {
                    (Notice::Error(texts::contact_code_too_soon(seconds)), true)
                }
                Sent::NoContact | Sent::Known | Sent::Full => {
                    (Notice::Error(texts::no_contact(word)), false)
                }
                Sent::Failed => (Notice::Error(texts::CONTACT_CODE_NOT_SENT.into()), false),
            };
        let sent = awaited.sent || pending;
        session.step = Step::AwaitingCode {
            enrollment: awaited.enrollment,
            tries_left: awaited.tries_left,
            ahead: awaited.ahead,
            sent,
        };
        self.sessions().put_back(id.to_owned(), session);
        Ok(Reply {
            session: id.to_owned(),
            turn: Turn::new(Action::AskHidden(texts::CODE_PROMPT.into())).with_notice(notice),
            events,
        })
    }

    /// The login's enrollment was removed or replaced while it waited.
    pub(super) fn reset_during_login(&self, session: Session, now: u64) -> Result<Reply> {
        let event = with_challenge(
            &session,
            Event::LoginDenied {
                user: session.user.to_string(),
                context: session.context.clone(),
                why: Denial::ResetDuringLogin,
            },
        );
        self.store.record(now as i64, &event)?;
        let turn = Turn::new(Action::Deny("enrollment removed during the login".into()));
        Ok(Reply::verdict(turn, event))
    }
}
