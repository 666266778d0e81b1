#!/usr/bin/env bash
# The durability test of compat/test_durability.py for many rounds (default 100), cycling its
# faults (kill -9 of a partition leader, kill -9 of the active controller, SIGSTOP of a leader,
# a rolling restart by SIGTERM) on one tutorial cluster (three combined nodes, RF 3,
# min.insync.replicas=2) under a confluent-kafka acks=all load; prints one line per round
# (acknowledged / lost / moved / duplicated-by-broker / outage) and fails at the first round that
# loses or moves an acknowledged record.
#
# usage: scripts/durability.sh [ROUNDS]     (CI runs one round of each fault through the suite)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-100}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/odradek/target}"
venv="${ODRADEK_VENV:-$HOME/.cache/odradek/venv}"
[ -x "$venv/bin/python" ] || { python3 -m venv "$venv"; "$venv/bin/pip" install -q -r compat/requirements.txt; }
cargo build --workspace --bins --quiet
DURABILITY_ROUNDS="$rounds" ODRADEK_BIN_DIR="$CARGO_TARGET_DIR/debug" \
  "$venv/bin/pytest" compat/test_durability.py -p no:warnings -q -s -k survive
