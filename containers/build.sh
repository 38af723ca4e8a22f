#!/usr/bin/env bash
# Builds pam-mfa's container image (containers/Dockerfile) as pam-mfa:dev on a base made here
# from nothing (containers/base.sh), and prints its tag.
#
#   cargo build --release --workspace && containers/build.sh
#   containers/build.sh --bin-dir target/debug --tests   # what the container tests use
#
# --bin-dir DIR  where the built pam_mfa.so (libpam_mfa.so), mfad and mfactl are
#                (target/release by default); they are copied without their debug symbols
# --tag TAG      the image's tag (pam-mfa:dev)
# --tests        also builds the test image (pam-mfa-test:dev), the package test's image
#                (pam-mfa-package-test:dev) and the peer images
#                (pam-mfa-peer:google-authenticator, pam-mfa-peer:oath), and prints their tags
#
# Needs root and a Docker engine; no image registry.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

bin_dir=$repo/target/release
tag=pam-mfa:dev
tests=no
while [ $# -gt 0 ]; do
  case "$1" in
    --bin-dir) bin_dir=$2; shift 2 ;;
    --tag) tag=$2; shift 2 ;;
    --tests) tests=yes; shift ;;
    -h|--help) sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "build.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
for part in libpam_mfa.so mfad mfactl; do
  if [ ! -f "$bin_dir/$part" ]; then
    echo "build.sh: $bin_dir/$part is missing: run cargo build --release --workspace first" >&2
    exit 1
  fi
done

base=$("$repo/containers/base.sh")

# The build context: the three parts and the files the Dockerfiles copy, nothing else.
context=$(mktemp -d /var/tmp/pam-mfa-context.XXXXXX)
log=$(mktemp /var/tmp/pam-mfa-build.XXXXXX)
trap 'rm -rf "$context" "$log"' EXIT
objcopy --strip-debug "$bin_dir/libpam_mfa.so" "$context/pam_mfa.so"
objcopy --strip-debug "$bin_dir/mfad" "$context/mfad"
objcopy --strip-debug "$bin_dir/mfactl" "$context/mfactl"
cp -r "$repo/dbus" "$repo/examples" "$repo/containers" "$context/"

build() {
  local image=$1
  shift
  if ! docker build --quiet --tag "$image" "$@" "$context" >"$log" 2>&1; then
    cat "$log" >&2
    echo "build.sh: docker build of $image failed (above)" >&2
    exit 1
  fi
  echo "$image"
}

build "$tag" --file "$context/containers/Dockerfile" --build-arg "BASE=$base"
if [ "$tests" = yes ]; then
  build pam-mfa-test:dev --file "$context/containers/test/Dockerfile" --build-arg "IMAGE=$tag"
  build pam-mfa-package-test:dev --file "$context/containers/test/package.Dockerfile" \
    --build-arg "BASE=$base"
  for module in google-authenticator oath; do
    build "pam-mfa-peer:$module" --file "$context/containers/test/peer.Dockerfile" \
      --build-arg "BASE=$base" --build-arg "MODULE=$module"
  done
fi
