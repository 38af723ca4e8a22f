//! The enrollment lifecycle through real libpam, bus and mfad: a user who must use MFA and has
//! no authenticator sets one up during the login, from what the login shows; recovery codes.

use pam_mfa_tests::{Driven, Env, away_from_step_end, code_at, current_step, run_bounded};

/// What an enrollment at login showed: the secret (as typed from the "by hand" line), the URI,
/// and the QR code's lines.
struct Shown {
    secret: String,
    uri: String,
    qr: Vec<String>,
}

fn read_enrollment(lines: &[String]) -> Shown {
    let text = lines.join("\n");
    // A short first line: OpenSSH shows it after "(user@host) ".
    assert_eq!(
        lines[0], "TEXT_INFO Two-factor authentication is required for this",
        "{text}"
    );
    assert!(lines[1].starts_with("account"), "{text}");
    let secret = lines
        .iter()
        .find_map(|line| {
            line.split_once("by hand: ")
                .map(|(_, s)| s.replace(' ', ""))
        })
        .unwrap_or_else(|| panic!("no secret shown:\n{text}"));
    let uri = lines
        .iter()
        .find_map(|line| line.strip_prefix("URI: "))
        .unwrap_or_else(|| panic!("no URI shown:\n{text}"))
        .to_owned();
    let qr: Vec<String> = lines
        .iter()
        .filter(|line| line.contains('█') || line.contains('▀') || line.contains('▄'))
        .cloned()
        .collect();
    assert!(qr.len() > 10, "no QR code shown:\n{text}");
    Shown { secret, uri, qr }
}

/// The recovery codes shown after an enrollment, before the "saved" prompt.
fn read_recovery_codes(lines: &[String]) -> Vec<String> {
    let text = lines.join("\n");
    assert!(
        text.contains("These recovery codes let you log in\nif you lose your phone"),
        "{text}"
    );
    assert_eq!(
        lines.last().unwrap(),
        "PROMPT_ECHO_ON Press Enter once you have saved these codes: "
    );
    lines
        .iter()
        .filter_map(|line| line.strip_prefix("    "))
        .map(str::to_owned)
        .collect()
}

/// Drives a whole enrollment at login, one confirming code; returns the secret, the
/// step its code was used for, and the recovery codes.
fn enroll_at_login(login: &mut Driven) -> (String, u64, Vec<String>) {
    let shown = read_enrollment(&login.prompt());
    away_from_step_end(3);
    let step = current_step();
    login.reply(&code_at(&shown.secret, step));
    let codes = read_recovery_codes(&login.prompt());
    login.reply("");
    (shown.secret, step, codes)
}

fn enforce(env: &Env, user: &str) {
    let out = env.ctl(&["enforce", user, "on"], "");
    assert!(out.success, "{}", out.stderr);
}

#[test]
fn an_enforced_user_enrolls_at_login_then_logs_in_with_codes() {
    let env = Env::new().start();
    enforce(&env, "bob");
    let mut login = env.login("bob").drive();
    let shown = read_enrollment(&login.prompt());
    assert!(shown.uri.starts_with("otpauth://totp/"), "{}", shown.uri);
    assert!(shown.uri.contains(&format!("secret={}", shown.secret)));
    assert!(shown.uri.contains(":bob?"), "{}", shown.uri);
    assert!(
        shown.uri.contains("&issuer=pam-mfa%20on%20"),
        "{}",
        shown.uri
    );
    assert!(
        shown.uri.ends_with("&algorithm=SHA1&digits=6&period=30"),
        "{}",
        shown.uri
    );
    // Every line of the QR code, quiet zone included, fits 77 columns.
    for line in &shown.qr {
        assert!(line.chars().count() <= 77, "{line}");
    }
    // Not active until confirmed: a wrong code is asked again.
    login.reply("000000");
    let again = login.prompt();
    assert!(
        again.iter().any(|l| l.contains("That code does not match")),
        "{again:?}"
    );
    assert_eq!(
        again.last().unwrap(),
        "PROMPT_ECHO_OFF Code shown by the app: "
    );
    let status = env.ctl(&["--json", "status", "bob"], "");
    assert!(
        status.stdout.contains("\"enrolled\": false"),
        "{}",
        status.stdout
    );
    away_from_step_end(3);
    let step = current_step();
    login.reply(&code_at(&shown.secret, step));
    let codes = read_recovery_codes(&login.prompt());
    assert_eq!(codes.len(), 10, "{codes:?}");
    login.reply("");
    login.finish().expect("PAM_SUCCESS");
    let status = env.ctl(&["--json", "status", "bob"], "");
    assert!(
        status.stdout.contains("\"enrolled\": true"),
        "{}",
        status.stdout
    );
    // The next login asks for a code, as for anyone enrolled.
    env.learn_secret("bob", &shown.secret, step);
    env.login("bob")
        .answer(&env.fresh_code("bob"))
        .run()
        .expect("PAM_SUCCESS")
        .shows("PROMPT_ECHO_OFF Verification code: ");
}

