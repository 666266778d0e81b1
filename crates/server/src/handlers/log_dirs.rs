//! DescribeLogDirs: the log directory of this broker with each hosted replica's size on disk
//! and offset lag (Kafka's: how far the replica's log end is behind its high watermark), and the
//! file system's total and usable bytes.

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
    let mut by_topic: BTreeMap<String, Vec<DescribeLogDirsPartition>> = BTreeMap::new();
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
        by_topic.entry(hosted.topic.clone()).or_default().push(
            DescribeLogDirsPartition::default()
                .with_partition_index(hosted.index)
                .with_partition_size(size)
                .with_offset_lag(lag),
        );
    }
    let dir = broker.replicas.dir();
    let (error_code, total, usable) = match crate::disk::capacity(dir) {
        Ok((total, usable)) => (0, total as i64, usable as i64),
        Err(e) => {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot read the log directory's capacity");
            (ErrorCode::KafkaStorageError.code(), -1, -1)
        }
    };
    // An offline directory lists no replicas, as in Kafka.
    if error_code != 0 {
        by_topic.clear();
    }
    let topics = by_topic
        .into_iter()
        .map(|(name, mut partitions)| {
            partitions.sort_by_key(|p| p.partition_index);
            DescribeLogDirsTopic::default()
                .with_name(TopicName(StrBytes::from_string(name)))
                .with_partitions(partitions)
        })
        .collect();
    DescribeLogDirsResponse::default().with_results(vec![DescribeLogDirsResult::default()
        .with_error_code(error_code)
        .with_log_dir(StrBytes::from_string(dir.display().to_string()))
        .with_topics(topics)
        .with_total_bytes(total)
        .with_usable_bytes(usable)])
}
