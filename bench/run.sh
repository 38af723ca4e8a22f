#!/usr/bin/env bash
# Prints the whole benchmark comparison (Markdown) on stdout; progress goes to stderr.
# Installs the peers (google-authenticator-libpam, pam_oath) and builds in release mode.
# Arguments go to `pam-mfa-bench all`, e.g. --max-users 100000 --iterations 1000.
# Needs root, like the test suite, and about 5 GB of disk at a million users.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
  exec sudo --preserve-env=PATH,CARGO_HOME,RUSTUP_HOME,CARGO_TARGET_DIR "$0" "$@"
fi
scripts/install-deps.sh
missing=()
for package in libpam-google-authenticator libpam-oath; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
cargo build --release --workspace --locked --quiet
# A C driver measures what loading a module costs a C login program (see the file).
cc -O2 -Wall -o "${CARGO_TARGET_DIR:-target}/release/pam-load-probe" bench/load-probe.c -lpam
exec "${CARGO_TARGET_DIR:-target}/release/pam-mfa-bench" all "$@"
