//! `parity`: runs the container login scenarios (`pam_mfa_tests::scenarios`) against pam_mfa,
//! google-authenticator-libpam and pam_oath, each in the same kind of container, and prints the
//! table scenario x module (Markdown), with what happened where a scenario failed.
//!
//!     cargo build --workspace && cargo run -p pam-mfa-tests --bin parity [FILTER]
//!
//! With FILTER, only the scenarios whose name contains it.
//!
//! Needs root and a Docker engine (the images are built from nothing on first use).
#![forbid(unsafe_code)]

use std::panic::{AssertUnwindSafe, catch_unwind};

use pam_mfa_tests::scenarios::{Module, Outcome, SCENARIOS};

fn main() {
    if let Some(why) = pam_mfa_tests::container::unavailable() {
        eprintln!("parity: cannot run containers: {why}");
        std::process::exit(1);
    }
    let filter = std::env::args().nth(1).unwrap_or_default();
    let mut notes = Vec::new();
    let mut rows = Vec::new();
    for scenario in SCENARIOS.iter().filter(|s| s.name.contains(&filter)) {
        let mut cells = Vec::new();
        for module in Module::ALL {
            eprintln!("{} / {}", scenario.name, module.name());
            // A scenario that cannot even be set up counts as failed, with its message.
            let outcome =
                catch_unwind(AssertUnwindSafe(|| (scenario.run)(module))).unwrap_or_else(|panic| {
                    let message = panic
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                        .unwrap_or_default();
                    Outcome::Fail(message)
                });
            cells.push(match outcome {
                Outcome::Pass(counted) if counted.is_empty() => "pass".to_owned(),
                Outcome::Pass(counted) => format!("pass ({counted})"),
                Outcome::NotSupported(why) => format!("not supported ({why})"),
                Outcome::Fail(why) => {
                    notes.push(format!(
                        "- {} / {}: {}",
                        module.name(),
                        scenario.name,
                        why.lines().next().unwrap_or("")
                    ));
                    format!("**fail** [{}]", notes.len())
                }
            });
        }
        rows.push(format!("| {} | {} |", scenario.name, cells.join(" | ")));
    }
    let names: Vec<&str> = Module::ALL.iter().map(|module| module.name()).collect();
    println!("| scenario | {} |", names.join(" | "));
    println!("|---|{}", "---|".repeat(names.len()));
    for row in rows {
        println!("{row}");
    }
    if !notes.is_empty() {
        println!();
        for (n, note) in notes.iter().enumerate() {
            println!("[{}] {}", n + 1, note.trim_start_matches("- "));
        }
    }
}
