//! The group coordinator of this broker: one [`Groups`] per `__consumer_offsets` partition it
//! leads, rebuilt from the partition's log when it becomes leader and dropped when it stops being
//! leader. Requests run against the partition of their group; the records a call returns are
//! appended to that partition before its replies go out.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use odradek_common::{ErrorCode, ToErrorCode, Uuid};
use odradek_coordinator::{
    partition_for, GroupConfig, GroupListing, Groups, Output, Reply, Token, OFFSETS_TOPIC,
};
use odradek_metadata::{ConfigResource, MetadataImage};
use tokio::sync::oneshot;

use crate::coordinator_runtime::{append_records, Shards};
use crate::replicas::{HostedPartition, ReplicaManager};

/// Where a coordinator append must be committed before its caller is answered.
#[derive(Debug, Clone)]
pub struct AppendPosition {
    /// The `__consumer_offsets` partition.
    pub partition: Arc<HostedPartition>,
    /// The leader epoch it was appended under.
    pub leader_epoch: i32,
    /// Its last offset.
    pub last_offset: i64,
}

/// The broker's group coordinator.
#[derive(Debug)]
pub struct GroupCoordinator {
    config: GroupConfig,
    /// One shard (a `Groups`) per led `__consumer_offsets` partition.
    shards: Shards<Groups>,
    parked: Mutex<HashMap<Token, (i32, oneshot::Sender<Reply>)>>,
    next_token: AtomicU64,
    clock: Arc<dyn odradek_common::Clock>,
    /// Rebalances completed by the groups this broker coordinated.
    pub(crate) rebalances: prometheus_client::metrics::counter::Counter,
    /// The group configs of the last image, which every loaded partition has.
    group_configs: Mutex<Arc<GroupConfigs>>,
}

/// Group configs by group id (Kafka's GROUP config resources).
type GroupConfigs = BTreeMap<String, BTreeMap<String, String>>;

impl GroupCoordinator {
    /// A coordinator leading nothing yet.
    pub fn new(broker_id: i32, config: GroupConfig, clock: Arc<dyn odradek_common::Clock>) -> Self {
        Self {
            config,
            shards: Shards::new(OFFSETS_TOPIC, broker_id),
            parked: Mutex::new(HashMap::new()),
            next_token: AtomicU64::new(1),
            clock,
            rebalances: Default::default(),
            group_configs: Mutex::new(Arc::new(GroupConfigs::new())),
        }
    }

    /// The coordinator's settings.
    pub fn config(&self) -> &GroupConfig {
        &self.config
    }

    /// The `__consumer_offsets` partition of `group` in `image`, if the topic exists.
    pub fn partition_of(image: &MetadataImage, group: &str) -> Option<i32> {
        let t = image.topics.get_by_name(OFFSETS_TOPIC)?;
        Some(partition_for(group, t.partitions.len() as i32))
    }

    /// A token for a request that waits for its reply, registered under partition `p`.
    pub fn park(&self, p: i32) -> (Token, oneshot::Receiver<Reply>) {
        let token = self.next_token.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        if let Ok(mut parked) = self.parked.lock() {
            parked.insert(token, (p, tx));
        }
        (token, rx)
    }

    /// Forgets a parked request whose caller stopped waiting.
    pub fn unpark(&self, token: Token) {
        if let Ok(mut parked) = self.parked.lock() {
            parked.remove(&token);
        }
    }

    /// Runs `f` on the groups of `group`'s partition, appends the records it returns, sends its
    /// replies, and returns its value. Errors are Kafka's: COORDINATOR_NOT_AVAILABLE without
    /// the topic, NOT_COORDINATOR when another broker leads the partition,
    /// COORDINATOR_LOAD_IN_PROGRESS while loading.
    pub fn exec<T>(
        &self,
        image: &MetadataImage,
        group: &str,
        f: impl FnOnce(&mut Groups, i32, i64) -> (T, Output),
    ) -> Result<T, ErrorCode> {
        self.exec_appending(image, group, f).map(|(value, _)| value)
    }

    /// [`GroupCoordinator::exec`], also returning where the call's records were appended, for
    /// a caller that answers only once they are committed (OffsetCommit).
    pub fn exec_appending<T>(
        &self,
        image: &MetadataImage,
        group: &str,
        f: impl FnOnce(&mut Groups, i32, i64) -> (T, Output),
    ) -> Result<(T, Option<AppendPosition>), ErrorCode> {
        self.exec_as(image, group, None, f)
    }

