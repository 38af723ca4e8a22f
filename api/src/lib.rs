//! The D-Bus contract between `mfad` and `mfactl` on the system bus, and what every part
//! shares.
//!
//! The bus, object and interface names, the error names and the client proxies of the Admin
//! and User interfaces live here. The Login contract, which the PAM module and mfad's login
//! socket share, lives in `pam-mfa-login` (re-exported here): the module links that crate only.
#![forbid(unsafe_code)]

mod error;
pub mod owner;
pub mod proxy;

pub use error::Error;
pub use pam_mfa_login::{
    Action, LOGIN_INTERFACE, LOGIN_SOCKET, Notice, OBJECT_PATH, Turn, UNAVAILABLE_NOTICE, WireTurn,
    context, contract, dialogue, limits, marshal, wire,
};

/// The well-known name `mfad` owns on the bus.
pub const BUS_NAME: &str = "org.pam_mfa.Mfad1";
/// Interface for administrators (uid 0, and members of the configured `admin_group`).
pub const ADMIN_INTERFACE: &str = "org.pam_mfa.Mfad1.Admin";
/// Interface for any user, about their own account only.
pub const USER_INTERFACE: &str = "org.pam_mfa.Mfad1.User";

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
    /// Why it is or is not enforced.
    pub enforced_by: EnforcedBy,
    /// The kind of token: `totp` (an authenticator app) or `hotp` (a counter-based token);
    /// empty when not enrolled.
    pub token: String,
    /// For a counter-based token, the counter value of the last code used; -1 otherwise, or
    /// when none was used yet.
    pub counter: i64,
    /// `SHA1`, `SHA256` or `SHA512`; empty when not enrolled.
    pub algorithm: String,
    pub digits: u32,
    pub period: u32,
    /// Unix time of the enrollment's confirmation, 0 when not enrolled.
    pub enrolled_at: i64,
    /// Unix time of the last accepted code, 0 when never used.
    pub last_used: i64,
    /// An enrollment waits for confirmation (a first one, or a new phone replacing the one in
    /// use, which keeps working until then).
    pub pending: bool,
    /// Unused recovery codes of the active enrollment.
    pub recovery_codes_left: u32,
    /// Unix time until which the account is locked after too many wrong codes; 0 when not.
    pub locked_until: i64,
    /// What the user's next login does.
    pub next_login: NextLogin,
    /// The user's verified contacts, masked (`a***@example.org`, `+44 ••• ••• 123`).
    pub contacts: Vec<String>,
}

/// What `Admin.Reseal` did: every stored secret is sealed with the newest sealing key.
#[derive(
    Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, zbus::zvariant::Type,
)]
pub struct Resealed {
    /// The number of the key that seals every secret now.
    pub key: u32,
    /// Secrets that were sealed with an older key (or not at all) and are sealed with it now.
    pub resealed: u64,
    /// Where mfad read its keys.
    pub keys: String,
}

/// What `Admin.Health` reports about mfad's store.
#[derive(
    Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, zbus::zvariant::Type,
)]
pub struct StoreHealth {
    /// Where the state is kept: `SQLite /var/lib/pam-mfa/mfad.sqlite3`, or the database's hosts
    /// and name.
    pub store: String,
    /// The database server in use, as it reports its address (`10.0.0.2:5432`): of several
    /// hosts, the one that accepts writes. Empty for a file, or before any connection.
    pub server: String,
    /// Unix time since when that server is used (0: none).
    pub server_since: i64,
    /// Whether the store answered a read just now.
    pub answering: bool,
    /// The last failure of the store since mfad started (empty: none).
    pub last_error: String,
    /// When it happened, Unix time (0: none).
    pub last_error_at: i64,
}

/// What `Admin.Reset` did, and what the user's next login does now.
#[derive(
    Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, zbus::zvariant::Type,
)]
pub struct ResetOutcome {
    /// An enrollment (active or pending) was removed.
    pub removed: bool,
    /// What the user's next login does after the reset.
    pub next_login: NextLogin,
}

/// What a user's next login through pam_mfa does. Travels as a string; a reason from a newer
/// daemon arrives as [`NextLogin::Other`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NextLogin {
    /// Asks for a code from the app (or a recovery code).
    Code,
    /// Sets up an authenticator app: MFA is required and the user has none.
    Enroll,
    /// Is denied: MFA is required, the user has no app, and logins do not enroll.
    Denied,
    /// Asks for nothing: MFA is not required and the user has no app.
    NoSecondFactor,
    /// Is refused: too many wrong codes locked the account for a while.
    Locked,
    /// Asks for nothing: an exemption applies (a user, group, service or network).
    Exempt,
    /// Asks for nothing: a right code from the same place is remembered (`[remember]`).
    Remembered,
    Other(String),
}

