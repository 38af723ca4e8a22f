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
echo "demo: building pam-mfa (the first build of a fresh clone takes a few minutes)"
cargo build --workspace
bin=${CARGO_TARGET_DIR:-$repo/target}/debug
echo "demo: starting a private bus and mfad"


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
"$bin/mfad" --new-key "$work/sealing.key" 2>/dev/null
printf 'state_dir = "%s/state"\nsealing_key_file = "%s/sealing.key"\n\n[totp]\nissuer = "pam-mfa demo"\n' \
  "$work" "$work" >"$work/mfad.toml"
LD_PRELOAD=$nss_wrapper NSS_WRAPPER_PASSWD=$work/passwd NSS_WRAPPER_GROUP=$work/group \
  "$bin/mfad" --bus "$bus" --config "$work/mfad.toml" 2>"$work/mfad.log" &
pids+=($!)
wait_for "mfad" grep -q "serving org.pam_mfa.Mfad1" "$work/mfad.log"

mkdir "$work/pam.d"
echo "auth required $bin/libpam_mfa.so bus=$bus" >"$work/pam.d/demo-login"

login() {
  "$bin/pamtest" --confdir "$work/pam.d" --service demo-login --user demo "$@"
}

# MFA is required of "demo", who has no app yet: the first login sets one up.
"$bin/mfactl" --bus "$bus" enforce demo on >/dev/null

if ! $unattended; then
  cat <<'INTRO'
pam-mfa demo
============
A private bus, mfad and a PAM stack are running in a temporary directory.
MFA is required of the user "demo", who has no authenticator app yet, so the
first login sets one up, as it would over SSH: scan the QR code with any
authenticator app (Google Authenticator, Aegis, FreeOTP, 1Password, ...), type
the code it shows, and note the recovery codes. Then log in again with the
app's codes; try a wrong code, and a recovery code, too.

INTRO
  while true; do
    echo
    login --interactive || true
    read -r -p "Press Enter to log in again, or Ctrl-C to stop. " _ || break
  done
  exit 0
fi

# Unattended: the enrollment at login, read and answered as a person would (the secret from
# the text shown, codes from oathtool), then daily logins, with checks on what the user sees.
passed=0 failed=0
check() { # check DESCRIPTION EXPECTED-TEXT OUTPUT
  if grep -qF -- "$2" <<<"$3"; then
    passed=$((passed + 1)); echo "ok: $1"
  else
    failed=$((failed + 1)); echo "FAILED: $1: expected \"$2\" in:"; echo "$3"
  fi
}
away_from_step_end() {
  local now; now=$(date +%s)
  if [ $((now % 30)) -gt 24 ]; then sleep $((31 - now % 30)); fi
}
# Reads the login's lines up to and including the next prompt into $shown.
read_to_prompt() {
  shown=
  local line
  while IFS= read -r -t 20 line <&"${first[0]}"; do
    shown+=$line$'\n'
    case $line in PROMPT_*|RESULT*) return 0 ;; esac
  done
  return 1
}
coproc first { login --answers-from-stdin 2>&1; }
first_pid=$first_PID
read_to_prompt || true
echo "$shown" | sed -n '1,2p;/by hand:/p;/URI:/p;/PROMPT/p'
check "the first login shows a QR code" "▀" "$shown"
check "and asks for the app's code" "PROMPT_ECHO_OFF Code shown by the app:" "$shown"
secret=$(sed -n 's/.*by hand: //p' <<<"$shown" | tr -d ' ')
away_from_step_end
echo "$(oathtool --totp --base32 "$secret")" >&"${first[1]}"
read_to_prompt || true
check "then shows the recovery codes once" "These recovery codes let you log in" "$shown"
check "and waits until they are saved" "PROMPT_ECHO_ON Press Enter once you have saved these codes:" "$shown"
recovery=$(sed -n 's/^    \([a-z0-9-]\{17\}\)$/\1/p' <<<"$shown" | head -1)
echo >&"${first[1]}"
read_to_prompt || true
check "the first login ends logged in" "RESULT PAM_SUCCESS" "$shown"
wait "$first_pid" 2>/dev/null || true

wrong=$(login --answer 000000 --answer 000001 --answer 000002 2>&1 || true)
check "wrong codes are refused" "RESULT PAM_MAXTRIES" "$wrong"
# The enrollment used this time step's code: the app's next one (accepted, one step of drift).
away_from_step_end
current=$(oathtool --totp --base32 "$secret" --now "@$(($(date +%s) + 30))")
right=$(login --answer "$current" 2>&1 || true)
echo "$right"
check "the current code logs in" "RESULT PAM_SUCCESS" "$right"
replay=$(login --answer "$current" --answer "$current" --answer "$current" 2>&1 || true)
check "the same code is refused the second time" "already used" "$replay"
rescued=$(login --answer "$recovery" 2>&1 || true)
check "a recovery code logs in once" "Recovery code accepted. 9 recovery codes are left." "$rescued"
echo "demo: $passed passed, $failed failed"
[ "$failed" = 0 ]
