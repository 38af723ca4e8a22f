//! The dialogue on a real SQLite store with a fake clock.

use std::path::PathBuf;

use pam_mfa_config::Algorithm;

use super::*;
use crate::clock::FakeClock;
use crate::codes::totp::{Params, Secret};
use crate::store::contract::imports;

const PERIOD: u64 = 30;
/// A time in the middle of a step.
const T0: u64 = 1_700_000_010;

struct Fixture {
    dir: PathBuf,
    store: Arc<Store>,
    clock: Arc<FakeClock>,
    dialogue: Dialogue<Arc<FakeClock>>,
    secret: Secret,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn params() -> Params {
    Params {
        kind: crate::codes::totp::Kind::Totp,
        algorithm: Algorithm::Sha1,
        digits: 6,
        period: PERIOD as u32,
    }
}

fn name(text: &str) -> UserName {
    UserName::parse(text).unwrap()
}

fn caller(connection: &str) -> Caller {
    Caller {
        uid: 0,
        connection: connection.into(),
    }
}

fn fixture(config: &str) -> Fixture {
    static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "mfad-dialogue-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    let store = Arc::new(Store::open_sqlite(&dir));
    let secret = Secret::from_bytes(b"12345678901234567890".to_vec());
    let imported = Event::EnrollmentsImported { count: 1 };
    store
        .import(&imports(&[(name("alice"), secret.clone())]), 1, &imported)
        .unwrap()
        .unwrap();
    let config = Config::parse(config).unwrap();
    let clock = Arc::new(FakeClock::at(T0));
    let settings = Settings::with_issuer(config, "test".into());
    assert_eq!(settings.new_enrollments.params, params());
    let dialogue = Dialogue::new(store.clone(), clock.clone(), settings);
    Fixture {
        dir,
        store,
        clock,
        dialogue,
        secret,
    }
}

impl Fixture {
    fn code_at(&self, time: u64) -> String {
        totp::code_at_step(&self.secret, params(), time / PERIOD).to_string()
    }

    fn begin(&self, connection: &str) -> Reply {
        self.dialogue
            .begin(
                &caller(connection),
                name("alice"),
                true,
                Context::new("sshd", ""),
                Vec::new(),
                None,
            )
            .unwrap()
    }

