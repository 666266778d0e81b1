#!/usr/bin/env bash
# The broker benchmark table in BENCHMARKS.md. Builds release binaries, measures this machine's raw
# sequential write rate, then, on a fresh `--dev` node and on a fresh cluster of three controller
# and three broker processes (all on 127.0.0.1, scratch directories), runs with `odradek perf`:
# single-partition acks=1 produce of 100 B and 1 KiB records, 1 KiB over 6 partitions, consume of
# those 6 partitions, and end-to-end latency at half of the measured single-partition 1 KiB peak.
# Each row carries the broker CPU time (user + system, all broker processes) per GB moved. The
# same produce/consume workloads then run through librdkafka (confluent-kafka, default consumer
# settings) against `--dev` and against Tansu 0.6 (a peer, installed from crates.io once), and
# the 6-partition one against the cluster. A `--dev` node with log.flush.before.ack=true then
# produces with `odradek perf` and librdkafka, to set against the raw fdatasync rate. On the cluster, one partition with three replicas is
# produced with acks=1, acks=all, and acks=all at half of its peak (latency percentiles), and
# confluent-kafka produces acks=all to one partition of RF 1 and of RF 3.
#
# Every row starts after a `sync`, so the writeback of the rows before does not weigh on it.
#
# usage: scripts/bench.sh [--no-write]   (--no-write prints the section instead of writing it)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/odradek/target}"
venv="${ODRADEK_VENV:-$HOME/.cache/odradek/venv}"
[ -x "$venv/bin/python" ] || { python3 -m venv "$venv"; "$venv/bin/pip" install -q -r compat/requirements.txt; }
cargo build --release --workspace --bins --quiet
bin="$CARGO_TARGET_DIR/release"
scratch=$(mktemp -d "${TMPDIR:-/tmp}/odradek-bench.XXXXXX")
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$scratch"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
hz=$(getconf CLK_TCK)
ticks() { local t=0 p; for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done; echo "$t"; }
wait_ready() { until grep -q "broker ready" "$1"; do sleep 0.1; done; }
rows="$scratch/rows.md"

# Runs `odradek perf ...` against $bootstrap, appends a table row; $brokers are the broker pids.
# usage: measure LABEL WORKLOAD BYTES -- perf-args...
measure() {
  local label=$1 workload=$2 bytes=$3; shift 4
  local before after out secs
  sync # the rows before leave no writeback to this one
  before=$(ticks "${brokers[@]}")
  out=$("$bin/odradek" --bootstrap-server "$bootstrap" perf "$@")
  after=$(ticks "${brokers[@]}")
  secs=$(python3 -c "print(f'{($after - $before) / $hz / ($bytes / 1e9):.2f}')")
  python3 - "$label" "$workload" "$secs" "$out" >>"$rows" <<'PY'
import re, sys
label, workload, cpu, out = sys.argv[1:]
last = out.strip().splitlines()[-1]
if "records sent" in last:
    n = re.findall(r"([\d.]+) records/sec \(([\d.]+) MB/sec\), ([\d.]+) ms avg latency, ([\d.]+) ms max", last)[0]
    q = re.findall(r"([\d.]+) ms 50th, [\d.]+ ms 95th, ([\d.]+) ms 99th", last)
    pct = f" (p50 {q[0][0]}, p99 {q[0][1]})" if q else ""
    print(f"| {label} | {workload} | {float(n[0]):,.0f} | {float(n[1]):,.1f} | {n[2]} / {n[3]}{pct} | {cpu} |")
elif "records received" in last:
    n = re.findall(r"([\d.]+) records/sec \(([\d.]+) MB/sec\), ([\d.]+) ms avg.* ([\d.]+) ms 50th.* ([\d.]+) ms 99th, ([\d.]+) ms 99.9th", last)[0]
    print(f"| {label} | {workload} | {float(n[0]):,.0f} | {float(n[1]):,.1f} | {n[2]} avg, {n[3]} p50, {n[4]} p99, {n[5]} p99.9 | {cpu} |")
else:
    f = [x.strip() for x in last.split(",")]
    print(f"| {label} | {workload} | {float(f[5]):,.0f} | {float(f[3]):,.1f} | | {cpu} |")
PY
  tail -n 1 "$rows" >&2
}

