//! The second factors' codes: TOTP secrets and their codes, recovery codes, and codes sent to
//! contacts.

pub mod contact;
pub mod recovery;
pub mod totp;
