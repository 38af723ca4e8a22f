//! mfactl's command line: the one definition behind `--help` and the man page.

use clap::{Parser, Subcommand};

/// Administer pam-mfa, or manage your own authenticator app.
///
/// For users: mfactl enroll sets up an authenticator app for your account (or replaces your
/// phone), mfactl status shows your settings, mfactl recovery-codes makes new recovery codes,
/// mfactl disable removes your app when MFA is not required of you, mfactl contact adds an
/// email address or phone number that codes can be sent to.
///
/// For administrators (root, or members of mfad's admin_group): enforce requires MFA of one
/// user or everyone (they set up an app at their next login), status USER and users show where
/// each user stands, reset USER removes a lost phone (the user sets up a new one at the next
/// login), unlock USER ends a lock after too many wrong codes, enroll USER and import set up
/// apps or tokens for users, resync USER brings a counter-based token back in step, explain
/// USER tells what a login would do and why, audit reads the audit trail, reload puts an edited
/// configuration in use.
///
/// Journeys. First login: with MFA required and no app yet, the login shows a QR code; scan it,
/// type the app's code, save the recovery codes. Daily login: type the app's current code.
/// Lost phone: type a recovery code at the code prompt instead, then mfactl enroll to set up
/// the new phone; or ask an administrator for mfactl reset USER, and set it up at the next
/// login.
///
/// USER is a login name, as the system's user database (or LDAP, SSSD) knows it.
///
/// mfactl talks to the mfad daemon over D-Bus. Before it sends anything, mfactl checks that the
/// bus name org.pam_mfa.Mfad1 belongs to root, and refuses to talk to a process another user
/// started.
#[derive(Parser)]
#[command(version, about, long_about)]
pub struct Cli {
    /// D-Bus address of the bus mfad is on, instead of the system bus.
    #[arg(long, global = true, value_name = "ADDRESS")]
    pub bus: Option<String>,