# The workloads, against $bootstrap ($rf replicas per partition).
workloads() {
  local label=$1 rf=$2 peak
  "$bin/odradek" --bootstrap-server "$bootstrap" topics create --topic p100 --partitions 1 --replication-factor "$rf" >/dev/null
  "$bin/odradek" --bootstrap-server "$bootstrap" topics create --topic p1k --partitions 1 --replication-factor "$rf" >/dev/null
  "$bin/odradek" --bootstrap-server "$bootstrap" topics create --topic p6 --partitions 6 --replication-factor "$rf" >/dev/null
  "$bin/odradek" --bootstrap-server "$bootstrap" topics create --topic e2e --partitions 1 --replication-factor "$rf" >/dev/null
  measure "$label" "produce, 1 partition, acks=1, 100 B" 300000000 -- produce --topic p100 --records 3000000 --record-size 100 --acks 1
  measure "$label" "produce, 1 partition, acks=1, 1 KiB" 1024000000 -- produce --topic p1k --records 1000000 --record-size 1024 --acks 1
  peak=$(tail -n 1 "$rows" | awk -F'|' '{gsub(/[ ,]/, "", $4); print $4}')
  measure "$label" "produce, 6 partitions, acks=1, 1 KiB" 1024000000 -- produce --topic p6 --records 1000000 --record-size 1024 --acks 1
  measure "$label" "consume, 6 partitions, 1 KiB" 1024000000 -- consume --topic p6 --records 1000000
  local rate=$((peak / 2))
  measure "$label" "end-to-end, 1 partition, 1 KiB, asked ${rate} records/s (half of peak) for 10 s" $((rate * 10 * 1024)) -- \
    end-to-end --topic e2e --records $((rate * 10)) --record-size 1024 --throughput "$rate" --acks 1
}

dd_rate=$(dd if=/dev/zero of="$scratch/dd" bs=1M count=2048 conv=fdatasync 2>&1 | tail -n 1 | awk -F, '{print $NF}' | xargs)
rm -f "$scratch/dd"
echo "raw disk write: $dd_rate" >&2

# A fresh --dev node on free ports.
port=$(free_port); cport=$(free_port)
"$bin/odradek-broker" --dev --data-dir "$scratch/dev" \
  --override "listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport" \
  --override "controller.quorum.voters=1@127.0.0.1:$cport" \
  --override "metrics.listener=http://127.0.0.1:0" --override "console.listener=" 2>"$scratch/dev.log" &
dev=$!; pids+=("$dev")
wait_ready "$scratch/dev.log"
bootstrap="127.0.0.1:$port"; brokers=("$dev")
workloads "--dev" 1

# librdkafka (its default consumer settings) against a broker: 100 B and 1 KiB on one
# partition, 1 KiB on six, and 100 B again with fetch.queue.backoff.ms=0 (see BENCHMARKS.md).
# usage: librdkafka_rows LABEL BOOTSTRAP PIDS
librdkafka_rows() {
  sync; "$venv/bin/python" scripts/bench_broker.py "$2" 100 2000000 1 "$1" "$3" >>"$rows"
  sync; BENCH_CONSUMER=fetch.queue.backoff.ms=0 "$venv/bin/python" scripts/bench_broker.py "$2" 100 2000000 1 "$1" "$3" >>"$rows"
  sync; "$venv/bin/python" scripts/bench_broker.py "$2" 1024 1000000 1 "$1" "$3" >>"$rows"
  sync; "$venv/bin/python" scripts/bench_broker.py "$2" 1024 1000000 6 "$1" "$3" >>"$rows"
  tail -n 8 "$rows" >&2
}
librdkafka_rows "--dev, confluent-kafka" "$bootstrap" "$dev"
kill "$dev"; wait "$dev" 2>/dev/null || true

