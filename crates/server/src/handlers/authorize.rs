//! Kafka's per-API ACL checks, before a request reaches its handler: a request whose one
//! resource is refused is answered here with the API's authorization error; a request over
//! several topics (or groups, or config resources) loses the refused ones, which come back
//! in the response with their error beside the handler's answers. Produce, Fetch, Metadata,
//! FindCoordinator and the ACL/SCRAM/quota APIs check inside their handlers.
//! Without an authorizer nothing here runs.

use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::describe_configs_response::DescribeConfigsResult;
use kafka_protocol::messages::describe_groups_response::DescribedGroup;
use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponseTopic,
};
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
            r.topics.retain(|t| {
                let keep = ok(Op::Read, Rt::Topic, &t.name);
                if !keep {
                    refused.topics.push((
                        t.name.to_string(),
                        t.partitions.iter().map(|p| p.partition_index).collect(),
                    ));
                }
                keep
            });
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
            r.topics.retain(|t| {
                let keep = ok(Op::Read, Rt::Topic, &t.name);
                if !keep {
                    refused.topics.push((
                        t.name.to_string(),
                        t.partitions.iter().map(|p| p.partition_index).collect(),
                    ));
                }
                keep
            });
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
            r.v3_and_below_topics.retain(|t| {
                let keep = ok(Op::Write, Rt::Topic, &t.name);
                if !keep {
                    denied.push((t.name.to_string(), t.partitions.clone()));
                }
                keep
            });
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
                r.groups.retain(|g| {
                    let keep = ok(Op::Describe, Rt::Group, &g.group_id);
                    if !keep {
                        denied_groups.push(g.group_id.to_string());
                    }
                    keep
                });
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
            r.topics.retain(|t| {
                let keep = ok(Op::Describe, Rt::Topic, &t.name);
                if !keep {
                    refused.topics.push((
                        t.name.to_string(),
                        t.partitions.iter().map(|p| p.partition_index).collect(),
                    ));
                }
                keep
            });
            return Gate::Handle(R::ListOffsets(r), refused);
        }
        R::DeleteRecords(mut r) => {
            r.topics.retain(|t| {
                let keep = ok(Op::Delete, Rt::Topic, &t.name);
                if !keep {
                    refused.topics.push((
                        t.name.to_string(),
                        t.partitions.iter().map(|p| p.partition_index).collect(),
                    ));
                }
                keep
            });
            return Gate::Handle(R::DeleteRecords(r), refused);
        }
        R::CreateTopics(mut r) => {
            let any = cluster(Op::Create);
            r.topics.retain(|t| {
                let keep = any || ok(Op::Create, Rt::Topic, &t.name);
                if !keep {
                    refused.topics.push((t.name.to_string(), Vec::new()));
                }
                keep
            });
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
            r.topic_names.retain(|n| {
                let keep = ok(Op::Delete, Rt::Topic, n);
                if !keep {
                    refused.topics.push((n.to_string(), Vec::new()));
                }
                keep
            });
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
            r.topics.retain(|t| {
                let keep = ok(Op::Alter, Rt::Topic, &t.name);
                if !keep {
                    refused.topics.push((t.name.to_string(), Vec::new()));
                }
                keep
            });
            return Gate::Handle(R::CreatePartitions(r), refused);
        }
        R::DescribeConfigs(mut r) => {
            r.resources.retain(|c| {
                let (keep, code) = config_allowed(
                    broker,
                    ctx,
                    &image,
                    c.resource_type,
                    &c.resource_name,
                    Op::DescribeConfigs,
                );
                if !keep {
                    refused
                        .configs
                        .push((c.resource_type, c.resource_name.to_string(), code));
                }
                keep
            });
            return Gate::Handle(R::DescribeConfigs(r), refused);
        }
        R::IncrementalAlterConfigs(mut r) => {
            r.resources.retain(|c| {
                let (keep, code) = config_allowed(
                    broker,
                    ctx,
                    &image,
                    c.resource_type,
                    &c.resource_name,
                    Op::AlterConfigs,
                );
                if !keep {
                    refused
                        .configs
                        .push((c.resource_type, c.resource_name.to_string(), code));
                }
                keep
            });
            return Gate::Handle(R::IncrementalAlterConfigs(r), refused);
        }
        R::DescribeGroups(mut r) => {
            r.groups.retain(|g| {
                let keep = ok(Op::Describe, Rt::Group, g);
                if !keep {
                    refused.topics.push((g.to_string(), Vec::new()));
                }
                keep
            });
            return Gate::Handle(R::DescribeGroups(r), refused);
        }
        R::DeleteGroups(mut r) => {
            r.groups_names.retain(|g| {
                let keep = ok(Op::Delete, Rt::Group, g);
                if !keep {
                    refused.topics.push((g.to_string(), Vec::new()));
                }
                keep
            });
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
            r.topics.retain(|t| {
                let keep = ok(Op::Describe, Rt::Topic, &t.topic);
                if !keep {
                    refused.topics.push((
                        t.topic.to_string(),
                        t.partitions.iter().map(|p| p.partition).collect(),
                    ));
                }
                keep
            });
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
            r.transactional_ids.retain(|id| {
                let keep = ok(Op::Describe, Rt::TransactionalId, id);
                if !keep {
                    refused.topics.push((id.to_string(), Vec::new()));
                }
                keep
            });
            return Gate::Handle(R::DescribeTransactions(r), refused);
        }
        other => return Gate::Handle(other, refused),
    };
    Gate::Answer(answer)
}

