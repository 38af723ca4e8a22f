//! The daemon over D-Bus, every exchange bounded by the module's timeout.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use pam_mfa_api::proxy::LoginProxy;
use pam_mfa_api::{Error, WireTurn};
use zbus::Connection;
use zruntime::SharedRuntime;

use crate::relay::Daemon;

/// `mfad` reached over D-Bus. The connection is made on the first call, inside its time limit.
pub struct BusDaemon {
    address: String,
    timeout: Duration,
    runtime: SharedRuntime,
    connection: Option<Connection>,
}

fn timed_out(what: &str, limit: Duration) -> Error {
    Error::ZBus(zbus::Error::FDO(Box::new(zbus::fdo::Error::TimedOut(
        format!(
            "no answer from mfad to {what} within {:.1} s",
            limit.as_secs_f64()
        ),
    ))))
}

impl BusDaemon {
    pub fn new(address: String, timeout: Duration, runtime: SharedRuntime) -> Self {
        BusDaemon {
            address,
            timeout,
            runtime,
            connection: None,
        }
    }

    async fn proxy(
        connection: &mut Option<Connection>,
        address: &str,
    ) -> Result<LoginProxy<'static>, Error> {
        let connection = match connection {
            Some(connection) => connection.clone(),
            None => {
                let built = zbus::connection::Builder::address(address)
                    .build()
                    .await
                    .map_err(Error::ZBus)?;
                connection.insert(built).clone()
            }
        };
        LoginProxy::builder(&connection)
            .cache_properties(zbus::proxy::CacheProperties::No)
            .build()
            .await
            .map_err(Error::ZBus)
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

/// Runs `work`, failing with a time-out error if it takes longer than `limit`.
async fn bounded<T>(
    runtime: &SharedRuntime,
    limit: Duration,
    what: &str,
    work: impl Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
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
    ) -> Result<(String, WireTurn), Error> {
        let work = async {
            let proxy = Self::proxy(&mut self.connection, &self.address).await?;
            proxy.begin(user, context.clone()).await
        };
        bounded(&self.runtime, self.timeout, "Begin", work).await
    }

    async fn answer(&mut self, session: &str, reply: &str) -> Result<WireTurn, Error> {
        let work = async {
            let proxy = Self::proxy(&mut self.connection, &self.address).await?;
            proxy.answer(session, reply).await
        };
        bounded(&self.runtime, self.timeout, "Answer", work).await
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
