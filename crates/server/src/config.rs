//! Broker settings on top of the KRaft node configuration, with Kafka's keys and defaults.

use std::collections::BTreeMap;

use odradek_controller::config::{parse_listeners, ConfigError, Listener, NodeConfig};
use odradek_frontend::{FrontendConfig, ListenerInfo, SecurityProtocol};
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
    /// `log.flush.before.ack` (false): fsync every append before it is acknowledged (acks=1
    /// and acks=all) or reported to the leader by a follower, with one `fdatasync` per
    /// directory round for all appends that arrived meanwhile (a group commit). Beside it,
    /// `log.flush.interval.messages` / `log.flush.interval.ms` keep Kafka's meaning.
    pub flush_before_ack: bool,
    /// `max.incremental.fetch.session.cache.slots` (1000): incremental fetch sessions
    /// (KIP-227) the broker keeps; 0 serves every fetch without a session.
    pub fetch_session_cache_slots: usize,
    /// `broker.heartbeat.interval.ms` (2000).
    pub heartbeat_interval_ms: u64,
    /// `log.retention.check.interval.ms` (300000).
    pub retention_check_interval_ms: u64,
    /// `broker.rack`.
    pub rack: Option<String>,
    /// Broker-wide log defaults (`log.segment.bytes`, `log.retention.ms`/`hours`, ...), which
    /// topic configs override.
    pub log_defaults: LogConfig,
    /// `listener.security.protocol.map`: each listener's security protocol.
    pub security_protocols: BTreeMap<String, SecurityProtocol>,
    /// `quota.window.num` (11) and `quota.window.size.seconds` (1).
    pub quota_window: crate::quotas::QuotaWindow,
    /// `console.listener`: where the broker serves the web console over HTTP; none unless set.
    pub console_listener: Option<std::net::SocketAddr>,
    /// The authorizer (`authorizer.class.name`), if any.
    pub authorizer: Option<odradek_metadata::acl::AuthorizerConfig>,
    /// Each client listener's TLS and SASL settings, by upper-case listener name.
    pub listener_security: BTreeMap<String, crate::security::ListenerSecurityConfig>,
    /// `socket.request.max.bytes`, `queued.max.requests`, `queued.max.request.bytes`,
    /// `max.connections`.
    pub frontend: FrontendConfig,
    /// The group coordinator's settings.
    pub groups: GroupsConfig,
    /// The transaction coordinator's settings.
    pub transactions: TransactionsConfig,
    /// KIP-932 share groups: the share-partitions' and the share coordinator's settings.
    pub shares: SharesConfig,
    /// Follower replication and acks=all.
    pub replication: ReplicationConfig,
    /// `inter.broker.listener.name`: the listener followers fetch from (Kafka's default: the
    /// listener of `security.inter.broker.protocol`, PLAINTEXT; here the first client listener
    /// when none is named PLAINTEXT).
    pub inter_broker_listener: String,
    /// How this broker connects to the others on the inter-broker listener (TLS, SASL).
    pub inter_broker_security: odradek_client::ClientSecurity,
    /// The properties as given (file and overrides), for DescribeConfigs' static sources.
    pub properties: BTreeMap<String, String>,
}

/// Replication settings, with Kafka's keys and defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicationConfig {
    /// `min.insync.replicas` (1): the broker default for topics that do not set it.
    pub min_insync_replicas: usize,
    /// `replica.lag.time.max.ms` (30000).
    pub replica_lag_time_max_ms: i64,
    /// `replica.fetch.max.bytes` (1048576), per partition.
    pub replica_fetch_max_bytes: i32,
    /// `replica.fetch.response.max.bytes` (10485760).
    pub replica_fetch_response_max_bytes: i32,
    /// `replica.fetch.wait.max.ms` (500).
    pub replica_fetch_wait_max_ms: i32,
    /// `replica.fetch.min.bytes` (1).
    pub replica_fetch_min_bytes: i32,
    /// `replica.fetch.backoff.ms` (1000).
    pub replica_fetch_backoff_ms: u64,
    /// `replica.high.watermark.checkpoint.interval.ms` (5000).
    pub replica_high_watermark_checkpoint_interval_ms: u64,
    /// `num.replica.fetchers` (1): fetchers (connections) per source broker; a partition
    /// goes to fetcher `abs(31 * hash(topic) + partition) % n`, as in Kafka.
    pub num_replica_fetchers: i32,
    /// `replica.socket.receive.buffer.bytes` (65536; -1: the OS default) of the fetchers'
    /// sockets.
    pub replica_socket_receive_buffer_bytes: i32,
    /// `producer.id.expiration.ms` (86400000): a partition forgets an idempotent producer
    /// whose last batch is this old.
    pub producer_id_expiration_ms: i64,
    /// `producer.id.expiration.check.interval.ms` (600000).
    pub producer_id_expiration_check_interval_ms: u64,
}

