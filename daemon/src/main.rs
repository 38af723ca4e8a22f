//! `mfad`: the pam-mfa daemon. Owns `org.pam_mfa.Mfad1` on the system bus (or any bus given with
//! `--bus`) and decides every login that `pam_mfa.so` relays to it.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use mfad::cli::Args;
use mfad::log;
use pam_mfa_config::Config;

fn main() -> ExitCode {
    // Before any thread starts: the login socket, if systemd passed it (mfad.socket).
    let passed = match mfad::transport::activation::take() {
        Ok(passed) => passed,
        Err(error) => {
            eprintln!("mfad: {error}");
            return ExitCode::FAILURE;
        }
    };
    let args = Args::parse();
    if let Some(path) = &args.new_key {
        return match mfad::sealing::add_key(path) {
            Ok(done) => {
                eprintln!("mfad: {done}");
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("mfad: {error}");
                ExitCode::FAILURE
            }
        };
    }
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
    if let Err(error) = mfad::server::block_reload_signal() {
        eprintln!("mfad: {error}");
        return ExitCode::FAILURE;
    }
    log::init();
    let serving = mfad::server::serve(args.bus.as_deref(), config, args.config.clone(), passed);
    match zbus::block_on(serving) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            log::error(&error.to_string());
            ExitCode::FAILURE
        }
    }
}
