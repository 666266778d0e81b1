#!/usr/bin/env bash
# Replication cost on a fresh cluster per measurement: three controller and three broker
# processes (127.0.0.1, scratch directories), one partition of RF 1 and one of RF 3, 1 KiB
# records, produced by `odradek perf` (16 KiB batches, 5 requests in flight: the Java producer's
# pipeline) and by confluent-kafka at librdkafka's defaults (acks=all, 1 MB batches). Each
# configuration runs ROUNDS times (default 2) on its own fresh cluster; prints one line per run.
# CONFIGS (default "perf:1:1 perf:3:all rdkafka:1:all rdkafka:3:all") lists CLIENT:RF:ACKS runs;
# clients: perf, perf-idem (`odradek perf produce --idempotent`), rdkafka (enable.idempotence=false), rdkafka-inflight5 (the same with
# max.in.flight=5, idempotence's pipeline), rdkafka-idem (enable.idempotence=true), rdkafka-txn
# (a transactional producer committing every 100 ms).
#
# usage: scripts/bench-replication.sh [ROUNDS [CONFIGS]]
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/odradek/target}"
venv="${ODRADEK_VENV:-$HOME/.cache/odradek/venv}"
[ -x "$venv/bin/python" ] || { python3 -m venv "$venv"; "$venv/bin/pip" install -q -r compat/requirements.txt; }
cargo build --release --workspace --bins --quiet
bin="$CARGO_TARGET_DIR/release"
rounds=${1:-2}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# One fresh cluster, one measurement: run CLIENT(perf|rdkafka) RF ACKS
run() {
  local client=$1 rf=$2 acks=$3 scratch pids=() bootstrap="" i b
  scratch=$(mktemp -d "${TMPDIR:-/tmp}/odradek-repl.XXXXXX")
  local id; id=$("$bin/odradek-storage" random-uuid)
  local cports=("$(free_port)" "$(free_port)" "$(free_port)")
  local voters="100@127.0.0.1:${cports[0]},101@127.0.0.1:${cports[1]},102@127.0.0.1:${cports[2]}"
  for i in 0 1 2; do
    printf 'node.id=%s\nprocess.roles=controller\ncontroller.quorum.voters=%s\nlisteners=CONTROLLER://127.0.0.1:%s\ncontroller.listener.names=CONTROLLER\nlog.dirs=%s\n' \
      $((100 + i)) "$voters" "${cports[$i]}" "$scratch/c$i" >"$scratch/c$i.properties"
    "$bin/odradek-storage" format -t "$id" -c "$scratch/c$i.properties" >/dev/null
    "$bin/odradek-controller" -c "$scratch/c$i.properties" 2>"$scratch/c$i.log" & pids+=("$!")
  done
  for b in 1 2 3; do
    local port; port=$(free_port)
    printf 'node.id=%s\nprocess.roles=broker\ncontroller.quorum.voters=%s\nlisteners=PLAINTEXT://127.0.0.1:%s\ncontroller.listener.names=CONTROLLER\nlog.dirs=%s\n' \
      "$b" "$voters" "$port" "$scratch/b$b" >"$scratch/b$b.properties"
    "$bin/odradek-storage" format -t "$id" -c "$scratch/b$b.properties" >/dev/null
    "$bin/odradek-broker" -c "$scratch/b$b.properties" 2>"$scratch/b$b.log" & pids+=("$!")
    bootstrap="${bootstrap:+$bootstrap,}127.0.0.1:$port"
  done
  for b in 1 2 3; do until grep -q "broker ready" "$scratch/b$b.log"; do sleep 0.1; done; done
  "$bin/odradek" --bootstrap-server "$bootstrap" topics create --topic t --partitions 1 --replication-factor "$rf" >/dev/null
  sleep 1
  local out
  if [ "$client" = perf ] || [ "$client" = perf-idem ]; then
    out=$("$bin/odradek" --bootstrap-server "$bootstrap" perf produce --topic t --records 1000000 \
      --record-size 1024 --acks "$([ "$acks" = all ] && echo -1 || echo "$acks")" \
      $([ "$client" = perf-idem ] && echo --idempotent) | tail -n 1 | cut -d, -f2,3)
  else
    out=$("$venv/bin/python" - "$bootstrap" "$acks" "$client" <<'PY' 2>/dev/null
import sys, time
from confluent_kafka import Producer
config = {"bootstrap.servers": sys.argv[1], "acks": sys.argv[2], "enable.idempotence": False}
mode = sys.argv[3]
if mode == "rdkafka-inflight5":
    config["max.in.flight"] = 5
elif mode == "rdkafka-idem":
    config["enable.idempotence"] = True
elif mode == "rdkafka-txn":
    config.update({"enable.idempotence": True, "transactional.id": "bench"})
p = Producer(config)
txn = mode == "rdkafka-txn"
if txn:
    p.init_transactions(30)
    p.begin_transaction()
    opened = time.time()
n, v, t, commits = 500_000, b"x" * 1024, time.time(), 0
for i in range(n):
    while True:
        try:
            p.produce("t", value=v, partition=0); break
        except BufferError:
            p.poll(0.005)
    if i % 5000 == 0:
        p.poll(0)
    if txn and time.time() - opened >= 0.1:
        p.commit_transaction(30)
        commits += 1
        p.begin_transaction()
        opened = time.time()
if txn:
    p.commit_transaction(30)
    commits += 1
assert p.flush(120) == 0
el = time.time() - t
extra = f", {commits} commits" if txn else ""
print(f" {n / el:.1f} records/sec ({n * 1024 / el / 1e6:.2f} MB/sec){extra}")
PY
)
  fi
  echo "$client RF $rf acks=$acks:$out"
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$scratch"
}

configs=${2:-perf:1:1 perf:3:all rdkafka:1:all rdkafka:3:all}
for r in $(seq "$rounds"); do
  for c in $configs; do
    IFS=: read -r client rf acks <<<"$c"
    run "$client" "$rf" "$acks"
  done
done
