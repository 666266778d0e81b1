//! Replication throttles (Kafka's replication quotas, KIP-73): a leader limits the bytes it
//! sends to followers that are out of sync, for replicas listed in the topic config
//! `leader.replication.throttled.replicas`, to the broker's `leader.replication.throttled.rate`;
//! a follower limits what it fetches for out-of-sync replicas listed in
//! `follower.replication.throttled.replicas` to `follower.replication.throttled.rate`. In-sync
//! replicas are never throttled, so a throttle slows a reassignment, not the producers.
//!
//! The limit is a token bucket holding at most one second of the rate: a throttled partition is
//! left out of a fetch (an empty answer on the leader, not asked for on the follower) while the
//! bucket is empty, and the bytes it moves are taken from it after the read.

use std::collections::BTreeSet;
use std::sync::Mutex;

use odradek_metadata::{ConfigResource, MetadataImage};

/// Kafka's broker keys for the rates, in bytes per second.
pub const LEADER_RATE: &str = "leader.replication.throttled.rate";
/// See [`LEADER_RATE`].
pub const FOLLOWER_RATE: &str = "follower.replication.throttled.rate";
/// Kafka's topic keys for the throttled replicas.
pub const LEADER_REPLICAS: &str = "leader.replication.throttled.replicas";
/// See [`LEADER_REPLICAS`].
pub const FOLLOWER_REPLICAS: &str = "follower.replication.throttled.replicas";

#[derive(Debug, Default)]
struct Bucket {
    /// Bytes per second; `None`: unlimited (Kafka's default, Long.MAX_VALUE).
    rate: Option<u64>,
    /// May go negative: a read larger than what was left is paid for afterwards.
    tokens: f64,
    last_ms: i64,
}

/// One direction's quota on this broker.
#[derive(Debug, Default)]
pub struct ReplicationQuota {
    /// A std `Mutex`: held for a few arithmetic operations, never across an `.await`.
    bucket: Mutex<Bucket>,
}

impl ReplicationQuota {
    /// Sets the rate (bytes/s, `None` for unlimited); a new rate starts with a full bucket.
    pub fn set_rate(&self, rate: Option<u64>, now_ms: i64) {
        if let Ok(mut b) = self.bucket.lock() {
            if b.rate != rate {
                b.rate = rate;
                b.tokens = rate.unwrap_or(0) as f64;
                b.last_ms = now_ms;
            }
        }
    }

    /// The rate, if limited.
    pub fn rate(&self) -> Option<u64> {
        self.bucket.lock().ok().and_then(|b| b.rate)
    }

    fn refill(b: &mut Bucket, now_ms: i64) {
        if let Some(rate) = b.rate {
            let elapsed = (now_ms - b.last_ms).max(0) as f64 / 1000.0;
            b.tokens = (b.tokens + elapsed * rate as f64).min(rate as f64);
        }
        b.last_ms = now_ms;
    }

    /// Whether the throttled replicas must wait (the bucket is empty).
    pub fn is_exceeded(&self, now_ms: i64) -> bool {
        let Ok(mut b) = self.bucket.lock() else {
            return false;
        };
        if b.rate.is_none() {
            return false;
        }
        Self::refill(&mut b, now_ms);
        b.tokens <= 0.0
    }

    /// Takes `bytes` moved for throttled replicas from the bucket.
    pub fn record(&self, bytes: u64, now_ms: i64) {
        if let Ok(mut b) = self.bucket.lock() {
            if b.rate.is_some() {
                Self::refill(&mut b, now_ms);
                b.tokens -= bytes as f64;
            }
        }
    }
}

/// The leader and follower quotas of a broker.
#[derive(Debug, Default)]
pub struct Throttles {
    /// Bytes this broker sends as leader to throttled followers.
    pub leader: ReplicationQuota,
    /// Bytes this broker fetches as follower for throttled replicas.
    pub follower: ReplicationQuota,
}

impl Throttles {
    /// Takes the rates from broker `broker_id`'s dynamic configs (then the cluster default).
    pub fn update(&self, image: &MetadataImage, broker_id: i32, now_ms: i64) {
        let own = image
            .configs
            .get(&ConfigResource::Broker(broker_id.to_string()));
        let default = image.configs.get(&ConfigResource::Broker(String::new()));
        let rate = |key: &str| {
            own.get(key)
                .or_else(|| default.get(key))
                .and_then(|v| v.trim().parse::<u64>().ok())
                // Kafka's default, Long.MAX_VALUE, means unlimited.
                .filter(|r| *r < i64::MAX as u64)
        };
        self.leader.set_rate(rate(LEADER_RATE), now_ms);
        self.follower.set_rate(rate(FOLLOWER_RATE), now_ms);
    }
}

/// The partitions of a topic a throttled-replicas value lists for `broker_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Throttled {
    /// `*`: every partition.
    All,
    /// The listed `partition:broker` entries of this broker.
    Partitions(BTreeSet<i32>),
}

impl Throttled {
    /// Parses Kafka's `[partition]:[broker],...` or `*` for `broker_id` (malformed entries are
    /// ignored here; the controller refuses them when they are set).
    pub fn parse(value: Option<&String>, broker_id: i32) -> Throttled {
        let Some(v) = value else {
            return Throttled::Partitions(BTreeSet::new());
        };
        if v.trim() == "*" {
            return Throttled::All;
        }
        Throttled::Partitions(
            v.split(',')
                .filter_map(|e| e.trim().split_once(':'))
                .filter(|(_, b)| b.trim().parse() == Ok(broker_id))
                .filter_map(|(p, _)| p.trim().parse().ok())
                .collect(),
        )
    }

    /// Whether `partition` is throttled.
    pub fn contains(&self, partition: i32) -> bool {
        match self {
            Throttled::All => true,
            Throttled::Partitions(p) => p.contains(&partition),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_holds_a_second_of_the_rate() {
        let q = ReplicationQuota::default();
        assert!(!q.is_exceeded(0), "unlimited by default");
        q.set_rate(Some(1000), 0);
        assert!(!q.is_exceeded(0));
        q.record(1500, 0);
        assert!(q.is_exceeded(0));
        assert!(q.is_exceeded(400), "500 bytes of debt take half a second");
        assert!(!q.is_exceeded(600));
        // Idle for a minute: still only one second's worth.
        q.record(0, 60_000);
        q.record(1000, 60_000);
        assert!(q.is_exceeded(60_000));
        q.set_rate(None, 60_000);
        assert!(!q.is_exceeded(60_000));
    }

    #[test]
    fn replica_lists_name_partitions_per_broker() {
        let v = "0:1,1:2, 2:1".to_string();
        assert_eq!(
            Throttled::parse(Some(&v), 1),
            Throttled::Partitions([0, 2].into())
        );
        assert!(!Throttled::parse(Some(&v), 3).contains(0));
        assert!(Throttled::parse(Some(&"*".to_string()), 3).contains(7));
        assert!(!Throttled::parse(None, 1).contains(0));
    }
}
