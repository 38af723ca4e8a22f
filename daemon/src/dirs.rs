//! Directories mfad trusts with its files (the state directory, the login socket's): checked
//! the same way for each, so that no other user can move what mfad made there aside and put
//! something of theirs in its place.
#![forbid(unsafe_code)]

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// What a checked directory is for, as its errors name it.
#[derive(Debug, Clone, Copy)]
pub struct Purpose {
    /// "the state directory", say.
    pub what: &'static str,
    /// The configuration key that names it: "state_dir", say.
    pub setting: &'static str,
}

/// Checks that `dir` and every directory above it can be trusted: owned by root (or by mfad's
/// own user), not writable by others (a root-owned sticky directory such as /tmp is fine above
/// `dir`: nobody else can rename or remove what mfad created in it), and `dir` not a symlink.
/// Directories that do not exist yet end the check (mfad creates them). The error is one line
/// that names the directory and what is wrong with it.
pub fn check_trusted(dir: &Path, purpose: Purpose) -> Result<(), String> {
    let Purpose { what, setting } = purpose;
    let euid = nix::unistd::geteuid().as_raw();
    let mut path = PathBuf::new();
    let components: Vec<_> = dir.components().collect();
    for (index, component) in components.iter().enumerate() {
        path.push(component);
        let last = index + 1 == components.len();
        let link = match fs::symlink_metadata(&path) {
            Ok(meta) => meta,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(error) => return Err(format!("cannot check {}: {error}", path.display())),
        };
        if link.file_type().is_symlink() {
            if last {
                return Err(format!(
                    "{what} {} is a symbolic link: set {setting} to the real directory",
                    path.display()
                ));
            }
            if link.uid() != 0 && link.uid() != euid {
                return Err(format!(
                    "{} is a symbolic link owned by uid {}: {what} must be reached only through \
                     root's directories",
                    path.display(),
                    link.uid()
                ));
            }
        }
        let meta = fs::metadata(&path)
            .map_err(|error| format!("cannot check {}: {error}", path.display()))?;
        if !meta.is_dir() {
            return Err(format!("{} is not a directory", path.display()));
        }
        if meta.uid() != 0 && meta.uid() != euid {
            return Err(format!(
                "{} is owned by uid {}: {what} and every directory above it must be owned by \
                 root",
                path.display(),
                meta.uid()
            ));
        }
        let writable_by_others = meta.mode() & 0o022 != 0;
        let sticky = meta.mode() & 0o1000 != 0 && meta.uid() == 0;
        if writable_by_others && (last || !sticky) {
            return Err(format!(
                "{} is writable by other users (mode {:o}): {what} and every directory above \
                 it must be writable by root only",
                path.display(),
                meta.mode() & 0o7777
            ));
        }
    }
    Ok(())
}
