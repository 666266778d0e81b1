//! Fetch, from consumers and from followers. A consumer reads whole batches up to the high
//! watermark; a follower (`replica_id`, or `ReplicaState` from v15) reads up to the log end,
//! and its fetch offset tells the leader how far it has replicated (advancing the high
//! watermark, expanding the ISR), or it is answered the epoch where its log diverges (v12+).
//! Bounded by `partition_max_bytes` and `max_bytes`; waits up to `max_wait_ms` for
//! `min_bytes`, woken per partition (consumers when the high watermark moves, followers when
//! the log end moves). Fetch v7+ may use incremental fetch sessions (KIP-227,
//! [`crate::fetch_session`]): the partitions read are the session's, and the answer lists only
//! those with news. Out-of-sync followers
//! of throttled replicas are held to `leader.replication.throttled.rate` ([`crate::throttle`]). A read_committed
//! consumer (isolation level 1) reads below the last stable offset and is told the aborted
//! transactions its batches overlap. The batches are not read here: each partition's segment
//! file range is attached to the response, and the frontend sends it with zero copy
//! (`sendfile`) on plaintext connections.

use std::sync::Arc;
use std::time::{Duration, Instant};

use kafka_protocol::messages::fetch_response::{
    AbortedTransaction, EpochEndOffset, FetchableTopicResponse, PartitionData,
};
use kafka_protocol::messages::{FetchRequest, FetchResponse, ProducerId};
use odradek_common::{ErrorCode, ToErrorCode};
use odradek_frontend::{Attachments, FileRange, RequestContext};
use odradek_log::FileSlice;
use odradek_metadata::acl::{AclOperation, ResourceType};
use tokio::sync::Notify;

use super::{find_topic, Broker};
use crate::fetch_session::Plan;
use crate::replicas::{HostedPartition, Need};

fn error(index: i32, code: ErrorCode) -> PartitionData {
    PartitionData::default()
        .with_partition_index(index)
        .with_error_code(code.code())
        .with_high_watermark(-1)
}

/// A read's batches for the response: attached as a file range, for the frontend to send with
/// zero copy, or copied into memory when they cannot be attached.
fn records(slice: &FileSlice, attachments: &mut Attachments) -> odradek_log::Result<bytes::Bytes> {
    let range = FileRange::new(slice.clone(), slice.position(), slice.len() as usize);
    match attachments.attach(range) {
        Ok(stand_in) => Ok(stand_in),
        Err(_) => slice.read_to_bytes(),
    }
}

