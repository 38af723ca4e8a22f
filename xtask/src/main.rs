//! Development tasks of pam-mfa.
//!
//! `cargo run -p xtask -- man` writes the generated man pages (docs/man), mfactl's shell
//! completions (docs/completions) and the example configuration (examples/mfad.toml) from
//! their sources; see the library's documentation for which source makes which file.
#![forbid(unsafe_code)]

use std::process::ExitCode;

const USAGE: &str = "usage: cargo run -p xtask -- man

  man   write docs/man/*, docs/completions/* and examples/mfad.toml from their sources";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["man"] => man(),
        ["-h" | "--help"] => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn man() -> ExitCode {
    match xtask::write() {
        Ok(written) if written.is_empty() => {
            println!("every generated file is up to date");
            ExitCode::SUCCESS
        }
        Ok(written) => {
            for path in written {
                println!("wrote {}", path.display());
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("xtask: {error}");
            ExitCode::FAILURE
        }
    }
}
