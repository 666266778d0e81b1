//! DescribeLogDirs: each of this broker's log directories with its replicas' sizes on disk and
//! offset lags (Kafka's: how far a replica's log end is behind its high watermark), the file
//! system's total and usable bytes, and KAFKA_STORAGE_ERROR (no replicas) for a directory that
//! went offline.

use std::collections::BTreeMap;

use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use odradek_common::ErrorCode;

use super::Broker;

pub(super) fn describe_log_dirs(
    broker: &Broker,
    req: DescribeLogDirsRequest,
) -> DescribeLogDirsResponse {
    let wanted: Option<BTreeMap<String, Vec<i32>>> = req.topics.as_ref().map(|topics| {
        topics
            .iter()
            .map(|t| (t.topic.0.to_string(), t.partitions.clone()))
            .collect()
    });
    // Per directory, per topic.
    let mut by_dir: BTreeMap<usize, BTreeMap<String, Vec<DescribeLogDirsPartition>>> =
        BTreeMap::new();
    for hosted in broker.replicas.all() {
        if let Some(w) = &wanted {
            if !w
                .get(&hosted.topic)
                .is_some_and(|ps| ps.contains(&hosted.index))
            {
                continue;
            }
        }
        let Ok(p) = hosted.lock() else { continue };
        let size = p.log().size_in_bytes() as i64;
        let lag = (p.high_watermark() - p.log().log_end_offset()).max(0);
        drop(p);
        by_dir
            .entry(hosted.dir)
            .or_default()
            .entry(hosted.topic.clone())
            .or_default()
            .push(
                DescribeLogDirsPartition::default()
                    .with_partition_index(hosted.index)
                    .with_partition_size(size)
                    .with_offset_lag(lag),
            );
    }
    let results = broker
        .replicas
        .dirs()
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let capacity = if d.is_online() {
                crate::disk::capacity(&d.path).map_err(|e| {
                    tracing::warn!(dir = %d.path.display(), error = %e, "cannot read the log directory's capacity");
                })
            } else {
                Err(())
            };
            let (error_code, total, usable, topics) = match capacity {
                Ok((total, usable)) => {
                    let topics = by_dir
                        .remove(&i)
                        .unwrap_or_default()
                        .into_iter()
                        .map(|(name, mut partitions)| {
                            partitions.sort_by_key(|p| p.partition_index);
                            DescribeLogDirsTopic::default()
                                .with_name(TopicName(StrBytes::from_string(name)))
                                .with_partitions(partitions)
                        })
                        .collect();
                    (0, total as i64, usable as i64, topics)
                }
                // An offline directory lists no replicas, as in Kafka.
                Err(()) => (ErrorCode::KafkaStorageError.code(), -1, -1, Vec::new()),
            };
            DescribeLogDirsResult::default()
                .with_error_code(error_code)
                .with_log_dir(StrBytes::from_string(d.path.display().to_string()))
                .with_topics(topics)
                .with_total_bytes(total)
                .with_usable_bytes(usable)
        })
        .collect();
    DescribeLogDirsResponse::default().with_results(results)
}
