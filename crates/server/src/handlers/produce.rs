//! Produce: validate and append each partition's batch as leader; acks=0 gets no response.
//! With one replica per partition (until replication lands) an append is committed at once.

use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use kafka_protocol::protocol::StrBytes;
use odradek_common::{ErrorCode, ToErrorCode};
use odradek_frontend::RequestContext;
use odradek_log::{BatchHeader, LOG_OVERHEAD};
use odradek_metadata::ConfigResource;

use super::{find_topic, Broker};

/// A partition failure; `error_message` exists from v8, so older versions get only the code.
fn fail(
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

pub(super) async fn handle(
    broker: &Broker,
    ctx: &RequestContext,
    req: ProduceRequest,
) -> Option<ProduceResponse> {
    let version = ctx.api_version;
    // Boxed: a partition response is large, and most partitions succeed.
    let fail = |index, code, message: String| Box::new(fail(version, index, code, message));
    let image = broker.image();
    let now = broker.clock.now_ms();
    let mut appended = false;
    let mut responses = Vec::new();
    for topic in &req.topic_data {
        let name = topic.name.0.to_string();
        let t = find_topic(&image, &name, &topic.topic_id);
        let min_isr: usize = t
            .as_ref()
            .and_then(|t| {
                image
                    .configs
                    .get(&ConfigResource::Topic(t.name.clone()))
                    .get("min.insync.replicas")
                    .and_then(|v| v.parse().ok())
            })
            .unwrap_or(1);
        let mut partitions = Vec::new();
        for pd in &topic.partition_data {
            let index = pd.index;
            let result = (|| {
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
                let p = t.partitions.get(&index).ok_or_else(|| {
                    fail(
                        index,
                        ErrorCode::UnknownTopicOrPartition,
                        format!("partition {index} of '{name}' does not exist"),
                    )
                })?;
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
                if h.producer_id >= 0 {
                    return Err(fail(
                        index,
                        ErrorCode::InvalidRecord,
                        "idempotent and transactional producers are not supported yet".into(),
                    ));
                }
                if p.leader != broker.id() {
                    return Err(fail(
                        index,
                        ErrorCode::NotLeaderOrFollower,
                        format!("broker {} does not lead {name}-{index}", broker.id()),
                    ));
                }
                if req.acks == -1 && p.isr.len() < min_isr {
                    return Err(fail(
                        index,
                        ErrorCode::NotEnoughReplicas,
                        format!(
                            "ISR has {} replicas, min.insync.replicas is {min_isr}",
                            p.isr.len()
                        ),
                    ));
                }
                let log = broker.logs.get(t.id, index).ok_or_else(|| {
                    fail(
                        index,
                        ErrorCode::NotLeaderOrFollower,
                        "partition log not open yet".into(),
                    )
                })?;
                let info = {
                    let mut log = log.log.lock().map_err(|_| {
                        fail(
                            index,
                            ErrorCode::KafkaStorageError,
                            "log lock poisoned".into(),
                        )
                    })?;
                    let info = log
                        .append_as_leader(&records, p.leader_epoch, now)
                        .map_err(|e| fail(index, e.error_code(), e.to_string()))?;
                    // Single replica: committed as soon as appended.
                    let end = log.log_end_offset();
                    log.update_high_watermark(end);
                    (info, log.log_start_offset())
                };
                Ok(info)
            })();
            partitions.push(match result {
                Ok((info, log_start)) => {
                    appended = true;
                    let r = PartitionProduceResponse::default()
                        .with_index(index)
                        .with_base_offset(info.first_offset)
                        .with_log_append_time_ms(info.log_append_time_ms.unwrap_or(-1));
                    // log_start_offset exists from v5.
                    if version >= 5 {
                        r.with_log_start_offset(log_start)
                    } else {
                        r
                    }
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
    if appended {
        broker.logs.appended.notify_waiters();
    }
    (req.acks != 0).then(|| ProduceResponse::default().with_responses(responses))
}
