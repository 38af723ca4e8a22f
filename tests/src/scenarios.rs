//! Login scenarios run in containers against pam_mfa and, side by side, against the peer
//! modules google-authenticator-libpam (with its recommended `DISALLOW_REUSE` and
//! `RATE_LIMIT 3 30`) and pam_oath, each in the same kind of container: the same Debian base,
//! users, sshd settings and PAM files, with the module where pam_mfa.so goes
//! (`containers/test/peer.Dockerfile`). The container tests require every scenario to pass for
//! pam_mfa; `cargo run -p pam-mfa-tests --bin parity` prints the whole table.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::container::{Container, PASSWORD, TEST_IMAGE};
use crate::pty::Session;
pub use crate::wrong_code;
use crate::{away_from_step_end, code_at, current_step, hotp_at, random_secret};

/// A second-factor module, in its container.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Module {
    PamMfa,
    GoogleAuthenticator,
    Oath,
}

impl Module {
    pub const ALL: [Module; 3] = [Module::PamMfa, Module::GoogleAuthenticator, Module::Oath];

    pub fn name(self) -> &'static str {
        match self {
            Module::PamMfa => "pam_mfa",
            Module::GoogleAuthenticator => "google-authenticator",
            Module::Oath => "pam_oath",
        }
    }

    fn image(self) -> &'static str {
        match self {
            Module::PamMfa => TEST_IMAGE,
            Module::GoogleAuthenticator => "pam-mfa-peer:google-authenticator",
            Module::Oath => "pam-mfa-peer:oath",
        }
    }

    /// A container with this module in the login programs' PAM stacks.
    pub fn start(self) -> Container {
        Container::start(self.image())
    }

    /// Gives `user` an app with `secret`; returns the user's recovery codes (pam_oath has
    /// none). For pam_mfa and google-authenticator, from the same ~/.google_authenticator
    /// file: mfactl imports it, its scratch codes becoming recovery codes.
    pub fn enroll(self, container: &Container, user: &str, secret: &str) -> Vec<String> {
        if self == Module::Oath {
            container.run_with_input(
                "root",
                "cat >> /etc/users.oath",
                &format!("HOTP/T30/6 {user} - {}\n", hex_of(secret)),
            );
            return Vec::new();
        }
        let scratch: Vec<String> = (0..5).map(|_| scratch_code()).collect();
        let file = format!(
            "{secret}\n\" RATE_LIMIT 3 30\n\" DISALLOW_REUSE\n\" TOTP_AUTH\n{}\n",
            scratch.join("\n")
        );
        container.run_with_input(user, "umask 077; cat > ~/.google_authenticator", &file);
        if self == Module::PamMfa {
            let path = format!("/home/{user}/.google_authenticator");
            container.run(
                "root",
                &["mfactl", "import", "--google-authenticator", &path],
            );
        }
        scratch
    }

    /// Gives `user` a counter-based (HOTP) token of `secret` whose next code is counter 1's:
    /// google-authenticator's counter-based file (`HOTP_COUNTER 1`, imported by mfactl for
    /// pam_mfa), or a `HOTP` line of pam_oath's users file (counter 0, so 0 and 1 in its
    /// window).
    pub fn enroll_hotp(self, container: &Container, user: &str, secret: &str) {
        if self == Module::Oath {
            container.run_with_input(
                "root",
                "cat >> /etc/users.oath",
                &format!("HOTP {user} - {} 0\n", hex_of(secret)),
            );
            return;
        }
        let file = format!("{secret}\n\" HOTP_COUNTER 1\n");
        container.run_with_input(user, "umask 077; cat > ~/.google_authenticator", &file);
        if self == Module::PamMfa {
            let path = format!("/home/{user}/.google_authenticator");
            container.run(
                "root",
                &["mfactl", "import", "--google-authenticator", &path],
            );
        }
    }

    /// How this module's code question ends, for `user`.
    pub fn code_question(self, user: &str) -> String {
        match self {
            Module::Oath => format!("for `{user}': "),
            _ => "code: ".to_owned(),
        }
    }
}

