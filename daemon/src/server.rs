//! Serving: open the store, connect to the bus, serve the interfaces, take the name, and follow
//! the connections that go away, until the bus itself goes away.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use pam_mfa_api::{BUS_NAME, OBJECT_PATH};
use pam_mfa_config::Config;
use zbus::fdo::{RequestNameFlags, RequestNameReply};

use crate::clock::SystemClock;
use crate::core::Core;
use crate::log;
use crate::sealing::KeySet;
use crate::store::postgres::PostgresBackend;
use crate::store::sqlite::SqliteBackend;
use crate::store::{Store, StoreError};
use crate::transport::activation::{ActivationError, Passed};
use crate::transport::bus::{AdminInterface, UserInterface};
use crate::transport::identity::Identities;
use crate::transport::{ServedCore, Shared};

/// Why mfad cannot serve: it says so in its log and exits, and its service manager starts it
/// again.
#[derive(Debug)]
pub enum ServeError {
    /// The store cannot be opened as configured.
    Store(StoreError),
    /// The bus cannot be used: `what` mfad was doing when it failed.
    Bus { what: String, error: zbus::Error },
    /// Another process owns mfad's name on the bus.
    NameTaken { address: String },
    /// The connection to the bus is gone.
    BusLost { address: String },
    /// Something of the system mfad needs (a thread, a signal, a socket, the host name):
    /// `what` it was.
    System { what: String, error: std::io::Error },
    /// What systemd passed (socket activation) is not the login socket mfad is configured for.
    Activation(ActivationError),
    /// The keys that seal the secrets are missing or cannot be read.
    Sealing(String),
}

impl std::fmt::Display for ServeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServeError::Store(error) => write!(f, "{error}"),
            ServeError::Bus { what, error } => write!(f, "{what}: {error}"),
            ServeError::NameTaken { address } => write!(
                f,
                "cannot own {BUS_NAME} on {address}: another process owns it (is mfad already \
                 running?)"
            ),
            ServeError::BusLost { address } => write!(
                f,
                "lost the connection to the bus at {address}; exiting so that mfad can be \
                 started again"
            ),
            ServeError::System { what, error } => write!(f, "{what}: {error}"),
            ServeError::Activation(error) => write!(f, "{error}"),
            ServeError::Sealing(error) => write!(f, "{error}"),
        }
    }
}

impl std::error::Error for ServeError {}

impl From<ActivationError> for ServeError {
    fn from(error: ActivationError) -> Self {
        ServeError::Activation(error)
    }
}

impl From<StoreError> for ServeError {
    fn from(error: StoreError) -> Self {
        ServeError::Store(error)
    }
}

/// `what` failed on the bus.
fn on_bus(what: impl Into<String>) -> impl FnOnce(zbus::Error) -> ServeError {
    let what = what.into();
    move |error| ServeError::Bus { what, error }
}

