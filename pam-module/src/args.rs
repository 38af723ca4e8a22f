//! Module arguments from the PAM configuration line.
#![forbid(unsafe_code)]

use std::time::Duration;

/// What to do when `mfad` or the bus cannot be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailMode {
    /// Deny with `PAM_AUTHINFO_UNAVAIL` (the default).
    Secure,
    /// Allow with `PAM_SUCCESS`, and log a warning.
    Safe,
}

/// What the module returns when mfad says no second factor is required of this login.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotRequired {
    /// `PAM_IGNORE`: the rest of the stack decides (a stack where another module checks a
    /// password). The default.
    Ignore,
    /// `PAM_SUCCESS`: for stacks where pam_mfa is the only auth module and something before
    /// PAM already authenticated the user (sshd's `AuthenticationMethods
    /// publickey,keyboard-interactive`); as google-authenticator's `nullok` users expect.
    Success,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Args {
    /// mfad's login socket.
    pub socket: std::path::PathBuf,
    /// Bound on each exchange with the daemon, connection set-up included.
    pub timeout: Duration,
    pub failmode: FailMode,
    /// `notrequired=`: the verdict when MFA is not required of the user.
    pub not_required: NotRequired,
    pub debug: bool,
    /// `forward_pass`: the password and the code in one answer, the password handed on.
    pub forward_pass: bool,
    /// Arguments of earlier versions that are now ignored, as written (see [`OBSOLETE`]).
    pub obsolete: Vec<String>,
}

pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_TIMEOUT_SECS: u64 = 300;

/// One module argument, described once: pam_mfa(8) is made from this list, and the tests below
/// check it against [`Args::parse`].
pub struct Argument {
    /// The argument as written in a PAM file, with its values in capitals or as `a|b`.
    pub syntax: &'static str,
    /// What holds without the argument.
    pub default: &'static str,
    /// The argument with a value other than the default.
    pub example: &'static str,
    /// Paragraphs, separated by blank lines.
    pub text: &'static str,
}

impl Argument {
    /// The argument's name: `timeout` for `timeout=SECONDS`.
    pub fn name(&self) -> &'static str {
        self.syntax.split('=').next().unwrap_or(self.syntax)
    }
}

/// Every argument pam_mfa.so accepts.
pub const ARGUMENTS: &[Argument] = &[
    Argument {
        syntax: "socket=PATH",
        default: "/run/pam-mfa/login.socket",
        example: "socket=/run/test/login.socket",
        text: "mfad's login socket, the one way the module reaches mfad: one peer-to-peer \
               D-Bus connection per login, checked to be served by root (mfad, or systemd's \
               mfad.socket) before anything is sent. For containers and tests; mfad's \
               login_socket setting must name the same path. Under systemd, mfad.socket \
               listens there even while mfad is stopped: the connection starts mfad, and the \
               login waits for it within timeout=.",
    },
    Argument {
        syntax: "timeout=SECONDS",
        default: "5",
        example: "timeout=2.5",
        text: "Bound on each exchange with mfad, connection set-up included, from above 0 to \
               300 seconds (fractions allowed). Typing the code is not limited by it: mfad's \
               login.session_timeout is. An exchange that takes longer denies the login.",
    },
    Argument {
        syntax: "failmode=secure|safe",
        default: "secure",
        example: "failmode=safe",
        text: "What happens when mfad is definitely absent: no socket file, connection \
               refused, or a connection closed before mfad said anything (nobody serves the \
               socket: mfad is gone, or systemd could not start it). secure denies with \
               PAM_AUTHINFO_UNAVAIL and tells the user in one line that the second factor \
               cannot be checked; safe lets the login through with PAM_SUCCESS and logs an \
               alert.\n\n\
               A time-out, a refusal after connecting (mfad's own, or a socket served by a \
               user other than root), or losing mfad after it asked for a code deny in both \
               modes: any local user can slow a daemon down, and must not be able to turn that \
               into logins without a code. Keep secure for su and sudo.",
    },
    Argument {
        syntax: "notrequired=ignore|success",
        default: "ignore",
        example: "notrequired=success",
        text: "What the module returns when mfad says no second factor is required of the \
               user. ignore returns PAM_IGNORE: the rest of the stack decides (a stack where \
               another module checks a password). success returns PAM_SUCCESS, for stacks \
               where pam_mfa.so is the only auth module and sshd has already checked the \
               user's key (AuthenticationMethods publickey,keyboard-interactive); a stack in \
               which every module ignores the login refuses it.",
    },
    Argument {
        syntax: "forward_pass",
        default: "off",
        example: "forward_pass",
        text: "One prompt, for services that send PAM a single password and cannot ask a \
               second question (OpenVPN's PAM plug-in, FreeRADIUS's rlm_pam, IMAP and SMTP \
               servers). The module asks \"Password and verification code: \", and the user \
               types the password followed at once by the code (or by a recovery code, with \
               its dashes). The module checks the code with mfad and hands the password on as \
               PAM_AUTHTOK to the module that follows, which takes it with use_first_pass (or \
               try_first_pass). Put pam_mfa.so first in the auth stack and the password module \
               after it, both required.\n\n\
               Such a login has one try, and cannot set up an authenticator app: a user who \
               must use MFA and has none is denied and told in one line to set one up \
               elsewhere (an SSH login, or mfactl enroll). When no second factor is required \
               of the user, nothing is asked and the module ignores the login (notrequired=): \
               the password module then asks for the password alone, with try_first_pass. \
               The service must run its PAM stack as root, as sshd, su and login do (mfad \
               answers other callers only about their own account): OpenVPN's PAM plug-in \
               does; FreeRADIUS runs as freerad on Debian unless user and group are commented \
               out in radiusd.conf.",
    },
    Argument {
        syntax: "debug",
        default: "off",
        example: "debug",
        text: "Log each verdict to syslog (AUTHPRIV, level debug).",
    },
];

