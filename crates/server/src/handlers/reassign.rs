//! Operator requests the active controller decides, forwarded as they are:
//! AlterPartitionReassignments, ListPartitionReassignments, ElectLeaders and UnregisterBroker.
//! A controller that cannot be reached is REQUEST_TIMED_OUT with its reason.

use std::collections::BTreeMap;
use std::time::Duration;

use kafka_protocol::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::list_partition_reassignments_response::{
    OngoingPartitionReassignment, OngoingTopicReassignment,
};
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse, BrokerId,
    ElectLeadersRequest, ElectLeadersResponse, ListPartitionReassignmentsRequest,
    ListPartitionReassignmentsResponse, TopicName, UnregisterBrokerRequest,
    UnregisterBrokerResponse,
};
use kafka_protocol::protocol::StrBytes;
use odradek_common::ErrorCode;
use odradek_controller::pb;
use odradek_frontend::RequestContext;

use super::Broker;

fn timeout(ms: i32) -> Duration {
    Duration::from_millis(ms.clamp(1_000, 60_000) as u64)
}

fn message(m: String) -> Option<StrBytes> {
    (!m.is_empty()).then(|| StrBytes::from_string(m))
}

fn unavailable(e: &tonic::Status) -> (i16, Option<StrBytes>) {
    (
        ErrorCode::RequestTimedOut.code(),
        Some(StrBytes::from_string(format!(
            "controller unavailable: {}",
            e.message()
        ))),
    )
}

fn brokers(ids: Vec<i32>) -> Vec<BrokerId> {
    ids.into_iter().map(BrokerId).collect()
}

pub(super) async fn alter_partition_reassignments(
    broker: &Broker,
    ctx: &RequestContext,
    req: AlterPartitionReassignmentsRequest,
) -> AlterPartitionReassignmentsResponse {
    let call = pb::AlterPartitionReassignmentsRequest {
        topics: req
            .topics
            .iter()
            .map(|t| pb::ReassignableTopic {
                name: t.name.0.to_string(),
                partitions: t
                    .partitions
                    .iter()
                    .map(|p| pb::ReassignablePartition {
                        partition: p.partition_index,
                        replicas: p.replicas.as_ref().map(|r| pb::ReplicaAssignment {
                            ids: r.iter().map(|b| b.0).collect(),
                        }),
                    })
                    .collect(),
            })
            .collect(),
        // v0 has no such field and always allowed it.
        allow_replication_factor_change: ctx.api_version < 1 || req.allow_replication_factor_change,
    };
    let result = broker
        .controller
        .call(timeout(req.timeout_ms), |mut c| {
            let r = call.clone();
            async move { c.alter_partition_reassignments(r).await }
        })
        .await;
    let mut by_topic: BTreeMap<String, Vec<ReassignablePartitionResponse>> = BTreeMap::new();
    match result {
        Ok(resp) => {
            for r in resp.results {
                by_topic.entry(r.topic).or_default().push(
                    ReassignablePartitionResponse::default()
                        .with_partition_index(r.partition)
                        .with_error_code(r.error_code as i16)
                        .with_error_message(message(r.error_message)),
                );
            }
        }
        Err(e) => {
            let (code, msg) = unavailable(&e);
            for t in &req.topics {
                for p in &t.partitions {
                    by_topic.entry(t.name.0.to_string()).or_default().push(
                        ReassignablePartitionResponse::default()
                            .with_partition_index(p.partition_index)
                            .with_error_code(code)
                            .with_error_message(msg.clone()),
                    );
                }
            }
        }
    }
    AlterPartitionReassignmentsResponse::default()
        .with_allow_replication_factor_change(call.allow_replication_factor_change)
        .with_responses(
            by_topic
                .into_iter()
                .map(|(name, partitions)| {
                    ReassignableTopicResponse::default()
                        .with_name(TopicName(StrBytes::from_string(name)))
                        .with_partitions(partitions)
                })
                .collect(),
        )
}

