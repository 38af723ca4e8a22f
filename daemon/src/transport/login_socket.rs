//! mfad's login socket: the Login interface served peer to peer over D-Bus, without the
//! system bus in between. The caller of every call on a connection is the socket's peer, as the
//! kernel reports it (SO_PEERCRED) when the connection is accepted; the per-uid limits and the
//! end of a connection's logins with it are those of the bus.
//!
//! Each connection is served by one thread with blocking I/O, from the handshake to its close:
//! a login wakes mfad once per message and its work is done where the message was read. Idle
//! threads wait in `accept` themselves (a few are kept; more are started when all are busy),
//! so no thread hands a connection to another.
//!
//! A connection's thread is held only as long as the limits let it be, so that no set of
//! unprivileged uids can take what other users' logins need:
//! - 1024 connections for root, and 256 for every other uid together, each uid at most 16
//!   (counting its connections over the bus). Of the 256, the last 64 are kept for each uid's
//!   first 2 connections: uids that hold all they may (16 uids of 16) leave room for another
//!   user's login (see [`super::identity`]).
//! - A connection with a login waiting for its answer is closed after `login.session_timeout`
//!   (plus 5 s) without one; any other after 10 s ([`IDLE_WITHOUT_LOGIN`]). Only a call that
//!   moves a login on counts: calls that are refused or begin nothing do not keep a
//!   connection open, and a connection begins at most 8 logins ([`MAX_LOGINS_PER_CONNECTION`]),
//!   so no connection is kept open for ever. A connection whose client says it carries one
//!   login (the module does: [`pam_mfa_api::context::ONE_LOGIN`]) is closed as soon as none of
//!   its logins waits for an answer, without waiting for the client to close it.
//! - A handshake line is at most 512 bytes and a call at most 8 KiB
//!   ([`pam_mfa_api::wire::MAX_CALL_LEN`]); anything longer closes the connection (a call is
//!   answered with an error first). A connection that stalls holds at most that much, and no
//!   one else up.

use std::collections::{HashMap, HashSet};
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
use pam_mfa_api::contract::{self, Answer, Begin, Begun, Call, Cancel, errors};
use pam_mfa_api::marshal::{METHOD_CALL, read_message};
use pam_mfa_api::wire::{MAX_CALL_LEN, TooLong, Wire, external_uid};
use pam_mfa_api::{Error, Turn, WireTurn};
use zbus::DBusError;
use zeroize::Zeroizing;

use super::Shared;
use crate::core::Caller;
use crate::log;

/// How long a client may take over the D-Bus handshake before its connection is closed.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshake lines a client may send (AUTH, DATA, NEGOTIATE_UNIX_FD, BEGIN and a few retries).
const HANDSHAKE_LINES: usize = 8;
/// How long a reply may take to be written (the peer must read it) before the connection is
/// closed.
const REPLY_TIMEOUT: Duration = Duration::from_secs(30);
/// Idle time allowed beyond `login.session_timeout` before a connection with a login waiting
/// for its answer is closed.
const IDLE_SLACK: Duration = Duration::from_secs(5);
/// How long a connection with no login waiting for an answer is kept: a client sends its
/// first call with its handshake, and closes the connection when its login ends.
pub const IDLE_WITHOUT_LOGIN: Duration = Duration::from_secs(10);
/// Logins one connection may begin (the module begins one per connection); later `Begin`s
/// are refused, so that no connection is kept open for ever by logins it keeps beginning.
pub const MAX_LOGINS_PER_CONNECTION: usize = 8;
/// Bytes of replies held back for one write with the next.
const MAX_HELD_REPLIES: usize = 16 * 1024;
/// Threads kept waiting in `accept` when there is no work for them.
const IDLE_THREADS: usize = 4;

/// Serves the login socket `listener` (bound by [`bind`], or passed by systemd: see
/// [`super::activation`]) on threads of its own, apart from the bus's executor: a flood of the
/// bus does not reach the logins on the socket.
pub fn serve(shared: Shared, listener: UnixListener) -> io::Result<()> {
    let pool = Arc::new(Pool {
        shared,
        listener,
        // One server address, one GUID (the specification's meaning of it).
        guid: zbus::Guid::generate().to_string(),
        waiting: AtomicUsize::new(0),
    });
    for _ in 0..2 {
        pool.clone().start()?;
    }
    Ok(())
}

