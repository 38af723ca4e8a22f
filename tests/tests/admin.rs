//! What administrators see: mfactl against a real mfad, and mfad's own checks.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};

use pam_mfa_tests::{
    Env, away_from_step_end, code_at, current_step, random_secret, run_bounded, target_dir,
};

#[test]
fn enroll_shows_a_qr_code_the_secret_and_the_uri_then_confirms() {
    let env = Env::new().start();
    away_from_step_end(5);
    let mut child = Command::new(target_dir().join("mfactl"))
        .args(["--bus", &env.address, "enroll", "alice"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut shown = Vec::new();
    let uri = loop {
        let mut line = String::new();
        assert_ne!(
            stdout.read_line(&mut line).unwrap(),
            0,
            "ended early: {shown:?}"
        );
        shown.push(line.clone());
        if let Some(uri) = line.strip_prefix("URI: ") {
            break uri.trim().to_owned();
        }
    };
    let text = shown.concat();
    assert!(
        text.contains("Set up an authenticator app for alice.\nScan this QR code"),
        "{text}"
    );
    assert!(
        text.contains('█') || text.contains('▀') || text.contains('▄'),
        "no QR code:\n{text}"
    );
    assert!(uri.starts_with("otpauth://totp/"), "{uri}");
    assert!(uri.contains("alice") && uri.contains("issuer="), "{uri}");
    let secret = uri
        .split(['?', '&'])
        .find_map(|part| part.strip_prefix("secret="))
        .unwrap()
        .to_owned();
    let grouped = text
        .lines()
        .find_map(|l| l.strip_prefix("Or the secret, typed by hand: "));
    assert_eq!(grouped.unwrap().replace(' ', ""), secret);
    let code = code_at(&secret, current_step());
    writeln!(child.stdin.take().unwrap(), "{code}").unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    assert!(child.wait().unwrap().success());
    assert!(rest.contains("alice is enrolled"), "{rest}");
    let status = env.ctl(&["status", "alice"], "");
    assert!(
        status.stdout.contains("enrolled:  yes"),
        "{}",
        status.stdout
    );
    assert!(
        status.stdout.contains("6 digits, 30 s, SHA1"),
        "{}",
        status.stdout
    );
}

#[test]
fn a_wrong_confirmation_code_leaves_the_enrollment_inactive() {
    let env = Env::new().start();
    let secret = random_secret();
    let wrong = "000000\n000001\n000002\n";
    let out = env.ctl(&["enroll", "alice", "--secret", &secret], wrong);
    assert!(!out.success);
    assert!(
        out.stderr.contains("the code does not match"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("the new app of alice is not active"),
        "{}",
        out.stderr
    );
    let status = env.ctl(&["--json", "status", "alice"], "");
    assert!(
        status.stdout.contains("\"enrolled\": false"),
        "{}",
        status.stdout
    );
    // Logins go on as for a user without MFA.
    env.login("alice")
        .service("permit-then-mfa")
        .run()
        .expect("PAM_SUCCESS");

    let out = env.ctl(&["enroll", "alice", "--secret", &secret], "");
    assert!(!out.success);
    assert!(out.stderr.contains("no code given"), "{}", out.stderr);
}

#[test]
fn enroll_refuses_what_it_cannot_use() {
    let env = Env::new().start();
    env.enroll("alice");
    let secret = random_secret();
    let cases: [(&[&str], &str); 4] = [
        (
            &["enroll", "zed"],
            "no such user: zed is not in the system user database",
        ),
        (
            &["enroll", "bob", "--secret", "not base32!"],
            "not valid Base32",
        ),
        (
            &["enroll", "bob", "--secret", "GEZDGNBV"],
            "at least 128 bits",
        ),
        (
            &["enroll", "bo b", "--secret", &secret],
            "the user name contains ' '",
        ),
    ];
    for (args, message) in cases {
        let out = env.ctl(args, "123456\n");
        assert!(!out.success, "{args:?} succeeded");
        assert!(out.stderr.contains(message), "{args:?}: {}", out.stderr);
    }
}

#[test]
fn status_users_and_enforce_report_in_text_and_json() {
    let env = Env::new().start();
    env.enroll("alice");
    env.login("alice")
        .answer(&env.fresh_code("alice"))
        .run()
        .expect("PAM_SUCCESS");
    let out = env.ctl(&["enforce", "bob", "on"], "");
    assert!(
        out.stdout
            .contains("bob is not enrolled: the next login sets up an authenticator app"),
        "{}",
        out.stdout
    );

    let table = env.ctl(&["users"], "").stdout;
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].starts_with("USER") && lines[0].contains("LAST USE"),
        "{table}"
    );
    assert!(lines[1].starts_with("alice") && lines[1].contains("yes") && lines[1].contains("UTC"));
    assert!(
        lines[2].starts_with("bob") && lines[2].contains("never"),
        "{table}"
    );

    let json = env.ctl(&["--json", "users"], "").stdout;
    assert!(json.trim_start().starts_with('['), "{json}");
    assert!(
        json.contains("\"user\": \"alice\"") && json.contains("\"user\": \"bob\""),
        "{json}"
    );
    assert!(json.contains("\"enforced_by\": \"user\""), "{json}");

    let out = env.ctl(&["enforce", "--all", "on"], "");
    assert!(
        out.stdout.contains("MFA is now required of every user"),
        "{}",
        out.stdout
    );
    let out = env.ctl(&["enforce", "bob", "off"], "");
    assert!(
        out.stdout
            .contains("stays required because it is enforced for all users"),
        "{}",
        out.stdout
    );
    let json = env.ctl(&["--json", "status", "carol"], "").stdout;
    assert!(
        json.contains("\"enforced\": true") && json.contains("\"all users\""),
        "{json}"
    );

    let out = env.ctl(&["--json", "reset", "--yes", "alice"], "");
    assert!(out.stdout.contains("\"removed\": true"), "{}", out.stdout);
    let out = env.ctl(&["reset", "--yes", "alice"], "");
    assert!(
        out.stdout
            .contains("alice: was not enrolled; nothing to remove"),
        "{}",
        out.stdout
    );
}

#[test]
fn enforce_rejects_bad_words() {
    let env = Env::new().start();
    let out = env.ctl(&["enforce", "bob", "yes"], "");
    assert!(!out.success);
    assert!(
        out.stderr.contains("expected on or off, not \"yes\""),
        "{}",
        out.stderr
    );
    let out = env.ctl(&["enforce", "on"], "");
    assert!(
        out.stderr.contains("usage: mfactl enforce USER on|off"),
        "{}",
        out.stderr
    );
}

#[test]
fn mfactl_says_when_mfad_is_not_running() {
    let env = Env::new().start();
    env.stop_daemon();
    let out = env.ctl(&["users"], "");
    assert!(!out.success);
    assert!(out.stderr.contains("mfad is not running"), "{}", out.stderr);
    assert!(out.stderr.contains("start mfad"), "{}", out.stderr);
    let out = run_bounded(
        Command::new(target_dir().join("mfactl")).args([
            "--bus",
            "unix:path=/nonexistent/bus",
            "users",
        ]),
        "mfactl",
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot connect to the D-Bus bus at unix:path=/nonexistent/bus"),
        "{stderr}"
    );
}

#[test]
fn the_state_directory_and_database_are_private() {
    let env = Env::new().start();
    env.enroll("alice");
    let mode =
        |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&env.state_dir()), 0o700);
    for entry in std::fs::read_dir(env.state_dir()).unwrap() {
        let path = entry.unwrap().path();
        assert_eq!(mode(&path), 0o600, "{}", path.display());
    }
}

