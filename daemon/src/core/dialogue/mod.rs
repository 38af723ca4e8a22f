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

mod code;
use code::Awaited;
pub mod contact;
mod enrollment;
pub mod sessions;
mod settings;

pub use settings::{NewEnrollments, Settings};

use crate::audit::{Context, Denial, Event, Rejection};
use crate::clock::Clock;
use crate::codes::recovery::{self, Hashed};
use crate::codes::totp::{self, Kind};
use crate::core::Caller;
use crate::core::dialogue::sessions::{Refusal, Session, Sessions, Step};
use crate::core::{Fault, texts};
use crate::policy::{self, Facts, Place, Requirement, State, Switches};
use crate::store::{
    Enrollment, Enrollments, LockoutRule, LoginFacts, Origin, Remembered, Store, UserEnrollment,
};
use crate::users::UserName;
use zeroize::Zeroizing;

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
    /// Codes being sent to contacts.
    deliveries: crate::delivery::Deliveries,
}

/// Seconds between two recorded abandoned logins of one user; the others are logged only.
pub const ABANDONED_EVERY: u64 = 60;

/// 16 random bytes in hex: a session's id.
fn new_session_id() -> std::result::Result<String, getrandom::Error> {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)?;
    let mut id = String::with_capacity(2 * bytes.len());
    for byte in bytes {
        id.push(char::from(HEX[usize::from(byte >> 4)]));
        id.push(char::from(HEX[usize::from(byte & 0xf)]));
    }
    Ok(id)
}

/// What the dialogue's calls return: a fault stops the login (it is denied, and mfad's log
/// says why).
pub type Result<T> = std::result::Result<T, Fault>;

