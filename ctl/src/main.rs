//! `mfactl`: administer pam-mfa through `mfad` over D-Bus.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use mfactl::cli::Cli;
use mfactl::failure::Failure;
use mfactl::report::{AnyReport, emit};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return command_line_error(error),
    };
    let outcome: Result<Box<dyn AnyReport>, Failure> = zbus::block_on(mfactl::commands::run(&cli));
    emit(cli.json, &outcome)
}

/// clap's own output for --help, --version and mistakes; with `--json`, a mistake is also one
/// JSON document on stdout. Exit status 2 either way.
fn command_line_error(error: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    let json = std::env::args_os()
        .take_while(|arg| arg != "--")
        .any(|arg| arg == "--json");
    let message = match error.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => error.exit(),
        _ if !json => error.exit(),
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            "no command given: run mfactl --help for the list of commands".to_owned()
        }
        _ => {
            let rendered = error.render().to_string();
            rendered.trim().trim_start_matches("error: ").to_owned()
        }
    };
    let failure = Failure::usage(message);
    let _ = emit(true, &Err(failure));
    ExitCode::from(2)
}
