//! ListOffsets: earliest (-2), latest (-1: the high watermark for consumers, the log end for
//! replicas), max timestamp (-3), earliest
//! local (-4, the same as earliest without tiered storage), or the first record at or after a
//! timestamp.

use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};
use odradek_common::{ErrorCode, ToErrorCode};
use odradek_log::OffsetSpec;

use super::Broker;
use crate::replicas::Need;

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
                    let Some(t) = t.filter(|t| t.partitions.contains_key(&lp.partition_index))
                    else {
                        return base.with_error_code(ErrorCode::UnknownTopicOrPartition.code());
                    };
                    let hosted = match broker.replicas.partition(
                        t.id,
                        lp.partition_index,
                        lp.current_leader_epoch,
                        Need::Leader,
                    ) {
                        Ok(h) => h,
                        Err(r) => return base.with_error_code(r.code.code()),
                    };
                    let (leader_epoch, epoch_start) = hosted
                        .lock()
                        .map(|p| (p.leader_epoch(), p.leader_epoch_start_offset()))
                        .unwrap_or((-1, 0));
                    let consumer = req.replica_id.0 < 0;
                    // A new leader whose HW has not reached its epoch's start does not know the
                    // committed end yet: Kafka answers OFFSET_NOT_AVAILABLE, so "latest" never
                    // moves back. (The HW, not the LSO: a transaction open across the leader
                    // change holds the LSO back without making the end unknown.)
                    if consumer
                        && hosted.high_watermark() < epoch_start
                        && matches!(lp.timestamp, -1 | -3)
                    {
                        return base.with_error_code(ErrorCode::OffsetNotAvailable.code());
                    }
                    // Consumers see the log up to the high watermark (read_committed ones up to
                    // the last stable offset); a replica to the end.
                    let hw = hosted.visible_end(req.isolation_level);
                    if lp.timestamp == -1 && consumer {
                        let r = base.with_offset(hw);
                        return if version >= 4 {
                            r.with_leader_epoch(leader_epoch)
                        } else {
                            r
                        };
                    }
                    let spec = match lp.timestamp {
                        -1 => OffsetSpec::Latest,
                        -2 | -4 => OffsetSpec::Earliest,
                        -3 => OffsetSpec::MaxTimestamp,
                        ts if ts >= 0 => OffsetSpec::Timestamp(ts),
                        _ => return base.with_error_code(ErrorCode::InvalidRequest.code()),
                    };
                    match hosted.reader.offset_for(spec) {
                        // Timestamp lookups do not show consumers offsets at or past the high
                        // watermark (earliest is the log start, whatever the HW).
                        Ok(Some(found))
                            if consumer
                                && !matches!(lp.timestamp, -2 | -4)
                                && found.offset >= hw =>
                        {
                            base
                        }
                        Ok(Some(found)) => {
                            let r = base
                                .with_offset(found.offset)
                                .with_timestamp(found.timestamp);
                            // leader_epoch exists from v4.
                            if version >= 4 {
                                r.with_leader_epoch(found.leader_epoch.unwrap_or(leader_epoch))
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
