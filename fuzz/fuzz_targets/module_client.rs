//! The PAM module's side of a login, against a peer that sends anything: the module's own
//! client (handshake line, framing, replies to Begin, Answer and Cancel, error replies) and its
//! relay, through to the PAM verdict. The peer's bytes are written to the connection the
//! module opens, as if mfad had sent them.
//!
//! The module talks only to a socket whose peer is root: run this target as root.
#![no_main]

use std::io::Write;
use std::net::Shutdown;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use pam_mfa::args::{FailMode, NotRequired};
use pam_mfa::relay::{self, Conversation, ConversationFailed, Outcome};
use pam_mfa::verdict::verdict;
use pam_mfa_login::Notice;
use pamsm::PamError;
use zeroize::Zeroizing;

/// The module's writes (one call per reply read) must fit the socket's buffer, which nobody
/// reads here.
const MAX_INPUT: usize = 16 * 1024;
/// The module's timeout: a peer that sends too little makes the module wait this long.
const TIMEOUT: Duration = Duration::from_secs(2);

/// The socket the module connects to, one per fuzzing process, named by its pid. Those of
/// processes gone are removed first.
fn socket() -> &'static (PathBuf, UnixListener) {
    static SOCKET: OnceLock<(PathBuf, UnixListener)> = OnceLock::new();
    SOCKET.get_or_init(|| {
        let dir = std::env::temp_dir().join("pam-mfa-fuzz");
        std::fs::create_dir_all(&dir).expect("a directory for the socket");
        for entry in std::fs::read_dir(&dir)
            .expect("the socket's directory")
            .flatten()
        {
            let path = entry.path();
            let pid = path
                .file_stem()
                .and_then(|stem| stem.to_str())
                .unwrap_or("");
            let gone = !Path::new("/proc").join(pid).exists();
            if path.extension().is_some_and(|ext| ext == "socket") && gone {
                let _ = std::fs::remove_file(&path);
            }
        }
        let path = dir.join(format!("{}.socket", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).expect("a socket to listen on");
        (path, listener)
    })
}

/// A person who types a code at every question.
struct Typist;

impl Conversation for Typist {
    fn show(&mut self, _: &Notice) -> Result<(), ConversationFailed> {
        Ok(())
    }

    fn ask(&mut self, _: &str, _: bool) -> Result<Zeroizing<String>, ConversationFailed> {
        Ok(Zeroizing::new("123456".to_owned()))
    }
}

fuzz_target!(|data: &[u8]| {
    let data = &data[..data.len().min(MAX_INPUT)];
    let (path, listener) = socket();
    let mut mfad = pam_mfa::mfad::connect(path, TIMEOUT)
        .expect("the module connects to its own socket (it talks only to root's: run as root)");
    let (mut peer, _) = listener.accept().expect("accept");
    peer.write_all(data)
        .expect("the input fits the socket's buffer");
    peer.shutdown(Shutdown::Write).expect("shutdown");
    let context = [("service", "sshd"), ("rhost", "192.0.2.7")];
    let mut password = None;
    let outcome = relay::run(
        &mut mfad,
        &mut Typist,
        ("alice", &context),
        false,
        &mut password,
    );
    drop(peer);

    // A login is allowed only when the peer said so.
    if outcome == Outcome::Allow {
        assert!(
            data.windows(5).any(|w| w == b"allow"),
            "allowed by {data:?}"
        );
    }
    // Absence (which failmode=safe lets through) is a connection closed before any byte came.
    if let Outcome::Absent(reason) = &outcome {
        assert!(
            data.is_empty(),
            "absent after {} bytes: {reason}",
            data.len()
        );
    }
    let decided = verdict(&outcome, FailMode::Safe, NotRequired::Ignore, true, "alice");
    if decided.code == PamError::SUCCESS {
        assert!(
            matches!(outcome, Outcome::Allow | Outcome::Absent(_)),
            "{outcome:?}"
        );
    }
});
