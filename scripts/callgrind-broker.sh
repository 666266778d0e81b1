#!/usr/bin/env bash
# Counts the instructions a --dev broker executes (valgrind callgrind, every thread, from start
# to SIGTERM) while `odradek perf` produces RECORDS 1 KiB records to one partition (acks=1) and,
# unless CONSUME=0, consumes them; then SCRAPES reads of /metrics. Data on /dev/shm, so the disk
# does not enter. Instruction counts barely move between runs on a noisy machine, unlike rates
# (BENCHMARKS.md, "Metrics on and off").
#
# usage: scripts/callgrind-broker.sh BIN_DIR LABEL RECORDS [SCRAPES]
#   BIN_DIR holds odradek-broker and odradek (release builds); IDLE=seconds waits before the
#   load (an idle run: RECORDS=0 IDLE=25). The node serves metrics unless LABEL is "base" (a
#   build from before metrics.listener existed).
set -euo pipefail
bin=$1; label=$2; n=$3; scrapes=${4:-0}
command -v valgrind >/dev/null || { echo "valgrind is needed (apt-get install valgrind)" >&2; exit 1; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
mem=/dev/shm; [ -d "$mem" ] && [ -w "$mem" ] || mem="${TMPDIR:-/tmp}"
d=$(mktemp -d "$mem/odradek-callgrind.XXXXXX"); port=$(free_port); cport=$(free_port); mport=$(free_port)
trap 'rm -rf "$d"' EXIT
extra=()
[ "$label" != base ] && extra=(--override "metrics.listener=http://127.0.0.1:$mport" --override "console.listener=")
valgrind --tool=callgrind --callgrind-out-file="$d/cg.out" "$bin/odradek-broker" --dev --data-dir "$d/data" \
  --override "listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport" \
  --override "controller.quorum.voters=1@127.0.0.1:$cport" "${extra[@]}" 2>"$d/log" &
pid=$!
until grep -q "broker ready" "$d/log"; do sleep 0.5; done
b=127.0.0.1:$port
"$bin/odradek" --bootstrap-server "$b" topics create --topic p --partitions 1 >/dev/null
sleep "${IDLE:-2}"
if [ "$n" -gt 0 ]; then
  "$bin/odradek" --bootstrap-server "$b" perf produce --topic p --records "$n" --record-size 1024 --acks 1 >/dev/null
  [ "${CONSUME:-1}" = 1 ] && "$bin/odradek" --bootstrap-server "$b" perf consume --topic p --records "$n" >/dev/null
fi
for _ in $(seq 1 "$scrapes"); do
  python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$mport/metrics').read()"
done
kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
echo "$label records=$n scrapes=$scrapes instructions=$(grep -h '^summary:\|^totals:' "$d"/cg.out* | head -1 | awk '{print $2}')"
