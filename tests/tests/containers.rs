//! The container tier: pam-mfa installed in a Debian container built here from nothing
//! (`containers/`), with real sshd, su, sudo and login, real users and groups, the system bus
//! at its standard path and mfad under the container's supervisor; driven from the host over
//! SSH and through `docker exec` on a pseudo-terminal.
//!
//! Where no Docker engine answers, every test here is reported as ignored, with the reason;
//! run with `--ignored` there, they fail.

use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use libtest_mimic::{Arguments, Failed, Trial};
use pam_mfa_api::UNAVAILABLE_NOTICE;
use pam_mfa_tests::container::{Container, PASSWORD, TEST_IMAGE};
use pam_mfa_tests::pty::Terminal;
use pam_mfa_tests::readme;
use pam_mfa_tests::scenarios::{
    self, Module, Outcome, SCENARIOS, fresh_code, logged_in, meet, person, ssh, su, sudo,
    wrong_code,
};
use pam_mfa_tests::{current_step, random_secret};

fn main() -> ExitCode {
    let args = Arguments::from_args();
    let mut trials: Vec<Trial> = SCENARIOS
        .iter()
        .map(|scenario| {
            let run = scenario.run;
            Trial::test(format!("pam_mfa: {}", scenario.name), move || {
                match run(Module::PamMfa) {
                    Outcome::Pass(_) => Ok(()),
                    Outcome::Fail(why) => Err(Failed::from(why)),
                    Outcome::NotSupported(why) => Err(Failed::from(format!(
                        "pam_mfa said it has no such feature: {why}"
                    ))),
                }
            })
        })
        .collect();
    let own: [(&str, fn()); 10] = [
        ("ssh: public key, then the code", public_key_then_code),
        ("ssh: the code only", code_only),
        ("ssh: a locked account is told until when", locked_account),
        (
            "mfad stopped or frozen: refused with one line",
            mfad_stopped_or_frozen,
        ),
        (
            "sudo: a group rule asks its members only",
            group_rule_under_sudo,
        ),
        (
            "mfad killed in a login loop: nothing is lost",
            mfad_killed_in_a_login_loop,
        ),
        ("system bus restarted: mfad comes back", bus_restarted),
        (
            "package: README's steps as written: install, enroll, enable, sshd, the console \
             way back in, backup, remove, purge, restore",
            package_lifecycle,
        ),
        (
            "package: fleet mode under the hardened unit, with its drop-in",
            package_fleet_mode,
        ),
        (
            "package: codes by email through Postfix's sendmail under the hardened unit, with \
             its drop-in",
            package_email_delivery,
        ),
    ];
    trials.extend(own.into_iter().map(|(name, test)| {
        Trial::test(format!("pam_mfa: {name}"), move || {
            test();
            Ok(())
        })
    }));
    if let Some(why) = pam_mfa_tests::container::unavailable() {
        eprintln!("container tests skipped: {why}");
        trials = trials
            .into_iter()
            .map(|trial| trial.with_ignored_flag(true))
            .collect();
    }
    libtest_mimic::run(&args, trials).exit_code()
}

fn start() -> (Container, String) {
    let container = Container::start(TEST_IMAGE);
    let secret = random_secret();
    Module::PamMfa.enroll(&container, "alice", &secret);
    (container, secret)
}

fn assert_in(session: &pam_mfa_tests::pty::Session) {
    assert!(logged_in(session), "{}", session.screen);
}

/// The login asked for the code, and got in.
fn assert_in_with_code(session: &pam_mfa_tests::pty::Session) {
    assert!(
        session.screen.contains("Verification code: "),
        "{}",
        session.screen
    );
    assert_in(session);
}

fn assert_out(session: &pam_mfa_tests::pty::Session, line: &str) {
    assert!(session.screen.contains(line), "{}", session.screen);
    assert!(!session.screen.contains("in-42"), "{}", session.screen);
    assert_ne!(session.status, 0, "{}", session.screen);
}

/// Puts `stack` in place of the code lines of /etc/pam.d/sshd, adds `config` to sshd's and
/// restarts sshd (the supervisor starts it again).
fn reconfigure_sshd(container: &Container, stack: &str, config: &str) {
    let script = format!(
        "set -e; sed -i '/^@include common-auth/d; /pam_mfa.so/d' /etc/pam.d/sshd; \
         sed -i '1i {stack}' /etc/pam.d/sshd; \
         printf '%s\\n' '{config}' > /etc/ssh/sshd_config.d/40-test.conf; sshd -t; \
         pkill -x sshd"
    );
    container.run("root", &["sh", "-c", &script]);
    container.wait_for_log("Server listening on 0.0.0.0", 2);
}

