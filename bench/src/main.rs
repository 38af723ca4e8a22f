//! `pam-mfa-bench`: login cost through the real libpam, for pam_mfa.so and its peers.
//!
//! `pam-mfa-bench all` sets up pam_permit, pam_mfa (with mfad on a private bus),
//! google-authenticator-libpam and pam_oath with the same users and secrets, runs every
//! scenario and prints the comparison as Markdown. `pam-mfa-bench run` drives one service.
//! Run it from `bench/run.sh`, which installs the peers and builds in release mode.

mod driver;
mod peers;

use std::fmt::Write as _;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::{Parser, Subcommand};

use crate::driver::{PERIOD, Report, Spec};
use crate::peers::{Module, Peers};

#[derive(Parser)]
#[command(about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Set up every module, run every scenario, print the comparison.
    All {
        /// Largest number of enrolled users (1k, 10k, 100k, 1M, up to this).
        #[arg(long, default_value_t = 1_000_000)]
        max_users: u64,
        /// Logins per scenario and module.
        #[arg(long, default_value_t = 2000)]
        iterations: u64,
        /// Largest users file given to pam_oath, which reads and rewrites all of it per login.
        #[arg(long, default_value_t = 100_000)]
        max_oath_users: u64,
    },
    /// Drive one PAM service and print what was measured.
    Run {
        #[command(flatten)]
        spec: Spec,
    },
    /// (internal) A worker process of `run --processes`.
    #[command(hide = true)]
    Worker {
        share: String,
        #[command(flatten)]
        spec: Spec,
    },
}

fn main() {
    match Cli::parse().command {
        Command::Run { spec } => {
            let report = driver::run(&spec);
            println!("{}", header());
            println!("{}", row("run", &spec.service, &report));
        }
        Command::Worker { share, mut spec } => {
            let (index, count) = share.split_once('/').expect("INDEX/COUNT");
            driver::worker(&mut spec, (index.parse().unwrap(), count.parse().unwrap()));
        }
        Command::All {
            max_users,
            iterations,
            max_oath_users,
        } => all(max_users, iterations, max_oath_users),
    }
}

fn header() -> String {
    "| scenario | module | results | p50 µs | p90 µs | p99 µs | max µs | successes/s |\n\
     |---|---|---|---:|---:|---:|---:|---:|"
        .to_owned()
}

fn row(scenario: &str, module: &str, report: &Report) -> String {
    let results: Vec<String> = report
        .results
        .iter()
        .map(|(result, count)| format!("{count} {}", result.trim_start_matches("PAM_")))
        .collect();
    format!(
        "| {scenario} | {module} | {} | {} | {} | {} | {} | {:.0} |",
        results.join(", "),
        report.percentile(50),
        report.percentile(90),
        report.percentile(99),
        report.percentile(100),
        report.successes_per_second()
    )
}

/// Waits for the next TOTP time step, so that no user logs in twice with the same step
/// across scenarios.
fn next_step() {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let into = now.as_secs_f64() % PERIOD as f64;
    std::thread::sleep(Duration::from_secs_f64(PERIOD as f64 - into + 0.05));
}

/// Waits until at least `seconds` remain in the current step.
fn room_in_step(seconds: u64) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    if now % PERIOD + seconds >= PERIOD {
        next_step();
    }
}

struct Table {
    rows: Vec<String>,
    notes: Vec<String>,
}

impl Table {
    fn add(&mut self, scenario: &str, module: Module, report: &Report) {
        let line = row(scenario, module.label(), report);
        eprintln!("{line}");
        self.rows.push(line);
    }

    fn note(&mut self, text: String) {
        eprintln!("{text}");
        self.notes.push(text);
    }
}

fn label(users: u64) -> String {
    match users {
        n if n >= 1_000_000 && n % 1_000_000 == 0 => format!("{}M", n / 1_000_000),
        n if n >= 1_000 && n % 1_000 == 0 => format!("{}k", n / 1_000),
        n => n.to_string(),
    }
}

