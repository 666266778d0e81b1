//! Group configs (Kafka's GROUP config resource, type 32): DescribeConfigs shows each with its
//! value for the group (GROUP_CONFIG) or the broker's (DEFAULT_CONFIG); IncrementalAlterConfigs
//! is checked against this broker's bounds before the controller takes it (names and forms are
//! the controller's to check, `odradek_common::group_configs`).

use std::collections::BTreeMap;

use kafka_protocol::messages::describe_configs_response::DescribeConfigsResourceResult;
use kafka_protocol::messages::incremental_alter_configs_request::AlterConfigsResource;
use odradek_common::group_configs::{self as gc, ShareOffsetReset, GROUP_CONFIGS};
use odradek_controller::managers::broker_configs::ConfigType;
use odradek_metadata::{ConfigResource, MetadataImage};

use super::Broker;

/// Kafka's ConfigSource of a value set on the group.
const GROUP_CONFIG: i8 = 8;
const DEFAULT_CONFIG: i8 = 5;

/// The resource type of a group.
pub(super) const GROUP: i8 = 32;

/// What the broker uses for `name` when the group does not set it.
fn default_of(broker: &Broker, name: &str) -> String {
    let g = broker.groups.config();
    match name {
        gc::CONSUMER_SESSION_TIMEOUT_MS => g.consumer_session_timeout_ms.to_string(),
        gc::CONSUMER_HEARTBEAT_INTERVAL_MS => g.consumer_heartbeat_interval_ms.to_string(),
        gc::SHARE_SESSION_TIMEOUT_MS => g.share_session_timeout_ms.to_string(),
        gc::SHARE_HEARTBEAT_INTERVAL_MS => g.share_heartbeat_interval_ms.to_string(),
        gc::SHARE_RECORD_LOCK_DURATION_MS => broker
            .share_partitions
            .config
            .record_lock_duration_ms
            .to_string(),
        gc::SHARE_AUTO_OFFSET_RESET => "latest".into(),
        _ => "read_uncommitted".into(),
    }
}

/// Every group config of `group`: (name, value, source, type).
pub(super) fn describe(
    broker: &Broker,
    image: &MetadataImage,
    group: &str,
) -> Vec<(String, String, i8, i8)> {
    let set = image.configs.get(&ConfigResource::Group(group.to_string()));
    GROUP_CONFIGS
        .iter()
        .map(|(name, _)| {
            let config_type = if name.ends_with(".ms") {
                ConfigType::Int
            } else {
                ConfigType::String
            } as i8;
            match set.get(*name) {
                Some(v) => (name.to_string(), v.clone(), GROUP_CONFIG, config_type),
                None => (
                    name.to_string(),
                    default_of(broker, name),
                    DEFAULT_CONFIG,
                    config_type,
                ),
            }
        })
        .collect()
}

/// One entry of a DescribeConfigs answer.
pub(super) fn entries(
    version: i16,
    configs: Vec<(String, String, i8, i8)>,
    wanted: impl Fn(&str) -> bool,
) -> Vec<DescribeConfigsResourceResult> {
    configs
        .into_iter()
        .filter(|(k, ..)| wanted(k))
        .map(|(k, v, source, t)| super::configs::entry(version, &k, v, source, t, false))
        .collect()
}

/// Checks an IncrementalAlterConfigs of a group against this broker's bounds: the timeouts
/// within the broker's `.min`/`.max` settings, each heartbeat interval below its session
/// timeout. `Err` is the INVALID_CONFIG message.
pub(super) fn check(
    broker: &Broker,
    image: &MetadataImage,
    r: &AlterConfigsResource,
) -> Result<(), String> {
    let group = r.resource_name.to_string();
    let mut effective: BTreeMap<String, String> = GROUP_CONFIGS
        .iter()
        .map(|(n, _)| (n.to_string(), default_of(broker, n)))
        .collect();
    effective.extend(image.configs.get(&ConfigResource::Group(group)));
    for c in &r.configs {
        let name = c.name.to_string();
        match (c.config_operation, &c.value) {
            (0, None) => return Err("Null value not supported for group configs".into()),
            (0, Some(v)) => {
                effective.insert(name, v.to_string());
            }
            (1, _) => {
                effective.insert(name.clone(), default_of(broker, &name));
            }
            // Other operations (and unknown names) are the controller's to refuse.
            _ => {}
        }
    }
    let mut bounds = broker.config.groups.group_config_bounds.clone();
    let (lo, hi) = broker.config.shares.lock_duration_bounds;
    bounds.insert(
        gc::SHARE_RECORD_LOCK_DURATION_MS.to_string(),
        (lo as i32, hi as i32),
    );
    let int = |name: &str| {
        effective
            .get(name)
            .and_then(|v| v.trim().parse::<i32>().ok())
    };
    // The group's whole config as it would be, as Kafka checks it.
    for (name, (lo, hi)) in &bounds {
        if let Some(v) = int(name) {
            if v < *lo || v > *hi {
                return Err(format!(
                    "{name} must be within group.{name}'s bounds [{lo}, {hi}] (the broker's \
                     .min and .max settings), not {v}"
                ));
            }
        }
    }
    for (heartbeat, session) in [
        (
            gc::CONSUMER_HEARTBEAT_INTERVAL_MS,
            gc::CONSUMER_SESSION_TIMEOUT_MS,
        ),
        (
            gc::SHARE_HEARTBEAT_INTERVAL_MS,
            gc::SHARE_SESSION_TIMEOUT_MS,
        ),
    ] {
        if let (Some(h), Some(s)) = (int(heartbeat), int(session)) {
            if h >= s {
                return Err(format!("{heartbeat} ({h}) must be below {session} ({s})"));
            }
        }
    }
    Ok(())
}

/// A group's value of config `name`, if it sets one (looked up without copying the group's
/// configs: share fetches ask on every request).
fn group_value<'a>(image: &'a MetadataImage, group: &str, name: &str) -> Option<&'a String> {
    image
        .configs
        .resources
        .get(&ConfigResource::Group(group.to_string()))?
        .get(name)
}

/// A group's `share.auto.offset.reset` (the default, latest, when unset or unreadable).
pub(crate) fn share_offset_reset(image: &MetadataImage, group: &str) -> ShareOffsetReset {
    group_value(image, group, gc::SHARE_AUTO_OFFSET_RESET)
        .and_then(|v| ShareOffsetReset::parse(v))
        .unwrap_or_default()
}

/// A group's `share.record.lock.duration.ms`, else the broker's.
pub(crate) fn share_lock_duration_ms(broker: &Broker, image: &MetadataImage, group: &str) -> i64 {
    group_value(image, group, gc::SHARE_RECORD_LOCK_DURATION_MS)
        .and_then(|v| v.trim().parse::<i64>().ok())
        .filter(|v| *v > 0)
        .unwrap_or(broker.share_partitions.config.record_lock_duration_ms)
}
