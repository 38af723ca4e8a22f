//! Logins over real OpenSSH: `sshd` on a loopback port with `UsePAM yes`, its PAM stack loaded
//! through pam_wrapper (the host's /etc/pam.d is not touched) and its users from the test's
//! nss_wrapper files; and the real `ssh` client on a pseudo-terminal, answering the
//! keyboard-interactive prompts as a person would.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::pty::Terminal;
use crate::{Env, system_library, wait_until};

/// A running sshd; killed when dropped.
pub struct Sshd {
    child: Child,
    pub port: u16,
    log: PathBuf,
}

/// Whether OpenSSH's server and client are installed (scripts/install-deps.sh installs them).
pub fn available() -> bool {
    Path::new("/usr/sbin/sshd").exists() && Path::new("/usr/bin/ssh").exists()
}

/// Code only: keyboard-interactive with the code as the one factor.
pub const CODE_ONLY: &str = "auth required @MODULE@\naccount required pam_permit.so\n\
                         session required pam_permit.so\n";
pub const KBD: &str = "KbdInteractiveAuthentication yes\nPasswordAuthentication no\n\
                   PubkeyAuthentication no\nAuthenticationMethods keyboard-interactive\n";
/// One keyboard-interactive attempt (ssh's default is three, each a new PAM login).
pub const KBD_ONLY: &[&str] = &[
    "-o",
    "PreferredAuthentications=keyboard-interactive",
    "-o",
    "NumberOfPasswordPrompts=1",
];

impl Sshd {
    /// Starts sshd for `env` with the PAM stack `stack` as its `sshd` service (`@MODULE@`
    /// stands for pam_mfa.so with the arguments that reach this test's mfad) and `config`
    /// added to its configuration.
    pub fn start(env: &Env, stack: &str, config: &str) -> Sshd {
        let dir = env.dir().join("sshd");
        fs::create_dir_all(dir.join("pam.d")).unwrap();
        // Privilege separation chroots into /run/sshd, which the package normally makes.
        fs::create_dir_all("/run/sshd").unwrap();
        let key = dir.join("host_key");
        if !key.exists() {
            keygen(&key);
        }
        // The test's users, and sshd's own privilege separation user.
        let passwd = fs::read_to_string(env.dir().join("passwd")).unwrap()
            + "sshd:x:100:65534::/run/sshd:/usr/sbin/nologin\n";
        let group = fs::read_to_string(env.dir().join("group")).unwrap() + "nogroup:x:65534:\n";
        fs::write(dir.join("passwd"), passwd).unwrap();
        fs::write(dir.join("group"), group).unwrap();
        let module = format!(
            "{} {}",
            crate::built("libpam_mfa.so").display(),
            env.module_target()
        );
        fs::write(dir.join("pam.d/sshd"), stack.replace("@MODULE@", &module)).unwrap();
        let port = free_port();
        let log = dir.join("sshd.log");
        fs::write(
            dir.join("sshd_config"),
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nUsePAM yes\n\
                 PidFile {}\nStrictModes no\n{config}\n",
                key.display(),
                dir.join("sshd.pid").display()
            ),
        )
        .unwrap();
        let child = Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f"])
            .arg(dir.join("sshd_config"))
            .env(
                "LD_PRELOAD",
                format!(
                    "{} {}",
                    system_library("libpam_wrapper.so").display(),
                    system_library("libnss_wrapper.so").display()
                ),
            )
            .env("PAM_WRAPPER", "1")
            .env("PAM_WRAPPER_SERVICE_DIR", dir.join("pam.d"))
            .env("NSS_WRAPPER_PASSWD", dir.join("passwd"))
            .env("NSS_WRAPPER_GROUP", dir.join("group"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log).unwrap())
            .spawn()
            .expect("start sshd");
        let sshd = Sshd { child, port, log };
        wait_until("sshd to listen", || sshd.log().contains("Server listening"));
        sshd
    }

    /// What sshd wrote to its log.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Makes an Ed25519 key pair without a passphrase: `path` and `path.pub`.
pub fn keygen(path: &Path) {
    let made = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", ""])
        .arg("-f")
        .arg(path)
        .status()
        .expect("run ssh-keygen");
    assert!(made.success(), "ssh-keygen failed");
}

pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

pub use crate::pty::Session;

/// Runs `ssh USER@127.0.0.1 COMMAND` against the sshd on `port` on a pseudo-terminal,
/// answering each prompt with the next of `answers`; at a prompt with no answer left, the
/// person gives up (ssh is ended). `options` go to ssh before the destination.
pub fn ssh(port: u16, user: &str, command: &str, options: &[&str], answers: &[&str]) -> Session {
    let mut answers = answers.iter();
    ssh_with(port, user, command, options, &mut |_| {
        answers.next().map(|answer| (*answer).to_owned())
    })
}

/// [`ssh`], answering each prompt with what `respond` makes of the text shown since the last
/// answer (the prompt last); `None` gives up.
pub fn ssh_with(
    port: u16,
    user: &str,
    command: &str,
    options: &[&str],
    respond: &mut dyn FnMut(&str) -> Option<String>,
) -> Session {
    let mut ssh = Command::new("ssh");
    ssh.args(["-p", &port.to_string()])
        .args([
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            // ssh's default: it shows the messages of a refused login (sshd sends them as a
            // last keyboard-interactive request, which the client logs at INFO).
            "-o",
            "LogLevel=INFO",
            "-o",
            "BatchMode=no",
        ])
        .args(options)
        .arg(format!("{user}@127.0.0.1"))
        .arg(command);
    Terminal::spawn(&mut ssh).converse(respond)
}
