//! Harness for the integration tests: real processes, no mocks.
//!
//! [`Env`] starts a private `dbus-daemon` configured like a system bus (deny by default, with
//! the shipped policy file for `org.pam_mfa.Mfad1`), and `mfad` on a temporary state directory.
//! Users come from a private passwd file (through cwrap's nss_wrapper, loaded into `mfad`
//! only), so the host's users are never touched. Logins run the real `pam_mfa.so` through the
//! real libpam with the `pamtest` client; administration runs the real `mfactl`.
//!
//! ```no_run
//! use pam_mfa_tests::Env;
//! let env = Env::new().start();
//! let secret = env.enroll("alice");
//! env.login("alice").answer(&env.fresh_code("alice")).run().expect("PAM_SUCCESS");
//! ```
//!
//! The binaries are taken from the workspace's target directory, so build them first:
//! `cargo build --workspace` (the README's test command does).

pub mod container;
pub mod fake;
pub mod https;
pub mod login_proxy;
pub mod netns;
pub mod pam;
pub mod postfix;
pub mod postgres;
pub mod pty;
pub mod radius;
pub mod readme;
pub mod scenarios;
pub mod sshd;

use std::collections::HashMap;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The test users in the private passwd file, with their uids.
pub const USERS: &[(&str, u32)] = &[
    ("root", 0),
    ("alice", 1000),
    ("bob", 1001),
    ("carol", 1002),
    ("dave", 1003),
    ("nobody", 65534),
];

/// Code period of the default configuration.
pub const PERIOD: u64 = 30;

/// A process is declared hung after this long.
pub const HANG_LIMIT: Duration = Duration::from_secs(30);

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// Where `cargo build` put the workspace's binaries: `target/debug` or `target/release`, found
/// from this program's own path (tests run from `target/<profile>/deps`).
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the program's own path");
    let dir = exe
        .parent()
        .expect("target/<profile> or target/<profile>/deps");
    if dir.file_name().is_some_and(|name| name == "deps") {
        dir.parent().expect("target/<profile>").to_owned()
    } else {
        dir.to_owned()
    }
}

/// Builds the workspace's binaries once per test process when run under cargo, so that the
/// tests never run stale binaries (cargo does not rebuild other packages' binaries for them).
fn build_once() {
    static BUILD: std::sync::Once = std::sync::Once::new();
    BUILD.call_once(|| {
        let Some(cargo) = std::env::var_os("CARGO") else {
            return;
        };
        let profile = target_dir()
            .file_name()
            .map(|n| n.to_string_lossy().into_owned());
        let mut command = Command::new(cargo);
        command.args(["build", "--workspace", "--bins", "--lib", "--quiet"]);
        if profile.as_deref() == Some("release") {
            command.arg("--release");
        }
        let status = command.status().expect("run cargo build");
        assert!(status.success(), "cargo build --workspace failed");
    });
}

