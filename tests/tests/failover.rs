//! Fleet mode through the loss of its database server. A primary PostgreSQL server and its
//! synchronous streaming standby (two clusters the test makes with `pg_basebackup`, each on
//! its own port), and three hosts whose mfad name both in their connection string. While the
//! hosts log users in continuously with right, wrong and replayed codes, the primary is
//! killed (`pg_ctl stop -m immediate`) and the standby promoted: no code gets in twice, nothing
//! acknowledged before is lost, and every mfad finds the new primary without a restart. And a
//! host cut off from the database (mfad in a network namespace of its own, its link cut) is
//! refused within its time limit while the others go on, and serves again when the link is
//! back.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use pam_mfa_api::UNAVAILABLE_NOTICE as UNAVAILABLE;
use pam_mfa_tests::netns::NetNamespace;
use pam_mfa_tests::postgres::Postgres;
use pam_mfa_tests::{Env, EnvBuilder, code_at, current_step, enroll_on, wait_until, wrong_code};

/// Users beside the harness's own.
const MORE_USERS: [(&str, u32); 4] = [
    ("erin", 1004),
    ("frank", 1005),
    ("grace", 1006),
    ("heidi", 1007),
];

/// Users the hosts log in continuously.
const BUSY: [&str; 3] = ["alice", "bob", "erin"];

/// Tries are counted over 10 s, 100 of them allowed: the continuous logins (each user's code
/// raced by three hosts, then replayed until the next step, and wrong codes; about 50 tries a
/// user in 10 s) stay below it, and 101 wrong codes typed at once lock an account.
const LOCKOUT: &str = "[lockout]\nfailures = 100\nwindow = 10\nduration = 3600\n";

/// Host `name` on database `url`, with more configuration (TOML tables), not started yet.
fn configured(name: &str, url: &str, more: &str) -> EnvBuilder {
    MORE_USERS
        .iter()
        .fold(Env::new(), |env, (user, uid)| env.user(user, *uid))
        .config(&format!(
            "[store]\nkind = \"postgres\"\nurl = \"{url}\"\ntls = \"disable\"\ntimeout = 2\n\
             host_name = \"{name}\"\n{more}"
        ))
}

fn host(name: &str, url: &str, more: &str) -> Env {
    configured(name, url, more).start()
}

/// One login of the continuous ones.
#[derive(Debug, Clone)]
struct Attempt {
    host: usize,
    user: &'static str,
    /// The time step whose code was typed (none: a wrong code, or a probe).
    step: Option<u64>,
    /// A login of a user without MFA, after a password check (service `permit-then-mfa`):
    /// let in whenever mfad can read the store, never counted by the lockout.
    probe: bool,
    result: String,
    /// When it began and ended, since the test began.
    began: Duration,
    ended: Duration,
}

/// Sets its flag when dropped.
struct Stopping<'a>(&'a AtomicBool);

impl Drop for Stopping<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// A process stopped (SIGSTOP) until this is dropped (SIGCONT).
struct Stalled(i32);

impl Stalled {
    fn stop(pid: i32) -> Stalled {
        // SAFETY: kill(2) has no memory effects; the pid is the test's own server's.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGSTOP) }, 0, "stop {pid}");
        Stalled(pid)
    }
}

impl Drop for Stalled {
    fn drop(&mut self) {
        // SAFETY: as in Stalled::stop.
        unsafe { libc::kill(self.0, libc::SIGCONT) };
    }
}

/// `mfactl --json health` on `env`: (the server in use, the last error, whether it answers).
fn health(env: &Env) -> (String, String, bool) {
    let out = env.ctl(&["--json", "health"], "");
    let document: serde_json::Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|error| panic!("{error}: {}{}", out.stdout, out.stderr));
    let text = |key: &str| document[key].as_str().unwrap_or_default().to_owned();
    assert_eq!(
        document["answering"].as_bool(),
        Some(out.success),
        "{document}"
    );
    (text("server"), text("last_error"), out.success)
}

