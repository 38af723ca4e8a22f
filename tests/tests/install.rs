//! `make install` and `make uninstall` (the Makefile, which the Debian package's build uses
//! too) into a staging directory, with this build's binaries.

use std::path::{Path, PathBuf};
use std::process::Command;

use pam_mfa_tests::{built, target_dir};

/// The Debian package's layout (debian/rules passes the same).
const DEBIAN: &[&str] = &["PREFIX=/usr", "PAMDIR=/lib/x86_64-linux-gnu/security"];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn make(target: &str, destdir: &Path, extra: &[&str]) -> std::process::Output {
    built("libpam_mfa.so");
    built("mfactl");
    built("mfad");
    Command::new("make")
        .arg("--no-print-directory")
        .arg("-C")
        .arg(repo())
        .arg(target)
        .arg(format!("DESTDIR={}", destdir.display()))
        .arg(format!("TARGET={}", target_dir().display()))
        .args(extra)
        .output()
        .expect("run make")
}

/// Every file under `dir`, as paths relative to it, sorted.
fn files(dir: &Path) -> Vec<String> {
    fn walk(dir: &Path, root: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, root, out);
            } else {
                out.push(path.strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

fn staging(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pam-mfa-install-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn make_install_puts_every_part_where_the_package_does_and_uninstall_takes_them_back() {
    let dir = staging("layout");
    let out = make("install", &dir, DEBIAN);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let installed = files(&dir);
    // The generated pages (their sources in docs/man/src are not installed).
    let man: Vec<String> = std::fs::read_dir(repo().join("docs/man"))
        .unwrap()
        .map(|entry| entry.unwrap())
        .filter(|entry| entry.file_type().unwrap().is_file())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    let mut wanted = vec![
        "etc/pam-mfa/mfad.toml".to_owned(),
        "lib/systemd/system/mfad.service".to_owned(),
        "lib/x86_64-linux-gnu/security/pam_mfa.so".to_owned(),
        "usr/bin/mfactl".to_owned(),
        "usr/sbin/mfad".to_owned(),
        "usr/share/bash-completion/completions/mfactl".to_owned(),
        "usr/share/dbus-1/system-services/org.pam_mfa.Mfad1.service".to_owned(),
        "usr/share/dbus-1/system.d/org.pam_mfa.Mfad1.conf".to_owned(),
        "usr/share/fish/vendor_completions.d/mfactl.fish".to_owned(),
        "usr/share/pam-configs/mfa".to_owned(),
        "usr/share/zsh/vendor-completions/_mfactl".to_owned(),
    ];
    for page in &man {
        let section = page.rsplit('.').next().unwrap();
        wanted.push(format!("usr/share/man/man{section}/{page}"));
    }
    // The examples the man pages show, beside the documentation.
    for example in files(&repo().join("examples")) {
        wanted.push(format!("usr/share/doc/pam-mfa/examples/{example}"));
    }
    wanted.sort();
    assert_eq!(installed, wanted);

    // An edited configuration is never overwritten by another install.
    let config = dir.join("etc/pam-mfa/mfad.toml");
    std::fs::write(&config, "admin_group = \"wheel\"\n").unwrap();
    let out = make("install", &dir, DEBIAN);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(&config).unwrap(),
        "admin_group = \"wheel\"\n"
    );

    // Uninstall refuses while a PAM file still names the module, saying which.
    std::fs::create_dir_all(dir.join("etc/pam.d")).unwrap();
    std::fs::write(dir.join("etc/pam.d/sshd"), "auth required pam_mfa.so\n").unwrap();
    let out = make("uninstall", &dir, DEBIAN);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("etc/pam.d/sshd"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dir.join("usr/sbin/mfad").exists());

    // Then it removes everything but the configuration and the PAM files.
    std::fs::remove_file(dir.join("etc/pam.d/sshd")).unwrap();
    let out = make("uninstall", &dir, DEBIAN);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(files(&dir), ["etc/pam-mfa/mfad.toml"]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn another_prefix_moves_the_programs_and_the_files_that_name_them() {
    let dir = staging("prefix");
    let out = make("install", &dir, &["PREFIX=/opt/pam-mfa"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dir.join("opt/pam-mfa/sbin/mfad").exists());
    assert!(dir.join("opt/pam-mfa/bin/mfactl").exists());
    // The unit and the activation file start the mfad that was installed.
    let unit = std::fs::read_to_string(dir.join("lib/systemd/system/mfad.service")).unwrap();
    assert!(
        unit.contains("ExecStart=/opt/pam-mfa/sbin/mfad\n"),
        "{unit}"
    );
    let activation = std::fs::read_to_string(
        dir.join("usr/share/dbus-1/system-services/org.pam_mfa.Mfad1.service"),
    )
    .unwrap();
    assert!(
        activation.contains("Exec=/opt/pam-mfa/sbin/mfad\n"),
        "{activation}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
