//! The login socket as systemd passes it (socket activation, `mfad.socket`): the protocol of
//! sd_listen_fds(3), read here without libsystemd. systemd sets `LISTEN_PID` to the pid of the
//! process it starts and `LISTEN_FDS` to the number of sockets it passes, as descriptors 3 and
//! on. mfad takes them once, at start, before any other thread runs: it unsets the variables
//! (no child of mfad takes them for its own), marks the descriptors close-on-exec, and later
//! checks that the one socket passed is the login socket its configuration names, a listening
//! Unix stream socket bound to that path. Without `LISTEN_FDS` (no systemd, a container, the
//! tests) there is nothing to take, and mfad binds the login socket itself.
//!
//! The only unsafe code of mfad is here: taking descriptors by their numbers, and changing the
//! environment.
#![allow(unsafe_code)]

use std::fmt;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

use nix::sys::socket::{SockType, SockaddrLike, SockaddrStorage, getsockname, getsockopt, sockopt};

/// The first descriptor systemd passes (SD_LISTEN_FDS_START).
const FIRST_FD: RawFd = 3;

/// What systemd passed to this process: its sockets, in the order of the unit's `Listen*=`
/// lines. Empty when mfad was not started by socket activation.
#[derive(Debug, Default)]
pub struct Passed {
    fds: Vec<OwnedFd>,
}

/// Why mfad cannot use what systemd passed it. Each says what was passed and what mfad expected.
#[derive(Debug)]
pub enum ActivationError {
    /// `LISTEN_PID` or `LISTEN_FDS` is not what systemd sets.
    Environment {
        variable: &'static str,
        value: String,
    },
    /// `LISTEN_FDS` names a descriptor this process does not have.
    NotOpen { fd: RawFd, error: nix::Error },
    /// The variables were found after other threads had started, when unsetting them is no
    /// longer safe (a mistake in mfad, not in its set-up).
    Threads,
    /// Something other than one socket was passed.
    Count { count: usize, expected: PathBuf },
    /// The socket passed is not the listening Unix stream socket `expected`: `what` it is.
    Wrong {
        fd: RawFd,
        what: String,
        expected: PathBuf,
    },
}

impl fmt::Display for ActivationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = "ListenStream= in mfad.socket and login_socket in mfad.toml must name the \
                    same path";
        match self {
            ActivationError::Environment { variable, value } => write!(
                f,
                "socket activation: {variable}={value:?} is not a number as systemd sets it"
            ),
            ActivationError::NotOpen { fd, error } => write!(
                f,
                "socket activation: LISTEN_FDS names descriptor {fd}, which mfad does not have \
                 ({error})"
            ),
            ActivationError::Threads => write!(
                f,
                "socket activation: the sockets passed by systemd must be taken before any \
                 thread starts"
            ),
            ActivationError::Count { count, expected } => write!(
                f,
                "systemd passed {count} sockets (LISTEN_FDS={count}); mfad takes one, its login \
                 socket {}: mfad.socket must have one ListenStream= line",
                expected.display()
            ),
            ActivationError::Wrong { fd, what, expected } => write!(
                f,
                "systemd passed descriptor {fd}, {what}, where mfad expected its login socket, \
                 a listening Unix stream socket bound to {}; {unit}",
                expected.display()
            ),
        }
    }
}

impl std::error::Error for ActivationError {}

/// Takes the sockets systemd passed this process, if any, as sd_listen_fds(3) with
/// `unset_environment` does: `LISTEN_PID`, `LISTEN_FDS` and `LISTEN_FDNAMES` are unset in any
/// case, and the descriptors are marked close-on-exec. Call it once, before any other thread
/// starts (it fails otherwise, when the variables are set); a second call finds nothing.
pub fn take() -> Result<Passed, ActivationError> {
    let pid = std::env::var("LISTEN_PID").ok();
    let fds = std::env::var("LISTEN_FDS").ok();
    if pid.is_none() && fds.is_none() && std::env::var_os("LISTEN_FDNAMES").is_none() {
        return Ok(Passed::default());
    }
    if !single_threaded() {
        return Err(ActivationError::Threads);
    }
    for variable in ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"] {
        // SAFETY: this process has one thread (checked just above), so nothing reads or
        // writes the environment meanwhile.
        unsafe { std::env::remove_var(variable) };
    }
    let Some(count) = passed_count(pid.as_deref(), fds.as_deref(), std::process::id())? else {
        return Ok(Passed::default());
    };
    let fds = (FIRST_FD..FIRST_FD + count as RawFd)
        .map(claim)
        .collect::<Result<_, _>>()?;
    Ok(Passed { fds })
}

