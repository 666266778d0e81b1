//! The replica manager: one [`odradek_replication::Partition`] per partition replica this broker
//! hosts, under `<one of log.dirs>/<topic>-<partition>` ([`dirs`] places them and takes a
//! failed directory offline), opened (and recovered) as metadata assigns them, deleted when
//! they are unassigned, driven to leader or follower by the changes of each new metadata image
//! (the delta, not a rescan of every topic), and the one way handlers reach a log.
//!
//! Lookups take the map's read lock for a hash lookup; opening, recovering and deleting logs
//! happen outside it. Each partition's state is behind a std `Mutex` held for one call into the
//! replication core (an append to the page cache at most), never across an `.await`. Readers
//! (fetches, ListOffsets, the group coordinator's loads) use the log's lock-free reader and the
//! published high watermark.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, Weak};

use odradek_common::{Clock, ErrorCode, ToErrorCode, Uuid};
use odradek_log::{AppendRules, Log, LogConfig, LogError, LogReader, ValidatedBatches};
use odradek_metadata::{ConfigResource, MetadataChanges, MetadataImage};
use odradek_replication::checkpoint::{read_checkpoint, HIGH_WATERMARK_CHECKPOINT};
use odradek_replication::{IsrProposal, Partition, PartitionState, Transition};
use tokio::sync::Notify;

use crate::throttle::{self, Throttled, Throttles};

pub mod dirs;
use dirs::claim_directory;
pub use dirs::LogDir;

/// One-shot wake-ups keyed by partition (Kafka's purgatory keys): a waiter registers before
/// it checks its condition, then awaits its `Notify`; a change wakes every registered waiter
/// once. `notify_one` keeps a permit, so a wake between registering and awaiting is not lost.
#[derive(Debug, Default)]
pub struct Wakers(Mutex<Vec<Weak<Notify>>>);

impl Wakers {
    /// Registers `waiter` for the next wake.
    pub fn register(&self, waiter: &Arc<Notify>) {
        if let Ok(mut w) = self.0.lock() {
            w.retain(|n| n.strong_count() > 0);
            w.push(Arc::downgrade(waiter));
        }
    }

    /// Wakes every registered waiter once.
    pub fn wake_all(&self) {
        let waiters = match self.0.lock() {
            Ok(mut w) => std::mem::take(&mut *w),
            Err(_) => return,
        };
        for w in waiters {
            if let Some(n) = w.upgrade() {
                n.notify_one();
            }
        }
    }
}

/// A hosted partition replica.
#[derive(Debug)]
pub struct HostedPartition {
    /// Topic name.
    pub topic: String,
    /// Topic id.
    pub topic_id: Uuid,
    /// Partition index.
    pub index: i32,
    replica: Mutex<Partition>,
    /// The log config's append rules, kept beside the lock so batches are validated outside it.
    rules: Mutex<AppendRules>,
    /// Reads without the lock.
    pub reader: LogReader,
    high_watermark: Arc<AtomicI64>,
    last_stable_offset: Arc<AtomicI64>,
    has_aborted: Arc<std::sync::atomic::AtomicBool>,
    /// Woken when the high watermark advances: consumer fetches, acks=all produces.
    pub hw_waiters: Wakers,
    /// Woken when the log end advances: followers' fetches.
    pub leo_waiters: Wakers,
    /// Woken when a follower reports its log start: DeleteRecords.
    pub lw_waiters: Wakers,
    /// Set (under the partition's lock) when the replica is deleted: work done on it outside
    /// the lock (a compaction job) must not be committed into its directory.
    removed: std::sync::atomic::AtomicBool,
    /// Which of `log.dirs` holds it.
    pub dir: usize,
    /// Its directory's failure flag, shared by every replica there: set on an I/O error.
    dir_failed: Arc<AtomicBool>,
    /// Its directory's group commit, with `log.flush.before.ack`.
    syncer: Option<Arc<crate::group_sync::GroupSync>>,
    /// Listed for this broker in `leader.replication.throttled.replicas`.
    leader_throttled: AtomicBool,
    /// Listed for this broker in `follower.replication.throttled.replicas`.
    follower_throttled: AtomicBool,
    /// Its topic's data path counters.
    pub metrics: crate::metrics::TopicMetrics,
}

