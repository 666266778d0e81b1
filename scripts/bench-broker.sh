#!/usr/bin/env bash
# Broker throughput with a librdkafka client: builds release binaries, starts a combined node on
# free loopback ports in a scratch directory, measures this machine's raw sequential write rate,
# then produces and consumes 100 B and 1 KiB records (one partition, acks=1) and 1 KiB records over
# 6 partitions. Prints a Markdown table for BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/odradek/target}"
venv="${ODRADEK_VENV:-$HOME/.cache/odradek/venv}"
[ -x "$venv/bin/python" ] || { python3 -m venv "$venv"; "$venv/bin/pip" install -q -r compat/requirements.txt; }
cargo build --release --workspace --bins --quiet
bin="$CARGO_TARGET_DIR/release"
scratch=$(mktemp -d "${TMPDIR:-/tmp}/odradek-bench.XXXXXX")
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$scratch/node.properties" <<PROPS
node.id=1
process.roles=broker,controller
controller.quorum.voters=1@127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
controller.listener.names=CONTROLLER
log.dirs=$scratch/data
PROPS
"$bin/odradek-storage" format -t "$("$bin/odradek-storage" random-uuid)" -c "$scratch/node.properties" >/dev/null
"$bin/odradek-broker" -c "$scratch/node.properties" 2>"$scratch/node.log" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$scratch"' EXIT
until grep -q "broker ready" "$scratch/node.log"; do sleep 0.1; done

dd_out=$(dd if=/dev/zero of="$scratch/dd" bs=1M count=2048 conv=fdatasync 2>&1 | tail -n 1)
rm -f "$scratch/dd"
echo "| workload | records/s | MB/s |"
echo "|---|---|---|"
echo "| raw disk write, dd bs=1M count=2048 conv=fdatasync | | $(echo "$dd_out" | awk -F, '{print $NF}' | xargs) |"
"$venv/bin/python" scripts/bench_broker.py "127.0.0.1:$port" 100 2000000
"$venv/bin/python" scripts/bench_broker.py "127.0.0.1:$port" 1024 1000000
"$venv/bin/python" scripts/bench_broker.py "127.0.0.1:$port" 1024 1000000 6
cpu=$(ps -o times= -p $pid | xargs)
echo
echo "broker CPU time for the whole run: ${cpu}s"
