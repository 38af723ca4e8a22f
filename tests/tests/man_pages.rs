//! The man pages in docs/man and mfactl's shell completions in docs/completions are generated:
//! mfad(8), mfactl(1) and its subcommands' pages from the clap definitions behind `--help`;
//! pam_mfa(8) from the module's list of arguments and the files in examples/; mfad.toml(5)
//! from the configuration's reference list (config/src/reference.rs). The prose around them is
//! in docs/man/src. The example configuration, examples/mfad.toml, is made from the same
//! reference list. After changing any of these: `PAM_MFA_UPDATE_MAN=1 cargo test --test
//! man_pages`.
//!
//! The pages are also checked to render without a warning from mandoc and from groff (through
//! man-db), as a distribution's lint would.

use std::path::{Path, PathBuf};
use std::process::Command;

use clap::CommandFactory;
use pam_mfa_config::reference::{self, Kind, SECTIONS};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Text for roff: backslashes and hyphens escaped (so options can be copied and pasted), and
/// a line that would start a request made plain.
fn roff(text: &str) -> String {
    let escaped = text.replace('\\', "\\e").replace('-', "\\-");
    let mut out = String::new();
    for line in escaped.split('\n') {
        if !out.is_empty() {
            out.push('\n');
        }
        if line.starts_with('.') || line.starts_with('\'') {
            out.push_str("\\&");
        }
        out.push_str(line);
    }
    out
}

/// Paragraphs of plain text as roff, one per line, separated by `.PP`.
fn roff_paragraphs(paragraphs: impl IntoIterator<Item = String>) -> String {
    roff_joined(paragraphs, "\n.PP\n")
}

/// The same, as the body of a `.TP` entry: later paragraphs (`.IP`) keep its indentation.
fn roff_entry(paragraphs: impl IntoIterator<Item = String>) -> String {
    roff_joined(paragraphs, "\n.IP\n")
}

fn roff_joined(paragraphs: impl IntoIterator<Item = String>, separator: &str) -> String {
    paragraphs
        .into_iter()
        .map(|paragraph| roff(&paragraph))
        .collect::<Vec<_>>()
        .join(separator)
}

/// The release date of the version the pages describe, from the top of debian/changelog, as
/// YYYY-MM-DD.
fn date() -> String {
    let changelog = std::fs::read_to_string(root().join("debian/changelog")).unwrap();
    let trailer = changelog
        .lines()
        .find(|line| line.starts_with(" -- "))
        .expect("a trailer line in debian/changelog");
    // " -- Name <address>  Thu, 26 Nov 2026 00:00:00 +0000"
    let when = trailer.rsplit("  ").next().unwrap();
    let fields: Vec<&str> = when.split_whitespace().collect();
    let months = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = months.iter().position(|m| *m == fields[2]).unwrap() + 1;
    format!("{}-{month:02}-{:0>2}", fields[3], fields[1])
}

/// A clap page: the generated sections, then `extra` (roff).
fn render(command: clap::Command, section: &str, extra: &str) -> Vec<u8> {
    let has_subcommands = command.get_subcommands().any(|sub| !sub.is_hide_set());
    let man = clap_mangen::Man::new(command)
        .section(section)
        .date(date())
        .source(format!("pam-mfa {}", env!("CARGO_PKG_VERSION")))
        .manual("pam-mfa");
    let mut page = Vec::new();
    man.render_title(&mut page).unwrap();
    man.render_name_section(&mut page).unwrap();
    man.render_synopsis_section(&mut page).unwrap();
    man.render_description_section(&mut page).unwrap();
    man.render_options_section(&mut page).unwrap();
    if has_subcommands {
        man.render_subcommands_section(&mut page).unwrap();
    }
    page.extend_from_slice(extra.as_bytes());
    page
}

