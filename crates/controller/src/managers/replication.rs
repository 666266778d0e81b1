//! Topics, partitions, ISR changes and leader election.

use std::collections::{BTreeMap, BTreeSet};

use odradek_common::{ErrorCode, Uuid};
use odradek_metadata::proto::{self, metadata_record::Record, MetadataRecord};
use odradek_metadata::{
    ConfigResource, MetadataImage, PartitionRegistration, TopicImage, NO_LEADER,
};

use super::partition_change::{Election, PartitionChange};
use super::placement::{self, PlacementError};
use super::reassignment;
use super::{err, rec, ControllerResult, ControllerSettings, OK};
use crate::pb;

/// Kafka's topic name rule: 1-249 characters of `[a-zA-Z0-9._-]`, not `.` or `..`.
pub fn validate_topic_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name == "." || name == ".." {
        return Err(format!("{name:?} is not a valid topic name"));
    }
    if name.len() > 249 {
        return Err(format!(
            "topic name is {} characters; the limit is 249",
            name.len()
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "topic name {name:?} contains {c:?}; only [a-zA-Z0-9._-] are allowed"
        ));
    }
    Ok(())
}

/// Unfenced brokers as (id, rack), for placement.
fn usable_brokers(image: &MetadataImage) -> Vec<(i32, Option<String>)> {
    image
        .cluster
        .unfenced()
        .filter(|b| !b.in_controlled_shutdown)
        .map(|b| (b.id, b.rack.clone()))
        .collect()
}

fn partition_count(image: &MetadataImage) -> usize {
    image
        .topics
        .by_id
        .values()
        .map(|t| t.partitions.len())
        .sum()
}

fn partition_record(
    topic_id: Uuid,
    partition: i32,
    replicas: Vec<i32>,
    isr: Vec<i32>,
) -> MetadataRecord {
    rec(Record::Partition(proto::PartitionRecord {
        partition_id: partition,
        topic_id: topic_id.as_bytes().to_vec(),
        leader: isr.first().copied().unwrap_or(NO_LEADER),
        isr,
        replicas,
        removing_replicas: vec![],
        adding_replicas: vec![],
        leader_epoch: 0,
        partition_epoch: 0,
    }))
}

/// Each new partition's (replicas, ISR).
type Placed = Vec<(Vec<i32>, Vec<i32>)>;

/// A manual assignment's partitions as (replicas, ISR): each checked as Kafka does, the ISR
/// being the replicas that are unfenced and not shutting down, of which at least one is needed.
fn manual_assignment(
    image: &MetadataImage,
    assignments: &[pb::ReplicaAssignment],
    first_partition: i32,
    replication_factor: Option<usize>,
) -> Result<Placed, (i32, String)> {
    let rf = replication_factor.or_else(|| assignments.first().map(|a| a.ids.len()));
    let usable = reassignment::acceptable_leader(image);
    assignments
        .iter()
        .enumerate()
        .map(|(i, a)| {
            reassignment::validate_assignment(image, &a.ids, rf)?;
            let isr: Vec<i32> = a.ids.iter().copied().filter(|b| usable(*b)).collect();
            if isr.is_empty() {
                return Err(err(
                    ErrorCode::InvalidReplicaAssignment,
                    format!(
                        "all brokers of the manual assignment of partition {} are fenced or in controlled shutdown",
                        first_partition + i as i32
                    ),
                ));
            }
            Ok((a.ids.clone(), isr))
        })
        .collect()
}

