//! The consumer-group APIs (Kafka's classic protocol): FindCoordinator, JoinGroup, SyncGroup,
//! Heartbeat, LeaveGroup, OffsetCommit, OffsetFetch, ListGroups, DescribeGroups, DeleteGroups.
//! `__consumer_offsets` is created on the first FindCoordinator.

use std::time::Duration;

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{
    BrokerId, DeleteGroupsRequest, DeleteGroupsResponse, DescribeGroupsRequest,
    DescribeGroupsResponse, FindCoordinatorRequest, FindCoordinatorResponse, GroupId,
    HeartbeatRequest, HeartbeatResponse, JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest,
    LeaveGroupResponse, ListGroupsRequest, ListGroupsResponse, OffsetCommitRequest,
    OffsetCommitResponse, OffsetFetchRequest, OffsetFetchResponse, SyncGroupRequest,
    SyncGroupResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use odradek_common::ErrorCode;
use odradek_controller::pb;
use odradek_coordinator::txn::TRANSACTION_STATE_TOPIC;
use odradek_coordinator::{
    CommitOffset, JoinRequest, Output, Reply, SyncRequest, SyncResponse, OFFSETS_TOPIC,
};
use odradek_frontend::RequestContext;
use odradek_metadata::acl::{AclOperation, ResourceType};
use odradek_metadata::MetadataImage;

use super::Broker;

fn s(v: impl Into<String>) -> StrBytes {
    StrBytes::from_string(v.into())
}

/// Creates `__consumer_offsets` (offsets.topic.num.partitions, offsets.topic.replication.factor,
/// compacted) when it does not exist; the image once it does (or the old one on failure).
pub(super) async fn ensure_offsets_topic(broker: &Broker) -> std::sync::Arc<MetadataImage> {
    let image = broker.image();
    if image.topics.by_name.contains_key(OFFSETS_TOPIC) {
        return image;
    }
    let g = &broker.config.groups;
    let req = pb::CreateTopicsRequest {
        topics: vec![pb::CreatableTopic {
            name: OFFSETS_TOPIC.into(),
            num_partitions: g.offsets_topic_partitions,
            replication_factor: g.offsets_topic_replication_factor,
            assignments: vec![],
            configs: vec![
                pb::TopicConfig {
                    name: "cleanup.policy".into(),
                    value: "compact".into(),
                },
                pb::TopicConfig {
                    name: "segment.bytes".into(),
                    value: g.offsets_topic_segment_bytes.to_string(),
                },
            ],
        }],
        validate_only: false,
    };
    super::create_through_controller(broker, req, "creating the offsets topic").await;
    broker
        .wait_for_image(Duration::from_secs(5), |i| {
            i.topics.by_name.contains_key(OFFSETS_TOPIC)
        })
        .await
}

/// Creates `__transaction_state` if it does not exist (Kafka's
/// `transaction.state.log.*` settings: compacted, its min ISR).
async fn ensure_transaction_topic(broker: &Broker) -> std::sync::Arc<MetadataImage> {
    let image = broker.image();
    if image.topics.by_name.contains_key(TRANSACTION_STATE_TOPIC) {
        return image;
    }
    let t = &broker.config.transactions;
    let config = |name: &str, value: String| pb::TopicConfig {
        name: name.into(),
        value,
    };
    let req = pb::CreateTopicsRequest {
        topics: vec![pb::CreatableTopic {
            name: TRANSACTION_STATE_TOPIC.into(),
            num_partitions: t.state_log_partitions,
            replication_factor: t.state_log_replication_factor,
            assignments: vec![],
            configs: vec![
                config("cleanup.policy", "compact".into()),
                config("segment.bytes", t.state_log_segment_bytes.to_string()),
                config("min.insync.replicas", t.state_log_min_isr.to_string()),
            ],
        }],
        validate_only: false,
    };
    super::create_through_controller(broker, req, "creating the transaction state topic").await;
    broker
        .wait_for_image(Duration::from_secs(5), |i| {
            i.topics.by_name.contains_key(TRANSACTION_STATE_TOPIC)
        })
        .await
}

pub(super) async fn find_coordinator(
    broker: &Broker,
    ctx: &RequestContext,
    req: FindCoordinatorRequest,
) -> FindCoordinatorResponse {
    let v = ctx.api_version;
    let keys: Vec<String> = if v >= 4 {
        req.coordinator_keys.iter().map(|k| k.to_string()).collect()
    } else {
        vec![req.key.to_string()]
    };
    // Key type 0: a group (`__consumer_offsets`); 1: a transactional id
    // (`__transaction_state`). Either topic is created on first use.
    let (image, topic) = match req.key_type {
        0 => (ensure_offsets_topic(broker).await, OFFSETS_TOPIC),
        1 => (
            ensure_transaction_topic(broker).await,
            TRANSACTION_STATE_TOPIC,
        ),
        _ => (broker.image(), ""),
    };
    let answer = |key: &str| -> Result<(i32, String, i32), (ErrorCode, String)> {
        // DESCRIBE on the group or the transactional id, as Kafka checks it.
        let (resource, denied) = if req.key_type == 1 {
            (
                ResourceType::TransactionalId,
                ErrorCode::TransactionalIdAuthorizationFailed,
            )
        } else {
            (ResourceType::Group, ErrorCode::GroupAuthorizationFailed)
        };
        if !broker.authorized(ctx, &image, AclOperation::Describe, resource, key) {
            return Err((denied, format!("not authorized to describe {key}")));
        }
        if topic.is_empty() {
            return Err((
                ErrorCode::InvalidRequest,
                format!("unknown coordinator key type {}", req.key_type),
            ));
        }
        let count = image
            .topics
            .get_by_name(topic)
            .map(|t| t.partitions.len() as i32)
            .ok_or((
                ErrorCode::CoordinatorNotAvailable,
                format!("{topic} does not exist yet"),
            ))?;
        let p = odradek_coordinator::partition_for(key, count);
        let leader = image
            .topics
            .get_by_name(topic)
            .and_then(|t| t.partitions.get(&p))
            .map_or(-1, |r| r.leader);
        let endpoint = image
            .cluster
            .brokers
            .get(&leader)
            .and_then(|b| super::endpoint_for(b, &ctx.session.listener.name))
            .ok_or((
                ErrorCode::CoordinatorNotAvailable,
                format!("{topic}-{p} has no leader"),
            ))?;
        Ok((leader, endpoint.host.clone(), i32::from(endpoint.port)))
    };
    let mut resp = FindCoordinatorResponse::default();
    if v >= 4 {
        resp.coordinators = keys
            .iter()
            .map(|k| {
                let c = Coordinator::default().with_key(s(k.clone()));
                match answer(k) {
                    Ok((id, host, port)) => c
                        .with_node_id(BrokerId(id))
                        .with_host(s(host))
                        .with_port(port),
                    Err((e, m)) => c
                        .with_node_id(BrokerId(-1))
                        .with_port(-1)
                        .with_error_code(e.code())
                        .with_error_message(Some(s(m))),
                }
            })
            .collect();
    } else {
        match answer(&keys[0]) {
            Ok((id, host, port)) => {
                resp.node_id = BrokerId(id);
                resp.host = s(host);
                resp.port = port;
            }
            Err((e, m)) => {
                resp.error_code = e.code();
                resp.node_id = BrokerId(-1);
                resp.port = -1;
                if v >= 1 {
                    resp.error_message = Some(s(m));
                }
            }
        }
    }
    resp
}

/// Runs a call that parks its request, then waits (up to `wait`) for its reply.
async fn parked_call(
    broker: &Broker,
    group: &str,
    wait: Duration,
    f: impl FnOnce(&mut odradek_coordinator::Groups, u64, i64) -> Output,
) -> Result<Reply, ErrorCode> {
    let image = broker.image();
    let c = &broker.groups;
    let (token, rx) = c.exec(&image, group, |groups, p, now| {
        let (token, rx) = c.park(p);
        ((token, rx), f(groups, token, now))
    })?;
    match tokio::time::timeout(wait, rx).await {
        Ok(Ok(reply)) => Ok(reply),
        Ok(Err(_)) => Err(ErrorCode::NotCoordinator),
        Err(_) => {
            c.unpark(token);
            Err(ErrorCode::RebalanceInProgress)
        }
    }
}

pub(super) async fn join_group(
    broker: &Broker,
    ctx: &RequestContext,
    req: JoinGroupRequest,
) -> JoinGroupResponse {
    let v = ctx.api_version;
    let group = req.group_id.0.to_string();
    let rebalance_timeout_ms = if v >= 1 {
        req.rebalance_timeout_ms
    } else {
        req.session_timeout_ms
    };
    let join = JoinRequest {
        group_id: group.clone(),
        member_id: req.member_id.to_string(),
        group_instance_id: req.group_instance_id.as_ref().map(|i| i.to_string()),
        client_id: ctx.client_id.clone().unwrap_or_default(),
        client_host: format!("/{}", ctx.peer.ip()),
        session_timeout_ms: req.session_timeout_ms,
        rebalance_timeout_ms,
        protocol_type: req.protocol_type.to_string(),
        protocols: req
            .protocols
            .iter()
            .map(|p| (p.name.to_string(), p.metadata.clone()))
            .collect(),
        require_known_member: v >= 4,
    };
    let wait = Duration::from_millis(u64::try_from(rebalance_timeout_ms).unwrap_or(0) + 5_000);
    let error = |e: ErrorCode| {
        JoinGroupResponse::default()
            .with_error_code(e.code())
            .with_generation_id(-1)
            .with_member_id(req.member_id.clone())
    };
    let image = broker.image();
    let topics = super::ImageTopics(&image);
    match parked_call(broker, &group, wait, |groups, token, now| {
        groups.join(now, token, join, &topics)
    })
    .await
    {
        Ok(Reply::Join(_, j)) => {
            let mut r = JoinGroupResponse::default()
                .with_error_code(j.error.code())
                .with_generation_id(j.generation)
                .with_protocol_name(j.protocol_name.map(s))
                .with_leader(s(j.leader))
                .with_member_id(s(j.member_id))
                .with_members(
                    j.members
                        .into_iter()
                        .map(|m| {
                            let member = JoinGroupResponseMember::default()
                                .with_member_id(s(m.member_id))
                                .with_metadata(m.metadata);
                            if v >= 5 {
                                member.with_group_instance_id(m.group_instance_id.map(s))
                            } else {
                                member
                            }
                        })
                        .collect(),
                );
            if v >= 7 {
                r.protocol_type = j.protocol_type.map(s);
            }
            if v < 7 && r.protocol_name.is_none() {
                // Before v7 the protocol name is not nullable.
                r.protocol_name = Some(StrBytes::default());
            }
            r
        }
        Ok(Reply::Sync(_, sr)) => error(sr.error),
        Err(e) => error(e),
    }
}

pub(super) async fn sync_group(
    broker: &Broker,
    ctx: &RequestContext,
    req: SyncGroupRequest,
) -> SyncGroupResponse {
    let v = ctx.api_version;
    let group = req.group_id.0.to_string();
    let sync = SyncRequest {
        group_id: group.clone(),
        generation: req.generation_id,
        member_id: req.member_id.to_string(),
        group_instance_id: req.group_instance_id.as_ref().map(|i| i.to_string()),
        protocol_type: req.protocol_type.as_ref().map(|p| p.to_string()),
        protocol_name: req.protocol_name.as_ref().map(|p| p.to_string()),
        assignments: req
            .assignments
            .iter()
            .map(|a| (a.member_id.to_string(), a.assignment.clone()))
            .collect(),
    };
    // Only a safety bound: the coordinator itself answers a waiting follower when the leader
    // syncs, or at the group's rebalance deadline (which can exceed 5 minutes).
    let wait = Duration::from_secs(3600);
    let image = broker.image();
    let topics = super::ImageTopics(&image);
    let r = match parked_call(broker, &group, wait, |groups, token, now| {
        groups.sync(now, token, sync, &topics)
    })
    .await
    {
        Ok(Reply::Sync(_, sr)) => sr,
        Ok(Reply::Join(_, j)) => SyncResponse::error(j.error),
        Err(e) => SyncResponse::error(e),
    };
    let resp = SyncGroupResponse::default()
        .with_error_code(r.error.code())
        .with_assignment(r.assignment);
    if v >= 5 {
        resp.with_protocol_type(r.protocol_type.map(s))
            .with_protocol_name(r.protocol_name.map(s))
    } else {
        resp
    }
}

pub(super) fn heartbeat(broker: &Broker, req: HeartbeatRequest) -> HeartbeatResponse {
    let image = broker.image();
    let group = req.group_id.0.to_string();
    let member = req.member_id.to_string();
    let code = broker
        .groups
        .exec(&image, &group, |groups, _, now| {
            (
                groups.heartbeat(
                    now,
                    &group,
                    req.generation_id,
                    &member,
                    req.group_instance_id.as_deref(),
                ),
                Output::default(),
            )
        })
        .unwrap_or_else(|e| e);
    HeartbeatResponse::default().with_error_code(code.code())
}

pub(super) fn leave_group(
    broker: &Broker,
    ctx: &RequestContext,
    req: LeaveGroupRequest,
) -> LeaveGroupResponse {
    let v = ctx.api_version;
    let image = broker.image();
    let group = req.group_id.0.to_string();
    let members: Vec<(String, Option<String>)> = if v >= 3 {
        req.members
            .iter()
            .map(|m| {
                (
                    m.member_id.to_string(),
                    m.group_instance_id.as_ref().map(|i| i.to_string()),
                )
            })
            .collect()
    } else {
        vec![(req.member_id.to_string(), None)]
    };
    let result = broker.groups.exec(&image, &group, |groups, _, now| {
        groups.leave(now, &group, &members)
    });
    match result {
        Err(e) => LeaveGroupResponse::default().with_error_code(e.code()),
        Ok(errors) if v >= 3 => LeaveGroupResponse::default().with_members(
            req.members
                .iter()
                .zip(errors)
                .map(|(m, e)| {
                    MemberResponse::default()
                        .with_member_id(m.member_id.clone())
                        .with_group_instance_id(m.group_instance_id.clone())
                        .with_error_code(e.code())
                })
                .collect(),
        ),
        Ok(errors) => LeaveGroupResponse::default()
            .with_error_code(errors.first().copied().unwrap_or(ErrorCode::None).code()),
    }
}

/// How long an offset commit waits to be replicated (Kafka: `offsets.commit.timeout.ms`).
const COMMIT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Waits until the offsets an OffsetCommit or TxnOffsetCommit appended are committed to the
/// offsets topic's ISR (as Kafka's coordinator appends with acks=all: a commit lost with its
/// leader was never answered), within [`COMMIT_TIMEOUT`]; Kafka's mapping of a failed append.
pub(super) async fn committed(
    broker: &Broker,
    image: &MetadataImage,
    appended: Result<(Vec<ErrorCode>, Option<crate::groups::AppendPosition>), ErrorCode>,
) -> Result<Vec<ErrorCode>, ErrorCode> {
    let (errors, at) = appended?;
    replicated(broker, image, at).await?;
    Ok(errors)
}

/// Waits until a coordinator append (if any) is committed to the ISR of its partition, within
/// [`COMMIT_TIMEOUT`]: NOT_COORDINATOR if leadership moved, else COORDINATOR_NOT_AVAILABLE.
pub(super) async fn replicated(
    broker: &Broker,
    image: &MetadataImage,
    at: Option<crate::groups::AppendPosition>,
) -> Result<(), ErrorCode> {
    replicated_in(broker, image, at, OFFSETS_TOPIC).await
}

/// [`replicated`] for an append to a partition of `topic` (its `min.insync.replicas`).
pub(super) async fn replicated_in(
    broker: &Broker,
    image: &MetadataImage,
    at: Option<crate::groups::AppendPosition>,
    topic: &str,
) -> Result<(), ErrorCode> {
    let Some(at) = at else {
        return Ok(());
    };
    let deadline = std::time::Instant::now() + COMMIT_TIMEOUT;
    let min_isr = broker.min_insync_replicas(image, topic);
    match super::acks::wait_committed(
        &at.partition,
        at.leader_epoch,
        at.last_offset,
        min_isr,
        deadline,
    )
    .await
    {
        Ok(()) => Ok(()),
        Err((ErrorCode::NotLeaderOrFollower, _)) => Err(ErrorCode::NotCoordinator),
        Err(_) => Err(ErrorCode::CoordinatorNotAvailable),
    }
}

/// The offsets of an OffsetCommit or TxnOffsetCommit, split as Kafka does: those of partitions
/// that do not exist are refused (UNKNOWN_TOPIC_OR_PARTITION), the rest go to the coordinator.
/// The codes follow the request's order, `None` where the coordinator will answer.
pub(super) fn split_known(
    image: &MetadataImage,
    offsets: impl Iterator<Item = CommitOffset>,
) -> (Vec<Option<ErrorCode>>, Vec<CommitOffset>) {
    let mut codes = Vec::new();
    let mut valid = Vec::new();
    for o in offsets {
        let known = image
            .topics
            .get_by_name(&o.topic)
            .is_some_and(|t| t.partitions.contains_key(&o.partition));
        if known {
            codes.push(None);
            valid.push(o);
        } else {
            codes.push(Some(ErrorCode::UnknownTopicOrPartition));
        }
    }
    (codes, valid)
}

/// Every partition's code in request order: the refusals of [`split_known`], the rest from the
/// coordinator's answer (or its one error for all).
pub(super) fn answer_codes(
    codes: Vec<Option<ErrorCode>>,
    answer: Result<Vec<ErrorCode>, ErrorCode>,
) -> impl Iterator<Item = ErrorCode> {
    let mut answers: Box<dyn Iterator<Item = ErrorCode>> = match answer {
        Ok(errors) => Box::new(errors.into_iter()),
        Err(e) => Box::new(std::iter::repeat(e)),
    };
    codes.into_iter().map(move |c| {
        c.or_else(|| answers.next())
            .unwrap_or(ErrorCode::UnknownServerError)
    })
}

pub(super) async fn offset_commit(
    broker: &Broker,
    req: OffsetCommitRequest,
) -> OffsetCommitResponse {
    let image = broker.image();
    let group = req.group_id.0.to_string();
    let member = req.member_id.to_string();
    let (codes, valid) = split_known(
        &image,
        req.topics.iter().flat_map(|t| {
            t.partitions.iter().map(|p| CommitOffset {
                topic: t.name.0.to_string(),
                partition: p.partition_index,
                offset: p.committed_offset,
                leader_epoch: p.committed_leader_epoch,
                metadata: p.committed_metadata.as_ref().map(|m| m.to_string()),
            })
        }),
    );
    let result = broker
        .groups
        .exec_appending(&image, &group, |groups, _, now| {
            groups.commit(
                now,
                &group,
                req.generation_id_or_member_epoch,
                &member,
                req.group_instance_id.as_deref(),
                &valid,
            )
        });
    // Acknowledged once committed to the offsets topic's ISR, not merely appended (as Kafka's
    // coordinator appends with acks=all): a commit lost with its leader was never answered.
    let mut codes = answer_codes(codes, committed(broker, &image, result).await);
    let topics = req
        .topics
        .iter()
        .map(|t| {
            OffsetCommitResponseTopic::default()
                .with_name(t.name.clone())
                .with_partitions(
                    t.partitions
                        .iter()
                        .map(|p| {
                            OffsetCommitResponsePartition::default()
                                .with_partition_index(p.partition_index)
                                .with_error_code(
                                    codes.next().unwrap_or(ErrorCode::UnknownServerError).code(),
                                )
                        })
                        .collect(),
                )
        })
        .collect();
    OffsetCommitResponse::default().with_topics(topics)
}

/// A committed offset as OffsetFetch returns it: (topic, partition, offset, leader epoch,
/// metadata, error: UNSTABLE_OFFSET_COMMIT or NONE); offset -1 when nothing is committed.
type FetchedOffset = (String, i32, i64, i32, String, i16);

/// Kafka's UNSTABLE_OFFSET_COMMIT: a transaction holds an offset commit not yet ended.
const UNSTABLE_OFFSET_COMMIT: i16 = 88;

/// One group's committed offsets, or why not.
/// The committed offsets of `group`; with `require_stable` (v7+), a partition whose offset a
/// transaction has committed but not yet ended answers UNSTABLE_OFFSET_COMMIT (KIP-447), so
/// a read_committed consumer taking it over waits rather than reading from a stale offset.
fn fetch_group(
    broker: &Broker,
    image: &MetadataImage,
    group: &str,
    wanted: Option<Vec<(String, Vec<i32>)>>,
    require_stable: bool,
    member: Option<(&str, i32)>,
) -> Result<Vec<FetchedOffset>, ErrorCode> {
    broker
        .groups
        .exec(image, group, |groups, _, _| {
            if let Err(e) = groups.check_offset_fetch(group, member) {
                return (Err(e), Output::default());
            }
            let rows = groups
                .fetch(group, wanted.as_deref())
                .into_iter()
                .map(|(t, p, v)| {
                    if require_stable && groups.has_unstable_offset(group, &t, p) {
                        return (t, p, -1, -1, String::new(), UNSTABLE_OFFSET_COMMIT);
                    }
                    match v {
                        Some(v) => (t, p, v.offset, v.leader_epoch, v.metadata, 0),
                        None => (t, p, -1, -1, String::new(), 0),
                    }
                })
                .collect();
            (Ok(rows), Output::default())
        })
        .and_then(|rows| rows)
}

pub(super) fn offset_fetch(
    broker: &Broker,
    ctx: &RequestContext,
    req: OffsetFetchRequest,
) -> OffsetFetchResponse {
    let v = ctx.api_version;
    let image = broker.image();
    if v >= 8 {
        let groups = req
            .groups
            .iter()
            .map(|g| {
                let group = g.group_id.0.to_string();
                let wanted = g.topics.as_ref().map(|ts| {
                    ts.iter()
                        .map(|t| (t.name.0.to_string(), t.partition_indexes.clone()))
                        .collect()
                });
                // v9: a consumer-protocol member reads at its epoch; admins send no member.
                let member = g.member_id.as_deref().map(|m| (m, g.member_epoch));
                match fetch_group(broker, &image, &group, wanted, req.require_stable, member) {
                    Err(e) => OffsetFetchResponseGroup::default()
                        .with_group_id(g.group_id.clone())
                        .with_error_code(e.code()),
                    Ok(rows) => {
                        let mut topics: Vec<OffsetFetchResponseTopics> = Vec::new();
                        for (t, p, o, epoch, meta, code) in rows {
                            let part = OffsetFetchResponsePartitions::default()
                                .with_partition_index(p)
                                .with_committed_offset(o)
                                .with_committed_leader_epoch(epoch)
                                .with_metadata(Some(s(meta)))
                                .with_error_code(code);
                            match topics.iter_mut().find(|x| x.name.0.as_str() == t) {
                                Some(x) => x.partitions.push(part),
                                None => topics.push(
                                    OffsetFetchResponseTopics::default()
                                        .with_name(TopicName(s(t)))
                                        .with_partitions(vec![part]),
                                ),
                            }
                        }
                        OffsetFetchResponseGroup::default()
                            .with_group_id(g.group_id.clone())
                            .with_topics(topics)
                    }
                }
            })
            .collect();
        return OffsetFetchResponse::default().with_groups(groups);
    }
    let group = req.group_id.0.to_string();
    let wanted = req.topics.as_ref().map(|ts| {
        ts.iter()
            .map(|t| (t.name.0.to_string(), t.partition_indexes.clone()))
            .collect()
    });
    let mut resp = OffsetFetchResponse::default();
    let require_stable = v >= 7 && req.require_stable;
    match fetch_group(broker, &image, &group, wanted, require_stable, None) {
        Err(e) => {
            if v >= 2 {
                resp.error_code = e.code();
            } else {
                // v1 has no top-level error: every asked partition carries it.
                for t in req.topics.iter().flatten() {
                    resp.topics.push(
                        OffsetFetchResponseTopic::default()
                            .with_name(t.name.clone())
                            .with_partitions(
                                t.partition_indexes
                                    .iter()
                                    .map(|p| {
                                        OffsetFetchResponsePartition::default()
                                            .with_partition_index(*p)
                                            .with_committed_offset(-1)
                                            .with_error_code(e.code())
                                    })
                                    .collect(),
                            ),
                    );
                }
            }
        }
        Ok(rows) => {
            for (t, p, o, epoch, meta, code) in rows {
                let mut part = OffsetFetchResponsePartition::default()
                    .with_partition_index(p)
                    .with_committed_offset(o)
                    .with_metadata(Some(s(meta)))
                    .with_error_code(code);
                if v >= 5 {
                    part.committed_leader_epoch = epoch;
                }
                match resp.topics.iter_mut().find(|x| x.name.0.as_str() == t) {
                    Some(x) => x.partitions.push(part),
                    None => resp.topics.push(
                        OffsetFetchResponseTopic::default()
                            .with_name(TopicName(s(t)))
                            .with_partitions(vec![part]),
                    ),
                }
            }
        }
    }
    resp
}

pub(super) fn list_groups(
    broker: &Broker,
    ctx: &RequestContext,
    req: ListGroupsRequest,
) -> ListGroupsResponse {
    let v = ctx.api_version;
    match broker.groups.list() {
        Err(e) => ListGroupsResponse::default().with_error_code(e.code()),
        Ok(all) => ListGroupsResponse::default().with_groups(
            all.into_iter()
                .filter(|g| {
                    req.states_filter.is_empty()
                        || req
                            .states_filter
                            .iter()
                            .any(|f| f.as_str().eq_ignore_ascii_case(g.state))
                })
                .filter(|g| {
                    req.types_filter.is_empty()
                        || req
                            .types_filter
                            .iter()
                            .any(|f| f.as_str().eq_ignore_ascii_case(g.group_type))
                })
                .map(|g| {
                    let mut l = ListedGroup::default()
                        .with_group_id(GroupId(s(g.group_id)))
                        .with_protocol_type(s(g.protocol_type));
                    if v >= 4 {
                        l.group_state = s(g.state);
                    }
                    if v >= 5 {
                        l.group_type = s(g.group_type);
                    }
                    l
                })
                .collect(),
        ),
    }
}

pub(super) fn describe_groups(
    broker: &Broker,
    ctx: &RequestContext,
    req: DescribeGroupsRequest,
) -> DescribeGroupsResponse {
    let v = ctx.api_version;
    let image = broker.image();
    let groups = req
        .groups
        .iter()
        .map(|g| {
            let group = g.0.to_string();
            let base = DescribedGroup::default().with_group_id(g.clone());
            let found = broker.groups.exec(&image, &group, |groups, _, _| {
                (groups.describe(&group), Output::default())
            });
            match found {
                Err(e) => base.with_error_code(e.code()),
                Ok(None) => base.with_group_state(s("Dead")),
                Ok(Some(d)) => base
                    .with_group_state(s(d.state.name()))
                    .with_protocol_type(s(d.protocol_type))
                    .with_protocol_data(s(d.protocol))
                    .with_members(
                        d.members
                            .into_iter()
                            .map(|m| {
                                let member = DescribedGroupMember::default()
                                    .with_member_id(s(m.member_id))
                                    .with_client_id(s(m.client_id))
                                    .with_client_host(s(m.client_host))
                                    .with_member_metadata(m.metadata)
                                    .with_member_assignment(m.assignment);
                                if v >= 4 {
                                    member.with_group_instance_id(m.group_instance_id.map(s))
                                } else {
                                    member
                                }
                            })
                            .collect(),
                    ),
            }
        })
        .collect();
    DescribeGroupsResponse::default().with_groups(groups)
}

pub(super) fn delete_groups(broker: &Broker, req: DeleteGroupsRequest) -> DeleteGroupsResponse {
    let image = broker.image();
    let results = req
        .groups_names
        .iter()
        .map(|g| {
            let group = g.0.to_string();
            let code = broker
                .groups
                .exec(&image, &group, |groups, _, _| match groups.delete(&group) {
                    Ok(records) => (
                        ErrorCode::None,
                        Output {
                            replies: Vec::new(),
                            records,
                            completed_rebalances: 0,
                        },
                    ),
                    Err(e) => (e, Output::default()),
                })
                .unwrap_or_else(|e| e);
            DeletableGroupResult::default()
                .with_group_id(g.clone())
                .with_error_code(code.code())
        })
        .collect();
    DeleteGroupsResponse::default().with_results(results)
}
