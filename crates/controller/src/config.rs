//! A KRaft node's configuration, from `server.properties` with Kafka's key names and defaults.
//! Two layers: the parsed key/value map, then [`NodeConfig::from_properties`], which validates and
//! fails fast with a message naming the key. Unknown keys are returned for a warning.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;

use crate::managers::ControllerSettings;

/// A configuration value that is missing or wrong; names the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration {key}={value:?}: {reason}")]
pub struct ConfigError {
    /// The key.
    pub key: String,
    /// The value given ("" when missing).
    pub value: String,
    /// What is wrong.
    pub reason: String,
}

fn cfg_err(key: &str, value: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        key: key.into(),
        value: value.into(),
        reason: reason.into(),
    }
}

/// The roles a node plays (`process.roles`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Roles {
    /// Serves clients and holds partitions.
    pub broker: bool,
    /// Votes in the controller quorum.
    pub controller: bool,
}

/// A listener from `listeners`: `NAME://host:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    /// Listener name.
    pub name: String,
    /// Host to bind ("" or 0.0.0.0 for all).
    pub host: String,
    /// Port.
    pub port: u16,
}

impl Listener {
    /// The address to bind: an empty host means every interface, `localhost` the loopback.
    pub fn bind_addr(&self) -> Option<SocketAddr> {
        let host = match self.host.as_str() {
            "" => "0.0.0.0",
            "localhost" => "127.0.0.1",
            h => h,
        };
        format!("{host}:{}", self.port)
            .parse()
            .ok()
            .or_else(|| format!("[{host}]:{}", self.port).parse().ok())
    }
}

/// The controller listener's TLS, when `listener.security.protocol.map` makes it SSL: the key
/// store (PEM key and certificate chain) and trust store of `listener.name.<l>.ssl.*` or
/// `ssl.*`; `ssl.client.auth=required` makes controllers check their peers' certificates.
fn control_tls(
    props: &BTreeMap<String, String>,
    listener: &str,
) -> Result<Option<odradek_quorum::ControlTls>, ConfigError> {
    const MAP: &str = "listener.security.protocol.map";
    // Kafka's default map names each protocol after itself (and a CONTROLLER listener
    // PLAINTEXT); with an explicit map, a listener missing from it is an error.
    let protocol = match props.get(MAP) {
        Some(m) => m
            .split(',')
            .find_map(|e| {
                let (n, p) = e.split_once(':')?;
                n.trim()
                    .eq_ignore_ascii_case(listener)
                    .then(|| p.trim().to_ascii_uppercase())
            })
            .ok_or_else(|| {
                cfg_err(
                    MAP,
                    m,
                    format!("no security protocol for the controller listener {listener}"),
                )
            })?,
        None => match listener.to_ascii_uppercase().as_str() {
            p @ ("SSL" | "SASL_SSL" | "SASL_PLAINTEXT") => p.to_string(),
            _ => "PLAINTEXT".into(),
        },
    };
    match protocol.as_str() {
        "PLAINTEXT" => return Ok(None),
        "SSL" => {}
        p => {
            return Err(cfg_err(
                MAP,
                &format!("{listener}:{p}"),
                "the controller listener speaks gRPC: PLAINTEXT or SSL (SASL is not served there)",
            ))
        }
    }
    let prefix = format!("listener.name.{}.", listener.to_ascii_lowercase());
    let get = |k: &str| {
        let scoped = format!("{prefix}{k}");
        props
            .get(&scoped)
            .map(|v| (scoped, v.clone()))
            .or_else(|| props.get(k).map(|v| (k.to_string(), v.clone())))
    };
    let read = |k: &str, inline: &str| -> Result<Option<String>, ConfigError> {
        match get(k) {
            Some((key, path)) => std::fs::read_to_string(path.trim())
                .map(Some)
                .map_err(|e| cfg_err(&key, &path, format!("cannot read the file: {e}"))),
            None => Ok(get(inline).map(|(_, v)| v)),
        }
    };
    let keystore =
        read("ssl.keystore.location", "ssl.keystore.certificate.chain")?.ok_or_else(|| {
            cfg_err(
                &format!("{prefix}ssl.keystore.location"),
                "",
                "the controller listener is SSL and needs a PEM key store",
            )
        })?;
    let key = get("ssl.keystore.key").map_or_else(|| keystore.clone(), |(_, v)| v);
    let ca_pem =
        read("ssl.truststore.location", "ssl.truststore.certificates")?.ok_or_else(|| {
            cfg_err(
                &format!("{prefix}ssl.truststore.location"),
                "",
                "the controller listener is SSL and needs a PEM trust store",
            )
        })?;
    let require_client_auth =
        get("ssl.client.auth").is_some_and(|(_, v)| v.trim().eq_ignore_ascii_case("required"));
    Ok(Some(odradek_quorum::ControlTls {
        ca_pem,
        identity: (keystore, key),
        require_client_auth,
    }))
}

