//! Why an exchange with mfad gave no usable answer, classified where it happens.
//!
//! What "absent" means is decided here, once: no socket file, a socket nobody listens on
//! (connection refused), or a connection closed before a single byte came back (nobody behind
//! it: the socket's listener went away with the connection in its queue, as systemd does when
//! it cannot start mfad). Only absence lets `failmode=safe` allow a login. Everything else —
//! a time-out, a refusal after connecting (mfad's own, or a peer that is not root), an error
//! mfad answers — denies: any local user can slow mfad down, and must not be able to turn that
//! into logins without a code.
#![forbid(unsafe_code)]

use std::io;
use std::time::Duration;

use pam_mfa_login::contract::{ReplyError, errors};

/// Why an exchange with the daemon gave no usable answer.
#[derive(Debug)]
pub enum Failure {
    /// mfad is definitely not there (see the module's documentation). Only this lets
    /// `failmode=safe` allow a login.
    Absent(String),
    /// Something is there but did not answer: a time-out, a connection dropped mid-call, a
    /// reply that is not one, any other I/O error.
    NoAnswer(String),
    /// We were refused, or refused to talk: a peer that is not root, mfad's refusal of the
    /// connection, or its `PermissionDenied`.
    Refused(String),
    /// mfad answered with one of its own errors (an expired session, an internal failure, too
    /// many requests...).
    Daemon(DaemonError),
}

/// An error mfad answered: its D-Bus name and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonError {
    pub name: String,
    pub text: String,
}

impl DaemonError {
    /// mfad could not do its work (its store failed).
    pub fn is_internal(&self) -> bool {
        self.name == errors::INTERNAL
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Absent(text) | Failure::NoAnswer(text) | Failure::Refused(text) => {
                f.write_str(text)
            }
            Failure::Daemon(error) => f.write_str(&error.text),
        }
    }
}

/// Classifies a failure to connect to the socket at `display`.
pub fn connect_failure(display: &str, error: &io::Error) -> Failure {
    match error.kind() {
        io::ErrorKind::NotFound => Failure::Absent(format!("{display} does not exist: {error}")),
        io::ErrorKind::ConnectionRefused => {
            Failure::Absent(format!("nothing listens on {display}: {error}"))
        }
        io::ErrorKind::TimedOut => Failure::NoAnswer(format!(
            "cannot connect to {display}: no answer in time (its queue is full)"
        )),
        _ => Failure::NoAnswer(format!("cannot connect to {display}: {error}")),
    }
}

/// Classifies a failure to write to or read from the connection during the call `member`
/// (`doing`: "cannot read from", say). `heard` says whether any byte came back from mfad on it.
pub fn io_failure(
    display: &str,
    (member, doing): (&str, &str),
    error: &io::Error,
    limit: Duration,
    heard: bool,
) -> Failure {
    let closed = matches!(
        error.kind(),
        io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionAborted
    );
    if closed && !heard {
        return Failure::Absent(format!(
            "nobody serves {display}: the connection closed before any answer"
        ));
    }
    if error.kind() == io::ErrorKind::TimedOut {
        return timed_out(member, limit);
    }
    Failure::NoAnswer(format!("{member}: {doing} {display}: {error}"))
}

/// Classifies what came back for a call.
pub fn reply_failure(error: ReplyError) -> Failure {
    match error {
        ReplyError::Error { name, text } => {
            if name == errors::PERMISSION_DENIED || name == errors::ACCESS_DENIED {
                Failure::Refused(text)
            } else {
                Failure::Daemon(DaemonError { name, text })
            }
        }
        ReplyError::Malformed(text) => Failure::NoAnswer(text),
    }
}

pub fn timed_out(what: &str, limit: Duration) -> Failure {
    Failure::NoAnswer(format!(
        "no answer from mfad to {what} within {:.1} s",
        limit.as_secs_f64()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: Duration = Duration::from_secs(5);

    fn is_absent(failure: &Failure) -> bool {
        matches!(failure, Failure::Absent(_))
    }

    #[test]
    fn only_a_missing_socket_a_refused_connection_or_silence_then_a_close_is_absence() {
        let error = io::Error::from;
        assert!(is_absent(&connect_failure(
            "s",
            &error(io::ErrorKind::NotFound)
        )));
        assert!(is_absent(&connect_failure(
            "s",
            &error(io::ErrorKind::ConnectionRefused)
        )));
        for kind in [
            io::ErrorKind::PermissionDenied,
            io::ErrorKind::TimedOut,
            io::ErrorKind::WouldBlock,
        ] {
            let failure = connect_failure("s", &error(kind));
            assert!(matches!(failure, Failure::NoAnswer(_)), "{kind:?}");
        }
        for kind in [
            io::ErrorKind::UnexpectedEof,
            io::ErrorKind::ConnectionReset,
            io::ErrorKind::BrokenPipe,
        ] {
            assert!(is_absent(&io_failure(
                "s",
                ("Begin", "cannot read from"),
                &error(kind),
                LIMIT,
                false
            )));
            // Once mfad said anything, losing it is not absence.
            let failure = io_failure(
                "s",
                ("Begin", "cannot read from"),
                &error(kind),
                LIMIT,
                true,
            );
            assert!(matches!(failure, Failure::NoAnswer(_)), "{kind:?}");
        }
        // Silence is never absence.
        let failure = io_failure(
            "s",
            ("Begin", "cannot read from"),
            &error(io::ErrorKind::TimedOut),
            LIMIT,
            false,
        );
        assert!(matches!(failure, Failure::NoAnswer(text) if text.contains("within 5.0 s")));
    }

    #[test]
    fn replies_are_classified_by_their_name() {
        let reply = |name: &str| ReplyError::Error {
            name: name.into(),
            text: "text".into(),
        };
        assert!(matches!(
            reply_failure(reply(errors::PERMISSION_DENIED)),
            Failure::Refused(_)
        ));
        assert!(matches!(
            reply_failure(reply(errors::ACCESS_DENIED)),
            Failure::Refused(_)
        ));
        assert!(matches!(
            reply_failure(reply(errors::INTERNAL)),
            Failure::Daemon(error) if error.is_internal()
        ));
        assert!(matches!(
            reply_failure(reply("org.pam_mfa.Mfad1.Error.NoSuchSession")),
            Failure::Daemon(error) if !error.is_internal()
        ));
        assert!(matches!(
            reply_failure(ReplyError::Malformed("x".into())),
            Failure::NoAnswer(_)
        ));
    }
}