/// CreateTopics. `new_id` supplies topic ids.
pub fn create_topics(
    image: &MetadataImage,
    request: &pb::CreateTopicsRequest,
    settings: &ControllerSettings,
    new_id: &mut dyn FnMut() -> Uuid,
) -> ControllerResult<pb::CreateTopicsResponse> {
    let mut records = Vec::new();
    let mut results = Vec::new();
    let mut seen = BTreeSet::new();
    let duplicates: BTreeSet<&str> = request
        .topics
        .iter()
        .filter(|t| !seen.insert(t.name.as_str()))
        .map(|t| t.name.as_str())
        .collect();
    let brokers = usable_brokers(image);
    let mut start = partition_count(image);
    for topic in &request.topics {
        let partitions = if topic.num_partitions == -1 {
            settings.num_partitions
        } else {
            topic.num_partitions
        };
        let rf = if topic.replication_factor == -1 {
            i32::from(settings.default_replication_factor)
        } else {
            topic.replication_factor
        };
        let mut result = pb::CreateTopicResult {
            name: topic.name.clone(),
            num_partitions: partitions,
            replication_factor: rf,
            ..Default::default()
        };
        let manual = !topic.assignments.is_empty();
        if manual {
            result.num_partitions = topic.assignments.len() as i32;
            result.replication_factor = topic.assignments[0].ids.len() as i32;
        }
        let outcome = (|| {
            if manual && (topic.num_partitions != -1 || topic.replication_factor != -1) {
                return Err(err(
                    ErrorCode::InvalidRequest,
                    "a topic with manual replica assignments must leave the number of partitions and the replication factor at -1",
                ));
            }
            if duplicates.contains(topic.name.as_str()) {
                return Err(err(
                    ErrorCode::InvalidRequest,
                    format!("topic {} appears more than once in the request", topic.name),
                ));
            }
            validate_topic_name(&topic.name)
                .map_err(|m| err(ErrorCode::InvalidTopicException, m))?;
            if image.topics.by_name.contains_key(&topic.name) {
                return Err(err(
                    ErrorCode::TopicAlreadyExists,
                    format!("topic '{}' already exists", topic.name),
                ));
            }
            let configs: BTreeMap<String, String> = topic
                .configs
                .iter()
                .map(|c| (c.name.clone(), c.value.clone()))
                .collect();
            super::configs::validate_topic_configs(&configs)
                .map_err(|m| err(ErrorCode::InvalidConfig, m))?;
            if manual {
                let assignment = manual_assignment(image, &topic.assignments, 0, None)?;
                return Ok((assignment, configs));
            }
            if partitions < 1 {
                return Err(err(
                    ErrorCode::InvalidPartitions,
                    format!("number of partitions must be at least 1, not {partitions}"),
                ));
            }
            let rf16 = i16::try_from(rf).map_err(|_| {
                err(
                    ErrorCode::InvalidReplicationFactor,
                    format!("replication factor {rf} is out of range"),
                )
            })?;
            let assignment = placement::place(&brokers, partitions, rf16, start).map_err(|e| match e {
                PlacementError::InvalidReplicationFactor(rf) => {
                    err(ErrorCode::InvalidReplicationFactor, format!("replication factor must be at least 1, not {rf}"))
                }
                PlacementError::NotEnoughBrokers { replication_factor, brokers } => err(
                    ErrorCode::InvalidReplicationFactor,
                    format!("replication factor {replication_factor} is larger than the {brokers} available brokers"),
                ),
            })?;
            let assignment = assignment.into_iter().map(|r| (r.clone(), r)).collect();
            Ok((assignment, configs))
        })();
        match outcome {
            Err((code, message)) => {
                result.error_code = code;
                result.error_message = message;
                result.num_partitions = -1;
                result.replication_factor = -1;
            }
            Ok((assignment, configs)) => {
                let id = new_id();
                result.topic_id = id.as_bytes().to_vec();
                start += assignment.len();
                if !request.validate_only {
                    records.push(rec(Record::Topic(proto::TopicRecord {
                        name: topic.name.clone(),
                        topic_id: id.as_bytes().to_vec(),
                    })));
                    for (p, (replicas, isr)) in assignment.into_iter().enumerate() {
                        records.push(partition_record(id, p as i32, replicas, isr));
                    }
                    for (name, value) in configs {
                        records.push(super::configs::config_record(
                            ConfigResource::Topic(topic.name.clone()),
                            name,
                            Some(value),
                        ));
                    }
                }
            }
        }
        results.push(result);
    }
    ControllerResult {
        records,
        response: pb::CreateTopicsResponse { topics: results },
    }
}

/// DeleteTopics by name.
pub fn delete_topics(
    image: &MetadataImage,
    request: &pb::DeleteTopicsRequest,
) -> ControllerResult<pb::DeleteTopicsResponse> {
    let mut records = Vec::new();
    let mut results = Vec::new();
    let mut deleted = BTreeSet::new();
    for name in &request.names {
        let mut r = pb::DeleteTopicResult {
            name: name.clone(),
            ..Default::default()
        };
        match image.topics.get_by_name(name) {
            Some(t) if deleted.insert(t.id) => {
                r.topic_id = t.id.as_bytes().to_vec();
                records.push(rec(Record::RemoveTopic(proto::RemoveTopicRecord {
                    topic_id: t.id.as_bytes().to_vec(),
                })));
            }
            Some(t) => r.topic_id = t.id.as_bytes().to_vec(),
            None => {
                (r.error_code, r.error_message) = err(
                    ErrorCode::UnknownTopicOrPartition,
                    format!("topic '{name}' does not exist"),
                );
            }
        }
        results.push(r);
    }
    ControllerResult {
        records,
        response: pb::DeleteTopicsResponse { topics: results },
    }
}