    /// [`GroupCoordinator::exec_appending`] for TxnOffsetCommit: the records go in a
    /// transactional batch of `producer` (id, epoch) and take effect with its transaction's
    /// commit marker ([`GroupCoordinator::complete_transaction`]).
    pub fn exec_transactional<T>(
        &self,
        image: &MetadataImage,
        group: &str,
        producer: (i64, i16),
        f: impl FnOnce(&mut Groups, i32, i64) -> (T, Output),
    ) -> Result<(T, Option<AppendPosition>), ErrorCode> {
        self.exec_as(image, group, Some(producer), f)
    }

    fn exec_as<T>(
        &self,
        image: &MetadataImage,
        group: &str,
        producer: Option<(i64, i16)>,
        f: impl FnOnce(&mut Groups, i32, i64) -> (T, Output),
    ) -> Result<(T, Option<AppendPosition>), ErrorCode> {
        let p = Self::partition_of(image, group).ok_or(ErrorCode::CoordinatorNotAvailable)?;
        match self.exec_partition(p, producer, f) {
            // Leader in the image but not loaded yet: the publisher is about to load it.
            Err(ErrorCode::NotCoordinator) => Err(self.shards.missing(image, p)),
            other => other,
        }
    }

    /// A transaction's marker was committed in `__consumer_offsets`-`p`: its offset commits
    /// take effect (commit) or are dropped (abort).
    pub fn complete_transaction(&self, p: i32, producer_id: i64, commit: bool) {
        let _ = self.exec_partition(p, None, |groups, _, _| {
            groups.complete_transaction(producer_id, commit);
            ((), Output::default())
        });
    }

    /// Writes a transaction marker into `__consumer_offsets`-`p` (WriteTxnMarkers) under the
    /// partition's slot lock, so a load of the partition either sees the marker in the log or
    /// comes before it is written: while the partition is not loaded here the marker is refused
    /// with COORDINATOR_LOAD_IN_PROGRESS and the transaction coordinator retries.
    pub fn append_marker(
        &self,
        p: i32,
        producer_id: i64,
        producer_epoch: i16,
        marker: odradek_log::ControlRecord,
        min_insync_replicas: usize,
    ) -> Result<odradek_replication::LeaderAppend, ErrorCode> {
        let now = self.clock.now_ms();
        let appended = self
            .shards
            .with(p, |_, partition, _| {
                partition
                    .lock()?
                    .append_marker_as_leader(
                        producer_id,
                        producer_epoch,
                        marker,
                        min_insync_replicas,
                        now,
                    )
                    .map_err(|e| e.error_code())
            })
            // Not loaded here (yet): retriable for the transaction coordinator.
            .map_err(|_| ErrorCode::CoordinatorLoadInProgress)??;
        Ok(appended)
    }

    fn exec_partition<T>(
        &self,
        p: i32,
        producer: Option<(i64, i16)>,
        f: impl FnOnce(&mut Groups, i32, i64) -> (T, Output),
    ) -> Result<(T, Option<AppendPosition>), ErrorCode> {
        let now = self.clock.now_ms();
        let (value, position, replies, failure) = self.shards.with(p, |groups, partition, _| {
            // Offset commits the high watermark has passed since become visible.
            groups.commit_pending_offsets(partition.high_watermark());
            let (value, out) = f(groups, p, now);
            if out.completed_rebalances > 0 {
                self.rebalances.inc_by(u64::from(out.completed_rebalances));
            }
            // Appending under the shard's lock keeps the partition's records in the order the
            // state machine produced them. The append is a write to the page cache.
            let appended = Self::append(partition, &out.records, producer, now);
            let mut position = None;
            if let Ok(Some((leader_epoch, last_offset))) = appended {
                let first = last_offset - (out.records.len() as i64 - 1);
                for (i, (k, v)) in out.records.iter().enumerate() {
                    match producer {
                        Some((pid, _)) => {
                            groups.replay_transactional(now, pid, k.clone(), v.clone())
                        }
                        None => groups.replay_appended(now, k.clone(), v.clone(), first + i as i64),
                    }
                }
                position = Some(AppendPosition {
                    partition: Arc::clone(partition),
                    leader_epoch,
                    last_offset,
                });
            }
            (value, position, out.replies, appended.err())
        })?;
        // Replies (and the caller) learn of a failed append: nothing was committed.
        self.dispatch(replies, failure);
        match failure {
            Some(e) => Err(e),
            None => Ok((value, position)),
        }
    }

    /// Appends the state machine's records to the partition as leader (acks=1: the caller that
    /// must wait for the ISR does); returns the leader epoch and last offset when something was
    /// appended.
    fn append(
        partition: &HostedPartition,
        records: &[(Bytes, Option<Bytes>)],
        producer: Option<(i64, i16)>,
        now: i64,
    ) -> Result<Option<(i32, i64)>, ErrorCode> {
        if records.is_empty() {
            return Ok(None);
        }
        let a = append_records(partition, records, producer, 1, 1, now)?;
        Ok(Some((a.leader_epoch, a.info.last_offset)))
    }

