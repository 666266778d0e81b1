#!/usr/bin/env bash
# README command one: a single-node Odradek cluster on 127.0.0.1:9092 (controller on 9093), data
# under ./odradek-data, formatted on the first start. Installs the build's system packages first.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
exec cargo run --release --bin odradek-broker -- --dev "$@"
