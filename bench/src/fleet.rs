//! `pam-mfa-bench fleet`: logins with three mfad (three hosts, each its own bus) sharing one
//! PostgreSQL server, three more sharing a server with a synchronous standby, and one mfad on
//! its SQLite file, with the same users and codes, in the same run. The PostgreSQL servers are
//! Debian's, on temporary clusters on this machine's disk, with fsync on (every commit
//! durable, as in production); the standby is streamed from its primary and named in its
//! `synchronous_standby_names`, so that a commit waits until the standby has it on disk.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::time::Instant;

use pam_mfa_tests::postgres::Postgres;
use pam_mfa_tests::{Env, target_dir};

use crate::driver::{self, DEFAULT_SEED, Report, Spec, secret_base32, user_name};
use crate::{ROUNDS, spread, system};

/// The fleet's hosts on the single server, each also the name of its PAM service.
const HOSTS: [&str; 3] = ["host-a", "host-b", "host-c"];

/// The hosts of the fleet whose server has a synchronous standby.
const SYNC_HOSTS: [&str; 3] = ["sync-a", "sync-b", "sync-c"];

/// The PAM services of the run, in one directory: `sqlite` for the host on its own store,
/// `host-a`, `host-b`, `host-c` for the fleet on one server, `sync-a`, `sync-b`, `sync-c` for
/// the fleet on a server with a synchronous standby.
struct Setup {
    fleet: Vec<Env>,
    synced: Vec<Env>,
    single: Env,
    confdir: std::path::PathBuf,
}

/// Three hosts named `names` on database `url`, one try per login (as in the main
/// benchmark).
fn hosts(url: &str, names: [&str; 3]) -> Vec<Env> {
    names
        .into_iter()
        .map(|host| {
            Env::new()
                .config(&format!(
                    "[login]\nmax_tries = 1\n[store]\nkind = \"postgres\"\nurl = \"{url}\"\n\
                     tls = \"disable\"\ntimeout = 10\nhost_name = \"{host}\"\n"
                ))
                .start()
        })
        .collect()
}

fn setup(server: &Postgres, primary: &Postgres, standby: &Postgres) -> Setup {
    server.create_database("fleet");
    let fleet = hosts(&server.url("fleet"), HOSTS);
    let synced = hosts(
        &Postgres::url_of_all(&[primary, standby], "fleet"),
        SYNC_HOSTS,
    );
    let single = Env::new().config("[login]\nmax_tries = 1\n").start();
    let confdir = single.dir().join("fleet-pam.d");
    fs::create_dir_all(&confdir).unwrap();
    let module = target_dir().join("libpam_mfa.so");
    let line = |env: &Env| {
        format!(
            "auth required {} {}\n",
            module.display(),
            env.module_target()
        )
    };
    fs::write(confdir.join("sqlite"), line(&single)).unwrap();
    for (env, name) in fleet.iter().zip(HOSTS).chain(synced.iter().zip(SYNC_HOSTS)) {
        fs::write(confdir.join(name), line(env)).unwrap();
    }
    Setup {
        fleet,
        synced,
        single,
        confdir,
    }
}

/// Enrolls users 0..`users` through `mfactl import` on `env`, 100,000 at a time; returns the
/// seconds it took.
fn import(env: &Env, users: u64, dir: &Path) -> f64 {
    let start = Instant::now();
    let path = dir.join("fleet-import.txt");
    let mut first = 0;
    while first < users {
        let last = (first + 100_000).min(users);
        let mut text = String::new();
        for index in first..last {
            let _ = writeln!(
                text,
                "{} {}",
                user_name(index),
                secret_base32(DEFAULT_SEED, index)
            );
        }
        fs::write(&path, text).unwrap();
        let out = env.ctl(&["import", path.to_str().unwrap()], "");
        assert!(out.success, "mfactl import failed: {}", out.stderr);
        first = last;
    }
    fs::remove_file(&path).unwrap();
    start.elapsed().as_secs_f64()
}

/// One measurement: logins through `services` at once, each by one worker process, `count`
/// each, over users no other measurement uses.
fn measure(confdir: &Path, services: &[&str], users: u64, count: u64, first: &mut u64) -> Report {
    let specs: Vec<Spec> = services
        .iter()
        .map(|service| {
            let mut spec = Spec::new(confdir.to_owned(), service, users, count, DEFAULT_SEED);
            spec.processes = 1;
            spec.first = *first;
            *first += count;
            spec
        })
        .collect();
    let start = Instant::now();
    let mut report = Report::default();
    std::thread::scope(|scope| {
        let running: Vec<_> = specs
            .iter()
            .map(|spec| scope.spawn(move || driver::run(spec)))
            .collect();
        for run in running {
            report.merge(run.join().unwrap());
        }
    });
    report.wall_us = start.elapsed().as_micros() as u64;
    report
}

struct Case {
    scenario: &'static str,
    store: &'static str,
    services: Vec<&'static str>,
    rounds: Vec<Report>,
}

