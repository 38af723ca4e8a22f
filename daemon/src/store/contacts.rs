//! Contacts (email addresses, phone numbers) and the codes sent to them, written once for
//! every backend.
//!
//! A contact's address and the code last sent there are sealed ([`crate::sealing`]), each
//! bound to the contact's row. A code is reserved in the store before it is sent (so that two
//! sends cannot both pass the wait between codes), withdrawn when the delivery fails (nothing
//! counts as sent), and spent by a conditional update in the transaction that counts the try,
//! as codes from the app are.

use pam_mfa_config::ContactKind;
use zeroize::Zeroizing;

use super::sql::{Bound, Tx, values};
use super::{EnrollmentId, LockoutRule, Origin, Proof, Result, Store, StoreError, UserEnrollment};
use crate::audit::Event;
use crate::codes::contact::{Address, same_code};
use crate::sealing::{ContactBinding, ContactPart, KeySet};
use crate::users::UserName;

/// A contact as stored, its address opened.
#[derive(Debug, Clone)]
pub struct Contact {
    pub id: i64,
    pub address: Address,
    pub added: i64,
    /// When its code was typed (or an administrator vouched for it); `None`: not yet.
    pub verified: Option<i64>,
    /// When the last code was sent there, and until when it is good (`None` once used).
    pub code_sent: Option<i64>,
    pub code_expires: Option<i64>,
}

/// What a code is sent for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// To verify a contact the user adds (or added, and asks a new code for).
    Verify,
    /// For a login, to a verified contact.
    Login,
}

/// The rules a code is reserved under.
#[derive(Debug, Clone, Copy)]
pub struct SendTerms {
    pub now: i64,
    /// Seconds the code is good.
    pub lifetime: i64,
    /// Seconds since the user's last code before another may be sent.
    pub resend_after: i64,
    /// Contacts one user may keep.
    pub max_contacts: usize,
}

/// A code reserved for a contact, to be sent now.
#[derive(Debug, Clone)]
pub struct Sending {
    pub contact: i64,
    pub address: Address,
    pub sent: i64,
    /// The contact was added by this reservation (and goes if the code cannot be sent).
    pub created: bool,
}

/// What [`Store::reserve_code`] did.
#[derive(Debug, Clone)]
pub enum Reserved {
    Ready(Sending),
    /// The user's last code was sent too recently: another in this many seconds.
    TooSoon(i64),
    /// The contact is verified already.
    Known,
    /// The user keeps as many contacts as they may.
    Full,
    /// No verified contact of that kind (a login code).
    NoContact,
}

/// What one try of a code sent to a contact did ([`Store::try_contact_code`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContactTried {
    Locked {
        until: i64,
        new: bool,
    },
    /// The code was spent; the contact it was sent to (verified now, for [`Purpose::Verify`]).
    Spent(Address),
    /// Wrong, expired or none sent; the try counts.
    NotSpent,
}

/// What a try of a code sent to a contact records, for each of its outcomes (see
/// [`super::TryRecords`]).
pub struct ContactRecords<'a> {
    /// When this try locks the account (the store sets the lock's end).
    pub locked: Event,
    /// When the code was spent, made for the contact it was sent to.
    pub spent: &'a dyn Fn(&Address) -> Event,
    /// When nothing was spent, if that is recorded.
    pub wrong: Option<Event>,
    /// A spent code is remembered for logins from there with the active enrollment, as a
    /// right code from the app is (`contacts.remember`).
    pub remember: Option<(Origin<'a>, EnrollmentId)>,
}

/// A contact's row, as the operations read it.
const COLUMNS: &str = "id, kind, address, sealed_with, added, verified, code_sent, code_expires";

fn binding(user: &UserName, contact: i64, part: ContactPart) -> ContactBinding<'_> {
    ContactBinding {
        user: user.as_str(),
        contact,
        part,
    }
}

fn key_number(user: &UserName, id: i64, key: i64) -> Result<u32> {
    u32::try_from(key).map_err(|_| {
        StoreError::Damaged(format!(
            "contact {id} of {user} names key {key}, out of range"
        ))
    })
}