fn mfad(args: &[&str]) -> (bool, String, String) {
    let out = run_bounded(Command::new(target_dir().join("mfad")).args(args), "mfad");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_config_names_the_key_and_line() {
    let env = Env::new().start();
    let good = env.dir().join("good.toml");
    std::fs::write(&good, "[totp]\nwindow = 2\n").unwrap();
    let (ok, stdout, _) = mfad(&["--check-config", "--config", good.to_str().unwrap()]);
    assert!(ok);
    assert!(stdout.contains("configuration is valid"), "{stdout}");

    let bad = env.dir().join("bad.toml");
    std::fs::write(&bad, "[totp]\nwindow = 2\ndigitz = 6\n").unwrap();
    let (ok, _, stderr) = mfad(&["--check-config", "--config", bad.to_str().unwrap()]);
    assert!(!ok);
    assert!(
        stderr.contains("line 3") && stderr.contains("digitz"),
        "{stderr}"
    );

    // The daemon itself refuses to start on it, and says why.
    let (ok, _, stderr) = mfad(&["--config", bad.to_str().unwrap(), "--bus", &env.address]);
    assert!(!ok);
    assert!(
        stderr.contains("not a valid mfad configuration"),
        "{stderr}"
    );
}

#[test]
fn a_second_daemon_cannot_take_the_name() {
    let env = Env::new().start();
    let config = env.dir().join("other.toml");
    let state = env.dir().join("other-state");
    std::fs::write(
        &config,
        format!(
            "state_dir = \"{}\"\n{}",
            state.display(),
            pam_mfa_tests::sealing_setting(&env.sealing_key_file())
        ),
    )
    .unwrap();
    let (ok, _, stderr) = mfad(&["--config", config.to_str().unwrap(), "--bus", &env.address]);
    assert!(!ok);
    assert!(stderr.contains("cannot own org.pam_mfa.Mfad1"), "{stderr}");
    env.enroll("alice");
}

#[test]
fn import_enrolls_many_users_at_once_or_none() {
    let env = Env::new().start();
    env.enroll("alice");
    let (bob, carol) = (random_secret(), random_secret());
    let file = env.dir().join("import.txt");

    std::fs::write(
        &file,
        format!("# migrated\nbob {bob}\ncarol {carol}\nalice {bob}\n"),
    )
    .unwrap();
    let out = env.ctl(&["import", file.to_str().unwrap()], "");
    assert!(!out.success);
    assert!(
        out.stderr
            .contains("alice is already enrolled; nothing was imported"),
        "{}",
        out.stderr
    );
    let status = env.ctl(&["--json", "status", "bob"], "").stdout;
    assert!(status.contains("\"enrolled\": false"), "{status}");

    std::fs::write(&file, format!("bob {bob}\ncarol\n")).unwrap();
    let out = env.ctl(&["import", file.to_str().unwrap()], "");
    assert!(
        out.stderr
            .contains("import.txt:2: expected a user name and a Base32 secret"),
        "{}",
        out.stderr
    );

    std::fs::write(&file, format!("bob {bob}\ncarol {carol}\n")).unwrap();
    let out = env.ctl(&["import", file.to_str().unwrap()], "");
    assert!(out.success, "{}", out.stderr);
    assert!(
        out.stdout.contains("imported 2 enrollments"),
        "{}",
        out.stdout
    );
    away_from_step_end(5);
    let code = code_at(&carol, current_step());
    env.login("carol").answer(&code).run().expect("PAM_SUCCESS");
    let out = env.ctl(&["import", "-"], &format!("dave {}\n", random_secret()));
    assert!(
        out.stdout.contains("imported 1 enrollment from -"),
        "{}",
        out.stdout
    );
}

/// A reset cannot be undone: on a terminal it asks first, and only "y" goes on; a script
/// (no terminal) must say --yes, and without it nothing changes.
#[test]
fn a_reset_is_confirmed_first() {
    use pam_mfa_tests::pty::Terminal;
    let env = Env::new().start();
    env.enroll("alice");
    let enrolled = |env: &Env| {
        env.ctl(&["--json", "status", "alice"], "")
            .stdout
            .contains("\"enrolled\": true")
    };
    assert!(enrolled(&env));

    let piped = env.ctl(&["reset", "alice"], "y\n");
    assert_eq!(piped.code, Some(2), "{}", piped.stderr);
    assert!(
        piped.stderr.contains("mfactl reset --yes alice"),
        "{}",
        piped.stderr
    );
    assert!(enrolled(&env), "nothing changed without --yes");

    let reset_on_terminal = |answer: &str| {
        let mut terminal = Terminal::spawn(
            std::process::Command::new(pam_mfa_tests::built("mfactl")).args([
                "--bus",
                &env.address,
                "reset",
                "alice",
            ]),
        );
        terminal.expect("This cannot be undone. [y/N] ");
        terminal.send(answer);
        terminal.finish()
    };
    let declined = reset_on_terminal("n");
    assert!(
        declined.screen.contains("nothing done"),
        "{}",
        declined.screen
    );
    assert!(enrolled(&env), "declined: still enrolled");
    let confirmed = reset_on_terminal("y");
    assert_eq!(confirmed.status, 0, "{}", confirmed.screen);
    assert!(
        confirmed
            .screen
            .contains("authenticator app, recovery codes"),
        "{}",
        confirmed.screen
    );
    assert!(!enrolled(&env), "confirmed: removed");
}
