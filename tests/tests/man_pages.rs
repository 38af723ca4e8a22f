//! The generated files are up to date, and the man pages are clean.
//!
//! The man pages in docs/man, mfactl's shell completions in docs/completions and the example
//! configuration examples/mfad.toml are made by xtask (see xtask/src/lib.rs for which source
//! makes which file). After changing any of their sources: `cargo run -p xtask -- man`. These
//! tests check that the committed files are what it makes, and that the pages render without a
//! warning from mandoc and from groff (through man-db), as a distribution's lint would.

use std::path::Path;
use std::process::Command;

/// Unwraps what xtask made, or fails with its reason.
fn made<T>(result: Result<T, xtask::Error>) -> T {
    result.unwrap_or_else(|error| panic!("xtask cannot make the files: {error}"))
}

#[test]
fn man_pages_match_their_sources() {
    check_generated("docs/man", made(xtask::man_pages()));
}

#[test]
fn the_example_configuration_matches_the_reference() {
    check_generated("examples", xtask::example_configuration());
}

/// The configuration the man page shows as an example is one mfad accepts.
#[test]
fn the_configuration_examples_in_mfad_toml_5_are_valid() {
    let source =
        std::fs::read_to_string(xtask::root().join("docs/man/src/mfad.toml.5.in")).unwrap();
    let mut examples = 0;
    for block in source.split(".EX\n").skip(1) {
        let block = block.split(".EE").next().unwrap();
        if block.starts_with('[') {
            pam_mfa_config::Config::parse(block).unwrap_or_else(|error| panic!("{block}\n{error}"));
            examples += 1;
        }
    }
    assert!(examples > 0, "no configuration example found");
}

#[test]
fn completions_match_the_command_line_definitions() {
    check_generated("docs/completions", xtask::completions());
}

/// Every page names only pages that exist: its own set, or the system's.
#[test]
fn every_page_referred_to_exists() {
    let pages = made(xtask::man_pages());
    let ours: Vec<&str> = pages.iter().map(|(name, _)| name.as_str()).collect();
    let system = [
        "pam.conf.5",
        "pam.7",
        "pam-auth-update.8",
        "sd_listen_fds.3",
        "sshd_config.5",
        "systemd-analyze.1",
        "systemd.socket.5",
    ];
    for (name, page) in &pages {
        let text = String::from_utf8_lossy(page);
        // ".BR name (N)" and "\fBname\fR(N)", with roff's escaped hyphens.
        let plain = text.replace("\\-", "-");
        let mut referred = Vec::new();
        for line in plain.lines() {
            if let Some(rest) = line.strip_prefix(".BR ")
                && let Some((page, section)) = rest.split_once(" (")
                && let Some(section) = section.get(..1)
                && section.chars().all(|c| c.is_ascii_digit())
            {
                referred.push(format!("{page}.{section}"));
            }
            for part in line.split("\\fB").skip(1) {
                if let Some((page, after)) = part.split_once("\\fR(")
                    && let Some(section) = after.get(..1)
                    && section.chars().all(|c| c.is_ascii_digit())
                {
                    referred.push(format!("{page}.{section}"));
                }
            }
        }
        for page in referred {
            assert!(
                ours.contains(&page.as_str()) || system.contains(&page.as_str()),
                "{name} refers to {page}, which is neither generated here nor a system page"
            );
        }
    }
}

/// mandoc's lint, groff with every warning, and man-db's `man --warnings` find nothing to
/// warn about in any page.
#[test]
fn man_pages_render_without_warnings() {
    let dir = xtask::root().join("docs/man");
    for (name, _) in made(xtask::man_pages()) {
        let path = dir.join(&name);
        let lint = Command::new("mandoc")
            .args(["-Tlint", "-W", "warning"])
            .arg(&path)
            .output()
            .expect("mandoc runs (scripts/install-deps.sh installs it)");
        let said = String::from_utf8_lossy(&lint.stdout).into_owned()
            + &String::from_utf8_lossy(&lint.stderr);
        assert!(
            lint.status.success() && said.trim().is_empty(),
            "mandoc -Tlint {name}:\n{said}"
        );
        let groff = Command::new("groff")
            .args(["-man", "-ww", "-z", "-Tutf8"])
            .arg(&path)
            .output()
            .expect("groff runs (scripts/install-deps.sh installs man-db, which needs it)");
        let warnings = String::from_utf8_lossy(&groff.stderr);
        assert!(
            groff.status.success() && warnings.trim().is_empty(),
            "groff -ww {name}:\n{warnings}"
        );
        let man = Command::new("man")
            .args(["--warnings", "-E", "UTF-8", "-l"])
            .arg(&path)
            .env("MANWIDTH", "80")
            .output()
            .expect("man runs (scripts/install-deps.sh installs man-db)");
        let warnings = String::from_utf8_lossy(&man.stderr);
        assert!(
            man.status.success() && warnings.trim().is_empty(),
            "man --warnings {name}:\n{warnings}"
        );
        assert!(
            !String::from_utf8_lossy(&man.stdout).contains('`'),
            "{name} shows a backtick: write plain text or roff markup, not Markdown"
        );
    }
}

/// The committed files in `dir` are `files`.
fn check_generated(dir: &str, files: Vec<(String, Vec<u8>)>) {
    let dir = Path::new(dir);
    for (name, content) in files {
        let path = dir.join(&name);
        let committed = std::fs::read(xtask::root().join(&path)).unwrap_or_default();
        assert!(
            committed == content,
            "{} is out of date: run {}",
            path.display(),
            xtask::COMMAND
        );
    }
}
