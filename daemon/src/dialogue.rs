//! The login dialogue engine: free of D-Bus, generic over the store and the clock.
//!
//! A login is a [`Session`] whose [`Step`] says what the daemon waits for. [`Dialogue::begin`]
//! and [`Dialogue::answer`] each return the next [`Turn`] for the module and the audit events
//! the call caused; the events of changes are already in the store, in the change's
//! transaction. Callers are identified and authorized before they get here (see
//! [`crate::core`]).

use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use pam_mfa_api::limits::MAX_REPLY_LEN;
use pam_mfa_api::{Action, NextLogin, Notice, Turn};
use pam_mfa_config::{Config, Login as LoginSettings};

use crate::audit::{Context, Denial, Event, Rejection};
use crate::clock::Clock;
use crate::identity::Caller;
use crate::policy::{self, Facts, Place, Requirement, State, Switches};
use crate::recovery::{self, Hashed};
use crate::sessions::{Refusal, Session, Sessions, Step};
use crate::store::{
    Attempt, CodeTry, Enrollment, EnrollmentId, Enrollments, LockoutRule, Origin, RememberTerms,
    Remembered, Result, Store, StoreError, Tried, TryRecords, UserEnrollment,
};
use crate::totp::{self, Params, Secret};
use crate::users::UserName;
use zeroize::Zeroizing;

/// What users are told. Each is one block of text for the PAM conversation.
pub mod texts {
    pub const CODE_PROMPT: &str = "Verification code: ";
    pub const WRONG_CODE: &str = "Wrong code.";
    pub const WRONG_CODE_AGAIN: &str = "Wrong code. Try again.";
    pub const REPLAYED: &str = "This code was already used; wait for the next one.";
    pub const TOO_MANY_LOGINS: &str =
        "Too many logins are in progress for this account. Try again later.";
    // Lines of at most 76 columns: terminals and PuTTY wrap longer ones.
    pub const ENROLL_HEADING: &str = "Two-factor authentication is required for this account, \
                                      and no\nauthenticator app is set up for it yet.";
    pub const ENROLL_RESUMED_HEADING: &str = "Two-factor authentication is required for this \
                                              account. Finish setting\nup your authenticator \
                                              app (this is the same code as last time).";
    pub const ENROLL_PROMPT: &str = "Code shown by the app: ";
    pub const ENROLL_NEXT_PROMPT: &str = "Wait for the app to show its next code, then type it: ";
    pub const ENROLL_WRONG: &str = "That code does not match. Check that you scanned this QR \
                                    code (or typed the secret) and that the phone sets its clock \
                                    automatically, then try again.";
    pub const ENROLL_WRONG_LAST: &str = "That code does not match. The app is not set up yet: \
                                         log in again to try once more.";
    pub const ENROLL_NOT_LATER: &str = "That is the same code as before: wait until the app shows \
                                        the next one.";
    pub const SAVED_PROMPT: &str = "Press Enter once you have saved these codes: ";
    pub const ENROLLED_NO_RECOVERY: &str = "Your authenticator app is set up: from now on, \
                                            logins ask for a code from it.";

    /// Why a user without an authenticator is denied when logins do not enroll.
    pub fn not_enrolled(user: &str) -> String {
        format!(
            "Two-factor authentication is required for this account, but no authenticator app \
             is set up for it. Ask your system administrator to set one up (mfactl enroll \
             {user})."
        )
    }

    /// The recovery codes, shown once, right after an enrollment.
    pub fn recovery_codes(codes: &[&str]) -> String {
        let mut block = String::from(
            "Your authenticator app is set up. These recovery codes let you log in\nif you \
             lose your phone:\n\n",
        );
        for code in codes {
            block.push_str("    ");
            block.push_str(code);
            block.push('\n');
        }
        block.push_str(
            "\nEach works once, in place of a code from the app. Keep them somewhere\nsafe, \
             away from the phone: they are not shown again.",
        );
        block
    }

    /// Why a locked account is refused, and until when.
    pub fn locked(until: i64, now: i64) -> String {
        let minutes = ((until - now).max(1) as u64).div_ceil(60);
        let day = until.rem_euclid(86_400);
        format!(
            "Too many wrong codes: this account is locked until {:02}:{:02} UTC (in {minutes} \
             minute{}). Try again then, or ask an administrator to unlock it.",
            day / 3600,
            day % 3600 / 60,
            if minutes == 1 { "" } else { "s" }
        )
    }

