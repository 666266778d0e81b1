//! Metadata: brokers, topics and partition leadership from the current image; creates missing
//! topics when the client allows it and `auto.create.topics.enable` is on.

use std::time::Duration;

use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use odradek_common::ErrorCode;
use odradek_controller::managers::replication::validate_topic_name;
use odradek_controller::pb;
use odradek_frontend::RequestContext;
use odradek_metadata::acl::{AclOperation, ResourceType};
use odradek_metadata::{MetadataImage, TopicImage, NO_LEADER};

use super::{find_topic, kuuid, Broker};

pub(super) async fn handle(
    broker: &Broker,
    ctx: &RequestContext,
    req: MetadataRequest,
) -> MetadataResponse {
    let mut image = broker.image();
    let requested: Option<Vec<(String, uuid::Uuid)>> = req.topics.as_ref().map(|ts| {
        ts.iter()
            .map(|t| {
                (
                    t.name.as_ref().map(|n| n.0.to_string()).unwrap_or_default(),
                    t.topic_id,
                )
            })
            .collect()
    });
    // Versions 0-3 always allow auto-creation; later ones say so.
    let allow_create =
        (ctx.api_version < 4 || req.allow_auto_topic_creation) && broker.config.auto_create_topics;
    // As Kafka does, a name that can never be a topic is answered INVALID_TOPIC_EXCEPTION at
    // once (with or without auto-creation), never sent to the controller and waited for.
    let invalid = |name: &str| validate_topic_name(name).is_err();
    // With an authorizer: topics the principal may not DESCRIBE are hidden from a listing and
    // TOPIC_AUTHORIZATION_FAILED when named; auto-creation needs CREATE on the cluster or on
    // the topic.
    let describe = |image: &MetadataImage, name: &str| {
        broker.authorized(
            ctx,
            image,
            AclOperation::Describe,
            ResourceType::Topic,
            name,
        )
    };
    let may_create_any = broker.authorized_cluster(ctx, &image, AclOperation::Create);
    let may_create = |name: &str| {
        may_create_any
            || broker.authorized(ctx, &image, AclOperation::Create, ResourceType::Topic, name)
    };
    let mut create_refused = std::collections::BTreeSet::new();
    if let (Some(list), true) = (&requested, allow_create) {
        let missing: Vec<String> = list
            .iter()
            .filter(|(n, _)| {
                !n.is_empty()
                    && !image.topics.by_name.contains_key(n)
                    && !n.starts_with("__")
                    && !invalid(n)
                    && describe(&image, n)
            })
            .filter(|(n, _)| {
                let ok = may_create(n);
                if !ok {
                    create_refused.insert(n.clone());
                }
                ok
            })
            .map(|(n, _)| n.clone())
            .collect();
        if !missing.is_empty() {
            image = auto_create(broker, missing).await;
        }
    }
    let topics: Vec<MetadataResponseTopic> = match &requested {
        None => image
            .topics
            .by_id
            .values()
            .filter(|t| describe(&image, &t.name))
            .map(|t| topic_response(&image, t, ctx.api_version))
            .collect(),
        Some(list) => list
            .iter()
            .map(|(name, id)| match find_topic(&image, name, id) {
                // Asked for by id: the refusal carries the id, not the name.
                Some(t) if !describe(&image, &t.name) && name.is_empty() => {
                    refused_topic("").with_name(None).with_topic_id(*id)
                }
                Some(t) if !describe(&image, &t.name) => refused_topic(&t.name),
                None if !name.is_empty()
                    && (!describe(&image, name) || create_refused.contains(name)) =>
                {
                    refused_topic(name)
                }
                Some(t) => topic_response(&image, &t, ctx.api_version),
                None => MetadataResponseTopic::default()
                    .with_error_code(if !name.is_empty() && invalid(name) {
                        ErrorCode::InvalidTopicException.code()
                    } else {
                        ErrorCode::UnknownTopicOrPartition.code()
                    })
                    .with_name(Some(TopicName(StrBytes::from_string(name.clone()))))
                    .with_topic_id(if ctx.api_version >= 10 {
                        *id
                    } else {
                        uuid::Uuid::nil()
                    }),
            })
            .collect(),
    };
    let brokers = image
        .cluster
        .unfenced()
        .filter_map(|b| {
            let e = super::endpoint_for(b, &ctx.session.listener.name)?;
            let r = MetadataResponseBroker::default()
                .with_node_id(BrokerId(b.id))
                .with_host(StrBytes::from_string(e.host.clone()))
                .with_port(i32::from(e.port));
            // rack exists from v1.
            Some(if ctx.api_version >= 1 {
                r.with_rack(b.rack.clone().map(StrBytes::from_string))
            } else {
                r
            })
        })
        .collect();
    let mut response = MetadataResponse::default()
        .with_brokers(brokers)
        .with_topics(topics);
    // cluster_id exists from v2, controller_id from v1. In KRaft mode clients get a live broker
    // as "controller"; admin calls sent to it are forwarded to the active controller.
    if ctx.api_version >= 2 {
        response.cluster_id = Some(StrBytes::from_string(broker.cluster_id.clone()));
    }
    if ctx.api_version >= 1 {
        response.controller_id = BrokerId(broker.id());
    }
    response
}