/// Opens what `key` sealed of contact `id`; a key the set lacks is [`StoreError::KeyMissing`].
fn open(
    keys: &KeySet,
    user: &UserName,
    (id, part): (i64, ContactPart),
    key: u32,
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    keys.open_contact(binding(user, id, part), key, sealed)
        .map_err(|reason| {
            if keys.holds(key) {
                StoreError::Damaged(reason)
            } else {
                StoreError::KeyMissing(key, reason)
            }
        })
}

/// The user's contacts, oldest first.
fn read_contacts(tx: &dyn Tx, user: &UserName, keys: &KeySet) -> Result<Vec<Contact>> {
    let rows = tx.query(
        &format!("SELECT {COLUMNS} FROM contacts WHERE username = $1 ORDER BY id"),
        values![user.as_str()],
    )?;
    let mut contacts = Vec::with_capacity(rows.len());
    for mut row in rows {
        let id = row.int(0)?;
        let kind = row.text(1)?;
        let kind = ContactKind::from_name(&kind).ok_or_else(|| {
            StoreError::Damaged(format!(
                "contact {id} of {user} is of an unknown kind {kind:?}"
            ))
        })?;
        let key = key_number(user, id, row.int(3)?)?;
        let opened = open(keys, user, (id, ContactPart::Address), key, &row.bytes(2)?)?;
        let text = String::from_utf8(opened.to_vec()).map_err(|_| {
            StoreError::Damaged(format!("the address of contact {id} of {user} is not text"))
        })?;
        contacts.push(Contact {
            id,
            address: Address { kind, text },
            added: row.int(4)?,
            verified: row.opt_int(5)?,
            code_sent: row.opt_int(6)?,
            code_expires: row.opt_int(7)?,
        });
    }
    Ok(contacts)
}

/// Seconds before `user` may be sent another code for `purpose`, if any: codes to verify
/// contacts and codes for logins are counted apart (a login right after a contact was verified
/// gets its code). Every send tried counts, delivered or not, and removing a contact does not
/// lift the wait: nobody can make mfad send without end.
fn wait(tx: &dyn Tx, user: &UserName, purpose: Purpose, terms: SendTerms) -> Result<Option<i64>> {
    let row = tx.query_opt(
        &format!(
            "SELECT {} FROM contact_sends WHERE username = $1",
            sent_column(purpose)
        ),
        values![user.as_str()],
    )?;
    let Some(last) = row.map(|mut row| row.opt_int(0)).transpose()?.flatten() else {
        return Ok(None);
    };
    let left = last + terms.resend_after - terms.now;
    Ok((left > 0).then_some(left))
}

/// The column of [`wait`]'s table for `purpose`.
fn sent_column(purpose: Purpose) -> &'static str {
    match purpose {
        Purpose::Verify => "verify_sent",
        Purpose::Login => "login_sent",
    }
}

/// Notes that a code for `purpose` is being sent to `user` now.
fn note_send(tx: &dyn Tx, user: &UserName, purpose: Purpose, now: i64) -> Result<()> {
    let column = sent_column(purpose);
    tx.execute(
        &format!(
            "INSERT INTO contact_sends (username, {column}) VALUES ($1, $2)
             ON CONFLICT (username) DO UPDATE SET {column} = excluded.{column}"
        ),
        values![user.as_str(), now],
    )?;
    Ok(())
}

impl Store {
    /// The contacts of `user`, oldest first.
    pub fn contacts(&self, user: &UserName) -> Result<Vec<Contact>> {
        self.with_keys(|keys| self.read(|tx| read_contacts(tx, user, keys)))
    }

