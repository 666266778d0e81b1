//! KIP-932's share state APIs, between a partition's leader and the share coordinator:
//! InitializeShareGroupState, ReadShareGroupState, WriteShareGroupState and
//! DeleteShareGroupState (served here, one partition result per request partition), and the
//! persister a leader calls them through ([`persist`]): locally when this broker leads the
//! state's `__share_group_state` partition, else over the inter-broker listener.
//! `__share_group_state` is created on first use with `share.coordinator.state.topic.*`.

use std::time::Duration;

use kafka_protocol::messages::{
    ApiKey, DeleteShareGroupStateRequest, DeleteShareGroupStateResponse,
    InitializeShareGroupStateRequest, InitializeShareGroupStateResponse,
    ReadShareGroupStateRequest, ReadShareGroupStateResponse, WriteShareGroupStateRequest,
    WriteShareGroupStateResponse,
};
use kafka_protocol::protocol::StrBytes;
use odradek_common::ErrorCode;
use odradek_controller::pb;
use odradek_coordinator::share::coordinator::ReadState;
use odradek_coordinator::share::records::{ShareStateKey, SHARE_STATE_TOPIC};
use odradek_coordinator::share::{RecordState, ShareState, StateBatch};
use odradek_metadata::MetadataImage;

use super::{kuuid, ouuid, Broker};
use crate::share_coordinator::ShareCoordinator;

fn s(v: impl Into<String>) -> StrBytes {
    StrBytes::from_string(v.into())
}

/// A state batch from the wire (each share state API has a struct of its own with these
/// fields); `None` for a delivery state Kafka does not define.
fn batch(
    first_offset: i64,
    last_offset: i64,
    state: i8,
    delivery_count: i16,
) -> Option<StateBatch> {
    Some(StateBatch {
        first_offset,
        last_offset,
        state: RecordState::from_value(state)?,
        delivery_count,
    })
}

/// State batches for the wire, as the API's own batch struct `$ty`.
macro_rules! wire_batches {
    ($batches:expr, $ty:ty) => {
        $batches
            .iter()
            .map(|b| {
                <$ty>::default()
                    .with_first_offset(b.first_offset)
                    .with_last_offset(b.last_offset)
                    .with_delivery_state(b.state.value())
                    .with_delivery_count(b.delivery_count)
            })
            .collect()
    };
}

/// Creates `__share_group_state` if it does not exist (Kafka's
/// `share.coordinator.state.topic.*` settings: deleted by retention, not compacted).
pub(super) async fn ensure_state_topic(broker: &Broker) -> std::sync::Arc<MetadataImage> {
    let image = broker.image();
    if image.topics.by_name.contains_key(SHARE_STATE_TOPIC) {
        return image;
    }
    let c = &broker.config.shares;
    let config = |name: &str, value: String| pb::TopicConfig {
        name: name.into(),
        value,
    };
    let req = pb::CreateTopicsRequest {
        topics: vec![pb::CreatableTopic {
            name: SHARE_STATE_TOPIC.into(),
            num_partitions: c.state_topic_partitions,
            replication_factor: c.state_topic_replication_factor,
            assignments: vec![],
            // Never deleted by time: an idle share group's state must outlive any retention
            // (Kafka prunes it with DeleteRecords below the oldest live snapshot; Odradek does
            // not prune yet).
            configs: vec![
                config("cleanup.policy", "delete".into()),
                config("retention.ms", "-1".into()),
                config("min.insync.replicas", c.state_topic_min_isr.to_string()),
            ],
        }],
        validate_only: false,
    };
    super::create_through_controller(broker, req, "creating the share group state topic").await;
    broker
        .wait_for_image(Duration::from_secs(5), |i| {
            i.topics.by_name.contains_key(SHARE_STATE_TOPIC)
        })
        .await
}

fn key(group: &StrBytes, topic: &uuid::Uuid, partition: i32) -> ShareStateKey {
    ShareStateKey {
        group: group.to_string(),
        topic_id: ouuid(topic),
        partition,
    }
}

/// Runs one call on the share coordinator and waits for its records to be committed.
async fn call<T>(
    broker: &Broker,
    image: &MetadataImage,
    key: &ShareStateKey,
    f: impl FnOnce(
        &odradek_coordinator::share::coordinator::ShareStates,
        i64,
    ) -> Result<(T, Vec<odradek_coordinator::share::coordinator::Record>), ErrorCode>,
) -> Result<T, ErrorCode> {
    let (value, at) = broker.shares.exec(image, key, f)?;
    super::groups::replicated_in(broker, image, at, SHARE_STATE_TOPIC).await?;
    Ok(value)
}

