//! Fetch: whole batches from each partition up to the high watermark, bounded by
//! `partition_max_bytes` and `max_bytes`; waits up to `max_wait_ms` for `min_bytes`, woken by
//! appends. Sessionless (every request lists its partitions).

use std::time::{Duration, Instant};

use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{FetchRequest, FetchResponse};
use odradek_common::{ErrorCode, ToErrorCode};
use odradek_frontend::RequestContext;

use super::{find_topic, Broker};

fn error(index: i32, code: ErrorCode) -> PartitionData {
    PartitionData::default()
        .with_partition_index(index)
        .with_error_code(code.code())
        .with_high_watermark(-1)
}

/// One pass over the requested partitions; returns the response and the bytes it carries.
fn read_once(broker: &Broker, version: i16, req: &FetchRequest) -> (FetchResponse, usize) {
    let image = broker.image();
    let mut remaining = req.max_bytes.max(0) as u64;
    let mut total = 0usize;
    let mut topics = Vec::new();
    for topic in &req.topics {
        let name = topic.topic.0.to_string();
        let t = find_topic(&image, &name, &topic.topic_id);
        let mut partitions = Vec::new();
        for fp in &topic.partitions {
            let index = fp.partition;
            let Some(t) = t.as_ref() else {
                // Kafka: UNKNOWN_TOPIC_ID when the request names topics by id (v13+).
                let code = if name.is_empty() {
                    100
                } else {
                    ErrorCode::UnknownTopicOrPartition.code()
                };
                partitions
                    .push(error(index, ErrorCode::UnknownTopicOrPartition).with_error_code(code));
                continue;
            };
            let Some(p) = t.partitions.get(&index) else {
                partitions.push(error(index, ErrorCode::UnknownTopicOrPartition));
                continue;
            };
            let log = match broker.logs.get(t.id, index) {
                Some(l) if p.leader == broker.id() => l,
                _ => {
                    partitions.push(error(index, ErrorCode::NotLeaderOrFollower));
                    continue;
                }
            };
            if fp.current_leader_epoch >= 0 && fp.current_leader_epoch < p.leader_epoch {
                partitions.push(error(index, ErrorCode::FencedLeaderEpoch));
                continue;
            }
            let hw = log.reader.log_end_offset();
            // The first partition may exceed max_bytes by one batch (KIP-74); later ones may not.
            let limit = (fp.partition_max_bytes.max(0) as u64).min(if total == 0 {
                u64::MAX
            } else {
                remaining
            });
            let read = log.reader.read(fp.fetch_offset, limit.max(1), hw);
            let data = match read {
                Ok(r) => {
                    let bytes = match r.to_bytes() {
                        Ok(b) => b,
                        Err(e) => {
                            partitions.push(error(index, e.error_code()));
                            continue;
                        }
                    };
                    // A batch larger than the limit is sent only when nothing else was.
                    let bytes = if total > 0 && bytes.len() as u64 > remaining {
                        bytes::Bytes::new()
                    } else {
                        bytes
                    };
                    total += bytes.len();
                    remaining = remaining.saturating_sub(bytes.len() as u64);
                    let d = PartitionData::default()
                        .with_partition_index(index)
                        .with_high_watermark(hw)
                        .with_last_stable_offset(hw)
                        .with_records(Some(bytes));
                    // log_start_offset exists from v5.
                    if version >= 5 {
                        d.with_log_start_offset(r.log_start_offset)
                    } else {
                        d
                    }
                }
                Err(e) => {
                    let mut d = error(index, e.error_code());
                    d.high_watermark = hw;
                    d.last_stable_offset = hw;
                    if version >= 5 {
                        d.log_start_offset = log.reader.log_start_offset();
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
    (FetchResponse::default().with_responses(topics), total)
}

pub(super) async fn handle(
    broker: &Broker,
    ctx: &RequestContext,
    req: FetchRequest,
) -> FetchResponse {
    let version = ctx.api_version;
    let deadline = Instant::now() + Duration::from_millis(req.max_wait_ms.clamp(0, 60_000) as u64);
    loop {
        // Register for wake-ups before reading, so an append in between is not missed.
        let notified = broker.logs.appended.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let (response, bytes) = read_once(broker, version, &req);
        let errors = response
            .responses
            .iter()
            .flat_map(|t| &t.partitions)
            .any(|p| p.error_code != 0);
        if bytes >= req.min_bytes.max(1) as usize || errors || Instant::now() >= deadline {
            return response;
        }
        if tokio::time::timeout_at(deadline.into(), notified)
            .await
            .is_err()
        {
            return read_once(broker, version, &req).0;
        }
    }
}
