//! Who must use MFA where: rules in mfad.toml (groups from the system's group database,
//! services, remote networks, exemptions) combined with `mfactl enforce`, one precedence rule,
//! `mfactl explain` agreeing with real logins, and reloading the rules without a restart.

use pam_mfa_tests::{Env, Transcript};

/// The rules of these tests: MFA for `wheel` and for sshd; never for `breakglass`, the user
/// `rescue`... (no such account here: exemptions of names the system does not know are
/// allowed), console logins (`login`), or the management network 10.9.0.0/16.
const RULES: &str = "\
[enforcement]
groups = [\"wheel\"]
services = [\"sshd\"]

[exemptions]
users = [\"rescue\"]
groups = [\"breakglass\"]
services = [\"login\"]
networks = [\"10.9.0.0/16\"]
";

fn env_with_rules() -> Env {
    Env::new()
        .config(RULES)
        // So that a login asked for nothing is PAM_SUCCESS, not PAM_IGNORE.
        .module_args("notrequired=success")
        .group("wheel", 2000, &["alice", "carol"])
        .group("breakglass", 2001, &["dave"])
        .start()
}

/// What a login did, in the words of `mfactl explain`'s decision.
fn observed(transcript: &Transcript) -> &'static str {
    let shown = |text: &str| transcript.lines.iter().any(|line| line.contains(text));
    if shown("Verification code: ") {
        "code"
    } else if shown("Code shown by the app: ") {
        "enroll"
    } else if transcript.result() == "PAM_SUCCESS" && transcript.prompts() == 0 {
        "no code"
    } else {
        "denied"
    }
}

fn explain(env: &Env, user: &str, service: &str, rhost: &str) -> serde_json::Value {
    let out = env.ctl(
        &[
            "--json",
            "explain",
            user,
            "--service",
            service,
            "--rhost",
            rhost,
        ],
        "",
    );
    assert!(out.success, "{}{}", out.stdout, out.stderr);
    serde_json::from_str(&out.stdout).unwrap()
}

/// One case: a login of `user` through `service` from `rhost`, what explain says (decision and
/// rule), and that the real login did just that.
fn check(env: &Env, user: &str, service: &str, rhost: &str, decision: &str, rule: &str) {
    let explained = explain(env, user, service, rhost);
    assert_eq!(
        (
            explained["decision"].as_str().unwrap(),
            explained["rule"].as_str().unwrap()
        ),
        (decision, rule),
        "explain {user} --service {service} --rhost {rhost:?}: {explained}"
    );
    let mut login = env.login(user).service(service);
    if !rhost.is_empty() {
        login = login.rhost(rhost);
    }
    let transcript = login.run();
    let expected = match decision {
        "code" => "code",
        "enroll" => "enroll",
        "exempt" | "no second factor" | "remembered" => "no code",
        _ => "denied",
    };
    assert_eq!(
        observed(&transcript),
        expected,
        "{user} {service} {rhost:?}: explain said {decision} ({rule}); the login showed {:#?}",
        transcript.lines
    );
}

/// Every step of the precedence rule, each through a real login and `mfactl explain`: the
/// exemptions first (user, group, service, network), then what requires MFA (every user, the
/// service, the user's switch, a group), else not required.
#[test]
fn explain_agrees_with_real_logins_over_every_rule() {
    let env = env_with_rules();
    env.enroll("alice");
    env.enroll("dave");
    let cases = [
        // (user, service, rhost, decision, rule)
        ("alice", "su", "", "code", "group wheel"),
        ("alice", "login", "", "exempt", "exempt service login"),
        (
            "alice",
            "sshd",
            "10.9.1.2",
            "exempt",
            "exempt network 10.9.0.0/16",
        ),
        ("alice", "sshd", "10.8.1.2", "code", "service sshd"),
        ("bob", "sshd", "192.0.2.1", "enroll", "service sshd"),
        ("bob", "su", "", "no second factor", "not enforced"),
        (
            "bob",
            "sudo",
            "192.0.2.1",
            "no second factor",
            "not enforced",
        ),
        ("carol", "sudo", "", "enroll", "group wheel"),
        (
            "dave",
            "sshd",
            "192.0.2.1",
            "exempt",
            "exempt group breakglass",
        ),
        // Not in the system's user database: exempt by name; otherwise never enrolled.
        ("rescue", "sshd", "192.0.2.1", "exempt", "exempt user"),
        ("ghost", "sshd", "192.0.2.1", "denied", "service sshd"),
    ];
    for (user, service, rhost, decision, rule) in cases {
        check(&env, user, service, rhost, decision, rule);
    }
    // The stored switches come after the exemptions and before the rest.
    assert!(env.ctl(&["enforce", "bob", "on"], "").success);
    check(&env, "bob", "su", "", "enroll", "user");
    check(&env, "alice", "su", "", "code", "group wheel");
    assert!(env.ctl(&["enforce", "--all", "on"], "").success);
    check(&env, "alice", "su", "", "code", "all users");
    check(&env, "bob", "sshd", "192.0.2.1", "enroll", "all users");
    check(
        &env,
        "dave",
        "sshd",
        "192.0.2.1",
        "exempt",
        "exempt group breakglass",
    );
    check(&env, "alice", "login", "", "exempt", "exempt service login");
    // The text form names the rule and where it comes from.
    let out = env.ctl(
        &[
            "explain",
            "dave",
            "--service",
            "sshd",
            "--rhost",
            "192.0.2.1",
        ],
        "",
    );
    assert!(
        out.stdout.contains("decision: exempt")
            && out.stdout.contains("rule:     exempt group breakglass\n")
            && out
                .stdout
                .contains("why:      the user is a member of breakglass, in exemptions.groups"),
        "{}",
        out.stdout
    );
    // Explaining changes nothing: no row in the audit trail, no enrollment started.
    let audit = env.ctl(&["audit", "--user", "carol"], "");
    assert!(
        audit.stdout.matches("enrollment started").count() == 1,
        "only carol's real login started an enrollment:\n{}",
        audit.stdout
    );
}

/// Explain is for administrators; a locked account says until when.
#[test]
fn explain_is_for_administrators_and_shows_a_lock() {
    let env = env_with_rules();
    env.enroll("alice");
    let refused = env.ctl_as(Some(1001), &["explain", "alice"], "");
    assert!(!refused.success);
    assert!(
        refused.stderr.contains("only root may administer pam-mfa"),
        "{}",
        refused.stderr
    );
    env.lock_out("alice", "su");
    let explained = explain(&env, "alice", "su", "");
    assert_eq!(explained["decision"], "locked", "{explained}");
    assert!(explained["until"].as_i64().unwrap() > 0, "{explained}");
    let text = env.ctl(&["explain", "alice", "--service", "su"], "");
    assert!(
        text.stdout.contains("decision: locked until "),
        "{}",
        text.stdout
    );
    check(&env, "alice", "su", "", "locked", "group wheel");
    // An exemption is not a lock's business: the break-glass path stays open.
    check(&env, "alice", "login", "", "exempt", "exempt service login");
}

/// Group membership comes from the system's group database as mfad sees it, supplementary
/// groups included; a group that does not exist matches no one (and the reload says so).
#[test]
fn group_rules_follow_the_group_database() {
    let env = Env::new()
        .config("[enforcement]\ngroups = [\"wheel\", \"nosuchgroup\"]\n")
        .module_args("notrequired=success")
        .group("wheel", 2000, &["bob"])
        .start();
    let explained = explain(&env, "bob", "su", "");
    assert_eq!(explained["rule"], "group wheel");
    assert_eq!(explained["groups"], serde_json::json!(["wheel"]));
    let explained = explain(&env, "carol", "su", "");
    assert_eq!(explained["rule"], "not enforced");
    let out = env.ctl(&["reload"], "");
    assert!(out.success, "{}", out.stderr);
    assert!(
        out.stdout
            .contains("note: group nosuchgroup is not in the system's group database"),
        "{}",
        out.stdout
    );
}

/// `mfactl reload` and SIGHUP put a new configuration in use; a broken one is refused with the
/// line that is wrong, and the one in use stays.
#[test]
fn reload_applies_new_rules_and_keeps_the_old_ones_when_the_new_are_broken() {
    let env = Env::new()
        .module_args("notrequired=success")
        .group("wheel", 2000, &["bob"])
        .start();
    check(&env, "bob", "su", "", "no second factor", "not enforced");
    env.write_config("[enforcement]\ngroups = [\"wheel\"]\n");
    let out = env.ctl(&["reload"], "");
    assert!(out.success, "{}{}", out.stdout, out.stderr);
    assert_eq!(
        out.stdout.trim(),
        "configuration reloaded; changed: enforcement.groups"
    );
    check(&env, "bob", "su", "", "enroll", "group wheel");
    // Broken: an unknown key, and a contradiction (the harness writes three lines first).
    env.write_config("[enforcement]\ngroups = [\"wheel\"]\nservice = [\"sshd\"]\n");
    let out = env.ctl(&["reload"], "");
    assert!(!out.success);
    assert!(
        out.stderr.contains("line 6") && out.stderr.contains("unknown field `service`"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("the configuration in use stays"),
        "{}",
        out.stderr
    );
    env.write_config("[enforcement]\ngroups = [\"wheel\"]\n[exemptions]\ngroups = [\"wheel\"]\n");
    let out = env.ctl(&["reload"], "");
    assert!(
        out.stderr.contains("line 7") && out.stderr.contains("both required"),
        "{}",
        out.stderr
    );
    check(&env, "bob", "su", "", "enroll", "group wheel");
    assert!(
        env.daemon_log()
            .contains("configuration not reloaded, the one in use stays"),
        "{}",
        env.daemon_log()
    );
    // SIGHUP reads it too.
    env.write_config("[exemptions]\nnetworks = [\"local\"]\n[enforcement]\ngroups = [\"wheel\"]\n");
    let pid = env.daemon_pid().unwrap();
    // SAFETY: signals our own child process.
    unsafe { libc::kill(pid as libc::pid_t, libc::SIGHUP) };
    pam_mfa_tests::wait_until("mfad reloads on SIGHUP", || {
        explain(&env, "bob", "su", "")["rule"] == "exempt network local"
    });
    check(&env, "bob", "su", "", "exempt", "exempt network local");
    check(&env, "bob", "su", "192.0.2.1", "enroll", "group wheel");
    // A missing file is not "the defaults" on reload: it is refused.
    std::fs::remove_file(env.config_path()).unwrap();
    let out = env.ctl(&["reload"], "");
    assert!(
        !out.success && out.stderr.contains("cannot read"),
        "{}",
        out.stderr
    );
    check(&env, "bob", "su", "", "exempt", "exempt network local");
    // The trail says who reloaded, what changed, and what was refused.
    let audit = env.ctl(&["audit"], "").stdout;
    for expected in [
        "configuration reloaded: changed: enforcement.groups by uid 0",
        "policy changed: enforcement.groups: [] -> [\"wheel\"] by uid 0",
        "configuration not reloaded, the one in use stays:",
        "policy changed: exemptions.networks: [] -> [\"local\"]",
    ] {
        assert!(audit.contains(expected), "{expected:?} in:\n{audit}");
    }
}