/// What `mfactl users` says of every user that could be lost: enrollment, pending
/// enrollment, recovery codes left, lock.
fn accounts(env: &Env) -> Vec<serde_json::Value> {
    let out = env.ctl(&["--json", "users"], "");
    assert!(out.success, "{}", out.stderr);
    let users: Vec<serde_json::Value> = serde_json::from_str(&out.stdout).unwrap();
    users
        .into_iter()
        .map(|user| {
            serde_json::json!({
                "user": user["user"],
                "enrolled": user["enrolled"],
                "pending": user["pending"],
                "recovery_codes_left": user["recovery_codes_left"],
                "locked_until": user["locked_until"],
            })
        })
        .collect()
}

/// Locks `user` with `failures + 1` wrong codes typed at once on every host (so that they
/// fall in one window of the count), until `mfactl status` says so.
fn lock(hosts: &[Env; 3], user: &str) {
    let wrong = wrong_code(&hosts[0].secret_of(user));
    wait_until("the account to be locked", || {
        let typing: Vec<_> = (0..34)
            .map(|i| {
                hosts[i % 3]
                    .login(user)
                    .answer(&wrong)
                    .answer(&wrong)
                    .answer(&wrong)
                    .spawn()
            })
            .collect();
        for login in typing {
            login.finish();
        }
        hosts[0]
            .ctl(&["status", user], "")
            .stdout
            .contains("locked:")
    });
}

