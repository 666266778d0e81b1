//! Produce: validate and append each partition's batch as leader; acks=0 gets no response,
//! acks=1 an answer after the leader's append, acks=all one once the batch is committed (the
//! high watermark passed it), with min.insync.replicas checked before the append. An
//! idempotent producer's batch is checked against the partition's producer state: a retry of
//! a batch already in the log is answered with its original offsets (and, with acks=all, once
//! they are committed), a gap with OUT_OF_ORDER_SEQUENCE_NUMBER. With `log.flush.before.ack`,
//! acks=1 and acks=all answer only once the append is synced to disk ([`crate::group_sync`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use kafka_protocol::protocol::StrBytes;
use odradek_common::{ErrorCode, ToErrorCode};
use odradek_frontend::{Handled, RequestContext, ResponseKind};
use odradek_log::{BatchHeader, LOG_OVERHEAD};
use odradek_metadata::acl::{AclOperation, ResourceType};

use super::{find_topic, Broker};
use crate::replicas::{HostedPartition, Need};

/// A partition failure; `error_message` exists from v8, so older versions get only the code.
fn failure(
    version: i16,
    index: i32,
    code: ErrorCode,
    message: impl Into<String>,
) -> PartitionProduceResponse {
    let r = PartitionProduceResponse::default()
        .with_index(index)
        .with_error_code(code.code())
        .with_base_offset(-1);
    if version >= 8 {
        r.with_error_message(Some(StrBytes::from_string(message.into())))
    } else {
        r
    }
}

/// Produce v3+ carries exactly one record batch per partition; Kafka refuses anything else with
/// INVALID_RECORD. Batches are counted as Kafka's record iterator sees them: a batch whose length
/// runs past the buffer is not a batch, and trailing bytes too few for a batch are ignored (so
/// only the batch itself is appended).
fn single_batch(records: &bytes::Bytes) -> Result<(BatchHeader, bytes::Bytes), String> {
    const NONE: &str = "produce requests v3+ must contain exactly one record batch; found none";
    let h = BatchHeader::parse(records).ok_or(NONE)?;
    let size = usize::try_from(h.size()).map_err(|_| NONE)?;
    if size > records.len() || h.batch_length < 0 {
        return Err(NONE.into());
    }
    let rest = &records[size..];
    if rest.len() >= LOG_OVERHEAD {
        let next = i32::from_be_bytes([rest[8], rest[9], rest[10], rest[11]]);
        if next >= 0 && LOG_OVERHEAD + next as usize <= rest.len() {
            return Err(
                "produce requests v3+ must contain exactly one record batch; found more".into(),
            );
        }
    }
    Ok((h, records.slice(..size)))
}

/// An append waiting for its directory's group commit (`log.flush.before.ack`).
struct Synced {
    topic: usize,
    slot: usize,
    partition: Arc<HostedPartition>,
    rx: tokio::sync::oneshot::Receiver<crate::group_sync::Synced>,
}

/// An acks=all append waiting for the high watermark.
struct Pending {
    topic: usize,
    slot: usize,
    partition: Arc<HostedPartition>,
    leader_epoch: i32,
    last_offset: i64,
    min_insync_replicas: usize,
}

