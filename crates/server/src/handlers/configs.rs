//! DescribeConfigs (effective topic, broker and group configs with their sources) and
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
const DYNAMIC_DEFAULT_BROKER_CONFIG: i8 = 3;
const STATIC_BROKER_CONFIG: i8 = 4;
const DEFAULT_CONFIG: i8 = 5;

/// Kafka's ConfigType of a topic config (0, UNKNOWN, for keys it does not list).
fn topic_type(name: &str) -> i8 {
    use odradek_controller::managers::broker_configs::ConfigType as T;
    let t = match name {
        "cleanup.policy"
        | "leader.replication.throttled.replicas"
        | "follower.replication.throttled.replicas" => T::List,
        "compression.type" | "message.timestamp.type" => T::String,
        "index.interval.bytes"
        | "max.message.bytes"
        | "min.insync.replicas"
        | "segment.bytes"
        | "segment.index.bytes" => T::Int,
        "min.cleanable.dirty.ratio" => T::Double,
        "unclean.leader.election.enable" | "preallocate" => T::Boolean,
        "delete.retention.ms"
        | "flush.messages"
        | "flush.ms"
        | "min.compaction.lag.ms"
        | "max.compaction.lag.ms"
        | "retention.bytes"
        | "retention.ms"
        | "segment.ms"
        | "segment.jitter.ms"
        | "file.delete.delay.ms"
        | "message.timestamp.before.max.ms"
        | "message.timestamp.after.max.ms"
        | "message.timestamp.difference.max.ms" => T::Long,
        _ => return 0,
    };
    t as i8
}

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

/// One entry: its value, source, type (v3+) and whether it can change at run time.
pub(super) fn entry(
    version: i16,
    name: &str,
    value: String,
    source: i8,
    config_type: i8,
    read_only: bool,
) -> DescribeConfigsResourceResult {
    // Kafka's PASSWORD configs (private keys, passwords, JAAS configs) are described
    // without their value.
    let sensitive = name.ends_with("ssl.keystore.key")
        || name.ends_with("ssl.key.password")
        || name.ends_with("password")
        || name.ends_with("sasl.jaas.config");
    let r = DescribeConfigsResourceResult::default()
        .with_name(StrBytes::from_string(name.to_string()))
        .with_value((!sensitive).then(|| StrBytes::from_string(value)))
        .with_is_sensitive(sensitive)
        .with_config_source(source)
        .with_read_only(read_only);
    if version >= 3 {
        r.with_config_type(config_type)
    } else {
        r
    }
}

/// Every broker config of `broker`'s table with its effective value and where it comes from:
/// this broker's dynamic value, the cluster-wide dynamic default, server.properties, or
/// Kafka's default. The cluster-default resource (`""`) lists the dynamic defaults only.
fn broker_entries(
    broker: &Broker,
    image: &odradek_metadata::MetadataImage,
    name: &str,
) -> BTreeMap<String, (String, i8, i8, bool)> {
    use odradek_controller::managers::broker_configs::{broker_config, Mode, BROKER_CONFIGS};
    let default_dynamic = image.configs.get(&ConfigResource::Broker(String::new()));
    let kind = |k: &str| {
        broker_config(k).map_or((0, false), |d| {
            (d.config_type as i8, d.mode == Mode::ReadOnly)
        })
    };
    let mut all = BTreeMap::new();
    if name.is_empty() {
        for (k, v) in default_dynamic {
            let (t, ro) = kind(&k);
            all.insert(k, (v, DYNAMIC_DEFAULT_BROKER_CONFIG, t, ro));
        }
        return all;
    }
    for d in BROKER_CONFIGS {
        let (value, source) = match broker.config.properties.get(d.name) {
            Some(v) => (v.clone(), STATIC_BROKER_CONFIG),
            None => (d.default.to_string(), DEFAULT_CONFIG),
        };
        all.insert(
            d.name.to_string(),
            (value, source, d.config_type as i8, d.mode == Mode::ReadOnly),
        );
    }
    all.insert(
        "node.id".into(),
        (
            broker.id().to_string(),
            STATIC_BROKER_CONFIG,
            kind("node.id").0,
            true,
        ),
    );
    for (source, dynamic) in [
        (DYNAMIC_DEFAULT_BROKER_CONFIG, default_dynamic),
        (
            DYNAMIC_BROKER_CONFIG,
            image.configs.get(&ConfigResource::Broker(name.to_string())),
        ),
    ] {
        for (k, v) in dynamic {
            let (t, ro) = kind(&k);
            all.insert(k, (v, source, t, ro));
        }
    }
    all
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
                    // Inherited dynamic log defaults (cluster-wide, then this broker's).
                    for (source, resource) in [
                        (DYNAMIC_DEFAULT_BROKER_CONFIG, String::new()),
                        (DYNAMIC_BROKER_CONFIG, broker.id().to_string()),
                    ] {
                        let set = image.configs.get(&ConfigResource::Broker(resource));
                        for (broker_key, topic_key) in
                            odradek_controller::managers::broker_configs::LOG_DEFAULTS
                        {
                            if let Some(v) = set.get(*broker_key) {
                                all.insert(topic_key.to_string(), (v.clone(), source));
                            }
                        }
                        if let Some(v) = set.get("min.insync.replicas") {
                            all.insert("min.insync.replicas".into(), (v.clone(), source));
                        }
                    }
                    for (k, v) in dynamic {
                        all.insert(k, (v, DYNAMIC_TOPIC_CONFIG));
                    }
                    all.into_iter()
                        .filter(|(k, _)| wanted(k))
                        .map(|(k, (v, s))| entry(version, &k, v, s, topic_type(&k), false))
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
                    broker_entries(broker, &image, &name)
                        .into_iter()
                        .filter(|(k, _)| wanted(k))
                        .map(|(k, (v, s, t, ro))| entry(version, &k, v, s, t, ro))
                        .collect()
                }
                super::group_configs::GROUP if name.is_empty() => {
                    return base
                        .with_error_code(ErrorCode::InvalidRequest.code())
                        .with_error_message(Some(StrBytes::from_static_str(
                            "Group name must not be empty",
                        )))
                }
                super::group_configs::GROUP => super::group_configs::entries(
                    version,
                    super::group_configs::describe(broker, &image, &name),
                    wanted,
                ),
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
    let image = broker.image();
    let before = image.offset;
    // Group configs out of this broker's bounds are answered here (in their place in the
    // answer), the rest forwarded.
    let mut refused: Vec<Option<AlterConfigsResourceResponse>> = Vec::new();
    let mut forwarded = Vec::new();
    for r in &req.resources {
        let checked = if r.resource_type == super::group_configs::GROUP {
            super::group_configs::check(broker, &image, r)
        } else {
            Ok(())
        };
        match checked {
            Ok(()) => {
                forwarded.push(r);
                refused.push(None);
            }
            Err(m) => refused.push(Some(
                AlterConfigsResourceResponse::default()
                    .with_error_code(ErrorCode::InvalidConfig.code())
                    .with_error_message(Some(StrBytes::from_string(m)))
                    .with_resource_type(r.resource_type)
                    .with_resource_name(r.resource_name.clone()),
            )),
        }
    }
    let call = pb::IncrementalAlterConfigsRequest {
        resources: forwarded
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
    let responses: Vec<AlterConfigsResourceResponse> = match broker
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
        Err(e) => forwarded
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
    let mut answered = responses.into_iter();
    IncrementalAlterConfigsResponse::default().with_responses(
        refused
            .into_iter()
            .filter_map(|r| r.or_else(|| answered.next()))
            .collect(),
    )
}
