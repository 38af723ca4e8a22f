//! Logins through the real libpam, pam_mfa.so, a private system-like bus and mfad.

use pam_mfa_tests::{Env, current_step};

#[test]
fn right_code_logs_in() {
    let env = Env::new().start();
    env.enroll("alice");
    env.login("alice")
        .answer(&env.fresh_code("alice"))
        .run()
        .expect("PAM_SUCCESS")
        .shows("PROMPT_ECHO_OFF Verification code:");
}

#[test]
fn wrong_code_is_refused_and_the_user_may_try_again() {
    let env = Env::new().start();
    env.enroll("alice");
    let login = env
        .login("alice")
        .answer(&env.wrong_code("alice"))
        .answer(&env.fresh_code("alice"))
        .run();
    login
        .expect("PAM_SUCCESS")
        .shows("ERROR_MSG Wrong code. Try again.");
    assert_eq!(login.prompts(), 2);
}

#[test]
fn three_wrong_codes_deny_with_maxtries() {
    let env = Env::new().start();
    env.enroll("alice");
    let wrong = env.wrong_code("alice");
    let login = env
        .login("alice")
        .answer(&wrong)
        .answer(&wrong)
        .answer(&wrong)
        .answer(&env.fresh_code("alice"))
        .run();
    login.expect("PAM_MAXTRIES").shows("ERROR_MSG Wrong code.");
    assert_eq!(login.prompts(), 3, "a fourth try must not be offered");
}

#[test]
fn max_tries_is_configurable() {
    let env = Env::new().config("[login]\nmax_tries = 1\n").start();
    env.enroll("alice");
    let login = env.login("alice").answer(&env.wrong_code("alice")).run();
    login.expect("PAM_MAXTRIES");
    assert_eq!(login.prompts(), 1);
}

#[test]
fn a_used_code_is_refused_the_second_time() {
    let env = Env::new().start();
    env.enroll("alice");
    let code = env.fresh_code("alice");
    env.login("alice").answer(&code).run().expect("PAM_SUCCESS");
    env.login("alice")
        .answer(&code)
        .answer(&env.fresh_code("alice"))
        .run()
        .expect("PAM_SUCCESS")
        .shows("ERROR_MSG This code was already used; wait for the next one.");
}

#[test]
fn twenty_parallel_logins_with_one_code_give_exactly_one_success() {
    // Replays only: no lockout in the way (lockout has tests of its own).
    let env = Env::new()
        .config("[login]\nmax_tries = 1\n[lockout]\nfailures = 100\n")
        .start();
    env.enroll("alice");
    let code = env.fresh_code("alice");
    let running: Vec<_> = (0..20)
        .map(|_| env.login("alice").answer(&code).spawn())
        .collect();
    let results: Vec<String> = running
        .into_iter()
        .map(|login| login.finish().result().to_owned())
        .collect();
    let successes = results.iter().filter(|r| *r == "PAM_SUCCESS").count();
    assert_eq!(successes, 1, "results: {results:?}");
    assert!(
        results
            .iter()
            .all(|r| r == "PAM_SUCCESS" || r == "PAM_MAXTRIES"),
        "every other login is a clean denial: {results:?}"
    );
}

#[test]
fn codes_from_oathtool_are_accepted() {
    let env = Env::new().start();
    let secret = env.enroll("alice");
    pam_mfa_tests::away_from_step_end(5);
    let code = oathtool(&secret, "SHA1", 6, current_step());
    assert_eq!(
        code,
        pam_mfa_tests::code_at(&secret, current_step()),
        "same code as ours"
    );
    env.login("alice").answer(&code).run().expect("PAM_SUCCESS");
}

/// Asserts that pam_mfa returned PAM_IGNORE for `user`: alone in a stack it leaves libpam with
/// no result (PAM_PERM_DENIED), after pam_permit the stack succeeds, and nothing is asked.
fn expect_ignored(env: &Env, user: &str) {
    let alone = env.login(user).run();
    alone.expect("PAM_PERM_DENIED");
    assert_eq!(alone.prompts(), 0, "no question for a user without MFA");
    let after_permit = env.login(user).service("permit-then-mfa").run();
    after_permit.expect("PAM_SUCCESS");
    assert_eq!(after_permit.prompts(), 0);
}

/// MFA is required of `user`, who has no authenticator: the login shows the enrollment and asks
/// for a code from the app (the test gives none, so the conversation fails).
fn expect_enrollment_offered(env: &Env, user: &str) {
    for service in ["mfa", "permit-then-mfa"] {
        env.login(user)
            .service(service)
            .run()
            .expect("PAM_CONV_ERR")
            .shows("TEXT_INFO Two-factor authentication is required for this")
            .shows("PROMPT_ECHO_OFF Code shown by the app: ");
    }
}

