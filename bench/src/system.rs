//! What the machine gives every module alike: a syslog socket, the disk's floor, and the CPU
//! time processes spend.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// `/dev/log` for the length of the run, when the machine has no syslog daemon. Every module
/// logs through syslog(3) (google-authenticator and pam_oath log each login, mfad its audit
/// lines); without a socket, glibc writes those lines to /dev/console, which costs about a
/// millisecond per line on a virtual machine, far more than a real syslog socket. A reader
/// that takes and drops each line stands in for the syslog daemon every real system runs.
pub struct SyslogSink {
    path: Option<PathBuf>,
}

pub const DEV_LOG: &str = "/dev/log";

impl SyslogSink {
    pub fn start() -> SyslogSink {
        let path = Path::new(DEV_LOG);
        if path.exists() {
            return SyslogSink { path: None };
        }
        let socket = UnixDatagram::bind(path).expect("bind /dev/log");
        std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o666))
            .expect("chmod /dev/log");
        std::thread::spawn(move || {
            let mut line = [0u8; 8192];
            while socket.recv(&mut line).is_ok() {}
        });
        SyslogSink {
            path: Some(path.to_owned()),
        }
    }

    /// What the run's table says about syslog.
    pub fn describe(&self) -> &'static str {
        if self.path.is_some() {
            "syslog: no syslog daemon on this machine; the benchmark served /dev/log with a \
             reader that drops every line (as a syslog daemon would take it)"
        } else {
            "syslog: the machine's own /dev/log"
        }
    }
}

impl Drop for SyslogSink {
    fn drop(&mut self) {
        if let Some(path) = &self.path {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// The disk's floor in the directory `dir` (mfad's state directory): the p50 of `count`
/// 64-byte overwrites each followed by fdatasync, in µs. What one durable commit costs at the
/// least on this file system.
pub fn fdatasync_floor(dir: &Path, count: usize) -> u64 {
    let path = dir.join("floor.probe");
    let file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(&path)
        .expect("create the probe file");
    (&file).write_all(&[0u8; 4096]).unwrap();
    file.sync_all().unwrap();
    let mut times: Vec<u64> = (0..count)
        .map(|index| {
            let start = Instant::now();
            file.write_all_at(&[index as u8; 64], 0).unwrap();
            file.sync_data().unwrap();
            start.elapsed().as_micros() as u64
        })
        .collect();
    drop(file);
    let _ = std::fs::remove_file(&path);
    median(&mut times)
}

/// What one durable SQLite commit costs at the least in `dir`: the p50 of `count` one-row
/// UPDATEs, each its own transaction, in write-ahead-log mode with `synchronous=FULL` (as mfad
/// commits), in µs.
pub fn sqlite_commit_floor(dir: &Path, count: usize) -> u64 {
    let path = dir.join("floor.sqlite3");
    let connection = rusqlite::Connection::open(&path).expect("open the probe database");
    connection
        .execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;
             CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v INTEGER);
             INSERT OR REPLACE INTO t VALUES (1, 0);",
        )
        .expect("set up the probe database");
    let mut times: Vec<u64> = (0..count)
        .map(|index| {
            let start = Instant::now();
            connection
                .execute("UPDATE t SET v = ?1 WHERE id = 1", [index as i64])
                .unwrap();
            start.elapsed().as_micros() as u64
        })
        .collect();
    drop(connection);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    median(&mut times)
}

/// A round trip between two processes over a Unix stream socket (one byte each way, each
/// side blocked in read until the other writes), p50 of `count`, in µs: what each of a
/// login's two calls to mfad costs at the least in waking the other side.
pub fn round_trip_floor(count: usize) -> u64 {
    use std::io::Read;
    let (mut ours, mut theirs) = UnixStream::pair().expect("socket pair");
    // SAFETY: the child only reads and writes its socket, then leaves with _exit; it never
    // returns into the parent's stack or runs its atexit handlers.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        drop(ours);
        let mut byte = [0u8];
        while theirs.read_exact(&mut byte).is_ok() && theirs.write_all(&byte).is_ok() {}
        // SAFETY: ends the child at once.
        unsafe { libc::_exit(0) };
    }
    drop(theirs);
    let mut byte = [0u8];
    let mut times: Vec<u64> = (0..count)
        .map(|_| {
            let start = Instant::now();
            ours.write_all(&byte).unwrap();
            ours.read_exact(&mut byte).unwrap();
            start.elapsed().as_micros() as u64
        })
        .collect();
    drop(ours);
    let mut status = 0;
    // SAFETY: waits for the child forked above.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    median(&mut times)
}

