//! Partition reassignment (KIP-455 as KRaft does it). A reassignment is state in the partition's
//! registration, so it survives controller failover: the replica set becomes the target plus the
//! replicas being removed, with `adding` and `removing` recorded. New replicas join as
//! followers and catch up; when the ISR holds every target replica, the change that lets them
//! in also completes the reassignment ([`super::partition_change`]): the removed replicas leave,
//! a removed leader hands over, and their brokers delete their copies.

use std::collections::BTreeSet;

use odradek_common::ErrorCode;
use odradek_metadata::proto::MetadataRecord;
use odradek_metadata::{MetadataImage, PartitionRegistration};

use super::partition_change::{Election, PartitionChange};
use super::{err, ControllerResult, ControllerSettings};
use crate::pb;

/// Kafka's checks of a manual assignment: not empty, every broker registered, none twice, and
/// (when given) as many replicas as the topic's others.
pub fn validate_assignment(
    image: &MetadataImage,
    replicas: &[i32],
    replication_factor: Option<usize>,
) -> Result<(), (i32, String)> {
    if replicas.is_empty() {
        return Err(err(
            ErrorCode::InvalidReplicaAssignment,
            "the manual partition assignment includes an empty replica list",
        ));
    }
    let mut seen = BTreeSet::new();
    for b in replicas {
        if !image.cluster.brokers.contains_key(b) {
            return Err(err(
                ErrorCode::InvalidReplicaAssignment,
                format!("the manual partition assignment includes broker {b}, but no such broker is registered"),
            ));
        }
        if !seen.insert(*b) {
            return Err(err(
                ErrorCode::InvalidReplicaAssignment,
                format!("the manual partition assignment includes broker {b} more than once"),
            ));
        }
    }
    if let Some(rf) = replication_factor {
        if replicas.len() != rf {
            return Err(err(
                ErrorCode::InvalidReplicaAssignment,
                format!(
                    "the manual partition assignment has {} replica(s), but the topic's other partitions have {rf}",
                    replicas.len()
                ),
            ));
        }
    }
    Ok(())
}

/// Whether a broker may lead: registered, unfenced, not shutting down.
pub fn acceptable_leader(image: &MetadataImage) -> impl Fn(i32) -> bool + '_ {
    |b| {
        image
            .cluster
            .brokers
            .get(&b)
            .is_some_and(|r| !r.fenced && !r.in_controlled_shutdown)
    }
}

/// Whether a reassignment is under way.
pub fn in_progress(p: &PartitionRegistration) -> bool {
    !p.adding_replicas.is_empty() || !p.removing_replicas.is_empty()
}

/// The replicas before the reassignment started.
pub fn original_replicas(p: &PartitionRegistration) -> Vec<i32> {
    p.replicas
        .iter()
        .copied()
        .filter(|r| !p.adding_replicas.contains(r))
        .collect()
}

/// AlterPartitionReassignments: each partition gets its target (`None`: cancel). Validated
/// per partition; the records of those that pass commit together.
pub fn alter_partition_reassignments(
    image: &MetadataImage,
    request: &pb::AlterPartitionReassignmentsRequest,
    settings: &ControllerSettings,
) -> ControllerResult<pb::AlterPartitionReassignmentsResponse> {
    let mut records = Vec::new();
    let mut results = Vec::new();
    for t in &request.topics {
        for p in &t.partitions {
            let target = p.replicas.as_ref().map(|r| r.ids.as_slice());
            let (error_code, error_message) = match alter_one(
                image,
                &t.name,
                p.partition,
                target,
                request.allow_replication_factor_change,
                settings,
            ) {
                Ok(record) => {
                    records.extend(record);
                    (0, String::new())
                }
                Err(e) => e,
            };
            results.push(pb::ReassignmentResult {
                topic: t.name.clone(),
                partition: p.partition,
                error_code,
                error_message,
            });
        }
    }
    ControllerResult {
        records,
        response: pb::AlterPartitionReassignmentsResponse { results },
    }
}

