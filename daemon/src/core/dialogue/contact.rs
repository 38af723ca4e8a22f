//! Codes sent to contacts: made, reserved in the store, delivered, and withdrawn when the
//! delivery fails (nothing counts as sent).

use pam_mfa_api::{Action, Notice, Turn};
use pam_mfa_config::ContactKind;

use super::sessions::{Session, Step};
use super::{Dialogue, Reply, Result, Retry, Settings};
use crate::audit::{Context, Denial, Event, Rejection};
use crate::clock::Clock;
use crate::codes::contact::{Address, new_code};
use crate::core::{Fault, texts};
use crate::delivery::Message;
use crate::store::contacts::{ContactRecords, ContactTried, Purpose, Reserved, SendTerms};
use crate::users::UserName;

/// What became of a code to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    /// Sent to this contact; recorded already for a login, for the caller to record (with
    /// what else it changes) for a contact to verify.
    To(Address),
    /// Another code was sent lately: another in this many seconds.
    TooSoon(i64),
    /// The contact is verified already.
    Known,
    /// The user keeps as many contacts as they may.
    Full,
    /// No verified contact of that kind (for a login).
    NoContact,
    /// The delivery failed (mfad's log says why); nothing counts as sent.
    Failed,
}

impl<C: Clock> Dialogue<C> {
    /// What the code question of a login of `user` (one that may have codes sent to
    /// contacts) says of the words that send one, when the user has a verified contact.
    pub(super) fn contact_hint(&self, user: &UserName) -> Result<Option<String>> {
        let settings = self.settings();
        let mut words: Vec<(&str, String)> = Vec::new();
        for contact in self.store.contacts(user)? {
            // A kind the configuration no longer takes is not offered.
            if !settings.config.contacts.allows(contact.address.kind) {
                continue;
            }
            let word = match contact.address.kind {
                ContactKind::Email => "email",
                ContactKind::Phone => "sms",
            };
            if contact.verified.is_some() && !words.iter().any(|(known, _)| *known == word) {
                words.push((word, contact.address.masked()));
            }
        }
        Ok((!words.is_empty()).then(|| crate::core::texts::contact_hint(&words)))
    }

    /// Sends `user` a new code for `purpose` at `address` (for a login: at the user's verified
    /// contact of that kind), within `contacts.delivery_timeout`. For a login (`login`, its
    /// context), the send is recorded (the caller logs it). A failed delivery is logged here.
    pub fn send_code(
        &self,
        user: &UserName,
        purpose: Purpose,
        address: &Address,
        login: Option<&Context>,
        caller_uid: u32,
    ) -> Result<Sent> {
        let settings = self.settings();
        let contacts = &settings.config.contacts;
        let now = self.now() as i64;
        let code = new_code(contacts.code_digits.get()).map_err(Fault::NoRandomness)?;
        let terms = SendTerms {
            now,
            lifetime: i64::from(contacts.code_lifetime.get()),
            resend_after: i64::from(contacts.resend_after.get()),
            max_contacts: contacts.max_per_user.get() as usize,
        };
        let sending = match self
            .store
            .reserve_code(user, purpose, address, &code, terms)?
        {
            Reserved::Ready(sending) => sending,
            Reserved::TooSoon(seconds) => return Ok(Sent::TooSoon(seconds)),
            Reserved::Known => return Ok(Sent::Known),
            Reserved::Full => return Ok(Sent::Full),
            Reserved::NoContact => return Ok(Sent::NoContact),
        };
        let message = Message {
            code: &code,
            issuer: &settings.new_enrollments.issuer,
            minutes: terms.lifetime / 60,
        };
        let to = sending.address.masked();
        if let Err(why) = (self.deliveries).send(&settings.config, &sending.address, &message) {
            self.store.withdraw_code(user, &sending)?;
            let event = Event::ContactCodeNotSent {
                user: user.clone(),
                to,
                why,
            };
            crate::log::event(&event, caller_uid);
            return Ok(Sent::Failed);
        }
        if let Some(context) = login {
            let event = Event::ContactCodeSent {
                user: user.clone(),
                to,
                login: Some(context.clone()),
            };
            self.store.record(now, &event)?;
        }
        Ok(Sent::To(sending.address))
    }
}

/// What a login that enrolls asks first, for a contact of `kind`.
fn address_question(kind: ContactKind) -> &'static str {
    match kind {
        ContactKind::Email => texts::CONTACT_EMAIL_PROMPT,
        ContactKind::Phone => texts::CONTACT_PHONE_PROMPT,
    }
}

impl<C: Clock> Dialogue<C> {
    /// When enrollments at login ask for a contact first (`contacts.at_enrollment`) and the
    /// user has no verified one of that kind: the first turn, for its address, or for the code
    /// sent there by a login cut off since.
    pub(super) fn contact_first(
        &self,
        settings: &Settings,
        user: &UserName,
        now: u64,
    ) -> Result<Option<(Step, Turn, Vec<Event>)>> {
        let Some(kind) = *settings.config.contacts.at_enrollment.get_ref() else {
            return Ok(None);
        };
        let contacts = self.store.contacts(user)?;
        let of_kind = || contacts.iter().filter(|c| c.address.kind == kind);
        if of_kind().any(|c| c.verified.is_some()) {
            return Ok(None);
        }
        let tries_left = settings.config.login.max_tries.get();
        let waiting = of_kind().find(|c| c.code_expires.is_some_and(|end| end > now as i64));
        let (sent, turn) = match waiting {
            Some(contact) => (
                true,
                Turn::new(Action::AskHidden(texts::CONTACT_CODE_PROMPT.into())).with_notice(
                    Notice::Info(texts::contact_code_resumed(&contact.address.masked())),
                ),
            ),
            None => (
                false,
                Turn::new(Action::AskVisible(address_question(kind).into()))
                    .with_notice(Notice::Info(texts::contact_heading(kind))),
            ),
        };
        let step = Step::EnrollingContact {
            kind,
            sent,
            tries_left,
        };
        Ok(Some((step, turn, Vec::new())))
    }

