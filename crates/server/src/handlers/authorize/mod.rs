//! Kafka's per-API ACL checks, before a request reaches its handler: a request whose one
//! resource is refused is answered here with the API's authorization error; a request over
//! several topics (or groups, or config resources) loses the refused ones, which come back
//! in the response with their error beside the handler's answers. Produce, Fetch, Metadata,
//! FindCoordinator and the ACL/SCRAM/quota APIs check inside their handlers.
//! Without an authorizer nothing here runs.

use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use odradek_common::ErrorCode;
use odradek_frontend::RequestContext;
use odradek_metadata::acl::{AclOperation as Op, ResourceType as Rt};
use odradek_metadata::MetadataImage;

use super::{find_topic, Broker};

mod answers;

use answers::{
    add_partitions_errors, cluster_refused, config_allowed, epoch_errors, offset_commit_errors,
};
pub(in crate::handlers) use answers::{
    filter_list_groups, filter_list_transactions, filter_offset_fetch, merge,
};

/// What the checks made of a request.
pub(super) enum Gate {
    /// Handle it (maybe with refused items taken out), then add `Refused` to the response.
    Handle(RequestKind, Refused),
    /// Answer this without handling.
    Answer(ResponseKind),
}

/// Items taken out of a request, to answer with their error.
#[derive(Default)]
pub(super) struct Refused {
    /// (name, partitions) of refused topics, or names of groups / config resources.
    topics: Vec<(String, Vec<i32>)>,
    /// Config resources: (type, name, code).
    configs: Vec<(i8, String, ErrorCode)>,
}

impl Refused {
    fn is_empty(&self) -> bool {
        self.topics.is_empty() && self.configs.is_empty()
    }
}

const TAF: ErrorCode = ErrorCode::TopicAuthorizationFailed;
const GAF: ErrorCode = ErrorCode::GroupAuthorizationFailed;
const CAF: ErrorCode = ErrorCode::ClusterAuthorizationFailed;
const TIAF: ErrorCode = ErrorCode::TransactionalIdAuthorizationFailed;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn tn(v: &str) -> TopicName {
    TopicName(s(v))
}

/// Keeps the items `allowed` admits; each other one goes to `refused` as `describe` says.
fn split<T, D>(
    items: &mut Vec<T>,
    refused: &mut Vec<D>,
    allowed: impl Fn(&T) -> bool,
    describe: impl Fn(&T) -> D,
) {
    items.retain(|t| {
        let keep = allowed(t);
        if !keep {
            refused.push(describe(t));
        }
        keep
    });
}

/// [`split`] for config resources: a refused one keeps the error code its check gave.
fn split_configs<T>(
    items: &mut Vec<T>,
    refused: &mut Vec<(i8, String, ErrorCode)>,
    resource: impl Fn(&T) -> (i8, &str),
    allowed: impl Fn(i8, &str) -> (bool, ErrorCode),
) {
    items.retain(|t| {
        let (resource_type, name) = resource(t);
        let (keep, code) = allowed(resource_type, name);
        if !keep {
            refused.push((resource_type, name.to_string(), code));
        }
        keep
    });
}

