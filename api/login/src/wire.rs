//! The login socket's wire: D-Bus peer to peer, as the specification defines it, read and
//! written in the calling thread on a Unix stream socket, which waits for its peer in poll(2).
//!
//! A login is two calls. Served through a bus library's connection (its reader task, its
//! executor, its handshake round trips), those two calls cost more CPU than the login's own
//! work. On mfad's login socket both ends are ours, so each end speaks the protocol directly:
//! the client sends its authentication, `BEGIN` and its first call in one write (the
//! specification allows a client to pipeline them), the server answers the handshake and the
//! call in one write, and messages are written and read by [`crate::marshal`]. Any other D-Bus
//! client (a zbus peer-to-peer connection, `gdbus`) still talks to mfad's socket.
//!
//! Every read and write is bounded by a deadline the caller gives; nothing here waits longer.
//! An end waits for its peer in poll(2), for the one event it needs, and then reads or writes
//! without blocking: a recv(2) blocked on a Unix stream socket is also woken each time the
//! peer reads what this end sent (room to write came back), only to sleep again, which would
//! wake both ends for nothing at every call. The deadline is poll's own time-out, so no socket
//! time-out is set either.

use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use zeroize::{Zeroize, Zeroizing};

/// Longest message a client accepts (mfad's replies): a turn with a QR code is a few kilobytes.
pub const MAX_MESSAGE_LEN: usize = 256 * 1024;
/// Longest call mfad accepts (see [`Wire::max_message`]): a login's calls carry a user name of
/// at most 255 bytes, four context values of at most 128 characters and replies of at most 64
/// bytes, a few hundred bytes in all, and a call up to this size gets an answer (a name too
/// long to be one is denied by name, as on the bus). A longer one is answered with an error
/// and its connection closed, so that a connection holds at most this much unread, and all
/// the connections mfad serves at once hold a few megabytes together.
pub const MAX_CALL_LEN: usize = 8 * 1024;
/// Bytes asked of the socket at each read.
const READ_SIZE: usize = 4096;
/// Longest line of the authentication handshake, without its `\r\n`; a longer one closes the
/// connection, whether or not its end has come.
pub const MAX_LINE_LEN: usize = 512;
/// The fixed part of a message header, which gives the message's whole length.
const FIXED_HEADER_LEN: usize = 16;

/// The client's whole handshake for `uid`, ready to be followed by its first message:
/// the credentials byte, `AUTH EXTERNAL` with the uid (hex of its decimal digits) and `BEGIN`.
pub fn client_handshake(uid: u32) -> Vec<u8> {
    let hex: String = uid
        .to_string()
        .bytes()
        .map(|digit| format!("{digit:02x}"))
        .collect();
    format!("\0AUTH EXTERNAL {hex}\r\nBEGIN\r\n").into_bytes()
}

/// The uid an `AUTH EXTERNAL` names (hex of its decimal digits), if it is well formed.
pub fn external_uid(hex: &str) -> Option<u32> {
    if hex.is_empty() || !hex.len().is_multiple_of(2) || hex.len() > 20 {
        return None;
    }
    let digits: Option<String> = (0..hex.len())
        .step_by(2)
        .map(|at| {
            u8::from_str_radix(hex.get(at..at + 2)?, 16)
                .ok()
                .filter(u8::is_ascii_digit)
                .map(char::from)
        })
        .collect();
    digits?.parse().ok()
}

/// A message longer than the end that reads it takes (see [`Wire::max_message`]): the error
/// [`Wire::message`] gives for it, with what its header says, so that a server can answer the
/// call with an error before it closes the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TooLong {
    /// The message's serial, from its fixed header.
    pub serial: u32,
    /// Its length, as its header gives it.
    pub len: usize,
    /// The longest taken.
    pub max: usize,
}

impl std::fmt::Display for TooLong {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "a message of {} bytes is longer than the {} taken here",
            self.len, self.max
        )
    }
}

impl std::error::Error for TooLong {}

impl TooLong {
    /// The [`TooLong`] that `error` (from [`Wire::message`]) is, if it is one.
    pub fn of(error: &io::Error) -> Option<&TooLong> {
        error.get_ref()?.downcast_ref()
    }
}

