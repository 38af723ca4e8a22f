//! mfad's command line: the one definition behind `--help` and the man page.

use std::path::PathBuf;

use clap::Parser;

/// The pam-mfa daemon: TOTP second factor for PAM logins.
///
/// Runs in the foreground and logs to syslog (AUTHPRIV) and stderr. pam_mfa.so and mfactl reach
/// it over D-Bus as org.pam_mfa.Mfad1.
///
/// SIGHUP (or mfactl reload) reads the configuration file again and puts it in use without a
/// restart; an invalid or missing file is refused, the reason is logged, and the configuration
/// in use stays. state_dir changes only at a restart. Every key, and how the enforcement and
/// exemption rules combine, is described in mfad.toml(5).
///
/// Under systemd, mfad runs as mfad.service: started at boot, by its login socket at a login,
/// or by the bus at an mfactl command. systemd holds the login socket from boot (mfad.socket),
/// so a login while mfad is stopped starts it and waits for it; mfad takes the socket systemd
/// passes (LISTEN_FDS) and refuses to start if it is not login_socket. Without systemd, mfad
/// binds the socket itself. The unit confines mfad (no capabilities, no network, a read-only
/// system but for its state directory, a system-call filter): systemd-analyze security
/// mfad.service rates it.
#[derive(Parser)]
#[command(version, about, long_about)]
pub struct Args {
    /// Configuration file; a missing file means the defaults at start (--check-config and a
    /// reload refuse it).
    #[arg(long, value_name = "PATH", default_value = pam_mfa_config::DEFAULT_PATH)]
    pub config: PathBuf,

    /// D-Bus address to serve on instead of the system bus, e.g. unix:path=/run/test/bus.
    #[arg(long, value_name = "ADDRESS")]
    pub bus: Option<String>,

    /// Check the configuration and exit: 0 when valid, 1 with the reason otherwise.
    #[arg(long)]
    pub check_config: bool,

    /// Add a new random key to the sealing key file PATH, made (root's, mode 0600) if it does
    /// not exist, and exit. The new key seals from mfad's next start (or mfactl reseal), when
    /// mfad seals every stored secret with it; the older keys still open what they sealed
    /// until then, and may be removed after. PATH - reads a key set on standard input and
    /// writes it with the new key on standard output, for systemd-creds:
    /// systemd-creds decrypt --name=sealing-key FILE - | mfad --new-key - |
    /// systemd-creds encrypt --name=sealing-key - FILE
    #[arg(long, value_name = "PATH", conflicts_with = "check_config")]
    pub new_key: Option<PathBuf>,
}