/// Runs the checks of `request`.
pub(super) fn check(broker: &Broker, ctx: &RequestContext, request: RequestKind) -> Gate {
    if !broker.authorizes() {
        return Gate::Handle(request, Refused::default());
    }
    let image = broker.image();
    let ok = |op, rt, name: &str| broker.authorized(ctx, &image, op, rt, name);
    let cluster = |op| broker.authorized_cluster(ctx, &image, op);
    let mut refused = Refused::default();
    use RequestKind as R;
    use ResponseKind as A;
    let answer = match request {
        R::JoinGroup(r) if !ok(Op::Read, Rt::Group, &r.group_id) => {
            A::JoinGroup(JoinGroupResponse::default().with_error_code(GAF.code()))
        }
        R::SyncGroup(r) if !ok(Op::Read, Rt::Group, &r.group_id) => {
            A::SyncGroup(SyncGroupResponse::default().with_error_code(GAF.code()))
        }
        R::Heartbeat(r) if !ok(Op::Read, Rt::Group, &r.group_id) => {
            A::Heartbeat(HeartbeatResponse::default().with_error_code(GAF.code()))
        }
        R::ShareGroupHeartbeat(r) if !ok(Op::Read, Rt::Group, &r.group_id) => {
            A::ShareGroupHeartbeat(
                ShareGroupHeartbeatResponse::default().with_error_code(GAF.code()),
            )
        }
        R::ShareGroupHeartbeat(r)
            if r.subscribed_topic_names
                .iter()
                .flatten()
                .any(|t| !ok(Op::Describe, Rt::Topic, t)) =>
        {
            A::ShareGroupHeartbeat(
                ShareGroupHeartbeatResponse::default().with_error_code(TAF.code()),
            )
        }
        R::ShareFetch(r)
            if !r
                .group_id
                .as_ref()
                .is_some_and(|g| ok(Op::Read, Rt::Group, g)) =>
        {
            A::ShareFetch(ShareFetchResponse::default().with_error_code(GAF.code()))
        }
        R::ShareAcknowledge(r)
            if !r
                .group_id
                .as_ref()
                .is_some_and(|g| ok(Op::Read, Rt::Group, g)) =>
        {
            A::ShareAcknowledge(ShareAcknowledgeResponse::default().with_error_code(GAF.code()))
        }
        R::InitializeShareGroupState(_)
        | R::ReadShareGroupState(_)
        | R::WriteShareGroupState(_)
        | R::DeleteShareGroupState(_)
            if !cluster(Op::ClusterAction) =>
        {
            return Gate::Answer(cluster_action_refused(request));
        }
        R::ConsumerGroupHeartbeat(r) if !ok(Op::Read, Rt::Group, &r.group_id) => {
            A::ConsumerGroupHeartbeat(
                ConsumerGroupHeartbeatResponse::default().with_error_code(GAF.code()),
            )
        }
        // Kafka: a member may subscribe by name only to topics it may DESCRIBE.
        R::ConsumerGroupHeartbeat(r)
            if r.subscribed_topic_names
                .iter()
                .flatten()
                .any(|t| !ok(Op::Describe, Rt::Topic, t)) =>
        {
            A::ConsumerGroupHeartbeat(
                ConsumerGroupHeartbeatResponse::default().with_error_code(TAF.code()),
            )
        }
        R::LeaveGroup(r) if !ok(Op::Read, Rt::Group, &r.group_id) => {
            A::LeaveGroup(LeaveGroupResponse::default().with_error_code(GAF.code()))
        }
        R::InitProducerId(r) => {
            let allowed = match &r.transactional_id {
                Some(id) => ok(Op::Write, Rt::TransactionalId, id),
                None => {
                    cluster(Op::IdempotentWrite)
                        || broker.authorized_any(ctx, &image, Op::Write, Rt::Topic)
                }
            };
            if allowed {
                return Gate::Handle(R::InitProducerId(r), refused);
            }
            let code = if r.transactional_id.is_some() {
                TIAF
            } else {
                CAF
            };
            A::InitProducerId(
                InitProducerIdResponse::default()
                    .with_error_code(code.code())
                    .with_producer_id(ProducerId(-1))
                    .with_producer_epoch(-1),
            )
        }
        R::EndTxn(r) if !ok(Op::Write, Rt::TransactionalId, &r.transactional_id) => {
            A::EndTxn(EndTxnResponse::default().with_error_code(TIAF.code()))
        }
        R::AddOffsetsToTxn(r) => {
            let code = if !ok(Op::Write, Rt::TransactionalId, &r.transactional_id) {
                TIAF
            } else if !ok(Op::Read, Rt::Group, &r.group_id) {
                GAF
            } else {
                return Gate::Handle(R::AddOffsetsToTxn(r), refused);
            };
            A::AddOffsetsToTxn(AddOffsetsToTxnResponse::default().with_error_code(code.code()))
        }
        R::AlterPartitionReassignments(_)
        | R::ElectLeaders(_)
        | R::UnregisterBroker(_)
        | R::AddRaftVoter(_)
        | R::RemoveRaftVoter(_)
            if !cluster(Op::Alter) =>
        {
            return Gate::Answer(cluster_refused(ctx.api_key));
        }
        // DescribeCluster needs no permission (Kafka only fills cluster_authorized_operations).
        R::ListPartitionReassignments(_) | R::DescribeQuorum(_) | R::DescribeLogDirs(_)
            if !cluster(Op::Describe) =>
        {
            return Gate::Answer(cluster_refused(ctx.api_key));
        }
        R::WriteTxnMarkers(_) if !cluster(Op::ClusterAction) => {
            return Gate::Answer(cluster_refused(ctx.api_key));
        }
        R::OffsetCommit(mut r) => {
            if !ok(Op::Read, Rt::Group, &r.group_id) {
                let all = r
                    .topics
                    .iter()
                    .map(|t| {
                        (
                            t.name.to_string(),
                            t.partitions.iter().map(|p| p.partition_index).collect(),
                        )
                    })
                    .collect();
                return Gate::Answer(A::OffsetCommit(offset_commit_errors(all, GAF)));
            }
            split(
                &mut r.topics,
                &mut refused.topics,
                |t| ok(Op::Read, Rt::Topic, &t.name),
                |t| {
                    (
                        t.name.to_string(),
                        t.partitions.iter().map(|p| p.partition_index).collect(),
                    )
                },
            );
            return Gate::Handle(R::OffsetCommit(r), refused);
        }
        R::TxnOffsetCommit(mut r) => {
            let code = if !ok(Op::Write, Rt::TransactionalId, &r.transactional_id) {
                Some(TIAF)
            } else if !ok(Op::Read, Rt::Group, &r.group_id) {
                Some(GAF)
            } else {
                None
            };
            if let Some(code) = code {
                let topics = r
                    .topics
                    .iter()
                    .map(|t| {
                        TxnOffsetCommitResponseTopic::default()
                            .with_name(t.name.clone())
                            .with_partitions(
                                t.partitions
                                    .iter()
                                    .map(|p| {
                                        TxnOffsetCommitResponsePartition::default()
                                            .with_partition_index(p.partition_index)
                                            .with_error_code(code.code())
                                    })
                                    .collect(),
                            )
                    })
                    .collect();
                return Gate::Answer(A::TxnOffsetCommit(
                    TxnOffsetCommitResponse::default().with_topics(topics),
                ));
            }
            split(
                &mut r.topics,
                &mut refused.topics,
                |t| ok(Op::Read, Rt::Topic, &t.name),
                |t| {
                    (
                        t.name.to_string(),
                        t.partitions.iter().map(|p| p.partition_index).collect(),
                    )
                },
            );
            return Gate::Handle(R::TxnOffsetCommit(r), refused);
        }
        R::AddPartitionsToTxn(mut r) if ctx.api_version <= 3 => {
            if !ok(
                Op::Write,
                Rt::TransactionalId,
                &r.v3_and_below_transactional_id,
            ) {
                let all = r
                    .v3_and_below_topics
                    .iter()
                    .map(|t| (t.name.to_string(), t.partitions.clone()))
                    .collect();
                return Gate::Answer(A::AddPartitionsToTxn(add_partitions_errors(
                    all, TIAF, None,
                )));
            }
            let mut denied = Vec::new();
            split(
                &mut r.v3_and_below_topics,
                &mut denied,
                |t| ok(Op::Write, Rt::Topic, &t.name),
                |t| (t.name.to_string(), t.partitions.clone()),
            );
            if !denied.is_empty() {
                // Kafka: the refused topics fail, the others are not attempted.
                let rest = r
                    .v3_and_below_topics
                    .iter()
                    .map(|t| (t.name.to_string(), t.partitions.clone()))
                    .collect();
                return Gate::Answer(A::AddPartitionsToTxn(add_partitions_errors(
                    denied,
                    TAF,
                    Some(rest),
                )));
            }
            return Gate::Handle(R::AddPartitionsToTxn(r), refused);
        }
        R::OffsetFetch(mut r) => {
            if ctx.api_version >= 8 {
                let mut denied_groups = Vec::new();
                split(
                    &mut r.groups,
                    &mut denied_groups,
                    |g| ok(Op::Describe, Rt::Group, &g.group_id),
                    |g| g.group_id.to_string(),
                );
                refused.topics = denied_groups.into_iter().map(|g| (g, Vec::new())).collect();
                return Gate::Handle(R::OffsetFetch(r), refused);
            }
            if !ok(Op::Describe, Rt::Group, &r.group_id) {
                return Gate::Answer(A::OffsetFetch(
                    OffsetFetchResponse::default().with_error_code(GAF.code()),
                ));
            }
            if let Some(topics) = r.topics.as_mut() {
                topics.retain(|t| {
                    let keep = ok(Op::Describe, Rt::Topic, &t.name);
                    if !keep {
                        refused
                            .topics
                            .push((t.name.to_string(), t.partition_indexes.clone()));
                    }
                    keep
                });
            }
            return Gate::Handle(R::OffsetFetch(r), refused);
        }
        R::ListOffsets(mut r) => {
            split(
                &mut r.topics,
                &mut refused.topics,
                |t| ok(Op::Describe, Rt::Topic, &t.name),
                |t| {
                    (
                        t.name.to_string(),
                        t.partitions.iter().map(|p| p.partition_index).collect(),
                    )
                },
            );
            return Gate::Handle(R::ListOffsets(r), refused);
        }
        R::DeleteRecords(mut r) => {
            split(
                &mut r.topics,
                &mut refused.topics,
                |t| ok(Op::Delete, Rt::Topic, &t.name),
                |t| {
                    (
                        t.name.to_string(),
                        t.partitions.iter().map(|p| p.partition_index).collect(),
                    )
                },
            );
            return Gate::Handle(R::DeleteRecords(r), refused);
        }
        R::CreateTopics(mut r) => {
            let any = cluster(Op::Create);
            split(
                &mut r.topics,
                &mut refused.topics,
                |t| any || ok(Op::Create, Rt::Topic, &t.name),
                |t| (t.name.to_string(), Vec::new()),
            );
            return Gate::Handle(R::CreateTopics(r), refused);
        }
        R::DeleteTopics(r) if cluster(Op::Delete) => {
            return Gate::Handle(R::DeleteTopics(r), refused)
        }
        R::DeleteTopics(mut r) => {
            let name_of = |image: &MetadataImage, name: Option<&TopicName>, id: &uuid::Uuid| {
                let name = name.map(|n| n.to_string()).unwrap_or_default();
                find_topic(image, &name, id).map_or(name, |t| t.name.clone())
            };
            split(
                &mut r.topic_names,
                &mut refused.topics,
                |n| ok(Op::Delete, Rt::Topic, n),
                |n| (n.to_string(), Vec::new()),
            );
            r.topics.retain(|t| {
                let name = name_of(&image, t.name.as_ref(), &t.topic_id);
                let keep = ok(Op::Delete, Rt::Topic, &name);
                if !keep {
                    refused.topics.push((name, Vec::new()));
                }
                keep
            });
            return Gate::Handle(R::DeleteTopics(r), refused);
        }
        R::CreatePartitions(mut r) => {
            split(
                &mut r.topics,
                &mut refused.topics,
                |t| ok(Op::Alter, Rt::Topic, &t.name),
                |t| (t.name.to_string(), Vec::new()),
            );
            return Gate::Handle(R::CreatePartitions(r), refused);
        }
        R::DescribeConfigs(mut r) => {
            split_configs(
                &mut r.resources,
                &mut refused.configs,
                |c| (c.resource_type, c.resource_name.as_str()),
                |t, n| config_allowed(broker, ctx, &image, t, n, Op::DescribeConfigs),
            );
            return Gate::Handle(R::DescribeConfigs(r), refused);
        }
        R::IncrementalAlterConfigs(mut r) => {
            split_configs(
                &mut r.resources,
                &mut refused.configs,
                |c| (c.resource_type, c.resource_name.as_str()),
                |t, n| config_allowed(broker, ctx, &image, t, n, Op::AlterConfigs),
            );
            return Gate::Handle(R::IncrementalAlterConfigs(r), refused);
        }
        R::DescribeGroups(mut r) => {
            split(
                &mut r.groups,
                &mut refused.topics,
                |g| ok(Op::Describe, Rt::Group, g),
                |g| (g.to_string(), Vec::new()),
            );
            return Gate::Handle(R::DescribeGroups(r), refused);
        }
        R::DeleteGroups(mut r) => {
            split(
                &mut r.groups_names,
                &mut refused.topics,
                |g| ok(Op::Delete, Rt::Group, g),
                |g| (g.to_string(), Vec::new()),
            );
            return Gate::Handle(R::DeleteGroups(r), refused);
        }
        R::OffsetForLeaderEpoch(r) if r.replica_id.0 >= 0 && !cluster(Op::ClusterAction) => {
            let topics = r
                .topics
                .iter()
                .map(|t| {
                    (
                        t.topic.to_string(),
                        t.partitions.iter().map(|p| p.partition).collect(),
                    )
                })
                .collect();
            A::OffsetForLeaderEpoch(epoch_errors(topics))
        }
        R::OffsetForLeaderEpoch(mut r) if r.replica_id.0 < 0 => {
            split(
                &mut r.topics,
                &mut refused.topics,
                |t| ok(Op::Describe, Rt::Topic, &t.topic),
                |t| {
                    (
                        t.topic.to_string(),
                        t.partitions.iter().map(|p| p.partition).collect(),
                    )
                },
            );
            return Gate::Handle(R::OffsetForLeaderEpoch(r), refused);
        }
        R::DescribeProducers(mut r) => {
            r.topics.retain(|t| {
                let keep = ok(Op::Read, Rt::Topic, &t.name);
                if !keep {
                    refused
                        .topics
                        .push((t.name.to_string(), t.partition_indexes.clone()));
                }
                keep
            });
            return Gate::Handle(R::DescribeProducers(r), refused);
        }
        R::DescribeTransactions(mut r) => {
            split(
                &mut r.transactional_ids,
                &mut refused.topics,
                |id| ok(Op::Describe, Rt::TransactionalId, id),
                |id| (id.to_string(), Vec::new()),
            );
            return Gate::Handle(R::DescribeTransactions(r), refused);
        }
        other => return Gate::Handle(other, refused),
    };
    Gate::Answer(answer)
}