fn public_key_then_code() {
    let (container, secret) = start();
    // examples/pam.d/sshd-publickey-then-code and pam-mfa-publickey.conf.
    reconfigure_sshd(
        &container,
        "auth required pam_mfa.so notrequired=success",
        "AuthenticationMethods publickey,keyboard-interactive",
    );
    let dir = tempdir();
    let key = dir.join("id");
    pam_mfa_tests::sshd::keygen(&key);
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    container.run_with_input(
        "alice",
        "mkdir -p ~/.ssh && cat > ~/.ssh/authorized_keys",
        &public,
    );
    let key = key.to_str().unwrap();
    let with_key = [
        "-i",
        key,
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "PreferredAuthentications=publickey,keyboard-interactive",
    ];
    let run = |options: &[&str], codes: Vec<String>| {
        pam_mfa_tests::sshd::ssh_with(
            container.ssh_port,
            "alice",
            "echo in-$((6*7))",
            options,
            &mut person(codes),
        )
    };
    let session = run(&with_key, vec![fresh_code(&secret)]);
    assert!(
        session.screen.contains("Verification code: "),
        "{}",
        session.screen
    );
    assert!(!session.screen.contains("Password"), "{}", session.screen);
    assert_in(&session);
    // The key without the code, and the code without the key, are refused.
    assert_out(
        &run(&with_key, vec![wrong_code(&secret); 3]),
        "Permission denied",
    );
    let keyless = run(
        &["-o", "PubkeyAuthentication=no"],
        vec![fresh_code(&secret)],
    );
    assert_out(&keyless, "Permission denied");
    std::fs::remove_dir_all(dir).unwrap();
}

fn code_only() {
    let (container, secret) = start();
    // examples/pam.d/sshd-code-only.
    reconfigure_sshd(&container, "auth required pam_mfa.so", "");
    let session = ssh(&container, "alice", &mut person(vec![fresh_code(&secret)]));
    assert!(!session.screen.contains("Password"), "{}", session.screen);
    assert_in(&session);
}

fn locked_account() {
    let (container, secret) = start();
    // 6 wrong codes: 3 questions in each of two logins.
    for _ in 0..2 {
        let wrong = wrong_code(&secret);
        ssh(&container, "alice", &mut person(vec![wrong; 3]));
    }
    let session = ssh(&container, "alice", &mut person(vec![fresh_code(&secret)]));
    assert_out(
        &session,
        "Too many wrong codes: this account is locked until",
    );
    container.run("root", &["mfactl", "unlock", "alice"]);
    assert_in(&ssh(
        &container,
        "alice",
        &mut person(vec![fresh_code(&secret)]),
    ));
}

fn mfad_stopped_or_frozen() {
    let (container, secret) = start();
    // Stopped for good: killed, and the supervisor cannot start it again.
    container.run(
        "root",
        &["sh", "-c", "chmod a-x /usr/sbin/mfad; pkill -x mfad"],
    );
    let session = ssh(&container, "alice", &mut person(vec![fresh_code(&secret)]));
    assert!(!session.screen.contains("code: "), "{}", session.screen);
    assert_out(&session, UNAVAILABLE_NOTICE);
    let session = su(&container, "alice", &mut person(vec![fresh_code(&secret)]));
    assert_out(&session, UNAVAILABLE_NOTICE);
    container.run("root", &["chmod", "a+x", "/usr/sbin/mfad"]);
    container.wait_for_log("serving org.pam_mfa.Mfad1", 2);
    // Frozen: the login gives up after the module's timeout (5 s).
    container.run("root", &["pkill", "-STOP", "-x", "mfad"]);
    let asked = std::time::Instant::now();
    let session = ssh(&container, "alice", &mut person(vec![fresh_code(&secret)]));
    assert_out(&session, UNAVAILABLE_NOTICE);
    assert!(asked.elapsed().as_secs() < 20, "{:?}", asked.elapsed());
    container.run("root", &["pkill", "-CONT", "-x", "mfad"]);
    assert_in(&ssh(
        &container,
        "alice",
        &mut person(vec![fresh_code(&secret)]),
    ));
}

fn group_rule_under_sudo() {
    let container = Container::start(TEST_IMAGE);
    // dave is in wheel, frank is not; neither has an app.
    container.run(
        "root",
        &[
            "sh",
            "-c",
            "sed -i '/^\\[enforcement\\]/a groups = [\"wheel\"]' /etc/pam-mfa/mfad.toml \
             && mfactl reload",
        ],
    );
    // frank: the password only.
    let session = sudo(&container, "frank", &mut person(vec![]));
    assert!(!session.screen.contains("code"), "{}", session.screen);
    assert_in(&session);
    // dave: sudo (with PAM_SILENT) shows the set-up of an app, QR code and all.
    let session = sudo(&container, "dave", &mut person(vec![]));
    assert!(
        session.screen.contains("otpauth://totp/"),
        "{}",
        session.screen
    );
    assert!(
        session.screen.contains("Code shown by the app: "),
        "{}",
        session.screen
    );
    assert!(!session.screen.contains("in-42"), "{}", session.screen);
}

/// Logs `user` in over SSH with `code`; true if the login got in.
fn logs_in(container: &Container, user: &str, code: String) -> bool {
    logged_in(&ssh(container, user, &mut person(vec![code])))
}