#[test]
fn a_failover_to_a_synchronous_standby_loses_nothing_and_lets_no_code_in_twice() {
    let primary = Postgres::start();
    primary.create_database("failover");
    let standby = primary.standby(true);
    let url = Postgres::url_of_all(&[&primary, &standby], "failover");
    let hosts = ["host-a", "host-b", "host-c"].map(|name| host(name, &url, LOCKOUT));
    let mut recovery = HashMap::new();
    for (index, user) in ["alice", "bob", "erin", "carol", "dave", "frank"]
        .into_iter()
        .enumerate()
    {
        recovery.insert(user, enroll_on(&hosts, index % 3, user));
    }
    let secrets: HashMap<&str, String> = BUSY
        .iter()
        .map(|user| (*user, hosts[0].secret_of(user)))
        .collect();

    // Before the failover: a recovery code used, an account locked, an app reset.
    hosts[1]
        .login("carol")
        .answer(&recovery["carol"][0])
        .run()
        .expect("PAM_SUCCESS")
        .shows("9 recovery codes are left");
    lock(&hosts, "dave");
    let reset = hosts[2].ctl(&["reset", "--yes", "frank"], "");
    assert!(reset.success, "{}", reset.stderr);
    let primary_address = format!("127.0.0.1:{}", primary.port());
    let standby_address = format!("127.0.0.1:{}", standby.port());
    for env in &hosts {
        let (server, _, answering) = health(env);
        assert!(answering);
        assert_eq!(server, primary_address);
    }
    let pids: Vec<Option<u32>> = hosts.iter().map(Env::daemon_pid).collect();

    // Every host logs the busy users in, each with its code of the moment (raced by the
    // three hosts, then replayed until the next step), and now and then a wrong code.
    let start = Instant::now();
    let stop = AtomicBool::new(false);
    let attempts = Mutex::new(Vec::new());
    let (killed, promoted, snapshot) = std::thread::scope(|scope| {
        // The logins stop when this ends, also when it fails (else the scope waits forever).
        let _stopping = Stopping(&stop);
        for (index, env) in hosts.iter().enumerate() {
            let (stop, attempts, secrets) = (&stop, &attempts, &secrets);
            scope.spawn(move || {
                let mut round = 0usize;
                while !stop.load(Ordering::SeqCst) {
                    for user in BUSY {
                        let step = current_step();
                        let wrong = (round + index).is_multiple_of(4);
                        let code = if wrong {
                            wrong_code(&secrets[user])
                        } else {
                            code_at(&secrets[user], step)
                        };
                        let began = start.elapsed();
                        let login = env.login(user).answer(&code).run();
                        attempts.lock().unwrap().push(Attempt {
                            host: index,
                            user,
                            step: (!wrong).then_some(step),
                            probe: false,
                            result: login.result().to_owned(),
                            began,
                            ended: start.elapsed(),
                        });
                    }
                    round += 1;
                    std::thread::sleep(Duration::from_millis(500));
                }
            });
            // And, often, a user without MFA: when mfad could not read the store.
            scope.spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let began = start.elapsed();
                    let login = env.login("heidi").service("permit-then-mfa").run();
                    attempts.lock().unwrap().push(Attempt {
                        host: index,
                        user: "heidi",
                        step: None,
                        probe: true,
                        result: login.result().to_owned(),
                        began,
                        ended: start.elapsed(),
                    });
                    std::thread::sleep(Duration::from_millis(20));
                }
            });
        }
        std::thread::sleep(Duration::from_secs(3));
        // An enrollment and a login acknowledged just before the primary dies.
        enroll_on(&hosts, 0, "grace");
        let grace_code = hosts[0].fresh_code("grace");
        hosts[0]
            .login("grace")
            .answer(&grace_code)
            .run()
            .expect("PAM_SUCCESS");
        let snapshot = accounts(&hosts[1]);

        let killed = start.elapsed();
        primary.stop();
        standby.promote();
        let promoted = start.elapsed();
        let promoted_step = current_step();
        for env in &hosts {
            wait_until("the host to reach the promoted standby", || health(env).2);
        }
        // The code acknowledged before the failover is spent after it, on another host.
        let replayed = hosts[1].login("grace").answer(&grace_code).run();
        replayed.shows("This code was already used");
        assert_ne!(replayed.result(), "PAM_SUCCESS");
        // Logins go on until every busy user had a step after the promotion.
        while current_step() <= promoted_step {
            std::thread::sleep(Duration::from_millis(200));
        }
        std::thread::sleep(Duration::from_secs(3));
        (killed, promoted, snapshot)
    });
    assert!(!standby.is_standby());

    // Nothing acknowledged before the failover was lost: enrollments, the reset, the used
    // recovery code, the lock, as they were.
    assert_eq!(accounts(&hosts[2]), snapshot);
    let used = hosts[2].login("carol").answer(&recovery["carol"][0]).run();
    used.shows("This recovery code was already used");
    assert_ne!(used.result(), "PAM_SUCCESS");
    hosts[0]
        .login("carol")
        .answer(&recovery["carol"][1])
        .run()
        .expect("PAM_SUCCESS")
        .shows("8 recovery codes are left");
    hosts[1]
        .login("dave")
        .answer(&hosts[0].fresh_code("dave"))
        .run()
        .expect("PAM_AUTH_ERR")
        .shows("this account is locked until");
    let frank = hosts[0].ctl(&["status", "frank"], "").stdout;
    assert!(frank.contains("enrolled:  no"), "{frank}");
    hosts[2]
        .login("grace")
        .answer(&hosts[0].fresh_code("grace"))
        .run()
        .expect("PAM_SUCCESS");

    // Every mfad found the new primary by itself, and says so.
    for (env, pid) in hosts.iter().zip(&pids) {
        assert_eq!(env.daemon_pid(), *pid, "mfad was restarted");
        assert_eq!(
            env.daemon_log()
                .matches("serving org.pam_mfa.Mfad1")
                .count(),
            1
        );
        let (server, _, answering) = health(env);
        assert!(answering);
        assert_eq!(server, standby_address);
        let log = env.daemon_log();
        assert!(
            log.contains(&format!(
                "the database server that accepts writes is now {standby_address}"
            )),
            "{log}"
        );
    }

    // No code got in twice, none of the wrong ones got in, and every host served before and
    // after the failover.
    let attempts = attempts.into_inner().unwrap();
    let mut wins: HashMap<(&str, u64), Vec<&Attempt>> = HashMap::new();
    for attempt in &attempts {
        if attempt.result != "PAM_SUCCESS" || attempt.probe {
            continue;
        }
        let step = attempt
            .step
            .unwrap_or_else(|| panic!("a wrong code got in: {attempt:?}"));
        wins.entry((attempt.user, step)).or_default().push(attempt);
    }
    for (code, won) in &wins {
        assert_eq!(won.len(), 1, "{code:?} got in {} times: {won:?}", won.len());
    }
    for user in BUSY {
        let won = || wins.values().flatten().filter(|won| won.user == user);
        assert!(
            won().any(|won| won.ended < killed),
            "{user} never got in before the failover"
        );
        assert!(
            won().any(|won| won.began > promoted),
            "{user} never got in after the failover"
        );
    }
    let refused: Vec<&Attempt> = attempts
        .iter()
        .filter(|attempt| attempt.result == "PAM_AUTHINFO_UNAVAIL")
        .collect();
    for (index, name) in ["host-a", "host-b", "host-c"].into_iter().enumerate() {
        let mine = || attempts.iter().filter(move |attempt| attempt.host == index);
        // Which host wins a code's race is chance: each host's logins were answered (in, or
        // refused for a spent code) before and after.
        assert!(
            mine()
                .any(|attempt| attempt.ended < killed && attempt.result != "PAM_AUTHINFO_UNAVAIL"),
            "{name} never answered before the failover"
        );
        let last_refused = refused
            .iter()
            .filter(|attempt| attempt.host == index)
            .map(|attempt| attempt.ended)
            .max();
        assert!(
            mine().any(|attempt| attempt.began > promoted
                && attempt.result != "PAM_AUTHINFO_UNAVAIL"),
            "{name} never answered after the promotion"
        );
        // The window, for the record (README's fleet section): from the kill to the end of
        // the last login refused for want of a database.
        eprintln!(
            "{name}: promotion took {} ms; logins refused for {} ms after the kill \
             ({} refused, {} logins in all)",
            (promoted - killed).as_millis(),
            last_refused.map_or(0, |last| last.saturating_sub(killed).as_millis()),
            refused
                .iter()
                .filter(|attempt| attempt.host == index)
                .count(),
            mine().count()
        );
    }
    for attempt in &refused {
        assert!(
            attempt.ended > killed,
            "refused before the kill: {attempt:?}"
        );
    }
    for probe in attempts.iter().filter(|attempt| attempt.probe) {
        assert!(
            ["PAM_SUCCESS", "PAM_AUTHINFO_UNAVAIL"].contains(&probe.result.as_str()),
            "{probe:?}"
        );
    }
}

