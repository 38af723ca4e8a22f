#!/usr/bin/env bash
# Makes the Debian base image of pam-mfa's containers from nothing, with debootstrap and
# `docker import` (no image registry is needed, only Debian's package mirror), and prints its
# tag. The tag holds a hash of this file, so a base made before is reused until the package
# list below changes; `docker image rm` it to make it again.
#
#   containers/base.sh                 # prints e.g. pam-mfa-base:1f2e3d4c5b6a
#   DEBIAN_MIRROR=http://mirror.example/debian containers/base.sh
#
# Needs root (debootstrap) and a Docker engine; installs debootstrap if it is missing.
set -euo pipefail

suite=bookworm
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
packages=(
  openssh-server               # sshd, and ssh-keygen for its host keys
  sudo
  dbus                         # the system bus
  procps                       # pgrep/pkill, for the supervisor and the tests
  systemd                      # for the package test, which runs the unit under systemd
  libpam-google-authenticator  # the peer modules the tests compare pam_mfa with
  libpam-oath
  freeradius                   # an application that sends PAM one password (rlm_pam)
  freeradius-utils             # radtest, its client
  postfix                      # a mail system: codes sent by email through its sendmail
)
# su and login come with every Debian system (util-linux, login).

tag="pam-mfa-base:$(sha256sum "${BASH_SOURCE[0]}" | cut -c1-12)"

# One build at a time on this machine; whoever waited reuses what the first one made.
exec 9>"${TMPDIR:-/tmp}/pam-mfa-base.lock"
flock 9
if docker image inspect "$tag" >/dev/null 2>&1; then
  echo "$tag"
  exit 0
fi

if ! command -v debootstrap >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
fi

work=$(mktemp -d /var/tmp/pam-mfa-base.XXXXXX)
# A debootstrap that was stopped may leave /proc and /sys mounted in the tree.
trap 'umount -R "$work/root/proc" "$work/root/sys" 2>/dev/null || true
      rm -rf --one-file-system "$work"' EXIT
include=$(IFS=,; echo "${packages[*]%% *}")
if ! debootstrap --variant=minbase --include="$include" "$suite" "$work/root" "$mirror" \
  >"$work/log" 2>&1; then
  tail -n 30 "$work/log" >&2
  echo "base.sh: debootstrap of $suite from $mirror failed (above)" >&2
  exit 1
fi
# Each image made from the base makes its own SSH host keys; package lists and downloaded
# packages only take room.
rm -f "$work"/root/etc/ssh/ssh_host_*
rm -rf "$work"/root/var/lib/apt/lists/* "$work"/root/var/cache/apt/archives/*.deb \
  "$work"/root/var/cache/apt/*.bin
tar -C "$work/root" --numeric-owner -c . \
  | docker import --change 'CMD ["/bin/bash"]' - "$tag" >/dev/null
echo "$tag"