/// The share state APIs are for brokers only (CLUSTER_ACTION): each partition is refused.
fn cluster_action_refused(request: RequestKind) -> ResponseKind {
    let code = ErrorCode::ClusterAuthorizationFailed.code();
    match request {
        RequestKind::InitializeShareGroupState(r) => {
            use kafka_protocol::messages::initialize_share_group_state_response::*;
            ResponseKind::InitializeShareGroupState(
                InitializeShareGroupStateResponse::default().with_results(
                    r.topics
                        .iter()
                        .map(|t| {
                            InitializeStateResult::default()
                                .with_topic_id(t.topic_id)
                                .with_partitions(
                                    t.partitions
                                        .iter()
                                        .map(|p| {
                                            PartitionResult::default()
                                                .with_partition(p.partition)
                                                .with_error_code(code)
                                        })
                                        .collect(),
                                )
                        })
                        .collect(),
                ),
            )
        }
        RequestKind::ReadShareGroupState(r) => {
            use kafka_protocol::messages::read_share_group_state_response::*;
            ResponseKind::ReadShareGroupState(
                ReadShareGroupStateResponse::default().with_results(
                    r.topics
                        .iter()
                        .map(|t| {
                            ReadStateResult::default()
                                .with_topic_id(t.topic_id)
                                .with_partitions(
                                    t.partitions
                                        .iter()
                                        .map(|p| {
                                            PartitionResult::default()
                                                .with_partition(p.partition)
                                                .with_error_code(code)
                                        })
                                        .collect(),
                                )
                        })
                        .collect(),
                ),
            )
        }
        RequestKind::WriteShareGroupState(r) => {
            use kafka_protocol::messages::write_share_group_state_response::*;
            ResponseKind::WriteShareGroupState(
                WriteShareGroupStateResponse::default().with_results(
                    r.topics
                        .iter()
                        .map(|t| {
                            WriteStateResult::default()
                                .with_topic_id(t.topic_id)
                                .with_partitions(
                                    t.partitions
                                        .iter()
                                        .map(|p| {
                                            PartitionResult::default()
                                                .with_partition(p.partition)
                                                .with_error_code(code)
                                        })
                                        .collect(),
                                )
                        })
                        .collect(),
                ),
            )
        }
        RequestKind::DeleteShareGroupState(r) => {
            use kafka_protocol::messages::delete_share_group_state_response::*;
            ResponseKind::DeleteShareGroupState(
                DeleteShareGroupStateResponse::default().with_results(
                    r.topics
                        .iter()
                        .map(|t| {
                            DeleteStateResult::default()
                                .with_topic_id(t.topic_id)
                                .with_partitions(
                                    t.partitions
                                        .iter()
                                        .map(|p| {
                                            PartitionResult::default()
                                                .with_partition(p.partition)
                                                .with_error_code(code)
                                        })
                                        .collect(),
                                )
                        })
                        .collect(),
                ),
            )
        }
        _ => ResponseKind::WriteTxnMarkers(WriteTxnMarkersResponse::default()),
    }
}
