//! The KIP-848 consumer group APIs: ConsumerGroupHeartbeat and ConsumerGroupDescribe. The
//! state machine is `odradek_coordinator`'s; this file translates the messages and waits, as
//! Kafka's coordinator does, until the records a heartbeat wrote are replicated before it
//! answers.

use std::collections::BTreeMap;

use kafka_protocol::messages::consumer_group_describe_response::{
    self as describe, DescribedGroup,
};
use kafka_protocol::messages::consumer_group_heartbeat_response::{
    Assignment as WireAssignment, TopicPartitions,
};
use kafka_protocol::messages::{
    ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse, ConsumerGroupHeartbeatRequest,
    ConsumerGroupHeartbeatResponse, GroupId, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use odradek_common::{ErrorCode, Uuid};
use odradek_coordinator::{Assignment, ConsumerHeartbeat, Output};
use odradek_frontend::RequestContext;
use odradek_metadata::MetadataImage;

use super::{kuuid, ouuid, Broker};

fn s(v: impl Into<String>) -> StrBytes {
    StrBytes::from_string(v.into())
}

fn assignment_from_wire(
    list: &[kafka_protocol::messages::consumer_group_heartbeat_request::TopicPartitions],
) -> Assignment {
    let mut a = Assignment::new();
    for tp in list {
        a.entry(ouuid(&tp.topic_id))
            .or_default()
            .extend(tp.partitions.iter().copied());
    }
    a.retain(|_, ps| !ps.is_empty());
    a
}

/// ConsumerGroupHeartbeat (v0-v1).
pub(super) async fn heartbeat(
    broker: &Broker,
    ctx: &RequestContext,
    req: ConsumerGroupHeartbeatRequest,
) -> ConsumerGroupHeartbeatResponse {
    let image = super::groups::ensure_offsets_topic(broker).await;
    let group = req.group_id.0.to_string();
    let hb = ConsumerHeartbeat {
        group_id: group.clone(),
        member_id: req.member_id.to_string(),
        member_epoch: req.member_epoch,
        instance_id: req.instance_id.as_ref().map(|v| v.to_string()),
        rack_id: req.rack_id.as_ref().map(|v| v.to_string()),
        rebalance_timeout_ms: req.rebalance_timeout_ms,
        subscribed_topic_names: req
            .subscribed_topic_names
            .as_ref()
            .map(|ts| ts.iter().map(|t| t.0.to_string()).collect()),
        subscribed_topic_regex: req.subscribed_topic_regex.as_ref().map(|v| v.to_string()),
        server_assignor: req.server_assignor.as_ref().map(|v| v.to_string()),
        owned: req.topic_partitions.as_deref().map(assignment_from_wire),
        client_id: ctx.client_id.clone().unwrap_or_default(),
        client_host: format!("/{}", ctx.peer.ip()),
        api_version: ctx.api_version,
    };
    let error = |e: ErrorCode| ConsumerGroupHeartbeatResponse::default().with_error_code(e.code());
    // Kafka checks the request before it looks for the group's coordinator state.
    if let Err((e, message)) = hb.validate(broker.groups.config()) {
        return error(e).with_error_message(Some(s(message)));
    }
    let topics = super::ImageTopics(&image);
    let appended = broker
        .groups
        .exec_appending(&image, &group, |groups, _, now| {
            groups.consumer_heartbeat(now, hb, &topics)
        });
    let (r, at) = match appended {
        Ok(v) => v,
        Err(e) => return error(e),
    };
    if let Err(e) = super::groups::replicated(broker, &image, at).await {
        return error(e);
    }
    if r.error != ErrorCode::None {
        tracing::debug!(group_id = %group, error = r.error.name(), message = ?r.error_message, "consumer group heartbeat refused");
    }
    ConsumerGroupHeartbeatResponse::default()
        .with_error_code(r.error.code())
        .with_error_message(r.error_message.map(s))
        .with_member_id(r.member_id.map(s))
        .with_member_epoch(r.member_epoch)
        .with_heartbeat_interval_ms(r.heartbeat_interval_ms)
        .with_assignment(r.assignment.map(|a| {
            WireAssignment::default().with_topic_partitions(
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

fn wire_assignment(image: &MetadataImage, a: &Assignment) -> describe::Assignment {
    let names: BTreeMap<Uuid, String> = a
        .keys()
        .filter_map(|id| image.topics.by_id.get(id).map(|t| (*id, t.name.clone())))
        .collect();
    describe::Assignment::default().with_topic_partitions(
        a.iter()
            .map(|(t, ps)| {
                describe::TopicPartitions::default()
                    .with_topic_id(kuuid(*t))
                    .with_topic_name(TopicName(s(names.get(t).cloned().unwrap_or_default())))
                    .with_partitions(ps.iter().copied().collect())
            })
            .collect(),
    )
}

/// ConsumerGroupDescribe (v0-v1).
pub(super) fn describe(
    broker: &Broker,
    ctx: &RequestContext,
    req: ConsumerGroupDescribeRequest,
) -> ConsumerGroupDescribeResponse {
    let image = broker.image();
    let groups = req
        .group_ids
        .iter()
        .map(|g| {
            let group = g.0.to_string();
            let base = DescribedGroup::default()
                .with_group_id(GroupId(s(group.clone())))
                .with_authorized_operations(i32::MIN);
            if group.is_empty() {
                return base.with_error_code(ErrorCode::InvalidGroupId.code());
            }
            if broker.authorizes()
                && !broker.authorized(
                    ctx,
                    &image,
                    odradek_metadata::acl::AclOperation::Describe,
                    odradek_metadata::acl::ResourceType::Group,
                    &group,
                )
            {
                return base.with_error_code(ErrorCode::GroupAuthorizationFailed.code());
            }
            let found = broker.groups.exec(&image, &group, |groups, _, _| {
                (groups.describe_consumer(&group), Output::default())
            });
            match found {
                Err(e) => base.with_error_code(e.code()),
                Ok(Err((e, message))) => base
                    .with_error_code(e.code())
                    .with_error_message(Some(s(message))),
                Ok(Ok(d)) => base
                    .with_group_state(s(d.state))
                    .with_group_epoch(d.group.group_epoch)
                    .with_assignment_epoch(d.group.assignment_epoch)
                    .with_assignor_name(s(d.assignor))
                    .with_members(
                        d.group
                            .members
                            .iter()
                            .map(|(id, m)| {
                                let empty = Assignment::new();
                                let target = d.group.target.get(id).unwrap_or(&empty);
                                let member = describe::Member::default()
                                    .with_member_id(s(id.clone()))
                                    .with_instance_id(m.metadata.instance_id.clone().map(s))
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
                                    .with_subscribed_topic_regex(
                                        m.metadata.subscribed_topic_regex.clone().map(s),
                                    )
                                    .with_assignment(wire_assignment(&image, &m.assigned))
                                    .with_target_assignment(wire_assignment(&image, target));
                                // v1: 0 = a classic member, 1 = a consumer-protocol one.
                                if ctx.api_version >= 1 {
                                    member.with_member_type(i8::from(!m.is_classic()))
                                } else {
                                    member
                                }
                            })
                            .collect(),
                    ),
            }
        })
        .collect();
    ConsumerGroupDescribeResponse::default().with_groups(groups)
}
