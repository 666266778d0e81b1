//! Leader elections on request (ElectLeaders: preferred and unclean) and the periodic preferred
//! leader rebalance (`auto.leader.rebalance.enable`).

use std::collections::BTreeMap;

use odradek_common::ErrorCode;
use odradek_metadata::proto::MetadataRecord;
use odradek_metadata::{MetadataImage, TopicImage};

use super::partition_change::{Election, PartitionChange};
use super::reassignment::{acceptable_leader, in_progress};
use super::{err, ControllerResult};
use crate::pb;

/// Kafka's ElectionType: 0 preferred, 1 unclean.
pub const PREFERRED: i32 = 0;
/// Kafka's ElectionType: 0 preferred, 1 unclean.
pub const UNCLEAN: i32 = 1;

/// Elections a rebalance or an all-partitions request makes at most at once (Kafka's
/// `maxElectionsPerImbalance`).
pub const MAX_ELECTIONS: usize = 1000;

fn elect_one(
    image: &MetadataImage,
    topic: &TopicImage,
    partition: i32,
    election_type: i32,
) -> Result<MetadataRecord, (i32, String)> {
    let p = topic.partitions.get(&partition).ok_or_else(|| {
        err(
            ErrorCode::UnknownTopicOrPartition,
            format!("no such partition as {}-{partition}", topic.name),
        )
    })?;
    let preferred = p.replicas.first().copied();
    let not_needed = match election_type {
        PREFERRED => preferred == Some(p.leader),
        _ => p.leader != odradek_metadata::NO_LEADER,
    };
    if not_needed {
        return Err(err(
            ErrorCode::ElectionNotNeeded,
            format!(
                "{}-{partition} already has {} leader {}",
                topic.name,
                if election_type == PREFERRED {
                    "its preferred"
                } else {
                    "a"
                },
                p.leader
            ),
        ));
    }
    let acceptable = acceptable_leader(image);
    let election = if election_type == PREFERRED {
        Election::Preferred
    } else {
        Election::Unclean
    };
    let built = PartitionChange::new(p, topic.id, partition, &acceptable)
        .election(election)
        .build();
    match built.record {
        Some(r) => Ok(r),
        None if election_type == PREFERRED => Err(err(
            ErrorCode::PreferredLeaderNotAvailable,
            format!(
                "the preferred leader {} of {}-{partition} is not in the ISR {:?} or not alive",
                preferred.unwrap_or(-1),
                topic.name,
                p.isr
            ),
        )),
        None => Err(err(
            ErrorCode::EligibleLeadersNotAvailable,
            format!(
                "no live replica of {}-{partition} ({:?}) can lead",
                topic.name, p.replicas
            ),
        )),
    }
}

/// ElectLeaders. With `all`, every partition is tried and those already led as wanted are left
/// out of the answer, as in Kafka.
pub fn elect_leaders(
    image: &MetadataImage,
    request: &pb::ElectLeadersRequest,
) -> ControllerResult<pb::ElectLeadersResponse> {
    let mut records = Vec::new();
    let mut results = Vec::new();
    if request.election_type != PREFERRED && request.election_type != UNCLEAN {
        return ControllerResult::answer(pb::ElectLeadersResponse {
            error_code: i32::from(ErrorCode::InvalidRequest.code()),
            error_message: format!("unknown election type {}", request.election_type),
            results,
        });
    }
    let mut outcome = |topic: &str, partition: i32, r: Result<MetadataRecord, (i32, String)>| {
        let (error_code, error_message) = match r {
            Ok(record) => {
                records.push(record);
                (0, String::new())
            }
            Err(e) => e,
        };
        results.push(pb::ElectionResult {
            topic: topic.to_string(),
            partition,
            error_code,
            error_message,
        });
    };
    if request.all {
        let not_needed = i32::from(ErrorCode::ElectionNotNeeded.code());
        for t in image.topics.by_id.values() {
            for index in t.partitions.keys() {
                let r = elect_one(image, t, *index, request.election_type);
                if !matches!(&r, Err((code, _)) if *code == not_needed) {
                    outcome(&t.name, *index, r);
                }
            }
        }
    } else {
        for tp in &request.partitions {
            match image.topics.get_by_name(&tp.topic) {
                Some(t) => outcome(
                    &tp.topic,
                    tp.partition,
                    elect_one(image, t, tp.partition, request.election_type),
                ),
                None => outcome(
                    &tp.topic,
                    tp.partition,
                    Err(err(
                        ErrorCode::UnknownTopicOrPartition,
                        format!("no such topic as {}", tp.topic),
                    )),
                ),
            }
        }
    }
    ControllerResult {
        records,
        response: pb::ElectLeadersResponse {
            error_code: 0,
            error_message: String::new(),
            results,
        },
    }
}

/// The preferred leader elections a rebalance makes: for each broker whose share of
/// partitions it prefers but does not lead exceeds `imbalance_percentage`
/// (`leader.imbalance.per.broker.percentage`), those partitions go back to it where it is
/// alive and in the ISR. Partitions under reassignment are left alone.
pub fn balance_leaders(image: &MetadataImage, imbalance_percentage: u32) -> Vec<MetadataRecord> {
    // Per preferred broker: how many partitions it prefers, and those it does not lead.
    #[derive(Default)]
    struct Preferred<'a> {
        total: usize,
        imbalanced: Vec<(&'a TopicImage, i32)>,
    }
    let mut preferred: BTreeMap<i32, Preferred<'_>> = BTreeMap::new();
    for t in image.topics.by_id.values() {
        for (index, p) in &t.partitions {
            let Some(&first) = p.replicas.first() else {
                continue;
            };
            let entry = preferred.entry(first).or_default();
            entry.total += 1;
            if p.leader != first && !in_progress(p) {
                entry.imbalanced.push((t, *index));
            }
        }
    }
    let acceptable = acceptable_leader(image);
    let mut records = Vec::new();
    for (broker, Preferred { total, imbalanced }) in preferred {
        if imbalanced.is_empty() || !acceptable(broker) {
            continue;
        }
        // Above the percentage, exactly (no rounding down).
        if imbalanced.len() * 100 <= imbalance_percentage as usize * total {
            continue;
        }
        tracing::info!(broker, imbalanced = imbalanced.len(), total, "leader imbalance above leader.imbalance.per.broker.percentage; electing preferred leaders");
        for (t, index) in imbalanced {
            if records.len() >= MAX_ELECTIONS {
                return records;
            }
            if let Ok(r) = elect_one(image, t, index, PREFERRED) {
                records.push(r);
            }
        }
    }
    records
}
