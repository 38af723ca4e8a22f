#!/usr/bin/env bash
# The whole test suite: installs what it needs, builds, checks format and lints, runs every
# test against real processes, then runs the demo unattended. Needs root (the tests run
# clients as other users and own the daemon's bus name, as on a real system).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
  exec sudo --preserve-env=PATH,CARGO_HOME,RUSTUP_HOME,CARGO_TARGET_DIR "$0" "$@"
fi

scripts/install-deps.sh
cargo build --workspace --all-targets --locked
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
scripts/demo.sh --unattended