/// The validated node configuration (the keys the controller and storage tool need).
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// `node.id`.
    pub node_id: i32,
    /// `process.roles`.
    pub roles: Roles,
    /// `controller.quorum.voters`: id -> host:port.
    pub voters: BTreeMap<u64, String>,
    /// `listeners`.
    pub listeners: Vec<Listener>,
    /// `controller.listener.names` (first one is used).
    pub controller_listener_name: String,
    /// `log.dirs` (or `log.dir`).
    pub log_dirs: Vec<PathBuf>,
    /// `metadata.log.dir`, defaulting to the first log dir.
    pub metadata_log_dir: PathBuf,
    /// `controller.quorum.election.timeout.ms` (1000).
    pub election_timeout_ms: u64,
    /// `metadata.log.max.record.bytes.between.snapshots` (20 MiB): a snapshot of the metadata
    /// is taken, and the log before it dropped, after this many bytes of records.
    pub max_record_bytes_between_snapshots: u64,
    /// Settings for the control managers.
    pub settings: ControllerSettings,
    /// TLS on the controller listener (its protocol in `listener.security.protocol.map` is
    /// SSL), for the controllers' Raft and the brokers' calls alike.
    pub control_tls: Option<odradek_quorum::ControlTls>,
    /// `metrics.listener`: where the node serves Prometheus metrics over HTTP (`/metrics`);
    /// none unless set.
    pub metrics_listener: Option<std::net::SocketAddr>,
}

/// An HTTP listener setting (`metrics.listener`, `console.listener`): `http://host:port` or
/// `host:port`, the host a name or an address. Empty or unset: none.
pub fn http_listener(
    props: &BTreeMap<String, String>,
    key: &str,
) -> Result<Option<std::net::SocketAddr>, ConfigError> {
    use std::net::ToSocketAddrs;
    let Some(raw) = props.get(key).map(|v| v.trim()).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    if raw.starts_with("https://") {
        return Err(cfg_err(
            key,
            raw,
            "HTTPS is not served; use http://host:port",
        ));
    }
    let hostport = raw
        .strip_prefix("http://")
        .unwrap_or(raw)
        .trim_end_matches('/');
    if hostport.contains('/') {
        return Err(cfg_err(
            key,
            raw,
            "expected http://host:port, without a path",
        ));
    }
    hostport
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .map(Some)
        .ok_or_else(|| cfg_err(key, raw, "expected http://host:port with a resolvable host"))
}

