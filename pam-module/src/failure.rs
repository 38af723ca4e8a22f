//! Why an exchange with the daemon gave no usable answer, for every way of reaching it.
//!
//! Each failure is classified where it happens, from the concrete error: connecting, checking
//! who owns the name, or calling. The fail mode later trusts that classification, so a time-out
//! (which any local user can cause by flooding the bus) never passes for an absent daemon.
#![forbid(unsafe_code)]

use std::io;
use std::time::Duration;

use pam_mfa_api::Error;

/// Why an exchange with the daemon gave no usable answer.
#[derive(Debug)]
pub enum Failure {
    /// The daemon is definitely not there: the bus socket is missing or refuses connections, or
    /// nobody owns the name. Only this lets `failmode=safe` allow a login.
    Absent(String),
    /// Something is there but did not answer: a time-out, no reply, a failed handshake, a
    /// connection dropped mid-call, any other I/O error.
    NoAnswer(String),
    /// We were refused, or refused to talk: the bus policy, an owner of the name that is not
    /// root, or the daemon's own `PermissionDenied`.
    Refused(String),
    /// The daemon answered with one of its own errors (an expired session, an internal failure,
    /// too many requests...). Never a transport error nor `PermissionDenied`.
    Daemon(Error),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Absent(text) | Failure::NoAnswer(text) | Failure::Refused(text) => {
                f.write_str(text)
            }
            Failure::Daemon(error) => write!(f, "{error}"),
        }
    }
}

/// Classifies a failure to connect to the bus (socket, then handshake).
pub fn connect_failure(error: zbus::Error) -> Failure {
    let text = format!("cannot connect to the bus: {error}");
    match &error {
        zbus::Error::Connection(io, _)
            if matches!(
                io.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
            ) =>
        {
            Failure::Absent(text)
        }
        _ => Failure::NoAnswer(text),
    }
}

/// Classifies a failure of the check that root owns the daemon's name.
pub fn owner_failure(error: Error) -> Failure {
    match error {
        Error::NotRoot(text) => Failure::Refused(text),
        other => {
            let text = format!("cannot check who owns {}: {other}", pam_mfa_api::BUS_NAME);
            bus_failure(&other, text)
        }
    }
}

/// Classifies an error that is not the daemon's own answer: absence and the bus policy's
/// refusal by their names, anything else as no answer.
fn bus_failure(error: &Error, text: String) -> Failure {
    if error.is_absent() {
        Failure::Absent(text)
    } else if error.is_access_denied() {
        Failure::Refused(text)
    } else {
        Failure::NoAnswer(text)
    }
}

/// Classifies the failure of a call to the daemon (the connection is up, the owner checked).
pub fn call_failure(what: &str, error: Error) -> Failure {
    match error {
        Error::PermissionDenied(text) => Failure::Refused(text),
        // Absent here: the daemon left between the owner check and this call.
        Error::ZBus(_) => bus_failure(&error, format!("{what} failed: {error}")),
        // Never sent by mfad: whoever sent it is not the daemon we expect.
        Error::NotRoot(text) => Failure::Refused(text),
        other => Failure::Daemon(other),
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
    use std::sync::Arc;

    use zbus::fdo;

    use super::*;

    fn io_error(kind: io::ErrorKind) -> zbus::Error {
        let address: zbus::Address = "unix:path=/nonexistent".parse().unwrap();
        zbus::Error::Connection(Arc::new(io::Error::from(kind)), Box::new(address))
    }

    fn fdo(error: fdo::Error) -> Error {
        Error::ZBus(zbus::Error::FDO(Box::new(error)))
    }

    fn is_absent(failure: &Failure) -> bool {
        matches!(failure, Failure::Absent(_))
    }
    fn is_no_answer(failure: &Failure) -> bool {
        matches!(failure, Failure::NoAnswer(_))
    }
    fn is_refused(failure: &Failure) -> bool {
        matches!(failure, Failure::Refused(_))
    }

    #[test]
    fn only_a_missing_or_refusing_socket_is_absence_when_connecting() {
        assert!(is_absent(&connect_failure(io_error(
            io::ErrorKind::NotFound
        ))));
        assert!(is_absent(&connect_failure(io_error(
            io::ErrorKind::ConnectionRefused
        ))));
        for error in [
            io_error(io::ErrorKind::PermissionDenied),
            io_error(io::ErrorKind::ConnectionReset),
            zbus::Error::Handshake("the server closed the connection".into()),
            zbus::Error::InputOutput(Arc::new(io::Error::from(io::ErrorKind::UnexpectedEof))),
            zbus::Error::InputOutput(Arc::new(io::Error::from(io::ErrorKind::NotFound))),
        ] {
            let text = error.to_string();
            assert!(is_no_answer(&connect_failure(error)), "{text}");
        }
    }

    #[test]
    fn the_owner_check_tells_absence_refusal_and_silence_apart() {
        assert!(is_absent(&owner_failure(fdo(fdo::Error::NameHasNoOwner(
            "no".into()
        )))));
        assert!(is_refused(&owner_failure(Error::NotRoot(
            "uid 1000".into()
        ))));
        assert!(is_refused(&owner_failure(fdo(fdo::Error::AccessDenied(
            "policy".into()
        )))));
        for error in [
            fdo(fdo::Error::NoReply("late".into())),
            fdo(fdo::Error::TimedOut("late".into())),
            fdo(fdo::Error::Disconnected("gone".into())),
            Error::ZBus(zbus::Error::InputOutput(Arc::new(io::Error::from(
                io::ErrorKind::BrokenPipe,
            )))),
        ] {
            let text = error.to_string();
            assert!(is_no_answer(&owner_failure(error)), "{text}");
        }
    }

    #[test]
    fn call_errors_are_classified_by_what_they_say() {
        assert!(is_absent(&call_failure(
            "Begin",
            fdo(fdo::Error::ServiceUnknown("gone".into()))
        )));
        assert!(is_absent(&call_failure(
            "Begin",
            fdo(fdo::Error::NameHasNoOwner("gone".into()))
        )));
        assert!(is_refused(&call_failure(
            "Begin",
            fdo(fdo::Error::AccessDenied("policy".into()))
        )));
        assert!(is_refused(&call_failure(
            "Begin",
            Error::PermissionDenied("not yours".into())
        )));
        for error in [
            fdo(fdo::Error::NoReply("late".into())),
            fdo(fdo::Error::Timeout("late".into())),
            fdo(fdo::Error::LimitsExceeded("flood".into())),
            Error::ZBus(zbus::Error::InputOutput(Arc::new(io::Error::from(
                io::ErrorKind::ConnectionReset,
            )))),
        ] {
            let text = error.to_string();
            assert!(is_no_answer(&call_failure("Answer", error)), "{text}");
        }
        assert!(matches!(
            call_failure("Answer", Error::Internal("disk".into())),
            Failure::Daemon(Error::Internal(_))
        ));
    }
}
