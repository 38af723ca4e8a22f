//! Typed audit events: what happened, to whom, from where. Each renders to one syslog line and,
//! for the events worth keeping, to a row of the store's audit table, written in the same
//! transaction as the change it records.
//!
//! No field can hold a secret, a code or a reply: events are built from user names, the login's
//! context (sanitized), counts and enums only.

use std::fmt;

use pam_mfa_api::EnforcedBy;
use pam_mfa_api::limits::MAX_CONTEXT_LEN;

use crate::users::UserName;

/// Where a login comes from: the PAM items the module passed, made safe for a log line
/// (printable ASCII, bounded).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Context {
    pub service: String,
    pub rhost: String,
    /// The service sends one password: the password and the code come in one answer
    /// (pam_mfa.so `forward_pass`). Not part of the log line.
    pub joined: bool,
}

impl Context {
    pub fn new(service: &str, rhost: &str) -> Self {
        Context {
            service: printable(service),
            rhost: printable(rhost),
            joined: false,
        }
    }

    /// The same, for a service that takes the password and the code in one answer.
    pub fn joined(mut self, joined: bool) -> Self {
        self.joined = joined;
        self
    }
}

impl fmt::Display for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "service={} rhost={}", self.service, self.rhost)
    }
}

/// Makes a value safe for a log line: printable ASCII, at most [`MAX_CONTEXT_LEN`] characters.
fn printable(value: &str) -> String {
    value
        .chars()
        .take(MAX_CONTEXT_LEN)
        .map(|c| if c.is_ascii_graphic() { c } else { '?' })
        .collect()
}

/// Makes text safe for one log line: spaces kept, other white space and control characters
/// replaced, bounded.
fn printable_spaced(value: &str) -> String {
    value
        .chars()
        .take(400)
        .map(|c| {
            if c == ' ' || c.is_ascii_graphic() {
                c
            } else {
                '?'
            }
        })
        .collect()
}

/// A multi-line message (a configuration error) as one line.
fn one_line(value: &str) -> String {
    let joined = value
        .lines()
        .map(str::trim)
        // The TOML parser's pointer lines ("|    ^^^") say nothing in one line.
        .filter(|line| !line.is_empty() && !line.starts_with('|'))
        .collect::<Vec<_>>()
        .join(" / ");
    printable_spaced(&joined)
}

/// Why a login was denied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denial {
    /// The name cannot be a user name.
    InvalidName(String),
    /// MFA is required but the user has no enrollment.
    NotEnrolled,
    /// MFA is required of a name the system does not know, which has no enrollment (never
    /// enrolled at login).
    UnknownUser,
    /// The user already has as many unfinished logins as allowed.
    TooManyLogins(u32),
    /// The enrollment was reset (or replaced) while the login waited for a code.
    ResetDuringLogin,
    /// The last try was used up.
    NoTriesLeft(Rejection),
    /// The account is locked until this Unix time (too many wrong codes).
    Locked(i64),
}

/// Why a code was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    Wrong,
    Replayed,
    /// A recovery code of the user's that was used already.
    RecoveryCodeUsed,
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Rejection::Wrong => "wrong code",
            Rejection::Replayed => "code already used",
            Rejection::RecoveryCodeUsed => "recovery code already used",
        })
    }
}

/// Which enforcement switch an administrator set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    AllUsers,
    User(UserName),
}

