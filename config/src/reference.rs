//! Every configuration key, described once: mfad.toml(5) and the example configuration
//! (examples/mfad.toml, installed as /etc/pam-mfa/mfad.toml) are both made from this list.
//!
//! The list is checked against the schema by the tests below: each section lists exactly the
//! keys the parser accepts there, each default shown is the value the parser gives when the key
//! is absent, and each range is the one the parser enforces (it is taken from the same
//! constants).

use crate::{
    CodeLifetime, ConfirmCodes, ContactDigits, DeliveryTimeout, Digits, LockoutFailures,
    LockoutSeconds, LookAhead, LookupTimeout, MaxContacts, MaxSessions, MaxTries, PRECEDENCE,
    Period, RecoveryCodes, RememberLimit, RememberSeconds, ResendSeconds, ResumeMinutes,
    ResyncWindow, RetentionDays, SessionTimeout, StoreTimeout, Window,
};

/// A table of mfad.toml (`""`: the keys before the first table).
pub struct Section {
    pub name: &'static str,
    /// Paragraphs shown before the section's keys.
    pub text: &'static [&'static str],
    pub keys: &'static [Key],
}

/// One key.
pub struct Key {
    pub name: &'static str,
    /// What the key holds when absent, as TOML. For a key of kind [`Kind::Table`], the heading
    /// of the table.
    pub default: &'static str,
    /// The values the parser accepts, for numbers.
    pub range: Option<Range>,
    pub kind: Kind,
    /// Paragraphs, separated by blank lines; line breaks inside a paragraph are not kept.
    pub text: &'static str,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `name = value`.
    Value,
    /// A table of `NAME = value` lines, one per name (`[remember.services]`).
    Table { entry: &'static str },
}

/// The range a number must fall in; `unit` names what it counts.
pub struct Range {
    pub min: u32,
    pub max: u32,
    pub unit: &'static str,
}

macro_rules! range {
    ($type:ty, $unit:expr) => {
        Some(Range {
            min: <$type>::MIN,
            max: <$type>::MAX,
            unit: $unit,
        })
    };
}

const fn key(name: &'static str, default: &'static str, text: &'static str) -> Key {
    Key {
        name,
        default,
        range: None,
        kind: Kind::Value,
        text,
    }
}

const fn number(
    name: &'static str,
    default: &'static str,
    range: Option<Range>,
    text: &'static str,
) -> Key {
    Key {
        name,
        default,
        range,
        kind: Kind::Value,
        text,
    }
}

/// Every section and key, in the order of the example configuration.
pub const SECTIONS: &[Section] = &[
    Section {
        name: "",
        text: &[],
        keys: &[
            key(
                "state_dir",
                "\"/var/lib/pam-mfa\"",
                "Directory of the SQLite store, created with mode 0700 (its files 0600). An \
                 absolute path. A change takes effect when mfad restarts, not at a reload.",
            ),
            key(
                "admin_group",
                "\"\"",
                "Members of this Unix group may administer pam-mfa with every administrative \
                 mfactl command (enforce, reset, unlock, enroll USER, import, status USER, \
                 users, explain, audit of everyone, reload) as root can; the system's group \
                 database decides, so LDAP and SSSD groups count. Empty: root only.",
            ),
            number(
                "lookup_timeout",
                "3",
                range!(LookupTimeout, "seconds"),
                "Seconds a lookup in the system's user and group databases may take before the \
                 request that needed it fails (LDAP or SSSD down); other users' logins go on. \
                 Keep it below the PAM module's timeout (5 seconds by default).",
            ),
            key(
                "login_socket",
                "\"/run/pam-mfa/login.socket\"",
                "Unix socket on which mfad serves logins to pam_mfa.so (its socket= argument \
                 names the same path), peer to peer: one connection and two calls per login, \
                 and the system bus plays no part, so a flood of the bus by a local user does \
                 not hold logins up. Its directory is created root-owned, mode 0755; the socket \
                 is mode 0666 (each caller is known by its peer credentials, and acts only on \
                 its own account unless it is root). Its directory and every directory above it \
                 must be owned by root and not writable by others (a root-owned sticky \
                 directory such as /tmp is accepted above it), as state_dir's: mfad does not \
                 start otherwise. A change takes effect when mfad restarts, \
                 not at a reload.\n\n\
                 Under systemd the socket is mfad.socket's (socket activation), with the same \
                 modes: systemd listens on it from boot, and mfad takes it as systemd passes \
                 it, which must be this path; mfad does not start otherwise. A change here goes \
                 with the same change of ListenStream= in a drop-in for mfad.socket.\n\n\
                 Each connection is served one call at a time, and only the login interface. \
                 One with a login waiting for its answer is closed after \
                 login.session_timeout (plus 5 seconds) without one, any other after 10 \
                 seconds; calls that move no login on do not count, and a connection begins at \
                 most 8 logins. One whose client says it carries a single login (pam_mfa.so \
                 does) is closed as soon as that login ends. A call longer than 8 KiB, or a handshake line longer than 512 \
                 bytes, closes the connection. Each uid may hold 16 connections to mfad \
                 (root: 1024), counting those over the bus, and all users but root 256 on this \
                 socket together, so that many uids cannot use up mfad's file descriptors; the \
                 last 64 of those are kept for each uid's first 2 connections, so that users \
                 who hold all they may leave room for other users' logins.",
            ),
            key(
                "sealing_key_file",
                "\"/etc/pam-mfa/sealing.key\"",
                "The keys that seal every secret in the store (XChaCha20-Poly1305): a file of \
                 root's, mode 0600, made with mfad --new-key PATH; an absolute path. Under \
                 systemd the keys may come instead as the encrypted credential sealing-key \
                 (LoadCredentialEncrypted=, made with systemd-creds encrypt), which is then \
                 used and this file is not read. mfad does not start without its keys, nor \
                 with keys that do not open what is stored, and says which. The last key in \
                 the file seals; every key opens what it sealed, so a new key is added, mfad \
                 seals every secret with it (at its start, or at mfactl reseal), and the older \
                 key may then be removed. Fleet mode: every host needs the same keys.",
            ),
        ],
    },
    Section {
        name: "totp",
        text: &[
            "The codes of authenticator apps (RFC 6238). algorithm, digits and period \
                 apply to new enrollments; each enrollment keeps the parameters it was made \
                 with.",
        ],
        keys: &[
            key(
                "algorithm",
                "\"SHA1\"",
                "HMAC of new enrollments: \"SHA1\", \"SHA256\" or \"SHA512\". Most \
                 authenticator apps honour only SHA1.",
            ),
            number(
                "digits",
                "6",
                range!(Digits, "digits"),
                "Digits per code, for new enrollments.",
            ),
            number(
                "period",
                "30",
                range!(Period, "seconds"),
                "Seconds per code, for new enrollments.",
            ),
            number(
                "window",
                "1",
                range!(Window, "time steps"),
                "Codes accepted on either side of the current time step, to allow for clock \
                 drift between the server and the phone. Each step widens the window a guess \
                 can hit.",
            ),
            key(
                "issuer",
                "\"\"",
                "Issuer name authenticator apps show next to the account. Empty: \"pam-mfa on \
                 HOSTNAME\".",
            ),
        ],
    },
    Section {
        name: "hotp",
        text: &[
            "Counter-based tokens (HOTP, RFC 4226): hardware tokens with a button (imported \
                 with mfactl import, or enrolled with mfactl enroll --hotp --secret), and apps \
                 set up for them (mfactl enroll --hotp). Their codes do not expire: each press \
                 moves the token's counter on, and a code is good until a later one is used. \
                 Logins with them are counted by the lockout like any other code.",
        ],
        keys: &[
            number(
                "look_ahead",
                "10",
                range!(LookAhead, "counter values"),
                "Codes looked for after the last one used: a token pressed this many times \
                 without a login is still accepted, and the codes it skipped stop working. \
                 Each value widens the window a guess can hit.",
            ),
            number(
                "resync_window",
                "1000",
                range!(ResyncWindow, "counter values"),
                "A token pressed more often than look_ahead without a login is brought back \
                 in step by two codes in a row found within this many values beyond the \
                 look-ahead: at a login (the first code is refused and the user is asked for \
                 the next one) or by mfactl resync.",
            ),
        ],
    },
    Section {
        name: "login",
        text: &["How a login asks for codes and sets up an authenticator app."],
        keys: &[
            number(
                "max_tries",
                "3",
                range!(MaxTries, "tries"),
                "Code tries per login; after the last wrong one the module returns \
                 PAM_MAXTRIES.",
            ),
            number(
                "session_timeout",
                "120",
                range!(SessionTimeout, "seconds"),
                "Seconds an unfinished login may wait for its next answer.",
            ),
            number(
                "max_sessions_per_user",
                "32",
                range!(MaxSessions, "logins"),
                "Unfinished logins one user may have at once; more are denied. A caller other \
                 than root (a screen locker, say) may hold 4 at once, whatever this says.",
            ),
            key(
                "enroll_at_login",
                "true",
                "A user who must use MFA but has no authenticator app sets one up during the \
                 login: a QR code, the secret and its otpauth:// URI, then a code from the app, \
                 then the recovery codes. With false, such a user is denied and told to ask for \
                 an enrollment (mfactl enroll); under PAM_SILENT (sudo), denied without the \
                 message.",
            ),
            number(
                "enroll_confirm_codes",
                "1",
                range!(ConfirmCodes, "codes"),
                "Codes from the app that confirm an enrollment: 1, or 2 consecutive ones (which \
                 proves that the phone's clock is right, at the cost of waiting for the app's \
                 next code).",
            ),
            number(
                "enroll_resume_minutes",
                "10",
                range!(ResumeMinutes, "minutes"),
                "Minutes an unfinished enrollment is offered again, with the same secret, at \
                 the user's next login. sshd ends a login after LoginGraceTime (120 seconds by \
                 default) and login after 60 seconds: a user who already scanned the QR code \
                 can finish next time.",
            ),
            key(
                "qr_background",
                "\"dark\"",
                "The terminal background QR codes are drawn for: \"dark\" or \"light\". Drawn \
                 for the wrong one, a QR code appears inverted, which some authenticator apps \
                 cannot read; the secret and the URI are always shown as text too.",
            ),
            number(
                "recovery_codes",
                "10",
                range!(RecoveryCodes, "codes"),
                "Recovery codes issued with each enrollment. Each is shown once, stored only as \
                 a salted hash, and accepted once in place of a code from the app. 0 issues \
                 none.",
            ),
        ],
    },
    Section {
        name: "lockout",
        text: &[
            "Too many wrong codes lock the account, across every service (and every host \
                 that shares this mfad), whatever code comes next, until the lock ends or an \
                 administrator runs mfactl unlock USER. A right code clears the count. The user \
                 is told until when, except under PAM_SILENT (sudo), which shows no message \
                 that comes with a denial.",
        ],
        keys: &[
            number(
                "failures",
                "5",
                range!(LockoutFailures, "codes"),
                "Codes from the app or recovery codes a user may try within lockout.window; one \
                 more locks the account.",
            ),
            number(
                "window",
                "300",
                range!(LockoutSeconds, "seconds"),
                "Seconds over which tries are counted.",
            ),
            number(
                "duration",
                "300",
                range!(LockoutSeconds, "seconds"),
                "Seconds the first lock lasts. A lock that follows another without a right code \
                 in between lasts twice as long as the one before, up to max_duration.",
            ),
            number(
                "max_duration",
                "86400",
                range!(LockoutSeconds, "seconds"),
                "The longest a lock lasts.",
            ),
        ],
    },
    Section {
        name: "audit",
        text: &["The audit trail kept in the store and read with mfactl audit."],
        keys: &[number(
            "retention_days",
            "365",
            range!(RetentionDays, "days"),
            "Days an entry is kept; older entries are removed at start-up and every hour. \
             syslog keeps its own copy.",
        )],
    },
    Section {
        name: "enforcement",
        text: &[
            "Who must use MFA where. The enforcement and exemption rules combine by one \
             precedence rule, which mfactl explain USER --service S --rhost H applies to show \
             which rule decides a login:",
            PRECEDENCE,
            "A name in both a required and an exempt list is an error, as are empty names, a \
             name listed twice, upper-case service names (Linux-PAM lowercases them), a network \
             with bits set beyond its prefix and a network that covers every address. Groups \
             come from the system's group database (getgrouplist: LDAP and SSSD groups count), \
             looked up at each login within lookup_timeout. Rules may name groups and services \
             that do not exist (yet): they match nothing.",
        ],
        keys: &[
            key(
                "all_users",
                "false",
                "Require MFA of every user. This is the starting value only: once an \
                 administrator runs mfactl enforce --all on (or off), the stored setting wins.",
            ),
            key(
                "groups",
                "[]",
                "Require MFA of the members of these groups (\"MFA for admin roles\"), \
                 supplementary groups included.",
            ),
            key(
                "services",
                "[]",
                "Require MFA of every user logging in through these PAM services, for example \
                 [\"sshd\", \"sudo\"] (lowercase, as Linux-PAM gives them).",
            ),
        ],
    },
    Section {
        name: "exemptions",
        text: &["Logins that are never asked for a second factor, whatever else applies."],
        keys: &[
            key(
                "users",
                "[]",
                "Never ask these users for a second factor (break-glass accounts).",
            ),
            key("groups", "[]", "Never ask the members of these groups."),
            key(
                "services",
                "[]",
                "Never ask at logins through these PAM services, for example [\"login\"] for \
                 the local console.",
            ),
            key(
                "networks",
                "[]",
                "Never ask at logins from these remote hosts: IP addresses, networks in CIDR \
                 notation (\"10.9.0.0/16\", \"2001:db8::/32\"), or \"local\" for logins that \
                 name no remote host (the console, su, sudo). sshd passes the client's address \
                 unless UseDNS is on; a host name matches no network.",
            ),
        ],
    },
    Section {
        name: "remember",
        text: &[
            "Remembered logins: after a right code, logins of the same user through the \
                 same service from the same remote host skip the code for a while. Only logins \
                 run by root from a remote host are remembered (sshd, with PAM_RHOST set): \
                 without a remote host (su, sudo, the console) every terminal and every invoking \
                 user would look like one place. Only codes from the app are remembered, never \
                 a recovery code. A reset, a disable and a new phone forget every remembered \
                 code of the user; a locked account is refused all the same.",
        ],
        keys: &[
            number(
                "duration",
                "0",
                range!(RememberSeconds, "seconds"),
                "Seconds a right code covers the following logins; each login it covers starts \
                 the time again. 0: logins are never remembered.",
            ),
            number(
                "limit",
                "2592000",
                range!(RememberLimit, "seconds"),
                "Seconds after the right code past which a code is asked again, however often \
                 the remembered login was used since (the consoles' \"verify again after 30 \
                 days\"). No duration may be longer.",
            ),
            Key {
                name: "services",
                default: "[remember.services]",
                range: range!(RememberSeconds, "seconds"),
                kind: Kind::Table {
                    entry: "sshd = 3600",
                },
                text: "The same as duration, per PAM service, one line per service, in place of \
                       duration: a line sshd=3600 remembers each login through sshd for an hour. A \
                       service listed here with a time is never one of exemptions.services.",
            },
        ],
    },
    Section {
        name: "store",
        text: &[
            "Where mfad keeps its state: enrollments, recovery codes, tries and locks, \
             remembered logins, the enforcement switches and the audit trail. By default an \
             SQLite file in state_dir, for this host alone. In fleet mode several hosts share \
             one PostgreSQL database: a user enrolls once and logs in on any of them, one count \
             of tries and one lock hold for all, and every code and recovery code is accepted \
             once across the fleet. These keys are read when mfad starts, not at a reload.",
            "When the database cannot be reached within store.timeout, the login is denied and \
             the user told that the second factor cannot be checked (the module's failmode \
             does not apply: mfad answered); nothing is kept on the host in its place.",
        ],
        keys: &[
            key(
                "kind",
                "\"sqlite\"",
                "\"sqlite\": the file mfad.sqlite3 in state_dir. \"postgres\": the PostgreSQL \
                 database named by url or url_file (tested with PostgreSQL 15); mfad creates its \
                 tables there when it first reaches it, and upgrades them. The unit's network \
                 restrictions must then let mfad reach the server (see mfad(8)).",
            ),
            key(
                "url",
                "\"\"",
                "The database, as a libpq connection string: \"host=db.example.org \
                 dbname=pam_mfa user=mfad\", or \"postgresql://mfad@db.example.org/pam_mfa\". \
                 A password is refused here, since every user may read this file: use url_file, \
                 or a client certificate, or peer authentication over a Unix socket \
                 (\"host=/run/postgresql dbname=pam_mfa user=root\"). Several hosts (a primary \
                 and its standbys: \"host=db1.example.org,db2.example.org\") are tried in \
                 order, each host's TCP connection for its share of timeout, and mfad uses \
                 the one that accepts writes, also after a failover (see README, fleet mode).",
            ),
            key(
                "url_file",
                "\"\"",
                "A file holding the connection string, which may then carry a password: an \
                 absolute path, owned by root and readable by no one else (mfad refuses it \
                 otherwise). Set url or url_file, not both.",
            ),
            key(
                "tls",
                "\"verify-full\"",
                "TLS to the server over TCP: \"verify-full\" checks the server's certificate \
                 against ca_file (or the system's authorities) and its name against the host \
                 connected to; \"require\" encrypts without checking who answers; \"disable\" \
                 sends everything in clear. Unix sockets never use TLS.",
            ),
            key(
                "ca_file",
                "\"\"",
                "The authorities (PEM) that sign the server's certificate, with tls = \
                 \"verify-full\". Empty: the system's.",
            ),
            number(
                "timeout",
                "3",
                range!(StoreTimeout, "seconds"),
                "Seconds one call to the database may take, connecting included, before the \
                 request that needed it fails; after a failure to reach the server, calls fail \
                 at once for a second, so that the several calls of a login wait once. Keep it \
                 below the PAM module's timeout (5 seconds by default), so that the user is \
                 told why the login failed.",
            ),
            key(
                "host_name",
                "\"\"",
                "This host's name in the shared audit trail, where mfactl audit shows it with \
                 each entry. Empty: the system's host name.",
            ),
        ],
    },
    Section {
        name: "contacts",
        text: &[
            "Email addresses and phone numbers of users (mfactl contact). A contact counts once \
             its owner has typed the code sent there (mfactl contact verify); codes sent to \
             verified contacts can then stand in for the app at a login, where at_login allows \
             it. Every code sent is single use, expires, and a wrong one counts towards the \
             lockout like a wrong code from the app. Logs and the audit trail show contacts \
             masked (a***@example.org; a phone number by its country code and last three \
             digits). Off unless kinds names one.",
        ],
        keys: &[
            key(
                "kinds",
                "[]",
                "The kinds of contact users may add: \"email\" (sent through [email]) and \
                 \"phone\" (sent through [sms], whose command must be set).",
            ),
            number(
                "code_digits",
                "6",
                range!(ContactDigits, "digits"),
                "Digits of a code sent to a contact (not 8: recovery codes imported from \
                 google-authenticator have 8).",
            ),
            number(
                "code_lifetime",
                "600",
                range!(CodeLifetime, "seconds"),
                "Seconds a code sent stays good; a newer code sent to the same user replaces it.",
            ),
            number(
                "resend_after",
                "60",
                range!(ResendSeconds, "seconds"),
                "Seconds after a code was sent (or a send was tried, delivered or not) before \
                 another may be sent to the same user, whatever the contact, and removing a \
                 contact does not end the wait: nobody can make mfad send messages without \
                 end. Codes to verify contacts and codes for logins wait apart.",
            ),
            number(
                "max_per_user",
                "3",
                range!(MaxContacts, "contacts"),
                "Contacts one user may keep, verified or not.",
            ),
            key(
                "at_login",
                "false",
                "At a login's code question, a user with a verified contact may type \"email\" \
                 or \"sms\" to get a code sent there, and type that code instead of the app's. \
                 Such a login is not remembered unless remember says so.",
            ),
            key(
                "at_login_services",
                "[]",
                "The same as at_login, only for logins through these PAM services (for example \
                 [\"sshd\"]) while at_login is false.",
            ),
            key(
                "at_enrollment",
                "\"\"",
                "\"email\" or \"phone\": a user who sets up an app at a login first gives an \
                 email address (or a phone number), gets a code there and types it; only then \
                 are the QR code and the app's code asked for. A login cut off in between \
                 resumes there: the code sent stays good for code_lifetime. The kind must be \
                 in kinds. Empty: no contact is asked for.",
            ),
            key(
                "at_login_groups",
                "[]",
                "The same as at_login, only for members of these groups (as the system's group \
                 database says) while at_login is false.",
            ),
            key(
                "remember",
                "false",
                "Whether a login with a code sent to a contact is remembered for later logins \
                 from the same place, as one with a code from the app is (see [remember]). \
                 Off: such a login always asks again next time.",
            ),
            number(
                "delivery_timeout",
                "4",
                range!(DeliveryTimeout, "seconds"),
                "Seconds one delivery (the sendmail program, the SMS command) may take before \
                 it is stopped and counts as failed: the user is told that no code was sent. At \
                 most 8 deliveries run at once; each waits only for itself. Keep it below the \
                 PAM module's timeout (5 seconds by default) less store.timeout.",
            ),
        ],
    },
    Section {
        name: "email",
        text: &["How codes go out by email, for contacts of kind \"email\"."],
        keys: &[
            key(
                "via",
                "\"sendmail\"",
                "\"sendmail\": the local mail system's sendmail program, which queues the \
                 message and returns (the mail system then delivers it, or relays it through \
                 your organisation's mail server: see README). \"smtp\": straight to the SMTP \
                 server named by server, always over TLS checked against ca_file (or the \
                 system's authorities); from is then required.",
            ),
            key(
                "sendmail",
                "\"/usr/sbin/sendmail\"",
                "The sendmail program (Postfix, Exim, OpenSMTPD and msmtp all install one), run \
                 as root for each message with the message on its standard input.",
            ),
            key(
                "from",
                "\"\"",
                "The sender address of the messages. Empty: with sendmail, root's address as \
                 the mail system writes it.",
            ),
            key(
                "server",
                "\"\"",
                "With via = \"smtp\": the host name of the SMTP server, which its certificate \
                 must name.",
            ),
            key(
                "port",
                "0",
                "With via = \"smtp\": the server's port; 0: 587 with tls = \"starttls\", 465 \
                 with tls = \"tls\".",
            ),
            key(
                "tls",
                "\"starttls\"",
                "With via = \"smtp\": \"starttls\" upgrades the connection with STARTTLS before \
                 anything else is sent (a server that does not offer it gets nothing); \"tls\" \
                 speaks TLS from the start. There is no unencrypted setting.",
            ),
            key(
                "ca_file",
                "\"\"",
                "With via = \"smtp\": the authorities (PEM) that sign the server's certificate. \
                 Empty: the system's.",
            ),
            key(
                "credentials_file",
                "\"\"",
                "With via = \"smtp\": a file of two lines, the user name and the password mfad \
                 logs in to the server with; owned by root and readable by no one else (mfad \
                 refuses it otherwise). Empty: no login.",
            ),
        ],
    },
    Section {
        name: "sms",
        text: &[
            "How codes go out by SMS, for contacts of kind \"phone\": a program of yours, or \
             an HTTPS request to your SMS gateway's API. In an argument, the url or the body, \
             {phone} becomes the number (+ and digits), {code} the code and {message} the \
             whole text.",
        ],
        keys: &[
            key(
                "via",
                "\"command\"",
                "\"command\": run command for each message. \"http\": send an HTTPS request \
                 to url.",
            ),
            key(
                "command",
                "[]",
                "The program (an absolute path) and its arguments, run as root without a shell \
                 for each message, with an empty environment but PATH: for example \
                 [\"/usr/local/sbin/send-sms\", \"{phone}\", \"{message}\"]. Exit status 0 \
                 means sent; anything else, or running longer than \
                 contacts.delivery_timeout, means not sent.",
            ),
            key(
                "url",
                "\"\"",
                "The gateway's https:// address, for example \
                 \"https://sms.example.net/v1/messages\"; placeholders in it are \
                 percent-encoded. The certificate is checked against ca_file (or the system's \
                 authorities) and the host name. A 2xx answer means sent.",
            ),
            key(
                "method",
                "\"POST\"",
                "The request's method: \"POST\", \"PUT\" or \"GET\".",
            ),
            key(
                "body",
                "\"\"",
                "The request's body, for example \
                 \"{\\\"to\\\": \\\"{phone}\\\", \\\"text\\\": \\\"{message}\\\"}\"; placeholders \
                 are written as JSON string content when content_type names JSON, else \
                 percent-encoded.",
            ),
            key(
                "content_type",
                "\"application/x-www-form-urlencoded\"",
                "The body's Content-Type.",
            ),
            key(
                "headers_file",
                "\"\"",
                "A file of \"Name: value\" lines sent as headers with each request (the \
                 gateway's API key, say); owned by root and readable by no one else.",
            ),
            key(
                "ca_file",
                "\"\"",
                "The authorities (PEM) that sign the gateway's certificate. Empty: the \
                 system's.",
            ),
        ],
    },
];

/// The paragraphs of `text`, each on one line.
pub fn paragraphs(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split("\n\n")
        .map(|paragraph| paragraph.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|paragraph| !paragraph.is_empty())
}

impl Key {
    /// The key's description as paragraphs, each on one line, the last one ending with the
    /// range the key accepts, if it has one ("From 1 to 60 seconds.").
    pub fn paragraphs(&self) -> Vec<String> {
        let mut paragraphs: Vec<String> = paragraphs(self.text).collect();
        if let (Some(range), Some(last)) = (&self.range, paragraphs.last_mut()) {
            last.push_str(&format!(
                " From {} to {} {}.",
                range.min, range.max, range.unit
            ));
        }
        paragraphs
    }
}

/// The example configuration: every key commented out with its default and its description.
pub fn example() -> String {
    let mut out = String::from(
        "# mfad configuration: /etc/pam-mfa/mfad.toml (see mfad.toml(5))\n\
         #\n\
         # Every key is optional; the values shown commented out are the defaults. Unknown keys\n\
         # and out-of-range values stop mfad with an error naming the key and line: check a\n\
         # change with mfad --check-config, then apply it with mfactl reload (or SIGHUP).\n",
    );
    for section in SECTIONS {
        out.push('\n');
        if !section.name.is_empty() {
            out.push_str(&format!("[{}]\n", section.name));
        }
        for (index, paragraph) in section.text.iter().flat_map(|t| paragraphs(t)).enumerate() {
            if index > 0 {
                out.push_str("#\n");
            }
            wrap_comment(&mut out, &paragraph);
        }
        for (index, key) in section.keys.iter().enumerate() {
            if index > 0 || !section.text.is_empty() {
                out.push('\n');
            }
            for (index, paragraph) in key.paragraphs().iter().enumerate() {
                if index > 0 {
                    out.push_str("#\n");
                }
                wrap_comment(&mut out, paragraph);
            }
            match key.kind {
                Kind::Value => out.push_str(&format!("# {} = {}\n", key.name, key.default)),
                Kind::Table { .. } => out.push_str(&format!("# {}\n", key.default)),
            }
        }
    }
    out
}

/// Appends `paragraph` as `# ` lines of at most 90 characters.
fn wrap_comment(out: &mut String, paragraph: &str) {
    let mut line = String::from("#");
    for word in paragraph.split(' ') {
        if line.len() + 1 + word.len() > 90 && line.len() > 1 {
            out.push_str(&line);
            out.push('\n');
            line = String::from("#");
        }
        line.push(' ');
        line.push_str(word);
    }
    out.push_str(&line);
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Config;

    /// The keys the parser accepts in `section`, read from its refusal of an unknown key.
    fn accepted(section: &str) -> Vec<String> {
        let text = if section.is_empty() {
            "no_such_key = 1\n".to_owned()
        } else {
            format!("[{section}]\nno_such_key = 1\n")
        };
        let error = Config::parse(&text).unwrap_err();
        let expected = error
            .split("expected ")
            .nth(1)
            .unwrap_or_else(|| panic!("no list of keys in {error:?}"));
        let mut keys: Vec<String> = expected
            .split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_owned)
            .collect();
        keys.sort();
        keys
    }

