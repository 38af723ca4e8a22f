//! How the store is doing, for administrators (`mfactl health`): where the state is, which
//! database server answers, and the last failure.

use super::sql::{Lane, Server};
use super::{Result, Store};

/// The store as `Admin.Health` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    /// Where the state is kept ([`super::sql::Backend::describe`]).
    pub store: String,
    /// The database server in use, for a shared database.
    pub server: Option<Server>,
    /// Whether the store answered just now.
    pub answering: bool,
    /// The last failure of the store, and when (Unix time).
    pub last_error: Option<(i64, String)>,
}

/// The last failure of the store's calls, kept by [`Store::noted`].
#[derive(Default)]
pub(super) struct Failures {
    last: std::sync::Mutex<Option<(i64, String)>>,
}

impl Store {
    /// Asks the store for one row now, then reports. The question goes where logins' reads
    /// go (a wait behind listings would say nothing about the store), and its own failure is
    /// not kept as the last one (which says why logins failed).
    pub fn health(&self) -> Health {
        let answering = self
            .backend
            .read(Lane::Login, &mut |tx| tx.query("SELECT 1", &[]).map(drop))
            .is_ok();
        Health {
            store: self.backend.describe(),
            server: self.backend.server(),
            answering,
            last_error: self
                .failures
                .last
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .clone(),
        }
    }

    /// Keeps the failure of a call of the backend, if it failed (a success costs nothing).
    pub(super) fn noted<T>(&self, outcome: Result<T>) -> Result<T> {
        if let Err(error) = &outcome {
            let now = crate::clock::Clock::now(&crate::clock::SystemClock) as i64;
            *self
                .failures
                .last
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some((now, error.to_string()));
        }
        outcome
    }
}
