//! DescribeConfigs (effective topic and broker configs with their sources) and
//! IncrementalAlterConfigs (forwarded to the controller).

use std::collections::BTreeMap;
use std::time::Duration;

use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult,
};
use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{
    DescribeConfigsRequest, DescribeConfigsResponse, IncrementalAlterConfigsRequest,
    IncrementalAlterConfigsResponse,
};
use kafka_protocol::protocol::StrBytes;
use odradek_common::ErrorCode;
use odradek_controller::pb;
use odradek_frontend::RequestContext;
use odradek_metadata::ConfigResource;

use super::Broker;

/// Kafka's ConfigSource values.
const DYNAMIC_TOPIC_CONFIG: i8 = 1;
const DYNAMIC_BROKER_CONFIG: i8 = 2;
const STATIC_BROKER_CONFIG: i8 = 4;
const DEFAULT_CONFIG: i8 = 5;

/// The topic configs a topic always shows, with the broker's defaults.
fn topic_defaults(broker: &Broker) -> BTreeMap<&'static str, String> {
    let d = &broker.config.log_defaults;
    let policy = match (d.cleanup_policy.delete, d.cleanup_policy.compact) {
        (true, true) => "compact,delete",
        (false, true) => "compact",
        _ => "delete",
    };
    BTreeMap::from([
        ("cleanup.policy", policy.to_string()),
        ("compression.type", "producer".to_string()),
        ("delete.retention.ms", d.delete_retention_ms.to_string()),
        ("flush.messages", d.flush_messages.to_string()),
        ("flush.ms", d.flush_ms.to_string()),
        ("index.interval.bytes", d.index_interval_bytes.to_string()),
        ("max.message.bytes", d.max_message_bytes.to_string()),
        (
            "message.timestamp.type",
            format!("{:?}", d.message_timestamp_type),
        ),
        (
            "min.cleanable.dirty.ratio",
            d.min_cleanable_dirty_ratio.to_string(),
        ),
        ("min.compaction.lag.ms", d.min_compaction_lag_ms.to_string()),
        (
            "min.insync.replicas",
            broker.config.replication.min_insync_replicas.to_string(),
        ),
        ("retention.bytes", d.retention_bytes.to_string()),
        ("retention.ms", d.retention_ms.to_string()),
        ("segment.bytes", d.segment_bytes.to_string()),
        ("segment.index.bytes", d.segment_index_bytes.to_string()),
        ("segment.ms", d.segment_ms.to_string()),
        (
            "unclean.leader.election.enable",
            d_unclean(broker).to_string(),
        ),
    ])
}

fn d_unclean(broker: &Broker) -> bool {
    broker.config.node.settings.unclean_leader_election_enable
}

fn entry(version: i16, name: &str, value: String, source: i8) -> DescribeConfigsResourceResult {
    let r = DescribeConfigsResourceResult::default()
        .with_name(StrBytes::from_string(name.to_string()))
        .with_value(Some(StrBytes::from_string(value)))
        .with_config_source(source);
    // config_type and documentation exist from v3; leave them at their defaults.
    let _ = version;
    r
}

