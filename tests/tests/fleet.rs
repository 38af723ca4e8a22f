//! Fleet mode: three hosts, each its own bus, mfad, PAM stack and users, sharing one real
//! PostgreSQL server (a temporary cluster, see `pam_mfa_tests::postgres`). A user enrolls once
//! and logs in anywhere; each code and recovery code gets in once across the fleet; one count
//! of tries and one lock; an administrator's change on one host holds on the others at once; a
//! database that is down denies logins with the one-line notice, and nothing is lost.

use pam_mfa_api::UNAVAILABLE_NOTICE as UNAVAILABLE;
use pam_mfa_tests::postgres::{Postgres, certificates};
use pam_mfa_tests::{Env, Transcript, enroll_on, wait_until};

/// Three hosts on database `database` of `server`.
fn fleet(server: &Postgres, database: &str) -> [Env; 3] {
    fleet_with(server, database, "")
}

/// The same, with more configuration (TOML tables) on every host.
fn fleet_with(server: &Postgres, database: &str, more: &str) -> [Env; 3] {
    server.create_database(database);
    ["host-a", "host-b", "host-c"].map(|host| {
        Env::new()
            .config(&format!(
                "[store]\nkind = \"postgres\"\nurl = \"{}\"\ntls = \"disable\"\ntimeout = 2\n\
                 host_name = \"{host}\"\n{more}",
                server.url(database)
            ))
            .start()
    })
}

/// Enough tries that 21 racing logins all get to type their code (the lock is the fleet's,
/// and would otherwise stop the later ones before their question).
const MANY_TRIES: &str = "[lockout]\nfailures = 50\n";

/// How many of `results` got in; every login must have been asked for the code (a host that
/// did not know the user would let it through without asking, and prove nothing).
fn wins(results: &[Transcript]) -> usize {
    for login in results {
        assert!(
            login
                .lines
                .iter()
                .any(|line| line.contains("Verification code: ")),
            "not asked for a code: {:?}",
            login.lines
        );
    }
    results
        .iter()
        .filter(|login| login.result() == "PAM_SUCCESS")
        .count()
}

