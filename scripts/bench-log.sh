#!/usr/bin/env bash
# Segment log benchmark: this machine's raw sequential write rate (dd with fdatasync), then the
# criterion benchmarks of benches/log.rs, in one run. Prints a Markdown table for BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/odradek/target}"
scratch=$(mktemp -d "${TMPDIR:-/tmp}/odradek-bench.XXXXXX")
trap 'rm -rf "$scratch"' EXIT

cargo bench --bench log --no-run --quiet
echo "== raw disk: dd if=/dev/zero of=<file> bs=1M count=2048 conv=fdatasync"
dd_out=$(dd if=/dev/zero of="$scratch/dd" bs=1M count=2048 conv=fdatasync 2>&1 | tail -n 1)
rm -f "$scratch/dd"
echo "$dd_out"

echo "== cargo bench --bench log"
TMPDIR="$scratch" cargo bench --bench log 2>&1 | tee "$scratch/bench.txt" | grep -E '^(append|read)|thrpt:' || true

echo
echo "| what | throughput |"
echo "|---|---|"
echo "| raw disk write, dd bs=1M count=2048 conv=fdatasync | $(echo "$dd_out" | awk -F, '{print $NF}' | xargs) |"
awk '/^(append|read)\//{name=$1} /thrpt:/{gsub(/\[|\]/,""); print "| " name " | " $4 " " $5 " (" $2 " " $3 " .. " $6 " " $7 ") |"}' "$scratch/bench.txt"
