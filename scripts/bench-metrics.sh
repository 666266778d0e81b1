#!/usr/bin/env bash
# The cost of the metrics (BENCHMARKS.md, "Metrics on and off"): the --dev broker of BASE_REV
# (before the metrics existed) and of the working tree, alternating round by round on fresh
# nodes whose data lives in memory (/dev/shm when there is one: this machine's disk varies more
# than the effect measured). The working tree's node serves /metrics and a scraper reads it every
# second throughout (a busy Prometheus). Workloads: `odradek perf produce` of 1 KiB records to
# one partition (acks=1) and `odradek perf consume` of them; for each, the rate and the broker's
# CPU seconds per GB. Prints every round, then medians and the head/base ratios.
#
# usage: scripts/bench-metrics.sh BASE_REV [ROUNDS] [RECORDS]   (defaults: 5 rounds, 500000)
set -euo pipefail
cd "$(dirname "$0")/.."
base_rev=${1:?usage: scripts/bench-metrics.sh BASE_REV [ROUNDS] [RECORDS]}
rounds=${2:-5}
records=${3:-500000}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/odradek/target}"
mem=/dev/shm
[ -d "$mem" ] && [ -w "$mem" ] || mem="${TMPDIR:-/tmp}"
scratch=$(mktemp -d "$mem/odradek-bench-metrics.XXXXXX")
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  git worktree remove --force "$scratch/base" 2>/dev/null || true
  rm -rf "$scratch"
}
trap cleanup EXIT

git worktree add --detach --quiet "$scratch/base" "$base_rev"
(cd "$scratch/base" && CARGO_TARGET_DIR="$CARGO_TARGET_DIR-base" cargo build --release --quiet --bin odradek-broker --bin odradek)
cargo build --release --quiet --bin odradek-broker --bin odradek
mkdir -p "$scratch/base-bin" "$scratch/head-bin"
cp "$CARGO_TARGET_DIR-base/release/odradek-broker" "$CARGO_TARGET_DIR-base/release/odradek" "$scratch/base-bin/"
cp "$CARGO_TARGET_DIR/release/odradek-broker" "$CARGO_TARGET_DIR/release/odradek" "$scratch/head-bin/"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
hz=$(getconf CLK_TCK)
rows="$scratch/rows"
: >"$rows"

# usage: run LABEL BIN_DIR SCRAPE(0|1)
run() {
  local label=$1 bin=$2 scrape=$3 port cport mport node scraper= before after out
  port=$(free_port); cport=$(free_port); mport=$(free_port)
  rm -rf "$scratch/data"
  local extra=()
  [ "$scrape" = 1 ] && extra=(--override "metrics.listener=http://127.0.0.1:$mport" --override "console.listener=")
  "$bin/odradek-broker" --dev --data-dir "$scratch/data" \
    --override "listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport" \
    --override "controller.quorum.voters=1@127.0.0.1:$cport" "${extra[@]}" 2>"$scratch/node.log" &
  node=$!; pids+=("$node")
  until grep -q "broker ready" "$scratch/node.log"; do sleep 0.1; done
  if [ "$scrape" = 1 ]; then
    python3 -c 'import sys, time, urllib.request
while True:
    try: urllib.request.urlopen(sys.argv[1], timeout=5).read()
    except OSError: pass
    time.sleep(1)' "http://127.0.0.1:$mport/metrics" &
    scraper=$!; pids+=("$scraper")
  fi
  local b="127.0.0.1:$port"
  "$bin/odradek" --bootstrap-server "$b" topics create --topic perf --partitions 1 >/dev/null
  ticks() { awk '{print $14 + $15}' "/proc/$node/stat"; }
  before=$(ticks)
  out=$("$bin/odradek" --bootstrap-server "$b" perf produce --topic perf --records "$records" --record-size 1024 --acks 1 | tail -n 1)
  after=$(ticks)
  echo "$label produce $(echo "$out" | awk -F'[ (]+' '{print $4}') $(( after - before ))" >>"$rows"
  before=$(ticks)
  out=$("$bin/odradek" --bootstrap-server "$b" perf consume --topic perf --records "$records" | tail -n 1)
  after=$(ticks)
  echo "$label consume $(echo "$out" | awk -F', *' '{print $6}') $(( after - before ))" >>"$rows"
  kill "$node"; wait "$node" 2>/dev/null || true
  if [ -n "$scraper" ]; then kill "$scraper" 2>/dev/null || true; wait "$scraper" 2>/dev/null || true; fi
}

for r in $(seq 1 "$rounds"); do
  echo "round $r of $rounds" >&2
  run base "$scratch/base-bin" 0
  run head "$scratch/head-bin" 1
done

python3 - "$rows" "$hz" "$records" "$(git rev-parse --short "$base_rev")" "$(git rev-parse --short HEAD)" <<'PY'
import statistics, sys
rows, hz, records, base, head = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
gb = records * 1024 / 1e9
data = {}
for line in open(rows):
    build, workload, rate, ticks = line.split()
    data.setdefault((workload, build), []).append((float(rate), int(ticks) / hz / gb))
    print(f"{build:5} {workload:8} {float(rate):>12,.0f} records/s {int(ticks) / hz / gb:6.2f} CPU s/GB")
print(f"\n| workload | base {base} records/s | head {head} (metrics on, scraped every 1 s) records/s | head / base | base CPU s/GB | head CPU s/GB | head / base |")
print("|---|---|---|---|---|---|---|")
for workload in ("produce", "consume"):
    b = data[(workload, "base")]; h = data[(workload, "head")]
    br, hr = statistics.median(r for r, _ in b), statistics.median(r for r, _ in h)
    bc, hc = statistics.median(c for _, c in b), statistics.median(c for _, c in h)
    print(f"| odradek perf {workload}, 1 partition, 1 KiB | {br:,.0f} | {hr:,.0f} | {hr / br:.3f} | {bc:.2f} | {hc:.2f} | {hc / bc:.3f} |")
PY
