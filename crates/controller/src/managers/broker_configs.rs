//! The broker configs Odradek knows, with Kafka's names, types and defaults, and which of them
//! can change at run time (IncrementalAlterConfigs on a broker or on the cluster default, the
//! empty broker name). Validation happens here, on the controller, before anything is
//! written; DescribeConfigs reports each key's type and source from the same table.

use std::collections::BTreeMap;

use odradek_common::ErrorCode;

use super::err;

/// Kafka's ConfigType (DescribeConfigs v3+).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i8)]
pub enum ConfigType {
    /// BOOLEAN
    Boolean = 1,
    /// STRING
    String = 2,
    /// INT
    Int = 3,
    /// LONG
    Long = 5,
    /// DOUBLE
    Double = 6,
    /// LIST
    List = 7,
}

/// Whether a key can change at run time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Only in server.properties (a restart applies it).
    ReadOnly,
    /// Per broker, or as the cluster-wide default; brokers apply it without a restart.
    Dynamic,
}

/// One broker config.
#[derive(Debug, Clone, Copy)]
pub struct BrokerConfigDef {
    /// Kafka's key.
    pub name: &'static str,
    /// Its type.
    pub config_type: ConfigType,
    /// Kafka's default, as DescribeConfigs shows it.
    pub default: &'static str,
    /// Whether it can change at run time.
    pub mode: Mode,
}

const fn def(
    name: &'static str,
    config_type: ConfigType,
    default: &'static str,
    mode: Mode,
) -> BrokerConfigDef {
    BrokerConfigDef {
        name,
        config_type,
        default,
        mode,
    }
}

use ConfigType::{Boolean, Double, Int, List, Long, String as Str};
use Mode::{Dynamic, ReadOnly};

/// Every broker config Odradek reads, sorted by name. The dynamic ones are those brokers (and
/// the controller, for unclean.leader.election.enable) apply at run time: the replication
/// throttles, the log defaults topics inherit, min.insync.replicas.
pub const BROKER_CONFIGS: &[BrokerConfigDef] = &[
    def("advertised.listeners", Str, "", ReadOnly),
    def("auto.create.topics.enable", Boolean, "true", ReadOnly),
    def("auto.leader.rebalance.enable", Boolean, "true", ReadOnly),
    def("broker.heartbeat.interval.ms", Int, "2000", ReadOnly),
    def("broker.rack", Str, "", ReadOnly),
    def("broker.session.timeout.ms", Int, "9000", ReadOnly),
    def("connections.max.idle.ms", Long, "600000", ReadOnly),
    def("controller.listener.names", Str, "", ReadOnly),
    def(
        "controller.quorum.election.timeout.ms",
        Int,
        "1000",
        ReadOnly,
    ),
    def("controller.quorum.voters", List, "", ReadOnly),
    def("default.replication.factor", Int, "1", ReadOnly),
    def(
        "follower.replication.throttled.rate",
        Long,
        "9223372036854775807",
        Dynamic,
    ),
    def("group.initial.rebalance.delay.ms", Int, "3000", ReadOnly),
    def("group.max.session.timeout.ms", Int, "1800000", ReadOnly),
    def("group.max.size", Int, "2147483647", ReadOnly),
    def("group.min.session.timeout.ms", Int, "6000", ReadOnly),
    def("inter.broker.listener.name", Str, "", ReadOnly),
    def(
        "leader.imbalance.check.interval.seconds",
        Long,
        "300",
        ReadOnly,
    ),
    def(
        "leader.imbalance.per.broker.percentage",
        Int,
        "10",
        ReadOnly,
    ),
    def(
        "leader.replication.throttled.rate",
        Long,
        "9223372036854775807",
        Dynamic,
    ),
    def("listener.security.protocol.map", Str, "", ReadOnly),
    def("listeners", Str, "PLAINTEXT://:9092", ReadOnly),
    def("log.cleaner.delete.retention.ms", Long, "86400000", Dynamic),
    def("log.cleanup.policy", List, "delete", Dynamic),
    def("log.dirs", Str, "", ReadOnly),
    def(
        "log.flush.interval.messages",
        Long,
        "9223372036854775807",
        Dynamic,
    ),
    def("log.flush.interval.ms", Long, "", Dynamic),
    def("log.index.interval.bytes", Int, "4096", Dynamic),
    def("log.index.size.max.bytes", Int, "10485760", Dynamic),
    def("log.message.timestamp.type", Str, "CreateTime", Dynamic),
    def("log.retention.bytes", Long, "-1", Dynamic),
    def("log.retention.check.interval.ms", Long, "300000", ReadOnly),
    def("log.retention.hours", Int, "168", ReadOnly),
    def("log.retention.ms", Long, "", Dynamic),
    def("log.roll.ms", Long, "", Dynamic),
    def("log.segment.bytes", Int, "1073741824", Dynamic),
    def("max.connections", Int, "2147483647", ReadOnly),
    def("message.max.bytes", Int, "1048588", Dynamic),
    def("metadata.log.dir", Str, "", ReadOnly),
    def("min.insync.replicas", Int, "1", Dynamic),
    def("node.id", Int, "-1", ReadOnly),
    def("num.partitions", Int, "1", ReadOnly),
    def("num.replica.fetchers", Int, "1", ReadOnly),
    def("offset.metadata.max.bytes", Int, "4096", ReadOnly),
    def("offsets.retention.minutes", Int, "10080", ReadOnly),
    def("offsets.topic.num.partitions", Int, "50", ReadOnly),
    def("offsets.topic.replication.factor", Int, "3", ReadOnly),
    def("process.roles", List, "", ReadOnly),
    def("producer.id.expiration.ms", Int, "86400000", ReadOnly),
    def("queued.max.request.bytes", Long, "-1", ReadOnly),
    def("queued.max.requests", Int, "500", ReadOnly),
    def("replica.fetch.max.bytes", Int, "1048576", ReadOnly),
    def("replica.fetch.wait.max.ms", Int, "500", ReadOnly),
    def("replica.lag.time.max.ms", Long, "30000", ReadOnly),
    def("socket.request.max.bytes", Int, "104857600", ReadOnly),
    def("transaction.max.timeout.ms", Int, "900000", ReadOnly),
    def("transaction.state.log.min.isr", Int, "2", ReadOnly),
    def("transaction.state.log.num.partitions", Int, "50", ReadOnly),
    def(
        "transaction.state.log.replication.factor",
        Int,
        "3",
        ReadOnly,
    ),
    def("unclean.leader.election.enable", Boolean, "false", Dynamic),
];