pub(super) async fn list_partition_reassignments(
    broker: &Broker,
    req: ListPartitionReassignmentsRequest,
) -> ListPartitionReassignmentsResponse {
    let call = pb::ListPartitionReassignmentsRequest {
        all: req.topics.is_none(),
        topics: req
            .topics
            .iter()
            .flatten()
            .map(|t| pb::ListReassignmentsTopic {
                name: t.name.0.to_string(),
                partitions: t.partition_indexes.clone(),
            })
            .collect(),
    };
    match broker
        .controller
        .call(timeout(req.timeout_ms), |mut c| {
            let r = call.clone();
            async move { c.list_partition_reassignments(r).await }
        })
        .await
    {
        Ok(resp) => {
            let mut by_topic: BTreeMap<String, Vec<OngoingPartitionReassignment>> = BTreeMap::new();
            for r in resp.reassignments {
                by_topic.entry(r.topic).or_default().push(
                    OngoingPartitionReassignment::default()
                        .with_partition_index(r.partition)
                        .with_replicas(brokers(r.replicas))
                        .with_adding_replicas(brokers(r.adding_replicas))
                        .with_removing_replicas(brokers(r.removing_replicas)),
                );
            }
            ListPartitionReassignmentsResponse::default().with_topics(
                by_topic
                    .into_iter()
                    .map(|(name, partitions)| {
                        OngoingTopicReassignment::default()
                            .with_name(TopicName(StrBytes::from_string(name)))
                            .with_partitions(partitions)
                    })
                    .collect(),
            )
        }
        Err(e) => {
            let (code, msg) = unavailable(&e);
            ListPartitionReassignmentsResponse::default()
                .with_error_code(code)
                .with_error_message(msg)
        }
    }
}

pub(super) async fn elect_leaders(
    broker: &Broker,
    ctx: &RequestContext,
    req: ElectLeadersRequest,
) -> ElectLeadersResponse {
    let call = pb::ElectLeadersRequest {
        // v0 elects preferred leaders only.
        election_type: if ctx.api_version == 0 {
            0
        } else {
            i32::from(req.election_type)
        },
        all: req.topic_partitions.is_none(),
        partitions: req
            .topic_partitions
            .iter()
            .flatten()
            .flat_map(|t| {
                t.partitions.iter().map(|p| pb::TopicPartition {
                    topic: t.topic.0.to_string(),
                    partition: *p,
                })
            })
            .collect(),
    };
    let result = broker
        .controller
        .call(timeout(req.timeout_ms), |mut c| {
            let r = call.clone();
            async move { c.elect_leaders(r).await }
        })
        .await;
    let mut by_topic: BTreeMap<String, Vec<PartitionResult>> = BTreeMap::new();
    let error_code = match result {
        Ok(resp) => {
            for r in resp.results {
                by_topic.entry(r.topic).or_default().push(
                    PartitionResult::default()
                        .with_partition_id(r.partition)
                        .with_error_code(r.error_code as i16)
                        .with_error_message(message(r.error_message)),
                );
            }
            resp.error_code as i16
        }
        Err(e) => {
            let (code, msg) = unavailable(&e);
            for p in &call.partitions {
                by_topic.entry(p.topic.clone()).or_default().push(
                    PartitionResult::default()
                        .with_partition_id(p.partition)
                        .with_error_code(code)
                        .with_error_message(msg.clone()),
                );
            }
            code
        }
    };
    ElectLeadersResponse::default()
        .with_error_code(if ctx.api_version >= 1 { error_code } else { 0 })
        .with_replica_election_results(
            by_topic
                .into_iter()
                .map(|(topic, partition_result)| {
                    ReplicaElectionResult::default()
                        .with_topic(TopicName(StrBytes::from_string(topic)))
                        .with_partition_result(partition_result)
                })
                .collect(),
        )
}

pub(super) async fn unregister_broker(
    broker: &Broker,
    req: UnregisterBrokerRequest,
) -> UnregisterBrokerResponse {
    let call = pb::UnregisterBrokerRequest {
        broker_id: req.broker_id.0,
    };
    match broker
        .controller
        .call(timeout(30_000), |mut c| async move {
            c.unregister_broker(call).await
        })
        .await
    {
        Ok(r) => UnregisterBrokerResponse::default()
            .with_error_code(r.error_code as i16)
            .with_error_message(message(r.error_message)),
        Err(e) => {
            let (code, msg) = unavailable(&e);
            UnregisterBrokerResponse::default()
                .with_error_code(code)
                .with_error_message(msg)
        }
    }
}