fn mfad_killed_in_a_login_loop() {
    let container = Container::start(TEST_IMAGE);
    let users: Vec<String> = (1..=8).map(|n| format!("loop{n}")).collect();
    let mut secrets = Vec::new();
    let mut recovery = Vec::new();
    for user in &users {
        let secret = random_secret();
        recovery.push(Module::PamMfa.enroll(&container, user, &secret));
        secrets.push(secret);
    }
    // Two wrong codes for loop8 before the kill: counted towards its lockout.
    let wrong = wrong_code(&secrets[7]);
    ssh(&container, "loop8", &mut person(vec![wrong.clone(), wrong]));
    // Each user logs in three times with a code, or with a recovery code, in parallel. The
    // first logins wait at their code question until all are there and answer together; mfad
    // is killed as soon as the last answer is sent, while the answers are being checked and
    // the next logins start.
    scenarios::fresh_code(&secrets[0]);
    let step = current_step();
    let at_question = AtomicUsize::new(0);
    let answered = AtomicUsize::new(0);
    let accepted = std::thread::scope(|scope| {
        let logins: Vec<_> = users
            .iter()
            .enumerate()
            .take(7)
            .map(|(n, user)| {
                let code = if n % 2 == 0 {
                    pam_mfa_tests::code_at(&secrets[n], step)
                } else {
                    recovery[n][0].clone()
                };
                let (container, at_question, answered) = (&container, &at_question, &answered);
                scope.spawn(move || {
                    let mut got_in = Vec::new();
                    for round in 0..3 {
                        // One answer per login, as a person gives it; the first login's waits.
                        let mut person = person(vec![code.clone()]);
                        let mut respond = |fresh: &str| {
                            let answer = person(fresh)?;
                            if round == 0 && answer == code {
                                meet(at_question, 7);
                                answered.fetch_add(1, Ordering::SeqCst);
                            }
                            Some(answer)
                        };
                        let session = ssh(container, user, &mut respond);
                        got_in.push(logged_in(&session));
                    }
                    (n, code, got_in)
                })
            })
            .collect();
        let waiting = Instant::now();
        while answered.load(Ordering::SeqCst) < 7 {
            assert!(
                waiting.elapsed() < Duration::from_secs(30),
                "the logins never answered"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        container.run("root", &["pkill", "-KILL", "-x", "mfad"]);
        logins
            .into_iter()
            .map(|login| login.join().unwrap())
            .collect::<Vec<_>>()
    });
    container.wait_for_log("serving org.pam_mfa.Mfad1", 2);
    let log = container.log();
    assert!(log.contains("mfad exited with status 137"), "{log}");
    let inside = accepted
        .iter()
        .filter(|(_, _, got_in)| got_in.contains(&true))
        .count();
    assert!(
        inside >= 4,
        "too few logins got in around the kill: {accepted:?}"
    );
    // The codes of `step` are still inside the window below: a refusal means "used", not
    // "expired".
    assert!(
        current_step() <= step + 1,
        "the logins took too long to show anything"
    );
    for (n, code, got_in) in &accepted {
        // The same code gets in at most once, even across the kill.
        assert!(
            got_in.iter().filter(|&&inside| inside).count() <= 1,
            "{}: {got_in:?}",
            users[*n]
        );
        // Accepted before or after the kill, it stays used. (One never seen accepted may have
        // been: mfad keeps a code as used before it answers.)
        if got_in.contains(&true) {
            let again = ssh(&container, &users[*n], &mut person(vec![code.clone()]));
            assert!(
                again.screen.contains("Verification code: "),
                "{}",
                again.screen
            );
            assert!(
                !again.screen.contains("in-42"),
                "{} got in again after the kill with {}",
                users[*n],
                if n % 2 == 0 {
                    "a code"
                } else {
                    "a recovery code"
                }
            );
        }
    }
    // Every enrollment is still there, and each user's next code logs in.
    let listed = container.run("root", &["mfactl", "users"]);
    for user in &users {
        assert!(listed.contains(user.as_str()), "{user} missing:\n{listed}");
    }
    // loop8's two wrong codes still count: four more lock the account (five may be tried).
    let wrong = wrong_code(&secrets[7]);
    ssh(&container, "loop8", &mut person(vec![wrong.clone(); 3]));
    let session = ssh(&container, "loop8", &mut person(vec![wrong]));
    assert!(
        session.screen.contains("locked until"),
        "the tries before the kill were lost:\n{}",
        session.screen
    );
    assert!(logs_in(
        &container,
        "loop1",
        pam_mfa_tests::code_at(&secrets[0], current_step() + 1)
    ));
}

fn bus_restarted() {
    let (container, secret) = start();
    let mfad = container.pid_of("mfad").expect("mfad runs");
    container.run("root", &["pkill", "-x", "dbus-daemon"]);
    container.wait_for_log("dbus-daemon exited", 1);
    // mfad follows the bus: it exits, and the supervisor starts it again on the new bus.
    container.wait_for_log("serving org.pam_mfa.Mfad1", 2);
    let again = container.pid_of("mfad").expect("mfad runs again");
    assert_ne!(mfad, again);
    assert_in(&ssh(
        &container,
        "alice",
        &mut person(vec![fresh_code(&secret)]),
    ));
    // And mfactl reaches it over the new bus.
    let status = container.run("root", &["mfactl", "status", "alice"]);
    assert!(status.contains("alice"), "{status}");
}

fn tempdir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "pam-mfa-containers-{}-{}",
        std::process::id(),
        random_secret()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Builds the Debian package once per process with README's build step, as written
/// (scripts/build-deb.sh), and returns its path.
fn package() -> std::path::PathBuf {
    static BUILT: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
            let out = std::process::Command::new("bash")
                .args(["-e", "-c", &readme::block("build")])
                .current_dir(&repo)
                .stdin(std::process::Stdio::null())
                .output()
                .expect("run README's build step");
            assert!(
                out.status.success(),
                "README's build step failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let said = String::from_utf8_lossy(&out.stdout);
            repo.join(said.lines().last().unwrap_or("").trim())
        })
        .clone()
}

/// Where README's steps run in the package test's container: a reader's clone of the
/// repository, holding the package where README's build step puts it.
const CLONE: &str = "/root/pam-mfa";

/// Runs README's step `name` as root in the container, from [`CLONE`], as written; returns
/// what it printed. apt's questions are answered yes.
fn readme_step(container: &Container, name: &str) -> String {
    let script = format!(
        "mkdir -p {CLONE} && cd {CLONE}\nexport DEBIAN_FRONTEND=noninteractive\n{}",
        readme::block(name)
    );
    let said = container.run("root", &["bash", "-e", "-c", &script]);
    if script.contains("systemctl reload ssh") {
        sshd_answers(container);
    }
    said
}

/// Waits until sshd, reloaded, answers with its banner again: while it starts afresh, Docker's
/// port still accepts connections, and closes them.
fn sshd_answers(container: &Container) {
    use std::io::Read;
    let start = Instant::now();
    loop {
        std::thread::sleep(Duration::from_millis(500));
        if let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", container.ssh_port)) {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
            let mut banner = [0u8; 4];
            if stream.read_exact(&mut banner).is_ok() && &banner == b"SSH-" {
                return;
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "sshd does not answer after its reload"
        );
    }
}

/// README's enrollment step (`mfactl enroll`), run by `user` at a terminal, who types the
/// code of the secret shown; returns that secret.
fn enroll_as_readme_says(container: &Container, user: &str) -> String {
    let mut secret = None;
    let session = container
        .terminal(user, &["bash", "-e", "-c", &readme::block("enroll")])
        .converse(&mut |fresh: &str| {
            if !fresh.ends_with("to confirm: ") {
                return None;
            }
            let shown = fresh
                .lines()
                .find_map(|line| line.split_once("by hand: "))
                .map(|(_, secret)| secret.trim().replace(' ', ""))?;
            let code = fresh_code(&shown);
            secret = Some(shown);
            Some(code)
        });
    assert_eq!(session.status, 0, "{}", session.screen);
    assert!(
        session.screen.contains("Recovery codes"),
        "{}",
        session.screen
    );
    secret.unwrap_or_else(|| panic!("no secret shown:\n{}", session.screen))
}

/// A code of `secret` from a later time step than `last` (waiting for one), which becomes
/// the last: a code is accepted once.
fn next_code(secret: &str, last: &mut u64) -> String {
    loop {
        let code = fresh_code(secret);
        if current_step() > *last {
            *last = current_step();
            return code;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// `command`, run as `user` at the container's console: the pseudo-terminal of `docker exec
/// -it`, mounted on /dev/tty1, as its standard input, output and error, so that `login` there
/// logs in on tty1.
fn at_console(container: &Container, user: &str, command: &str) -> Terminal {
    let run = if user == "root" {
        command.to_owned()
    } else {
        format!("runuser -u {user} -- {command}")
    };
    let script = format!(
        "umount /dev/tty1 2>/dev/null; touch /dev/tty1 && mount --bind \"$(tty)\" /dev/tty1 \
         && exec {run} </dev/tty1 >/dev/tty1 2>&1"
    );
    container.terminal("root", &["sh", "-c", &script])
}

/// With mfad stopped (and unable to start again), then frozen: only root at the console gets
/// in. Leaves mfad frozen.
fn console_way_back_in(container: &Container, secret: &str) {
    container.run(
        "root",
        &[
            "sh",
            "-c",
            "chmod a-x /usr/sbin/mfad && systemctl stop mfad",
        ],
    );
    only_root_at_the_console(container, secret);
    container.run(
        "root",
        &[
            "sh",
            "-c",
            "chmod a+x /usr/sbin/mfad && systemctl reset-failed && systemctl start mfad && \
             systemctl kill --signal=SIGSTOP mfad",
        ],
    );
    only_root_at_the_console(container, secret);
}

/// `login root` at the console with the password gives a shell.
fn root_logs_in_at_the_console(container: &Container) {
    let mut terminal = at_console(container, "root", "login root");
    terminal.expect("Password: ");
    terminal.send(PASSWORD);
    terminal.expect("# ");
    terminal.send("echo in-$((6*7)); exit");
    assert_in(&terminal.finish());
}

/// `login USER` at the console with the password is refused, showing `line`.
fn console_login_refused(container: &Container, user: &str, line: &str) {
    let mut terminal = at_console(container, "root", &format!("login {user}"));
    terminal.expect("Password: ");
    terminal.send(PASSWORD);
    let shown = terminal.expect("login: ");
    assert!(shown.contains(line), "{shown}");
    assert!(!shown.contains("in-42"), "{shown}");
}

/// While mfad cannot answer: root logs in at the console with the password alone; alice
/// does not, nor does su (to alice, or to root at the console) or sudo.
fn only_root_at_the_console(container: &Container, secret: &str) {
    root_logs_in_at_the_console(container);
    console_login_refused(container, "alice", UNAVAILABLE_NOTICE);
    let session = su(container, "alice", &mut person(vec![fresh_code(secret)]));
    assert_out(&session, UNAVAILABLE_NOTICE);
    let session = sudo(container, "alice", &mut person(vec![fresh_code(secret)]));
    assert_out(&session, UNAVAILABLE_NOTICE);
    let session = at_console(container, "bob", "su - root -c 'echo in-$((6*7))'")
        .converse(&mut person(vec![]));
    assert_out(&session, UNAVAILABLE_NOTICE);
}

/// mfad.socket is enabled and listening, and the mfad that runs serves the socket systemd
/// passed it (its own lines in the journal say so).
fn assert_socket_activated(container: &Container) {
    for (query, wanted) in [("is-enabled", "enabled"), ("is-active", "active")] {
        let state = container.run("root", &["systemctl", query, "mfad.socket"]);
        assert_eq!(state.trim(), wanted, "systemctl {query} mfad.socket");
    }
    let wanted = "serving logins on /run/pam-mfa/login.socket (passed by systemd)";
    let start = Instant::now();
    loop {
        // systemd reports mfad started when it owns its name, a moment before that line.
        let journal = container.run(
            "root",
            &[
                "sh",
                "-c",
                "journalctl --no-pager _PID=$(systemctl show --property MainPID --value mfad)",
            ],
        );
        if journal.contains(wanted) {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the running mfad did not say {wanted:?}:\n{journal}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// systemd's exposure score of the running mfad.service (`systemd-analyze security`), which
/// must be 2.0 ("OK") or lower.
fn exposure(container: &Container) -> f64 {
    let security = container.run("root", &["systemd-analyze", "security", "mfad.service"]);
    let score: f64 = security
        .lines()
        .find_map(|line| line.split("mfad.service: ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|score| score.parse().ok())
        .unwrap_or_else(|| panic!("no score in:\n{security}"));
    assert!(score <= 2.0, "exposure {score}:\n{security}");
    score
}

/// README's installation path, its steps run as written (`<!-- test: NAME -->` blocks): the
/// build, install, enroll, enable and sshd steps, a login with a code; the console way back in
/// with mfad stopped and frozen, and the recovery step; a backup while mfad runs; the remove
/// step, purge, and a restore from the backup after installing again.
fn package_lifecycle() {
    let deb = package();
    let container = Container::start_systemd("pam-mfa-package-test:dev");
    // The administrator knows root's password, and answers apt's questions with yes. The
    // image's sshd drop-in goes: README's sshd step installs it.
    container.run(
        "root",
        &[
            "sh",
            "-c",
            &format!(
                "echo 'root:{PASSWORD}' | chpasswd && \
                 echo 'APT::Get::Assume-Yes \"true\";' > /etc/apt/apt.conf.d/90yes && \
                 mkdir -p {CLONE}/target/debian && \
                 rm /etc/ssh/sshd_config.d/50-pam-mfa.conf"
            ),
        ],
    );
    let name = deb.file_name().unwrap().to_str().unwrap();
    container.copy_in(&deb, &format!("{CLONE}/target/debian/{name}"));
    let said = readme_step(&container, "install");
    // Installed and started, saying what comes next, and no login changed: the profile is off.
    assert!(said.contains("mfactl enroll"), "{said}");
    assert!(said.contains("pam-auth-update --enable mfa"), "{said}");
    let active = container.run("root", &["systemctl", "is-active", "mfad"]);
    assert_eq!(active.trim(), "active");
    // The login socket is systemd's (mfad.socket, enabled and listening), and mfad took it.
    assert_socket_activated(&container);
    let auth = container.run("root", &["cat", "/etc/pam.d/common-auth"]);
    assert!(!auth.contains("pam_mfa"), "{auth}");
    // The man pages and the examples they show are installed, and man finds them.
    let listed = container.run("root", &["dpkg", "--listfiles", "pam-mfa"]);
    for path in [
        "/usr/share/man/man8/pam_mfa.8.gz",
        "/usr/share/man/man8/mfad.8.gz",
        "/usr/share/man/man5/mfad.toml.5.gz",
        "/usr/share/man/man1/mfactl.1.gz",
        "/usr/share/man/man1/mfactl-enroll.1.gz",
        "/usr/share/doc/pam-mfa/copyright",
        "/usr/share/doc/pam-mfa/examples/mfad.toml",
        "/usr/share/doc/pam-mfa/examples/pam.d/login-console",
        "/usr/share/doc/pam-mfa/examples/sshd_config.d/pam-mfa-password.conf",
        "/usr/share/doc/pam-mfa/examples/sshd_config.d/pam-mfa-publickey.conf",
        "/usr/share/bash-completion/completions/mfactl",
    ] {
        assert!(
            listed.lines().any(|line| line == path),
            "{path} is not in the package:\n{listed}"
        );
    }
    // The unit runs hardened, as recorded: systemd's own score of the running service.
    let score = exposure(&container);
    println!("systemd-analyze security mfad.service in the container: {score}");

    // The keys that seal the secrets: a credential the package made for this host, which
    // systemd decrypted for mfad; no key file.
    let keys = container.run(
        "root",
        &[
            "sh",
            "-c",
            "stat -c '%a %U' /etc/credstore.encrypted/pam-mfa-sealing-key; \
             test -e /etc/pam-mfa/sealing.key && echo 'a key file too'; \
             journalctl -u mfad --no-pager -o cat | grep 'secrets sealed with'; true",
        ],
    );
    assert!(keys.starts_with("600 root\n"), "{keys}");
    assert!(!keys.contains("a key file too"), "{keys}");
    assert!(
        keys.contains("secrets sealed with key 1 of /run/credentials/mfad.service/sealing-key"),
        "{keys}"
    );

    // alice sets up her app, then the profile goes into common-auth, after the password
    // check, and sshd gets the drop-in.
    let secret = enroll_as_readme_says(&container, "alice");
    // Her secret is in the database sealed: not in the clear, nor in Base32 or hexadecimal.
    let files = container.run(
        "root",
        &[
            "sh",
            "-c",
            "cat /var/lib/pam-mfa/mfad.sqlite3* | od -An -v -tx1 | tr -d ' \n'",
        ],
    );
    let raw = totp_rs::Secret::try_from_base32(&secret).unwrap();
    let hex = |bytes: &[u8]| -> String { bytes.iter().map(|b| format!("{b:02x}")).collect() };
    for needle in [
        hex(raw.as_bytes()),
        hex(secret.as_bytes()),
        hex(secret.to_lowercase().as_bytes()),
        hex(hex(raw.as_bytes()).as_bytes()),
    ] {
        assert!(
            !files.contains(&needle),
            "the database holds alice's secret"
        );
    }
    let mut last = current_step();
    readme_step(&container, "enable");
    let auth = container.run("root", &["cat", "/etc/pam.d/common-auth"]);
    let deny = auth.find("pam_deny.so").expect("pam_deny in common-auth");
    let console = auth
        .find("pam_succeed_if.so")
        .unwrap_or_else(|| panic!("{auth}"));
    let mfa = auth.find("pam_mfa.so").unwrap_or_else(|| panic!("{auth}"));
    assert!(
        deny < console && console < mfa,
        "pam_mfa.so must come after the password check and the console's exception:\n{auth}"
    );
    readme_step(&container, "sshd");
    let session = ssh(
        &container,
        "alice",
        &mut person(vec![next_code(&secret, &mut last)]),
    );
    assert_in_with_code(&session);

    // Issue 24: the console is a way back in, with the profile...
    console_way_back_in(&container, &secret);
    // ... and with the lines per service instead (README's alternative): su and sudo, and
    // login with the shipped console recipe.
    container.run(
        "root",
        &[
            "sh",
            "-c",
            "systemctl restart mfad && pam-auth-update --disable mfa && \
             sed -i '/^@include common-auth/a auth required pam_mfa.so' /etc/pam.d/su \
               /etc/pam.d/sudo && \
             sed -n '/^@include common-auth/,$p' \
               /usr/share/doc/pam-mfa/examples/pam.d/login-console | tail -n +2 > /tmp/console && \
             sed -i '/^@include common-auth/r /tmp/console' /etc/pam.d/login",
        ],
    );
    console_way_back_in(&container, &secret);
    container.run(
        "root",
        &[
            "sh",
            "-c",
            "sed -i '/pam_mfa.so/d; /pam_succeed_if.so quiet uid eq 0/d' /etc/pam.d/login \
               /etc/pam.d/su /etc/pam.d/sudo && \
             pam-auth-update --enable mfa",
        ],
    );
    // README's way back: mfad starts again; the code works.
    readme_step(&container, "recover");
    let active = container.run("root", &["systemctl", "is-active", "mfad"]);
    assert_eq!(active.trim(), "active");
    let session = ssh(
        &container,
        "alice",
        &mut person(vec![next_code(&secret, &mut last)]),
    );
    assert_in_with_code(&session);
    // Where mfad does not start, the same step asks for no code until it runs again.
    container.run(
        "root",
        &[
            "sh",
            "-c",
            "chmod a-x /usr/sbin/mfad && systemctl stop mfad",
        ],
    );
    readme_step(&container, "recover");
    let session = ssh(&container, "alice", &mut person(vec![]));
    assert!(!session.screen.contains("code: "), "{}", session.screen);
    assert_in(&session);
    container.run(
        "root",
        &[
            "sh",
            "-c",
            "chmod a+x /usr/sbin/mfad && systemctl reset-failed && systemctl start mfad && pam-auth-update --enable mfa",
        ],
    );
    // Stopped, mfad is started again by the bus for the next call (D-Bus activation).
    container.run("root", &["systemctl", "stop", "mfad"]);
    let status = container.run("root", &["mfactl", "status", "alice"]);
    assert!(status.contains("enrolled:  yes"), "{status}");
    let active = container.run("root", &["systemctl", "is-active", "mfad"]);
    assert_eq!(active.trim(), "active");
    // Stopped, mfad is started again by its socket for the next login (socket activation):
    // the login waits for it and gets in with the code.
    container.run("root", &["systemctl", "stop", "mfad"]);
    let socket = container.run("root", &["systemctl", "is-active", "mfad.socket"]);
    assert_eq!(socket.trim(), "active");
    let session = ssh(
        &container,
        "alice",
        &mut person(vec![next_code(&secret, &mut last)]),
    );
    assert_in_with_code(&session);
    assert_socket_activated(&container);

    // A backup while mfad runs.
    readme_step(&container, "backup");

    // A PAM file edited by hand to use the module stops the removal, naming the file.
    container.run(
        "root",
        &[
            "sh",
            "-c",
            "echo 'auth required pam_mfa.so' >> /etc/pam.d/sudo",
        ],
    );
    let refused = container.exec("root", &["dpkg", "--remove", "pam-mfa"]);
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("/etc/pam.d/sudo"), "{said}");
    container.run(
        "root",
        &["sh", "-c", "sed -i '/pam_mfa.so/d' /etc/pam.d/sudo"],
    );
    assert!(
        container
            .exec("root", &["test", "-e", "/usr/sbin/mfad"])
            .status
            .success()
    );

    // Removed as README says: out of common-auth and sshd, so the password alone logs in,
    // also with ssh's password method; state and configuration stay.
    readme_step(&container, "remove");
    let auth = container.run("root", &["cat", "/etc/pam.d/common-auth"]);
    assert!(!auth.contains("pam_mfa"), "{auth}");
    let session = pam_mfa_tests::sshd::ssh_with(
        container.ssh_port,
        "alice",
        "echo in-$((6*7))",
        &[
            "-o",
            "PreferredAuthentications=password",
            "-o",
            "NumberOfPasswordPrompts=1",
        ],
        &mut person(vec![]),
    );
    assert_in(&session);
    let left = container.run(
        "root",
        &[
            "sh",
            "-c",
            "ls -d /usr/sbin/mfad /usr/bin/mfactl /lib/*/security/pam_mfa.so \
             /lib/systemd/system/mfad.service /lib/systemd/system/mfad.socket \
             /run/pam-mfa/login.socket /usr/share/dbus-1/system.d/org.pam_mfa.Mfad1.conf \
             /usr/share/pam-configs/mfa /var/lib/pam-mfa/mfad.sqlite3 /etc/pam-mfa/mfad.toml \
             /etc/ssh/sshd_config.d/50-pam-mfa.conf 2>/dev/null; true",
        ],
    );
    assert_eq!(
        left.lines().collect::<Vec<_>>(),
        ["/etc/pam-mfa/mfad.toml", "/var/lib/pam-mfa/mfad.sqlite3"],
        "what remove left"
    );
    assert!(container.pid_of("mfad").is_none(), "mfad still runs");
    // Installed again, alice's app is still there.
    readme_step(&container, "install");
    let status = container.run("root", &["mfactl", "status", "alice"]);
    assert!(status.contains("enrolled:  yes"), "{status}");

    // Purged: state and configuration go too.
    container.run("root", &["apt", "purge", "pam-mfa"]);
    let left = container.run(
        "root",
        &[
            "sh",
            "-c",
            "ls -d /var/lib/pam-mfa /etc/pam-mfa /run/pam-mfa /usr/sbin/mfad \
             /etc/systemd/system/*/mfad.* 2>/dev/null; true",
        ],
    );
    assert_eq!(left.trim(), "", "what purge left");
    let auth = container.run("root", &["cat", "/etc/pam.d/common-auth"]);
    assert!(!auth.contains("pam_mfa"), "{auth}");

    // Installed afresh and restored from the backup: alice logs in with her app.
    readme_step(&container, "install");
    let status = container.run("root", &["mfactl", "status", "alice"]);
    assert!(!status.contains("enrolled:  yes"), "{status}");
    readme_step(&container, "restore");
    readme_step(&container, "enable");
    readme_step(&container, "sshd");
    let session = ssh(
        &container,
        "alice",
        &mut person(vec![next_code(&secret, &mut last)]),
    );
    assert_in_with_code(&session);
}

/// Fleet mode as a sysadmin sets it up from the package: mfad, under the unit as shipped and
/// systemd in the container, keeps its state in a PostgreSQL server on another host (this one,
/// at the container network's gateway), over TLS checked against the server's authority. The
/// unit as shipped gives mfad no network, so the database is unreachable and mfactl says so;
/// the example drop-in opens the database's address, and a login over SSH then asks for the
/// code of an app whose enrollment is in the shared database.
fn package_fleet_mode() {
    use pam_mfa_tests::postgres::{Postgres, certificates};
    let deb = package();
    let container = Container::start_systemd("pam-mfa-package-test:dev");
    let (own, gateway) = container.addresses();
    let server = Postgres::start();
    server.create_database("fleet");
    let dir = server.dir().join("tls");
    std::fs::create_dir_all(&dir).unwrap();
    let (ca, cert, key) = certificates(&dir, &format!("IP:{gateway}"));
    server.serve_network(&gateway, &format!("{own}/32"), &cert, &key);

    container.copy_in(&deb, "/tmp/pam-mfa.deb");
    container.run("root", &["dpkg", "--install", "/tmp/pam-mfa.deb"]);
    container.copy_in(&ca, "/etc/pam-mfa/db-ca.pem");
    container.run_with_input(
        "root",
        "cat > /etc/pam-mfa/mfad.toml",
        &format!(
            "[store]\nkind = \"postgres\"\nurl = \"host={gateway} port={} user=postgres \
             dbname=fleet\"\nca_file = \"/etc/pam-mfa/db-ca.pem\"\nhost_name = \"web1\"\n",
            server.port()
        ),
    );
    container.run("root", &["systemctl", "restart", "mfad"]);
    // As shipped, the unit gives mfad no network: it serves, and says it cannot reach the
    // database.
    let status = container.exec("root", &["mfactl", "status", "alice"]);
    assert!(!status.status.success());
    let said = String::from_utf8_lossy(&status.stderr);
    assert!(
        said.contains("mfad could not reach its state database in time; nothing was changed"),
        "{said}"
    );
    let journal = container.run("root", &["journalctl", "-u", "mfad", "--no-pager"]);
    assert!(
        journal.contains("cannot connect to PostgreSQL"),
        "{journal}"
    );

    // The example drop-in, with the database's address.
    container.run(
        "root",
        &[
            "sh",
            "-c",
            &format!(
                "mkdir -p /etc/systemd/system/mfad.service.d && \
                 sed 's/^IPAddressAllow=.*/IPAddressAllow={gateway}/' \
                 /usr/share/doc/pam-mfa/examples/systemd/mfad-fleet.conf \
                 > /etc/systemd/system/mfad.service.d/fleet.conf && \
                 systemctl daemon-reload && systemctl restart mfad"
            ),
        ],
    );
    let secret = random_secret();
    Module::PamMfa.enroll(&container, "alice", &secret);
    container.run("root", &["mfactl", "enforce", "alice", "on"]);
    container.run("root", &["pam-auth-update", "--enable", "mfa"]);
    let session = ssh(&container, "alice", &mut person(vec![fresh_code(&secret)]));
    assert_in_with_code(&session);
    // The enrollment and the login are in the shared database, under this host's name.
    assert_eq!(
        server.sql(
            "fleet",
            "SELECT count(*) FROM enrollments WHERE username = 'alice' AND active"
        ),
        "1"
    );
    let logins = server.sql(
        "fleet",
        "SELECT count(*) FROM audit WHERE host = 'web1' AND kind = 'login-allowed'",
    );
    assert_eq!(logins, "1");
    // Still hardened with the network the database needs.
    let score = exposure(&container);
    println!("systemd-analyze security mfad.service with the fleet drop-in: {score}");
}

/// The packaged mfad sends a code by email through the local Postfix (its sendmail and
/// set-group-ID postdrop): not as shipped, whose unit keeps mfad out of the mail queue (the
/// user is told that no code was sent), and with the example drop-in's sendmail part.
fn package_email_delivery() {
    let deb = package();
    let container = Container::start_systemd("pam-mfa-package-test:dev");
    container.copy_in(&deb, "/tmp/pam-mfa.deb");
    container.run("root", &["dpkg", "--install", "/tmp/pam-mfa.deb"]);
    // Postfix delivers mail for this host to /var/mail/USER.
    container.run_with_input(
        "root",
        "cat > /etc/postfix/main.cf",
        "myhostname = mail.example.test\nmydestination = localhost, $myhostname\n\
         inet_interfaces = loopback-only\ninet_protocols = ipv4\nrelayhost =\n\
         alias_maps =\nalias_database =\ncompatibility_level = 3.6\n",
    );
    container.run("root", &["systemctl", "restart", "postfix"]);
    container.run_with_input(
        "root",
        "cat > /etc/pam-mfa/mfad.toml",
        "[contacts]\nkinds = [\"email\"]\n[email]\nfrom = \"mfa@mail.example.test\"\n",
    );
    container.run("root", &["systemctl", "restart", "mfad"]);
    // Each user adds an address of their own (a send tried makes its user wait a minute).
    let add = |container: &Container, user: &str| {
        container.exec(
            user,
            &[
                "mfactl",
                "contact",
                "add",
                "--email",
                &format!("{user}@mail.example.test"),
            ],
        )
    };
    let refused = add(&container, "bob");
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        said.contains("no code was sent to b***@mail.example.test: it could not be delivered"),
        "{said}"
    );

    container.run(
        "root",
        &[
            "sh",
            "-c",
            "mkdir -p /etc/systemd/system/mfad.service.d && \
             cp /usr/share/doc/pam-mfa/examples/systemd/mfad-delivery.conf \
             /etc/systemd/system/mfad.service.d/delivery.conf && \
             systemctl daemon-reload && systemctl restart mfad",
        ],
    );
    let added = add(&container, "alice");
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    let mut mailbox = String::new();
    for _ in 0..100 {
        mailbox = container.run(
            "root",
            &["sh", "-c", "cat /var/mail/alice 2>/dev/null || true"],
        );
        if mailbox.contains("Your code for ") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let code: String = mailbox
        .lines()
        .find_map(|line| line.strip_prefix("Your code for "))
        .and_then(|rest| rest.rsplit_once(": "))
        .map(|(_, rest)| rest.chars().take_while(char::is_ascii_digit).collect())
        .unwrap_or_else(|| panic!("no code in alice's mailbox:\n{mailbox}"));
    let verified = container.run("alice", &["mfactl", "contact", "verify", &code]);
    assert!(
        verified.contains("a***@mail.example.test is verified"),
        "{verified}"
    );
    let score = exposure(&container);
    println!("systemd-analyze security mfad.service with the delivery drop-in: {score}");
}