impl HostedPartition {
    /// The replica, for one short call.
    pub fn lock(&self) -> Result<MutexGuard<'_, Partition>, ErrorCode> {
        self.replica
            .lock()
            .map_err(|_| ErrorCode::KafkaStorageError)
    }

    /// Reports a storage error (KAFKA_STORAGE_ERROR) on this replica: its directory is taken
    /// offline with every replica in it ([`ReplicaManager::take_failed_dirs_offline`]), not
    /// the broker down.
    pub fn report_storage_error(&self, error: &dyn std::fmt::Display) {
        if !self.dir_failed.swap(true, Ordering::AcqRel) {
            tracing::error!(topic = %self.topic, partition = self.index, %error, "storage error: the log directory goes offline");
        }
    }

    /// With `log.flush.before.ack`: asks for `file` (where an append just went) to be synced;
    /// the acknowledgement of that append waits for the answer. `None` without the setting.
    pub(crate) fn sync(
        &self,
        file: impl FnOnce() -> odradek_log::SegmentFile,
    ) -> Option<tokio::sync::oneshot::Receiver<crate::group_sync::Synced>> {
        self.syncer.as_ref().map(|s| s.sync(file()))
    }

    /// [`Self::sync`] of the log's active segment, taking the lock (after an append made
    /// through another path, such as the group coordinator's). Without the setting, nothing
    /// is locked. A poisoned lock asks for nothing (the caller's wait for the commit fails).
    pub(crate) fn sync_tail(
        &self,
    ) -> Option<tokio::sync::oneshot::Receiver<crate::group_sync::Synced>> {
        let syncer = self.syncer.as_ref()?;
        let file = self.replica.lock().ok()?.log().active_segment_file();
        Some(syncer.sync(file))
    }

    /// Whether its directory had a storage error (it goes offline at the next check).
    pub fn dir_has_failed(&self) -> bool {
        self.dir_failed.load(Ordering::Acquire)
    }

    /// Whether the replica was deleted or its directory went offline (fetchers drop it).
    pub fn is_removed(&self) -> bool {
        self.removed.load(Ordering::Acquire)
    }

    /// Whether this replica, leading, throttles what it sends to out-of-sync followers.
    pub fn leader_throttled(&self) -> bool {
        self.leader_throttled.load(Ordering::Relaxed)
    }

    /// Whether this replica, following while out of sync, throttles what it fetches.
    pub fn follower_throttled(&self) -> bool {
        self.follower_throttled.load(Ordering::Relaxed)
    }

    /// The high watermark, without the lock.
    pub fn high_watermark(&self) -> i64 {
        self.high_watermark.load(Ordering::Acquire)
    }

    /// Decodes every record of the log from its start to its current end, in offset order (a
    /// coordinator loading its partition). Batches that cannot be read are skipped and
    /// logged (they were CRC-checked on append and recovery; a coordinator should coordinate
    /// rather than refuse); returns how many were.
    pub fn read_all_records(&self, mut f: impl FnMut(odradek_log::records::Record)) -> u64 {
        let log = &self.reader;
        let mut offset = log.log_start_offset();
        let end = log.log_end_offset();
        let mut skipped = 0;
        while offset < end {
            let read = match log.read(offset, 1 << 20, end) {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(topic = %self.topic, partition = self.index, error = %e, "cannot read the partition");
                    return skipped + 1;
                }
            };
            let Some(slice) = read.records else { break };
            let next = slice.last_offset() + 1;
            match slice
                .read_to_bytes()
                .map(odradek_log::records::decode_batches)
            {
                Ok(Ok(records)) => records.into_iter().for_each(&mut f),
                Ok(Err(e)) | Err(e) => {
                    tracing::warn!(topic = %self.topic, partition = self.index, error = %e, offset, "skipping unreadable batches");
                    skipped += 1;
                }
            }
            offset = next;
        }
        skipped
    }

    /// The last stable offset (read_committed consumers read below it), without the lock.
    pub fn last_stable_offset(&self) -> i64 {
        self.last_stable_offset.load(Ordering::Acquire)
    }

    /// Whether the log may hold an aborted transaction (a read_committed fetch asks the
    /// partition for them only then), without the lock.
    pub fn may_have_aborted(&self) -> bool {
        self.has_aborted.load(Ordering::Acquire)
    }

    /// The high watermark, or the last stable offset for `isolation_level` 1
    /// (read_committed).
    pub fn visible_end(&self, isolation_level: i8) -> i64 {
        if isolation_level == 1 {
            self.last_stable_offset()
        } else {
            self.high_watermark()
        }
    }

    /// Checks producer batches for a leader's append (CRC-32C, counts, `max.message.bytes`,
    /// keys on compacted topics) without the partition's lock.
    pub fn validate_for_leader<'a>(
        &self,
        records: &'a [u8],
    ) -> Result<ValidatedBatches<'a>, LogError> {
        // A plain value: a poisoned lock still holds a whole one.
        let rules = *self.rules.lock().unwrap_or_else(|p| p.into_inner());
        ValidatedBatches::for_leader(records, rules)
    }
}