/// The Base32 `secret` in hexadecimal, as pam_oath's users file holds secrets.
fn hex_of(secret: &str) -> String {
    totp_rs::Secret::try_from_base32(secret)
        .expect("Base32 secret")
        .as_bytes()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// An 8-digit scratch code as google-authenticator makes them (10000000 to 99999999: it reads
/// a typed code as a number, so a leading zero would not match).
fn scratch_code() -> String {
    let secret = random_secret();
    let digits = secret.bytes().map(|byte| char::from(b'0' + byte % 10));
    let first = char::from(b'1' + secret.as_bytes()[0] % 9);
    std::iter::once(first)
        .chain(digits.skip(1).take(7))
        .collect()
}

/// How a scenario went for one module.
#[derive(Debug)]
pub enum Outcome {
    /// With what was counted, where the scenario counts.
    Pass(String),
    /// What happened instead, and the terminal's text.
    Fail(String),
    /// The module has no such feature.
    NotSupported(&'static str),
}

/// One scenario: what is done and what counts as a pass.
pub struct Scenario {
    pub name: &'static str,
    pub run: fn(Module) -> Outcome,
}

/// The scenarios of the side-by-side table, in its order.
pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "ssh: password, then the right code",
        run: right_code_over_ssh,
    },
    Scenario {
        name: "ssh: a wrong code is refused",
        run: wrong_code_over_ssh,
    },
    Scenario {
        name: "ssh: a code used before is refused",
        run: used_code_over_ssh,
    },
    Scenario {
        name: "ssh: 20 parallel logins with one code, exactly one in",
        run: concurrent_replay_over_ssh,
    },
    Scenario {
        name: "ssh: a recovery code logs in once",
        run: recovery_code_over_ssh,
    },
    Scenario {
        name: "ssh: after 6 wrong codes the right code is refused",
        run: lockout_over_ssh,
    },
    Scenario {
        name: "ssh: first login sets up the app (QR code, secret, recovery codes)",
        run: enrollment_over_ssh,
    },
    Scenario {
        name: "su - alice (as bob): password, then the code",
        run: su_with_code,
    },
    Scenario {
        name: "su: first login sets up the app",
        run: enrollment_through_su,
    },
    Scenario {
        name: "sudo (PAM_SILENT): a wrong code, then the right one",
        run: sudo_with_code,
    },
    Scenario {
        name: "login on a terminal: password, then the code",
        run: login_with_code,
    },
    Scenario {
        name: "ssh, counter-based token (HOTP): a code logs in once, the next one too",
        run: hotp_over_ssh,
    },
    Scenario {
        name: "ssh, HOTP: 20 parallel logins with one code, exactly one in",
        run: hotp_concurrent_replay_over_ssh,
    },
    Scenario {
        name: "ssh, HOTP: a token pressed 50 times without a login comes back by two codes in a row",
        run: hotp_resync_over_ssh,
    },
    Scenario {
        name: "import: a google-authenticator HOTP file and a pam_oath users file keep their used codes",
        run: hotp_imports,
    },
    Scenario {
        name: "FreeRADIUS (rlm_pam): password and code in one answer, the password checked by pam_unix",
        run: one_prompt_over_radius,
    },
];

/// What the logged-in side prints: seen only when the login succeeded.
const MARK: &str = "in-42";
const COMMAND: &str = "echo in-$((6*7))";

/// A person at the terminal: the password at a password question, the next of `codes` at a
/// code question (the module's, or a text that came with it); gives up when none is left.
pub fn person(codes: Vec<String>) -> impl FnMut(&str) -> Option<String> {
    let mut codes = codes.into_iter();
    move |fresh: &str| {
        let question = fresh.rsplit('\n').next().unwrap_or("").to_lowercase();
        if question.contains("code") || question.contains("one-time") {
            codes.next()
        } else if question.contains("password") {
            Some(PASSWORD.to_owned())
        } else {
            None
        }
    }
}

