#!/usr/bin/env bash
# Builds the Debian package (debian/) and puts it in target/debian/: pam-mfa_VERSION_ARCH.deb.
# Needs dpkg-dev and debhelper (scripts/install-deps.sh installs them) and cargo.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p target

# -d: cargo comes from rustup, not from a Debian package; -b: binary package only.
dpkg-buildpackage -b -us -uc -d >target/build-deb.log 2>&1 || {
  tail -n 40 target/build-deb.log >&2
  echo "build-deb.sh: dpkg-buildpackage failed (above; all of it in target/build-deb.log)" >&2
  exit 1
}
version=$(dpkg-parsechangelog -S Version)
arch=$(dpkg-architecture -qDEB_HOST_ARCH)
mkdir -p target/debian
for file in ../pam-mfa_"${version}"_"${arch}".{deb,buildinfo,changes}; do
  mv -f "$file" target/debian/
done
echo "target/debian/pam-mfa_${version}_${arch}.deb"