/// The length of the message whose first 16 bytes are `head`, or why it cannot be one (a
/// message longer than `max` bytes is [`TooLong`]).
pub fn message_len(head: &[u8; FIXED_HEADER_LEN], max: usize) -> Result<usize, io::Error> {
    let word = |at: usize| {
        let bytes = [head[at], head[at + 1], head[at + 2], head[at + 3]];
        match head[0] {
            b'B' => u32::from_be_bytes(bytes),
            _ => u32::from_le_bytes(bytes),
        }
    };
    if !matches!(head[0], b'l' | b'B') {
        return Err(invalid(format!(
            "not a D-Bus message (byte order {:#04x})",
            head[0]
        )));
    }
    if head[3] != 1 {
        return Err(invalid(format!(
            "D-Bus protocol version {} is not 1",
            head[3]
        )));
    }
    let (body, fields) = (word(4) as usize, word(12) as usize);
    match FIXED_HEADER_LEN
        .checked_add(fields)
        .and_then(|header| header.checked_next_multiple_of(8))
        .and_then(|header| header.checked_add(body))
    {
        Some(len) if len <= max => Ok(len),
        len => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            TooLong {
                serial: word(8),
                len: len.unwrap_or(usize::MAX),
                max,
            },
        )),
    }
}

fn invalid(text: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, text.into())
}

/// One end of a login socket connection: reads lines and messages through a buffer, writes
/// whole buffers, each within the deadline it is given. What it read is wiped when it is
/// dropped.
pub struct Wire {
    stream: UnixStream,
    buffer: Vec<u8>,
    start: usize,
    /// The longest message taken.
    max_message: usize,
}

impl Drop for Wire {
    fn drop(&mut self) {
        self.buffer.zeroize();
    }
}

fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "timed out")
}

/// What is left of `deadline`; none left is a time-out.
pub fn time_left(deadline: Instant) -> io::Result<std::time::Duration> {
    deadline
        .checked_duration_since(Instant::now())
        .filter(|left| !left.is_zero())
        .ok_or_else(timed_out)
}

impl Wire {
    pub fn new(stream: UnixStream) -> Wire {
        Wire {
            stream,
            buffer: Vec::with_capacity(READ_SIZE),
            start: 0,
            max_message: MAX_MESSAGE_LEN,
        }
    }

    /// Takes messages of at most `max` bytes (instead of [`MAX_MESSAGE_LEN`]): a longer one is
    /// an error ([`TooLong`]) as soon as its header is read, before the rest of it is.
    pub fn max_message(mut self, max: usize) -> Wire {
        self.max_message = max;
        self
    }

