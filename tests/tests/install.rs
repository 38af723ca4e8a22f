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
        "lib/systemd/system/mfad.socket".to_owned(),
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

/// The packages a word list names, as a set (without the command and its options).
fn package_set(words: &str) -> std::collections::BTreeSet<String> {
    words
        .split_whitespace()
        .filter(|word| !word.starts_with('-') && !["apt-get", "install"].contains(word))
        .map(str::to_owned)
        .collect()
}

/// What scripts/build-deb.sh checks before it builds (its `needed=(...)` list).
fn checked_by_build_deb() -> std::collections::BTreeSet<String> {
    let script = std::fs::read_to_string(repo().join("scripts/build-deb.sh")).unwrap();
    let list = script
        .lines()
        .find_map(|line| line.strip_prefix("needed=("))
        .and_then(|rest| rest.strip_suffix(')'))
        .expect("a needed=(...) line in scripts/build-deb.sh");
    package_set(list)
}

/// Issue 24: README's one command installs what build-deb.sh checks, which is debian/control's
/// Build-Depends (debhelper-compat comes with debhelper) and dpkg-dev.
#[test]
fn readme_installs_the_build_dependencies_build_deb_checks() {
    let readme = pam_mfa_tests::readme::block("build-dependencies");
    assert_eq!(package_set(&readme), checked_by_build_deb(), "{readme}");
    let control = std::fs::read_to_string(repo().join("debian/control")).unwrap();
    let depends = control
        .lines()
        .find_map(|line| line.strip_prefix("Build-Depends:"))
        .expect("Build-Depends in debian/control");
    let mut from_control: std::collections::BTreeSet<String> = depends
        .split(',')
        .map(|item| item.split_whitespace().next().unwrap_or("").to_owned())
        .map(|name| name.replace("debhelper-compat", "debhelper"))
        .collect();
    from_control.insert("dpkg-dev".to_owned());
    assert_eq!(from_control, checked_by_build_deb(), "{depends}");
}

/// Issue 24: a missing build package stops build-deb.sh at once, with one message naming it
/// and the command that installs it (here dpkg-query, put first on PATH, says debhelper is
/// not installed).
#[test]
fn build_deb_names_a_missing_build_package_and_the_command() {
    let dir = staging("build-deb");
    let shim = dir.join("dpkg-query");
    std::fs::write(
        &shim,
        "#!/bin/sh\nfor arg; do [ \"$arg\" = debhelper ] && exit 1; done\nexec /usr/bin/dpkg-query \"$@\"\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&shim, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", dir.display(), std::env::var("PATH").unwrap());
    let out = Command::new(repo().join("scripts/build-deb.sh"))
        .env("PATH", path)
        .output()
        .expect("run scripts/build-deb.sh");
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("without: debhelper\n"), "{said}");
    assert!(
        said.contains("apt-get install dpkg-dev debhelper libpam0g-dev libssl-dev pkgconf"),
        "{said}"
    );
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    std::fs::remove_dir_all(dir).unwrap();
}

/// README's steps that the package test runs as written are all there, each a ```sh block.
#[test]
fn readme_marks_every_step_the_package_test_runs() {
    let names = pam_mfa_tests::readme::names();
    for name in [
        "build-dependencies",
        "build",
        "install",
        "enroll",
        "enable",
        "sshd",
        "recover",
        "backup",
        "restore",
        "remove",
    ] {
        assert!(
            names.contains(&name),
            "README.md has no <!-- test: {name} -->"
        );
        pam_mfa_tests::readme::block(name);
    }
}
