//! How callers reach the core: the system bus (mfactl, and logins where the login socket is
//! not used) and mfad's login socket (the PAM module). Each transport identifies its callers,
//! bounds what each uid may ask at once, and translates calls into calls of the core; neither
//! decides anything, and neither uses the other. The login socket is bound by mfad, or passed
//! by systemd (socket activation).

pub mod activation;
pub mod bus;
pub mod identity;
pub mod login_socket;

use std::sync::Arc;

use crate::clock::SystemClock;
use crate::core::Core;
use identity::{Identities, InFlight};

/// The core as served: the configured store (SQLite or PostgreSQL) and the system clock.
pub type ServedCore = Core<SystemClock>;

/// Runs blocking work (the store, name lookups) on a thread of the blocking pool, so that the
/// bus executor keeps reading and answering other callers meanwhile.
pub async fn off_executor<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    zruntime::unblock(work).await
}

/// What the transports share: the core, and the callers' identities and limits.
#[derive(Clone)]
pub struct Shared {
    pub core: Arc<ServedCore>,
    pub identities: Arc<Identities>,
}

impl Shared {
    /// Runs `work` on the core off the executor, holding the caller's place until it is done.
    async fn run<T: Send + 'static>(
        &self,
        permit: InFlight,
        work: impl FnOnce(&ServedCore) -> T + Send + 'static,
    ) -> T {
        let core = self.core.clone();
        off_executor(move || {
            let _permit = permit;
            work(&core)
        })
        .await
    }
}
