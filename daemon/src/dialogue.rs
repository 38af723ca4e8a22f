//! The login dialogue engine: free of D-Bus, generic over the store and the clock.
//!
//! A login is a [`Session`] whose [`Step`] says what the daemon waits for. [`Dialogue::begin`]
//! and [`Dialogue::answer`] each return the next [`Turn`] for the module and the audit events
//! the call caused; the events of changes are already in the store, in the change's
//! transaction. Callers are identified and authorized before they get here (see
//! [`crate::core`]).

use std::sync::{Arc, Mutex, MutexGuard};

use pam_mfa_api::limits::MAX_REPLY_LEN;
use pam_mfa_api::{Action, Notice, Turn};
use pam_mfa_config::{Config, Login as LoginSettings};

use crate::audit::{Context, Denial, Event, Rejection};
use crate::clock::Clock;
use crate::identity::Caller;
use crate::policy::{self, Switches};
use crate::sessions::{Refusal, Session, Sessions, Step};
use crate::store::{Result, Store};
use crate::totp;
use crate::users::UserName;

/// What users are told. Each is one block of text for the PAM conversation.
pub mod texts {
    pub const CODE_PROMPT: &str = "Verification code: ";
    pub const WRONG_CODE: &str = "Wrong code.";
    pub const WRONG_CODE_AGAIN: &str = "Wrong code. Try again.";
    pub const REPLAYED: &str = "This code was already used; wait for the next one.";
    pub const NOT_ENROLLED: &str = "Two-factor authentication is required for this account, \
                                    but no authenticator is enrolled. Contact your system \
                                    administrator.";
    pub const TOO_MANY_LOGINS: &str =
        "Too many logins are in progress for this account. Try again later.";
}

/// The outcome of one call: the session id (empty once the dialogue is over), the turn, and
/// what happened, for the log.
#[derive(Debug)]
pub struct Reply {
    pub session: String,
    pub turn: Turn,
    pub events: Vec<Event>,
}

impl Reply {
    fn verdict(turn: Turn, event: Event) -> Self {
        Reply {
            session: String::new(),
            turn,
            events: vec![event],
        }
    }
}

pub struct Dialogue<S: Store, C: Clock> {
    store: Arc<S>,
    clock: C,
    settings: LoginSettings,
    window: u32,
    config_all_users: bool,
    sessions: Mutex<Sessions>,
}

fn new_session_id() -> std::result::Result<String, getrandom::Error> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

impl<S: Store, C: Clock> Dialogue<S, C> {
    pub fn new(store: Arc<S>, clock: C, config: &Config) -> Self {
        Dialogue {
            store,
            clock,
            settings: config.login.clone(),
            window: config.totp.window.get(),
            config_all_users: config.enforcement.all_users,
            sessions: Mutex::new(Sessions::default()),
        }
    }

    fn sessions(&self) -> MutexGuard<'_, Sessions> {
        self.sessions
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn now(&self) -> u64 {
        self.clock.now()
    }

    /// The enforcement switches of `user` as the policy sees them.
    pub fn switches(&self, user: &UserName) -> Result<Switches> {
        let stored = self.store.switches(Some(user))?;
        Ok(Switches {
            global: stored.global,
            config_all_users: self.config_all_users,
            user: stored.user,
        })
    }

