//! mfad's login socket: the Login interface served peer to peer, one D-Bus connection per
//! accepted socket, without the system bus in between. The caller of every call on a
//! connection is the socket's peer, as the kernel reports it (SO_PEERCRED), fixed when the
//! connection is accepted; the per-uid limits and the end of a connection's logins with it are
//! those of the bus.

use std::io;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::time::Duration;

use std::collections::HashMap;

use futures_util::StreamExt;
use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
use pam_mfa_api::{LOGIN_INTERFACE, WireTurn};
use zeroize::Zeroizing;

use crate::bus::{Shared, off_executor};
use crate::identity::Caller;
use crate::log;

/// How long a client may take over the D-Bus handshake before its connection is closed.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a reply may take to be written (the peer must read it) before the connection is
/// closed; also bounds the work of one call.
const REPLY_TIMEOUT: Duration = Duration::from_secs(30);
/// Idle time allowed beyond `login.session_timeout` before a connection is closed.
const IDLE_SLACK: Duration = Duration::from_secs(5);

/// Binds the login socket at `path` and serves it: a thread accepts connections and learns
/// each peer's uid, and two threads, each an executor of its own apart from the bus's, run the
/// connections: root's on one, every other uid's on the other. A flood of the bus, or of the
/// socket by an unprivileged user, so does not reach the logins root runs (sshd, su, sudo);
/// the store and name lookups go to the blocking pool as on the bus.
pub fn serve(shared: Shared, path: &Path) -> Result<(), String> {
    let listener = bind(path)
        .map_err(|error| format!("cannot serve logins on {}: {error}", path.display()))?;
    let root = executor("login socket (root)", shared.clone())?;
    let others = executor("login socket (users)", shared.clone())?;
    std::thread::Builder::new()
        .name("login socket".into())
        .spawn(move || accept(&shared, &listener, &root, &others))
        .map(drop)
        .map_err(|error| format!("cannot start the login socket's thread: {error}"))
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

/// A connection accepted and admitted, for an executor to serve.
type Accepted = (UnixStream, Caller);

/// Starts a thread that serves the connections sent to it, each as a task of its executor.
fn executor(name: &str, shared: Shared) -> Result<zruntime::mpmc::Sender<Accepted>, String> {
    let (sender, receiver) = zruntime::mpmc::unbounded::<Accepted>();
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            zbus::block_on(async move {
                while let Ok((stream, caller)) = receiver.recv().await {
                    let ended = Ended {
                        shared: shared.clone(),
                        connection: caller.connection.clone(),
                    };
                    zruntime::spawn(async move {
                        // Dropped when the task ends, however it ends (a panic in the
                        // handshake included): the connection's logins and place go with it.
                        let ended = ended;
                        run(&ended.shared, stream, caller).await;
                    })
                    .detach();
                }
            })
        })
        .map_err(|error| format!("cannot start {name}: {error}"))?;
    Ok(sender)
}

/// Makes the socket's directory (root-owned, not writable by others) and binds the socket,
/// mode 0666: any local user may run a login of their own account, as on the bus. A socket
/// left by an earlier mfad is replaced; any other file there is an error.
fn bind(path: &Path) -> io::Result<UnixListener> {
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::other("the path has no directory"))?;
    if !dir.exists() {
        // Only the socket's own directory: its parent (/run) must be there already.
        std::fs::DirBuilder::new().mode(0o755).create(dir)?;
        // Whatever the umask (systemd's UMask=0077, say): every user must reach the socket.
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))?;
    }
    let meta = std::fs::symlink_metadata(dir)?;
    if !meta.is_dir() || meta.uid() != nix::unistd::geteuid().as_raw() || meta.mode() & 0o022 != 0 {
        return Err(io::Error::other(format!(
            "{} must be a directory owned by mfad's user and writable by it alone",
            dir.display()
        )));
    }
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