# A peer in the same run: Tansu 0.6 with its memory engine (no disk), installed from crates.io
# into the cache (feature dynostore carries the memory engine; about 15 minutes to build once).
peers="${ODRADEK_PEERS:-$HOME/.cache/odradek/peers}"
tansu="$peers/tansu-0.6.0/bin/tansu"
if [ ! -x "$tansu" ]; then
  echo "installing tansu 0.6.0 from crates.io into $peers (once)" >&2
  cargo install tansu --version 0.6.0 --locked --features dynostore --quiet \
    --root "$peers/tansu-0.6.0" --target-dir "$peers/tansu-target" >&2 || true
fi
if [ -x "$tansu" ]; then
  tport=$(free_port)
  "$tansu" broker --listener-url "tcp://127.0.0.1:$tport" --advertised-listener-url "tcp://127.0.0.1:$tport" \
    --storage-engine memory://tansu/ >"$scratch/tansu.log" 2>&1 &
  tpid=$!; pids+=("$tpid")
  until python3 -c "import socket; socket.create_connection(('127.0.0.1', $tport), 1)" 2>/dev/null; do sleep 0.1; done
  librdkafka_rows "Tansu 0.6 (memory), confluent-kafka" "127.0.0.1:$tport" "$tpid"
  kill "$tpid"; wait "$tpid" 2>/dev/null || true
else
  echo "| Tansu 0.6 | could not be installed from crates.io here (see the run's output) | | | | |" >>"$rows"
fi

# fsync before acknowledgement (log.flush.before.ack=true), against the raw fdatasync rate above.
port=$(free_port); cport=$(free_port)
"$bin/odradek-broker" --dev --data-dir "$scratch/sync" \
  --override "listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport" \
  --override "controller.quorum.voters=1@127.0.0.1:$cport" --override "log.flush.before.ack=true" \
  --override "metrics.listener=http://127.0.0.1:0" --override "console.listener=" 2>"$scratch/sync.log" &
dev=$!; pids+=("$dev")
wait_ready "$scratch/sync.log"
bootstrap="127.0.0.1:$port"; brokers=("$dev")
for t in s1 s1big s6big; do
  "$bin/odradek" --bootstrap-server "$bootstrap" topics create --topic "$t" --partitions "$([ $t = s6big ] && echo 6 || echo 1)" >/dev/null
done
measure "--dev, log.flush.before.ack" "produce, 1 partition, acks=1, 1 KiB, 16 KiB batches" 512000000 -- produce --topic s1 --records 500000 --record-size 1024 --acks 1
measure "--dev, log.flush.before.ack" "produce, 1 partition, acks=1, 1 KiB, 1 MB batches" 1024000000 -- produce --topic s1big --records 1000000 --record-size 1024 --acks 1 --batch-size 1000000
measure "--dev, log.flush.before.ack" "produce, 6 partitions, acks=1, 1 KiB, 1 MB batches" 1024000000 -- produce --topic s6big --records 1000000 --record-size 1024 --acks 1 --batch-size 1000000
sync; BENCH_ACKS=all BENCH_PRODUCE_ONLY=1 "$venv/bin/python" scripts/bench_broker.py "$bootstrap" 1024 1000000 1 "--dev, log.flush.before.ack, confluent-kafka" "$dev" >>"$rows"
tail -n 1 "$rows" >&2
kill "$dev"; wait "$dev" 2>/dev/null || true

# Three controllers and three brokers.
cluster_id=$("$bin/odradek-storage" random-uuid)
cports=("$(free_port)" "$(free_port)" "$(free_port)")
voters="100@127.0.0.1:${cports[0]},101@127.0.0.1:${cports[1]},102@127.0.0.1:${cports[2]}"
for i in 0 1 2; do
  printf 'node.id=%s\nprocess.roles=controller\ncontroller.quorum.voters=%s\nlisteners=CONTROLLER://127.0.0.1:%s\ncontroller.listener.names=CONTROLLER\nlog.dirs=%s\n' \
    $((100 + i)) "$voters" "${cports[$i]}" "$scratch/c$i" >"$scratch/c$i.properties"
  "$bin/odradek-storage" format -t "$cluster_id" -c "$scratch/c$i.properties" >/dev/null
  "$bin/odradek-controller" -c "$scratch/c$i.properties" 2>"$scratch/c$i.log" &
  pids+=("$!")