/// The refusal of an API gated on the cluster resource.
fn cluster_refused(api: ApiKey) -> ResponseKind {
    let code = CAF.code();
    match api {
        ApiKey::AlterPartitionReassignments => ResponseKind::AlterPartitionReassignments(
            AlterPartitionReassignmentsResponse::default().with_error_code(code),
        ),
        ApiKey::ElectLeaders => {
            ResponseKind::ElectLeaders(ElectLeadersResponse::default().with_error_code(code))
        }
        ApiKey::UnregisterBroker => ResponseKind::UnregisterBroker(
            UnregisterBrokerResponse::default().with_error_code(code),
        ),
        ApiKey::AddRaftVoter => {
            ResponseKind::AddRaftVoter(AddRaftVoterResponse::default().with_error_code(code))
        }
        ApiKey::RemoveRaftVoter => {
            ResponseKind::RemoveRaftVoter(RemoveRaftVoterResponse::default().with_error_code(code))
        }
        ApiKey::ListPartitionReassignments => ResponseKind::ListPartitionReassignments(
            ListPartitionReassignmentsResponse::default().with_error_code(code),
        ),
        ApiKey::DescribeQuorum => {
            ResponseKind::DescribeQuorum(DescribeQuorumResponse::default().with_error_code(code))
        }
        ApiKey::DescribeLogDirs => {
            ResponseKind::DescribeLogDirs(DescribeLogDirsResponse::default().with_error_code(code))
        }
        _ => ResponseKind::WriteTxnMarkers(WriteTxnMarkersResponse::default()),
    }
}

/// Config resources: a topic needs the operation on the topic, a broker on the cluster.
fn config_allowed(
    broker: &Broker,
    ctx: &RequestContext,
    image: &MetadataImage,
    resource_type: i8,
    name: &str,
    op: Op,
) -> (bool, ErrorCode) {
    match resource_type {
        2 => (broker.authorized(ctx, image, op, Rt::Topic, name), TAF),
        _ => (broker.authorized_cluster(ctx, image, op), CAF),
    }
}