    /// Reads more bytes into the buffer; an end of stream is `UnexpectedEof`.
    fn fill(&mut self, deadline: Instant) -> io::Result<()> {
        // Bytes already taken go before more are read: the buffer holds at most one message
        // and what came with it (a peer never makes it grow by leaving messages half sent).
        if self.start > 0 {
            let len = self.buffer.len();
            self.buffer.drain(..self.start);
            // What was taken is wiped from the room the buffer keeps (it may have been a code).
            let kept = self.buffer.len();
            self.buffer.resize(len, 0);
            self.buffer.truncate(kept);
            self.start = 0;
        }
        let len = self.buffer.len();
        self.reserve(READ_SIZE);
        self.buffer.resize(len + READ_SIZE, 0);
        let read = loop {
            let ready = time_left(deadline).and_then(|left| wait(&self.stream, libc::POLLIN, left));
            if let Err(error) = ready {
                self.buffer.truncate(len);
                return Err(error);
            }
            match recv_now(&self.stream, &mut self.buffer[len..]) {
                Ok(read) => break read,
                // Nothing yet (the wait ended early, or was interrupted): the deadline
                // decides, above.
                Err(error)
                    if matches!(
                        error.kind(),
                        io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock
                    ) => {}
                Err(error) => {
                    self.buffer.truncate(len);
                    return Err(error);
                }
            }
        };
        self.buffer.truncate(len + read);
        if read == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the other end closed the connection",
            ));
        }
        Ok(())
    }

    /// Makes room for `more` bytes. When the buffer must grow, the old allocation is wiped
    /// before it is freed, so that no copy of what was read stays behind in freed memory.
    fn reserve(&mut self, more: usize) {
        let needed = self.buffer.len() + more;
        if needed > self.buffer.capacity() {
            let mut grown = Vec::with_capacity(needed.max(2 * self.buffer.capacity()));
            grown.extend_from_slice(&self.buffer);
            self.buffer.zeroize();
            self.buffer = grown;
        }
    }

    fn buffered(&self) -> &[u8] {
        &self.buffer[self.start..]
    }

    /// The next byte.
    pub fn byte(&mut self, deadline: Instant) -> io::Result<u8> {
        while self.buffered().is_empty() {
            self.fill(deadline)?;
        }
        self.start += 1;
        Ok(self.buffer[self.start - 1])
    }

    /// The next handshake line, without its `\r\n`; one longer than [`MAX_LINE_LEN`] is an
    /// error, whatever follows it.
    pub fn line(&mut self, deadline: Instant) -> io::Result<String> {
        // The line and its `\r\n` at most.
        const LONGEST: usize = MAX_LINE_LEN + 2;
        loop {
            let buffered = self.buffered();
            let window = &buffered[..buffered.len().min(LONGEST)];
            if let Some(end) = window.windows(2).position(|pair| pair == b"\r\n") {
                let line = &self.buffered()[..end];
                let text = std::str::from_utf8(line)
                    .ok()
                    .filter(|text| text.is_ascii())
                    .ok_or_else(|| invalid("a handshake line that is not ASCII"))?
                    .to_owned();
                self.start += end + 2;
                return Ok(text);
            }
            if buffered.len() >= LONGEST {
                return Err(invalid(format!(
                    "a handshake line longer than {MAX_LINE_LEN} bytes"
                )));
            }
            self.fill(deadline)?;
        }
    }

    /// The bytes of the next message, whole (read them with [`crate::marshal::read_message`]).
    /// They are wiped when dropped, as what they were read through is: a message may carry a
    /// code.
    pub fn message(&mut self, deadline: Instant) -> io::Result<Zeroizing<Vec<u8>>> {
        while self.buffered().len() < FIXED_HEADER_LEN {
            self.fill(deadline)?;
        }
        let mut head = [0u8; FIXED_HEADER_LEN];
        head.copy_from_slice(&self.buffered()[..FIXED_HEADER_LEN]);
        let len = message_len(&head, self.max_message)?;
        while self.buffered().len() < len {
            self.fill(deadline)?;
        }
        let bytes = Zeroizing::new(self.buffered()[..len].to_vec());
        self.start += len;
        Ok(bytes)
    }

    /// Whether bytes that were read are still waiting to be taken.
    pub fn has_buffered(&self) -> bool {
        !self.buffered().is_empty()
    }

    /// Writes all of `bytes`, waiting for room within what is left of `deadline` (a peer that
    /// reads slowly cannot stretch it). Never raises SIGPIPE (MSG_NOSIGNAL): the module runs
    /// inside login programs, which a signal from a closed connection would end.
    pub fn send(&mut self, mut bytes: &[u8], deadline: Instant) -> io::Result<()> {
        // Nothing goes out once the deadline has passed: a call sent after its caller gave up
        // would still be answered (and a login begun for nobody).
        time_left(deadline)?;
        while !bytes.is_empty() {
            match send_now(&self.stream, bytes) {
                Ok(0) => return Err(io::Error::from(io::ErrorKind::WriteZero)),
                Ok(sent) => bytes = &bytes[sent..],
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    wait(&self.stream, libc::POLLOUT, time_left(deadline)?)?;
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(error),
            }
        }
        Ok(())
    }
}

/// Waits at most `left` for `event` (POLLIN or POLLOUT) on `stream`, or for its end or an
/// error, which the read or write that follows reports. An interrupted wait, or one that ran
/// out, returns as well: the caller's deadline decides whether to wait again.
#[allow(unsafe_code)]
fn wait(stream: &UnixStream, event: libc::c_short, left: Duration) -> io::Result<()> {
    let mut poll = libc::pollfd {
        fd: stream.as_raw_fd(),
        events: event,
        revents: 0,
    };
    let timeout = libc::timespec {
        tv_sec: libc::time_t::try_from(left.as_secs()).unwrap_or(libc::time_t::MAX),
        // Below a billion: it fits.
        tv_nsec: left.subsec_nanos() as libc::c_long,
    };
    // SAFETY: one pollfd, live for the call, which ppoll(2) fills in; the time-out is a valid
    // timespec it only reads; no signal mask is passed.
    let ready = unsafe { libc::ppoll(&mut poll, 1, &timeout, std::ptr::null()) };
    if ready < 0 {
        let error = io::Error::last_os_error();
        if error.kind() != io::ErrorKind::Interrupted {
            return Err(error);
        }
    }
    Ok(())
}