/// `ssh USER@container COMMAND` with keyboard-interactive only, one password try.
pub fn ssh(
    container: &Container,
    user: &str,
    respond: &mut dyn FnMut(&str) -> Option<String>,
) -> Session {
    crate::sshd::ssh_with(
        container.ssh_port,
        user,
        COMMAND,
        &[
            "-o",
            "PreferredAuthentications=keyboard-interactive",
            "-o",
            "NumberOfPasswordPrompts=1",
        ],
        respond,
    )
}

/// Counts one more arrival at `arrived`, then waits until `all` have arrived (at most 10 s:
/// a login that never gets there holds up none of the others for long).
pub fn meet(arrived: &AtomicUsize, all: usize) {
    arrived.fetch_add(1, Ordering::SeqCst);
    let waiting = std::time::Instant::now();
    while arrived.load(Ordering::SeqCst) < all
        && waiting.elapsed() < std::time::Duration::from_secs(10)
    {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// The login got in: the command ran and ended well.
pub fn logged_in(session: &Session) -> bool {
    session.status == 0 && session.screen.contains(MARK)
}

/// The login asked for a code, was given it, and did not get in.
fn refused_at_code(module: Module, user: &str, session: &Session) -> bool {
    session.screen.contains(&module.code_question(user)) && !logged_in(session)
}

fn fail(what: &str, session: &Session) -> Outcome {
    Outcome::Fail(format!("{what}; the terminal showed:\n{}", session.screen))
}

/// Enrolls alice with a new secret and returns it with her recovery codes.
fn alice(module: Module, container: &Container) -> (String, Vec<String>) {
    let secret = random_secret();
    let recovery = module.enroll(container, "alice", &secret);
    (secret, recovery)
}

/// A code of `secret` that is valid for some seconds yet.
pub fn fresh_code(secret: &str) -> String {
    away_from_step_end(5);
    code_at(secret, current_step())
}

fn right_code_over_ssh(module: Module) -> Outcome {
    let container = module.start();
    let (secret, _) = alice(module, &container);
    let session = ssh(&container, "alice", &mut person(vec![fresh_code(&secret)]));
    if !session.screen.contains(&module.code_question("alice")) {
        return fail("no code was asked", &session);
    }
    if !logged_in(&session) {
        return fail("the right code did not log in", &session);
    }
    Outcome::Pass(String::new())
}

fn wrong_code_over_ssh(module: Module) -> Outcome {
    let container = module.start();
    let (secret, _) = alice(module, &container);
    let session = ssh(&container, "alice", &mut person(vec![wrong_code(&secret)]));
    if !refused_at_code(module, "alice", &session) {
        return fail("a wrong code was not asked for and refused", &session);
    }
    Outcome::Pass(String::new())
}

fn used_code_over_ssh(module: Module) -> Outcome {
    let container = module.start();
    let (secret, _) = alice(module, &container);
    let code = fresh_code(&secret);
    let first = ssh(&container, "alice", &mut person(vec![code.clone()]));
    if !logged_in(&first) {
        return fail("the first login with the code failed", &first);
    }
    let again = ssh(&container, "alice", &mut person(vec![code]));
    if !refused_at_code(module, "alice", &again) {
        return fail("the same code was not asked for and refused again", &again);
    }
    Outcome::Pass(String::new())
}

fn concurrent_replay_over_ssh(module: Module) -> Outcome {
    let container = module.start();
    let (secret, _) = alice(module, &container);
    // All 20 log in within this step and the next, inside every module's window.
    away_from_step_end(25);
    race(&container, code_at(&secret, current_step()))
}

/// 20 logins of alice over ssh with `code`, answered at once; passes when exactly one got in
/// and every one was asked for the code.
fn race(container: &Container, code: String) -> Outcome {
    let inside = Arc::new(AtomicUsize::new(0));
    let asked = Arc::new(AtomicUsize::new(0));
    std::thread::scope(|scope| {
        for _ in 0..20 {
            let code = code.clone();
            let (inside, asked) = (inside.clone(), asked.clone());
            scope.spawn(move || {
                let mut person = person(vec![code]);
                let mut respond = |fresh: &str| {
                    let answer = person(fresh)?;
                    if answer != PASSWORD {
                        // As an attacker would: every login waits at its code question until
                        // all are there, then all answer at once.
                        meet(&asked, 20);
                    }
                    Some(answer)
                };
                let session = ssh(container, "alice", &mut respond);
                if logged_in(&session) {
                    inside.fetch_add(1, Ordering::SeqCst);
                }
            });
        }
    });
    let (inside, asked) = (inside.load(Ordering::SeqCst), asked.load(Ordering::SeqCst));
    let counted = format!("{inside} of 20 in, {asked} asked for the code");
    // Each of the 20 must have reached the module's question: fewer logins race fewer times.
    match (inside, asked) {
        (1, 20) => Outcome::Pass(counted),
        _ => Outcome::Fail(counted),
    }
}

fn recovery_code_over_ssh(module: Module) -> Outcome {
    let container = module.start();
    let (_, recovery) = alice(module, &container);
    let Some(code) = recovery.first() else {
        return Outcome::NotSupported("no recovery codes");
    };
    let first = ssh(&container, "alice", &mut person(vec![code.clone()]));
    if !logged_in(&first) {
        return fail("the recovery code did not log in", &first);
    }
    let again = ssh(&container, "alice", &mut person(vec![code.clone()]));
    if !refused_at_code(module, "alice", &again) {
        return fail(
            "the recovery code was not asked for and refused again",
            &again,
        );
    }
    Outcome::Pass(String::new())
}

fn lockout_over_ssh(module: Module) -> Outcome {
    if module == Module::Oath {
        return Outcome::NotSupported("no lockout or rate limit");
    }
    let container = module.start();
    let (secret, _) = alice(module, &container);
    // Wrong codes at every code question, over as many logins as it takes to give 6.
    let asked = Arc::new(AtomicUsize::new(0));
    for _ in 0..6 {
        if asked.load(Ordering::SeqCst) >= 6 {
            break;
        }
        let wrong = wrong_code(&secret);
        let mut respond = {
            let asked = asked.clone();
            let mut person = person(vec![wrong; 6]);
            move |fresh: &str| {
                let answer = person(fresh)?;
                if answer != PASSWORD {
                    if asked.load(Ordering::SeqCst) >= 6 {
                        return None;
                    }
                    asked.fetch_add(1, Ordering::SeqCst);
                }
                Some(answer)
            }
        };
        let session = ssh(&container, "alice", &mut respond);
        if logged_in(&session) {
            return fail("a wrong code logged in", &session);
        }
    }
    // Some wrong codes must have reached the module (a rate limit may stop asking early).
    let asked = asked.load(Ordering::SeqCst);
    if asked < 3 {
        return Outcome::Fail(format!("only {asked} wrong codes were asked for"));
    }
    let session = ssh(&container, "alice", &mut person(vec![fresh_code(&secret)]));
    if logged_in(&session) {
        return fail("the right code logged in after 6 wrong ones", &session);
    }
    Outcome::Pass(format!("{asked} wrong codes asked for"))
}

/// Answers a first login: the password, the code of the secret shown with the question, Enter
/// once the recovery codes are shown; `recovery` gets those codes.
fn enrolling_person<'a>(
    secret_seen: &'a mut Option<String>,
    recovery: &'a mut Vec<String>,
) -> impl FnMut(&str) -> Option<String> + 'a {
    move |fresh: &str| {
        if fresh.ends_with("Code shown by the app: ") {
            let secret = crate::secret_shown(fresh)?;
            let code = fresh_code(&secret);
            *secret_seen = Some(secret);
            return Some(code);
        }
        if fresh.ends_with("Press Enter once you have saved these codes: ") {
            *recovery = fresh
                .lines()
                .filter_map(|line| line.strip_prefix("    "))
                .map(str::to_owned)
                .collect();
            return Some(String::new());
        }
        if fresh.to_lowercase().trim_end().ends_with("password:") {
            return Some(PASSWORD.to_owned());
        }
        None
    }
}