fn offset_commit_errors(topics: Vec<(String, Vec<i32>)>, code: ErrorCode) -> OffsetCommitResponse {
    OffsetCommitResponse::default().with_topics(
        topics
            .into_iter()
            .map(|(name, ps)| {
                OffsetCommitResponseTopic::default()
                    .with_name(tn(&name))
                    .with_partitions(
                        ps.into_iter()
                            .map(|p| {
                                OffsetCommitResponsePartition::default()
                                    .with_partition_index(p)
                                    .with_error_code(code.code())
                            })
                            .collect(),
                    )
            })
            .collect(),
    )
}

fn add_partitions_errors(
    topics: Vec<(String, Vec<i32>)>,
    code: ErrorCode,
    not_attempted: Option<Vec<(String, Vec<i32>)>>,
) -> AddPartitionsToTxnResponse {
    const OPERATION_NOT_ATTEMPTED: i16 = 55;
    let result = |(name, ps): (String, Vec<i32>), code: i16| {
        AddPartitionsToTxnTopicResult::default()
            .with_name(tn(&name))
            .with_results_by_partition(
                ps.into_iter()
                    .map(|p| {
                        AddPartitionsToTxnPartitionResult::default()
                            .with_partition_index(p)
                            .with_partition_error_code(code)
                    })
                    .collect(),
            )
    };
    let mut results: Vec<_> = topics.into_iter().map(|t| result(t, code.code())).collect();
    results.extend(
        not_attempted
            .unwrap_or_default()
            .into_iter()
            .map(|t| result(t, OPERATION_NOT_ATTEMPTED)),
    );
    AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(results)
}

