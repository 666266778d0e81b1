//! One partition replica on one broker: its log, its role, the followers' progress as its
//! leader sees it, the high watermark and the ISR changes it proposes.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;

use odradek_log::control::encode_control_batch;
use odradek_log::{
    AppendRules, ControlRecord, Log, LogAppendInfo, LogReader, TimestampType, ValidatedBatches,
};

use crate::error::{ReplicationError, Result};
use crate::producer::{AbortedTxn, Prepared, ProducerStates};

mod follower;
mod isr;

/// No leader (Kafka's -1).
pub const NO_LEADER: i32 = -1;

/// The partition as the metadata image registers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionState {
    /// Leader broker, or [`NO_LEADER`].
    pub leader: i32,
    /// Bumped on every leader change.
    pub leader_epoch: i32,
    /// Bumped on every change (ISR included).
    pub partition_epoch: i32,
    /// Assigned replicas.
    pub replicas: Vec<i32>,
    /// The committed in-sync replicas.
    pub isr: Vec<i32>,
}

/// What this replica is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// It leads: it appends producer batches and serves followers.
    Leader,
    /// It follows `leader`, fetching from it.
    Follower {
        /// The leader's broker id.
        leader: i32,
    },
    /// The partition has no leader: this replica waits.
    Leaderless,
}

/// What [`Partition::apply`] changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// This replica became the leader (or stayed leader under a new leader epoch).
    BecameLeader,
    /// This replica became a follower of `leader` (or follows under a new epoch).
    BecameFollower {
        /// The leader to fetch from.
        leader: i32,
    },
    /// The partition lost its leader.
    BecameLeaderless,
    /// Same role and epoch; the ISR, replicas or partition epoch may have changed.
    Updated,
}

/// An ISR change for the leader to send to the controller (AlterPartition).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsrProposal {
    /// The leader epoch it is proposed under.
    pub leader_epoch: i32,
    /// The partition epoch it is based on.
    pub partition_epoch: i32,
    /// The proposed ISR.
    pub new_isr: Vec<i32>,
}

/// A leader epoch and the offset where it ended (Kafka's `EpochEndOffset`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochEndOffset {
    /// The epoch (-1 when unknown).
    pub epoch: i32,
    /// Its end offset (-1 when unknown).
    pub end_offset: i64,
}

/// The outcome of a leader append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderAppend {
    /// Offsets and sizes assigned by the log.
    pub info: LogAppendInfo,
    /// The leader epoch the batch was appended under (an acks=all waiter checks it still holds).
    pub leader_epoch: i32,
    /// The high watermark moved (a single-member ISR commits at once).
    pub high_watermark_advanced: bool,
    /// The batch was a producer's retry of one already in the log: nothing was appended and
    /// `info` holds the original offsets (record count and bytes 0).
    pub duplicate: bool,
}

/// What the leader tells a follower's fetch before the records are read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowerFetch {
    /// The follower's log diverges from the leader's: it must truncate, and gets no records.
    pub diverging_epoch: Option<EpochEndOffset>,
    /// The leader's high watermark after this fetch.
    pub high_watermark: i64,
    /// The leader's log start offset.
    pub log_start_offset: i64,
    /// The leader's log end offset (followers read up to it).
    pub log_end_offset: i64,
    /// The fetch moved the high watermark (complete acks=all waiters and consumer fetches).
    pub high_watermark_advanced: bool,
    /// The follower caught up and should join the ISR.
    pub isr_proposal: Option<IsrProposal>,
}

/// A follower's progress, as its leader tracks it (Kafka's `ReplicaState`).
#[derive(Debug, Clone, Copy)]
struct Progress {
    /// The follower's log end offset (its last fetch offset), -1 until it fetches.
    log_end_offset: i64,
    /// The last time it was caught up to the leader's log end.
    last_caught_up_ms: i64,
    /// The leader's log end offset at the follower's previous fetch.
    last_fetch_leader_log_end_offset: i64,
    /// When that fetch was.
    last_fetch_ms: i64,
    /// The follower's log start offset, as its last fetch reported it (-1 until then).
    log_start_offset: i64,
}