impl ReplicationConfig {
    fn from_properties(p: &BTreeMap<String, String>) -> Result<Self, ConfigError> {
        let at_least = |key: &str, v: i64, min: i64| -> Result<i64, ConfigError> {
            if v < min {
                return Err(cfg_err(
                    key,
                    &v.to_string(),
                    &format!("must be at least {min}"),
                ));
            }
            Ok(v)
        };
        let num = |key: &str, default: i64, min: i64| -> Result<i64, ConfigError> {
            at_least(key, get_num(p, key, default)?, min)
        };
        let c = Self {
            min_insync_replicas: num("min.insync.replicas", 1, 1)? as usize,
            replica_lag_time_max_ms: num("replica.lag.time.max.ms", 30_000, 1)?,
            replica_fetch_max_bytes: num("replica.fetch.max.bytes", 1_048_576, 0)?
                .min(i64::from(i32::MAX)) as i32,
            replica_fetch_response_max_bytes: num(
                "replica.fetch.response.max.bytes",
                10_485_760,
                0,
            )?
            .min(i64::from(i32::MAX)) as i32,
            replica_fetch_wait_max_ms: num("replica.fetch.wait.max.ms", 500, 0)?
                .min(i64::from(i32::MAX)) as i32,
            replica_fetch_min_bytes: num("replica.fetch.min.bytes", 1, 1)?.min(i64::from(i32::MAX))
                as i32,
            replica_fetch_backoff_ms: num("replica.fetch.backoff.ms", 1000, 0)? as u64,
            replica_high_watermark_checkpoint_interval_ms: num(
                "replica.high.watermark.checkpoint.interval.ms",
                5000,
                1,
            )? as u64,
            num_replica_fetchers: num("num.replica.fetchers", 1, 1)?.min(i64::from(i32::MAX))
                as i32,
            replica_socket_receive_buffer_bytes: num(
                "replica.socket.receive.buffer.bytes",
                65_536,
                -1,
            )?
            .min(i64::from(i32::MAX)) as i32,
            producer_id_expiration_ms: num("producer.id.expiration.ms", 86_400_000, 1)?,
            producer_id_expiration_check_interval_ms: num(
                "producer.id.expiration.check.interval.ms",
                600_000,
                1,
            )? as u64,
        };
        // Kafka: the follower must fetch well within the lag bound, or it leaves the ISR.
        if i64::from(c.replica_fetch_wait_max_ms) > c.replica_lag_time_max_ms {
            return Err(cfg_err(
                "replica.fetch.wait.max.ms",
                &c.replica_fetch_wait_max_ms.to_string(),
                "must not exceed replica.lag.time.max.ms",
            ));
        }
        Ok(c)
    }
}

/// `offsets.topic.*`, `group.*` and `offset.metadata.max.bytes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupsConfig {
    /// `offsets.topic.num.partitions` (50).
    pub offsets_topic_partitions: i32,
    /// `offsets.topic.replication.factor` (3): `__consumer_offsets` is not created (and
    /// FindCoordinator answers COORDINATOR_NOT_AVAILABLE) until that many brokers are alive.
    pub offsets_topic_replication_factor: i32,
    /// `offsets.topic.segment.bytes` (104857600).
    pub offsets_topic_segment_bytes: i64,
    /// `offsets.retention.minutes` (10080, 7 days), in ms.
    pub offsets_retention_ms: i64,
    /// `offsets.retention.check.interval.ms` (600000).
    pub offsets_retention_check_interval_ms: i64,
    /// The state machine's settings (`group.initial.rebalance.delay.ms`,
    /// `group.min.session.timeout.ms`, `group.max.session.timeout.ms`, `group.max.size`,
    /// `offset.metadata.max.bytes`).
    pub coordinator: odradek_coordinator::GroupConfig,
    /// The bounds a group config may set the consumer and share groups' session timeouts and
    /// heartbeat intervals within (the broker's `.min`/`.max` settings), by group config name.
    pub group_config_bounds: BTreeMap<String, (i32, i32)>,
}

/// Bounds (min, max) by config name.
type Bounds = BTreeMap<String, (i32, i32)>;

