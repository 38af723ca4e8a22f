//! What went wrong, for the person at the terminal and for scripts: a sentence that says what
//! is wrong and what to do, and a stable name to match on.

use pam_mfa_api::Error;

/// A command that could not be done.
///
/// `name` is the D-Bus error name when the bus or `mfad` refused (for example
/// `org.pam_mfa.Mfad1.Error.InvalidArgument`), else a short kind: [`USAGE`], [`INPUT`],
/// [`CONNECT`] or [`BUS`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    name: String,
    message: String,
}

/// The command line is wrong.
pub const USAGE: &str = "usage";
/// A file or stdin could not be read, or held something unusable.
pub const INPUT: &str = "input";
/// The bus could not be reached at all.
pub const CONNECT: &str = "connect";
/// The bus connection failed for another reason.
pub const BUS: &str = "bus";

impl Failure {
    pub fn new(name: &str, message: impl Into<String>) -> Self {
        Failure {
            name: name.to_owned(),
            message: message.into(),
        }
    }

    pub fn usage(message: impl Into<String>) -> Self {
        Failure::new(USAGE, message)
    }

    pub fn input(message: impl Into<String>) -> Self {
        Failure::new(INPUT, message)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    /// The same failure with `more` after the message, e.g. what it left undone.
    pub fn and(mut self, more: &str) -> Self {
        self.message.push_str(more);
        self
    }

    /// `{"error": {"name": ..., "message": ...}}`
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({ "error": { "name": self.name, "message": self.message } })
    }
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        Failure {
            name: name(&error),
            message: describe(&error),
        }
    }
}

/// The D-Bus name of `error`, or [`BUS`] for a failure that has none.
fn name(error: &Error) -> String {
    error.reply_name().unwrap_or_else(|| match error {
        Error::ZBus(_) => BUS.to_owned(),
        other => zbus::DBusError::name(other).to_string(),
    })
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
        assert_eq!(failure.name(), "org.pam_mfa.Mfad1.Error.InvalidArgument");
        assert_eq!(
            failure.json(),
            serde_json::json!({ "error": {
                "name": "org.pam_mfa.Mfad1.Error.InvalidArgument",
                "message": "no such user: zed is not in the system user database",
            }})
        );
    }

    #[test]
    fn an_absent_daemon_is_named_by_the_bus_and_explained() {
        let error = Error::ZBus(zbus::Error::FDO(Box::new(
            zbus::fdo::Error::NameHasNoOwner("no owner".into()),
        )));
        let failure = Failure::from(error);
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
        assert_eq!(failure.name(), "org.pam_mfa.Mfad1.Error.NotRoot");
        assert!(failure.message().contains("uid 1000"), "{failure:?}");
        assert!(failure.message().contains("unset DBUS_SYSTEM_BUS_ADDRESS"));
    }
}