    #[test]
    fn every_key_the_parser_accepts_is_described_once() {
        for section in SECTIONS {
            let mut described: Vec<String> =
                section.keys.iter().map(|key| key.name.to_owned()).collect();
            if section.name.is_empty() {
                described.extend(
                    SECTIONS
                        .iter()
                        .filter(|s| !s.name.is_empty())
                        .map(|s| s.name.to_owned()),
                );
            }
            described.sort();
            assert_eq!(
                described,
                accepted(section.name),
                "section [{}] of the reference",
                section.name
            );
            let mut unique = described.clone();
            unique.dedup();
            assert_eq!(unique, described, "a key is described twice");
        }
    }

    #[test]
    fn every_key_says_what_it_does() {
        for section in SECTIONS {
            for key in section.keys {
                assert!(
                    key.text.split_whitespace().count() >= 3,
                    "{}.{} has no description",
                    section.name,
                    key.name
                );
            }
        }
    }

    #[test]
    fn every_default_shown_is_the_parsers_default() {
        for section in SECTIONS {
            for key in section.keys {
                let text = match key.kind {
                    Kind::Value if section.name.is_empty() => {
                        format!("{} = {}\n", key.name, key.default)
                    }
                    Kind::Value => format!("[{}]\n{} = {}\n", section.name, key.name, key.default),
                    Kind::Table { entry } => {
                        assert_eq!(key.default, format!("[{}.{}]", section.name, key.name));
                        // An empty table is the default; an entry shows the syntax.
                        let empty = Config::parse(&format!("{}\n", key.default)).unwrap();
                        assert_eq!(empty, Config::default());
                        let entry =
                            format!("[remember]\nlimit = 7776000\n{}\n{entry}\n", key.default);
                        assert_ne!(Config::parse(&entry).unwrap(), Config::default());
                        continue;
                    }
                };
                let parsed = Config::parse(&text).unwrap_or_else(|error| panic!("{text}: {error}"));
                assert_eq!(parsed, Config::default(), "{text}");
            }
        }
    }

