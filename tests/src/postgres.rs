//! A real PostgreSQL server for the tests of fleet mode: Debian's binaries, a temporary
//! cluster made with `initdb` and run with `pg_ctl` as an unprivileged user, listening on
//! 127.0.0.1 at a free port and on a Unix socket in its own directory. Stopped and removed when
//! dropped.
//!
//! ```no_run
//! let server = pam_mfa_tests::postgres::Postgres::start();
//! server.create_database("fleet");
//! let url = server.url("fleet"); // host=127.0.0.1 port=... user=postgres dbname=fleet
//! ```

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::run_bounded;
use crate::sshd::free_port;

pub struct Postgres {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
    /// Whether commits reach the disk (benchmarks); tests run without fsync.
    durable: bool,
    /// The addresses it listens on.
    listen: std::sync::Mutex<String>,
}

/// The newest PostgreSQL's programs, as Debian installs them.
fn binaries() -> PathBuf {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|entries| {
            entries
                .filter_map(|entry| entry.ok())
                .filter_map(|entry| {
                    let version = entry.file_name().to_string_lossy().parse().ok()?;
                    let bin = entry.path().join("bin");
                    bin.join("pg_ctl").exists().then_some((version, bin))
                })
                .collect()
        })
        .unwrap_or_default();
    versions.sort();
    versions.pop().map(|(_, bin)| bin).unwrap_or_else(|| {
        panic!(
            "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/pg_ctl): \
             scripts/install-deps.sh installs it"
        )
    })
}

