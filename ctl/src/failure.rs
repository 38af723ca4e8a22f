//! What went wrong, for the person at the terminal and for scripts: a sentence that says what
//! is wrong and what to do, and a kind to match on, named the same way in JSON.

use pam_mfa_api::{ERROR_PREFIX, Error};

/// A command that could not be done.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Failure {
    #[serde(rename = "name")]
    kind: Kind,
    message: String,
}

/// Why a command could not be done: one of mfad's errors (the variants up to `Internal`, as
/// [`pam_mfa_api::Error`] has them), an error reply from the bus, or a problem mfactl found
/// itself.
///
/// Scripts see it as a name (see [`Kind::name`]): the D-Bus error name when the bus or `mfad`
/// refused (for example `org.pam_mfa.Mfad1.Error.InvalidArgument`), else `usage`, `input`,
/// `connect` or `bus`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    PermissionDenied,
    InvalidArgument,
    NotEnrolled,
    AlreadyEnrolled,
    NoPendingEnrollment,
    WrongCode,
    Required,
    NoSuchSession,
    TooManySessions,
    TooManyRequests,
    /// The owner of mfad's bus name is not root: mfactl refused to talk to it.
    NotRoot,
    Internal,
    /// An error reply from the bus itself, or from a peer with an error this mfactl does not
    /// know, by its D-Bus name (`org.freedesktop.DBus.Error.NameHasNoOwner`...).
    Reply(String),
    /// The command line is wrong.
    Usage,
    /// A file or stdin could not be read, or held something unusable.
    Input,
    /// The bus could not be reached at all.
    Connect,
    /// The bus connection failed for another reason.
    Bus,
}

impl Kind {
    /// The stable name scripts match on.
    pub fn name(&self) -> String {
        let mfad = |error: &str| format!("{ERROR_PREFIX}.{error}");
        match self {
            Kind::PermissionDenied => mfad("PermissionDenied"),
            Kind::InvalidArgument => mfad("InvalidArgument"),
            Kind::NotEnrolled => mfad("NotEnrolled"),
            Kind::AlreadyEnrolled => mfad("AlreadyEnrolled"),
            Kind::NoPendingEnrollment => mfad("NoPendingEnrollment"),
            Kind::WrongCode => mfad("WrongCode"),
            Kind::Required => mfad("Required"),
            Kind::NoSuchSession => mfad("NoSuchSession"),
            Kind::TooManySessions => mfad("TooManySessions"),
            Kind::TooManyRequests => mfad("TooManyRequests"),
            Kind::NotRoot => mfad("NotRoot"),
            Kind::Internal => mfad("Internal"),
            Kind::Reply(name) => name.clone(),
            Kind::Usage => "usage".to_owned(),
            Kind::Input => "input".to_owned(),
            Kind::Connect => "connect".to_owned(),
            Kind::Bus => "bus".to_owned(),
        }
    }
}

impl serde::Serialize for Kind {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.name())
    }
}

impl From<&Error> for Kind {
    fn from(error: &Error) -> Self {
        match error {
            Error::ZBus(_) => error.reply_name().map_or(Kind::Bus, Kind::Reply),
            Error::PermissionDenied(_) => Kind::PermissionDenied,
            Error::InvalidArgument(_) => Kind::InvalidArgument,
            Error::NotEnrolled(_) => Kind::NotEnrolled,
            Error::AlreadyEnrolled(_) => Kind::AlreadyEnrolled,
            Error::NoPendingEnrollment(_) => Kind::NoPendingEnrollment,
            Error::WrongCode(_) => Kind::WrongCode,
            Error::Required(_) => Kind::Required,
            Error::NoSuchSession(_) => Kind::NoSuchSession,
            Error::TooManySessions(_) => Kind::TooManySessions,
            Error::TooManyRequests(_) => Kind::TooManyRequests,
            Error::NotRoot(_) => Kind::NotRoot,
            Error::Internal(_) => Kind::Internal,
        }
    }
}

impl Failure {
    pub fn new(kind: Kind, message: impl Into<String>) -> Self {
        Failure {
            kind,
            message: message.into(),
        }
    }

    pub fn usage(message: impl Into<String>) -> Self {
        Failure::new(Kind::Usage, message)
    }