    /// After a login with a recovery code.
    pub fn recovery_code_used(left: usize) -> String {
        let mut text = match left {
            0 => "Recovery code accepted. It was your last one.".to_owned(),
            1 => "Recovery code accepted. 1 recovery code is left.".to_owned(),
            n => format!("Recovery code accepted. {n} recovery codes are left."),
        };
        if left <= crate::recovery::FEW_LEFT {
            text.push_str(" Make new ones with `mfactl recovery-codes`.");
        }
        text
    }
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

/// Why a code that was not spent failed: its step was used already, or it matched none.
fn rejection(replayed: bool) -> Rejection {
    if replayed {
        Rejection::Replayed
    } else {
        Rejection::Wrong
    }
}

/// A wrong answer's consequences: the step to wait in if tries remain, and what to say.
struct Retry<'a> {
    next: Step,
    tries_left: u32,
    why: Rejection,
    /// Said when another try follows.
    again: &'a str,
    /// Said with the last try's failure.
    last: &'a str,
    prompt: &'a str,
}

/// `event`, the outcome of `session`, with the challenge that began it, to be recorded in the
/// same transaction.
fn with_challenge(session: &Session, event: Event) -> Event {
    match &session.challenge {
        Some((rule, at)) => Event::Pair(
            Box::new(Event::Challenged {
                user: session.user.clone(),
                context: session.context.clone(),
                rule: rule.clone(),
                at: *at as i64,
            }),
            Box::new(event),
        ),
        None => event,
    }
}

/// Where a login comes from, as remembered logins key it.
fn origin(context: &Context) -> Origin<'_> {
    Origin {
        service: &context.service,
        rhost: &context.rhost,
    }
}

/// How new enrollments are made: their TOTP parameters and the issuer apps show.
#[derive(Debug, Clone)]
pub struct NewEnrollments {
    pub params: Params,
    pub issuer: String,
}

/// The configuration in use and what follows from it; a reload replaces it whole, so a call
/// sees one configuration from start to end.
#[derive(Debug, Clone)]
pub struct Settings {
    pub config: Config,
    pub lockout: LockoutRule,
    pub new_enrollments: NewEnrollments,
}

impl Settings {
    /// Derives the lockout rule and how new enrollments are made; an empty `totp.issuer` is
    /// "pam-mfa on HOSTNAME".
    pub fn new(config: Config) -> Settings {
        let issuer = if config.totp.issuer.is_empty() {
            let host = nix::unistd::gethostname()
                .ok()
                .and_then(|name| name.into_string().ok())
                .unwrap_or_else(|| "localhost".into());
            format!("pam-mfa on {host}")
        } else {
            config.totp.issuer.clone()
        };
        Settings::with_issuer(config, issuer)
    }

    pub fn with_issuer(config: Config, issuer: String) -> Settings {
        let new_enrollments = NewEnrollments {
            params: Params {
                algorithm: config.totp.algorithm,
                digits: config.totp.digits.get(),
                period: config.totp.period.get(),
            },
            issuer,
        };
        let lockout = LockoutRule {
            failures: config.lockout.failures.get(),
            window: i64::from(config.lockout.window.get()),
            duration: i64::from(config.lockout.duration.get()),
            max_duration: i64::from(config.lockout.max_duration.get()),
        };
        Settings {
            config,
            lockout,
            new_enrollments,
        }
    }

    /// How long right codes given at a login from `context` cover later logins from there;
    /// `None`: not at all. Only logins from a remote host are remembered: without one (su,
    /// sudo, the console) every terminal and every invoking user would look like one place.
    pub fn remember_terms(&self, context: &Context) -> Option<RememberTerms> {
        if context.rhost.is_empty() {
            return None;
        }
        let remember = &self.config.remember;
        let duration = remember.duration_for(&context.service);
        (duration > 0).then(|| RememberTerms {
            duration: i64::from(duration),
            limit: i64::from(remember.limit()),
        })
    }
}

/// What a login would do and why: the one decision behind logins and `mfactl explain`.
#[derive(Debug, Clone)]
pub struct Decision {
    pub requirement: Requirement,
    pub next: NextLogin,
    /// When a lock ends (`Locked`) or a remembered code stops covering logins (`Remembered`).
    pub until: Option<i64>,
    pub enrollments: Enrollments,
    /// The remembered right code that covers the login, if one does.
    pub remembered: Option<Remembered>,
}

