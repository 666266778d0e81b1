//! Idempotent producer state of one partition (KIP-98): for every producer id, its epoch and
//! the sequence and offset ranges of its last [`BATCHES_TO_RETAIN`] batches, so that a leader
//! answers a retried batch with the offsets it was first given and refuses a gap in the
//! sequence. Kafka's rules, as its `ProducerAppendInfo` applies them to a client's batch:
//!
//! - an epoch older than the producer's is INVALID_PRODUCER_EPOCH;
//! - under a new epoch the first batch must have sequence 0 (unless the producer is unknown
//!   here: its batches may have been deleted by retention, so any sequence starts it);
//! - under the same epoch the batch must follow the last one (`last + 1`, wrapping after
//!   `i32::MAX`), else OUT_OF_ORDER_SEQUENCE_NUMBER;
//! - a batch whose epoch and sequence range equal one of the retained batches is a duplicate:
//!   nothing is appended and the original offsets are answered.
//!
//! Batches that arrive by replication or are replayed from the log are not checked, only
//! recorded. The state is written to `<offset>.snapshot` files in the log directory (at
//! segment roll and at close); a replica rebuilds it from the latest snapshot at or below its
//! log end plus the batch headers after it, and again after a truncation.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use odradek_log::{BatchHeader, ControlRecord, LogReader};

use crate::error::{ReplicationError, Result};

mod snapshot;
use snapshot::{encode_snapshot, read_snapshot};

/// Batches remembered per producer (Kafka: 5, the most a producer may have in flight with
/// idempotence on).
pub const BATCHES_TO_RETAIN: usize = 5;
/// The epoch of a producer with no state (Kafka's `NO_PRODUCER_EPOCH`).
pub const NO_PRODUCER_EPOCH: i16 = -1;

const SNAPSHOT_SUFFIX: &str = ".snapshot";

/// One appended batch of a producer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchMetadata {
    /// Sequence of its first record.
    pub first_sequence: i32,
    /// Sequence of its last record.
    pub last_sequence: i32,
    /// Offset of its first record.
    pub first_offset: i64,
    /// Offset of its last record.
    pub last_offset: i64,
    /// Its max timestamp (the append time under LogAppendTime).
    pub timestamp: i64,
}

/// What a partition knows of one producer id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerEntry {
    /// The producer's epoch ([`NO_PRODUCER_EPOCH`] before its first batch).
    pub epoch: i16,
    /// Its last batches under `epoch`, oldest first.
    batches: VecDeque<BatchMetadata>,
    /// Max timestamp of its last batch or marker (expiry counts from it, as in Kafka).
    pub last_timestamp: i64,
    /// Epoch of the transaction coordinator that wrote its last marker (-1: none).
    pub coordinator_epoch: i32,
    /// First offset of its open transaction, if one is open.
    pub current_txn_first_offset: Option<i64>,
}

impl ProducerEntry {
    fn empty() -> Self {
        Self {
            epoch: NO_PRODUCER_EPOCH,
            batches: VecDeque::new(),
            last_timestamp: -1,
            coordinator_epoch: -1,
            current_txn_first_offset: None,
        }
    }

    /// Sequence of the last record appended under the current epoch, -1 if none.
    pub fn last_sequence(&self) -> i32 {
        self.batches.back().map_or(-1, |b| b.last_sequence)
    }

    /// Offset of the last record appended under the current epoch, -1 if none.
    pub fn last_offset(&self) -> i64 {
        self.batches.back().map_or(-1, |b| b.last_offset)
    }

    /// The retained batches, oldest first.
    pub fn batches(&self) -> impl Iterator<Item = &BatchMetadata> {
        self.batches.iter()
    }

    fn find_duplicate(&self, epoch: i16, first: i32, last: i32) -> Option<BatchMetadata> {
        if epoch != self.epoch {
            return None;
        }
        self.batches
            .iter()
            .find(|b| b.first_sequence == first && b.last_sequence == last)
            .copied()
    }

