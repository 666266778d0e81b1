//! The ShareFetch and ShareAcknowledge requests a [`super::ShareMember`] sends.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use kafka_protocol::messages::share_acknowledge_request::{AcknowledgePartition, AcknowledgeTopic};
use kafka_protocol::messages::share_fetch_request::{FetchPartition, FetchTopic, ForgottenTopic};
use kafka_protocol::messages::{
    share_acknowledge_request, share_fetch_request, GroupId, ShareAcknowledgeRequest,
    ShareFetchRequest,
};
use kafka_protocol::protocol::StrBytes;

use super::acknowledgements::{AckBatch, SharePartition};

/// ShareFetch limits: Kafka's share consumer defaults (`max.poll.records` 500), and 1 MiB
/// per response.
const MAX_RECORDS: i32 = 500;
const MAX_BYTES: i32 = 1 << 20;

/// Who sends: the group and the member id.
pub(super) struct Sender<'a> {
    pub group: &'a str,
    pub member_id: &'a str,
}

/// The topics of a share request: each topic id with its partitions, in order.
fn by_topic<T>(
    partitions: impl Iterator<Item = (SharePartition, T)>,
) -> BTreeMap<uuid::Uuid, Vec<(i32, T)>> {
    let mut out: BTreeMap<uuid::Uuid, Vec<(i32, T)>> = BTreeMap::new();
    for ((id, p), v) in partitions {
        out.entry(id).or_default().push((p, v));
    }
    out
}

pub(super) fn fetch_request(
    member: Sender<'_>,
    epoch: i32,
    max_wait: Duration,
    sent: &BTreeMap<SharePartition, Vec<AckBatch>>,
    forgotten: &BTreeSet<SharePartition>,
) -> ShareFetchRequest {
    let batch = |b: &AckBatch| {
        share_fetch_request::AcknowledgementBatch::default()
            .with_first_offset(b.first_offset)
            .with_last_offset(b.last_offset)
            .with_acknowledge_types(vec![b.acknowledge_type])
    };
    let topics = by_topic(sent.iter().map(|(tp, b)| (*tp, b)))
        .into_iter()
        .map(|(id, ps)| {
            FetchTopic::default().with_topic_id(id).with_partitions(
                ps.into_iter()
                    .map(|(p, batches)| {
                        FetchPartition::default()
                            .with_partition_index(p)
                            .with_acknowledgement_batches(batches.iter().map(batch).collect())
                    })
                    .collect(),
            )
        })
        .collect();
    let forgotten = by_topic(forgotten.iter().map(|tp| (*tp, ())))
        .into_iter()
        .map(|(id, ps)| {
            ForgottenTopic::default()
                .with_topic_id(id)
                .with_partitions(ps.into_iter().map(|(p, ())| p).collect())
        })
        .collect();
    ShareFetchRequest::default()
        .with_group_id(Some(GroupId(StrBytes::from_string(
            member.group.to_string(),
        ))))
        .with_member_id(Some(StrBytes::from_string(member.member_id.to_string())))
        .with_share_session_epoch(epoch)
        .with_max_wait_ms(max_wait.as_millis().min(i32::MAX as u128) as i32)
        .with_min_bytes(1)
        .with_max_bytes(MAX_BYTES)
        .with_max_records(MAX_RECORDS)
        .with_batch_size(MAX_RECORDS)
        .with_topics(topics)
        .with_forgotten_topics_data(forgotten)
}

pub(super) fn acknowledge_request(
    member: Sender<'_>,
    epoch: i32,
    sent: &BTreeMap<SharePartition, Vec<AckBatch>>,
) -> ShareAcknowledgeRequest {
    let batch = |b: &AckBatch| {
        share_acknowledge_request::AcknowledgementBatch::default()
            .with_first_offset(b.first_offset)
            .with_last_offset(b.last_offset)
            .with_acknowledge_types(vec![b.acknowledge_type])
    };
    let topics = by_topic(
        sent.iter()
            .filter(|(_, b)| !b.is_empty())
            .map(|(tp, b)| (*tp, b)),
    )
    .into_iter()
    .map(|(id, ps)| {
        AcknowledgeTopic::default()
            .with_topic_id(id)
            .with_partitions(
                ps.into_iter()
                    .map(|(p, batches)| {
                        AcknowledgePartition::default()
                            .with_partition_index(p)
                            .with_acknowledgement_batches(batches.iter().map(batch).collect())
                    })
                    .collect(),
            )
    })
    .collect();
    ShareAcknowledgeRequest::default()
        .with_group_id(Some(GroupId(StrBytes::from_string(
            member.group.to_string(),
        ))))
        .with_member_id(Some(StrBytes::from_string(member.member_id.to_string())))
        .with_share_session_epoch(epoch)
        .with_topics(topics)
}
