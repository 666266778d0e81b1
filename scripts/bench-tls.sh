#!/usr/bin/env bash
# TLS beside plaintext (BENCHMARKS.md, "TLS"): one release broker with a PLAINTEXT and an SSL
# listener (PEM key store from a throwaway CA made with the compat suite's certs.py), and in one
# run, on each listener: `odradek perf produce` of 1 KiB records (1 and 6 partitions, acks=1),
# `odradek perf consume` of the 6-partition topic, and a librdkafka (confluent-kafka) producer and
# consumer at their default settings. Each row carries the broker's CPU seconds per GB moved.
#
# usage: scripts/bench-tls.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/odradek/target}"
venv="${ODRADEK_VENV:-$HOME/.cache/odradek/venv}"
[ -x "$venv/bin/python" ] || { python3 -m venv "$venv"; "$venv/bin/pip" install -q -r compat/requirements.txt; }
cargo build --release --workspace --bins --quiet
bin="$CARGO_TARGET_DIR/release"
scratch=$(mktemp -d "${TMPDIR:-/tmp}/odradek-bench-tls.XXXXXX")
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$scratch"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
hz=$(getconf CLK_TCK)
ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }

PYTHONPATH=compat "$venv/bin/python" -c "from certs import Certs; from pathlib import Path; Certs(Path('$scratch/certs'))"
plain=$(free_port); ssl=$(free_port); ctl=$(free_port)
cat >"$scratch/node.properties" <<PROPS
node.id=1
process.roles=broker,controller
controller.quorum.voters=1@127.0.0.1:$ctl
listeners=PLAINTEXT://127.0.0.1:$plain,SSL://127.0.0.1:$ssl,CONTROLLER://127.0.0.1:$ctl
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,SSL:SSL,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
log.dirs=$scratch/data
offsets.topic.replication.factor=1
ssl.keystore.type=PEM
ssl.keystore.location=$scratch/certs/broker.pem
ssl.truststore.location=$scratch/certs/ca.pem
PROPS
printf 'security.protocol=SSL\nssl.truststore.location=%s\n' "$scratch/certs/ca.pem" >"$scratch/ssl.properties"
: >"$scratch/none.properties"
"$bin/odradek-storage" format -t "$("$bin/odradek-storage" random-uuid)" -c "$scratch/node.properties" >/dev/null
"$bin/odradek-broker" -c "$scratch/node.properties" 2>"$scratch/node.log" &
pid=$!
until grep -q "broker ready" "$scratch/node.log"; do sleep 0.1; done

row() { # LABEL WORKLOAD BYTES -- command...
  local label=$1 workload=$2 bytes=$3; shift 4
  local before after out
  before=$(ticks)
  out=$("$@")
  after=$(ticks)
  python3 - "$label" "$workload" "$(( after - before ))" "$hz" "$bytes" "$out" <<'PY'
import re, sys
label, workload, t, hz, nbytes, out = sys.argv[1:]
cpu = int(t) / int(hz) / (int(nbytes) / 1e9)
last = out.strip().splitlines()[-1]
m = re.search(r"([\d.]+) records/sec \(([\d.]+) MB/sec\)", last)
if m:
    rate, mb = float(m.group(1)), float(m.group(2))
else:
    f = [x.strip() for x in last.split(",")]
    rate, mb = float(f[5]), float(f[3])
print(f"| {label} | {workload} | {rate:,.0f} | {mb:,.1f} | {cpu:.2f} |")
PY
}

echo "| listener | workload | records/s | MB/s | broker CPU s/GB |"
echo "|---|---|---|---|---|"
for l in PLAINTEXT SSL; do
  if [ "$l" = SSL ]; then port=$ssl; cfg="$scratch/ssl.properties"; else port=$plain; cfg="$scratch/none.properties"; fi
  p="$bin/odradek --bootstrap-server 127.0.0.1:$port --command-config $cfg"
  $p topics create --topic "one-$l" --partitions 1 --replication-factor 1 >/dev/null
  $p topics create --topic "six-$l" --partitions 6 --replication-factor 1 >/dev/null
  row "$l" "odradek perf produce, 1 partition, acks=1, 1 KiB" 1024000000 -- $p perf produce --topic "one-$l" --records 1000000 --record-size 1024 --acks 1
  row "$l" "odradek perf produce, 6 partitions, acks=1, 1 KiB" 1024000000 -- $p perf produce --topic "six-$l" --records 1000000 --record-size 1024 --acks 1
  row "$l" "odradek perf consume, 6 partitions, 1 KiB" 1024000000 -- $p perf consume --topic "six-$l" --records 1000000
  extra="{}"
  [ "$l" = SSL ] && extra="{\"security.protocol\": \"SSL\", \"ssl.ca.location\": \"$scratch/certs/ca.pem\"}"
  row "$l" "librdkafka produce (defaults), 1 partition, 1 KiB" 512000000 -- "$venv/bin/python" - "127.0.0.1:$port" "rd-$l" "$extra" <<'PY'
import json, sys, time
from confluent_kafka import Producer
bootstrap, topic, extra = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
p = Producer({"bootstrap.servers": bootstrap, **extra})
n, v = 500_000, b"x" * 1024
start = time.time()
for i in range(n):
    while True:
        try:
            p.produce(topic, value=v, partition=0)
            break
        except BufferError:
            p.poll(0.01)
p.flush(120)
s = time.time() - start
print(f"{n} records sent, {n / s:.1f} records/sec ({n * 1024 / s / 1e6:.2f} MB/sec)")
PY
  row "$l" "librdkafka consume (defaults), 1 partition, 1 KiB" 512000000 -- "$venv/bin/python" - "127.0.0.1:$port" "rd-$l" "$extra" <<'PY'
import json, sys, time
from confluent_kafka import Consumer, TopicPartition
bootstrap, topic, extra = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
c = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench", **extra})
c.assign([TopicPartition(topic, 0, 0)])
n, got, start = 500_000, 0, time.time()
while got < n:
    for m in c.consume(10000, 1.0):
        if m.error() is None:
            got += 1
s = time.time() - start
print(f"{got} records received, {got / s:.1f} records/sec ({got * 1024 / s / 1e6:.2f} MB/sec)")
PY
done
