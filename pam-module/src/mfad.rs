//! mfad, reached on its login socket: D-Bus peer to peer with blocking I/O, every exchange
//! bounded by the module's timeout. The first call goes out in one write with the handshake
//! (see [`pam_mfa_login::wire`]), so a login is two round trips to mfad and no thread, runtime
//! or bus in between.
#![forbid(unsafe_code)]

use std::io;
use std::path::Path;
use std::time::{Duration, Instant};

use pam_mfa_login::WireTurn;
use pam_mfa_login::contract::{
    self, Answer, AnswerArgs, Begin, BeginArgs, Begun, Cancel, CancelArgs, Method,
};
use pam_mfa_login::marshal::{ERROR, METHOD_RETURN, read_message};
use pam_mfa_login::wire::{Wire, client_handshake};

use crate::failure::{Failure, connect_failure, io_failure, reply_failure};
use crate::relay::Daemon;

/// A connection to mfad's login socket whose peer was checked to be root.
pub struct Mfad {
    wire: Wire,
    display: String,
    timeout: Duration,
    /// The first call's deadline: the connection's time counts against it.
    first_deadline: Option<Instant>,
    /// The handshake went out (with the first call).
    shaken: bool,
    /// Something came back from mfad on this connection (see [`io_failure`]).
    heard: bool,
    serial: u32,
}

/// Connects to mfad's login socket at `path` and checks that its peer is root, within
/// `timeout`. Nothing is sent yet.
pub fn connect(path: &Path, timeout: Duration) -> Result<Mfad, Failure> {
    let display = path.display().to_string();
    let deadline = Instant::now() + timeout;
    let stream =
        crate::ffi::connect(path, deadline).map_err(|error| connect_failure(&display, &error))?;
    // Under socket activation the peer is the listening socket's maker, systemd: root too.
    let uid = crate::ffi::peer_uid(std::os::fd::AsFd::as_fd(&stream)).map_err(|error| {
        Failure::NoAnswer(format!("cannot identify {display}'s owner: {error}"))
    })?;
    if uid != 0 {
        return Err(Failure::Refused(format!(
            "{display} is served by uid {uid}, not root: not talking to it"
        )));
    }
    Ok(Mfad {
        wire: Wire::new(stream),
        display,
        timeout,
        first_deadline: Some(deadline),
        shaken: false,
        heard: false,
        serial: 0,
    })
}

impl Mfad {
    /// Calls `M` with `args` and returns its reply, within the timeout.
    fn call<M: Method>(&mut self, args: &M::Args<'_>, room: usize) -> Result<M::Reply, Failure> {
        let deadline = self
            .first_deadline
            .take()
            .unwrap_or_else(|| Instant::now() + self.timeout);
        self.serial += 1;
        let serial = self.serial;
        let call = contract::call::<M>(serial, args, room).map_err(|error| {
            Failure::NoAnswer(format!("cannot make the {} call: {error}", M::MEMBER))
        })?;
        let sent = if self.shaken {
            self.wire.send(&call, deadline)
        } else {
            let mut bytes = zeroize::Zeroizing::new(client_handshake(crate::ffi::euid()));
            bytes.reserve_exact(call.len());
            bytes.extend_from_slice(&call);
            self.wire.send(&bytes, deadline)
        };
        if let Err(error) = sent {
            // mfad may have refused the connection before reading it: its line says why.
            if !self.shaken {
                match self.wire.line(deadline) {
                    Ok(line) => return Err(self.refused(&line)),
                    Err(_) => self.heard |= self.wire.has_buffered(),
                }
            }
            return Err(self.lost::<M>("cannot write to", &error));
        }
        if !self.shaken {
            self.shaken = true;
            let line = match self.wire.line(deadline) {
                Ok(line) => line,
                Err(error) => {
                    // Part of a line is an answer too: something is there.
                    self.heard |= self.wire.has_buffered();
                    return Err(self.lost::<M>("no handshake from", &error));
                }
            };
            self.heard = true;
            if !line.starts_with("OK ") {
                return Err(self.refused(&line));
            }
        }
        loop {
            let bytes = self
                .wire
                .message(deadline)
                .map_err(|error| self.lost::<M>("cannot read from", &error))?;
            let message = read_message(&bytes).map_err(|error| {
                Failure::NoAnswer(format!("mfad's reply to {}: {error}", M::MEMBER))
            })?;
            let answers = matches!(message.kind, METHOD_RETURN | ERROR)
                && message.reply_serial == Some(serial);
            if answers {
                return contract::reply::<M>(&message).map_err(reply_failure);
            }
        }
    }

    fn lost<M: Method>(&self, what: &str, error: &io::Error) -> Failure {
        io_failure(
            &self.display,
            (M::MEMBER, what),
            error,
            self.timeout,
            self.heard,
        )
    }

    fn refused(&self, line: &str) -> Failure {
        let reason = line.strip_prefix("ERROR ").unwrap_or(line);
        Failure::Refused(format!(
            "mfad refused the connection on {}: {reason:.120}",
            self.display
        ))
    }
}

impl Daemon for Mfad {
    fn begin(&mut self, user: &str, context: &[(&str, &str)]) -> Result<Begun, Failure> {
        // This connection carries this login alone: mfad may close it once the login ends.
        let mut context = context.to_vec();
        context.push((pam_mfa_login::context::ONE_LOGIN, "1"));
        let args = BeginArgs { user, context };
        let room = user.len()
            + args
                .context
                .iter()
                .map(|(k, v)| k.len() + v.len() + 16)
                .sum::<usize>();
        self.call::<Begin>(&args, room)
    }

    fn answer(&mut self, session: &str, reply: &str) -> Result<WireTurn, Failure> {
        let args = AnswerArgs { session, reply };
        self.call::<Answer>(&args, session.len() + reply.len())
    }

    fn cancel(&mut self, session: &str) {
        // Best effort: the session also ends with the connection.
        let _ = self.call::<Cancel>(&CancelArgs { session }, session.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::net::UnixStream;

    /// A connection to `peer`'s other end, as [`connect`] makes it (the peer's uid aside).
    fn connected(timeout: Duration) -> (Mfad, UnixStream) {
        let (ours, peer) = UnixStream::pair().unwrap();
        let mfad = Mfad {
            wire: Wire::new(ours),
            display: "the socket".into(),
            timeout,
            first_deadline: Some(Instant::now() + timeout),
            shaken: false,
            heard: false,
            serial: 0,
        };
        (mfad, peer)
    }

    #[test]
    fn a_peer_that_closes_after_part_of_a_line_is_not_absent() {
        let (mut mfad, mut peer) = connected(Duration::from_secs(5));
        peer.write_all(b"OK 0123").unwrap();
        peer.shutdown(std::net::Shutdown::Write).unwrap();
        let failure = mfad.begin("alice", &[]).err().unwrap();
        assert!(matches!(failure, Failure::NoAnswer(_)), "{failure:?}");
    }

    #[test]
    fn a_peer_that_closes_without_a_byte_is_absent() {
        let (mut mfad, peer) = connected(Duration::from_secs(5));
        peer.shutdown(std::net::Shutdown::Write).unwrap();
        let failure = mfad.begin("alice", &[]).err().unwrap();
        assert!(matches!(failure, Failure::Absent(_)), "{failure:?}");
        drop(peer);
    }
}
