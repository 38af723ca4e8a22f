//! The `mfad` configuration: schema, defaults and validation.
//!
//! The file is TOML. Every key is optional; a missing file means all defaults. Unknown keys and
//! out-of-range values are errors that name the key and its line, so a typo never silently
//! weakens a login policy.
#![forbid(unsafe_code)]

use std::fmt;
use std::path::{Path, PathBuf};

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::Deserialize;
pub use toml::Spanned;

pub mod reference;

/// Where `mfad` reads its configuration unless told otherwise.
pub const DEFAULT_PATH: &str = "/etc/pam-mfa/mfad.toml";
/// Where `mfad` serves logins directly unless configured otherwise.
pub const DEFAULT_LOGIN_SOCKET: &str = "/run/pam-mfa/login.socket";
/// Where `mfad` keeps its state unless configured otherwise.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/pam-mfa";
/// Where `mfad` reads the keys that seal secrets unless configured otherwise (or given them as
/// a systemd credential).
pub const DEFAULT_SEALING_KEY_FILE: &str = "/etc/pam-mfa/sealing.key";

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Directory of the SQLite store; created with mode 0700. Must be absolute.
    #[serde(deserialize_with = "absolute_path")]
    pub state_dir: PathBuf,
    /// Members of this Unix group (as the system's group database says, LDAP and SSSD
    /// included) may administer pam-mfa as root can; empty: root only.
    pub admin_group: String,
    /// Seconds a lookup in the system's user and group databases (LDAP, SSSD) may take before
    /// the request that needed it fails; a hung lookup holds up only that request.
    pub lookup_timeout: LookupTimeout,
    /// Unix socket on which mfad serves logins, peer to peer (pam_mfa.so `socket=`); its
    /// directory is made root-owned, mode 0755, unless systemd passes the socket (mfad.socket).
    #[serde(deserialize_with = "login_socket_path")]
    pub login_socket: PathBuf,
    /// The file of the keys that seal the secrets in the store (root's, mode 0600), read
    /// unless systemd passes them as the credential `sealing-key`. Must be absolute.
    #[serde(deserialize_with = "sealing_key_path")]
    pub sealing_key_file: PathBuf,
    pub totp: Totp,
    pub hotp: Hotp,
    pub login: Login,
    pub lockout: Lockout,
    pub audit: Audit,
    pub enforcement: Enforcement,
    pub exemptions: Exemptions,
    pub remember: Remember,
    pub store: StoreSettings,
    pub contacts: Contacts,
    pub email: Email,
    pub sms: Sms,
}

/// Email addresses and phone numbers of users, verified by a code sent there, and codes sent
/// to them at a login. Off unless `kinds` names one.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Contacts {
    /// The kinds of contact users may add: "email" (sent through `[email]`), "phone" (sent
    /// through `[sms]`).
    pub kinds: Vec<Spanned<ContactKind>>,
    /// Digits of a code sent to a contact.
    pub code_digits: ContactDigits,
    /// Seconds a code sent stays good.
    pub code_lifetime: CodeLifetime,
    /// Seconds before another code may be sent to the same user.
    pub resend_after: ResendSeconds,
    /// Contacts one user may keep.
    pub max_per_user: MaxContacts,
    /// At a login's code question, a user with a verified contact may type "email" or "sms"
    /// to get a code sent there.
    pub at_login: bool,
    /// The same, only for logins through these PAM services (with `at_login` off).
    pub at_login_services: Vec<Spanned<Name>>,
    /// The same, only for members of these groups (with `at_login` off).
    pub at_login_groups: Vec<Spanned<Name>>,
    /// A login with a code sent to a contact is remembered as one with a code from the app
    /// (`[remember]`); off: it never is.
    pub remember: bool,
    /// Seconds one delivery may take before it counts as failed.
    pub delivery_timeout: DeliveryTimeout,
    /// The kind of contact a user must verify when enrolling at a login, before the app's QR
    /// code; unset: none.
    #[serde(deserialize_with = "optional_contact_kind")]
    pub at_enrollment: Spanned<Option<ContactKind>>,
}

impl Default for Contacts {
    fn default() -> Self {
        Contacts {
            kinds: Vec::new(),
            code_digits: ContactDigits(6),
            code_lifetime: CodeLifetime(600),
            resend_after: ResendSeconds(60),
            max_per_user: MaxContacts(3),
            at_login: false,
            at_login_services: Vec::new(),
            at_login_groups: Vec::new(),
            remember: false,
            delivery_timeout: DeliveryTimeout(4),
            at_enrollment: Spanned::new(0..0, None),
        }
    }
}

impl Contacts {
    /// Whether users may add contacts of `kind`.
    pub fn allows(&self, kind: ContactKind) -> bool {
        self.kinds.iter().any(|allowed| *allowed.get_ref() == kind)
    }

    /// Whether a login through `service` of a member of the groups `member_of` (of those the
    /// rules name) may ask for a code by email or SMS.
    pub fn at_login_for(&self, service: &str, member_of: &[String]) -> bool {
        let named = |list: &[Spanned<Name>], name: &str| {
            list.iter().any(|entry| entry.get_ref().as_str() == name)
        };
        !self.kinds.is_empty()
            && (self.at_login
                || named(&self.at_login_services, service)
                || member_of
                    .iter()
                    .any(|group| named(&self.at_login_groups, group)))
    }
}

/// A kind of contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContactKind {
    Email,
    Phone,
}

impl ContactKind {
    pub fn name(self) -> &'static str {
        match self {
            ContactKind::Email => "email",
            ContactKind::Phone => "phone",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "email" => Some(ContactKind::Email),
            "phone" => Some(ContactKind::Phone),
            _ => None,
        }
    }
}

/// How codes go out by email.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Email {
    pub via: Spanned<EmailVia>,
    /// The sendmail program of the local mail system (Postfix, Exim, OpenSMTPD, msmtp all
    /// have one), run with the message on its standard input.
    #[serde(deserialize_with = "sendmail_path")]
    pub sendmail: PathBuf,
    /// The sender address of the messages; empty: the mail system's default for root
    /// (sendmail only).
    pub from: String,
    /// The SMTP server's host name, which its certificate must name.
    pub server: String,
    /// Its port; 0: 587 with STARTTLS, 465 with TLS from the start.
    pub port: u16,
    pub tls: SmtpTls,
    /// Authorities (PEM) that sign the server's certificate; unset: the system's.
    #[serde(deserialize_with = "absolute_file")]
    pub ca_file: Option<PathBuf>,
    /// A file (root's, mode 0600) of two lines, the user name and the password to log in
    /// to the server with; unset: no login.
    #[serde(deserialize_with = "absolute_file")]
    pub credentials_file: Option<PathBuf>,
}