/// InitializeShareGroupState.
pub(crate) async fn initialize(
    broker: &Broker,
    req: InitializeShareGroupStateRequest,
) -> InitializeShareGroupStateResponse {
    use kafka_protocol::messages::initialize_share_group_state_response::{
        InitializeStateResult, PartitionResult,
    };
    let image = ensure_state_topic(broker).await;
    let mut results = Vec::new();
    for t in &req.topics {
        let mut partitions = Vec::new();
        for p in &t.partitions {
            let k = key(&req.group_id, &t.topic_id, p.partition);
            let r = call(broker, &image, &k, |states, now| {
                Ok((
                    (),
                    states.initialize(now, &k, p.state_epoch, p.start_offset)?,
                ))
            })
            .await;
            partitions.push(
                PartitionResult::default()
                    .with_partition(p.partition)
                    .with_error_code(r.err().map_or(0, |e| e.code())),
            );
        }
        results.push(
            InitializeStateResult::default()
                .with_topic_id(t.topic_id)
                .with_partitions(partitions),
        );
    }
    InitializeShareGroupStateResponse::default().with_results(results)
}

/// ReadShareGroupState.
pub(crate) async fn read(
    broker: &Broker,
    req: ReadShareGroupStateRequest,
) -> ReadShareGroupStateResponse {
    use kafka_protocol::messages::read_share_group_state_response::{
        PartitionResult, ReadStateResult, StateBatch as Batch,
    };
    let image = ensure_state_topic(broker).await;
    let mut results = Vec::new();
    for t in &req.topics {
        let mut partitions = Vec::new();
        for p in &t.partitions {
            let k = key(&req.group_id, &t.topic_id, p.partition);
            let r = call(broker, &image, &k, |states, now| {
                states.read(now, &k, p.leader_epoch)
            })
            .await;
            partitions.push(match r {
                Err(e) => PartitionResult::default()
                    .with_partition(p.partition)
                    .with_error_code(e.code())
                    .with_start_offset(-1),
                Ok(ReadState { state_epoch, state }) => PartitionResult::default()
                    .with_partition(p.partition)
                    .with_state_epoch(state_epoch)
                    .with_start_offset(state.start_offset)
                    .with_state_batches(wire_batches!(state.batches, Batch)),
            });
        }
        results.push(
            ReadStateResult::default()
                .with_topic_id(t.topic_id)
                .with_partitions(partitions),
        );
    }
    ReadShareGroupStateResponse::default().with_results(results)
}

/// WriteShareGroupState.
pub(crate) async fn write(
    broker: &Broker,
    req: WriteShareGroupStateRequest,
) -> WriteShareGroupStateResponse {
    use kafka_protocol::messages::write_share_group_state_response::{
        PartitionResult, WriteStateResult,
    };
    let image = ensure_state_topic(broker).await;
    let mut results = Vec::new();
    for t in &req.topics {
        let mut partitions = Vec::new();
        for p in &t.partitions {
            let k = key(&req.group_id, &t.topic_id, p.partition);
            let batches: Option<Vec<StateBatch>> = p
                .state_batches
                .iter()
                .map(|b| {
                    batch(
                        b.first_offset,
                        b.last_offset,
                        b.delivery_state,
                        b.delivery_count,
                    )
                })
                .collect();
            let r = match batches {
                None => Err(ErrorCode::InvalidRequest),
                Some(batches) => {
                    call(broker, &image, &k, |states, now| {
                        Ok((
                            (),
                            states.write(
                                now,
                                &k,
                                p.state_epoch,
                                p.leader_epoch,
                                p.start_offset,
                                &batches,
                            )?,
                        ))
                    })
                    .await
                }
            };
            partitions.push(
                PartitionResult::default()
                    .with_partition(p.partition)
                    .with_error_code(r.err().map_or(0, |e| e.code())),
            );
        }
        results.push(
            WriteStateResult::default()
                .with_topic_id(t.topic_id)
                .with_partitions(partitions),
        );
    }
    WriteShareGroupStateResponse::default().with_results(results)
}

