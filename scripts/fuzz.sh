#!/usr/bin/env bash
# Runs every fuzz target in fuzz/ (cargo-fuzz, stable toolchain, no sanitizer) for a while:
# first over its seeds (fuzz/seeds/<target>: frames and segments captured from real clients by
# fuzz/capture_seeds.py) and regressions (fuzz/regressions/<target>: inputs that once failed),
# then fuzzing. New inputs go to fuzz/corpus/<target> (not committed); a failing input is left
# in fuzz/artifacts/<target> and the script fails. Usage: scripts/fuzz.sh [seconds per target]
# [target...] (default: 10 seconds, every target). CI runs the short pass; a long run is
# `scripts/fuzz.sh 3600`. libFuzzer's seed is ODRADEK_FUZZ_SEED (default 1, so the CI pass
# explores the same inputs every time; 0 draws a random one, for long runs).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-10}"
seed="${ODRADEK_FUZZ_SEED:-1}"
shift || true
if ! command -v cargo-fuzz >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked --version 0.13.2
fi
targets=("$@")
[ "${#targets[@]}" -gt 0 ] || mapfile -t targets < <(cargo fuzz list)
cargo fuzz build -s none
for t in "${targets[@]}"; do
  mkdir -p "fuzz/corpus/$t" "fuzz/seeds/$t" "fuzz/regressions/$t"
  echo "==> fuzz $t for ${seconds}s"
  # -rss_limit_mb: a target may use at most this much memory (an input that makes a decoder
  # commit more fails); -timeout: one input may take at most this long (a hang fails).
  log="fuzz/corpus/$t.log"
  status=0
  cargo fuzz run -s none "$t" "fuzz/corpus/$t" "fuzz/seeds/$t" "fuzz/regressions/$t" -- \
    -max_total_time="$seconds" -seed="$seed" -rss_limit_mb=1024 -timeout=10 -print_final_stats=1 \
    >"$log" 2>&1 || status=$?
  grep -E '^(Done|stat::number_of_executed_units|stat::peak_rss_mb)' "$log" || true
  if [ "$status" -ne 0 ]; then
    grep -v -E '^#[0-9]+' "$log" | tail -n 60
    echo "fuzz target $t failed (exit $status); the input is in fuzz/artifacts/$t" >&2
    exit 1
  fi
done
