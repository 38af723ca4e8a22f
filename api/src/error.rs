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
            | Error::NoSuchSession(text)
            | Error::TooManySessions(text)
            | Error::TooManyRequests(text)
            | Error::NotRoot(text)
            | Error::Internal(text) => f.write_str(text),
        }
    }
}

impl Error {
    /// True when the daemon could not be reached at all (not running, no bus, no reply), as
    /// opposed to an answer from it. `failmode` applies only to these.
    pub fn is_unreachable(&self) -> bool {
        use zbus::fdo;
        match self {
            Error::ZBus(zbus::Error::FDO(error)) => matches!(
                **error,
                fdo::Error::ServiceUnknown(_)
                    | fdo::Error::NameHasNoOwner(_)
                    | fdo::Error::NoReply(_)
                    | fdo::Error::Timeout(_)
                    | fdo::Error::TimedOut(_)
                    | fdo::Error::Disconnected(_)
                    | fdo::Error::NoServer(_)
                    | fdo::Error::FileNotFound(_)
            ),
            Error::ZBus(zbus::Error::MethodError(name, _, _)) => matches!(
                name.as_str(),
                "org.freedesktop.DBus.Error.ServiceUnknown"
                    | "org.freedesktop.DBus.Error.NameHasNoOwner"
                    | "org.freedesktop.DBus.Error.NoReply"
                    | "org.freedesktop.DBus.Error.TimedOut"
                    | "org.freedesktop.DBus.Error.Disconnected"
            ),
            Error::ZBus(zbus::Error::InputOutput(_)) | Error::ZBus(zbus::Error::Handshake(_)) => {
                true
            }
            _ => false,
        }
    }
}
