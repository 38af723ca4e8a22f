//! mfactl as a library: its command-line definition, shared with the man page generator.
#![forbid(unsafe_code)]

pub mod cli;
