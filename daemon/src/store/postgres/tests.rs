//! The PostgreSQL backend on a real temporary server.

use std::sync::atomic::{AtomicUsize, Ordering};

use pam_mfa_config::{Config, StoreSettings};
use pam_mfa_tests::postgres::{Postgres, certificates};

use super::*;
use crate::audit::Event;
use crate::store::Store;
use crate::users::UserName;

/// The store of the database the settings name, as `host`.
fn open(settings: &StoreSettings, host: &str) -> Result<Store> {
    let backend = PostgresBackend::open(settings)?;
    Ok(Store::new(
        std::sync::Arc::new(backend),
        host.into(),
        crate::store::test_keys(),
    ))
}

fn settings(url: &str) -> StoreSettings {
    let text = format!("[store]\nkind = \"postgres\"\nurl = \"{url}\"\ntls = \"disable\"\n");
    Config::parse(&text).unwrap().store
}

/// The same contract as the SQLite store's, each check on a new database of one server.
#[test]
fn the_contract_holds() {
    let server = Postgres::start();
    let next = AtomicUsize::new(0);
    super::super::contract::run_all(|| {
        let name = format!("contract_{}", next.fetch_add(1, Ordering::Relaxed));
        server.create_database(&name);
        let store = open(&settings(&server.url(&name)), "host-a")
            .unwrap_or_else(|error| panic!("{error}\n{}", server.log()));
        (store, || {})
    });
}

/// Hosts starting at once create the tables once; a newer schema is refused.
#[test]
fn migrations_run_once_and_a_newer_schema_is_refused() {
    let server = Postgres::start();
    server.create_database("fleet");
    let url = server.url("fleet");
    let opened: Vec<_> = (0..4)
        .map(|host| {
            let settings = settings(&url);
            std::thread::spawn(move || open(&settings, &format!("host-{host}")))
        })
        .collect();
    for opened in opened {
        opened.join().unwrap().unwrap();
    }
    assert_eq!(
        server.sql("fleet", "SELECT version FROM pam_mfa_schema"),
        MIGRATIONS.len().to_string()
    );
    server.sql("fleet", "UPDATE pam_mfa_schema SET version = version + 1");
    let error = open(&settings(&url), "host-a")
        .err()
        .expect("a newer schema is refused");
    assert!(
        error.to_string().contains("newer than this mfad"),
        "{error}"
    );
}