/// `what` failed in the system.
fn in_system(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ServeError {
    let what = what.into();
    move |error| ServeError::System { what, error }
}

/// Serves until the bus connection is lost, which is an error: mfad exits, and its service
/// manager starts it again. `passed` is what systemd passed: the login socket, when mfad was
/// started by socket activation (see [`crate::transport::activation`]).
pub async fn serve(
    bus: Option<&str>,
    config: Config,
    config_path: std::path::PathBuf,
    passed: Passed,
) -> Result<(), ServeError> {
    let login_socket = config.login_socket.clone();
    // A socket systemd passed that is not the configured one stops mfad before it does
    // anything else.
    let activated = passed.login_listener(&login_socket)?;
    // Nor does mfad start with a login socket that another user could replace.
    crate::transport::login_socket::check_directories(&login_socket).map_err(in_system(
        format!("cannot serve logins on {}", login_socket.display()),
    ))?;
    let store = open_store(&config)?;
    let address = pam_mfa_api::bus_address(bus);
    let connection = zbus::connection::Builder::address(address.as_str())
        .build()
        .await
        .map_err(on_bus(format!("cannot connect to the bus at {address}")))?;
    let shared = Shared {
        core: Arc::new(Core::new(config, store.clone(), SystemClock).reloading_from(config_path)),
        identities: Arc::new(Identities::default()),
    };
    spawn_reloader(shared.core.clone())?;
    spawn_sweeper(shared.core.clone())?;
    spawn_pruner(store, shared.core.clone())?;
    // Follow disconnections before serving anything: what is known of a connection that went
    // away is forgotten at once.
    let dbus = zbus::fdo::DBusProxy::new(&connection)
        .await
        .map_err(on_bus("cannot talk to the bus"))?;
    let mut gone = dbus
        .receive_name_owner_changed_with_args(&[(2, "")])
        .await
        .map_err(on_bus("cannot follow the bus's connections"))?;
    let objects = connection.object_server();
    objects
        .at(OBJECT_PATH, AdminInterface(shared.clone()))
        .await
        .map_err(on_bus("cannot serve the Admin interface"))?;
    objects
        .at(OBJECT_PATH, UserInterface(shared.clone()))
        .await
        .map_err(on_bus("cannot serve the User interface"))?;
    // Never queue behind another owner: a second mfad must fail, not wait in silence.
    let reply = connection
        .request_name_with_flags(BUS_NAME, RequestNameFlags::DO_NOT_QUEUE)
        .await
        .map_err(on_bus(format!(
            "cannot own {BUS_NAME} on {address} (is the D-Bus policy file installed, and is mfad \
             running as root?)"
        )))?;
    if !matches!(reply, RequestNameReply::PrimaryOwner) {
        return Err(ServeError::NameTaken { address });
    }
    // Only the mfad that owns the name serves the login socket: a second one, which exits
    // above, never touches the first one's socket. A socket systemd passed is served as it is:
    // the socket file is systemd's, and stays when mfad exits.
    use crate::transport::login_socket::{bind, serve};
    let failed = format!("cannot serve logins on {}", login_socket.display());
    let (listener, from) = match activated {
        Some(listener) => (listener, " (passed by systemd)"),
        None => (bind(&login_socket).map_err(in_system(failed.clone()))?, ""),
    };
    serve(shared.clone(), listener).map_err(in_system(failed))?;
    log::info(&format!(
        "serving logins on {}{from}",
        login_socket.display()
    ));
    log::info(&format!("serving {BUS_NAME} on {address}"));
    while let Some(signal) = gone.next().await {
        let Ok(args) = signal.args() else { continue };
        let name = args.name().as_str();
        if name.starts_with(':') && args.new_owner().is_none() {
            shared.identities.forget(name);
        }
    }
    Err(ServeError::BusLost { address })
}

/// Opens the store the configuration names: the SQLite file in state_dir, or the shared
/// PostgreSQL database.
fn open_store(config: &Config) -> Result<Arc<Store>, ServeError> {
    let keys = Arc::new(KeySet::load(&config.sealing_key_file).map_err(ServeError::Sealing)?);
    if *config.store.kind.get_ref() == pam_mfa_config::StoreKind::Postgres {
        let host = if config.store.host_name.is_empty() {
            nix::unistd::gethostname()
                .map(|name| name.to_string_lossy().into_owned())
                .map_err(|error| ServeError::System {
                    what: "cannot read the host name".into(),
                    error: error.into(),
                })?
        } else {
            config.store.host_name.clone()
        };
        let backend = PostgresBackend::open(&config.store)?;
        log::info(&format!(
            "state in {}, shared with the fleet; this host is {host} in its audit trail",
            backend.describe()
        ));
        return use_keys(
            Store::new(Arc::new(backend), host, keys.clone()),
            keys,
            true,
        );
    }
    let backend = SqliteBackend::open(&config.state_dir, |problem| {
        // Found by the background check of a large database: stop serving at once.
        log::error(&problem);
        std::process::exit(1);
    })?;
    if let Some(size) = backend.checking_in_background() {
        log::info(&format!(
            "checking {} ({} MiB) for damage in the background; until it passes, a login whose \
             user is not found waits for its result",
            backend.path().display(),
            size >> 20
        ));
    }
    backend.spawn_checkpointer(Duration::from_secs(1))?;
    use_keys(
        Store::new(Arc::new(backend), String::new(), keys.clone()),
        keys,
        false,
    )
}

/// Checks the sealing keys against the store and seals with the newest what is not yet. Keys
/// that do not fit stop mfad here. A shared database (`shared`) that cannot be reached now is
/// checked when it answers, before its first secret is read or written.
fn use_keys(store: Store, keys: Arc<KeySet>, shared: bool) -> Result<Arc<Store>, ServeError> {
    let resealed = match store.use_keys(keys.clone()) {
        Ok(resealed) => resealed,
        Err(error @ StoreError::WrongKeys(_)) => return Err(error.into()),
        Err(error) if shared => {
            log::warning(&format!(
                "the sealing keys are checked once the database answers: {error}"
            ));
            return Ok(Arc::new(store));
        }
        Err(error) => return Err(error.into()),
    };
    let ids: Vec<String> = keys.ids().iter().map(u32::to_string).collect();
    log::info(&format!(
        "secrets sealed with key {} of {} (keys {}){}",
        resealed.key,
        keys.source(),
        ids.join(", "),
        match resealed.count {
            0 => String::new(),
            count => format!("; {count} sealed with it now"),
        }
    ));
    Ok(Arc::new(store))
}

/// Removes audit entries older than `audit.retention_days` and remembered codes past
/// `remember.limit`, as configured at the time, now and then every hour, on a thread of its
/// own.
fn spawn_pruner(store: Arc<Store>, core: Arc<ServedCore>) -> Result<(), ServeError> {
    use crate::clock::Clock;
    let prune = move || {
        let now = SystemClock.now() as i64;
        let days = core.retention_days();
        match store.prune_audit(now - i64::from(days) * 86_400) {
            Ok(0) => {}
            Ok(count) => log::info(&format!(
                "removed {count} audit entries older than {days} days (audit.retention_days)"
            )),
            Err(error) => log::warning(&format!("cannot remove old audit entries: {error}")),
        }
        if let Err(error) = store.prune_remembered(now, i64::from(core.remember_limit())) {
            log::warning(&format!("cannot remove expired remembered logins: {error}"));
        }
    };
    prune();
    std::thread::Builder::new()
        .name("pruner".into())
        .spawn(move || {
            loop {
                std::thread::sleep(Duration::from_secs(3600));
                prune();
            }
        })
        .map(drop)
        .map_err(in_system("cannot start the pruner"))
}

/// Blocks SIGHUP in the calling thread and every thread it starts from now on, so that only
/// the reloader (see [`spawn_reloader`]) takes it. Call before any other thread starts.
pub fn block_reload_signal() -> Result<(), ServeError> {
    use nix::sys::signal::{SigSet, SigmaskHow, Signal, pthread_sigmask};
    let mut set = SigSet::empty();
    set.add(Signal::SIGHUP);
    pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), None)
        .map_err(|errno| in_system("cannot block SIGHUP")(errno.into()))
}

