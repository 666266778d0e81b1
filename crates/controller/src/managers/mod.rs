//! Control managers: pure functions from (current image, request) to (records, response). They
//! never mutate: the records change the image once the quorum commits them and they are
//! replayed (STYLE.md practice 2). Randomness (new topic ids) and time come in as arguments.

pub mod acls;
pub mod broker_configs;
pub mod cluster;
pub mod configs;
pub mod elections;
pub mod partition_change;
pub mod placement;
pub mod producer_ids;
pub mod quotas;
pub mod reassignment;
pub mod replication;
pub mod scram;

use odradek_common::ErrorCode;
use odradek_metadata::proto::{metadata_record::Record, MetadataRecord};

/// What a command produced: the records to commit and the response to send once they commit.
#[derive(Debug, Clone, PartialEq)]
pub struct ControllerResult<T> {
    /// Records to propose (empty: nothing to commit, answer at once).
    pub records: Vec<MetadataRecord>,
    /// The response.
    pub response: T,
}

impl<T> ControllerResult<T> {
    /// A result with no records.
    pub fn answer(response: T) -> Self {
        Self {
            records: Vec::new(),
            response,
        }
    }
}

/// Cluster-wide settings the managers consult (from the controller's configuration).
#[derive(Debug, Clone, PartialEq)]
pub struct ControllerSettings {
    /// `cluster.id` of the quorum.
    pub cluster_id: String,
    /// `num.partitions` (default 1).
    pub num_partitions: i32,
    /// `default.replication.factor` (default 1).
    pub default_replication_factor: i16,
    /// `unclean.leader.election.enable` (default false).
    pub unclean_leader_election_enable: bool,
    /// `broker.session.timeout.ms` (default 9000).
    pub broker_session_timeout_ms: i64,
    /// Producer ids handed out per AllocateProducerIds (Kafka: 1000).
    pub producer_id_block_size: i64,
    /// `auto.leader.rebalance.enable` (default true).
    pub auto_leader_rebalance_enable: bool,
    /// `leader.imbalance.check.interval.seconds` (default 300).
    pub leader_imbalance_check_interval_seconds: u64,
    /// `leader.imbalance.per.broker.percentage` (default 10).
    pub leader_imbalance_per_broker_percentage: u32,
}

impl Default for ControllerSettings {
    fn default() -> Self {
        Self {
            cluster_id: String::new(),
            num_partitions: 1,
            default_replication_factor: 1,
            unclean_leader_election_enable: false,
            broker_session_timeout_ms: 9000,
            producer_id_block_size: 1000,
            auto_leader_rebalance_enable: true,
            leader_imbalance_check_interval_seconds: 300,
            leader_imbalance_per_broker_percentage: 10,
        }
    }
}

/// `image` with `records` replayed, for a command that builds several changes in turn, each on
/// the state the previous ones make (as Kafka's controller replays into its timeline state).
pub(crate) fn fold(
    image: &odradek_metadata::MetadataImage,
    records: &[MetadataRecord],
) -> odradek_metadata::MetadataImage {
    let mut delta = odradek_metadata::MetadataDelta::new(std::sync::Arc::new(image.clone()));
    for r in records {
        if let Err(e) = delta.replay(image.offset, r) {
            // The managers' own records replay; if one does not, the next change is built
            // on the state without it, as before.
            tracing::error!(error = %e, "a control manager's record does not replay");
        }
    }
    delta.apply()
}

pub(crate) fn rec(record: Record) -> MetadataRecord {
    MetadataRecord {
        version: 0,
        record: Some(record),
    }
}

/// A Kafka error as (code, message) for responses.
pub(crate) fn err(code: ErrorCode, message: impl Into<String>) -> (i32, String) {
    (i32::from(code.code()), message.into())
}

pub(crate) const OK: (i32, String) = (0, String::new());

/// STALE_BROKER_EPOCH unless `broker_id` is registered with exactly `epoch`.
pub(crate) fn check_broker_epoch(
    image: &odradek_metadata::MetadataImage,
    broker_id: i32,
    epoch: i64,
) -> Result<(), (i32, String)> {
    match image.cluster.brokers.get(&broker_id) {
        Some(b) if b.epoch == epoch => Ok(()),
        _ => Err(err(
            ErrorCode::StaleBrokerEpoch,
            format!("broker {broker_id} epoch {epoch} is not current"),
        )),
    }
}
