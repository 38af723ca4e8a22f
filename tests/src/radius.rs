//! A real FreeRADIUS server (Debian's freeradius) for one test: its PAM module (rlm_pam) sends
//! each Access-Request's one password to a PAM stack, as applications that cannot ask a second
//! question do. It listens on loopback on a port of its own, with a copy of Debian's
//! configuration reduced to the users file and rlm_pam. Its PAM stack, and the users and
//! password hashes pam_unix checks, come from the test, mounted over /etc/pam.d, /etc/passwd
//! and /etc/shadow in a mount namespace of the server's own: the host's files are not touched.
//! `radtest`, from freeradius-utils, is the client.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::{Env, run_bounded, wait_until};

/// Debian's FreeRADIUS configuration, copied for each server.
const DEBIAN_CONFIG: &str = "/etc/freeradius/3.0";
/// The secret of the loopback client in Debian's clients.conf.
const CLIENT_SECRET: &str = "testing123";

/// Whether FreeRADIUS and radtest are installed (scripts/install-deps.sh installs them).
pub fn available() -> bool {
    Path::new("/usr/sbin/freeradius").exists() && Path::new("/usr/bin/radtest").exists()
}

pub struct Radius {
    child: Child,
    port: u16,
    log: PathBuf,
}

/// What `radtest` got for one Access-Request.
#[derive(Debug)]
pub struct Answer {
    pub accepted: bool,
    pub output: String,
}

impl Radius {
    /// Starts FreeRADIUS for `env`: `users` authenticate through PAM, with the stack `stack`
    /// as its `radiusd` service (`@MODULE@` stands for pam_mfa.so with the arguments that reach
    /// this test's mfad); every test user's Unix password is `password`.
    pub fn start(env: &Env, stack: &str, users: &[&str], password: &str) -> Radius {
        let dir = env.dir().join("radius");
        let raddb = dir.join("raddb");
        fs::create_dir_all(dir.join("log")).unwrap();
        fs::create_dir_all(dir.join("run")).unwrap();
        fs::create_dir_all(dir.join("pam.d")).unwrap();
        let copied = run_bounded(
            Command::new("cp").arg("-a").arg(DEBIAN_CONFIG).arg(&raddb),
            "cp FreeRADIUS's configuration",
        );
        assert!(copied.status.success(), "cannot copy {DEBIAN_CONFIG}");
        // Its own directories; running as root (the stack's modules read the test's files);
        // a rejection answered at once.
        let config = fs::read_to_string(raddb.join("radiusd.conf")).unwrap();
        let config: String = config
            .lines()
            .filter_map(|line| {
                let setting = line.trim_start();
                let set = |value: &Path| {
                    Some(format!(
                        "{} = {}",
                        setting.split(' ').next().unwrap(),
                        value.display()
                    ))
                };
                if setting.starts_with("logdir =") {
                    set(&dir.join("log"))
                } else if setting.starts_with("raddbdir =") {
                    set(&raddb)
                } else if setting.starts_with("run_dir =") {
                    set(&dir.join("run"))
                } else if setting.starts_with("user =") || setting.starts_with("group =") {
                    None
                } else if setting.starts_with("reject_delay =") {
                    Some("reject_delay = 0".to_owned())
                } else {
                    Some(line.to_owned())
                }
            })
            .map(|line| line + "\n")
            .collect();
        fs::write(raddb.join("radiusd.conf"), config).unwrap();
        // Only the users file and rlm_pam, in one virtual server on a port of our own.
        for enabled in ["mods-enabled", "sites-enabled"] {
            fs::remove_dir_all(raddb.join(enabled)).unwrap();
            fs::create_dir(raddb.join(enabled)).unwrap();
        }
        for module in ["files", "pam"] {
            std::os::unix::fs::symlink(
                raddb.join("mods-available").join(module),
                raddb.join("mods-enabled").join(module),
            )
            .unwrap();
        }
        let port = free_udp_port();
        fs::write(
            raddb.join("sites-enabled/pam-mfa"),
            format!(
                "server pam-mfa {{\n\
                 \tlisten {{\n\t\ttype = auth\n\t\tipaddr = 127.0.0.1\n\t\tport = {port}\n\t}}\n\
                 \tauthorize {{\n\t\tfiles\n\t}}\n\
                 \tauthenticate {{\n\t\tAuth-Type PAM {{\n\t\t\tpam\n\t\t}}\n\t}}\n}}\n"
            ),
        )
        .unwrap();
        let authorize = raddb.join("mods-config/files/authorize");
        let mut entries: String = users
            .iter()
            .map(|user| format!("{user}\tAuth-Type := PAM\n"))
            .collect();
        entries.push_str(&fs::read_to_string(&authorize).unwrap());
        fs::write(&authorize, entries).unwrap();
        let module = format!(
            "{} {}",
            crate::built("libpam_mfa.so").display(),
            env.module_target()
        );
        fs::write(
            dir.join("pam.d/radiusd"),
            stack.replace("@MODULE@", &module),
        )
        .unwrap();
        let log = dir.join("radiusd.log");
        // The test's users, each with `password`, for pam_unix.
        let hash = run_bounded(
            Command::new("openssl").args(["passwd", "-6", "-salt", "pammfatest", password]),
            "openssl passwd",
        );
        let hash = String::from_utf8(hash.stdout).unwrap().trim().to_owned();
        assert!(hash.starts_with("$6$"), "openssl passwd gave {hash:?}");
        let shadow: String = crate::USERS
            .iter()
            .map(|(user, _)| format!("{user}:{hash}:20000:0:99999:7:::\n"))
            .collect();
        fs::write(dir.join("shadow"), shadow).unwrap();
        fs::copy(env.dir().join("passwd"), dir.join("passwd")).unwrap();
        // rlm_pam reads /etc/pam.d whatever pam_wrapper says (its calls into libpam are bound
        // when FreeRADIUS loads it), and pam_unix reads /etc/passwd and /etc/shadow: the server
        // runs in a mount namespace of its own, where the test's files are mounted over those.
        let child = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c"])
            .arg(
                "mount --bind \"$1\" /etc/pam.d && mount --bind \"$2\" /etc/passwd && \
                 mount --bind \"$3\" /etc/shadow && \
                 exec /usr/sbin/freeradius -f -l stdout -d \"$4\"",
            )
            .arg("sh")
            .arg(dir.join("pam.d"))
            .arg(dir.join("passwd"))
            .arg(dir.join("shadow"))
            .arg(&raddb)
            .stdin(Stdio::null())
            .stdout(fs::File::create(&log).unwrap())
            .stderr(fs::File::options().append(true).open(&log).unwrap())
            .spawn()
            .expect("start freeradius");
        let radius = Radius { child, port, log };
        wait_until("FreeRADIUS to listen", || {
            radius.log().contains("Ready to process requests")
        });
        radius
    }

    /// Sends an Access-Request for `user` with the one password `password` (PAP), as an
    /// application would; whether it was accepted.
    pub fn authenticate(&self, user: &str, password: &str) -> Answer {
        let out = run_bounded(
            Command::new("radtest").args([
                "-t",
                "pap",
                user,
                password,
                &format!("127.0.0.1:{}", self.port),
                "0",
                CLIENT_SECRET,
            ]),
            "radtest",
        );
        let output = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Answer {
            accepted: out.status.success() && output.contains("Received Access-Accept"),
            output,
        }
    }

    /// What the server wrote to its log.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// A UDP port nothing listens on now.
fn free_udp_port() -> u16 {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.local_addr().unwrap().port()
}

impl Drop for Radius {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
