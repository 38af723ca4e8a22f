//! Who owns `org.pam_mfa.Mfad1`: clients check it is root before they send anything, so that a
//! bus started by a user (for example through `sudo -E` keeping `DBUS_SYSTEM_BUS_ADDRESS`)
//! never receives codes or secrets.

use zbus::Connection;
use zbus::names::BusName;

use crate::{BUS_NAME, Error};

/// Checks that the process owning [`BUS_NAME`] on `connection`'s bus is root's.
///
/// When nobody owns the name, asks the bus to start mfad (D-Bus activation: the package's
/// activation file hands it to systemd) and checks again. Fails with the bus's
/// `NameHasNoOwner` error when nobody owns the name and the bus cannot start mfad (no
/// activation file, or the start failed), with the bus's error when it does not answer, and
/// with [`Error::NotRoot`] when the owner is not uid 0.
pub async fn ensure_root_owner(connection: &Connection) -> Result<(), Error> {
    let bus = zbus::fdo::DBusProxy::builder(connection)
        .cache_properties(zbus::proxy::CacheProperties::No)
        .build()
        .await?;
    let name = BusName::from_static_str(BUS_NAME)?;
    let fdo = |error: zbus::fdo::Error| Error::ZBus(zbus::Error::FDO(Box::new(error)));
    let uid = match bus.get_connection_unix_user(name.clone()).await {
        Err(absent @ zbus::fdo::Error::NameHasNoOwner(_)) => {
            match bus
                .start_service_by_name(name.as_ref().try_into()?, 0)
                .await
            {
                Ok(_) => bus.get_connection_unix_user(name).await.map_err(fdo)?,
                Err(error) if cannot_start(&error) => return Err(fdo(absent)),
                Err(other) => return Err(fdo(other)),
            }
        }
        other => other.map_err(fdo)?,
    };
    if uid != 0 {
        return Err(Error::NotRoot(format!(
            "{BUS_NAME} on this bus belongs to uid {uid}, not to root: refusing to talk to it \
             (is DBUS_SYSTEM_BUS_ADDRESS pointing at a bus another user started?)"
        )));
    }
    Ok(())
}

/// Whether the bus answered that it cannot start mfad: no activation file, or starting it
/// failed (the spawn errors, or systemd's errors passed on, such as a disabled or masked unit).
/// Mfad is then as absent as it was before the attempt. A bus that does not answer in time, a
/// lost connection or the bus policy's refusal are not such answers.
fn cannot_start(error: &zbus::fdo::Error) -> bool {
    use zbus::DBusError;
    match error {
        zbus::fdo::Error::ZBus(zbus::Error::MethodError(..)) => true,
        zbus::fdo::Error::ZBus(_)
        | zbus::fdo::Error::NoReply(_)
        | zbus::fdo::Error::TimedOut(_)
        | zbus::fdo::Error::Timeout(_)
        | zbus::fdo::Error::Disconnected(_)
        | zbus::fdo::Error::IOError(_)
        | zbus::fdo::Error::NoMemory(_)
        | zbus::fdo::Error::LimitsExceeded(_)
        | zbus::fdo::Error::AccessDenied(_) => false,
        other => {
            let name = other.name();
            name == "org.freedesktop.DBus.Error.ServiceUnknown"
                || name.starts_with("org.freedesktop.DBus.Error.Spawn")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::cannot_start;
    use zbus::fdo::Error;

    #[test]
    fn only_a_bus_that_says_it_cannot_start_mfad_leaves_it_absent() {
        assert!(cannot_start(&Error::ServiceUnknown(
            "no activation file".into()
        )));
        assert!(cannot_start(&Error::SpawnChildExited("exit 1".into())));
        assert!(cannot_start(&Error::SpawnExecFailed("no such file".into())));
        for answer in [
            Error::NoReply("late".into()),
            Error::TimedOut("late".into()),
            Error::AccessDenied("policy".into()),
            Error::Disconnected("gone".into()),
            Error::Failed("other".into()),
        ] {
            assert!(!cannot_start(&answer), "{answer}");
        }
    }
}