#[test]
fn two_successive_codes_confirm_when_configured() {
    let env = Env::new()
        .config("[login]\nenroll_confirm_codes = 2\n")
        .start();
    enforce(&env, "bob");
    let mut login = env.login("bob").drive();
    let shown = read_enrollment(&login.prompt());
    away_from_step_end(3);
    let now = current_step();
    // The app's previous code and its current one: two successive codes, within the window.
    login.reply(&code_at(&shown.secret, now - 1));
    let next = login.prompt();
    assert_eq!(
        next.last().unwrap(),
        "PROMPT_ECHO_OFF Wait for the app to show its next code, then type it: "
    );
    login.reply(&code_at(&shown.secret, now - 1));
    let same = login.prompt();
    assert!(
        same.iter()
            .any(|l| l.contains("That is the same code as before")),
        "{same:?}"
    );
    login.reply(&code_at(&shown.secret, now));
    read_recovery_codes(&login.prompt());
    login.reply("");
    login.finish().expect("PAM_SUCCESS");
}

/// sudo passes PAM_SILENT by default: the QR code and the recovery codes come before questions,
/// so they are shown all the same.
#[test]
fn enrollment_works_under_pam_silent() {
    let env = Env::new().start();
    enforce(&env, "bob");
    let mut login = env.login("bob").silent().drive();
    enroll_at_login(&mut login);
    login.finish().expect("PAM_SUCCESS");
}

#[test]
fn a_login_cut_off_after_the_qr_code_is_finished_at_the_next_login() {
    let env = Env::new().start();
    enforce(&env, "bob");
    let mut first = env.login("bob").drive();
    let shown = read_enrollment(&first.prompt());
    // sshd's LoginGraceTime ends the login here: no answer.
    first.finish().expect("PAM_CONV_ERR");
    let mut second = env.login("bob").drive();
    let lines = second.prompt();
    assert!(
        lines[..2]
            .join("\n")
            .contains("Finish setting up your authenticator app"),
        "{lines:?}"
    );
    let again = read_enrollment(&lines);
    assert_eq!(
        again.secret, shown.secret,
        "the same secret, already scanned"
    );
    away_from_step_end(3);
    second.reply(&code_at(&shown.secret, current_step()));
    read_recovery_codes(&second.prompt());
    second.reply("");
    second.finish().expect("PAM_SUCCESS");
}

/// Makes the pending enrollment of `user` look `seconds` older, as if that time had passed.
fn age_pending_enrollment(env: &Env, user: &str, seconds: i64) {
    let db = rusqlite::Connection::open(env.state_dir().join("mfad.sqlite3")).unwrap();
    db.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
    let changed = db
        .execute(
            "UPDATE enrollments SET created = created - ?2 WHERE username = ?1 AND NOT active",
            rusqlite::params![user, seconds],
        )
        .unwrap();
    assert_eq!(changed, 1);
}

#[test]
fn an_expired_pending_enrollment_is_replaced_by_a_new_secret() {
    let env = Env::new()
        .config("[login]\nenroll_resume_minutes = 10\n")
        .start();
    enforce(&env, "bob");
    let mut first = env.login("bob").drive();
    let old = read_enrollment(&first.prompt());
    first.finish().expect("PAM_CONV_ERR");
    age_pending_enrollment(&env, "bob", 11 * 60);
    let mut second = env.login("bob").drive();
    let new = read_enrollment(&second.prompt());
    assert_ne!(new.secret, old.secret);
    // The abandoned secret is worth nothing now.
    away_from_step_end(3);
    second.reply(&code_at(&old.secret, current_step()));
    let refused = second.prompt();
    assert!(
        refused
            .iter()
            .any(|l| l.contains("That code does not match")),
        "{refused:?}"
    );
    second.reply(&code_at(&new.secret, current_step()));
    read_recovery_codes(&second.prompt());
    second.reply("");
    second.finish().expect("PAM_SUCCESS");
}