/// Arguments of earlier versions, ignored with a warning rather than refused: a PAM line
/// written for them must keep letting people in after an upgrade. Each with what replaced it.
pub const OBSOLETE: &[(&str, &str)] = &[
    (
        "bus",
        "the module reaches mfad only on its login socket (socket=PATH), no longer on a bus",
    ),
    (
        "socket=none",
        "the login socket is the only way to mfad (socket=PATH names another one)",
    ),
];

impl Default for Args {
    fn default() -> Self {
        Args {
            socket: pam_mfa_login::LOGIN_SOCKET.into(),
            timeout: DEFAULT_TIMEOUT,
            failmode: FailMode::Secure,
            not_required: NotRequired::Ignore,
            debug: false,
            forward_pass: false,
            obsolete: Vec::new(),
        }
    }
}

impl Args {
    /// Parses the [`ARGUMENTS`]. Any other argument is an error naming it, except the
    /// [`OBSOLETE`] ones: a typo must not quietly change how logins are decided.
    pub fn parse<S: AsRef<str>>(arguments: &[S]) -> Result<Args, String> {
        let mut args = Args::default();
        for argument in arguments {
            let argument = argument.as_ref();
            let name = argument.split_once('=').map_or(argument, |(name, _)| name);
            if OBSOLETE
                .iter()
                .any(|(obsolete, _)| *obsolete == name || *obsolete == argument)
            {
                args.obsolete.push(argument.to_owned());
                continue;
            }
            // Only what is described is read: an argument missing from ARGUMENTS is unknown.
            if !ARGUMENTS.iter().any(|described| described.name() == name) {
                return Err(format!("unknown argument {argument:?}"));
            }
            match argument.split_once('=') {
                Some(("socket", path)) if path.starts_with('/') => args.socket = path.into(),
                Some(("socket", path)) => {
                    return Err(format!("socket={path}: expected an absolute path"));
                }
                Some(("timeout", seconds)) => {
                    args.timeout = seconds
                        .parse::<f64>()
                        .ok()
                        .filter(|s| *s > 0.0 && *s <= MAX_TIMEOUT_SECS as f64)
                        .map(Duration::from_secs_f64)
                        .ok_or_else(|| {
                            format!(
                                "timeout={seconds}: expected seconds between 0 and {MAX_TIMEOUT_SECS}"
                            )
                        })?;
                }
                Some(("failmode", "secure")) => args.failmode = FailMode::Secure,
                Some(("failmode", "safe")) => args.failmode = FailMode::Safe,
                Some(("failmode", other)) => {
                    return Err(format!("failmode={other}: expected secure or safe"));
                }
                Some(("notrequired", "ignore")) => args.not_required = NotRequired::Ignore,
                Some(("notrequired", "success")) => args.not_required = NotRequired::Success,
                Some(("notrequired", other)) => {
                    return Err(format!("notrequired={other}: expected ignore or success"));
                }
                None if argument == "debug" => args.debug = true,
                None if argument == "forward_pass" => args.forward_pass = true,
                _ => return Err(format!("unknown argument {argument:?}")),
            }
        }
        Ok(args)
    }