    fn add_batch(&mut self, epoch: i16, batch: BatchMetadata) {
        if epoch != self.epoch {
            self.batches.clear();
            self.epoch = epoch;
        }
        self.batches.push_back(batch);
        if self.batches.len() > BATCHES_TO_RETAIN {
            self.batches.pop_front();
        }
        self.last_timestamp = batch.timestamp;
    }

    /// Records a data batch (checked or not) and the transaction it opens.
    fn record_data(&mut self, h: &BatchHeader, batch: BatchMetadata) {
        self.add_batch(h.producer_epoch, batch);
        if h.is_transactional() && self.current_txn_first_offset.is_none() {
            self.current_txn_first_offset = Some(batch.first_offset);
        }
    }

    /// Records a transaction marker: the transaction ends under the marker's epoch. Returns
    /// the first offset of the transaction it ended, if one was open.
    fn record_marker(&mut self, epoch: i16, coordinator_epoch: i32, timestamp: i64) -> Option<i64> {
        if epoch != self.epoch {
            self.batches.clear();
            self.epoch = epoch;
        }
        self.coordinator_epoch = coordinator_epoch;
        self.last_timestamp = timestamp;
        self.current_txn_first_offset.take()
    }
}

/// The sequence after `sequence` moved by `increment`, wrapping after `i32::MAX` as Kafka does.
fn increment_sequence(sequence: i32, increment: i32) -> i32 {
    // In i64: a corrupt header's negative delta must not overflow.
    let (s, i, max) = (
        i64::from(sequence),
        i64::from(increment),
        i64::from(i32::MAX),
    );
    let next = if s > max - i {
        i - (max - s) - 1
    } else {
        s + i
    };
    next.clamp(i64::from(i32::MIN), max) as i32
}

fn in_sequence(last: i32, next: i32) -> bool {
    i64::from(next) == i64::from(last) + 1 || (next == 0 && last == i32::MAX)
}

/// What a leader does with a client's batches after [`ProducerStates::prepare`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prepared {
    /// Append them, then [`ProducerStates::commit`] these entries.
    Append(Vec<(i64, ProducerEntry)>),
    /// A retry of a batch already in the log: append nothing, answer its offsets.
    Duplicate(BatchMetadata),
}

/// An aborted transaction, as read_committed fetches report it (Kafka's aborted transaction
/// index entry).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTxn {
    /// The producer.
    pub producer_id: i64,
    /// Offset of the transaction's first batch in this partition.
    pub first_offset: i64,
    /// Offset of its abort marker.
    pub last_offset: i64,
}

/// The producer state of one partition replica.
#[derive(Debug)]
pub struct ProducerStates {
    dir: PathBuf,
    producers: HashMap<i64, ProducerEntry>,
    /// Every batch below this offset is reflected.
    end_offset: i64,
    /// Open transactions: first offset -> producer id.
    ongoing: BTreeMap<i64, i64>,
    /// Ended transactions whose marker the high watermark has not passed: first offset ->
    /// marker offset. They hold the last stable offset back like open ones.
    unreplicated: BTreeMap<i64, i64>,
    /// Aborted transactions still (partly) in the log, by marker offset.
    aborted: Vec<AbortedTxn>,
}

impl ProducerStates {
    /// Loads the state of the log in `dir`: the latest readable snapshot at or below the log
    /// end (later ones are deleted: the log was truncated below them), then the batch headers
    /// from there to the log end.
    pub fn load(dir: &Path, reader: &LogReader) -> Result<Self> {
        let mut states = Self {
            dir: dir.to_path_buf(),
            producers: HashMap::new(),
            end_offset: reader.log_start_offset(),
            ongoing: BTreeMap::new(),
            unreplicated: BTreeMap::new(),
            aborted: Vec::new(),
        };
        states.reload(reader)?;
        Ok(states)
    }

    /// Rebuilds the state from the snapshots and the log after the log was truncated (or at
    /// load): what the log no longer holds is forgotten.
    pub fn reload(&mut self, reader: &LogReader) -> Result<()> {
        // Built aside and swapped in whole: a failed read leaves the previous state, never a
        // partial one that a later snapshot would save.
        let mut next = Self {
            dir: self.dir.clone(),
            producers: HashMap::new(),
            end_offset: reader.log_start_offset(),
            ongoing: BTreeMap::new(),
            unreplicated: BTreeMap::new(),
            aborted: Vec::new(),
        };
        next.rebuild(reader)?;
        *self = next;
        Ok(())
    }