fn alter_one(
    image: &MetadataImage,
    topic_name: &str,
    partition: i32,
    target: Option<&[i32]>,
    allow_replication_factor_change: bool,
    settings: &ControllerSettings,
) -> Result<Option<MetadataRecord>, (i32, String)> {
    let topic = image.topics.get_by_name(topic_name).ok_or_else(|| {
        err(
            ErrorCode::UnknownTopicOrPartition,
            format!("unable to find a topic named {topic_name}"),
        )
    })?;
    let p = topic.partitions.get(&partition).ok_or_else(|| {
        err(
            ErrorCode::UnknownTopicOrPartition,
            format!("unable to find partition {topic_name}-{partition}"),
        )
    })?;
    let acceptable = acceptable_leader(image);
    let Some(target) = target else {
        // Cancel: back to the original replicas, without the ones being added.
        if !in_progress(p) {
            return Err(err(
                ErrorCode::NoReassignmentInProgress,
                format!("no reassignment is in progress for {topic_name}-{partition}"),
            ));
        }
        let replicas = original_replicas(p);
        let mut isr: Vec<i32> = p
            .isr
            .iter()
            .copied()
            .filter(|r| !p.adding_replicas.contains(r))
            .collect();
        let unclean = super::replication::unclean_enabled(image, topic_name, settings);
        if isr.is_empty() {
            if !unclean {
                return Err(err(
                    ErrorCode::InvalidReplicaAssignment,
                    format!("unable to revert the assignment of {topic_name}-{partition}: it would require an unclean leader election"),
                ));
            }
            isr = replicas.iter().copied().take(1).collect();
        }
        let change = PartitionChange::new(p, topic.id, partition, &acceptable)
            .isr(isr)
            .replicas(replicas)
            .removing(vec![])
            .adding(vec![])
            .election(if unclean {
                Election::Unclean
            } else {
                Election::Online
            });
        return Ok(change.build().record);
    };
    validate_assignment(image, target, None)?;
    // KIP-860: the replication factor is the in-flight target's (the replicas not being removed).
    let in_flight = p
        .replicas
        .iter()
        .filter(|r| !p.removing_replicas.contains(r))
        .count();
    if !allow_replication_factor_change && target.len() != in_flight {
        return Err(err(
            ErrorCode::InvalidReplicationFactor,
            format!(
                "the reassignment of {topic_name}-{partition} changes its replication factor from {in_flight} to {}, and the request does not allow that",
                target.len()
            ),
        ));
    }
    // As Kafka: against the whole current replica set, so a replica a previous target was
    // adding (and that may be in the ISR, even lead) is kept until this one completes.
    let current = &p.replicas;
    let removing: Vec<i32> = current
        .iter()
        .copied()
        .filter(|r| !target.contains(r))
        .collect::<BTreeSet<i32>>()
        .into_iter()
        .collect();
    let adding: Vec<i32> = target
        .iter()
        .copied()
        .filter(|r| !current.contains(r))
        .collect::<BTreeSet<i32>>()
        .into_iter()
        .collect();
    let mut replicas = target.to_vec();
    replicas.extend(removing.iter().copied());
    let change = PartitionChange::new(p, topic.id, partition, &acceptable)
        .replicas(replicas)
        .removing(removing)
        .adding(adding);
    Ok(change.build().record)
}

/// ListPartitionReassignments: the partitions being reassigned, of the named topics (all topics
/// when `topics` is empty and `all` is set).
pub fn list_partition_reassignments(
    image: &MetadataImage,
    request: &pb::ListPartitionReassignmentsRequest,
) -> pb::ListPartitionReassignmentsResponse {
    let mut reassignments = Vec::new();
    let mut add = |name: &str, index: i32, p: &PartitionRegistration| {
        if in_progress(p) {
            reassignments.push(pb::OngoingReassignment {
                topic: name.to_string(),
                partition: index,
                replicas: p.replicas.clone(),
                adding_replicas: p.adding_replicas.clone(),
                removing_replicas: p.removing_replicas.clone(),
            });
        }
    };
    if request.all {
        for t in image.topics.by_id.values() {
            for (index, p) in &t.partitions {
                add(&t.name, *index, p);
            }
        }
    } else {
        for t in &request.topics {
            let Some(topic) = image.topics.get_by_name(&t.name) else {
                continue;
            };
            for index in &t.partitions {
                if let Some(p) = topic.partitions.get(index) {
                    add(&topic.name, *index, p);
                }
            }
        }
    }
    reassignments.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    pb::ListPartitionReassignmentsResponse { reassignments }
}