    fn dispatch(&self, replies: Vec<Reply>, failure: Option<ErrorCode>) {
        let Ok(mut parked) = self.parked.lock() else {
            return;
        };
        for reply in replies {
            if let Some((_, tx)) = parked.remove(&reply.token()) {
                let _ = tx.send(match failure {
                    Some(e) => reply.failed(e),
                    None => reply,
                });
            }
        }
    }

    /// Fires the deadlines of every loaded partition (run every 100 ms or so).
    pub fn tick(&self) {
        self.each_partition(|groups, now| groups.tick(now));
    }

    /// Expires committed offsets past `retention_ms` (offsets.retention.minutes) in every loaded
    /// partition, writing their tombstones.
    pub fn expire_offsets(&self, retention_ms: i64) {
        self.each_partition(|groups, now| groups.expire_offsets(now, retention_ms));
    }

    fn each_partition(&self, f: impl Fn(&mut Groups, i64) -> Output) {
        let partitions = self.shards.partitions();
        for p in partitions {
            let _ = self.exec_partition(p, None, |groups, _, now| ((), f(groups, now)));
        }
    }

    /// Every committed offset of the groups this broker coordinates: (group, topic,
    /// partition, offset).
    pub fn committed_offsets(&self) -> Vec<(String, String, i32, i64)> {
        self.shards
            .each_ready(|groups| groups.committed_offsets())
            .into_iter()
            .flatten()
            .collect()
    }

    /// The state of every group of the loaded partitions (those loading are left out).
    pub fn states(&self) -> Vec<&'static str> {
        self.shards
            .each_ready(|groups| {
                groups
                    .list()
                    .into_iter()
                    .map(|l| l.state)
                    .collect::<Vec<_>>()
            })
            .into_iter()
            .flatten()
            .collect()
    }

    /// Every group of every loaded partition, by id.
    pub fn list(&self) -> Result<Vec<GroupListing>, ErrorCode> {
        let mut out: Vec<_> = self
            .shards
            .each_loaded(|groups| groups.list())?
            .into_iter()
            .flatten()
            .collect();
        out.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        Ok(out)
    }

    /// Follows leadership of `__consumer_offsets` in `image`: loads the partitions this broker
    /// now leads (reading their logs; call on a blocking thread) and drops the others.
    pub fn on_image(&self, image: &MetadataImage, replicas: &ReplicaManager) {
        let configs: GroupConfigs = image
            .configs
            .resources
            .iter()
            .filter_map(|(r, keys)| match r {
                ConfigResource::Group(g) => Some((g.clone(), keys.clone())),
                _ => None,
            })
            .collect();
        let changed = match self.group_configs.lock() {
            Ok(mut known) if **known != configs => {
                *known = Arc::new(configs.clone());
                true
            }
            _ => false,
        };
        if changed {
            self.each_partition(|groups, _| {
                groups.set_group_configs(configs.clone());
                Output::default()
            });
        }
        let followed = self.shards.on_image(image, replicas, |p, partition| {
            let started = std::time::Instant::now();
            let seed = Uuid::random().to_string();
            let mut groups = Groups::new(self.config.clone(), seed);
            groups.set_group_configs(configs.clone());
            let now = self.clock.now_ms();
            let mut records = 0u64;
            partition.read_all_records(|r| {
                if r.control {
                    // A transaction marker: key version 0, type 0 abort / 1 commit.
                    if let Some(k) = r.key.as_ref().filter(|k| k.len() >= 4) {
                        groups.complete_transaction(r.producer_id, k[3] == 1);
                    }
                    return;
                }
                if let Some(k) = r.key {
                    if r.transactional {
                        groups.replay_transactional(now, r.producer_id, k, r.value);
                    } else {
                        groups.replay(now, k, r.value);
                    }
                    records += 1;
                }
            });
            let ms = started.elapsed().as_millis() as u64;
            if records > 0 {
                tracing::info!(partition = p, records, ms, "loaded {OFFSETS_TOPIC}-{p}");
            } else {
                tracing::debug!(partition = p, "loaded {OFFSETS_TOPIC}-{p} (empty)");
            }
            groups
        });
        if !followed.lost.is_empty() {
            // Dropping their senders answers the waiting requests NOT_COORDINATOR.
            if let Ok(mut parked) = self.parked.lock() {
                parked.retain(|_, (p, _)| !followed.lost.contains(p));
            }
        }
    }
}
