//! mfad, the pam-mfa daemon, as a library; `main.rs` only parses the command line and calls
//! [`server::serve`]. docs/ARCHITECTURE.md draws the parts and the arrows between them.
#![forbid(unsafe_code)]

pub mod audit;
pub mod bus;
pub mod cli;
pub mod clock;
pub mod core;
pub mod dialogue;
pub mod direct;
pub mod identity;
pub mod log;
pub mod policy;
pub mod recovery;
pub mod reload;
pub mod server;
pub mod sessions;
pub mod store;
pub mod totp;
pub mod users;