    /// Reserves `code` for a contact of `user`, unless the user's last code was sent less
    /// than `terms.resend_after` ago: for [`Purpose::Verify`], the contact `address` (added
    /// unverified if the user has no such contact; an unverified contact the user added
    /// before goes, so one waits for its code at a time); for [`Purpose::Login`], the user's
    /// first verified contact of the address's kind (its text is not looked at). A code sent
    /// there before stops working. Records nothing: the caller sends the code, then records
    /// it, or withdraws it ([`Store::withdraw_code`]).
    pub fn reserve_code(
        &self,
        user: &UserName,
        purpose: Purpose,
        address: &Address,
        code: &str,
        terms: SendTerms,
    ) -> Result<Reserved> {
        self.with_keys(|keys| {
            self.write(Bound::Call, |tx| {
                tx.lock_users(&[user.as_str()])?;
                let contacts = read_contacts(tx, user, keys)?;
                let found = match purpose {
                    Purpose::Verify => contacts.iter().find(|c| c.address == *address),
                    Purpose::Login => contacts
                        .iter()
                        .find(|c| c.address.kind == address.kind && c.verified.is_some()),
                };
                let reserved = match (purpose, found) {
                    (Purpose::Login, None) => Reserved::NoContact,
                    (Purpose::Verify, Some(contact)) if contact.verified.is_some() => {
                        Reserved::Known
                    }
                    _ if let Some(seconds) = wait(tx, user, purpose, terms)? => {
                        Reserved::TooSoon(seconds)
                    }
                    (_, Some(contact)) => {
                        let sending = Sending {
                            contact: contact.id,
                            address: contact.address.clone(),
                            sent: terms.now,
                            created: false,
                        };
                        put_code(tx, keys, user, &sending, code, terms)?;
                        Reserved::Ready(sending)
                    }
                    (Purpose::Verify, None) => {
                        // The user's unverified contacts go: one waits for its code at a time.
                        let kept = contacts.iter().filter(|c| c.verified.is_some()).count();
                        if kept >= terms.max_contacts {
                            Reserved::Full
                        } else {
                            tx.execute(
                                "DELETE FROM contacts WHERE username = $1 AND verified IS NULL",
                                values![user.as_str()],
                            )?;
                            let id = insert(tx, keys, user, address, terms.now, None)?;
                            let sending = Sending {
                                contact: id,
                                address: address.clone(),
                                sent: terms.now,
                                created: true,
                            };
                            put_code(tx, keys, user, &sending, code, terms)?;
                            Reserved::Ready(sending)
                        }
                    }
                };
                let keep = matches!(reserved, Reserved::Ready(_));
                if keep {
                    note_send(tx, user, purpose, terms.now)?;
                }
                Ok((reserved, keep))
            })
        })
    }

    /// Takes back a code reserved by [`Store::reserve_code`] that could not be sent: it stops
    /// working; a contact the reservation added goes. The wait before the next send stays (a
    /// send that fails may still have reached someone). Records nothing (a failed delivery is
    /// logged only).
    pub fn withdraw_code(&self, user: &UserName, sending: &Sending) -> Result<()> {
        self.write(Bound::Call, |tx| {
            tx.lock_users(&[user.as_str()])?;
            if sending.created {
                tx.execute(
                    "DELETE FROM contacts WHERE id = $1 AND username = $2 AND verified IS NULL",
                    values![sending.contact, user.as_str()],
                )?;
            } else {
                tx.execute(
                    "UPDATE contacts SET code = NULL, code_sealed_with = NULL, code_sent = NULL,
                        code_expires = NULL
                     WHERE id = $1 AND username = $2 AND code_sent = $3",
                    values![sending.contact, user.as_str(), sending.sent],
                )?;
            }
            Ok(((), true))
        })
    }

    /// Adds `address` to the contacts of `user` as verified (an administrator vouches for
    /// it), or marks the user's unverified one so; records `event`. False when it was
    /// verified already; [`Reserved::Full`] rules as for [`Store::reserve_code`].
    pub fn add_verified_contact(
        &self,
        user: &UserName,
        address: &Address,
        now: i64,
        max_contacts: usize,
        event: &Event,
    ) -> Result<Option<bool>> {
        self.with_keys(|keys| {
            self.write(Bound::Call, |tx| {
                tx.lock_users(&[user.as_str()])?;
                let contacts = read_contacts(tx, user, keys)?;
                let added = match contacts.iter().find(|c| c.address == *address) {
                    Some(contact) if contact.verified.is_some() => Some(false),
                    Some(contact) => {
                        tx.execute(
                            "UPDATE contacts SET verified = $2, code = NULL,
                                code_sealed_with = NULL, code_expires = NULL
                             WHERE id = $1",
                            values![contact.id, now],
                        )?;
                        Some(true)
                    }
                    None if contacts.iter().filter(|c| c.verified.is_some()).count()
                        >= max_contacts =>
                    {
                        None
                    }
                    None => {
                        insert(tx, keys, user, address, now, Some(now))?;
                        Some(true)
                    }
                };
                if added == Some(true) {
                    self.append(tx, now, event)?;
                }
                Ok((added, added == Some(true)))
            })
        })
    }

