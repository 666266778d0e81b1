//! `--dev`: a single combined node on 127.0.0.1:9092 (controller on 127.0.0.1:9093), data under
//! one directory, formatted with a new cluster id on the first start.

use std::collections::BTreeMap;
use std::path::Path;

use odradek_common::Uuid;
use odradek_controller::dirs::{self, StorageError};

use crate::config::BrokerConfig;

/// The properties of the development node.
pub fn dev_properties(data_dir: &Path) -> BTreeMap<String, String> {
    [
        ("node.id", "1".to_string()),
        ("process.roles", "broker,controller".into()),
        ("controller.quorum.voters", "1@127.0.0.1:9093".into()),
        (
            "listeners",
            "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093".into(),
        ),
        ("controller.listener.names", "CONTROLLER".into()),
        ("log.dirs", data_dir.display().to_string()),
        ("num.partitions", "1".into()),
        ("default.replication.factor", "1".into()),
        // As Kafka's development server.properties: one node holds the offsets topic, and the
        // first rebalance does not wait for more members.
        ("offsets.topic.replication.factor", "1".into()),
        ("transaction.state.log.replication.factor", "1".into()),
        ("transaction.state.log.min.isr", "1".into()),
        (
            "share.coordinator.state.topic.replication.factor",
            "1".into(),
        ),
        ("share.coordinator.state.topic.min.isr", "1".into()),
        ("group.initial.rebalance.delay.ms", "0".into()),
        // See inside: Prometheus metrics and the web console.
        ("metrics.listener", "http://127.0.0.1:9644".into()),
        ("console.listener", "http://127.0.0.1:8080".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// Formats the node's directories if they are not formatted yet; returns the cluster id.
pub fn ensure_formatted(config: &BrokerConfig) -> Result<String, StorageError> {
    match dirs::check_formatted(&config.node) {
        Ok(id) => Ok(id),
        Err(StorageError::NotFormatted(_)) => {
            let id = Uuid::random().to_string();
            dirs::format(&config.node, &id, true, &[])?;
            tracing::info!(cluster_id = %id, "formatted a new development cluster");
            Ok(id)
        }
        Err(e) => Err(e),
    }
}
