//! Contacts: a user's own (`mfactl contact`), and anyone's for administrators.

use pam_mfa_api::{ContactInfo, Error};
use pam_mfa_config::ContactKind;

use super::dialogue::contact::Sent;
use super::{Caller, Core};
use crate::audit::{Context, Event};
use crate::clock::Clock;
use crate::codes::contact::Address;
use crate::store::contacts::{ContactRecords, ContactTried, Purpose};
use crate::store::{StoreError, UserEnrollment};
use crate::users::UserName;

impl<C: Clock> Core<C> {
    /// `address` as a contact of `kind`, if this host lets users add that kind.
    fn contact_address(&self, kind: &str, address: &str) -> Result<Address, Error> {
        let kind = ContactKind::from_name(kind).ok_or_else(|| {
            Error::InvalidArgument(format!(
                "{kind:?} is no kind of contact: say email or phone"
            ))
        })?;
        if !self.config().config.contacts.allows(kind) {
            return Err(Error::PermissionDenied(format!(
                "this host takes no {} contacts (contacts.kinds in mfad.toml)",
                kind.name()
            )));
        }
        Address::parse(kind, address).map_err(Error::InvalidArgument)
    }

    /// The error for a code that was not sent.
    fn not_sent(sent: Sent, address: &Address, user: &UserName) -> Error {
        match sent {
            Sent::TooSoon(seconds) => Error::TooManyRequests(format!(
                "a code was sent (or tried) for {user} lately: ask again in {seconds} s"
            )),
            Sent::Known => Error::InvalidArgument(format!(
                "{} is a verified contact of {user} already",
                address.masked()
            )),
            Sent::Full => Error::InvalidArgument(format!(
                "{user} has as many contacts as contacts.max_per_user allows: remove one first"
            )),
            Sent::NoContact => {
                Error::InvalidArgument(format!("{user} has no verified contact of that kind"))
            }
            Sent::Failed | Sent::To(_) => Error::Internal(format!(
                "no code was sent to {}: it could not be delivered (see mfad's log); the \
                 contact was not added",
                address.masked()
            )),
        }
    }

    /// Adds a contact to the caller's own account and sends a code there, which
    /// [`Core::own_verify_contact`] takes. A contact can stand in for the app at a login, so
    /// with an app in use `proof` must be a current code from it or a recovery code (spent
    /// with the change).
    pub fn own_add_contact(
        &self,
        caller: &Caller,
        kind: &str,
        address: &str,
        proof: &str,
    ) -> Result<String, Error> {
        let user = self.own_account(caller)?;
        let address = self.contact_address(kind, address)?;
        // What would refuse the send is said before the proof is asked for and spent.
        let contacts = self.store.contacts(&user)?;
        if contacts
            .iter()
            .any(|c| c.address == address && c.verified.is_some())
        {
            return Err(Self::not_sent(Sent::Known, &address, &user));
        }
        let max = self.config().config.contacts.max_per_user.get() as usize;
        if contacts.iter().filter(|c| c.verified.is_some()).count() >= max {
            return Err(Self::not_sent(Sent::Full, &address, &user));
        }
        // The proof is spent before anything is sent: no contact waits for its code unless a
        // right code from the app (or a recovery code) went with it.
        if let Some(active) = self.store.enrollments(&user)?.active {
            if proof.is_empty() {
                return Err(Error::WrongCode(
                    "a contact can stand in for your app at a login: give a current code from \
                     the app, or a recovery code"
                        .into(),
                ));
            }
            self.check_throttle(&user, false)?;
            let proof = match self.proof(&user, &active, proof, true) {
                Ok(proof) => proof,
                Err(error) => {
                    self.check_throttle(&user, true)?;
                    return Err(error);
                }
            };
            let active = UserEnrollment {
                user: &user,
                id: active.id,
            };
            Self::spent(self.store.spend_proof(active, proof, self.now())?)?;
        }
        self.send_to_verify(caller, &user, &address)
    }

