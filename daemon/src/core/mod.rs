//! The daemon's core: authorization, the login dialogue and the administrator's operations,
//! over a store and a clock. The bus adapters ([`crate::transport::bus`]) translate D-Bus calls into calls
//! of this type, off the bus executor; nothing here knows D-Bus.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use pam_mfa_api::Error;
use pam_mfa_config::Config;

use crate::audit::Event;
use crate::clock::Clock;
use crate::codes::totp::{Kind, Params, Secret, SecretError};
use crate::core::dialogue::{Dialogue, Settings};
use crate::log;
use crate::store::{Store, StoreError};
use crate::users::{self, Lookup, LookupError, NameError, UserName};

mod access;
mod admin;
mod contacts;
pub mod dialogue;
mod import;
mod login;
pub mod reload;
mod selfservice;
#[cfg(test)]
mod tests;
pub mod texts;

/// The caller of one request, as its transport identified it (never from arguments).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub uid: u32,
    /// The connection's name: its unique bus name, or the name the login socket gave it.
    /// Sessions are bound to it, and it is never given to another connection.
    pub connection: String,
}

pub struct Core<C: Clock> {
    /// Where the configuration is read again on reload; `None`: never (tests).
    config_path: Option<std::path::PathBuf>,
    /// Reloads one at a time, so two cannot interleave their reading and putting in use.
    reloading: std::sync::Mutex<()>,
    store: Arc<Store>,
    dialogue: Dialogue<C>,
    /// Wrong codes given to self-service commands, per user: (count, since).
    wrong_codes: std::sync::Mutex<HashMap<UserName, (u32, u64)>>,
    /// The name service's recent answers about the users of root-run logins.
    names: users::Recent<UserName, Lookup>,
    /// ... and about their membership of the groups the rules name.
    groups: users::Recent<(UserName, Vec<String>), Vec<String>>,
}

/// Wrong codes a user may give to self-service commands in [`WRONG_CODES_WINDOW`] seconds.
const WRONG_CODES_ALLOWED: u32 = 5;
const WRONG_CODES_WINDOW: u64 = 15 * 60;

/// Why the core could not do what was asked: for mfad's log. The caller is told only that
/// nothing was changed ([`Error::Internal`]).
#[derive(Debug)]
pub enum Fault {
    Store(StoreError),
    /// The system gave no randomness for a secret, a session or recovery codes.
    NoRandomness(getrandom::Error),
    /// A new secret could not be shown as an otpauth:// URI.
    Uri(crate::codes::totp::EmptyLabel),
    /// The active enrollment a login was decided on was gone when the login went on.
    EnrollmentVanished,
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fault::Store(error) => write!(f, "{error}"),
            Fault::NoRandomness(error) => write!(f, "no randomness: {error}"),
            Fault::Uri(error) => write!(f, "{error}"),
            Fault::EnrollmentVanished => f.write_str("an enrollment vanished during a login"),
        }
    }
}

impl From<StoreError> for Fault {
    fn from(error: StoreError) -> Self {
        Fault::Store(error)
    }
}

// What the core's failures are on the bus, each said once here. The details go to mfad's log,
// never to the caller.

impl From<Fault> for Error {
    fn from(fault: Fault) -> Self {
        log::error(&fault.to_string());
        let text = match fault {
            Fault::Store(StoreError::Unconfirmed(_)) => {
                "mfad could not confirm a change to its state database; it may have been made \
                 (see mfad's log)"
            }
            Fault::Store(StoreError::Unavailable(_) | StoreError::Conflict(_)) => {
                "mfad could not reach its state database in time; nothing was changed (see \
                 mfad's log)"
            }
            Fault::Store(_) => {
                "mfad could not use its state database; nothing was changed (see mfad's log)"
            }
            Fault::NoRandomness(_) | Fault::Uri(_) | Fault::EnrollmentVanished => {
                "mfad could not complete the request; nothing was changed (see mfad's log)"
            }
        };
        Error::Internal(text.into())
    }
}

impl From<StoreError> for Error {
    fn from(error: StoreError) -> Self {
        Fault::Store(error).into()
    }
}

impl From<LookupError> for Error {
    fn from(error: LookupError) -> Self {
        log::error(&error.to_string());
        Error::Internal(format!("{error}; try again later"))
    }
}

impl From<SecretError> for Error {
    fn from(error: SecretError) -> Self {
        Error::InvalidArgument(error.to_string())
    }
}

impl From<NameError> for Error {
    fn from(error: NameError) -> Self {
        Error::InvalidArgument(error.to_string())
    }
}

/// Runs a name-service lookup on another thread of the blocking pool and waits at most `limit`
/// for it, so a hung LDAP or SSSD holds up only the request that needed it. (The pool starts
/// the work when it is handed over; the future is not needed to run it.)
fn bounded<T: Send + 'static>(
    limit: Duration,
    lookup: impl FnOnce() -> Result<T, LookupError> + Send + 'static,
) -> Result<T, LookupError> {
    let (sender, receiver) = std::sync::mpsc::sync_channel(1);
    drop(zruntime::unblock(move || {
        let _ = sender.send(lookup());
    }));
    receiver
        .recv_timeout(limit)
        .map_err(|_| LookupError::TimedOut(limit))?
}

fn new_secret() -> Result<Secret, Error> {
    Secret::generate()
        .map_err(|error| Error::Internal(format!("no randomness for a secret: {error}")))
}

fn by_name(limit: Duration, name: &UserName) -> Result<Lookup, LookupError> {
    let name = name.clone();
    bounded(limit, move || users::by_name(&name))
}

impl<C: Clock> Core<C> {
    pub fn new(config: Config, store: Arc<Store>, clock: C) -> Self {
        Core::with_settings(Settings::new(config), store, clock)
    }

    pub fn with_settings(settings: Settings, store: Arc<Store>, clock: C) -> Self {
        let dialogue = Dialogue::new(store.clone(), clock, settings);
        Core {
            config_path: None,
            reloading: std::sync::Mutex::new(()),
            store,
            dialogue,
            wrong_codes: std::sync::Mutex::new(HashMap::new()),
            names: users::Recent::default(),
            groups: users::Recent::default(),
        }
    }

    /// Reads the configuration again from `path` on [`Core::reload`].
    pub fn reloading_from(mut self, path: std::path::PathBuf) -> Self {
        self.config_path = Some(path);
        self
    }

    /// The configuration in use.
    fn config(&self) -> Arc<Settings> {
        self.dialogue.settings()
    }

    /// How long a name-service lookup may take (`lookup_timeout`).
    fn lookup_limit(&self) -> Duration {
        Duration::from_secs(u64::from(self.config().config.lookup_timeout.get()))
    }

    fn emit(&self, caller: &Caller, events: &[Event]) {
        for event in events {
            log::event(event, caller.uid);
        }
    }

    /// How long an unfinished login waits for its next answer, as configured now.
    pub fn session_timeout(&self) -> Duration {
        Duration::from_secs(u64::from(self.config().config.login.session_timeout.get()))
    }

    /// Days audit entries are kept, as configured now.
    pub fn retention_days(&self) -> u32 {
        self.config().config.audit.retention_days.get()
    }

    /// Seconds after which no remembered code covers a login, as configured now.
    pub fn remember_limit(&self) -> u32 {
        self.config().config.remember.limit()
    }

    /// The parameters of new enrollments of `kind`.
    fn params_of(&self, kind: Kind) -> Params {
        self.dialogue.new_enrollments().params_of(kind)
    }

    fn now(&self) -> i64 {
        self.dialogue.now() as i64
    }
}