/// The definition of `name`, if Odradek knows it.
pub fn broker_config(name: &str) -> Option<&'static BrokerConfigDef> {
    BROKER_CONFIGS
        .binary_search_by(|d| d.name.cmp(name))
        .ok()
        .map(|i| &BROKER_CONFIGS[i])
}

/// Kafka's dynamic log defaults and the topic key each is the default of.
pub const LOG_DEFAULTS: &[(&str, &str)] = &[
    ("log.cleaner.delete.retention.ms", "delete.retention.ms"),
    ("log.cleanup.policy", "cleanup.policy"),
    ("log.flush.interval.messages", "flush.messages"),
    ("log.flush.interval.ms", "flush.ms"),
    ("log.index.interval.bytes", "index.interval.bytes"),
    ("log.index.size.max.bytes", "segment.index.bytes"),
    ("log.message.timestamp.type", "message.timestamp.type"),
    ("log.retention.bytes", "retention.bytes"),
    ("log.retention.ms", "retention.ms"),
    ("log.roll.ms", "segment.ms"),
    ("log.segment.bytes", "segment.bytes"),
    ("message.max.bytes", "max.message.bytes"),
];

fn check_value(d: &BrokerConfigDef, v: &str) -> Result<(), String> {
    let v = v.trim();
    let ok = match d.config_type {
        Boolean => v == "true" || v == "false",
        Int => v.parse::<i32>().is_ok(),
        Long => v.parse::<i64>().is_ok(),
        Double => v.parse::<f64>().is_ok(),
        Str | List => true,
    };
    if !ok {
        return Err(format!(
            "Invalid value {v} for configuration {}: not a valid {:?}",
            d.name, d.config_type
        ));
    }
    let range = |min: i64| {
        if v.parse::<i64>().is_ok_and(|n| n < min) {
            Err(format!(
                "Invalid value {v} for configuration {}: Value must be at least {min}",
                d.name
            ))
        } else {
            Ok(())
        }
    };
    match d.name {
        "leader.replication.throttled.rate" | "follower.replication.throttled.rate" => range(0),
        "min.insync.replicas" | "log.flush.interval.messages" | "log.flush.interval.ms" => range(1),
        "log.segment.bytes" => range(14),
        "message.max.bytes" | "log.index.size.max.bytes" | "log.index.interval.bytes" => range(0),
        "log.retention.ms" | "log.retention.bytes" => range(-1),
        "log.cleanup.policy" if !v.split(',').all(|p| matches!(p.trim(), "delete" | "compact")) => {
            Err(format!(
                "Invalid value {v} for configuration log.cleanup.policy: each item must be delete or compact"
            ))
        }
        "log.message.timestamp.type" if v != "CreateTime" && v != "LogAppendTime" => Err(format!(
            "Invalid value {v} for configuration log.message.timestamp.type: must be CreateTime or LogAppendTime"
        )),
        _ => Ok(()),
    }
}

