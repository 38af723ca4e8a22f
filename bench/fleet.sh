#!/usr/bin/env bash
# Fleet mode's figures (Markdown) on stdout: three mfad sharing one PostgreSQL server beside one
# mfad on SQLite, at 1M users by default; progress goes to stderr. Arguments go to
# `pam-mfa-bench fleet`, e.g. --users 100000 --iterations 1500. Needs root, like the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
  exec sudo --preserve-env=PATH,CARGO_HOME,RUSTUP_HOME,CARGO_TARGET_DIR "$0" "$@"
fi
scripts/install-deps.sh
cargo build --release --workspace --locked --quiet
exec "${CARGO_TARGET_DIR:-target}/release/pam-mfa-bench" fleet "$@"