    /// Print exactly one JSON document on stdout instead of text, errors included.
    ///
    /// An error is {"error": {"name": NAME, "message": TEXT}} with exit status 1 (2 for a
    /// command-line mistake); NAME is the D-Bus error name when the bus or mfad refused (e.g.
    /// org.pam_mfa.Mfad1.Error.InvalidArgument), else one of usage, input, connect or bus. Text
    /// meant for a person (QR code, prompts, the error as a sentence) goes to stderr.
    #[arg(long, global = true)]
    pub json: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Set up an authenticator app: show a QR code to scan, confirm with a code from the app,
    /// and show the recovery codes once.
    ///
    /// Without USER, for your own account; with USER, for that user (administrators). If the
    /// account already has an app, this sets up a new phone: the old one keeps working until
    /// the new one is confirmed, then stops, and new recovery codes replace the old ones. For
    /// your own account, replacing asks first for a code from the old app, or a recovery code
    /// if the phone is lost.
    ///
    /// Prints the QR code, the secret and the otpauth:// URI, then asks on stderr for the code
    /// the app shows (three tries). Until a code is confirmed nothing changes for logins.
    ///
    /// With --json, the QR code, secret, URI and prompt go to stderr, and stdout gets one
    /// document once the code is confirmed: {"user", "token" (totp or hotp), "secret", "uri",
    /// "enrolled": true, "recovery_codes"} (or the error). A script that must compute the code gives the secret
    /// with --secret, or reads the "URI:" line on stderr.
    Enroll {
        /// The user to set up an app for (administrators); without it, yourself.
        user: Option<String>,
        /// Set up a counter-based (HOTP) token instead of a time-based app: an app set up for
        /// HOTP codes, or, with --secret, a hardware token with a button (its secret from the
        /// vendor). Its codes do not expire; each press moves the token on, and logins look
        /// for a code among the next hotp.look_ahead ones (mfad.toml(5)).
        #[arg(long)]
        hotp: bool,
        /// Use this Base32 secret instead of generating one (administrators; for scripted
        /// tests). Other local users can read command lines: for real secrets use mfactl
        /// import, which reads them from a file or stdin.
        #[arg(long, value_name = "BASE32")]
        secret: Option<String>,
        /// Also write the QR code as a PNG image to FILE (created with mode 0600: it holds
        /// the secret; it must not exist yet).
        #[arg(long, value_name = "FILE")]
        qr_png: Option<std::path::PathBuf>,
        /// The terminal background the QR code is drawn for; drawn for the wrong one it looks
        /// inverted, which some apps cannot read.
        #[arg(
            long,
            value_enum,
            default_value = "dark",
            value_name = "dark|light",
            hide_possible_values = true
        )]
        qr_background: Background,
    },
    /// Make new recovery codes for your own account; the old ones stop working at once.
    ///
    /// Asks on stderr for a current code from the app, then shows the new codes once.
    RecoveryCodes,
    /// Remove your own authenticator app and recovery codes.
    ///
    /// Asks on stderr for a current code from the app or a recovery code. Refused while MFA is
    /// required of you: then only an administrator can remove it (mfactl reset USER).
    Disable,
    /// Enroll many users at once from a file of "USER SECRET" lines ("-" reads stdin), or from
    /// the files of google-authenticator, pam_oath, or a token vendor (PSKC).
    ///
    /// Each line holds a user name and a Base32 secret, separated by white space; blank lines
    /// and lines starting with # are skipped. The enrollments are active at once, with the
    /// configured algorithm, digits and period. Names are not looked up in the system user
    /// database, so directory users not visible on this host can be imported. The layout of
    /// every line is checked before anything is sent; mfad then checks names and secrets and
    /// stores the entries in batches of 10,000, each all or nothing, so a bad entry in a later
    /// batch leaves the earlier batches imported (mfactl says how many).
    ///
    /// With --google-authenticator, each FILE is a user's ~/.google_authenticator, and the
    /// file's owner is the user: the secret, the time step (STEP_SIZE) or, in a counter-based
    /// file, the counter (HOTP_COUNTER), the codes already used (DISALLOW_REUSE), and the
    /// scratch codes, which become recovery codes, so nobody has to enroll again. Secrets of
    /// 80 bits (the classic 16 letters) are imported with a warning. Window and rate limits
    /// come from mfad's configuration, not from the files.
    ///
    /// With --pam-oath, FILE is pam_oath's users file (usersfile=, often /etc/users.oath):
    /// its HOTP (counter-based) and HOTP/T30 (time-based) lines, with their counters and the
    /// last code each user typed, which stays used. Lines with a PIN are not imported
    /// (pam-mfa keeps none: the account's password takes its place).
    ///
    /// With --pskc, FILE is a token vendor's PSKC file (RFC 6030) and --serials names a file of
    /// "SERIAL USER" lines: the token with that serial number is enrolled for that user.
    /// Encrypted files (a pre-shared key, RFC 6030 section 6.1) need --pskc-key; each secret is
    /// then checked with the file's MAC, and a secret in the clear in such a file is refused.
    /// The MAC covers the secrets only: serial numbers and counters are as the file says, so
    /// take the file from the vendor over a channel you trust. Tokens given to no user are
    /// left out and listed.
    ///
    /// An entry that cannot be imported is named with its line or key package and the reason,
    /// and nothing is imported, unless --skip-invalid says to import the others.
    ///
    /// Examples: mfactl import --google-authenticator /home/*/.google_authenticator;
    /// mfactl import --pam-oath /etc/users.oath;
    /// mfactl import --pskc tokens.xml --serials serials.txt --pskc-key psk.hex
    #[command(group(clap::ArgGroup::new("format")
        .args(["google_authenticator", "pam_oath", "pskc"])))]
    Import {
        /// Read google-authenticator's files, one per user, instead of "USER SECRET" lines.
        #[arg(long)]
        google_authenticator: bool,
        /// Read pam_oath's users file.
        #[arg(long)]
        pam_oath: bool,
        /// Read a PSKC file of hardware tokens (with --serials).
        #[arg(long, requires = "serials")]
        pskc: bool,
        /// With --pskc: a file of "SERIAL USER" lines, the user of each token.
        #[arg(long, value_name = "FILE", requires = "pskc")]
        serials: Option<std::path::PathBuf>,
        /// With --pskc: a file holding the pre-shared key the PSKC file is encrypted with, in
        /// hexadecimal (readable by its owner only).
        #[arg(long, value_name = "FILE", requires = "pskc")]
        pskc_key: Option<std::path::PathBuf>,
        /// Import the entries that can be, and name those that cannot, instead of importing
        /// nothing.
        #[arg(long)]
        skip_invalid: bool,
        /// A file of "USER SECRET" lines, or "-" for stdin; with --google-authenticator, one
        /// or more users' ~/.google_authenticator files; with --pam-oath or --pskc, one file.
        #[arg(value_name = "FILE", required = true)]
        files: Vec<std::path::PathBuf>,
    },
    /// Add, verify, list or remove email addresses and phone numbers that codes are sent to.
    ///
    /// A contact counts once its owner has typed the code sent there: mfactl contact add
    /// --email ADDRESS (or --phone +NUMBER) sends it, mfactl contact verify takes it. Where
    /// mfad.toml's [contacts] at_login allows it, a user with a verified contact may then type
    /// "email" or "sms" at a login's code question to get a code sent there. With an app in
    /// use, adding a contact to your own account asks first for a code from the app (or a
    /// recovery code): a contact can stand in for the app. Contacts are shown masked
    /// (a***@example.org; a phone number by its country code and last three digits), as the
    /// logs and the audit trail show them.
    ///
    /// With --user USER, administrators act on USER's contacts; add --verified then vouches
    /// for the contact without a code.
    ///
    /// Examples: mfactl contact add --email alice@example.org; mfactl contact verify;
    /// mfactl contact add --user bob --phone +447700900123 --verified
    Contact {
        #[command(subcommand)]
        action: ContactAction,
    },
    /// Show USER's enrollment and enforcement, or your own without USER.
    Status {
        /// The user to show (administrators); without it, yourself.
        user: Option<String>,
    },
    /// List users with an enrollment or an enforcement setting.
    Users,
    /// Remove USER's app, recovery codes and any unfinished enrollment (a lost phone).
    ///
    /// Asks for confirmation on a terminal; scripts, which have none, pass --yes. Says what the
    /// user's next login does: set up a new app (when MFA is required of the user) or ask for
    /// no second factor.
    Reset {
        /// The user whose app is removed.
        user: String,
        /// Remove without asking (scripts: without a terminal, reset refuses to go on without
        /// it).
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// Read the audit trail: who did what, when, oldest first.
    ///
    /// Administrators read everyone's entries (or one user's with --user); any other user reads
    /// their own. Each entry is the line mfad wrote to syslog (AUTHPRIV), with its time; with
    /// --json, an array of {"time", "event", "user", "line", "host"}. In fleet mode (mfad.toml's
    /// [store] kind = "postgres") the trail is the whole fleet's, and each entry names the
    /// host whose mfad recorded it.
    ///
    /// Events: challenged, login-allowed, remembered-login, login-exempt, login-denied,
    /// login-abandoned, recovery-code-used, locked-out, unlocked, token-resynced,
    /// enrollment-started, enrollment-confirmed, enrollment-abandoned, enrollments-imported,
    /// enrollment-reset, enrollment-disabled, recovery-codes-renewed, enforcement-set,
    /// config-reloaded, config-refused, policy-changed, secrets-resealed, contact-code-sent,
    /// contact-code-used, contact-verified, contact-removed. (Skipped logins,
    /// single wrong codes and exemptions by service or network go to syslog only.)
    Audit {
        /// Only entries about this user.
        #[arg(long, value_name = "USER")]
        user: Option<String>,
        /// Only entries since TIME: Unix seconds, a day YYYY-MM-DD (UTC), or a time ago (30m,
        /// 12h, 7d).
        #[arg(long, value_name = "TIME")]
        since: Option<String>,
        /// Only entries of this kind (see the list above).
        #[arg(long, value_name = "KIND")]
        event: Option<String>,
        /// At most this many entries, the newest (1 to 1000000).
        #[arg(long, value_name = "N", default_value_t = 100,
              value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
        limit: u32,
    },
    /// Say what a login of USER would do, and the rule that decided, without logging in.
    ///
    /// The answer is one of: code (asked for a code from the app), enroll (sets up an app
    /// first), denied, no second factor, exempt, locked (until when) or remembered (until
    /// when), with the rule: an exemption (exempt user, exempt group G, exempt service S,
    /// exempt network N), or what requires MFA (all users, service S, user, group G), or not
    /// enforced. Nothing is changed or recorded. Administrators only.
    ///
    /// The rules combine as the precedence rule in mfad.toml(5) says: exemptions first, then
    /// the first rule that requires MFA.
    ///
    /// Example: mfactl explain alice --service sshd --rhost 192.0.2.7
    Explain {
        /// The user whose login is explained (need not exist: rules about groups then match
        /// nothing).
        user: String,
        /// The PAM service of the login (sshd, sudo, su, login...); without it, rules about
        /// services do not match.
        #[arg(long, value_name = "SERVICE", default_value = "")]
        service: String,
        /// The remote host the login comes from (an IP address, as sshd passes it); without
        /// it, a login with no remote host (the console, su, sudo), which the network "local"
        /// matches.
        #[arg(long, value_name = "HOST", default_value = "")]
        rhost: String,
    },
    /// Make mfad read its configuration file again (as SIGHUP does).
    ///
    /// An invalid file is refused with the reason, and the configuration in use stays. The
    /// changed keys are reported, and the audit trail records the reload and any change of
    /// policy. state_dir changes only when mfad restarts. Administrators only.
    Reload,
    /// Make mfad read its sealing keys again and seal every stored secret with the newest.
    ///
    /// Every TOTP secret in mfad's store is encrypted with the last key of its key file
    /// (mfad.toml's sealing_key_file) or of the systemd credential sealing-key. To move to a
    /// new key: add it (mfad --new-key FILE), then run this; mfad seals every secret with it
    /// in short transactions while logins go on, and a restart in the middle finishes the job.
    /// Keys that do not open what is stored are refused and the keys in use stay. Once done,
    /// the older keys may be removed from the file. Under systemd, with the keys in a
    /// credential, restart mfad instead (it reads the credential when it starts).
    /// Administrators only.
    Reseal,
    /// Show where mfad keeps its state and whether it answers.
    ///
    /// Names the store (the SQLite file, or the PostgreSQL hosts and database), the database
    /// server in use (of several hosts, the one that accepts writes: after a failover, the
    /// promoted standby), whether the store answers a read now, and its last failure since
    /// mfad started. Exits 1 when the store does not answer, so that monitoring can run it.
    /// Administrators only.
    Health,
    /// Bring USER's counter-based (HOTP) token back in step after many presses without a login.
    ///
    /// Asks on stderr for two codes the token shows one after the other (press its button
    /// twice), and looks for them within hotp.resync_window values after the last code used
    /// (1,000 by default). Codes before them stop working. A login does the same when the user
    /// types two such codes in a row. Administrators only.
    Resync {
        /// The user whose token is brought back in step.
        user: String,
    },
    /// End USER's lock after too many wrong codes, at once, and clear the count of tries.
    ///
    /// mfad locks an account after lockout.failures wrong codes (5 by default) within
    /// lockout.window, on every service at once, for lockout.duration, doubling for each lock
    /// that follows another. The user is told until when.
    Unlock {
        /// The user whose lock ends.
        user: String,
    },
    /// Require MFA of every user (--all) or of one user.
    ///
    /// Applies from the next login; open sessions are not affected. A user who must use MFA but
    /// has no app sets one up at the next login (QR code, then a code), unless mfad's
    /// enroll_at_login is off: then such a user is denied until enrolled.
    ///
    /// Examples: mfactl enforce alice on; mfactl enforce --all off
    Enforce {
        /// All users, instead of one.
        #[arg(long)]
        all: bool,
        /// USER then on or off; with --all, on or off alone.
        #[arg(value_name = "[USER] on|off", num_args = 1..=2, required = true)]
        words: Vec<String>,
    },
}

