//! Why a record cannot be replayed.

/// A record that does not fit the image it is replayed against. The active controller only
/// writes records that replay, so on a standby or broker this means a corrupt or mis-ordered log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    /// The record envelope carries no record.
    #[error("empty metadata record at offset {offset}")]
    EmptyRecord {
        /// Log offset of the record.
        offset: i64,
    },
    /// A record names a broker that is not registered (or with another epoch).
    #[error("record at offset {offset} names broker {broker_id} with epoch {epoch}, which is not registered")]
    UnknownBroker {
        /// Log offset of the record.
        offset: i64,
        /// The broker id.
        broker_id: i32,
        /// The epoch named.
        epoch: i64,
    },
    /// A record names a topic id that does not exist.
    #[error("record at offset {offset} names unknown topic id {topic_id}")]
    UnknownTopic {
        /// Log offset of the record.
        offset: i64,
        /// The topic id.
        topic_id: String,
    },
    /// A partition change for a partition that does not exist.
    #[error("record at offset {offset} changes unknown partition {topic}-{partition}")]
    UnknownPartition {
        /// Log offset of the record.
        offset: i64,
        /// The topic name.
        topic: String,
        /// The partition index.
        partition: i32,
    },
    /// A topic record whose name or id is taken.
    #[error(
        "record at offset {offset} creates topic {name} ({topic_id}), but the name or id exists"
    )]
    TopicExists {
        /// Log offset of the record.
        offset: i64,
        /// The topic name.
        name: String,
        /// The topic id.
        topic_id: String,
    },
    /// A field that cannot be valid (bad id length, negative partition, unknown enum value, a
    /// producer id block that goes backwards).
    #[error("invalid record at offset {offset}: {reason}")]
    InvalidRecord {
        /// Log offset of the record.
        offset: i64,
        /// What was wrong.
        reason: String,
    },
    /// Bytes that do not decode as a record batch or snapshot.
    #[error("cannot decode metadata: {0}")]
    Decode(String),
}