    fn rebuild(&mut self, reader: &LogReader) -> Result<()> {
        let log_end = reader.log_end_offset();
        let log_start = reader.log_start_offset();
        for offset in self.snapshot_offsets()?.into_iter().rev() {
            let path = self.snapshot_path(offset);
            // Above the log end: the log was truncated below it. Below the log start: what
            // producers wrote between it and the start is gone, so the state would be stale
            // (Kafka deletes those too); the log from its start is replayed instead.
            if offset > log_end || offset < log_start {
                remove(&path)?;
                continue;
            }
            match read_snapshot(&path) {
                Ok((producers, aborted)) => {
                    self.producers = producers;
                    self.aborted = aborted;
                    self.end_offset = offset;
                    break;
                }
                Err(reason) => {
                    tracing::warn!(path = %path.display(), %reason, "ignoring an unreadable producer state snapshot");
                    remove(&path)?;
                }
            }
        }
        for (pid, e) in &self.producers {
            if let Some(first) = e.current_txn_first_offset {
                self.ongoing.insert(first, *pid);
            }
        }
        let from = self.end_offset;
        let mut replayed = Vec::new();
        reader.for_each_batch(from, |h, marker| {
            // The batch holding `from` counts too (a log start inside a batch).
            if h.last_offset() >= from {
                replayed.push((*h, marker));
            }
        })?;
        for (h, marker) in &replayed {
            self.record(h, *marker, None);
        }
        self.end_offset = log_end;
        Ok(())
    }

    /// Forgets everything (the log restarted empty at `offset`).
    pub fn clear(&mut self, offset: i64) -> Result<()> {
        self.producers.clear();
        self.ongoing.clear();
        self.unreplicated.clear();
        self.aborted.clear();
        self.end_offset = offset;
        for o in self.snapshot_offsets()? {
            remove(&self.snapshot_path(o))?;
        }
        Ok(())
    }

    /// The producer ids known here and their state.
    pub fn producers(&self) -> impl Iterator<Item = (i64, &ProducerEntry)> {
        self.producers.iter().map(|(id, e)| (*id, e))
    }

    /// The state of `producer_id`.
    pub fn get(&self, producer_id: i64) -> Option<&ProducerEntry> {
        self.producers.get(&producer_id)
    }