impl NextLogin {
    pub fn as_str(&self) -> &str {
        match self {
            NextLogin::Code => "code",
            NextLogin::Enroll => "enroll",
            NextLogin::Denied => "denied",
            NextLogin::NoSecondFactor => "no second factor",
            NextLogin::Locked => "locked",
            NextLogin::Exempt => "exempt",
            NextLogin::Remembered => "remembered",
            NextLogin::Other(text) => text,
        }
    }

    pub fn parse(text: &str) -> Self {
        match text {
            "code" => NextLogin::Code,
            "enroll" => NextLogin::Enroll,
            "denied" => NextLogin::Denied,
            "no second factor" => NextLogin::NoSecondFactor,
            "locked" => NextLogin::Locked,
            "exempt" => NextLogin::Exempt,
            "remembered" => NextLogin::Remembered,
            other => NextLogin::Other(other.to_owned()),
        }
    }

    /// What the next login does, as the end of a sentence ("the next login ...").
    pub fn describe(&self) -> String {
        match self {
            NextLogin::Code => "asks for a code from the authenticator app".into(),
            NextLogin::Enroll => "sets up an authenticator app (QR code, then a code)".into(),
            NextLogin::Denied => "is denied: MFA is required and no app is set up, and this login \
                                  cannot set one up (enroll_at_login is off, or the system does \
                                  not know the user); an administrator can (mfactl enroll)"
                .into(),
            NextLogin::NoSecondFactor => "asks for no second factor (MFA is not required)".into(),
            NextLogin::Locked => {
                "is refused until the lock ends (too many wrong codes; mfactl unlock)".into()
            }
            NextLogin::Exempt => "asks for no second factor (an exemption applies)".into(),
            NextLogin::Remembered => {
                "asks for no code (a right code from the same place is remembered)".into()
            }
            NextLogin::Other(text) => text.clone(),
        }
    }
}

impl serde::Serialize for NextLogin {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for NextLogin {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Ok(NextLogin::parse(&text))
    }
}

impl zbus::zvariant::Type for NextLogin {
    const SIGNATURE: &'static zbus::Signature = &zbus::Signature::Str;
}

/// Why MFA is or is not required of a user: the rule that decided, as `mfactl explain` and
/// `mfactl status` name it. Travels as a string (`"all users"`, `"service sshd"`, `"exempt
/// group breakglass"`...), so that later rules can be added without changing the signature; a
/// client that receives a rule it does not know gets [`EnforcedBy::Other`] with the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnforcedBy {
    /// The user is in `exemptions.users`.
    ExemptUser,
    /// The user is a member of this group of `exemptions.groups`.
    ExemptGroup(String),
    /// The login's service is in `exemptions.services`.
    ExemptService(String),
    /// The login comes from this network of `exemptions.networks`.
    ExemptNetwork(String),
    /// MFA is switched on for every user.
    AllUsers,
    /// The login's service is in `enforcement.services`.
    Service(String),
    /// MFA is switched on for this user.
    User,
    /// The user is a member of this group of `enforcement.groups`.
    Group(String),
    /// Nothing requires MFA of this user.
    NotEnforced,
    /// A reason from a newer daemon.
    Other(String),
}

impl EnforcedBy {
    /// Whether an exemption decided: no code is asked, enrolled or not.
    pub fn is_exemption(&self) -> bool {
        matches!(
            self,
            EnforcedBy::ExemptUser
                | EnforcedBy::ExemptGroup(_)
                | EnforcedBy::ExemptService(_)
                | EnforcedBy::ExemptNetwork(_)
        )
    }

    pub fn parse(text: &str) -> Self {
        let named = |prefix: &str| text.strip_prefix(prefix).map(str::to_owned);
        match text {
            "exempt user" => EnforcedBy::ExemptUser,
            "all users" => EnforcedBy::AllUsers,
            "user" => EnforcedBy::User,
            "not enforced" => EnforcedBy::NotEnforced,
            _ => None
                .or_else(|| named("exempt group ").map(EnforcedBy::ExemptGroup))
                .or_else(|| named("exempt service ").map(EnforcedBy::ExemptService))
                .or_else(|| named("exempt network ").map(EnforcedBy::ExemptNetwork))
                .or_else(|| named("service ").map(EnforcedBy::Service))
                .or_else(|| named("group ").map(EnforcedBy::Group))
                .unwrap_or_else(|| EnforcedBy::Other(text.to_owned())),
        }
    }
}