    /// One try of a code sent to a contact of `user` for `purpose`, whole in one transaction
    /// as [`Store::try_step`] is: counted by the lockout (a locked account gets no try), then,
    /// when it is the code last sent there and still good, spent (a contact to verify is
    /// verified) and `records.spent` recorded for that contact. Otherwise `records.wrong` is
    /// recorded, if given.
    pub fn try_contact_code(
        &self,
        user: &UserName,
        purpose: Purpose,
        typed: &str,
        (now, rule): (i64, LockoutRule),
        records: &ContactRecords<'_>,
    ) -> Result<ContactTried> {
        self.with_keys(|keys| {
            self.write(Bound::Call, |tx| {
                tx.lock_users(&[user.as_str()])?;
                let waiting = tx.query(
                    "SELECT id, kind, address, sealed_with, code, code_sealed_with FROM contacts
                     WHERE username = $1 AND code IS NOT NULL AND code_expires > $2
                        AND (verified IS NULL) = $3",
                    values![user.as_str(), now, purpose == Purpose::Verify],
                )?;
                let mut matched = None;
                for mut row in waiting {
                    let id = row.int(0)?;
                    let key = key_number(user, id, row.int(5)?)?;
                    // A code sealed with a key since removed is no code any more.
                    let Ok(code) = open(keys, user, (id, ContactPart::Code), key, &row.bytes(4)?)
                    else {
                        continue;
                    };
                    if same_code(&code, typed) {
                        let kind = row.text(1)?;
                        let key = key_number(user, id, row.int(3)?)?;
                        let text =
                            open(keys, user, (id, ContactPart::Address), key, &row.bytes(2)?)?;
                        let kind = ContactKind::from_name(&kind).ok_or_else(|| {
                            StoreError::Damaged(format!(
                                "contact {id} of {user} is of kind {kind:?}"
                            ))
                        })?;
                        let text = String::from_utf8_lossy(&text).into_owned();
                        matched = Some((id, Address { kind, text }));
                    }
                }
                let counted = super::logins::Counted { user, now, rule };
                let spend = |stored: bool| {
                    let Some((id, _)) = &matched else {
                        return Ok(false);
                    };
                    let changed = tx.execute(
                        "UPDATE contacts SET code = NULL, code_sealed_with = NULL,
                            code_expires = NULL, verified = COALESCE(verified, $2)
                         WHERE id = $1 AND code IS NOT NULL",
                        values![*id, now],
                    )?;
                    if changed == 1 && stored {
                        tx.execute(
                            "DELETE FROM lockout WHERE username = $1",
                            values![user.as_str()],
                        )?;
                    }
                    if changed == 1
                        && let Some((origin, enrollment)) = records.remember
                    {
                        super::operations::remember(tx, user, origin, enrollment, now)?;
                    }
                    Ok(changed == 1)
                };
                let (attempt, spent) = self.attempt(tx, counted, &records.locked, spend)?;
                let tried = match (attempt, spent, matched) {
                    (super::Attempt::Locked { until, new }, _, _) => {
                        ContactTried::Locked { until, new }
                    }
                    (super::Attempt::Allowed, true, Some((_, address))) => {
                        self.append(tx, now, &(records.spent)(&address))?;
                        ContactTried::Spent(address)
                    }
                    _ => {
                        if let Some(event) = &records.wrong {
                            self.append(tx, now, event)?;
                        }
                        ContactTried::NotSpent
                    }
                };
                Ok((tried, true))
            })
        })
    }

    /// Spends `proof` (a current code of the active enrollment, or a recovery code) before a
    /// change to the user's contacts, clearing the count of tries as a right code does; false
    /// if it was used already, or it is not the user's active enrollment any more. Records
    /// nothing: the change that follows is recorded.
    pub fn spend_proof(&self, active: UserEnrollment<'_>, proof: Proof, now: i64) -> Result<bool> {
        self.write(Bound::Call, |tx| {
            tx.lock_users(&[active.user.as_str()])?;
            let spent = super::operations::spend_counted(tx, active, proof, now, None, true)?;
            Ok((spent, spent))
        })
    }