/// The KIP-848 settings, each within its min and max (Kafka's defaults: session 45 s within
/// 45-60 s, heartbeat 5 s within 5-15 s and below the session timeout).
/// Also returns the bounds of each (by the name of the group config that overrides it, the key
/// without `group.`).
fn consumer_group_settings(
    p: &BTreeMap<String, String>,
    d: &odradek_coordinator::GroupConfig,
) -> Result<(odradek_coordinator::GroupConfig, Bounds), ConfigError> {
    let bounds = std::cell::RefCell::new(BTreeMap::new());
    let bounded = |key: &str, min_key: &str, max_key: &str, default: i32, min: i32, max: i32| {
        let (v, lo, hi): (i32, i32, i32) = (
            get_num(p, key, default)?,
            get_num(p, min_key, min)?,
            get_num(p, max_key, max)?,
        );
        if lo < 1 || lo > hi {
            return Err(cfg_err(
                min_key,
                &lo.to_string(),
                "must be at least 1 and at most the max",
            ));
        }
        if v < lo || v > hi {
            return Err(cfg_err(
                key,
                &v.to_string(),
                "must be within its .min and .max settings",
            ));
        }
        let group_key = key.strip_prefix("group.").unwrap_or(key).to_string();
        bounds.borrow_mut().insert(group_key, (lo, hi));
        Ok(v)
    };
    let session = bounded(
        "group.consumer.session.timeout.ms",
        "group.consumer.min.session.timeout.ms",
        "group.consumer.max.session.timeout.ms",
        d.consumer_session_timeout_ms,
        45_000,
        60_000,
    )?;
    let heartbeat = bounded(
        "group.consumer.heartbeat.interval.ms",
        "group.consumer.min.heartbeat.interval.ms",
        "group.consumer.max.heartbeat.interval.ms",
        d.consumer_heartbeat_interval_ms,
        5_000,
        15_000,
    )?;
    if heartbeat >= session {
        return Err(cfg_err(
            "group.consumer.heartbeat.interval.ms",
            &heartbeat.to_string(),
            "must be below group.consumer.session.timeout.ms",
        ));
    }
    let max_size: i64 = get_num(p, "group.consumer.max.size", i64::from(i32::MAX))?;
    if max_size < 1 {
        return Err(cfg_err(
            "group.consumer.max.size",
            &max_size.to_string(),
            "must be at least 1",
        ));
    }
    let assignors = match p.get("group.consumer.assignors") {
        None => d.consumer_assignors.clone(),
        Some(list) => {
            let names: Vec<&str> = list
                .split(',')
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .collect();
            let parsed: Option<Vec<_>> = names
                .iter()
                .map(|n| odradek_coordinator::ServerAssignor::from_name(n))
                .collect();
            match parsed {
                Some(a) if !a.is_empty() => a,
                _ => {
                    return Err(cfg_err(
                        "group.consumer.assignors",
                        list,
                        "must list one or more of uniform, range",
                    ))
                }
            }
        }
    };
    let migration = match p.get("group.consumer.migration.policy") {
        None => d.consumer_migration_policy,
        Some(v) => odradek_coordinator::MigrationPolicy::from_name(v.trim()).ok_or_else(|| {
            cfg_err(
                "group.consumer.migration.policy",
                v,
                "must be one of bidirectional, upgrade, downgrade, disabled",
            )
        })?,
    };
    let share_session = bounded(
        "group.share.session.timeout.ms",
        "group.share.min.session.timeout.ms",
        "group.share.max.session.timeout.ms",
        d.share_session_timeout_ms,
        45_000,
        60_000,
    )?;
    let share_heartbeat = bounded(
        "group.share.heartbeat.interval.ms",
        "group.share.min.heartbeat.interval.ms",
        "group.share.max.heartbeat.interval.ms",
        d.share_heartbeat_interval_ms,
        5_000,
        15_000,
    )?;
    if share_heartbeat >= share_session {
        return Err(cfg_err(
            "group.share.heartbeat.interval.ms",
            &share_heartbeat.to_string(),
            "must be below group.share.session.timeout.ms",
        ));
    }
    let share_max_size: i64 = get_num(p, "group.share.max.size", 200)?;
    let config = odradek_coordinator::GroupConfig {
        share_session_timeout_ms: share_session,
        share_heartbeat_interval_ms: share_heartbeat,
        share_max_size: share_max_size.clamp(1, 1000) as usize,
        consumer_session_timeout_ms: session,
        consumer_heartbeat_interval_ms: heartbeat,
        consumer_max_size: max_size as usize,
        consumer_assignors: assignors,
        consumer_migration_policy: migration,
        ..d.clone()
    };
    Ok((config, bounds.into_inner()))
}