    /// The one warning to log about the obsolete arguments, if any were given.
    pub fn obsolete_warning(&self) -> Option<String> {
        if self.obsolete.is_empty() {
            return None;
        }
        let replaced: Vec<String> = self
            .obsolete
            .iter()
            .map(|given| {
                let name = given
                    .split_once('=')
                    .map_or(given.as_str(), |(name, _)| name);
                let why = OBSOLETE
                    .iter()
                    .find(|(obsolete, _)| *obsolete == given || *obsolete == name)
                    .map_or("", |(_, why)| *why);
                format!("{given:?} ({why})")
            })
            .collect();
        Some(format!(
            "ignoring obsolete argument {}; remove it from the PAM configuration",
            replaced.join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_secure() {
        let args = Args::parse::<&str>(&[]).unwrap();
        assert_eq!(args, Args::default());
        assert_eq!(args.failmode, FailMode::Secure);
        assert_eq!(args.timeout, Duration::from_secs(5));
    }

    #[test]
    fn every_argument_is_read() {
        let args = Args::parse(&[
            "socket=/tmp/login.socket",
            "timeout=1.5",
            "failmode=safe",
            "notrequired=success",
            "debug",
            "forward_pass",
        ])
        .unwrap();
        assert!(args.forward_pass);
        assert_eq!(args.not_required, NotRequired::Success);
        assert_eq!(args.socket, std::path::Path::new("/tmp/login.socket"));
        assert_eq!(args.timeout, Duration::from_millis(1500));
        assert_eq!(args.failmode, FailMode::Safe);
        assert!(args.debug);
    }

    /// A PAM line written for an earlier version keeps working: `bus=` and `socket=none` are
    /// ignored, and one warning says so and what replaced them.
    #[test]
    fn obsolete_arguments_are_ignored_with_one_warning() {
        let args = Args::parse(&["bus=unix:path=/tmp/bus", "socket=none", "debug"]).unwrap();
        assert_eq!(
            args.socket,
            std::path::Path::new(pam_mfa_login::LOGIN_SOCKET)
        );
        assert!(args.debug);
        let warning = args.obsolete_warning().unwrap();
        assert!(
            warning.contains(
                "\"bus=unix:path=/tmp/bus\" (the module reaches mfad only on its login socket"
            ),
            "{warning}"
        );
        assert!(
            warning.contains("\"socket=none\" (the login socket is the only way"),
            "{warning}"
        );
        assert_eq!(Args::parse(&["debug"]).unwrap().obsolete_warning(), None);
        let error = Args::parse(&["socket=run/login.socket"]).unwrap_err();
        assert!(error.contains("absolute path"), "{error}");
    }

    /// Each argument described is read as described: its example changes what the default
    /// would be, and a bad value is refused with the argument's name, not as unknown.
    #[test]
    fn every_argument_described_is_parsed() {
        for argument in ARGUMENTS {
            let example = Args::parse(&[argument.example])
                .unwrap_or_else(|error| panic!("{}: {error}", argument.example));
            assert_ne!(example, Args::default(), "{}", argument.example);
            let name = argument.name();
            if argument.syntax.contains('=') {
                let bad = format!("{name}=?");
                let error = Args::parse(&[bad.as_str()]).unwrap_err();
                assert!(
                    error.starts_with(&bad) && !error.contains("unknown"),
                    "{bad}: {error}"
                );
            }
        }
        let mut names: Vec<&str> = ARGUMENTS.iter().map(Argument::name).collect();
        names.sort();
        names.dedup();
        assert_eq!(
            names.len(),
            ARGUMENTS.len(),
            "an argument is described twice"
        );
    }

    /// The defaults described are the parser's.
    #[test]
    fn the_defaults_described_are_the_parsers() {
        let described = |name: &str| {
            ARGUMENTS
                .iter()
                .find(|argument| argument.syntax.starts_with(name))
                .unwrap()
                .default
        };
        let defaults = Args::default();
        assert_eq!(defaults.socket, std::path::Path::new(described("socket=")));
        assert_eq!(
            defaults.timeout,
            Duration::from_secs(described("timeout=").parse().unwrap())
        );
        assert_eq!(defaults.failmode, FailMode::Secure);
        assert_eq!(described("failmode="), "secure");
        assert_eq!(defaults.not_required, NotRequired::Ignore);
        assert_eq!(described("notrequired="), "ignore");
        assert!(!defaults.debug);
        assert_eq!(described("debug"), "off");
    }

    #[test]
    fn bad_arguments_are_named() {
        assert_eq!(
            Args::parse(&["failmod=safe"]).unwrap_err(),
            "unknown argument \"failmod=safe\""
        );
        assert!(
            Args::parse(&["failmode=open"])
                .unwrap_err()
                .contains("failmode=open")
        );
        assert!(
            Args::parse(&["timeout=0"])
                .unwrap_err()
                .contains("timeout=0")
        );
        assert!(
            Args::parse(&["timeout=soon"])
                .unwrap_err()
                .contains("timeout=soon")
        );
        assert!(Args::parse(&["socket="]).unwrap_err().contains("socket="));
        assert!(Args::parse(&["nodebug"]).is_err());
    }
}
