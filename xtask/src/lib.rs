//! The files of pam-mfa that are generated, each from the one description it documents:
//!
//! - docs/man: mfad(8), mfactl(1) and one page per mfactl subcommand from the clap definitions
//!   behind `--help`; pam_mfa(8) from the module's list of arguments and the files in
//!   examples/; mfad.toml(5) from the configuration's reference list
//!   (config/src/reference.rs). The prose around them is in docs/man/src.
//! - docs/completions: mfactl's completions for bash, zsh and fish.
//! - examples/mfad.toml: the example configuration, from the same reference list.
//!
//! `cargo run -p xtask -- man` writes them; tests/tests/man_pages.rs checks that the committed
//! files are what this makes, and lints the pages.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};

use clap::CommandFactory;
use pam_mfa_config::reference::{self, Kind, SECTIONS};

/// The command that writes the generated files, for messages that ask to run it.
pub const COMMAND: &str = "cargo run -p xtask -- man";

/// One generated file: its path under the workspace root, and what it must hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generated {
    pub path: PathBuf,
    pub content: Vec<u8>,
}

/// Why the files could not be made or written.
#[derive(Debug)]
pub enum Error {
    /// A source could not be read.
    Read(PathBuf, std::io::Error),
    /// A generated file could not be written.
    Write(PathBuf, std::io::Error),
    /// A source holds something the generator does not understand.
    Source(PathBuf, String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Read(path, error) => write!(f, "cannot read {}: {error}", path.display()),
            Error::Write(path, error) => write!(f, "cannot write {}: {error}", path.display()),
            Error::Source(path, problem) => write!(f, "{}: {problem}", path.display()),
        }
    }
}

impl std::error::Error for Error {}

/// The workspace's root directory.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every generated file.
pub fn generated() -> Result<Vec<Generated>, Error> {
    let mut files = in_dir("docs/man", man_pages()?);
    files.extend(in_dir("docs/completions", completions()));
    files.extend(in_dir("examples", example_configuration()));
    Ok(files)
}

/// Writes the files of [`generated`] that differ from what they must hold; returns their
/// paths.
pub fn write() -> Result<Vec<PathBuf>, Error> {
    let root = root();
    let mut written = Vec::new();
    for file in generated()? {
        let path = root.join(&file.path);
        if std::fs::read(&path).ok().as_deref() == Some(file.content.as_slice()) {
            continue;
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|error| Error::Write(path.clone(), error))?;
        }
        std::fs::write(&path, &file.content).map_err(|error| Error::Write(path, error))?;
        written.push(file.path);
    }
    Ok(written)
}

fn in_dir(dir: &str, files: Vec<(String, Vec<u8>)>) -> Vec<Generated> {
    files
        .into_iter()
        .map(|(name, content)| Generated {
            path: Path::new(dir).join(name),
            content,
        })
        .collect()
}

fn read(path: &str) -> Result<String, Error> {
    let path = root().join(path);
    std::fs::read_to_string(&path).map_err(|error| Error::Read(path, error))
}

/// Text for roff: backslashes and hyphens escaped (so options can be copied and pasted), and
/// a line that would start a request made plain.
pub fn roff(text: &str) -> String {
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
fn date() -> Result<String, Error> {
    const CHANGELOG: &str = "debian/changelog";
    let changelog = read(CHANGELOG)?;
    let unreadable = || {
        Error::Source(
            CHANGELOG.into(),
            "expected a trailer line \" -- Name <address>  Thu, 26 Nov 2026 00:00:00 +0000\""
                .to_owned(),
        )
    };
    let trailer = changelog
        .lines()
        .find(|line| line.starts_with(" -- "))
        .ok_or_else(unreadable)?;
    let when = trailer.rsplit("  ").next().ok_or_else(unreadable)?;
    let months = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    match when.split_whitespace().collect::<Vec<_>>()[..] {
        [_, day, month, year, ..] => {
            let month = months
                .iter()
                .position(|m| *m == month)
                .ok_or_else(unreadable)?
                + 1;
            Ok(format!("{year}-{month:02}-{day:0>2}"))
        }
        _ => Err(unreadable()),
    }
}

/// A clap page, `name`: the generated sections, then `extra` (roff).
fn render(
    name: &str,
    command: clap::Command,
    section: &str,
    extra: &str,
    date: &str,
) -> Result<(String, Vec<u8>), Error> {
    let has_subcommands = command.get_subcommands().any(|sub| !sub.is_hide_set());
    let man = clap_mangen::Man::new(command)
        .section(section)
        .date(date)
        .source(format!("pam-mfa {}", env!("CARGO_PKG_VERSION")))
        .manual("pam-mfa");
    let mut page = Vec::new();
    let rendered = (|| {
        man.render_title(&mut page)?;
        man.render_name_section(&mut page)?;
        man.render_synopsis_section(&mut page)?;
        man.render_description_section(&mut page)?;
        man.render_options_section(&mut page)?;
        if has_subcommands {
            man.render_subcommands_section(&mut page)?;
        }
        std::io::Result::Ok(())
    })();
    rendered.map_err(|error| Error::Write(Path::new("docs/man").join(name), error))?;
    page.extend_from_slice(extra.as_bytes());
    Ok((name.to_owned(), page))
}

const MFAD_EXTRA: &str = r#".SH SIGNALS
.TP
.B SIGHUP
Read the configuration file again, as \fBmfactl reload\fR does.
.TP
.BR SIGTERM ", " SIGINT
Stop at once. Each change of state is one transaction, so nothing is left half written.
Logins waiting for an answer on the login socket are denied, and their users told that the
second factor cannot be checked.
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
name, a socket passed by systemd that is not its login socket) or loses the bus (the reason in
syslog and on stderr); 2 when the command line is wrong.
.SH ENVIRONMENT
.TP
.B DBUS_SYSTEM_BUS_ADDRESS
The bus to serve when \fB\-\-bus\fR is not given; by default the system bus's standard socket.
.TP
.BR LISTEN_PID ", " LISTEN_FDS
Set by systemd when it passes mfad its login socket (socket activation, as in
\fBsd_listen_fds\fR(3)): \fBLISTEN_FDS\fR sockets from descriptor 3, for the process
\fBLISTEN_PID\fR. mfad takes exactly one, a listening Unix stream socket bound to
\fBlogin_socket\fR, serves it as it is, and unsets both variables; anything else stops it at
start, with a message naming what was passed and what was expected. Without them, mfad binds
the login socket itself.
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
The login socket (login_socket). Under systemd it is mfad.socket's: systemd listens on it
from boot, starts mfad at the first connection, and keeps it while mfad is stopped, so that
the next login starts mfad again. Without systemd, mfad binds it (and its directory) itself.
.TP
.I /lib/systemd/system/mfad.service
The unit mfad runs as: hardened (see DESCRIPTION), started at boot, by the login socket or by
the bus.
.TP
.I /lib/systemd/system/mfad.socket
The login socket's unit, enabled with mfad.service. Its
.B ListenStream=
must be login_socket's path: a drop-in
.RI ( /etc/systemd/system/mfad.socket.d/path.conf :
.B ListenStream=
empty, then the new path) goes with a change of login_socket.
.TP
.I /usr/share/dbus\-1/system.d/org.pam_mfa.Mfad1.conf
The D\-Bus policy: who may own the name and call which interface.
.TP
.I /usr/share/dbus\-1/system\-services/org.pam_mfa.Mfad1.service
D\-Bus activation: the bus starts mfad (through systemd, as mfad.service) when mfactl needs
it and nobody owns the name.
.SH SEE ALSO
"#;