#[test]
fn a_host_cut_off_from_the_database_is_refused_in_time_and_serves_again_when_the_link_is_back() {
    let island = NetNamespace::new();
    let server = Postgres::start();
    server.serve_plain(&island.host_address(), &island.network());
    server.create_database("partition");
    let outside = server.url("partition");
    let inside = format!(
        "host={} port={} user=postgres dbname=partition",
        island.host_address(),
        server.port()
    );
    let hosts = [
        host("host-a", &outside, ""),
        host("host-b", &outside, ""),
        configured("host-c", &inside, "")
            .in_network_namespace(island.name())
            .start(),
    ];
    for user in ["alice", "bob", "carol"] {
        enroll_on(&hosts, 0, user);
    }
    hosts[2]
        .login("alice")
        .answer(&hosts[0].fresh_code("alice"))
        .run()
        .expect("PAM_SUCCESS");
    let pid = hosts[2].daemon_pid();

    island.cut();
    // Host C's login gets the notice once its store's time limit is over: the packets are
    // lost, nothing refuses them.
    hosts[2]
        .login("alice")
        .answer(&hosts[0].fresh_code("alice"))
        .run()
        .expect("PAM_AUTHINFO_UNAVAIL")
        .shows(UNAVAILABLE);
    // Over the connection the last login left open (silence, or the kernel ending it when
    // the link's loss is noticed), or over a new one that never gets through.
    let log = hosts[2].daemon_log();
    let failure = log
        .lines()
        .find(|line| {
            line.contains("did not answer within 2 s")
                || line.contains("cannot connect")
                || line.contains("lost the connection")
        })
        .unwrap_or_else(|| panic!("no failure to reach the database logged:\n{log}"));
    assert!(failure.contains(&island.host_address()), "{failure}");
    let (_, last_error, answering) = health(&hosts[2]);
    assert!(!answering);
    // The link's loss is seen as silence (no answer within the limit) or, once the kernel
    // gives up on the address, as no route.
    assert!(last_error.contains(&island.host_address()), "{last_error}");
    // The others go on.
    hosts[0]
        .login("bob")
        .answer(&hosts[0].fresh_code("bob"))
        .run()
        .expect("PAM_SUCCESS");
    hosts[1]
        .login("carol")
        .answer(&hosts[0].fresh_code("carol"))
        .run()
        .expect("PAM_SUCCESS");

    island.mend();
    wait_until("host-c to reach the database again", || health(&hosts[2]).2);
    hosts[2]
        .login("alice")
        .answer(&hosts[0].fresh_code("alice"))
        .run()
        .expect("PAM_SUCCESS");
    assert_eq!(hosts[2].daemon_pid(), pid, "mfad was restarted");
    assert_eq!(
        hosts[2]
            .daemon_log()
            .matches("serving org.pam_mfa.Mfad1")
            .count(),
        1
    );
}