/// Checks a first login that set up the app: logged in, a QR code and 10 recovery codes shown,
/// and the app's next code logs in (`again`).
fn check_enrolled(
    session: &Session,
    secret: Option<String>,
    recovery: &[String],
    again: impl FnOnce(String) -> Session,
) -> Outcome {
    let Some(secret) = secret else {
        return fail("no secret was shown with a question", session);
    };
    if !session.screen.contains("otpauth://totp/") || !session.screen.contains("█") {
        return fail("no QR code and URI were shown", session);
    }
    if !logged_in(session) {
        return fail("the first login did not log in", session);
    }
    if recovery.len() != 10 {
        return fail("10 recovery codes were not shown", session);
    }
    // The next code of the app (the next time step: the first one was used).
    let step = current_step() + 1;
    let wait = (step * crate::PERIOD).saturating_sub(crate::now()) + 1;
    std::thread::sleep(std::time::Duration::from_secs(wait));
    let next = again(code_at(&secret, current_step()));
    if !logged_in(&next) {
        return fail(
            "the app set up at the first login gave no code that logs in",
            &next,
        );
    }
    Outcome::Pass(String::new())
}

/// A login program run in a container: [`ssh`], [`su`].
type Login = fn(&Container, &str, &mut dyn FnMut(&str) -> Option<String>) -> Session;