impl Default for Email {
    fn default() -> Self {
        Email {
            via: Spanned::new(0..0, EmailVia::Sendmail),
            sendmail: PathBuf::from("/usr/sbin/sendmail"),
            from: String::new(),
            server: String::new(),
            port: 0,
            tls: SmtpTls::Starttls,
            ca_file: None,
            credentials_file: None,
        }
    }
}

/// How email leaves mfad.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EmailVia {
    /// The local sendmail program.
    Sendmail,
    /// An SMTP server, over TLS.
    Smtp,
}

/// TLS to the SMTP server: always, and checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// A plain connection made TLS by STARTTLS before anything else is said (port 587).
    Starttls,
    /// TLS from the start (port 465).
    Tls,
}

/// How codes go out by SMS.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Sms {
    pub via: Spanned<SmsVia>,
    /// A program and its arguments, run without a shell for each message; `{phone}`,
    /// `{code}` and `{message}` in an argument are replaced.
    pub command: Spanned<Vec<String>>,
    /// The HTTPS address of the gateway's API; `{phone}`, `{code}` and `{message}` in it are
    /// replaced, percent-encoded.
    pub url: Spanned<String>,
    /// The HTTP method: POST, PUT or GET.
    pub method: HttpMethod,
    /// The request's body; `{phone}`, `{code}` and `{message}` are replaced, escaped for
    /// `content_type` (JSON strings, or percent-encoded).
    pub body: String,
    pub content_type: String,
    /// A file (root's, mode 0600) of "Name: value" header lines sent with each request (an
    /// API key, say).
    #[serde(deserialize_with = "absolute_file")]
    pub headers_file: Option<PathBuf>,
    /// Authorities (PEM) that sign the gateway's certificate; unset: the system's.
    #[serde(deserialize_with = "absolute_file")]
    pub ca_file: Option<PathBuf>,
}

impl Default for Sms {
    fn default() -> Self {
        Sms {
            via: Spanned::new(0..0, SmsVia::Command),
            command: Spanned::new(0..0, Vec::new()),
            url: Spanned::new(0..0, String::new()),
            method: HttpMethod::Post,
            body: String::new(),
            content_type: "application/x-www-form-urlencoded".into(),
            headers_file: None,
            ca_file: None,
        }
    }
}

/// How text messages leave mfad.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmsVia {
    /// A program of the administrator's.
    Command,
    /// An HTTPS request to the gateway's API.
    Http,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum HttpMethod {
    #[serde(rename = "POST")]
    Post,
    #[serde(rename = "PUT")]
    Put,
    #[serde(rename = "GET")]
    Get,
}

impl HttpMethod {
    pub fn name(self) -> &'static str {
        match self {
            HttpMethod::Post => "POST",
            HttpMethod::Put => "PUT",
            HttpMethod::Get => "GET",
        }
    }
}

/// Where mfad keeps its state: the embedded SQLite file in `state_dir`, or a PostgreSQL
/// database that several hosts share (fleet mode). Read at start only.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreSettings {
    pub kind: Spanned<StoreKind>,
    /// A libpq connection string (`host=db.example port=5432 dbname=pam_mfa user=mfad`, or a
    /// `postgresql://` URI), without a password.
    pub url: Spanned<String>,
    /// A file (absolute path, readable by root only) holding the connection string, which may
    /// then carry a password.
    #[serde(deserialize_with = "absolute_file")]
    pub url_file: Option<PathBuf>,
    pub tls: Tls,
    /// Certificates of the authorities trusted to sign the server's certificate (PEM); unset:
    /// the system's.
    #[serde(deserialize_with = "absolute_file")]
    pub ca_file: Option<PathBuf>,
    /// Seconds a call to the database may take, connection included, before the request that
    /// needed it fails.
    pub timeout: StoreTimeout,
    /// This host's name in the shared audit trail; empty: the system's host name.
    pub host_name: String,
}

impl Default for StoreSettings {
    fn default() -> Self {
        StoreSettings {
            kind: Spanned::new(0..0, StoreKind::Sqlite),
            url: Spanned::new(0..0, String::new()),
            url_file: None,
            tls: Tls::VerifyFull,
            ca_file: None,
            timeout: StoreTimeout(3),
            host_name: String::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    Sqlite,
    Postgres,
}

/// TLS to the database server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Tls {
    /// No TLS (a Unix socket, or a network you trust with the codes' outcomes).
    Disable,
    /// TLS, without checking who the server is.
    Require,
    /// TLS, with the server's certificate checked against `ca_file` and its name against the
    /// host name connected to.
    VerifyFull,
}

/// The audit trail kept in the store.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Audit {
    /// Days an entry is kept; older ones are removed at start-up and every hour.
    pub retention_days: RetentionDays,
}

impl Default for Audit {
    fn default() -> Self {
        Audit {
            retention_days: RetentionDays(365),
        }
    }
}

/// Locking an account after too many wrong codes, across every service and host that uses
/// this mfad.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Lockout {
    /// Codes (from the app, or recovery codes) a user may try within `window`; one more locks
    /// the account.
    pub failures: LockoutFailures,
    /// Seconds over which tries are counted.
    pub window: LockoutSeconds,
    /// Seconds the first lock lasts; each lock that follows another without a right code in
    /// between lasts twice as long, up to `max_duration`.
    pub duration: LockoutSeconds,
    pub max_duration: LockoutSeconds,
}

impl Default for Lockout {
    fn default() -> Self {
        Lockout {
            failures: LockoutFailures(5),
            window: LockoutSeconds(300),
            duration: LockoutSeconds(300),
            max_duration: LockoutSeconds(86_400),
        }
    }
}

/// TOTP parameters. `algorithm`, `digits` and `period` apply to new enrollments; each enrollment
/// keeps the parameters it was made with.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Totp {
    pub algorithm: Algorithm,
    pub digits: Digits,
    pub period: Period,
    /// Time steps accepted on either side of the current one, for clock drift.
    pub window: Window,
    /// Issuer shown by authenticator apps; empty means "pam-mfa on HOSTNAME".
    pub issuer: String,
}

/// Counter-based tokens (HOTP, RFC 4226): hardware tokens with a button, and apps set up for
/// them. Their codes do not expire; each press of the button moves the token's counter on.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Hotp {
    /// Counter values after the last one used that a code is looked for in: presses of the
    /// button without a login in between that a login still accepts.
    pub look_ahead: LookAhead,
    /// Counter values beyond `look_ahead` in which two codes in a row bring a token back in
    /// step (at a login, and by `mfactl resync`).
    pub resync_window: ResyncWindow,
}

