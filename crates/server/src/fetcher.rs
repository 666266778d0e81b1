//! Replica fetchers: for each broker this one follows partitions of, `num.replica.fetchers`
//! tasks (a partition goes to one of them by Kafka's hash), each with its own connection, that
//! send Kafka
//! Fetch requests (v12+, with this broker's `replica_id`, each partition's current leader
//! epoch, fetch offset and last fetched epoch) over the inter-broker listener, appends what
//! comes back as follower, takes the leader's high watermark, and truncates where the leader
//! answers a diverging epoch. The leader long-polls (`replica.fetch.wait.max.ms`), so an idle
//! follower costs one request per wait. Throttled replicas that are out of sync are fetched
//! within `follower.replication.throttled.rate` ([`crate::throttle`]).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{ApiKey, BrokerId, FetchRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use odradek_client::Connection;
use odradek_common::{Clock, ErrorCode, Uuid};
use odradek_log::ValidatedBatches;
use odradek_metadata::MetadataImage;
use odradek_replication::{EpochEndOffset, Role};
use tokio::sync::{watch, Notify};

use crate::config::ReplicationConfig;
use crate::replicas::{Change, HostedPartition};
use crate::throttle::Throttles;

/// The partitions one fetcher fetches.
#[derive(Debug, Default)]
struct Assigned {
    /// A std `Mutex`: held to copy or change the set, never across an `.await`.
    partitions: Mutex<HashMap<(Uuid, i32), Arc<HostedPartition>>>,
    /// Woken when partitions are added.
    added: Notify,
}

/// The broker's replica fetchers, `num.replica.fetchers` per source broker.
#[derive(Debug, Clone)]
pub struct ReplicaFetchers {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    broker_id: i32,
    config: ReplicationConfig,
    /// The listener followers connect to (`inter.broker.listener.name`).
    listener: String,
    /// How to connect on it (TLS, SASL).
    security: odradek_client::ClientSecurity,
    images: watch::Receiver<Arc<MetadataImage>>,
    clock: Arc<dyn Clock>,
    stop: watch::Receiver<bool>,
    /// Fetchers by (source broker, fetcher id); a std `Mutex` held to look one up or add one.
    by_leader: Mutex<HashMap<(i32, i32), Arc<Assigned>>>,
    /// `follower.replication.throttled.rate` for throttled, out-of-sync replicas.
    throttles: Arc<Throttles>,
}

impl ReplicaFetchers {
    /// No fetchers yet; they start as partitions are followed and stop with `stop`.
    pub fn new(
        broker_id: i32,
        config: ReplicationConfig,
        listener: (String, odradek_client::ClientSecurity),
        images: watch::Receiver<Arc<MetadataImage>>,
        clock: Arc<dyn Clock>,
        stop: watch::Receiver<bool>,
        throttles: Arc<Throttles>,
    ) -> Self {
        let (listener, security) = listener;
        Self {
            inner: Arc::new(Inner {
                broker_id,
                config,
                listener,
                security,
                images,
                clock,
                stop,
                by_leader: Mutex::new(HashMap::new()),
                throttles,
            }),
        }
    }

    /// Applies what the replica manager decided for an image.
    pub fn apply(&self, changes: Vec<Change>) {
        let Ok(mut by_leader) = self.inner.by_leader.lock() else {
            return;
        };
        for change in changes {
            let (partition, leader) = match change {
                Change::Follow { partition, leader } => (partition, Some(leader)),
                Change::Unfollow(partition) => (partition, None),
            };
            let key = (partition.topic_id, partition.index);
            for assigned in by_leader.values() {
                if let Ok(mut p) = assigned.partitions.lock() {
                    p.remove(&key);
                }
            }
            let Some(leader) = leader else { continue };
            let id = fetcher_id(
                &partition.topic,
                partition.index,
                self.inner.config.num_replica_fetchers,
            );
            let assigned = by_leader.entry((leader, id)).or_insert_with(|| {
                let assigned = Arc::new(Assigned::default());
                let span = tracing::info_span!(
                    "replica_fetcher",
                    broker_id = self.inner.broker_id,
                    leader,
                    fetcher_id = id
                );
                tokio::spawn(tracing::Instrument::instrument(
                    run(Arc::clone(&self.inner), leader, Arc::clone(&assigned)),
                    span,
                ));
                assigned
            });
            if let Ok(mut p) = assigned.partitions.lock() {
                p.insert(key, partition);
            }
            assigned.added.notify_one();
        }
    }
}

