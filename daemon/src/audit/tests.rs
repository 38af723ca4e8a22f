//! Every event as a line: printable, without secrets, kept or not in the audit table.

use super::*;
use crate::codes::totp::Secret;

fn name(text: &str) -> UserName {
    UserName::parse(text).unwrap()
}

/// One of every event, with the context a hostile client could send.
fn every_event() -> Vec<Event> {
    let context = Context::new("sshd\n\u{7}evil", &"h".repeat(10_000));
    let alice = name("alice");
    vec![
        Event::LoginAllowed {
            user: alice.clone(),
            context: context.clone(),
        },
        Event::LoginSkipped {
            user: alice.clone(),
            context: context.clone(),
        },
        Event::LoginDenied {
            user: "al\nice".into(),
            context: context.clone(),
            why: Denial::NotEnrolled,
        },
        Event::LoginDenied {
            user: String::new(),
            context: context.clone(),
            why: Denial::InvalidName("the user name is empty".into()),
        },
        Event::LoginDenied {
            user: "alice".into(),
            context: context.clone(),
            why: Denial::TooManyLogins(32),
        },
        Event::LoginDenied {
            user: "zed".into(),
            context: context.clone(),
            why: Denial::UnknownUser,
        },
        Event::LoginDenied {
            user: "alice".into(),
            context: context.clone(),
            why: Denial::Locked(1_700_000_000),
        },
        Event::LoginDenied {
            user: "alice".into(),
            context: context.clone(),
            why: Denial::ResetDuringLogin,
        },
        Event::LoginDenied {
            user: "alice".into(),
            context: context.clone(),
            why: Denial::NoTriesLeft(Rejection::Replayed),
        },
        Event::CodeRejected {
            user: alice.clone(),
            context,
            why: Rejection::Wrong,
            tries_left: 2,
        },
        Event::LoginRefused {
            uid: 1000,
            user: "bob".into(),
        },
        Event::AdminRefused { uid: 1000 },
        Event::EnrollmentStarted {
            user: alice.clone(),
        },
        Event::EnrollmentConfirmed {
            user: alice.clone(),
        },
        Event::RecoveryCodeUsed {
            user: alice.clone(),
            context: Context::new("sudo", ""),
            left: 9,
        },
        Event::RecoveryCodesRenewed {
            user: alice.clone(),
        },
        Event::LockedOut {
            user: alice.clone(),
            context: Context::new("sshd", "10.0.0.9"),
            until: 1_700_000_000,
        },
        Event::Unlocked {
            user: alice.clone(),
        },
        Event::EnrollmentDisabled {
            user: alice.clone(),
        },
        Event::EnrollmentsImported { count: 3 },
        Event::EnrollmentReset {
            user: alice.clone(),
            removed: true,
        },
        Event::EnforcementSet {
            scope: Scope::AllUsers,
            on: true,
        },
        Event::EnforcementSet {
            scope: Scope::User(alice.clone()),
            on: false,
        }
        .by(0),
        Event::EnrollmentReset {
            user: alice.clone(),
            removed: true,
        }
        .by(1000),
        Event::Challenged {
            user: alice.clone(),
            context: Context::new("sshd", "10.0.0.9"),
            rule: EnforcedBy::Group("wheel".into()),
            at: 1_700_000_000,
        },
        Event::LoginExempt {
            user: alice.clone(),
            context: Context::new("login", ""),
            rule: EnforcedBy::ExemptService("login".into()),
        },
        Event::RememberedLogin {
            user: alice.clone(),
            context: Context::new("sshd", "10.0.0.9"),
            verified: 1_700_000_000,
        },
        Event::LoginAbandoned {
            user: alice.clone(),
            context: Context::new("sshd", "10.0.0.9"),
            codes: 0,
        },
        Event::LoginAbandoned {
            user: alice.clone(),
            context: Context::new("sshd", "10.0.0.9"),
            codes: 2,
        },
        Event::EnrollmentAbandoned {
            user: alice.clone(),
            context: Context::new("sshd", "10.0.0.9"),
            confirmed: false,
        },
        Event::ConfigReloaded {
            changed: "remember, exemptions".into(),
        },
        Event::SecretsResealed { key: 2, count: 7 }.by(0),
        Event::ConfigRefused {
            reason: "TOML parse error at line 3, column 1\n  |\n3 | x = 1\n  |\nunknown\n".into(),
        },
        Event::PolicyChanged {
            changes: "enforcement.groups: [] -> [\"wheel\"]\n\u{7}".into(),
        }
        .by(0),
        Event::Pair(
            Box::new(Event::Challenged {
                user: alice.clone(),
                context: Context::new("sshd", ""),
                rule: EnforcedBy::User,
                at: 1,
            }),
            Box::new(Event::LoginAllowed {
                user: alice,
                context: Context::new("sshd", ""),
            }),
        ),
    ]
}

#[test]
fn every_event_is_one_printable_line() {
    for event in every_event() {
        let line = event.to_string();
        assert!(!line.is_empty());
        assert!(
            line.chars().all(|c| c == ' ' || c.is_ascii_graphic()),
            "{line:?}"
        );
        assert!(line.len() < 600, "{} bytes: {line:.80}", line.len());
        assert!(!event.kind().is_empty());
    }
}

/// Events have no field that can hold a secret: the only way a secret could reach a line is
/// through its Debug form, which is redacted.
#[test]
fn times_read_as_dates_and_counts_as_words() {
    let alice = UserName::parse("alice").unwrap();
    let locked = Event::LockedOut {
        user: alice.clone(),
        context: Context::new("sshd", "10.0.0.1"),
        until: 1_796_624_021,
    };
    assert!(
        locked
            .to_string()
            .contains("locked until 2026-12-07 06:13 UTC"),
        "{locked}"
    );
    let rejected = Event::CodeRejected {
        user: alice,
        context: Context::new("sudo", ""),
        why: Rejection::Wrong,
        tries_left: 1,
    };
    assert!(rejected.to_string().contains("1 try left"), "{rejected}");
}

#[test]
fn no_secret_can_be_rendered() {
    let secret = Secret::from_base32("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP").unwrap();
    let shown = format!("{secret:?}");
    assert!(!shown.contains("JBSW"), "{shown}");
    assert!(shown.contains("redacted"));
    for event in every_event() {
        let line = format!("{event} {event:?}");
        assert!(!line.contains("JBSWY3DP"), "{line}");
    }
}

#[test]
fn frequent_events_stay_out_of_the_audit_table() {
    let kept: Vec<&str> = every_event()
        .iter()
        .filter(|event| event.is_kept())
        .map(Event::kind)
        .collect();
    assert!(kept.contains(&"login-allowed"));
    assert!(kept.contains(&"enrollment-reset"));
    assert!(!kept.contains(&"code-rejected"));
    assert!(!kept.contains(&"login-refused"));
}