impl Default for Hotp {
    fn default() -> Self {
        Hotp {
            look_ahead: LookAhead(10),
            resync_window: ResyncWindow(1000),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Login {
    /// Code tries per login before `PAM_MAXTRIES`.
    pub max_tries: MaxTries,
    /// Seconds an unfinished login may wait for its next answer.
    pub session_timeout: SessionTimeout,
    /// Unfinished logins one user may have at once.
    pub max_sessions_per_user: MaxSessions,
    /// A user who must use MFA but has no authenticator enrolls during the login (a QR code,
    /// then a code from the app); off: such a user is denied and told how to enroll.
    pub enroll_at_login: bool,
    /// Codes from the app that confirm an enrollment: 1, or 2 consecutive ones.
    pub enroll_confirm_codes: ConfirmCodes,
    /// Minutes an unfinished enrollment is offered again, with the same secret, at the user's
    /// next login (a login cut off after the QR code, by sshd's LoginGraceTime say).
    pub enroll_resume_minutes: ResumeMinutes,
    /// The terminal background QR codes are drawn for.
    pub qr_background: QrBackground,
    /// Recovery codes issued with each enrollment; 0 issues none.
    pub recovery_codes: RecoveryCodes,
}

/// The terminal background a QR code is drawn for: its dark modules are drawn in the
/// background colour and its light ones in the text colour, so it scans as a dark-on-light
/// code. Drawn for the wrong one it appears inverted, which some apps cannot read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QrBackground {
    Dark,
    Light,
}

/// Where MFA is required. See [`PRECEDENCE`] for how these combine with the exemptions and
/// the switches `mfactl enforce` keeps in the store.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Enforcement {
    /// Require MFA of every user until `mfactl enforce --all` says otherwise.
    pub all_users: bool,
    /// Require MFA of the members of these Unix groups (the system's group database decides,
    /// supplementary groups included, so LDAP and SSSD groups count).
    pub groups: Vec<Spanned<Name>>,
    /// Require MFA of every user logging in through these PAM services.
    pub services: Vec<Spanned<Name>>,
}

/// Logins that never ask for a second factor, whatever else applies.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Exemptions {
    /// Users never asked (break-glass accounts).
    pub users: Vec<Spanned<Name>>,
    /// Members of these groups are never asked.
    pub groups: Vec<Spanned<Name>>,
    /// Logins through these PAM services are never asked.
    pub services: Vec<Spanned<Name>>,
    /// Logins from these remote hosts are never asked: IP addresses, networks in CIDR
    /// notation, or "local" for logins that name no remote host (the console, su, sudo).
    pub networks: Vec<Spanned<Network>>,
}

/// Remembered logins: after a right code, the same user's logins through the same service
/// from the same remote host skip the code for a while.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Remember {
    /// Seconds a right code is remembered after the last login it covered; 0: off.
    pub duration: RememberSeconds,
    /// The same, per PAM service, in place of `duration`.
    pub services: BTreeMap<Spanned<Name>, RememberSeconds>,
    /// Seconds after the right code past which a code is asked again, however often the
    /// remembered login was used since.
    pub limit: Spanned<RememberLimit>,
}

impl Default for Remember {
    fn default() -> Self {
        Remember {
            duration: RememberSeconds(0),
            services: BTreeMap::new(),
            limit: Spanned::new(0..0, RememberLimit(30 * 86_400)),
        }
    }
}

impl Remember {
    /// Seconds after the right code past which a code is asked again.
    pub fn limit(&self) -> u32 {
        self.limit.get_ref().get()
    }

    /// Seconds logins through `service` are remembered; 0: not at all.
    pub fn duration_for(&self, service: &str) -> u32 {
        self.services
            .iter()
            .find(|(name, _)| name.get_ref().as_str() == service)
            .map_or(self.duration, |(_, seconds)| *seconds)
            .get()
    }
}

/// How the rules combine; stated once, here, and shown by `mfactl explain`.
pub const PRECEDENCE: &str = "\
A login is exempt, and asked for no code, if the user is in exemptions.users or in a group
of exemptions.groups, or logs in through a service of exemptions.services or from a network
of exemptions.networks. Otherwise MFA is required if the first of these that holds says so:
every user (mfactl enforce --all on, else enforcement.all_users), the service is in
enforcement.services, the user's own switch (mfactl enforce USER on), the user is in a group
of enforcement.groups. Otherwise it is not required: a user with an authenticator app is
still asked for a code, one without logs in without.";

/// A user, group or service name in a rule: not empty, no white space, no control
/// characters, at most 256 bytes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(try_from = "String")]
pub struct Name(String);

impl Name {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Name {
    type Error = String;

    fn try_from(name: String) -> Result<Self, String> {
        if name.is_empty() {
            return Err("an empty name matches nothing: remove it or write the name".into());
        }
        if name.len() > 256 || name.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!(
                "{name:.64?} is not a name: no spaces or control characters, at most 256 bytes"
            ));
        }
        Ok(Name(name))
    }
}

/// Where a login comes from, as a rule names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Network {
    /// No remote host (PAM_RHOST empty or unset): the console, su, sudo.
    Local,
    /// An address and the number of leading bits that must match it.
    Prefix(IpAddr, u8),
}

impl Network {
    /// Whether a login from `rhost` (PAM_RHOST as the module passed it) comes from here. A
    /// host name (sshd with `UseDNS yes`) matches no address or network.
    pub fn contains(&self, rhost: &str) -> bool {
        match *self {
            Network::Local => rhost.is_empty(),
            Network::Prefix(network, bits) => {
                let Ok(address) = rhost.parse::<IpAddr>() else {
                    return false;
                };
                match (network, address.to_canonical()) {
                    (IpAddr::V4(network), IpAddr::V4(address)) => {
                        let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
                        u32::from(network) & mask == u32::from(address) & mask
                    }
                    (IpAddr::V6(network), IpAddr::V6(address)) => {
                        let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
                        u128::from(network) & mask == u128::from(address) & mask
                    }
                    _ => false,
                }
            }
        }
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Network::Local => f.write_str("local"),
            Network::Prefix(address, bits) => write!(f, "{address}/{bits}"),
        }
    }
}