/// One recv(2) that does not wait (MSG_DONTWAIT): nothing to read yet is `WouldBlock`.
#[allow(unsafe_code)]
fn recv_now(stream: &UnixStream, buffer: &mut [u8]) -> io::Result<usize> {
    // SAFETY: the descriptor is the stream's, open for the call; the pointer and length are
    // those of a live, writable slice, which recv(2) writes at most `len` bytes into.
    let read = unsafe {
        libc::recv(
            stream.as_raw_fd(),
            buffer.as_mut_ptr().cast(),
            buffer.len(),
            libc::MSG_DONTWAIT,
        )
    };
    if read < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(read as usize)
}

/// One send(2) that does not wait (MSG_DONTWAIT) and raises no SIGPIPE (MSG_NOSIGNAL): no
/// room yet is `WouldBlock`.
#[allow(unsafe_code)]
fn send_now(stream: &UnixStream, bytes: &[u8]) -> io::Result<usize> {
    // SAFETY: the descriptor is the stream's, open for the call; the pointer and length are
    // those of a live slice, which send(2) only reads.
    let sent = unsafe {
        libc::send(
            stream.as_raw_fd(),
            bytes.as_ptr().cast(),
            bytes.len(),
            libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT,
        )
    };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(sent as usize)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use zbus::Message;

    #[test]
    fn the_handshake_names_the_uid_as_hex_of_its_digits() {
        assert_eq!(
            client_handshake(1000),
            b"\0AUTH EXTERNAL 31303030\r\nBEGIN\r\n"
        );
        assert_eq!(external_uid("31303030"), Some(1000));
        assert_eq!(external_uid("30"), Some(0));
        for bad in ["", "3", "zz", "41", "3g", "3131313131313131313131313131"] {
            assert_eq!(external_uid(bad), None, "{bad}");
        }
    }

    #[test]
    fn messages_are_framed_by_their_header_and_checked() {
        let message = Message::method_call(crate::OBJECT_PATH, "Begin")
            .interface(crate::LOGIN_INTERFACE)
            .build(&("alice", std::collections::HashMap::<String, String>::new()))
            .unwrap();
        let bytes = message.data().to_vec();
        let mut head = [0u8; FIXED_HEADER_LEN];
        head.copy_from_slice(&bytes[..FIXED_HEADER_LEN]);
        assert_eq!(message_len(&head, MAX_MESSAGE_LEN).unwrap(), bytes.len());
        // zbus's message reads as the contract's call.
        let parsed = crate::marshal::read_message(&bytes).unwrap();
        assert_eq!(parsed.member, Some("Begin"));
        assert!(matches!(
            crate::contract::read_call(&parsed),
            Ok(crate::contract::Call::Begin(_))
        ));

        // Too long, a wrong version, not D-Bus, and garbage after a good header.
        let mut long = head;
        long[4..8].copy_from_slice(&(MAX_MESSAGE_LEN as u32).to_le_bytes());
        let error = message_len(&long, MAX_MESSAGE_LEN).unwrap_err();
        assert!(error.to_string().contains("longer than"), "{error}");
        let too_long = TooLong::of(&error).unwrap();
        assert_eq!(too_long.serial, message.primary_header().serial_num().get());
        // A server's lower limit.
        let error = message_len(&head, bytes.len() - 1).unwrap_err();
        assert_eq!(TooLong::of(&error).unwrap().len, bytes.len());
        let mut version = head;
        version[3] = 2;
        let error = message_len(&version, MAX_MESSAGE_LEN).unwrap_err();
        assert!(error.to_string().contains("version 2"), "{error}");
        assert!(TooLong::of(&error).is_none());
        let mut other = head;
        other[0] = b'x';
        assert!(
            message_len(&other, MAX_MESSAGE_LEN)
                .unwrap_err()
                .to_string()
                .contains("not a D-Bus message")
        );
        let mut garbage = bytes;
        for byte in &mut garbage[FIXED_HEADER_LEN..] {
            *byte = 0xff;
        }
        assert!(crate::marshal::read_message(&garbage).is_err());
    }

    #[test]
    fn a_handshake_line_is_bounded_whatever_it_ends_with() {
        let deadline = Instant::now() + Duration::from_secs(5);
        let longest = "A".repeat(MAX_LINE_LEN);
        for (line, taken) in [
            (format!("{longest}\r\n"), true),
            (format!("{longest}B\r\n"), false),
            (format!("AUTH EXTERNAL {}\r\n", "3".repeat(4000)), false),
            ("A".repeat(4000), false),
        ] {
            let (client, server) = UnixStream::pair().unwrap();
            let mut client = Wire::new(client);
            client.send(line.as_bytes(), deadline).unwrap();
            // A line without its end is refused as soon as it is too long, without waiting.
            let mut server = Wire::new(server);
            let read = server.line(deadline);
            assert_eq!(read.is_ok(), taken, "{} bytes: {read:?}", line.len());
            if let Err(error) = read {
                assert_eq!(error.kind(), io::ErrorKind::InvalidData);
                assert!(error.to_string().contains("longer than 512"), "{error}");
            }
        }
    }

    #[test]
    fn a_message_longer_than_the_reader_takes_is_refused_by_its_header() {
        let deadline = Instant::now() + Duration::from_secs(5);
        let call = Message::method_call(crate::OBJECT_PATH, "Begin")
            .interface(crate::LOGIN_INTERFACE)
            .build(&(
                "x".repeat(MAX_CALL_LEN),
                std::collections::HashMap::<String, String>::new(),
            ))
            .unwrap();
        let serial = call.primary_header().serial_num().get();
        let (client, server) = UnixStream::pair().unwrap();
        // Only the header is sent: the refusal does not wait for the rest.
        Wire::new(client)
            .send(&call.data()[..64], deadline)
            .unwrap();
        let error = Wire::new(server)
            .max_message(MAX_CALL_LEN)
            .message(deadline)
            .unwrap_err();
        let too_long = TooLong::of(&error).unwrap();
        assert_eq!((too_long.serial, too_long.max), (serial, MAX_CALL_LEN));
        assert!(too_long.len > MAX_CALL_LEN);
    }

    #[test]
    fn what_was_taken_leaves_the_buffer() {
        // Many calls in a row: each read ends inside a message, so the buffer is never empty;
        // it must still hold no more than one read and one message.
        let (client, server) = UnixStream::pair().unwrap();
        let deadline = Instant::now() + std::time::Duration::from_secs(5);
        let call = Message::method_call(crate::OBJECT_PATH, "Cancel")
            .interface(crate::LOGIN_INTERFACE)
            .build(&("x".repeat(150),))
            .unwrap();
        let bytes: Vec<u8> = (0..200).flat_map(|_| call.data().to_vec()).collect();
        let writer = std::thread::spawn(move || {
            Wire::new(client).send(&bytes, deadline).unwrap();
        });
        let mut server = Wire::new(server);
        for _ in 0..200 {
            server.message(deadline).unwrap();
            assert!(
                server.buffer.len() <= 4096 + call.data().len(),
                "{} bytes held",
                server.buffer.len()
            );
        }
        writer.join().unwrap();
    }

    #[test]
    fn a_peer_that_reads_slowly_cannot_stretch_a_send_past_its_deadline() {
        // The peer takes a little every 100 ms, so no single write waits as long as the
        // deadline; the send as a whole must still end at it, not when the peer gives up.
        let (ours, theirs) = UnixStream::pair().unwrap();
        let reader = std::thread::spawn(move || {
            let mut theirs = theirs;
            let until = Instant::now() + std::time::Duration::from_secs(3);
            let mut chunk = vec![0u8; 64 * 1024];
            while Instant::now() < until && theirs.read(&mut chunk).is_ok_and(|read| read > 0) {
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        });
        let deadline = Instant::now() + std::time::Duration::from_millis(300);
        let sent = Wire::new(ours).send(&vec![0u8; 4 << 20], deadline);
        assert_eq!(sent.unwrap_err().kind(), io::ErrorKind::TimedOut);
        reader.join().unwrap();
    }

    /// Voluntary context switches of the calling thread so far.
    fn sleeps_of_this_thread() -> u64 {
        let status = std::fs::read_to_string("/proc/thread-self/status").unwrap();
        let line = status
            .lines()
            .find(|line| line.starts_with("voluntary_ctxt_switches:"))
            .unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    #[test]
    fn a_wait_for_the_reply_is_not_woken_when_the_peer_reads_the_call() {
        // A blocked recv(2) on a Unix stream socket is woken each time the peer reads what
        // was sent on it (room to write came back), and goes to sleep again: a wake-up of each
        // end for nothing at every call. Waiting for the reply must sleep once.
        let (ours, theirs) = UnixStream::pair().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let call = Message::method_call(crate::OBJECT_PATH, "Cancel")
            .interface(crate::LOGIN_INTERFACE)
            .build(&("session",))
            .unwrap();
        let bytes = call.data().to_vec();
        let len = bytes.len();
        let peer = std::thread::spawn(move || {
            let mut theirs = theirs;
            // Read the call once the caller waits, and answer a while later.
            std::thread::sleep(Duration::from_millis(100));
            let mut read = vec![0u8; len];
            theirs.read_exact(&mut read).unwrap();
            std::thread::sleep(Duration::from_millis(100));
            std::io::Write::write_all(&mut theirs, &read).unwrap();
        });
        let mut wire = Wire::new(ours);
        wire.send(&bytes, deadline).unwrap();
        let before = sleeps_of_this_thread();
        let reply = wire.message(deadline).unwrap();
        let slept = sleeps_of_this_thread() - before;
        assert_eq!(&reply[..], &bytes[..]);
        // Once, or not at all if this thread came to wait only after the reply.
        assert!(slept <= 1, "the wait for one reply slept {slept} times");
        peer.join().unwrap();
    }

    #[test]
    fn nothing_is_sent_once_the_deadline_has_passed() {
        let (ours, theirs) = UnixStream::pair().unwrap();
        let passed = Instant::now();
        std::thread::sleep(Duration::from_millis(5));
        let sent = Wire::new(ours).send(b"BEGIN\r\n", passed);
        assert_eq!(sent.unwrap_err().kind(), io::ErrorKind::TimedOut);
        // Our end is gone: the peer reads the end of the stream, and no byte before it.
        let mut heard = Vec::new();
        let mut theirs = theirs;
        theirs.read_to_end(&mut heard).unwrap();
        assert!(heard.is_empty(), "{heard:?}");
    }

    #[test]
    fn a_wire_reads_lines_and_messages_from_one_stream() {
        let (client, server) = UnixStream::pair().unwrap();
        let deadline = Instant::now() + std::time::Duration::from_secs(5);
        let message = Message::method_call(crate::OBJECT_PATH, "Cancel")
            .interface(crate::LOGIN_INTERFACE)
            .build(&("session",))
            .unwrap();
        let mut bytes = client_handshake(0);
        bytes.extend_from_slice(&message.data()[..]);
        let mut client = Wire::new(client);
        client.send(&bytes, deadline).unwrap();
        let mut server = Wire::new(server);
        assert_eq!(server.byte(deadline).unwrap(), 0);
        assert_eq!(server.line(deadline).unwrap(), "AUTH EXTERNAL 30");
        assert_eq!(server.line(deadline).unwrap(), "BEGIN");
        let read = server.message(deadline).unwrap();
        let read = crate::marshal::read_message(&read).unwrap();
        assert_eq!(read.body().str().unwrap(), "session");
        assert!(!server.has_buffered());
        // Nothing more comes: the deadline ends the wait.
        let soon = Instant::now() + std::time::Duration::from_millis(50);
        assert_eq!(
            server.message(soon).unwrap_err().kind(),
            io::ErrorKind::TimedOut
        );
        drop(client);
        assert_eq!(
            server.line(deadline).unwrap_err().kind(),
            io::ErrorKind::UnexpectedEof
        );
    }
}