/// Adds the refused items' errors to a handler's response.
pub(super) fn merge(response: ResponseKind, refused: Refused) -> ResponseKind {
    if refused.is_empty() {
        return response;
    }
    use ResponseKind as A;
    let topics = refused.topics;
    match response {
        A::OffsetCommit(mut r) => {
            r.topics.extend(offset_commit_errors(topics, TAF).topics);
            A::OffsetCommit(r)
        }
        A::TxnOffsetCommit(mut r) => {
            r.topics.extend(topics.into_iter().map(|(name, ps)| {
                TxnOffsetCommitResponseTopic::default()
                    .with_name(tn(&name))
                    .with_partitions(
                        ps.into_iter()
                            .map(|p| {
                                TxnOffsetCommitResponsePartition::default()
                                    .with_partition_index(p)
                                    .with_error_code(TAF.code())
                            })
                            .collect(),
                    )
            }));
            A::TxnOffsetCommit(r)
        }
        A::OffsetFetch(mut r) => {
            if r.groups.is_empty() && !topics.iter().all(|(_, ps)| ps.is_empty()) {
                r.topics.extend(topics.into_iter().map(|(name, ps)| {
                    OffsetFetchResponseTopic::default()
                        .with_name(tn(&name))
                        .with_partitions(
                            ps.into_iter()
                                .map(|p| {
                                    OffsetFetchResponsePartition::default()
                                        .with_partition_index(p)
                                        .with_committed_offset(-1)
                                        .with_committed_leader_epoch(-1)
                                        .with_error_code(TAF.code())
                                })
                                .collect(),
                        )
                }));
            } else {
                r.groups.extend(topics.into_iter().map(|(g, _)| {
                    OffsetFetchResponseGroup::default()
                        .with_group_id(GroupId(s(&g)))
                        .with_error_code(GAF.code())
                }));
            }
            A::OffsetFetch(r)
        }
        A::ListOffsets(mut r) => {
            r.topics.extend(topics.into_iter().map(|(name, ps)| {
                ListOffsetsTopicResponse::default()
                    .with_name(tn(&name))
                    .with_partitions(
                        ps.into_iter()
                            .map(|p| {
                                ListOffsetsPartitionResponse::default()
                                    .with_partition_index(p)
                                    .with_error_code(TAF.code())
                                    .with_timestamp(-1)
                                    .with_offset(-1)
                                    .with_leader_epoch(-1)
                            })
                            .collect(),
                    )
            }));
            A::ListOffsets(r)
        }
        A::DeleteRecords(mut r) => {
            r.topics.extend(topics.into_iter().map(|(name, ps)| {
                DeleteRecordsTopicResult::default()
                    .with_name(tn(&name))
                    .with_partitions(
                        ps.into_iter()
                            .map(|p| {
                                DeleteRecordsPartitionResult::default()
                                    .with_partition_index(p)
                                    .with_low_watermark(-1)
                                    .with_error_code(TAF.code())
                            })
                            .collect(),
                    )
            }));
            A::DeleteRecords(r)
        }
        A::CreateTopics(mut r) => {
            r.topics.extend(topics.into_iter().map(|(name, _)| {
                CreatableTopicResult::default()
                    .with_name(tn(&name))
                    .with_error_code(TAF.code())
                    .with_error_message(Some(s("Authorization failed.")))
                    .with_num_partitions(-1)
                    .with_replication_factor(-1)
            }));
            A::CreateTopics(r)
        }
        A::DeleteTopics(mut r) => {
            r.responses.extend(topics.into_iter().map(|(name, _)| {
                DeletableTopicResult::default()
                    .with_name(Some(tn(&name)))
                    .with_error_code(TAF.code())
                    .with_error_message(Some(s("Authorization failed.")))
            }));
            A::DeleteTopics(r)
        }
        A::CreatePartitions(mut r) => {
            r.results.extend(topics.into_iter().map(|(name, _)| {
                CreatePartitionsTopicResult::default()
                    .with_name(tn(&name))
                    .with_error_code(TAF.code())
                    .with_error_message(Some(s("Authorization failed.")))
            }));
            A::CreatePartitions(r)
        }
        A::DescribeGroups(mut r) => {
            r.groups.extend(topics.into_iter().map(|(g, _)| {
                DescribedGroup::default()
                    .with_group_id(GroupId(s(&g)))
                    .with_error_code(GAF.code())
                    .with_authorized_operations(i32::MIN)
            }));
            A::DescribeGroups(r)
        }
        A::DeleteGroups(mut r) => {
            r.results.extend(topics.into_iter().map(|(g, _)| {
                DeletableGroupResult::default()
                    .with_group_id(GroupId(s(&g)))
                    .with_error_code(GAF.code())
            }));
            A::DeleteGroups(r)
        }
        A::DescribeConfigs(mut r) => {
            r.results
                .extend(refused.configs.into_iter().map(|(t, name, code)| {
                    DescribeConfigsResult::default()
                        .with_resource_type(t)
                        .with_resource_name(s(&name))
                        .with_error_code(code.code())
                        .with_error_message(Some(s("Authorization failed.")))
                }));
            A::DescribeConfigs(r)
        }
        A::IncrementalAlterConfigs(mut r) => {
            r.responses
                .extend(refused.configs.into_iter().map(|(t, name, code)| {
                    AlterConfigsResourceResponse::default()
                        .with_resource_type(t)
                        .with_resource_name(s(&name))
                        .with_error_code(code.code())
                        .with_error_message(Some(s("Authorization failed.")))
                }));
            A::IncrementalAlterConfigs(r)
        }
        A::OffsetForLeaderEpoch(mut r) => {
            r.topics.extend(epoch_errors(topics).topics);
            A::OffsetForLeaderEpoch(r)
        }
        A::DescribeProducers(mut r) => {
            use kafka_protocol::messages::describe_producers_response::{
                PartitionResponse, TopicResponse,
            };
            r.topics.extend(topics.into_iter().map(|(name, ps)| {
                TopicResponse::default()
                    .with_name(tn(&name))
                    .with_partitions(
                        ps.into_iter()
                            .map(|p| {
                                PartitionResponse::default()
                                    .with_partition_index(p)
                                    .with_error_code(TAF.code())
                            })
                            .collect(),
                    )
            }));
            A::DescribeProducers(r)
        }
        A::DescribeTransactions(mut r) => {
            use kafka_protocol::messages::describe_transactions_response::TransactionState;
            r.transaction_states
                .extend(topics.into_iter().map(|(id, _)| {
                    TransactionState::default()
                        .with_transactional_id(TransactionalId(s(&id)))
                        .with_error_code(TIAF.code())
                        .with_producer_id(ProducerId(-1))
                        .with_producer_epoch(-1)
                }));
            A::DescribeTransactions(r)
        }
        other => other,
    }
}

