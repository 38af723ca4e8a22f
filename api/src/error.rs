//! Errors `mfad` returns over D-Bus, named `org.pam_mfa.Mfad1.Error.*` so clients can match on
//! them. Each carries a sentence for the person at the terminal.

use zbus::DBusError;

#[derive(Debug, DBusError)]
#[zbus(prefix = "org.pam_mfa.Mfad1.Error", impl_display = false)]
pub enum Error {
    /// A transport or protocol failure, or an error from something other than `mfad`.
    #[zbus(error)]
    ZBus(zbus::Error),
    /// The caller may not do this (identity comes from the bus, never from arguments).
    PermissionDenied(String),
    /// An argument is malformed: a user name, a code, a secret.
    InvalidArgument(String),
    /// The user has no active enrollment.
    NotEnrolled(String),
    /// The user already has an active enrollment.
    AlreadyEnrolled(String),
    /// `ConfirmEnrollment` without a pending enrollment.
    NoPendingEnrollment(String),
    /// A code did not verify.
    WrongCode(String),
    /// Not allowed because MFA is required of the user (disabling their own app, say).
    Required(String),
    /// The login session does not exist, has expired or belongs to another caller.
    NoSuchSession(String),
    /// Too many unfinished logins for this user.
    TooManySessions(String),
    /// The caller has too many requests in flight (or sessions open); try again later.
    TooManyRequests(String),
    /// The owner of the bus name is not root: the client refuses to talk to it. Never sent by
    /// `mfad`; clients make it themselves (see [`crate::owner`]).
    NotRoot(String),
    /// The daemon could not complete the request (storage failure); nothing was changed.
    Internal(String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::ZBus(error) => write!(f, "{error}"),
            Error::PermissionDenied(text)
            | Error::InvalidArgument(text)
            | Error::NotEnrolled(text)
            | Error::AlreadyEnrolled(text)
            | Error::NoPendingEnrollment(text)
            | Error::WrongCode(text)
            | Error::Required(text)
            | Error::NoSuchSession(text)
            | Error::TooManySessions(text)
            | Error::TooManyRequests(text)
            | Error::NotRoot(text)
            | Error::Internal(text) => f.write_str(text),
        }
    }
}

impl Error {
    /// The D-Bus error name of an error reply from the bus or a peer, if this is one.
    pub fn reply_name(&self) -> Option<String> {
        match self {
            Error::ZBus(zbus::Error::MethodError(name, _, _)) => Some(name.to_string()),
            Error::ZBus(zbus::Error::FDO(error)) => {
                Some(zbus::DBusError::name(&**error).to_string())
            }
            _ => None,
        }
    }

    /// True when the bus says nobody owns the daemon's name: the daemon is definitely not
    /// running. A time-out or a missing reply is not absence (any local user can cause one).
    pub fn is_absent(&self) -> bool {
        matches!(
            self.reply_name().as_deref(),
            Some(
                "org.freedesktop.DBus.Error.ServiceUnknown"
                    | "org.freedesktop.DBus.Error.NameHasNoOwner"
            )
        )
    }

    /// True when the bus's policy refused the call.
    pub fn is_access_denied(&self) -> bool {
        self.reply_name().as_deref() == Some("org.freedesktop.DBus.Error.AccessDenied")
    }
}
