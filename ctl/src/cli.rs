//! mfactl's command line: the one definition behind `--help` and the man page.

use clap::{Parser, Subcommand};

/// Administer pam-mfa: enroll users, enforce two-factor logins, reset lost authenticators.
///
/// mfactl talks to the mfad daemon over D-Bus; administrative commands need root. Before it
/// sends anything, mfactl checks that the bus name org.pam_mfa.Mfad1 belongs to root, and
/// refuses to talk to a process another user started.
///
/// Exit status: 0 when the command succeeded, 1 when it failed, 2 when the command line is wrong.
#[derive(Parser)]
#[command(version, about, long_about)]
pub struct Cli {
    /// D-Bus address of the bus mfad is on, instead of the system bus.
    #[arg(long, global = true, value_name = "ADDRESS")]
    pub bus: Option<String>,

    /// Print exactly one JSON document on stdout instead of text, errors included.
    ///
    /// An error is `{"error": {"name": NAME, "message": TEXT}}` with exit status 1 (2 for a
    /// command-line mistake); NAME is the D-Bus error name when the bus or mfad refused (e.g.
    /// org.pam_mfa.Mfad1.Error.InvalidArgument), else one of usage, input, connect or bus. Text
    /// meant for a person (QR code, prompts, the error as a sentence) goes to stderr.
    #[arg(long, global = true)]
    pub json: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Enroll USER: show a QR code to scan, then confirm with a code from the app.
    ///
    /// Prints the QR code, the secret and the otpauth:// URI, then asks on stderr for the code
    /// the app shows (three tries). The enrollment becomes active only once a code is confirmed;
    /// until then the user's logins are treated as before.
    ///
    /// With --json, the QR code, secret, URI and prompt go to stderr, and stdout gets one
    /// document once the code is confirmed: `{"user", "secret", "uri", "enrolled": true}` (or
    /// the error). A script that must compute the code gives the secret with --secret, or reads
    /// the `URI:` line on stderr.
    Enroll {
        user: String,
        /// Import this Base32 secret instead of generating one (for scripted tests). Other
        /// local users can read command lines: for real secrets use `mfactl import`, which
        /// reads them from a file or stdin.
        #[arg(long, value_name = "BASE32")]
        secret: Option<String>,
    },
    /// Enroll many users at once from a file of `USER SECRET` lines (`-` reads stdin).
    ///
    /// Each line holds a user name and a Base32 secret, separated by white space; blank lines
    /// and lines starting with # are skipped. The enrollments are active at once, with the
    /// configured algorithm, digits and period. Names are not looked up in the system user
    /// database, so directory users not visible on this host can be imported. The layout of
    /// every line is checked before anything is sent; mfad then checks names and secrets and
    /// stores the entries in batches of 10,000, each all or nothing, so a bad entry in a later
    /// batch leaves the earlier batches imported (mfactl says how many).
    Import {
        #[arg(value_name = "FILE")]
        file: std::path::PathBuf,
    },
    /// Show USER's enrollment and enforcement.
    Status { user: String },
    /// List users with an enrollment or an enforcement setting.
    Users,
    /// Remove USER's enrollment at once (a lost or replaced phone).
    Reset { user: String },
    /// Require MFA of every user (--all) or of one user.
    ///
    /// Applies from the next login; open sessions are not affected. A user who must use MFA but
    /// is not enrolled cannot log in through pam_mfa until enrolled.
    ///
    /// Examples: `mfactl enforce alice on`, `mfactl enforce --all off`.
    Enforce {
        /// All users, instead of one.
        #[arg(long)]
        all: bool,
        /// USER then on or off; with --all, on or off alone.
        #[arg(value_name = "[USER] on|off", num_args = 1..=2, required = true)]
        words: Vec<String>,
    },
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
