//! KIP-932 share groups for clients: ShareGroupHeartbeat and ShareGroupDescribe (the group
//! coordinator's membership), ShareFetch and ShareAcknowledge (the partition leaders'
//! share-partitions, with share sessions). Acknowledgements are written to the share
//! coordinator before they are answered; acquisitions are not (Kafka's rule: a record in
//! flight when its leader fails comes back available).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kafka_protocol::messages::share_fetch_response::{
    AcquiredRecords, PartitionData, ShareFetchableTopicResponse,
};
use kafka_protocol::messages::{
    GroupId, ShareAcknowledgeRequest, ShareAcknowledgeResponse, ShareFetchRequest,
    ShareFetchResponse, ShareGroupDescribeRequest, ShareGroupDescribeResponse,
    ShareGroupHeartbeatRequest, ShareGroupHeartbeatResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use odradek_common::{ErrorCode, Uuid};
use odradek_coordinator::share::records::ShareStateKey;
use odradek_coordinator::share::SharePartition;
use odradek_coordinator::{Output, ShareHeartbeat};
use odradek_frontend::RequestContext;
use odradek_metadata::MetadataImage;
use tokio::sync::Notify;

use super::share_acks::{acks_of, Ack, RENEW};
use super::share_state::persist;
use super::{kuuid, ouuid, Broker};
use crate::replicas::{HostedPartition, Need};
use crate::share_partitions::Slot;

fn s(v: impl Into<String>) -> StrBytes {
    StrBytes::from_string(v.into())
}

/// ShareGroupHeartbeat (v1).
pub(super) async fn heartbeat(
    broker: &Broker,
    ctx: &RequestContext,
    req: ShareGroupHeartbeatRequest,
) -> ShareGroupHeartbeatResponse {
    let image = super::groups::ensure_offsets_topic(broker).await;
    let group = req.group_id.0.to_string();
    let hb = ShareHeartbeat {
        group_id: group.clone(),
        member_id: req.member_id.to_string(),
        member_epoch: req.member_epoch,
        rack_id: req.rack_id.as_ref().map(|v| v.to_string()),
        subscribed_topic_names: req
            .subscribed_topic_names
            .as_ref()
            .map(|ts| ts.iter().map(|t| t.0.to_string()).collect()),
        client_id: ctx.client_id.clone().unwrap_or_default(),
        client_host: format!("/{}", ctx.peer.ip()),
    };
    let error = |e: ErrorCode| ShareGroupHeartbeatResponse::default().with_error_code(e.code());
    if let Err((e, m)) = hb.validate() {
        return error(e).with_error_message(Some(s(m)));
    }
    let topics = super::ImageTopics(&image);
    let appended = broker
        .groups
        .exec_appending(&image, &group, |groups, _, now| {
            groups.share_heartbeat(now, hb, &topics)
        });
    let (r, at) = match appended {
        Ok(v) => v,
        Err(e) => return error(e),
    };
    if let Err(e) = super::groups::replicated(broker, &image, at).await {
        return error(e);
    }
    use kafka_protocol::messages::share_group_heartbeat_response::{Assignment, TopicPartitions};
    ShareGroupHeartbeatResponse::default()
        .with_error_code(r.error.code())
        .with_error_message(r.error_message.map(s))
        .with_member_id(r.member_id.map(s))
        .with_member_epoch(r.member_epoch)
        .with_heartbeat_interval_ms(r.heartbeat_interval_ms)
        .with_assignment(r.assignment.map(|a| {
            Assignment::default().with_topic_partitions(
                a.into_iter()
                    .map(|(t, ps)| {
                        TopicPartitions::default()
                            .with_topic_id(kuuid(t))
                            .with_partitions(ps.into_iter().collect())
                    })
                    .collect(),
            )
        }))
}

/// ShareGroupDescribe (v1).
pub(super) fn describe(
    broker: &Broker,
    req: ShareGroupDescribeRequest,
) -> ShareGroupDescribeResponse {
    use kafka_protocol::messages::share_group_describe_response::{
        Assignment, DescribedGroup, Member, TopicPartitions,
    };
    let image = broker.image();
    let groups = req
        .group_ids
        .iter()
        .map(|g| {
            let group = g.0.to_string();
            let base = DescribedGroup::default()
                .with_group_id(GroupId(s(group.clone())))
                .with_authorized_operations(i32::MIN);
            let found = broker.groups.exec(&image, &group, |groups, _, _| {
                (groups.describe_share(&group), Output::default())
            });
            match found {
                Err(e) => base.with_error_code(e.code()),
                Ok(Err((e, m))) => base
                    .with_error_code(e.code())
                    .with_error_message(Some(s(m))),
                Ok(Ok(sg)) => base
                    .with_group_state(s(sg.state()))
                    .with_group_epoch(sg.group_epoch)
                    .with_assignment_epoch(sg.assignment_epoch)
                    .with_assignor_name(s("simple"))
                    .with_members(
                        sg.members
                            .iter()
                            .map(|(id, m)| {
                                Member::default()
                                    .with_member_id(s(id.clone()))
                                    .with_rack_id(m.metadata.rack_id.clone().map(s))
                                    .with_member_epoch(m.member_epoch)
                                    .with_client_id(s(m.metadata.client_id.clone()))
                                    .with_client_host(s(m.metadata.client_host.clone()))
                                    .with_subscribed_topic_names(
                                        m.metadata
                                            .subscribed_topic_names
                                            .iter()
                                            .map(|n| TopicName(s(n.clone())))
                                            .collect(),
                                    )
                                    .with_assignment(
                                        Assignment::default().with_topic_partitions(
                                            m.assigned
                                                .iter()
                                                .map(|(t, ps)| {
                                                    let name = image
                                                        .topics
                                                        .by_id
                                                        .get(t)
                                                        .map(|t| t.name.clone())
                                                        .unwrap_or_default();
                                                    TopicPartitions::default()
                                                        .with_topic_id(kuuid(*t))
                                                        .with_topic_name(TopicName(s(name)))
                                                        .with_partitions(
                                                            ps.iter().copied().collect(),
                                                        )
                                                })
                                                .collect(),
                                        ),
                                    )
                            })
                            .collect(),
                    ),
            }
        })
        .collect();
    ShareGroupDescribeResponse::default().with_groups(groups)
}

/// Loads `key`'s share-partition on this leader if it is not (or was under another leader
/// epoch): reads it from the share coordinator, initialising it the first time where the
/// group's `share.auto.offset.reset` says (the high watermark by default).
async fn load(
    broker: &Broker,
    key: &ShareStateKey,
    hosted: &HostedPartition,
    slot: &mut Slot,
) -> Result<(), ErrorCode> {
    let leader_epoch = hosted.lock()?.state().leader_epoch;
    if slot.partition.is_some() && slot.leader_epoch == leader_epoch {
        return Ok(());
    }
    let state = match persist::read(broker, key, leader_epoch).await? {
        Some(s) => s,
        None => {
            let start = first_offset(broker, key, hosted);
            persist::initialize(broker, key, 0, start).await?;
            persist::read(broker, key, leader_epoch)
                .await?
                .ok_or(ErrorCode::CoordinatorNotAvailable)?
        }
    };
    let mut state_copy = state.state.clone();
    if state_copy.start_offset < 0 {
        state_copy.start_offset = first_offset(broker, key, hosted);
    }
    slot.partition = Some(SharePartition::from_state(
        broker.share_partitions.config.clone(),
        &state_copy,
    ));
    slot.state_epoch = state.state_epoch;
    slot.leader_epoch = leader_epoch;
    Ok(())
}

/// Where a share group starts on a partition it has no state for: its
/// `share.auto.offset.reset` (the log end by default, the log start, or the first record at
/// most a duration old, else the log end).
fn first_offset(broker: &Broker, key: &ShareStateKey, hosted: &HostedPartition) -> i64 {
    use odradek_common::group_configs::ShareOffsetReset;
    let end = hosted.high_watermark();
    match super::group_configs::share_offset_reset(&broker.image(), &key.group) {
        ShareOffsetReset::Latest => end,
        ShareOffsetReset::Earliest => hosted.reader.log_start_offset(),
        ShareOffsetReset::ByDuration(ms) => {
            let since = broker.clock.now_ms().saturating_sub(ms);
            match hosted
                .reader
                .offset_for(odradek_log::OffsetSpec::Timestamp(since))
            {
                Ok(Some(found)) if found.offset < end => found.offset,
                _ => end,
            }
        }
    }
}

/// The leader's partition for a share request, or the error to answer.
fn leader_of(
    broker: &Broker,
    ctx: &RequestContext,
    image: &MetadataImage,
    topic: Uuid,
    p: i32,
) -> Result<Arc<HostedPartition>, ErrorCode> {
    let t = image
        .topics
        .by_id
        .get(&topic)
        .ok_or(ErrorCode::UnknownTopicId)?;
    // Kafka: READ on the topic, per partition.
    if broker.authorizes()
        && !broker.authorized(
            ctx,
            image,
            odradek_metadata::acl::AclOperation::Read,
            odradek_metadata::acl::ResourceType::Topic,
            &t.name,
        )
    {
        return Err(ErrorCode::TopicAuthorizationFailed);
    }
    if !t.partitions.contains_key(&p) {
        return Err(ErrorCode::UnknownTopicOrPartition);
    }
    broker
        .replicas
        .partition(topic, p, -1, Need::Leader)
        .map_err(|r| r.code)
}

/// Applies `member`'s acknowledgements to one partition and writes them: all or nothing.
#[allow(clippy::too_many_arguments)]
async fn acknowledge(
    broker: &Broker,
    ctx: &RequestContext,
    image: &MetadataImage,
    group: &str,
    member: &str,
    topic: Uuid,
    p: i32,
    acks: &[Ack],
) -> ErrorCode {
    let hosted = match leader_of(broker, ctx, image, topic, p) {
        Ok(h) => h,
        Err(e) => return e,
    };
    let key = ShareStateKey {
        group: group.to_string(),
        topic_id: topic,
        partition: p,
    };
    let slot = broker.share_partitions.slot(&key);
    let mut slot = slot.lock().await;
    if let Err(e) = load(broker, &key, &hosted, &mut slot).await {
        return e;
    }
    let Some(sp) = slot.partition.as_mut() else {
        return ErrorCode::CoordinatorNotAvailable;
    };
    let before = sp.clone();
    let now = broker.clock.now_ms();
    sp.set_lock_duration_ms(super::group_configs::share_lock_duration_ms(
        broker, image, group,
    ));
    for a in acks {
        if let Err(e) = sp.acknowledge(member, now, a.first, a.last, &a.types) {
            *sp = before;
            return e;
        }
    }
    if acks.iter().all(|a| a.types.iter().all(|t| *t == RENEW)) {
        // Renewed locks are not persisted (a new leader starts every lock afresh anyway).
        return ErrorCode::None;
    }
    let state = sp.state();
    let (state_epoch, leader_epoch) = (slot.state_epoch, slot.leader_epoch);
    if let Err(e) = persist::write(broker, &key, state_epoch, leader_epoch, &state).await {
        if let Some(sp) = slot.partition.as_mut() {
            *sp = before;
        }
        // Already as the client sees it (a fenced write is NOT_LEADER_OR_FOLLOWER).
        return e;
    }
    ErrorCode::None
}

/// Releases what `member` holds in `partitions` (its session closed), and writes the states.
async fn release(broker: &Broker, group: &str, member: &str, partitions: &BTreeSet<(Uuid, i32)>) {
    for (topic, p) in partitions {
        let key = ShareStateKey {
            group: group.to_string(),
            topic_id: *topic,
            partition: *p,
        };
        let slot = broker.share_partitions.slot(&key);
        let mut slot = slot.lock().await;
        if let Some(sp) = slot.partition.as_mut() {
            sp.release_member(member);
            let state = sp.state();
            let _ = persist::write(broker, &key, slot.state_epoch, slot.leader_epoch, &state).await;
        }
    }
}

fn check_member(
    group: Option<&GroupId>,
    member: Option<&StrBytes>,
) -> Result<(String, String), ErrorCode> {
    let group = group.map(|g| g.0.to_string()).unwrap_or_default();
    let member = member.map(|m| m.to_string()).unwrap_or_default();
    if group.is_empty() || member.is_empty() || member.len() > 36 {
        return Err(ErrorCode::InvalidRequest);
    }
    Ok((group, member))
}

/// ShareFetch (v1-2).
pub(super) async fn fetch(
    broker: &Broker,
    ctx: &RequestContext,
    req: ShareFetchRequest,
) -> ShareFetchResponse {
    let image = broker.image();
    let group_id = req
        .group_id
        .as_ref()
        .map(|g| g.0.to_string())
        .unwrap_or_default();
    let lock_ms = super::group_configs::share_lock_duration_ms(broker, &image, &group_id) as i32;
    // A refused request carries no lock duration (Kafka's error responses carry 0).
    let top = |e: ErrorCode| ShareFetchResponse::default().with_error_code(e.code());
    let (group, member) = match check_member(req.group_id.as_ref(), req.member_id.as_ref()) {
        Ok(v) => v,
        Err(e) => return top(e),
    };
    // v2: a fetch that renews locks fetches nothing (the fetch's time would eat into the
    // renewed locks), so its sizes and wait must all be 0; acquire modes are 0 (batches, a
    // soft record limit) and 1 (a strict one), both served as the strict limit.
    let renewing = ctx.api_version >= 2 && ctx.newer.is_renew_ack;
    if renewing
        && (
            req.max_bytes,
            req.min_bytes,
            req.max_records,
            req.max_wait_ms,
        ) != (0, 0, 0, 0)
    {
        return top(ErrorCode::InvalidRequest).with_error_message(Some(s(
            "MaxBytes, MinBytes, MaxRecords and MaxWaitMs must be 0 with IsRenewAck",
        )));
    }
    if !(0..=1).contains(&ctx.newer.share_acquire_mode) {
        return top(ErrorCode::InvalidRequest).with_error_message(Some(s(format!(
            "unknown ShareAcquireMode {}",
            ctx.newer.share_acquire_mode
        ))));
    }
    let requested: Vec<(Uuid, i32)> = req
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(move |p| (ouuid(&t.topic_id), p.partition_index))
        })
        .collect();
    let has_acks = req.topics.iter().any(|t| {
        t.partitions
            .iter()
            .any(|p| !p.acknowledgement_batches.is_empty())
    });
    // The session.
    let closing = req.share_session_epoch == -1;
    let partitions: BTreeSet<(Uuid, i32)> = match req.share_session_epoch {
        0 => {
            if has_acks {
                return top(ErrorCode::InvalidRequest);
            }
            match broker.share_partitions.open(
                &group,
                &member,
                requested.iter().copied().collect(),
                broker.clock.now_ms(),
            ) {
                Ok(Some(old)) => {
                    release(broker, &group, &member, &old.partitions).await;
                    requested.iter().copied().collect()
                }
                Ok(None) => requested.iter().copied().collect(),
                Err(e) => return top(e),
            }
        }
        -1 => match broker.share_partitions.close(&group, &member) {
            Ok(s) => s.partitions,
            Err(e) => return top(e),
        },
        e if e > 0 => {
            let forgotten: Vec<(Uuid, i32)> = req
                .forgotten_topics_data
                .iter()
                .flat_map(|t| t.partitions.iter().map(move |p| (ouuid(&t.topic_id), *p)))
                .collect();
            match broker.share_partitions.advance(
                &group,
                &member,
                e,
                &requested,
                &forgotten,
                broker.clock.now_ms(),
            ) {
                Ok(p) => p,
                Err(e) => return top(e),
            }
        }
        _ => return top(ErrorCode::InvalidShareSessionEpoch),
    };
    // Acknowledgements first, per partition.
    let mut answers: BTreeMap<(Uuid, i32), PartitionData> = BTreeMap::new();
    for t in &req.topics {
        for p in &t.partitions {
            if p.acknowledgement_batches.is_empty() {
                continue;
            }
            let tp = (ouuid(&t.topic_id), p.partition_index);
            let code = match acks_of(
                ctx,
                p.acknowledgement_batches
                    .iter()
                    .map(|b| (b.first_offset, b.last_offset, b.acknowledge_types.clone())),
            ) {
                Err(e) => e,
                Ok(acks) => {
                    acknowledge(broker, ctx, &image, &group, &member, tp.0, tp.1, &acks).await
                }
            };
            answers.insert(
                tp,
                PartitionData::default()
                    .with_partition_index(tp.1)
                    .with_acknowledge_error_code(code.code())
                    .with_records(Some(bytes::Bytes::new())),
            );
        }
    }
    if closing {
        release(broker, &group, &member, &partitions).await;
    } else if !renewing {
        fetch_records(
            broker,
            ctx,
            &image,
            &group,
            &member,
            &req,
            &partitions,
            i64::from(lock_ms),
            &mut answers,
        )
        .await;
    }
    let mut by_topic: BTreeMap<Uuid, Vec<PartitionData>> = BTreeMap::new();
    for ((t, p), d) in answers {
        let _ = p;
        by_topic.entry(t).or_default().push(d);
    }
    if req.share_session_epoch == 0 && !renewing {
        for (t, p) in &partitions {
            let list = by_topic.entry(*t).or_default();
            if !list.iter().any(|d| d.partition_index == *p) {
                list.push(
                    PartitionData::default()
                        .with_partition_index(*p)
                        .with_records(Some(bytes::Bytes::new())),
                );
            }
        }
    }
    ShareFetchResponse::default()
        .with_acquisition_lock_timeout_ms(lock_ms)
        .with_responses(
            by_topic
                .into_iter()
                .map(|(t, partitions)| {
                    ShareFetchableTopicResponse::default()
                        .with_topic_id(kuuid(t))
                        .with_partitions(partitions)
                })
                .collect(),
        )
}

