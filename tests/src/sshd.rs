//! Logins over real OpenSSH: `sshd` on a loopback port with `UsePAM yes`, its PAM stack loaded
//! through pam_wrapper (the host's /etc/pam.d is not touched) and its users from the test's
//! nss_wrapper files; and the real `ssh` client on a pseudo-terminal, answering the
//! keyboard-interactive prompts as a person would.

use std::fs;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{Env, HANG_LIMIT, system_library, wait_until};

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

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// What an ssh session showed, and how it ended.
pub struct Session {
    /// Everything the terminal showed: prompts, messages, the remote command's output.
    pub screen: String,
    /// ssh's exit status: the remote command's, or 255 when ssh itself failed.
    pub status: i32,
}

/// Runs `ssh USER@127.0.0.1 COMMAND` against `sshd` on a pseudo-terminal, answering each
/// prompt with the next of `answers`; at a prompt with no answer left, the person gives up
/// (ssh is ended). `options` go to ssh before the destination.
pub fn ssh(sshd: &Sshd, user: &str, command: &str, options: &[&str], answers: &[&str]) -> Session {
    let mut answers = answers.iter();
    ssh_with(sshd, user, command, options, &mut |_| {
        answers.next().map(|answer| (*answer).to_owned())
    })
}

/// [`ssh`], answering each prompt with what `respond` makes of the text shown since the last
/// answer (the prompt last); `None` gives up.
pub fn ssh_with(
    sshd: &Sshd,
    user: &str,
    command: &str,
    options: &[&str],
    respond: &mut dyn FnMut(&str) -> Option<String>,
) -> Session {
    let (master, slave) = open_pty();
    let mut child = {
        let io = |fd: &OwnedFd| Stdio::from(fd.try_clone().unwrap());
        let mut ssh = Command::new("ssh");
        ssh.args(["-p", &sshd.port.to_string()])
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
            .arg(command)
            .stdin(io(&slave))
            .stdout(io(&slave))
            .stderr(io(&slave));
        // SAFETY: between fork and exec the child only calls setsid and ioctl, both
        // async-signal-safe, to make the pseudo-terminal its controlling terminal (ssh reads
        // answers from /dev/tty).
        unsafe {
            ssh.pre_exec(|| {
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            })
        };
        ssh.spawn().expect("start ssh")
    };
    drop(slave);
    let mut screen = Vec::new();
    let mut seen = 0;
    let start = Instant::now();
    let mut file = fs::File::from(master);
    loop {
        assert!(start.elapsed() < HANG_LIMIT, "ssh hung:\n{}", text(&screen));
        if !readable(&file, Duration::from_millis(100)) {
            let fresh = text(&screen[seen..]);
            if is_prompt(&fresh) {
                seen = screen.len();
                match respond(&fresh) {
                    Some(answer) => {
                        use std::io::Write;
                        file.write_all(format!("{answer}\n").as_bytes()).unwrap();
                    }
                    None => {
                        let _ = child.kill();
                    }
                }
            }
            if let Ok(Some(_)) = child.try_wait() {
                // Whatever is left to read is read below; the slave is closed.
                let mut rest = Vec::new();
                let _ = file.read_to_end(&mut rest);
                screen.extend(rest);
                break;
            }
            continue;
        }
        let mut chunk = [0u8; 4096];
        match file.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(read) => screen.extend_from_slice(&chunk[..read]),
        }
    }
    let status = child.wait().unwrap();
    Session {
        screen: text(&screen),
        status: status.code().unwrap_or(-1),
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).replace('\r', "")
}

/// Whether the terminal shows a question waiting for its answer.
fn is_prompt(fresh: &str) -> bool {
    let last = fresh.rsplit('\n').next().unwrap_or("");
    last.trim_end().ends_with(':') && last.ends_with(' ')
}

fn readable(file: &fs::File, wait: Duration) -> bool {
    let mut poll = libc::pollfd {
        fd: file.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, for the length of the call.
    let ready = unsafe { libc::poll(&mut poll, 1, wait.as_millis() as libc::c_int) };
    ready > 0
}

fn open_pty() -> (OwnedFd, OwnedFd) {
    let (mut master, mut slave) = (0, 0);
    // SAFETY: openpty writes two descriptors into the places given; the name, termios and
    // window size pointers may be null.
    let status = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(status, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: both descriptors were just opened by openpty and are owned by nothing else.
    unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) }
}