    /// Starts a login of `user` (already validated, in the system's own spelling, and
    /// authorized for `caller`).
    pub fn begin(&self, caller: &Caller, user: UserName, context: Context) -> Result<Reply> {
        let now = self.now();
        let enrollment = self.store.enrollment(&user)?.filter(|e| e.active);
        let Some(enrollment) = enrollment else {
            // Enforcement only matters without an enrollment: an enrolled user is always asked.
            let requirement = policy::requirement(self.switches(&user)?);
            if requirement.required {
                let turn = Turn::new(Action::Deny("enforced but not enrolled".into()))
                    .with_notice(Notice::Error(texts::NOT_ENROLLED.into()));
                let event = Event::LoginDenied {
                    user: user.to_string(),
                    context,
                    why: Denial::NotEnrolled,
                };
                return Ok(Reply::verdict(turn, event));
            }
            return Ok(Reply::verdict(
                Turn::new(Action::Skip),
                Event::LoginSkipped { user, context },
            ));
        };
        let id = new_session_id()
            .map_err(|error| crate::store::StoreError(format!("no randomness: {error}")))?;
        let session = Session {
            connection: caller.connection.clone(),
            caller_uid: caller.uid,
            user: user.clone(),
            step: Step::AwaitingCode {
                enrollment: enrollment.id,
                tries_left: self.settings.max_tries.get(),
            },
            expires: now + u64::from(self.settings.session_timeout.get()),
            context: context.clone(),
        };
        let limit = self.settings.max_sessions_per_user.get();
        if let Err(refusal) = self.sessions().insert(id.clone(), session, limit, now) {
            let limit = match refusal {
                Refusal::TooManyForUser => limit,
                Refusal::TooManyForCaller => crate::sessions::MAX_PER_UNPRIVILEGED_CALLER as u32,
            };
            let turn = Turn::new(Action::Deny("too many logins in progress".into()))
                .with_notice(Notice::Error(texts::TOO_MANY_LOGINS.into()));
            let event = Event::LoginDenied {
                user: user.to_string(),
                context,
                why: Denial::TooManyLogins(limit),
            };
            return Ok(Reply::verdict(turn, event));
        }
        Ok(Reply {
            session: id,
            turn: Turn::new(Action::AskHidden(texts::CODE_PROMPT.into())),
            events: Vec::new(),
        })
    }

    /// Takes `reply` for session `id`. `None` when `caller`'s connection has no such session
    /// (unknown, expired, cancelled, or another connection's).
    pub fn answer(&self, caller: &Caller, id: &str, reply: &str) -> Result<Option<Reply>> {
        let now = self.now();
        let Some(session) = self.sessions().take(id, &caller.connection, now) else {
            return Ok(None);
        };
        match session.step {
            Step::AwaitingCode {
                enrollment,
                tries_left,
            } => self
                .code(id, session, enrollment, tries_left, reply, now)
                .map(Some),
        }
    }

    fn code(
        &self,
        id: &str,
        mut session: Session,
        expected: crate::store::EnrollmentId,
        tries_left: u32,
        reply: &str,
        now: u64,
    ) -> Result<Reply> {
        let user = session.user.clone();
        let enrollment = self
            .store
            .enrollment(&user)?
            .filter(|e| e.active && e.id == expected);
        let Some(enrollment) = enrollment else {
            let event = Event::LoginDenied {
                user: user.to_string(),
                context: session.context,
                why: Denial::ResetDuringLogin,
            };
            self.store.record(now as i64, &event)?;
            let turn = Turn::new(Action::Deny("enrollment removed during the login".into()));
            return Ok(Reply::verdict(turn, event));
        };
        let matched = (reply.len() <= MAX_REPLY_LEN)
            .then(|| {
                totp::verify(
                    &enrollment.secret,
                    enrollment.params,
                    reply,
                    now,
                    self.window,
                    None,
                )
            })
            .flatten();
        let why = match matched {
            Some(step) => {
                let allowed = Event::LoginAllowed {
                    user: user.clone(),
                    context: session.context.clone(),
                };
                if self
                    .store
                    .consume_step(&user, enrollment.id, step, now as i64, &allowed)?
                {
                    return Ok(Reply::verdict(Turn::new(Action::Allow), allowed));
                }
                Rejection::Replayed
            }
            None => Rejection::Wrong,
        };
        let tries_left = tries_left.saturating_sub(1);
        let notice = match (why, tries_left) {
            (Rejection::Replayed, _) => texts::REPLAYED,
            (Rejection::Wrong, 0) => texts::WRONG_CODE,
            (Rejection::Wrong, _) => texts::WRONG_CODE_AGAIN,
        };
        if tries_left == 0 {
            let event = Event::LoginDenied {
                user: user.to_string(),
                context: session.context,
                why: Denial::NoTriesLeft(why),
            };
            self.store.record(now as i64, &event)?;
            let turn = Turn::new(Action::MaxTries).with_notice(Notice::Error(notice.into()));
            return Ok(Reply::verdict(turn, event));
        }
        let event = Event::CodeRejected {
            user,
            context: session.context.clone(),
            why,
            tries_left,
        };
        session.step = Step::AwaitingCode {
            enrollment: expected,
            tries_left,
        };
        self.sessions().put_back(id.to_owned(), session);
        Ok(Reply {
            session: id.to_owned(),
            turn: Turn::new(Action::AskHidden(texts::CODE_PROMPT.into()))
                .with_notice(Notice::Error(notice.into())),
            events: vec![event],
        })
    }

