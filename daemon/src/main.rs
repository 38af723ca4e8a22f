//! `mfad`: the pam-mfa daemon. Owns `org.pam_mfa.Mfad1` on the system bus (or any bus given with
//! `--bus`) and decides every login that `pam_mfa.so` relays to it.
#![forbid(unsafe_code)]

mod clock;
mod log;
mod service;
mod sessions;
mod store;
mod totp;
mod users;

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use mfad::cli::Args;
use pam_mfa_api::{BUS_NAME, OBJECT_PATH};
use pam_mfa_config::Config;
use zbus::fdo::{RequestNameFlags, RequestNameReply};

use crate::clock::SystemClock;
use crate::service::{AdminInterface, Daemon, LoginInterface};
use crate::store::Store;

fn main() -> ExitCode {
    let args = Args::parse();
    // A file named for checking must exist; the daemon itself runs on defaults without one.
    let loaded = if args.check_config {
        Config::load_existing(&args.config)
    } else {
        Config::load(&args.config)
    };
    let config = match loaded {
        Ok(config) => config,
        Err(error) => {
            eprintln!("mfad: {error}");
            return ExitCode::FAILURE;
        }
    };
    if args.check_config {
        println!("{}: configuration is valid", args.config.display());
        return ExitCode::SUCCESS;
    }
    log::init();
    match zbus::block_on(serve(args, config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            log::error(&message);
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: Args, config: Config) -> Result<(), String> {
    let store = Store::open(&config.state_dir).map_err(|error| error.to_string())?;
    store
        .spawn_checkpointer(std::time::Duration::from_secs(1))
        .map_err(|error| error.to_string())?;
    let address = pam_mfa_api::bus_address(args.bus.as_deref());
    let connection = zbus::connection::Builder::address(address.as_str())
        .build()
        .await
        .map_err(|error| format!("cannot connect to the bus at {address}: {error}"))?;
    let daemon = Arc::new(Daemon::new(config, store, Arc::new(SystemClock)));
    let objects = connection.object_server();
    objects
        .at(OBJECT_PATH, LoginInterface(daemon.clone()))
        .await
        .map_err(|error| error.to_string())?;
    objects
        .at(OBJECT_PATH, AdminInterface(daemon.clone()))
        .await
        .map_err(|error| error.to_string())?;
    // Never queue behind another owner: a second mfad must fail, not wait in silence.
    let reply = connection
        .request_name_with_flags(BUS_NAME, RequestNameFlags::DO_NOT_QUEUE)
        .await
        .map_err(|error| {
            format!(
                "cannot own {BUS_NAME} on {address}: {error} (is the D-Bus policy file \
                 installed, and is mfad running as root?)"
            )
        })?;
    if !matches!(reply, RequestNameReply::PrimaryOwner) {
        return Err(format!(
            "cannot own {BUS_NAME} on {address}: another process owns it (is mfad already running?)"
        ));
    }
    log::info(&format!("serving {BUS_NAME} on {address}"));
    std::future::pending::<()>().await;
    Ok(())
}