impl Progress {
    fn new(in_isr: bool, now_ms: i64) -> Self {
        Self {
            log_end_offset: -1,
            // ISR members get replica.lag.time.max.ms from now to show up.
            last_caught_up_ms: if in_isr { now_ms } else { i64::MIN / 2 },
            last_fetch_leader_log_end_offset: -1,
            last_fetch_ms: now_ms,
            log_start_offset: -1,
        }
    }
}

/// One hosted partition replica. Synchronous and I/O-free but for its log: every input
/// (metadata state, appends, follower fetches, time) comes in as an argument, every effect
/// (high watermark advanced, ISR change to propose, divergence) goes out as a value.
#[derive(Debug)]
pub struct Partition {
    topic: String,
    index: i32,
    broker_id: i32,
    log: Log,
    state: PartitionState,
    role: Role,
    high_watermark: i64,
    /// The high watermark for readers that do not hold the partition (consumer fetches).
    published_high_watermark: Arc<AtomicI64>,
    /// The last stable offset (read_committed fetches), likewise.
    published_last_stable_offset: Arc<AtomicI64>,
    /// Whether the log holds an aborted transaction, likewise: a read_committed fetch takes the
    /// lock for the list only then.
    published_has_aborted: Arc<AtomicBool>,
    /// Followers' progress (leader only).
    followers: BTreeMap<i32, Progress>,
    /// An ISR change sent to the controller and not yet seen committed.
    pending_isr: Option<Vec<i32>>,
    /// The log end offset when this replica became leader under the current epoch.
    leader_epoch_start_offset: i64,
    /// Idempotent producers' epochs and last sequences.
    producers: ProducerStates,
    /// The active segment's base offset at the last append: a change means the log rolled, and
    /// the producer state is snapshotted.
    active_segment_base: i64,
    /// Its log directory failed: it neither leads nor follows again (metadata is ignored), so
    /// nothing more is appended to it or acknowledged from it.
    offline: bool,
}

impl Partition {
    /// A replica of `topic`-`index` on broker `broker_id` over `log`, leaderless until the first
    /// [`Partition::apply`]. `checkpointed_high_watermark` comes from
    /// `replication-offset-checkpoint` (clamped to the log). The producer state is loaded from
    /// the log's snapshots and the batches after the latest one; reading them can fail.
    pub fn new(
        topic: impl Into<String>,
        index: i32,
        broker_id: i32,
        log: Log,
        checkpointed_high_watermark: Option<i64>,
    ) -> Result<Self> {
        let high_watermark = checkpointed_high_watermark
            .unwrap_or(log.log_start_offset())
            .clamp(log.log_start_offset(), log.log_end_offset());
        let producers = ProducerStates::load(log.dir(), &log.reader())?;
        let mut p = Self {
            producers,
            active_segment_base: log.active_segment_base_offset(),
            topic: topic.into(),
            index,
            broker_id,
            log,
            state: PartitionState {
                leader: NO_LEADER,
                leader_epoch: -1,
                partition_epoch: -1,
                replicas: Vec::new(),
                isr: Vec::new(),
            },
            role: Role::Leaderless,
            high_watermark,
            published_high_watermark: Arc::new(AtomicI64::new(high_watermark)),
            published_last_stable_offset: Arc::new(AtomicI64::new(high_watermark)),
            published_has_aborted: Arc::new(AtomicBool::new(false)),
            followers: BTreeMap::new(),
            pending_isr: None,
            leader_epoch_start_offset: 0,
            offline: false,
        };
        p.set_high_watermark(high_watermark);
        Ok(p)
    }

    /// The topic name.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The partition index.
    pub fn index(&self) -> i32 {
        self.index
    }

    /// This replica's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The partition as last applied from metadata.
    pub fn state(&self) -> &PartitionState {
        &self.state
    }

    /// The current leader epoch (-1 before the first apply).
    pub fn leader_epoch(&self) -> i32 {
        self.state.leader_epoch
    }

    /// The high watermark: offsets below it are committed (replicated to every ISR member).
    pub fn high_watermark(&self) -> i64 {
        self.high_watermark
    }