/// The code of `secret` for time step `step` from oathtool, an independent implementation.
fn oathtool(secret: &str, algorithm: &str, digits: u32, step: u64) -> String {
    let output = std::process::Command::new("oathtool")
        .args([
            &format!("--totp={algorithm}"),
            &format!("--digits={digits}"),
            "--base32",
            secret,
        ])
        .arg(format!("--now=@{}", step * pam_mfa_tests::PERIOD))
        .output()
        .expect("oathtool is missing: install oathtool (see README, test command)");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

#[test]
fn enrollments_keep_their_algorithm_and_digits() {
    let env = Env::new()
        .config("[totp]\nalgorithm = \"SHA256\"\ndigits = 8\n")
        .start();
    let secret = pam_mfa_tests::random_secret();
    pam_mfa_tests::away_from_step_end(5);
    let confirm = oathtool(&secret, "SHA256", 8, current_step() - 1);
    let out = env.ctl(
        &["enroll", "alice", "--secret", &secret],
        &format!("{confirm}\n"),
    );
    assert!(out.success, "{}", out.stderr);
    assert!(
        out.stdout.contains("algorithm=SHA256") && out.stdout.contains("digits=8"),
        "{}",
        out.stdout
    );
    let status = env.ctl(&["status", "alice"], "").stdout;
    assert!(status.contains("8 digits, 30 s, SHA256"), "{status}");
    let code = oathtool(&secret, "SHA256", 8, current_step());
    assert_eq!(code.len(), 8);
    env.login("alice").answer(&code).run().expect("PAM_SUCCESS");
}

#[test]
fn not_enrolled_and_not_enforced_is_ignored() {
    let env = Env::new().start();
    expect_ignored(&env, "bob");
}

#[test]
fn global_enforcement_requires_mfa_of_users_without_an_enrollment() {
    let env = Env::new().start();
    env.enroll("alice");
    let out = env.ctl(&["enforce", "--all", "on"], "");
    assert!(out.success, "{}", out.stderr);
    expect_enrollment_offered(&env, "bob");
    env.login("alice")
        .answer(&env.fresh_code("alice"))
        .run()
        .expect("PAM_SUCCESS");
    assert!(env.ctl(&["enforce", "--all", "off"], "").success);
    expect_ignored(&env, "bob");
}

#[test]
fn without_enrollment_at_login_an_enforced_user_is_denied_and_told_how_to_enroll() {
    let env = Env::new()
        .config("[login]\nenroll_at_login = false\n")
        .start();
    env.enroll("alice");
    let out = env.ctl(&["enforce", "--all", "on"], "");
    assert!(out.success, "{}", out.stderr);
    let denied = env.login("bob").run();
    denied
        .expect("PAM_AUTH_ERR")
        .shows("ERROR_MSG Two-factor authentication is required for this account")
        .shows("Ask your system administrator to set one up (mfactl enroll bob)");
    assert_eq!(denied.prompts(), 0);
    env.login("alice")
        .answer(&env.fresh_code("alice"))
        .run()
        .expect("PAM_SUCCESS");
    assert!(env.ctl(&["enforce", "--all", "off"], "").success);
    expect_ignored(&env, "bob");
}

#[test]
fn global_enforcement_can_come_from_the_config() {
    let env = Env::new()
        .config("[enforcement]\nall_users = true\n")
        .start();
    expect_enrollment_offered(&env, "bob");
    // The stored switch wins over the configured default.
    assert!(env.ctl(&["enforce", "--all", "off"], "").success);
    expect_ignored(&env, "bob");
}

#[test]
fn per_user_enforcement_applies_to_that_user_only() {
    let env = Env::new().start();
    assert!(env.ctl(&["enforce", "bob", "on"], "").success);
    expect_enrollment_offered(&env, "bob");
    expect_ignored(&env, "carol");
    assert!(env.ctl(&["enforce", "bob", "off"], "").success);
    expect_ignored(&env, "bob");
}

#[test]
fn reset_takes_effect_at_the_next_login() {
    let env = Env::new().start();
    env.enroll("alice");
    env.login("alice")
        .answer(&env.fresh_code("alice"))
        .run()
        .expect("PAM_SUCCESS");
    let out = env.ctl(&["reset", "--yes", "alice"], "");
    assert!(out.success, "{}", out.stderr);
    assert!(
        out.stdout.contains(
            "alice: authenticator app, recovery codes and any unfinished enrollment removed; \
             the next login asks for no second factor"
        ),
        "{}",
        out.stdout
    );
    expect_ignored(&env, "alice");
    assert!(env.ctl(&["enforce", "alice", "on"], "").success);
    // Reset again, now that MFA is required of alice: mfactl says she will enroll.
    let out = env.ctl(&["reset", "--yes", "alice"], "");
    assert!(
        out.stdout
            .contains("the next login sets up an authenticator app"),
        "{}",
        out.stdout
    );
    expect_enrollment_offered(&env, "alice");
}

#[test]
fn state_survives_a_daemon_restart() {
    let env = Env::new().start();
    env.enroll("alice");
    assert!(env.ctl(&["enforce", "bob", "on"], "").success);
    let code = env.fresh_code("alice");
    env.login("alice").answer(&code).run().expect("PAM_SUCCESS");
    env.stop_daemon();
    env.start_daemon();
    expect_enrollment_offered(&env, "bob");
    env.login("alice")
        .answer(&code)
        .answer(&env.fresh_code("alice"))
        .run()
        .expect("PAM_SUCCESS")
        .shows("already used");
}
