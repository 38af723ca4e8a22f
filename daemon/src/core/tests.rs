//! The core's decisions, on a real SQLite store with a fake clock: who may act on which
//! account, what a reset removes and reports, what a reload changes and keeps.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use pam_mfa_api::{Action, Error, NextLogin, context};
use pam_mfa_config::Config;

use super::{Caller, Core};
use crate::clock::FakeClock;
use crate::store::Store;

/// A time in the middle of a 30-second step.
const T0: u64 = 1_700_000_010;
/// An account every Debian system has, which no test enrolls: for callers that are not root.
const NOBODY: u32 = 65_534;
const SECRET: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

struct Fixture {
    dir: PathBuf,
    store: Arc<Store>,
    core: Core<Arc<FakeClock>>,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Fixture {
    fn config_file(&self) -> PathBuf {
        self.dir.join("mfad.toml")
    }

    /// The kinds of the audit trail's rows, oldest first.
    fn trail(&self) -> Vec<String> {
        let rows = self.store.audit_tail(100).unwrap();
        rows.into_iter().map(|row| row.kind).collect()
    }
}

fn fixture(config: &str) -> Fixture {
    static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "mfad-core-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    let store = Arc::new(Store::open_sqlite(&dir.join("state")));
    let path = dir.join("mfad.toml");
    std::fs::write(&path, config).unwrap();
    let core = Core::new(
        Config::parse(config).unwrap(),
        store.clone(),
        Arc::new(FakeClock::at(T0)),
    )
    .reloading_from(path);
    Fixture { dir, store, core }
}

fn root() -> Caller {
    Caller {
        uid: 0,
        connection: ":1.1".into(),
    }
}

fn nobody() -> Caller {
    Caller {
        uid: NOBODY,
        connection: ":1.2".into(),
    }
}

fn ssh() -> HashMap<String, String> {
    HashMap::from([
        (context::SERVICE.to_owned(), "sshd".to_owned()),
        (context::RHOST.to_owned(), "192.0.2.7".to_owned()),
    ])
}

#[test]
fn only_root_may_run_the_login_of_another_account() {
    let f = fixture("");
    let refused = f.core.begin(&nobody(), "root", &ssh()).unwrap_err();
    assert!(
        matches!(&refused, Error::PermissionDenied(text) if text.contains("only root")),
        "{refused:?}"
    );
    // Root may run anyone's: here a user the system does not know, without an app, of whom
    // nothing is required.
    let (session, turn) = f.core.begin(&root(), "alice", &ssh()).unwrap();
    assert!(session.is_empty());
    assert!(matches!(turn.action, Action::Skip), "{turn:?}");
}

#[test]
fn administration_is_for_root_and_the_admin_group_only() {
    let f = fixture("");
    f.core.require_admin(&root()).unwrap();
    let refused = f.core.require_admin(&nobody()).unwrap_err();
    assert!(matches!(refused, Error::PermissionDenied(_)), "{refused:?}");
}

#[test]
fn a_user_is_known_by_their_uid_never_by_a_name_they_give() {
    let f = fixture("");
    let status = f.core.own_status(&nobody()).unwrap();
    assert_eq!(status.user, "nobody");
    assert!(!status.enrolled);
}

#[test]
fn a_reset_removes_the_app_ends_logins_under_way_and_says_what_the_next_login_does() {
    let f = fixture("");
    let imported = f
        .core
        .import(&root(), &[("alice".into(), SECRET.into())])
        .unwrap();
    assert_eq!(imported, 1);
    f.core.set_user_enforcement(&root(), "alice", true).unwrap();
    let (session, turn) = f.core.begin(&root(), "alice", &ssh()).unwrap();
    assert!(matches!(turn.action, Action::AskHidden(_)), "{turn:?}");

    let outcome = f.core.reset(&root(), "alice").unwrap();
    assert!(outcome.removed);
    assert_eq!(outcome.next_login, NextLogin::Enroll);
    let ended = f.core.answer(&root(), &session, "123456").unwrap_err();
    assert!(matches!(ended, Error::NoSuchSession(_)), "{ended:?}");

    // Nothing left to remove: said so, and the trail records only the removal.
    let again = f.core.reset(&root(), "alice").unwrap();
    assert!(!again.removed);
    assert_eq!(again.next_login, NextLogin::Enroll);
    let resets = f
        .trail()
        .iter()
        .filter(|kind| *kind == "enrollment-reset")
        .count();
    assert_eq!(resets, 1, "{:?}", f.trail());
    // Not for anyone else to do.
    let refused = f.core.require_admin(&nobody()).unwrap_err();
    assert!(matches!(refused, Error::PermissionDenied(_)));
}

#[test]
fn a_reset_of_a_user_without_a_rule_says_the_next_login_asks_nothing() {
    let f = fixture("");
    f.core
        .import(&root(), &[("bob".into(), SECRET.into())])
        .unwrap();
    let outcome = f.core.reset(&root(), "bob").unwrap();
    assert!(outcome.removed);
    assert_eq!(outcome.next_login, NextLogin::NoSecondFactor);
}

#[test]
fn a_reload_puts_the_new_rules_in_use_and_says_what_changed() {
    let f = fixture("");
    std::fs::write(
        f.config_file(),
        "state_dir = \"/elsewhere\"\n[enforcement]\nall_users = true\n",
    )
    .unwrap();
    let summary = f.core.reload(Some(&root())).unwrap();
    assert!(
        summary.contains("changed: enforcement.all_users"),
        "{summary}"
    );
    // The state directory is the store's: it changes only when mfad starts again.
    assert!(summary.contains("note: state_dir stays"), "{summary}");
    assert_eq!(f.trail(), ["config-reloaded", "policy-changed"]);
    // In use at once: the login of an account without an app now sets one up.
    let (_, turn) = f.core.begin(&root(), "nobody", &ssh()).unwrap();
    assert!(matches!(turn.action, Action::AskHidden(_)), "{turn:?}");
}

#[test]
fn a_broken_configuration_is_refused_and_the_one_in_use_stays() {
    let f = fixture("[enforcement]\nall_users = true\n");
    std::fs::write(f.config_file(), "[enforcement]\nall_users = maybe\n").unwrap();
    let refused = f.core.reload(Some(&root())).unwrap_err();
    assert!(
        matches!(&refused, Error::InvalidArgument(text) if text.contains("the configuration in use stays")),
        "{refused:?}"
    );
    assert_eq!(f.trail(), ["config-refused"]);
    let (_, turn) = f.core.begin(&root(), "nobody", &ssh()).unwrap();
    assert!(matches!(turn.action, Action::AskHidden(_)), "{turn:?}");
}
