//! Password and code in one answer (pam_mfa.so `forward_pass`), with a real application that
//! sends PAM one password: FreeRADIUS and its rlm_pam, asked by `radtest` on loopback. The
//! stack is examples/pam.d/one-prompt, with real pam_unix checking the test users' passwords.

use pam_mfa_tests::radius::{self, Radius};
use pam_mfa_tests::{Env, Store, enroll_on, random_secret};

const PASSWORD: &str = "correct horse";

/// examples/pam.d/one-prompt as the `radiusd` service, with the account part allowing all.
fn stack() -> String {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/pam.d/one-prompt"),
    )
    .unwrap();
    let stack: String = text
        .lines()
        .filter(|line| !line.starts_with('#'))
        .map(|line| {
            let line = line
                .replace("include   common-account", "required  pam_permit.so")
                .replace("pam_mfa.so", "@MODULE@");
            format!("{line}\n")
        })
        .collect();
    assert!(stack.contains("@MODULE@ forward_pass"), "{stack}");
    assert!(stack.contains("pam_unix.so try_first_pass"), "{stack}");
    stack
}

#[test]
fn freeradius_takes_the_password_and_the_code_in_one_answer() {
    assert!(
        radius::available(),
        "FreeRADIUS is missing: install freeradius and freeradius-utils (scripts/install-deps.sh)"
    );
    for store in Store::both() {
        eprintln!("store: {}", store.name());
        one_prompt(&store.env("one_prompt", "").start());
    }
}

fn one_prompt(env: &Env) {
    let recovery = enroll_on(std::slice::from_ref(env), 0, "alice");
    for user in ["alice", "bob"] {
        assert!(env.ctl(&["enforce", user, "on"], "").success);
    }
    // dave has a counter-based token.
    let secret = random_secret();
    let hotp = |counter: u64| {
        let out = pam_mfa_tests::run_bounded(
            std::process::Command::new("oathtool").args([
                "--hotp",
                &format!("--counter={counter}"),
                "--base32",
                &secret,
            ]),
            "oathtool",
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let enrolled = env.ctl(
        &["enroll", "--hotp", "dave", "--secret", &secret],
        &format!("{}\n", hotp(0)),
    );
    assert!(enrolled.success, "{}", enrolled.stderr);
    // Through real libpam first, to see what the module shows: one prompt, and for a user who
    // would have to set up an app, one line saying where to do it.
    std::fs::write(
        env.confdir().join("one-prompt"),
        format!(
            "auth required {} {} forward_pass\nauth required pam_permit.so\n",
            pam_mfa_tests::built("libpam_mfa.so").display(),
            env.module_target()
        ),
    )
    .unwrap();
    let code = env.fresh_code("alice");
    env.login("alice")
        .service("one-prompt")
        .answer(&format!("{PASSWORD}{code}"))
        .run()
        .expect("PAM_SUCCESS")
        .shows("PROMPT_ECHO_OFF Password and verification code: ");
    let bob = env
        .login("bob")
        .service("one-prompt")
        .answer(&format!("{PASSWORD}123456"))
        .run();
    bob.expect("PAM_AUTH_ERR").shows(
        "ERROR_MSG Two-factor authentication is required for this account, and this service \
         cannot set up an authenticator app: set one up at an SSH login or with mfactl enroll, \
         then type your password followed by a code here.",
    );
    assert_eq!(bob.prompts(), 0, "nothing is asked: {:?}", bob.lines);
    let server = Radius::start(env, &stack(), &["alice", "bob", "carol", "dave"], PASSWORD);
    let code = env.fresh_code("alice");
    let joined = format!("{PASSWORD}{code}");
    let accepted = server.authenticate("alice", &joined);
    assert!(accepted.accepted, "{}\n{}", accepted.output, server.log());
    // The same code again: rejected (single use holds here too).
    assert!(!server.authenticate("alice", &joined).accepted);
    // A right code after a wrong password, a wrong code after the right password: rejected.
    let next = env.fresh_code("alice");
    assert!(
        !server
            .authenticate("alice", &format!("guess{next}"))
            .accepted
    );
    assert!(
        !server
            .authenticate("alice", &format!("{PASSWORD}{}", env.wrong_code("alice")))
            .accepted
    );
    // The password alone (no code at its end): rejected.
    assert!(!server.authenticate("alice", PASSWORD).accepted);
    // A recovery code in place of the code, with its dashes.
    let with_recovery = format!("{PASSWORD}{}", recovery[0]);
    assert!(
        server.authenticate("alice", &with_recovery).accepted,
        "{}",
        server.log()
    );
    assert!(!server.authenticate("alice", &with_recovery).accepted);
    // A counter-based token's code.
    assert!(
        server
            .authenticate("dave", &format!("{PASSWORD}{}", hotp(1)))
            .accepted
    );
    // bob must use MFA and has no app: this service cannot set one up; denied, and mfad says
    // why.
    assert!(
        !server
            .authenticate("bob", &format!("{PASSWORD}123456"))
            .accepted
    );
    assert!(
        env.daemon_log().contains("user=bob"),
        "{}",
        env.daemon_log()
    );
    // carol needs no second factor: the password alone, which pam_unix asks for itself.
    let carol = server.authenticate("carol", PASSWORD);
    assert!(carol.accepted, "{}\n{}", carol.output, server.log());
    // The denials are in the audit trail, as for any service.
    let audit = env.ctl(&["audit", "--user", "alice", "--event", "login-denied"], "");
    let denied: Vec<&str> = audit
        .stdout
        .lines()
        .filter_map(|line| {
            line.split_once("user=alice ")?
                .1
                .split_once(", no tries left")
        })
        .map(|(why, _)| why)
        .collect();
    assert_eq!(
        denied,
        [
            "code already used",
            "wrong code",
            "wrong code",
            "recovery code already used"
        ],
        "{}",
        audit.stdout
    );
    // (A wrong password after a right code is pam_unix's denial: the code was spent.)
}