    pub fn input(message: impl Into<String>) -> Self {
        Failure::new(Kind::Input, message)
    }

    pub fn kind(&self) -> &Kind {
        &self.kind
    }

    /// The kind's name, as `--json` gives it.
    pub fn name(&self) -> String {
        self.kind.name()
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    /// The same failure with `more` after the message, e.g. what it left undone.
    pub fn and(mut self, more: &str) -> Self {
        self.message.push_str(more);
        self
    }
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        Failure {
            kind: Kind::from(&error),
            message: describe(&error),
        }
    }
}

/// A sentence for `error`: what went wrong and what to do.
fn describe(error: &Error) -> String {
    if error.is_absent() {
        return format!(
            "mfad is not running on this bus ({error}): start mfad (systemctl start mfad.service)"
        );
    }
    if error.is_access_denied() {
        return format!("permission denied by the bus policy: run mfactl as root ({error})");
    }
    match error {
        Error::ZBus(_) => format!(
            "no usable answer from mfad ({error}): check that mfad and the bus are running \
             (systemctl status mfad.service dbus.service)"
        ),
        Error::PermissionDenied(text) => format!("permission denied: {text}"),
        Error::NotRoot(text) => format!(
            "{text}; nothing was sent to it. Stop that process, or point mfactl at the real \
             system bus (unset DBUS_SYSTEM_BUS_ADDRESS, and use sudo without -E)"
        ),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn daemon_errors_keep_their_dbus_name() {
        let failure = Failure::from(Error::InvalidArgument(
            "no such user: zed is not in the system user database".into(),
        ));
        assert_eq!(failure.kind(), &Kind::InvalidArgument);
        assert_eq!(failure.name(), "org.pam_mfa.Mfad1.Error.InvalidArgument");
        assert_eq!(
            serde_json::to_value(&failure).unwrap(),
            serde_json::json!({
                "name": "org.pam_mfa.Mfad1.Error.InvalidArgument",
                "message": "no such user: zed is not in the system user database",
            })
        );
    }

    #[test]
    fn every_kind_of_mfad_is_named_as_on_the_bus() {
        let text = String::new;
        for error in [
            Error::PermissionDenied(text()),
            Error::InvalidArgument(text()),
            Error::NotEnrolled(text()),
            Error::AlreadyEnrolled(text()),
            Error::NoPendingEnrollment(text()),
            Error::WrongCode(text()),
            Error::Required(text()),
            Error::NoSuchSession(text()),
            Error::TooManySessions(text()),
            Error::TooManyRequests(text()),
            Error::NotRoot(text()),
            Error::Internal(text()),
        ] {
            let on_the_bus = zbus::DBusError::name(&error).to_string();
            assert_eq!(Failure::from(error).name(), on_the_bus);
        }
        let closed = Error::ZBus(zbus::Error::InvalidReply);
        assert_eq!(Failure::from(closed).kind(), &Kind::Bus);
        assert_eq!(Kind::Bus.name(), "bus");
    }

    #[test]
    fn an_absent_daemon_is_named_by_the_bus_and_explained() {
        let error = Error::ZBus(zbus::Error::FDO(Box::new(
            zbus::fdo::Error::NameHasNoOwner("no owner".into()),
        )));
        let failure = Failure::from(error);
        assert_eq!(
            failure.kind(),
            &Kind::Reply("org.freedesktop.DBus.Error.NameHasNoOwner".into())
        );
        assert_eq!(failure.name(), "org.freedesktop.DBus.Error.NameHasNoOwner");
        assert!(
            failure
                .message()
                .starts_with("mfad is not running on this bus")
        );
        assert!(
            failure
                .message()
                .ends_with("start mfad (systemctl start mfad.service)")
        );
    }

    #[test]
    fn a_squatted_name_is_refused_with_what_to_do() {
        let failure = Failure::from(Error::NotRoot("owned by uid 1000".into()));
        assert_eq!(failure.kind(), &Kind::NotRoot);
        assert_eq!(failure.name(), "org.pam_mfa.Mfad1.Error.NotRoot");
        assert!(failure.message().contains("uid 1000"), "{failure:?}");
        assert!(failure.message().contains("unset DBUS_SYSTEM_BUS_ADDRESS"));
    }
}