fn epoch_errors(topics: Vec<(String, Vec<i32>)>) -> OffsetForLeaderEpochResponse {
    use kafka_protocol::messages::offset_for_leader_epoch_response::{
        EpochEndOffset, OffsetForLeaderTopicResult,
    };
    OffsetForLeaderEpochResponse::default().with_topics(
        topics
            .into_iter()
            .map(|(name, ps)| {
                OffsetForLeaderTopicResult::default()
                    .with_topic(tn(&name))
                    .with_partitions(
                        ps.into_iter()
                            .map(|p| {
                                EpochEndOffset::default()
                                    .with_partition(p)
                                    .with_error_code(TAF.code())
                                    .with_leader_epoch(-1)
                                    .with_end_offset(-1)
                            })
                            .collect(),
                    )
            })
            .collect(),
    )
}

/// ListTransactions: only the transactional ids the principal may describe.
pub(super) fn filter_list_transactions(
    broker: &Broker,
    ctx: &RequestContext,
    mut r: ListTransactionsResponse,
) -> ListTransactionsResponse {
    if !broker.authorizes() {
        return r;
    }
    let image = broker.image();
    r.transaction_states.retain(|t| {
        broker.authorized(
            ctx,
            &image,
            Op::Describe,
            Rt::TransactionalId,
            &t.transactional_id,
        )
    });
    r
}

/// OffsetFetch: topics the principal may not DESCRIBE are dropped from an all-topics answer
/// and TOPIC_AUTHORIZATION_FAILED where they were named.
pub(super) fn filter_offset_fetch(
    broker: &Broker,
    ctx: &RequestContext,
    named: &[bool],
    mut r: OffsetFetchResponse,
) -> OffsetFetchResponse {
    if !broker.authorizes() {
        return r;
    }
    let image = broker.image();
    let ok = |t: &str| broker.authorized(ctx, &image, Op::Describe, Rt::Topic, t);
    let named_top = named.first().copied().unwrap_or(false);
    if named_top {
        for t in r.topics.iter_mut().filter(|t| !ok(&t.name)) {
            for p in &mut t.partitions {
                p.error_code = TAF.code();
                p.committed_offset = -1;
                p.metadata = None;
            }
        }
    } else {
        r.topics.retain(|t| ok(&t.name));
    }
    for (i, g) in r.groups.iter_mut().enumerate() {
        if named.get(i).copied().unwrap_or(false) {
            for t in g.topics.iter_mut().filter(|t| !ok(&t.name)) {
                for p in &mut t.partitions {
                    p.error_code = TAF.code();
                    p.committed_offset = -1;
                    p.metadata = None;
                }
            }
        } else {
            g.topics.retain(|t| ok(&t.name));
        }
    }
    r
}

/// ListGroups: without DESCRIBE on the cluster, only the groups the principal may describe.
pub(super) fn filter_list_groups(
    broker: &Broker,
    ctx: &RequestContext,
    mut r: ListGroupsResponse,
) -> ListGroupsResponse {
    if !broker.authorizes() {
        return r;
    }
    let image = broker.image();
    if broker.authorized_cluster(ctx, &image, Op::Describe) {
        return r;
    }
    r.groups
        .retain(|g| broker.authorized(ctx, &image, Op::Describe, Rt::Group, &g.group_id));
    r
}
