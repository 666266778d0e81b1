//! Cluster tests against real processes started from the built binaries (one test binary, one
//! module per subject). Build the binaries first: `cargo build --workspace --bins`
//! (`scripts/test.sh` does).

mod bad_input;
mod cli;
mod consumer_groups;
mod controllers;
mod fetch_sessions;
mod groups;
mod harness;
mod idempotence;
mod lifecycle;
mod produce;
mod share_groups;
mod transactions;