fn accept(
    shared: &Shared,
    listener: &UnixListener,
    root: &zruntime::mpmc::Sender<Accepted>,
    others: &zruntime::mpmc::Sender<Accepted>,
) {
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                if let Some(accepted) = admit(shared, stream) {
                    let executor = if accepted.1.uid == 0 { root } else { others };
                    if let Err(refused) = executor.try_send(accepted) {
                        let (_, caller) = refused.into_inner();
                        shared.identities.forget(&caller.connection);
                    }
                }
            }
            Err(error) => {
                log::error(&format!("the login socket failed: {error}"));
                // Out of descriptors, say: do not spin.
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

/// The caller of an accepted connection: its peer's uid, within its uid's connection limit.
/// `None` closes it at once (dropping the stream; the client sees the connection end).
fn admit(shared: &Shared, stream: UnixStream) -> Option<Accepted> {
    let uid = match getsockopt(&stream, PeerCredentials) {
        Ok(credentials) => credentials.uid(),
        Err(error) => {
            log::warning(&format!("login socket: cannot identify a peer: {error}"));
            return None;
        }
    };
    let caller = shared.identities.admit_direct(uid).ok()?;
    Some((stream, caller))
}

/// Shakes hands as the server of a peer-to-peer connection, then answers its calls one at a
/// time until the peer goes away, stays idle longer than a login may wait for its answer, or
/// does not read its replies. Only the Login interface is served: anything else is refused
/// without work (no introspection, as on the bus). One call at a time, each reply sent before
/// the next call is read, bounds what a connection can make mfad hold.
async fn run(shared: &Shared, stream: UnixStream, caller: Caller) {
    let Ok(runtime) = zruntime::SharedRuntime::current() else {
        return;
    };
    let built = zbus::connection::Builder::unix_stream(stream)
        .server(zbus::Guid::generate())
        .p2p()
        .build();
    let connection = match runtime.timeout(HANDSHAKE_TIMEOUT, built).await {
        Ok(Ok(connection)) => connection,
        // A client that fails or stalls the handshake is only closed.
        Ok(Err(_)) | Err(_) => return,
    };
    let mut messages = zbus::MessageStream::from(&connection);
    loop {
        // A login waits at most session_timeout for the person's answer; a connection idle for
        // longer holds nothing worth keeping.
        let timeout = shared.core.session_timeout() + IDLE_SLACK;
        let message = match runtime.timeout(timeout, messages.next()).await {
            Ok(Some(Ok(message))) => message,
            _ => break,
        };
        if message.message_type() != zbus::message::Type::MethodCall {
            continue;
        }
        let answered = runtime
            .timeout(
                REPLY_TIMEOUT,
                answer(shared, &caller, &connection, &message),
            )
            .await;
        if !matches!(answered, Ok(Ok(()))) {
            // The peer does not read its replies (or the connection broke): close it.
            break;
        }
    }
    let _ = connection.close().await;
}

/// Answers one call of a login socket's connection.
async fn answer(
    shared: &Shared,
    caller: &Caller,
    connection: &zbus::Connection,
    message: &zbus::Message,
) -> zbus::Result<()> {
    let header = message.header();
    let interface = header.interface().map(|name| name.as_str());
    let member = header.member().map(|name| name.as_str()).unwrap_or("");
    if interface != Some(LOGIN_INTERFACE) {
        return connection
            .reply_dbus_error(
                &header,
                zbus::fdo::Error::AccessDenied(format!(
                    "only {LOGIN_INTERFACE} is served on this socket"
                )),
            )
            .await;
    }
    let permit = match shared.identities.enter(caller) {
        Ok(permit) => permit,
        Err(error) => return connection.reply_dbus_error(&header, error).await,
    };
    let body = message.body();
    let core = shared.core.clone();
    let caller = caller.clone();
    match member {
        "Begin" => {
            let Ok((user, context)) = body.deserialize::<(String, HashMap<String, String>)>()
            else {
                return bad_arguments(connection, &header).await;
            };
            let outcome = off_executor(move || {
                let _permit = permit;
                core.begin(&caller, &user, &context)
            })
            .await;
            match outcome {
                Ok((session, turn)) => {
                    let turn: WireTurn = turn.into();
                    connection.reply(&header, &(session, turn)).await
                }
                Err(error) => connection.reply_dbus_error(&header, error).await,
            }
        }
        "Answer" => {
            let Ok((session, reply)) = body.deserialize::<(String, String)>() else {
                return bad_arguments(connection, &header).await;
            };
            let reply = Zeroizing::new(reply);
            let outcome = off_executor(move || {
                let _permit = permit;
                core.answer(&caller, &session, &reply)
            })
            .await;
            match outcome {
                Ok(turn) => connection.reply(&header, &WireTurn::from(turn)).await,
                Err(error) => connection.reply_dbus_error(&header, error).await,
            }
        }
        "Cancel" => {
            let Ok(session) = body.deserialize::<String>() else {
                return bad_arguments(connection, &header).await;
            };
            core.cancel(&caller, &session);
            drop(permit);
            connection.reply(&header, &()).await
        }
        other => {
            connection
                .reply_dbus_error(
                    &header,
                    zbus::fdo::Error::UnknownMethod(format!(
                        "{LOGIN_INTERFACE} has no {other:.64}"
                    )),
                )
                .await
        }
    }
}

async fn bad_arguments(
    connection: &zbus::Connection,
    header: &zbus::message::Header<'_>,
) -> zbus::Result<()> {
    connection
        .reply_dbus_error(
            header,
            zbus::fdo::Error::InvalidArgs("the arguments do not match the method".into()),
        )
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

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
        bind(&path).unwrap();
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
        assert!(error.contains("writable by it alone"), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