#[test]
fn a_recovery_code_logs_in_once_and_says_how_many_are_left() {
    let env = Env::new().start();
    enforce(&env, "bob");
    let mut login = env.login("bob").drive();
    let (_, _, codes) = enroll_at_login(&mut login);
    login.finish().expect("PAM_SUCCESS");
    // Typed as people do: upper case, without dashes.
    let typed = codes[0].to_uppercase().replace('-', "");
    env.login("bob")
        .answer(&typed)
        .run()
        .expect("PAM_SUCCESS")
        .shows("TEXT_INFO Recovery code accepted. 9 recovery codes are left.");
    // Used: said so (not "wrong"), and each of the three tries counts.
    env.login("bob")
        .answer(&codes[0])
        .answer(&codes[0])
        .answer(&codes[0])
        .run()
        .expect("PAM_MAXTRIES")
        .shows(
            "ERROR_MSG This recovery code was already used: each works once. Type another one, \
             or a code from the app.",
        );
    let trail = env.ctl(&["audit", "--user", "bob"], "").stdout;
    assert!(
        trail.contains("recovery code already used, no tries left"),
        "{trail}"
    );
}

#[test]
fn twenty_logins_racing_with_one_recovery_code_let_exactly_one_in() {
    let env = Env::new().start();
    enforce(&env, "bob");
    let mut login = env.login("bob").drive();
    let (_, _, codes) = enroll_at_login(&mut login);
    login.finish().expect("PAM_SUCCESS");
    let racing: Vec<_> = (0..20)
        .map(|_| env.login("bob").answer(&codes[4]).spawn())
        .collect();
    let results: Vec<String> = racing
        .into_iter()
        .map(|login| login.finish().result().to_owned())
        .collect();
    let wins = results.iter().filter(|r| *r == "PAM_SUCCESS").count();
    assert_eq!(wins, 1, "{results:?}");
}

#[test]
fn an_unknown_name_is_never_enrolled_at_login() {
    let env = Env::new().start();
    assert!(env.ctl(&["enforce", "--all", "on"], "").success);
    let login = env.login("zed").run();
    login.expect("PAM_AUTH_ERR");
    assert_eq!(login.prompts(), 0, "{:?}", login.lines);
    let users = env.ctl(&["--json", "users"], "");
    assert!(!users.stdout.contains("zed"), "{}", users.stdout);
}

/// The QR code as the terminal shows it, turned back into pixels, decodes with zbarimg (an
/// independent reader) to exactly the URI shown under it.
#[test]
fn the_qr_code_shown_at_login_decodes_to_the_uri() {
    let env = Env::new().start();
    enforce(&env, "bob");
    let mut login = env.login("bob").drive();
    let shown = read_enrollment(&login.prompt());
    drop(login);
    let image = env.dir().join("qr.pgm");
    write_pgm(&shown.qr, &image);
    let out = run_bounded(
        std::process::Command::new("zbarimg")
            .args(["--raw", "-q"])
            .arg(&image),
        "zbarimg",
    );
    assert!(
        out.status.success(),
        "zbarimg: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim_end(), shown.uri);
}

/// Writes the half-block drawing (drawn for a dark terminal: a block is light) as a grey-scale
/// image, 4 pixels per module, dark modules black.
fn write_pgm(lines: &[String], path: &std::path::Path) {
    const SCALE: usize = 4;
    let rows: Vec<Vec<bool>> = lines
        .iter()
        .flat_map(|line| {
            let cells: Vec<char> = line.chars().collect();
            // Each character is two modules, top and bottom; true is light.
            let top = cells.iter().map(|c| matches!(c, '█' | '▀')).collect();
            let bottom = cells.iter().map(|c| matches!(c, '█' | '▄')).collect();
            [top, bottom]
        })
        .collect();
    let width = rows.iter().map(Vec::len).max().unwrap() * SCALE;
    let height = rows.len() * SCALE;
    let mut pixels = Vec::with_capacity(width * height);
    for row in &rows {
        for _ in 0..SCALE {
            for x in 0..width / SCALE {
                let light = row.get(x).copied().unwrap_or(true);
                pixels.extend(std::iter::repeat_n(if light { 255u8 } else { 0 }, SCALE));
            }
        }
    }
    let mut file = format!("P5\n{width} {height}\n255\n").into_bytes();
    file.extend(pixels);
    std::fs::write(path, file).unwrap();
}