/// DeleteShareGroupState.
pub(crate) async fn delete(
    broker: &Broker,
    req: DeleteShareGroupStateRequest,
) -> DeleteShareGroupStateResponse {
    use kafka_protocol::messages::delete_share_group_state_response::{
        DeleteStateResult, PartitionResult,
    };
    let image = ensure_state_topic(broker).await;
    let mut results = Vec::new();
    for t in &req.topics {
        let mut partitions = Vec::new();
        for p in &t.partitions {
            let k = key(&req.group_id, &t.topic_id, p.partition);
            let r = call(broker, &image, &k, |states, _| Ok(((), states.delete(&k)))).await;
            partitions.push(
                PartitionResult::default()
                    .with_partition(p.partition)
                    .with_error_code(r.err().map_or(0, |e| e.code())),
            );
        }
        results.push(
            DeleteStateResult::default()
                .with_topic_id(t.topic_id)
                .with_partitions(partitions),
        );
    }
    DeleteShareGroupStateResponse::default().with_results(results)
}

/// The persister: what a share-partition's leader calls to keep its state.
pub(crate) mod persist {
    use super::*;

    /// The broker leading `key`'s state partition, after creating the topic if needed.
    async fn coordinator_of(broker: &Broker, key: &ShareStateKey) -> Result<i32, ErrorCode> {
        let image = ensure_state_topic(broker).await;
        let p = ShareCoordinator::partition_of(&image, key)
            .ok_or(ErrorCode::CoordinatorNotAvailable)?;
        let leader = image
            .topics
            .get_by_name(SHARE_STATE_TOPIC)
            .and_then(|t| t.partitions.get(&p))
            .map_or(-1, |r| r.leader);
        if leader < 0 {
            return Err(ErrorCode::CoordinatorNotAvailable);
        }
        Ok(leader)
    }

    async fn remote<R: kafka_protocol::protocol::Request>(
        broker: &Broker,
        leader: i32,
        key: ApiKey,
        req: &R,
    ) -> Result<R::Response, ErrorCode> {
        let image = broker.image();
        let b = image
            .cluster
            .brokers
            .get(&leader)
            .ok_or(ErrorCode::CoordinatorNotAvailable)?;
        let e = super::super::endpoint_for(b, &broker.config.inter_broker_listener)
            .ok_or(ErrorCode::CoordinatorNotAvailable)?;
        let addr = format!("{}:{}", e.host, e.port);
        // The whole call, connection included, within 10 s: a share-partition waits on it.
        let call = async {
            let mut conn = odradek_client::Connection::connect_secure(
                &addr,
                "odradek-share-persister",
                &broker.config.inter_broker_security,
            )
            .await
            .map_err(|_| ErrorCode::CoordinatorNotAvailable)?;
            let v = conn
                .version(key, 0)
                .map_err(|_| ErrorCode::CoordinatorNotAvailable)?;
            conn.send(req, v)
                .await
                .map_err(|_| ErrorCode::CoordinatorNotAvailable)
        };
        tokio::time::timeout(Duration::from_secs(10), call)
            .await
            .map_err(|_| ErrorCode::CoordinatorNotAvailable)?
    }

    /// Initialises `key`'s state at `start_offset`.
    pub(crate) async fn initialize(
        broker: &Broker,
        key: &ShareStateKey,
        state_epoch: i32,
        start_offset: i64,
    ) -> Result<(), ErrorCode> {
        use kafka_protocol::messages::initialize_share_group_state_request::{
            InitializeStateData, PartitionData,
        };
        let req = InitializeShareGroupStateRequest::default()
            .with_group_id(s(key.group.clone()))
            .with_topics(vec![InitializeStateData::default()
                .with_topic_id(kuuid(key.topic_id))
                .with_partitions(vec![PartitionData::default()
                    .with_partition(key.partition)
                    .with_state_epoch(state_epoch)
                    .with_start_offset(start_offset)])]);
        let leader = coordinator_of(broker, key).await?;
        let resp = if leader == broker.id() {
            super::initialize(broker, req).await
        } else {
            remote(broker, leader, ApiKey::InitializeShareGroupState, &req).await?
        };
        code(
            resp.results
                .first()
                .and_then(|t| t.partitions.first())
                .map(|p| p.error_code),
        )
    }

