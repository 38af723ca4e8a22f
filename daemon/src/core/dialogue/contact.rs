//! Codes sent to contacts: made, reserved in the store, delivered, and withdrawn when the
//! delivery fails (nothing counts as sent).

use pam_mfa_config::ContactKind;

use super::{Dialogue, Result, Settings};
use crate::audit::{Context, Event};
use crate::clock::Clock;
use crate::codes::contact::{Address, new_code};
use crate::core::Fault;
use crate::delivery::Message;
use crate::store::contacts::{Purpose, Reserved, SendTerms};
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
    /// What the code question of a login of `user` from `context` says of the words that send
    /// a code to a verified contact, when `contacts.at_login` lets it and the user has one.
    pub(super) fn contact_hint(
        &self,
        settings: &Settings,
        user: &UserName,
        context: &Context,
    ) -> Result<Option<String>> {
        let contacts = &settings.config.contacts;
        if !contacts.at_login_through(&context.service) {
            return Ok(None);
        }
        let mut words: Vec<(&str, String)> = Vec::new();
        for contact in self.store.contacts(user)? {
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
            crate::log::event(&event, 0);
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