/// One pass over the requested partitions, registering `waiter` on each; returns the
/// response, the bytes it carries and whether any partition must be answered at once (an
/// error, or a follower's diverging epoch). The bytes read are put in `sent` per partition
/// (counted in the metrics only for the response that goes out), the file ranges the
/// response's records stand for in `attachments`.
#[allow(clippy::too_many_arguments)]
fn read_once(
    broker: &Broker,
    version: i16,
    req: &FetchRequest,
    replica_id: i32,
    allowed: &[bool],
    waiter: &Arc<Notify>,
    sent: &mut Vec<(Arc<HostedPartition>, u64)>,
    attachments: &mut Attachments,
) -> (FetchResponse, usize, bool) {
    sent.clear();
    *attachments = Attachments::default();
    let image = broker.image();
    let now = broker.clock.now_ms();
    let from_follower = replica_id >= 0;
    let quota = &broker.replicas.throttles().leader;
    let mut remaining = req.max_bytes.max(0) as u64;
    let mut total = 0usize;
    let mut failed = false;
    let mut topics = Vec::new();
    for (ti, topic) in req.topics.iter().enumerate() {
        let name = topic.topic.0.to_string();
        let t = find_topic(&image, &name, &topic.topic_id);
        let mut partitions = Vec::new();
        for fp in &topic.partitions {
            let index = fp.partition;
            if !allowed.get(ti).copied().unwrap_or(false) {
                partitions.push(error(index, ErrorCode::TopicAuthorizationFailed));
                failed = true;
                continue;
            }
            let Some(t) = t.as_ref() else {
                // Kafka: UNKNOWN_TOPIC_ID when the request names topics by id (v13+).
                let code = if name.is_empty() {
                    100
                } else {
                    ErrorCode::UnknownTopicOrPartition.code()
                };
                partitions
                    .push(error(index, ErrorCode::UnknownTopicOrPartition).with_error_code(code));
                failed = true;
                continue;
            };
            if !t.partitions.contains_key(&index) {
                partitions.push(error(index, ErrorCode::UnknownTopicOrPartition));
                failed = true;
                continue;
            }
            let mut throttled = false;
            let hosted =
                match broker
                    .replicas
                    .partition(t.id, index, fp.current_leader_epoch, Need::Leader)
                {
                    Ok(h) => h,
                    Err(r) => {
                        partitions.push(error(index, r.code));
                        failed = true;
                        continue;
                    }
                };
            if from_follower {
                hosted.leo_waiters.register(waiter);
            } else {
                hosted.hw_waiters.register(waiter);
            }
            // What the reader may see: a follower up to the log end, a consumer up to the HW.
            let (upper, hw, lso, log_start) = if from_follower {
                let fetched = hosted.lock().map_err(|c| (c, None)).and_then(|mut p| {
                    let in_sync = p.state().isr.contains(&replica_id);
                    p.follower_fetch(
                        replica_id,
                        fp.fetch_offset,
                        fp.last_fetched_epoch,
                        fp.log_start_offset,
                        now,
                    )
                    .map(|f| (f, in_sync))
                    .map_err(|e| {
                        (
                            e.error_code(),
                            Some((p.high_watermark(), p.log().log_start_offset())),
                        )
                    })
                });
                let (f, in_sync) = match fetched {
                    Ok(f) => f,
                    Err((code, offsets)) => {
                        let mut d = error(index, code);
                        if let Some((hw, start)) = offsets {
                            d.high_watermark = hw;
                            d.log_start_offset = start;
                        }
                        partitions.push(d);
                        failed = true;
                        continue;
                    }
                };
                if f.high_watermark_advanced {
                    hosted.hw_waiters.wake_all();
                }
                // The follower reported its log start: DeleteRecords may complete.
                hosted.lw_waiters.wake_all();
                broker.propose_isr(&hosted, f.isr_proposal.clone());
                if let Some(d) = f.diverging_epoch {
                    // Answered at once, as Kafka does: the follower must truncate first.
                    failed = true;
                    partitions.push(
                        PartitionData::default()
                            .with_partition_index(index)
                            .with_high_watermark(f.high_watermark)
                            .with_last_stable_offset(f.high_watermark)
                            .with_log_start_offset(f.log_start_offset)
                            .with_diverging_epoch(
                                EpochEndOffset::default()
                                    .with_epoch(d.epoch)
                                    .with_end_offset(d.end_offset),
                            )
                            .with_records(Some(bytes::Bytes::new())),
                    );
                    continue;
                }
                // Replication throttle: an out-of-sync follower of a throttled replica gets
                // nothing while the leader's quota is spent (Kafka's shouldLeaderThrottle).
                throttled = !in_sync && hosted.leader_throttled();
                let upper = if throttled && quota.is_exceeded(now) {
                    fp.fetch_offset
                } else {
                    f.log_end_offset
                };
                (
                    upper,
                    f.high_watermark,
                    f.high_watermark,
                    f.log_start_offset,
                )
            } else {
                // The LSO first: the HW read after it is never below it.
                let lso = hosted.last_stable_offset();
                let hw = hosted.high_watermark();
                // read_committed (isolation level 1) reads below the last stable offset.
                let upper = if req.isolation_level == 1 { lso } else { hw };
                (upper, hw, lso, hosted.reader.log_start_offset())
            };
            // The first partition may exceed max_bytes by one batch (KIP-74); later ones may not.
            let limit = (fp.partition_max_bytes.max(0) as u64).min(if total == 0 {
                u64::MAX
            } else {
                remaining
            });
            let data = match hosted.reader.read(fp.fetch_offset, limit.max(1), upper) {
                Ok(r) => {
                    // A batch larger than the limit is sent only when nothing else was.
                    let slice = r
                        .records
                        .as_ref()
                        .filter(|s| total == 0 || s.len() <= remaining);
                    let bytes = match slice.map(|s| records(s, attachments)) {
                        None => bytes::Bytes::new(),
                        Some(Ok(b)) => b,
                        Some(Err(e)) => {
                            partitions.push(error(index, e.error_code()));
                            failed = true;
                            continue;
                        }
                    };
                    total += bytes.len();
                    remaining = remaining.saturating_sub(bytes.len() as u64);
                    sent.push((Arc::clone(&hosted), bytes.len() as u64));
                    if throttled {
                        quota.record(bytes.len() as u64, now);
                    }
                    // read_committed: the aborted transactions the returned batches overlap,
                    // so the consumer drops their records.
                    let aborted = (req.isolation_level == 1 && !from_follower).then(|| {
                        if !hosted.may_have_aborted() {
                            return Vec::new();
                        }
                        let upper_offset = r
                            .records
                            .as_ref()
                            .filter(|_| !bytes.is_empty())
                            .map_or(fp.fetch_offset, |s| s.last_offset() + 1);
                        hosted
                            .lock()
                            .map(|p| p.aborted_transactions(fp.fetch_offset, upper_offset))
                            .unwrap_or_default()
                            .into_iter()
                            .map(|a| {
                                AbortedTransaction::default()
                                    .with_producer_id(ProducerId(a.producer_id))
                                    .with_first_offset(a.first_offset)
                            })
                            .collect()
                    });
                    let d = PartitionData::default()
                        .with_partition_index(index)
                        .with_high_watermark(hw)
                        .with_last_stable_offset(lso)
                        .with_aborted_transactions(aborted)
                        .with_records(Some(bytes));
                    // log_start_offset exists from v5.
                    if version >= 5 {
                        d.with_log_start_offset(log_start)
                    } else {
                        d
                    }
                }
                Err(e) => {
                    failed = true;
                    let mut d = error(index, e.error_code());
                    d.high_watermark = hw;
                    d.last_stable_offset = lso;
                    if version >= 5 {
                        d.log_start_offset = log_start;
                    }
                    d
                }
            };
            partitions.push(data);
        }
        topics.push(
            FetchableTopicResponse::default()
                .with_topic(topic.topic.clone())
                .with_topic_id(topic.topic_id)
                .with_partitions(partitions),
        );
    }
    (
        FetchResponse::default().with_responses(topics),
        total,
        failed,
    )
}

