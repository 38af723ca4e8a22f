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

use futures_util::StreamExt;
use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
use pam_mfa_api::OBJECT_PATH;

use crate::bus::{LoginInterface, Shared};
use crate::identity::Caller;
use crate::log;

/// How long a client may take over the D-Bus handshake before its connection is closed.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

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
                    let shared = shared.clone();
                    zruntime::spawn(async move {
                        let connection = caller.connection.clone();
                        run(shared.clone(), stream, caller).await;
                        shared.core.connection_closed(&connection);
                        shared.identities.forget(&connection);
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
        std::fs::DirBuilder::new()
            .mode(0o755)
            .recursive(true)
            .create(dir)?;
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

/// Shakes hands as the server of a peer-to-peer connection serving only the Login interface,
/// then serves it until the peer goes away.
async fn run(shared: Shared, stream: UnixStream, caller: Caller) {
    let built = zbus::connection::Builder::unix_stream(stream)
        .server(zbus::Guid::generate())
        .p2p()
        .serve_at(OBJECT_PATH, LoginInterface::direct(shared, caller))
        .build();
    let Ok(runtime) = zruntime::SharedRuntime::current() else {
        return;
    };
    let connection = match runtime.timeout(HANDSHAKE_TIMEOUT, built).await {
        Ok(Ok(connection)) => connection,
        // A client that fails or stalls the handshake is only closed.
        Ok(Err(_)) | Err(_) => return,
    };
    let mut messages = zbus::MessageStream::from(&connection);
    while let Some(message) = messages.next().await {
        if message.is_err() {
            break;
        }
    }
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
        let listener = bind(&path).unwrap();
        let meta = std::fs::metadata(dir.join("run")).unwrap();
        assert_eq!(meta.mode() & 0o777, 0o755);
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o666);
        drop(listener);
        // A socket left behind is replaced.
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
