#!/usr/bin/env bash
# Runs many seeds of the deterministic cluster simulation (odradek-sim, release build), in
# parallel jobs, and prints each job's totals and every failing seed with its trace.
# Usage: scripts/sim.sh [seeds] [first seed] [steps per run] [jobs]
# (defaults: 1000 seeds from 1, 20000 steps, one job per core). A failing seed replays with
# `cargo run --release -p odradek-sim -- --seed N --steps M`; pin it in crates/sim/tests/sim.rs.
set -euo pipefail
cd "$(dirname "$0")/.."
seeds="${1:-1000}"
first="${2:-1}"
steps="${3:-20000}"
jobs="${4:-$(nproc)}"
cargo build --release --locked -p odradek-sim
bin="${CARGO_TARGET_DIR:-target}/release/odradek-sim"
per=$(( (seeds + jobs - 1) / jobs ))
out=$(mktemp -d)
pids=()
for j in $(seq 0 $((jobs - 1))); do
  start=$(( first + j * per ))
  n=$(( per < seeds - j * per ? per : seeds - j * per ))
  [ "$n" -gt 0 ] || continue
  "$bin" --seed "$start" --seeds "$n" --steps "$steps" >"$out/$j.log" 2>&1 &
  pids+=($!)
done
status=0
for p in "${pids[@]}"; do wait "$p" || status=1; done
grep -h -E '^[0-9]+ seeds,' "$out"/*.log
grep -h -A 360 'failed at step' "$out"/*.log || true
rm -rf "$out"
exit "$status"