/// The fetcher of a partition among `n` per source broker: Kafka's
/// `abs(31 * topic.hashCode() + partition) % n`, with Java's `String.hashCode` (over UTF-16
/// code units), so partitions spread over fetchers as they do in Kafka.
fn fetcher_id(topic: &str, partition: i32, n: i32) -> i32 {
    let hash = topic
        .encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)));
    // Kafka's Utils.abs maps i32::MIN to 0.
    let v = hash.wrapping_mul(31).wrapping_add(partition);
    let v = if v == i32::MIN { 0 } else { v.abs() };
    v % n.max(1)
}

/// What one request asked for a partition, to match its response against.
struct Asked {
    partition: Arc<HostedPartition>,
    leader_epoch: i32,
    fetch_offset: i64,
    /// Throttled: what comes back counts against the follower quota.
    throttled: bool,
}

async fn run(inner: Arc<Inner>, leader: i32, assigned: Arc<Assigned>) {
    let mut stop = inner.stop.clone();
    let backoff = Duration::from_millis(inner.config.replica_fetch_backoff_ms.max(10));
    let mut conn: Option<Connection> = None;
    let mut delayed: HashMap<(Uuid, i32), Instant> = HashMap::new();
    tracing::info!(
        broker_id = inner.broker_id,
        leader,
        "replica fetcher started"
    );
    loop {
        if *stop.borrow() {
            return;
        }
        // Partitions the leader refused sit out `replica.fetch.backoff.ms` (Kafka's delayed
        // partitions), so one bad partition does not make the others spin.
        let now = Instant::now();
        delayed.retain(|_, until| *until > now);
        let parts: Vec<Arc<HostedPartition>> = assigned
            .partitions
            .lock()
            .map(|p| {
                p.values()
                    .filter(|h| !delayed.contains_key(&(h.topic_id, h.index)))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        if parts.is_empty() && !delayed.is_empty() {
            sleep_or_stop(&mut stop, Duration::from_millis(100)).await;
            continue;
        }
        if parts.is_empty() {
            conn = None;
            tokio::select! {
                _ = assigned.added.notified() => {}
                _ = crate::until_stopped(&mut stop) => return,
            }
            continue;
        }
        let (request, asked) = build_request(&inner, leader, &parts);
        if asked.is_empty() {
            // Metadata moved these partitions on; wait for the next change.
            sleep_or_stop(&mut stop, Duration::from_millis(100)).await;
            continue;
        }
        if conn.is_none() {
            let Some(addr) = leader_address(&inner, leader) else {
                sleep_or_stop(&mut stop, backoff).await;
                continue;
            };
            let rcvbuf = u32::try_from(inner.config.replica_socket_receive_buffer_bytes)
                .ok()
                .filter(|b| *b > 0);
            let client_id = format!("replica-fetcher-{}", inner.broker_id);
            match Connection::connect_with(&addr, &client_id, rcvbuf, &inner.security).await {
                Ok(c) => conn = Some(c),
                Err(e) => {
                    tracing::debug!(leader, error = %e, "cannot reach the leader; retrying");
                    sleep_or_stop(&mut stop, backoff).await;
                    continue;
                }
            }
        }
        let Some(c) = conn.as_mut() else { continue };
        let version = match c.version(ApiKey::Fetch, 12) {
            Ok(v) if v >= 12 => v,
            _ => {
                tracing::warn!(
                    leader,
                    "the leader does not serve Fetch v12+; cannot replicate"
                );
                conn = None;
                sleep_or_stop(&mut stop, backoff).await;
                continue;
            }
        };
        let wait = Duration::from_millis(inner.config.replica_fetch_wait_max_ms.max(0) as u64);
        let sent = tokio::select! {
            r = tokio::time::timeout(wait + Duration::from_secs(30), c.send(&request, version)) => r,
            _ = crate::until_stopped(&mut stop) => return,
        };
        let response = match sent {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                tracing::debug!(leader, error = %e, "fetch from the leader failed; reconnecting");
                conn = None;
                sleep_or_stop(&mut stop, backoff).await;
                continue;
            }
            Err(_) => {
                conn = None;
                continue;
            }
        };
        let now = inner.clock.now_ms();
        let mut syncs = Vec::new();
        for topic in &response.responses {
            for pd in &topic.partitions {
                let key = (topic.topic.0.to_string(), pd.partition_index);
                let Some(a) = asked.get(&key) else { continue };
                if a.throttled {
                    let bytes = pd.records.as_ref().map_or(0, |r| r.len() as u64);
                    inner.throttles.follower.record(bytes, now);
                }
                if !handle_partition(a, leader, pd, now, &mut syncs) {
                    let id = (a.partition.topic_id, a.partition.index);
                    delayed.insert(id, Instant::now() + backoff);
                }
            }
        }
        // log.flush.before.ack: the next fetch reports the new log ends to the leader, so it
        // waits until they are on disk (one group commit for the whole response).
        for (h, rx) in syncs {
            if let Err(e) = crate::group_sync::synced(rx).await {
                h.report_storage_error(&e);
            }
        }
    }
}

async fn sleep_or_stop(stop: &mut watch::Receiver<bool>, d: Duration) {
    tokio::select! {
        _ = tokio::time::sleep(d) => {}
        _ = crate::until_stopped(stop) => {}
    }
}

fn leader_address(inner: &Inner, leader: i32) -> Option<String> {
    let image = Arc::clone(&inner.images.borrow());
    let b = image.cluster.brokers.get(&leader)?;
    let e = crate::handlers::endpoint_for(b, &inner.listener)?;
    Some(format!("{}:{}", e.host, e.port))
}

fn build_request(
    inner: &Inner,
    leader: i32,
    parts: &[Arc<HostedPartition>],
) -> (FetchRequest, HashMap<(String, i32), Asked>) {
    let mut topics: BTreeMap<String, Vec<FetchPartition>> = BTreeMap::new();
    let mut asked = HashMap::new();
    let now = inner.clock.now_ms();
    let quota_spent = inner.throttles.follower.is_exceeded(now);
    for h in parts {
        let Ok(p) = h.lock() else { continue };
        if h.is_removed() || p.role() != (Role::Follower { leader }) {
            continue;
        }
        // Kafka's shouldFollowerThrottle: out of sync, listed, and the quota spent.
        let throttled = h.follower_throttled() && !p.state().isr.contains(&inner.broker_id);
        if throttled && quota_spent {
            continue;
        }
        let (fetch_offset, last_fetched_epoch) = p.fetch_position();
        topics.entry(h.topic.clone()).or_default().push(
            FetchPartition::default()
                .with_partition(h.index)
                .with_current_leader_epoch(p.leader_epoch())
                .with_fetch_offset(fetch_offset)
                .with_last_fetched_epoch(last_fetched_epoch)
                .with_log_start_offset(p.log().log_start_offset())
                .with_partition_max_bytes(inner.config.replica_fetch_max_bytes),
        );
        asked.insert(
            (h.topic.clone(), h.index),
            Asked {
                partition: Arc::clone(h),
                leader_epoch: p.leader_epoch(),
                fetch_offset,
                throttled,
            },
        );
    }
    let request = FetchRequest::default()
        .with_replica_id(BrokerId(inner.broker_id))
        .with_max_wait_ms(inner.config.replica_fetch_wait_max_ms)
        .with_min_bytes(inner.config.replica_fetch_min_bytes)
        .with_max_bytes(inner.config.replica_fetch_response_max_bytes)
        .with_isolation_level(0)
        .with_session_epoch(-1)
        .with_topics(
            topics
                .into_iter()
                .map(|(name, partitions)| {
                    FetchTopic::default()
                        .with_topic(TopicName(StrBytes::from_string(name)))
                        .with_partitions(partitions)
                })
                .collect(),
        );
    (request, asked)
}

/// Applies one partition's part of a fetch response; false when the leader refused it.
fn handle_partition(
    a: &Asked,
    leader: i32,
    pd: &kafka_protocol::messages::fetch_response::PartitionData,
    now_ms: i64,
    syncs: &mut Vec<(
        Arc<HostedPartition>,
        tokio::sync::oneshot::Receiver<crate::group_sync::Synced>,
    )>,
) -> bool {
    let h = &a.partition;
    // Batches are checked (CRC-32C) before the partition's lock.
    let records = pd.records.clone().unwrap_or_default();
    let validated = if records.is_empty() || pd.error_code != 0 {
        None
    } else {
        match ValidatedBatches::for_follower(&records) {
            Ok(v) => Some(v),
            Err(e) => {
                tracing::warn!(topic = %h.topic, partition = h.index, error = %e, "the leader sent invalid batches");
                return false;
            }
        }
    };
    let Ok(mut p) = h.lock() else { return false };
    if h.is_removed() || h.dir_has_failed() {
        return true;
    }
    // Metadata or a truncation moved the partition on while the request was out.
    if p.role() != (Role::Follower { leader })
        || p.leader_epoch() != a.leader_epoch
        || p.fetch_position().0 != a.fetch_offset
    {
        return true;
    }
    match ErrorCode::from_code(pd.error_code) {
        Some(ErrorCode::None) => {
            let d = &pd.diverging_epoch;
            if d.epoch >= 0 || d.end_offset >= 0 {
                let diverging = EpochEndOffset {
                    epoch: d.epoch,
                    end_offset: d.end_offset,
                };
                if let Err(e) = p.truncate_on_divergence(diverging) {
                    tracing::warn!(topic = %h.topic, partition = h.index, error = %e, "cannot truncate a diverging replica");
                }
                return true;
            }
            let appends = validated.is_some();
            match p.append_as_follower(validated, pd.high_watermark, now_ms) {
                Ok(advanced) => {
                    if appends {
                        if let Some(rx) = h.sync(|| p.log().active_segment_file()) {
                            syncs.push((Arc::clone(h), rx));
                        }
                    }
                    h.metrics.replication_bytes_in.inc_by(records.len() as u64);
                    if let Err(e) = p.follow_log_start(pd.log_start_offset) {
                        tracing::warn!(topic = %h.topic, partition = h.index, error = %e, "cannot follow the leader's log start");
                    }
                    drop(p);
                    if advanced {
                        h.hw_waiters.wake_all();
                    }
                    true
                }
                Err(e) => {
                    tracing::warn!(topic = %h.topic, partition = h.index, error = %e, "cannot append replicated batches");
                    if odradek_common::ToErrorCode::error_code(&e) == ErrorCode::KafkaStorageError {
                        h.report_storage_error(&e);
                    }
                    false
                }
            }
        }
        Some(ErrorCode::OffsetOutOfRange) => {
            // Behind the leader's log start, or past what it has: start over inside its range
            // (cut back to the leader's high watermark, never below this replica's own; what
            // the leader has above it is fetched again).
            if let Err(e) = p.reset_to_leader_range(pd.log_start_offset, pd.high_watermark) {
                tracing::warn!(topic = %h.topic, partition = h.index, error = %e, "cannot reset an out-of-range replica");
            }
            true
        }
        _ => {
            tracing::debug!(topic = %h.topic, partition = h.index, code = pd.error_code, "the leader refused a replica fetch");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fetcher_id;

    #[test]
    fn partitions_spread_over_fetchers_as_in_kafka() {
        // Java: "orders".hashCode() == -1008770331; abs(31 * h + p) % 3.
        let h: i32 = -1_008_770_331;
        for p in 0..6 {
            let v = h.wrapping_mul(31).wrapping_add(p);
            assert_eq!(fetcher_id("orders", p, 3), v.abs() % 3);
        }
        assert!((0..6).all(|p| fetcher_id("orders", p, 1) == 0));
        let used: std::collections::BTreeSet<i32> =
            (0..12).map(|p| fetcher_id("orders", p, 4)).collect();
        assert!(used.len() > 1, "partitions use more than one fetcher");
    }
}