/// CreatePartitions: grows a topic to `count` partitions, placing the new ones.
pub fn create_partitions(
    image: &MetadataImage,
    request: &pb::CreatePartitionsRequest,
) -> ControllerResult<pb::CreatePartitionsResponse> {
    let mut records = Vec::new();
    let mut results = Vec::new();
    let brokers = usable_brokers(image);
    let mut start = partition_count(image);
    for t in &request.topics {
        let outcome = (|| {
            let topic = image.topics.get_by_name(&t.name).ok_or_else(|| {
                err(
                    ErrorCode::UnknownTopicOrPartition,
                    format!("topic '{}' does not exist", t.name),
                )
            })?;
            let current = topic.partitions.len() as i32;
            if t.count <= current {
                return Err(err(
                    ErrorCode::InvalidPartitions,
                    format!(
                        "topic '{}' has {current} partitions; the new count must be larger, not {}",
                        t.name, t.count
                    ),
                ));
            }
            let rf = topic
                .partitions
                .values()
                .next()
                .map_or(1, |p| p.replicas.len() - p.adding_replicas.len());
            if !t.assignments.is_empty() {
                if t.assignments.len() as i32 != t.count - current {
                    return Err(err(
                        ErrorCode::InvalidReplicaAssignment,
                        format!(
                            "attempted to add {} additional partition(s), but {} assignment(s) were given",
                            t.count - current,
                            t.assignments.len()
                        ),
                    ));
                }
                return Ok((
                    topic.id,
                    current,
                    manual_assignment(image, &t.assignments, current, Some(rf))?,
                ));
            }
            let placed =
                placement::place(&brokers, t.count - current, rf as i16, start).map_err(|_| {
                    err(
                        ErrorCode::InvalidReplicationFactor,
                        format!("not enough brokers for replication factor {rf}"),
                    )
                })?;
            Ok((
                topic.id,
                current,
                placed.into_iter().map(|r| (r.clone(), r)).collect(),
            ))
        })();
        let mut r = pb::CreatePartitionsResult {
            name: t.name.clone(),
            ..Default::default()
        };
        match outcome {
            Err((code, message)) => (r.error_code, r.error_message) = (code, message),
            Ok((id, current, placed)) => {
                start += placed.len();
                if !request.validate_only {
                    for (i, (replicas, isr)) in placed.into_iter().enumerate() {
                        records.push(partition_record(id, current + i as i32, replicas, isr));
                    }
                }
            }
        }
        results.push(r);
    }
    ControllerResult {
        records,
        response: pb::CreatePartitionsResponse { topics: results },
    }
}

/// AlterPartition: the leader proposes a new ISR; the controller checks epochs and membership.
pub fn alter_partition(
    image: &MetadataImage,
    request: &pb::AlterPartitionRequest,
) -> ControllerResult<pb::AlterPartitionResponse> {
    let fail = |(code, message): (i32, String)| {
        ControllerResult::answer(pb::AlterPartitionResponse {
            error_code: code,
            error_message: message,
            ..Default::default()
        })
    };
    if let Err(e) = super::check_broker_epoch(image, request.broker_id, request.broker_epoch) {
        return fail(e);
    }
    let Some(topic_id) = Uuid::from_slice(&request.topic_id) else {
        return fail(err(ErrorCode::InvalidRequest, "topic id must be 16 bytes"));
    };
    let Some((topic, p)) = image
        .topics
        .by_id
        .get(&topic_id)
        .and_then(|t| t.partitions.get(&request.partition).map(|p| (t, p)))
    else {
        return fail(err(
            ErrorCode::UnknownTopicOrPartition,
            format!("partition {topic_id}-{} does not exist", request.partition),
        ));
    };
    if p.leader != request.broker_id {
        return fail(err(
            ErrorCode::NotLeaderOrFollower,
            format!(
                "broker {} does not lead {}-{}",
                request.broker_id, topic.name, request.partition
            ),
        ));
    }
    if request.leader_epoch != p.leader_epoch {
        return fail(err(
            ErrorCode::FencedLeaderEpoch,
            format!(
                "leader epoch {} is not the current {}",
                request.leader_epoch, p.leader_epoch
            ),
        ));
    }
    if request.partition_epoch != p.partition_epoch {
        return fail(err(
            ErrorCode::InvalidUpdateVersion,
            format!(
                "partition epoch {} is not the current {}",
                request.partition_epoch, p.partition_epoch
            ),
        ));
    }
    let mut isr = request.new_isr.clone();
    isr.sort_unstable();
    isr.dedup();
    if isr.is_empty() || !isr.contains(&p.leader) || isr.iter().any(|b| !p.replicas.contains(b)) {
        return fail(err(
            ErrorCode::InvalidRequest,
            format!(
                "ISR {:?} must contain the leader and only replicas {:?}",
                request.new_isr, p.replicas
            ),
        ));
    }
    if let Some(b) = isr.iter().find(|b| {
        image
            .cluster
            .brokers
            .get(b)
            .is_none_or(|r| r.fenced || r.in_controlled_shutdown)
    }) {
        return fail(err(
            ErrorCode::IneligibleReplica,
            format!("broker {b} is fenced or shutting down and cannot join the ISR"),
        ));
    }
    let acceptable = reassignment::acceptable_leader(image);
    let built = PartitionChange::new(p, topic_id, request.partition, &acceptable)
        .isr(isr)
        .build();
    let changed = built.record.is_some();
    ControllerResult {
        records: built.record.into_iter().collect(),
        response: pb::AlterPartitionResponse {
            error_code: OK.0,
            error_message: OK.1,
            leader: built.leader,
            leader_epoch: p.leader_epoch + i32::from(built.leader != p.leader),
            partition_epoch: p.partition_epoch + i32::from(changed),
            isr: built.isr,
        },
    }
}

