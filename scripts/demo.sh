#!/usr/bin/env bash
# A sandboxed pam-mfa login you can try with a phone.
#
# Starts a private bus configured like the system bus, mfad on a temporary state directory,
# and a PAM stack (pam_mfa.so) loaded by a small login program through pam_start_confdir.
# The demo user "demo" lives in a private passwd file (nss_wrapper). Nothing on the host is
# changed, and everything is removed at the end.
#
#   scripts/demo.sh               enroll "demo" with your phone, then log in with its codes
#   scripts/demo.sh --unattended  the same with a known secret and oathtool's codes (CI)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

unattended=false
case "${1:-}" in
  --unattended) unattended=true ;;
  "") ;;
  *) echo "usage: scripts/demo.sh [--unattended]" >&2; exit 2 ;;
esac

if [ "$(id -u)" != 0 ]; then
  # mfad owns its bus name only as root, as on a real system.
  exec sudo --preserve-env=PATH,CARGO_HOME,RUSTUP_HOME,CARGO_TARGET_DIR "$0" "$@"
fi

scripts/install-deps.sh
cargo build --workspace --quiet
bin=${CARGO_TARGET_DIR:-$repo/target}/debug

work=$(mktemp -d /tmp/pam-mfa-demo.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

wait_for() { # wait_for DESCRIPTION COMMAND...
  local what=$1; shift
  for _ in $(seq 1 500); do "$@" && return 0; sleep 0.02; done
  echo "demo: timed out waiting for $what" >&2
  exit 1
}

nss_wrapper=
for candidate in /usr/lib/*/libnss_wrapper.so /usr/lib64/libnss_wrapper.so /usr/lib/libnss_wrapper.so; do
  if [ -e "$candidate" ]; then nss_wrapper=$candidate; break; fi
done
[ -n "$nss_wrapper" ] || { echo "demo: libnss_wrapper.so not found (apt-get install libnss-wrapper)" >&2; exit 1; }

sed -e "s|@SOCKET@|$work/bus|" -e "s|@POLICY@|$repo/dbus/org.pam_mfa.Mfad1.conf|" \
  dbus/private-system-bus.conf.in >"$work/bus.conf"
dbus-daemon --config-file="$work/bus.conf" --nofork 2>"$work/bus.log" &
pids+=($!)
wait_for "the bus" test -S "$work/bus"
bus="unix:path=$work/bus"

printf 'root:x:0:0:root:/root:/bin/sh\ndemo:x:4242:4242:pam-mfa demo:/nonexistent:/bin/sh\n' >"$work/passwd"
printf 'root:x:0:\ndemo:x:4242:\n' >"$work/group"
printf 'state_dir = "%s/state"\n\n[totp]\nissuer = "pam-mfa demo"\n' "$work" >"$work/mfad.toml"
LD_PRELOAD=$nss_wrapper NSS_WRAPPER_PASSWD=$work/passwd NSS_WRAPPER_GROUP=$work/group \
  "$bin/mfad" --bus "$bus" --config "$work/mfad.toml" 2>"$work/mfad.log" &
pids+=($!)
wait_for "mfad" grep -q "serving org.pam_mfa.Mfad1" "$work/mfad.log"

mkdir "$work/pam.d"
echo "auth required $bin/libpam_mfa.so bus=$bus" >"$work/pam.d/demo-login"

login() {
  "$bin/pamtest" --confdir "$work/pam.d" --service demo-login --user demo "$@"
}

if ! $unattended; then
  cat <<'INTRO'
pam-mfa demo
============
A private bus, mfad and a PAM stack are running in a temporary directory.
First, enroll the user "demo": scan the QR code with any authenticator app
(Google Authenticator, Aegis, FreeOTP, 1Password, ...), then type the code it shows.

INTRO
  until "$bin/mfactl" --bus "$bus" enroll demo; do
    echo "Enrollment not confirmed; starting over."
    "$bin/mfactl" --bus "$bus" reset demo >/dev/null
  done
  echo
  echo "Now log in as demo, as sshd or login would. Try a wrong code too."
  while true; do
    echo
    login --interactive | sed 's/^RESULT /Result: /'
    read -r -p "Press Enter to log in again, or Ctrl-C to stop. " _ || break
  done
  exit 0
fi

# Unattended: a known secret, codes from oathtool, and checks on what the user would see.
secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ
now=$(date +%s)
if [ $((now % 30)) -gt 24 ]; then sleep $((31 - now % 30)); now=$(date +%s); fi
previous=$(oathtool --totp --base32 "$secret" --now "@$((now - 30))")
current=$(oathtool --totp --base32 "$secret" --now "@$now")
passed=0 failed=0
check() { # check DESCRIPTION EXPECTED-TEXT OUTPUT
  if grep -qF -- "$2" <<<"$3"; then
    passed=$((passed + 1)); echo "ok: $1"
  else
    failed=$((failed + 1)); echo "FAILED: $1: expected \"$2\" in:"; echo "$3"
  fi
}
enrolled=$(echo "$previous" | "$bin/mfactl" --bus "$bus" enroll demo --secret "$secret" 2>&1 || true)
echo "$enrolled" | sed -n '1,3p;/URI:/p;/enrolled/p'
check "enrollment shows a QR code" "▀" "$enrolled"
check "enrollment is confirmed" "demo is enrolled" "$enrolled"
wrong=$(login --answer 000000 --answer 000001 --answer 000002 2>&1 || true)
check "wrong codes are refused" "RESULT PAM_MAXTRIES" "$wrong"
right=$(login --answer "$current" 2>&1 || true)
echo "$right"
check "the current code logs in" "RESULT PAM_SUCCESS" "$right"
replay=$(login --answer "$current" --answer "$current" --answer "$current" 2>&1 || true)
check "the same code is refused the second time" "already used" "$replay"
echo "demo: $passed passed, $failed failed"
[ "$failed" = 0 ]
