//! The load driver: logins through the real libpam, in this process (threads), in worker
//! processes, or each in a freshly forked child, timed one by one.

use std::collections::BTreeMap;
use std::ffi::{CString, c_int};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use pam_mfa_tests::pam::{self, Style};
use serde::{Deserialize, Serialize};

/// TOTP period every module under test uses.
pub const PERIOD: u64 = 30;

/// What to run: one service, its users, how many logins and how.
#[derive(Debug, Clone, clap::Args)]
pub struct Spec {
    /// Directory holding the PAM service file.
    #[arg(long)]
    pub confdir: PathBuf,
    /// PAM service (file name in --confdir).
    #[arg(long)]
    pub service: String,
    /// Enrolled users to pick from: u0000000, u0000001, ...
    #[arg(long, default_value_t = 1000)]
    pub users: u64,
    /// Logins in all.
    #[arg(long, default_value_t = 1000)]
    pub iterations: u64,
    /// Logins at once, as threads of this process.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Logins at once, as worker processes (overrides --threads).
    #[arg(long, default_value_t = 0)]
    pub processes: usize,
    /// Each login in a freshly forked child, as sshd does.
    #[arg(long)]
    pub fork: bool,
    /// Answer with a wrong code.
    #[arg(long)]
    pub wrong: bool,
    /// Log every iteration in as this one user (for the concurrent-replay check).
    #[arg(long)]
    pub same_user: Option<u64>,
    /// Only pam_start and pam_end: the cost of loading the stack.
    #[arg(long)]
    pub load_only: bool,
    /// Seed of the per-user secrets; every module must be set up with the same one.
    #[arg(long, default_value_t = DEFAULT_SEED)]
    pub seed: u64,
    /// Offset into the sequence of distinct users, so runs can avoid each other's users.
    #[arg(long, default_value_t = 0)]
    pub first: u64,
    #[arg(skip)]
    pub share: Option<(u64, u64)>,
}

pub const DEFAULT_SEED: u64 = 0x6d66_6164_2d62_656e;

impl Spec {
    /// `iterations` sequential right-code logins among `users` users of `service`.
    pub fn new(confdir: PathBuf, service: &str, users: u64, iterations: u64, seed: u64) -> Spec {
        Spec {
            confdir,
            service: service.to_owned(),
            users,
            iterations,
            threads: 1,
            processes: 0,
            fork: false,
            wrong: false,
            same_user: None,
            load_only: false,
            seed,
            first: 0,
            share: None,
        }
    }
}

/// The name of user `index`.
pub fn user_name(index: u64) -> String {
    format!("u{index:07}")
}

/// The 160-bit secret of user `index`: splitmix64 from `seed` and the index.
pub fn secret(seed: u64, index: u64) -> Vec<u8> {
    let mut state = seed ^ index.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let mut bytes = Vec::with_capacity(24);
    for _ in 0..3 {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        bytes.extend_from_slice(&(z ^ (z >> 31)).to_be_bytes());
    }
    bytes.truncate(20);
    bytes
}