pub(super) async fn handle(broker: &Broker, ctx: &RequestContext, req: ProduceRequest) -> Handled {
    let version = ctx.api_version;
    // Boxed: a partition response is large, and most partitions succeed.
    let fail = |index, code, message: String| Box::new(failure(version, index, code, message));
    let image = broker.image();
    let now = broker.clock.now_ms();
    let deadline = Instant::now() + Duration::from_millis(req.timeout_ms.max(0) as u64);
    let mut pending = Vec::new();
    let mut syncs = Vec::new();
    let mut responses = Vec::new();
    // A transactional producer needs WRITE on its transactional id, every producer WRITE on
    // each topic (checked before the topic's existence, as Kafka does).
    // As Kafka: the check is made when the batches are transactional (attribute bit 4), and
    // transactional batches without a transactional id are refused.
    let transactional = req
        .topic_data
        .iter()
        .flat_map(|t| &t.partition_data)
        .any(|p| {
            p.records
                .as_ref()
                .is_some_and(|b| b.len() > 22 && b[22] & 0x10 != 0)
        });
    let txn_allowed = !transactional
        || req.transactional_id.as_ref().is_some_and(|id| {
            broker.authorized(
                ctx,
                &image,
                AclOperation::Write,
                ResourceType::TransactionalId,
                id,
            )
        });
    for (ti, topic) in req.topic_data.iter().enumerate() {
        let name = topic.name.0.to_string();
        let t = find_topic(&image, &name, &topic.topic_id);
        let topic_allowed =
            broker.authorized(ctx, &image, AclOperation::Write, ResourceType::Topic, &name);
        let mut partitions = Vec::new();
        for pd in &topic.partition_data {
            let index = pd.index;
            let result = (|| {
                if !txn_allowed {
                    return Err(fail(
                        index,
                        ErrorCode::TransactionalIdAuthorizationFailed,
                        "Transactional Id authorization failed.".into(),
                    ));
                }
                if !topic_allowed {
                    return Err(fail(
                        index,
                        ErrorCode::TopicAuthorizationFailed,
                        format!("Not authorized to write to topic '{name}'"),
                    ));
                }
                if !matches!(req.acks, -1..=1) {
                    let mut r = fail(
                        index,
                        ErrorCode::InvalidRequest,
                        format!("acks={} is not 0, 1 or -1", req.acks),
                    );
                    r.error_code = 21; // INVALID_REQUIRED_ACKS
                    return Err(r);
                }
                let t = t.as_ref().ok_or_else(|| {
                    fail(
                        index,
                        ErrorCode::UnknownTopicOrPartition,
                        format!("topic '{name}' does not exist"),
                    )
                })?;
                if !t.partitions.contains_key(&index) {
                    return Err(fail(
                        index,
                        ErrorCode::UnknownTopicOrPartition,
                        format!("partition {index} of '{name}' does not exist"),
                    ));
                }
                let records = pd.records.as_ref().ok_or_else(|| {
                    fail(
                        index,
                        ErrorCode::InvalidRecord,
                        "produce requests v3+ must contain exactly one record batch; found none"
                            .into(),
                    )
                })?;
                // Checked before leadership, as Kafka does.
                let (h, records) =
                    single_batch(records).map_err(|m| fail(index, ErrorCode::InvalidRecord, m))?;
                if h.is_control() {
                    return Err(fail(
                        index,
                        ErrorCode::InvalidRecord,
                        "clients are not allowed to write control records".into(),
                    ));
                }
                let hosted = broker
                    .replicas
                    .partition(t.id, index, -1, Need::Leader)
                    .map_err(|r| fail(index, r.code, r.message))?;
                let min_isr = broker.min_insync_replicas(&image, &t.name);
                // CRC and record checks before the partition's lock.
                let validated = hosted
                    .validate_for_leader(&records)
                    .map_err(|e| fail(index, e.error_code(), e.to_string()))?;
                let mut replica = hosted
                    .lock()
                    .map_err(|c| fail(index, c, "partition state poisoned".into()))?;
                // Its directory failed a moment ago (it goes offline on the next check): nothing
                // more is appended, so a retry of a batch whose write failed is not doubled.
                if hosted.dir_has_failed() {
                    return Err(fail(
                        index,
                        ErrorCode::KafkaStorageError,
                        "the replica's log directory failed".into(),
                    ));
                }
                let appended = replica
                    .append_as_leader(validated, req.acks, min_isr, now)
                    .map_err(|e| {
                        if e.error_code() == ErrorCode::KafkaStorageError {
                            hosted.report_storage_error(&e);
                        }
                        fail(index, e.error_code(), e.to_string())
                    })?;
                // log.flush.before.ack: the acknowledgement waits for the group commit.
                let sync = hosted.sync(|| replica.log().active_segment_file());
                drop(replica);
                hosted.metrics.bytes_in.inc_by(records.len() as u64);
                hosted.metrics.messages_in.inc_by(
                    (appended.info.last_offset - appended.info.first_offset + 1).max(0) as u64,
                );
                hosted.leo_waiters.wake_all();
                if appended.high_watermark_advanced {
                    hosted.hw_waiters.wake_all();
                }
                Ok((hosted, appended, min_isr, sync))
            })();
            partitions.push(match result {
                Ok((hosted, appended, min_isr, sync)) => {
                    if let Some(rx) = sync {
                        syncs.push(Synced {
                            topic: ti,
                            slot: partitions.len(),
                            partition: Arc::clone(&hosted),
                            rx,
                        });
                    }
                    let info = &appended.info;
                    let r = PartitionProduceResponse::default()
                        .with_index(index)
                        .with_base_offset(info.first_offset)
                        .with_log_append_time_ms(info.log_append_time_ms.unwrap_or(-1));
                    // log_start_offset exists from v5.
                    let r = if version >= 5 {
                        r.with_log_start_offset(hosted.reader.log_start_offset())
                    } else {
                        r
                    };
                    if req.acks == -1 {
                        pending.push(Pending {
                            topic: ti,
                            slot: partitions.len(),
                            leader_epoch: appended.leader_epoch,
                            last_offset: info.last_offset,
                            partition: hosted,
                            min_insync_replicas: min_isr,
                        });
                    }
                    r
                }
                Err(r) => *r,
            });
        }
        responses.push(
            TopicProduceResponse::default()
                .with_name(topic.name.clone())
                .with_topic_id(topic.topic_id)
                .with_partition_responses(partitions),
        );
    }
    if req.acks == 0 {
        return Handled::Done(None);
    }
    if pending.is_empty() && syncs.is_empty() {
        return Handled::Done(Some(ResponseKind::Produce(
            ProduceResponse::default().with_responses(responses),
        )));
    }
    // acks=all: the batches are appended; the response waits for each to be committed (and,
    // with log.flush.before.ack, synced), while the connection goes on with its next request.
    Handled::Pending(Box::pin(async move {
        for s in syncs {
            if let Err(e) = crate::group_sync::synced(s.rx).await {
                s.partition.report_storage_error(&e);
                let slot = &mut responses[s.topic].partition_responses[s.slot];
                *slot = failure(
                    version,
                    slot.index,
                    ErrorCode::KafkaStorageError,
                    format!("the append could not be synced to disk: {e}"),
                );
            }
        }
        for p in pending {
            if let Err((code, message)) = super::acks::wait_committed(
                &p.partition,
                p.leader_epoch,
                p.last_offset,
                p.min_insync_replicas,
                deadline,
            )
            .await
            {
                let slot = &mut responses[p.topic].partition_responses[p.slot];
                *slot = failure(version, slot.index, code, message);
            }
        }
        Some(ResponseKind::Produce(
            ProduceResponse::default().with_responses(responses),
        ))
    }))
}