/// Acquires records of the session's partitions for `member`, waiting up to the request's
/// MaxWaitMs for some to arrive.
#[allow(clippy::too_many_arguments)]
async fn fetch_records(
    broker: &Broker,
    ctx: &RequestContext,
    image: &MetadataImage,
    group: &str,
    member: &str,
    req: &ShareFetchRequest,
    partitions: &BTreeSet<(Uuid, i32)>,
    lock_ms: i64,
    answers: &mut BTreeMap<(Uuid, i32), PartitionData>,
) {
    let deadline = Instant::now() + Duration::from_millis(req.max_wait_ms.clamp(0, 30_000) as u64);
    let max_records = if req.max_records > 0 {
        req.max_records as usize
    } else {
        500
    };
    let max_bytes = if req.max_bytes > 0 {
        req.max_bytes as u64
    } else {
        50 << 20
    };
    loop {
        let waiter = Arc::new(Notify::new());
        let mut got = 0usize;
        let mut bytes_left = max_bytes;
        for &(topic, p) in partitions {
            if got >= max_records || bytes_left == 0 {
                break;
            }
            let hosted = match leader_of(broker, ctx, image, topic, p) {
                Ok(h) => h,
                Err(e) => {
                    answers
                        .entry((topic, p))
                        .or_insert_with(|| PartitionData::default().with_partition_index(p))
                        .error_code = e.code();
                    continue;
                }
            };
            hosted.hw_waiters.register(&waiter);
            let key = ShareStateKey {
                group: group.to_string(),
                topic_id: topic,
                partition: p,
            };
            let slot = broker.share_partitions.slot(&key);
            let mut slot = slot.lock().await;
            match load(broker, &key, &hosted, &mut slot).await {
                Ok(()) => {}
                // The share coordinator is starting (its topic just created, or loading):
                // nothing to hand out yet; the fetch waits and tries again.
                Err(
                    ErrorCode::CoordinatorLoadInProgress
                    | ErrorCode::CoordinatorNotAvailable
                    | ErrorCode::NotCoordinator,
                ) => continue,
                Err(e) => {
                    answers
                        .entry((topic, p))
                        .or_insert_with(|| PartitionData::default().with_partition_index(p))
                        .error_code = e.code();
                    continue;
                }
            }
            let Some(sp) = slot.partition.as_mut() else {
                continue;
            };
            let now = broker.clock.now_ms();
            sp.expire_locks(now);
            // Records gone from the log (retention, DeleteRecords) leave the window.
            let log_start = hosted.reader.log_start_offset();
            if sp.start_offset() < log_start {
                sp.skip_to(log_start);
            }
            if !sp.can_acquire() {
                continue;
            }
            let from = sp.next_fetch_offset().max(log_start);
            let hw = hosted.high_watermark();
            if from >= hw {
                continue;
            }
            let read = match hosted.reader.read(from, bytes_left.max(1), hw) {
                Ok(r) => r,
                Err(_) => continue,
            };
            let Some(slice) = read.records else {
                continue;
            };
            let upper = (slice.last_offset() + 1).min(hw);
            sp.set_lock_duration_ms(lock_ms);
            let acquired = sp.acquire(member, now, read.log_start_offset, upper, max_records - got);
            if acquired.is_empty() {
                continue;
            }
            let Ok(records) = slice.read_to_bytes() else {
                continue;
            };
            got += acquired
                .iter()
                .map(|a| (a.last_offset - a.first_offset + 1) as usize)
                .sum::<usize>();
            bytes_left = bytes_left.saturating_sub(records.len() as u64);
            let d = answers
                .entry((topic, p))
                .or_insert_with(|| PartitionData::default().with_partition_index(p));
            d.records = Some(records);
            d.acquired_records = acquired
                .iter()
                .map(|a| {
                    AcquiredRecords::default()
                        .with_first_offset(a.first_offset)
                        .with_last_offset(a.last_offset)
                        .with_delivery_count(a.delivery_count)
                })
                .collect();
        }
        if got > 0 || Instant::now() >= deadline {
            return;
        }
        // Nothing yet: wait for a new record on any partition, or a lock to run out.
        let _ = tokio::time::timeout_at(
            deadline
                .min(Instant::now() + Duration::from_millis(500))
                .into(),
            waiter.notified(),
        )
        .await;
    }
}