impl<C: Clock> Dialogue<C> {
    pub fn new(store: Arc<Store>, clock: C, settings: Settings) -> Self {
        Dialogue {
            store,
            clock,
            settings: RwLock::new(Arc::new(settings)),
            sessions: Mutex::new(Sessions::default()),
            abandoned: Mutex::new(std::collections::HashMap::new()),
            deliveries: crate::delivery::Deliveries::default(),
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
        if reply.len() > MAX_REPLY_LEN {
            return None;
        }
        let config = &self.settings().config;
        let (secret, params) = (&enrollment.secret, enrollment.params);
        match params.kind {
            Kind::Totp => totp::verify(
                secret,
                params,
                reply,
                self.now(),
                config.totp.window.get(),
                None,
            ),
            // A code used lately is matched too, to be refused as used (the store spends no
            // counter at or before the last one), not as wrong.
            Kind::Hotp => {
                let (last, look_ahead) = (enrollment.last_step, config.hotp.look_ahead.get());
                totp::verify_hotp(secret, params, reply, last, look_ahead)
                    .or_else(|| totp::used_hotp(secret, params, reply, last, look_ahead))
            }
        }
    }

    /// A counter-based token's code that [`Dialogue::verify`] did not accept, looked for
    /// beyond the look-ahead (`hotp.resync_window` values): its counter value, if found. The
    /// code of the value after it, typed next, brings the token back in step. `None` for
    /// time-based codes.
    pub fn ahead(&self, enrollment: &Enrollment, reply: &str) -> Option<u64> {
        if reply.len() > MAX_REPLY_LEN || enrollment.params.kind != Kind::Hotp {
            return None;
        }
        let hotp = &self.settings().config.hotp;
        totp::beyond_window(
            &enrollment.secret,
            enrollment.params,
            reply,
            enrollment.last_step,
            (hotp.look_ahead.get(), hotp.resync_window.get()),
        )
    }

    /// Whether `reply` is the code of counter value `counter` of a counter-based token.
    pub fn is_code_of(&self, enrollment: &Enrollment, reply: &str, counter: u64) -> bool {
        reply.len() <= MAX_REPLY_LEN
            && enrollment.params.kind == Kind::Hotp
            && totp::verify_hotp(
                &enrollment.secret,
                enrollment.params,
                reply,
                counter.checked_sub(1),
                1,
            ) == Some(counter)
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
        recovery::generate(self.login().recovery_codes.get() as usize).map_err(Fault::NoRandomness)
    }

    /// Reads what a login of `user` from `context` is decided on under `settings`, in one read
    /// of the store; the remembered right code only for a login run by root (`root_caller`)
    /// from where `remember` applies, since only those use and make remembered logins.
    pub fn facts(
        &self,
        settings: &Settings,
        user: &UserName,
        context: &Context,
        root_caller: bool,
    ) -> Result<LoginFacts> {
        let origin =
            (root_caller && settings.remember_terms(context).is_some()).then(|| origin(context));
        Ok(self.store.login_facts(user, origin)?)
    }

    /// What a login of `user` from `context` does under `settings`, and why, without changing
    /// anything.
    /// `known`: the system's user database knows the user; `member_of`: the groups named by
    /// the rules that the user is in; `root_caller`: the login is run by root (only those use
    /// and make remembered logins); `facts`: the user's, as read from the store by
    /// [`Dialogue::facts`] for this login.
    #[allow(clippy::too_many_arguments)]
    pub fn decide(
        &self,
        settings: &Settings,
        user: &UserName,
        known: bool,
        context: &Context,
        member_of: Vec<String>,
        root_caller: bool,
        facts: LoginFacts,
    ) -> Result<Decision> {
        let config = &settings.config;
        let now = self.now() as i64;
        let LoginFacts {
            enrollments,
            switches,
            locked_until,
            remembered: stored_remembered,
        } = facts;
        let facts = Facts {
            switches: Switches {
                global: switches.global,
                config_all_users: config.enforcement.all_users,
                user: switches.user,
            },
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
        if enrollments.active.is_some() && !requirement.exempt() {
            state.locked_until = locked_until.filter(|until| *until > now);
            if root_caller && let Some(terms) = settings.remember_terms(context) {
                remembered = stored_remembered.filter(|remembered| remembered.until(terms) > now);
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
    /// let anyone who can try a name store enrollments for names no one has. `facts`: the
    /// user's ([`Dialogue::facts`]), when the caller has read them already (else they are read
    /// here).
    pub fn begin(
        &self,
        caller: &Caller,
        user: UserName,
        known: bool,
        context: Context,
        member_of: Vec<String>,
        facts: Option<LoginFacts>,
    ) -> Result<Reply> {
        let now = self.now();
        // One configuration for the whole call, even if a reload comes in between.
        let settings = self.settings();
        let login = &settings.config.login;
        let facts = match facts {
            Some(facts) => facts,
            None => self.facts(&settings, &user, &context, caller.uid == 0)?,
        };
        // Codes sent to contacts, where the configuration allows them for this login.
        let contact_codes = !context.joined
            && (settings.config.contacts).at_login_for(&context.service, &member_of);
        let decision = self.decide(
            &settings,
            &user,
            known,
            &context,
            member_of,
            caller.uid == 0,
            facts,
        )?;
        let rule = decision.requirement.by.clone();
        let mut next = decision.next;
        // A login whose password comes with the code always asks for both.
        if next == NextLogin::Remembered && context.joined {
            next = NextLogin::Code;
        }
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
        let (step, turn, events, challenge, enrollment) = match next {
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
            NextLogin::Enroll if context.joined => {
                let turn = Turn::new(Action::Deny("enrollment needs its own prompts".into()))
                    .with_notice(Notice::Error(texts::JOINED_NO_ENROLLMENT.into()));
                let event = Event::LoginDenied {
                    user: user.to_string(),
                    context,
                    why: Denial::NotEnrolled,
                };
                return Ok(Reply::verdict(turn, event));
            }
            NextLogin::Enroll => {
                // Refused logins write nothing: check the session limit before the enrollment.
                let limit = login.max_sessions_per_user.get();
                if let Err(refusal) = self.sessions().check(&user, caller.uid, limit, now) {
                    return Ok(self.too_many(refusal, user, context));
                }
                let (step, turn, events) = match self.contact_first(&settings, &user, now)? {
                    Some(first) => first,
                    None => {
                        self.start_enrollment(&settings, &user, decision.enrollments.pending, now)?
                    }
                };
                (step, turn, events, None, None)
            }
            NextLogin::Code | NextLogin::Remembered => match decision.enrollments.active {
                Some(enrollment) => {
                    // One try when the password comes with the code: the application would
                    // send the same answer again.
                    let (tries_left, question) = if context.joined {
                        let prompt = texts::JOINED_PROMPT.into();
                        let digits = enrollment.params.digits;
                        (1, Action::AskJoined { prompt, digits })
                    } else {
                        let prompt = texts::CODE_PROMPT.into();
                        (login.max_tries.get(), Action::AskHidden(prompt))
                    };
                    let mut turn = Turn::new(question);
                    if contact_codes && let Some(hint) = self.contact_hint(&user)? {
                        turn = turn.with_notice(Notice::Info(hint));
                    }
                    (
                        Step::AwaitingCode {
                            enrollment: enrollment.id,
                            tries_left,
                            ahead: None,
                            sent: false,
                        },
                        turn,
                        vec![Event::Challenged {
                            user: user.clone(),
                            context: context.clone(),
                            rule: rule.clone(),
                            at: now as i64,
                        }],
                        Some((rule, now)),
                        Some(enrollment),
                    )
                }
                None => return Err(Fault::EnrollmentVanished),
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
        let id = new_session_id().map_err(Fault::NoRandomness)?;
        let session = Session {
            connection: caller.connection.clone(),
            caller_uid: caller.uid,
            user: user.clone(),
            step,
            contact_codes,
            expires: now + u64::from(login.session_timeout.get()),
            context: context.clone(),
            challenge,
            enrollment,
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
            Refusal::TooManyForCaller => {
                crate::core::dialogue::sessions::MAX_PER_UNPRIVILEGED_CALLER as u32
            }
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
                ahead,
                sent,
            } => {
                let awaited = Awaited {
                    enrollment,
                    tries_left,
                    ahead,
                    sent,
                };
                self.code(id, session, awaited, reply, now)?
            }
            Step::Enrolling {
                enrollment,
                first_step,
                tries_left,
            } => self.confirm(id, session, enrollment, first_step, tries_left, reply, now)?,
            Step::EnrollingContact {
                kind,
                sent,
                tries_left,
            } => self.enroll_contact(id, session, (kind, sent, tries_left), reply, now)?,
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
        let max_tries = self.login().max_tries.get();
        let mut events = Vec::with_capacity(ended.len());
        for session in ended {
            let user = session.user.clone();
            let context = session.context.clone();
            let event = match session.step {
                Step::AwaitingCode { tries_left, .. } => with_challenge(
                    &session,
                    Event::LoginAbandoned {
                        user: user.clone(),
                        context,
                        codes: max_tries.saturating_sub(tries_left),
                    },
                ),
                Step::Enrolling { .. } | Step::EnrollingContact { .. } => {
                    Event::EnrollmentAbandoned {
                        user: user.clone(),
                        context,
                        confirmed: false,
                    }
                }
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
mod tests;