/// How many descriptors systemd passed to the process `own_pid`, from the values of
/// `LISTEN_PID` and `LISTEN_FDS`: none when either is unset, or when they are meant for another
/// process (a parent that did not unset them, say).
fn passed_count(
    listen_pid: Option<&str>,
    listen_fds: Option<&str>,
    own_pid: u32,
) -> Result<Option<usize>, ActivationError> {
    let (Some(listen_pid), Some(listen_fds)) = (listen_pid, listen_fds) else {
        return Ok(None);
    };
    let malformed = |variable, value: &str| ActivationError::Environment {
        variable,
        value: value.chars().take(64).collect(),
    };
    let pid: u32 = listen_pid
        .parse()
        .map_err(|_| malformed("LISTEN_PID", listen_pid))?;
    if pid != own_pid {
        return Ok(None);
    }
    // systemd sets LISTEN_FDS only when it passes at least one descriptor.
    match listen_fds.parse::<usize>() {
        Ok(count) if count > 0 && count <= (RawFd::MAX - FIRST_FD) as usize => Ok(Some(count)),
        _ => Err(malformed("LISTEN_FDS", listen_fds)),
    }
}

/// Whether this process runs one thread only, as /proc says.
fn single_threaded() -> bool {
    std::fs::read_dir("/proc/self/task").is_ok_and(|tasks| tasks.count() == 1)
}

/// Takes descriptor `fd`, which systemd passed, and marks it close-on-exec.
fn claim(fd: RawFd) -> Result<OwnedFd, ActivationError> {
    use nix::fcntl::{FcntlArg, FdFlag, fcntl};
    // SAFETY: F_GETFD reads the flags of a descriptor number and touches no memory; a number
    // that is not open gives EBADF.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    if flags < 0 {
        return Err(ActivationError::NotOpen {
            fd,
            error: nix::Error::last(),
        });
    }
    // SAFETY: the descriptor is open (above), and it is ours to own: systemd passed it to this
    // process (LISTEN_PID), and nothing else in mfad uses descriptors it did not open. It is
    // taken once: the variables that name it are unset before this runs.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    let flags = FdFlag::from_bits_retain(flags) | FdFlag::FD_CLOEXEC;
    fcntl(&owned, FcntlArg::F_SETFD(flags))
        .map_err(|error| ActivationError::NotOpen { fd, error })?;
    Ok(owned)
}

impl Passed {
    /// The login socket systemd passed, checked to be the listening Unix stream socket bound to
    /// `expected` (login_socket); `None` when nothing was passed.
    pub fn login_listener(self, expected: &Path) -> Result<Option<UnixListener>, ActivationError> {
        let mut fds = self.fds;
        let fd = match fds.len() {
            0 => return Ok(None),
            1 => fds.remove(0),
            count => {
                return Err(ActivationError::Count {
                    count,
                    expected: expected.to_owned(),
                });
            }
        };
        let raw = fd.as_raw_fd();
        let describe = describe(&fd);
        if describe.listening_unix_stream_at() != Some(expected) {
            return Err(ActivationError::Wrong {
                fd: raw,
                what: describe.what(),
                expected: expected.to_owned(),
            });
        }
        let listener = UnixListener::from(fd);
        // Accepting threads wait in accept (login_socket.rs); systemd passes the socket in
        // blocking mode unless NonBlocking= says otherwise.
        listener
            .set_nonblocking(false)
            .map_err(|error| ActivationError::Wrong {
                fd: raw,
                what: format!("{} (cannot be made blocking: {error})", describe.what()),
                expected: expected.to_owned(),
            })?;
        Ok(Some(listener))
    }
}