done
brokers=(); bootstrap=""
for b in 1 2 3; do
  bport=$(free_port)
  printf 'node.id=%s\nprocess.roles=broker\ncontroller.quorum.voters=%s\nlisteners=PLAINTEXT://127.0.0.1:%s\ncontroller.listener.names=CONTROLLER\nlog.dirs=%s\n' \
    "$b" "$voters" "$bport" "$scratch/b$b" >"$scratch/b$b.properties"
  "$bin/odradek-storage" format -t "$cluster_id" -c "$scratch/b$b.properties" >/dev/null
  "$bin/odradek-broker" -c "$scratch/b$b.properties" 2>"$scratch/b$b.log" &
  pids+=("$!"); brokers+=("$!")
  bootstrap="${bootstrap:+$bootstrap,}127.0.0.1:$bport"
done
for b in 1 2 3; do wait_ready "$scratch/b$b.log"; done
workloads "3 brokers" 1
# Replicated: one partition with three replicas, acks=1 and acks=all, then acks=all at half of
# its peak for the latency percentiles.
"$bin/odradek" --bootstrap-server "$bootstrap" topics create --topic r3one --partitions 1 --replication-factor 3 >/dev/null
"$bin/odradek" --bootstrap-server "$bootstrap" topics create --topic r3all --partitions 1 --replication-factor 3 >/dev/null
"$bin/odradek" --bootstrap-server "$bootstrap" topics create --topic r3half --partitions 1 --replication-factor 3 >/dev/null
measure "3 brokers, RF 3" "produce, 1 partition, acks=1, 1 KiB" 1024000000 -- produce --topic r3one --records 1000000 --record-size 1024 --acks 1
measure "3 brokers, RF 3" "produce, 1 partition, acks=all, 1 KiB" 1024000000 -- produce --topic r3all --records 1000000 --record-size 1024 --acks -1
peak=$(tail -n 1 "$rows" | awk -F'|' '{gsub(/[ ,]/, "", $4); print $4}')
rate=$((peak / 2))
measure "3 brokers, RF 3" "produce, 1 partition, acks=all, 1 KiB, asked ${rate} records/s (half of peak)" $((rate * 10 * 1024)) -- \
  produce --topic r3half --records $((rate * 10)) --record-size 1024 --acks -1 --throughput "$rate"
pid_list=$(IFS=,; echo "${brokers[*]}")
sync; "$venv/bin/python" scripts/bench_broker.py "$bootstrap" 1024 1000000 6 "3 brokers, confluent-kafka" "$pid_list" >>"$rows"
# The same replication comparison through librdkafka (acks=all, up to 1 MB batches and many
# requests in flight, as its defaults): RF 1 against RF 3 on one partition.
for rf in 1 3; do
  sync
  BENCH_ACKS=all BENCH_RF=$rf BENCH_PRODUCE_ONLY=1 "$venv/bin/python" scripts/bench_broker.py \
    "$bootstrap" 1024 1000000 1 "3 brokers, confluent-kafka" "$pid_list" >>"$rows"
done

section="$scratch/section.md"
{
  echo "Run of $(date +%Y-%m-%d), commit $(git rev-parse --short HEAD), $(nproc) cores; raw disk write"
  echo "(\`dd bs=1M count=2048 conv=fdatasync\`, same run): $dd_rate."
  echo
  echo "| cluster | workload | records/s | MB/s | latency, ms (avg / max unless named) | broker CPU s per GB |"
  echo "|---|---|---|---|---|---|"
  cat "$rows"
} >"$section"
if [ "${1:-}" = "--no-write" ]; then
  cat "$section"
else
  python3 - "$section" <<'PY'
import sys
section = open(sys.argv[1]).read()
begin, end = "<!-- bench.sh begin -->", "<!-- bench.sh end -->"
text = open("BENCHMARKS.md").read()
head, rest = text.split(begin, 1)
_, tail = rest.split(end, 1)
open("BENCHMARKS.md", "w").write(f"{head}{begin}\n{section}{end}{tail}")
PY
  cat "$section"
  echo "written to BENCHMARKS.md" >&2
fi
