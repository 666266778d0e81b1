//! `odradek-server`: the node runtime, where every layer meets (L3).
//!
//! # What it owns
//! The broker: its configuration ([`config`]), the controller client, registration and
//! heartbeats ([`lifecycle`]), the metadata follower that replays the controllers' committed log
//! into this broker's `MetadataImage` ([`follower`]), the log manager that opens, recovers and
//! deletes partition logs as metadata says and runs retention ([`logs`]), and the Kafka request
//! handlers, one file per API ([`handlers`]). [`runtime::run_node`] runs a broker, a controller
//! or both in one process; [`dev`] holds the `--dev` defaults.
//!
//! # Threading
//! Each partition log has one `std::sync::Mutex` held only for an append or a retention pass;
//! fetches read through the log's lock-free readers. Metadata images are shared as `Arc` through a
//! `watch`. No lock is held across an `.await`.

pub mod alloc;
pub mod config;
pub mod controller_client;
pub mod dev;
pub mod fetcher;
pub mod follower;
pub mod groups;
pub mod handlers;
pub mod isr;
pub mod lifecycle;
pub mod replicas;
pub mod runtime;

pub use config::BrokerConfig;
pub use runtime::run_node;

/// Resolves once `stop` turns true (or its sender is gone); holds no guard across the await.
pub(crate) async fn until_stopped(stop: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}