/// The threads serving the login socket.
struct Pool {
    shared: Shared,
    listener: UnixListener,
    guid: String,
    /// Threads waiting in `accept`.
    waiting: AtomicUsize,
}

impl Pool {
    fn start(self: Arc<Self>) -> io::Result<()> {
        std::thread::Builder::new()
            .name("login socket".into())
            .spawn(move || self.work())
            .map(drop)
    }

    /// Accepts a connection and serves it, again and again; leaves when enough other threads
    /// wait. The last thread to stop waiting starts another when it got a connection, so one
    /// always accepts (after a failed accept, the same thread waits a little and accepts again).
    fn work(self: Arc<Self>) {
        loop {
            self.waiting.fetch_add(1, Ordering::SeqCst);
            let accepted = self.listener.accept();
            let others_waiting = self.waiting.fetch_sub(1, Ordering::SeqCst) > 1;
            match accepted {
                Ok((stream, _)) => {
                    if !others_waiting && let Err(error) = self.clone().start() {
                        // The others come back to `accept` when their connections end.
                        log::error(&format!(
                            "cannot start a thread for the login socket: {error}"
                        ));
                    }
                    let served = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        self.connection(stream)
                    }));
                    if served.is_err() {
                        log::error("a login socket connection ended in a panic; it was closed");
                    }
                }
                Err(error) => {
                    log::error(&format!("the login socket failed: {error}"));
                    // Out of descriptors, say: do not spin.
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
            if self.waiting.load(Ordering::SeqCst) >= IDLE_THREADS {
                return;
            }
        }
    }

    /// Admits the connection (its peer's uid, within its uid's limits) and serves it until it
    /// ends; its logins and its place go with it, however it ends.
    fn connection(&self, stream: UnixStream) {
        let uid = match getsockopt(&stream, PeerCredentials) {
            Ok(credentials) => credentials.uid(),
            Err(error) => {
                log::warning(&format!("login socket: cannot identify a peer: {error}"));
                return;
            }
        };
        let mut wire = Wire::new(stream).max_message(MAX_CALL_LEN);
        let caller = match self.shared.identities.admit_direct(uid) {
            Ok(caller) => caller,
            Err(error) => {
                // Said before the connection closes, so that the client can tell a refusal
                // (which denies) from nobody serving the socket (mfad absent).
                let line = format!("ERROR {error}\r\n").replace(['\r', '\n'], " ");
                let line = format!("{}\r\n", line.trim_end());
                let _ = wire.send(line.as_bytes(), Instant::now() + HANDSHAKE_TIMEOUT);
                return;
            }
        };
        let ended = Ended {
            shared: self.shared.clone(),
            connection: caller.connection.clone(),
        };
        // Replies may carry a secret once (an enrollment's QR code): wiped when the connection
        // ends.
        let mut out = Zeroizing::new(Vec::new());
        if handshake(&mut wire, &mut out, uid, &self.guid).is_err() {
            return;
        }
        serve_calls(&ended.shared, &caller, &mut wire, out);
    }
}

/// Ends what a connection of the login socket held (its logins, its place among its uid's
/// connections) when dropped.
struct Ended {
    shared: Shared,
    connection: String,
}

impl Drop for Ended {
    fn drop(&mut self) {
        self.shared.core.connection_closed(&self.connection);
        self.shared.identities.forget(&self.connection);
    }
}