    fn answer(&self, connection: &str, id: &str, reply: &str) -> Option<Reply> {
        self.dialogue
            .answer(&caller(connection), id, reply)
            .unwrap()
    }
}

fn asks_for_code(reply: &Reply) -> bool {
    reply.turn.action == Action::AskHidden(texts::CODE_PROMPT.into())
}

#[test]
fn the_right_code_is_allowed_once() {
    let f = fixture("");
    let first = f.begin(":1.1");
    assert!(asks_for_code(&first));
    let code = f.code_at(T0);
    let allowed = f.answer(":1.1", &first.session, &code).unwrap();
    assert_eq!(allowed.turn.action, Action::Allow);
    assert!(matches!(allowed.events[..], [Event::LoginAllowed { .. }]));
    assert_eq!(f.store.audit_tail(1).unwrap()[0].kind, "login-allowed");
    // The same code again: replay.
    let second = f.begin(":1.1");
    let replayed = f.answer(":1.1", &second.session, &code).unwrap();
    assert!(asks_for_code(&replayed));
    assert_eq!(
        replayed.turn.notices,
        [Notice::Error(texts::REPLAYED.into())]
    );
}

#[test]
fn tries_run_out() {
    let f = fixture("[login]\nmax_tries = 2\n");
    let login = f.begin(":1.1");
    let again = f.answer(":1.1", &login.session, "000000").unwrap();
    assert!(asks_for_code(&again));
    assert_eq!(
        again.turn.notices,
        [Notice::Error(texts::WRONG_CODE_AGAIN.into())]
    );
    assert!(matches!(
        again.events[..],
        [Event::CodeRejected { tries_left: 1, .. }]
    ));
    let last = f.answer(":1.1", &login.session, "000001").unwrap();
    assert_eq!(last.turn.action, Action::MaxTries);
    assert_eq!(last.turn.notices, [Notice::Error(texts::WRONG_CODE.into())]);
    assert!(
        f.answer(":1.1", &login.session, &f.code_at(T0)).is_none(),
        "a finished login takes no more answers"
    );
    assert_eq!(f.store.audit_tail(1).unwrap()[0].kind, "login-denied");
}

#[test]
fn sessions_expire() {
    let f = fixture("[login]\nsession_timeout = 60\n");
    let login = f.begin(":1.1");
    f.clock.advance(60);
    assert!(
        f.answer(":1.1", &login.session, &f.code_at(T0 + 60))
            .is_none()
    );
    assert_eq!(f.dialogue.open_sessions(), 0);
}

#[test]
fn an_abandoned_login_says_whether_codes_were_typed() {
    let f = fixture("[login]\nsession_timeout = 60\n");
    let silent = f.begin(":1.1");
    let tried = f.begin(":1.2");
    f.answer(":1.2", &tried.session, "000000").unwrap();
    f.clock.advance(60);
    assert!(f.answer(":1.1", &silent.session, "000000").is_none());
    let mut lines: Vec<String> = f
        .dialogue
        .sweep()
        .iter()
        .map(|(event, _)| event.outcome().to_string())
        .collect();
    lines.sort();
    assert!(
        lines[0].contains("ended after 1 code not accepted"),
        "{lines:?}"
    );
    assert!(lines[1].contains("no code given"), "{lines:?}");
}

#[test]
fn a_reset_during_the_login_denies_it() {
    let f = fixture("");
    let login = f.begin(":1.1");
    let reset = Event::EnrollmentReset {
        user: name("alice"),
        removed: true,
    };
    f.store
        .remove_enrollment(&name("alice"), 1, &reset)
        .unwrap();
    // Enrolled again with the same secret: still not the enrollment the login began with.
    let imported = Event::EnrollmentsImported { count: 1 };
    f.store
        .import(&imports(&[(name("alice"), f.secret.clone())]), 2, &imported)
        .unwrap()
        .unwrap();
    let denied = f.answer(":1.1", &login.session, &f.code_at(T0)).unwrap();
    assert!(matches!(denied.turn.action, Action::Deny(_)));
    assert_eq!(denied.events.len(), 1);
    assert!(matches!(
        denied.events[0].outcome(),
        Event::LoginDenied {
            why: Denial::ResetDuringLogin,
            ..
        }
    ));
    let kinds: Vec<String> = (f.store.audit_tail(2).unwrap().into_iter())
        .map(|row| row.kind)
        .collect();
    assert_eq!(kinds, ["challenged", "login-denied"]);
}

#[test]
fn codes_are_accepted_within_the_window_around_a_step_boundary() {
    let f = fixture("");
    // The last second of a step, and the first of the next.
    let boundary = (T0 / PERIOD + 1) * PERIOD;
    f.clock.set(boundary - 1);
    let previous = f.code_at(boundary - PERIOD - 1);
    let current = f.code_at(boundary - 1);
    let next = f.code_at(boundary);
    let two_back = f.code_at(boundary - 2 * PERIOD - 1);
    let login = f.begin(":1.1");
    let refused = f.answer(":1.1", &login.session, &two_back).unwrap();
    assert!(
        asks_for_code(&refused),
        "two steps back is outside window 1"
    );
    let allowed = f.answer(":1.1", &login.session, &previous).unwrap();
    assert_eq!(allowed.turn.action, Action::Allow);
    f.clock.set(boundary);
    // The current step's code, checked a second later in the next step: still accepted.
    let login = f.begin(":1.1");
    let allowed = f.answer(":1.1", &login.session, &current).unwrap();
    assert_eq!(allowed.turn.action, Action::Allow);
    // A used step stays used, also once the clock moved on.
    let login = f.begin(":1.1");
    let replayed = f.answer(":1.1", &login.session, &current).unwrap();
    assert_eq!(
        replayed.turn.notices,
        [Notice::Error(texts::REPLAYED.into())]
    );
    let allowed = f.answer(":1.1", &login.session, &next).unwrap();
    assert_eq!(allowed.turn.action, Action::Allow);
}

#[test]
fn a_session_answers_only_to_its_connection_and_ends_with_it() {
    let f = fixture("");
    let login = f.begin(":1.1");
    assert!(f.answer(":1.2", &login.session, &f.code_at(T0)).is_none());
    assert_eq!(f.dialogue.end_connection(":1.1"), 1);
    assert!(f.answer(":1.1", &login.session, &f.code_at(T0)).is_none());
    let login = f.begin(":1.3");
    assert!(f.dialogue.cancel(&caller(":1.3"), &login.session));
    assert_eq!(f.dialogue.open_sessions(), 0);
}

#[test]
fn abandoned_logins_do_not_lock_the_user_out() {
    let f = fixture("[login]\nmax_sessions_per_user = 2\n");
    for n in 0..2 {
        assert!(asks_for_code(&f.begin(&format!(":1.{n}"))));
    }
    let refused = f.begin(":1.9");
    assert!(matches!(refused.turn.action, Action::Deny(_)));
    assert_eq!(
        refused.turn.notices,
        [Notice::Error(texts::TOO_MANY_LOGINS.into())]
    );
    f.dialogue.end_connection(":1.0");
    let login = f.begin(":1.9");
    let allowed = f.answer(":1.9", &login.session, &f.code_at(T0)).unwrap();
    assert_eq!(allowed.turn.action, Action::Allow);
}

fn enforce(f: &Fixture, user: &str) {
    let on = Event::EnforcementSet {
        scope: crate::audit::Scope::User(name(user)),
        on: true,
    };
    f.store
        .set_user_enforcement(&name(user), true, 1, &on)
        .unwrap();
}

fn begin_as(f: &Fixture, user: &str) -> Reply {
    f.dialogue
        .begin(
            &caller(":1.1"),
            name(user),
            true,
            Context::default(),
            Vec::new(),
            None,
        )
        .unwrap()
}

/// The secret an enrollment block shows, read as a user would type it.
fn shown_secret(reply: &Reply) -> Secret {
    let Notice::Info(block) = &reply.turn.notices[0] else {
        panic!("{reply:?}");
    };
    let line = block
        .lines()
        .find_map(|line| line.split_once("by hand: ").map(|(_, secret)| secret))
        .unwrap_or_else(|| panic!("{block}"));
    Secret::from_base32(&line.replace(' ', "")).unwrap()
}

fn code_for(secret: &Secret, time: u64) -> String {
    totp::code_at_step(secret, params(), time / PERIOD).to_string()
}

/// Remembered logins renew their time with each use, but never past `remember.limit`
/// after the right code; then a code is asked again whatever `remember` says.
#[test]
fn remembered_logins_end_at_the_absolute_limit() {
    let f = fixture("[remember]\nduration = 100\nlimit = 250\n");
    let from = |rhost: &str, connection: &str| {
        f.dialogue
            .begin(
                &caller(connection),
                name("alice"),
                true,
                Context::new("sshd", rhost),
                Vec::new(),
                None,
            )
            .unwrap()
    };
    let login = from("192.0.2.1", ":1.1");
    let allowed = f.answer(":1.1", &login.session, &f.code_at(T0)).unwrap();
    assert_eq!(allowed.turn.action, Action::Allow);
    for later in [90, 90] {
        f.clock.advance(later);
        let remembered = from("192.0.2.1", ":1.1");
        assert_eq!(remembered.turn.action, Action::Allow, "{remembered:?}");
        assert!(matches!(
            remembered.events[..],
            [Event::RememberedLogin { .. }]
        ));
    }
    // 180 s after the code, last used now: the duration would cover 100 s more, the limit
    // only 70.
    f.clock.advance(71);
    let asked = from("192.0.2.1", ":1.1");
    assert!(
        matches!(asked.turn.action, Action::AskHidden(_)),
        "{asked:?}"
    );
    // A login run by a user's own program never uses a remembered code.
    let own = Caller {
        uid: 1000,
        connection: ":1.2".into(),
    };
    let code = f.code_at(f.clock.now());
    let login = from("192.0.2.1", ":1.3");
    let allowed = f.answer(":1.3", &login.session, &code).unwrap();
    assert_eq!(allowed.turn.action, Action::Allow);
    assert_eq!(
        from("192.0.2.1", ":1.3").turn.action,
        Action::Allow,
        "remembered for root"
    );
    let refused = f
        .dialogue
        .begin(
            &own,
            name("alice"),
            true,
            Context::new("sshd", ""),
            Vec::new(),
            None,
        )
        .unwrap();
    assert!(matches!(refused.turn.action, Action::AskHidden(_)));
    // Without a remote host (su, sudo, the console) nothing is remembered.
    let code = f.code_at(f.clock.now() + 30);
    let local = from("", ":1.4");
    let allowed = f.answer(":1.4", &local.session, &code).unwrap();
    assert_eq!(allowed.turn.action, Action::Allow);
    assert!(matches!(from("", ":1.4").turn.action, Action::AskHidden(_)));
}

#[test]
fn enforcement_decides_for_users_without_an_enrollment() {
    let f = fixture("[login]\nenroll_at_login = false\n");
    let skipped = begin_as(&f, "bob");
    assert_eq!(skipped.turn.action, Action::Skip);
    enforce(&f, "bob");
    let denied = begin_as(&f, "bob");
    assert!(matches!(denied.turn.action, Action::Deny(_)));
    assert_eq!(
        denied.turn.notices,
        [Notice::Error(texts::not_enrolled("bob"))]
    );
    assert!(denied.session.is_empty());
}

#[test]
fn an_enforced_user_without_an_app_enrolls_during_the_login() {
    let f = fixture("");
    enforce(&f, "bob");
    let shown = begin_as(&f, "bob");
    assert_eq!(
        shown.turn.action,
        Action::AskHidden(texts::ENROLL_PROMPT.into())
    );
    let Notice::Info(block) = &shown.turn.notices[0] else {
        panic!()
    };
    assert!(block.starts_with(texts::ENROLL_HEADING), "{block}");
    // The first line follows OpenSSH's "(user@host) ": short enough for both on one line.
    for heading in [texts::ENROLL_HEADING, texts::ENROLL_RESUMED_HEADING] {
        let first = heading.lines().next().unwrap();
        assert!(first.len() <= 50, "{first:?}");
        assert!(heading.lines().all(|line| line.len() <= 76), "{heading:?}");
    }
    assert!(block.contains("URI: otpauth://totp/"), "{block}");
    assert!(matches!(
        shown.events[..],
        [Event::EnrollmentStarted { .. }]
    ));
    let secret = shown_secret(&shown);
    // A wrong code first: asked again, nothing active.
    let wrong = f.answer(":1.1", &shown.session, "000000").unwrap();
    assert_eq!(
        wrong.turn.notices,
        [Notice::Error(texts::ENROLL_WRONG.into())]
    );
    assert!(f.store.enrollments(&name("bob")).unwrap().active.is_none());
    let saved = f
        .answer(":1.1", &shown.session, &code_for(&secret, T0))
        .unwrap();
    assert_eq!(
        saved.turn.action,
        Action::AskVisible(texts::SAVED_PROMPT.into())
    );
    let Notice::Info(codes) = &saved.turn.notices[0] else {
        panic!()
    };
    let codes: Vec<&str> = codes
        .lines()
        .filter_map(|line| line.strip_prefix("    "))
        .collect();
    assert_eq!(codes.len(), 10);
    assert!(f.store.enrollments(&name("bob")).unwrap().active.is_some());
    let allowed = f.answer(":1.1", &shown.session, "").unwrap();
    assert_eq!(allowed.turn.action, Action::Allow);
    // From now on, bob is asked for a code, and a recovery code works once in its place.
    let login = begin_as(&f, "bob");
    assert!(asks_for_code(&login));
    let used = f.answer(":1.1", &login.session, codes[3]).unwrap();
    assert_eq!(used.turn.action, Action::Allow);
    assert_eq!(
        used.turn.notices,
        [Notice::Info(texts::recovery_code_used(9))]
    );
    let login = begin_as(&f, "bob");
    let again = f.answer(":1.1", &login.session, codes[3]).unwrap();
    assert!(asks_for_code(&again), "a recovery code works once");
}

#[test]
fn two_successive_codes_confirm_when_configured() {
    let f = fixture("[login]\nenroll_confirm_codes = 2\nrecovery_codes = 0\n");
    enforce(&f, "bob");
    let shown = begin_as(&f, "bob");
    let secret = shown_secret(&shown);
    let next = f
        .answer(":1.1", &shown.session, &code_for(&secret, T0))
        .unwrap();
    assert_eq!(
        next.turn.action,
        Action::AskHidden(texts::ENROLL_NEXT_PROMPT.into())
    );
    let same = f
        .answer(":1.1", &shown.session, &code_for(&secret, T0))
        .unwrap();
    assert_eq!(
        same.turn.notices,
        [Notice::Error(texts::ENROLL_NOT_LATER.into())]
    );
    f.clock.advance(PERIOD);
    let done = f
        .answer(":1.1", &shown.session, &code_for(&secret, T0 + PERIOD))
        .unwrap();
    assert_eq!(done.turn.action, Action::Allow);
    assert!(matches!(
        done.events[..],
        [
            Event::EnrollmentConfirmed { .. },
            Event::LoginAllowed { .. }
        ]
    ));
}

#[test]
fn an_unfinished_enrollment_is_offered_again_until_it_expires() {
    let f = fixture("[login]\nenroll_resume_minutes = 10\n");
    enforce(&f, "bob");
    let first = begin_as(&f, "bob");
    let secret = shown_secret(&first);
    // The login is cut off after the QR code.
    f.dialogue.end_connection(":1.1");
    f.clock.advance(9 * 60);
    let resumed = begin_as(&f, "bob");
    assert_eq!(shown_secret(&resumed).as_bytes(), secret.as_bytes());
    let Notice::Info(block) = &resumed.turn.notices[0] else {
        panic!()
    };
    assert!(block.starts_with(texts::ENROLL_RESUMED_HEADING));
    f.dialogue.end_connection(":1.1");
    f.clock.advance(2 * 60);
    let fresh = begin_as(&f, "bob");
    assert_ne!(shown_secret(&fresh).as_bytes(), secret.as_bytes());
    // The old code is useless; the new one works.
    let old = f
        .answer(":1.1", &fresh.session, &code_for(&secret, T0 + 11 * 60))
        .unwrap();
    assert!(matches!(old.turn.action, Action::AskHidden(_)));
    let secret = shown_secret(&fresh);
    let saved = f
        .answer(":1.1", &fresh.session, &code_for(&secret, T0 + 11 * 60))
        .unwrap();
    assert!(matches!(saved.turn.action, Action::AskVisible(_)));
}

#[test]
fn an_enrollment_cannot_be_skipped_and_tries_run_out() {
    let f = fixture("[login]\nmax_tries = 2\n");
    enforce(&f, "bob");
    let shown = begin_as(&f, "bob");
    f.answer(":1.1", &shown.session, "").unwrap();
    let last = f.answer(":1.1", &shown.session, "123456").unwrap();
    assert_eq!(last.turn.action, Action::MaxTries);
    assert_eq!(
        last.turn.notices,
        [Notice::Error(texts::ENROLL_WRONG_LAST.into())]
    );
    let found = f.store.enrollments(&name("bob")).unwrap();
    assert!(found.active.is_none(), "nothing half-active is left");
}

#[test]
fn overlong_replies_are_wrong_codes() {
    let f = fixture("");
    let login = f.begin(":1.1");
    let long = format!("{}{}", f.code_at(T0), " ".repeat(MAX_REPLY_LEN));
    let refused = f.answer(":1.1", &login.session, &long).unwrap();
    assert!(asks_for_code(&refused));
}
