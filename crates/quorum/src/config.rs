//! Quorum settings, with Kafka's key names where Kafka has one.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::QuorumError;

/// How one voter runs.
#[derive(Debug, Clone)]
pub struct QuorumConfig {
    /// `node.id`.
    pub node_id: u64,
    /// The cluster id this voter was formatted for; messages from another cluster are refused.
    pub cluster_id: String,
    /// `controller.quorum.voters`: node id -> `host:port`: the voters the store was formatted
    /// with and the addresses to start from. The voter set itself lives in the log (voters
    /// are added and removed at run time); this node need not be in it.
    pub voters: BTreeMap<u64, String>,
    /// This node's own controller address, sent with its messages (`None`: its entry in
    /// `voters`).
    pub address: Option<String>,
    /// The RocksDB store, `<metadata.log.dir>/__cluster_metadata-0`.
    pub data_dir: PathBuf,
    /// Raft tick.
    pub tick: Duration,
    /// Election timeout in ticks (randomised by raft between 1x and 2x);
    /// `controller.quorum.election.timeout.ms` / tick.
    pub election_ticks: usize,
    /// Leader heartbeat in ticks.
    pub heartbeat_ticks: usize,
    /// Take a snapshot and compact the log after this many applied entries.
    pub snapshot_interval_entries: u64,
    /// Take a snapshot and compact the log after entries of this many bytes were applied
    /// (Kafka's `metadata.log.max.record.bytes.between.snapshots`), whichever comes first.
    /// A snapshot writes the whole state, so on a large cluster it must not come often.
    pub snapshot_interval_bytes: u64,
    /// Bound on messages queued to one peer; beyond it messages are dropped (Raft retries).
    pub peer_queue: usize,
    /// TLS to the other voters (the controller listener's protocol is SSL).
    pub tls: Option<crate::ControlTls>,
}

/// Kafka's default `metadata.log.max.record.bytes.between.snapshots`: 20 MiB.
pub const DEFAULT_SNAPSHOT_INTERVAL_BYTES: u64 = 20 * 1024 * 1024;

impl QuorumConfig {
    /// A config with Kafka-like timing: a 1 s election timeout
    /// (`controller.quorum.election.timeout.ms=1000`) and 200 ms heartbeats, on 50 ms ticks so that
    /// raft's randomised timeout has 20 steps and two voters rarely stand in the same round (a
    /// split vote costs another timeout).
    pub fn new(
        node_id: u64,
        cluster_id: impl Into<String>,
        voters: BTreeMap<u64, String>,
        data_dir: PathBuf,
    ) -> Self {
        Self {
            node_id,
            cluster_id: cluster_id.into(),
            voters,
            address: None,
            data_dir,
            tick: Duration::from_millis(50),
            election_ticks: 20,
            heartbeat_ticks: 4,
            snapshot_interval_entries: u64::MAX,
            snapshot_interval_bytes: DEFAULT_SNAPSHOT_INTERVAL_BYTES,
            peer_queue: 1024,
            tls: None,
        }
    }
}

/// Whether `addr` is `host:port`.
pub fn valid_address(addr: &str) -> bool {
    addr.rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok())
}

/// Parses `controller.quorum.voters`: `id@host:port,id@host:port,...`.
pub fn parse_voters(value: &str) -> Result<BTreeMap<u64, String>, QuorumError> {
    let err = |reason: String| QuorumError::InvalidConfig {
        key: "controller.quorum.voters".into(),
        value: value.into(),
        reason,
    };
    let mut voters = BTreeMap::new();
    for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (id, addr) = part
            .split_once('@')
            .ok_or_else(|| err(format!("{part:?} is not id@host:port")))?;
        let id: u64 = id
            .parse()
            .map_err(|_| err(format!("{id:?} is not a node id")))?;
        let (host, port) = addr
            .rsplit_once(':')
            .ok_or_else(|| err(format!("{addr:?} has no port")))?;
        if host.is_empty() || port.parse::<u16>().is_err() {
            return Err(err(format!("{addr:?} is not host:port")));
        }
        if voters.insert(id, addr.to_string()).is_some() {
            return Err(err(format!("node id {id} appears twice")));
        }
    }
    if voters.is_empty() {
        return Err(err("no voters".into()));
    }
    Ok(voters)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kafka_voter_lists() {
        let v = parse_voters("1@localhost:9093, 2@127.0.0.1:9094").expect("valid");
        assert_eq!(v[&1], "localhost:9093");
        assert_eq!(v[&2], "127.0.0.1:9094");
        for bad in [
            "",
            "1@host",
            "x@host:1",
            "1@host:99999",
            "1@a:1,1@b:2",
            "1host:1",
        ] {
            let e = parse_voters(bad).expect_err(bad).to_string();
            assert!(e.contains("controller.quorum.voters"), "{e}");
        }
    }
}