    /// Removes the contact `address` of `user`, recording `event`; false if there was none.
    pub fn remove_contact(
        &self,
        user: &UserName,
        address: &Address,
        now: i64,
        event: &Event,
    ) -> Result<bool> {
        self.with_keys(|keys| {
            self.write(Bound::Call, |tx| {
                tx.lock_users(&[user.as_str()])?;
                let contacts = read_contacts(tx, user, keys)?;
                let Some(contact) = contacts.iter().find(|c| c.address == *address) else {
                    return Ok((false, false));
                };
                tx.execute("DELETE FROM contacts WHERE id = $1", values![contact.id])?;
                self.append(tx, now, event)?;
                Ok((true, true))
            })
        })
    }
}

/// Seals again with the newest of `keys` up to `batch` contact addresses sealed with another
/// key; returns how many. (A code sent is not: it is good for minutes, and one sealed with a
/// key since removed is no code any more.)
pub(super) fn reseal_batch(tx: &dyn Tx, keys: &KeySet, batch: i64) -> Result<usize> {
    let rows = tx.query(
        "SELECT id, username, address, sealed_with FROM contacts WHERE sealed_with <> $1 LIMIT $2",
        values![i64::from(keys.current()), batch],
    )?;
    let found = rows.len();
    for mut row in rows {
        let (id, user) = (row.int(0)?, row.text(1)?);
        let user = UserName::parse(&user)
            .map_err(|why| StoreError::Damaged(format!("contact {id} names a user {why}")))?;
        let key = key_number(&user, id, row.int(3)?)?;
        let address = open(keys, &user, (id, ContactPart::Address), key, &row.bytes(2)?)?;
        let sealed = keys
            .seal_contact(binding(&user, id, ContactPart::Address), &address)
            .map_err(StoreError::Failed)?;
        tx.execute(
            "UPDATE contacts SET address = $2, sealed_with = $3 WHERE id = $1",
            values![id, sealed.bytes.as_slice(), i64::from(sealed.key)],
        )?;
    }
    Ok(found)
}

/// Adds a contact of `user`; returns its number.
fn insert(
    tx: &dyn Tx,
    keys: &KeySet,
    user: &UserName,
    address: &Address,
    now: i64,
    verified: Option<i64>,
) -> Result<i64> {
    // The row is made first, for its number, which the sealed address is bound to.
    let id = tx
        .query_one(
            "INSERT INTO contacts (username, kind, address, masked, sealed_with, added, verified)
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
            values![
                user.as_str(),
                address.kind.name(),
                &b""[..],
                address.masked().as_str(),
                i64::from(keys.current()),
                now,
                verified
            ],
        )?
        .int(0)?;
    let sealed = keys
        .seal_contact(
            binding(user, id, ContactPart::Address),
            address.text.as_bytes(),
        )
        .map_err(StoreError::Failed)?;
    tx.execute(
        "UPDATE contacts SET address = $2, sealed_with = $3 WHERE id = $1",
        values![id, sealed.bytes.as_slice(), i64::from(sealed.key)],
    )?;
    Ok(id)
}

/// Puts `code` on the contact of `sending`, sealed, good for `terms.lifetime`.
fn put_code(
    tx: &dyn Tx,
    keys: &KeySet,
    user: &UserName,
    sending: &Sending,
    code: &str,
    terms: SendTerms,
) -> Result<()> {
    let sealed = keys
        .seal_contact(
            binding(user, sending.contact, ContactPart::Code),
            code.as_bytes(),
        )
        .map_err(StoreError::Failed)?;
    tx.execute(
        "UPDATE contacts SET code = $2, code_sealed_with = $3, code_sent = $4, code_expires = $5
         WHERE id = $1",
        values![
            sending.contact,
            sealed.bytes.as_slice(),
            i64::from(sealed.key),
            sending.sent,
            terms.now + terms.lifetime
        ],
    )?;
    Ok(())
}