impl GroupsConfig {
    fn from_properties(p: &BTreeMap<String, String>) -> Result<Self, ConfigError> {
        let positive = |key: &str, v: i64| -> Result<i64, ConfigError> {
            if v < 1 {
                return Err(cfg_err(key, &v.to_string(), "must be at least 1"));
            }
            Ok(v)
        };
        let d = odradek_coordinator::GroupConfig::default();
        let (kip848, group_config_bounds) = consumer_group_settings(p, &d)?;
        let coordinator = odradek_coordinator::GroupConfig {
            initial_rebalance_delay_ms: get_num(
                p,
                "group.initial.rebalance.delay.ms",
                d.initial_rebalance_delay_ms,
            )?
            .max(0),
            min_session_timeout_ms: get_num(
                p,
                "group.min.session.timeout.ms",
                d.min_session_timeout_ms,
            )?,
            max_session_timeout_ms: get_num(
                p,
                "group.max.session.timeout.ms",
                d.max_session_timeout_ms,
            )?,
            max_size: positive(
                "group.max.size",
                get_num(p, "group.max.size", i64::from(i32::MAX))?,
            )? as usize,
            offset_metadata_max_bytes: get_num(
                p,
                "offset.metadata.max.bytes",
                d.offset_metadata_max_bytes,
            )?,
            ..kip848
        };
        if coordinator.min_session_timeout_ms > coordinator.max_session_timeout_ms {
            return Err(cfg_err(
                "group.min.session.timeout.ms",
                &coordinator.min_session_timeout_ms.to_string(),
                "must not exceed group.max.session.timeout.ms",
            ));
        }
        Ok(Self {
            offsets_topic_partitions: positive(
                "offsets.topic.num.partitions",
                get_num(p, "offsets.topic.num.partitions", 50)?,
            )? as i32,
            offsets_topic_replication_factor: positive(
                "offsets.topic.replication.factor",
                get_num(p, "offsets.topic.replication.factor", 3)?,
            )? as i32,
            offsets_topic_segment_bytes: positive(
                "offsets.topic.segment.bytes",
                get_num(p, "offsets.topic.segment.bytes", 104_857_600)?,
            )?,
            offsets_retention_ms: positive(
                "offsets.retention.minutes",
                get_num(p, "offsets.retention.minutes", 10_080)?,
            )?
            .saturating_mul(60_000),
            offsets_retention_check_interval_ms: positive(
                "offsets.retention.check.interval.ms",
                get_num(p, "offsets.retention.check.interval.ms", 600_000)?,
            )?,
            coordinator,
            group_config_bounds,
        })
    }
}

/// `transaction.state.log.*` and the transaction coordinator's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionsConfig {
    /// `transaction.state.log.num.partitions` (50).
    pub state_log_partitions: i32,
    /// `transaction.state.log.replication.factor` (3): `__transaction_state` is not created
    /// (FindCoordinator answers COORDINATOR_NOT_AVAILABLE) until that many brokers are alive.
    pub state_log_replication_factor: i32,
    /// `transaction.state.log.min.isr` (2), the topic's `min.insync.replicas`.
    pub state_log_min_isr: i32,
    /// `transaction.state.log.segment.bytes` (104857600).
    pub state_log_segment_bytes: i64,
    /// `transaction.abort.timed.out.transaction.cleanup.interval.ms` (10000).
    pub abort_timed_out_interval_ms: u64,
    /// `transaction.max.timeout.ms` (900000) and `transactional.id.expiration.ms` (604800000).
    pub coordinator: odradek_coordinator::txn::TxnConfig,
}

/// `group.share.*` (the share-partitions on their leaders) and `share.coordinator.*` (the
/// share coordinator and `__share_group_state`); membership settings are in
/// [`GroupsConfig::coordinator`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharesConfig {
    /// `share.coordinator.state.topic.num.partitions` (50).
    pub state_topic_partitions: i32,
    /// `share.coordinator.state.topic.replication.factor` (3).
    pub state_topic_replication_factor: i32,
    /// `share.coordinator.state.topic.min.isr` (2).
    pub state_topic_min_isr: i32,
    /// `share.coordinator.snapshot.update.records.per.snapshot` (500).
    pub updates_per_snapshot: u32,
    /// `group.share.max.share.sessions` (2000).
    pub max_share_sessions: usize,
    /// `group.share.record.lock.duration.ms` (30000, within
    /// `group.share.min.record.lock.duration.ms` 15000 and `group.share.max.record.lock.duration.ms`
    /// 60000), `group.share.delivery.count.limit` (5, 2-10) and
    /// `group.share.partition.max.record.locks` (2000, 100-10000).
    pub partition: odradek_coordinator::share::ShareConfig,
    /// `group.share.min.record.lock.duration.ms` and `group.share.max.record.lock.duration.ms`:
    /// where a group's `share.record.lock.duration.ms` may be.
    pub lock_duration_bounds: (i64, i64),
}

