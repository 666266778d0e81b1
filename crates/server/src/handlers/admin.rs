//! Admin requests forwarded to the active controller: CreateTopics, DeleteTopics and
//! CreatePartitions (with or without manual replica assignments). The answer
//! waits until this broker's metadata shows the change, so a following Metadata request sees it.

use std::time::Duration;

use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};
use kafka_protocol::messages::{
    CreateTopicsRequest, CreateTopicsResponse, DeleteTopicsRequest, DeleteTopicsResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use odradek_common::{ErrorCode, Uuid};
use odradek_controller::pb;
use odradek_frontend::RequestContext;

use super::{kuuid, ouuid, Broker};

fn timeout(ms: i32) -> Duration {
    Duration::from_millis(ms.clamp(1_000, 60_000) as u64)
}

pub(super) async fn create_topics(
    broker: &Broker,
    ctx: &RequestContext,
    req: CreateTopicsRequest,
) -> CreateTopicsResponse {
    let mut results = Vec::new();
    let mut forward = Vec::new();
    for t in &req.topics {
        let mut assignments: Vec<&_> = t.assignments.iter().collect();
        assignments.sort_by_key(|a| a.partition_index);
        if assignments
            .iter()
            .enumerate()
            .any(|(i, a)| a.partition_index != i as i32)
        {
            results.push(
                CreatableTopicResult::default()
                    .with_name(t.name.clone())
                    .with_error_code(ErrorCode::InvalidReplicaAssignment.code())
                    .with_error_message(Some(StrBytes::from_static_str(
                        "the partitions of a manual assignment must be numbered 0, 1, 2, ... without gaps",
                    )))
                    .with_num_partitions(-1)
                    .with_replication_factor(-1),
            );
            continue;
        }
        let assignments = assignments
            .into_iter()
            .map(|a| pb::ReplicaAssignment {
                ids: a.broker_ids.iter().map(|b| b.0).collect(),
            })
            .collect();
        forward.push(pb::CreatableTopic {
            name: t.name.0.to_string(),
            num_partitions: t.num_partitions,
            replication_factor: i32::from(t.replication_factor),
            configs: t
                .configs
                .iter()
                .filter_map(|c| {
                    Some(pb::TopicConfig {
                        name: c.name.to_string(),
                        value: c.value.as_ref()?.to_string(),
                    })
                })
                .collect(),
            assignments,
        });
    }
    if !forward.is_empty() {
        let call = pb::CreateTopicsRequest {
            topics: forward.clone(),
            validate_only: req.validate_only,
        };
        match broker
            .controller
            .call(timeout(req.timeout_ms), |mut c| {
                let r = call.clone();
                async move { c.create_topics(r).await }
            })
            .await
        {
            Ok(resp) => {
                let created: Vec<Uuid> = resp
                    .topics
                    .iter()
                    .filter(|t| t.error_code == 0 && !req.validate_only)
                    .filter_map(|t| Uuid::from_slice(&t.topic_id))
                    .collect();
                broker
                    .wait_for_image(timeout(req.timeout_ms), |i| {
                        created.iter().all(|id| i.topics.by_id.contains_key(id))
                    })
                    .await;
                for t in resp.topics {
                    let id = Uuid::from_slice(&t.topic_id).map(kuuid).unwrap_or_default();
                    results.push(
                        CreatableTopicResult::default()
                            .with_name(TopicName(StrBytes::from_string(t.name)))
                            .with_topic_id(id)
                            .with_error_code(t.error_code as i16)
                            .with_error_message(
                                (!t.error_message.is_empty())
                                    .then(|| StrBytes::from_string(t.error_message)),
                            )
                            .with_num_partitions(t.num_partitions)
                            .with_replication_factor(t.replication_factor as i16),
                    );
                }
            }
            Err(e) => {
                for t in forward {
                    results.push(
                        CreatableTopicResult::default()
                            .with_name(TopicName(StrBytes::from_string(t.name)))
                            .with_error_code(ErrorCode::RequestTimedOut.code())
                            .with_error_message(Some(StrBytes::from_string(format!(
                                "controller unavailable: {}",
                                e.message()
                            ))))
                            .with_num_partitions(-1)
                            .with_replication_factor(-1),
                    );
                }
            }
        }
    }
    // Fields by version: error_message v1+, num_partitions / replication_factor v5+, topic_id v7+.
    let v = ctx.api_version;
    for r in &mut results {
        if v < 7 {
            r.topic_id = uuid::Uuid::nil();
        }
        if v < 5 {
            r.num_partitions = -1;
            r.replication_factor = -1;
        }
        if v < 1 {
            r.error_message = None;
        }
    }
    CreateTopicsResponse::default().with_topics(results)
}

pub(super) async fn delete_topics(
    broker: &Broker,
    ctx: &RequestContext,
    req: DeleteTopicsRequest,
) -> DeleteTopicsResponse {
    let image = broker.image();
    // v6 names topics by name or id; earlier versions by name.
    let mut names: Vec<(String, uuid::Uuid)> = req
        .topic_names
        .iter()
        .map(|n| (n.0.to_string(), uuid::Uuid::nil()))
        .collect();
    for t in &req.topics {
        match &t.name {
            Some(n) => names.push((n.0.to_string(), t.topic_id)),
            None => {
                let name = image
                    .topics
                    .by_id
                    .get(&ouuid(&t.topic_id))
                    .map(|t| t.name.clone())
                    .unwrap_or_default();
                names.push((name, t.topic_id));
            }
        }
    }
    let call = pb::DeleteTopicsRequest {
        names: names.iter().map(|(n, _)| n.clone()).collect(),
    };
    let responses = match broker
        .controller
        .call(timeout(req.timeout_ms), |mut c| {
            let r = call.clone();
            async move { c.delete_topics(r).await }
        })
        .await
    {
        Ok(resp) => {
            let deleted: Vec<String> = resp
                .topics
                .iter()
                .filter(|t| t.error_code == 0)
                .map(|t| t.name.clone())
                .collect();
            broker
                .wait_for_image(timeout(req.timeout_ms), |i| {
                    deleted.iter().all(|n| !i.topics.by_name.contains_key(n))
                })
                .await;
            resp.topics
                .into_iter()
                .map(|t| {
                    DeletableTopicResult::default()
                        .with_name(Some(TopicName(StrBytes::from_string(t.name))))
                        .with_topic_id(Uuid::from_slice(&t.topic_id).map(kuuid).unwrap_or_default())
                        .with_error_code(t.error_code as i16)
                        .with_error_message(
                            (!t.error_message.is_empty())
                                .then(|| StrBytes::from_string(t.error_message)),
                        )
                })
                .collect()
        }
        Err(e) => names
            .into_iter()
            .map(|(n, id)| {
                DeletableTopicResult::default()
                    .with_name(Some(TopicName(StrBytes::from_string(n))))
                    .with_topic_id(id)
                    .with_error_code(ErrorCode::RequestTimedOut.code())
                    .with_error_message(Some(StrBytes::from_string(format!(
                        "controller unavailable: {}",
                        e.message()
                    ))))
            })
            .collect(),
    };
    // Fields by version: error_message v5+, topic_id v6+.
    let mut responses: Vec<DeletableTopicResult> = responses;
    for r in &mut responses {
        if ctx.api_version < 6 {
            r.topic_id = uuid::Uuid::nil();
        }
        if ctx.api_version < 5 {
            r.error_message = None;
        }
    }
    DeleteTopicsResponse::default().with_responses(responses)
}

pub(super) async fn create_partitions(
    broker: &Broker,
    req: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    let mut results = Vec::new();
    let mut forward = Vec::new();
    for t in &req.topics {
        if t.assignments.as_ref().is_some_and(|a| a.is_empty()) {
            results.push(
                CreatePartitionsTopicResult::default()
                    .with_name(t.name.clone())
                    .with_error_code(ErrorCode::InvalidReplicaAssignment.code())
                    .with_error_message(Some(StrBytes::from_static_str(
                        "an empty assignment list gives none of the new partitions replicas",
                    ))),
            );
            continue;
        }
        forward.push(pb::CreatePartitionsTopic {
            name: t.name.0.to_string(),
            count: t.count,
            assignments: t
                .assignments
                .iter()
                .flatten()
                .map(|a| pb::ReplicaAssignment {
                    ids: a.broker_ids.iter().map(|b| b.0).collect(),
                })
                .collect(),
        });
    }
    if !forward.is_empty() {
        let call = pb::CreatePartitionsRequest {
            topics: forward.clone(),
            validate_only: req.validate_only,
        };
        match broker
            .controller
            .call(timeout(req.timeout_ms), |mut c| {
                let r = call.clone();
                async move { c.create_partitions(r).await }
            })
            .await
        {
            Ok(resp) => {
                let grown: Vec<(String, i32)> = resp
                    .topics
                    .iter()
                    .filter(|t| t.error_code == 0 && !req.validate_only)
                    .filter_map(|t| {
                        forward
                            .iter()
                            .find(|f| f.name == t.name)
                            .map(|f| (f.name.clone(), f.count))
                    })
                    .collect();
                broker
                    .wait_for_image(timeout(req.timeout_ms), |i| {
                        grown.iter().all(|(n, c)| {
                            i.topics
                                .get_by_name(n)
                                .is_some_and(|t| t.partitions.len() as i32 >= *c)
                        })
                    })
                    .await;
                for t in resp.topics {
                    results.push(
                        CreatePartitionsTopicResult::default()
                            .with_name(TopicName(StrBytes::from_string(t.name)))
                            .with_error_code(t.error_code as i16)
                            .with_error_message(
                                (!t.error_message.is_empty())
                                    .then(|| StrBytes::from_string(t.error_message)),
                            ),
                    );
                }
            }
            Err(e) => {
                for t in forward {
                    results.push(
                        CreatePartitionsTopicResult::default()
                            .with_name(TopicName(StrBytes::from_string(t.name)))
                            .with_error_code(ErrorCode::RequestTimedOut.code())
                            .with_error_message(Some(StrBytes::from_string(format!(
                                "controller unavailable: {}",
                                e.message()
                            )))),
                    );
                }
            }
        }
    }
    CreatePartitionsResponse::default().with_results(results)
}
