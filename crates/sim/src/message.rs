//! What nodes send each other. The shapes follow the real protocols (the controller's gRPC
//! messages as they are; Kafka's Fetch and Produce reduced to one partition each), so the
//! cores see the inputs a running cluster gives them.

use bytes::Bytes;
use odradek_common::Uuid;
use odradek_controller::pb;
use odradek_metadata::proto::MetadataRecord;

/// A node of the simulated cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Node {
    /// A controller (a quorum voter), by raft id.
    Controller(u64),
    /// The operator's admin client (creates the topic).
    Admin,
    /// A broker, by id.
    Broker(i32),
    /// A producer, by index.
    Client(usize),
    /// A consumer, by index.
    Consumer(usize),
    /// A transactional copy loop, by index.
    Copier(usize),
}

/// A producer id and epoch.
pub type ProducerIdEpoch = (i64, i16);

/// A topic partition.
pub type TopicPartition = (Uuid, i32);

/// A follower's fetch of one partition (Kafka's Fetch with `replica_id`, one partition).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaFetch {
    /// Which of the follower's fetches of this partition it is: a fetcher handles only the
    /// answer to the request it sent last (the server's fetcher awaits each response on its
    /// connection before sending the next request).
    pub fetch_id: u64,
    /// The partition.
    pub partition: TopicPartition,
    /// The fetching broker.
    pub replica: i32,
    /// The leader epoch the follower knows.
    pub current_leader_epoch: i32,
    /// Its log end offset.
    pub fetch_offset: i64,
    /// The epoch of its last batch (-1: none).
    pub last_fetched_epoch: i32,
    /// Its log start offset.
    pub log_start_offset: i64,
}

/// The leader's answer to a [`ReplicaFetch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaFetchAnswer {
    /// Kafka error code (0: none).
    pub error_code: i16,
    /// The leader's high watermark (-1 when unknown).
    pub high_watermark: i64,
    /// The leader's log start offset (-1 when unknown).
    pub log_start_offset: i64,
    /// Where the follower's log diverges, if it does.
    pub diverging: Option<(i32, i64)>,
    /// Batches from the fetch offset.
    pub records: Bytes,
}

