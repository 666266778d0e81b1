//! ListOffsets: earliest (-2), latest (-1, the high watermark), max timestamp (-3), earliest
//! local (-4, the same as earliest without tiered storage), or the first record at or after a
//! timestamp.

use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};
use odradek_common::{ErrorCode, ToErrorCode};
use odradek_log::OffsetSpec;

use super::Broker;

pub(super) fn handle(
    broker: &Broker,
    version: i16,
    req: ListOffsetsRequest,
) -> ListOffsetsResponse {
    let image = broker.image();
    let topics = req
        .topics
        .iter()
        .map(|topic| {
            let name = topic.name.0.to_string();
            let t = image.topics.get_by_name(&name);
            let partitions = topic
                .partitions
                .iter()
                .map(|lp| {
                    let base = ListOffsetsPartitionResponse::default()
                        .with_partition_index(lp.partition_index)
                        .with_timestamp(-1)
                        .with_offset(-1)
                        .with_leader_epoch(-1);
                    let Some((t, p)) =
                        t.and_then(|t| t.partitions.get(&lp.partition_index).map(|p| (t, p)))
                    else {
                        return base.with_error_code(ErrorCode::UnknownTopicOrPartition.code());
                    };
                    let Some(log) = broker
                        .logs
                        .get(t.id, lp.partition_index)
                        .filter(|_| p.leader == broker.id())
                    else {
                        return base.with_error_code(ErrorCode::NotLeaderOrFollower.code());
                    };
                    if lp.current_leader_epoch >= 0 && lp.current_leader_epoch < p.leader_epoch {
                        return base.with_error_code(ErrorCode::FencedLeaderEpoch.code());
                    }
                    let spec = match lp.timestamp {
                        -1 => OffsetSpec::Latest,
                        -2 | -4 => OffsetSpec::Earliest,
                        -3 => OffsetSpec::MaxTimestamp,
                        ts if ts >= 0 => OffsetSpec::Timestamp(ts),
                        _ => return base.with_error_code(ErrorCode::InvalidRequest.code()),
                    };
                    match log.reader.offset_for(spec) {
                        Ok(Some(found)) => {
                            let r = base
                                .with_offset(found.offset)
                                .with_timestamp(found.timestamp);
                            // leader_epoch exists from v4.
                            if version >= 4 {
                                r.with_leader_epoch(found.leader_epoch.unwrap_or(p.leader_epoch))
                            } else {
                                r
                            }
                        }
                        Ok(None) => base,
                        Err(e) => base.with_error_code(e.error_code().code()),
                    }
                })
                .collect();
            ListOffsetsTopicResponse::default()
                .with_name(topic.name.clone())
                .with_partitions(partitions)
        })
        .collect();
    ListOffsetsResponse::default().with_topics(topics)
}
