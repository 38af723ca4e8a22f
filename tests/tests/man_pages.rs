//! The man pages in docs/man and mfactl's shell completions in docs/completions are generated
//! from the same clap definitions as `--help`. After changing an option or its text:
//! `PAM_MFA_UPDATE_MAN=1 cargo test --test man_pages`.

use std::path::{Path, PathBuf};

use clap::CommandFactory;

fn render(command: clap::Command, section: &str) -> Vec<u8> {
    let mut page = Vec::new();
    clap_mangen::Man::new(command)
        .section(section)
        .render(&mut page)
        .unwrap();
    page
}

/// Every page: mfad(8), mfactl(1) and one page per mfactl subcommand.
fn pages() -> Vec<(String, Vec<u8>)> {
    let mut pages = vec![("mfad.8".to_owned(), render(mfad::cli::Args::command(), "8"))];
    let mfactl = mfactl::cli::Cli::command();
    for sub in mfactl.get_subcommands().filter(|sub| !sub.is_hide_set()) {
        let name = format!("mfactl-{}", sub.get_name());
        let sub = sub
            .clone()
            .name(name.clone())
            .bin_name(format!("mfactl {}", sub.get_name()));
        pages.push((format!("{name}.1"), render(sub, "1")));
    }
    pages.push(("mfactl.1".to_owned(), render(mfactl, "1")));
    pages
}

/// mfactl's completions for bash, zsh and fish, under the names the package installs them as.
fn completions() -> Vec<(String, Vec<u8>)> {
    use clap_complete::Shell;
    [
        (Shell::Bash, "mfactl.bash"),
        (Shell::Zsh, "_mfactl"),
        (Shell::Fish, "mfactl.fish"),
    ]
    .into_iter()
    .map(|(shell, name)| {
        let mut script = Vec::new();
        clap_complete::generate(
            shell,
            &mut mfactl::cli::Cli::command(),
            "mfactl",
            &mut script,
        );
        (name.to_owned(), script)
    })
    .collect()
}

#[test]
fn man_pages_match_the_command_line_definitions() {
    check_generated("docs/man", pages());
}

#[test]
fn completions_match_the_command_line_definitions() {
    check_generated("docs/completions", completions());
}

fn check_generated(dir: &str, files: Vec<(String, Vec<u8>)>) {
    let dir: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(dir);
    let update = std::env::var_os("PAM_MFA_UPDATE_MAN").is_some();
    for (name, page) in files {
        let path = dir.join(&name);
        if update {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, &page).unwrap();
            continue;
        }
        let committed = std::fs::read(&path).unwrap_or_default();
        assert!(
            committed == page,
            "{} is out of date: run PAM_MFA_UPDATE_MAN=1 cargo test --test man_pages",
            path.display()
        );
    }
}
