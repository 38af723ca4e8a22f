//! The modules under test, set up with the same users and secrets: pam_permit (the floor),
//! pam_mfa with its daemon (on its login socket), google-authenticator-libpam with one secret file per user (with
//! DISALLOW_REUSE, as its documentation recommends, and without), and pam_oath with one users
//! file. None of the users exists in the system's user database, for any module.

use std::fmt::Write as _;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use pam_mfa_tests::{Env, target_dir};

use crate::driver::{secret, secret_base32, user_name};

/// Users imported into pam_mfa by one `mfactl import` run.
const IMPORT_RUN: u64 = 100_000;

/// A module under test: its PAM service name and label in the tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Module {
    Permit,
    Mfa,
    GoogleAuthenticator,
    /// google-authenticator without DISALLOW_REUSE: it rewrites no file at a login.
    GoogleAuthenticatorReusable,
    Oath,
}

impl Module {
    pub fn service(self) -> &'static str {
        match self {
            Module::Permit => "permit",
            Module::Mfa => "mfa",
            Module::GoogleAuthenticator => "ga",
            Module::GoogleAuthenticatorReusable => "ga-reusable",
            Module::Oath => "oath",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Module::Permit => "pam_permit",
            Module::Mfa => "pam_mfa",
            Module::GoogleAuthenticator => "google-authenticator",
            Module::GoogleAuthenticatorReusable => "google-authenticator, reuse allowed",
            Module::Oath => "pam_oath",
        }
    }
}

fn security_module(name: &str) -> PathBuf {
    [
        "/usr/lib/x86_64-linux-gnu/security",
        "/usr/lib/aarch64-linux-gnu/security",
        "/usr/lib64/security",
        "/lib/security",
    ]
    .iter()
    .map(|dir| Path::new(dir).join(name))
    .find(|path| path.exists())
    .unwrap_or_else(|| panic!("{name} is missing: run bench/run.sh, which installs it"))
}

pub struct Peers {
    pub env: Env,
    pub dir: PathBuf,
    pub confdir: PathBuf,
    seed: u64,
    /// Users set up so far for pam_mfa and google-authenticator.
    pub users: u64,
    /// Users in pam_oath's file.
    pub oath_users: u64,
}

impl Peers {
    /// Starts the private bus and mfad, and writes the four PAM services.
    pub fn start(seed: u64) -> Peers {
        // One try per login for every module, so a wrong-code login is one attempt everywhere.
        let env = Env::new().config("[login]\nmax_tries = 1\n").start();
        let dir = env.dir().join("bench");
        let confdir = dir.join("pam.d");
        fs::create_dir_all(&confdir).unwrap();
        fs::create_dir_all(dir.join("ga")).unwrap();
        fs::create_dir_all(dir.join("ga-reusable")).unwrap();
        fs::create_dir_all(dir.join("oath")).unwrap();
        let services = [
            (
                Module::Permit,
                format!("{}", security_module("pam_permit.so").display()),
            ),
            (
                Module::Mfa,
                format!(
                    "{} {}",
                    target_dir().join("libpam_mfa.so").display(),
                    env.module_target()
                ),
            ),
            (
                Module::GoogleAuthenticator,
                format!(
                    "{} secret={}/${{USER}} user=root no_strict_owner",
                    security_module("pam_google_authenticator.so").display(),
                    dir.join("ga").display()
                ),
            ),
            (
                Module::GoogleAuthenticatorReusable,
                format!(
                    "{} secret={}/${{USER}} user=root no_strict_owner",
                    security_module("pam_google_authenticator.so").display(),
                    dir.join("ga-reusable").display()
                ),
            ),
            (
                Module::Oath,
                format!(
                    "{} usersfile={} window=1 digits=6",
                    security_module("pam_oath.so").display(),
                    dir.join("oath/users").display()
                ),
            ),
        ];
        for (module, line) in services {
            fs::write(
                confdir.join(module.service()),
                format!("auth required {line}\n"),
            )
            .unwrap();
        }
        Peers {
            env,
            dir,
            confdir,
            seed,
            users: 0,
            oath_users: 0,
        }
    }

    /// Enrolls users up to `users` in pam_mfa (through `mfactl import`) and
    /// google-authenticator (secret files with TOTP_AUTH, with and without DISALLOW_REUSE).
    pub fn grow(&mut self, users: u64) {
        let range = self.users..users;
        let import = self.dir.join("import.txt");
        // One mfactl run per 100k users: each run is bounded like every mfactl run of the
        // harness.
        for start in range.clone().step_by(IMPORT_RUN as usize) {
            let mut text = String::new();
            for index in start..(start + IMPORT_RUN).min(users) {
                let _ = writeln!(
                    text,
                    "{} {}",
                    user_name(index),
                    secret_base32(self.seed, index)
                );
            }
            fs::write(&import, text).unwrap();
            let out = self.env.ctl(&["import", import.to_str().unwrap()], "");
            assert!(out.success, "mfactl import failed: {}", out.stderr);
        }
        let _ = fs::remove_file(&import);
        for index in range {
            for (folder, options) in [
                ("ga", "\" TOTP_AUTH\n\" DISALLOW_REUSE\n"),
                ("ga-reusable", "\" TOTP_AUTH\n"),
            ] {
                let path = self.dir.join(folder).join(user_name(index));
                let mut file = OpenOptions::new()
                    .create(true)
                    .write(true)
                    .truncate(true)
                    .mode(0o600)
                    .open(path)
                    .unwrap();
                write!(file, "{}\n{options}", secret_base32(self.seed, index)).unwrap();
            }
        }
        self.users = users;
    }

    /// Writes pam_oath's users file with `users` users.
    pub fn grow_oath(&mut self, users: u64) {
        let mut text = String::with_capacity(users as usize * 60);
        for index in 0..users {
            let hex: String = secret(self.seed, index)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            let _ = writeln!(text, "HOTP/T30 {} - {hex}", user_name(index));
        }
        let path = self.dir.join("oath/users");
        fs::write(&path, text).unwrap();
        self.oath_users = users;
    }
}