const KNOWN: &[&str] = &[
    "node.id",
    "process.roles",
    "controller.quorum.voters",
    "listeners",
    "advertised.listeners",
    "listener.security.protocol.map",
    "controller.listener.names",
    "inter.broker.listener.name",
    "log.dirs",
    "log.dir",
    "metadata.log.dir",
    "controller.quorum.election.timeout.ms",
    "metadata.log.max.record.bytes.between.snapshots",
    "num.partitions",
    "default.replication.factor",
    "unclean.leader.election.enable",
    "auto.leader.rebalance.enable",
    "leader.imbalance.check.interval.seconds",
    "leader.imbalance.per.broker.percentage",
    "broker.session.timeout.ms",
    "broker.heartbeat.interval.ms",
    "auto.create.topics.enable",
    "min.insync.replicas",
    "offsets.topic.replication.factor",
    "offsets.topic.num.partitions",
    "transaction.state.log.replication.factor",
    "transaction.state.log.min.isr",
    "log.retention.hours",
    "log.retention.ms",
    "log.retention.bytes",
    "log.segment.bytes",
    "log.retention.check.interval.ms",
    "num.network.threads",
    "num.io.threads",
    "socket.request.max.bytes",
    "socket.send.buffer.bytes",
    "socket.receive.buffer.bytes",
    "num.recovery.threads.per.data.dir",
    "group.initial.rebalance.delay.ms",
    "broker.rack",
    "metrics.listener",
];

fn int<T: std::str::FromStr>(
    props: &BTreeMap<String, String>,
    key: &str,
    default: T,
) -> Result<T, ConfigError> {
    match props.get(key) {
        None => Ok(default),
        Some(v) => v
            .trim()
            .parse()
            .map_err(|_| cfg_err(key, v, "not a whole number in range")),
    }
}

fn boolean(
    props: &BTreeMap<String, String>,
    key: &str,
    default: bool,
) -> Result<bool, ConfigError> {
    match props.get(key).map(|v| v.trim()) {
        None => Ok(default),
        Some("true") => Ok(true),
        Some("false") => Ok(false),
        Some(v) => Err(cfg_err(key, v, "must be true or false")),
    }
}

/// Parses `listeners`.
pub fn parse_listeners(key: &str, value: &str) -> Result<Vec<Listener>, ConfigError> {
    let mut out = Vec::new();
    let mut names = BTreeSet::new();
    for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, addr) = part
            .split_once("://")
            .ok_or_else(|| cfg_err(key, value, format!("{part:?} is not NAME://host:port")))?;
        let (host, port) = addr
            .rsplit_once(':')
            .ok_or_else(|| cfg_err(key, value, format!("{part:?} has no port")))?;
        let port: u16 = port
            .parse()
            .map_err(|_| cfg_err(key, value, format!("{port:?} is not a port")))?;
        if !names.insert(name.to_string()) {
            return Err(cfg_err(
                key,
                value,
                format!("listener {name} appears twice"),
            ));
        }
        out.push(Listener {
            name: name.into(),
            host: host.trim_matches(['[', ']']).into(),
            port,
        });
    }
    Ok(out)
}