/// A message between two nodes.
#[derive(Debug, Clone)]
pub enum Message {
    /// Between controllers: raft.
    Raft(Box<raft::prelude::Message>),
    /// Controller to anyone: only the active controller handles that; it is `leader`.
    NotController {
        /// The leader this controller knows of.
        leader: Option<u64>,
    },
    /// Admin to controller.
    CreateTopics(pb::CreateTopicsRequest),
    /// Controller to admin.
    CreateTopicsAnswer(pb::CreateTopicsResponse),
    /// Broker to controller.
    Register(pb::RegisterBrokerRequest),
    /// Broker to controller.
    Heartbeat(pb::BrokerHeartbeatRequest),
    /// Broker (a leader) to controller.
    AlterPartition(pb::AlterPartitionRequest),
    /// Broker to controller: committed metadata from this offset on.
    FetchMetadata {
        /// The first offset wanted.
        from_offset: i64,
    },
    /// Controller to broker.
    Registered(pb::RegisterBrokerResponse),
    /// Controller to broker.
    HeartbeatAnswer(pb::BrokerHeartbeatResponse),
    /// Controller to broker.
    AlterPartitionAnswer(pb::AlterPartitionRequest, pb::AlterPartitionResponse),
    /// Controller to broker: committed entries from the offset asked for, and what they
    /// vouch for (the real stream's markers).
    Metadata {
        /// (offset, records) in order.
        entries: Vec<(i64, Vec<MetadataRecord>)>,
        /// With these entries the broker has every committed entry up to this offset.
        through: i64,
        /// The quorum's commit index as this controller knows it.
        committed: i64,
    },
    /// Follower to leader.
    Fetch(ReplicaFetch),
    /// Leader to follower.
    FetchAnswer(ReplicaFetch, ReplicaFetchAnswer),
    /// Client to broker: an acks=all produce of one batch.
    Produce {
        /// Matches the answer.
        request_id: u64,
        /// The partition.
        partition: TopicPartition,
        /// One record batch.
        batch: Bytes,
    },
    /// Broker to client.
    ProduceAnswer {
        /// The request's id.
        request_id: u64,
        /// The batch's base offset, or a Kafka error code.
        result: Result<i64, i16>,
    },
    /// Client to broker: who leads this partition (Metadata).
    WhoLeads(TopicPartition),
    /// Broker to client: the leader in its image (-1: none).
    Leader(TopicPartition, i32),
    /// Consumer to a partition's leader: records from `offset`, below the high watermark.
    ConsumerFetch {
        /// Matches the answer.
        request_id: u64,
        /// The partition.
        partition: TopicPartition,
        /// The first offset wanted.
        offset: i64,
        /// `isolation.level=read_committed`: below the last stable offset, with the aborted
        /// transactions of the range.
        read_committed: bool,
    },
    /// Leader to consumer: whole batches from the offset, or a Kafka error code.
    ConsumerFetchAnswer {
        /// The request's id.
        request_id: u64,
        /// The batches, and for read_committed the aborted transactions they overlap
        /// (producer id, first offset), as Fetch's `aborted_transactions`.
        result: Result<(Bytes, Vec<(i64, i64)>), i16>,
    },
    /// Consumer to the group's coordinator: OffsetCommit of one partition (a consumer with
    /// assigned partitions: generation -1, no member id).
    OffsetCommit {
        /// Matches the answer.
        request_id: u64,
        /// The group.
        group: String,
        /// The data partition.
        partition: TopicPartition,
        /// The next offset to consume.
        offset: i64,
    },
    /// Coordinator to consumer: 0 once the commit is committed to the offsets topic's ISR.
    OffsetCommitAnswer {
        /// The request's id.
        request_id: u64,
        /// Kafka error code.
        error_code: i16,
    },
    /// Consumer to the group's coordinator: OffsetFetch of one partition.
    OffsetFetch {
        /// Matches the answer.
        request_id: u64,
        /// The group.
        group: String,
        /// The data partition.
        partition: TopicPartition,
    },
    /// Coordinator to consumer: the committed offset (`None`: none), or an error code.
    OffsetFetchAnswer {
        /// The request's id.
        request_id: u64,
        /// The offset, and the leader epoch of `__consumer_offsets` it was loaded under.
        result: Result<(Option<i64>, i32), i16>,
    },
    /// Transactional client to the transaction coordinator: InitProducerId with a
    /// transactional id (`expected` is KIP-360's producer id and epoch, -1 when none).
    InitProducerId {
        /// Matches the answer.
        request_id: u64,
        /// The transactional id.
        transactional_id: String,
        /// The session it resumes.
        expected: ProducerIdEpoch,
        /// `transaction.timeout.ms`.
        timeout_ms: i32,
    },
    /// Transaction coordinator to client.
    InitProducerIdAnswer {
        /// The request's id.
        request_id: u64,
        /// The producer id and epoch, or a Kafka error code.
        result: Result<ProducerIdEpoch, i16>,
    },
    /// AddPartitionsToTxn; AddOffsetsToTxn is this with the group's `__consumer_offsets`
    /// partition, which is what the coordinator adds for it.
    AddPartitionsToTxn {
        /// Matches the answer.
        request_id: u64,
        /// The transactional id.
        transactional_id: String,
        /// Its producer id and epoch.
        producer: ProducerIdEpoch,
        /// (topic, partition).
        partitions: Vec<(String, i32)>,
    },
    /// EndTxn.
    EndTxn {
        /// Matches the answer.
        request_id: u64,
        /// The transactional id.
        transactional_id: String,
        /// Its producer id and epoch.
        producer: ProducerIdEpoch,
        /// Commit (true) or abort.
        commit: bool,
    },
    /// Transaction coordinator to client: the answer to AddPartitionsToTxn or EndTxn.
    TxnAnswer {
        /// The request's id.
        request_id: u64,
        /// Kafka error code.
        error_code: i16,
    },
    /// TxnOffsetCommit of one partition to the group's coordinator (answered with
    /// [`Message::OffsetCommitAnswer`]).
    TxnOffsetCommit {
        /// Matches the answer.
        request_id: u64,
        /// The group.
        group: String,
        /// The producer id and epoch of the transaction.
        producer: ProducerIdEpoch,
        /// The data partition.
        partition: TopicPartition,
        /// The next offset to consume.
        offset: i64,
    },
    /// Transaction coordinator to a partition's leader: WriteTxnMarkers for one partition.
    WriteTxnMarker {
        /// Matches the answer.
        request_id: u64,
        /// The partition.
        partition: TopicPartition,
        /// The transaction's producer id and epoch.
        producer: ProducerIdEpoch,
        /// Commit (true) or abort.
        commit: bool,
        /// The `__transaction_state` partition's leader epoch.
        coordinator_epoch: i32,
    },
    /// Leader to transaction coordinator: 0 once the marker is in the ISR.
    WriteTxnMarkerAnswer {
        /// The request's id.
        request_id: u64,
        /// Kafka error code.
        error_code: i16,
    },
}
