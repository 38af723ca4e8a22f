//! Links the unwinder statically into pam_mfa.so, where the toolchain allows it.
//!
//! Rust's standard library asks for the dynamic `libgcc_s.so.1` for unwinding (catch_unwind).
//! Loading it costs a login program that has not loaded it already (sshd, login, su: C
//! programs) about 200 µs per process. GCC ships the same unwinder as the static `libgcc_eh.a`:
//! a linker script named `libgcc_s.so`, found first on the search path, points `-lgcc_s` at it.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let target_os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let target_env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if target_os != "linux" || target_env != "gnu" {
        return;
    }
    // `cc -print-file-name` answers the bare name when the file does not exist.
    let compiler = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let Ok(output) = Command::new(compiler)
        .arg("-print-file-name=libgcc_eh.a")
        .output()
    else {
        return;
    };
    let found = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    if !output.status.success() || !found.starts_with('/') {
        println!("cargo:warning=libgcc_eh.a not found: pam_mfa.so will load libgcc_s.so.1");
        return;
    }
    let dir = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("static-unwinder");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("libgcc_s.so"), format!("INPUT({found})\n")).unwrap();
    println!("cargo:rustc-link-search=native={}", dir.display());
}
