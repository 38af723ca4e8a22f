//! Counter-based tokens (HOTP, RFC 4226) through real libpam, on SQLite and on a real
//! PostgreSQL server: codes from `oathtool --hotp` (an independent implementation) get in once
//! each, within the look-ahead; a token pressed too often is brought back in step by two codes
//! in a row at a login or by `mfactl resync`; twenty parallel logins with one code let exactly
//! one in; wrong codes count towards the lockout. Tokens come in from the files the peers' own
//! tools wrote: google-authenticator's counter-based files, pam_oath's users file after real
//! pam_oath logins, and RFC 6030's PSKC examples, plain and encrypted.

use std::path::{Path, PathBuf};
use std::process::Command;

use pam_mfa_tests::{Env, Store, built, random_secret, run_bounded, target_dir};

/// The code of counter value `counter` of the Base32 `secret`, from oathtool.
fn hotp(secret: &str, counter: u64) -> String {
    hotp_digits(&["--base32", secret], counter, 6)
}

/// oathtool's HOTP code of `counter` for the key `key` (its arguments), `digits` long.
fn hotp_digits(key: &[&str], counter: u64, digits: u32) -> String {
    let out = run_bounded(
        Command::new("oathtool")
            .arg("--hotp")
            .arg(format!("--counter={counter}"))
            .arg(format!("--digits={digits}"))
            .args(key),
        "oathtool",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// RFC 4226's secret ("12345678901234567890") in hexadecimal, as pam_oath and PSKC keep it.
const RFC_HEX: &str = "3132333435363738393031323334353637383930";

/// Enrolls `user` with a counter-based token of `secret` through `mfactl enroll --hotp`,
/// confirming with its first code (counter 0).
fn enroll_hotp(env: &Env, user: &str, secret: &str) {
    let out = env.ctl(
        &["enroll", "--hotp", user, "--secret", secret],
        &format!("{}\n", hotp(secret, 0)),
    );
    assert!(out.success, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .contains("Set up a counter-based (HOTP) token for"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("otpauth://hotp/"), "{}", out.stdout);
    assert!(
        out.stdout
            .contains("logins now ask for a code from this token"),
        "{}",
        out.stdout
    );
}

fn status(env: &Env, user: &str) -> String {
    let out = env.ctl(&["status", user], "");
    assert!(out.success, "{}", out.stderr);
    out.stdout
}

#[test]
fn a_hotp_token_gets_in_once_per_code_within_the_look_ahead_and_is_brought_back_in_step() {
    for store in Store::both() {
        eprintln!("store: {}", store.name());
        // Many tries: this test types many wrong codes on purpose.
        let env = store
            .env(
                "hotp_logins",
                "[lockout]\nfailures = 50\n[hotp]\nlook_ahead = 10\n",
            )
            .start();
        let secret = random_secret();
        let code = |counter| hotp(&secret, counter);
        enroll_hotp(&env, "alice", &secret);
        assert!(
            status(&env, "alice").contains("counter-based token, last code used: #0"),
            "{}",
            status(&env, "alice")
        );
        env.login("alice")
            .answer(&code(1))
            .run()
            .expect("PAM_SUCCESS");
        // A used code again: refused as used; the next press gets in.
        env.login("alice")
            .answer(&code(1))
            .answer(&code(2))
            .run()
            .expect("PAM_SUCCESS")
            .shows(
                "ERROR_MSG This code was already used; press the token's button for the next one.",
            );
        // Presses without a login, within the look-ahead (3 to 12): accepted, and the codes
        // skipped stop working, as used ones.
        env.login("alice")
            .answer(&code(9))
            .run()
            .expect("PAM_SUCCESS");
        let skipped = env.login("alice").answer(&code(5)).run();
        assert_ne!(skipped.result(), "PAM_SUCCESS");
        skipped.shows("This code was already used");
        // A code of nothing near: wrong.
        let wrong = env.login("alice").answer(&code(5000)).run();
        assert_ne!(wrong.result(), "PAM_SUCCESS");
        wrong.shows("ERROR_MSG Wrong code. Try again.");
        // Far ahead (60, beyond 10 to 19): refused, and the next code brings it back.
        env.login("alice")
            .answer(&code(60))
            .answer(&code(61))
            .run()
            .expect("PAM_SUCCESS")
            .shows("ERROR_MSG That code is further ahead than logins look. Press the token's button again and type the next code");
        assert!(status(&env, "alice").contains("last code used: #61"));
        // Two codes far ahead but not in a row: nothing.
        let apart = env
            .login("alice")
            .answer(&code(200))
            .answer(&code(202))
            .answer(&code(204))
            .run();
        assert_eq!(apart.result(), "PAM_MAXTRIES", "{:?}", apart.lines);
        // mfactl resync: two codes in a row, asked for on stderr.
        let out = env.ctl(
            &["resync", "alice"],
            &format!("{}\n{}\n", code(300), code(301)),
        );
        assert!(out.success, "{}{}", out.stdout, out.stderr);
        assert!(
            out.stdout
                .contains("alice: the token is back in step (its code #301 was the last used)"),
            "{}",
            out.stdout
        );
        assert!(
            out.stderr
                .contains("Press the token's button and type its code: ")
        );
        env.login("alice")
            .answer(&code(302))
            .run()
            .expect("PAM_SUCCESS");
        let out = env.ctl(
            &["resync", "alice"],
            &format!("{}\n{}\n", code(400), code(402)),
        );
        assert!(!out.success);
        assert!(
            out.stderr.contains("not two codes in a row"),
            "{}",
            out.stderr
        );
        // Both resyncs are in the trail: the login's, with the login, and mfactl's.
        let audit = env.ctl(&["audit", "--event", "token-resynced"], "");
        let resyncs: Vec<&str> = audit
            .stdout
            .lines()
            .filter_map(|line| {
                line.split_once("token brought back in step: ")
                    .map(|(_, what)| what)
            })
            .collect();
        assert_eq!(
            resyncs,
            ["user=alice counter=61", "user=alice counter=301 by uid 0"],
            "{}",
            audit.stdout
        );
        // A user with an authenticator app has no counter to resync.
        env.enroll("bob");
        let out = env.ctl(&["resync", "bob"], &format!("{}\n{}\n", code(1), code(2)));
        assert!(!out.success);
        assert!(out.stderr.contains("time-based codes"), "{}", out.stderr);
        // users and status --json name the kind of each.
        let users = env.ctl(&["--json", "users"], "");
        let users: serde_json::Value = serde_json::from_str(&users.stdout).unwrap();
        let kinds: Vec<(&str, &str)> = users
            .as_array()
            .unwrap()
            .iter()
            .map(|u| (u["user"].as_str().unwrap(), u["token"].as_str().unwrap()))
            .collect();
        assert_eq!(kinds, [("alice", "hotp"), ("bob", "totp")]);
    }
}

#[test]
fn twenty_parallel_logins_with_one_hotp_code_let_exactly_one_in() {
    for store in Store::both() {
        let env = store
            .env(
                "hotp_race",
                "[login]\nmax_tries = 1\n[lockout]\nfailures = 100\n",
            )
            .start();
        let secret = random_secret();
        enroll_hotp(&env, "alice", &secret);
        let code = hotp(&secret, 1);
        let running: Vec<_> = (0..20)
            .map(|_| env.login("alice").answer(&code).spawn())
            .collect();
        let results: Vec<String> = running
            .into_iter()
            .map(|login| login.finish().result().to_owned())
            .collect();
        let wins = results.iter().filter(|r| *r == "PAM_SUCCESS").count();
        assert_eq!(wins, 1, "{}: {results:?}", store.name());
        assert!(
            results
                .iter()
                .all(|r| r == "PAM_SUCCESS" || r == "PAM_MAXTRIES"),
            "{results:?}"
        );
    }
}

#[test]
fn wrong_hotp_codes_count_towards_the_lockout() {
    // The default lockout: 5 wrong codes in 5 minutes, the sixth try locks.
    let env = Env::new().start();
    let secret = random_secret();
    enroll_hotp(&env, "alice", &secret);
    // A code that is none of the token's next codes, however far a login looks.
    let out = run_bounded(
        Command::new("oathtool").args([
            "--hotp",
            "--counter=0",
            "--window=1100",
            "--base32",
            &secret,
        ]),
        "oathtool",
    );
    let codes = String::from_utf8(out.stdout).unwrap();
    let wrong = (0..1000u32)
        .map(|n| format!("{:06}", n * 1001))
        .find(|candidate| !codes.lines().any(|code| code == candidate))
        .unwrap();
    for _ in 0..2 {
        env.login("alice")
            .answer(&wrong)
            .answer(&wrong)
            .answer(&wrong)
            .run();
    }
    env.login("alice")
        .answer(&hotp(&secret, 1))
        .run()
        .expect("PAM_AUTH_ERR")
        .shows("Too many wrong codes");
    // An administrator's resync moves the counter on and leaves the lock as it is.
    let out = env.ctl(
        &["resync", "alice"],
        &format!("{}\n{}\n", hotp(&secret, 500), hotp(&secret, 501)),
    );
    assert!(out.success, "{}", out.stderr);
    env.login("alice")
        .answer(&hotp(&secret, 502))
        .run()
        .expect("PAM_AUTH_ERR")
        .shows("Too many wrong codes");
    assert!(env.ctl(&["unlock", "alice"], "").success);
    env.login("alice")
        .answer(&hotp(&secret, 502))
        .run()
        .expect("PAM_SUCCESS");
}

/// A file `name` in the environment's directory holding `text`, owned by `uid`, mode 0600.
fn private_file(env: &Env, name: &str, text: &str, uid: u32) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = env.dir().join(name);
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::os::unix::fs::chown(&path, Some(uid), Some(uid)).unwrap();
    path
}

/// `mfactl --bus ... import ARGS` with the test users' databases.
fn import(env: &Env, args: &[&dyn AsRef<std::ffi::OsStr>]) -> (bool, String, String) {
    let mut command = Command::new(target_dir().join("mfactl"));
    command.args(["--bus", &env.address, "import"]);
    for arg in args {
        command.arg(arg);
    }
    let out = run_bounded(env.with_test_users(&mut command), "mfactl import");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn counter_based_google_authenticator_files_are_imported_with_their_counters() {
    for store in Store::both() {
        let env = store.env("hotp_ga", "").start();
        // Debian's google-authenticator tool, counter-based, for alice (uid 1000).
        let home = env.dir().join("home-alice");
        std::fs::create_dir_all(&home).unwrap();
        let file = home.join(".google_authenticator");
        let out = run_bounded(
            Command::new("google-authenticator")
                .args([
                    "-c", "-f", "-C", "-w", "3", "-Q", "NONE", "-u", "-e", "2", "-q",
                ])
                .arg("-s")
                .arg(&file),
            "google-authenticator",
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::os::unix::fs::chown(&file, Some(1000), Some(1000)).unwrap();
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(text.contains("\" HOTP_COUNTER 1"), "{text}");
        let secret = text.lines().next().unwrap().to_owned();
        let scratch: Vec<&str> = text
            .lines()
            .filter(|l| l.len() == 8 && l.bytes().all(|b| b.is_ascii_digit()))
            .collect();
        let (ok, stdout, stderr) = import(&env, &[&"--google-authenticator", &file]);
        assert!(ok, "{stdout}{stderr}");
        assert!(stdout.contains("imported 1 enrollment"), "{stdout}");
        // HOTP_COUNTER 1 is the next value the file accepts: counter 0's code is refused,
        // counter 1's gets in.
        let refused = env.login("alice").answer(&hotp(&secret, 0)).run();
        assert_ne!(refused.result(), "PAM_SUCCESS", "{}", store.name());
        env.login("alice")
            .answer(&hotp(&secret, 1))
            .run()
            .expect("PAM_SUCCESS");
        env.login("alice")
            .answer(scratch[1])
            .run()
            .expect("PAM_SUCCESS")
            .shows("1 recovery code is left");
        assert!(status(&env, "alice").contains("counter-based token, last code used: #1"));
    }
}

/// pam_oath.so, as Debian's libpam-oath installs it.
fn pam_oath_module() -> PathBuf {
    pam_mfa_tests::system_library("security/pam_oath.so")
}

/// Logs `user` in through real pam_oath with `usersfile` and `code`; the PAM result.
fn pam_oath_login(dir: &Path, usersfile: &Path, user: &str, code: &str) -> String {
    let confdir = dir.join("oath.d");
    std::fs::create_dir_all(&confdir).unwrap();
    std::fs::write(
        confdir.join("oath"),
        format!(
            "auth required {} usersfile={} window=5\n",
            pam_oath_module().display(),
            usersfile.display()
        ),
    )
    .unwrap();
    let out = run_bounded(
        Command::new(built("pamtest"))
            .arg("--confdir")
            .arg(&confdir)
            .args(["--service", "oath", "--user", user, "--answer", code]),
        "pamtest with pam_oath",
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    stdout
        .lines()
        .rev()
        .find_map(|line| line.strip_prefix("RESULT "))
        .unwrap_or("no result")
        .to_owned()
}

#[test]
fn a_pam_oath_users_file_is_imported_with_the_codes_used_there() {
    for store in Store::both() {
        let env = store.env("hotp_oath", "").start();
        // pam_oath's own file, used by real pam_oath logins first.
        let usersfile = env.dir().join("users.oath");
        std::fs::write(
            &usersfile,
            format!(
                "# pam_oath users\nHOTP\talice\t-\t{RFC_HEX}\nHOTP/T30\tbob\t-\t{RFC_HEX}\n\
                 HOTP\tcarol\t1234\t{RFC_HEX}\n"
            ),
        )
        .unwrap();
        let rfc = |counter| hotp_digits(&[RFC_HEX], counter, 6);
        assert_eq!(
            pam_oath_login(env.dir(), &usersfile, "alice", &rfc(2)),
            "PAM_SUCCESS"
        );
        pam_mfa_tests::away_from_step_end(5);
        let totp_now = totp_hex(RFC_HEX, 0);
        assert_eq!(
            pam_oath_login(env.dir(), &usersfile, "bob", &totp_now),
            "PAM_SUCCESS"
        );
        let written = std::fs::read_to_string(&usersfile).unwrap();
        assert!(written.contains("alice\t-\t3132"), "{written}");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&usersfile, std::fs::Permissions::from_mode(0o600)).unwrap();
        // carol's PIN stops the import, naming the line; nothing goes in.
        let (ok, _, stderr) = import(&env, &[&"--pam-oath", &usersfile]);
        assert!(!ok);
        assert!(
            stderr.contains("users.oath:4: carol has a PIN in the file"),
            "{stderr}"
        );
        assert!(stderr.contains("nothing was imported"), "{stderr}");
        assert!(status(&env, "alice").contains("enrolled:  no"));
        // Unless asked: the others go in.
        let (ok, stdout, stderr) = import(&env, &[&"--pam-oath", &"--skip-invalid", &usersfile]);
        assert!(ok, "{stdout}{stderr}");
        assert!(stdout.contains("imported 2 enrollments"), "{stdout}");
        assert!(stderr.contains("1 entries were left out"), "{stderr}");
        // What pam_oath accepted stays used: alice's counter 2, bob's code of this time step.
        let used = env.login("alice").answer(&rfc(2)).run();
        assert_ne!(used.result(), "PAM_SUCCESS", "{}", store.name());
        used.shows("This code was already used");
        env.login("alice")
            .answer(&rfc(3))
            .run()
            .expect("PAM_SUCCESS");
        let replayed = env.login("bob").answer(&totp_now).run();
        assert_ne!(replayed.result(), "PAM_SUCCESS", "{}", store.name());
        replayed.shows("This code was already used");
        env.login("bob")
            .answer(&totp_hex(RFC_HEX, 1))
            .run()
            .expect("PAM_SUCCESS");
        assert!(status(&env, "bob").contains("30 s, SHA1"));
    }
}

/// oathtool's TOTP code of the hexadecimal `key` for the time step `ahead` steps from now.
fn totp_hex(key: &str, ahead: u64) -> String {
    let at = (pam_mfa_tests::current_step() + ahead) * pam_mfa_tests::PERIOD;
    let out = run_bounded(
        Command::new("oathtool")
            .arg("--totp")
            .arg(format!("--now=@{at}"))
            .arg(key),
        "oathtool",
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[test]
fn tokens_of_rfc_6030s_pskc_examples_are_imported_for_the_users_their_serials_name() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/pskc");
    for store in Store::both() {
        let env = store.env("hotp_pskc", "").start();
        let plain = private_file(
            &env,
            "plain.xml",
            &std::fs::read_to_string(data.join("rfc6030-figure3.xml")).unwrap(),
            0,
        );
        let encrypted = private_file(
            &env,
            "encrypted.xml",
            &std::fs::read_to_string(data.join("rfc6030-figure6.xml")).unwrap(),
            0,
        );
        let to_alice = private_file(&env, "alice.serials", "# serial user\n987654321 alice\n", 0);
        let to_bob = private_file(&env, "bob.serials", "987654321 bob\n", 0);
        let key = private_file(&env, "psk.hex", "12345678901234567890123456789012\n", 0);
        let wrong = private_file(&env, "wrong.hex", "00112233445566778899aabbccddeeff\n", 0);
        let (ok, stdout, stderr) = import(&env, &[&"--pskc", &plain, &"--serials", &to_alice]);
        assert!(ok, "{stdout}{stderr}");
        // The encrypted file: refused with another key, imported with its own.
        let (ok, _, stderr) = import(
            &env,
            &[
                &"--pskc",
                &encrypted,
                &"--serials",
                &to_bob,
                &"--pskc-key",
                &wrong,
            ],
        );
        assert!(!ok);
        assert!(
            stderr.contains("the MAC key cannot be decrypted"),
            "{stderr}"
        );
        let (ok, stdout, stderr) = import(
            &env,
            &[
                &"--pskc",
                &encrypted,
                &"--serials",
                &to_bob,
                &"--pskc-key",
                &key,
            ],
        );
        assert!(ok, "{stdout}{stderr}");
        // Both are RFC 4226's secret, 8 digits, counter 0: the token's next code.
        let rfc = |counter| hotp_digits(&[RFC_HEX], counter, 8);
        env.login("alice")
            .answer(&rfc(0))
            .run()
            .expect("PAM_SUCCESS");
        env.login("bob").answer(&rfc(0)).run().expect("PAM_SUCCESS");
        env.login("bob").answer(&rfc(1)).run().expect("PAM_SUCCESS");
        assert!(
            status(&env, "bob").contains("8 digits, counter-based token, last code used: #1"),
            "{}",
            status(&env, "bob")
        );
    }
}