/// What `mfactl contact` does.
#[derive(Subcommand)]
pub enum ContactAction {
    /// Add a contact and send a code there (type it with mfactl contact verify).
    #[command(group(clap::ArgGroup::new("address").args(["email", "phone"]).required(true)))]
    Add {
        /// An email address.
        #[arg(long, value_name = "ADDRESS")]
        email: Option<String>,
        /// A phone number in international form (+44 7700 900123).
        #[arg(long, value_name = "+NUMBER")]
        phone: Option<String>,
        /// The user whose contact it is (administrators); without it, yourself.
        #[arg(long, value_name = "USER")]
        user: Option<String>,
        /// Count the contact at once, without a code (administrators, with --user).
        #[arg(long, requires = "user")]
        verified: bool,
    },
    /// Type the code sent to the contact you added; asked on stderr without CODE.
    Verify {
        /// The code (other local users can read command lines: leave it out to be asked).
        code: Option<String>,
    },
    /// List the contacts, masked, and whether each is verified.
    List {
        /// The user whose contacts are listed (administrators); without it, yours.
        #[arg(long, value_name = "USER")]
        user: Option<String>,
    },
    /// Remove a contact, named by its whole address or as mfactl contact list shows it.
    #[command(group(clap::ArgGroup::new("address").args(["email", "phone"]).required(true)))]
    Remove {
        /// The email address, or its masked form (a***@example.org).
        #[arg(long, value_name = "ADDRESS")]
        email: Option<String>,
        /// The phone number, or its masked form as the list shows it.
        #[arg(long, value_name = "+NUMBER")]
        phone: Option<String>,
        /// The user whose contact it is (administrators); without it, yourself.
        #[arg(long, value_name = "USER")]
        user: Option<String>,
    },
}

/// The terminal background a QR code is drawn for.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Background {
    Dark,
    Light,
}

impl From<&Background> for pam_mfa_config::QrBackground {
    fn from(background: &Background) -> Self {
        match background {
            Background::Dark => pam_mfa_config::QrBackground::Dark,
            Background::Light => pam_mfa_config::QrBackground::Light,
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