pub fn secret_base32(seed: u64, index: u64) -> String {
    totp_rs::Secret::from(secret(seed, index)).to_base32()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The 6-digit SHA1 code of `secret` for `time`.
fn code(secret: &[u8], time: u64) -> String {
    totp_rs::Builder::new()
        .with_secret(secret.to_vec())
        .with_digits(6)
        .with_step_duration(PERIOD)
        .build_noncompliant()
        .generate(time)
        .to_string()
}

/// The user of iteration `iteration`: distinct for every iteration below `users` (a fixed
/// permutation of the users, so that no code is replayed within a run).
fn user_of(spec: &Spec, iteration: u64) -> u64 {
    if let Some(user) = spec.same_user {
        return user;
    }
    // An odd multiplier coprime with the user count walks every user once.
    let mut multiplier = 2_654_435_761u64 % spec.users.max(1);
    while gcd(multiplier, spec.users) != 1 {
        multiplier += 1;
    }
    ((spec.first + iteration) % spec.users * multiplier + 7) % spec.users
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Timed results of a run.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Report {
    pub results: BTreeMap<String, u64>,
    pub latencies_us: Vec<u64>,
    pub wall_us: u64,
    /// CPU time of the driving processes (libpam and the module in them), in µs.
    #[serde(default)]
    pub cpu_us: u64,
}

impl Report {
    pub fn merge(&mut self, other: Report) {
        for (result, count) in other.results {
            *self.results.entry(result).or_default() += count;
        }
        self.latencies_us.extend(other.latencies_us);
        self.cpu_us += other.cpu_us;
    }

    pub fn count(&self, result: &str) -> u64 {
        self.results.get(result).copied().unwrap_or(0)
    }

    /// The latency at `percent` (0 to 100), in µs.
    pub fn percentile(&self, percent: u64) -> u64 {
        let mut sorted = self.latencies_us.clone();
        sorted.sort_unstable();
        if sorted.is_empty() {
            return 0;
        }
        let index = ((sorted.len() as u64 - 1) * percent).div_ceil(100) as usize;
        sorted[index.min(sorted.len() - 1)]
    }

    /// Logins that returned `PAM_SUCCESS`, per second of wall time.
    pub fn successes_per_second(&self) -> f64 {
        if self.wall_us == 0 {
            return 0.0;
        }
        self.count("PAM_SUCCESS") as f64 / (self.wall_us as f64 / 1e6)
    }
}

struct Strings {
    confdir: CString,
    service: CString,
}

fn one_login(spec: &Spec, strings: &Strings, iteration: u64) -> (c_int, Duration) {
    let index = user_of(spec, iteration);
    let user = CString::new(user_name(index)).unwrap();
    let secret = secret(spec.seed, index);
    let wrong = spec.wrong;
    let mut respond = |style: Style, _: &str| {
        style.is_prompt().then(|| {
            let time = if wrong { now() + 10 * PERIOD } else { now() };
            code(&secret, time).into_bytes()
        })
    };
    let start = Instant::now();
    let result = pam::login(
        &strings.confdir,
        &strings.service,
        &user,
        &mut respond,
        !spec.load_only,
    );
    (result, start.elapsed())
}

/// The iterations of this process: all, or every n-th for a worker.
fn my_iterations(spec: &Spec) -> impl Iterator<Item = u64> + '_ {
    let (index, count) = spec.share.unwrap_or((0, 1));
    (0..spec.iterations).filter(move |i| i % count == index)
}

fn record(report: &mut Report, result: c_int, elapsed: Duration) {
    *report.results.entry(pam::result_name(result)).or_default() += 1;
    report.latencies_us.push(elapsed.as_micros() as u64);
}

/// Runs `spec` and returns what it measured.
pub fn run(spec: &Spec) -> Report {
    // Forked logins start from a worker that has loaded no module yet, so that each child
    // pays the per-process costs (loading the module, first-call set-up) as under sshd.
    if (spec.processes > 0 || spec.fork) && spec.share.is_none() {
        let mut spec = spec.clone();
        spec.processes = spec.processes.max(1);
        return run_processes(&spec);
    }
    let strings = Strings {
        confdir: CString::new(spec.confdir.as_os_str().as_encoded_bytes()).unwrap(),
        service: CString::new(spec.service.as_str()).unwrap(),
    };
    let start = Instant::now();
    let cpu = crate::system::own_cpu_us() + children_cpu_us();
    let mut report = if spec.fork {
        run_forked(spec, &strings)
    } else if spec.threads > 1 {
        run_threads(spec, &strings)
    } else {
        let mut report = Report::default();
        for iteration in my_iterations(spec) {
            let (result, elapsed) = one_login(spec, &strings, iteration);
            record(&mut report, result, elapsed);
        }
        report
    };
    report.wall_us = start.elapsed().as_micros() as u64;
    report.cpu_us = crate::system::own_cpu_us() + children_cpu_us() - cpu;
    report
}

/// CPU time of this process's children that ended and were waited for, in µs.
fn children_cpu_us() -> u64 {
    // SAFETY: a zeroed rusage is a valid value, which getrusage fills in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: RUSAGE_CHILDREN with a valid out-pointer.
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    let us = |time: libc::timeval| time.tv_sec as u64 * 1_000_000 + time.tv_usec as u64;
    us(usage.ru_utime) + us(usage.ru_stime)
}

fn run_threads(spec: &Spec, strings: &Strings) -> Report {
    let iterations: Vec<u64> = my_iterations(spec).collect();
    let mut report = Report::default();
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..spec.threads)
            .map(|thread| {
                let mine: Vec<u64> = iterations
                    .iter()
                    .copied()
                    .skip(thread)
                    .step_by(spec.threads)
                    .collect();
                scope.spawn(move || {
                    let mut report = Report::default();
                    for iteration in mine {
                        let (result, elapsed) = one_login(spec, strings, iteration);
                        record(&mut report, result, elapsed);
                    }
                    report
                })
            })
            .collect();
        for worker in workers {
            report.merge(worker.join().unwrap());
        }
    });
    report
}

