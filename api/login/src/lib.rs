//! The Login contract between `pam_mfa.so` and `mfad`, and the wire it travels on.
//!
//! A login is a dialogue ([`dialogue`]) of two or three calls ([`contract`]) on mfad's login
//! socket: D-Bus peer to peer ([`marshal`], [`wire`]), the caller known to mfad by the socket's
//! peer credentials and mfad known to the module the same way. Both ends use this crate, so
//! that they cannot disagree; it needs no bus library, no thread and no runtime, which keeps
//! the module that every login program loads small.
// Exception, with its reason: in `wire`, send(2) with MSG_NOSIGNAL.
#![deny(unsafe_code)]

pub mod contract;
pub mod dialogue;
pub mod limits;
pub mod marshal;
pub mod wire;

pub use dialogue::{Action, Notice, Turn, WireTurn, split_joined};

/// The object that carries the Login interface (and, on the bus, mfad's other interfaces).
pub const OBJECT_PATH: &str = "/org/pam_mfa/Mfad1";
/// The interface the PAM module calls.
pub const LOGIN_INTERFACE: &str = "org.pam_mfa.Mfad1.Login";
/// Where mfad serves logins unless configured otherwise.
pub const LOGIN_SOCKET: &str = "/run/pam-mfa/login.socket";

/// What the user sees, as one line, when the second factor cannot be checked at all (the
/// daemon is absent, does not answer in time, or cannot read its state).
pub const UNAVAILABLE_NOTICE: &str = "The second factor cannot be checked right now; try again \
                                      later or contact the administrator.";

/// Context keys a client may pass to `Begin`; the daemon ignores any other key.
pub mod context {
    pub const SERVICE: &str = "service";
    pub const RHOST: &str = "rhost";
    pub const RUSER: &str = "ruser";
    pub const TTY: &str = "tty";
    /// `1`: the service sends one password, and the password and the code come in one answer
    /// (pam_mfa.so `forward_pass`).
    pub const ONE_PROMPT: &str = "one_prompt";
    /// `1`: the connection carries this login alone (pam_mfa.so opens one per login), so
    /// mfad closes it as soon as no login begun on it waits for an answer, instead of waiting
    /// for the client to close it: one wake-up less for each end at every login.
    pub const ONE_LOGIN: &str = "one_login";
}
