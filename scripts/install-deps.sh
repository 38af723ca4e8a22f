#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages pam-mfa needs to build, test and run its demo.
# Rust itself (1.89 or newer, with cargo) must already be installed, e.g. with rustup.
set -euo pipefail

packages=(
  build-essential   # cc, for the bundled SQLite
  pkg-config
  libpam0g-dev      # libpam, to build and load pam_mfa.so
  libssl-dev        # TLS to a PostgreSQL server (fleet mode), in mfad
  libpam-modules    # pam_permit.so, used in test stacks
  dbus-daemon       # the private system-like bus of the tests and the demo
  libnss-wrapper    # test users without touching /etc/passwd
  libpam-wrapper    # pam_matrix: a password module for the documented stacks' tests
  oathtool          # an independent TOTP implementation to cross-check codes
  libpam-google-authenticator  # its tool makes the files a test imports
  libpam-oath       # pam_oath: a test imports its users file after real pam_oath logins
  zbar-tools        # zbarimg: an independent QR reader checks the codes mfad draws
  util-linux        # unshare: a test gives mfad a /dev of its own (syslog coming and going)
  mount             # mount, for the same test
  systemd           # systemd-socket-activate: a test starts mfad on its socket, as mfad.socket does
  openssh-server    # sshd, for logins over real SSH in the tests
  openssh-client    # ssh, their client
  debootstrap       # the Debian base of the container tests (containers/base.sh)
  binutils          # objcopy: the container images get the binaries without debug symbols;
                    # nm: a test checks what the module links
  dpkg-dev          # dpkg-buildpackage: scripts/build-deb.sh builds the package
  debhelper         # its dh sequence (debian/rules)
  mandoc            # mandoc -Tlint: the man pages are checked for warnings
  man-db            # man --warnings (groff): the same pages as man shows them
  postgresql        # a real server for the fleet tests (started on a temporary cluster)
  iproute2          # ip netns: a fleet test cuts one host off from the database
  freeradius        # an application that sends PAM one password (password and code in one answer)
  freeradius-utils  # radtest, its client
  openssl           # openssl passwd: the password hash pam_unix checks in that test;
                    # the test authorities of the TLS tests
  postfix           # a real mail system: emailed codes over STARTTLS and through its sendmail
                    # (run by the tests with configurations of their own)
  sasl2-bin         # saslpasswd2: the login the mail server asks of mfad in a test
  libsasl2-modules  # Cyrus SASL's PLAIN and LOGIN, for that login
  libsasl2-modules-db  # its user database
)

missing=()
for package in "${packages[@]%% *}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' \
    || missing+=("$package")
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "Installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Postfix installed without a configuration of the host's: the tests bring their own.
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo is not installed: install Rust 1.89 or newer (https://rustup.rs), then run again" >&2
  exit 1
fi
