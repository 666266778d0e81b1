#!/usr/bin/env bash
# Two builds side by side: the --dev broker of BASE_REV and of the working tree, alternating round
# by round on fresh nodes (so drift of this machine hits both alike), with librdkafka
# (confluent-kafka, scripts/bench_broker.py: 1 partition, 100 B and 1 KiB, produce then consume)
# and `odradek perf` (1 partition, 1 KiB, produce then consume). Prints every row, then the
# median records/s of each workload per build and their ratio.
#
# usage: scripts/bench-ab.sh BASE_REV [ROUNDS]      (ROUNDS defaults to 3)
# The base is checked out in a temporary worktree and built (release) into
# "$CARGO_TARGET_DIR-base" (one target directory for both would mix their workspace crates:
# cargo names them alike whatever the checkout's path); the working tree is built into
# $CARGO_TARGET_DIR. Both builds' binaries are copied aside. Every node serves metrics on a free
# port (metrics.listener; a build without it warns of an unknown key), and with SCRAPE=1 a
# scraper reads /metrics every second while the node runs (as a busy Prometheus would).
set -euo pipefail
cd "$(dirname "$0")/.."
base_rev=${1:?usage: scripts/bench-ab.sh BASE_REV [ROUNDS]}
rounds=${2:-3}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/odradek/target}"
venv="${ODRADEK_VENV:-$HOME/.cache/odradek/venv}"
[ -x "$venv/bin/python" ] || { python3 -m venv "$venv"; "$venv/bin/pip" install -q -r compat/requirements.txt; }
scratch=$(mktemp -d "${TMPDIR:-/tmp}/odradek-ab.XXXXXX")
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  git worktree remove --force "$scratch/base" 2>/dev/null || true
  rm -rf "$scratch"
}
trap cleanup EXIT

base_short=$(git rev-parse --short "$base_rev")
head_short="$(git rev-parse --short HEAD)$(git diff --quiet HEAD || echo +changes)"
git worktree add --detach --quiet "$scratch/base" "$base_rev"
mkdir -p "$scratch/base-bin" "$scratch/head-bin"
(cd "$scratch/base" && CARGO_TARGET_DIR="$CARGO_TARGET_DIR-base" cargo build --release --quiet --bin odradek-broker --bin odradek)
cp "$CARGO_TARGET_DIR-base/release/odradek-broker" "$CARGO_TARGET_DIR-base/release/odradek" "$scratch/base-bin/"
cargo build --release --quiet --bin odradek-broker --bin odradek
cp "$CARGO_TARGET_DIR/release/odradek-broker" "$CARGO_TARGET_DIR/release/odradek" "$scratch/head-bin/"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
rows="$scratch/rows.md"

# usage: run LABEL BIN_DIR
run() {
  local label=$1 bin=$2 port cport mport node out scraper=
  port=$(free_port); cport=$(free_port); mport=$(free_port)
  rm -rf "$scratch/data"
  "$bin/odradek-broker" --dev --data-dir "$scratch/data" \
    --override "listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport" \
    --override "controller.quorum.voters=1@127.0.0.1:$cport" \
    --override "metrics.listener=http://127.0.0.1:$mport" --override "console.listener=" 2>"$scratch/node.log" &
  node=$!; pids+=("$node")
  until grep -q "broker ready" "$scratch/node.log"; do sleep 0.1; done
  if [ "${SCRAPE:-0}" = 1 ]; then
    python3 -c 'import sys, time, urllib.request
while True:
    try: urllib.request.urlopen(sys.argv[1], timeout=5).read()
    except OSError: pass
    time.sleep(1)' "http://127.0.0.1:$mport/metrics" &
    scraper=$!; pids+=("$scraper")
  fi
  local bootstrap="127.0.0.1:$port"
  "$venv/bin/python" scripts/bench_broker.py "$bootstrap" 100 1000000 1 "$label, confluent-kafka" "$node" | tee -a "$rows"
  "$venv/bin/python" scripts/bench_broker.py "$bootstrap" 1024 500000 1 "$label, confluent-kafka" "$node" | tee -a "$rows"
  "$bin/odradek" --bootstrap-server "$bootstrap" topics create --topic perf1k --partitions 1 >/dev/null
  out=$("$bin/odradek" --bootstrap-server "$bootstrap" perf produce --topic perf1k --records 1000000 --record-size 1024 --acks 1 | tail -n 1)
  echo "$out" | awk -v l="$label" -F'[ (]+' '{printf "| %s, odradek perf | produce, 1 partition(s), acks=1, 1 KiB | %s |\n", l, $4}' | tee -a "$rows"
  out=$("$bin/odradek" --bootstrap-server "$bootstrap" perf consume --topic perf1k --records 1000000 | tail -n 1)
  echo "$out" | awk -v l="$label" -F', *' '{printf "| %s, odradek perf | consume, 1 partition(s), 1 KiB | %s |\n", l, $6}' | tee -a "$rows"
  kill "$node"; wait "$node" 2>/dev/null || true
  [ -n "$scraper" ] && { kill "$scraper" 2>/dev/null || true; wait "$scraper" 2>/dev/null || true; }
}

for r in $(seq 1 "$rounds"); do
  echo "round $r of $rounds" >&2
  run "base $base_short" "$scratch/base-bin"
  run "head $head_short" "$scratch/head-bin"
done

python3 - "$rows" "base $base_short" "head $head_short" <<'PY'
import re, statistics, sys
rows, base, head = sys.argv[1:]
figures = {}
for line in open(rows):
    cells = [c.strip() for c in line.strip().strip("|").split("|")]
    label, workload, rate = cells[0], cells[1], float(cells[2].replace(",", ""))
    build = base if label.startswith(base) else head
    client = label.split(", ", 1)[1]
    figures.setdefault((client, workload), {}).setdefault(build, []).append(rate)
print(f"\n| client | workload | {base} records/s (median) | {head} records/s (median) | {head} / {base} |")
print("|---|---|---|---|---|")
for (client, workload), by in figures.items():
    b, h = statistics.median(by.get(base, [0])), statistics.median(by.get(head, [0]))
    ratio = f"{h / b:.2f}" if b else "-"
    print(f"| {client} | {workload} | {b:,.0f} | {h:,.0f} | {ratio} |")
PY