/// The server's side of the authentication handshake: EXTERNAL only, for the uid the kernel
/// reports (a client claiming another uid is rejected). Replies are collected in `out` and
/// written only when the client has sent nothing more yet, so a client that pipelines its
/// handshake and first call gets both answers in one write. Public for the fuzz targets only.
#[doc(hidden)]
pub fn handshake(wire: &mut Wire, out: &mut Vec<u8>, uid: u32, guid: &str) -> io::Result<()> {
    let deadline = Instant::now() + HANDSHAKE_TIMEOUT;
    let refuse = || io::Error::new(io::ErrorKind::PermissionDenied, "handshake refused");
    if wire.byte(deadline)? != 0 {
        return Err(refuse());
    }
    let mut authenticated = false;
    let mut waiting_for_data = false;
    for _ in 0..HANDSHAKE_LINES {
        if !out.is_empty() && !wire.has_buffered() {
            wire.send(out, deadline)?;
            out.clear();
        }
        let line = wire.line(deadline)?;
        let (command, argument) = line.split_once(' ').unwrap_or((line.as_str(), ""));
        let claimed = match (command, waiting_for_data) {
            ("DATA", true) => Some(argument),
            ("AUTH", false) if !authenticated => match argument.split_once(' ') {
                Some(("EXTERNAL", hex)) => Some(hex),
                None if argument == "EXTERNAL" => {
                    waiting_for_data = true;
                    out.extend_from_slice(b"DATA\r\n");
                    continue;
                }
                _ => None,
            },
            ("NEGOTIATE_UNIX_FD", false) if authenticated => {
                out.extend_from_slice(b"ERROR file descriptors are not passed here\r\n");
                continue;
            }
            ("BEGIN", false) if authenticated => return Ok(()),
            ("AUTH" | "CANCEL" | "ERROR" | "DATA", _) => {
                waiting_for_data = false;
                authenticated = false;
                out.extend_from_slice(b"REJECTED EXTERNAL\r\n");
                continue;
            }
            _ => {
                out.extend_from_slice(b"ERROR unknown command\r\n");
                continue;
            }
        };
        waiting_for_data = false;
        // No data: the credentials of the socket. Data: it must name the same uid.
        let matches = claimed.is_some_and(|hex| hex.is_empty() || external_uid(hex) == Some(uid));
        if matches {
            authenticated = true;
            out.extend_from_slice(format!("OK {guid}\r\n").as_bytes());
        } else {
            out.extend_from_slice(b"REJECTED EXTERNAL\r\n");
        }
    }
    Err(refuse())
}

/// Answers the connection's calls one at a time until the peer goes away, does not read its
/// replies, or stays idle too long: while one of its logins waits for an answer, longer than
/// the login may wait (`login.session_timeout`); otherwise [`IDLE_WITHOUT_LOGIN`]. Only calls
/// that move a login on (a `Begin`, an `Answer` to a question) count: other calls and refused
/// ones do not keep a connection open, and a connection begins at most
/// [`MAX_LOGINS_PER_CONNECTION`] logins. Only the Login interface is served: anything else is
/// refused without work (no introspection, as on the bus). One call at a time, each reply
/// written before the next call is read, and calls of at most [`MAX_CALL_LEN`] bytes bound
/// what a connection can make mfad hold.
fn serve_calls(shared: &Shared, caller: &Caller, wire: &mut Wire, mut out: Zeroizing<Vec<u8>>) {
    let mut serial = 0u32;
    let mut logins = Logins {
        waiting: HashSet::new(),
        begun: 0,
        moved: Instant::now(),
        one_login: false,
    };
    loop {
        // Replies wait only while the next call is already here (a pipelining client gets them
        // in one write), and never pile up.
        if !out.is_empty() && (!wire.has_buffered() || out.len() > MAX_HELD_REPLIES) {
            if wire.send(&out, Instant::now() + REPLY_TIMEOUT).is_err() {
                return;
            }
            out.clear();
        }
        let idle = if logins.waiting.is_empty() {
            IDLE_WITHOUT_LOGIN
        } else {
            shared.core.session_timeout() + IDLE_SLACK
        };
        let bytes = match wire.message(logins.moved + idle) {
            Ok(bytes) => bytes,
            Err(error) => {
                if let Some(too_long) = TooLong::of(&error) {
                    // Answered, so that the client does not take the closed connection for an
                    // absent mfad; the rest of the call is not read.
                    serial = serial.wrapping_add(1).max(1);
                    let text = format!("mfad takes calls of at most {MAX_CALL_LEN} bytes");
                    if let Ok(reply) =
                        contract::error(serial, too_long.serial, errors::LIMITS_EXCEEDED, &text)
                    {
                        out.extend_from_slice(&reply);
                        let _ = wire.send(&out, Instant::now() + REPLY_TIMEOUT);
                    }
                }
                return;
            }
        };
        let Ok(message) = read_message(&bytes) else {
            // Not a message: the stream cannot be followed any further.
            return;
        };
        if message.kind != METHOD_CALL {
            continue;
        }
        serial = serial.wrapping_add(1).max(1);
        // A panic while answering (a bug) still gets an answer: a client must not take a
        // connection closed without a word for an absent mfad.
        let answered = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            answer(shared, caller, &message, serial, &mut logins)
        }));
        let reply = answered.unwrap_or_else(|_| {
            log::error("login socket: a call ended in a panic; it was answered with an error");
            contract::error(
                serial,
                message.serial,
                errors::INTERNAL,
                "mfad failed to answer the call",
            )
            .map_err(|error| error.to_string())
        });
        if message.expects_reply() {
            match reply {
                Ok(reply) => out.extend_from_slice(&reply),
                Err(error) => {
                    log::error(&format!("login socket: cannot write a reply: {error}"));
                    return;
                }
            }
        }
        if logins.one_login && logins.waiting.is_empty() {
            // The client's login has ended and it begins no other here: closing now spares
            // both ends the wake-up of its close.
            let _ = wire.send(&out, Instant::now() + REPLY_TIMEOUT);
            return;
        }
    }
}