fn all(max_users: u64, iterations: u64, max_oath_users: u64) {
    let seed = driver::DEFAULT_SEED;
    let mut peers = Peers::start(seed);
    let mut table = Table {
        rows: Vec::new(),
        notes: Vec::new(),
    };
    let spec = move |peers: &Peers, module: Module, users: u64, iterations: u64| {
        Spec::new(
            peers.confdir.clone(),
            module.service(),
            users,
            iterations,
            seed,
        )
    };
    let mut p50 = std::collections::HashMap::new();

    let sizes: Vec<u64> = [1_000, 10_000, 100_000, 1_000_000]
        .into_iter()
        .filter(|size| *size <= max_users)
        .collect();
    for &size in &sizes {
        let start = Instant::now();
        peers.grow(size);
        table.note(format!(
            "set-up: {} users for pam_mfa and google-authenticator in {:.1} s",
            label(size),
            start.elapsed().as_secs_f64()
        ));
        if size <= max_oath_users {
            peers.grow_oath(size);
        }
        // Flush the set-up's writes, so that no module's fsync waits behind their writeback.
        // SAFETY: sync(2) takes no arguments and cannot fail.
        unsafe { libc::sync() };
        let scenario = format!("right code, {} users", label(size));
        let mut modules = vec![Module::Mfa, Module::GoogleAuthenticator];
        if size <= max_oath_users {
            modules.push(Module::Oath);
        }
        if size == sizes[0] {
            modules.insert(0, Module::Permit);
        }
        next_step();
        for module in modules {
            // pam_oath reads and rewrites its whole file per login: fewer logins at large sizes.
            let count = match module {
                Module::Oath => iterations.min(2_000_000 / size).max(20),
                _ => iterations,
            }
            .min(size);
            let written = peers.env.daemon_pid().and_then(written_bytes);
            let cpu = (
                peers.env.daemon_pid().and_then(cpu_ticks),
                cpu_ticks(peers.env.bus_pid()),
            );
            let report = driver::run(&spec(&peers, module, size, count));
            p50.insert((module.label(), size), report.percentile(50));
            if module == Module::Mfa {
                // Let the checkpointer (every second) copy this run's log into the database.
                std::thread::sleep(Duration::from_millis(1500));
                let after = peers.env.daemon_pid().and_then(written_bytes);
                if let (Some(before), Some(after)) = (written, after) {
                    table.note(format!(
                        "mfad wrote {:.1} KiB to disk per login at {} users (log and checkpoints)",
                        (after - before) as f64 / 1024.0 / count as f64,
                        label(size)
                    ));
                }
                let now = (
                    peers.env.daemon_pid().and_then(cpu_ticks),
                    cpu_ticks(peers.env.bus_pid()),
                );
                if let ((Some(d0), Some(b0)), (Some(d1), Some(b1))) = (cpu, now) {
                    // Clock ticks are 10 ms; per login in µs.
                    let per_login = |ticks: u64| ticks as f64 * 10_000.0 / count as f64;
                    table.note(format!(
                        "CPU per login at {} users: mfad {:.0} µs, dbus-daemon {:.0} µs",
                        label(size),
                        per_login(d1 - d0),
                        per_login(b1 - b0)
                    ));
                }
            }
            table.add(&scenario, module, &report);
        }
        if size == sizes[0] {
            // pam_mfa ran first, on a quiet disk; run it again after the peers' file writes.
            next_step();
            let count = iterations.min(size);
            let report = driver::run(&spec(&peers, Module::Mfa, size, count));
            table.add(
                &format!("{scenario}, again after the peers"),
                Module::Mfa,
                &report,
            );
        }
        if size == 10_000 || size == sizes[sizes.len() - 1] && size < 10_000 {
            scenarios_at(&mut table, &peers, size, iterations, &spec);
        }
    }

    if let Some(&largest) = sizes.last() {
        if largest > sizes[0] {
            // The same table, but logins among only the first 1k users, whose rows share a few
            // pages: does the cost follow the table's size, or how many pages logins touch?
            next_step();
            let report = driver::run(&spec(
                &peers,
                Module::Mfa,
                sizes[0],
                iterations.min(sizes[0]),
            ));
            table.add(
                &format!(
                    "right code, {} enrolled, logins among the first {}",
                    label(largest),
                    label(sizes[0])
                ),
                Module::Mfa,
                &report,
            );
        }
        daemon_figures(&mut table, &mut peers, largest);
    }
    load_cost(&mut table, &peers, &spec);

    for &size in &sizes {
        let ours = p50.get(&("pam_mfa", size));
        let ga = p50.get(&("google-authenticator", size));
        if let (Some(ours), Some(ga)) = (ours, ga) {
            table.note(format!(
                "right code at {} users: pam_mfa p50 / google-authenticator p50 = {:.2}",
                label(size),
                *ours as f64 / (*ga).max(1) as f64
            ));
        }
    }

    let mut out = String::new();
    let _ = writeln!(out, "{}", machine());
    let _ = writeln!(out, "{}", header());
    for line in &table.rows {
        let _ = writeln!(out, "{line}");
    }
    let _ = writeln!(out);
    for note in &table.notes {
        let _ = writeln!(out, "- {note}");
    }
    print!("{out}");
}

type SpecFn = dyn Fn(&Peers, Module, u64, u64) -> Spec;

