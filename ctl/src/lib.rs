//! mfactl as a library: its command-line definition (shared with the man page generator), one
//! module per command, and the report each command renders as text or JSON.
#![forbid(unsafe_code)]

pub mod cli;
pub mod commands;
pub mod connect;
pub mod failure;
pub mod prompt;
pub mod report;
pub mod tokens;
