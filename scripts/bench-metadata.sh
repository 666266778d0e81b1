#!/usr/bin/env bash
# Metadata at scale: three controller and three broker processes (127.0.0.1, scratch
# directories) are filled with TOPICS topics of PARTITIONS partitions (default 10,000 x 10 =
# 100,000 partitions) at replication factor RF (default 1), with `odradek perf create-topics`
# (16 requests in flight). Topic creation (10 partitions, one request at a time, then 16 at a
# time) is measured on the empty cluster and again on the full one, where it must stay under
# 50 ms. Prints each perf line, how long the brokers take to create every replica's log, then
# the processes' memory and open descriptors.
#
# Then the cluster idles for 30 s and each broker's CPU time over it is printed: with RF > 1
# that is the cost of the followers' fetches (incremental fetch sessions, KIP-227, or full
# fetches when BROKER_PROPS="max.incremental.fetch.session.cache.slots=0").
# BROKER_PROPS: extra broker properties, one "key=value" per word.
#
# usage: scripts/bench-metadata.sh [TOPICS [PARTITIONS [RF]]]
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/odradek/target}"
topics=${1:-10000}
partitions=${2:-10}
rf=${3:-1}
[ -n "${ODRADEK_BIN:-}" ] || cargo build --release --workspace --bins --quiet
bin="${ODRADEK_BIN:-$CARGO_TARGET_DIR/release}"
cli="$CARGO_TARGET_DIR/release/odradek"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

scratch=$(mktemp -d "${TMPDIR:-/tmp}/odradek-meta.XXXXXX")
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$scratch"
}
trap cleanup EXIT

id=$("$bin/odradek-storage" random-uuid)
cports=("$(free_port)" "$(free_port)" "$(free_port)")
voters="100@127.0.0.1:${cports[0]},101@127.0.0.1:${cports[1]},102@127.0.0.1:${cports[2]}"
for i in 0 1 2; do
  printf 'node.id=%s\nprocess.roles=controller\ncontroller.quorum.voters=%s\nlisteners=CONTROLLER://127.0.0.1:%s\ncontroller.listener.names=CONTROLLER\nlog.dirs=%s\n' \
    $((100 + i)) "$voters" "${cports[$i]}" "$scratch/c$i" >"$scratch/c$i.properties"
  "$bin/odradek-storage" format -t "$id" -c "$scratch/c$i.properties" >/dev/null
  "$bin/odradek-controller" -c "$scratch/c$i.properties" 2>"$scratch/c$i.log" & pids+=("$!")
done
bootstrap=""
for b in 1 2 3; do
  port=$(free_port)
  printf 'node.id=%s\nprocess.roles=broker\ncontroller.quorum.voters=%s\nlisteners=PLAINTEXT://127.0.0.1:%s\ncontroller.listener.names=CONTROLLER\nlog.dirs=%s\n' \
    "$b" "$voters" "$port" "$scratch/b$b" >"$scratch/b$b.properties"
  for kv in ${BROKER_PROPS:-}; do echo "$kv" >>"$scratch/b$b.properties"; done
  "$bin/odradek-storage" format -t "$id" -c "$scratch/b$b.properties" >/dev/null
  "$bin/odradek-broker" -c "$scratch/b$b.properties" 2>"$scratch/b$b.log" & pids+=("$!")
  bootstrap="${bootstrap:+$bootstrap,}127.0.0.1:$port"
done
for b in 1 2 3; do until grep -q "broker ready" "$scratch/b$b.log"; do sleep 0.1; done; done

perf() { "$cli" --bootstrap-server "$bootstrap" perf create-topics --replication-factor "$rf" "$@"; }
probe() {
  echo "  one at a time:  $(perf --prefix "probe-$1" --topics 200 --partitions 10 --concurrency 1)"
  echo "  16 at a time:   $(perf --prefix "burst-$1" --topics 1000 --partitions 10 --concurrency 16)"
}
echo "== empty cluster (RF $rf)"
probe empty
echo "== filling: $topics topics x $partitions partitions"
start=$(date +%s)
echo "  $(perf --prefix fill --topics "$topics" --partitions "$partitions" --concurrency 16)"
echo "  filled in $(( $(date +%s) - start )) s"
# Brokers create the logs after the metadata commits; wait until every replica has its directory.
replicas=$(( (12000 + topics * partitions) * rf ))
hosted() { find "$scratch"/b1 "$scratch"/b2 "$scratch"/b3 -mindepth 1 -maxdepth 1 -type d -name '*-[0-9]*' | wc -l; }
until [ "$(hosted)" -ge "$replicas" ]; do sleep 1; done
echo "  every broker hosts its replicas ($replicas) $(( $(date +%s) - start )) s after the fill began"
echo "== full cluster: $(( topics * partitions + 12000 )) partitions and __consumer_offsets"
probe full
echo "== brokers: partition directories, and log lines at WARN or ERROR"
for b in 1 2 3; do
  echo "  broker $b: $(find "$scratch/b$b" -mindepth 1 -maxdepth 1 -type d | wc -l) directories, $(grep -cE ' (WARN|ERROR) ' "$scratch/b$b.log" || true) warnings"
done
replicas=$(( (24000 + topics * partitions) * rf ))
until [ "$(hosted)" -ge "$replicas" ]; do sleep 1; done
cpu() { awk '{print $14 + $15}' /proc/"$1"/stat; }
echo "== every replica hosted ($replicas); idle for 30 s: broker CPU seconds"
before=(); for p in "${pids[@]:3}"; do before+=("$(cpu "$p")"); done
sleep 30
i=0; for p in "${pids[@]:3}"; do
  echo "  broker $((i + 1)): $(awk -v a="${before[$i]}" -v b="$(cpu "$p")" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.2f", (b - a) / hz}') s"
  i=$((i + 1))
done
echo "== processes"
for p in "${pids[@]}"; do
  printf '  %-20s rss %6d MB  fds %6d\n' "$(tr '\0' ' ' </proc/"$p"/cmdline | awk '{print $1}' | xargs basename)-$p" \
    "$(( $(awk '/VmRSS/ {print $2}' /proc/"$p"/status) / 1024 ))" "$(ls /proc/"$p"/fd | wc -l)"
done