/// Something the audit trail records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    LoginAllowed {
        user: UserName,
        context: Context,
    },
    /// MFA was not required of this login.
    LoginSkipped {
        user: UserName,
        context: Context,
    },
    LoginDenied {
        user: String,
        context: Context,
        why: Denial,
    },
    CodeRejected {
        user: UserName,
        context: Context,
        why: Rejection,
        tries_left: u32,
    },
    /// A non-root caller asked to authenticate an account that is not its own.
    LoginRefused {
        uid: u32,
        user: String,
    },
    /// A non-root caller called an administrator method.
    AdminRefused {
        uid: u32,
    },
    EnrollmentStarted {
        user: UserName,
    },
    EnrollmentConfirmed {
        user: UserName,
    },
    /// The user made new recovery codes; the old ones stopped working.
    RecoveryCodesRenewed {
        user: UserName,
    },
    /// Too many wrong codes: the account is locked until `until` (Unix time).
    LockedOut {
        user: UserName,
        context: Context,
        until: i64,
    },
    /// An administrator ended a lock.
    Unlocked {
        user: UserName,
    },
    /// A counter-based token was brought back in step: `counter` is the value of the last code
    /// used now.
    TokenResynced {
        user: UserName,
        counter: u64,
    },
    /// The user removed their own authenticator app.
    EnrollmentDisabled {
        user: UserName,
    },
    /// A login succeeded with a recovery code; `left` remain unused.
    RecoveryCodeUsed {
        user: UserName,
        context: Context,
        left: usize,
    },
    EnrollmentsImported {
        count: usize,
    },
    EnrollmentReset {
        user: UserName,
        removed: bool,
    },
    EnforcementSet {
        scope: Scope,
        on: bool,
    },
    /// A login was asked for a code, at `at` (Unix time), because of `rule`.
    Challenged {
        user: UserName,
        context: Context,
        rule: EnforcedBy,
        at: i64,
    },
    /// An exemption let a login through without a second factor.
    LoginExempt {
        user: UserName,
        context: Context,
        rule: EnforcedBy,
    },
    /// A right code given earlier from the same place covered this login.
    RememberedLogin {
        user: UserName,
        context: Context,
        /// Unix time of the right code.
        verified: i64,
    },
    /// A login asked for a code and ended before its outcome (timed out, or its client went
    /// away): after `codes` codes that were not accepted (wrong or used), or none.
    LoginAbandoned {
        user: UserName,
        context: Context,
        codes: u32,
    },
    /// An enrollment at login ended before the app was confirmed, or before the recovery codes
    /// were acknowledged.
    EnrollmentAbandoned {
        user: UserName,
        context: Context,
        /// The app was set up; only the recovery codes were not acknowledged.
        confirmed: bool,
    },
    /// The configuration was read again; `changed` names the keys that differ.
    ConfigReloaded {
        changed: String,
    },
    /// A new configuration was refused; the one in use stays.
    ConfigRefused {
        reason: String,
    },
    /// Every stored secret is sealed with sealing key `key`; `count` were sealed again.
    SecretsResealed {
        key: u32,
        count: u64,
    },
    /// A reload changed who must use MFA where: `key: old -> new`.
    PolicyChanged {
        changes: String,
    },
    /// A code was sent to a contact (`to`, masked): to verify it (`login`: none), or for a
    /// login.
    ContactCodeSent {
        user: UserName,
        to: String,
        login: Option<Context>,
    },
    /// A code could not be sent to a contact; nothing counts as sent.
    ContactCodeNotSent {
        user: UserName,
        to: String,
        why: String,
    },
    /// A contact counts from now on: its code was typed, or an administrator vouched for it.
    ContactVerified {
        user: UserName,
        to: String,
    },
    ContactRemoved {
        user: UserName,
        to: String,
    },
    /// A login succeeded with a code sent to a contact.
    ContactCodeUsed {
        user: UserName,
        context: Context,
        to: String,
    },
    /// Two events of one change: the first recorded before the second, the second the one
    /// the call is about (a challenge and the login's outcome).
    Pair(Box<Event>, Box<Event>),
    /// An event an administrator (or a user through mfactl) caused, with the uid that did.
    By {
        uid: u32,
        event: Box<Event>,
    },
}

/// How loud a line is in syslog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Info,
    Warning,
}

fn on_off(on: bool) -> &'static str {
    if on { "on" } else { "off" }
}

impl Event {
    /// This event, as caused by `uid`.
    pub fn by(self, uid: u32) -> Event {
        Event::By {
            uid,
            event: Box::new(self),
        }
    }

    /// The same event with the end of the lock it records set to `until`: a
    /// [`Event::LockedOut`], alone, second in a pair or caused by someone. Other events are
    /// returned as they are.
    pub fn with_lock_end(&self, until: i64) -> Event {
        match self {
            Event::LockedOut { user, context, .. } => Event::LockedOut {
                user: user.clone(),
                context: context.clone(),
                until,
            },
            Event::Pair(first, second) => {
                Event::Pair(first.clone(), Box::new(second.with_lock_end(until)))
            }
            Event::By { uid, event } => Event::By {
                uid: *uid,
                event: Box::new(event.with_lock_end(until)),
            },
            other => other.clone(),
        }
    }