impl Case {
    fn row(&self) -> String {
        let mut results = std::collections::BTreeMap::new();
        for report in &self.rounds {
            for (result, count) in &report.results {
                *results
                    .entry(result.trim_start_matches("PAM_"))
                    .or_insert(0) += count;
            }
        }
        let results: Vec<String> = results
            .iter()
            .map(|(result, count)| format!("{count} {result}"))
            .collect();
        let of = |f: &dyn Fn(&Report) -> f64| spread(self.rounds.iter().map(f));
        let p50 = of(&|r| r.percentile(50) as f64);
        let p99 = of(&|r| r.percentile(99) as f64);
        let rate = of(&|r| r.successes_per_second());
        format!(
            "| {} | {} | {} | {:.0} ({:.0}–{:.0}) | {:.0} ({:.0}–{:.0}) | {:.0} ({:.0}–{:.0}) |",
            self.scenario,
            self.store,
            results.join(", "),
            p50.0,
            p50.1,
            p50.2,
            p99.0,
            p99.1,
            p99.2,
            rate.0,
            rate.1,
            rate.2
        )
    }
}

/// Runs the comparison at `users` enrolled users, `iterations` logins per case and round, and
/// prints it as Markdown.
pub fn fleet(users: u64, iterations: u64) {
    let sink = system::SyslogSink::start();
    let mut notes = vec![
        format!(
            "load average (1 min) at the start: {}",
            system::load_average()
        ),
        sink.describe().to_owned(),
    ];
    let server = Postgres::start_durable();
    let primary = Postgres::start_durable();
    primary.create_database("fleet");
    let standby = primary.standby(true);
    let setup = setup(&server, &primary, &standby);
    let version = server.sql("fleet", "SHOW server_version");
    notes.push(format!(
        "PostgreSQL {version} (Debian's), temporary clusters on this machine's disk, fsync on, \
         synchronous_commit on; each fleet's three mfad reach their server over TCP on \
         127.0.0.1. The synchronous standby is a third cluster made with pg_basebackup, \
         streaming from its primary over the primary's Unix socket and named in its \
         synchronous_standby_names; sync-a, sync-b and sync-c list both servers in their \
         connection string"
    ));
    let seconds = import(&setup.fleet[0], users, setup.single.dir());
    notes.push(format!(
        "set-up: {users} users imported into PostgreSQL (mfactl import on host-a) in {seconds:.1} s"
    ));
    eprintln!("{}", notes.last().unwrap());
    let seconds = import(&setup.synced[0], users, setup.single.dir());
    notes.push(format!(
        "set-up: {users} users imported into PostgreSQL with a synchronous standby (mfactl \
         import on sync-a) in {seconds:.1} s"
    ));
    eprintln!("{}", notes.last().unwrap());
    let seconds = import(&setup.single, users, setup.single.dir());
    notes.push(format!(
        "set-up: {users} users imported into SQLite in {seconds:.1} s"
    ));
    eprintln!("{}", notes.last().unwrap());
    // SAFETY: sync(2) takes no arguments and cannot fail.
    unsafe { libc::sync() };

    let mut cases = vec![
        Case {
            scenario: "one login at a time",
            store: "SQLite, one host",
            services: vec!["sqlite"],
            rounds: Vec::new(),
        },
        Case {
            scenario: "one login at a time",
            store: "PostgreSQL, one of three hosts",
            services: vec!["host-a"],
            rounds: Vec::new(),
        },
        Case {
            scenario: "one login at a time",
            store: "PostgreSQL with a synchronous standby, one of three hosts",
            services: vec!["sync-a"],
            rounds: Vec::new(),
        },
        Case {
            scenario: "3 logins at a time",
            store: "SQLite, one host (3 processes)",
            services: vec!["sqlite", "sqlite", "sqlite"],
            rounds: Vec::new(),
        },
        Case {
            scenario: "3 logins at a time",
            store: "PostgreSQL, three hosts (1 process each)",
            services: HOSTS.to_vec(),
            rounds: Vec::new(),
        },
        Case {
            scenario: "3 logins at a time",
            store: "PostgreSQL with a synchronous standby, three hosts (1 process each)",
            services: SYNC_HOSTS.to_vec(),
            rounds: Vec::new(),
        },
    ];
    let mut first = 0;
    for round in 0..ROUNDS {
        for shift in 0..cases.len() {
            let slot = (shift + round) % cases.len();
            let count = iterations / cases[slot].services.len() as u64;
            let report = measure(
                &setup.confdir,
                &cases[slot].services,
                users,
                count,
                &mut first,
            );
            cases[slot].rounds.push(report);
            eprintln!("round {} of {}: {}", round + 1, ROUNDS, cases[slot].row());
        }
    }
    notes.push(format!(
        "load average (1 min) at the end: {}",
        system::load_average()
    ));
    let rows = server.sql("fleet", "SELECT pg_size_pretty(pg_database_size('fleet'))");
    notes.push(format!("PostgreSQL database size after the runs: {rows}"));
    let lag = primary.sql(
        "postgres",
        "SELECT sync_state || ', replay lag ' || coalesce(replay_lag::text, 'none') \
         FROM pg_stat_replication",
    );
    notes.push(format!("the standby after the runs: {lag}"));

    let mut out = String::new();
    let _ = writeln!(
        out,
        "| scenario | store | results, all rounds | p50 µs: median (min–max) of rounds | p99 µs | successes/s |"
    );
    let _ = writeln!(out, "|---|---|---|---:|---:|---:|");
    for case in &cases {
        let _ = writeln!(out, "{}", case.row());
    }
    let _ = writeln!(out);
    for note in &notes {
        let _ = writeln!(out, "- {note}");
    }
    print!("{out}");
}