impl<'de> Deserialize<'de> for Network {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Network::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl Network {
    pub fn parse(text: &str) -> Result<Network, String> {
        if text == "local" {
            return Ok(Network::Local);
        }
        let bad = || {
            format!(
                "{text:.64?} is not a network: write an IP address (192.0.2.7, 2001:db8::7), \
                 a network (192.0.2.0/24, 2001:db8::/32) or \"local\""
            )
        };
        let (address, bits) = match text.split_once('/') {
            Some((address, bits)) => (address, Some(bits)),
            None => (text, None),
        };
        let address: IpAddr = address.parse().map_err(|_| bad())?;
        // A remote host written so is matched as the IPv4 address it is (see `contains`): a
        // network written so would match nothing.
        if let IpAddr::V6(v6) = address
            && let Some(v4) = v6.to_ipv4_mapped()
        {
            return Err(format!(
                "{text:.64?} is an IPv4 address written as IPv6, which matches no login: write \
                 {v4} and a prefix 96 bits shorter"
            ));
        }
        let width = if address.is_ipv4() { 32 } else { 128 };
        let bits = match bits {
            None => width,
            Some(bits) => bits
                .parse::<u8>()
                .ok()
                .filter(|bits| *bits <= width)
                .ok_or_else(bad)?,
        };
        // A network written with host bits set (10.0.0.1/8) is most likely a typo.
        if !host_bits_clear(address, bits) {
            return Err(format!(
                "{text:?} has bits set beyond its /{bits} prefix: write the network's first \
                 address"
            ));
        }
        Ok(Network::Prefix(address, bits))
    }
}

fn host_bits_clear(address: IpAddr, bits: u8) -> bool {
    match address {
        IpAddr::V4(address) => {
            u32::from(address) & !u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0) == 0
        }
        IpAddr::V6(address) => {
            u128::from(address) & !u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0) == 0
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            state_dir: PathBuf::from(DEFAULT_STATE_DIR),
            admin_group: String::new(),
            lookup_timeout: LookupTimeout(3),
            login_socket: PathBuf::from(DEFAULT_LOGIN_SOCKET),
            sealing_key_file: PathBuf::from(DEFAULT_SEALING_KEY_FILE),
            totp: Totp::default(),
            hotp: Hotp::default(),
            login: Login::default(),
            lockout: Lockout::default(),
            audit: Audit::default(),
            enforcement: Enforcement::default(),
            exemptions: Exemptions::default(),
            remember: Remember::default(),
            store: StoreSettings::default(),
            contacts: Contacts::default(),
            email: Email::default(),
            sms: Sms::default(),
        }
    }
}

impl Default for Totp {
    fn default() -> Self {
        Totp {
            algorithm: Algorithm::Sha1,
            digits: Digits(6),
            period: Period(30),
            window: Window(1),
            issuer: String::new(),
        }
    }
}

impl Default for Login {
    fn default() -> Self {
        Login {
            max_tries: MaxTries(3),
            session_timeout: SessionTimeout(120),
            max_sessions_per_user: MaxSessions(32),
            enroll_at_login: true,
            enroll_confirm_codes: ConfirmCodes(1),
            enroll_resume_minutes: ResumeMinutes(10),
            qr_background: QrBackground::Dark,
            recovery_codes: RecoveryCodes(10),
        }
    }
}

/// The HMAC of a TOTP enrollment (RFC 6238 allows SHA1, SHA256 and SHA512).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Algorithm {
    #[serde(rename = "SHA1")]
    Sha1,
    #[serde(rename = "SHA256")]
    Sha256,
    #[serde(rename = "SHA512")]
    Sha512,
}

impl Algorithm {
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Sha1 => "SHA1",
            Algorithm::Sha256 => "SHA256",
            Algorithm::Sha512 => "SHA512",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "SHA1" => Some(Algorithm::Sha1),
            "SHA256" => Some(Algorithm::Sha256),
            "SHA512" => Some(Algorithm::Sha512),
            _ => None,
        }
    }
}

/// Reads the path of `key`, which must be absolute (`why` says more). Checking it while
/// deserializing, rather than after, lets the TOML parser name the line of a relative path as
/// it does for every other error.
fn required_absolute<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
    key: &str,
    why: &str,
) -> Result<PathBuf, D::Error> {
    let path = PathBuf::deserialize(deserializer)?;
    if path.is_absolute() {
        Ok(path)
    } else {
        Err(serde::de::Error::custom(format!(
            "{key} must be an absolute path{why}, not {path:?}"
        )))
    }
}

fn absolute_path<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<PathBuf, D::Error> {
    required_absolute(deserializer, "state_dir", "")
}

/// The login socket's path: the one way logins reach mfad.
fn login_socket_path<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<PathBuf, D::Error> {
    required_absolute(
        deserializer,
        "login_socket",
        " (logins reach mfad only there)",
    )
}

/// "" (none), "email" or "phone", with its place in the file.
fn optional_contact_kind<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Spanned<Option<ContactKind>>, D::Error> {
    let text = Spanned::<String>::deserialize(deserializer)?;
    let kind = match text.get_ref().as_str() {
        "" => None,
        name => Some(ContactKind::from_name(name).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "contacts.at_enrollment must be \"email\", \"phone\" or \"\", not {name:?}"
            ))
        })?),
    };
    Ok(Spanned::new(text.span(), kind))
}

fn sendmail_path<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<PathBuf, D::Error> {
    required_absolute(deserializer, "email.sendmail", "")
}

fn sealing_key_path<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<PathBuf, D::Error> {
    required_absolute(deserializer, "sealing_key_file", "")
}

/// Reads a path that must be absolute; empty or absent: none.
fn absolute_file<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<PathBuf>, D::Error> {
    let path = PathBuf::deserialize(deserializer)?;
    if path.as_os_str().is_empty() {
        Ok(None)
    } else if path.is_absolute() {
        Ok(Some(path))
    } else {
        Err(serde::de::Error::custom(format!(
            "expected an absolute path, not {path:?}"
        )))
    }
}

