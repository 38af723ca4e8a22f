//! Who owns `org.pam_mfa.Mfad1`: clients check it is root before they send anything, so that a
//! bus started by a user (for example through `sudo -E` keeping `DBUS_SYSTEM_BUS_ADDRESS`)
//! never receives codes or secrets.

use zbus::Connection;
use zbus::names::BusName;

use crate::{BUS_NAME, Error};

/// The uid of the process that owns [`BUS_NAME`] on `connection`'s bus.
///
/// Fails with the bus's `NameHasNoOwner` error when nobody owns the name, and with
/// [`Error::NotRoot`] when the owner is not uid 0.
pub async fn ensure_root_owner(connection: &Connection) -> Result<(), Error> {
    let bus = zbus::fdo::DBusProxy::builder(connection)
        .cache_properties(zbus::proxy::CacheProperties::No)
        .build()
        .await?;
    let name = BusName::from_static_str(BUS_NAME)?;
    let uid = bus
        .get_connection_unix_user(name)
        .await
        .map_err(|error| Error::ZBus(zbus::Error::FDO(Box::new(error))))?;
    if uid != 0 {
        return Err(Error::NotRoot(format!(
            "{BUS_NAME} on this bus belongs to uid {uid}, not to root: refusing to talk to it \
             (is DBUS_SYSTEM_BUS_ADDRESS pointing at a bus another user started?)"
        )));
    }
    Ok(())
}