pub(super) fn describe(
    broker: &Broker,
    ctx: &RequestContext,
    req: DescribeConfigsRequest,
) -> DescribeConfigsResponse {
    let image = broker.image();
    let version = ctx.api_version;
    let results = req
        .resources
        .iter()
        .map(|r| {
            let name = r.resource_name.to_string();
            let base = DescribeConfigsResult::default()
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name.clone());
            let wanted = |k: &str| {
                r.configuration_keys
                    .as_ref()
                    .is_none_or(|keys| keys.iter().any(|x| x.as_str() == k))
            };
            let configs: Vec<DescribeConfigsResourceResult> = match r.resource_type {
                2 => {
                    if !image.topics.by_name.contains_key(&name) {
                        return base
                            .with_error_code(ErrorCode::UnknownTopicOrPartition.code())
                            .with_error_message(Some(StrBytes::from_string(format!(
                                "topic '{name}' does not exist"
                            ))));
                    }
                    let dynamic = image.configs.get(&ConfigResource::Topic(name.clone()));
                    let mut all: BTreeMap<String, (String, i8)> = topic_defaults(broker)
                        .into_iter()
                        .map(|(k, v)| (k.to_string(), (v, DEFAULT_CONFIG)))
                        .collect();
                    for (k, v) in dynamic {
                        all.insert(k, (v, DYNAMIC_TOPIC_CONFIG));
                    }
                    all.into_iter()
                        .filter(|(k, _)| wanted(k))
                        .map(|(k, (v, s))| entry(version, &k, v, s))
                        .collect()
                }
                4 => {
                    // As in Kafka, a broker describes itself (or the cluster-wide defaults, an
                    // empty name); clients send a broker's describe to that broker.
                    if !(name.is_empty() || name == broker.id().to_string()) {
                        return base
                            .with_error_code(ErrorCode::InvalidRequest.code())
                            .with_error_message(Some(StrBytes::from_string(format!(
                                "Unexpected broker id, expected {} or empty string, but received {name}",
                                broker.id()
                            ))));
                    }
                    let mut all: BTreeMap<String, (String, i8)> = BTreeMap::new();
                    let s = &broker.config.node.settings;
                    {
                        for (k, v) in [
                            ("node.id", broker.id().to_string()),
                            ("num.partitions", s.num_partitions.to_string()),
                            (
                                "default.replication.factor",
                                s.default_replication_factor.to_string(),
                            ),
                            (
                                "auto.create.topics.enable",
                                broker.config.auto_create_topics.to_string(),
                            ),
                            (
                                "broker.session.timeout.ms",
                                s.broker_session_timeout_ms.to_string(),
                            ),
                            (
                                "unclean.leader.election.enable",
                                s.unclean_leader_election_enable.to_string(),
                            ),
                        ] {
                            all.insert(k.to_string(), (v, STATIC_BROKER_CONFIG));
                        }
                    }
                    for (k, v) in image.configs.get(&ConfigResource::Broker(name.clone())) {
                        all.insert(k, (v, DYNAMIC_BROKER_CONFIG));
                    }
                    all.into_iter()
                        .filter(|(k, _)| wanted(k))
                        .map(|(k, (v, s))| entry(version, &k, v, s))
                        .collect()
                }
                t => {
                    return base
                        .with_error_code(ErrorCode::InvalidRequest.code())
                        .with_error_message(Some(StrBytes::from_string(format!(
                            "config resource type {t} is not supported"
                        ))))
                }
            };
            base.with_configs(configs)
        })
        .collect();
    DescribeConfigsResponse::default().with_results(results)
}

pub(super) async fn incremental_alter(
    broker: &Broker,
    req: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let before = broker.image().offset;
    let call = pb::IncrementalAlterConfigsRequest {
        resources: req
            .resources
            .iter()
            .map(|r| pb::AlterConfigsResource {
                resource_type: i32::from(r.resource_type),
                resource_name: r.resource_name.to_string(),
                configs: r
                    .configs
                    .iter()
                    .map(|c| pb::AlterableConfig {
                        name: c.name.to_string(),
                        op: i32::from(c.config_operation),
                        value: c.value.as_ref().map(|v| v.to_string()),
                    })
                    .collect(),
            })
            .collect(),
        validate_only: req.validate_only,
    };
    let responses = match broker
        .controller
        .call(Duration::from_secs(10), |mut c| {
            let r = call.clone();
            async move { c.incremental_alter_configs(r).await }
        })
        .await
    {
        Ok(resp) => {
            if !req.validate_only && resp.resources.iter().any(|r| r.error_code == 0) {
                // Answer once this broker's metadata moved past the change.
                broker
                    .wait_for_image(Duration::from_secs(2), |i| i.offset > before)
                    .await;
            }
            resp.resources
                .into_iter()
                .map(|r| {
                    AlterConfigsResourceResponse::default()
                        .with_error_code(r.error_code as i16)
                        .with_error_message(
                            (!r.error_message.is_empty())
                                .then(|| StrBytes::from_string(r.error_message)),
                        )
                        .with_resource_type(r.resource_type as i8)
                        .with_resource_name(StrBytes::from_string(r.resource_name))
                })
                .collect()
        }
        Err(e) => req
            .resources
            .iter()
            .map(|r| {
                AlterConfigsResourceResponse::default()
                    .with_error_code(ErrorCode::RequestTimedOut.code())
                    .with_error_message(Some(StrBytes::from_string(format!(
                        "controller unavailable: {}",
                        e.message()
                    ))))
                    .with_resource_type(r.resource_type)
                    .with_resource_name(r.resource_name.clone())
            })
            .collect(),
    };
    IncrementalAlterConfigsResponse::default().with_responses(responses)
}