pub fn median(values: &mut [u64]) -> u64 {
    if values.is_empty() {
        return 0;
    }
    values.sort_unstable();
    values[values.len() / 2]
}

/// CPU time (user + system) of this process so far, in µs.
pub fn own_cpu_us() -> u64 {
    // SAFETY: a zeroed rusage is a valid value, which getrusage fills in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: RUSAGE_SELF with a valid out-pointer.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let us = |time: libc::timeval| time.tv_sec as u64 * 1_000_000 + time.tv_usec as u64;
    us(usage.ru_utime) + us(usage.ru_stime)
}

/// CPU time (user + system, every thread) of process `pid` so far, in µs; clock ticks of
/// /proc/PID/stat, so 10 ms steps: measure over many logins.
pub fn process_cpu_us(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after_name.split(' ').collect();
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf with a constant name.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Some(ticks * 1_000_000 / hz)
}

/// The machine's load average over the last minute, as /proc/loadavg gives it.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "unknown".into())
}

/// What the design of a login through a daemon costs at the least, with nothing of pam_mfa's
/// own work in it: a client that connects to a Unix socket, sends a call of the size of
/// pam_mfa's first call, waits for the answer, sends the second, and waits again; a server
/// process that answers the first at once and the second after a 64-byte overwrite +
/// `fdatasync` in `dir` (the disk's floor for the accepted code). Both sides' CPU is counted.
pub struct DaemonFloor {
    /// p50 of the client's connect-to-close, µs.
    pub p50: u64,
    /// CPU per login of the client and the server together, µs.
    pub cpu: u64,
}

pub fn daemon_floor(dir: &Path, count: usize) -> DaemonFloor {
    use std::io::Read;
    use std::os::unix::net::UnixListener;
    let socket = dir.join("floor.socket");
    let _ = std::fs::remove_file(&socket);
    let listener = UnixListener::bind(&socket).expect("bind the floor's socket");
    let file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(dir.join("floor.probe"))
        .expect("create the probe file");
    (&file).write_all(&[0u8; 4096]).unwrap();
    file.sync_all().unwrap();
    // Sizes of pam_mfa's calls and replies on the wire at a right-code login.
    const CALLS: [usize; 2] = [182, 155];
    const REPLIES: [usize; 2] = [165, 65];
    // SAFETY: the child only accepts, reads, writes and syncs, then leaves with _exit; it
    // never returns into the parent's stack or runs its atexit handlers.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let mut buffer = [0u8; 4096];
        while let Ok((mut stream, _)) = listener.accept() {
            for (index, reply) in REPLIES.iter().enumerate() {
                if stream.read(&mut buffer).unwrap_or(0) == 0 {
                    break;
                }
                if index == 1 {
                    let _ = file.write_all_at(&[buffer[0]; 64], 0);
                    let _ = file.sync_data();
                }
                let _ = stream.write_all(&buffer[..*reply]);
            }
            let _ = stream.read(&mut buffer);
        }
        // SAFETY: ends the child at once.
        unsafe { libc::_exit(0) };
    }
    drop(listener);
    let thread_cpu = || {
        // SAFETY: a zeroed rusage is a valid value, which getrusage fills in.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: RUSAGE_THREAD with a valid out-pointer.
        unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) };
        let us = |time: libc::timeval| time.tv_sec as u64 * 1_000_000 + time.tv_usec as u64;
        us(usage.ru_utime) + us(usage.ru_stime)
    };
    let (ours, theirs) = (thread_cpu(), process_cpu_us(pid as u32).unwrap_or(0));
    let mut buffer = [7u8; 4096];
    let mut times: Vec<u64> = (0..count)
        .map(|_| {
            let start = Instant::now();
            let mut stream = UnixStream::connect(&socket).expect("connect to the floor's socket");
            for (call, reply) in CALLS.iter().zip(REPLIES) {
                stream.write_all(&buffer[..*call]).unwrap();
                stream.read_exact(&mut buffer[..reply]).unwrap();
            }
            drop(stream);
            start.elapsed().as_micros() as u64
        })
        .collect();
    let ours = thread_cpu() - ours;
    let theirs = process_cpu_us(pid as u32).unwrap_or(0) - theirs;
    // SAFETY: ends and reaps the child forked above.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
        libc::waitpid(pid, std::ptr::null_mut(), 0);
    }
    let _ = std::fs::remove_file(&socket);
    let _ = std::fs::remove_file(dir.join("floor.probe"));
    DaemonFloor {
        p50: median(&mut times),
        cpu: (ours + theirs) / count.max(1) as u64,
    }
}