fn refused_topic(name: &str) -> MetadataResponseTopic {
    MetadataResponseTopic::default()
        .with_error_code(ErrorCode::TopicAuthorizationFailed.code())
        .with_name(Some(TopicName(StrBytes::from_string(name.to_string()))))
}

fn topic_response(image: &MetadataImage, t: &TopicImage, version: i16) -> MetadataResponseTopic {
    let partitions = t
        .partitions
        .iter()
        .map(|(index, p)| {
            let offline: Vec<BrokerId> = p
                .replicas
                .iter()
                .filter(|r| image.cluster.brokers.get(r).is_none_or(|b| b.fenced))
                .map(|r| BrokerId(*r))
                .collect();
            let mut r = MetadataResponsePartition::default()
                .with_error_code(if p.leader == NO_LEADER {
                    ErrorCode::LeaderNotAvailable.code()
                } else {
                    0
                })
                .with_partition_index(*index)
                .with_leader_id(BrokerId(p.leader))
                .with_replica_nodes(p.replicas.iter().map(|r| BrokerId(*r)).collect())
                .with_isr_nodes(p.isr.iter().map(|r| BrokerId(*r)).collect());
            // leader_epoch exists from v7, offline_replicas from v5.
            if version >= 7 {
                r.leader_epoch = p.leader_epoch;
            }
            if version >= 5 {
                r.offline_replicas = offline;
            }
            r
        })
        .collect();
    let mut r = MetadataResponseTopic::default()
        .with_name(Some(TopicName(StrBytes::from_string(t.name.clone()))))
        .with_partitions(partitions);
    // topic_id exists from v10, is_internal from v1.
    if version >= 10 {
        r.topic_id = kuuid(t.id);
    }
    if version >= 1 {
        r.is_internal = t.name.starts_with("__");
    }
    r
}

/// Creates the topics with the broker defaults through the controller, then waits for them to
/// appear in this broker's metadata.
async fn auto_create(broker: &Broker, names: Vec<String>) -> std::sync::Arc<MetadataImage> {
    let req = pb::CreateTopicsRequest {
        topics: names
            .iter()
            .map(|n| pb::CreatableTopic {
                name: n.clone(),
                num_partitions: -1,
                replication_factor: -1,
                configs: vec![],
                assignments: vec![],
            })
            .collect(),
        validate_only: false,
    };
    super::create_through_controller(broker, req, "auto-creation").await;
    broker
        .wait_for_image(Duration::from_secs(5), |i| {
            names.iter().all(|n| i.topics.by_name.contains_key(n))
        })
        .await
}