    /// Checks a client's batches, to be appended from `first_offset` (a leader's offsets are
    /// dense), under Kafka's rules (see the module docs). `append_time` is the broker's
    /// timestamp under LogAppendTime. A coordinator's batches (`client` false: the group
    /// coordinator's transactional offset commits) carry no sequence: only their epoch is
    /// checked. Nothing changes until [`ProducerStates::commit`].
    pub fn prepare<'h>(
        &self,
        headers: impl IntoIterator<Item = &'h BatchHeader>,
        first_offset: i64,
        append_time: Option<i64>,
        client: bool,
    ) -> Result<Prepared> {
        let mut updated: Vec<(i64, ProducerEntry)> = Vec::new();
        let mut offset = first_offset;
        for h in headers {
            let first = offset;
            let last = offset + i64::from(h.last_offset_delta);
            offset = last + 1;
            if h.producer_id < 0 {
                continue;
            }
            let pid = h.producer_id;
            if client && h.base_sequence < 0 {
                return Err(ReplicationError::InvalidProducerBatch {
                    message: format!(
                        "invalid sequence number {} in a record batch of producer {pid}",
                        h.base_sequence
                    ),
                });
            }
            let last_sequence = increment_sequence(h.base_sequence, h.last_offset_delta);
            let slot = match updated.iter().position(|(id, _)| *id == pid) {
                Some(i) => i,
                None => {
                    let current = self
                        .producers
                        .get(&pid)
                        .cloned()
                        .unwrap_or_else(ProducerEntry::empty);
                    updated.push((pid, current));
                    updated.len() - 1
                }
            };
            let entry = &mut updated[slot].1;
            if client {
                if let Some(d) =
                    entry.find_duplicate(h.producer_epoch, h.base_sequence, last_sequence)
                {
                    return Ok(Prepared::Duplicate(d));
                }
                check(pid, entry, h.producer_epoch, h.base_sequence, first)?;
            } else if h.producer_epoch < entry.epoch {
                return Err(ReplicationError::InvalidProducerEpoch {
                    message: format!(
                        "epoch {} of producer {pid} is older than its epoch {}",
                        h.producer_epoch, entry.epoch
                    ),
                });
            }
            if entry.current_txn_first_offset.is_some() && !h.is_transactional() {
                return Err(ReplicationError::InvalidTxnState {
                    message: format!(
                        "producer {pid} has an open transaction but sent a non-transactional batch"
                    ),
                });
            }
            entry.record_data(
                h,
                BatchMetadata {
                    first_sequence: h.base_sequence,
                    last_sequence,
                    first_offset: first,
                    last_offset: last,
                    timestamp: append_time.unwrap_or(h.max_timestamp),
                },
            );
        }
        Ok(Prepared::Append(updated))
    }

    /// Takes the entries [`ProducerStates::prepare`] returned, once their batches are in the
    /// log, which now ends at `log_end`.
    pub fn commit(&mut self, updated: Vec<(i64, ProducerEntry)>, log_end: i64) {
        for (pid, entry) in updated {
            if let Some(first) = entry.current_txn_first_offset {
                self.ongoing.insert(first, pid);
            }
            self.producers.insert(pid, entry);
        }
        self.end_offset = log_end;
    }

    /// Checks a marker the transaction coordinator asks this leader to write for
    /// `producer_id` (Kafka's `appendEndTxnMarker` checks): an epoch older than the producer's
    /// is INVALID_PRODUCER_EPOCH, a coordinator epoch older than the last marker's is
    /// TRANSACTION_COORDINATOR_FENCED.
    pub fn check_marker(&self, producer_id: i64, epoch: i16, coordinator_epoch: i32) -> Result<()> {
        let Some(e) = self.producers.get(&producer_id) else {
            return Ok(());
        };
        if epoch < e.epoch {
            return Err(ReplicationError::InvalidProducerEpoch {
                message: format!(
                    "marker epoch {epoch} of producer {producer_id} is older than its epoch {}",
                    e.epoch
                ),
            });
        }
        if coordinator_epoch < e.coordinator_epoch {
            return Err(ReplicationError::CoordinatorFenced {
                message: format!(
                    "coordinator epoch {coordinator_epoch} for producer {producer_id} is older than {}",
                    e.coordinator_epoch
                ),
            });
        }
        Ok(())
    }

    /// The first offset of an open transaction, or of an ended one whose marker is not yet
    /// below the high watermark: the last stable offset is the smaller of it and the HW.
    pub fn first_unstable_offset(&self) -> Option<i64> {
        let open = self.ongoing.keys().next().copied();
        let ended = self.unreplicated.keys().next().copied();
        match (open, ended) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The high watermark moved to `hw`: ended transactions whose marker is below it are stable.
    pub fn on_high_watermark(&mut self, hw: i64) {
        self.unreplicated.retain(|_, marker| *marker >= hw);
    }

    /// Whether any aborted transaction is still (partly) in the log.
    pub fn has_aborted(&self) -> bool {
        !self.aborted.is_empty()
    }

    /// The aborted transactions a read_committed fetch of `[from, upper)` must be told about:
    /// those whose marker is at or after `from` and that began before `upper`.
    pub fn aborted_transactions(&self, from: i64, upper: i64) -> Vec<AbortedTxn> {
        self.aborted
            .iter()
            .filter(|a| a.last_offset >= from && a.first_offset < upper)
            .copied()
            .collect()
    }

    /// Records batches appended without checks (replicated from the leader, or replayed from
    /// the log, or a marker this leader wrote), as their headers and markers give them; the
    /// log now ends at `log_end`.
    pub fn record_appended<'h>(
        &mut self,
        batches: impl IntoIterator<Item = (&'h BatchHeader, Option<ControlRecord>)>,
        log_end: i64,
    ) {
        for (h, marker) in batches {
            self.record(h, marker, None);
        }
        self.end_offset = log_end;
    }

    fn record(&mut self, h: &BatchHeader, marker: Option<ControlRecord>, append_time: Option<i64>) {
        if h.producer_id < 0 {
            return;
        }
        let pid = h.producer_id;
        let entry = self
            .producers
            .entry(pid)
            .or_insert_with(ProducerEntry::empty);
        if h.is_control() {
            let Some(marker) = marker else {
                // An empty control batch (compaction removed its record): nothing to end.
                return;
            };
            if let Some(first) =
                entry.record_marker(h.producer_epoch, marker.coordinator_epoch, h.max_timestamp)
            {
                self.ongoing.remove(&first);
                self.unreplicated.insert(first, h.base_offset);
                if !marker.commit {
                    self.aborted.push(AbortedTxn {
                        producer_id: pid,
                        first_offset: first,
                        last_offset: h.base_offset,
                    });
                }
            }
        } else {
            let opened = entry.current_txn_first_offset.is_none() && h.is_transactional();
            entry.record_data(
                h,
                BatchMetadata {
                    first_sequence: h.base_sequence,
                    last_sequence: increment_sequence(h.base_sequence, h.last_offset_delta),
                    first_offset: h.base_offset,
                    last_offset: h.last_offset(),
                    timestamp: append_time.unwrap_or(h.max_timestamp),
                },
            );
            if opened {
                self.ongoing.insert(h.base_offset, pid);
            }
        }
    }

    /// Forgets producers whose last batch is older than `expiration_ms` (Kafka's
    /// `producer.id.expiration.ms`, counted from the batch's timestamp) and that have no open
    /// transaction. Returns how many went.
    pub fn remove_expired(&mut self, now_ms: i64, expiration_ms: i64) -> usize {
        let before = self.producers.len();
        self.producers.retain(|_, e| {
            e.current_txn_first_offset.is_some()
                || now_ms.saturating_sub(e.last_timestamp) < expiration_ms
        });
        before - self.producers.len()
    }

    /// Writes the state as `<log end>.snapshot` (through a temporary file, fsynced), and
    /// deletes snapshots below `log_start` but the newest one.
    pub fn write_snapshot(&mut self, log_start: i64) -> Result<()> {
        self.aborted.retain(|a| a.last_offset >= log_start);
        let path = self.snapshot_path(self.end_offset);
        let tmp = path.with_extension("snapshot.tmp");
        let io = |e| ReplicationError::ProducerSnapshot {
            path: path.clone(),
            source: e,
        };
        let mut file = fs::File::create(&tmp).map_err(io)?;
        file.write_all(&encode_snapshot(&self.producers, &self.aborted))
            .map_err(io)?;
        file.sync_all().map_err(io)?;
        fs::rename(&tmp, &path).map_err(io)?;
        if let Ok(d) = fs::File::open(&self.dir) {
            let _ = d.sync_all();
        }
        let offsets = self.snapshot_offsets()?;
        for o in offsets
            .iter()
            .filter(|o| **o < log_start && **o != self.end_offset)
        {
            remove(&self.snapshot_path(*o))?;
        }
        Ok(())
    }

    /// The offsets of the snapshot files present, ascending.
    pub fn snapshot_offsets(&self) -> Result<Vec<i64>> {
        let entries = fs::read_dir(&self.dir).map_err(|e| ReplicationError::ProducerSnapshot {
            path: self.dir.clone(),
            source: e,
        })?;
        let mut offsets: Vec<i64> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                name.strip_suffix(SNAPSHOT_SUFFIX)?.parse().ok()
            })
            .collect();
        offsets.sort_unstable();
        Ok(offsets)
    }

    fn snapshot_path(&self, offset: i64) -> PathBuf {
        self.dir.join(format!("{offset:020}{SNAPSHOT_SUFFIX}"))
    }
}