pub fn built(name: &str) -> PathBuf {
    build_once();
    let path = target_dir().join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace` before the tests",
        path.display()
    );
    path
}

/// `tests/nss/stall.c` built as an NSS module for nss_wrapper (see the file), once per test
/// process.
pub fn stall_nss_module() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("nss/stall.c");
            let dir = target_dir().join("nss");
            fs::create_dir_all(&dir).unwrap();
            // Built under a name of its own, then renamed: tests in other processes may be
            // loading the library at the same path.
            let partial = dir.join(format!("libnss_stall.so.{}", std::process::id()));
            let out = run_bounded(
                Command::new("cc")
                    .args(["-shared", "-fPIC", "-Wall", "-Werror", "-o"])
                    .arg(&partial)
                    .arg(&source),
                "cc",
            );
            assert!(
                out.status.success(),
                "cc {}: {}",
                source.display(),
                String::from_utf8_lossy(&out.stderr)
            );
            let library = dir.join("libnss_stall.so");
            fs::rename(&partial, &library).unwrap();
            library
        })
        .clone()
}

/// Finds a shared library shipped by a Debian package, in the multiarch directories.
pub fn system_library(name: &str) -> PathBuf {
    let candidates = [
        "/usr/lib/x86_64-linux-gnu",
        "/usr/lib/aarch64-linux-gnu",
        "/usr/lib64",
        "/usr/lib",
    ];
    candidates
        .iter()
        .map(|dir| Path::new(dir).join(name))
        .find(|path| path.exists())
        .unwrap_or_else(|| panic!("{name} is missing: install it (see README, test command)"))
}

/// The current TOTP time step.
pub fn current_step() -> u64 {
    now() / PERIOD
}

pub(crate) fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The 6-digit SHA1 code of `secret` (Base32) for time step `step`.
pub fn code_at(secret: &str, step: u64) -> String {
    let bytes = totp_rs::Secret::try_from_base32(secret).expect("Base32 secret");
    totp_rs::Builder::new()
        .with_secret(bytes.as_bytes().to_vec())
        .with_digits(6)
        .with_step_duration(PERIOD)
        .build_noncompliant()
        .generate(step * PERIOD)
        .to_string()
}

/// The counter-based (HOTP) code of counter value `counter` of the Base32 `secret`.
pub fn hotp_at(secret: &str, counter: u64) -> String {
    let bytes = totp_rs::Secret::try_from_base32(secret).expect("Base32 secret");
    totp_rs::Builder::new()
        .with_secret(bytes.as_bytes().to_vec())
        .with_digits(6)
        .with_step_duration(1)
        .build_noncompliant()
        .generate(counter)
        .to_string()
}

/// The secret an enrollment showed with its QR code ("Or the secret, typed by hand: ..."),
/// without its spaces.
pub fn secret_shown(text: &str) -> Option<String> {
    text.lines()
        .find_map(|line| line.split_once("by hand: "))
        .map(|(_, secret)| secret.replace(' ', ""))
}

/// A code that no time step near now gives for `secret`: wrong whatever the window.
pub fn wrong_code(secret: &str) -> String {
    let now = current_step();
    let near: Vec<String> = (now - 3..=now + 3)
        .map(|step| code_at(secret, step))
        .collect();
    (0..1_000_000)
        .map(|n| format!("{n:06}"))
        .find(|code| !near.contains(code))
        .unwrap()
}

/// A random 160-bit Base32 secret.
pub fn random_secret() -> String {
    let mut bytes = [0u8; 20];
    let mut urandom = fs::File::open("/dev/urandom").unwrap();
    std::io::Read::read_exact(&mut urandom, &mut bytes).unwrap();
    totp_rs::Secret::from(bytes.to_vec()).to_base32()
}

/// Waits, if needed, so that at least `margin` seconds remain in the current time step. Codes
/// computed right after this are still inside the daemon's window when it checks them.
pub fn away_from_step_end(margin: u64) {
    let into_step = now() % PERIOD;
    if into_step + margin >= PERIOD {
        std::thread::sleep(Duration::from_secs(PERIOD - into_step) + Duration::from_millis(100));
    }
}

pub struct EnvBuilder {
    config: String,
    module_args: String,
    groups: Vec<String>,
    daemon_env: Vec<(String, PathBuf)>,
    private_dev: bool,
    users: Vec<(String, u32)>,
    netns: Option<String>,
}

/// A private bus, an `mfad`, a PAM configuration directory and the test users.
pub struct Env {
    dir: PathBuf,
    pub address: String,
    bus: Child,
    daemon: Mutex<Option<Child>>,
    confdir: PathBuf,
    config_path: PathBuf,
    /// mfad's login socket.
    login_socket: PathBuf,
    daemon_env: Vec<(String, PathBuf)>,
    private_dev: bool,
    /// The network namespace mfad runs in, if not the test's.
    netns: Option<String>,
    secrets: Mutex<HashMap<String, String>>,
    last_step: Mutex<HashMap<String, u64>>,
}

impl Env {
    #[allow(clippy::new_ret_no_self)]
    pub fn new() -> EnvBuilder {
        EnvBuilder {
            config: String::new(),
            module_args: String::new(),
            groups: Vec::new(),
            daemon_env: Vec::new(),
            private_dev: false,
            users: Vec::new(),
            netns: None,
        }
    }
}

impl EnvBuilder {
    /// Extra mfad configuration (TOML); `state_dir` is set by the harness.
    pub fn config(mut self, toml: &str) -> Self {
        self.config = toml.to_owned();
        self
    }

    /// Extra arguments for pam_mfa.so in the services `mfa` and `mfa-safe`.
    pub fn module_args(mut self, args: &str) -> Self {
        self.module_args = args.to_owned();
        self
    }

    /// A group of the test's group database: `name`, `gid`, and its members' names.
    pub fn group(mut self, name: &str, gid: u32, members: &[&str]) -> Self {
        self.groups
            .push(format!("{name}:x:{gid}:{}\n", members.join(",")));
        self
    }

    /// A user of the test's passwd file beside [`USERS`], with a group of the same name.
    pub fn user(mut self, name: &str, uid: u32) -> Self {
        self.users.push((name.to_owned(), uid));
        self
    }

    /// Runs mfad in the network namespace `name` (see [`netns::NetNamespace`]); logins still
    /// reach it on its login socket, a file.
    pub fn in_network_namespace(mut self, name: &str) -> Self {
        self.netns = Some(name.to_owned());
        self
    }

    /// An environment variable for mfad.
    pub fn daemon_env(mut self, key: &str, value: impl Into<PathBuf>) -> Self {
        self.daemon_env.push((key.to_owned(), value.into()));
        self
    }

    /// Runs mfad in its own mount namespace whose `/dev` is the test's directory
    /// [`Env::dev`] (with `null`, `zero`, `random` and `urandom` of the real one), so the test
    /// decides whether `/dev/log` exists for mfad.
    pub fn private_dev(mut self) -> Self {
        self.private_dev = true;
        self
    }

    pub fn start(self) -> Env {
        let dir = std::env::temp_dir().join(format!(
            "pam-mfa-test-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let socket = dir.join("system_bus_socket");
        let address = format!("unix:path={}", socket.display());

        let policy = Path::new(env!("CARGO_MANIFEST_DIR")).join("../dbus/org.pam_mfa.Mfad1.conf");
        let policy = policy.canonicalize().expect("dbus/org.pam_mfa.Mfad1.conf");
        let bus_config = dir.join("bus.conf");
        fs::write(&bus_config, system_bus_config(&socket, &policy)).unwrap();

        let passwd = dir.join("passwd");
        let group = dir.join("group");
        let mut passwd_text = String::new();
        let mut group_text = String::new();
        let more = self.users.iter().map(|(name, uid)| (name.as_str(), *uid));
        for (name, uid) in USERS.iter().copied().chain(more) {
            passwd_text.push_str(&format!(
                "{name}:x:{uid}:{uid}:{name}:/nonexistent:/bin/sh\n"
            ));
            group_text.push_str(&format!("{name}:x:{uid}:\n"));
        }
        for line in &self.groups {
            group_text.push_str(line);
        }
        fs::write(&passwd, passwd_text).unwrap();
        fs::write(&group, group_text).unwrap();
        // The bus knows the same users as mfad: dbus-daemon refuses a connection whose uid it
        // cannot look up.
        let bus = start_bus_with_users(
            &bus_config,
            &socket,
            &dir.join("bus.log"),
            Some((&passwd, &group)),
        );

        let login_socket = dir.join("run/login.socket");
        write_sealing_keys(&dir.join(SEALING_KEY_FILE));
        let config_path = dir.join("mfad.toml");
        fs::write(
            &config_path,
            format!(
                "state_dir = \"{}\"\n{}{}",
                dir.join("state").display(),
                socket_setting(&login_socket),
                self.config
            ),
        )
        .unwrap();

        let confdir = dir.join("pam.d");
        fs::create_dir(&confdir).unwrap();
        let module = built("libpam_mfa.so");
        let args = &self.module_args;
        let target = module_target(&login_socket);
        // `mfa` and stacks named as the services that use the module, for rules about services.
        let services = [
            ("mfa", ""),
            ("mfa-safe", " failmode=safe"),
            ("sshd", ""),
            ("sudo", ""),
            ("su", ""),
            ("login", ""),
        ];
        for (service, extra) in services {
            fs::write(
                confdir.join(service),
                format!(
                    "auth required {} {target}{extra} {args}\n",
                    module.display()
                ),
            )
            .unwrap();
        }
        fs::write(
            confdir.join("mfa-bad-args"),
            format!("auth required {} {target} failmod=safe\n", module.display()),
        )
        .unwrap();
        // pam_mfa after another module, as after a password check. libpam fails a stack in
        // which every module returned PAM_IGNORE (PAM_PERM_DENIED), so a login that is
        // PAM_PERM_DENIED in `mfa` but PAM_SUCCESS here is one that pam_mfa ignored.
        fs::write(
            confdir.join("permit-then-mfa"),
            format!(
                "auth required pam_permit.so\nauth required {} {target} {args}\n",
                module.display()
            ),
        )
        .unwrap();

        let env = Env {
            dir,
            address,
            bus,
            daemon: Mutex::new(None),
            confdir,
            config_path,
            login_socket,
            daemon_env: self.daemon_env,
            private_dev: self.private_dev,
            netns: self.netns,
            secrets: Mutex::new(HashMap::new()),
            last_step: Mutex::new(HashMap::new()),
        };
        env.start_daemon();
        env
    }
}

/// Whether every thread of process `pid` is stopped (state `T` in /proc).
fn all_threads_stopped(pid: u32) -> bool {
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.flatten().all(|task| {
        fs::read_to_string(task.path().join("stat"))
            .ok()
            .and_then(|stat| {
                let after = stat.rsplit_once(") ")?.1.to_owned();
                after.chars().next()
            })
            .is_some_and(|state| state == 'T' || state == 't')
    })
}

/// mfad's setting for its login socket.
fn socket_setting(socket: &Path) -> String {
    let keys = socket.parent().and_then(Path::parent).unwrap_or(socket);
    format!(
        "login_socket = \"{}\"\n{}",
        socket.display(),
        sealing_setting(&keys.join(SEALING_KEY_FILE))
    )
}

/// The sealing keys of every mfad the tests start: the same for all, as the hosts of a fleet
/// need.
pub const TEST_SEALING_KEYS: &str =
    "1 8d1f6a0b3c5e7d9f2a4c6e8b0d2f4a6c8e0b2d4f6a8c0e2b4d6f8a0c2e4b6d8f\n";

/// Where an environment's mfad finds its sealing keys, in its directory.
const SEALING_KEY_FILE: &str = "sealing.key";

/// The configuration line that names the sealing key file at `path`.
pub fn sealing_setting(path: &Path) -> String {
    format!("sealing_key_file = \"{}\"\n", path.display())
}

/// Writes [`TEST_SEALING_KEYS`] to `path`, private to root as mfad wants it.
pub fn write_sealing_keys(path: &Path) {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .unwrap();
    file.write_all(TEST_SEALING_KEYS.as_bytes()).unwrap();
}

/// Where pam_mfa.so finds mfad.
fn module_target(socket: &Path) -> String {
    format!("socket={}", socket.display())
}

/// The private bus's configuration: the template shared with the demo, filled in.
fn system_bus_config(socket: &Path, policy: &Path) -> String {
    include_str!("../../dbus/private-system-bus.conf.in")
        .replace("@SOCKET@", &socket.display().to_string())
        .replace("@POLICY@", &policy.display().to_string())
}

/// Starts a private `dbus-daemon` with the configuration file `config`, which listens on
/// `socket`, its messages in `log`; returns once the socket is there.
pub fn start_bus(config: &Path, socket: &Path, log: &Path) -> Child {
    start_bus_with_users(config, socket, log, None)
}

/// [`start_bus`], with the user and group databases `users` (passwd, group files) through
/// nss_wrapper instead of the system's.
pub fn start_bus_with_users(
    config: &Path,
    socket: &Path,
    log: &Path,
    users: Option<(&Path, &Path)>,
) -> Child {
    let mut command = Command::new("dbus-daemon");
    if let Some((passwd, group)) = users {
        command
            .env("LD_PRELOAD", system_library("libnss_wrapper.so"))
            .env("NSS_WRAPPER_PASSWD", passwd)
            .env("NSS_WRAPPER_GROUP", group);
    }
    let bus = command
        .arg(format!("--config-file={}", config.display()))
        .arg("--nofork")
        .stdout(Stdio::null())
        .stderr(fs::File::create(log).unwrap())
        .spawn()
        .expect("dbus-daemon is missing: install dbus-daemon (see README, test command)");
    wait_until("the bus socket to appear", || socket.exists());
    bus
}

/// How many times `needle` is in the writable private memory of process `pid` (its heap, its
/// stacks, its other anonymous and data mappings), as read from /proc (root may read any
/// process's).
pub fn copies_in_memory(pid: u32, needle: &[u8]) -> usize {
    use std::io::{Read, Seek, SeekFrom};
    let maps = fs::read_to_string(format!("/proc/{pid}/maps")).expect("the process's maps");
    let mut memory = fs::File::open(format!("/proc/{pid}/mem")).expect("the process's memory");
    let mut count = 0;
    for line in maps.lines() {
        let mut fields = line.split_whitespace();
        let (Some(range), Some(perms)) = (fields.next(), fields.next()) else {
            continue;
        };
        if !perms.starts_with("rw") || !perms.ends_with('p') {
            continue;
        }
        let Some((start, end)) = range.split_once('-') else {
            continue;
        };
        let (Ok(start), Ok(end)) = (u64::from_str_radix(start, 16), u64::from_str_radix(end, 16))
        else {
            continue;
        };
        let mut bytes = vec![0u8; (end - start) as usize];
        // A mapping that went away meanwhile (a thread's stack, say) reads as nothing.
        if memory.seek(SeekFrom::Start(start)).is_err() || memory.read_exact(&mut bytes).is_err() {
            continue;
        }
        count += bytes
            .windows(needle.len())
            .filter(|window| *window == needle)
            .count();
    }
    count
}

/// Waits until `ready`, failing after [`HANG_LIMIT`].
pub fn wait_until(what: &str, mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ready() {
        assert!(start.elapsed() < HANG_LIMIT, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Runs `command` to its end, failing if it hangs.
pub fn run_bounded(command: &mut Command, what: &str) -> Output {
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("cannot start {what}: {error}"));
    wait_bounded(child, what)
}

/// Waits for `child`, killing it and failing if it runs past [`HANG_LIMIT`]. Its output is
/// read while it runs, so that a long one never fills the pipe and waits for a reader.
pub fn wait_bounded(mut child: Child, what: &str) -> Output {
    fn drain(pipe: Option<impl std::io::Read + Send + 'static>) -> JoinHandle<Vec<u8>> {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            bytes
        })
    }
    let (stdout, stderr) = (drain(child.stdout.take()), drain(child.stderr.take()));
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > HANG_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{what} hung for {HANG_LIMIT:?}; output so far:\n{}",
                String::from_utf8_lossy(&stdout.join().unwrap())
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Output {
        status,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    }
}

impl Env {
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// mfad's stderr so far.
    pub fn daemon_log(&self) -> String {
        fs::read_to_string(self.dir.join("mfad.log")).unwrap_or_default()
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.join("state")
    }

    /// The file of mfad's sealing keys.
    pub fn sealing_key_file(&self) -> PathBuf {
        self.dir.join(SEALING_KEY_FILE)
    }

    /// The `state_dir` and `sealing_key_file` lines of this environment's mfad.
    pub fn state_settings(&self) -> String {
        format!(
            "state_dir = \"{}\"\n{}",
            self.state_dir().display(),
            sealing_setting(&self.sealing_key_file())
        )
    }

    /// mfad's stderr, opened to add to it.
    fn daemon_log_file(&self) -> fs::File {
        fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("mfad.log"))
            .unwrap()
    }

    /// Starts mfad (again) and waits until it owns its name.
    pub fn start_daemon(&self) {
        let log = self.daemon_log_file();
        let starts_before = self
            .daemon_log()
            .matches("serving org.pam_mfa.Mfad1")
            .count();
        let mut command = if self.private_dev {
            self.in_private_dev()
        } else if let Some(netns) = &self.netns {
            let mut command = Command::new("ip");
            command.args(["netns", "exec", netns]).arg(built("mfad"));
            command
        } else {
            Command::new(built("mfad"))
        };
        let child = command
            .arg("--bus")
            .arg(&self.address)
            .arg("--config")
            .arg(&self.config_path)
            .env("LD_PRELOAD", system_library("libnss_wrapper.so"))
            .env("NSS_WRAPPER_PASSWD", self.dir.join("passwd"))
            .env("NSS_WRAPPER_GROUP", self.dir.join("group"))
            .envs(self.daemon_env.iter().map(|(key, value)| (key, value)))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start mfad");
        let pid = child.id();
        *self.daemon.lock().unwrap() = Some(child);
        wait_until("mfad to own its name", || {
            let ready = self
                .daemon_log()
                .matches("serving org.pam_mfa.Mfad1")
                .count()
                > starts_before;
            let alive = fs::metadata(format!("/proc/{pid}")).is_ok();
            assert!(alive, "mfad exited:\n{}", self.daemon_log());
            ready
        });
    }

    /// Hands mfad's login socket to systemd's `systemd-socket-activate`, as mfad.socket does
    /// under systemd: it listens at `socket` and, at the first connection, starts mfad with the
    /// listening socket passed (LISTEN_FDS), in the same process. Returns once it listens; mfad
    /// does not run yet (stop the one that runs first: [`Env::stop_daemon`]).
    pub fn start_daemon_on_demand(&self, socket: &Path) {
        assert!(
            !self.private_dev,
            "mfad on demand runs in the test's mount namespace"
        );
        let log = self.daemon_log_file();
        let listening = format!("Listening on {}", socket.display());
        let before = self.daemon_log().matches(&listening).count();
        // systemd-socket-activate gives the program only the variables named with -E.
        let mut variables = vec![
            ("LD_PRELOAD".to_owned(), system_library("libnss_wrapper.so")),
            ("NSS_WRAPPER_PASSWD".to_owned(), self.dir.join("passwd")),
            ("NSS_WRAPPER_GROUP".to_owned(), self.dir.join("group")),
        ];
        variables.extend(self.daemon_env.iter().cloned());
        let mut command = Command::new("systemd-socket-activate");
        command.arg("--listen").arg(socket);
        for (key, value) in &variables {
            command.arg(format!("--setenv={key}={}", value.display()));
        }
        let child = command
            .arg(built("mfad"))
            .arg("--bus")
            .arg(&self.address)
            .arg("--config")
            .arg(&self.config_path)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect(
                "systemd-socket-activate is missing: install systemd (see README, test command)",
            );
        let pid = child.id();
        *self.daemon.lock().unwrap() = Some(child);
        wait_until("systemd-socket-activate to listen", || {
            let alive = fs::metadata(format!("/proc/{pid}")).is_ok();
            assert!(
                alive,
                "systemd-socket-activate exited:\n{}",
                self.daemon_log()
            );
            self.daemon_log().matches(&listening).count() > before
        });
    }

    /// The directory that is `/dev` for mfad, with [`EnvBuilder::private_dev`].
    pub fn dev(&self) -> PathBuf {
        self.dir.join("dev")
    }

    /// A command that runs mfad, with the arguments added to it, in a new mount namespace
    /// whose `/dev` is [`Env::dev`].
    fn in_private_dev(&self) -> Command {
        self.in_private_dev_run(&built("mfad"))
    }

    /// `program`, run in a mount namespace whose `/dev` is [`Env::dev`].
    fn in_private_dev_run(&self, program: &Path) -> Command {
        const NODES: [&str; 4] = ["null", "zero", "random", "urandom"];
        let dev = self.dev();
        fs::create_dir_all(&dev).unwrap();
        for node in NODES {
            fs::write(dev.join(node), "").unwrap();
        }
        let script = format!(
            "set -e; for node in {}; do mount --bind \"/dev/$node\" \"$0/$node\"; done; \
             mount --bind \"$0\" /dev; exec \"$@\"",
            NODES.join(" ")
        );
        let mut command = Command::new("unshare");
        command
            .args(["--mount", "--propagation", "private", "sh", "-c", &script])
            .arg(&dev)
            .arg(program);
        command
    }

    /// Makes `command` see the test's users and groups (as mfad and the bus do).
    pub fn with_test_users<'c>(&self, command: &'c mut Command) -> &'c mut Command {
        command
            .env("LD_PRELOAD", system_library("libnss_wrapper.so"))
            .env("NSS_WRAPPER_PASSWD", self.dir.join("passwd"))
            .env("NSS_WRAPPER_GROUP", self.dir.join("group"))
    }

    /// The pid of the bus daemon.
    pub fn bus_pid(&self) -> u32 {
        self.bus.id()
    }

    /// The module arguments that reach this mfad: `socket=PATH`.
    pub fn module_target(&self) -> String {
        module_target(&self.login_socket)
    }

    /// A peer-to-peer connection to mfad's login socket made by zbus: any D-Bus client, not the
    /// module's own code, for the Login calls of [`login_proxy`].
    pub fn login_connection(&self) -> zbus::Connection {
        zbus::block_on(async {
            let stream = std::os::unix::net::UnixStream::connect(&self.login_socket).unwrap();
            zbus::connection::Builder::unix_stream(stream)
                .p2p()
                .build()
                .await
        })
        .unwrap()
    }

    /// mfad's login socket.
    pub fn login_socket(&self) -> &Path {
        &self.login_socket
    }

    /// mfad's configuration file (rewrite it, then reload).
    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    /// Replaces mfad's configuration file with `toml` (`state_dir` kept); takes effect on the
    /// next reload or start.
    pub fn write_config(&self, toml: &str) {
        fs::write(
            &self.config_path,
            format!(
                "state_dir = \"{}\"\n{}{toml}",
                self.dir.join("state").display(),
                socket_setting(&self.login_socket),
            ),
        )
        .unwrap();
    }

    /// The pid of the running mfad.
    pub fn daemon_pid(&self) -> Option<u32> {
        self.daemon.lock().unwrap().as_ref().map(Child::id)
    }

    /// The directory of the PAM stacks `mfa`, `mfa-safe` and others.
    pub fn confdir(&self) -> &Path {
        &self.confdir
    }

    /// Kills mfad and waits for it to be gone.
    pub fn stop_daemon(&self) {
        if let Some(mut child) = self.daemon.lock().unwrap().take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills the bus daemon, as a crash of dbus-daemon would end it.
    pub fn kill_bus(&self) {
        // SAFETY: signals our own child process.
        unsafe { libc::kill(self.bus.id() as libc::pid_t, libc::SIGKILL) };
    }

    /// Waits for mfad to exit by itself and returns its exit status.
    pub fn daemon_exit(&self) -> std::process::ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(child) = self.daemon.lock().unwrap().as_mut()
                && let Some(status) = child.try_wait().unwrap()
            {
                return status;
            }
            assert!(start.elapsed() < HANG_LIMIT, "mfad did not exit");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Runs another mfad on this bus with the configuration `toml` (with the harness's sealing
    /// keys; its `state_dir` is not added), to its end, and returns what it printed.
    pub fn run_daemon_with(&self, toml: &str) -> Output {
        self.run_daemon_with_keys(&self.sealing_key_file(), toml)
    }

    /// [`Env::run_daemon_with`], with the sealing keys in `keys`.
    pub fn run_daemon_with_keys(&self, keys: &Path, toml: &str) -> Output {
        let config = self.dir.join("other-mfad.toml");
        fs::write(&config, format!("{}{toml}", sealing_setting(keys))).unwrap();
        run_bounded(
            Command::new(built("mfad"))
                .arg("--bus")
                .arg(&self.address)
                .arg("--config")
                .arg(&config),
            "mfad",
        )
    }

    /// Starts `flood` (see tests/src/bin/flood.rs) as `uid` against this bus.
    pub fn flood_as(&self, uid: u32, args: &[&str]) -> Child {
        self.flood("--bus", Path::new(&self.address), uid, args)
    }

    /// Starts `flood` as `uid` against this mfad's login socket (on the direct path).
    pub fn flood_socket_as(&self, uid: u32, args: &[&str]) -> Child {
        let socket = &self.login_socket;
        self.flood("--socket", socket, uid, args)
    }

    fn flood(&self, flag: &str, target: &Path, uid: u32, args: &[&str]) -> Child {
        use std::os::unix::process::CommandExt;
        Command::new(built("flood"))
            .arg(flag)
            .arg(target)
            .args(args)
            .uid(uid)
            .gid(uid)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start flood")
    }

    /// Stops (`SIGSTOP`) or continues (`SIGCONT`) the bus daemon.
    pub fn freeze_bus(&self, frozen: bool) {
        let signal = if frozen { libc::SIGSTOP } else { libc::SIGCONT };
        // SAFETY: signals our own child process.
        unsafe { libc::kill(self.bus.id() as libc::pid_t, signal) };
    }

    /// Stops (`SIGSTOP`) or continues (`SIGCONT`) mfad.
    pub fn freeze_daemon(&self, frozen: bool) {
        let signal = if frozen { libc::SIGSTOP } else { libc::SIGCONT };
        let Some(pid) = self.daemon_pid() else {
            return;
        };
        // SAFETY: signals our own child process.
        unsafe { libc::kill(pid as libc::pid_t, signal) };
        if frozen {
            // A stop is delivered to each thread as it next runs: wait until all have stopped,
            // so the test does not race a thread that is still answering.
            wait_until("mfad to stop", || all_threads_stopped(pid));
        }
    }

    /// Runs `mfactl --bus <ours> ARGS`, feeding `stdin`.
    pub fn ctl(&self, args: &[&str], stdin: &str) -> CtlOutput {
        self.ctl_as(None, args, stdin)
    }

    /// Runs mfactl as `uid` (and gid), or as ourselves.
    pub fn ctl_as(&self, uid: Option<u32>, args: &[&str], stdin: &str) -> CtlOutput {
        ctl_on(&self.address, uid, args, stdin)
    }

    /// Enrolls `user` with a new random secret through `mfactl enroll`, confirming with the code
    /// of the previous time step, and returns the secret.
    pub fn enroll(&self, user: &str) -> String {
        self.enroll_with(user, &random_secret())
    }

    /// Remembers `secret` as `user`'s (enrolled some other way, at a login say), whose code of
    /// `step` was used, so that [`Env::fresh_code`] works for `user`.
    /// The secret the harness knows for `user`.
    pub fn secret_of(&self, user: &str) -> String {
        self.secrets.lock().unwrap()[user].clone()
    }

    pub fn learn_secret(&self, user: &str, secret: &str, step: u64) {
        self.secrets
            .lock()
            .unwrap()
            .insert(user.to_owned(), secret.to_owned());
        self.last_step.lock().unwrap().insert(user.to_owned(), step);
    }

    pub fn enroll_with(&self, user: &str, secret: &str) -> String {
        away_from_step_end(5);
        let step = current_step() - 1;
        let out = self.ctl(
            &["enroll", user, "--secret", secret],
            &format!("{}\n", code_at(secret, step)),
        );
        assert!(
            out.success,
            "enroll {user} failed:\n{}{}",
            out.stdout, out.stderr
        );
        self.secrets
            .lock()
            .unwrap()
            .insert(user.to_owned(), secret.to_owned());
        self.last_step.lock().unwrap().insert(user.to_owned(), step);
        secret.to_owned()
    }

    /// A code for `user` that the daemon has not seen used: the oldest unused step in the
    /// window around now, waiting for the next step if all were used.
    pub fn fresh_code(&self, user: &str) -> String {
        let secret = self.secrets.lock().unwrap()[user].clone();
        loop {
            away_from_step_end(5);
            let now = current_step();
            let last = self
                .last_step
                .lock()
                .unwrap()
                .get(user)
                .copied()
                .unwrap_or(0);
            if let Some(step) = [now - 1, now, now + 1]
                .into_iter()
                .find(|step| *step > last)
            {
                self.last_step.lock().unwrap().insert(user.to_owned(), step);
                return code_at(&secret, step);
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    }

    /// A code that is well-formed but wrong for `user`.
    pub fn wrong_code(&self, user: &str) -> String {
        wrong_code(&self.secrets.lock().unwrap()[user])
    }

    /// Gives wrong codes to logins of `user` through `service` until the account is locked:
    /// two logins of three, the sixth try locking with the default lockout (5 in 5 minutes).
    pub fn lock_out(&self, user: &str, service: &str) {
        let wrong = self.wrong_code(user);
        for _ in 0..2 {
            self.login(user)
                .service(service)
                .answer(&wrong)
                .answer(&wrong)
                .answer(&wrong)
                .run();
        }
    }

    pub fn login(&self, user: &str) -> Login<'_> {
        Login {
            env: self,
            user: user.to_owned(),
            service: "mfa".into(),
            answers: Vec::new(),
            as_uid: None,
            repeat: 1,
            resources: false,
            silent: false,
            hold: false,
            items: Vec::new(),
            private_dev: false,
        }
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        self.freeze_bus(false);
        self.freeze_daemon(false);
        self.stop_daemon();
        let _ = self.bus.kill();
        let _ = self.bus.wait();
        if !std::thread::panicking() {
            let _ = fs::remove_dir_all(&self.dir);
        } else {
            eprintln!(
                "test files kept in {}\nmfad log:\n{}",
                self.dir.display(),
                self.daemon_log()
            );
        }
    }
}

/// Where a test's mfad keeps its state, for tests that run on both stores.
pub enum Store {
    Sqlite,
    Postgres(postgres::Postgres),
}

impl Store {
    /// SQLite, then a real PostgreSQL server.
    pub fn both() -> [Store; 2] {
        [Store::Sqlite, Store::Postgres(postgres::Postgres::start())]
    }

    pub fn name(&self) -> &'static str {
        match self {
            Store::Sqlite => "SQLite",
            Store::Postgres(_) => "PostgreSQL",
        }
    }

    /// An environment on this store (PostgreSQL: its database `database`), with `config`
    /// (TOML) besides.
    pub fn env(&self, database: &str, config: &str) -> EnvBuilder {
        let store = match self {
            Store::Sqlite => String::new(),
            Store::Postgres(server) => {
                server.create_database(database);
                format!(
                    "[store]\nkind = \"postgres\"\nurl = \"{}\"\ntls = \"disable\"\n",
                    server.url(database)
                )
            }
        };
        Env::new().config(&format!("{config}\n{store}"))
    }
}

/// Enrolls `user` through `mfactl enroll` on host `on` of a fleet (hosts sharing one
/// database), and lets every host's harness compute the user's codes (take fresh codes from
/// one host's, which knows which were used wherever they were typed); returns the recovery
/// codes.
pub fn enroll_on(hosts: &[Env], on: usize, user: &str) -> Vec<String> {
    away_from_step_end(5);
    let secret = random_secret();
    let step = current_step() - 1;
    let out = hosts[on].ctl(
        &["--json", "enroll", user, "--secret", &secret],
        &format!("{}\n", code_at(&secret, step)),
    );
    assert!(out.success, "{}{}", out.stdout, out.stderr);
    for host in hosts {
        host.learn_secret(user, &secret, step);
    }
    let document: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    document["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|code| code.as_str().unwrap().to_owned())
        .collect()
}

/// Runs `mfactl --bus ADDRESS ARGS` as `uid` (and gid) or as ourselves, feeding `stdin`.
pub fn ctl_on(address: &str, uid: Option<u32>, args: &[&str], stdin: &str) -> CtlOutput {
    let mut command = Command::new(built("mfactl"));
    command.arg("--bus").arg(address).args(args);
    if let Some(uid) = uid {
        use std::os::unix::process::CommandExt;
        // As root, std also drops the supplementary groups when it sets the uid.
        command.uid(uid).gid(uid);
    }
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start mfactl");
    // mfactl may exit before reading its input: a broken pipe is not a failure here.
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    let output = wait_bounded(child, "mfactl");
    CtlOutput {
        success: output.status.success(),
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

pub struct CtlOutput {
    pub success: bool,
    /// The exit status (none when mfactl was killed by a signal).
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// One login, configured then run through `pamtest`.
pub struct Login<'a> {
    env: &'a Env,
    user: String,
    service: String,
    answers: Vec<String>,
    as_uid: Option<u32>,
    repeat: usize,
    resources: bool,
    silent: bool,
    hold: bool,
    items: Vec<(&'static str, String)>,
    private_dev: bool,
}

impl Login<'_> {
    /// Runs the login program where `/dev` is [`Env::dev`] (of an env started with
    /// [`EnvBuilder::private_dev`]), so that the test reads what the module sends to syslog.
    pub fn in_private_dev(mut self) -> Self {
        self.private_dev = true;
        self
    }

    /// Sets PAM_RHOST, as sshd does with the client's address.
    pub fn rhost(mut self, host: &str) -> Self {
        self.items.push(("--rhost", host.to_owned()));
        self
    }

    /// Sets PAM_TTY, as login does with its terminal.
    pub fn tty(mut self, tty: &str) -> Self {
        self.items.push(("--tty", tty.to_owned()));
        self
    }

    pub fn answer(mut self, text: &str) -> Self {
        self.answers.push(text.to_owned());
        self
    }

    pub fn service(mut self, service: &str) -> Self {
        self.service = service.to_owned();
        self
    }

    /// Runs the login program as `uid` instead of root.
    pub fn as_uid(mut self, uid: u32) -> Self {
        self.as_uid = Some(uid);
        self
    }

    /// Runs `count` logins in one process, reporting its descriptors and threads.
    pub fn repeat_with_resources(mut self, count: usize) -> Self {
        self.repeat = count;
        self.resources = true;
        self
    }

    fn command(&self) -> Command {
        let mut command = if self.private_dev {
            self.env.in_private_dev_run(&built("pamtest"))
        } else {
            Command::new(built("pamtest"))
        };
        command
            .arg("--confdir")
            .arg(&self.env.confdir)
            .arg("--service")
            .arg(&self.service)
            .arg("--user")
            .arg(&self.user)
            .arg("--repeat")
            .arg(self.repeat.to_string());
        for answer in &self.answers {
            command.arg("--answer").arg(answer);
        }
        if let Some(uid) = self.as_uid {
            command.arg("--as-uid").arg(uid.to_string());
        }
        if self.resources {
            command.arg("--resources");
        }
        if self.silent {
            command.arg("--silent");
        }
        if self.hold {
            command.arg("--hold");
        }
        for (flag, value) in &self.items {
            command.arg(flag).arg(value);
        }
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        command
    }

    /// Keeps the login program alive after `pam_end` until [`Driven::finish`], so that a
    /// test can read its memory (see [`Driven::held`]).
    pub fn hold(mut self) -> Self {
        self.hold = true;
        self
    }

    /// Passes `PAM_SILENT`, as sudo does by default.
    pub fn silent(mut self) -> Self {
        self.silent = true;
        self
    }

    /// Starts the login and answers its prompts one at a time, from what it showed (see
    /// [`Driven`]).
    pub fn drive(&self) -> Driven {
        let mut command = self.command();
        command.arg("--answers-from-stdin").stdin(Stdio::piped());
        let mut child = command.spawn().expect("start pamtest");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (sender, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        Driven {
            child,
            stdin,
            lines,
            seen: Vec::new(),
        }
    }

    pub fn spawn(&self) -> RunningLogin {
        RunningLogin(self.command().spawn().expect("start pamtest"))
    }

    pub fn run(&self) -> Transcript {
        self.spawn().finish()
    }
}

/// A login answered step by step: [`Driven::prompt`] returns what was shown since the last
/// answer and the next prompt; [`Driven::reply`] answers it.
pub struct Driven {
    child: Child,
    stdin: std::process::ChildStdin,
    lines: std::sync::mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Driven {
    /// Everything shown up to and including the next prompt line (`PROMPT_ECHO_OFF ...` or
    /// `PROMPT_ECHO_ON ...`), as transcript lines. Fails if the login ends first.
    pub fn prompt(&mut self) -> Vec<String> {
        let mut shown = Vec::new();
        loop {
            let line = self
                .lines
                .recv_timeout(HANG_LIMIT)
                .unwrap_or_else(|_| panic!("no prompt came; so far: {:#?}", self.seen));
            self.seen.push(line.clone());
            let is_prompt = line.starts_with("PROMPT_");
            shown.push(line);
            if is_prompt {
                return shown;
            }
            assert!(
                !shown.last().unwrap().starts_with("RESULT "),
                "the login ended: {shown:#?}"
            );
        }
    }

    /// Waits until the login program holds after its last login ([`Login::hold`]); returns
    /// what it showed since the last answer, and its pid.
    pub fn held(&mut self) -> (Vec<String>, u32) {
        let mut shown = Vec::new();
        loop {
            let line = self
                .lines
                .recv_timeout(HANG_LIMIT)
                .unwrap_or_else(|_| panic!("the login did not hold; so far: {:#?}", self.seen));
            self.seen.push(line.clone());
            if line == "HELD" {
                return (shown, self.child.id());
            }
            shown.push(line);
        }
    }

    pub fn reply(&mut self, text: &str) {
        use std::io::Write;
        writeln!(self.stdin, "{text}").expect("pamtest reads its answer");
    }

    /// Ends the input and waits for the login's end.
    pub fn finish(self) -> Transcript {
        let Driven {
            child,
            stdin,
            lines,
            mut seen,
        } = self;
        drop(stdin);
        let output = wait_bounded(child, "pamtest");
        seen.extend(lines.iter());
        Transcript {
            lines: seen,
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

pub struct RunningLogin(Child);

impl RunningLogin {
    pub fn finish(self) -> Transcript {
        let output = wait_bounded(self.0, "pamtest");
        let lines: Vec<String> = BufReader::new(&output.stdout[..])
            .lines()
            .map(Result::unwrap)
            .collect();
        Transcript {
            lines,
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

/// What the login program saw: prompts, messages, results.
#[derive(Debug)]
pub struct Transcript {
    pub lines: Vec<String>,
    pub stderr: String,
}

impl Transcript {
    /// The PAM result of the (last) login, e.g. `PAM_SUCCESS`.
    pub fn result(&self) -> &str {
        self.lines
            .iter()
            .rev()
            .find_map(|line| line.strip_prefix("RESULT "))
            .unwrap_or("no result")
    }

    pub fn results(&self) -> Vec<&str> {
        self.lines
            .iter()
            .filter_map(|line| line.strip_prefix("RESULT "))
            .collect()
    }

    /// Asserts the result, showing the whole transcript otherwise.
    pub fn expect(&self, result: &str) -> &Self {
        assert_eq!(
            self.result(),
            result,
            "transcript:\n{}\n{}",
            self.lines.join("\n"),
            self.stderr
        );
        self
    }

    /// Asserts that a line contains `text`.
    pub fn shows(&self, text: &str) -> &Self {
        assert!(
            self.lines.iter().any(|line| line.contains(text)),
            "{text:?} not shown; transcript:\n{}",
            self.lines.join("\n")
        );
        self
    }

    /// The number of prompts the user was asked.
    pub fn prompts(&self) -> usize {
        self.lines
            .iter()
            .filter(|line| line.starts_with("PROMPT_"))
            .count()
    }

    /// `(before, after)` of a `FDS` or `THREADS` line.
    pub fn resource(&self, name: &str) -> (usize, usize) {
        let line = self
            .lines
            .iter()
            .find_map(|line| line.strip_prefix(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no {name} line in {:?}", self.lines));
        let mut numbers = line.split(' ').map(|n| n.parse().unwrap());
        (numbers.next().unwrap(), numbers.next().unwrap())
    }
}
