//! The daemon over D-Bus, every exchange bounded by the module's timeout. Each failure is
//! classified where it happens (connecting, checking who owns the name, or calling) by
//! [`crate::failure`].
#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use pam_mfa_api::WireTurn;
use pam_mfa_api::proxy::LoginProxy;
use zbus::Connection;
use zruntime::SharedRuntime;

use crate::failure::{Failure, call_failure, connect_failure, owner_failure, timed_out};
use crate::relay::Daemon;

/// `mfad` over D-Bus (when it does not listen on its login socket, or with `bus=` alone). The
/// connection is made on the first call, inside its time limit, and checked before anything is
/// sent: the owner of the bus name must be root.
pub struct BusDaemon {
    address: String,
    timeout: Duration,
    runtime: SharedRuntime,
    connection: Option<Connection>,
    owner_checked: bool,
}

impl BusDaemon {
    pub fn new(address: String, timeout: Duration, runtime: SharedRuntime) -> Self {
        BusDaemon {
            address,
            timeout,
            runtime,
            connection: None,
            owner_checked: false,
        }
    }

    /// The Login proxy on the connection, made and checked on first use. The connection is
    /// kept even when the owner check fails, so that [`BusDaemon::close`] closes it.
    async fn login_proxy(&mut self) -> Result<LoginProxy<'static>, Failure> {
        let connection = match &self.connection {
            Some(connection) => connection.clone(),
            None => {
                let built = zbus::connection::Builder::address(self.address.as_str())
                    .build()
                    .await
                    .map_err(connect_failure)?;
                self.connection.insert(built).clone()
            }
        };
        if !self.owner_checked {
            pam_mfa_api::owner::ensure_root_owner(&connection)
                .await
                .map_err(owner_failure)?;
            self.owner_checked = true;
        }
        LoginProxy::builder(&connection)
            .cache_properties(zbus::proxy::CacheProperties::No)
            .build()
            .await
            .map_err(|error| Failure::NoAnswer(format!("cannot set up the call: {error}")))
    }

    /// Closes the connection and lets its tasks finish, so no thread or descriptor outlives the
    /// call. The runtime is the calling thread's own (the free `block_on`), which goes away when
    /// nothing holds it any more.
    pub async fn close(&mut self) {
        if let Some(connection) = self.connection.take() {
            let _ = connection.close().await;
        }
        // One turn lets the runtime run the tasks the close woke (the socket reader's end).
        // Without it, they were left for a helper thread in a share of the calls.
        yield_now().await;
    }
}

/// Runs `work`, failing with [`Failure::NoAnswer`] if it takes longer than `limit`.
async fn bounded<T>(
    runtime: &SharedRuntime,
    limit: Duration,
    what: &str,
    work: impl Future<Output = Result<T, Failure>>,
) -> Result<T, Failure> {
    runtime
        .timeout(limit, work)
        .await
        .unwrap_or_else(|_| Err(timed_out(what, limit)))
}

impl Daemon for BusDaemon {
    async fn begin(
        &mut self,
        user: &str,
        context: &HashMap<&str, &str>,
    ) -> Result<(String, WireTurn), Failure> {
        let (runtime, limit) = (self.runtime.clone(), self.timeout);
        let work = async {
            let proxy = self.login_proxy().await?;
            proxy
                .begin(user, context.clone())
                .await
                .map_err(|error| call_failure("Begin", error))
        };
        bounded(&runtime, limit, "Begin", work).await
    }

    async fn answer(&mut self, session: &str, reply: &str) -> Result<WireTurn, Failure> {
        let (runtime, limit) = (self.runtime.clone(), self.timeout);
        let work = async {
            let proxy = self.login_proxy().await?;
            proxy
                .answer(session, reply)
                .await
                .map_err(|error| call_failure("Answer", error))
        };
        bounded(&runtime, limit, "Answer", work).await
    }

    async fn cancel(&mut self, session: &str) {
        let (runtime, limit) = (self.runtime.clone(), self.timeout);
        let work = async {
            let proxy = self.login_proxy().await?;
            proxy
                .cancel(session)
                .await
                .map_err(|error| call_failure("Cancel", error))
        };
        // Best effort: the session also expires, and dies with the connection.
        let _ = bounded(&runtime, limit, "Cancel", work).await;
    }
}

/// Gives the runtime one turn, so tasks woken by a drop can finish before the call returns.
async fn yield_now() {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if yielded {
            std::task::Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        }
    })
    .await
}
