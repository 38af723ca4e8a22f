#!/usr/bin/env bash
# Fuzzes what pam-mfa reads from others (fuzz/fuzz_targets: the login socket's server and
# client sides, the configuration, the import files, recovery codes, secrets), each target for
# SECONDS of its own (60 unless given), one after the other on one core.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# Needs the nightly toolchain (rustup toolchain install nightly) and cargo-fuzz (cargo install
# cargo-fuzz), and root: the module's side talks only to a socket served by root. Each target
# starts from its seed corpus in fuzz/corpus/TARGET (left as it is) and from what earlier runs
# found, kept in the build directory (CARGO_TARGET_DIR, else fuzz/target). Prints per target
# the CPU time used, the executions, the coverage and whether anything was found; a crash or
# hang is saved in fuzz/artifacts/TARGET/ and makes the script exit with 1.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
  exec sudo --preserve-env=PATH,CARGO_HOME,RUSTUP_HOME,CARGO_TARGET_DIR "$0" "$@"
fi

seconds=${1:-60}
shift || true
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [ "$seconds" -eq 0 ]; then
  echo "usage: scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]" >&2
  exit 2
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "fuzz.sh: needs the nightly toolchain and cargo-fuzz:" >&2
  echo "  rustup toolchain install nightly && cargo install cargo-fuzz" >&2
  exit 1
fi

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cd fuzz && cargo +nightly fuzz list)
fi

# Debug assertions on: an arithmetic overflow is a finding too.
(cd fuzz && cargo +nightly fuzz build --debug-assertions 2>&1 | tail -n 3) \
  || { echo "fuzz.sh: the fuzz targets do not build" >&2; exit 1; }
build=${CARGO_TARGET_DIR:-$PWD/fuzz/target}
case "$build" in /*) ;; *) build=$PWD/$build ;; esac
bin=$build/x86_64-unknown-linux-gnu/release

found=0
rows=()
for target in "${targets[@]}"; do
  corpus=$build/fuzz-corpus/$target
  artifacts=fuzz/artifacts/$target
  log=$build/fuzz-logs/$target.log
  mkdir -p "$corpus" "$artifacts" "$(dirname "$log")"
  echo "fuzz.sh: $target for ${seconds} s (log: $log)"
  status=0
  TIMEFORMAT='%U %S'
  cpu=$( { time "$bin/$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
             -print_final_stats=1 -artifact_prefix="$artifacts/" \
             "$corpus" "fuzz/corpus/$target" >"$log" 2>&1; } 2>&1 ) || status=$?
  cpu=$(awk '{ printf "%.1f", $1 + $2 }' <<<"$cpu")
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  cov=$(grep -Eo 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -n 1 | awk '{ print $2 "/" $4 }')
  if [ "$status" -ne 0 ] || grep -q '^==[0-9]*== ERROR' "$log"; then
    result="FOUND (exit $status): $(grep -Eo '(crash|timeout|oom|leak|slow-unit)-[0-9a-f]+' "$log" | tail -n 1)"
    found=1
  else
    result="nothing"
  fi
  rows+=("$(printf '%-16s %9s %12s %13s  %s' "$target" "$cpu" "${runs:-?}" "${cov:-?}" "$result")")
done

printf '\n%-16s %9s %12s %13s  %s\n' target "CPU s" executions "cov/features" found
printf '%s\n' "${rows[@]}"
exit "$found"
