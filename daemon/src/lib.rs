//! mfad, the pam-mfa daemon, as a library; `main.rs` only parses the command line and calls
//! [`server::serve`]. docs/ARCHITECTURE.md draws the parts and the arrows between them.
// Unsafe code only in transport/activation.rs (descriptors passed by systemd), which allows
// it for itself.
#![deny(unsafe_code)]

pub mod audit;
pub mod cli;
pub mod clock;
pub mod codes;
pub mod core;
pub mod delivery;
pub mod dirs;
pub mod log;
pub mod policy;
pub mod sealing;
pub mod server;
pub mod store;
pub mod transport;
pub mod users;
