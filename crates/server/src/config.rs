//! Broker settings on top of the KRaft node configuration, with Kafka's keys and defaults.

use std::collections::BTreeMap;

use odradek_controller::config::{parse_listeners, ConfigError, Listener, NodeConfig};
use odradek_log::LogConfig;

/// A validated broker (or combined node) configuration.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// The KRaft node part (node.id, roles, voters, dirs, controller listener).
    pub node: NodeConfig,
    /// Client listeners (every listener but the controller's).
    pub listeners: Vec<Listener>,
    /// `advertised.listeners` (defaults to `listeners`).
    pub advertised: Vec<Listener>,
    /// `auto.create.topics.enable` (true).
    pub auto_create_topics: bool,
    /// `broker.heartbeat.interval.ms` (2000).
    pub heartbeat_interval_ms: u64,
    /// `log.retention.check.interval.ms` (300000).
    pub retention_check_interval_ms: u64,
    /// `broker.rack`.
    pub rack: Option<String>,
    /// Broker-wide log defaults (`log.segment.bytes`, `log.retention.ms`/`hours`, ...), which
    /// topic configs override.
    pub log_defaults: LogConfig,
    /// `socket.request.max.bytes` (100 MiB).
    pub socket_request_max_bytes: usize,
    /// `queued.max.requests` (500).
    pub queued_max_requests: usize,
    /// `max.connections` (Kafka: unlimited; here 10,000 unless set).
    pub max_connections: usize,
}

fn cfg_err(key: &str, value: &str, reason: &str) -> ConfigError {
    ConfigError {
        key: key.into(),
        value: value.into(),
        reason: reason.into(),
    }
}

fn get_num<T: std::str::FromStr>(
    p: &BTreeMap<String, String>,
    key: &str,
    default: T,
) -> Result<T, ConfigError> {
    match p.get(key) {
        None => Ok(default),
        Some(v) => v
            .trim()
            .parse()
            .map_err(|_| cfg_err(key, v, "not a number in range")),
    }
}

impl BrokerConfig {
    /// Validates the properties; returns unknown keys for a warning.
    pub fn from_properties(
        props: &BTreeMap<String, String>,
    ) -> Result<(BrokerConfig, Vec<String>), ConfigError> {
        let (node, unknown) = NodeConfig::from_properties(props)?;
        let listeners: Vec<Listener> = node
            .listeners
            .iter()
            .filter(|l| l.name != node.controller_listener_name)
            .cloned()
            .collect();
        if node.roles.broker && listeners.is_empty() {
            let v = props.get("listeners").cloned().unwrap_or_default();
            return Err(cfg_err(
                "listeners",
                &v,
                "a broker needs a client listener (for example PLAINTEXT://:9092)",
            ));
        }
        let advertised = match props.get("advertised.listeners") {
            Some(v) => parse_listeners("advertised.listeners", v)?,
            None => listeners.clone(),
        };
        let auto_create_topics = match props.get("auto.create.topics.enable").map(|s| s.trim()) {
            None | Some("true") => true,
            Some("false") => false,
            Some(v) => {
                return Err(cfg_err(
                    "auto.create.topics.enable",
                    v,
                    "must be true or false",
                ))
            }
        };
        // Broker-wide log defaults: Kafka's log.* keys map to the topic keys.
        let mut log_props = std::collections::HashMap::new();
        let map = [
            ("log.segment.bytes", "segment.bytes"),
            ("log.roll.ms", "segment.ms"),
            ("log.index.interval.bytes", "index.interval.bytes"),
            ("log.index.size.max.bytes", "segment.index.bytes"),
            ("message.max.bytes", "max.message.bytes"),
            ("log.retention.bytes", "retention.bytes"),
            ("log.cleanup.policy", "cleanup.policy"),
            ("log.cleaner.delete.retention.ms", "delete.retention.ms"),
            ("log.flush.interval.messages", "flush.messages"),
            ("log.flush.interval.ms", "flush.ms"),
            ("log.message.timestamp.type", "message.timestamp.type"),
        ];
        for (broker_key, topic_key) in map {
            if let Some(v) = props.get(broker_key) {
                log_props.insert(topic_key.to_string(), v.clone());
            }
        }
        let retention_ms = if let Some(v) = props.get("log.retention.ms") {
            Some(v.clone())
        } else if let Some(v) = props.get("log.retention.minutes") {
            Some(
                (v.trim()
                    .parse::<i64>()
                    .map_err(|_| cfg_err("log.retention.minutes", v, "not a number"))?
                    * 60_000)
                    .to_string(),
            )
        } else if let Some(v) = props.get("log.retention.hours") {
            Some(
                (v.trim()
                    .parse::<i64>()
                    .map_err(|_| cfg_err("log.retention.hours", v, "not a number"))?
                    * 3_600_000)
                    .to_string(),
            )
        } else {
            None
        };
        if let Some(ms) = retention_ms {
            log_props.insert("retention.ms".into(), ms);
        }
        let (log_defaults, _) = LogConfig::from_properties(&log_props).map_err(|e| match e {
            odradek_log::LogError::InvalidConfig { key, value, reason } => {
                let broker_key = map
                    .iter()
                    .find(|(_, t)| *t == key)
                    .map_or(key.clone(), |(b, _)| b.to_string());
                ConfigError {
                    key: broker_key,
                    value,
                    reason,
                }
            }
            other => cfg_err("log.*", "", &other.to_string()),
        })?;
        let unknown = unknown
            .into_iter()
            .filter(|k| {
                !k.starts_with("log.") && k != "message.max.bytes" && !KNOWN.contains(&k.as_str())
            })
            .collect();
        Ok((
            BrokerConfig {
                listeners,
                advertised,
                auto_create_topics,
                heartbeat_interval_ms: get_num(props, "broker.heartbeat.interval.ms", 2000)?,
                retention_check_interval_ms: get_num(
                    props,
                    "log.retention.check.interval.ms",
                    300_000,
                )?,
                rack: props.get("broker.rack").cloned(),
                log_defaults,
                socket_request_max_bytes: get_num(
                    props,
                    "socket.request.max.bytes",
                    100 * 1024 * 1024,
                )?,
                queued_max_requests: get_num(props, "queued.max.requests", 500)?,
                max_connections: get_num(props, "max.connections", 10_000)?,
                node,
            },
            unknown,
        ))
    }
}

const KNOWN: &[&str] = &[
    "queued.max.requests",
    "broker.heartbeat.interval.ms",
    "max.connections",
    "socket.request.max.bytes",
];