/// ShareAcknowledge (v1-2).
pub(super) async fn acknowledge_request(
    broker: &Broker,
    ctx: &RequestContext,
    req: ShareAcknowledgeRequest,
) -> ShareAcknowledgeResponse {
    use kafka_protocol::messages::share_acknowledge_response::{
        PartitionData as AckData, ShareAcknowledgeTopicResponse,
    };
    let top = |e: ErrorCode| ShareAcknowledgeResponse::default().with_error_code(e.code());
    let (group, member) = match check_member(req.group_id.as_ref(), req.member_id.as_ref()) {
        Ok(v) => v,
        Err(e) => return top(e),
    };
    let image = broker.image();
    let closing = req.share_session_epoch == -1;
    let session = match req.share_session_epoch {
        0 => return top(ErrorCode::InvalidShareSessionEpoch),
        -1 => broker
            .share_partitions
            .close(&group, &member)
            .map(|s| s.partitions),
        e if e > 0 => {
            broker
                .share_partitions
                .advance(&group, &member, e, &[], &[], broker.clock.now_ms())
        }
        _ => Err(ErrorCode::InvalidShareSessionEpoch),
    };
    let partitions = match session {
        Ok(p) => p,
        Err(e) => return top(e),
    };
    let mut responses = Vec::new();
    for t in &req.topics {
        let topic = ouuid(&t.topic_id);
        let mut out = Vec::new();
        for p in &t.partitions {
            let code = match acks_of(
                ctx,
                p.acknowledgement_batches
                    .iter()
                    .map(|b| (b.first_offset, b.last_offset, b.acknowledge_types.clone())),
            ) {
                Err(e) => e,
                Ok(acks) => {
                    acknowledge(
                        broker,
                        ctx,
                        &image,
                        &group,
                        &member,
                        topic,
                        p.partition_index,
                        &acks,
                    )
                    .await
                }
            };
            out.push(
                AckData::default()
                    .with_partition_index(p.partition_index)
                    .with_error_code(code.code()),
            );
        }
        responses.push(
            ShareAcknowledgeTopicResponse::default()
                .with_topic_id(t.topic_id)
                .with_partitions(out),
        );
    }
    if closing {
        release(broker, &group, &member, &partitions).await;
    }
    let mut response = ShareAcknowledgeResponse::default().with_responses(responses);
    // v2: how long a lock (and a renewed one) lasts.
    odradek_frontend::newer::set_acquisition_lock_timeout(
        &mut response,
        super::group_configs::share_lock_duration_ms(broker, &image, &group) as i32,
    );
    response
}

/// Fires the record locks of every share-partition here, writing the states that changed
/// (run every 100 ms or so).
pub(crate) async fn expire_locks(broker: &Broker) {
    let now = broker.clock.now_ms();
    // Sessions idle past the share session timeout give their records back.
    let idle_ms = i64::from(broker.config.groups.coordinator.share_session_timeout_ms);
    for (group, member, session) in broker.share_partitions.evict_idle(now, idle_ms) {
        release(broker, &group, &member, &session.partitions).await;
    }
    for (key, slot) in broker.share_partitions.all() {
        let Ok(mut slot) = slot.try_lock() else {
            continue;
        };
        let Some(sp) = slot.partition.as_mut() else {
            continue;
        };
        if sp.expire_locks(now) == 0 {
            continue;
        }
        let state = sp.state();
        let (se, le) = (slot.state_epoch, slot.leader_epoch);
        let _ = persist::write(broker, &key, se, le, &state).await;
    }
}
