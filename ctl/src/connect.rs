//! The connection to `mfad`: the bus, then a check that root owns the name, then the proxy.

use pam_mfa_api::owner::ensure_root_owner;
use pam_mfa_api::proxy::{AdminProxy, UserProxy};

use crate::failure::{Failure, Kind};

/// Connects to the bus at `bus` (or the system bus) and checks that `org.pam_mfa.Mfad1` belongs
/// to uid 0 before anything is sent to it, so that secrets never reach a process a user
/// started on a bus of their own (`sudo -E` keeps `DBUS_SYSTEM_BUS_ADDRESS`).
pub async fn connect(bus: Option<&str>) -> Result<AdminProxy<'static>, Failure> {
    let connection = checked_connection(bus).await?;
    AdminProxy::builder(&connection)
        .cache_properties(zbus::proxy::CacheProperties::No)
        .build()
        .await
        .map_err(|error| Failure::new(Kind::Bus, error.to_string()))
}

/// As [`connect`], for the self-service interface: every call acts on the caller's own account.
pub async fn connect_user(bus: Option<&str>) -> Result<UserProxy<'static>, Failure> {
    let connection = checked_connection(bus).await?;
    UserProxy::builder(&connection)
        .cache_properties(zbus::proxy::CacheProperties::No)
        .build()
        .await
        .map_err(|error| Failure::new(Kind::Bus, error.to_string()))
}

async fn checked_connection(bus: Option<&str>) -> Result<zbus::Connection, Failure> {
    let address = pam_mfa_api::bus_address(bus);
    let connection = zbus::connection::Builder::address(address.as_str())
        .build()
        .await
        .map_err(|error| {
            Failure::new(
                Kind::Connect,
                format!("cannot connect to the D-Bus bus at {address}: {error} (is dbus running?)"),
            )
        })?;
    ensure_root_owner(&connection).await?;
    Ok(connection)
}
