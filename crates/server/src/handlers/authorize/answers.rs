//! The answers of refused requests: whole refusals of an API gated on one resource, and the
//! refused items of a multi-resource request merged into the handler's response.

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
use odradek_common::ErrorCode;
use odradek_frontend::RequestContext;
use odradek_metadata::acl::{AclOperation as Op, ResourceType as Rt};
use odradek_metadata::MetadataImage;

use super::{s, tn, Refused, CAF, GAF, TAF, TIAF};
use crate::handlers::Broker;

/// The refusal of an API gated on the cluster resource.
pub(super) fn cluster_refused(api: ApiKey) -> ResponseKind {
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
pub(super) fn config_allowed(
    broker: &Broker,
    ctx: &RequestContext,
    image: &MetadataImage,
    resource_type: i8,
    name: &str,
    op: Op,
) -> (bool, ErrorCode) {
    match resource_type {
        2 => (broker.authorized(ctx, image, op, Rt::Topic, name), TAF),
        32 => (broker.authorized(ctx, image, op, Rt::Group, name), GAF),
        _ => (broker.authorized_cluster(ctx, image, op), CAF),
    }
}

pub(super) fn offset_commit_errors(
    topics: Vec<(String, Vec<i32>)>,
    code: ErrorCode,
) -> OffsetCommitResponse {
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

pub(super) fn add_partitions_errors(
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
pub(in crate::handlers) fn merge(response: ResponseKind, refused: Refused) -> ResponseKind {
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

pub(super) fn epoch_errors(topics: Vec<(String, Vec<i32>)>) -> OffsetForLeaderEpochResponse {
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
pub(in crate::handlers) fn filter_list_transactions(
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
pub(in crate::handlers) fn filter_offset_fetch(
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
pub(in crate::handlers) fn filter_list_groups(
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