/// A first host that does not answer at all (its machine gone: nobody has its address) takes
/// only its share of the store's time limit, and the next host in the list serves the login.
#[test]
fn a_silent_first_host_leaves_time_for_the_next() {
    let island = NetNamespace::new();
    let server = Postgres::start();
    server.serve_plain(&island.host_address(), &island.network());
    server.create_database("silent");
    // The tables made first, from this side: the host under test then has only its share of
    // the limit to spend on the silent host, not the migrations as well.
    let outside = host("host-a", &server.url("silent"), "");
    enroll_on(std::slice::from_ref(&outside), 0, "carol");
    drop(outside);
    let url = format!(
        "host={},{} port={} user=postgres dbname=silent",
        island.silent_address(),
        island.host_address(),
        server.port()
    );
    let env = configured("host-b", &url, "")
        .in_network_namespace(island.name())
        .start();
    enroll_on(std::slice::from_ref(&env), 0, "alice");
    env.login("alice")
        .answer(&env.fresh_code("alice"))
        .run()
        .expect("PAM_SUCCESS");
    let (server_in_use, _, answering) = health(&env);
    assert!(answering);
    assert_eq!(
        server_in_use,
        format!("{}:{}", island.host_address(), server.port())
    );
}

/// A commit the synchronous standby does not confirm is never acknowledged: with the
/// primary's WAL sender stopped, a right code is denied with the notice after the store's
/// time limit (the primary's own statement timer, which would end the wait for the standby and
/// keep the commit locally, runs longer than mfad's wait). After the primary is lost and the
/// standby promoted, that code, never accepted, gets in once.
#[test]
fn a_code_the_standby_never_confirmed_is_not_accepted() {
    let primary = Postgres::start();
    primary.create_database("stalled");
    let standby = primary.standby(true);
    let url = Postgres::url_of_all(&[&primary, &standby], "stalled");
    let env = host("host-a", &url, "");
    enroll_on(std::slice::from_ref(&env), 0, "alice");
    // The primary's WAL sender stopped: what the primary writes stays on it.
    let sender: i32 = primary
        .sql("postgres", "SELECT pid FROM pg_stat_replication")
        .parse()
        .expect("the primary's WAL sender");
    let stalled = Stalled::stop(sender);
    let code = env.fresh_code("alice");
    env.login("alice")
        .answer(&code)
        .run()
        .expect("PAM_AUTHINFO_UNAVAIL")
        .shows(UNAVAILABLE);
    let log = env.daemon_log();
    assert!(log.contains("did not confirm a change"), "{log}");

    // The primary is lost before it sends the standby anything more (its server ends the
    // stopped sender with SIGKILL, after a few seconds).
    primary.stop();
    drop(stalled);
    standby.promote();
    wait_until("the host to reach the promoted standby", || health(&env).2);
    env.login("alice").answer(&code).run().expect("PAM_SUCCESS");
    let again = env.login("alice").answer(&code).run();
    again.shows("This code was already used");
}