const MFAD_EXTRA: &str = r#".SH SIGNALS
.TP
.B SIGHUP
Read the configuration file again, as \fBmfactl reload\fR does.
.TP
.BR SIGTERM ", " SIGINT
Stop at once. Each change of state is one transaction, so nothing is left half written.
Logins waiting for an answer on the login socket are denied, and their users told that the
second factor cannot be checked; a login over the bus may instead be denied as expired, if the
bus starts another mfad for its next answer.
.SH FLEET MODE
With \fB[store] kind = "postgres"\fR in \fBmfad.toml\fR(5), mfad keeps its state in a PostgreSQL
database that several hosts share. The unit as shipped gives mfad no network at all; a server
reached over TCP needs a drop-in that opens its address and no other,
\fI/etc/systemd/system/mfad.service.d/fleet.conf\fR:
.PP
.RS
.EX
[Service]
PrivateNetwork=no
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6
IPAddressDeny=any
IPAddressAllow=192.0.2.10
.EE
.RE
.PP
(an example with comments is installed as
\fI/usr/share/doc/pam\-mfa/examples/systemd/mfad\-fleet.conf\fR). A server on this host's Unix
socket needs none. mfad starts and serves even when the database cannot be reached, and
denies the logins that need it until it answers.
.SH EXIT STATUS
0 after \fB\-\-check\-config\fR with a valid file; 1 when the configuration is invalid (the
reason on stderr), or when mfad cannot serve (the store, the bus, another mfad owning the
name) or loses the bus (the reason in syslog and on stderr); 2 when the command line is wrong.
.SH ENVIRONMENT
.TP
.B DBUS_SYSTEM_BUS_ADDRESS
The bus to serve when \fB\-\-bus\fR is not given; by default the system bus's standard socket.
.SH FILES
.TP
.I /etc/pam\-mfa/mfad.toml
The configuration; see \fBmfad.toml\fR(5).
.TP
.I /var/lib/pam\-mfa/mfad.sqlite3
The store in state_dir (the directory mode 0700, the file 0600, with its \-wal and \-shm
files).
.TP
.I /run/pam\-mfa/login.socket
The login socket (login_socket).
.TP
.I /usr/share/dbus\-1/system.d/org.pam_mfa.Mfad1.conf
The D\-Bus policy: who may own the name and call which interface.
.TP
.I /usr/share/dbus\-1/system\-services/org.pam_mfa.Mfad1.service
D\-Bus activation: the bus starts mfad (through systemd, as mfad.service) when a login or
mfactl needs it and nobody owns the name.
.SH SEE ALSO
"#;

const MFACTL_EXTRA: &str = r#".SH EXIT STATUS
0 when the command succeeded, 1 when it failed (the reason on stderr, or in the JSON document
with \fB\-\-json\fR), 2 when the command line is wrong.
.SH ENVIRONMENT
.TP
.B DBUS_SYSTEM_BUS_ADDRESS
The bus to use when \fB\-\-bus\fR is not given; by default the system bus's standard socket.
.SH FILES
.TP
.I /etc/pam\-mfa/mfad.toml
mfad's configuration: who must use MFA where, lockout, recovery codes; see \fBmfad.toml\fR(5).
.TP
.I /var/lib/pam\-mfa/
mfad's store, which mfactl changes only through mfad.
.SH SEE ALSO
"#;

fn see_also(pages: &[&str]) -> String {
    pages
        .iter()
        .map(|page| {
            let (name, section) = page.trim_end_matches(')').split_once('(').unwrap();
            format!(".BR {} ({section})", roff(name))
        })
        .collect::<Vec<_>>()
        .join(",\n")
        + "\n"
}

/// The clap pages: mfad(8), mfactl(1) and one page per mfactl subcommand.
fn clap_pages() -> Vec<(String, Vec<u8>)> {
    let mfad_extra = format!(
        "{MFAD_EXTRA}{}",
        see_also(&[
            "mfad.toml(5)",
            "mfactl(1)",
            "pam_mfa(8)",
            "systemd-analyze(1)"
        ])
    );
    let mut pages = vec![(
        "mfad.8".to_owned(),
        render(mfad::cli::Args::command(), "8", &mfad_extra),
    )];
    // Built, so that each subcommand's page lists the global options (--bus, --json) too.
    let mut mfactl = mfactl::cli::Cli::command().disable_help_subcommand(true);
    mfactl.build();
    let mut subcommand_pages = vec!["mfad(8)".to_owned(), "mfad.toml(5)".to_owned()];
    let sub_extra = format!(
        "{MFACTL_EXTRA}{}",
        see_also(&["mfactl(1)", "mfad(8)", "mfad.toml(5)"])
    );
    for sub in mfactl.get_subcommands().filter(|sub| !sub.is_hide_set()) {
        let name = format!("mfactl-{}", sub.get_name());
        let page = sub
            .clone()
            .name(name.clone())
            .bin_name(format!("mfactl {}", sub.get_name()));
        pages.push((format!("{name}.1"), render(page, "1", &sub_extra)));
        subcommand_pages.push(format!("{name}(1)"));
    }
    subcommand_pages.push("pam_mfa(8)".to_owned());
    let pages_named: Vec<&str> = subcommand_pages.iter().map(String::as_str).collect();
    let extra = format!("{MFACTL_EXTRA}{}", see_also(&pages_named));
    pages.push(("mfactl.1".to_owned(), render(mfactl, "1", &extra)));
    pages
}

