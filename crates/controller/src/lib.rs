//! `odradek-controller`: the KRaft-style controller.
//!
//! # What it owns
//! - Control managers ([`managers`]): pure functions from (image, request) to
//!   `ControllerResult { records, response }` for broker registration, heartbeats and fencing,
//!   topics and partitions (rack-aware placement or manual assignments, AlterPartition, leader
//!   election from the ISR, unclean election only when enabled or asked), partition
//!   reassignment, ElectLeaders and the preferred leader rebalance, UnregisterBroker, configs
//!   (broker keys checked against one table) and producer-id blocks. Every partition change goes
//!   through one builder (`managers::partition_change`). They never mutate.
//! - The metadata state machine ([`state::MetadataStateMachine`]) the quorum feeds: committed
//!   batches replay into the `MetadataImage` through the one delta path.
//! - The active controller loop ([`active`]): runs commands one at a time against the latest
//!   image, proposes their records, answers when they commit; fences brokers whose session
//!   expired; rebalances leaders on `leader.imbalance.check.interval.seconds`.
//! - The gRPC `ControllerService` ([`service`], including the quorum's voter changes) and the
//!   node runtime ([`runtime`]), plus the
//!   node configuration ([`config`]) and directory formatting ([`dirs`]) used by the binaries.
//!
//! # Layering
//! Layer L2 of DESIGN.md: depends on `odradek-common`, `odradek-log` (topic config validation),
//! `odradek-metadata` and `odradek-quorum`.
//!
//! # Threading
//! The control managers are synchronous and take everything as arguments. The active loop is one
//! task (commands are serialised by its channel); images are shared as `Arc` through a `watch`.

pub mod active;
pub mod config;
pub mod dirs;
pub mod envelope;
pub mod managers;
pub mod metrics;
pub mod runtime;
pub mod service;
pub mod state;

/// The generated gRPC types (`odradek.controller.v1`).
#[allow(missing_docs, clippy::all, missing_debug_implementations)]
pub mod pb {
    tonic::include_proto!("odradek.controller.v1");
}

pub use config::{ConfigError, NodeConfig};
pub use runtime::{run_controller, RunError};
