//! `mfactl contact`: email addresses and phone numbers that codes are sent to.

use pam_mfa_api::ContactInfo;

use crate::cli::ContactAction;
use crate::connect::{connect, connect_user};
use crate::failure::Failure;
use crate::prompt::read_code;
use crate::report::{AnyReport, Report};

/// What a change did, in one sentence.
#[derive(serde::Serialize)]
pub struct Done {
    pub contact: String,
    pub verified: bool,
    #[serde(skip)]
    text: String,
}

impl Report for Done {
    fn text(&self) -> String {
        self.text.clone()
    }
}

/// A user's contacts.
#[derive(serde::Serialize)]
pub struct Listed {
    pub user: String,
    pub contacts: Vec<ContactInfo>,
}

impl Report for Listed {
    fn text(&self) -> String {
        if self.contacts.is_empty() {
            return format!("{}: no contacts", self.user);
        }
        let mut text = format!("{}:", self.user);
        for contact in &self.contacts {
            let state = if contact.verified_at > 0 {
                format!("verified {}", pam_mfa_api::utc(contact.verified_at))
            } else {
                "not verified: waiting for its code".to_owned()
            };
            text.push_str(&format!(
                "\n  {:<6} {}  ({state})",
                contact.kind, contact.masked
            ));
        }
        text
    }
}

fn address<'a>(email: &'a Option<String>, phone: &'a Option<String>) -> (&'static str, &'a str) {
    match (email, phone) {
        (Some(email), _) => ("email", email),
        (None, Some(phone)) => ("phone", phone),
        (None, None) => ("email", ""),
    }
}

pub async fn run(bus: Option<&str>, action: &ContactAction) -> Result<Box<dyn AnyReport>, Failure> {
    Ok(match action {
        ContactAction::Add {
            email,
            phone,
            user: Some(user),
            verified,
        } => {
            let (kind, address) = address(email, phone);
            let contact = connect(bus)
                .await?
                .add_contact(user, kind, address, *verified)
                .await?;
            let text = if *verified {
                format!("{user}: {contact} added, verified")
            } else {
                format!(
                    "{user}: a code was sent to {contact}; {user} types it with mfactl contact \
                     verify"
                )
            };
            Box::new(Done {
                contact,
                verified: *verified,
                text,
            })
        }
        ContactAction::Add {
            email,
            phone,
            user: None,
            ..
        } => {
            let (kind, address) = address(email, phone);
            let own = connect_user(bus).await?;
            let status = own.status().await?;
            let proof = if status.enrolled {
                read_code("Code shown by your app now (or a recovery code): ")?
                    .ok_or_else(|| Failure::input("no code given: no contact was added"))?
            } else {
                Default::default()
            };
            let contact = own.add_contact(kind, address, &proof).await?;
            Box::new(Done {
                text: format!("A code was sent to {contact}: type it with mfactl contact verify"),
                contact,
                verified: false,
            })
        }
        ContactAction::Verify { code } => {
            let code = match code {
                Some(code) => zeroize::Zeroizing::new(code.clone()),
                None => read_code("Code sent to the contact: ")?
                    .ok_or_else(|| Failure::input("no code given: the contact is not verified"))?,
            };
            let contact = connect_user(bus).await?.verify_contact(&code).await?;
            Box::new(Done {
                text: format!("{contact} is verified"),
                contact,
                verified: true,
            })
        }
        ContactAction::List { user: Some(user) } => Box::new(Listed {
            user: user.clone(),
            contacts: connect(bus).await?.contacts(user).await?,
        }),
        ContactAction::List { user: None } => {
            let own = connect_user(bus).await?;
            Box::new(Listed {
                user: own.status().await?.user,
                contacts: own.contacts().await?,
            })
        }
        ContactAction::Remove { email, phone, user } => {
            let (kind, address) = address(email, phone);
            match user {
                Some(user) => {
                    connect(bus)
                        .await?
                        .remove_contact(user, kind, address)
                        .await?
                }
                None => {
                    connect_user(bus)
                        .await?
                        .remove_contact(kind, address)
                        .await?
                }
            }
            Box::new(Done {
                text: format!("{address} removed"),
                contact: address.to_owned(),
                verified: false,
            })
        }
    })
}