/// Wrong codes, parallel workers, fork per login and the concurrent-replay check.
fn scenarios_at(table: &mut Table, peers: &Peers, size: u64, iterations: u64, spec: &SpecFn) {
    let n = label(size);
    let count = iterations.min(size / 5).max(1);
    let modules = [Module::Mfa, Module::GoogleAuthenticator, Module::Oath];
    next_step();
    for module in modules {
        let mut wrong = spec(peers, module, size, count);
        wrong.wrong = true;
        table.add(
            &format!("wrong code, {n} users"),
            module,
            &driver::run(&wrong),
        );
    }
    // Disjoint users per scenario (`first`), so no code is used twice within a step.
    for (slot, workers) in [(1, 2usize), (2, 8)] {
        room_in_step(10);
        for module in Module::ALL {
            let mut parallel = spec(peers, module, size, count);
            parallel.processes = workers;
            parallel.first = slot * count;
            table.add(
                &format!("right code, {n} users, {workers} processes"),
                module,
                &driver::run(&parallel),
            );
        }
    }
    room_in_step(10);
    for module in Module::ALL {
        let mut forked = spec(peers, module, size, count.min(500));
        forked.fork = true;
        forked.first = 3 * count;
        table.add(
            &format!("right code, {n} users, fork per login"),
            module,
            &driver::run(&forked),
        );
    }
    next_step();
    for module in modules {
        let mut replay = spec(peers, module, size, 20);
        replay.processes = 20;
        replay.same_user = Some(size - 1);
        let report = driver::run(&replay);
        table.add("20 parallel logins, one code", module, &report);
        table.note(format!(
            "concurrent replay, {}: {} of 20 parallel logins with one code succeeded",
            module.label(),
            report.count("PAM_SUCCESS")
        ));
    }
}

/// mfad's start-up time and peak memory with `users` enrolled.
fn daemon_figures(table: &mut Table, peers: &mut Peers, users: u64) {
    let rss = peers.env.daemon_pid().and_then(peak_rss_kib);
    if let Some(kib) = rss {
        table.note(format!(
            "mfad peak RSS after the runs at {} users: {:.1} MiB",
            label(users),
            kib as f64 / 1024.0
        ));
    }
    peers.env.stop_daemon();
    let start = Instant::now();
    peers.env.start_daemon();
    table.note(format!(
        "mfad start-up with {} users enrolled (start to owning its bus name): {} ms",
        label(users),
        start.elapsed().as_millis()
    ));
}

/// User and system CPU time of a process, in clock ticks (fields 14 and 15 of /proc/PID/stat).
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after_name.split(' ').collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

/// Bytes the process has caused to be written to storage (`write_bytes` of /proc/PID/io).
fn written_bytes(pid: u32) -> Option<u64> {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).ok()?;
    io.lines()
        .find_map(|line| line.strip_prefix("write_bytes:"))
        .and_then(|value| value.trim().parse().ok())
}

fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
}

/// What loading pam_mfa.so adds to pam_start + pam_end, in fresh processes.
fn load_cost(table: &mut Table, peers: &Peers, spec: &SpecFn) {
    let mut p50 = Vec::new();
    for module in [Module::Permit, Module::Mfa] {
        let mut load = spec(peers, module, 1, 1000);
        load.load_only = true;
        load.fork = true;
        let report = driver::run(&load);
        p50.push(report.percentile(50));
        table.add("pam_start + pam_end, fork per call", module, &report);
    }
    table.note(format!(
        "loading pam_mfa.so adds {} µs (p50) to pam_start + pam_end over pam_permit, from a \
         Rust driver (libgcc_s already loaded)",
        p50[1] as i64 - p50[0] as i64
    ));
    let probe = pam_mfa_tests::target_dir().join("pam-load-probe");
    if probe.exists() {
        // Alternate the two services in rounds, so drift in the machine hits both alike.
        let mut rounds: [Vec<u64>; 2] = [Vec::new(), Vec::new()];
        for _ in 0..5 {
            for (slot, module) in [Module::Permit, Module::Mfa].into_iter().enumerate() {
                let output = std::process::Command::new(&probe)
                    .arg(&peers.confdir)
                    .arg(module.service())
                    .arg("200")
                    .output()
                    .expect("run pam-load-probe");
                assert!(
                    output.status.success(),
                    "{}",
                    String::from_utf8_lossy(&output.stderr)
                );
                let text = String::from_utf8_lossy(&output.stdout).into_owned();
                rounds[slot].push(text.split_whitespace().next().unwrap().parse().unwrap());
            }
        }
        let median = |values: &mut Vec<u64>| {
            values.sort_unstable();
            values[values.len() / 2]
        };
        let (permit, ours) = (median(&mut rounds[0]), median(&mut rounds[1]));
        table.note(format!(
            "pam_start + pam_end in a forked child of a C program (bench/load-probe.c, 5 \
             rounds of 200, median of the rounds' p50): pam_permit {permit} µs, pam_mfa {ours} \
             µs: loading pam_mfa.so adds {} µs",
            ours as i64 - permit as i64
        ));
    } else {
        table.note("pam-load-probe not built (bench/run.sh builds it): no C-driver figure".into());
    }
    let size = std::fs::metadata(pam_mfa_tests::target_dir().join("libpam_mfa.so"))
        .map(|m| m.len())
        .unwrap_or(0);
    table.note(format!("pam_mfa.so file size: {:.2} MB", size as f64 / 1e6));
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|line| line.strip_prefix("model name"))
                .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("Machine: {cpu}, {cores} cores, Linux {}\n", kernel.trim())
}