    /// The event itself, or the second of a [`Event::Pair`]: what the call is about.
    pub fn outcome(&self) -> &Event {
        match self {
            Event::Pair(_, second) => second,
            event => event,
        }
    }

    /// A short stable name for the audit table and for filtering.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::By { event, .. } | Event::Pair(_, event) => event.kind(),
            Event::Challenged { .. } => "challenged",
            Event::LoginExempt { .. } => "login-exempt",
            Event::RememberedLogin { .. } => "remembered-login",
            Event::LoginAbandoned { .. } => "login-abandoned",
            Event::EnrollmentAbandoned { .. } => "enrollment-abandoned",
            Event::ConfigReloaded { .. } => "config-reloaded",
            Event::ConfigRefused { .. } => "config-refused",
            Event::SecretsResealed { .. } => "secrets-resealed",
            Event::PolicyChanged { .. } => "policy-changed",
            Event::LoginAllowed { .. } => "login-allowed",
            Event::LoginSkipped { .. } => "login-skipped",
            Event::LoginDenied { .. } => "login-denied",
            Event::CodeRejected { .. } => "code-rejected",
            Event::LoginRefused { .. } => "login-refused",
            Event::AdminRefused { .. } => "admin-refused",
            Event::EnrollmentStarted { .. } => "enrollment-started",
            Event::EnrollmentConfirmed { .. } => "enrollment-confirmed",
            Event::RecoveryCodeUsed { .. } => "recovery-code-used",
            Event::RecoveryCodesRenewed { .. } => "recovery-codes-renewed",
            Event::LockedOut { .. } => "locked-out",
            Event::Unlocked { .. } => "unlocked",
            Event::TokenResynced { .. } => "token-resynced",
            Event::EnrollmentDisabled { .. } => "enrollment-disabled",
            Event::EnrollmentsImported { .. } => "enrollments-imported",
            Event::EnrollmentReset { .. } => "enrollment-reset",
            Event::EnforcementSet { .. } => "enforcement-set",
            Event::ContactCodeSent { .. } => "contact-code-sent",
            Event::ContactCodeNotSent { .. } => "contact-code-not-sent",
            Event::ContactVerified { .. } => "contact-verified",
            Event::ContactRemoved { .. } => "contact-removed",
            Event::ContactCodeUsed { .. } => "contact-code-used",
        }
    }

    pub fn severity(&self) -> Severity {
        match self {
            Event::By { event, .. } | Event::Pair(_, event) => event.severity(),
            Event::LoginDenied { .. }
            | Event::ConfigRefused { .. }
            | Event::LoginRefused { .. }
            | Event::AdminRefused { .. }
            | Event::LockedOut { .. }
            | Event::ContactCodeNotSent { .. } => Severity::Warning,
            _ => Severity::Info,
        }
    }

    /// The user the event is about, for the audit table.
    pub fn user(&self) -> Option<&str> {
        match self {
            Event::By { event, .. } | Event::Pair(_, event) => event.user(),
            Event::Challenged { user, .. }
            | Event::LoginExempt { user, .. }
            | Event::RememberedLogin { user, .. }
            | Event::LoginAbandoned { user, .. }
            | Event::EnrollmentAbandoned { user, .. } => Some(user.as_str()),
            Event::LoginAllowed { user, .. }
            | Event::LoginSkipped { user, .. }
            | Event::CodeRejected { user, .. }
            | Event::EnrollmentStarted { user }
            | Event::EnrollmentConfirmed { user }
            | Event::RecoveryCodeUsed { user, .. }
            | Event::RecoveryCodesRenewed { user }
            | Event::LockedOut { user, .. }
            | Event::Unlocked { user }
            | Event::TokenResynced { user, .. }
            | Event::EnrollmentDisabled { user }
            | Event::EnrollmentReset { user, .. }
            | Event::ContactCodeSent { user, .. }
            | Event::ContactCodeNotSent { user, .. }
            | Event::ContactVerified { user, .. }
            | Event::ContactRemoved { user, .. }
            | Event::ContactCodeUsed { user, .. } => Some(user.as_str()),
            Event::LoginDenied { user, .. } | Event::LoginRefused { user, .. } => Some(user),
            Event::EnforcementSet {
                scope: Scope::User(user),
                ..
            } => Some(user.as_str()),
            _ => None,
        }
    }

    /// Whether the event goes to the audit table as well as to syslog: changes of state,
    /// allowed logins, and logins denied after a code was tried. Skipped logins, single wrong
    /// codes, refused callers and logins denied before any question go to syslog only: they
    /// change nothing, and a local user could otherwise make mfad write to disk at will.
    ///
    /// A challenge is kept with the login's outcome, in its transaction ([`Event::Pair`]), so
    /// that asking for a code costs no write of its own.
    pub fn is_kept(&self) -> bool {
        match self {
            Event::By { event, .. } | Event::Pair(_, event) => return event.is_kept(),
            // Break-glass logins are worth a row; service and network exemptions happen at
            // every console login and say nothing new.
            Event::LoginExempt { rule, .. } => {
                return matches!(rule, EnforcedBy::ExemptUser | EnforcedBy::ExemptGroup(_));
            }
            _ => {}
        }
        !matches!(
            self,
            Event::LoginSkipped { .. }
                | Event::CodeRejected { .. }
                | Event::LoginRefused { .. }
                | Event::AdminRefused { .. }
                | Event::ContactCodeNotSent { .. }
                | Event::LoginDenied {
                    why: Denial::InvalidName(_)
                        | Denial::NotEnrolled
                        | Denial::UnknownUser
                        | Denial::Locked(_)
                        | Denial::TooManyLogins(_),
                    ..
                }
        )
    }
}