/// What a descriptor is, as far as the login socket is concerned.
#[derive(Debug, PartialEq)]
enum Described {
    /// Not a socket: the kind of file, and its name in /proc/self/fd.
    NotSocket { kind: &'static str, name: String },
    /// A socket, not of the Unix family: its family and address.
    OtherFamily { address: String },
    /// A Unix socket: its bound path (none: unnamed or abstract, given as `name`), whether it
    /// is of the stream type, and whether it listens.
    Unix {
        path: Option<PathBuf>,
        name: String,
        stream: bool,
        listening: bool,
    },
    /// A socket whose address or options cannot be read.
    Unreadable { error: nix::Error },
}

fn describe(fd: &OwnedFd) -> Described {
    let raw = fd.as_raw_fd();
    let address = match getsockname::<SockaddrStorage>(raw) {
        Ok(address) => address,
        Err(nix::Error::ENOTSOCK) => {
            let kind = std::fs::metadata(format!("/proc/self/fd/{raw}"))
                .map(|meta| file_kind(&meta.file_type()))
                .unwrap_or("file");
            let name = std::fs::read_link(format!("/proc/self/fd/{raw}"))
                .map(|path| path.display().to_string())
                .unwrap_or_else(|_| "?".into());
            return Described::NotSocket { kind, name };
        }
        Err(error) => return Described::Unreadable { error },
    };
    let Some(unix) = address.as_unix_addr() else {
        use nix::sys::socket::AddressFamily;
        let family = match address.family() {
            Some(AddressFamily::Inet) => "AF_INET (IPv4)".to_owned(),
            Some(AddressFamily::Inet6) => "AF_INET6 (IPv6)".to_owned(),
            Some(family) => format!("{family:?}"),
            None => "unknown".to_owned(),
        };
        return Described::OtherFamily {
            address: format!("a socket of family {family}, not a Unix socket"),
        };
    };
    let (stream, listening) = match (
        getsockopt(fd, sockopt::SockType),
        getsockopt(fd, sockopt::AcceptConn),
    ) {
        (Ok(kind), Ok(listening)) => (kind == SockType::Stream, listening),
        (Err(error), _) | (_, Err(error)) => return Described::Unreadable { error },
    };
    let name = match (unix.path(), unix.as_abstract()) {
        (Some(path), _) => path.display().to_string(),
        (None, Some(name)) => format!("@{}", String::from_utf8_lossy(name)),
        (None, None) => "no name".to_owned(),
    };
    Described::Unix {
        path: unix.path().map(Path::to_owned),
        name,
        stream,
        listening,
    }
}

impl Described {
    /// The path of a listening Unix stream socket.
    fn listening_unix_stream_at(&self) -> Option<&Path> {
        match self {
            Described::Unix {
                path: Some(path),
                stream: true,
                listening: true,
                ..
            } => Some(path),
            _ => None,
        }
    }

    /// For an error message: what was passed, as "a ... socket bound to ...".
    fn what(&self) -> String {
        match self {
            Described::NotSocket { kind, name } => format!("{kind} ({name}), not a socket"),
            Described::OtherFamily { address } => address.clone(),
            Described::Unix {
                name,
                stream,
                listening,
                ..
            } => {
                let kind = if *stream { "stream" } else { "datagram" };
                let listening = if *listening {
                    ""
                } else {
                    " that does not listen"
                };
                format!("a Unix {kind} socket bound to {name}{listening}")
            }
            Described::Unreadable { error } => format!("a socket that cannot be read ({error})"),
        }
    }
}

fn file_kind(kind: &std::fs::FileType) -> &'static str {
    if kind.is_file() {
        "a regular file"
    } else if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a pipe"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else {
        "a file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::{UnixDatagram, UnixStream};

    const PID: u32 = 4242;

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("mfad-activation-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn passed(fds: Vec<OwnedFd>) -> Passed {
        Passed { fds }
    }

    #[test]
    fn sockets_for_this_process_are_counted() {
        assert_eq!(passed_count(Some("4242"), Some("1"), PID).unwrap(), Some(1));
        assert_eq!(passed_count(Some("4242"), Some("3"), PID).unwrap(), Some(3));
    }

    #[test]
    fn sockets_for_another_process_are_not_taken() {
        // A parent started by systemd that left the variables set for its children.
        assert_eq!(passed_count(Some("1"), Some("1"), PID).unwrap(), None);
    }

    #[test]
    fn without_both_variables_nothing_was_passed() {
        assert_eq!(passed_count(None, None, PID).unwrap(), None);
        assert_eq!(passed_count(Some("4242"), None, PID).unwrap(), None);
        assert_eq!(passed_count(None, Some("1"), PID).unwrap(), None);
    }

    #[test]
    fn malformed_variables_are_errors_that_name_them() {
        for (pid, fds, variable) in [
            ("", "1", "LISTEN_PID"),
            ("42x", "1", "LISTEN_PID"),
            ("4242", "0", "LISTEN_FDS"),
            ("4242", "-1", "LISTEN_FDS"),
            ("4242", "one", "LISTEN_FDS"),
            ("4242", "99999999999", "LISTEN_FDS"),
        ] {
            let error = passed_count(Some(pid), Some(fds), PID)
                .unwrap_err()
                .to_string();
            assert!(error.contains(variable), "{pid} {fds}: {error}");
        }
    }