    /// Ends session `id` of `caller`'s connection, if there is one.
    pub fn cancel(&self, caller: &Caller, id: &str) -> bool {
        let now = self.now();
        self.sessions().take(id, &caller.connection, now).is_some()
    }

    /// Ends every login of `user` (after a reset).
    pub fn end_user(&self, user: &UserName) {
        self.sessions().end_user(user);
    }

    /// Ends every login begun by `connection`, which went away.
    pub fn end_connection(&self, connection: &str) -> usize {
        self.sessions().end_connection(connection)
    }

    #[cfg(test)]
    pub fn open_sessions(&self) -> usize {
        self.sessions().len()
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use pam_mfa_config::Algorithm;

    use super::*;
    use crate::clock::FakeClock;
    use crate::store::sqlite::SqliteStore;
    use crate::totp::{Params, Secret};

    const PERIOD: u64 = 30;
    /// A time in the middle of a step.
    const T0: u64 = 1_700_000_010;

    struct Fixture {
        dir: PathBuf,
        store: Arc<SqliteStore>,
        clock: Arc<FakeClock>,
        dialogue: Dialogue<SqliteStore, Arc<FakeClock>>,
        secret: Secret,
    }

    impl Drop for Fixture {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    fn params() -> Params {
        Params {
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
        let store = Arc::new(SqliteStore::open(&dir, |problem| panic!("{problem}")).unwrap());
        let secret = Secret::from_bytes(b"12345678901234567890".to_vec());
        let imported = Event::EnrollmentsImported { count: 1 };
        store
            .import(&[(name("alice"), secret.clone())], params(), 1, &imported)
            .unwrap()
            .unwrap();
        let config = Config::parse(config).unwrap();
        let clock = Arc::new(FakeClock::at(T0));
        let dialogue = Dialogue::new(store.clone(), clock.clone(), &config);
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
                .begin(&caller(connection), name("alice"), Context::new("sshd", ""))
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
            .import(&[(name("alice"), f.secret.clone())], params(), 2, &imported)
            .unwrap()
            .unwrap();
        let denied = f.answer(":1.1", &login.session, &f.code_at(T0)).unwrap();
        assert!(matches!(denied.turn.action, Action::Deny(_)));
        assert!(matches!(
            denied.events[..],
            [Event::LoginDenied {
                why: Denial::ResetDuringLogin,
                ..
            }]
        ));
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

    #[test]
    fn enforcement_decides_for_users_without_an_enrollment() {
        let f = fixture("");
        let bob = || name("bob");
        let skipped = f
            .dialogue
            .begin(&caller(":1.1"), bob(), Context::default())
            .unwrap();
        assert_eq!(skipped.turn.action, Action::Skip);
        let on = Event::EnforcementSet {
            scope: crate::audit::Scope::User(bob()),
            on: true,
        };
        f.store.set_user_enforcement(&bob(), true, 1, &on).unwrap();
        let denied = f
            .dialogue
            .begin(&caller(":1.1"), bob(), Context::default())
            .unwrap();
        assert!(matches!(denied.turn.action, Action::Deny(_)));
        assert_eq!(
            denied.turn.notices,
            [Notice::Error(texts::NOT_ENROLLED.into())]
        );
        assert!(denied.session.is_empty());
    }

    #[test]
    fn overlong_replies_are_wrong_codes() {
        let f = fixture("");
        let login = f.begin(":1.1");
        let long = format!("{}{}", f.code_at(T0), " ".repeat(MAX_REPLY_LEN));
        let refused = f.answer(":1.1", &login.session, &long).unwrap();
        assert!(asks_for_code(&refused));
    }
}
