//! mfad's login socket, spoken directly: D-Bus peer to peer with blocking I/O, every exchange
//! bounded by the module's timeout. The first call goes out in one write with the handshake
//! (see [`pam_mfa_api::wire`]), so a login is two round trips to mfad and no thread, runtime
//! or bus in between.
#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::io;
use std::path::Path;
use std::time::{Duration, Instant};

use pam_mfa_api::wire::{Wire, client_handshake};
use pam_mfa_api::{Error, LOGIN_INTERFACE, OBJECT_PATH, WireTurn};
use zbus::Message;
use zbus::message::Type;

use crate::failure::{Failure, call_failure, timed_out};
use crate::relay::Daemon;

/// A connection to mfad's login socket whose peer was checked to be root.
pub struct DirectDaemon {
    wire: Wire,
    display: String,
    timeout: Duration,
    /// The first call's deadline: the connection's time counts against it.
    first_deadline: Option<Instant>,
    /// The handshake went out (with the first call).
    shaken: bool,
}

/// Connects to mfad's login socket at `path` and checks that its peer is root, within
/// `timeout`. `Ok(None)` when nothing listens there (no socket, or one left by an mfad that is
/// gone): then the bus decides whether mfad is absent. Nothing is sent yet.
pub fn connect(path: &Path, timeout: Duration) -> Result<Option<DirectDaemon>, Failure> {
    let display = path.display().to_string();
    let deadline = Instant::now() + timeout;
    let stream = match crate::ffi::connect(path, deadline) {
        Ok(stream) => stream,
        Err(error)
            if matches!(
                error.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
            ) =>
        {
            return Ok(None);
        }
        Err(error) => {
            return Err(Failure::NoAnswer(format!(
                "cannot connect to {display}: {error}"
            )));
        }
    };
    let uid = crate::ffi::peer_uid(std::os::fd::AsFd::as_fd(&stream)).map_err(|error| {
        Failure::NoAnswer(format!("cannot identify {display}'s owner: {error}"))
    })?;
    if uid != 0 {
        return Err(Failure::Refused(format!(
            "{display} is served by uid {uid}, not root: not talking to it"
        )));
    }
    Ok(Some(DirectDaemon {
        wire: Wire::new(stream),
        display,
        timeout,
        first_deadline: Some(deadline),
        shaken: false,
    }))
}

impl DirectDaemon {
    /// Calls `member` with `body` and returns the reply, within the timeout. On this socket,
    /// whose peer is root, nothing means "absent": every failure to get an answer is no answer.
    fn call<B>(&mut self, member: &str, body: &B) -> Result<Message, Failure>
    where
        B: zbus::wire::export::serde::Serialize + zbus::wire::DynamicType,
    {
        let deadline = self
            .first_deadline
            .take()
            .unwrap_or_else(|| Instant::now() + self.timeout);
        let lost = |what: &str, error: io::Error| match error.kind() {
            io::ErrorKind::TimedOut => timed_out(member, self.timeout),
            _ => Failure::NoAnswer(format!("{what} {}: {error}", self.display)),
        };
        let call = Message::method_call(OBJECT_PATH, member)
            .interface(LOGIN_INTERFACE)
            .build(body)
            .map_err(|error| {
                Failure::NoAnswer(format!("cannot make the {member} call: {error}"))
            })?;
        let mut bytes = if self.shaken {
            Vec::new()
        } else {
            client_handshake(crate::ffi::euid())
        };
        bytes.extend_from_slice(&call.data()[..]);
        self.wire
            .send(&bytes, deadline)
            .map_err(|error| lost("cannot write to", error))?;
        if !self.shaken {
            self.shaken = true;
            let line = self
                .wire
                .line(deadline)
                .map_err(|error| lost("no handshake from", error))?;
            if !line.starts_with("OK ") {
                return Err(Failure::Refused(format!(
                    "{} refused the handshake: {line:.80}",
                    self.display
                )));
            }
        }
        let serial = call.primary_header().serial_num();
        loop {
            let reply = self
                .wire
                .message(deadline)
                .map_err(|error| lost("cannot read from", error))?;
            if reply.header().reply_serial() != Some(serial) {
                continue;
            }
            return match reply.message_type() {
                Type::MethodReturn => Ok(reply),
                Type::Error => {
                    let error = Error::from(zbus::Error::from(reply));
                    Err(match call_failure(member, error) {
                        Failure::Absent(text) => Failure::NoAnswer(text),
                        other => other,
                    })
                }
                _ => continue,
            };
        }
    }

    fn decode<T>(member: &str, reply: &Message) -> Result<T, Failure>
    where
        T: for<'d> zbus::wire::export::serde::Deserialize<'d> + zbus::wire::Type,
    {
        reply
            .body()
            .deserialize::<T>()
            .map_err(|error| Failure::NoAnswer(format!("mfad's reply to {member}: {error}")))
    }
}

impl Daemon for DirectDaemon {
    async fn begin(
        &mut self,
        user: &str,
        context: &HashMap<&str, &str>,
    ) -> Result<(String, WireTurn), Failure> {
        let reply = self.call("Begin", &(user, context))?;
        Self::decode("Begin", &reply)
    }

    async fn answer(&mut self, session: &str, reply: &str) -> Result<WireTurn, Failure> {
        let reply = self.call("Answer", &(session, reply))?;
        Self::decode("Answer", &reply)
    }

    async fn cancel(&mut self, session: &str) {
        // Best effort: the session also ends with the connection.
        let _ = self.call("Cancel", &(session,));
    }
}
