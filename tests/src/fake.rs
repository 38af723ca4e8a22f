//! What stands where mfad should, for the fail-mode tests: a permissive bus on which anyone may
//! own `org.pam_mfa.Mfad1`, served by `fake-mfad` as any uid (for mfactl); a login socket served
//! by `fake-mfad`, which records what the module sends; sockets that accept and then hang up,
//! refuse or say nothing. Plus PAM services pointing at them and a `pamtest` run with
//! `PAM_SILENT`.
//!
//! Build first, as for the rest of the harness: an [`Env`] started in the same test does it.

use std::fs;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::{CtlOutput, Env, Transcript, ctl_on, run_bounded, start_bus, target_dir, wait_until};

/// A private bus whose policy lets any uid own any name and call anything (nothing like the
/// shipped policy), with `fake-mfad` owning `org.pam_mfa.Mfad1`.
pub struct FakeBus {
    pub address: String,
    record: PathBuf,
    bus: Child,
    fake: Child,
}

/// The harness's bus configuration with every restriction lifted and no policy file included.
fn permissive_config(socket: &Path) -> String {
    let mut config = include_str!("../../dbus/private-system-bus.conf.in").to_owned();
    for (strict, permissive) in [
        (r#"<deny own="*"/>"#, r#"<allow own="*"/>"#),
        (
            r#"<deny send_type="method_call"/>"#,
            r#"<allow send_type="method_call"/>"#,
        ),
        ("<include>@POLICY@</include>", ""),
    ] {
        assert!(config.contains(strict), "{strict} not in the bus template");
        config = config.replace(strict, permissive);
    }
    config.replace("@SOCKET@", &socket.display().to_string())
}

impl FakeBus {
    /// Starts the bus in `dir` and `fake-mfad` on it as `uid` (and gid).
    pub fn start(dir: &Path, uid: u32) -> FakeBus {
        use std::os::unix::process::CommandExt;
        let socket = dir.join("fake_bus_socket");
        let config = dir.join("fake-bus.conf");
        fs::write(&config, permissive_config(&socket)).unwrap();
        let bus = start_bus(&config, &socket, &dir.join("fake-bus.log"));
        let address = format!("unix:path={}", socket.display());
        let record = dir.join("fake-mfad.calls");
        fs::write(&record, "").unwrap();
        std::os::unix::fs::chown(&record, Some(uid), Some(uid)).unwrap();
        let fake = Command::new(target_dir().join("fake-mfad"))
            .arg("--bus")
            .arg(&address)
            .arg("--record")
            .arg(&record)
            .uid(uid)
            .gid(uid)
            .stdout(Stdio::null())
            .stderr(fs::File::create(dir.join("fake-mfad.log")).unwrap())
            .spawn()
            .expect("start fake-mfad");
        let mut fake_bus = FakeBus {
            address,
            record,
            bus,
            fake,
        };
        wait_until("fake-mfad to own its name", || {
            assert!(
                fake_bus.fake.try_wait().unwrap().is_none(),
                "fake-mfad exited: {}",
                fs::read_to_string(dir.join("fake-mfad.log")).unwrap_or_default()
            );
            fake_bus.calls().iter().any(|line| line == "ready")
        });
        fake_bus
    }

    /// Runs `mfactl --bus <this bus> ARGS` as root, feeding `stdin`.
    pub fn ctl(&self, args: &[&str], stdin: &str) -> CtlOutput {
        ctl_on(&self.address, None, args, stdin)
    }

    /// The method calls fake-mfad received before a probe sent now, which it must record (so
    /// an empty list means "nothing was sent", not "the recorder is broken").
    pub fn calls_after_probe(&self) -> Vec<String> {
        const PROBE: &str = "call org.freedesktop.DBus.Peer.Ping";
        zbus::block_on(async {
            let connection = zbus::connection::Builder::address(self.address.as_str())
                .build()
                .await
                .expect("connect to the fake bus");
            connection
                .call_method(
                    Some(pam_mfa_api::BUS_NAME),
                    pam_mfa_api::OBJECT_PATH,
                    Some("org.freedesktop.DBus.Peer"),
                    "Ping",
                    &(),
                )
                .await
                .expect("fake-mfad answers Ping");
        });
        wait_until("fake-mfad to record the probe", || {
            self.calls().iter().any(|line| line == PROBE)
        });
        self.calls()
            .into_iter()
            .take_while(|line| line != PROBE)
            .filter(|line| line.starts_with("call "))
            .collect()
    }

    /// What fake-mfad recorded, `ready` included.
    pub fn calls(&self) -> Vec<String> {
        recorded(&self.record)
    }
}

impl Drop for FakeBus {
    fn drop(&mut self) {
        for child in [&mut self.fake, &mut self.bus] {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The lines of fake-mfad's record file.
fn recorded(record: &Path) -> Vec<String> {
    fs::read_to_string(record)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// A login socket served by `fake-mfad` as root, which records the calls it receives.
pub struct FakeSocket {
    pub path: PathBuf,
    record: PathBuf,
    fake: Child,
}

impl FakeSocket {
    /// Starts `fake-mfad` on the socket `name` in `dir`.
    pub fn start(dir: &Path, name: &str) -> FakeSocket {
        let path = dir.join(name);
        let record = dir.join(format!("{name}.calls"));
        fs::write(&record, "").unwrap();
        let fake = Command::new(target_dir().join("fake-mfad"))
            .arg("--socket")
            .arg(&path)
            .arg("--record")
            .arg(&record)
            .stdout(Stdio::null())
            .stderr(fs::File::create(dir.join(format!("{name}.log"))).unwrap())
            .spawn()
            .expect("start fake-mfad");
        let mut socket = FakeSocket { path, record, fake };
        wait_until("fake-mfad to listen", || {
            assert!(
                socket.fake.try_wait().unwrap().is_none(),
                "fake-mfad exited: {}",
                fs::read_to_string(dir.join(format!("{name}.log"))).unwrap_or_default()
            );
            socket.calls().iter().any(|line| line == "ready")
        });
        socket
    }

    /// What fake-mfad recorded, `ready` included.
    pub fn calls(&self) -> Vec<String> {
        recorded(&self.record)
    }
}

impl Drop for FakeSocket {
    fn drop(&mut self) {
        let _ = self.fake.kill();
        let _ = self.fake.wait();
    }
}

/// What a socket that is not mfad does with a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mute {
    /// Accepts and closes at once, without a word: nobody serves the socket.
    HangsUp,
    /// Accepts, reads the handshake and refuses it in one line, as mfad refuses a uid over its
    /// limits.
    Refuses,
    /// Accepts and never says anything: only the time-out ends the handshake.
    Silent,
}

/// Listens on `path` in a background thread and treats every connection as `mute` says. The
/// thread lives as long as the test process.
pub fn mute_socket(path: &Path, mute: Mute) {
    let listener = UnixListener::bind(path).unwrap();
    std::thread::spawn(move || {
        let mut held: Vec<UnixStream> = Vec::new();
        for mut stream in listener.incoming().flatten() {
            match mute {
                Mute::HangsUp => drop(stream),
                Mute::Refuses => {
                    use std::io::{Read, Write};
                    let mut first = [0u8; 64];
                    let _ = stream.read(&mut first);
                    let _ = stream.write_all(b"ERROR too many connections for uid 0\r\n");
                }
                Mute::Silent => held.push(stream),
            }
        }
    });
}

/// Writes the PAM service `name` into `env`'s configuration directory: `pam_mfa.so ARGS`.
pub fn service(env: &Env, name: &str, args: &str) {
    let module = target_dir().join("libpam_mfa.so");
    fs::write(
        env.confdir().join(name),
        format!("auth required {} {args}\n", module.display()),
    )
    .unwrap();
}

/// Runs `pamtest` for `user` on `service` in `env`'s configuration with `PAM_SILENT`, as sudo
/// calls `pam_authenticate`, answering prompts with `answers`.
pub fn silent_login(env: &Env, service: &str, user: &str, answers: &[&str]) -> Transcript {
    let mut command = Command::new(target_dir().join("pamtest"));
    command
        .arg("--confdir")
        .arg(env.confdir())
        .arg("--service")
        .arg(service)
        .arg("--user")
        .arg(user)
        .arg("--silent");
    for answer in answers {
        command.arg("--answer").arg(answer);
    }
    let output = run_bounded(&mut command, "pamtest");
    Transcript {
        lines: String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(str::to_owned)
            .collect(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}