impl NodeConfig {
    /// Validates the properties; also returns the keys it does not know.
    pub fn from_properties(
        props: &BTreeMap<String, String>,
    ) -> Result<(NodeConfig, Vec<String>), ConfigError> {
        let get = |k: &str| props.get(k).map(|v| v.trim().to_string());
        let node_id_raw = get("node.id").ok_or_else(|| cfg_err("node.id", "", "is required"))?;
        let node_id: i32 = node_id_raw
            .parse()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| {
                cfg_err(
                    "node.id",
                    &node_id_raw,
                    "must be a non-negative whole number",
                )
            })?;
        let roles_raw = get("process.roles").ok_or_else(|| {
            cfg_err(
                "process.roles",
                "",
                "is required (broker, controller, or both)",
            )
        })?;
        let mut roles = Roles {
            broker: false,
            controller: false,
        };
        for r in roles_raw
            .split(',')
            .map(str::trim)
            .filter(|r| !r.is_empty())
        {
            match r {
                "broker" => roles.broker = true,
                "controller" => roles.controller = true,
                _ => {
                    return Err(cfg_err(
                        "process.roles",
                        &roles_raw,
                        format!("unknown role {r:?}"),
                    ))
                }
            }
        }
        if !roles.broker && !roles.controller {
            return Err(cfg_err(
                "process.roles",
                &roles_raw,
                "needs broker and/or controller",
            ));
        }
        let voters_raw = get("controller.quorum.voters")
            .ok_or_else(|| cfg_err("controller.quorum.voters", "", "is required"))?;
        let voters = odradek_quorum::parse_voters(&voters_raw)
            .map_err(|e| cfg_err("controller.quorum.voters", &voters_raw, e.to_string()))?;
        let listeners_raw = get("listeners").unwrap_or_default();
        let listeners = parse_listeners("listeners", &listeners_raw)?;
        let controller_listener_name = get("controller.listener.names")
            .and_then(|v| v.split(',').next().map(|s| s.trim().to_string()))
            .unwrap_or_else(|| "CONTROLLER".into());
        if roles.controller && !listeners.iter().any(|l| l.name == controller_listener_name) {
            return Err(cfg_err("listeners", &listeners_raw, format!("a controller needs a listener named {controller_listener_name} (controller.listener.names)")));
        }
        let dirs_raw = get("log.dirs")
            .or_else(|| get("log.dir"))
            .unwrap_or_else(|| "/tmp/kraft-combined-logs".into());
        let log_dirs: Vec<PathBuf> = dirs_raw
            .split(',')
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .collect();
        if log_dirs.is_empty() {
            return Err(cfg_err(
                "log.dirs",
                &dirs_raw,
                "needs at least one directory",
            ));
        }
        let metadata_log_dir = get("metadata.log.dir")
            .map(PathBuf::from)
            .unwrap_or_else(|| log_dirs[0].clone());
        let election_timeout_ms: u64 = int(props, "controller.quorum.election.timeout.ms", 1000)?;
        let snapshot_key = "metadata.log.max.record.bytes.between.snapshots";
        let max_record_bytes_between_snapshots: u64 = int(
            props,
            snapshot_key,
            odradek_quorum::DEFAULT_SNAPSHOT_INTERVAL_BYTES,
        )?;
        if max_record_bytes_between_snapshots == 0 {
            return Err(cfg_err(snapshot_key, "0", "must be at least 1"));
        }
        if election_timeout_ms < 100 {
            return Err(cfg_err(
                "controller.quorum.election.timeout.ms",
                &election_timeout_ms.to_string(),
                "must be at least 100",
            ));
        }
        let num_partitions: i32 = int(props, "num.partitions", 1)?;
        if num_partitions < 1 {
            return Err(cfg_err(
                "num.partitions",
                &num_partitions.to_string(),
                "must be at least 1",
            ));
        }
        let default_replication_factor: i16 = int(props, "default.replication.factor", 1)?;
        if default_replication_factor < 1 {
            return Err(cfg_err(
                "default.replication.factor",
                &default_replication_factor.to_string(),
                "must be at least 1",
            ));
        }
        let unclean = boolean(props, "unclean.leader.election.enable", false)?;
        let auto_leader_rebalance_enable = boolean(props, "auto.leader.rebalance.enable", true)?;
        let leader_imbalance_check_interval_seconds: u64 =
            int(props, "leader.imbalance.check.interval.seconds", 300)?;
        if leader_imbalance_check_interval_seconds < 1 {
            return Err(cfg_err(
                "leader.imbalance.check.interval.seconds",
                "0",
                "must be at least 1",
            ));
        }
        let leader_imbalance_per_broker_percentage: u32 =
            int(props, "leader.imbalance.per.broker.percentage", 10)?;
        if leader_imbalance_per_broker_percentage > 100 {
            return Err(cfg_err(
                "leader.imbalance.per.broker.percentage",
                &leader_imbalance_per_broker_percentage.to_string(),
                "must be between 0 and 100",
            ));
        }
        let session_timeout: i64 = int(props, "broker.session.timeout.ms", 9000)?;
        if session_timeout < 1 {
            return Err(cfg_err(
                "broker.session.timeout.ms",
                &session_timeout.to_string(),
                "must be positive",
            ));
        }
        let control_tls = control_tls(props, &controller_listener_name)?;
        let metrics_listener = http_listener(props, "metrics.listener")?;
        let unknown = props
            .keys()
            .filter(|k| {
                // Security keys are read per listener (with `listener.name.<l>.` prefixes).
                !KNOWN.contains(&k.as_str())
                    && !k.starts_with("ssl.")
                    && !k.starts_with("sasl.")
                    && !k.starts_with("listener.name.")
            })
            .cloned()
            .collect();
        Ok((
            NodeConfig {
                node_id,
                roles,
                voters,
                listeners,
                controller_listener_name,
                log_dirs,
                metadata_log_dir,
                election_timeout_ms,
                max_record_bytes_between_snapshots,
                control_tls,
                metrics_listener,
                settings: ControllerSettings {
                    cluster_id: String::new(),
                    num_partitions,
                    default_replication_factor,
                    unclean_leader_election_enable: unclean,
                    broker_session_timeout_ms: session_timeout,
                    producer_id_block_size: 1000,
                    auto_leader_rebalance_enable,
                    leader_imbalance_check_interval_seconds,
                    leader_imbalance_per_broker_percentage,
                },
            },
            unknown,
        ))
    }

    /// Where the controller listener binds.
    pub fn controller_addr(&self) -> Option<SocketAddr> {
        self.listeners
            .iter()
            .find(|l| l.name == self.controller_listener_name)?
            .bind_addr()
    }

    /// The quorum store directory.
    pub fn quorum_dir(&self) -> PathBuf {
        self.metadata_log_dir.join("__cluster_metadata-0")
    }
}

