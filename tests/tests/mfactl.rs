//! What scripts and administrators get from mfactl: one JSON document per command, clear
//! errors for unknown names, and a refusal to talk to a bus name root does not own.

use std::process::Command;

use pam_mfa_tests::fake::FakeBus;
use pam_mfa_tests::{
    Env, away_from_step_end, built, code_at, current_step, random_secret, run_bounded,
};

/// The one JSON document `stdout` must hold.
fn one_document(stdout: &str) -> serde_json::Value {
    let documents: Vec<serde_json::Value> = serde_json::Deserializer::from_str(stdout)
        .into_iter()
        .collect::<Result<_, _>>()
        .unwrap_or_else(|error| panic!("stdout is not JSON ({error}):\n{stdout}"));
    assert_eq!(documents.len(), 1, "stdout:\n{stdout}");
    documents.into_iter().next().unwrap()
}

#[test]
fn status_of_a_name_the_system_does_not_know_says_so() {
    let env = Env::new().start();
    let out = env.ctl(&["status", "zed"], "");
    assert!(!out.success);
    assert_eq!(out.stdout, "");
    assert_eq!(
        out.stderr,
        "mfactl: no such user: zed is not in the system user database\n"
    );

    let out = env.ctl(&["--json", "status", "zed"], "");
    assert!(!out.success);
    let error = &one_document(&out.stdout)["error"];
    assert_eq!(error["name"], "org.pam_mfa.Mfad1.Error.InvalidArgument");
    assert_eq!(
        error["message"],
        "no such user: zed is not in the system user database"
    );
}

#[test]
fn json_enroll_prints_one_document_and_talks_to_the_person_on_stderr() {
    let env = Env::new().start();
    let secret = random_secret();
    away_from_step_end(5);
    let code = code_at(&secret, current_step());
    let out = env.ctl(
        &["--json", "enroll", "alice", "--secret", &secret],
        &format!("{code}\n"),
    );
    assert!(out.success, "{}", out.stderr);
    let report = one_document(&out.stdout);
    assert_eq!(report["user"], "alice");
    assert_eq!(report["secret"], secret.as_str());
    assert_eq!(report["enrolled"], true);
    let uri = report["uri"].as_str().unwrap();
    assert!(
        uri.starts_with("otpauth://totp/") && uri.contains(&secret),
        "{uri}"
    );
    assert!(out.stderr.contains("Scan this QR code"), "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!("URI: {uri}")),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("Code shown by the app, to confirm: "),
        "{}",
        out.stderr
    );

    // Three wrong codes: still one document, the error's.
    let out = env.ctl(
        &["--json", "enroll", "bob", "--secret", &random_secret()],
        "000000\n000001\n000002\n",
    );
    assert!(!out.success);
    let error = &one_document(&out.stdout)["error"];
    assert_eq!(error["name"], "org.pam_mfa.Mfad1.Error.WrongCode");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.ends_with("the new app of bob is not active"),
        "{message}"
    );
}

#[test]
fn every_json_error_is_one_document() {
    let env = Env::new().start();
    let cases: [(&[&str], &str, &str); 4] = [
        (
            &["--json", "enforce", "bob", "yes"],
            "usage",
            "expected on or off, not \"yes\"",
        ),
        (
            &["--json", "enroll", "zed"],
            "org.pam_mfa.Mfad1.Error.InvalidArgument",
            "no such user: zed",
        ),
        (
            &["--json", "import", "/nonexistent/list"],
            "input",
            "cannot read /nonexistent/list",
        ),
        (&["--json", "reset"], "usage", "USER"),
    ];
    for (args, name, message) in cases {
        let out = env.ctl(args, "");
        assert!(!out.success, "{args:?} succeeded");
        let error = &one_document(&out.stdout)["error"];
        assert_eq!(error["name"], name, "{args:?}");
        assert!(
            error["message"].as_str().unwrap().contains(message),
            "{args:?}: {error}"
        );
        assert!(out.stderr.contains(message), "{args:?}: {}", out.stderr);
    }

    env.stop_daemon();
    let out = env.ctl(&["--json", "users"], "");
    assert!(!out.success);
    let error = &one_document(&out.stdout)["error"];
    assert_eq!(error["name"], "org.freedesktop.DBus.Error.NameHasNoOwner");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .starts_with("mfad is not running on this bus"),
        "{error}"
    );
}

