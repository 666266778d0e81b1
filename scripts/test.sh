#!/usr/bin/env bash
# The one command that runs every check and test Odradek has, on a fresh machine or a warm one.
# It installs what the tests need, then: format check, clippy (warnings denied), the layering
# rule, cargo-deny (licenses, bans, sources), the binaries, all tests (unit, property,
# integration, process-level cluster tests, doc), a short pass of every fuzz target, the
# examples, and one quick pass over each benchmark.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
step() { printf '\n==> %s (%ss)\n' "$*" "$(( $(date +%s) - start ))"; }

# Reuse build artefacts across runs on one machine: a target directory outside the clone.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/odradek/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
# Property tests: a fixed number of cases in CI (override for longer local runs).
export PROPTEST_CASES="${PROPTEST_CASES:-64}"

step "toolchain"
cargo --version
cargo fmt --version >/dev/null 2>&1 || { echo "rustfmt is missing from the Rust toolchain" >&2; exit 1; }
cargo clippy --version >/dev/null 2>&1 || { echo "clippy is missing from the Rust toolchain" >&2; exit 1; }

step "system packages"
scripts/install-deps.sh --test

step "cargo-deny (installed into ~/.cargo/bin once per machine)"
if ! command -v cargo-deny >/dev/null 2>&1; then
  cargo install cargo-deny --locked --version 0.20.2
fi

step "format"
cargo fmt --all -- --check

step "clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "layering"
scripts/check-layering.sh

step "cargo deny"
cargo deny --workspace --log-level error check licenses bans sources

step "binaries (the cluster tests start them as processes)"
cargo build --workspace --bins --locked

step "tests"
cargo test --workspace --all-targets --locked
cargo test --workspace --doc --locked

step "fuzz: a short pass of every target over its seeds and regressions (scripts/fuzz.sh)"
scripts/fuzz.sh "${ODRADEK_FUZZ_SECONDS:-10}"

step "real-client compatibility suite (kcat, confluent-kafka, kafka-python)"
venv="${ODRADEK_VENV:-$HOME/.cache/odradek/venv}"
stamp="$venv/.requirements"
if ! cmp -s compat/requirements.txt "$stamp" 2>/dev/null; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r compat/requirements.txt
  cp compat/requirements.txt "$stamp"
fi
ODRADEK_BIN_DIR="$CARGO_TARGET_DIR/debug" "$venv/bin/pytest" compat -p no:warnings -q

step "examples"
cargo run --locked --quiet --example embedded_log >/dev/null

step "done"
