//! The PAM stacks the README documents (examples/pam.d), each loaded through real libpam with
//! the real module. Debian's common-auth is played by pam_matrix from cwrap's pam_wrapper (a
//! real password module with its own password file), so that no system account is touched.

use pam_mfa_tests::{Env, built, system_library};

/// Installs examples/pam.d/`name` as service `name` of `env`: pam_mfa.so from this build, on
/// the test's bus; `@include common-auth` as a password check of `PASSWORD` for every user.
fn install(env: &Env, name: &str) {
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/pam.d")
        .join(name);
    let text = std::fs::read_to_string(&example).unwrap();
    let passdb = env.dir().join("passdb");
    let users = ["root", "alice", "bob", "carol"]
        .map(|user| format!("{user}:{PASSWORD}:{name}\n"))
        .concat();
    std::fs::write(&passdb, users).unwrap();
    let module = format!(
        "{} {}",
        built("libpam_mfa.so").display(),
        env.module_target()
    );
    let pam_matrix = system_library("pam_wrapper/pam_matrix.so");
    let stack: String = text
        .lines()
        .map(|line| match line {
            "@include common-auth" => {
                format!(
                    "auth requisite {} passdb={}\n",
                    pam_matrix.display(),
                    passdb.display()
                )
            }
            line => format!("{}\n", line.replace("pam_mfa.so", &module)),
        })
        .collect();
    assert!(stack.contains(&module), "{name} has no pam_mfa.so line");
    std::fs::write(env.confdir().join(name), stack).unwrap();
}

const PASSWORD: &str = "correct horse";

#[test]
fn password_then_code() {
    let env = Env::new().start();
    install(&env, "sshd-password-then-code");
    let service = "sshd-password-then-code";
    env.enroll("alice");
    env.login("alice")
        .service(service)
        .answer(PASSWORD)
        .answer(&env.fresh_code("alice"))
        .run()
        .expect("PAM_SUCCESS");
    // A wrong password ends the login before pam_mfa asks anything.
    let wrong = env.login("alice").service(service).answer("guess").run();
    wrong.expect("PAM_AUTH_ERR");
    assert_eq!(wrong.prompts(), 1, "{:?}", wrong.lines);
    // No second factor required: the password alone.
    let bob = env.login("bob").service(service).answer(PASSWORD).run();
    bob.expect("PAM_SUCCESS");
    assert_eq!(bob.prompts(), 1);
    // Required and not set up: the password, then the enrollment.
    assert!(env.ctl(&["enforce", "carol", "on"], "").success);
    env.login("carol")
        .service(service)
        .answer(PASSWORD)
        .run()
        .expect("PAM_CONV_ERR")
        .shows("PROMPT_ECHO_OFF Code shown by the app: ");
}

#[test]
fn public_key_then_code() {
    let env = Env::new().start();
    install(&env, "sshd-publickey-then-code");
    let service = "sshd-publickey-then-code";
    env.enroll("alice");
    env.login("alice")
        .service(service)
        .answer(&env.fresh_code("alice"))
        .run()
        .expect("PAM_SUCCESS");
    let wrong = env.wrong_code("alice");
    env.login("alice")
        .service(service)
        .answer(&wrong)
        .answer(&wrong)
        .answer(&wrong)
        .run()
        .expect("PAM_MAXTRIES");
    // The key was enough for a user of whom no code is required (notrequired=success).
    let bob = env.login("bob").service(service).run();
    bob.expect("PAM_SUCCESS");
    assert_eq!(bob.prompts(), 0);
}

#[test]
fn code_only() {
    let env = Env::new().start();
    install(&env, "sshd-code-only");
    let service = "sshd-code-only";
    env.enroll("alice");
    env.login("alice")
        .service(service)
        .answer(&env.fresh_code("alice"))
        .run()
        .expect("PAM_SUCCESS");
    // Nothing authenticates a user of whom no code is required: denied.
    let bob = env.login("bob").service(service).run();
    bob.expect("PAM_PERM_DENIED");
    assert_eq!(bob.prompts(), 0);
}

/// The console recipe: root on a local terminal gets in with the password alone, whatever
/// state mfad and the bus are in; everyone else still needs a code, and is denied while the
/// code cannot be checked.
#[test]
fn console_root_is_never_locked_out() {
    let env = Env::new().start();
    install(&env, "login-console");
    let service = "login-console";
    assert!(env.ctl(&["enforce", "--all", "on"], "").success);
    env.enroll("alice");
    let root_on = |tty: &str| {
        env.login("root")
            .service(service)
            .tty(tty)
            .answer(PASSWORD)
            .run()
    };
    let alice = || {
        env.login("alice")
            .service(service)
            .tty("tty1")
            .answer(PASSWORD)
            .answer(&env.fresh_code("alice"))
            .run()
    };
    alice().expect("PAM_SUCCESS");
    let root = root_on("tty1");
    root.expect("PAM_SUCCESS");
    assert_eq!(root.prompts(), 1, "the password only: {:?}", root.lines);
    // Not on a local terminal (a pseudo-terminal, sshd's "ssh"): root is asked to enroll.
    for tty in ["/dev/pts/0", "ssh"] {
        root_on(tty)
            .expect("PAM_CONV_ERR")
            .shows("PROMPT_ECHO_OFF Code shown by the app: ");
    }
    // mfad hung, then stopped: root at the console still gets in; alice is denied.
    env.freeze_daemon(true);
    root_on("tty1").expect("PAM_SUCCESS");
    env.freeze_daemon(false);
    env.stop_daemon();
    root_on("tty1").expect("PAM_SUCCESS");
    root_on("ttyS0").expect("PAM_SUCCESS");
    // Issue 24: Debian 12's login names the terminal with /dev/ (util-linux's login without).
    root_on("/dev/tty1").expect("PAM_SUCCESS");
    let denied = env
        .login("alice")
        .service(service)
        .tty("tty1")
        .answer(PASSWORD)
        .run();
    denied
        .expect("PAM_AUTHINFO_UNAVAIL")
        .shows("The second factor cannot be checked right now");
    // The wrong password is still the wrong password.
    env.login("root")
        .service(service)
        .tty("tty1")
        .answer("guess")
        .run()
        .expect("PAM_AUTH_ERR");
}