const MFACTL_EXTRA: &str = r#".SH EXIT STATUS
0 when the command succeeded, 1 when it failed (the reason on stderr, or in the JSON document
with \fB\-\-json\fR), 2 when the command line is wrong. \fBmfactl health\fR also exits 1
when mfad's store does not answer, after showing its report.
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

/// `pages` ("name(N)") as a SEE ALSO list.
fn see_also(pages: &[&str]) -> String {
    pages
        .iter()
        .map(|page| {
            let (name, section) = page
                .trim_end_matches(')')
                .split_once('(')
                .unwrap_or((page, ""));
            format!(".BR {} ({section})", roff(name))
        })
        .collect::<Vec<_>>()
        .join(",\n")
        + "\n"
}

/// The clap pages: mfad(8), mfactl(1) and one page per mfactl subcommand.
fn clap_pages(date: &str) -> Result<Vec<(String, Vec<u8>)>, Error> {
    let mfad_extra = format!(
        "{MFAD_EXTRA}{}",
        see_also(&[
            "mfad.toml(5)",
            "mfactl(1)",
            "pam_mfa(8)",
            "systemd.socket(5)",
            "systemd-analyze(1)"
        ])
    );
    let mut pages = vec![render(
        "mfad.8",
        mfad::cli::Args::command(),
        "8",
        &mfad_extra,
        date,
    )?];
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
        pages.push(render(&format!("{name}.1"), page, "1", &sub_extra, date)?);
        subcommand_pages.push(format!("{name}(1)"));
    }
    subcommand_pages.push("pam_mfa(8)".to_owned());
    let pages_named: Vec<&str> = subcommand_pages.iter().map(String::as_str).collect();
    let extra = format!("{MFACTL_EXTRA}{}", see_also(&pages_named));
    pages.push(render("mfactl.1", mfactl, "1", &extra, date)?);
    Ok(pages)
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
fn from_source(name: &str, date: &str) -> Result<Vec<u8>, Error> {
    let source_path = format!("docs/man/src/{name}.in");
    let source = read(&source_path)?;
    let mut page = String::new();
    for line in source.lines() {
        // The source's own comments say how to regenerate; the page says where it comes from.
        if line.starts_with(".\\\"") {
            continue;
        }
        let line = line
            .replace("@DATE@", date)
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
            roff(read(path)?.trim_end())
        } else if line.contains('@') && !line.contains("@include") {
            return Err(Error::Source(
                source_path.into(),
                format!("unknown placeholder in {line:?}"),
            ));
        } else {
            line
        };
        page.push_str(&filled);
        page.push('\n');
    }
    Ok(
        format!(".\\\" Generated from {source_path} by xtask ({COMMAND}); do not edit.\n{page}")
            .into_bytes(),
    )
}

/// Every man page, by file name.
pub fn man_pages() -> Result<Vec<(String, Vec<u8>)>, Error> {
    let date = date()?;
    let mut pages = clap_pages(&date)?;
    for name in ["pam_mfa.8", "mfad.toml.5"] {
        pages.push((name.to_owned(), from_source(name, &date)?));
    }
    Ok(pages)
}

/// mfactl's completions for bash, zsh and fish, under the names the package installs them as.
pub fn completions() -> Vec<(String, Vec<u8>)> {
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

/// examples/mfad.toml.
pub fn example_configuration() -> Vec<(String, Vec<u8>)> {
    vec![("mfad.toml".to_owned(), reference::example().into_bytes())]
}