/// On SIGHUP, reads the configuration again (as `mfactl reload` does); the outcome goes to
/// the log and the audit trail.
fn spawn_reloader(core: Arc<ServedCore>) -> Result<(), ServeError> {
    use nix::sys::signal::{SigSet, Signal};
    let mut set = SigSet::empty();
    set.add(Signal::SIGHUP);
    std::thread::Builder::new()
        .name("reloader".into())
        .spawn(move || {
            loop {
                match set.wait() {
                    Ok(_) => {
                        // A refused file was logged with its reason already.
                        if let Ok(summary) = core.reload(None) {
                            log::info(&summary.replace('\n', "; "));
                        }
                    }
                    Err(error) => {
                        log::error(&format!("cannot wait for SIGHUP: {error}"));
                        return;
                    }
                }
            }
        })
        .map(drop)
        .map_err(in_system("cannot start the reloader"))
}

/// Records logins that ended without an outcome (timed out, or their client went away), every
/// few seconds, on a thread of its own.
fn spawn_sweeper(core: Arc<ServedCore>) -> Result<(), ServeError> {
    std::thread::Builder::new()
        .name("sweeper".into())
        .spawn(move || {
            loop {
                std::thread::sleep(Duration::from_secs(5));
                core.sweep();
            }
        })
        .map(drop)
        .map_err(in_system("cannot start the sweeper"))
}
