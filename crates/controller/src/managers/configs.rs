//! Dynamic configs: IncrementalAlterConfigs for topics, brokers and groups, and topic config
//! validation.

use std::collections::BTreeMap;

use odradek_common::ErrorCode;
use odradek_log::{LogConfig, LOG_CONFIG_KEYS};
use odradek_metadata::proto::{self, metadata_record::Record, MetadataRecord};
use odradek_metadata::{ConfigResource, MetadataImage};

use super::{err, rec, ControllerResult};
use crate::pb;

/// Topic config keys beyond the log's own that Kafka accepts on a topic.
const OTHER_TOPIC_KEYS: &[&str] = &[
    "min.insync.replicas",
    "unclean.leader.election.enable",
    "compression.type",
    "max.compaction.lag.ms",
    "segment.jitter.ms",
    "preallocate",
    "file.delete.delay.ms",
    "message.timestamp.before.max.ms",
    "message.timestamp.after.max.ms",
    "message.timestamp.difference.max.ms",
    "leader.replication.throttled.replicas",
    "follower.replication.throttled.replicas",
];

/// Checks a topic's full set of dynamic configs: known keys, values in range.
pub fn validate_topic_configs(configs: &BTreeMap<String, String>) -> Result<(), String> {
    for (k, v) in configs {
        if !LOG_CONFIG_KEYS.contains(&k.as_str()) && !OTHER_TOPIC_KEYS.contains(&k.as_str()) {
            return Err(format!("unknown topic config {k}"));
        }
        let bad = |why: &str| Err(format!("invalid value {v:?} for configuration {k}: {why}"));
        match k.as_str() {
            "min.insync.replicas" if v.parse::<i32>().map_or(true, |n| n < 1) => {
                return bad("must be at least 1")
            }
            "unclean.leader.election.enable" | "preallocate" if v != "true" && v != "false" => {
                return bad("must be true or false")
            }
            "leader.replication.throttled.replicas" | "follower.replication.throttled.replicas"
                if !valid_replica_list(v) =>
            {
                return bad("must be * or a list of [partition]:[broker] entries, as 0:1,1:2")
            }
            "compression.type"
                if !["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"]
                    .contains(&v.as_str()) =>
            {
                return bad("must be one of uncompressed, zstd, lz4, snappy, gzip, producer")
            }
            _ => {}
        }
    }
    let log_props = configs
        .iter()
        .filter(|(k, _)| LOG_CONFIG_KEYS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    LogConfig::from_properties(&log_props)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Kafka's throttled-replicas format: `*`, empty, or `[partition]:[broker],...`.
fn valid_replica_list(v: &str) -> bool {
    let v = v.trim();
    v == "*"
        || v.is_empty()
        || v.split(',').all(|e| {
            e.trim().split_once(':').is_some_and(|(p, b)| {
                p.trim().parse::<u32>().is_ok() && b.trim().parse::<u32>().is_ok()
            })
        })
}

pub(crate) fn config_record(
    resource: ConfigResource,
    name: String,
    value: Option<String>,
) -> MetadataRecord {
    let (resource_type, resource_name) = match resource {
        ConfigResource::Topic(n) => (proto::ConfigResourceType::ConfigResourceTopic, n),
        ConfigResource::Broker(n) => (proto::ConfigResourceType::ConfigResourceBroker, n),
        ConfigResource::Group(n) => (proto::ConfigResourceType::ConfigResourceGroup, n),
    };
    rec(Record::Config(proto::ConfigRecord {
        resource_type: resource_type as i32,
        resource_name,
        name,
        value,
    }))
}

/// IncrementalAlterConfigs: SET (0), DELETE (1), APPEND (2) and SUBTRACT (3) on list values.
pub fn incremental_alter_configs(
    image: &MetadataImage,
    request: &pb::IncrementalAlterConfigsRequest,
) -> ControllerResult<pb::IncrementalAlterConfigsResponse> {
    let mut records = Vec::new();
    let mut results = Vec::new();
    for r in &request.resources {
        let outcome = alter_one(image, r);
        let mut result = pb::AlterConfigsResult {
            resource_type: r.resource_type,
            resource_name: r.resource_name.clone(),
            ..Default::default()
        };
        match outcome {
            Ok(recs) => {
                if !request.validate_only {
                    records.extend(recs);
                }
            }
            Err((code, message)) => (result.error_code, result.error_message) = (code, message),
        }
        results.push(result);
    }
    ControllerResult {
        records,
        response: pb::IncrementalAlterConfigsResponse { resources: results },
    }
}

fn alter_one(
    image: &MetadataImage,
    r: &pb::AlterConfigsResource,
) -> Result<Vec<MetadataRecord>, (i32, String)> {
    let resource = match r.resource_type {
        2 => {
            if !image.topics.by_name.contains_key(&r.resource_name) {
                return Err(err(
                    ErrorCode::UnknownTopicOrPartition,
                    format!("topic '{}' does not exist", r.resource_name),
                ));
            }
            ConfigResource::Topic(r.resource_name.clone())
        }
        4 => {
            if !r.resource_name.is_empty() && r.resource_name.parse::<i32>().is_err() {
                return Err(err(
                    ErrorCode::InvalidRequest,
                    format!(
                        "broker resource name {:?} is not a broker id",
                        r.resource_name
                    ),
                ));
            }
            ConfigResource::Broker(r.resource_name.clone())
        }
        32 => {
            if r.resource_name.is_empty() {
                return Err(err(
                    ErrorCode::InvalidRequest,
                    "a group resource needs a group id",
                ));
            }
            ConfigResource::Group(r.resource_name.clone())
        }
        t => {
            return Err(err(
                ErrorCode::InvalidRequest,
                format!("config resource type {t} is not supported"),
            ))
        }
    };
    let mut merged = image.configs.get(&resource);
    for c in &r.configs {
        let list = |v: &str| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect::<Vec<_>>()
        };
        match (c.op, &c.value) {
            (0, Some(v)) => {
                merged.insert(c.name.clone(), v.clone());
            }
            (1, _) => {
                merged.remove(&c.name);
            }
            (2, Some(v)) => {
                let mut items = merged.get(&c.name).map(|s| list(s)).unwrap_or_default();
                for item in list(v) {
                    if !items.contains(&item) {
                        items.push(item);
                    }
                }
                merged.insert(c.name.clone(), items.join(","));
            }
            (3, Some(v)) => {
                let remove = list(v);
                let items: Vec<String> = merged
                    .get(&c.name)
                    .map(|s| list(s))
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|i| !remove.contains(i))
                    .collect();
                merged.insert(c.name.clone(), items.join(","));
            }
            (op, _) => {
                return Err(err(
                    ErrorCode::InvalidRequest,
                    format!(
                        "config operation {op} on {} needs a value or is unknown",
                        c.name
                    ),
                ))
            }
        }
    }
    let current = image.configs.get(&resource);
    match resource {
        ConfigResource::Topic(_) => {
            validate_topic_configs(&merged).map_err(|m| err(ErrorCode::InvalidConfig, m))?
        }
        ConfigResource::Broker(_) => {
            // The keys this request sets (deletes always pass, whatever was set before).
            let set: BTreeMap<String, String> = merged
                .iter()
                .filter(|(k, v)| current.get(*k) != Some(*v))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            super::broker_configs::validate_broker_configs(&set)?;
        }
        ConfigResource::Group(_) => {
            for (k, v) in &merged {
                odradek_common::group_configs::validate(k, v)
                    .map_err(|m| err(ErrorCode::InvalidConfig, m))?;
            }
        }
    }
    let mut records = Vec::new();
    for (k, v) in &merged {
        if current.get(k) != Some(v) {
            records.push(config_record(resource.clone(), k.clone(), Some(v.clone())));
        }
    }
    for k in current.keys().filter(|k| !merged.contains_key(*k)) {
        records.push(config_record(resource.clone(), k.clone(), None));
    }
    Ok(records)
}