#[test]
fn enroll_on_one_host_and_log_in_on_the_others() {
    let server = Postgres::start();
    let hosts = fleet(&server, "anywhere");
    enroll_on(&hosts, 0, "alice");
    let code = hosts[0].fresh_code("alice");
    hosts[1]
        .login("alice")
        .answer(&code)
        .run()
        .expect("PAM_SUCCESS");
    // The code is spent for the whole fleet: on host C it is a used code, the next one works.
    hosts[2]
        .login("alice")
        .answer(&code)
        .answer(&hosts[0].fresh_code("alice"))
        .run()
        .expect("PAM_SUCCESS")
        .shows("ERROR_MSG This code was already used; wait for the next one.");
    for host in &hosts {
        let status = host.ctl(&["status", "alice"], "");
        assert!(
            status.stdout.contains("enrolled:  yes"),
            "{}",
            status.stdout
        );
    }
    // Any host's mfactl audit shows the fleet's trail, each entry with its host.
    let audit = hosts[2].ctl(&["--json", "audit", "--user", "alice"], "");
    assert!(audit.success, "{}", audit.stderr);
    let entries: serde_json::Value = serde_json::from_str(&audit.stdout).unwrap();
    let seen: Vec<(String, String)> = entries
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| {
            (
                entry["event"].as_str().unwrap().to_owned(),
                entry["host"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    for expected in [
        ("enrollment-confirmed", "host-a"),
        ("login-allowed", "host-b"),
        ("login-allowed", "host-c"),
    ] {
        assert!(
            seen.iter()
                .any(|(event, host)| (event.as_str(), host.as_str()) == expected),
            "{expected:?} not in {seen:?}"
        );
    }
    let text = hosts[0].ctl(&["audit", "--user", "alice"], "").stdout;
    assert!(text.contains("  host-b  "), "{text}");
}

#[test]
fn one_code_raced_on_three_hosts_gets_in_once() {
    let server = Postgres::start();
    let hosts = fleet_with(&server, "race", MANY_TRIES);
    enroll_on(&hosts, 0, "alice");
    let code = hosts[0].fresh_code("alice");
    let racing: Vec<_> = (0..21)
        .map(|i| hosts[i % 3].login("alice").answer(&code).spawn())
        .collect();
    let results: Vec<Transcript> = racing.into_iter().map(|login| login.finish()).collect();
    let outcomes: Vec<&str> = results.iter().map(Transcript::result).collect();
    assert_eq!(wins(&results), 1, "{outcomes:?}");
}

#[test]
fn one_hotp_code_raced_on_three_hosts_gets_in_once_and_the_counter_holds_everywhere() {
    let server = Postgres::start();
    let hosts = fleet_with(&server, "hotp_race", MANY_TRIES);
    let secret = pam_mfa_tests::random_secret();
    let code = |counter| pam_mfa_tests::hotp_at(&secret, counter);
    let enrolled = hosts[0].ctl(
        &["enroll", "--hotp", "alice", "--secret", &secret],
        &format!("{}\n", code(0)),
    );
    assert!(enrolled.success, "{}", enrolled.stderr);
    let racing: Vec<_> = (0..21)
        .map(|i| hosts[i % 3].login("alice").answer(&code(1)).spawn())
        .collect();
    let results: Vec<Transcript> = racing.into_iter().map(|login| login.finish()).collect();
    let outcomes: Vec<&str> = results.iter().map(Transcript::result).collect();
    assert_eq!(wins(&results), 1, "{outcomes:?}");
    // A code pressed ahead on B moves the counter for the fleet: the skipped one is refused on
    // C, the next one gets in there.
    hosts[1]
        .login("alice")
        .answer(&code(5))
        .run()
        .expect("PAM_SUCCESS");
    hosts[2]
        .login("alice")
        .answer(&code(3))
        .answer(&code(6))
        .run()
        .expect("PAM_SUCCESS")
        .shows("This code was already used; press the token's button for the next one.");
}

#[test]
fn one_recovery_code_raced_on_three_hosts_gets_in_once() {
    let server = Postgres::start();
    let hosts = fleet_with(&server, "recovery", MANY_TRIES);
    let codes = enroll_on(&hosts, 0, "alice");
    let racing: Vec<_> = (0..21)
        .map(|i| hosts[i % 3].login("alice").answer(&codes[3]).spawn())
        .collect();
    let results: Vec<Transcript> = racing.into_iter().map(|login| login.finish()).collect();
    let outcomes: Vec<&str> = results.iter().map(Transcript::result).collect();
    assert_eq!(wins(&results), 1, "{outcomes:?}");
    let winner = results
        .iter()
        .find(|login| login.result() == "PAM_SUCCESS")
        .unwrap();
    winner.shows("9 recovery codes are left");
}

#[test]
fn a_lock_tripped_on_one_host_holds_on_the_others_until_unlocked_on_any() {
    let server = Postgres::start();
    let hosts = fleet(&server, "lockout");
    enroll_on(&hosts, 0, "alice");
    // Six wrong codes on A (two logins of three tries): the sixth locks the account.
    hosts[0].lock_out("alice", "mfa");
    let wrong = hosts[0].wrong_code("alice");
    // On B the right code is refused: the lock is the fleet's.
    hosts[1]
        .login("alice")
        .answer(&hosts[0].fresh_code("alice"))
        .run()
        .expect("PAM_AUTH_ERR")
        .shows("this account is locked until");
    // Tries are counted once for all hosts: two wrong codes on B and three on C lock too.
    assert!(hosts[2].ctl(&["unlock", "alice"], "").success);
    hosts[1]
        .login("alice")
        .answer(&wrong)
        .answer(&wrong)
        .answer(&hosts[0].fresh_code("alice"))
        .run()
        .expect("PAM_SUCCESS");
    hosts[1].login("alice").answer(&wrong).answer(&wrong).run();
    hosts[2]
        .login("alice")
        .answer(&wrong)
        .answer(&wrong)
        .answer(&wrong)
        .run();
    hosts[0]
        .login("alice")
        .answer(&hosts[0].fresh_code("alice"))
        .run()
        .expect("PAM_AUTH_ERR")
        .shows("this account is locked until");
}

#[test]
fn a_reset_on_one_host_takes_effect_on_the_others_at_once() {
    let server = Postgres::start();
    let hosts = fleet(&server, "reset");
    enroll_on(&hosts, 0, "alice");
    assert!(hosts[1].ctl(&["enforce", "alice", "on"], "").success);
    let reset = hosts[2].ctl(&["reset", "--yes", "alice"], "");
    assert!(reset.success, "{}", reset.stderr);
    // The next login on A sets up a new app: the old one is gone for the whole fleet.
    let mut login = hosts[0].login("alice").drive();
    let shown = login.prompt().join("\n");
    assert!(
        shown.contains("no authenticator app is set up for it yet"),
        "{shown}"
    );
    assert!(shown.contains("URI: otpauth://"), "{shown}");
}

#[test]
fn the_database_down_denies_logins_with_the_notice_and_loses_nothing() {
    let server = Postgres::start();
    let hosts = fleet(&server, "outage");
    let codes = enroll_on(&hosts, 0, "alice");
    hosts[1]
        .login("alice")
        .answer(&hosts[0].fresh_code("alice"))
        .run()
        .expect("PAM_SUCCESS");
    server.stop();
    for host in &hosts {
        let login = host.login("alice").answer(&codes[0]).run();
        login.expect("PAM_AUTHINFO_UNAVAIL").shows(UNAVAILABLE);
        // mfad answered, after its own bound, with the database's failure: the module did not
        // give up on a silent mfad.
        let log = host.daemon_log();
        assert!(log.contains("cannot connect to PostgreSQL"), "{log}");
    }
    // An mfad started while the database is down serves all the same, and denies: a database
    // outage is not an absent mfad, which failmode=safe would let through.
    hosts[2].stop_daemon();
    hosts[2].start_daemon();
    hosts[2]
        .login("alice")
        .answer(&codes[0])
        .run()
        .expect("PAM_AUTHINFO_UNAVAIL")
        .shows(UNAVAILABLE);
    let status = hosts[0].ctl(&["status", "alice"], "");
    assert!(!status.success);
    server.start_again();
    // For a second after a failure to reach the database mfad does not try again (so a login's
    // several calls wait once): then every host reaches it.
    for host in &hosts {
        wait_until("mfad to reach the database again", || {
            host.ctl(&["status", "alice"], "").success
        });
    }
    // Back: the enrollment, the recovery codes and the trail are all there.
    hosts[2]
        .login("alice")
        .answer(&codes[0])
        .run()
        .expect("PAM_SUCCESS")
        .shows("9 recovery codes are left");
    hosts[0]
        .login("alice")
        .answer(&hosts[0].fresh_code("alice"))
        .run()
        .expect("PAM_SUCCESS");
    let audit = hosts[1].ctl(&["audit", "--user", "alice"], "").stdout;
    assert!(audit.contains("host-b"), "{audit}");
    assert!(audit.contains("host-a"), "{audit}");
}

/// With ca_file, only its authorities vouch for the server: an authority the system trusts
/// (here through SSL_CERT_FILE, which OpenSSL reads as the system's store) does not.
#[test]
fn only_the_authorities_of_ca_file_are_trusted() {
    let server = Postgres::start();
    server.create_database("tls");
    let dir = server.dir().join("tls");
    let other = server.dir().join("other");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::create_dir_all(&other).unwrap();
    let (ca, cert, key) = certificates(&dir, "IP:127.0.0.1");
    let (other_ca, _, _) = certificates(&other, "IP:127.0.0.1");
    server.require_tls(&cert, &key);
    let config = |ca_file: &std::path::Path| {
        format!(
            "[store]\nkind = \"postgres\"\nurl = \"{}\"\nca_file = \"{}\"\ntimeout = 2\n",
            server.url("tls"),
            ca_file.display()
        )
    };
    let trusting = Env::new().config(&config(&ca)).start();
    let doubting = Env::new()
        .config(&config(&other_ca))
        .daemon_env("SSL_CERT_FILE", &ca)
        .start();
    enroll_on(std::slice::from_ref(&trusting), 0, "alice");
    doubting
        .login("alice")
        .answer(&trusting.fresh_code("alice"))
        .run()
        .expect("PAM_AUTHINFO_UNAVAIL")
        .shows(UNAVAILABLE);
    let log = doubting.daemon_log();
    assert!(
        log.contains("unable to get local issuer certificate"),
        "{log}"
    );
    trusting
        .login("alice")
        .answer(&trusting.fresh_code("alice"))
        .run()
        .expect("PAM_SUCCESS");
}

/// Every host seals with the fleet's keys: a dump of the database holds no secret in any
/// encoding (bytes, Base32, hexadecimal); a host with another key is refused at its start,
/// says why in one line, and writes nothing.
#[test]
fn the_database_holds_sealed_secrets_and_a_host_with_another_key_is_refused() {
    let server = Postgres::start();
    let hosts = fleet(&server, "sealed");
    let mut secrets = Vec::new();
    for (on, user) in [(0, "alice"), (1, "bob")] {
        enroll_on(&hosts, on, user);
        secrets.push(hosts[0].secret_of(user));
    }
    hosts[2]
        .login("alice")
        .answer(&hosts[0].fresh_code("alice"))
        .run()
        .expect("PAM_SUCCESS");
    let dump = server.dump("sealed");
    assert!(
        String::from_utf8_lossy(&dump).contains("COPY public.enrollments"),
        "not a dump of the store"
    );
    for secret in &secrets {
        let raw = totp_rs::Secret::try_from_base32(secret).unwrap();
        let raw = raw.as_bytes();
        let hex: String = raw.iter().map(|byte| format!("{byte:02x}")).collect();
        // pg_dump writes bytea as \x and hexadecimal.
        for needle in [
            raw.to_vec(),
            secret.as_bytes().to_vec(),
            secret.to_lowercase().into_bytes(),
            hex.clone().into_bytes(),
            hex.to_uppercase().into_bytes(),
        ] {
            assert!(
                !dump.windows(needle.len()).any(|window| window == needle),
                "the dump holds a secret"
            );
        }
    }
    // A fourth host with a key of its own.
    let before = server.sql(
        "sealed",
        "SELECT string_agg(id || ':' || encode(secret, 'hex') || ':' || sealed_with, ',' \
         ORDER BY id) FROM enrollments",
    );
    let rows_before = server.sql("sealed", "SELECT count(*) FROM audit");
    let other = hosts[0].dir().join("other.key");
    std::fs::write(
        &other,
        "1 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n",
    )
    .unwrap();
    std::fs::set_permissions(&other, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let out = hosts[0].run_daemon_with_keys(
        &other,
        &format!(
            "state_dir = \"{}\"\n[store]\nkind = \"postgres\"\nurl = \"{}\"\ntls = \"disable\"\n",
            hosts[0].dir().join("state-d").display(),
            server.url("sealed")
        ),
    );
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains("its key 1 is not the key 1 the stored secrets were sealed with")
            && said.contains("mfad changed nothing"),
        "{said}"
    );
    assert_eq!(
        server.sql(
            "sealed",
            "SELECT string_agg(id || ':' || encode(secret, 'hex') || ':' || sealed_with, ',' \
             ORDER BY id) FROM enrollments",
        ),
        before
    );
    assert_eq!(
        server.sql("sealed", "SELECT count(*) FROM audit"),
        rows_before
    );
}

/// A new key given to every host, and `mfactl reseal` run on one: the other hosts, which read
/// their keys when they started, read them again when they meet a secret sealed with the new
/// key, and their users log in as before.
#[test]
fn a_key_resealed_on_one_host_is_read_again_by_the_others() {
    let server = Postgres::start();
    let hosts = fleet(&server, "rotation");
    enroll_on(&hosts, 0, "alice");
    // The new key, made once and copied to every host.
    let out = std::process::Command::new(pam_mfa_tests::built("mfad"))
        .arg("--new-key")
        .arg(hosts[0].sealing_key_file())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for host in &hosts[1..] {
        std::fs::copy(hosts[0].sealing_key_file(), host.sealing_key_file()).unwrap();
    }
    let out = hosts[0].ctl(&["reseal"], "");
    assert!(out.success, "{}", out.stderr);
    assert!(out.stdout.contains("sealed with key 2"), "{}", out.stdout);
    assert_eq!(
        server.sql("rotation", "SELECT DISTINCT sealed_with FROM enrollments"),
        "2"
    );
    for host in &hosts[1..] {
        host.login("alice")
            .answer(&hosts[0].fresh_code("alice"))
            .run()
            .expect("PAM_SUCCESS");
        assert!(
            host.daemon_log().contains("sealing keys read again from ")
                && host.daemon_log().contains("key 2 was added"),
            "{}",
            host.daemon_log()
        );
    }
}