/// pam_mfa(8)'s OPTIONS: one entry per module argument.
fn module_arguments() -> String {
    let mut out = Vec::new();
    for argument in pam_mfa::args::ARGUMENTS {
        let syntax = match argument.syntax.split_once('=') {
            Some((name, value)) => format!("\\fB{}=\\fR\\fI{}\\fR", roff(name), roff(value)),
            None => format!("\\fB{}\\fR", roff(argument.syntax)),
        };
        let text = roff_entry(reference::paragraphs(argument.text));
        out.push(format!(
            ".TP\n{syntax}\n{text}\nDefault: {}.",
            roff(argument.default)
        ));
    }
    out.join("\n")
}

/// mfad.toml(5)'s KEYS: one subsection per table, one entry per key.
fn config_keys() -> String {
    let mut out = Vec::new();
    for section in SECTIONS {
        let heading = if section.name.is_empty() {
            "Top level".to_owned()
        } else {
            format!("[{}]", section.name)
        };
        out.push(format!(".SS {}", roff(&heading)));
        let text = roff_paragraphs(section.text.iter().flat_map(|t| reference::paragraphs(t)));
        if !text.is_empty() {
            out.push(text);
        }
        for key in section.keys {
            let text = roff_entry(key.paragraphs());
            match key.kind {
                Kind::Value => out.push(format!(
                    ".TP\n\\fB{}\\fR = \\fI{}\\fR\n{text}",
                    roff(key.name),
                    roff(key.default)
                )),
                Kind::Table { entry } => out.push(format!(
                    ".TP\n\\fB{}\\fR\n{text}\nFor example:\n.RS\n.EX\n{}\n{}\n.EE\n.RE",
                    roff(key.default),
                    roff(key.default),
                    roff(entry)
                )),
            }
        }
    }
    out.join("\n")
}

/// Fills in a page's source from docs/man/src.
fn from_source(name: &str) -> Vec<u8> {
    let source =
        std::fs::read_to_string(root().join("docs/man/src").join(format!("{name}.in"))).unwrap();
    let mut page = String::new();
    for line in source.lines() {
        // The source's own comments say how to regenerate; the page says where it comes from.
        if line.starts_with(".\\\"") {
            continue;
        }
        let line = line
            .replace("@DATE@", &date())
            .replace("@VERSION@", env!("CARGO_PKG_VERSION"));
        let filled = if line == "@ARGUMENTS@" {
            module_arguments()
        } else if line == "@KEYS@" {
            config_keys()
        } else if line == "@UNAVAILABLE@" {
            roff(pam_mfa_api::UNAVAILABLE_NOTICE)
        } else if let Some(path) = line
            .strip_prefix("@FILE ")
            .and_then(|l| l.strip_suffix('@'))
        {
            let text = std::fs::read_to_string(root().join(path)).unwrap();
            roff(text.trim_end())
        } else {
            assert!(!line.contains('@') || line.contains("@include"), "{line}");
            line
        };
        page.push_str(&filled);
        page.push('\n');
    }
    format!(
        ".\\\" Generated from docs/man/src/{name}.in by tests/tests/man_pages.rs; do not edit.\n\
         {page}"
    )
    .into_bytes()
}

fn pages() -> Vec<(String, Vec<u8>)> {
    let mut pages = clap_pages();
    for name in ["pam_mfa.8", "mfad.toml.5"] {
        pages.push((name.to_owned(), from_source(name)));
    }
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
fn man_pages_match_their_sources() {
    check_generated("docs/man", pages());
}

#[test]
fn the_example_configuration_matches_the_reference() {
    check_generated(
        "examples",
        vec![("mfad.toml".to_owned(), reference::example().into_bytes())],
    );
}

/// The configuration the man page shows as an example is one mfad accepts.
#[test]
fn the_configuration_examples_in_mfad_toml_5_are_valid() {
    let source = std::fs::read_to_string(root().join("docs/man/src/mfad.toml.5.in")).unwrap();
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
    check_generated("docs/completions", completions());
}

/// Every page names only pages that exist: its own set, or the system's.
#[test]
fn every_page_referred_to_exists() {
    let pages = pages();
    let ours: Vec<&str> = pages.iter().map(|(name, _)| name.as_str()).collect();
    let system = [
        "pam.conf.5",
        "pam.7",
        "pam-auth-update.8",
        "sshd_config.5",
        "systemd-analyze.1",
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
    let dir = root().join("docs/man");
    for (name, _) in pages() {
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

fn check_generated(dir: &str, files: Vec<(String, Vec<u8>)>) {
    let dir: PathBuf = root().join(dir);
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
