//! `odradek-server`: the node runtime, where every layer meets (L3).
//!
//! # What it owns
//! The broker: its configuration ([`config`]), the controller client, registration and
//! heartbeats ([`lifecycle`]), the metadata cache that replays the controllers' committed log
//! into this broker's `MetadataImage` ([`metadata_cache`]), the replica manager that opens,
//! recovers and deletes partition replicas as metadata says, drives each to leader or follower
//! and runs retention ([`replicas`]), the replica fetchers of its followers ([`fetcher`]), the
//! ISR changes its leaders propose ([`isr`]), the replication throttles ([`throttle`]), the group
//! coordinator ([`groups`]), and the Kafka
//! request handlers, one file per API ([`handlers`]). [`runtime::run_node`] runs a broker, a
//! controller or both in one process; [`dev`] holds the `--dev` defaults; [`alloc`] is the
//! allocator `odradek-broker` runs on; [`disk`] reads a log directory's file system capacity.
//! What an operator sees: the broker's metrics ([`metrics`]: data path counters and the
//! scrape-time collector, consumer lag, with [`lag`] for partitions hosted elsewhere), the web
//! console ([`console`]) and the series it plots ([`history`]).
//!
//! # Threading
//! Each hosted replica's state has one `std::sync::Mutex`, held for one call into the
//! replication core (an append to the page cache at most); fetches read through the log's
//! lock-free readers and the published high watermark; waiters are woken per partition.
//! Metadata images are shared as `Arc` through a `watch`. No lock is held across an `.await`.

pub use odradek_frontend::alloc;
pub mod config;
pub mod console;
pub mod controller_client;
pub mod coordinator_runtime;
pub mod dev;
pub mod disk;
pub mod fetch_session;
pub mod fetcher;
pub(crate) mod group_sync;
pub mod groups;
pub mod handlers;
pub mod history;
pub mod isr;
pub mod lag;
pub mod lifecycle;
pub mod metadata_cache;
pub mod metrics;
pub mod producer_ids;
pub mod quotas;
pub mod replicas;
pub mod runtime;
pub mod security;
pub mod share_coordinator;
pub mod share_partitions;
pub mod throttle;
pub mod transactions;

pub use config::BrokerConfig;
pub use runtime::run_node;

/// Resolves once `stop` turns true (or its sender is gone); holds no guard across the await.
pub(crate) async fn until_stopped(stop: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}