/// `unclean.leader.election.enable` of `topic`: its override, else the cluster-wide dynamic
/// default, else the controller's.
pub(crate) fn unclean_enabled(
    image: &MetadataImage,
    topic: &str,
    settings: &ControllerSettings,
) -> bool {
    const KEY: &str = "unclean.leader.election.enable";
    let topic_value = image
        .configs
        .resources
        .get(&ConfigResource::Topic(topic.to_string()))
        .and_then(|c| c.get(KEY).cloned());
    topic_value
        .or_else(|| {
            image
                .configs
                .get(&ConfigResource::Broker(String::new()))
                .get(KEY)
                .cloned()
        })
        .map_or(settings.unclean_leader_election_enable, |v| v == "true")
}

/// The changes that take `broker` out of leadership and ISRs (it is being fenced or shut
/// down). A new leader comes from the rest of the ISR (in replica order), never from outside it
/// unless unclean election is enabled for the topic; an ISR is never emptied (the last member
/// stays, leaderless, as in Kafka, so it can lead again when it returns). A reassignment whose
/// ISR now allows it completes.
pub fn move_away_from(
    image: &MetadataImage,
    broker: i32,
    usable: &dyn Fn(i32) -> bool,
    settings: &ControllerSettings,
) -> Vec<MetadataRecord> {
    let acceptable = |b: i32| b != broker && usable(b);
    let mut records = Vec::new();
    for topic in image.topics.by_id.values() {
        for (index, p) in &topic.partitions {
            records.extend(leave(
                image,
                topic,
                *index,
                p,
                broker,
                &acceptable,
                settings,
            ));
        }
    }
    records
}

/// The change that takes `broker` out of one partition's leadership and ISR (none when it is in
/// neither): the leader is chosen again among `acceptable` brokers, unclean only where the
/// topic allows it.
fn leave(
    image: &MetadataImage,
    topic: &TopicImage,
    index: i32,
    p: &PartitionRegistration,
    broker: i32,
    acceptable: &dyn Fn(i32) -> bool,
    settings: &ControllerSettings,
) -> Option<MetadataRecord> {
    if p.leader != broker && !p.isr.contains(&broker) {
        return None;
    }
    let isr: Vec<i32> = p.isr.iter().copied().filter(|b| *b != broker).collect();
    let election = if unclean_enabled(image, &topic.name, settings) {
        Election::Unclean
    } else {
        Election::Online
    };
    PartitionChange::new(p, topic.id, index, acceptable)
        .isr(isr)
        .election(election)
        .build()
        .record
}

/// The changes that take `broker`'s `offline` replicas (their log directory failed; the broker
/// lives on) out of their partitions' leadership and ISR, as fencing does for all of them.
pub fn take_offline(
    image: &MetadataImage,
    broker: i32,
    offline: &[(Uuid, i32)],
    settings: &ControllerSettings,
) -> Vec<MetadataRecord> {
    let usable = reassignment::acceptable_leader(image);
    let acceptable = |b: i32| b != broker && usable(b);
    let mut records = Vec::new();
    for (topic_id, index) in offline {
        let Some(topic) = image.topics.by_id.get(topic_id) else {
            continue;
        };
        let Some(p) = topic.partitions.get(index) else {
            continue;
        };
        let record = leave(image, topic, *index, p, broker, &acceptable, settings);
        if record.is_some() {
            tracing::warn!(topic = %topic.name, partition = index, broker, "replica offline (failed log directory); moving leadership and ISR away");
        }
        records.extend(record);
    }
    records
}

/// Elects `broker`, just unfenced, for partitions left without a leader whose ISR holds it.
pub fn elect_returning(image: &MetadataImage, broker: i32) -> Vec<MetadataRecord> {
    let acceptable = reassignment::acceptable_leader(image);
    let acceptable = |b: i32| b == broker || acceptable(b);
    let mut records = Vec::new();
    for topic in image.topics.by_id.values() {
        for (index, p) in &topic.partitions {
            if p.leader == NO_LEADER && p.isr.contains(&broker) {
                let built = PartitionChange::new(p, topic.id, *index, &acceptable).build();
                records.extend(built.record);
            }
        }
    }
    records
}
