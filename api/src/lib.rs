//! The D-Bus contract between `pam_mfa.so`, `mfad` and `mfactl`.
//!
//! Everything a client and the daemon must agree on lives here: the bus, object and interface
//! names, the login dialogue's wire types, the error names and the client proxies. The PAM module
//! links this crate, so it stays small: zbus and serde only.
#![forbid(unsafe_code)]

pub mod dialogue;
mod error;
pub mod proxy;

pub use dialogue::{Action, Notice, Turn, WireTurn};
pub use error::Error;

/// The well-known name `mfad` owns on the bus.
pub const BUS_NAME: &str = "org.pam_mfa.Mfad1";
/// The object that carries every interface.
pub const OBJECT_PATH: &str = "/org/pam_mfa/Mfad1";
/// Interface the PAM module talks to.
pub const LOGIN_INTERFACE: &str = "org.pam_mfa.Mfad1.Login";
/// Interface for administrators (uid 0).
pub const ADMIN_INTERFACE: &str = "org.pam_mfa.Mfad1.Admin";
/// Prefix of every error name the daemon returns.
pub const ERROR_PREFIX: &str = "org.pam_mfa.Mfad1.Error";

/// Where the system bus listens when `DBUS_SYSTEM_BUS_ADDRESS` is not set.
pub const SYSTEM_BUS_ADDRESS: &str = "unix:path=/run/dbus/system_bus_socket";

/// The bus to use: `explicit` (a `--bus` option), else `DBUS_SYSTEM_BUS_ADDRESS`, else the
/// system bus's standard socket.
pub fn bus_address(explicit: Option<&str>) -> String {
    explicit
        .map(str::to_owned)
        .or_else(|| std::env::var("DBUS_SYSTEM_BUS_ADDRESS").ok())
        .unwrap_or_else(|| SYSTEM_BUS_ADDRESS.to_owned())
}

/// Context keys a client may pass to `Login.Begin`; the daemon ignores any other key.
pub mod context {
    pub const SERVICE: &str = "service";
    pub const RHOST: &str = "rhost";
    pub const RUSER: &str = "ruser";
    pub const TTY: &str = "tty";
}

/// What `Admin.Status` and `Admin.Users` report for one user.
#[derive(
    Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, zbus::zvariant::Type,
)]
pub struct UserStatus {
    pub user: String,
    /// An active (confirmed) enrollment exists.
    pub enrolled: bool,
    /// MFA is required for this user at the next login.
    pub enforced: bool,
    /// Why it is or is not enforced: `"all users"`, `"user"` or `"not enforced"`.
    pub enforced_by: String,
    /// `SHA1`, `SHA256` or `SHA512`; empty when not enrolled.
    pub algorithm: String,
    pub digits: u32,
    pub period: u32,
    /// Unix time of the enrollment's confirmation, 0 when not enrolled.
    pub enrolled_at: i64,
    /// Unix time of the last accepted code, 0 when never used.
    pub last_used: i64,
}

/// What `Admin.BeginEnrollment` hands back, once, to show to the user.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, zbus::zvariant::Type)]
pub struct NewEnrollment {
    /// The shared secret, Base32 without padding.
    pub secret: String,
    /// The `otpauth://totp/...` URI an authenticator app scans.
    pub uri: String,
}