pub struct Dialogue<C: Clock> {
    store: Arc<Store>,
    clock: C,
    settings: RwLock<Arc<Settings>>,
    sessions: Mutex<Sessions>,
    /// When an abandoned login of each user was last recorded (see [`Dialogue::sweep`]).
    abandoned: Mutex<std::collections::HashMap<UserName, u64>>,
}

/// Seconds between two recorded abandoned logins of one user; the others are logged only.
pub const ABANDONED_EVERY: u64 = 60;

fn new_session_id() -> std::result::Result<String, getrandom::Error> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn no_randomness(error: getrandom::Error) -> StoreError {
    StoreError::Failed(format!("no randomness: {error}"))
}

impl<C: Clock> Dialogue<C> {
    pub fn new(store: Arc<Store>, clock: C, settings: Settings) -> Self {
        Dialogue {
            store,
            clock,
            settings: RwLock::new(Arc::new(settings)),
            sessions: Mutex::new(Sessions::default()),
            abandoned: Mutex::new(std::collections::HashMap::new()),
        }
    }

    /// The configuration in use.
    pub fn settings(&self) -> Arc<Settings> {
        self.settings
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Puts `settings` in use for every call from now on; logins under way keep their step.
    pub fn replace_settings(&self, settings: Settings) {
        *self
            .settings
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(settings);
    }

    fn login(&self) -> LoginSettings {
        self.settings().config.login.clone()
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
        self.switches_in(&self.settings().config, user)
    }

    /// The enforcement switches of `user` under `config`.
    fn switches_in(&self, config: &Config, user: &UserName) -> Result<Switches> {
        let stored = self.store.switches(Some(user))?;
        Ok(Switches {
            global: stored.global,
            config_all_users: config.enforcement.all_users,
            user: stored.user,
        })
    }

    /// The time step whose code `reply` is for `enrollment`, within the window around now;
    /// `None` for anything else, an overlong reply included.
    pub fn verify(&self, enrollment: &Enrollment, reply: &str) -> Option<u64> {
        (reply.len() <= MAX_REPLY_LEN)
            .then(|| {
                totp::verify(
                    &enrollment.secret,
                    enrollment.params,
                    reply,
                    self.now(),
                    self.settings().config.totp.window.get(),
                    None,
                )
            })
            .flatten()
    }

    /// How new enrollments are made.
    pub fn new_enrollments(&self) -> NewEnrollments {
        self.settings().new_enrollments.clone()
    }

    /// The lockout rule from the configuration.
    pub fn lockout(&self) -> LockoutRule {
        self.settings().lockout
    }

    /// Issues the configured number of recovery codes: what to show and what to store.
    pub fn issue_recovery_codes(&self) -> Result<Vec<(Zeroizing<String>, Hashed)>> {
        recovery::generate(self.login().recovery_codes.get() as usize).map_err(no_randomness)
    }

    /// What a login of `user` from `context` does under `settings`, and why, without changing
    /// anything.
    /// `known`: the system's user database knows the user; `member_of`: the groups named by
    /// the rules that the user is in; `root_caller`: the login is run by root (only those use
    /// and make remembered logins); `enrollments`: the user's, as read from the store.
    #[allow(clippy::too_many_arguments)]
    pub fn decide(
        &self,
        settings: &Settings,
        user: &UserName,
        known: bool,
        context: &Context,
        member_of: Vec<String>,
        root_caller: bool,
        enrollments: Enrollments,
    ) -> Result<Decision> {
        let config = &settings.config;
        let now = self.now() as i64;
        let facts = Facts {
            switches: self.switches_in(config, user)?,
            member_of,
        };
        let place = Place {
            service: Some(&context.service),
            rhost: Some(&context.rhost),
        };
        let requirement = policy::requirement(config, user, &facts, place);
        let mut remembered = None;
        let mut state = State {
            enrolled: enrollments.active.is_some(),
            known,
            enroll_at_login: config.login.enroll_at_login,
            ..State::default()
        };
        if let Some(active) = &enrollments.active
            && !requirement.exempt()
        {
            state.locked_until = self.store.locked_until(user, now)?;
            if root_caller && let Some(terms) = settings.remember_terms(context) {
                let origin = origin(context);
                remembered = self
                    .store
                    .remembered(
                        UserEnrollment {
                            user,
                            id: active.id,
                        },
                        origin,
                    )?
                    .filter(|remembered| remembered.until(terms) > now);
                state.remembered_until = remembered.map(|remembered| remembered.until(terms));
            }
        }
        let next = policy::next_login(&requirement, state);
        let until = match next {
            NextLogin::Locked => state.locked_until,
            NextLogin::Remembered => state.remembered_until,
            _ => None,
        };
        Ok(Decision {
            requirement,
            next,
            until,
            enrollments,
            remembered,
        })
    }

    /// Starts a login of `user` (already validated, in the system's own spelling where the
    /// system knows the name, and authorized for `caller`). See [`Dialogue::decide`]. A name
    /// the system does not know keeps its stored enrollment (the account may live in a
    /// directory this host cannot reach right now), but is never enrolled at login: that would
    /// let anyone who can try a name store enrollments for names no one has. `enrollments`: the
    /// user's, when the caller has read them already (else they are read here).
    pub fn begin(
        &self,
        caller: &Caller,
        user: UserName,
        known: bool,
        context: Context,
        member_of: Vec<String>,
        enrollments: Option<Enrollments>,
    ) -> Result<Reply> {
        let now = self.now();
        // One configuration for the whole call, even if a reload comes in between.
        let settings = self.settings();
        let login = &settings.config.login;
        let enrollments = match enrollments {
            Some(enrollments) => enrollments,
            None => self.store.enrollments(&user)?,
        };
        let decision = self.decide(
            &settings,
            &user,
            known,
            &context,
            member_of,
            caller.uid == 0,
            enrollments,
        )?;
        let rule = decision.requirement.by.clone();
        let mut next = decision.next;
        if next == NextLogin::Remembered
            && let Some(active) = &decision.enrollments.active
            && let Some(terms) = settings.remember_terms(&context)
        {
            let verified = decision
                .remembered
                .map_or(0, |remembered| remembered.verified);
            let event = Event::RememberedLogin {
                user: user.clone(),
                context: context.clone(),
                verified,
            };
            let origin = origin(&context);
            if self.store.use_remembered(
                UserEnrollment {
                    user: &user,
                    id: active.id,
                },
                origin,
                now as i64,
                terms,
                &event,
            )? {
                return Ok(Reply::verdict(Turn::new(Action::Allow), event));
            }
            // It ran out (or was forgotten) since: ask for a code.
            next = NextLogin::Code;
        }
        let (step, turn, events, challenge) = match next {
            NextLogin::Exempt => {
                let event = Event::LoginExempt {
                    user,
                    context,
                    rule,
                };
                // Break-glass logins are kept; only those run by root, so that a local user
                // cannot make mfad write at will.
                if caller.uid == 0 && event.is_kept() {
                    self.store.record(now as i64, &event)?;
                }
                return Ok(Reply::verdict(Turn::new(Action::Skip), event));
            }
            NextLogin::NoSecondFactor => {
                let event = Event::LoginSkipped { user, context };
                return Ok(Reply::verdict(Turn::new(Action::Skip), event));
            }
            NextLogin::Locked => {
                let until = decision.until.unwrap_or(now as i64);
                let turn = Turn::new(Action::Deny("locked".into()))
                    .with_notice(Notice::Error(texts::locked(until, now as i64)));
                let event = Event::LoginDenied {
                    user: user.to_string(),
                    context,
                    why: Denial::Locked(until),
                };
                return Ok(Reply::verdict(turn, event));
            }
            NextLogin::Enroll => {
                // Refused logins write nothing: check the session limit before the enrollment.
                let limit = login.max_sessions_per_user.get();
                if let Err(refusal) = self.sessions().check(&user, caller.uid, limit, now) {
                    return Ok(self.too_many(refusal, user, context));
                }
                let (step, turn, events) =
                    self.start_enrollment(&settings, &user, decision.enrollments.pending, now)?;
                (step, turn, events, None)
            }
            NextLogin::Code | NextLogin::Remembered => match decision.enrollments.active {
                Some(enrollment) => (
                    Step::AwaitingCode {
                        enrollment: enrollment.id,
                        tries_left: login.max_tries.get(),
                    },
                    Turn::new(Action::AskHidden(texts::CODE_PROMPT.into())),
                    vec![Event::Challenged {
                        user: user.clone(),
                        context: context.clone(),
                        rule: rule.clone(),
                        at: now as i64,
                    }],
                    Some((rule, now)),
                ),
                None => {
                    return Err(StoreError::Failed(
                        "an enrollment vanished during a login".into(),
                    ));
                }
            },
            NextLogin::Denied | NextLogin::Other(_) => {
                let (reason, why) = if known {
                    ("enforced but not enrolled", Denial::NotEnrolled)
                } else {
                    ("enforced, unknown to the system", Denial::UnknownUser)
                };
                let turn = Turn::new(Action::Deny(reason.into()))
                    .with_notice(Notice::Error(texts::not_enrolled(user.as_str())));
                let event = Event::LoginDenied {
                    user: user.to_string(),
                    context,
                    why,
                };
                return Ok(Reply::verdict(turn, event));
            }
        };
        let id = new_session_id().map_err(no_randomness)?;
        let session = Session {
            connection: caller.connection.clone(),
            caller_uid: caller.uid,
            user: user.clone(),
            step,
            expires: now + u64::from(login.session_timeout.get()),
            context: context.clone(),
            challenge,
        };
        let limit = login.max_sessions_per_user.get();
        if let Err(refusal) = self.sessions().insert(id.clone(), session, limit, now) {
            return Ok(self.too_many(refusal, user, context));
        }
        Ok(Reply {
            session: id,
            turn,
            events,
        })
    }

    /// The verdict for a login refused by the session limits.
    fn too_many(&self, refusal: Refusal, user: UserName, context: Context) -> Reply {
        let limit = match refusal {
            Refusal::TooManyForUser => self.login().max_sessions_per_user.get(),
            Refusal::TooManyForCaller => crate::sessions::MAX_PER_UNPRIVILEGED_CALLER as u32,
        };
        let turn = Turn::new(Action::Deny("too many logins in progress".into()))
            .with_notice(Notice::Error(texts::TOO_MANY_LOGINS.into()));
        let event = Event::LoginDenied {
            user: user.to_string(),
            context,
            why: Denial::TooManyLogins(limit),
        };
        Reply::verdict(turn, event)
    }

    /// The first turn of an enrollment at login: the pending enrollment the user was shown
    /// within `enroll_resume_minutes` (same secret), else a new one.
    fn start_enrollment(
        &self,
        settings: &Settings,
        user: &UserName,
        pending: Option<Enrollment>,
        now: u64,
    ) -> Result<(Step, Turn, Vec<Event>)> {
        let login = &settings.config.login;
        let resume = u64::from(login.enroll_resume_minutes.get()) * 60;
        let recent = pending.filter(|e| e.created as u64 + resume > now);
        let (id, secret, params, heading, events) = match recent {
            Some(pending) => (
                pending.id,
                pending.secret,
                pending.params,
                texts::ENROLL_RESUMED_HEADING,
                Vec::new(),
            ),
            None => {
                let secret = Secret::generate().map_err(no_randomness)?;
                let params = settings.new_enrollments.params;
                let event = Event::EnrollmentStarted { user: user.clone() };
                let id = self
                    .store
                    .put_pending(user, &secret, params, now as i64, &event)?;
                (id, secret, params, texts::ENROLL_HEADING, vec![event])
            }
        };
        let uri = totp::otpauth_uri(
            &secret,
            params,
            &settings.new_enrollments.issuer,
            user.as_str(),
        )
        .map_err(StoreError::Failed)?;
        let base32 = Zeroizing::new(secret.to_base32());
        let block = pam_mfa_qr::enrollment_block(heading, &uri, &base32, login.qr_background);
        let step = Step::Enrolling {
            enrollment: id,
            first_step: None,
            tries_left: login.max_tries.get(),
        };
        let turn = Turn::new(Action::AskHidden(texts::ENROLL_PROMPT.into()))
            .with_notice(Notice::Info(block));
        Ok((step, turn, events))
    }

    /// Takes `reply` for session `id`. `None` when `caller`'s connection has no such session
    /// (unknown, expired, cancelled, or another connection's).
    pub fn answer(&self, caller: &Caller, id: &str, reply: &str) -> Result<Option<Reply>> {
        let now = self.now();
        let Some(session) = self.sessions().take(id, &caller.connection, now) else {
            return Ok(None);
        };
        let reply = match session.step.clone() {
            Step::AwaitingCode {
                enrollment,
                tries_left,
            } => self.code(id, session, enrollment, tries_left, reply, now)?,
            Step::Enrolling {
                enrollment,
                first_step,
                tries_left,
            } => self.confirm(id, session, enrollment, first_step, tries_left, reply, now)?,
            Step::SavingRecoveryCodes { enrollment } => {
                // Still the user's app: not reset or replaced while the codes were shown.
                let active = self.store.enrollments(&session.user)?.active;
                if active.is_none_or(|active| active.id != enrollment) {
                    return self.reset_during_login(session, now).map(Some);
                }
                let event = Event::LoginAllowed {
                    user: session.user,
                    context: session.context,
                };
                self.store.record(now as i64, &event)?;
                Reply::verdict(Turn::new(Action::Allow), event)
            }
        };
        Ok(Some(reply))
    }

    /// The login's enrollment was removed or replaced while it waited.
    fn reset_during_login(&self, session: Session, now: u64) -> Result<Reply> {
        let event = with_challenge(
            &session,
            Event::LoginDenied {
                user: session.user.to_string(),
                context: session.context.clone(),
                why: Denial::ResetDuringLogin,
            },
        );
        self.store.record(now as i64, &event)?;
        let turn = Turn::new(Action::Deny("enrollment removed during the login".into()));
        Ok(Reply::verdict(turn, event))
    }

    /// A wrong answer: ask again while tries remain, else end the login.
    /// `recorded`: the denial of a last try is in the audit trail already (written with the
    /// try).
    fn wrong(
        &self,
        id: &str,
        mut session: Session,
        retry: Retry<'_>,
        now: u64,
        recorded: bool,
    ) -> Result<Reply> {
        if retry.tries_left == 0 {
            let event = with_challenge(
                &session,
                Event::LoginDenied {
                    user: session.user.to_string(),
                    context: session.context.clone(),
                    why: Denial::NoTriesLeft(retry.why),
                },
            );
            if !recorded {
                self.store.record(now as i64, &event)?;
            }
            let turn = Turn::new(Action::MaxTries).with_notice(Notice::Error(retry.last.into()));
            return Ok(Reply::verdict(turn, event));
        }
        let event = Event::CodeRejected {
            user: session.user.clone(),
            context: session.context.clone(),
            why: retry.why,
            tries_left: retry.tries_left,
        };
        session.step = retry.next;
        self.sessions().put_back(id.to_owned(), session);
        Ok(Reply {
            session: id.to_owned(),
            turn: Turn::new(Action::AskHidden(retry.prompt.into()))
                .with_notice(Notice::Error(retry.again.into())),
            events: vec![event],
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn confirm(
        &self,
        id: &str,
        session: Session,
        expected: EnrollmentId,
        first_step: Option<u64>,
        tries_left: u32,
        reply: &str,
        now: u64,
    ) -> Result<Reply> {
        let user = session.user.clone();
        let pending = self
            .store
            .enrollments(&user)?
            .pending
            .filter(|e| e.id == expected);
        let Some(pending) = pending else {
            return self.reset_during_login(session, now);
        };
        let matched = self.verify(&pending, reply);
        let prompt = if first_step.is_some() {
            texts::ENROLL_NEXT_PROMPT
        } else {
            texts::ENROLL_PROMPT
        };
        let Some(step) = matched else {
            let tries_left = tries_left.saturating_sub(1);
            let next = Step::Enrolling {
                enrollment: expected,
                first_step,
                tries_left,
            };
            let retry = Retry {
                next,
                tries_left,
                why: Rejection::Wrong,
                again: texts::ENROLL_WRONG,
                last: texts::ENROLL_WRONG_LAST,
                prompt,
            };
            return self.wrong(id, session, retry, now, false);
        };
        if first_step.is_some_and(|first| step <= first) {
            // Not a try used up: the user typed the same code again too soon.
            let mut session = session;
            session.step = Step::Enrolling {
                enrollment: expected,
                first_step,
                tries_left,
            };
            self.sessions().put_back(id.to_owned(), session);
            return Ok(Reply {
                session: id.to_owned(),
                turn: Turn::new(Action::AskHidden(texts::ENROLL_NEXT_PROMPT.into()))
                    .with_notice(Notice::Error(texts::ENROLL_NOT_LATER.into())),
                events: Vec::new(),
            });
        }
        let needed = self.login().enroll_confirm_codes.get();
        if first_step.is_none() && needed > 1 {
            let mut session = session;
            session.step = Step::Enrolling {
                enrollment: expected,
                first_step: Some(step),
                tries_left,
            };
            // Time to wait for the app's next code.
            session.expires = now + u64::from(self.login().session_timeout.get());
            self.sessions().put_back(id.to_owned(), session);
            return Ok(Reply {
                session: id.to_owned(),
                turn: Turn::new(Action::AskHidden(texts::ENROLL_NEXT_PROMPT.into())),
                events: Vec::new(),
            });
        }
        let issued = self.issue_recovery_codes()?;
        let hashes: Vec<Hashed> = issued.iter().map(|(_, hashed)| hashed.clone()).collect();
        let confirmed = Event::EnrollmentConfirmed { user: user.clone() };
        if !self.store.activate(
            UserEnrollment {
                user: &user,
                id: expected,
            },
            step,
            &hashes,
            now as i64,
            &confirmed,
        )? {
            return self.reset_during_login(session, now);
        }
        if issued.is_empty() {
            let allowed = Event::LoginAllowed {
                user,
                context: session.context,
            };
            self.store.record(now as i64, &allowed)?;
            let turn = Turn::new(Action::Allow)
                .with_notice(Notice::Info(texts::ENROLLED_NO_RECOVERY.into()));
            return Ok(Reply {
                session: String::new(),
                turn,
                events: vec![confirmed, allowed],
            });
        }
        let shown: Vec<&str> = issued.iter().map(|(code, _)| code.as_str()).collect();
        let block = texts::recovery_codes(&shown);
        let mut session = session;
        session.step = Step::SavingRecoveryCodes {
            enrollment: expected,
        };
        // Time to read and save the codes, whatever the enrollment took so far.
        session.expires = now + u64::from(self.login().session_timeout.get());
        self.sessions().put_back(id.to_owned(), session);
        Ok(Reply {
            session: id.to_owned(),
            turn: Turn::new(Action::AskVisible(texts::SAVED_PROMPT.into()))
                .with_notice(Notice::Info(block)),
            events: vec![confirmed],
        })
    }

    fn code(
        &self,
        id: &str,
        session: Session,
        expected: EnrollmentId,
        tries_left: u32,
        reply: &str,
        now: u64,
    ) -> Result<Reply> {
        let user = session.user.clone();
        let enrollment = self
            .store
            .enrollments(&user)?
            .active
            .filter(|e| e.id == expected);
        let Some(enrollment) = enrollment else {
            return self.reset_during_login(session, now);
        };
        let locked_out = |until| Event::LockedOut {
            user: user.clone(),
            context: session.context.clone(),
            until,
        };
        // Recorded when a try locks the account; the store sets the lock's end.
        let locking = with_challenge(&session, locked_out(0));
        let settings = self.settings();
        let locked = |until: i64, new: bool| {
            let turn = Turn::new(Action::Deny("locked".into()))
                .with_notice(Notice::Error(texts::locked(until, now as i64)));
            if new {
                return Ok(Reply::verdict(turn, locked_out(until)));
            }
            // Locked by another login meanwhile, which recorded the lock.
            let event = Event::LoginDenied {
                user: user.to_string(),
                context: session.context.clone(),
                why: Denial::Locked(until),
            };
            Ok(Reply::verdict(turn, event))
        };
        // A right code from the app, in a root-run login, is remembered where `remember`
        // says so. A recovery code is not: a stolen one must not buy more than one login.
        let origin = (session.caller_uid == 0)
            .then(|| settings.remember_terms(&session.context))
            .flatten()
            .map(|_| origin(&session.context));
        let matched = self.verify(&enrollment, reply);
        let allowed = Event::LoginAllowed {
            user: user.clone(),
            context: session.context.clone(),
        };
        let recorded_allowed = with_challenge(&session, allowed.clone());
        let Some(typed) = recovery::normalize(reply) else {
            // A code from the app (the common case): counted, checked, spent and recorded in
            // one transaction, the last try's denial included.
            let last_try = tries_left <= 1;
            let denied = |why: Rejection| {
                last_try.then(|| {
                    with_challenge(
                        &session,
                        Event::LoginDenied {
                            user: user.to_string(),
                            context: session.context.clone(),
                            why: Denial::NoTriesLeft(why),
                        },
                    )
                })
            };
            let code = CodeTry {
                active: UserEnrollment {
                    user: &user,
                    id: enrollment.id,
                },
                step: matched,
                origin,
                now: now as i64,
                rule: settings.lockout,
            };
            let records = TryRecords {
                locked: locking,
                spent: recorded_allowed,
                wrong: denied(Rejection::Wrong),
                replayed: denied(Rejection::Replayed),
            };
            let tried = self.store.try_step(&code, &records)?;
            let why = match tried {
                Tried::Locked { until, new } => return locked(until, new),
                Tried::Spent => return Ok(Reply::verdict(Turn::new(Action::Allow), allowed)),
                Tried::NotSpent => rejection(matched.is_some()),
            };
            return self.wrong(
                id,
                session,
                Self::code_retry(expected, tries_left, why),
                now,
                true,
            );
        };
        if let Attempt::Locked { until, new } =
            self.store
                .begin_attempt(&user, now as i64, settings.lockout, &locking)?
        {
            return locked(until, new);
        }
        let active = UserEnrollment {
            user: &user,
            id: expected,
        };
        let stored = self.store.recovery_codes(active)?;
        if let Some(code) = recovery::find(&typed, &stored) {
            let used = Event::RecoveryCodeUsed {
                user: user.clone(),
                context: session.context.clone(),
                left: stored.len() - 1,
            };
            let recorded = with_challenge(&session, used.clone());
            if let Some(left) = self
                .store
                .consume_recovery_code(active, *code, now as i64, None, &recorded)?
            {
                let turn = Turn::new(Action::Allow)
                    .with_notice(Notice::Info(texts::recovery_code_used(left)));
                return Ok(Reply::verdict(turn, used));
            }
        }
        let why = match matched {
            Some(step) => {
                let active = UserEnrollment {
                    user: &user,
                    id: enrollment.id,
                };
                if self
                    .store
                    .consume_step(active, step, now as i64, origin, &recorded_allowed)?
                {
                    return Ok(Reply::verdict(Turn::new(Action::Allow), allowed));
                }
                Rejection::Replayed
            }
            None => Rejection::Wrong,
        };
        self.wrong(
            id,
            session,
            Self::code_retry(expected, tries_left, why),
            now,
            false,
        )
    }

    /// Another try at a code after a wrong one (`why`), with `tries_left` before it.
    fn code_retry(expected: EnrollmentId, tries_left: u32, why: Rejection) -> Retry<'static> {
        let tries_left = tries_left.saturating_sub(1);
        let (again, last) = match why {
            Rejection::Replayed => (texts::REPLAYED, texts::REPLAYED),
            Rejection::Wrong => (texts::WRONG_CODE_AGAIN, texts::WRONG_CODE),
        };
        let next = Step::AwaitingCode {
            enrollment: expected,
            tries_left,
        };
        Retry {
            next,
            tries_left,
            why,
            again,
            last,
            prompt: texts::CODE_PROMPT,
        }
    }

    /// Ends session `id` of `caller`'s connection, if there is one.
    pub fn cancel(&self, caller: &Caller, id: &str) -> bool {
        let now = self.now();
        self.sessions().cancel(id, &caller.connection, now)
    }

    /// Records the logins and enrollments that ended without an outcome (expired, cancelled,
    /// or their client went away) and returns their events for the log, with the uid that
    /// began each. Only those begun by root are recorded, and at most one per user in
    /// [`ABANDONED_EVERY`] seconds: a local user who starts `su` with their own password and
    /// interrupts it at the code prompt must not make mfad write at will. A failure to record
    /// one is logged and the others are still recorded.
    pub fn sweep(&self) -> Vec<(Event, u32)> {
        let now = self.now();
        let ended = self.sessions().take_ended(now);
        let mut recorded = self
            .abandoned
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        recorded.retain(|_, at| *at + ABANDONED_EVERY > now);
        let mut events = Vec::with_capacity(ended.len());
        for session in ended {
            let user = session.user.clone();
            let context = session.context.clone();
            let event = match session.step {
                Step::AwaitingCode { .. } => with_challenge(
                    &session,
                    Event::LoginAbandoned {
                        user: user.clone(),
                        context,
                    },
                ),
                Step::Enrolling { .. } => Event::EnrollmentAbandoned {
                    user: user.clone(),
                    context,
                    confirmed: false,
                },
                Step::SavingRecoveryCodes { .. } => Event::EnrollmentAbandoned {
                    user: user.clone(),
                    context,
                    confirmed: true,
                },
            };
            if session.caller_uid == 0 && !recorded.contains_key(&user) {
                match self.store.record(now as i64, &event) {
                    Ok(()) => {
                        recorded.insert(user, now);
                    }
                    Err(error) => {
                        crate::log::error(&format!("cannot record an abandoned login: {error}"))
                    }
                }
            }
            events.push((event, session.caller_uid));
        }
        events
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
    use crate::store::contract::imports;
    use crate::totp::{Params, Secret};

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
}
