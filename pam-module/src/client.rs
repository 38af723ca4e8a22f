//! The daemon over D-Bus, every exchange bounded by the module's timeout.
//!
//! Each failure is classified where it happens, from the concrete error: connecting, checking
//! who owns the name, or calling. The fail mode later trusts that classification, so a time-out
//! (which any local user can cause by flooding the bus) never passes for an absent daemon.
#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::time::Duration;

use pam_mfa_api::proxy::LoginProxy;
use pam_mfa_api::{Error, WireTurn};
use zbus::Connection;
use zruntime::SharedRuntime;

use crate::relay::Daemon;

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

/// `mfad` over D-Bus (when it does not listen on its login socket, or with `bus=` alone). The
/// connection is made on the first call, inside its time limit, and checked before anything is
/// sent: the owner of the bus name must be root.
pub struct BusDaemon {
    address: String,
    timeout: Duration,
    runtime: SharedRuntime,
    connection: Option<Connection>,
    owner_checked: bool,
}

impl BusDaemon {
    pub fn new(address: String, timeout: Duration, runtime: SharedRuntime) -> Self {
        BusDaemon {
            address,
            timeout,
            runtime,
            connection: None,
            owner_checked: false,
        }
    }

    /// The Login proxy on the connection, made and checked on first use. The connection is
    /// kept even when the owner check fails, so that [`BusDaemon::close`] closes it.
    async fn login_proxy(&mut self) -> Result<LoginProxy<'static>, Failure> {
        let connection = match &self.connection {
            Some(connection) => connection.clone(),
            None => {
                let built = zbus::connection::Builder::address(self.address.as_str())
                    .build()
                    .await
                    .map_err(connect_failure)?;
                self.connection.insert(built).clone()
            }
        };
        if !self.owner_checked {
            pam_mfa_api::owner::ensure_root_owner(&connection)
                .await
                .map_err(owner_failure)?;
            self.owner_checked = true;
        }
        LoginProxy::builder(&connection)
            .cache_properties(zbus::proxy::CacheProperties::No)
            .build()
            .await
            .map_err(|error| Failure::NoAnswer(format!("cannot set up the call: {error}")))
    }

    /// Closes the connection and lets its tasks finish, so no thread or descriptor outlives the
    /// call. The runtime is the calling thread's own (the free `block_on`), which goes away when
    /// nothing holds it any more.
    pub async fn close(&mut self) {
        if let Some(connection) = self.connection.take() {
            let _ = connection.close().await;
        }
        // One turn lets the runtime run the tasks the close woke (the socket reader's end).
        // Without it, they were left for a helper thread in a share of the calls.
        yield_now().await;
    }
}

/// Runs `work`, failing with [`Failure::NoAnswer`] if it takes longer than `limit`.
async fn bounded<T>(
    runtime: &SharedRuntime,
    limit: Duration,
    what: &str,
    work: impl Future<Output = Result<T, Failure>>,
) -> Result<T, Failure> {
    runtime
        .timeout(limit, work)
        .await
        .unwrap_or_else(|_| Err(timed_out(what, limit)))
}

impl Daemon for BusDaemon {
    async fn begin(
        &mut self,
        user: &str,
        context: &HashMap<&str, &str>,
    ) -> Result<(String, WireTurn), Failure> {
        let (runtime, limit) = (self.runtime.clone(), self.timeout);
        let work = async {
            let proxy = self.login_proxy().await?;
            proxy
                .begin(user, context.clone())
                .await
                .map_err(|error| call_failure("Begin", error))
        };
        bounded(&runtime, limit, "Begin", work).await
    }

    async fn answer(&mut self, session: &str, reply: &str) -> Result<WireTurn, Failure> {
        let (runtime, limit) = (self.runtime.clone(), self.timeout);
        let work = async {
            let proxy = self.login_proxy().await?;
            proxy
                .answer(session, reply)
                .await
                .map_err(|error| call_failure("Answer", error))
        };
        bounded(&runtime, limit, "Answer", work).await
    }

    async fn cancel(&mut self, session: &str) {
        let (runtime, limit) = (self.runtime.clone(), self.timeout);
        let work = async {
            let proxy = self.login_proxy().await?;
            proxy
                .cancel(session)
                .await
                .map_err(|error| call_failure("Cancel", error))
        };
        // Best effort: the session also expires, and dies with the connection.
        let _ = bounded(&runtime, limit, "Cancel", work).await;
    }
}

/// Gives the runtime one turn, so tasks woken by a drop can finish before the call returns.
async fn yield_now() {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if yielded {
            std::task::Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        }
    })
    .await
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