/// The logins of one connection, as far as keeping it open goes.
struct Logins {
    /// Sessions begun on the connection whose last turn was a question.
    waiting: HashSet<String>,
    /// Logins begun on the connection.
    begun: usize,
    /// When a login of the connection last moved on (begun, or a question answered), or when
    /// the connection was admitted.
    moved: Instant,
    /// A login begun on the connection said that it carries that login alone
    /// ([`pam_mfa_api::context::ONE_LOGIN`]): closed once no login waits.
    one_login: bool,
}

impl Logins {
    /// Session `session` moved on to `turn`.
    fn moved(&mut self, session: &str, turn: &Turn) {
        self.moved = Instant::now();
        if turn.action.is_verdict() {
            self.waiting.remove(session);
        } else if !session.is_empty() {
            self.waiting.insert(session.to_owned());
        }
    }
}

/// Answers one call of a login socket's connection: the bytes of the reply.
fn answer(
    shared: &Shared,
    caller: &Caller,
    message: &pam_mfa_api::marshal::Message<'_>,
    serial: u32,
    logins: &mut Logins,
) -> Result<Zeroizing<Vec<u8>>, String> {
    let to = message.serial;
    let failed = |name: &str, text: &str| {
        contract::error(serial, to, name, text).map_err(|error| error.to_string())
    };
    let call = match contract::read_call(message) {
        Ok(call) => call,
        Err(not) => return failed(not.name, &not.text),
    };
    if matches!(call, Call::Begin(_)) && logins.begun >= MAX_LOGINS_PER_CONNECTION {
        let error = Error::TooManyRequests(format!(
            "a connection to mfad's login socket begins at most {MAX_LOGINS_PER_CONNECTION} \
             logins; open another"
        ));
        return failed(error.name().as_str(), &error.to_string());
    }
    let permit = match shared.identities.enter(caller) {
        Ok(permit) => permit,
        Err(error) => return failed(error.name().as_str(), &error.to_string()),
    };
    let core = &shared.core;
    let replied = match call {
        Call::Begin(args) => {
            logins.begun += 1;
            logins.one_login |= args
                .context
                .iter()
                .any(|&(key, value)| key == pam_mfa_api::context::ONE_LOGIN && value == "1");
            let context: HashMap<String, String> = args
                .context
                .into_iter()
                .map(|(key, value)| (key.to_owned(), value.to_owned()))
                .collect();
            core.begin(caller, args.user, &context)
                .map(|(session, turn)| {
                    logins.moved(&session, &turn);
                    let begun = Begun {
                        session,
                        turn: WireTurn::from(turn),
                    };
                    contract::method_return::<Begin>(serial, to, &begun, turn_room(&begun.turn))
                })
        }
        Call::Answer(args) => {
            let answered = core.answer(caller, args.session, args.reply);
            match &answered {
                Ok(turn) => logins.moved(args.session, turn),
                Err(Error::NoSuchSession(_)) => {
                    logins.waiting.remove(args.session);
                }
                Err(_) => {}
            }
            answered.map(|turn| {
                let turn = WireTurn::from(turn);
                contract::method_return::<Answer>(serial, to, &turn, turn_room(&turn))
            })
        }
        Call::Cancel(args) => {
            core.cancel(caller, args.session);
            logins.waiting.remove(args.session);
            Ok(contract::method_return::<Cancel>(serial, to, &(), 0))
        }
    };
    drop(permit);
    match replied {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(unwritable)) => failed(
            errors::INTERNAL,
            &format!("mfad cannot write its answer: {unwritable}"),
        ),
        Err(error) => failed(error.name().as_str(), &error.to_string()),
    }
}