    #[test]
    fn every_range_shown_is_the_parsers_range() {
        for section in SECTIONS {
            for key in section.keys {
                let Some(range) = &key.range else { continue };
                let set = |value: i64| match key.kind {
                    Kind::Value if section.name.is_empty() => format!("{} = {value}\n", key.name),
                    Kind::Value => format!("[{}]\n{} = {value}\n", section.name, key.name),
                    Kind::Table { .. } => format!(
                        "[remember]\nlimit = 7776000\n[remember.services]\nsshd = {value}\n"
                    ),
                };
                // The bounds themselves are accepted (unless another key forbids them: a
                // remember duration above the default limit, a lock window below...).
                for inside in [range.min, range.max] {
                    let text = set(inside.into());
                    if let Err(error) = Config::parse(&text) {
                        assert!(!error.contains("between"), "{text}: {error}");
                    }
                }
                for outside in [i64::from(range.min) - 1, i64::from(range.max) + 1] {
                    let text = set(outside);
                    let error = Config::parse(&text).unwrap_err();
                    assert!(
                        error.contains(&format!("between {} and {}", range.min, range.max)),
                        "{text}: {error}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_example_configuration_is_made_from_the_reference() {
        let committed = include_str!("../../examples/mfad.toml");
        assert!(
            committed == example(),
            "examples/mfad.toml is out of date: run cargo run -p xtask -- man"
        );
    }
}