/// The syslog line.
impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::By { uid, event } => write!(f, "{event} by uid {uid}"),
            Event::Pair(_, event) => write!(f, "{event}"),
            Event::Challenged {
                user,
                context,
                rule,
                ..
            } => write!(
                f,
                "challenged: user={user} asked for a code ({rule}) {context}"
            ),
            Event::LoginExempt {
                user,
                context,
                rule,
            } => write!(
                f,
                "login exempt: user={user} no second factor asked ({rule}) {context}"
            ),
            Event::RememberedLogin {
                user,
                context,
                verified,
            } => write!(
                f,
                "login allowed: user={user} remembered from a right code at {} {context}",
                pam_mfa_api::utc(*verified)
            ),
            Event::LoginAbandoned {
                user,
                context,
                codes: 0,
            } => write!(
                f,
                "login abandoned: user={user} no code given before the login ended {context}"
            ),
            Event::LoginAbandoned {
                user,
                context,
                codes,
            } => write!(
                f,
                "login abandoned: user={user} ended after {codes} {} not accepted {context}",
                if *codes == 1 { "code" } else { "codes" }
            ),
            Event::EnrollmentAbandoned {
                user,
                context,
                confirmed,
            } => {
                if *confirmed {
                    write!(
                        f,
                        "enrollment abandoned: user={user} app set up, recovery codes not \
                         acknowledged {context}"
                    )
                } else {
                    write!(
                        f,
                        "enrollment abandoned: user={user} no code from the app before the \
                         login ended {context}"
                    )
                }
            }
            Event::ConfigReloaded { changed } => {
                write!(
                    f,
                    "configuration reloaded: changed: {}",
                    printable_spaced(changed)
                )
            }
            Event::SecretsResealed { key, count } => write!(
                f,
                "secrets resealed: every secret is sealed with key {key}, {count} sealed again"
            ),
            Event::ConfigRefused { reason } => write!(
                f,
                "configuration not reloaded, the one in use stays: {}",
                one_line(reason)
            ),
            Event::PolicyChanged { changes } => {
                write!(f, "policy changed: {}", printable_spaced(changes))
            }
            Event::LoginAllowed { user, context } => {
                write!(f, "login allowed: user={user} {context}")
            }
            Event::LoginSkipped { user, context } => write!(
                f,
                "login skipped: user={user} is not enrolled and not enforced {context}"
            ),
            Event::LoginDenied { user, context, why } => {
                let user = printable(user);
                match why {
                    Denial::InvalidName(reason) => {
                        write!(f, "login denied: invalid user name ({reason}) {context}")
                    }
                    Denial::NotEnrolled => write!(
                        f,
                        "login denied: user={user} must use MFA but is not enrolled {context}"
                    ),
                    Denial::UnknownUser => write!(
                        f,
                        "login denied: user={user} is not in the system user database and \
                         has no enrollment {context}"
                    ),
                    Denial::TooManyLogins(limit) => write!(
                        f,
                        "login denied: user={user} has {limit} logins in progress {context}"
                    ),
                    Denial::ResetDuringLogin => write!(
                        f,
                        "login denied: user={user} was reset during the login {context}"
                    ),
                    Denial::Locked(until) => write!(
                        f,
                        "login denied: user={user} is locked until {} {context}",
                        pam_mfa_api::utc(*until)
                    ),
                    Denial::NoTriesLeft(why) => write!(
                        f,
                        "login denied: user={user} {why}, no tries left {context}"
                    ),
                }
            }
            Event::CodeRejected {
                user,
                context,
                why,
                tries_left,
            } => write!(
                f,
                "login attempt failed: user={user} {why}, {tries_left} {} left {context}",
                if *tries_left == 1 { "try" } else { "tries" }
            ),
            Event::LoginRefused { uid, user } => write!(
                f,
                "refused: uid {uid} asked to authenticate {}, which is not its own account",
                printable(user)
            ),
            Event::AdminRefused { uid } => {
                write!(f, "refused: uid {uid} called an administrator method")
            }
            Event::EnrollmentStarted { user } => write!(f, "enrollment started: user={user}"),
            Event::EnrollmentConfirmed { user } => {
                write!(f, "enrollment confirmed: user={user}")
            }
            Event::RecoveryCodeUsed {
                user,
                context,
                left,
            } => write!(
                f,
                "login allowed with a recovery code: user={user} {left} recovery codes left \
                 {context}"
            ),
            Event::RecoveryCodesRenewed { user } => {
                write!(f, "recovery codes renewed: user={user}")
            }
            Event::LockedOut {
                user,
                context,
                until,
            } => write!(
                f,
                "locked out: user={user} too many wrong codes, locked until {} {context}",
                pam_mfa_api::utc(*until)
            ),
            Event::Unlocked { user } => write!(f, "unlocked: user={user}"),
            Event::ContactCodeSent {
                user,
                to,
                login: None,
            } => write!(f, "contact code sent: user={user} to {to}, to verify it"),
            Event::ContactCodeSent {
                user,
                to,
                login: Some(context),
            } => write!(
                f,
                "contact code sent: user={user} to {to}, for a login {context}"
            ),
            Event::ContactCodeNotSent { user, to, why } => write!(
                f,
                "contact code not sent: user={user} to {to}: {}",
                one_line(why)
            ),
            Event::ContactVerified { user, to } => {
                write!(f, "contact verified: user={user} {to}")
            }
            Event::ContactRemoved { user, to } => write!(f, "contact removed: user={user} {to}"),
            Event::ContactCodeUsed { user, context, to } => write!(
                f,
                "login allowed with a code sent to {to}: user={user} {context}"
            ),
            Event::TokenResynced { user, counter } => {
                write!(
                    f,
                    "token brought back in step: user={user} counter={counter}"
                )
            }
            Event::EnrollmentDisabled { user } => {
                write!(f, "enrollment removed by its user: user={user}")
            }
            Event::EnrollmentsImported { count } => write!(f, "imported {count} enrollments"),
            Event::EnrollmentReset { user, removed } => {
                write!(f, "enrollment reset: user={user} removed={removed}")
            }
            Event::EnforcementSet {
                scope: Scope::AllUsers,
                on,
            } => write!(f, "enforcement for all users set to {}", on_off(*on)),
            Event::EnforcementSet {
                scope: Scope::User(user),
                on,
            } => write!(f, "enforcement for user={user} set to {}", on_off(*on)),
        }
    }
}

#[cfg(test)]
mod tests;