pub(super) async fn handle(
    broker: &Broker,
    ctx: &RequestContext,
    req: FetchRequest,
) -> (FetchResponse, Attachments) {
    let version = ctx.api_version;
    // From v15 the replica is named in ReplicaState.
    let replica_id = if version >= 15 {
        req.replica_state.replica_id.0
    } else {
        req.replica_id.0
    };
    let now_ms = broker.clock.now_ms();
    let (req, session) = match broker
        .fetch_sessions
        .plan(version, &req, replica_id >= 0, now_ms)
    {
        Plan::Sessionless => (req, None),
        Plan::Session { id, full, request } => (*request, Some((id, full))),
        Plan::Error(code) => {
            let response = FetchResponse::default()
                .with_error_code(code)
                .with_session_id(0);
            return (response, Attachments::default());
        }
    };
    // A follower needs CLUSTER_ACTION on the cluster, a consumer READ on each topic; either
    // refused is TOPIC_AUTHORIZATION_FAILED on the partitions, as in Kafka.
    let image = broker.image();
    let allowed: Vec<bool> = if !broker.authorizes() {
        // No authorizer: no lookups on the fetch path.
        vec![true; req.topics.len()]
    } else if replica_id >= 0 {
        let ok = broker.authorized_cluster(ctx, &image, AclOperation::ClusterAction);
        vec![ok; req.topics.len()]
    } else {
        req.topics
            .iter()
            .map(|t| match find_topic(&image, &t.topic.0, &t.topic_id) {
                Some(found) => broker.authorized(
                    ctx,
                    &image,
                    AclOperation::Read,
                    ResourceType::Topic,
                    &found.name,
                ),
                // An unknown topic id is UNKNOWN_TOPIC_ID before any authorization.
                None if t.topic.0.is_empty() => true,
                None => broker.authorized(
                    ctx,
                    &image,
                    AclOperation::Read,
                    ResourceType::Topic,
                    &t.topic.0,
                ),
            })
            .collect()
    };
    drop(image);
    let deadline = Instant::now() + Duration::from_millis(req.max_wait_ms.clamp(0, 60_000) as u64);
    let waiter = Arc::new(Notify::new());
    let mut sent = Vec::new();
    let mut attachments = Attachments::default();
    // Bytes out (or replication bytes out) of the response that goes out, as Kafka counts.
    let count = |sent: &[(Arc<HostedPartition>, u64)]| {
        for (hosted, n) in sent {
            if replica_id >= 0 {
                hosted.metrics.replication_bytes_out.inc_by(*n);
            } else {
                hosted.metrics.bytes_out.inc_by(*n);
            }
        }
    };
    // After the wait times out, one last read is answered whatever it holds.
    let mut last = false;
    loop {
        let (response, bytes, failed) = read_once(
            broker,
            version,
            &req,
            replica_id,
            &allowed,
            &waiter,
            &mut sent,
            &mut attachments,
        );
        if last || bytes >= req.min_bytes.max(1) as usize || failed || Instant::now() >= deadline {
            count(&sent);
            let mut response = response;
            if let Some((id, full)) = session {
                broker
                    .fetch_sessions
                    .finish(version, id, full, &req, &mut response);
            }
            return (response, attachments);
        }
        last = tokio::time::timeout_at(deadline.into(), waiter.notified())
            .await
            .is_err();
    }
}