impl SharesConfig {
    fn from_properties(p: &BTreeMap<String, String>) -> Result<Self, ConfigError> {
        let within = |key: &str, default: i64, lo: i64, hi: i64| -> Result<i64, ConfigError> {
            let v: i64 = get_num(p, key, default)?;
            if v < lo || v > hi {
                return Err(cfg_err(
                    key,
                    &v.to_string(),
                    &format!("must be between {lo} and {hi}"),
                ));
            }
            Ok(v)
        };
        let min_lock = within(
            "group.share.min.record.lock.duration.ms",
            15_000,
            1_000,
            30_000,
        )?;
        let max_lock = within(
            "group.share.max.record.lock.duration.ms",
            60_000,
            30_000,
            3_600_000,
        )?;
        let share_max_size = within("group.share.max.size", 200, 1, 1000)?;
        Ok(Self {
            state_topic_partitions: within(
                "share.coordinator.state.topic.num.partitions",
                50,
                1,
                i64::from(i32::MAX),
            )? as i32,
            state_topic_replication_factor: within(
                "share.coordinator.state.topic.replication.factor",
                3,
                1,
                i64::from(i16::MAX),
            )? as i32,
            state_topic_min_isr: within(
                "share.coordinator.state.topic.min.isr",
                2,
                1,
                i64::from(i16::MAX),
            )? as i32,
            updates_per_snapshot: within(
                "share.coordinator.snapshot.update.records.per.snapshot",
                500,
                0,
                500,
            )? as u32,
            max_share_sessions: within(
                "group.share.max.share.sessions",
                2000,
                share_max_size,
                100_000,
            )? as usize,
            partition: odradek_coordinator::share::ShareConfig {
                record_lock_duration_ms: within(
                    "group.share.record.lock.duration.ms",
                    30_000,
                    min_lock,
                    max_lock,
                )?,
                delivery_count_limit: within("group.share.delivery.count.limit", 5, 2, 10)? as i16,
                max_record_locks: within(
                    "group.share.partition.max.record.locks",
                    2000,
                    100,
                    10_000,
                )?,
            },
            lock_duration_bounds: (min_lock, max_lock),
        })
    }
}

impl TransactionsConfig {
    fn from_properties(p: &BTreeMap<String, String>) -> Result<Self, ConfigError> {
        let positive = |key: &str, default: i64| -> Result<i64, ConfigError> {
            let v = get_num(p, key, default)?;
            if v < 1 {
                return Err(cfg_err(key, &v.to_string(), "must be at least 1"));
            }
            Ok(v)
        };
        Ok(Self {
            state_log_partitions: positive("transaction.state.log.num.partitions", 50)?
                .min(i64::from(i32::MAX)) as i32,
            state_log_replication_factor: positive("transaction.state.log.replication.factor", 3)?
                .min(i64::from(i16::MAX)) as i32,
            state_log_min_isr: positive("transaction.state.log.min.isr", 2)?
                .min(i64::from(i16::MAX)) as i32,
            state_log_segment_bytes: positive("transaction.state.log.segment.bytes", 104_857_600)?,
            abort_timed_out_interval_ms: positive(
                "transaction.abort.timed.out.transaction.cleanup.interval.ms",
                10_000,
            )? as u64,
            coordinator: odradek_coordinator::txn::TxnConfig {
                max_timeout_ms: positive("transaction.max.timeout.ms", 900_000)?
                    .min(i64::from(i32::MAX)) as i32,
                id_expiration_ms: positive("transactional.id.expiration.ms", 604_800_000)?,
            },
        })
    }
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
        let security_protocols = security_protocol_map(props, &node)?;
        let inter_broker_listener = match props.get("inter.broker.listener.name") {
            Some(name) => {
                let name = name.trim().to_string();
                if !listeners.iter().any(|l| l.name.eq_ignore_ascii_case(&name)) {
                    return Err(cfg_err(
                        "inter.broker.listener.name",
                        &name,
                        "must name one of the client listeners in listeners",
                    ));
                }
                name
            }
            None => listeners
                .iter()
                .find(|l| l.name.eq_ignore_ascii_case("PLAINTEXT"))
                .or(listeners.first())
                .map(|l| l.name.clone())
                .unwrap_or_default(),
        };
        for l in listeners.iter().chain(&advertised) {
            if !security_protocols.contains_key(&l.name.to_ascii_uppercase()) {
                {
                    return Err(cfg_err(
                        "listener.security.protocol.map",
                        props
                            .get("listener.security.protocol.map")
                            .map_or("", |s| s.as_str()),
                        &format!("no security protocol for listener {}", l.name),
                    ));
                }
            }
        }
        let mut listener_security = BTreeMap::new();
        let mut inter_broker_security = odradek_client::ClientSecurity::plaintext();
        for l in &listeners {
            let protocol = security_protocols[&l.name.to_ascii_uppercase()];
            if l.name.eq_ignore_ascii_case(&inter_broker_listener) {
                inter_broker_security =
                    crate::security::config::inter_broker_security(props, &l.name, protocol)?;
            }
            listener_security.insert(
                l.name.to_ascii_uppercase(),
                crate::security::listener_security(props, &l.name, protocol)?,
            );
        }
        let socket_request_max_bytes =
            get_num(props, "socket.request.max.bytes", 100 * 1024 * 1024)?;
        let max_connections = get_num(
            props,
            "max.connections",
            FrontendConfig::default().max_connections,
        )?;
        let frontend = FrontendConfig {
            socket_request_max_bytes,
            queued_max_requests: get_num(props, "queued.max.requests", 500)?,
            queued_max_request_bytes: match get_num::<i64>(props, "queued.max.request.bytes", -1)? {
                // Kafka: <= 0 is unbounded; here it means the default bound.
                v if v <= 0 => {
                    FrontendConfig::default_queued_bytes(socket_request_max_bytes, max_connections)
                }
                v => usize::try_from(v).unwrap_or(usize::MAX),
            },
            max_connections,
            connections_max_idle_ms: get_num(props, "connections.max.idle.ms", 600_000)?,
        };
        if let Err(e) = frontend.validate() {
            return Err(cfg_err(e.key, &e.value, e.reason));
        }
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
        let flush_before_ack = match props.get("log.flush.before.ack").map(|s| s.trim()) {
            None | Some("false") => false,
            Some("true") => true,
            Some(v) => return Err(cfg_err("log.flush.before.ack", v, "must be true or false")),
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
                // Security keys are read per listener (with `listener.name.<l>.` prefixes).
                !k.starts_with("log.")
                    && !k.starts_with("ssl.")
                    && !k.starts_with("sasl.")
                    && !k.starts_with("listener.name.")
                    && k != "message.max.bytes"
                    && !KNOWN.contains(&k.as_str())
            })
            .collect();
        Ok((
            BrokerConfig {
                listeners,
                advertised,
                auto_create_topics,
                flush_before_ack,
                fetch_session_cache_slots: get_num(
                    props,
                    "max.incremental.fetch.session.cache.slots",
                    crate::fetch_session::DEFAULT_CACHE_SLOTS,
                )?,
                heartbeat_interval_ms: get_num(props, "broker.heartbeat.interval.ms", 2000)?,
                retention_check_interval_ms: get_num(
                    props,
                    "log.retention.check.interval.ms",
                    300_000,
                )?,
                rack: props.get("broker.rack").cloned(),
                log_defaults,
                security_protocols,
                listener_security,
                authorizer: crate::security::config::authorizer_config(props)?,
                quota_window: crate::quotas::QuotaWindow {
                    samples: get_num::<usize>(props, "quota.window.num", 11)?.max(1),
                    sample_ms: get_num::<i64>(props, "quota.window.size.seconds", 1)?.max(1) * 1000,
                },
                console_listener: odradek_controller::config::http_listener(
                    props,
                    "console.listener",
                )?,
                frontend,
                groups: GroupsConfig::from_properties(props)?,
                transactions: TransactionsConfig::from_properties(props)?,
                shares: SharesConfig::from_properties(props)?,
                replication: ReplicationConfig::from_properties(props)?,
                inter_broker_listener,
                inter_broker_security,
                properties: props.clone(),
                node,
            },
            unknown,
        ))
    }
}