    /// An answer while a login that enrolls sets up its contact: the address (a code is sent
    /// there), or the code sent (the contact is verified, and the app's QR code follows).
    pub(super) fn enroll_contact(
        &self,
        id: &str,
        mut session: Session,
        (kind, sent, tries_left): (ContactKind, bool, u32),
        reply: &str,
        now: u64,
    ) -> Result<Reply> {
        let user = session.user.clone();
        let settings = self.settings();
        // At the code question, another address replaces the one the code went to (a typo).
        if sent && Address::parse(kind, reply).is_err() {
            let verified = |to: &Address| Event::ContactVerified {
                user: user.clone(),
                to: to.masked(),
            };
            let records = ContactRecords {
                locked: Event::LockedOut {
                    user: user.clone(),
                    context: session.context.clone(),
                    until: 0,
                },
                spent: &verified,
                wrong: None,
                remember: None,
            };
            let tried = self.store.try_contact_code(
                &user,
                Purpose::Verify,
                reply,
                (now as i64, settings.lockout),
                &records,
            )?;
            return match tried {
                ContactTried::Spent(address) => {
                    let pending = self.store.enrollments(&user)?.pending;
                    let (step, turn, mut events) =
                        self.start_enrollment(&settings, &user, pending, now)?;
                    let mut turn = turn;
                    turn.notices
                        .insert(0, Notice::Info(texts::contact_verified(&address.masked())));
                    events.insert(0, verified(&address));
                    session.step = step;
                    self.sessions().put_back(id.to_owned(), session);
                    Ok(Reply {
                        session: id.to_owned(),
                        turn,
                        events,
                    })
                }
                ContactTried::Locked { until, .. } => {
                    let turn = Turn::new(Action::Deny("locked".into()))
                        .with_notice(Notice::Error(texts::locked(until, now as i64)));
                    let event = Event::LoginDenied {
                        user: user.to_string(),
                        context: session.context.clone(),
                        why: Denial::Locked(until),
                    };
                    Ok(Reply::verdict(turn, event))
                }
                ContactTried::NotSpent => {
                    let retry = Retry {
                        next: Step::EnrollingContact {
                            kind,
                            sent: true,
                            tries_left: tries_left.saturating_sub(1),
                        },
                        tries_left: tries_left.saturating_sub(1),
                        why: Rejection::Wrong,
                        again: texts::CONTACT_CODE_WRONG,
                        last: texts::CONTACT_CODE_WRONG_LAST,
                        prompt: texts::CONTACT_CODE_PROMPT,
                    };
                    self.wrong(id, session, retry, now, false)
                }
            };
        }
        // The address: checked, then a code sent there.
        let ask_again = |mut session: Session, notice: String| {
            let tries_left = tries_left.saturating_sub(1);
            if tries_left == 0 {
                let turn = Turn::new(Action::Deny("no contact given".into()))
                    .with_notice(Notice::Error(notice));
                let event = Event::EnrollmentAbandoned {
                    user: user.clone(),
                    context: session.context.clone(),
                    confirmed: false,
                };
                return Ok(Reply::verdict(turn, event));
            }
            // A code sent earlier still waits: the question stays the code's.
            session.step = Step::EnrollingContact {
                kind,
                sent,
                tries_left,
            };
            self.sessions().put_back(id.to_owned(), session);
            let question = if sent {
                Action::AskHidden(texts::CONTACT_CODE_PROMPT.into())
            } else {
                Action::AskVisible(address_question(kind).into())
            };
            Ok(Reply {
                session: id.to_owned(),
                turn: Turn::new(question).with_notice(Notice::Error(notice)),
                events: Vec::new(),
            })
        };
        let address = match Address::parse(kind, reply) {
            Ok(address) => address,
            Err(why) => return ask_again(session, format!("That {why}.")),
        };
        match self.send_code(&user, Purpose::Verify, &address, None, session.caller_uid)? {
            Sent::To(to) => {
                let event = Event::ContactCodeSent {
                    user: user.clone(),
                    to: to.masked(),
                    login: None,
                };
                self.store.record(now as i64, &event)?;
                session.step = Step::EnrollingContact {
                    kind,
                    sent: true,
                    tries_left: settings.config.login.max_tries.get(),
                };
                self.sessions().put_back(id.to_owned(), session);
                let minutes = i64::from(settings.config.contacts.code_lifetime.get()) / 60;
                Ok(Reply {
                    session: id.to_owned(),
                    turn: Turn::new(Action::AskHidden(texts::CONTACT_CODE_PROMPT.into()))
                        .with_notice(Notice::Info(texts::contact_code_to_verify(
                            &to.masked(),
                            minutes,
                        ))),
                    events: vec![event],
                })
            }
            Sent::Known => {
                let pending = self.store.enrollments(&user)?.pending;
                let (step, turn, events) = self.start_enrollment(&settings, &user, pending, now)?;
                session.step = step;
                self.sessions().put_back(id.to_owned(), session);
                Ok(Reply {
                    session: id.to_owned(),
                    turn,
                    events,
                })
            }
            Sent::TooSoon(seconds) => ask_again(session, texts::contact_code_too_soon(seconds)),
            Sent::Failed => ask_again(session, texts::CONTACT_CODE_NOT_SENT_ENROLLING.into()),
            Sent::Full | Sent::NoContact => ask_again(session, texts::CONTACT_FULL.into()),
        }
    }
}