    /// A lock-free view of the high watermark, updated whenever it moves.
    pub fn high_watermark_handle(&self) -> Arc<AtomicI64> {
        Arc::clone(&self.published_high_watermark)
    }

    /// The last stable offset: the high watermark, or the first offset of the earliest
    /// transaction that is open (or whose marker is not yet committed) if that is lower.
    /// read_committed consumers read below it.
    pub fn last_stable_offset(&self) -> i64 {
        self.producers
            .first_unstable_offset()
            .map_or(self.high_watermark, |f| f.min(self.high_watermark))
    }

    /// A lock-free view of the last stable offset.
    pub fn last_stable_offset_handle(&self) -> Arc<AtomicI64> {
        Arc::clone(&self.published_last_stable_offset)
    }

    /// A lock-free view of whether the log holds an aborted transaction (if not, a
    /// read_committed fetch has none to report).
    pub fn has_aborted_handle(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.published_has_aborted)
    }

    /// The aborted transactions a read_committed fetch of `[from, upper)` reports.
    pub fn aborted_transactions(&self, from: i64, upper: i64) -> Vec<AbortedTxn> {
        self.producers.aborted_transactions(from, upper)
    }

    fn publish_last_stable_offset(&mut self) {
        self.producers.on_high_watermark(self.high_watermark);
        let lso = self.last_stable_offset();
        self.published_last_stable_offset
            .store(lso, Ordering::Release);
        self.published_has_aborted
            .store(self.producers.has_aborted(), Ordering::Release);
    }

    /// The ISR the leader counts for the high watermark: the committed ISR plus members of a
    /// pending expansion (Kafka's "maximal ISR"; a pending shrink still counts the members it
    /// would remove).
    pub fn maximal_isr(&self) -> Vec<i32> {
        let mut isr = self.state.isr.clone();
        if let Some(pending) = &self.pending_isr {
            for r in pending {
                if !isr.contains(r) {
                    isr.push(*r);
                }
            }
        }
        isr
    }

    /// The log.
    pub fn log(&self) -> &Log {
        &self.log
    }

    /// The log, for retention, compaction, flushes and DeleteRecords (which stay below the
    /// high watermark through [`Log::update_high_watermark`]).
    pub fn log_mut(&mut self) -> &mut Log {
        &mut self.log
    }

    /// A reader of the log for fetches outside the partition's lock.
    pub fn reader(&self) -> LogReader {
        self.log.reader()
    }

    /// Consumes the replica, returning its log (to close it), after a snapshot of the producer
    /// state at the log end (a failure to write it is logged: the next start replays more).
    pub fn into_log(mut self) -> Log {
        if let Err(e) = self.producers.write_snapshot(self.log.log_start_offset()) {
            tracing::warn!(topic = %self.topic, partition = self.index, error = %e, "cannot snapshot the producer state");
        }
        self.log
    }

    /// The idempotent producers this replica knows.
    pub fn producer_states(&self) -> &ProducerStates {
        &self.producers
    }

    /// Forgets producers idle for `producer.id.expiration.ms`; returns how many.
    pub fn remove_expired_producers(&mut self, now_ms: i64, expiration_ms: i64) -> usize {
        self.producers.remove_expired(now_ms, expiration_ms)
    }

    /// After an append: if the log rolled, snapshot the producer state at the log end (Kafka
    /// snapshots at every roll, so recovery replays at most a segment).
    fn after_append(&mut self) {
        let base = self.log.active_segment_base_offset();
        if base != self.active_segment_base {
            self.active_segment_base = base;
            if let Err(e) = self.producers.write_snapshot(self.log.log_start_offset()) {
                tracing::warn!(topic = %self.topic, partition = self.index, error = %e, "cannot snapshot the producer state");
            }
        }
    }

    /// The log was truncated: the producer state is rebuilt for what remains.
    fn reload_producers(&mut self) -> Result<()> {
        self.active_segment_base = self.log.active_segment_base_offset();
        self.producers.reload(&self.log.reader())?;
        self.publish_last_stable_offset();
        Ok(())
    }

    fn not(&self, role: &'static str) -> ReplicationError {
        ReplicationError::NotLeaderOrFollower {
            topic: self.topic.clone(),
            partition: self.index,
            broker: self.broker_id,
            role,
        }
    }

    /// Kafka's leader epoch rule for a request carrying `current_leader_epoch` (-1: no check):
    /// older is FENCED_LEADER_EPOCH, newer UNKNOWN_LEADER_EPOCH.
    pub fn check_leader_epoch(&self, current_leader_epoch: i32) -> Result<()> {
        let current = self.state.leader_epoch;
        if current_leader_epoch < 0 || current_leader_epoch == current {
            return Ok(());
        }
        let (topic, partition, request) = (self.topic.clone(), self.index, current_leader_epoch);
        if request < current {
            Err(ReplicationError::FencedLeaderEpoch {
                topic,
                partition,
                request,
                current,
            })
        } else {
            Err(ReplicationError::UnknownLeaderEpoch {
                topic,
                partition,
                request,
                current,
            })
        }
    }

    /// Checks that this replica leads, under `current_leader_epoch` if one is given.
    pub fn check_leader(&self, current_leader_epoch: i32) -> Result<()> {
        self.check_leader_epoch(current_leader_epoch)?;
        if self.role != Role::Leader {
            return Err(self.not("leader"));
        }
        Ok(())
    }

    fn set_high_watermark(&mut self, hw: i64) {
        self.high_watermark = hw;
        self.log.update_high_watermark(hw);
        self.published_high_watermark.store(hw, Ordering::Release);
        self.publish_last_stable_offset();
    }

    /// Its log directory failed: the replica stops leading and following for good. Waiting
    /// acks=all appends answer NOT_LEADER_OR_FOLLOWER (they were not committed by it), appends
    /// and fetches are refused.
    pub fn go_offline(&mut self) {
        self.offline = true;
        self.role = Role::Leaderless;
        self.followers.clear();
        self.pending_isr = None;
    }

    /// Whether [`Partition::go_offline`] was called.
    pub fn is_offline(&self) -> bool {
        self.offline
    }

    /// Applies the partition's registration from a metadata delta. Returns the transition and
    /// whether the high watermark moved (a committed shrink can let it advance).
    pub fn apply(&mut self, state: PartitionState, now_ms: i64) -> (Transition, bool) {
        if self.offline {
            return (Transition::Updated, false);
        }
        let was = self.role;
        let new_epoch = state.leader_epoch != self.state.leader_epoch;
        let partition_epoch_changed = state.partition_epoch != self.state.partition_epoch;
        self.state = state;
        let committed = self.pending_isr.as_ref().is_some_and(|pending| {
            let mut a = pending.clone();
            let mut b = self.state.isr.clone();
            a.sort_unstable();
            b.sort_unstable();
            a == b
        });
        if partition_epoch_changed || committed {
            // Whatever was pending was committed or refused; the image says which.
            self.pending_isr = None;
        }
        let transition = if self.state.leader == self.broker_id {
            if was != Role::Leader || new_epoch {
                self.role = Role::Leader;
                self.leader_epoch_start_offset = self.log.log_end_offset();
                if let Err(e) = self.log.assign_epoch_start(self.state.leader_epoch) {
                    // The cache file could not be written; the epoch is still recorded in
                    // memory and with the first batch.
                    tracing::warn!(topic = %self.topic, partition = self.index, error = %e, "cannot persist the leader epoch start");
                }
                self.pending_isr = None;
                self.followers = self
                    .state
                    .replicas
                    .iter()
                    .filter(|r| **r != self.broker_id)
                    .map(|r| (*r, Progress::new(self.state.isr.contains(r), now_ms)))
                    .collect();
                tracing::info!(topic = %self.topic, partition = self.index, leader_epoch = self.state.leader_epoch,
                    log_end_offset = self.log.log_end_offset(), high_watermark = self.high_watermark, "became leader");
                Transition::BecameLeader
            } else {
                // Same epoch: follow replica-set changes.
                let replicas = self.state.replicas.clone();
                self.followers.retain(|r, _| replicas.contains(r));
                for r in replicas.iter().filter(|r| **r != self.broker_id) {
                    self.followers
                        .entry(*r)
                        .or_insert_with(|| Progress::new(false, now_ms));
                }
                Transition::Updated
            }
        } else if self.state.leader == NO_LEADER {
            self.role = Role::Leaderless;
            self.followers.clear();
            if was == Role::Leaderless {
                Transition::Updated
            } else {
                Transition::BecameLeaderless
            }
        } else {
            let leader = self.state.leader;
            self.role = Role::Follower { leader };
            self.followers.clear();
            self.pending_isr = None;
            if was != self.role || new_epoch {
                tracing::info!(topic = %self.topic, partition = self.index, leader, leader_epoch = self.state.leader_epoch,
                    log_end_offset = self.log.log_end_offset(), "became follower");
                Transition::BecameFollower { leader }
            } else {
                Transition::Updated
            }
        };
        let advanced = self.maybe_advance_high_watermark();
        (transition, advanced)
    }

    /// HW = min log end offset over the maximal ISR; it never moves back. Leader only.
    fn maybe_advance_high_watermark(&mut self) -> bool {
        if self.role != Role::Leader {
            return false;
        }
        let mut hw = self.log.log_end_offset();
        for r in self.maximal_isr() {
            if r == self.broker_id {
                continue;
            }
            match self.followers.get(&r) {
                Some(p) if p.log_end_offset >= 0 => hw = hw.min(p.log_end_offset),
                // A member we have not heard from since becoming leader holds it where it is.
                _ => hw = hw.min(self.high_watermark),
            }
        }
        if hw > self.high_watermark {
            self.set_high_watermark(hw);
            true
        } else {
            false
        }
    }

    /// Appends a producer's batch as leader. With acks=all (-1), an ISR smaller than
    /// `min_insync_replicas` is NOT_ENOUGH_REPLICAS before anything is written.
    pub fn append_as_leader(
        &mut self,
        batches: ValidatedBatches<'_>,
        acks: i16,
        min_insync_replicas: usize,
        now_ms: i64,
    ) -> Result<LeaderAppend> {
        self.append_checked(batches, acks, min_insync_replicas, now_ms, true)
    }

    /// [`Partition::append_as_leader`] for a coordinator's batches on its internal topic
    /// (transactional offset commits carry a producer id and epoch but no sequence: only the
    /// epoch is checked, as Kafka does for its coordinators' appends).
    pub fn append_as_coordinator(
        &mut self,
        batches: ValidatedBatches<'_>,
        acks: i16,
        min_insync_replicas: usize,
        now_ms: i64,
    ) -> Result<LeaderAppend> {
        self.append_checked(batches, acks, min_insync_replicas, now_ms, false)
    }

    fn append_checked(
        &mut self,
        batches: ValidatedBatches<'_>,
        acks: i16,
        min_insync_replicas: usize,
        now_ms: i64,
        client: bool,
    ) -> Result<LeaderAppend> {
        self.check_leader(-1)?;
        if acks == -1 {
            self.check_min_isr(min_insync_replicas)?;
        }
        let append_time = (self.log.config().message_timestamp_type
            == TimestampType::LogAppendTime)
            .then_some(now_ms);
        let updated = match self.producers.prepare(
            batches.headers(),
            self.log.log_end_offset(),
            append_time,
            client,
        )? {
            Prepared::Duplicate(original) => {
                return Ok(LeaderAppend {
                    info: LogAppendInfo {
                        first_offset: original.first_offset,
                        last_offset: original.last_offset,
                        max_timestamp: original.timestamp,
                        log_append_time_ms: append_time.map(|_| original.timestamp),
                        record_count: 0,
                        bytes: 0,
                    },
                    leader_epoch: self.state.leader_epoch,
                    high_watermark_advanced: false,
                    duplicate: true,
                });
            }
            Prepared::Append(updated) => updated,
        };
        let info = self
            .log
            .append_validated_as_leader(batches, self.state.leader_epoch, now_ms)?;
        self.producers.commit(updated, self.log.log_end_offset());
        Ok(self.appended(info))
    }

    /// Writes a transaction marker for `producer_id` as leader (WriteTxnMarkers from the
    /// transaction coordinator), after Kafka's epoch and coordinator epoch checks; with acks=all
    /// semantics the caller waits for the high watermark to pass it.
    pub fn append_marker_as_leader(
        &mut self,
        producer_id: i64,
        producer_epoch: i16,
        marker: ControlRecord,
        min_insync_replicas: usize,
        now_ms: i64,
    ) -> Result<LeaderAppend> {
        self.check_leader(-1)?;
        self.check_min_isr(min_insync_replicas)?;
        self.producers
            .check_marker(producer_id, producer_epoch, marker.coordinator_epoch)?;
        let bytes = encode_control_batch(producer_id, producer_epoch, marker, now_ms);
        let batches = ValidatedBatches::for_leader(&bytes, AppendRules::of(self.log.config()))?;
        let mut header = *batches.first();
        let info = self
            .log
            .append_validated_as_leader(batches, self.state.leader_epoch, now_ms)?;
        header.base_offset = info.first_offset;
        self.producers
            .record_appended([(&header, Some(marker))], self.log.log_end_offset());
        Ok(self.appended(info))
    }

    /// acks=all with an ISR smaller than `min.insync.replicas` is NOT_ENOUGH_REPLICAS.
    fn check_min_isr(&self, min_insync_replicas: usize) -> Result<()> {
        if self.state.isr.len() < min_insync_replicas {
            return Err(ReplicationError::NotEnoughReplicas {
                topic: self.topic.clone(),
                partition: self.index,
                isr: self.state.isr.len(),
                min: min_insync_replicas,
            });
        }
        Ok(())
    }

    /// What follows a leader's append: the roll snapshot, the HW (a single-member ISR commits
    /// at once) and the LSO.
    fn appended(&mut self, info: LogAppendInfo) -> LeaderAppend {
        self.after_append();
        let high_watermark_advanced = self.maybe_advance_high_watermark();
        self.publish_last_stable_offset();
        LeaderAppend {
            info,
            leader_epoch: self.state.leader_epoch,
            high_watermark_advanced,
            duplicate: false,
        }
    }

    /// Where an acks=all append of `last_offset` under `leader_epoch` stands: `None` while it
    /// waits, `Some(Ok)` once committed, or an error (leadership lost: NOT_LEADER_OR_FOLLOWER;
    /// committed with the ISR below `min_insync_replicas`: NOT_ENOUGH_REPLICAS_AFTER_APPEND).
    pub fn acks_all_outcome(
        &self,
        leader_epoch: i32,
        last_offset: i64,
        min_insync_replicas: usize,
    ) -> Option<Result<()>> {
        if self.role != Role::Leader || self.state.leader_epoch != leader_epoch {
            return Some(Err(self.not("leader")));
        }
        if self.high_watermark <= last_offset {
            return None;
        }
        if self.state.isr.len() < min_insync_replicas {
            return Some(Err(ReplicationError::NotEnoughReplicasAfterAppend {
                topic: self.topic.clone(),
                partition: self.index,
                isr: self.state.isr.len(),
                min: min_insync_replicas,
            }));
        }
        Some(Ok(()))
    }

    /// A follower's fetch at `fetch_offset`, having last fetched under `last_fetched_epoch`
    /// (-1: unknown), its log starting at `log_start_offset`. Records the follower's progress,
    /// advances the high watermark, proposes an ISR expansion when it caught up, or answers the
    /// epoch where its log diverges. The caller reads the records (up to the log end) with a
    /// [`LogReader`], outside any lock.
    pub fn follower_fetch(
        &mut self,
        replica: i32,
        fetch_offset: i64,
        last_fetched_epoch: i32,
        log_start_offset: i64,
        now_ms: i64,
    ) -> Result<FollowerFetch> {
        self.check_leader(-1)?;
        if !self.followers.contains_key(&replica) {
            return Err(ReplicationError::UnknownReplica {
                topic: self.topic.clone(),
                partition: self.index,
                replica,
            });
        }
        let log_end = self.log.log_end_offset();
        let answer = |p: &Self, diverging_epoch, advanced, isr_proposal| FollowerFetch {
            diverging_epoch,
            high_watermark: p.high_watermark,
            log_start_offset: p.log.log_start_offset(),
            log_end_offset: log_end,
            high_watermark_advanced: advanced,
            isr_proposal,
        };
        if last_fetched_epoch >= 0 {
            let (epoch, end_offset) = self.log.end_offset_for_epoch(last_fetched_epoch);
            if end_offset < 0 {
                // No epoch to agree on (Kafka answers OFFSET_OUT_OF_RANGE here too).
                return Err(ReplicationError::Log(
                    odradek_log::LogError::OffsetOutOfRange {
                        offset: fetch_offset,
                        log_start_offset: self.log.log_start_offset(),
                        log_end_offset: log_end,
                    },
                ));
            }
            if epoch < last_fetched_epoch || end_offset < fetch_offset {
                // KIP-320/KIP-595: the follower truncates to where the epochs agree first.
                return Ok(answer(
                    self,
                    Some(EpochEndOffset { epoch, end_offset }),
                    false,
                    None,
                ));
            }
        }
        if fetch_offset > log_end || fetch_offset < self.log.log_start_offset() {
            return Err(ReplicationError::Log(
                odradek_log::LogError::OffsetOutOfRange {
                    offset: fetch_offset,
                    log_start_offset: self.log.log_start_offset(),
                    log_end_offset: log_end,
                },
            ));
        }
        let p = self
            .followers
            .get_mut(&replica)
            .expect("checked above: the follower is tracked");
        p.log_end_offset = fetch_offset;
        p.log_start_offset = log_start_offset;
        if fetch_offset >= log_end {
            p.last_caught_up_ms = now_ms;
        } else if fetch_offset >= p.last_fetch_leader_log_end_offset {
            // Caught up to where the leader was at the previous fetch: caught up then.
            p.last_caught_up_ms = p.last_caught_up_ms.max(p.last_fetch_ms);
        }
        p.last_fetch_leader_log_end_offset = log_end;
        p.last_fetch_ms = now_ms;
        let advanced = self.maybe_advance_high_watermark();
        let isr_proposal = self.maybe_expand_isr(replica, fetch_offset);
        Ok(answer(self, None, advanced, isr_proposal))
    }

    /// DeleteRecords as leader: moves this replica's log start to `offset` (-1: the high
    /// watermark), which must not pass the high watermark, deleting whole segments below it.
    /// A topic whose `cleanup.policy` lacks `delete` is refused (POLICY_VIOLATION).
    /// Returns the offset asked for (-1 resolved), which DeleteRecords waits for the low
    /// watermark to reach: followers follow the log start on their next fetches (see
    /// [`Partition::low_watermark`]).
    pub fn delete_records_before(&mut self, offset: i64) -> Result<i64> {
        self.check_leader(-1)?;
        if !self.log.config().cleanup_policy.delete {
            // Kafka: POLICY_VIOLATION for a topic that is compacted only.
            return Err(ReplicationError::DeletePolicyViolation {
                topic: self.topic.clone(),
                partition: self.index,
            });
        }
        let offset = if offset == -1 {
            self.high_watermark
        } else {
            offset
        };
        self.log.delete_records_before(offset)?;
        Ok(offset)
    }

    /// Kafka's low watermark: the smallest log start offset over this leader and the followers
    /// on brokers that are `alive` (registered and unfenced), as they last reported it (-1 for
    /// one that has not fetched yet). DeleteRecords completes once it reaches the requested
    /// offset.
    pub fn low_watermark(&self, alive: impl Fn(i32) -> bool) -> i64 {
        self.followers
            .iter()
            .filter(|(id, _)| alive(**id))
            .map(|(_, p)| p.log_start_offset)
            .fold(self.log.log_start_offset(), i64::min)
    }

    /// The log end offset when this replica became leader under the current epoch.
    pub fn leader_epoch_start_offset(&self) -> i64 {
        self.leader_epoch_start_offset
    }
}