/// Room for a turn's strings in its reply.
fn turn_room(turn: &WireTurn) -> usize {
    let notices: usize = turn
        .notices
        .iter()
        .map(|(kind, text)| kind.len() + text.len() + 16)
        .sum();
    notices + turn.action.len() + turn.text.len() + 64
}

/// Checks the directories of the login socket `path` as the state directory's are (see
/// [`crate::dirs::check_trusted`]): a user who could write to one of them could move mfad's
/// socket aside and listen in its place. Directories not made yet end the check.
pub fn check_directories(path: &Path) -> io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::other("the path has no directory"))?;
    let purpose = crate::dirs::Purpose {
        what: "the login socket's directory",
        setting: "login_socket",
    };
    crate::dirs::check_trusted(dir, purpose).map_err(io::Error::other)
}

/// Makes the socket's directory (root-owned, not writable by others) and binds the socket,
/// mode 0666: any local user may run a login of their own account, as on the bus. A socket
/// left by an earlier mfad is replaced; any other file there is an error. The directory and
/// every one above it must be trusted (see [`check_directories`]).
pub fn bind(path: &Path) -> io::Result<UnixListener> {
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::other("the path has no directory"))?;
    check_directories(path)?;
    if !dir.exists() {
        // Only the socket's own directory: its parent (/run) must be there already.
        std::fs::DirBuilder::new().mode(0o755).create(dir)?;
        // Whatever the umask (systemd's UMask=0077, say): every user must reach the socket.
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))?;
    }
    check_directories(path)?;
    match std::fs::symlink_metadata(path) {
        // Another mfad still listens there: leave it be.
        Ok(meta) if meta.file_type().is_socket() && UnixStream::connect(path).is_ok() => {
            return Err(io::Error::other(
                "another process listens on it (is mfad already running?)",
            ));
        }
        // Left by an mfad that is gone.
        Ok(meta) if meta.file_type().is_socket() => std::fs::remove_file(path)?,
        Ok(_) => {
            return Err(io::Error::other(
                "something other than a socket is in the way; remove it",
            ));
        }
        Err(error) if error.kind() == io::ErrorKind::NotFound => {}
        Err(error) => return Err(error),
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))?;
    Ok(listener)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    /// The module looks where mfad listens by default.
    #[test]
    fn mfad_and_the_module_agree_on_the_standard_socket() {
        assert_eq!(
            pam_mfa_config::DEFAULT_LOGIN_SOCKET,
            pam_mfa_api::LOGIN_SOCKET
        );
    }

    fn scratch(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("mfad-direct-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn the_socket_is_bound_in_a_private_directory_and_replaces_only_a_socket() {
        let dir = scratch("bind");
        let path = dir.join("run/login.socket");
        std::fs::create_dir(&dir).unwrap();
        let listener = bind(&path).unwrap();
        let meta = std::fs::metadata(dir.join("run")).unwrap();
        assert_eq!(meta.mode() & 0o777, 0o755);
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o666);
        // A socket something listens on is left alone; one left behind is replaced.
        let error = bind(&path).unwrap_err().to_string();
        assert!(error.contains("another process listens"), "{error}");
        drop(listener);
        // Another test's child, forked at this moment, may hold the listener until it execs:
        // the socket is left behind once that is over.
        let start = std::time::Instant::now();
        while let Err(error) = bind(&path) {
            assert!(
                start.elapsed() < std::time::Duration::from_secs(10),
                "a socket left behind was not replaced: {error}"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        // Anything else is not touched.
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, "not a socket").unwrap();
        let error = bind(&path).unwrap_err().to_string();
        assert!(error.contains("other than a socket"), "{error}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "not a socket");
        // A directory others may write to is refused.
        std::fs::remove_file(&path).unwrap();
        std::fs::set_permissions(dir.join("run"), std::fs::Permissions::from_mode(0o777)).unwrap();
        let error = bind(&path).unwrap_err().to_string();
        assert!(error.contains("writable by other users"), "{error}");
        // So is a directory above it that another user owns.
        std::fs::set_permissions(dir.join("run"), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::chown(&dir, Some(1000), None).unwrap();
        let error = bind(&path).unwrap_err().to_string();
        assert!(
            error.contains(&format!("{} is owned by uid 1000", dir.display())),
            "{error}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