impl std::fmt::Display for EnforcedBy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EnforcedBy::ExemptUser => f.write_str("exempt user"),
            EnforcedBy::ExemptGroup(group) => write!(f, "exempt group {group}"),
            EnforcedBy::ExemptService(service) => write!(f, "exempt service {service}"),
            EnforcedBy::ExemptNetwork(network) => write!(f, "exempt network {network}"),
            EnforcedBy::AllUsers => f.write_str("all users"),
            EnforcedBy::Service(service) => write!(f, "service {service}"),
            EnforcedBy::User => f.write_str("user"),
            EnforcedBy::Group(group) => write!(f, "group {group}"),
            EnforcedBy::NotEnforced => f.write_str("not enforced"),
            EnforcedBy::Other(text) => f.write_str(text),
        }
    }
}

impl serde::Serialize for EnforcedBy {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for EnforcedBy {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Ok(EnforcedBy::parse(&text))
    }
}

impl zbus::zvariant::Type for EnforcedBy {
    const SIGNATURE: &'static zbus::Signature = &zbus::Signature::Str;
}

/// What `Admin.Explain` says a login would do, without performing it.
/// A contact of a user (`mfactl contact list`), masked as logs show it.
#[derive(
    Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, zbus::zvariant::Type,
)]
pub struct ContactInfo {
    /// `email` or `phone`.
    pub kind: String,
    /// `a***@example.org`, `+44 ••• ••• 123`.
    pub masked: String,
    /// Unix time it was added.
    pub added: i64,
    /// Unix time its code was typed (or an administrator vouched for it); 0: not yet, and
    /// it does not count.
    pub verified_at: i64,
}

#[derive(
    Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, zbus::zvariant::Type,
)]
pub struct Explanation {
    /// The user, in the system's own spelling.
    pub user: String,
    pub service: String,
    pub rhost: String,
    /// What the login does.
    pub next_login: NextLogin,
    /// MFA is required of this login.
    pub required: bool,
    /// The rule that decided whether it is required.
    pub rule: EnforcedBy,
    /// Unix time a lock ends (`locked`) or a remembered code stops covering the login
    /// (`remembered`); 0 otherwise.
    pub until: i64,
    /// The user has an authenticator app.
    pub enrolled: bool,
    /// Its kind: `totp` (an authenticator app) or `hotp` (a counter-based token); empty when
    /// not enrolled.
    pub token: String,
    /// The groups named by the rules that the user is a member of.
    pub groups: Vec<String>,
    /// The user's verified contacts, masked.
    pub contacts: Vec<String>,
    /// At this login, the user may have a code sent to them ("email", "sms").
    pub contact_codes: bool,
}

/// One entry of the audit trail, as `User.Audit` returns it.
#[derive(
    Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, zbus::zvariant::Type,
)]
pub struct AuditEntry {
    /// Unix time.
    pub time: i64,
    /// A short stable name: `login-allowed`, `locked-out`, `enrollment-reset`...
    pub kind: String,
    /// The user it is about; empty for events about no one user.
    pub user: String,
    /// The line mfad wrote to syslog.
    pub line: String,
    /// The host whose mfad recorded it, where several share one store (fleet mode); empty
    /// otherwise.
    pub host: String,
}

/// Which page of the audit trail `User.Audit` reads: of the newest `limit` entries (at most
/// 1,000) about `user` (empty: everyone) that are older than `before` (0: the newest), those
/// since `since` (Unix time; 0: from the start) and of `kind` (empty: any).
#[derive(
    Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, zbus::zvariant::Type,
)]
pub struct AuditQuery {
    pub user: String,
    pub since: i64,
    pub kind: String,
    pub limit: u32,
    pub before: i64,
}

/// A page of the audit trail, as `User.Audit` returns it.
#[derive(
    Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, zbus::zvariant::Type,
)]
pub struct AuditPage {
    /// The entries that match, oldest first.
    pub entries: Vec<AuditEntry>,
    /// What to pass as `before` for the page of older entries; 0 when there is none.
    pub next: i64,
}

