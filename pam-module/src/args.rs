//! Module arguments from the PAM configuration line.
#![forbid(unsafe_code)]

use std::str::FromStr;
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
    /// D-Bus address of the bus `mfad` is on; `None` means the system bus.
    pub bus: Option<String>,
    /// mfad's login socket, tried before the bus; `None`: the bus only. By default the
    /// standard socket, unless `bus=` names a bus (tests, containers) without `socket=`.
    pub socket: Option<std::path::PathBuf>,
    /// Bound on each exchange with the daemon, connection set-up included.
    pub timeout: Duration,
    pub failmode: FailMode,
    /// `notrequired=`: the verdict when MFA is not required of the user.
    pub not_required: NotRequired,
    pub debug: bool,
}

pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_TIMEOUT_SECS: u64 = 300;

impl Default for Args {
    fn default() -> Self {
        Args {
            bus: None,
            socket: Some(pam_mfa_api::LOGIN_SOCKET.into()),
            timeout: DEFAULT_TIMEOUT,
            failmode: FailMode::Secure,
            not_required: NotRequired::Ignore,
            debug: false,
        }
    }
}

impl Args {
    /// Parses `bus=ADDRESS`, `socket=PATH|none`, `timeout=SECONDS`, `failmode=secure|safe`,
    /// `notrequired=ignore|success` and `debug`. Any other argument is an error naming it: a
    /// typo must not quietly change how logins are decided.
    pub fn parse<S: AsRef<str>>(arguments: &[S]) -> Result<Args, String> {
        let mut args = Args::default();
        let mut socket = None;
        for argument in arguments {
            let argument = argument.as_ref();
            match argument.split_once('=') {
                Some(("bus", address)) => {
                    // zbus reports a malformed address only when connecting, where it would
                    // look like an unreachable daemon; refuse it here instead.
                    zbus::Address::from_str(address)
                        .map_err(|error| format!("bus={address}: not a D-Bus address ({error})"))?;
                    args.bus = Some(address.into());
                }
                Some(("socket", "none")) => socket = Some(None),
                Some(("socket", path)) if path.starts_with('/') => {
                    socket = Some(Some(path.into()));
                }
                Some(("socket", path)) => {
                    return Err(format!(
                        "socket={path}: expected an absolute path, or none for the bus only"
                    ));
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
                _ => return Err(format!("unknown argument {argument:?}")),
            }
        }
        args.socket = match socket {
            Some(socket) => socket,
            // A bus named without a socket: the bus only (a container's or a test's).
            None if args.bus.is_some() => None,
            None => args.socket,
        };
        Ok(args)
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
            "bus=unix:path=/tmp/bus",
            "timeout=1.5",
            "failmode=safe",
            "notrequired=success",
            "debug",
        ])
        .unwrap();
        assert_eq!(args.not_required, NotRequired::Success);
        assert_eq!(args.bus.as_deref(), Some("unix:path=/tmp/bus"));
        assert_eq!(args.timeout, Duration::from_millis(1500));
        assert_eq!(args.failmode, FailMode::Safe);
        assert!(args.debug);
    }

    /// The login socket is tried first by default; a bus named for a test or a container means
    /// that bus only, unless `socket=` names a socket too.
    #[test]
    fn the_login_socket_is_used_unless_a_bus_is_named_without_one() {
        let socket = |args: &[&str]| Args::parse(args).unwrap().socket;
        let standard = Some(std::path::PathBuf::from(pam_mfa_api::LOGIN_SOCKET));
        assert_eq!(socket(&[]), standard);
        assert_eq!(socket(&["bus=unix:path=/tmp/bus"]), None);
        assert_eq!(
            socket(&["bus=unix:path=/tmp/bus", "socket=/tmp/login.socket"]),
            Some("/tmp/login.socket".into())
        );
        assert_eq!(socket(&["socket=none"]), None);
        let error = Args::parse(&["socket=run/login.socket"]).unwrap_err();
        assert!(error.contains("absolute path"), "{error}");
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
        assert!(Args::parse(&["bus="]).unwrap_err().contains("bus="));
        let typo = Args::parse(&["bus=unix:pth=/run/bus"]).unwrap_err();
        assert!(typo.contains("not a D-Bus address"), "{typo}");
        assert!(Args::parse(&["nodebug"]).is_err());
    }
}