    /// Verifies the caller's contact that waits for its code with `code`; returns it, masked.
    /// A wrong code counts towards the lockout.
    pub fn own_verify_contact(&self, caller: &Caller, code: &str) -> Result<String, Error> {
        let user = self.own_account(caller)?;
        let waiting = (self.store.contacts(&user)?.into_iter())
            .find(|contact| contact.verified.is_none() && contact.code_expires.is_some())
            .ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "{user} has no contact waiting for its code: add one with mfactl contact add"
                ))
            })?;
        let to = waiting.address.masked();
        let verified = |to: &Address| {
            Event::ContactVerified {
                user: user.clone(),
                to: to.masked(),
            }
            .by(caller.uid)
        };
        let records = ContactRecords {
            locked: Event::LockedOut {
                user: user.clone(),
                context: Context::new("mfactl", ""),
                until: 0,
            },
            spent: &verified,
            wrong: None,
            remember: None,
        };
        let now = self.now();
        let rule = self.dialogue.lockout();
        match (self.store).try_contact_code(&user, Purpose::Verify, code, (now, rule), &records)? {
            ContactTried::Spent(address) => {
                self.emit(caller, &[verified(&address)]);
                Ok(address.masked())
            }
            ContactTried::Locked { until, .. } => {
                Err(Error::TooManyRequests(super::texts::locked(until, now)))
            }
            ContactTried::NotSpent => Err(Error::WrongCode(format!(
                "that is not the code sent to {to}, or it expired: type the newest one, or ask \
                 for another with mfactl contact add"
            ))),
        }
    }

    /// The caller's own contacts.
    pub fn own_contacts(&self, caller: &Caller) -> Result<Vec<ContactInfo>, Error> {
        let user = self.own_account(caller)?;
        self.contacts_of(&user)
    }

    /// Removes a contact of the caller's own account.
    pub fn own_remove_contact(
        &self,
        caller: &Caller,
        kind: &str,
        address: &str,
    ) -> Result<(), Error> {
        let user = self.own_account(caller)?;
        self.remove_contact_of(caller, &user, kind, address)
    }

    /// The verified contacts of `user`, masked.
    pub(super) fn verified_contacts(&self, user: &UserName) -> Result<Vec<String>, StoreError> {
        Ok((self.store.contacts(user)?.into_iter())
            .filter(|contact| contact.verified.is_some())
            .map(|contact| contact.address.masked())
            .collect())
    }

    pub(super) fn contacts_of(&self, user: &UserName) -> Result<Vec<ContactInfo>, Error> {
        Ok((self.store.contacts(user)?.into_iter())
            .map(|contact| ContactInfo {
                kind: contact.address.kind.name().into(),
                masked: contact.address.masked(),
                added: contact.added,
                verified_at: contact.verified.unwrap_or(0),
            })
            .collect())
    }

    fn remove_contact_of(
        &self,
        caller: &Caller,
        user: &UserName,
        kind: &str,
        address: &str,
    ) -> Result<(), Error> {
        let kind = ContactKind::from_name(kind).ok_or_else(|| {
            Error::InvalidArgument(format!(
                "{kind:?} is no kind of contact: say email or phone"
            ))
        })?;
        // The whole address, or its masked form as listings show it (an administrator sees
        // only that).
        let typed = Address::parse(kind, address).ok();
        let contacts = self.store.contacts(user)?;
        let found: Vec<&Address> = (contacts.iter())
            .map(|contact| &contact.address)
            .filter(|known| known.kind == kind)
            .filter(|known| typed.as_ref() == Some(*known) || known.masked() == address.trim())
            .collect();
        let address = match found.as_slice() {
            [one] => (*one).clone(),
            [] => {
                return Err(Error::InvalidArgument(format!(
                    "{} is not a contact of {user} (see mfactl contact list)",
                    typed.map_or_else(|| address.trim().to_owned(), |typed| typed.masked())
                )));
            }
            _ => {
                return Err(Error::InvalidArgument(format!(
                    "several contacts of {user} are shown as {}: give the whole address",
                    address.trim()
                )));
            }
        };
        let event = Event::ContactRemoved {
            user: user.clone(),
            to: address.masked(),
        }
        .by(caller.uid);
        if !self
            .store
            .remove_contact(user, &address, self.now(), &event)?
        {
            return Err(Error::InvalidArgument(format!(
                "{} is not a contact of {user}",
                address.masked()
            )));
        }
        self.emit(caller, &[event]);
        Ok(())
    }

    /// Adds a contact to `user`'s account: verified at once when the administrator vouches for
    /// it (`verified`), else a code is sent there for the user to type
    /// ([`Core::own_verify_contact`]). Returns the contact, masked.
    pub fn add_contact(
        &self,
        caller: &Caller,
        user: &str,
        (kind, address): (&str, &str),
        verified: bool,
    ) -> Result<String, Error> {
        let user = self.admin_user(user)?;
        let address = self.contact_address(kind, address)?;
        let masked = address.masked();
        if verified {
            let event = Event::ContactVerified {
                user: user.clone(),
                to: masked.clone(),
            }
            .by(caller.uid);
            let max = self.config().config.contacts.max_per_user.get() as usize;
            return match (self.store).add_verified_contact(
                &user,
                &address,
                self.now(),
                max,
                &event,
            )? {
                Some(true) => {
                    self.emit(caller, &[event]);
                    Ok(masked)
                }
                Some(false) => Err(Self::not_sent(Sent::Known, &address, &user)),
                None => Err(Self::not_sent(Sent::Full, &address, &user)),
            };
        }
        self.send_to_verify(caller, &user, &address)
    }

    /// Sends a code to verify `address`, a contact of `user` (added now if new), and records
    /// the send as `caller`'s; returns the contact, masked.
    fn send_to_verify(
        &self,
        caller: &Caller,
        user: &UserName,
        address: &Address,
    ) -> Result<String, Error> {
        let sent = (self.dialogue).send_code(user, Purpose::Verify, address, None, caller.uid)?;
        let Sent::To(to) = sent else {
            return Err(Self::not_sent(sent, address, user));
        };
        let event = Event::ContactCodeSent {
            user: user.clone(),
            to: to.masked(),
            login: None,
        }
        .by(caller.uid);
        self.store.record(self.now(), &event)?;
        self.emit(caller, &[event]);
        Ok(to.masked())
    }

    /// The contacts of `user`.
    pub fn contacts(&self, user: &str) -> Result<Vec<ContactInfo>, Error> {
        let user = self.admin_user(user)?;
        self.contacts_of(&user)
    }

    /// Removes a contact of `user`.
    pub fn remove_contact(
        &self,
        caller: &Caller,
        user: &str,
        kind: &str,
        address: &str,
    ) -> Result<(), Error> {
        let user = self.admin_user(user)?;
        self.remove_contact_of(caller, &user, kind, address)
    }
}
