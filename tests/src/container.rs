//! Containers built here from nothing: a Debian base made by debootstrap and `docker import`
//! (`containers/base.sh`, cached by content), pam-mfa installed where a package puts it
//! (`containers/Dockerfile`), real users, the system bus at its standard path, and mfad, the
//! bus and sshd under the container's supervisor (`containers/init`). Tests drive it from the
//! host: over SSH on a loopback port, and with `docker exec -it` on a pseudo-terminal for `su`,
//! `sudo` and `login`.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::pty::Terminal;
use crate::{HANG_LIMIT, run_bounded, target_dir};

/// The test image: pam-mfa's image with the users of `containers/test/users.sh`.
pub const TEST_IMAGE: &str = "pam-mfa-test:dev";

/// Every test user's password (`containers/test/users.sh`).
pub const PASSWORD: &str = "correct horse";

/// Why containers cannot run here, or `None` when a Docker engine answers.
pub fn unavailable() -> Option<String> {
    let answer = Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .stdin(Stdio::null())
        .output();
    match answer {
        Err(error) => Some(format!("the docker command cannot run: {error}")),
        Ok(out) if !out.status.success() => Some(format!(
            "no Docker engine answers: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Ok(_) => None,
    }
}

/// Builds the images once per process, from this build's binaries: pam-mfa's image, the test
/// image and the peer modules' images (`containers/build.sh --tests`).
pub fn build_images() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        if let Some(why) = unavailable() {
            panic!("containers cannot run here: {why}");
        }
        // The binaries are current (cargo builds them for the tests).
        crate::built("mfad");
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let out = Command::new(repo.join("containers/build.sh"))
            .arg("--bin-dir")
            .arg(target_dir())
            .arg("--tests")
            .stdin(Stdio::null())
            .output()
            .expect("run containers/build.sh");
        assert!(
            out.status.success(),
            "containers/build.sh failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    });
}

/// A running container; removed when dropped.
pub struct Container {
    id: String,
    /// sshd's port, published on 127.0.0.1.
    pub ssh_port: u16,
}

impl Container {
    /// Starts a container of `image` and waits until sshd listens and, where the image has
    /// pam-mfa, mfad serves.
    pub fn start(image: &str) -> Container {
        build_images();
        let out = docker(&[
            "run",
            "--detach",
            "--init",
            "--publish",
            "127.0.0.1::22",
            image,
        ]);
        let mut container = Container {
            id: stdout(&out).trim().to_owned(),
            ssh_port: 0,
        };
        let port = stdout(&container.docker(&["port", &container.id, "22/tcp"]));
        let port = port
            .lines()
            .find_map(|line| line.strip_prefix("127.0.0.1:"))
            .and_then(|port| port.trim().parse().ok())
            .unwrap_or_else(|| panic!("no published SSH port: {port:?}"));
        container.ssh_port = port;
        container.wait_for_log("Server listening", 1);
        if container
            .exec("root", &["test", "-x", "/usr/sbin/mfad"])
            .status
            .success()
        {
            container.wait_for_log("serving org.pam_mfa.Mfad1", 1);
            container.choose_path();
        }
        container
    }

    /// Sends the logins of every PAM file that uses pam_mfa.so over the system bus
    /// (`socket=none`) when the tests run on the bus path (`PAM_MFA_TEST_PATH=bus`); by default
    /// they use mfad's login socket, as installed. Call it again after changing a PAM file.
    pub fn choose_path(&self) {
        if crate::direct_path() {
            return;
        }
        self.run(
            "root",
            &[
                "sh",
                "-c",
                "sed -i '/pam_mfa.so/{/socket=/!s/pam_mfa[.]so/pam_mfa.so socket=none/}' \
                 /etc/pam.d/*",
            ],
        );
    }

    /// Runs `docker ARGS`, failing with the container's log if it fails.
    fn docker(&self, args: &[&str]) -> Output {
        let out = run_bounded(Command::new("docker").args(args), "docker");
        assert!(
            out.status.success(),
            "docker {args:?} failed: {}\ncontainer log:\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        out
    }

    /// What the container's processes wrote (the supervisor, dbus-daemon, mfad, sshd).
    pub fn log(&self) -> String {
        let out = Command::new("docker")
            .args(["logs", &self.id])
            .output()
            .expect("run docker logs");
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
    }

    /// Waits until the container's log shows `text` at least `times` times.
    pub fn wait_for_log(&self, text: &str, times: usize) {
        let start = Instant::now();
        while self.log().matches(text).count() < times {
            assert!(
                start.elapsed() < HANG_LIMIT,
                "the container never logged {text:?} {times} times:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Runs `args` in the container as `user`, without a terminal, to its end.
    pub fn exec(&self, user: &str, args: &[&str]) -> Output {
        run_bounded(
            Command::new("docker")
                .args(["exec", "--user", user, &self.id])
                .args(args),
            "docker exec",
        )
    }

    /// [`Container::exec`], failing unless the command succeeds; returns its output.
    pub fn run(&self, user: &str, args: &[&str]) -> String {
        let out = self.exec(user, args);
        assert!(
            out.status.success(),
            "{args:?} as {user} failed: {}{}\ncontainer log:\n{}",
            stdout(&out),
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        stdout(&out)
    }

    /// Runs the shell command `script` as `user` with `input` on its standard input, failing
    /// unless it succeeds; returns its output.
    pub fn run_with_input(&self, user: &str, script: &str, input: &str) -> String {
        use std::io::Write;
        let mut child = Command::new("docker")
            .args([
                "exec",
                "--interactive",
                "--user",
                user,
                &self.id,
                "sh",
                "-c",
                script,
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run docker exec");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        let out = crate::wait_bounded(child, "docker exec");
        assert!(
            out.status.success(),
            "{script:?} as {user} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout(&out)
    }

    /// Starts `args` in the container as `user` on a pseudo-terminal (`docker exec -it` from
    /// one of the host's), as at a terminal.
    pub fn terminal(&self, user: &str, args: &[&str]) -> Terminal {
        Terminal::spawn(
            Command::new("docker")
                .args(["exec", "--interactive", "--tty", "--user", user, &self.id])
                .args(args),
        )
    }

    /// The process id of the first process named `name` in the container, if one runs.
    pub fn pid_of(&self, name: &str) -> Option<u32> {
        let out = self.exec("root", &["pgrep", "--oldest", "--exact", name]);
        stdout(&out).trim().parse().ok()
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["rm", "--force", &self.id])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn docker(args: &[&str]) -> Output {
    let out = run_bounded(Command::new("docker").args(args), "docker");
    assert!(
        out.status.success(),
        "docker {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}