/// Whether `key` is a listener's key store or trust store (`listener.name.<l>.ssl.keystore.location`,
/// ...): dynamic, as in Kafka, so that a broker reloads its certificate without a restart. The
/// broker checks the files when it applies them.
pub fn is_dynamic_ssl_key(key: &str) -> bool {
    // Kafka: these change per listener only (with the prefix).
    const KEYS: [&str; 7] = [
        "ssl.keystore.type",
        "ssl.keystore.location",
        "ssl.keystore.certificate.chain",
        "ssl.keystore.key",
        "ssl.truststore.type",
        "ssl.truststore.location",
        "ssl.truststore.certificates",
    ];
    key.strip_prefix("listener.name.")
        .and_then(|r| r.split_once('.').map(|(_, k)| k))
        .is_some_and(|k| KEYS.contains(&k))
}

/// Checks the dynamic configs a broker resource (or the cluster default) would have: every
/// key known and dynamic (INVALID_REQUEST otherwise, as Kafka answers), every value of its
/// type and in range (INVALID_CONFIG, naming the key).
pub fn validate_broker_configs(configs: &BTreeMap<String, String>) -> Result<(), (i32, String)> {
    for (k, v) in configs {
        if is_dynamic_ssl_key(k) {
            continue;
        }
        let Some(d) = broker_config(k) else {
            return Err(err(
                ErrorCode::InvalidRequest,
                format!("Unknown Dynamic Configuration '{k}'."),
            ));
        };
        if d.mode == Mode::ReadOnly {
            return Err(err(
                ErrorCode::InvalidRequest,
                format!("Cannot update these configs dynamically: Set({k})"),
            ));
        }
        check_value(d, v).map_err(|m| err(ErrorCode::InvalidConfig, m))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_sorted_for_lookup() {
        assert!(BROKER_CONFIGS.windows(2).all(|w| w[0].name < w[1].name));
        for (broker_key, _) in LOG_DEFAULTS {
            assert_eq!(
                broker_config(broker_key).map(|d| d.mode),
                Some(Mode::Dynamic),
                "{broker_key}"
            );
        }
    }

    #[test]
    fn dynamic_keys_are_checked_by_type_and_range() {
        let check = |k: &str, v: &str| {
            validate_broker_configs(&BTreeMap::from([(k.to_string(), v.to_string())]))
                .map_err(|(c, _)| c)
        };
        let invalid_request = i32::from(ErrorCode::InvalidRequest.code());
        let invalid_config = i32::from(ErrorCode::InvalidConfig.code());
        assert_eq!(check("leader.replication.throttled.rate", "1000"), Ok(()));
        assert_eq!(
            check("leader.replication.throttled.rate", "fast"),
            Err(invalid_config)
        );
        assert_eq!(
            check("leader.replication.throttled.rate", "-5"),
            Err(invalid_config)
        );
        assert_eq!(check("log.segment.bytes", "10"), Err(invalid_config));
        assert_eq!(check("log.cleanup.policy", "compact,delete"), Ok(()));
        assert_eq!(check("log.cleanup.policy", "shred"), Err(invalid_config));
        assert_eq!(
            check("unclean.leader.election.enable", "maybe"),
            Err(invalid_config)
        );
        assert_eq!(check("node.id", "7"), Err(invalid_request), "read-only");
        assert_eq!(check("no.such.key", "1"), Err(invalid_request));
    }
}
