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
    // A failure is kept too: every test then fails with it, without building again.
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        if let Some(why) = unavailable() {
            return Err(format!("containers cannot run here: {why}"));
        }
        // The binaries are current (cargo builds them for the tests).
        crate::built("mfad");
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        // Tagged pam-mfa:test, so that a pam-mfa:dev made from a release build stays as it is.
        let out = Command::new(repo.join("containers/build.sh"))
            .arg("--bin-dir")
            .arg(target_dir())
            .args(["--tag", "pam-mfa:test", "--tests"])
            .stdin(Stdio::null())
            .output()
            .map_err(|error| format!("cannot run containers/build.sh: {error}"))?;
        if !out.status.success() {
            return Err(format!(
                "containers/build.sh failed ({}):\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(())
    });
    if let Err(why) = built {
        panic!("{why}");
    }
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
        let container = Container::launch(image, &["--init"]);
        container.wait_for_log("Server listening", 1);
        if container
            .exec("root", &["test", "-x", "/usr/sbin/mfad"])
            .status
            .success()
        {
            container.wait_for_log("serving org.pam_mfa.Mfad1", 1);
        }
        container
    }

    /// Starts a container of `image` with `options` for `docker run`, and waits for nothing.
    pub fn launch(image: &str, options: &[&str]) -> Container {
        build_images();
        // Removed when stopped; labelled, so that those of a test run that was killed can be
        // found (`docker ps --filter label=pam-mfa-test`).
        let mut run = vec![
            "run",
            "--detach",
            "--rm",
            "--label",
            "pam-mfa-test",
            "--publish",
            "127.0.0.1::22",
        ];
        run.extend_from_slice(options);
        run.push(image);
        let out = docker(&run);
        let mut container = Container {
            id: stdout(&out).trim().to_owned(),
            ssh_port: 0,
        };
        let port = stdout(&container.docker(&["port", &container.id, "22/tcp"]));
        container.ssh_port = port
            .lines()
            .find_map(|line| line.strip_prefix("127.0.0.1:"))
            .and_then(|port| port.trim().parse().ok())
            .unwrap_or_else(|| panic!("no published SSH port: {port:?}"));
        container
    }

    /// Starts a container of `image` with systemd as its init (the package test's image), and
    /// waits until systemd has started everything it starts at boot.
    pub fn start_systemd(image: &str) -> Container {
        let container = Container::launch(
            image,
            &[
                "--cap-add",
                "SYS_ADMIN",
                "--security-opt",
                "seccomp=unconfined",
                "--security-opt",
                "apparmor=unconfined",
                "--cgroupns",
                "host",
                "--volume",
                "/sys/fs/cgroup:/sys/fs/cgroup:rw",
                "--tmpfs",
                "/run",
                "--tmpfs",
                "/run/lock",
            ],
        );
        let start = Instant::now();
        loop {
            let state = container.exec("root", &["systemctl", "is-system-running"]);
            let state = stdout(&state);
            if state.starts_with("running") || state.starts_with("degraded") {
                break;
            }
            assert!(
                start.elapsed() < HANG_LIMIT,
                "systemd did not finish starting ({state:?}):\n{}",
                container.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        // systemd makes every mount shared when it boots a host, and relies on it: it mounts a
        // service's credentials in a namespace of its own, from which the mount must reach
        // the service. Docker's mounts are private, and would leave the service an empty
        // credentials directory.
        container.run("root", &["mount", "--make-rshared", "/"]);
        container
    }

    /// Copies `path` on the host to `to` in the container.
    pub fn copy_in(&self, path: &Path, to: &str) {
        self.docker(&["cp", path.to_str().unwrap(), &format!("{}:{to}", self.id)]);
    }

    /// The container's address on its network, and the address of this host there (the
    /// network's gateway), as the container sees them.
    pub fn addresses(&self) -> (String, String) {
        let out = self.docker(&[
            "inspect",
            "-f",
            "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{.Gateway}}{{end}}",
            &self.id,
        ]);
        let text = String::from_utf8_lossy(&out.stdout);
        let mut words = text.split_whitespace();
        match (words.next(), words.next()) {
            (Some(own), Some(gateway)) => (own.to_owned(), gateway.to_owned()),
            _ => panic!("no address in docker inspect: {text:?}"),
        }
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
