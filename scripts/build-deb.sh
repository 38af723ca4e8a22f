#!/usr/bin/env bash
# Builds the Debian package (debian/) and puts it in target/debian/: pam-mfa_VERSION_ARCH.deb,
# whose path it prints last. Needs cargo (Rust 1.89 or newer, e.g. from rustup) and the
# packages below, which it checks first. Shows cargo's and debhelper's progress as it goes;
# all of the output is in target/build-deb.log. A release build made before with `make` (the
# same cargo command, profile and CARGO_TARGET_DIR) is reused, not built again.
set -euo pipefail
cd "$(dirname "$0")/.."

# debian/control's Build-Depends (debhelper-compat comes with debhelper) and dpkg-buildpackage
# itself. Checked here because dpkg-buildpackage runs with -d (below).
needed=(dpkg-dev debhelper libpam0g-dev libssl-dev pkgconf)
missing=()
for package in "${needed[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' \
    || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "build-deb.sh: the package cannot be built without: ${missing[*]}" >&2
  echo "build-deb.sh: install them first (as root): apt-get install ${needed[*]}" >&2
  exit 1
fi
if ! command -v cargo >/dev/null 2>&1; then
  echo "build-deb.sh: cargo is not installed: install Rust 1.89 or newer (https://rustup.rs)" >&2
  exit 1
fi

target=${CARGO_TARGET_DIR:-target}
mkdir -p target "$target"
log=target/build-deb.log
echo "build-deb.sh: building (cargo build --release, then the package); the whole log: $log" >&2
# -d: cargo comes from rustup, not from a Debian package, and the check above stands for
# dpkg-checkbuilddeps; -b: binary package only. The progress lines (cargo's, and each step
# of debhelper's sequence) go to the terminal, everything to the log.
set +e
dpkg-buildpackage -b -us -uc -d 2>&1 | tee "$log" \
  | grep --line-buffered -E '^ +(Compiling|Finished) |^ +(dh_[a-z_]+|debian/rules [a-z_]+)( |$)|^dpkg-deb: building' >&2
status=${PIPESTATUS[0]}
set -e
if [ "$status" -ne 0 ]; then
  tail -n 40 "$log" >&2
  echo "build-deb.sh: dpkg-buildpackage failed (above; all of it in $log)" >&2
  exit 1
fi
version=$(dpkg-parsechangelog -S Version)
arch=$(dpkg-architecture -qDEB_HOST_ARCH)
mkdir -p target/debian
for file in ../pam-mfa_"${version}"_"${arch}".{deb,buildinfo,changes}; do
  mv -f "$file" target/debian/
done
echo "target/debian/pam-mfa_${version}_${arch}.deb"
