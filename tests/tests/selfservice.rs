//! Users managing their own app with mfactl, and administrators (root or the admin group):
//! real mfactl processes running as those users, against a real mfad and bus.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};

use pam_mfa_tests::{Env, away_from_step_end, code_at, current_step, target_dir, wait_bounded};

const ALICE: u32 = 1000;
const BOB: u32 = 1001;
const CAROL: u32 = 1002;
const DAVE: u32 = 1003;

/// `mfactl --json ARGS` running as `uid`, stopped at its code prompt.
struct Enrolling {
    child: Child,
    secret: String,
}

fn start_enroll(env: &Env, uid: Option<u32>, args: &[&str]) -> Enrolling {
    start_enroll_with(env, uid, args, None)
}

/// As [`start_enroll`], answering mfactl's first question (the proof that replacing an app
/// needs) with `proof`.
fn start_enroll_with(env: &Env, uid: Option<u32>, args: &[&str], proof: Option<&str>) -> Enrolling {
    use std::os::unix::process::CommandExt;
    let mut command = Command::new(target_dir().join("mfactl"));
    command
        .args(["--bus", &env.address, "--json"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(uid) = uid {
        command.uid(uid).gid(uid);
    }
    let mut child = command.spawn().unwrap();
    if let Some(proof) = proof {
        writeln!(child.stdin.as_mut().unwrap(), "{proof}").unwrap();
    }
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut shown = String::new();
    let uri = loop {
        let mut line = String::new();
        assert_ne!(
            stderr.read_line(&mut line).unwrap(),
            0,
            "ended early: {shown}"
        );
        shown.push_str(&line);
        if let Some(uri) = line.strip_prefix("URI: ") {
            break uri.trim().to_owned();
        }
    };
    // Keep reading stderr (the prompt) so that mfactl never blocks on it.
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
    let secret = uri
        .split(['?', '&'])
        .find_map(|part| part.strip_prefix("secret="))
        .unwrap()
        .to_owned();
    Enrolling { child, secret }
}

impl Enrolling {
    /// Types the app's current code; returns mfactl's JSON report.
    fn confirm(mut self) -> (String, u64, serde_json::Value) {
        away_from_step_end(3);
        let step = current_step();
        let mut stdin = self.child.stdin.take().unwrap();
        writeln!(stdin, "{}", code_at(&self.secret, step)).unwrap();
        drop(stdin);
        let out = wait_bounded(self.child, "mfactl enroll");
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(out.status.success(), "{report}");
        (self.secret, step, report)
    }
}

fn codes_of(report: &serde_json::Value) -> Vec<String> {
    report["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|code| code.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn a_user_sets_up_their_own_app_with_mfactl() {
    let env = Env::new().start();
    let (secret, step, report) = start_enroll(&env, Some(BOB), &["enroll"]).confirm();
    assert_eq!(report["user"], "bob");
    assert_eq!(codes_of(&report).len(), 10);
    let status = env.ctl_as(Some(BOB), &["--json", "status"], "");
    let status: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(status["user"], "bob");
    assert_eq!(status["enrolled"], true);
    assert_eq!(status["recovery_codes_left"], 10);
    env.learn_secret("bob", &secret, step);
    env.login("bob")
        .answer(&env.fresh_code("bob"))
        .run()
        .expect("PAM_SUCCESS");
}

#[test]
fn a_new_phone_replaces_the_old_one_only_once_confirmed() {
    let env = Env::new().start();
    let old = env.enroll("alice");
    // Replacing an app needs a code from it: a session alone does not swap the second factor.
    let out = env.ctl_as(Some(ALICE), &["enroll"], "000000\n");
    assert!(!out.success);
    assert!(
        out.stderr.contains("the code does not match"),
        "{}",
        out.stderr
    );
    let out = env.ctl_as(Some(ALICE), &["enroll"], "");
    assert!(
        out.stderr.contains("no code given: nothing was changed"),
        "{}",
        out.stderr
    );
    let replacing = start_enroll_with(
        &env,
        Some(ALICE),
        &["enroll"],
        Some(&env.fresh_code("alice")),
    );
    assert_ne!(replacing.secret, old);
    // Until the new phone is confirmed, the old one logs in.
    env.login("alice")
        .answer(&env.fresh_code("alice"))
        .run()
        .expect("PAM_SUCCESS");
    let status = env.ctl(&["--json", "status", "alice"], "");
    assert!(
        status.stdout.contains("\"pending\": true"),
        "{}",
        status.stdout
    );
    let (new, step, _) = replacing.confirm();
    // The old phone's next code is refused; the new phone's works.
    let old_code = env.fresh_code("alice");
    env.login("alice")
        .answer(&old_code)
        .answer(&old_code)
        .answer(&old_code)
        .run()
        .expect("PAM_MAXTRIES");
    env.learn_secret("alice", &new, step);
    env.login("alice")
        .answer(&env.fresh_code("alice"))
        .run()
        .expect("PAM_SUCCESS");
}

/// A lost phone: a recovery code authorizes the new one.
#[test]
fn a_recovery_code_lets_a_user_replace_a_lost_phone() {
    let env = Env::new().start();
    let (_, _, report) = start_enroll(&env, Some(BOB), &["enroll"]).confirm();
    let codes = codes_of(&report);
    let replacing = start_enroll_with(&env, Some(BOB), &["enroll"], Some(&codes[0]));
    let (new, step, report) = replacing.confirm();
    assert_eq!(codes_of(&report).len(), 10, "new recovery codes");
    env.learn_secret("bob", &new, step);
    env.login("bob")
        .answer(&env.fresh_code("bob"))
        .run()
        .expect("PAM_SUCCESS");
    // The old recovery codes went with the old phone.
    env.login("bob")
        .answer(&codes[1])
        .answer(&codes[2])
        .answer(&codes[3])
        .run()
        .expect("PAM_MAXTRIES");
}

#[test]
fn new_recovery_codes_replace_the_old_ones() {
    let env = Env::new().start();
    let (secret, step, report) = start_enroll(&env, Some(ALICE), &["enroll"]).confirm();
    let old = codes_of(&report);
    env.learn_secret("alice", &secret, step);
    let out = env.ctl_as(
        Some(ALICE),
        &["--json", "recovery-codes"],
        &format!("{}\n", env.fresh_code("alice")),
    );
    assert!(out.success, "{}{}", out.stdout, out.stderr);
    let new = codes_of(&serde_json::from_str(&out.stdout).unwrap());
    assert_eq!(new.len(), 10);
    assert!(new.iter().all(|code| !old.contains(code)));
    env.login("alice")
        .answer(&old[0])
        .answer(&old[1])
        .answer(&old[2])
        .run()
        .expect("PAM_MAXTRIES");
    env.login("alice")
        .answer(&new[0])
        .run()
        .expect("PAM_SUCCESS");
    // A wrong code changes nothing.
    let out = env.ctl_as(Some(ALICE), &["recovery-codes"], "000000\n");
    assert!(!out.success);
    assert!(
        out.stderr.contains("the recovery codes are unchanged"),
        "{}",
        out.stderr
    );
    env.login("alice")
        .answer(&new[1])
        .run()
        .expect("PAM_SUCCESS");
}

#[test]
fn disabling_is_refused_while_mfa_is_required_and_needs_a_code_otherwise() {
    let env = Env::new().start();
    let (_, _, report) = start_enroll(&env, Some(ALICE), &["enroll"]).confirm();
    let codes = codes_of(&report);
    assert!(env.ctl(&["enforce", "alice", "on"], "").success);
    let out = env.ctl_as(Some(ALICE), &["disable"], &format!("{}\n", codes[0]));
    assert!(!out.success);
    assert!(
        out.stderr
            .contains("MFA is required of alice (enforced for user)"),
        "{}",
        out.stderr
    );
    assert!(env.ctl(&["enforce", "alice", "off"], "").success);
    let out = env.ctl_as(Some(ALICE), &["disable"], "000000\n");
    assert!(!out.success, "a wrong code disables nothing");
    let out = env.ctl_as(Some(ALICE), &["disable"], &format!("{}\n", codes[0]));
    assert!(out.success, "{}", out.stderr);
    assert!(
        out.stdout
            .contains("the next login asks for no second factor"),
        "{}",
        out.stdout
    );
    let login = env.login("alice").service("permit-then-mfa").run();
    login.expect("PAM_SUCCESS");
    assert_eq!(login.prompts(), 0);
}

#[test]
fn a_user_cannot_act_on_another_account() {
    let env = Env::new().start();
    env.enroll("alice");
    let attempts: [&[&str]; 5] = [
        &["status", "alice"],
        &["reset", "--yes", "alice"],
        &["enroll", "alice"],
        &["enforce", "alice", "off"],
        &["users"],
    ];
    for args in attempts {
        let out = env.ctl_as(Some(BOB), args, "");
        assert!(!out.success, "bob ran {args:?}");
        assert!(
            out.stderr.contains("only root may administer pam-mfa"),
            "{args:?}: {}",
            out.stderr
        );
    }
    let status = env.ctl(&["--json", "status", "alice"], "");
    assert!(
        status.stdout.contains("\"enrolled\": true"),
        "{}",
        status.stdout
    );
    // What bob can do is about bob only.
    let own = env.ctl_as(Some(BOB), &["--json", "status"], "");
    assert!(own.stdout.contains("\"user\": \"bob\""), "{}", own.stdout);
}

#[test]
fn members_of_the_admin_group_administer_and_others_do_not() {
    let env = Env::new()
        .config("admin_group = \"mfa-admins\"\n")
        .group("mfa-admins", 2000, &["carol"])
        .start();
    env.enroll("alice");
    env.enroll("carol");
    let out = env.ctl_as(Some(DAVE), &["reset", "--yes", "alice"], "");
    assert!(!out.success);
    assert!(
        out.stderr
            .contains("only root and members of the group mfa-admins may administer pam-mfa"),
        "{}",
        out.stderr
    );
    let out = env.ctl_as(Some(CAROL), &["reset", "--yes", "alice"], "");
    assert!(out.success, "{}", out.stderr);
    assert!(
        out.stdout.contains("alice: authenticator app"),
        "{}",
        out.stdout
    );
    // An administrator may reset their own account.
    let out = env.ctl_as(Some(CAROL), &["reset", "--yes", "carol"], "");
    assert!(out.success, "{}", out.stderr);
}

#[test]
fn after_a_reset_the_user_enrolls_a_new_phone_at_the_next_login() {
    let env = Env::new().start();
    let old = env.enroll("alice");
    assert!(env.ctl(&["enforce", "alice", "on"], "").success);
    let out = env.ctl(&["reset", "--yes", "alice"], "");
    assert!(
        out.stdout
            .contains("the next login sets up an authenticator app"),
        "{}",
        out.stdout
    );
    let mut login = env.login("alice").drive();
    let shown = login.prompt();
    let secret = shown
        .iter()
        .find_map(|line| {
            line.split_once("by hand: ")
                .map(|(_, s)| s.replace(' ', ""))
        })
        .unwrap();
    assert_ne!(secret, old, "a new secret");
    away_from_step_end(3);
    let step = current_step();
    login.reply(&code_at(&secret, step));
    login.prompt();
    login.reply("");
    login.finish().expect("PAM_SUCCESS");
    env.learn_secret("alice", &secret, step);
    env.login("alice")
        .answer(&env.fresh_code("alice"))
        .run()
        .expect("PAM_SUCCESS");
}

/// `mfactl enroll --qr-png` writes the same QR code as a PNG image, private to its owner, which
/// zbarimg (an independent reader) decodes to exactly the URI shown.
#[test]
fn the_png_qr_code_decodes_to_the_uri() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new().start();
    let image = env.dir().join("alice.png");
    let enrolling = start_enroll(
        &env,
        None,
        &["enroll", "alice", "--qr-png", image.to_str().unwrap()],
    );
    let (_, _, report) = enrolling.confirm();
    let mode = std::fs::metadata(&image).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let out = pam_mfa_tests::run_bounded(
        Command::new("zbarimg").args(["--raw", "-q"]).arg(&image),
        "zbarimg",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim_end(),
        report["uri"].as_str().unwrap()
    );
    // An existing file is never overwritten.
    let again = env.ctl(
        &["enroll", "alice", "--qr-png", image.to_str().unwrap()],
        "",
    );
    assert!(!again.success);
    assert!(
        again.stderr.contains("it must not exist yet"),
        "{}",
        again.stderr
    );
}

/// A ~/.google_authenticator file made by Debian's google-authenticator tool, owned by `uid`.
fn google_authenticator_file(env: &Env, uid: u32, extra: &[&str]) -> (std::path::PathBuf, String) {
    let home = env.dir().join(format!("home-{uid}"));
    std::fs::create_dir_all(&home).unwrap();
    let file = home.join(".google_authenticator");
    let out = pam_mfa_tests::run_bounded(
        Command::new("google-authenticator")
            .args([
                "-t", "-d", "-f", "-r", "3", "-R", "30", "-w", "3", "-e", "5",
            ])
            .args(["-C", "-q", "-Q", "NONE", "-s"])
            .arg(&file)
            .args(extra),
        "google-authenticator",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::os::unix::fs::chown(&file, Some(uid), Some(uid)).unwrap();
    let text = std::fs::read_to_string(&file).unwrap();
    (file, text)
}

/// The code of `secret` now, for a time step of `period` seconds, from oathtool.
fn oathtool(secret: &str, period: u32) -> String {
    let out = pam_mfa_tests::run_bounded(
        Command::new("oathtool")
            .arg("--totp")
            .arg(format!("--time-step-size={period}s"))
            .args(["--base32", secret]),
        "oathtool",
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[test]
fn google_authenticator_files_are_imported_with_their_codes_and_scratch_codes() {
    let env = Env::new().start();
    let (alice_file, alice_text) = google_authenticator_file(&env, ALICE, &[]);
    let (bob_file, bob_text) = google_authenticator_file(&env, BOB, &["-S", "60"]);
    // The classic 80-bit secret of older versions, in the same layout.
    let carol_file = env.dir().join("carol.google_authenticator");
    std::fs::write(
        &carol_file,
        "JBSWY3DPEHPK3PXP\n\" RATE_LIMIT 3 30\n\" WINDOW_SIZE 17\n\" TOTP_AUTH\n12345678\n",
    )
    .unwrap();
    std::os::unix::fs::chown(&carol_file, Some(CAROL), Some(CAROL)).unwrap();
    set_mode(&carol_file, 0o600);
    let mut command = Command::new(target_dir().join("mfactl"));
    command
        .args(["--bus", &env.address, "import", "--google-authenticator"])
        .args([&alice_file, &bob_file, &carol_file]);
    let out = pam_mfa_tests::run_bounded(env.with_test_users(&mut command), "mfactl import");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("imported 3 enrollments"), "{stdout}");
    assert!(
        stderr.contains("warning: carol: the secret has 80 bits"),
        "{stderr}"
    );
    let secret = |text: &str| text.lines().next().unwrap().to_owned();
    let scratch = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|line| line.len() == 8 && line.bytes().all(|b| b.is_ascii_digit()))
            .map(str::to_owned)
            .collect()
    };
    away_from_step_end(3);
    env.login("alice")
        .answer(&oathtool(&secret(&alice_text), 30))
        .run()
        .expect("PAM_SUCCESS");
    env.login("bob")
        .answer(&oathtool(&secret(&bob_text), 60))
        .run()
        .expect("PAM_SUCCESS");
    env.login("carol")
        .answer(&oathtool("JBSWY3DPEHPK3PXP", 30))
        .run()
        .expect("PAM_SUCCESS");
    let codes = scratch(&alice_text);
    assert_eq!(codes.len(), 5);
    env.login("alice")
        .answer(&codes[2])
        .run()
        .expect("PAM_SUCCESS")
        .shows("Recovery code accepted. 4 recovery codes are left.");
    env.login("carol")
        .answer("12345678")
        .run()
        .expect("PAM_SUCCESS");
}

fn set_mode(path: &std::path::Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Files google-authenticator itself would not trust are not imported: a symbolic link (bob's
/// pointing at a file alice owns would import alice with bob's secret), and a file others may
/// read or write.
#[test]
fn google_authenticator_files_others_could_change_are_refused() {
    let env = Env::new().start();
    let (alice_file, _) = google_authenticator_file(&env, ALICE, &[]);
    let link = env.dir().join("bob.google_authenticator");
    std::os::unix::fs::symlink(&alice_file, &link).unwrap();
    let (open_file, _) = google_authenticator_file(&env, BOB, &[]);
    set_mode(&open_file, 0o644);
    for (file, says) in [
        (&link, "a symbolic link is not followed"),
        (&open_file, "can be read or written by others (mode 644)"),
    ] {
        let mut command = Command::new(target_dir().join("mfactl"));
        command
            .args(["--bus", &env.address, "import", "--google-authenticator"])
            .arg(file);
        let out = pam_mfa_tests::run_bounded(env.with_test_users(&mut command), "mfactl");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(stderr.contains(says), "{stderr}");
    }
    let users = env.ctl(&["--json", "users"], "");
    assert!(!users.stdout.contains("alice"), "{}", users.stdout);
    assert!(!users.stdout.contains("bob"), "{}", users.stdout);
}