    #[test]
    fn nothing_passed_means_no_listener() {
        let listener = Passed::default()
            .login_listener(Path::new("/run/pam-mfa/login.socket"))
            .unwrap();
        assert!(listener.is_none());
    }

    #[test]
    fn the_login_socket_passed_is_taken_and_served() {
        let dir = scratch("right");
        let path = dir.join("login.socket");
        let bound = UnixListener::bind(&path).unwrap();
        bound.set_nonblocking(true).unwrap();
        let listener = passed(vec![bound.into()])
            .login_listener(&path)
            .unwrap()
            .expect("a listener");
        // Made blocking for the accepting threads.
        let client = UnixStream::connect(&path).unwrap();
        let (accepted, _) = listener.accept().unwrap();
        drop((client, accepted));
        // A path written another way names the same socket.
        let bound = UnixListener::bind(dir.join("other.socket")).unwrap();
        let spelled = PathBuf::from(format!("{}//./other.socket", dir.display()));
        assert!(
            passed(vec![bound.into()])
                .login_listener(&spelled)
                .unwrap()
                .is_some()
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_socket_at_another_path_is_refused_naming_both() {
        let dir = scratch("other");
        let other = dir.join("other.socket");
        let bound = UnixListener::bind(&other).unwrap();
        let expected = dir.join("login.socket");
        let error = passed(vec![bound.into()])
            .login_listener(&expected)
            .unwrap_err()
            .to_string();
        assert!(error.contains(&other.display().to_string()), "{error}");
        assert!(error.contains(&expected.display().to_string()), "{error}");
        assert!(error.contains("ListenStream="), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_file_is_refused_as_not_a_socket() {
        let dir = scratch("file");
        let file = dir.join("not-a-socket");
        std::fs::write(&file, "").unwrap();
        let fd = OwnedFd::from(std::fs::File::open(&file).unwrap());
        let expected = dir.join("login.socket");
        let error = passed(vec![fd])
            .login_listener(&expected)
            .unwrap_err()
            .to_string();
        assert!(error.contains("a regular file"), "{error}");
        assert!(error.contains("not a socket"), "{error}");
        assert!(error.contains(&file.display().to_string()), "{error}");
        assert!(error.contains(&expected.display().to_string()), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_socket_that_does_not_listen_or_is_not_a_stream_is_refused() {
        let dir = scratch("kinds");
        let path = dir.join("login.socket");
        let datagram = UnixDatagram::bind(&path).unwrap();
        let error = passed(vec![datagram.into()])
            .login_listener(&path)
            .unwrap_err()
            .to_string();
        assert!(error.contains("datagram"), "{error}");
        std::fs::remove_file(&path).unwrap();
        // Bound, never listening: a stream socket of its own, half made.
        let stream = nix::sys::socket::socket(
            nix::sys::socket::AddressFamily::Unix,
            SockType::Stream,
            nix::sys::socket::SockFlag::empty(),
            None,
        )
        .unwrap();
        let address = nix::sys::socket::UnixAddr::new(&path).unwrap();
        nix::sys::socket::bind(stream.as_raw_fd(), &address).unwrap();
        let error = passed(vec![stream])
            .login_listener(&path)
            .unwrap_err()
            .to_string();
        assert!(error.contains("does not listen"), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_network_socket_is_refused() {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let error = passed(vec![tcp.into()])
            .login_listener(Path::new("/run/pam-mfa/login.socket"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("family AF_INET (IPv4)"), "{error}");
    }

    #[test]
    fn more_than_one_socket_is_refused() {
        let dir = scratch("two");
        let path = dir.join("login.socket");
        let one = UnixListener::bind(&path).unwrap();
        let two = UnixListener::bind(dir.join("two.socket")).unwrap();
        let error = passed(vec![one.into(), two.into()])
            .login_listener(&path)
            .unwrap_err()
            .to_string();
        assert!(error.contains("passed 2 sockets"), "{error}");
        assert!(error.contains("one ListenStream="), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_descriptor_that_is_not_open_is_an_error() {
        // A number far above any this process opens.
        let error = claim(1 << 20).unwrap_err().to_string();
        assert!(error.contains("does not have"), "{error}");
    }
}
