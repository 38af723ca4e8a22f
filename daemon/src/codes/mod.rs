//! The second factors' codes: TOTP secrets and their codes, and recovery codes.

pub mod recovery;
pub mod totp;