/// The partitions of `topic` that `broker_id` leads in `image`: index -> (topic id, leader
/// epoch). What a coordinator loads and keeps.
pub fn led_partitions(
    image: &odradek_metadata::MetadataImage,
    topic: &str,
    broker_id: i32,
) -> HashMap<i32, (Uuid, i32)> {
    image
        .topics
        .get_by_name(topic)
        .map(|t| {
            t.partitions
                .iter()
                .filter(|(_, r)| r.leader == broker_id)
                .map(|(p, r)| (*p, (t.id, r.leader_epoch)))
                .collect()
        })
        .unwrap_or_default()
}

/// Why a handler cannot use a partition, as Kafka answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The error code.
    pub code: ErrorCode,
    /// For the response's message.
    pub message: String,
}

impl Refusal {
    fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

/// What a lookup needs the replica to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// The leader (Produce, consumer Fetch, ListOffsets, DeleteRecords, ...).
    Leader,
    /// Any replica (a follower's own OffsetForLeaderEpoch, the coordinator's loads).
    Any,
}

/// What followers must do after an image was applied.
#[derive(Debug)]
pub enum Change {
    /// Fetch this partition from `leader`.
    Follow {
        /// The partition.
        partition: Arc<HostedPartition>,
        /// The leader to fetch from.
        leader: i32,
    },
    /// Stop fetching this partition (it leads, has no leader, or is gone).
    Unfollow(Arc<HostedPartition>),
}

/// What an image wants of a replica here: topic name, log config, registration, and whether
/// it is (leader, follower) throttled.
type Wanted = (String, LogConfig, PartitionState, (bool, bool));

/// All hosted replicas.
#[derive(Debug)]
pub struct ReplicaManager {
    /// `log.dirs`; a replica lives in one of them.
    dirs: Vec<LogDir>,
    defaults: LogConfig,
    broker_id: i32,
    clock: Arc<dyn Clock>,
    /// Looked up on every request and changed on metadata updates: a short read lock.
    partitions: RwLock<HashMap<(Uuid, i32), Arc<HostedPartition>>>,
    /// High watermarks read from each directory's `replication-offset-checkpoint` at start
    /// (for logs not yet opened) and as last checkpointed, with the directory they are in.
    checkpointed: Mutex<BTreeMap<(String, i32), (usize, i64)>>,
    /// Replicas of directories that went offline: assigned here, served by no one until the
    /// controller moves them (they answer KAFKA_STORAGE_ERROR).
    offline: Mutex<HashSet<(Uuid, i32)>>,
    /// Topics with a replica that failed to open: looked at again with the next image.
    retry: Mutex<HashSet<Uuid>>,
    /// The replication throttles, from the broker's and the topics' dynamic configs.
    throttles: Arc<Throttles>,
    /// The data path's counters.
    metrics: Arc<crate::metrics::BrokerMetrics>,
}

impl ReplicaManager {
    /// With `log.flush.before.ack`: every directory gets a group commit thread, and appends
    /// are acknowledged only once synced.
    pub fn with_flush_before_ack(mut self) -> Result<Self, String> {
        for (i, dir) in self.dirs.iter_mut().enumerate() {
            let sync = crate::group_sync::GroupSync::start(
                &i.to_string(),
                self.metrics.log_flushes.clone(),
                self.metrics.log_flushed_appends.clone(),
            )
            .map_err(|e| format!("cannot start the syncer of {}: {e}", dir.path.display()))?;
            dir.syncer = Some(sync);
        }
        Ok(self)
    }