/// A server that is down makes each call fail within the timeout, naming the database;
/// once it is back, calls work again on new connections.
#[test]
fn an_unreachable_server_fails_calls_within_the_timeout() {
    let server = Postgres::start();
    server.create_database("fleet");
    let mut settings = settings(&server.url("fleet"));
    settings.timeout = Config::parse("[store]\ntimeout = 2\n")
        .unwrap()
        .store
        .timeout;
    let store = open(&settings, "host-a").unwrap();
    let alice = UserName::parse("alice").unwrap();
    assert!(store.enrollments(&alice).unwrap().is_empty());
    server.stop();
    let started = std::time::Instant::now();
    let error = store.enrollments(&alice).unwrap_err().to_string();
    assert!(started.elapsed() < Duration::from_secs(3), "{error}");
    assert!(error.contains("127.0.0.1"), "{error}");
    // Calls fail at once for a second after a failure, then reach the server again.
    assert!(store.enrollments(&alice).is_err());
    server.start_again();
    let back = std::time::Instant::now();
    while store.enrollments(&alice).is_err() {
        assert!(
            back.elapsed() < Duration::from_secs(5),
            "the store never came back"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(store.enrollments(&alice).unwrap().is_empty());
}

fn tls_settings(url: &str, tls: &str, ca: Option<&std::path::Path>) -> StoreSettings {
    let ca = ca.map_or(String::new(), |ca| {
        format!("ca_file = \"{}\"\n", ca.display())
    });
    let text = format!(
        "[store]\nkind = \"postgres\"\nurl = \"{url}\"\ntls = \"{tls}\"\n{ca}timeout = 2\n"
    );
    Config::parse(&text).unwrap().store
}

/// Over TCP to a server that refuses connections without TLS: verify-full works with the
/// authority that signed the server's certificate, and fails with another or with a
/// certificate for another name; require works without checking; disable is refused by
/// the server.
#[test]
fn tls_is_used_and_the_server_checked() {
    let server = Postgres::start();
    server.create_database("fleet");
    let dir = server.dir().join("tls");
    std::fs::create_dir_all(&dir).unwrap();
    let (ca, cert, key) = certificates(&dir, "IP:127.0.0.1");
    server.require_tls(&cert, &key);
    let url = server.url("fleet");
    let alice = UserName::parse("alice").unwrap();
    let works = |settings: StoreSettings| {
        let store = open(&settings, "host-a").unwrap();
        store.enrollments(&alice)
    };
    works(tls_settings(&url, "verify-full", Some(&ca))).expect("verified TLS");
    works(tls_settings(&url, "require", None)).expect("unverified TLS");
    let plain = works(tls_settings(&url, "disable", None)).unwrap_err();
    assert!(plain.to_string().contains("no encryption"), "{plain}");
    // The system's authorities never signed the test authority.
    let unknown = works(tls_settings(&url, "verify-full", None)).unwrap_err();
    assert!(
        unknown
            .to_string()
            .contains("unable to get local issuer certificate"),
        "{unknown}"
    );
    // A certificate for another name is refused even from the right authority.
    let other = server.dir().join("other");
    std::fs::create_dir_all(&other).unwrap();
    let (other_ca, other_cert, other_key) = certificates(&other, "DNS:db.example.org");
    server.require_tls(&other_cert, &other_key);
    let misnamed = works(tls_settings(&url, "verify-full", Some(&other_ca))).unwrap_err();
    assert!(misnamed.to_string().contains("mismatch"), "{misnamed}");
}

/// An address without a host name (hostaddr=) is TCP all the same, never taken for a Unix
/// socket: without a name for TLS it is refused before anything is sent, unless TLS is
/// off, and then the server (which wants TLS) refuses it.
#[test]
fn an_address_alone_still_uses_tls() {
    let server = Postgres::start();
    server.create_database("fleet");
    let dir = server.dir().join("tls");
    std::fs::create_dir_all(&dir).unwrap();
    let (ca, cert, key) = certificates(&dir, "IP:127.0.0.1");
    server.require_tls(&cert, &key);
    let url = format!(
        "hostaddr=127.0.0.1 port={} user=postgres dbname=fleet",
        server.port()
    );
    let alice = UserName::parse("alice").unwrap();
    for tls in ["verify-full", "require"] {
        let error = open(&tls_settings(&url, tls, None), "a")
            .err()
            .expect("TLS without a name is refused");
        assert!(error.to_string().contains("add host=NAME"), "{error}");
    }
    let plain = open(&tls_settings(&url, "disable", None), "a")
        .unwrap()
        .enrollments(&alice)
        .unwrap_err();
    assert!(plain.to_string().contains("no encryption"), "{plain}");
    // With the name, and the address to reach it by, TLS is checked against the name.
    let named = format!("host=db.example.org {url}");
    let misnamed = open(&tls_settings(&named, "verify-full", Some(&ca)), "a")
        .unwrap()
        .enrollments(&alice)
        .unwrap_err();
    assert!(misnamed.to_string().contains("mismatch"), "{misnamed}");
    let works = open(&tls_settings(&named, "require", None), "a");
    assert!(works.unwrap().enrollments(&alice).unwrap().is_empty());
}

/// Each host removes the audit entries it wrote, by its own retention, never another's.
#[test]
fn a_host_prunes_only_its_own_audit_entries() {
    let server = Postgres::start();
    server.create_database("fleet");
    let settings = settings(&server.url("fleet"));
    let a = open(&settings, "host-a").unwrap();
    let b = open(&settings, "host-b").unwrap();
    let event = Event::ConfigReloaded {
        changed: "nothing".into(),
    };
    a.record(1_000, &event).unwrap();
    b.record(1_000, &event).unwrap();
    b.record(5_000, &event).unwrap();
    assert_eq!(a.prune_audit(10_000).unwrap(), 1);
    let hosts: Vec<String> = a
        .audit_tail(10)
        .unwrap()
        .into_iter()
        .map(|row| format!("{}@{}", row.host, row.time))
        .collect();
    assert_eq!(hosts, ["host-b@1000", "host-b@5000"]);
}

/// A file holding the connection string must be root's alone; a password in it is fine.
#[test]
fn a_connection_string_file_must_be_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("pam-mfa-url-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("url");
    std::fs::write(&path, "host=127.0.0.1 port=1 dbname=x password=secret\n").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let text = format!(
        "[store]\nkind = \"postgres\"\nurl_file = \"{}\"\ntls = \"disable\"\n",
        path.display()
    );
    let settings = Config::parse(&text).unwrap().store;
    let error = connection_string(&settings).unwrap_err().to_string();
    assert!(error.contains("readable by no one else"), "{error}");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    if nix::unistd::geteuid().is_root() {
        assert!(
            connection_string(&settings)
                .unwrap()
                .contains("password=secret")
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Of several hosts, the one that accepts writes is used, wherever it is in the list (a
/// standby first is passed over), and the store says which; a string that asks for a
/// read-only server is refused.
#[test]
fn of_several_hosts_the_one_that_accepts_writes_is_used() {
    let primary = Postgres::start();
    primary.create_database("fleet");
    let standby = primary.standby(false);
    let url = Postgres::url_of_all(&[&standby, &primary], "fleet");
    let store = open(&settings(&url), "host-a").unwrap();
    let alice = UserName::parse("alice").unwrap();
    assert!(store.enrollments(&alice).unwrap().is_empty());
    let health = store.health();
    assert!(health.answering);
    assert_eq!(
        health.store,
        format!(
            "PostgreSQL 127.0.0.1:{},127.0.0.1:{} database fleet",
            standby.port(),
            primary.port()
        )
    );
    assert_eq!(
        health.server.unwrap().address,
        format!("127.0.0.1:{}", primary.port())
    );
    assert_eq!(health.last_error, None);

    let error = open(
        &settings(&format!("{url} target_session_attrs=read-only")),
        "a",
    )
    .err()
    .expect("a read-only session is refused");
    assert!(error.to_string().contains("read-only"), "{error}");
}
