//! DeleteRecords, OffsetForLeaderEpoch and DescribeCluster: answered from the partition logs and
//! the metadata image.

use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{
    BrokerId, DeleteRecordsRequest, DeleteRecordsResponse, DescribeClusterRequest,
    DescribeClusterResponse, OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse,
};
use kafka_protocol::protocol::StrBytes;
use odradek_common::{ErrorCode, ToErrorCode};
use odradek_frontend::RequestContext;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use super::Broker;
use crate::replicas::{HostedPartition, Need};

/// DeleteRecords, as Kafka: each leader moves its log start to the requested offset (-1: its
/// high watermark; past it OFFSET_OUT_OF_RANGE); then, once every partition is done, the
/// response waits (up to the request's `timeout_ms`, REQUEST_TIMED_OUT after) until each low
/// watermark (the smallest log start over the leader and its followers on brokers alive in the
/// current metadata) has reached its requested offset, and reports those low watermarks.
pub(super) async fn delete_records(
    broker: &Broker,
    req: DeleteRecordsRequest,
) -> DeleteRecordsResponse {
    let image = broker.image();
    let deadline =
        Instant::now() + Duration::from_millis(u64::try_from(req.timeout_ms).unwrap_or(0));
    let mut topics = Vec::new();
    let mut waits = Vec::new();
    for (ti, t) in req.topics.iter().enumerate() {
        let topic = image.topics.get_by_name(t.name.0.as_str());
        let mut partitions = Vec::new();
        for dp in &t.partitions {
            let r = DeleteRecordsPartitionResult::default()
                .with_partition_index(dp.partition_index)
                .with_low_watermark(-1);
            let Some(topic) = topic.filter(|tp| tp.partitions.contains_key(&dp.partition_index))
            else {
                partitions.push(r.with_error_code(ErrorCode::UnknownTopicOrPartition.code()));
                continue;
            };
            let hosted =
                match broker
                    .replicas
                    .partition(topic.id, dp.partition_index, -1, Need::Leader)
                {
                    Ok(h) => h,
                    Err(refusal) => {
                        partitions.push(r.with_error_code(refusal.code.code()));
                        continue;
                    }
                };
            let deleted = hosted.lock().map_err(|c| c.code()).and_then(|mut p| {
                p.delete_records_before(dp.offset)
                    .map_err(|e| e.error_code().code())
            });
            match deleted {
                Ok(requested) => {
                    waits.push((ti, partitions.len(), hosted, requested));
                    partitions.push(r);
                }
                Err(code) => partitions.push(r.with_error_code(code)),
            }
        }
        topics.push(
            DeleteRecordsTopicResult::default()
                .with_name(t.name.clone())
                .with_partitions(partitions),
        );
    }
    // Every partition has moved its log start; now wait for the replicas (one deadline for
    // all, so waiting in turn costs no more than the slowest).
    for (ti, slot, hosted, requested) in waits {
        let r: &mut DeleteRecordsPartitionResult = &mut topics[ti].partitions[slot];
        match wait_low_watermark(broker, &hosted, requested, deadline).await {
            Ok(low) => r.low_watermark = low,
            Err(code) => r.error_code = code.code(),
        }
    }
    DeleteRecordsResponse::default().with_topics(topics)
}

/// Waits until the low watermark of `partition` reaches `requested` (Kafka's delayed
/// DeleteRecords), judging liveness by the current metadata: the low watermark then,
/// NOT_LEADER_OR_FOLLOWER if leadership moved, REQUEST_TIMED_OUT at `deadline`. Woken by the
/// followers' fetches and by metadata changes to the partition.
async fn wait_low_watermark(
    broker: &Broker,
    partition: &HostedPartition,
    requested: i64,
    deadline: Instant,
) -> Result<i64, ErrorCode> {
    let waiter = Arc::new(Notify::new());
    loop {
        // Register before checking, so a report in between is not missed.
        partition.lw_waiters.register(&waiter);
        let image = broker.image();
        let alive = |id: i32| image.cluster.brokers.get(&id).is_some_and(|b| !b.fenced);
        let low = {
            let p = partition.lock()?;
            p.check_leader(-1).map_err(|e| e.error_code())?;
            p.low_watermark(alive)
        };
        if low >= requested {
            return Ok(low);
        }
        if tokio::time::timeout_at(deadline.into(), waiter.notified())
            .await
            .is_err()
        {
            return Err(ErrorCode::RequestTimedOut);
        }
    }
}

pub(super) fn offset_for_leader_epoch(
    broker: &Broker,
    req: OffsetForLeaderEpochRequest,
) -> OffsetForLeaderEpochResponse {
    let image = broker.image();
    let topics = req
        .topics
        .iter()
        .map(|t| {
            let topic = image.topics.get_by_name(t.topic.0.as_str());
            let partitions = t
                .partitions
                .iter()
                .map(|op| {
                    let r = EpochEndOffset::default()
                        .with_partition(op.partition)
                        .with_leader_epoch(-1)
                        .with_end_offset(-1);
                    let Some(topic) = topic.filter(|tp| tp.partitions.contains_key(&op.partition))
                    else {
                        return r.with_error_code(ErrorCode::UnknownTopicOrPartition.code());
                    };
                    // Consumers ask the leader; a follower (replica_id >= 0) may ask any replica.
                    let need = if req.replica_id.0 >= 0 {
                        Need::Any
                    } else {
                        Need::Leader
                    };
                    let hosted = match broker.replicas.partition(
                        topic.id,
                        op.partition,
                        op.current_leader_epoch,
                        need,
                    ) {
                        Ok(h) => h,
                        Err(refusal) => return r.with_error_code(refusal.code.code()),
                    };
                    let Ok(replica) = hosted.lock() else {
                        return r.with_error_code(ErrorCode::KafkaStorageError.code());
                    };
                    let end = replica.end_offset_for_epoch(op.leader_epoch);
                    let (epoch, end) = (end.epoch, end.end_offset);
                    r.with_leader_epoch(epoch).with_end_offset(end)
                })
                .collect();
            OffsetForLeaderTopicResult::default()
                .with_topic(t.topic.clone())
                .with_partitions(partitions)
        })
        .collect();
    OffsetForLeaderEpochResponse::default().with_topics(topics)
}

pub(super) fn describe_cluster(
    broker: &Broker,
    ctx: &RequestContext,
    req: DescribeClusterRequest,
) -> DescribeClusterResponse {
    let image = broker.image();
    let brokers = image
        .cluster
        .brokers
        .values()
        .filter(|b| !b.fenced || (ctx.api_version >= 2 && req.include_fenced_brokers))
        .filter_map(|b| {
            let e = super::endpoint_for(b, &ctx.session.listener.name)?;
            let r = DescribeClusterBroker::default()
                .with_broker_id(BrokerId(b.id))
                .with_host(StrBytes::from_string(e.host.clone()))
                .with_port(i32::from(e.port))
                .with_rack(b.rack.clone().map(StrBytes::from_string));
            Some(if ctx.api_version >= 2 {
                r.with_is_fenced(b.fenced)
            } else {
                r
            })
        })
        .collect();
    let r = DescribeClusterResponse::default()
        .with_cluster_id(StrBytes::from_string(broker.cluster_id.clone()))
        .with_controller_id(BrokerId(broker.id()))
        .with_brokers(brokers);
    if ctx.api_version >= 1 {
        r.with_endpoint_type(1)
    } else {
        r
    }
}