/// Checks one client batch against the producer's entry (Kafka's epoch and sequence rules).
fn check(pid: i64, entry: &ProducerEntry, epoch: i16, first_seq: i32, offset: i64) -> Result<()> {
    if epoch < entry.epoch {
        return Err(ReplicationError::InvalidProducerEpoch {
            message: format!(
                "epoch {epoch} of producer {pid} at offset {offset} is older than its epoch {}",
                entry.epoch
            ),
        });
    }
    if epoch != entry.epoch {
        if first_seq != 0 && entry.epoch != NO_PRODUCER_EPOCH {
            return Err(ReplicationError::OutOfOrderSequence {
                message: format!(
                    "producer {pid} starts epoch {epoch} at sequence {first_seq}, not 0 (its previous epoch is {})",
                    entry.epoch
                ),
            });
        }
    } else if !in_sequence(entry.last_sequence(), first_seq) {
        return Err(ReplicationError::OutOfOrderSequence {
            message: format!(
                "out of order sequence number for producer {pid} at offset {offset}: {first_seq} (incoming), {} (last appended)",
                entry.last_sequence()
            ),
        });
    }
    Ok(())
}

fn remove(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(ReplicationError::ProducerSnapshot {
            path: path.to_path_buf(),
            source: e,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::snapshot::{decode_snapshot, encode_snapshot};
    use super::*;

    fn header(pid: i64, epoch: i16, seq: i32, records: i32) -> BatchHeader {
        BatchHeader {
            base_offset: 0,
            batch_length: 100,
            partition_leader_epoch: 0,
            magic: 2,
            crc: 0,
            attributes: 0,
            last_offset_delta: records - 1,
            base_timestamp: 1,
            max_timestamp: 1,
            producer_id: pid,
            producer_epoch: epoch,
            base_sequence: seq,
            record_count: records,
        }
    }

    fn states() -> (tempfile::TempDir, ProducerStates) {
        let dir = tempfile::tempdir().expect("ok");
        let s = ProducerStates {
            dir: dir.path().to_path_buf(),
            producers: HashMap::new(),
            end_offset: 0,
            ongoing: BTreeMap::new(),
            unreplicated: BTreeMap::new(),
            aborted: Vec::new(),
        };
        (dir, s)
    }

    /// Prepares and commits one batch at `offset`, as a leader would.
    fn append(s: &mut ProducerStates, h: BatchHeader, offset: i64) -> Result<Prepared> {
        let p = s.prepare([&h], offset, None, true)?;
        if let Prepared::Append(u) = &p {
            s.commit(u.clone(), offset + i64::from(h.record_count));
        }
        Ok(p)
    }

    fn code(r: Result<Prepared>) -> odradek_common::ErrorCode {
        use odradek_common::ToErrorCode;
        r.expect_err("refused").error_code()
    }

    #[test]
    fn sequences_must_follow_and_retries_get_their_original_offsets() {
        let (_d, mut s) = states();
        assert!(matches!(
            append(&mut s, header(7, 0, 0, 3), 0),
            Ok(Prepared::Append(_))
        ));
        assert!(matches!(
            append(&mut s, header(7, 0, 3, 2), 3),
            Ok(Prepared::Append(_))
        ));
        // A retry of the first batch: its offsets, nothing appended.
        let dup = append(&mut s, header(7, 0, 0, 3), 5).expect("ok");
        assert_eq!(
            dup,
            Prepared::Duplicate(BatchMetadata {
                first_sequence: 0,
                last_sequence: 2,
                first_offset: 0,
                last_offset: 2,
                timestamp: 1
            })
        );
        // A gap, and a batch that overlaps without matching a retained one.
        use odradek_common::ErrorCode::*;
        assert_eq!(
            code(append(&mut s, header(7, 0, 6, 1), 5)),
            OutOfOrderSequenceNumber
        );
        assert_eq!(
            code(append(&mut s, header(7, 0, 1, 1), 5)),
            OutOfOrderSequenceNumber
        );
        assert_eq!(s.get(7).expect("ok").last_sequence(), 4);
    }

    #[test]
    fn epochs_fence_and_restart_sequences() {
        use odradek_common::ErrorCode::*;
        let (_d, mut s) = states();
        append(&mut s, header(7, 3, 0, 1), 0).expect("ok");
        assert_eq!(
            code(append(&mut s, header(7, 2, 1, 1), 1)),
            InvalidProducerEpoch
        );
        // A new epoch starts at 0 ...
        assert_eq!(
            code(append(&mut s, header(7, 4, 5, 1), 1)),
            OutOfOrderSequenceNumber
        );
        append(&mut s, header(7, 4, 0, 1), 1).expect("ok");
        assert_eq!(s.get(7).expect("ok").epoch, 4);
        // ... but a producer unknown here (its batches deleted) may start anywhere.
        append(&mut s, header(8, 0, 42, 1), 2).expect("ok");
        assert_eq!(
            code(append(&mut s, header(7, 4, 0, 2), 3)),
            OutOfOrderSequenceNumber
        );
        // A negative sequence with a producer id is not a valid batch.
        assert_eq!(code(append(&mut s, header(9, 0, -1, 1), 3)), InvalidRecord);
    }

    #[test]
    fn only_the_last_five_batches_are_remembered_and_sequences_wrap() {
        let (_d, mut s) = states();
        for i in 0..7 {
            append(&mut s, header(1, 0, i, 1), i64::from(i)).expect("ok");
        }
        assert_eq!(s.get(1).expect("ok").batches().count(), BATCHES_TO_RETAIN);
        assert!(matches!(
            append(&mut s, header(1, 0, 3, 1), 7),
            Ok(Prepared::Duplicate(_))
        ));
        // Too old to recognise: out of order, not silently appended twice.
        assert!(append(&mut s, header(1, 0, 1, 1), 7).is_err());
        assert_eq!(increment_sequence(i32::MAX - 1, 3), 1);
        let (_d, mut s) = states();
        append(&mut s, header(2, 0, i32::MAX - 1, 2), 0).expect("ok");
        assert!(matches!(
            append(&mut s, header(2, 0, 0, 1), 2),
            Ok(Prepared::Append(_))
        ));
    }

    #[test]
    fn several_batches_of_one_producer_in_one_append_are_checked_in_order() {
        let (_d, s) = states();
        let a = header(1, 0, 0, 2);
        let b = header(1, 0, 2, 2);
        let Prepared::Append(u) = s.prepare([&a, &b], 10, None, true).expect("ok") else {
            panic!("append");
        };
        assert_eq!(u[0].1.last_sequence(), 3);
        assert_eq!(u[0].1.last_offset(), 13);
        let gap = header(1, 0, 5, 1);
        assert!(s.prepare([&a, &gap], 10, None, true).is_err());
    }

    #[test]
    fn snapshots_round_trip_and_corruption_is_detected() {
        let (_d, mut s) = states();
        append(&mut s, header(1, 0, 0, 2), 0).expect("ok");
        append(&mut s, header(2, 5, 0, 1), 2).expect("ok");
        let aborted = vec![AbortedTxn {
            producer_id: 2,
            first_offset: 0,
            last_offset: 1,
        }];
        let bytes = encode_snapshot(&s.producers, &aborted);
        assert_eq!(
            decode_snapshot(&bytes).expect("ok"),
            (s.producers.clone(), aborted)
        );
        for cut in [0, 5, bytes.len() - 1] {
            assert!(decode_snapshot(&bytes[..cut]).is_err());
        }
        let mut flipped = bytes.clone();
        flipped[10] ^= 1;
        assert!(decode_snapshot(&flipped).is_err());
        s.write_snapshot(0).expect("ok");
        assert_eq!(s.snapshot_offsets().expect("ok"), vec![3]);
    }

    #[test]
    fn expiry_counts_from_the_last_batch_timestamp() {
        let (_d, mut s) = states();
        append(&mut s, header(1, 0, 0, 1), 0).expect("ok");
        assert_eq!(s.remove_expired(1 + 999, 1000), 0);
        assert_eq!(s.remove_expired(1 + 1000, 1000), 1);
        assert!(s.get(1).is_none());
    }
}