    /// Reads `key`'s state as the partition's leader at `leader_epoch`; `Ok(None)` when it
    /// was never initialised.
    pub(crate) async fn read(
        broker: &Broker,
        key: &ShareStateKey,
        leader_epoch: i32,
    ) -> Result<Option<ReadState>, ErrorCode> {
        use kafka_protocol::messages::read_share_group_state_request::{
            PartitionData, ReadStateData,
        };
        let req = ReadShareGroupStateRequest::default()
            .with_group_id(s(key.group.clone()))
            .with_topics(vec![ReadStateData::default()
                .with_topic_id(kuuid(key.topic_id))
                .with_partitions(vec![PartitionData::default()
                    .with_partition(key.partition)
                    .with_leader_epoch(leader_epoch)])]);
        let leader = coordinator_of(broker, key).await?;
        let resp = if leader == broker.id() {
            super::read(broker, req).await
        } else {
            remote(broker, leader, ApiKey::ReadShareGroupState, &req).await?
        };
        let p = resp
            .results
            .into_iter()
            .next()
            .and_then(|t| t.partitions.into_iter().next())
            .ok_or(ErrorCode::CoordinatorNotAvailable)?;
        if p.error_code == ErrorCode::InvalidRequest.code() {
            return Ok(None);
        }
        code(Some(p.error_code))?;
        let batches = p
            .state_batches
            .iter()
            .filter_map(|b| {
                batch(
                    b.first_offset,
                    b.last_offset,
                    b.delivery_state,
                    b.delivery_count,
                )
            })
            .collect();
        Ok(Some(ReadState {
            state_epoch: p.state_epoch,
            state: ShareState {
                start_offset: p.start_offset,
                batches,
            },
        }))
    }

    /// Writes `key`'s state (its start offset and every in-flight batch).
    pub(crate) async fn write(
        broker: &Broker,
        key: &ShareStateKey,
        state_epoch: i32,
        leader_epoch: i32,
        state: &ShareState,
    ) -> Result<(), ErrorCode> {
        use kafka_protocol::messages::write_share_group_state_request::{
            PartitionData, StateBatch as Batch, WriteStateData,
        };
        let req = WriteShareGroupStateRequest::default()
            .with_group_id(s(key.group.clone()))
            .with_topics(vec![WriteStateData::default()
                .with_topic_id(kuuid(key.topic_id))
                .with_partitions(vec![PartitionData::default()
                    .with_partition(key.partition)
                    .with_state_epoch(state_epoch)
                    .with_leader_epoch(leader_epoch)
                    .with_start_offset(state.start_offset)
                    .with_state_batches(wire_batches!(state.batches, Batch))])]);
        let leader = coordinator_of(broker, key).await?;
        let resp = if leader == broker.id() {
            super::write(broker, req).await
        } else {
            remote(broker, leader, ApiKey::WriteShareGroupState, &req).await?
        };
        code(
            resp.results
                .first()
                .and_then(|t| t.partitions.first())
                .map(|p| p.error_code),
        )
    }

    /// A persister answer's error as the share-partition's caller sees it, as Kafka's
    /// share-partitions map it: a share coordinator that moved or is loading is
    /// COORDINATOR_NOT_AVAILABLE (the client retries), a fenced leader or state epoch is
    /// NOT_LEADER_OR_FOLLOWER (this broker no longer leads the partition), and the request
    /// errors pass as they are; anything else is UNKNOWN_SERVER_ERROR.
    fn code(c: Option<i16>) -> Result<(), ErrorCode> {
        match c.map(|c| ErrorCode::from_code(c).unwrap_or(ErrorCode::UnknownServerError)) {
            Some(ErrorCode::None) => Ok(()),
            Some(
                ErrorCode::NotCoordinator
                | ErrorCode::CoordinatorLoadInProgress
                | ErrorCode::CoordinatorNotAvailable,
            )
            | None => Err(ErrorCode::CoordinatorNotAvailable),
            Some(ErrorCode::FencedLeaderEpoch | ErrorCode::FencedStateEpoch) => {
                Err(ErrorCode::NotLeaderOrFollower)
            }
            Some(
                e @ (ErrorCode::InvalidRequest
                | ErrorCode::GroupIdNotFound
                | ErrorCode::UnknownTopicOrPartition
                | ErrorCode::ClusterAuthorizationFailed),
            ) => Err(e),
            Some(_) => Err(ErrorCode::UnknownServerError),
        }
    }
}