/// The first login of `user`, of whom MFA is required, through `login` sets up the app.
fn first_login_sets_up_the_app(module: Module, user: &str, login: Login) -> Outcome {
    if module != Module::PamMfa {
        return Outcome::NotSupported("no enrollment at login");
    }
    let container = module.start();
    container.run("root", &["mfactl", "enforce", user, "on"]);
    let (mut secret, mut recovery) = (None, Vec::new());
    let session = login(
        &container,
        user,
        &mut enrolling_person(&mut secret, &mut recovery),
    );
    check_enrolled(&session, secret, &recovery, |code| {
        login(&container, user, &mut person(vec![code]))
    })
}

fn enrollment_over_ssh(module: Module) -> Outcome {
    first_login_sets_up_the_app(module, "bob", ssh)
}

/// `su - USER -c COMMAND` run by bob at a terminal in the container.
pub fn su(
    container: &Container,
    user: &str,
    respond: &mut dyn FnMut(&str) -> Option<String>,
) -> Session {
    container
        .terminal("bob", &["su", "-", user, "-c", COMMAND])
        .converse(respond)
}

fn su_with_code(module: Module) -> Outcome {
    let container = module.start();
    let (secret, _) = alice(module, &container);
    let session = su(&container, "alice", &mut person(vec![fresh_code(&secret)]));
    if !session.screen.contains(&module.code_question("alice")) {
        return fail("no code was asked", &session);
    }
    if !logged_in(&session) {
        return fail("su with the right code failed", &session);
    }
    let refused = su(&container, "alice", &mut person(vec![wrong_code(&secret)]));
    if !refused_at_code(module, "alice", &refused) {
        return fail("su did not ask for and refuse a wrong code", &refused);
    }
    Outcome::Pass(String::new())
}

fn enrollment_through_su(module: Module) -> Outcome {
    first_login_sets_up_the_app(module, "carol", su)
}

/// `sudo -u bob sh -c COMMAND` run by `user` at a terminal in the container.
pub fn sudo(
    container: &Container,
    user: &str,
    respond: &mut dyn FnMut(&str) -> Option<String>,
) -> Session {
    container
        .terminal(user, &["sudo", "-u", "bob", "sh", "-c", COMMAND])
        .converse(respond)
}

fn sudo_with_code(module: Module) -> Outcome {
    let container = module.start();
    let (secret, _) = alice(module, &container);
    let wrong = wrong_code(&secret);
    let right = fresh_code(&secret);
    let session = sudo(&container, "alice", &mut person(vec![wrong, right]));
    // Both codes were asked for: the wrong one refused, the right one let sudo run.
    let questions = session
        .screen
        .matches(&module.code_question("alice"))
        .count();
    if questions < 2 || !logged_in(&session) {
        return fail(
            "sudo did not ask for a code twice and run after the right one",
            &session,
        );
    }
    Outcome::Pass(String::new())
}

