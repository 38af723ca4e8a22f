//! A bus on which a user's process owns `org.pam_mfa.Mfad1`: what an administrator meets after
//! `sudo -E` keeps a `DBUS_SYSTEM_BUS_ADDRESS` pointing at a bus that user started.
//!
//! ```no_run
//! use pam_mfa_tests::squat::SquattedBus;
//! let bus = SquattedBus::start(1000);
//! let out = bus.ctl(&["status", "alice"], "");
//! assert!(!out.success && out.stderr.contains("uid 1000"));
//! assert_eq!(bus.calls_after_probe(), Vec::<String>::new());
//! ```

use std::fs;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::{CtlOutput, built, start_bus, wait_until};

const HANG_LIMIT: Duration = Duration::from_secs(30);

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A private bus whose policy lets anyone own any name and call anything, with
/// `org.pam_mfa.Mfad1` owned by `name-squatter` running as a non-root uid.
pub struct SquattedBus {
    dir: PathBuf,
    pub address: String,
    bus: Child,
    squatter: Child,
    record: PathBuf,
}

/// What the squatter records first, once it owns the name.
const OWNS: &str = "owns org.pam_mfa.Mfad1";

/// The method the probe calls; no client under test calls it.
const PROBE: &str = "org.pam_mfa.Mfad1.Probe.Ping";

impl SquattedBus {
    /// Starts the bus and the squatter as `uid`, and waits until it owns the name.
    pub fn start(uid: u32) -> SquattedBus {
        let dir = std::env::temp_dir().join(format!(
            "pam-mfa-squat-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let socket = dir.join("bus_socket");
        let address = format!("unix:path={}", socket.display());
        let config = dir.join("bus.conf");
        fs::write(&config, open_bus_config(&socket.display().to_string())).unwrap();
        let bus = start_bus(&config, &socket, &dir.join("bus.log"));

        let record = dir.join("squatter.log");
        let squatter = Command::new(built("name-squatter"))
            .arg("--bus")
            .arg(&address)
            .uid(uid)
            .gid(uid)
            .stdin(Stdio::null())
            .stdout(fs::File::create(&record).unwrap())
            .stderr(fs::File::create(dir.join("squatter.err")).unwrap())
            .spawn()
            .expect("start name-squatter");
        let squatted = SquattedBus {
            dir,
            address,
            bus,
            squatter,
            record,
        };
        wait_until("name-squatter to own org.pam_mfa.Mfad1", || {
            squatted.record().lines().any(|line| line == OWNS)
        });
        squatted
    }

    fn record(&self) -> String {
        fs::read_to_string(&self.record).unwrap_or_default()
    }

    /// Runs `mfactl --bus <this bus> ARGS` as root, feeding `stdin`.
    pub fn ctl(&self, args: &[&str], stdin: &str) -> CtlOutput {
        let mut child = Command::new(built("mfactl"))
            .arg("--bus")
            .arg(&self.address)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start mfactl");
        // mfactl may exit before reading its input: a broken pipe is not a failure here.
        let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
        let start = Instant::now();
        while child.try_wait().unwrap().is_none() {
            if start.elapsed() > HANG_LIMIT {
                let _ = child.kill();
                panic!("mfactl hung for {HANG_LIMIT:?}");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let output = child.wait_with_output().unwrap();
        CtlOutput {
            success: output.status.success(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Every method call the squatter received before a probe call sent now, which it must
    /// record (so an empty list means "nothing", not "the recorder is broken").
    pub fn calls_after_probe(&self) -> Vec<String> {
        zbus::block_on(async {
            let connection = zbus::connection::Builder::address(self.address.as_str())
                .build()
                .await
                .expect("connect to the squatted bus");
            let (interface, member) = PROBE.rsplit_once('.').unwrap();
            let answer = connection
                .call_method(
                    Some(pam_mfa_api::BUS_NAME),
                    pam_mfa_api::OBJECT_PATH,
                    Some(interface),
                    member,
                    &(),
                )
                .await;
            assert!(
                answer.is_err(),
                "the squatter answers every call with an error"
            );
        });
        let probe = format!("call {PROBE} {}", pam_mfa_api::OBJECT_PATH);
        wait_until("name-squatter to record the probe", || {
            self.record().lines().any(|line| line == probe)
        });
        self.record()
            .lines()
            .filter(|line| line.starts_with("call ") && *line != probe)
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for SquattedBus {
    fn drop(&mut self) {
        let _ = self.squatter.kill();
        let _ = self.squatter.wait();
        let _ = self.bus.kill();
        let _ = self.bus.wait();
        if std::thread::panicking() {
            eprintln!(
                "test files kept in {}\nsquatter record:\n{}",
                self.dir.display(),
                self.record()
            );
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// A bus with no policy to speak of: anyone may own any name and send anything.
fn open_bus_config(socket: &str) -> String {
    format!(
        r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
"#
    )
}