#[test]
fn mfactl_sends_nothing_to_a_bus_name_a_user_owns() {
    let env = Env::new().start();
    let bus = FakeBus::start(env.dir(), 1000);
    let secret = random_secret();
    let out = bus.ctl(&["import", "-"], &format!("alice {secret}\n"));
    assert!(!out.success);
    assert!(
        out.stderr.contains("belongs to uid 1000, not to root"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("nothing was sent to it"),
        "{}",
        out.stderr
    );

    let out = bus.ctl(&["status", "alice"], "");
    assert!(!out.success);
    assert!(out.stderr.contains("uid 1000"), "{}", out.stderr);

    let out = bus.ctl(&["--json", "status", "alice"], "");
    let error = &one_document(&out.stdout)["error"];
    assert_eq!(error["name"], "org.pam_mfa.Mfad1.Error.NotRoot");

    assert_eq!(bus.calls_after_probe(), Vec::<String>::new());
}

#[test]
fn a_relative_state_dir_is_refused_with_its_line() {
    let dir = std::env::temp_dir().join(format!("pam-mfa-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("mfad.toml");
    std::fs::write(&config, "# moved\n\nstate_dir = \"var/lib/pam-mfa\"\n").unwrap();
    let out = run_bounded(
        Command::new(built("mfad")).args(["--check-config", "--config", config.to_str().unwrap()]),
        "mfad --check-config",
    );
    let _ = std::fs::remove_dir_all(&dir);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("line 3"), "{stderr}");
    assert!(
        stderr.contains("state_dir must be an absolute path, not \"var/lib/pam-mfa\""),
        "{stderr}"
    );
}

/// mfactl(1): 2 when the command line is wrong, whether clap or the command finds the mistake;
/// 1 when a well-formed command fails.
#[test]
fn a_wrong_command_line_exits_2_and_a_failed_command_1() {
    let env = Env::new().start();
    for args in [
        &["enforce", "bob"][..],
        &["enforce", "bob", "maybe"],
        &["audit", "--since", "1x"],
        &["enforce", "--all"],
        &["no-such-command"],
    ] {
        let out = env.ctl(args, "");
        assert_eq!(out.code, Some(2), "mfactl {args:?}: {}", out.stderr);
        assert!(!out.stderr.is_empty(), "mfactl {args:?} says why");
    }
    let refused = env.ctl(&["unlock", "al ice"], "");
    assert_eq!(refused.code, Some(1), "{}", refused.stderr);
}

/// `mfactl health` names the store and says that it answers, with exit status 0 (a store that
/// does not answer, and exit 1: tests/failover.rs); for administrators only.
#[test]
fn health_names_the_store_and_says_it_answers() {
    let env = Env::new().start();
    let out = env.ctl(&["health"], "");
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let file = env.state_dir().join("mfad.sqlite3");
    assert!(
        out.stdout
            .contains(&format!("store:      SQLite {}\n", file.display())),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("answering:  yes\n"), "{}", out.stdout);
    assert!(
        out.stdout.contains("last error: none since mfad started"),
        "{}",
        out.stdout
    );
    let document = one_document(&env.ctl(&["--json", "health"], "").stdout);
    assert_eq!(document["server"], serde_json::Value::Null);
    assert_eq!(document["answering"], true);

    let refused = env.ctl_as(Some(1000), &["health"], "");
    assert_eq!(refused.code, Some(1));
    assert!(
        refused.stderr.contains("only root may administer pam-mfa"),
        "{}",
        refused.stderr
    );
}