/// Hands `path` to the user the server runs as (nobody, when the tests run as root).
fn give_to_owner(path: &Path) {
    if !is_root() {
        return;
    }
    let chown = Command::new("chown")
        .arg("nobody:nogroup")
        .arg(path)
        .status()
        .expect("run chown");
    assert!(chown.success(), "chown of {}", path.display());
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

impl Postgres {
    /// Makes a cluster and starts its server, without fsync (for tests); waits until it
    /// accepts connections.
    pub fn start() -> Postgres {
        Postgres::make(false)
    }

    /// The same, with every commit flushed to disk as a production server does (for
    /// benchmarks).
    pub fn start_durable() -> Postgres {
        Postgres::make(true)
    }

    /// A directory and a port for a new cluster, made by the caller.
    fn place(durable: bool) -> Postgres {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let bin = binaries();
        let dir = std::env::temp_dir().join(format!(
            "pam-mfa-postgres-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("socket")).unwrap();
        let server = Postgres {
            dir,
            bin,
            port: free_port(),
            durable,
            listen: std::sync::Mutex::new("127.0.0.1".into()),
        };
        // PostgreSQL refuses to run as root: the cluster belongs to nobody.
        give_to_owner(&server.dir);
        give_to_owner(&server.socket_dir());
        server
    }

    fn make(durable: bool) -> Postgres {
        let server = Postgres::place(durable);
        let out = server.as_owner(
            Command::new(server.bin.join("initdb"))
                .arg("-D")
                .arg(server.data())
                .args(["-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"])
                .arg("--no-instructions"),
            "initdb",
        );
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        server.start_again();
        server
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// The Unix socket's directory (for `host=` in a connection string).
    pub fn socket_dir(&self) -> PathBuf {
        self.dir.join("socket")
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    fn as_owner(&self, command: &mut Command, what: &str) -> Output {
        if !is_root() {
            return run_bounded(command.current_dir(&self.dir).stdin(Stdio::null()), what);
        }
        let mut wrapped = Command::new("setpriv");
        wrapped
            .args([
                "--reuid=nobody",
                "--regid=nogroup",
                "--clear-groups",
                "--reset-env",
                "--",
            ])
            .arg(command.get_program())
            .args(command.get_args())
            .current_dir(&self.dir)
            .stdin(Stdio::null());
        run_bounded(&mut wrapped, what)
    }

    /// A streaming standby of this server, as a site sets one up: its own cluster copied with
    /// `pg_basebackup`, on its own port, replaying what this server writes. With `synchronous`,
    /// this server then waits at every commit until the standby has the commit on its disk
    /// (`synchronous_standby_names`, with `synchronous_commit = on`), and this returns once
    /// the standby is its synchronous one.
    pub fn standby(&self, synchronous: bool) -> Postgres {
        let standby = Postgres::place(self.durable);
        let out = standby.as_owner(
            Command::new(standby.bin.join("pg_basebackup"))
                .arg("-h")
                .arg(self.socket_dir())
                .args(["-p", &self.port.to_string(), "-U", "postgres", "-D"])
                .arg(standby.data())
                .args(["-R", "-X", "stream", "-c", "fast", "--no-sync"]),
            "pg_basebackup",
        );
        assert!(
            out.status.success(),
            "pg_basebackup: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // -R wrote how to reach this server; the standby also gives its name, which
        // synchronous_standby_names refers to.
        let auto = standby.data().join("postgresql.auto.conf");
        let mut text = std::fs::read_to_string(&auto).unwrap();
        text.push_str(&format!(
            "primary_conninfo = 'host={} port={} user=postgres application_name=standby'\n",
            self.socket_dir().display(),
            self.port
        ));
        std::fs::write(&auto, text).unwrap();
        standby.start_again();
        crate::wait_until("the standby to stream", || {
            self.sql(
                "postgres",
                "SELECT count(*) FROM pg_stat_replication WHERE application_name = 'standby' \
                 AND state = 'streaming'",
            ) == "1"
        });
        if synchronous {
            self.sql(
                "postgres",
                "ALTER SYSTEM SET synchronous_standby_names = 'standby'",
            );
            self.sql("postgres", "SELECT pg_reload_conf()");
            crate::wait_until("the standby to be synchronous", || {
                self.sql(
                    "postgres",
                    "SELECT sync_state FROM pg_stat_replication WHERE application_name = 'standby'",
                ) == "sync"
            });
        }
        standby
    }

    /// Makes a standby the primary (`pg_ctl promote`), and waits until it accepts writes.
    pub fn promote(&self) {
        let out = self.as_owner(
            Command::new(self.bin.join("pg_ctl"))
                .arg("-D")
                .arg(self.data())
                .args(["-w", "-t", "60", "promote"]),
            "pg_ctl promote",
        );
        assert!(
            out.status.success(),
            "pg_ctl promote: {}{}",
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
    }

    /// Whether the server is a standby (in recovery).
    pub fn is_standby(&self) -> bool {
        self.sql("postgres", "SELECT pg_is_in_recovery()") == "t"
    }

    /// Starts the server (again, after [`Postgres::stop`]), with the same data and port.
    pub fn start_again(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses={} -c fsync={} -c max_connections=200",
            self.port,
            self.socket_dir().display(),
            self.listen.lock().unwrap(),
            if self.durable { "on" } else { "off" }
        );
        let out = self.as_owner(
            Command::new(self.bin.join("pg_ctl"))
                .arg("-D")
                .arg(self.data())
                .arg("-l")
                .arg(self.dir.join("server.log"))
                .args(["-o", &options, "-w", "-t", "60", "start"]),
            "pg_ctl start",
        );
        assert!(
            out.status.success(),
            "pg_ctl start: {}{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
    }

    /// Stops the server at once (connections are cut; the data stays).
    pub fn stop(&self) {
        let out = self.stop_now();
        assert!(
            out.status.success(),
            "pg_ctl stop: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn stop_now(&self) -> Output {
        self.as_owner(
            Command::new(self.bin.join("pg_ctl"))
                .arg("-D")
                .arg(self.data())
                .args(["-m", "immediate", "-w", "stop"]),
            "pg_ctl stop",
        )
    }

    /// Serves TLS with `cert` and `key` (PEM; copied into the cluster) and refuses TCP
    /// connections without it; restarts the server.
    pub fn require_tls(&self, cert: &Path, key: &Path) {
        for (from, name) in [(cert, "server.crt"), (key, "server.key")] {
            let to = self.data().join(name);
            std::fs::copy(from, &to).unwrap();
            std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o600)).unwrap();
            give_to_owner(&to);
        }
        let conf = self.data().join("postgresql.conf");
        let mut text = std::fs::read_to_string(&conf).unwrap();
        text.push_str("ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n");
        std::fs::write(&conf, text).unwrap();
        let hba = self.data().join("pg_hba.conf");
        std::fs::write(
            &hba,
            "local all all trust\n\
             hostssl all all 127.0.0.1/32 trust\n\
             hostnossl all all 127.0.0.1/32 reject\n",
        )
        .unwrap();
        self.stop();
        self.start_again();
    }

    /// Also listens on `address` and serves clients from `network` (CIDR), over TLS only with
    /// `cert` and `key`, as it does on 127.0.0.1; restarts the server. For containers, which
    /// reach this host at their bridge's gateway.
    pub fn serve_network(&self, address: &str, network: &str, cert: &Path, key: &Path) {
        *self.listen.lock().unwrap() = format!("127.0.0.1,{address}");
        self.require_tls(cert, key);
        let hba = self.data().join("pg_hba.conf");
        let mut rules = std::fs::read_to_string(&hba).unwrap();
        rules = rules.replace(
            "hostnossl all all 127.0.0.1/32 reject\n",
            &format!(
                "hostssl all all {network} trust\nhostnossl all all 127.0.0.1/32 reject\n\
                 hostnossl all all {network} reject\n"
            ),
        );
        std::fs::write(&hba, rules).unwrap();
        self.stop();
        self.start_again();
    }

    /// Also listens on `address` and serves clients from `network` (CIDR) without TLS;
    /// restarts the server. For mfad in a network namespace of its own.
    pub fn serve_plain(&self, address: &str, network: &str) {
        *self.listen.lock().unwrap() = format!("127.0.0.1,{address}");
        let hba = self.data().join("pg_hba.conf");
        let mut rules = std::fs::read_to_string(&hba).unwrap();
        rules.push_str(&format!("host all all {network} trust\n"));
        std::fs::write(&hba, rules).unwrap();
        self.stop();
        self.start_again();
    }

    /// The server's log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    /// Runs SQL with psql as the superuser, in database `database`; panics on an error.
    pub fn sql(&self, database: &str, sql: &str) -> String {
        let out = run_bounded(
            Command::new(self.bin.join("psql"))
                .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
                .arg("-h")
                .arg(self.socket_dir())
                .args(["-p", &self.port.to_string()])
                .args(["-U", "postgres", "-d", database, "-c", sql])
                .stdin(Stdio::null()),
            "psql",
        );
        assert!(
            out.status.success(),
            "psql {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// `pg_dump` of `database`, in plain SQL, as a backup of it would hold it.
    pub fn dump(&self, database: &str) -> Vec<u8> {
        let out = run_bounded(
            Command::new(self.bin.join("pg_dump"))
                .arg("-h")
                .arg(self.socket_dir())
                .args(["-p", &self.port.to_string()])
                .args(["-U", "postgres", database])
                .stdin(Stdio::null()),
            "pg_dump",
        );
        assert!(
            out.status.success(),
            "pg_dump: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// Creates an empty database.
    pub fn create_database(&self, name: &str) {
        self.sql("postgres", &format!("CREATE DATABASE \"{name}\""));
    }

    /// A libpq connection string for `database` over TCP, as the superuser, without TLS.
    pub fn url(&self, database: &str) -> String {
        format!(
            "host=127.0.0.1 port={} user=postgres dbname={database}",
            self.port
        )
    }

    /// The same for a list of servers (a primary and its standbys), as a fleet names them:
    /// mfad uses the one that accepts writes.
    pub fn url_of_all(servers: &[&Postgres], database: &str) -> String {
        let hosts: Vec<&str> = servers.iter().map(|_| "127.0.0.1").collect();
        let ports: Vec<String> = servers
            .iter()
            .map(|server| server.port.to_string())
            .collect();
        format!(
            "host={} port={} user=postgres dbname={database}",
            hosts.join(","),
            ports.join(",")
        )
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Makes a test authority and a server certificate for `name` (a subjectAltName such as
/// IP:127.0.0.1) in `dir`, with openssl(1); returns (authority, certificate, key).
pub fn certificates(
    dir: &std::path::Path,
    name: &str,
) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let openssl = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("run openssl");
        assert!(out.status.success(), "openssl {args:?}: {out:?}");
    };
    let curve = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec![
        "req",
        "-x509",
        "-days",
        "2",
        "-subj",
        "/CN=pam-mfa test authority",
    ];
    ca.extend(curve);
    ca.extend(["-keyout", "ca.key", "-out", "ca.pem"]);
    openssl(&ca);
    let mut request = vec!["req", "-subj", "/CN=database"];
    request.extend(curve);
    request.extend(["-keyout", "server.key", "-out", "server.csr"]);
    openssl(&request);
    std::fs::write(dir.join("names"), format!("subjectAltName={name}\n")).unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "names",
        "-out",
        "server.pem",
    ]);
    (
        dir.join("ca.pem"),
        dir.join("server.pem"),
        dir.join("server.key"),
    )
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = self.stop_now();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