fn login_with_code(module: Module) -> Outcome {
    let container = module.start();
    let (secret, _) = alice(module, &container);
    let mut terminal = container.terminal("root", &["login", "alice"]);
    terminal.expect("Password: ");
    terminal.send(PASSWORD);
    terminal.expect(&module.code_question("alice"));
    terminal.send(&fresh_code(&secret));
    terminal.expect("$ ");
    terminal.send(&format!("{COMMAND}; exit"));
    let session = terminal.finish();
    // The command as typed shows "in-$((6*7))"; only the shell's output shows the mark.
    if !logged_in(&session) {
        return fail("login with the right code did not give a shell", &session);
    }
    Outcome::Pass(String::new())
}

fn hotp_over_ssh(module: Module) -> Outcome {
    let container = module.start();
    let secret = random_secret();
    module.enroll_hotp(&container, "alice", &secret);
    let first = ssh(&container, "alice", &mut person(vec![hotp_at(&secret, 1)]));
    if !logged_in(&first) {
        return fail("the token's next code did not log in", &first);
    }
    let again = ssh(&container, "alice", &mut person(vec![hotp_at(&secret, 1)]));
    if !refused_at_code(module, "alice", &again) {
        return fail("the same code was not asked for and refused again", &again);
    }
    let next = ssh(&container, "alice", &mut person(vec![hotp_at(&secret, 2)]));
    if !logged_in(&next) {
        return fail("the code after it did not log in", &next);
    }
    Outcome::Pass(String::new())
}

fn hotp_concurrent_replay_over_ssh(module: Module) -> Outcome {
    let container = module.start();
    let secret = random_secret();
    module.enroll_hotp(&container, "alice", &secret);
    race(&container, hotp_at(&secret, 1))
}

fn hotp_resync_over_ssh(module: Module) -> Outcome {
    if module != Module::PamMfa {
        return Outcome::NotSupported("no resynchronisation");
    }
    let container = module.start();
    let secret = random_secret();
    module.enroll_hotp(&container, "alice", &secret);
    // Counter 51 is beyond the look-ahead: refused with a line that asks for the next code,
    // which gets in.
    let codes = vec![hotp_at(&secret, 51), hotp_at(&secret, 52)];
    let session = ssh(&container, "alice", &mut person(codes));
    if !session.screen.contains("type the next code") || !logged_in(&session) {
        return fail("two codes in a row far ahead did not log in", &session);
    }
    let next = ssh(&container, "alice", &mut person(vec![hotp_at(&secret, 53)]));
    if !logged_in(&next) {
        return fail("the token was not back in step", &next);
    }
    Outcome::Pass(String::new())
}

fn hotp_imports(module: Module) -> Outcome {
    if module != Module::PamMfa {
        return Outcome::NotSupported("no import");
    }
    let container = module.start();
    // alice's google-authenticator file takes counter 5 next; bob's pam_oath line says his
    // code of counter 3 was the last one used.
    let (alice, bob) = (random_secret(), random_secret());
    let file = format!("{alice}\n\" HOTP_COUNTER 5\n");
    container.run_with_input("alice", "umask 077; cat > ~/.google_authenticator", &file);
    let line = format!(
        "HOTP\tbob\t-\t{}\t3\t{}\t2026-12-07T12:00:00L\n",
        hex_of(&bob),
        hotp_at(&bob, 3)
    );
    container.run_with_input("root", "umask 077; cat > /root/users.oath", &line);
    container.run(
        "root",
        &[
            "mfactl",
            "import",
            "--google-authenticator",
            "/home/alice/.google_authenticator",
        ],
    );
    container.run(
        "root",
        &["mfactl", "import", "--pam-oath", "/root/users.oath"],
    );
    for (user, secret, used, next) in [("alice", &alice, 4, 5), ("bob", &bob, 3, 4)] {
        let session = ssh(&container, user, &mut person(vec![hotp_at(secret, used)]));
        if !refused_at_code(module, user, &session) {
            return fail("a code used before the import was not refused", &session);
        }
        let session = ssh(&container, user, &mut person(vec![hotp_at(secret, next)]));
        if !logged_in(&session) {
            return fail("the next code after the import did not log in", &session);
        }
    }
    Outcome::Pass(String::new())
}