/// One token of `Admin.ImportTokens`: an enrollment made elsewhere (google-authenticator's
/// files, pam_oath's users file, a token vendor's PSKC file). Its secret and recovery codes
/// are never printed.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, zbus::zvariant::Type)]
pub struct TokenImport {
    pub user: String,
    /// `totp` (time-based) or `hotp` (counter-based).
    pub kind: String,
    /// The shared secret in Base32, at least 80 bits.
    pub secret: String,
    /// `SHA1`, `SHA256` or `SHA512`.
    pub algorithm: String,
    /// 6, 7 or 8.
    pub digits: u32,
    /// Seconds per time step (TOTP); 0 for HOTP.
    pub period: u32,
    /// The time step (TOTP) or counter value (HOTP) of the last code used where the token
    /// came from, which stays used with those before it; -1: none.
    pub last_used: i64,
    /// Codes of 8 digits that become recovery codes (google-authenticator's scratch codes).
    pub recovery_codes: Vec<String>,
}

impl std::fmt::Debug for TokenImport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenImport")
            .field("user", &self.user)
            .field("kind", &self.kind)
            .field("secret", &"<redacted>")
            .field("algorithm", &self.algorithm)
            .field("digits", &self.digits)
            .field("period", &self.period)
            .field("last_used", &self.last_used)
            .field("recovery_codes", &self.recovery_codes.len())
            .finish()
    }
}

/// Tokens on their way to or from `Admin.ImportTokens`, their secrets and recovery codes wiped
/// when dropped.
pub struct TokenImports(pub Vec<TokenImport>);

impl Drop for TokenImports {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        for token in &mut self.0 {
            token.secret.zeroize();
            token.recovery_codes.zeroize();
        }
    }
}

/// What `Admin.BeginEnrollment` hands back, once, to show to the user.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, zbus::zvariant::Type)]
pub struct NewEnrollment {
    /// The shared secret, Base32 without padding.
    pub secret: String,
    /// The `otpauth://totp/...` (or `otpauth://hotp/...`) URI an authenticator app scans.
    pub uri: String,
}

/// A Unix time as UTC `YYYY-MM-DD HH:MM UTC`, as mfad's log, its audit trail and mfactl show
/// times.
pub fn utc(time: i64) -> String {
    let days = time.div_euclid(86_400);
    let seconds = time.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        seconds / 3600,
        seconds % 3600 / 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use zbus::proxy::Defaults;

    /// The proxy macros need literals; they must say what the constants say.
    #[test]
    fn the_proxies_use_the_named_constants() {
        let names = |interface: &Option<zbus::names::InterfaceName<'static>>,
                     destination: &Option<zbus::names::BusName<'static>>,
                     path: &Option<zbus::ObjectPath<'static>>| {
            (
                interface.as_ref().unwrap().to_string(),
                destination.as_ref().unwrap().to_string(),
                path.as_ref().unwrap().to_string(),
            )
        };
        use proxy::{AdminProxy, UserProxy};
        assert_eq!(
            names(
                AdminProxy::INTERFACE,
                AdminProxy::DESTINATION,
                AdminProxy::PATH
            ),
            (
                ADMIN_INTERFACE.to_owned(),
                BUS_NAME.to_owned(),
                OBJECT_PATH.to_owned()
            )
        );
        assert_eq!(
            names(
                UserProxy::INTERFACE,
                UserProxy::DESTINATION,
                UserProxy::PATH
            ),
            (
                USER_INTERFACE.to_owned(),
                BUS_NAME.to_owned(),
                OBJECT_PATH.to_owned()
            )
        );
        assert!(ERROR_PREFIX.starts_with(BUS_NAME));
    }

    /// The login socket's error names are the bus's.
    #[test]
    fn the_login_contract_names_the_errors_as_mfad_sends_them() {
        use zbus::DBusError;
        let name = |error: Error| error.name().to_string();
        assert_eq!(
            name(Error::PermissionDenied(String::new())),
            contract::errors::PERMISSION_DENIED
        );
        assert_eq!(
            name(Error::Internal(String::new())),
            contract::errors::INTERNAL
        );
    }

    #[test]
    fn reasons_survive_the_wire_and_unknown_ones_are_kept() {
        for reason in [
            EnforcedBy::ExemptUser,
            EnforcedBy::ExemptGroup("breakglass".into()),
            EnforcedBy::ExemptService("login".into()),
            EnforcedBy::ExemptNetwork("10.0.0.0/8".into()),
            EnforcedBy::AllUsers,
            EnforcedBy::Service("sshd".into()),
            EnforcedBy::User,
            EnforcedBy::Group("wheel".into()),
            EnforcedBy::NotEnforced,
        ] {
            assert_eq!(EnforcedBy::parse(&reason.to_string()), reason);
        }
        assert_eq!(
            EnforcedBy::parse("moon phase full"),
            EnforcedBy::Other("moon phase full".into())
        );
    }
}