const KNOWN: &[&str] = &[
    "console.listener",
    "log.flush.before.ack",
    "max.incremental.fetch.session.cache.slots",
    "authorizer.class.name",
    "super.users",
    "allow.everyone.if.no.acl.found",
    "connections.max.reauth.ms",
    "connection.failed.authentication.delay.ms",
    "quota.window.num",
    "quota.window.size.seconds",
    "transaction.state.log.num.partitions",
    "transaction.state.log.replication.factor",
    "transaction.state.log.min.isr",
    "transaction.state.log.segment.bytes",
    "transaction.abort.timed.out.transaction.cleanup.interval.ms",
    "transaction.max.timeout.ms",
    "transactional.id.expiration.ms",
    "offsets.topic.num.partitions",
    "offsets.topic.replication.factor",
    "offsets.topic.segment.bytes",
    "offsets.retention.minutes",
    "offsets.retention.check.interval.ms",
    "group.initial.rebalance.delay.ms",
    "group.min.session.timeout.ms",
    "group.max.session.timeout.ms",
    "group.max.size",
    "group.consumer.session.timeout.ms",
    "group.consumer.min.session.timeout.ms",
    "group.consumer.max.session.timeout.ms",
    "group.consumer.heartbeat.interval.ms",
    "group.consumer.min.heartbeat.interval.ms",
    "group.consumer.max.heartbeat.interval.ms",
    "group.consumer.max.size",
    "group.consumer.assignors",
    "group.consumer.migration.policy",
    "group.share.session.timeout.ms",
    "group.share.min.session.timeout.ms",
    "group.share.max.session.timeout.ms",
    "group.share.heartbeat.interval.ms",
    "group.share.min.heartbeat.interval.ms",
    "group.share.max.heartbeat.interval.ms",
    "group.share.max.size",
    "group.share.record.lock.duration.ms",
    "group.share.min.record.lock.duration.ms",
    "group.share.max.record.lock.duration.ms",
    "group.share.delivery.count.limit",
    "group.share.partition.max.record.locks",
    "group.share.max.share.sessions",
    "share.coordinator.state.topic.num.partitions",
    "share.coordinator.state.topic.replication.factor",
    "share.coordinator.state.topic.min.isr",
    "share.coordinator.snapshot.update.records.per.snapshot",
    "offset.metadata.max.bytes",
    "queued.max.requests",
    "broker.heartbeat.interval.ms",
    "max.connections",
    "socket.request.max.bytes",
    "queued.max.request.bytes",
    "connections.max.idle.ms",
    "min.insync.replicas",
    "replica.lag.time.max.ms",
    "replica.fetch.max.bytes",
    "replica.fetch.response.max.bytes",
    "replica.fetch.wait.max.ms",
    "replica.fetch.min.bytes",
    "replica.fetch.backoff.ms",
    "replica.high.watermark.checkpoint.interval.ms",
    "num.replica.fetchers",
    "replica.socket.receive.buffer.bytes",
    "producer.id.expiration.ms",
    "producer.id.expiration.check.interval.ms",
];