/// Reads a properties file and applies `--override key=value` arguments on top.
pub fn load_properties(
    path: &std::path::Path,
    overrides: &[String],
) -> Result<BTreeMap<String, String>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        cfg_err(
            "-c",
            &path.display().to_string(),
            format!("cannot read the file: {e}"),
        )
    })?;
    let mut props = odradek_common::parse_properties(&text);
    for o in overrides {
        let (k, v) = o
            .split_once('=')
            .ok_or_else(|| cfg_err("--override", o, "expected key=value"))?;
        props.insert(k.trim().to_string(), v.trim().to_string());
    }
    Ok(props)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(text: &str) -> BTreeMap<String, String> {
        odradek_common::parse_properties(text)
    }

    const GOOD: &str =
        "node.id=1\nprocess.roles=controller\ncontroller.quorum.voters=1@127.0.0.1:9093\n\
                        listeners=CONTROLLER://127.0.0.1:9093\nlog.dirs=/tmp/x\n";

    #[test]
    fn defaults_follow_kafka() {
        let (c, unknown) = NodeConfig::from_properties(&props(GOOD)).expect("valid");
        assert_eq!(c.settings.num_partitions, 1);
        assert_eq!(c.settings.broker_session_timeout_ms, 9000);
        assert!(!c.settings.unclean_leader_election_enable);
        assert_eq!(c.metadata_log_dir, PathBuf::from("/tmp/x"));
        assert_eq!(
            c.controller_addr(),
            Some("127.0.0.1:9093".parse().expect("addr"))
        );
        assert!(unknown.is_empty());
    }

    #[test]
    fn errors_name_the_key() {
        for (edit, key) in [
            ("node.id=x", "node.id"),
            ("process.roles=chef", "process.roles"),
            ("controller.quorum.voters=2@h", "controller.quorum.voters"),
            (
                "auto.leader.rebalance.enable=yes",
                "auto.leader.rebalance.enable",
            ),
            (
                "leader.imbalance.per.broker.percentage=101",
                "leader.imbalance.per.broker.percentage",
            ),
            ("listeners=PLAINTEXT://:9092", "listeners"),
            ("num.partitions=0", "num.partitions"),
            (
                "unclean.leader.election.enable=maybe",
                "unclean.leader.election.enable",
            ),
        ] {
            let text = format!("{GOOD}{edit}\n");
            let e = NodeConfig::from_properties(&props(&text)).expect_err(edit);
            assert_eq!(e.key, key, "{e}");
            assert!(e.to_string().contains(key));
        }
        let e = NodeConfig::from_properties(&props("process.roles=broker"))
            .expect_err("missing node.id");
        assert_eq!(e.key, "node.id");
    }
}