/// Each login in a child forked for it; the time is from fork to the child's exit.
fn run_forked(spec: &Spec, strings: &Strings) -> Report {
    let mut report = Report::default();
    for iteration in my_iterations(spec) {
        let start = Instant::now();
        // SAFETY: this process is single-threaded here (fork mode runs no threads), so the child
        // may use any function; it leaves with _exit and never returns into our stack.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            let (result, _) = one_login(spec, strings, iteration);
            // SAFETY: ends the child at once, without running the parent's atexit handlers.
            unsafe { libc::_exit(result) };
        }
        assert!(pid > 0, "fork failed");
        let mut status = 0;
        // SAFETY: waits for the child just forked.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        let result = if libc::WIFEXITED(status) {
            libc::WEXITSTATUS(status)
        } else {
            -1
        };
        record(&mut report, result, start.elapsed());
    }
    report
}

/// Runs the iterations in `spec.processes` copies of this program, released together.
fn run_processes(spec: &Spec) -> Report {
    let exe = std::env::current_exe().unwrap();
    let mut children: Vec<_> = (0..spec.processes)
        .map(|index| {
            let mut command = Command::new(&exe);
            command
                .arg("worker")
                .arg(format!("{index}/{}", spec.processes))
                .args(spec_args(spec))
                .stdin(Stdio::piped())
                .stdout(Stdio::piped());
            command.spawn().expect("start a worker process")
        })
        .collect();
    // Each worker says it is ready once its stack is loaded, then waits for a byte to go.
    let mut outputs: Vec<_> = children
        .iter_mut()
        .map(|child| BufReader::new(child.stdout.take().unwrap()))
        .collect();
    for output in &mut outputs {
        let mut line = String::new();
        output.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ready", "worker did not start");
    }
    let start = Instant::now();
    for child in &mut children {
        child.stdin.take().unwrap().write_all(b"g").unwrap();
    }
    let mut report = Report::default();
    for (child, mut output) in children.iter_mut().zip(outputs) {
        let mut json = String::new();
        output.read_to_string(&mut json).unwrap();
        child.wait().unwrap();
        report.merge(serde_json::from_str(&json).expect("worker report"));
    }
    report.wall_us = start.elapsed().as_micros() as u64;
    report
}

fn spec_args(spec: &Spec) -> Vec<String> {
    let mut args = vec![
        "--confdir".into(),
        spec.confdir.display().to_string(),
        "--service".into(),
        spec.service.clone(),
        "--users".into(),
        spec.users.to_string(),
        "--iterations".into(),
        spec.iterations.to_string(),
        "--seed".into(),
        spec.seed.to_string(),
        "--first".into(),
        spec.first.to_string(),
    ];
    if spec.fork {
        args.push("--fork".into());
    }
    if spec.wrong {
        args.push("--wrong".into());
    }
    if spec.load_only {
        args.push("--load-only".into());
    }
    if let Some(user) = spec.same_user {
        args.extend(["--same-user".into(), user.to_string()]);
    }
    args
}

/// A worker process: waits for the go, runs its share, prints its report as JSON.
pub fn worker(spec: &mut Spec, share: (u64, u64)) {
    spec.share = Some(share);
    spec.processes = 0;
    println!("ready");
    let mut go = [0u8];
    std::io::stdin().read_exact(&mut go).unwrap();
    let report = run(spec);
    println!("{}", serde_json::to_string(&report).unwrap());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(users: u64) -> Spec {
        Spec::new(PathBuf::new(), "", users, users, DEFAULT_SEED)
    }

    #[test]
    fn each_user_once_per_round() {
        for users in [1, 2, 10, 1000, 4096] {
            let spec = spec(users);
            let mut seen: Vec<u64> = (0..users).map(|i| user_of(&spec, i)).collect();
            seen.sort_unstable();
            seen.dedup();
            assert_eq!(seen.len() as u64, users);
        }
    }

    #[test]
    fn secrets_are_fixed_and_distinct() {
        assert_eq!(secret(1, 5), secret(1, 5));
        assert_ne!(secret(1, 5), secret(1, 6));
        assert_eq!(secret(1, 5).len(), 20);
        assert_eq!(secret_base32(1, 5).len(), 32);
    }

    #[test]
    fn percentiles() {
        let report = Report {
            latencies_us: (1..=100).collect(),
            ..Report::default()
        };
        assert_eq!(report.percentile(50), 51);
        assert_eq!(report.percentile(99), 100);
        assert_eq!(report.percentile(100), 100);
    }
}