impl BrokerConfig {
    /// The security protocol of the listener named `name`.
    pub fn security_protocol(&self, name: &str) -> SecurityProtocol {
        self.security_protocols
            .get(&name.to_ascii_uppercase())
            .copied()
            .unwrap_or(SecurityProtocol::Plaintext)
    }

    /// The client listeners with their security protocols, as the frontend serves them.
    pub fn listener_infos(&self) -> Vec<(Listener, ListenerInfo)> {
        self.listeners
            .iter()
            .map(|l| {
                let security_protocol = self.security_protocol(&l.name);
                (
                    l.clone(),
                    ListenerInfo {
                        name: l.name.clone(),
                        security_protocol,
                    },
                )
            })
            .collect()
    }
}

/// `listener.security.protocol.map` (`NAME:PROTOCOL,...`). Kafka's default maps each protocol
/// name to itself; when the key is not set, the controller listener is PLAINTEXT too.
fn security_protocol_map(
    props: &BTreeMap<String, String>,
    node: &NodeConfig,
) -> Result<BTreeMap<String, SecurityProtocol>, ConfigError> {
    const KEY: &str = "listener.security.protocol.map";
    let Some(raw) = props.get(KEY) else {
        let mut map: BTreeMap<String, SecurityProtocol> = [
            SecurityProtocol::Plaintext,
            SecurityProtocol::Ssl,
            SecurityProtocol::SaslPlaintext,
            SecurityProtocol::SaslSsl,
        ]
        .into_iter()
        .map(|p| (p.name().to_string(), p))
        .collect();
        map.entry(node.controller_listener_name.to_ascii_uppercase())
            .or_insert(SecurityProtocol::Plaintext);
        return Ok(map);
    };
    let mut map = BTreeMap::new();
    for entry in raw.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (name, protocol) = entry
            .split_once(':')
            .ok_or_else(|| cfg_err(KEY, raw, &format!("{entry:?} is not NAME:PROTOCOL")))?;
        let protocol: SecurityProtocol =
            protocol
                .parse()
                .map_err(|e: odradek_frontend::UnknownSecurityProtocol| {
                    cfg_err(KEY, raw, &e.to_string())
                })?;
        // Listener names are case-insensitive, as Kafka's (normalised to upper case).
        if map
            .insert(name.trim().to_ascii_uppercase(), protocol)
            .is_some()
        {
            return Err(cfg_err(KEY, raw, &format!("listener {name} appears twice")));
        }
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(extra: &[(&str, &str)]) -> BTreeMap<String, String> {
        let mut p: BTreeMap<String, String> = [
            ("node.id", "1"),
            ("process.roles", "broker,controller"),
            ("controller.quorum.voters", "1@127.0.0.1:9093"),
            (
                "listeners",
                "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093",
            ),
            ("controller.listener.names", "CONTROLLER"),
            ("log.dirs", "/tmp/odradek-config-test"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        for (k, v) in extra {
            p.insert(k.to_string(), v.to_string());
        }
        p
    }

    #[test]
    fn group_settings_have_kafka_defaults() {
        let (c, unknown) = BrokerConfig::from_properties(&props(&[])).expect("valid");
        assert!(unknown.is_empty(), "{unknown:?}");
        let g = &c.groups;
        assert_eq!(
            (
                g.offsets_topic_partitions,
                g.offsets_topic_replication_factor,
                g.offsets_retention_ms
            ),
            (50, 3, 7 * 24 * 3_600_000)
        );
        assert_eq!(g.coordinator.initial_rebalance_delay_ms, 3000);
        assert_eq!(g.coordinator.min_session_timeout_ms, 6000);
        assert_eq!(g.coordinator.offset_metadata_max_bytes, 4096);
    }

    #[test]
    fn replication_settings_have_kafka_defaults_and_name_their_key() {
        let (c, _) = BrokerConfig::from_properties(&props(&[])).expect("valid");
        let r = &c.replication;
        assert_eq!(
            (
                r.min_insync_replicas,
                r.replica_lag_time_max_ms,
                r.replica_fetch_max_bytes,
                r.replica_fetch_wait_max_ms,
                r.num_replica_fetchers,
                r.replica_socket_receive_buffer_bytes
            ),
            (1, 30_000, 1_048_576, 500, 1, 65_536)
        );
        let (c, _) = BrokerConfig::from_properties(&props(&[
            ("num.replica.fetchers", "4"),
            ("replica.socket.receive.buffer.bytes", "-1"),
        ]))
        .expect("valid");
        assert_eq!(c.replication.num_replica_fetchers, 4);
        assert_eq!(c.replication.replica_socket_receive_buffer_bytes, -1);
        for (key, value) in [
            ("num.replica.fetchers", "0"),
            ("replica.socket.receive.buffer.bytes", "-2"),
            ("replica.fetch.wait.max.ms", "40000"),
            ("min.insync.replicas", "none"),
        ] {
            let err = BrokerConfig::from_properties(&props(&[(key, value)])).expect_err("refused");
            assert_eq!(err.key, key, "{err}");
        }
    }

    #[test]
    fn wrong_group_settings_name_their_key() {
        for (key, value) in [
            ("offsets.topic.num.partitions", "0"),
            ("offsets.topic.replication.factor", "many"),
            ("offsets.retention.minutes", "-5"),
            ("group.min.session.timeout.ms", "2000000"),
            ("group.consumer.session.timeout.ms", "1000"),
            ("group.consumer.heartbeat.interval.ms", "50000"),
            ("group.consumer.max.size", "0"),
            ("group.consumer.assignors", "sticky"),
            ("group.consumer.migration.policy", "sideways"),
            ("group.consumer.min.session.timeout.ms", "90000"),
            ("group.share.session.timeout.ms", "1000"),
            ("group.share.delivery.count.limit", "1"),
            ("group.share.record.lock.duration.ms", "500"),
            ("group.share.partition.max.record.locks", "50"),
            ("share.coordinator.state.topic.num.partitions", "0"),
        ] {
            let err = BrokerConfig::from_properties(&props(&[(key, value)])).expect_err("refused");
            assert_eq!(err.key, key, "{err}");
        }
    }

    #[test]
    fn listeners_get_their_security_protocols() {
        let (c, _) = BrokerConfig::from_properties(&props(&[
            (
                "listeners",
                "PLAINTEXT://127.0.0.1:9092,INTERNAL://127.0.0.1:9094,CONTROLLER://127.0.0.1:9093",
            ),
            (
                "listener.security.protocol.map",
                "PLAINTEXT:PLAINTEXT,INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT",
            ),
        ]))
        .expect("valid");
        let names: Vec<String> = c
            .listener_infos()
            .into_iter()
            .map(|(_, i)| i.name)
            .collect();
        assert_eq!(names, ["PLAINTEXT", "INTERNAL"]);
        // Followers fetch over PLAINTEXT only so far.
        let err = BrokerConfig::from_properties(&props(&[(
            "listener.security.protocol.map",
            "PLAINTEXT:SSL,CONTROLLER:PLAINTEXT",
        )]))
        .expect_err("refused");
        assert_eq!(err.key, "inter.broker.listener.name", "{err}");
        // A listener without a protocol, a malformed map.
        for extra in [
            vec![(
                "listeners",
                "PLAINTEXT://:9092,INTERNAL://:9094,CONTROLLER://:9093",
            )],
            vec![("listener.security.protocol.map", "PLAINTEXT")],
        ] {
            let err = BrokerConfig::from_properties(&props(&extra)).expect_err("refused");
            assert_eq!(err.key, "listener.security.protocol.map", "{err}");
        }
    }

    #[test]
    fn frontend_bounds_are_validated_naming_the_key() {
        let (c, _) = BrokerConfig::from_properties(&props(&[])).expect("valid");
        assert_eq!(c.frontend, FrontendConfig::default());
        // Kafka's unbounded (<= 0) is the default bound, grown to fit a larger request bound.
        let (c, _) = BrokerConfig::from_properties(&props(&[
            ("queued.max.request.bytes", "0"),
            ("socket.request.max.bytes", "1073741824"),
        ]))
        .expect("valid");
        assert!(c.frontend.queued_max_request_bytes > 1 << 30);
        for (key, value) in [
            ("queued.max.request.bytes", "1000"),
            ("queued.max.request.bytes", "104857600"),
            ("queued.max.requests", "0"),
            ("socket.request.max.bytes", "lots"),
        ] {
            let err = BrokerConfig::from_properties(&props(&[(key, value)])).expect_err("refused");
            assert_eq!(err.key, key, "{err}");
        }
    }
}