/// Declares a validated integer setting: deserializing an out-of-range value fails with a
/// message naming the range, and the TOML parser adds the key and line.
macro_rules! bounded {
    ($(#[$doc:meta])* $name:ident, $min:expr, $max:expr, $what:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
        #[serde(try_from = "i64")]
        pub struct $name(u32);

        impl $name {
            pub const MIN: u32 = $min;
            pub const MAX: u32 = $max;

            pub fn get(self) -> u32 {
                self.0
            }
        }

        impl TryFrom<i64> for $name {
            type Error = String;

            fn try_from(value: i64) -> Result<Self, String> {
                if (i64::from($min)..=i64::from($max)).contains(&value) {
                    Ok($name(value as u32))
                } else {
                    Err(format!(
                        "{} must be between {} and {}, not {}",
                        $what, $min, $max, value
                    ))
                }
            }
        }
    };
}

bounded!(
    /// Digits of a code.
    Digits, 6, 8, "digits");
bounded!(
    /// Seconds per time step.
    Period, 15, 120, "period (seconds)");
bounded!(
    /// Steps either side of now.
    Window, 0, 10, "window (time steps)");
bounded!(
    /// Counter values a HOTP code is looked for in.
    LookAhead, 1, 100, "hotp.look_ahead (counter values)");
bounded!(
    /// Counter values beyond the look-ahead in which two codes in a row resynchronise.
    ResyncWindow, 10, 10_000, "hotp.resync_window (counter values)");
bounded!(MaxTries, 1, 10, "max_tries");
bounded!(SessionTimeout, 10, 3600, "session_timeout (seconds)");
bounded!(MaxSessions, 1, 1024, "max_sessions_per_user");
bounded!(ConfirmCodes, 1, 2, "enroll_confirm_codes");
bounded!(LookupTimeout, 1, 60, "lookup_timeout (seconds)");
bounded!(LockoutFailures, 1, 100, "lockout.failures");
bounded!(LockoutSeconds, 10, 604_800, "lockout seconds");
bounded!(RetentionDays, 1, 36_500, "audit.retention_days");
bounded!(ResumeMinutes, 1, 1440, "enroll_resume_minutes");
bounded!(RecoveryCodes, 0, 20, "recovery_codes");
bounded!(RememberSeconds, 0, 2_592_000, "remember (seconds)");
bounded!(RememberLimit, 60, 7_776_000, "remember.limit (seconds)");
bounded!(StoreTimeout, 1, 60, "store.timeout (seconds)");
bounded!(CodeLifetime, 60, 3600, "contacts.code_lifetime (seconds)");
bounded!(
    /// Digits of a code sent to a contact: 8 would look like a recovery code imported from
    /// google-authenticator (its scratch codes), which a login tells apart by its length.
    ContactDigits, 6, 7, "contacts.code_digits");
bounded!(ResendSeconds, 10, 3600, "contacts.resend_after (seconds)");
bounded!(MaxContacts, 1, 10, "contacts.max_per_user");
bounded!(
    DeliveryTimeout,
    1,
    30,
    "contacts.delivery_timeout (seconds)"
);

/// Whether a connection string carries a password: `password=` in the key=value form, or in
/// a URI the user information's `user:password@` (up to the first "@", as libpq-style parsers
/// read it) or a `password` query parameter (its name percent-decoded).
pub fn carries_password(url: &str) -> bool {
    let url = url.trim();
    let is_password = |key: &str| percent_decoded(key.trim()).eq_ignore_ascii_case("password");
    if let Some(rest) = url
        .strip_prefix("postgresql://")
        .or_else(|| url.strip_prefix("postgres://"))
    {
        if rest
            .split_once('@')
            .is_some_and(|(userinfo, _)| userinfo.contains(':'))
        {
            return true;
        }
        let query = rest.split_once('?').map_or("", |(_, query)| query);
        return query
            .split('&')
            .any(|pair| is_password(pair.split('=').next().unwrap_or("")));
    }
    // key=value pairs, with or without spaces around "=".
    url.split('=')
        .filter_map(|before| before.split_whitespace().last())
        .any(is_password)
}

/// `text` with its %XX escapes decoded (others kept as they are).
fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let hex = |at: usize| bytes.get(at).and_then(|byte| (*byte as char).to_digit(16));
        match (bytes[index], hex(index + 1), hex(index + 2)) {
            (b'%', Some(high), Some(low)) => {
                out.push((high * 16 + low) as u8);
                index += 3;
            }
            (byte, _, _) => {
                out.push(byte);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A configuration file that could not be used.
#[derive(Debug)]
pub enum Error {
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    Invalid {
        path: PathBuf,
        message: String,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Read { path, error } => write!(f, "cannot read {}: {error}", path.display()),
            Error::Invalid { path, message } => {
                write!(
                    f,
                    "{} is not a valid mfad configuration:\n{message}",
                    path.display()
                )
            }
        }
    }
}

impl std::error::Error for Error {}

impl Config {
    /// Reads `path`; a file that does not exist gives the defaults.
    pub fn load(path: &Path) -> Result<Config, Error> {
        match std::fs::read_to_string(path) {
            Ok(text) => Config::parse(&text).map_err(|message| Error::Invalid {
                path: path.to_owned(),
                message,
            }),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(Config::default()),
            Err(error) => Err(Error::Read {
                path: path.to_owned(),
                error,
            }),
        }
    }

    /// Reads `path`, which must exist: for checking a file an administrator named, where a
    /// missing file is a mistake (a typo in the path), not a request for the defaults.
    pub fn load_existing(path: &Path) -> Result<Config, Error> {
        let text = std::fs::read_to_string(path).map_err(|error| Error::Read {
            path: path.to_owned(),
            error,
        })?;
        Config::parse(&text).map_err(|message| Error::Invalid {
            path: path.to_owned(),
            message,
        })
    }

    /// Parses and validates configuration text; the error names the key and line.
    ///
    /// Every check runs while the TOML is deserialized (unknown keys, types, ranges, absolute
    /// paths), so every error carries the line it is about.
    pub fn parse(text: &str) -> Result<Config, String> {
        let config: Config = toml::from_str(text).map_err(|error| error.to_string())?;
        config.check_rules(text)?;
        Ok(config)
    }

    /// The [store] keys that go together: a database named once, a password never in this
    /// file (which every user may read).
    fn check_store(
        &self,
        at: &dyn Fn(std::ops::Range<usize>, String) -> String,
    ) -> Result<(), String> {
        let store = &self.store;
        let url = store.url.get_ref();
        match store.kind.get_ref() {
            StoreKind::Sqlite => {
                if !url.is_empty() || store.url_file.is_some() || store.ca_file.is_some() {
                    return Err(at(
                        store.kind.span(),
                        "store.url, url_file and ca_file are for kind = \"postgres\"; the \
                         SQLite store lives in state_dir"
                            .into(),
                    ));
                }
            }
            StoreKind::Postgres => match (url.is_empty(), &store.url_file) {
                (true, None) => {
                    return Err(at(
                        store.kind.span(),
                        "kind = \"postgres\" needs the database: set store.url, or \
                         store.url_file"
                            .into(),
                    ));
                }
                (false, Some(_)) => {
                    return Err(at(
                        store.url.span(),
                        "store.url and store.url_file both name the database: keep one".into(),
                    ));
                }
                _ => {}
            },
        }
        if carries_password(url) {
            return Err(at(
                store.url.span(),
                "store.url holds a password, and this file is readable by every user: put \
                 the connection string in store.url_file (mode 0600) instead"
                    .into(),
            ));
        }
        if store.ca_file.is_some() && store.tls != Tls::VerifyFull {
            return Err(at(
                store.kind.span(),
                "store.ca_file is used only with tls = \"verify-full\"".into(),
            ));
        }
        Ok(())
    }

    /// The [contacts] keys and the channels they need.
    fn check_contacts(
        &self,
        at: &dyn Fn(std::ops::Range<usize>, String) -> String,
    ) -> Result<(), String> {
        let contacts = &self.contacts;
        for (index, kind) in contacts.kinds.iter().enumerate() {
            if contacts.kinds[..index].contains(kind) {
                return Err(at(
                    kind.span(),
                    format!("contacts.kinds lists {} twice", kind.get_ref().name()),
                ));
            }
        }
        let command = self.sms.command.get_ref();
        let url = self.sms.url.get_ref();
        let phone = (contacts.kinds.iter()).find(|kind| *kind.get_ref() == ContactKind::Phone);
        match self.sms.via.get_ref() {
            SmsVia::Command => {
                if let Some(phone) = phone
                    && command.is_empty()
                {
                    return Err(at(
                        phone.span(),
                        "contacts.kinds has \"phone\": set sms.command, the program that sends \
                         a text message (or sms.via = \"http\" and sms.url)"
                            .into(),
                    ));
                }
            }
            SmsVia::Http => {
                if !url.starts_with("https://") || url.len() <= "https://".len() {
                    return Err(at(
                        self.sms.via.span(),
                        format!(
                            "sms.via = \"http\" needs sms.url, the gateway's https:// address \
                             (not {url:?}): codes never travel unencrypted"
                        ),
                    ));
                }
            }
        }
        if *self.email.via.get_ref() == EmailVia::Smtp {
            let email = &self.email;
            if email.server.is_empty()
                || !email
                    .server
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
            {
                return Err(at(
                    email.via.span(),
                    format!(
                        "email.via = \"smtp\" needs email.server, the host name of the mail \
                         server (not {:?})",
                        email.server
                    ),
                ));
            }
            if email.from.is_empty() {
                return Err(at(
                    email.via.span(),
                    "email.via = \"smtp\" needs email.from, the sender address of the messages"
                        .into(),
                ));
            }
        }
        if let Some(program) = command.first()
            && !Path::new(program).is_absolute()
        {
            return Err(at(
                self.sms.command.span(),
                format!("sms.command must start with the program's absolute path, not {program:?}"),
            ));
        }
        if contacts.kinds.is_empty()
            && (contacts.at_login
                || !contacts.at_login_services.is_empty()
                || !contacts.at_login_groups.is_empty())
        {
            return Err(at(
                contacts
                    .at_login_services
                    .first()
                    .map_or(0..0, |name| name.span()),
                "contacts.at_login needs contacts.kinds: no user can have a contact to send \
                 codes to"
                    .into(),
            ));
        }
        if let Some(kind) = contacts.at_enrollment.get_ref()
            && !contacts.allows(*kind)
        {
            return Err(at(
                contacts.at_enrollment.span(),
                format!(
                    "contacts.at_enrollment asks for a contact of kind {0}, which \
                     contacts.kinds does not list: add \"{0}\" there",
                    kind.name()
                ),
            ));
        }
        for service in &contacts.at_login_services {
            let name = service.get_ref().as_str();
            if name.chars().any(|c| c.is_uppercase()) {
                return Err(at(
                    service.span(),
                    format!(
                        "PAM service names are lowercase (Linux-PAM lowercases them): write {}, \
                         not {name}",
                        name.to_lowercase()
                    ),
                ));
            }
        }
        let from = &self.email.from;
        if from.chars().any(|c| c.is_control() || c.is_whitespace())
            || (!from.is_empty() && !from.contains('@'))
        {
            return Err(format!(
                "email.from must be one address (name@domain), without spaces or line breaks, \
                 not {from:?}"
            ));
        }
        Ok(())
    }

    /// The checks that span several keys: a name required and exempt at once, a name listed
    /// twice, remembering logins that never ask. Each error names the line of the value.
    fn check_rules(&self, text: &str) -> Result<(), String> {
        let at = |span: std::ops::Range<usize>, message: String| {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            let source = text.lines().nth(line - 1).unwrap_or("");
            format!(
                "TOML parse error at line {line}, column {column}\n  |\n{line:>2} | {source}\n  |\n{message}\n"
            )
        };
        let lists: [(&str, &[Spanned<Name>]); 5] = [
            ("enforcement.groups", &self.enforcement.groups),
            ("enforcement.services", &self.enforcement.services),
            ("exemptions.users", &self.exemptions.users),
            ("exemptions.groups", &self.exemptions.groups),
            ("exemptions.services", &self.exemptions.services),
        ];
        for (key, list) in lists {
            for (index, name) in list.iter().enumerate() {
                if list[..index].iter().any(|earlier| earlier == name) {
                    return Err(at(
                        name.span(),
                        format!("{key} lists {} twice", name.get_ref()),
                    ));
                }
            }
        }
        let contradictions = [
            ("group", &self.enforcement.groups, &self.exemptions.groups),
            (
                "service",
                &self.enforcement.services,
                &self.exemptions.services,
            ),
        ];
        for (what, required, exempt) in contradictions {
            for name in exempt {
                if required.iter().any(|r| r == name) {
                    return Err(at(
                        name.span(),
                        format!(
                            "{what} {} is both required (enforcement.{what}s) and exempt \
                             (exemptions.{what}s): an exemption wins, so say which you mean",
                            name.get_ref()
                        ),
                    ));
                }
            }
        }
        for (index, network) in self.exemptions.networks.iter().enumerate() {
            if self.exemptions.networks[..index].contains(network) {
                return Err(at(
                    network.span(),
                    format!("exemptions.networks lists {} twice", network.get_ref()),
                ));
            }
        }
        for (service, seconds) in &self.remember.services {
            if seconds.get() > 0 && self.exemptions.services.contains(service) {
                return Err(at(
                    service.span(),
                    format!(
                        "remember.services.{0}: logins through {0} are exempt \
                         (exemptions.services) and never asked for a code to remember",
                        service.get_ref()
                    ),
                ));
            }
        }
        let longest = (self.remember.services.values())
            .chain([&self.remember.duration])
            .map(|seconds| seconds.get())
            .max()
            .unwrap_or(0);
        if longest > self.remember.limit() {
            return Err(at(
                self.remember.limit.span(),
                format!(
                    "remember.limit ({} s) is shorter than a remember duration ({longest} s): \
                     no login would be remembered that long; raise the limit or shorten the \
                     duration",
                    self.remember.limit()
                ),
            ));
        }
        // Linux-PAM lowercases the service name an application gives: "SSHD" would match no
        // login, and a rule that matches nothing must not pass for one that works.
        let services = (self.enforcement.services.iter())
            .chain(&self.exemptions.services)
            .chain(self.remember.services.keys());
        for service in services {
            let name = service.get_ref().as_str();
            if name.chars().any(|c| c.is_uppercase()) {
                return Err(at(
                    service.span(),
                    format!(
                        "PAM service names are lowercase (Linux-PAM lowercases them): write {}, \
                         not {name}",
                        name.to_lowercase()
                    ),
                ));
            }
        }
        self.check_store(&at)?;
        self.check_contacts(&at)?;
        for network in &self.exemptions.networks {
            if let Network::Prefix(_, 0) = network.get_ref() {
                return Err(at(
                    network.span(),
                    format!(
                        "{} exempts every remote address: to require MFA of no remote login, \
                         remove the rules that require it instead",
                        network.get_ref()
                    ),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_text_gives_the_defaults() {
        assert_eq!(Config::parse("").unwrap(), Config::default());
    }

    #[test]
    fn the_example_config_parses_to_the_defaults() {
        let example = include_str!("../../examples/mfad.toml");
        assert_eq!(Config::parse(example).unwrap(), Config::default());
    }

    #[test]
    fn the_store_is_named_once_and_without_a_password() {
        let config = Config::parse(
            "[store]\nkind = \"postgres\"\nurl = \"host=/run/postgresql dbname=pam_mfa\"\n\
             tls = \"disable\"\ntimeout = 2\nhost_name = \"web1\"\n",
        )
        .unwrap();
        assert_eq!(*config.store.kind.get_ref(), StoreKind::Postgres);
        assert_eq!(config.store.tls, Tls::Disable);
        assert_eq!(config.store.timeout.get(), 2);
        let refused = |text: &str, says: &str| {
            let error = Config::parse(text).unwrap_err();
            assert!(error.contains(says), "{text}: {error}");
            assert!(error.contains("line "), "{text}: {error}");
        };
        refused("[store]\nkind = \"postgres\"\n", "needs the database");
        refused(
            "[store]\nkind = \"postgres\"\nurl = \"dbname=a\"\nurl_file = \"/etc/u\"\n",
            "keep one",
        );
        refused("[store]\nurl = \"dbname=a\"\n", "for kind = \"postgres\"");
        refused(
            "[store]\nkind = \"postgres\"\nurl = \"dbname=a password=hunter2\"\n",
            "url_file",
        );
        refused(
            "[store]\nkind = \"postgres\"\nurl = \"postgresql://mfad:hunter2@db/pam_mfa\"\n",
            "url_file",
        );
        refused(
            "[store]\nkind = \"postgres\"\nurl_file = \"etc/url\"\n",
            "absolute path",
        );
        refused("[store]\nkind = \"mysql\"\n", "unknown variant");
        refused(
            "[store]\nkind = \"postgres\"\nurl = \"dbname=a\"\ntls = \"on\"\n",
            "tls",
        );
        refused(
            "[store]\nkind = \"postgres\"\nurl = \"dbname=a\"\ntls = \"require\"\n\
             ca_file = \"/etc/ca.pem\"\n",
            "verify-full",
        );
        // A user name in a URI is no password.
        assert!(!carries_password(
            "postgresql://mfad@db.example.org/pam_mfa"
        ));
        assert!(!carries_password("host=db dbname=passwords user=mfad"));
        for url in [
            "host=db password = x",
            "host=db password=x",
            "host=db PASSWORD=x",
            "postgresql://mfad:pa/ss@db/pam_mfa",
            "postgresql://mfad:a?b@db/x",
            "postgres://db/pam_mfa?user=mfad&password=x",
            "postgresql://db/pam_mfa?%70assword=x",
        ] {
            assert!(carries_password(url), "{url}");
        }
    }

    #[test]
    fn values_are_read() {
        let config = Config::parse(
            "state_dir = \"/tmp/x\"\n[totp]\nalgorithm = \"SHA512\"\ndigits = 8\nwindow = 2\n\
             [login]\nmax_tries = 5\n[enforcement]\nall_users = true\n",
        )
        .unwrap();
        assert_eq!(config.state_dir, PathBuf::from("/tmp/x"));
        assert_eq!(config.totp.algorithm, Algorithm::Sha512);
        assert_eq!(config.totp.digits.get(), 8);
        assert_eq!(config.totp.window.get(), 2);
        assert_eq!(config.login.max_tries.get(), 5);
        assert!(config.enforcement.all_users);
    }

    #[test]
    fn unknown_keys_are_named_with_their_line() {
        let error = Config::parse("[totp]\ndigits = 6\nwindoww = 1\n").unwrap_err();
        assert!(error.contains("line 3"), "{error}");
        assert!(error.contains("windoww"), "{error}");
    }

    #[test]
    fn out_of_range_values_are_named_with_their_line() {
        let error = Config::parse("[totp]\n\ndigits = 9\n").unwrap_err();
        assert!(error.contains("line 3"), "{error}");
        assert!(
            error.contains("digits must be between 6 and 8, not 9"),
            "{error}"
        );
        let error = Config::parse("[login]\nmax_tries = 0\n").unwrap_err();
        assert!(error.contains("line 2"), "{error}");
        assert!(error.contains("max_tries"), "{error}");
    }

    #[test]
    fn wrong_types_and_algorithms_are_refused() {
        let error = Config::parse("[totp]\nalgorithm = \"MD5\"\n").unwrap_err();
        assert!(error.contains("line 2") && error.contains("MD5"), "{error}");
        let error = Config::parse("[enforcement]\nall_users = \"yes\"\n").unwrap_err();
        assert!(error.contains("line 2"), "{error}");
    }

    #[test]
    fn relative_state_dir_is_refused_with_its_line() {
        let error =
            Config::parse("# where the store lives\n\nstate_dir = \"state\"\n").unwrap_err();
        assert!(error.contains("line 3"), "{error}");
        assert!(
            error.contains("state_dir must be an absolute path, not \"state\""),
            "{error}"
        );
    }

    /// Whatever is wrong, the administrator is told where.
    #[test]
    fn every_invalid_config_names_its_line() {
        let cases = [
            ("\n\nstate_dir = \"\"\n", 3, "absolute path"),
            (
                "[totp]\nissuer = \"x\"\n\n\nstate_dir = \"/abs\"\n",
                5,
                "state_dir",
            ),
            ("state_dir = 5\n", 1, "state_dir"),
            (
                "\nsealing_key_file = \"keys\"\n",
                2,
                "sealing_key_file must be an absolute path",
            ),
            (
                "state_dir = \"rel/a\"\n[totp]\ndigits = 6\n",
                1,
                "absolute path",
            ),
            ("[login]\nsession_timeout = 5\n", 2, "between 10 and 3600"),
            (
                "[login]\nmax_sessions_per_user = 0\n",
                2,
                "max_sessions_per_user",
            ),
            ("[totp]\nperiod = 300\n", 2, "period"),
            ("[totp]\nwindow = -1\n", 2, "window"),
            ("[totp]\nissuer = 3\n", 2, "string"),
            (
                "[enforcement]\nall_users = true\nall_users = false\n",
                3,
                "duplicate",
            ),
            ("[totp]\ndigits = \n", 2, ""),
            ("[tot]\n", 1, "tot"),
            ("[login]\nenroll_confirm_codes = 3\n", 2, "between 1 and 2"),
            (
                "[login]\nenroll_resume_minutes = 0\n",
                2,
                "enroll_resume_minutes",
            ),
            ("[login]\nrecovery_codes = 21\n", 2, "between 0 and 20"),
            ("[login]\nqr_background = \"blue\"\n", 2, "dark"),
            ("[login]\nenroll_at_login = 1\n", 2, "bool"),
            ("[enforcement]\ngroups = [\"\"]\n", 2, "empty name"),
            (
                "[enforcement]\ngroups = [\"wheel\"]\n[exemptions]\ngroups = [\"x\", \"wheel\"]\n",
                4,
                "group wheel is both required (enforcement.groups) and exempt",
            ),
            (
                "[enforcement]\nservices = [\"sshd\"]\n\n[exemptions]\nservices = [\"sshd\"]\n",
                5,
                "service sshd is both required",
            ),
            ("[exemptions]\nnetworks = [\"10.0.0.1/8\"]\n", 2, "bits set"),
            (
                "[exemptions]\nnetworks = [\"10.0.0.0/33\"]\n",
                2,
                "not a network",
            ),
            (
                "[exemptions]\nnetworks = [\"bastion\"]\n",
                2,
                "not a network",
            ),
            (
                "[exemptions]\nnetworks = [\"local\",\n  \"local\"]\n",
                3,
                "twice",
            ),
            (
                "[exemptions]\nservices = [\"login\"]\n[remember.services]\nlogin = 60\n",
                4,
                "are exempt",
            ),
            (
                "[remember]\nduration = 7200\nlimit = 3600\n",
                3,
                "remember.limit (3600 s) is shorter",
            ),
            (
                "[remember]\nduration = 2592001\n",
                2,
                "between 0 and 2592000",
            ),
            (
                "[exemptions]\nuser = [\"root\"]\n",
                2,
                "unknown field `user`",
            ),
            (
                "[remember]\nduration = 7200\n\n[remember]\n",
                4,
                "duplicate",
            ),
            (
                "remember = { duration = 7200, limit = 3600 }\n",
                1,
                "remember.limit (3600 s) is shorter",
            ),
            (
                "\n[enforcement]\nservices = [\"SSHD\"]\n",
                3,
                "write sshd, not SSHD",
            ),
            (
                "[remember.services]\nsshd = 60\nSudo = 60\n",
                3,
                "write sudo, not Sudo",
            ),
            (
                "[exemptions]\nnetworks = [\"::/0\"]\n",
                2,
                "exempts every remote",
            ),
            (
                "[enforcement]\nservices = [\"sshd\", \"sshd\"]\n",
                2,
                "lists sshd twice",
            ),
            ("[exemptions]\nusers = [\"a b\"]\n", 2, "not a name"),
        ];
        for (text, line, fragment) in cases {
            let error = Config::parse(text).unwrap_err();
            assert!(
                error.contains(&format!("line {line},")),
                "{text:?} should name line {line}:\n{error}"
            );
            assert!(error.contains(fragment), "{text:?}:\n{error}");
        }
    }

    #[test]
    fn rules_are_read() {
        let config = Config::parse(
            "[enforcement]\ngroups = [\"wheel\", \"sudo\"]\nservices = [\"sshd\"]\n\
             [exemptions]\nusers = [\"rescue\"]\nnetworks = [\"local\", \"192.0.2.0/24\", \
             \"2001:db8::/32\", \"198.51.100.7\"]\n\
             [remember]\nduration = 600\n[remember.services]\nsshd = 3600\nsudo = 0\n",
        )
        .unwrap();
        let groups: Vec<&str> = (config.enforcement.groups.iter())
            .map(|g| g.get_ref().as_str())
            .collect();
        assert_eq!(groups, ["wheel", "sudo"]);
        assert_eq!(config.remember.duration_for("sshd"), 3600);
        assert_eq!(config.remember.duration_for("sudo"), 0);
        assert_eq!(config.remember.duration_for("su"), 600);
        let networks: Vec<Network> = (config.exemptions.networks.iter())
            .map(|n| *n.get_ref())
            .collect();
        let inside = |rhost: &str| networks.iter().any(|n| n.contains(rhost));
        assert!(inside(""));
        assert!(inside("192.0.2.200"));
        assert!(inside("::ffff:192.0.2.9"));
        assert!(inside("2001:db8:1::5"));
        assert!(inside("198.51.100.7"));
        assert!(!inside("198.51.100.8"));
        assert!(!inside("192.0.3.1"));
        assert!(!inside("2001:db9::1"));
        assert!(!inside("client.example.org"));
        assert!(Network::parse("0.0.0.0/1").unwrap().contains("103.0.113.1"));
        assert!(!Network::parse("0.0.0.0/1").unwrap().contains("203.0.113.1"));
        assert!(!Network::parse("0.0.0.0/1").unwrap().contains(""));
    }

    #[test]
    fn a_network_of_ipv4_addresses_written_as_ipv6_is_refused() {
        // Logins from ::ffff:192.0.2.9 are matched as from 192.0.2.9 (above); a rule written
        // in the same form would never match one.
        for text in ["::ffff:192.0.2.9", "::ffff:192.0.2.0/120", "::ffff:0:0/96"] {
            let error = Network::parse(text).unwrap_err();
            assert!(
                error.contains("IPv4 address written as IPv6"),
                "{text}: {error}"
            );
        }
        assert!(Network::parse("::/0").is_ok());
    }

    #[test]
    fn a_missing_file_means_defaults() {
        let config = Config::load(Path::new("/nonexistent/pam-mfa/mfad.toml")).unwrap();
        assert_eq!(config, Config::default());
    }

    #[test]
    fn a_missing_file_is_an_error_when_it_must_exist() {
        let error = Config::load_existing(Path::new("/nonexistent/pam-mfa/mfad.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("cannot read /nonexistent/pam-mfa/mfad.toml"),
            "{error}"
        );
    }
}