    /// A manager for replicas under `dirs` (`log.dirs`); reads each directory's HW checkpoint.
    /// Refuses directories that both hold a copy of one partition (which is current cannot be
    /// told; Kafka refuses to start too).
    pub fn new(
        dirs: Vec<PathBuf>,
        defaults: LogConfig,
        broker_id: i32,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, String> {
        if dirs.is_empty() {
            return Err("log.dirs names no directory".into());
        }
        dirs::refuse_duplicate_copies(&dirs)?;
        let mut checkpointed = BTreeMap::new();
        for (i, dir) in dirs.iter().enumerate() {
            match read_checkpoint(&dir.join(HIGH_WATERMARK_CHECKPOINT)) {
                Ok(c) => checkpointed.extend(c.into_iter().map(|(k, hw)| (k, (i, hw)))),
                Err(e) => {
                    tracing::warn!(dir = %dir.display(), error = %e, "unreadable high watermark checkpoint; starting its partitions' HW at their log start");
                }
            }
        }
        Ok(Self {
            dirs: dirs
                .into_iter()
                .map(|path| LogDir {
                    path,
                    failed: Arc::default(),
                    offline: AtomicBool::new(false),
                    syncer: None,
                })
                .collect(),
            defaults,
            broker_id,
            clock,
            partitions: RwLock::new(HashMap::new()),
            checkpointed: Mutex::new(checkpointed),
            offline: Mutex::new(HashSet::new()),
            retry: Mutex::new(HashSet::new()),
            throttles: Arc::default(),
            metrics: Arc::default(),
        })
    }

    /// The data path's counters.
    pub fn metrics(&self) -> &Arc<crate::metrics::BrokerMetrics> {
        &self.metrics
    }

    /// The replication throttles (the fetch handler's and the replica fetchers').
    pub fn throttles(&self) -> &Arc<Throttles> {
        &self.throttles
    }

    /// The hosted replica, if any, whatever its role.
    pub fn get(&self, topic_id: Uuid, index: i32) -> Option<Arc<HostedPartition>> {
        self.partitions
            .read()
            .ok()?
            .get(&(topic_id, index))
            .cloned()
    }

    /// The one lookup handlers use: the hosted replica of `topic_id`-`index`, checked against
    /// the request's `current_leader_epoch` (-1: none) with Kafka's rule (FENCED_LEADER_EPOCH
    /// when older, UNKNOWN_LEADER_EPOCH when newer) and, for [`Need::Leader`], that it leads
    /// (NOT_LEADER_OR_FOLLOWER otherwise, as for a partition not hosted here).
    pub fn partition(
        &self,
        topic_id: Uuid,
        index: i32,
        current_leader_epoch: i32,
        need: Need,
    ) -> Result<Arc<HostedPartition>, Refusal> {
        let hosted = self.get(topic_id, index).ok_or_else(|| {
            let offline = self
                .offline
                .lock()
                .is_ok_and(|o| o.contains(&(topic_id, index)));
            if offline {
                Refusal::new(
                    ErrorCode::KafkaStorageError,
                    format!(
                        "the log directory of this replica on broker {} is offline",
                        self.broker_id
                    ),
                )
            } else {
                Refusal::new(
                    ErrorCode::NotLeaderOrFollower,
                    format!(
                        "broker {} hosts no replica of this partition",
                        self.broker_id
                    ),
                )
            }
        })?;
        if hosted.dir_has_failed() {
            return Err(Refusal::new(
                ErrorCode::KafkaStorageError,
                format!(
                    "the log directory of this replica on broker {} failed",
                    self.broker_id
                ),
            ));
        }
        {
            let p = hosted
                .lock()
                .map_err(|c| Refusal::new(c, "partition state poisoned"))?;
            let checked = match need {
                Need::Leader => p.check_leader(current_leader_epoch),
                Need::Any => p.check_leader_epoch(current_leader_epoch),
            };
            checked.map_err(|e| Refusal::new(e.error_code(), e.to_string()))?;
        }
        Ok(hosted)
    }

    /// Every hosted replica.
    pub fn all(&self) -> Vec<Arc<HostedPartition>> {
        self.partitions
            .read()
            .map(|p| p.values().cloned().collect())
            .unwrap_or_default()
    }

    fn topic_config(&self, image: &MetadataImage, topic: &str) -> LogConfig {
        let overrides = image.configs.get(&ConfigResource::Topic(topic.to_string()));
        let mut props: HashMap<String, String> = HashMap::new();
        let d = &self.defaults;
        for (k, v) in [
            ("segment.bytes", d.segment_bytes.to_string()),
            ("segment.ms", d.segment_ms.to_string()),
            ("retention.ms", d.retention_ms.to_string()),
            ("retention.bytes", d.retention_bytes.to_string()),
            ("max.message.bytes", d.max_message_bytes.to_string()),
        ] {
            props.insert(k.to_string(), v);
        }
        // The dynamic log defaults (the cluster-wide ones, then this broker's), then the
        // topic's own overrides.
        for resource in [
            ConfigResource::Broker(String::new()),
            ConfigResource::Broker(self.broker_id.to_string()),
        ] {
            let dynamic = image.configs.get(&resource);
            for (broker_key, topic_key) in
                odradek_controller::managers::broker_configs::LOG_DEFAULTS
            {
                if let Some(v) = dynamic.get(*broker_key) {
                    props.insert(topic_key.to_string(), v.clone());
                }
            }
        }
        for (k, v) in overrides {
            if odradek_log::LOG_CONFIG_KEYS.contains(&k.as_str()) {
                props.insert(k, v);
            }
        }
        LogConfig::from_properties(&props)
            .map(|(c, _)| c)
            .unwrap_or_else(|_| self.defaults.clone())
    }

    /// Acts on `changes`, which made `image`: opens the replicas newly assigned here, deletes
    /// those no longer assigned, applies config changes, and drives the replicas of changed
    /// topics to their roles (every replica when the image was replaced). Returns what the
    /// replica fetchers must do. Opening and deleting logs reads and writes disk: call on a
    /// blocking thread.
    pub fn apply(&self, changes: &MetadataChanges, image: &MetadataImage) -> Vec<Change> {
        let now = self.clock.now_ms();
        // The topics to look at: changed, deleted, or with changed configs.
        let mut scope: HashSet<Uuid> = changes.topics.iter().copied().collect();
        scope.extend(changes.deleted_topics.keys().copied());
        let own = self.broker_id.to_string();
        for r in &changes.configs {
            match r {
                ConfigResource::Topic(name) => {
                    scope.extend(image.topics.get_by_name(name).map(|t| t.id));
                }
                // A dynamic log default changed: every topic may inherit it.
                ConfigResource::Broker(b) if b.is_empty() || *b == own => {
                    scope.extend(image.topics.by_id.keys().copied());
                }
                ConfigResource::Broker(_) | ConfigResource::Group(_) => {}
            }
        }
        if let Ok(mut retry) = self.retry.lock() {
            scope.extend(retry.drain());
        }
        if changes.everything {
            scope.extend(image.topics.by_id.keys().copied());
            scope.extend(self.all().iter().map(|p| p.topic_id));
        }
        self.throttles.update(image, self.broker_id, now);
        let mut wanted: HashMap<(Uuid, i32), Wanted> = HashMap::new();
        for t in scope.iter().filter_map(|id| image.topics.by_id.get(id)) {
            let config = self.topic_config(image, &t.name);
            let overrides = image.configs.get(&ConfigResource::Topic(t.name.clone()));
            let leader_throttled =
                Throttled::parse(overrides.get(throttle::LEADER_REPLICAS), self.broker_id);
            let follower_throttled =
                Throttled::parse(overrides.get(throttle::FOLLOWER_REPLICAS), self.broker_id);
            for (p, reg) in &t.partitions {
                if reg.replicas.contains(&self.broker_id) {
                    let state = PartitionState {
                        leader: reg.leader,
                        leader_epoch: reg.leader_epoch,
                        partition_epoch: reg.partition_epoch,
                        replicas: reg.replicas.clone(),
                        isr: reg.isr.clone(),
                    };
                    let throttled = (
                        leader_throttled.contains(*p),
                        follower_throttled.contains(*p),
                    );
                    wanted.insert(
                        (t.id, *p),
                        (t.name.clone(), config.clone(), state, throttled),
                    );
                }
            }
        }
        let mut changes = Vec::new();
        // Removed: out of the map first (under the lock), deleted after (outside it).
        let removed: Vec<Arc<HostedPartition>> = match self.partitions.write() {
            Ok(mut partitions) => {
                let gone: Vec<(Uuid, i32)> = partitions
                    .keys()
                    .filter(|k| scope.contains(&k.0) && !wanted.contains_key(k))
                    .copied()
                    .collect();
                gone.iter().filter_map(|k| partitions.remove(k)).collect()
            }
            Err(_) => return changes,
        };
        let hosted_topics: HashSet<String> = self.all().iter().map(|h| h.topic.clone()).collect();
        for p in removed {
            if !hosted_topics.contains(&p.topic) {
                // The topic's last replica here: its counters go (bounded label sets).
                self.metrics.remove_topic(&p.topic);
            }
            if let Ok(mut c) = self.checkpointed.lock() {
                c.remove(&(p.topic.clone(), p.index));
            }
            changes.push(Change::Unfollow(Arc::clone(&p)));
            {
                let _locked = p.lock();
                p.removed.store(true, Ordering::Release);
            }
            let dir = self.dirs[p.dir]
                .path
                .join(format!("{}-{}", p.topic, p.index));
            tracing::info!(topic = %p.topic, partition = p.index, "deleting the replica of a removed partition");
            if let Err(e) = std::fs::remove_dir_all(&dir) {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot delete partition directory");
            }
        }
        // Offline replicas no longer assigned here are forgotten (their files stay on the
        // failed directory); the others are not opened again.
        let offline: HashSet<(Uuid, i32)> = match self.offline.lock() {
            Ok(mut o) => {
                o.retain(|k| !scope.contains(&k.0) || wanted.contains_key(k));
                o.clone()
            }
            Err(_) => HashSet::new(),
        };
        // New: opened (and recovered) outside the map lock.
        let missing: Vec<((Uuid, i32), String, LogConfig)> = {
            let Ok(partitions) = self.partitions.read() else {
                return changes;
            };
            wanted
                .iter()
                .filter(|(k, _)| !partitions.contains_key(k) && !offline.contains(k))
                .map(|(k, (name, config, _, _))| (*k, name.clone(), config.clone()))
                .collect()
        };
        for ((id, index), name, config) in missing {
            let Some(dir_index) = self.place(&name, index) else {
                tracing::error!(topic = %name, partition = index, "no online log directory for a new replica");
                self.retry_later(id);
                continue;
            };
            let dir = self.dirs[dir_index].path.join(format!("{name}-{index}"));
            if let Err(e) = claim_directory(&dir, id) {
                tracing::error!(dir = %dir.display(), error = %e, "cannot prepare partition directory; retrying with the next metadata update");
                self.retry_later(id);
                continue;
            }
            match Log::open(&dir, config, now) {
                Ok(log) => {
                    let hw = self
                        .checkpointed
                        .lock()
                        .ok()
                        .and_then(|c| c.get(&(name.clone(), index)).map(|(_, hw)| *hw));
                    let log_end_offset = log.log_end_offset();
                    let replica = match Partition::new(name.clone(), index, self.broker_id, log, hw)
                    {
                        Ok(r) => r,
                        Err(e) => {
                            tracing::error!(dir = %dir.display(), error = %e, "cannot load the partition's producer state; retrying with the next metadata update");
                            self.retry_later(id);
                            continue;
                        }
                    };
                    tracing::info!(topic = %name, partition = index, log_end_offset, high_watermark = ?hw, producers = replica.producer_states().producers().count(), "opened partition replica");
                    let metrics = self.metrics.topic(&name);
                    let hosted = Arc::new(HostedPartition {
                        topic: name,
                        topic_id: id,
                        index,
                        reader: replica.reader(),
                        rules: Mutex::new(AppendRules::of(replica.log().config())),
                        high_watermark: replica.high_watermark_handle(),
                        last_stable_offset: replica.last_stable_offset_handle(),
                        has_aborted: replica.has_aborted_handle(),
                        replica: Mutex::new(replica),
                        hw_waiters: Wakers::default(),
                        leo_waiters: Wakers::default(),
                        lw_waiters: Wakers::default(),
                        removed: std::sync::atomic::AtomicBool::new(false),
                        dir: dir_index,
                        dir_failed: Arc::clone(&self.dirs[dir_index].failed),
                        syncer: self.dirs[dir_index].syncer.clone(),
                        leader_throttled: AtomicBool::new(false),
                        follower_throttled: AtomicBool::new(false),
                        metrics,
                    });
                    match self.partitions.write() {
                        // Only into a directory still online (see take_failed_dirs_offline).
                        Ok(mut partitions) if self.dirs[dir_index].is_online() => {
                            partitions.insert((id, index), hosted);
                        }
                        _ => self.retry_later(id),
                    }
                }
                Err(e) => {
                    tracing::error!(dir = %dir.display(), error = %e, "cannot open partition log; retrying with the next metadata update");
                    self.retry_later(id);
                }
            }
        }
        // Every wanted replica: config and role.
        for (key, (_, config, state, (leader_throttled, follower_throttled))) in wanted {
            let Some(hosted) = self.get(key.0, key.1) else {
                continue;
            };
            hosted
                .leader_throttled
                .store(leader_throttled, Ordering::Relaxed);
            hosted
                .follower_throttled
                .store(follower_throttled, Ordering::Relaxed);
            let Ok(mut p) = hosted.lock() else { continue };
            if p.log().config() != &config {
                if let Ok(mut rules) = hosted.rules.lock() {
                    *rules = AppendRules::of(&config);
                }
                p.log_mut().set_config(config);
            }
            if p.state() == &state {
                continue;
            }
            // ISR changes of a partition led here before and after, whoever made them (this
            // leader's AlterPartition, or the controller removing a fenced broker).
            let _span = tracing::info_span!("partition", broker_id = self.broker_id, topic = %hosted.topic, partition = hosted.index, leader_epoch = state.leader_epoch).entered();
            let was_leading = p.role() == odradek_replication::Role::Leader;
            let isr_before = p.state().isr.len();
            let (isr_after, leading) = (state.isr.len(), state.leader == self.broker_id);
            let (transition, advanced) = p.apply(state, now);
            drop(p);
            if was_leading && leading {
                match isr_after.cmp(&isr_before) {
                    std::cmp::Ordering::Less => hosted.metrics.isr_shrinks.inc(),
                    std::cmp::Ordering::Greater => hosted.metrics.isr_expands.inc(),
                    std::cmp::Ordering::Equal => 0,
                };
            }
            if advanced {
                hosted.hw_waiters.wake_all();
            }
            // The replicas or ISR changed (a broker fenced, say): DeleteRecords re-checks.
            hosted.lw_waiters.wake_all();
            if transition != Transition::Updated {
                // Waiters under the old role or epoch must see the change: acks=all answers
                // NOT_LEADER_OR_FOLLOWER at once, fetches re-check leadership.
                hosted.hw_waiters.wake_all();
                hosted.leo_waiters.wake_all();
            }
            match transition {
                Transition::BecameFollower { leader } => changes.push(Change::Follow {
                    partition: Arc::clone(&hosted),
                    leader,
                }),
                Transition::BecameLeader | Transition::BecameLeaderless => {
                    changes.push(Change::Unfollow(Arc::clone(&hosted)));
                }
                Transition::Updated => {}
            }
        }
        changes
    }

    fn retry_later(&self, topic_id: Uuid) {
        if let Ok(mut retry) = self.retry.lock() {
            retry.insert(topic_id);
        }
    }

    /// ISR shrinks due now, for every partition this broker leads.
    pub fn maybe_shrink_isrs(
        &self,
        replica_lag_time_max_ms: i64,
    ) -> Vec<(Arc<HostedPartition>, IsrProposal)> {
        let now = self.clock.now_ms();
        self.all()
            .into_iter()
            .filter_map(|h| {
                let proposal = h
                    .lock()
                    .ok()?
                    .maybe_shrink_isr(now, replica_lag_time_max_ms)?;
                Some((h, proposal))
            })
            .collect()
    }

    /// Forgets, in every hosted replica, the producers idle for `expiration_ms`.
    pub fn remove_expired_producers(&self, expiration_ms: i64) {
        let now = self.clock.now_ms();
        for p in self.all() {
            if let Ok(mut replica) = p.lock() {
                let n = replica.remove_expired_producers(now, expiration_ms);
                if n > 0 {
                    tracing::info!(topic = %p.topic, partition = p.index, expired = n, "forgot idle producers (producer.id.expiration.ms)");
                }
            }
        }
    }

    /// One retention (and compaction) pass over every log. Retention holds a log's lock while
    /// it deletes whole segments; compaction holds it only to plan and to swap the cleaned
    /// segments in, not while it reads and rewrites them (appends and follower fetches go on).
    pub fn enforce_retention(&self) {
        let now = self.clock.now_ms();
        for p in self.all() {
            let job = {
                let Ok(mut replica) = p.lock() else { continue };
                let log = replica.log_mut();
                if let Err(e) = log.enforce_retention(now) {
                    tracing::warn!(topic = %p.topic, partition = p.index, error = %e, "retention failed");
                    if e.error_code() == ErrorCode::KafkaStorageError {
                        p.report_storage_error(&e);
                    }
                }
                log.plan_compaction(now, false)
            };
            let Some(job) = job else { continue };
            let committed = job.run().and_then(|done| match p.lock() {
                Ok(_) if p.removed.load(Ordering::Acquire) => {
                    done.discard().map(|()| Default::default())
                }
                Ok(mut replica) => replica.log_mut().commit_compaction(done),
                Err(_) => done.discard().map(|()| Default::default()),
            });
            if let Err(e) = committed {
                tracing::warn!(topic = %p.topic, partition = p.index, error = %e, "compaction failed");
            }
        }
    }

    /// Checkpoints the high watermarks, then flushes and closes every log cleanly (the next
    /// start trusts their indexes).
    pub fn close_all(&self) {
        self.checkpoint_high_watermarks();
        let Ok(mut partitions) = self.partitions.write() else {
            return;
        };
        for (_, p) in partitions.drain() {
            match Arc::try_unwrap(p) {
                Ok(p) => {
                    if let Ok(replica) = p.replica.into_inner() {
                        if let Err(e) = replica.into_log().close() {
                            tracing::warn!(error = %e, "closing a log failed");
                        }
                    }
                }
                Err(p) => {
                    if let Ok(mut replica) = p.lock() {
                        let _ = replica.log_mut().flush();
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use odradek_common::SystemClock;
    use odradek_log::LogConfig;
    use odradek_metadata::{ConfigResource, ConfigsImage, MetadataImage};

    use super::ReplicaManager;

    fn image(configs: &[(ConfigResource, &str, &str)]) -> MetadataImage {
        let mut c = ConfigsImage::default();
        for (r, k, v) in configs {
            c.resources
                .get_or_insert_with(r.clone(), BTreeMap::new)
                .insert(k.to_string(), v.to_string());
        }
        MetadataImage {
            configs: Arc::new(c),
            ..MetadataImage::empty()
        }
    }

    #[test]
    fn topics_inherit_dynamic_log_defaults_under_their_own_overrides() {
        let dir = tempfile::tempdir().expect("tempdir");
        let m = ReplicaManager::new(
            vec![dir.path().to_path_buf()],
            LogConfig::default(),
            1,
            Arc::new(SystemClock),
        )
        .expect("manager");
        let broker = |id: &str| ConfigResource::Broker(id.to_string());
        let topic = ConfigResource::Topic("t".into());
        let img = image(&[
            (broker(""), "log.retention.ms", "7200000"),
            (broker(""), "log.segment.bytes", "1048576"),
            (broker("1"), "log.segment.bytes", "2097152"),
            (broker("2"), "log.retention.bytes", "5"),
        ]);
        let c = m.topic_config(&img, "t");
        assert_eq!(c.retention_ms, 7_200_000, "the cluster-wide default");
        assert_eq!(
            c.segment_bytes, 2_097_152,
            "this broker's value over the default"
        );
        assert_eq!(
            c.retention_bytes,
            LogConfig::default().retention_bytes,
            "another broker's value does not apply"
        );
        let img = image(&[
            (broker(""), "log.retention.ms", "7200000"),
            (topic, "retention.ms", "1000"),
        ]);
        assert_eq!(
            m.topic_config(&img, "t").retention_ms,
            1000,
            "the topic's override wins"
        );
    }

    #[test]
    fn two_copies_of_a_partition_are_refused() {
        let a = tempfile::tempdir().expect("tempdir");
        let b = tempfile::tempdir().expect("tempdir");
        for d in [&a, &b] {
            let p = d.path().join("t-0");
            std::fs::create_dir_all(&p).expect("mkdir");
            std::fs::write(p.join(super::dirs::PARTITION_METADATA), "version: 0\n").expect("write");
        }
        let dirs = vec![a.path().to_path_buf(), b.path().to_path_buf()];
        let e = ReplicaManager::new(dirs, LogConfig::default(), 1, Arc::new(SystemClock))
            .expect_err("refused");
        assert!(e.contains("t-0"), "{e}");
    }
}
