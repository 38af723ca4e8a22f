//! `pam-mfa-bench`: login cost through the real libpam, for pam_mfa.so and its peers.
//!
//! `pam-mfa-bench all` sets up pam_permit, pam_mfa (with mfad on a private bus),
//! google-authenticator-libpam and pam_oath with the same users and secrets, runs every
//! scenario and prints the comparison as Markdown. `pam-mfa-bench run` drives one service.
//! Run it from `bench/run.sh`, which installs the peers and builds in release mode.

mod driver;
mod fleet;
mod peers;
mod system;

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
    /// Fleet mode: three mfad sharing one PostgreSQL server, beside one mfad on SQLite.
    Fleet {
        /// Enrolled users, in both stores.
        #[arg(long, default_value_t = 1_000_000)]
        users: u64,
        /// Logins per case and round.
        #[arg(long, default_value_t = 3000)]
        iterations: u64,
    },
    /// Set up every module with USERS users and keep them (and mfad) until stdin closes, for
    /// profiling one of them: prints the PAM service directory and mfad's pid.
    Serve {
        /// Enrolled users.
        #[arg(long, default_value_t = 10_000)]
        users: u64,
    },
    /// (for profiling) The floor of a login through a daemon: see `system::daemon_floor`.
    #[command(hide = true)]
    Floor {
        #[arg(long, default_value = "/var/tmp")]
        dir: std::path::PathBuf,
        #[arg(long, default_value_t = 2000)]
        count: usize,
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
        Command::Fleet { users, iterations } => fleet::fleet(users, iterations),
        Command::Serve { users } => serve(users),
        Command::Floor { dir, count } => {
            let floor = system::daemon_floor(&dir, count);
            println!("p50 {} µs, CPU {} µs per login", floor.p50, floor.cpu);
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

/// Rounds of every measured case; figures are the median of the rounds' figures, with the
/// smallest and largest beside it.
const ROUNDS: usize = 3;

/// One round of one case: what the driver saw, and the CPU time of mfad and dbus-daemon
/// meanwhile.
struct Measured {
    report: Report,
    logins: u64,
    daemon_cpu_us: u64,
    bus_cpu_us: u64,
}

impl Measured {
    fn cpu_per_login(&self) -> (f64, f64, f64) {
        let per = |us: u64| us as f64 / self.logins.max(1) as f64;
        (
            per(self.report.cpu_us),
            per(self.daemon_cpu_us),
            per(self.bus_cpu_us),
        )
    }
}

/// One case's rounds, summed up.
struct Case {
    scenario: String,
    module: Module,
    rounds: Vec<Measured>,
}

/// Median, smallest and largest of `values`.
fn spread(values: impl Iterator<Item = f64>) -> (f64, f64, f64) {
    let mut values: Vec<f64> = values.collect();
    values.sort_by(f64::total_cmp);
    if values.is_empty() {
        return (0.0, 0.0, 0.0);
    }
    (
        values[values.len() / 2],
        values[0],
        values[values.len() - 1],
    )
}

impl Case {
    fn p(&self, percent: u64) -> (f64, f64, f64) {
        spread(
            self.rounds
                .iter()
                .map(|round| round.report.percentile(percent) as f64),
        )
    }

    fn rate(&self) -> (f64, f64, f64) {
        spread(
            self.rounds
                .iter()
                .map(|round| round.report.successes_per_second()),
        )
    }

    /// CPU per login, median of the rounds: all processes, then driver, mfad, dbus-daemon.
    fn cpu(&self) -> (f64, f64, f64, f64) {
        let all = spread(self.rounds.iter().map(|round| {
            let (driver, daemon, bus) = round.cpu_per_login();
            driver + daemon + bus
        }));
        let part = |pick: fn((f64, f64, f64)) -> f64| {
            spread(self.rounds.iter().map(|round| pick(round.cpu_per_login()))).0
        };
        (
            all.0,
            part(|(driver, _, _)| driver),
            part(|(_, daemon, _)| daemon),
            part(|(_, _, bus)| bus),
        )
    }

    fn count(&self, result: &str) -> u64 {
        self.rounds
            .iter()
            .map(|round| round.report.count(result))
            .sum()
    }

    fn logins(&self) -> u64 {
        self.rounds.iter().map(|round| round.logins).sum()
    }

    fn row(&self) -> String {
        let mut results = std::collections::BTreeMap::<String, u64>::new();
        for round in &self.rounds {
            for (result, count) in &round.report.results {
                *results
                    .entry(result.trim_start_matches("PAM_").to_owned())
                    .or_default() += count;
            }
        }
        let results: Vec<String> = results
            .iter()
            .map(|(result, count)| format!("{count} {result}"))
            .collect();
        let (p50, low, high) = self.p(50);
        let (cpu, driver, daemon, bus) = self.cpu();
        let cpu = if self.module == Module::Mfa {
            format!("{cpu:.0} ({driver:.0} + {daemon:.0} + {bus:.0})")
        } else {
            format!("{cpu:.0}")
        };
        format!(
            "| {} | {} | {} | {p50:.0} ({low:.0}–{high:.0}) | {:.0} | {:.0} | {:.0} | {cpu} |",
            self.scenario,
            self.module.label(),
            results.join(", "),
            self.p(90).0,
            self.p(99).0,
            self.rate().0,
        )
    }
}

fn rounds_header() -> String {
    "| scenario | module | results, all rounds | p50 µs: median (min–max) of rounds | p90 µs | \
     p99 µs | successes/s | CPU µs per login: all (driver + mfad + dbus-daemon) |\n\
     |---|---|---|---:|---:|---:|---:|---:|"
        .to_owned()
}

struct Run {
    peers: Peers,
    seed: u64,
    cases: Vec<Case>,
    notes: Vec<String>,
    /// The floor of a login through a daemon (median of rounds): p50 and CPU, µs.
    floor: Option<(u64, u64)>,
}

impl Run {
    fn note(&mut self, text: String) {
        eprintln!("{text}");
        self.notes.push(text);
    }

    fn spec(&self, module: Module, users: u64, iterations: u64) -> Spec {
        Spec::new(
            self.peers.confdir.clone(),
            module.service(),
            users,
            iterations,
            self.seed,
        )
    }

    /// Runs `spec` once, with the CPU time of mfad and the bus around it.
    fn measure(&self, spec: &Spec) -> Measured {
        let daemon = self.peers.env.daemon_pid();
        let bus = self.peers.env.bus_pid();
        let before = (
            daemon.and_then(system::process_cpu_us),
            system::process_cpu_us(bus),
        );
        let report = driver::run(spec);
        let after = (
            daemon.and_then(system::process_cpu_us),
            system::process_cpu_us(bus),
        );
        let delta = |(a, b): (Option<u64>, Option<u64>)| b.unwrap_or(0) - a.unwrap_or(0);
        Measured {
            logins: report.latencies_us.len() as u64,
            report,
            daemon_cpu_us: delta((before.0, after.0)),
            bus_cpu_us: delta((before.1, after.1)),
        }
    }

    /// Runs `make(module, round)` for every module, in rounds; each round takes the modules in
    /// another order, so that drift in the machine falls on all of them alike.
    fn rounds(
        &mut self,
        scenario: &str,
        modules: &[Module],
        make: impl Fn(&Run, Module, usize) -> Spec,
    ) -> Vec<usize> {
        let first = self.cases.len();
        for &module in modules {
            self.cases.push(Case {
                scenario: scenario.to_owned(),
                module,
                rounds: Vec::new(),
            });
        }
        for round in 0..ROUNDS {
            for shift in 0..modules.len() {
                let slot = (shift + round) % modules.len();
                let spec = make(self, modules[slot], round);
                let measured = self.measure(&spec);
                self.cases[first + slot].rounds.push(measured);
            }
        }
        let slots: Vec<usize> = (first..self.cases.len()).collect();
        for &slot in &slots {
            eprintln!("{}", self.cases[slot].row());
        }
        slots
    }

    fn case(&self, scenario: &str, module: Module) -> Option<&Case> {
        self.case_where(|name| name == scenario, module)
    }

    /// The case of `module` whose scenario `matches`.
    fn case_where(&self, matches: impl Fn(&str) -> bool, module: Module) -> Option<&Case> {
        self.cases
            .iter()
            .find(|case| matches(&case.scenario) && case.module == module)
    }
}

fn label(users: u64) -> String {
    match users {
        n if n >= 1_000_000 && n % 1_000_000 == 0 => format!("{}M", n / 1_000_000),
        n if n >= 1_000 && n % 1_000 == 0 => format!("{}k", n / 1_000),
        n => n.to_string(),
    }
}

fn right_code(size: u64) -> String {
    format!("right code, {} users", label(size))
}

fn all(max_users: u64, iterations: u64, max_oath_users: u64) {
    let sink = system::SyslogSink::start();
    let seed = driver::DEFAULT_SEED;
    let mut run = Run {
        peers: Peers::start(seed),
        seed,
        cases: Vec::new(),
        notes: Vec::new(),
        floor: None,
    };
    run.note(format!(
        "load average (1 min) at the start: {}",
        system::load_average()
    ));
    run.note(sink.describe().to_owned());
    let state = run.peers.env.dir().join("state");
    run.note(format!(
        "disk floor in mfad's state directory: a 64-byte overwrite + fdatasync takes {} µs \
         (p50 of 500); a one-row SQLite UPDATE (WAL, synchronous=FULL) {} µs (p50 of 500)",
        system::fdatasync_floor(&state, 500),
        system::sqlite_commit_floor(&state, 500)
    ));
    run.note(format!(
        "a round trip between two processes over a Unix socket: {} µs (p50 of 2000)",
        system::round_trip_floor(2000)
    ));
    let floors: Vec<system::DaemonFloor> = (0..ROUNDS)
        .map(|_| system::daemon_floor(&state, 2000))
        .collect();
    let floor = (
        system::median(&mut floors.iter().map(|floor| floor.p50).collect::<Vec<_>>()),
        system::median(&mut floors.iter().map(|floor| floor.cpu).collect::<Vec<_>>()),
    );
    run.floor = Some(floor);
    run.note(format!(
        "the floor of a login through a daemon, none of pam_mfa's work in it: a client \
         connects to a server process on a Unix socket and makes two calls of the sizes of \
         pam_mfa's, the second answered after a 64-byte overwrite + fdatasync in the state \
         directory: p50 {} µs, CPU {} µs per login, both processes (medians of {ROUNDS} rounds of \
         2000; per round: {})",
        floor.0,
        floor.1,
        floors
            .iter()
            .map(|floor| format!("{}/{}", floor.p50, floor.cpu))
            .collect::<Vec<_>>()
            .join(", ")
    ));

    let sizes: Vec<u64> = [1_000, 10_000, 100_000, 1_000_000]
        .into_iter()
        .filter(|size| *size <= max_users)
        .collect();
    for &size in &sizes {
        let start = Instant::now();
        run.peers.grow(size);
        run.note(format!(
            "set-up: {} users for pam_mfa and google-authenticator in {:.1} s",
            label(size),
            start.elapsed().as_secs_f64()
        ));
        if size <= max_oath_users {
            run.peers.grow_oath(size);
        }
        // Flush the set-up's writes, so that no module's fsync waits behind their writeback.
        // SAFETY: sync(2) takes no arguments and cannot fail.
        unsafe { libc::sync() };
        let mut modules = vec![
            Module::Permit,
            Module::Mfa,
            Module::GoogleAuthenticator,
            Module::GoogleAuthenticatorReusable,
        ];
        if size <= max_oath_users {
            modules.push(Module::Oath);
        }
        // Users are disjoint between rounds: no code is used twice within a step.
        let count = iterations.min(size / ROUNDS as u64).max(1);
        next_step();
        let written = run.peers.env.daemon_pid().and_then(written_bytes);
        run.rounds(&right_code(size), &modules, |run, module, round| {
            // pam_oath reads and rewrites its whole file per login: fewer logins at large sizes.
            let count = match module {
                Module::Oath => count.min(2_000_000 / size).max(20),
                _ => count,
            };
            let mut spec = run.spec(module, size, count);
            spec.first = round as u64 * count;
            spec
        });
        // Let the checkpointer (every second) copy the log into the database.
        std::thread::sleep(Duration::from_millis(1500));
        let after = run.peers.env.daemon_pid().and_then(written_bytes);
        if let (Some(before), Some(after)) = (written, after) {
            run.note(format!(
                "mfad wrote {:.1} KiB to disk per login at {} users (log and checkpoints)",
                (after - before) as f64 / 1024.0 / (count * ROUNDS as u64) as f64,
                label(size)
            ));
        }
        if size == 10_000 || size == sizes[sizes.len() - 1] && size < 10_000 {
            scenarios_at(&mut run, size, iterations, size <= max_oath_users);
        }
    }
    // Before the restarts below: a restarted mfad checks a large database in the background.
    load_cost(&mut run);
    if let Some(&largest) = sizes.last() {
        daemon_figures(&mut run, largest);
    }
    let targets = targets(&run, &sizes);

    let mut out = String::new();
    let _ = writeln!(out, "{}", machine());
    let _ = writeln!(out, "{}", rounds_header());
    for case in &run.cases {
        let _ = writeln!(out, "{}", case.row());
    }
    let _ = writeln!(out);
    for note in &run.notes {
        let _ = writeln!(out, "- {note}");
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "{targets}");
    print!("{out}");
}

/// Sets up every module with `users` users and serves them until stdin closes.
fn serve(users: u64) {
    let _sink = system::SyslogSink::start();
    let mut peers = Peers::start(driver::DEFAULT_SEED);
    peers.grow(users);
    // SAFETY: sync(2) takes no arguments and cannot fail.
    unsafe { libc::sync() };
    println!("confdir {}", peers.confdir.display());
    if let Some(pid) = peers.env.daemon_pid() {
        println!("mfad {pid}");
    }
    println!(
        "services: {}",
        [Module::Permit, Module::Mfa, Module::GoogleAuthenticator]
            .map(Module::service)
            .join(", ")
    );
    let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut Vec::new());
}

/// Wrong codes, 8 worker processes, a fork per login and the concurrent replay, at `size`.
fn scenarios_at(run: &mut Run, size: u64, iterations: u64, oath: bool) {
    let n = label(size);
    let count = iterations.min(size / (2 * ROUNDS as u64)).max(1);
    let mut modules = vec![
        Module::Mfa,
        Module::GoogleAuthenticator,
        Module::GoogleAuthenticatorReusable,
    ];
    if oath {
        modules.push(Module::Oath);
    }
    run.rounds(
        &format!("wrong code, {n} users"),
        &modules,
        |run, module, round| {
            let mut spec = run.spec(module, size, count);
            spec.wrong = true;
            spec.first = round as u64 * count;
            spec
        },
    );
    let mut all = vec![Module::Permit];
    all.extend(&modules);
    // Disjoint users per round and scenario, in a step of their own.
    next_step();
    run.rounds(
        &format!("right code, {n} users, 8 processes"),
        &all,
        |run, module, round| {
            let mut spec = run.spec(module, size, count);
            spec.processes = 8;
            spec.first = round as u64 * count;
            spec
        },
    );
    let forked = count.min(300);
    next_step();
    run.rounds(
        &format!("right code, {n} users, fork per login"),
        &all,
        |run, module, round| {
            let mut spec = run.spec(module, size, forked);
            spec.fork = true;
            spec.first = round as u64 * forked;
            spec
        },
    );
    next_step();
    let replayed: Vec<Module> = modules
        .iter()
        .copied()
        .filter(|module| *module != Module::GoogleAuthenticatorReusable)
        .collect();
    let slots = run.rounds(
        "20 parallel logins, one code",
        &replayed,
        |run, module, round| {
            let mut spec = run.spec(module, size, 20);
            spec.processes = 20;
            spec.same_user = Some(size - 1 - round as u64);
            spec
        },
    );
    // The losers' tries locked those users out: unlock them, as an administrator would, so
    // that later runs that meet them are not refused.
    for round in 0..ROUNDS {
        let user = driver::user_name(size - 1 - round as u64);
        let unlocked = run.peers.env.ctl(&["unlock", &user], "");
        assert!(
            unlocked.success,
            "mfactl unlock {user}: {}",
            unlocked.stderr
        );
    }
    for slot in slots {
        let case = &run.cases[slot];
        let wins: Vec<String> = case
            .rounds
            .iter()
            .map(|round| round.report.count("PAM_SUCCESS").to_string())
            .collect();
        let text = format!(
            "concurrent replay, {}: successes out of 20 parallel logins with one code, per \
             round: {}",
            case.module.label(),
            wins.join(", ")
        );
        run.note(text);
    }
}

/// mfad's peak memory after the runs, and its start-up time with `users` enrolled (three
/// restarts, median).
fn daemon_figures(run: &mut Run, users: u64) {
    let log = run.peers.env.dir().join("state/mfad.sqlite3-wal");
    if let Ok(meta) = std::fs::metadata(&log) {
        run.note(format!(
            "mfad's write-ahead log after the runs: {:.1} MiB",
            meta.len() as f64 / (1024.0 * 1024.0)
        ));
    }
    if let Some(kib) = run.peers.env.daemon_pid().and_then(peak_rss_kib) {
        run.note(format!(
            "mfad peak RSS after the runs at {} users: {:.1} MiB",
            label(users),
            kib as f64 / 1024.0
        ));
    }
    let mut times = Vec::new();
    for _ in 0..ROUNDS {
        run.peers.env.stop_daemon();
        let start = Instant::now();
        run.peers.env.start_daemon();
        times.push(start.elapsed().as_millis() as u64);
    }
    let median = system::median(&mut times.clone());
    run.note(format!(
        "mfad start-up with {} users enrolled (start to serving), median of {ROUNDS}: {median} ms \
         ({times:?})",
        label(users)
    ));
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

/// The targets, each from this run's figures.
fn targets(run: &Run, sizes: &[u64]) -> String {
    let mut out = String::from("| target | this run | met |\n|---|---|---|\n");
    let mut line = |target: &str, result: String, met: bool| {
        let _ = writeln!(
            out,
            "| {target} | {result} | {} |",
            if met { "yes" } else { "no" }
        );
    };
    let p50 = |scenario: &str, module| run.case(scenario, module).map(|case| case.p(50).0);
    let mut ratios = Vec::new();
    let mut ours = Vec::new();
    for &size in sizes {
        let scenario = right_code(size);
        if let (Some(mfa), Some(ga)) = (
            p50(&scenario, Module::Mfa),
            p50(&scenario, Module::GoogleAuthenticator),
        ) {
            ratios.push((size, mfa / ga.max(1.0)));
            ours.push(mfa);
        }
    }
    let text: Vec<String> = ratios
        .iter()
        .map(|(size, ratio)| format!("{ratio:.2}× ({})", label(*size)))
        .collect();
    let permit = |measure: fn(&Case) -> f64| {
        sizes
            .iter()
            .filter_map(|&size| run.case(&right_code(size), Module::Permit).map(measure))
            .reduce(f64::min)
    };
    // The least a login through any daemon costs here: pam_permit's login plus the floor.
    let floor = |measure: fn(&Case) -> f64, daemon: fn((u64, u64)) -> u64| {
        permit(measure)
            .zip(run.floor)
            .map(|(permit, floor)| {
                format!(
                    "; floor of the design {:.0} µs",
                    permit + daemon(floor) as f64
                )
            })
            .unwrap_or_default()
    };
    let floor_p50 = floor(|case| case.p(50).0, |(p50, _)| p50);
    let floor_cpu = floor(|case| case.cpu().0, |(_, cpu)| cpu);
    line(
        "right-code p50 ≤ 0.85× google-authenticator's (DISALLOW_REUSE), every size",
        format!("{}{floor_p50}", text.join(", ")),
        !ratios.is_empty() && ratios.iter().all(|(_, ratio)| *ratio <= 0.85),
    );
    if let (Some(low), Some(high)) = (
        ours.iter().copied().reduce(f64::min),
        ours.iter().copied().reduce(f64::max),
    ) {
        line(
            "right-code p50 flat across sizes (largest ≤ 1.5× smallest)",
            format!("{low:.0}–{high:.0} µs"),
            high <= 1.5 * low,
        );
    }
    let cpu: Vec<(u64, f64, f64)> = sizes
        .iter()
        .filter_map(|&size| {
            let cpu = |module| run.case(&right_code(size), module).map(|case| case.cpu().0);
            Some((size, cpu(Module::Mfa)?, cpu(Module::GoogleAuthenticator)?))
        })
        .collect();
    let text: Vec<String> = cpu
        .iter()
        .map(|(size, ours, ga)| format!("{ours:.0} vs {ga:.0} µs ({})", label(*size)))
        .collect();
    line(
        "CPU per login, every process together, ≤ google-authenticator's (DISALLOW_REUSE)",
        format!("{}{floor_cpu}", text.join(", ")),
        !cpu.is_empty() && cpu.iter().all(|(_, ours, ga)| ours <= ga),
    );
    let rate = |module| {
        run.case_where(|scenario| scenario.ends_with("8 processes"), module)
            .map(|case| (case.rate().0, case.count("PAM_SUCCESS"), case.logins()))
    };
    if let (Some((ours, ok, all)), Some((ga, _, _))) =
        (rate(Module::Mfa), rate(Module::GoogleAuthenticator))
    {
        line(
            "8 worker processes: ≥ 1.2× google-authenticator's (DISALLOW_REUSE) successes/s, \
             every login succeeding",
            format!(
                "{ours:.0}/s vs {ga:.0}/s = {:.2}×; {ok} of {all} succeeded",
                ours / ga.max(1.0)
            ),
            ours >= 1.2 * ga && ok == all,
        );
    }
    let fork_p50 = |module| {
        run.case_where(|scenario| scenario.ends_with("fork per login"), module)
            .map(|case| case.p(50).0)
    };
    if let (Some(ours), Some(ga)) = (fork_p50(Module::Mfa), fork_p50(Module::GoogleAuthenticator)) {
        line(
            "fork per login (as sshd): p50 ≤ google-authenticator's (DISALLOW_REUSE)",
            format!("{ours:.0} µs vs {ga:.0} µs = {:.2}×", ours / ga.max(1.0)),
            ours <= ga,
        );
    }
    let load_p50 = |module| {
        run.case_where(
            |scenario| scenario.starts_with("pam_start + pam_end"),
            module,
        )
        .map(|case| case.p(50).0)
    };
    if let (Some(ours), Some(permit)) = (load_p50(Module::Mfa), load_p50(Module::Permit)) {
        line(
            "pam_start + pam_end with pam_mfa.so ≤ pam_permit's + 40 µs (fork per call)",
            format!("{ours:.0} µs vs {permit:.0} µs: {:+.0} µs", ours - permit),
            ours <= permit + 40.0,
        );
    }
    let wrong_p50 = |module| {
        run.case_where(|scenario| scenario.starts_with("wrong code"), module)
            .map(|case| case.p(50).0)
    };
    if let (Some(ours), Some(ga)) = (
        wrong_p50(Module::Mfa),
        wrong_p50(Module::GoogleAuthenticator),
    ) {
        line(
            "wrong-code p50 ≤ 0.3× google-authenticator's",
            format!("{ours:.0} µs vs {ga:.0} µs = {:.2}×", ours / ga.max(1.0)),
            ours <= 0.3 * ga,
        );
    }
    if let Ok(meta) = std::fs::metadata(pam_mfa_tests::target_dir().join("libpam_mfa.so")) {
        // As built, symbols included: at most what the stripped file of a package is.
        let kib = meta.len() as f64 / 1024.0;
        line(
            "pam_mfa.so ≤ 800 KiB stripped",
            format!("{kib:.0} KiB as built, unstripped"),
            kib <= 800.0,
        );
    }
    if let Some(case) = run.case_where(|scenario| scenario.starts_with("20 parallel"), Module::Mfa)
    {
        let wins: Vec<u64> = case
            .rounds
            .iter()
            .map(|round| round.report.count("PAM_SUCCESS"))
            .collect();
        line(
            "concurrent replay: exactly 1 of 20 succeeds",
            format!("{wins:?} per round"),
            wins.iter().all(|wins| *wins == 1),
        );
    }
    out
}

/// What loading pam_mfa.so adds to pam_start + pam_end, in fresh processes.
fn load_cost(run: &mut Run) {
    let slots = run.rounds(
        "pam_start + pam_end, fork per call",
        &[Module::Permit, Module::Mfa],
        |run, module, _| {
            let mut load = run.spec(module, 1, 300);
            load.load_only = true;
            load.fork = true;
            load
        },
    );
    let (permit, ours) = (run.cases[slots[0]].p(50).0, run.cases[slots[1]].p(50).0);
    run.note(format!(
        "loading pam_mfa.so adds {:.0} µs (p50) to pam_start + pam_end over pam_permit, from a \
         Rust driver (libgcc_s already loaded)",
        ours - permit
    ));
    let probe = pam_mfa_tests::target_dir().join("pam-load-probe");
    if probe.exists() {
        // Alternate the two services in rounds, so drift in the machine hits both alike.
        let mut rounds: [Vec<u64>; 2] = [Vec::new(), Vec::new()];
        for _ in 0..5 {
            for (slot, module) in [Module::Permit, Module::Mfa].into_iter().enumerate() {
                let output = std::process::Command::new(&probe)
                    .arg(&run.peers.confdir)
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
        run.note(format!(
            "pam_start + pam_end in a forked child of a C program (bench/load-probe.c, 5 \
             rounds of 200, median of the rounds' p50): pam_permit {permit} µs, pam_mfa {ours} \
             µs: loading pam_mfa.so adds {} µs",
            ours as i64 - permit as i64
        ));
    } else {
        run.note("pam-load-probe not built (bench/run.sh builds it): no C-driver figure".into());
    }
    let size = std::fs::metadata(pam_mfa_tests::target_dir().join("libpam_mfa.so"))
        .map(|m| m.len())
        .unwrap_or(0);
    run.note(format!("pam_mfa.so file size: {:.2} MB", size as f64 / 1e6));
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