/// FreeRADIUS in the container, its rlm_pam sending each request's password to the PAM service
/// `radiusd`: `auth_line` (the module, set for one answer), then pam_unix with
/// `try_first_pass`. FreeRADIUS runs PAM as root (Debian runs it as freerad), as pam_mfa.so
/// needs: mfad answers other callers only about their own account.
fn start_radius(container: &Container, auth_line: &str) {
    let script = format!(
        "set -e
cd /etc/freeradius/3.0
sed -i -e '/^[[:space:]]*user = /d' -e '/^[[:space:]]*group = /d' \\
    -e 's/^\\([[:space:]]*reject_delay = \\).*/\\10/' radiusd.conf
rm -f mods-enabled/* sites-enabled/*
ln -s ../mods-available/files mods-enabled/files
ln -s ../mods-available/pam mods-enabled/pam
printf 'server pam {{\\n listen {{\\n  type = auth\\n  ipaddr = 127.0.0.1\\n  port = 1812\\n }}\\n authorize {{\\n  files\\n }}\\n authenticate {{\\n  Auth-Type PAM {{\\n   pam\\n  }}\\n }}\\n}}\\n' > sites-enabled/pam
sed -i '1i alice\\tAuth-Type := PAM' mods-config/files/authorize
printf '{auth_line}\\nauth required pam_unix.so try_first_pass\\naccount required pam_unix.so\\n' > /etc/pam.d/radiusd
mkdir -p /var/run/freeradius
freeradius
for i in $(seq 50); do
  radtest -t pap nobody-here x 127.0.0.1:1812 0 testing123 >/dev/null 2>&1 || true
  grep -q 'Ready to process' /var/log/freeradius/radius.log 2>/dev/null && exit 0
  sleep 0.1
done
echo 'FreeRADIUS did not start' >&2; exit 1"
    );
    container.run("root", &["sh", "-c", &script]);
}

/// Whether FreeRADIUS accepted alice with the one password `password`.
fn radius_accepts(container: &Container, password: &str) -> bool {
    let out = container.exec(
        "root",
        &[
            "radtest",
            "-t",
            "pap",
            "alice",
            password,
            "127.0.0.1:1812",
            "0",
            "testing123",
        ],
    );
    out.status.success() && String::from_utf8_lossy(&out.stdout).contains("Access-Accept")
}

fn one_prompt_over_radius(module: Module) -> Outcome {
    let line = match module {
        Module::PamMfa => "auth required pam_mfa.so forward_pass",
        Module::GoogleAuthenticator => "auth required pam_google_authenticator.so forward_pass",
        Module::Oath => {
            return Outcome::NotSupported(
                "its PIN is its own, in its users file: the account's password is not handed on",
            );
        }
    };
    let container = module.start();
    let (secret, _) = alice(module, &container);
    start_radius(&container, line);
    let code = fresh_code(&secret);
    let joined = format!("{PASSWORD}{code}");
    if !radius_accepts(&container, &joined) {
        return Outcome::Fail("the password followed by the right code was rejected".into());
    }
    if radius_accepts(&container, &joined) {
        return Outcome::Fail("the same code was accepted again".into());
    }
    let next = code_at(&secret, current_step() + 1);
    if radius_accepts(&container, &format!("wrong{next}")) {
        return Outcome::Fail("a wrong password with a right code was accepted".into());
    }
    if radius_accepts(&container, &format!("{PASSWORD}{}", wrong_code(&secret))) {
        return Outcome::Fail("the password with a wrong code was accepted".into());
    }
    Outcome::Pass(String::new())
}
