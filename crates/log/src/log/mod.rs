//! The partition log: an ordered run of segments, the last one active.

mod compact;
mod open;
mod truncate;

pub use compact::{CleanResult, CompactedSegments, CompactionJob};
pub use truncate::RetentionResult;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::RwLock;

use crate::batch::{self, BatchRef, BATCH_HEADER_SIZE};
use crate::checkpoint::{self, LogCheckpoint};
use crate::config::{LogConfig, TimestampType};
use crate::epoch::{EpochEntry, LeaderEpochCache};
use crate::error::{LogError, Result};
use crate::reader::{
    ActiveState, LogReader, LogView, OffsetSpec, ReadResult, SegmentView, TimestampAndOffset,
};
use crate::segment::Segment;
use crate::validated::{AppendRules, ValidatedBatches};

/// What an append did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogAppendInfo {
    /// Offset of the first record appended.
    pub first_offset: i64,
    /// Offset of the last record appended.
    pub last_offset: i64,
    /// Largest max timestamp among the appended batches (the append time under LogAppendTime).
    pub max_timestamp: i64,
    /// The broker's timestamp when the topic uses LogAppendTime, else `None`.
    pub log_append_time_ms: Option<i64>,
    /// Number of records appended.
    pub record_count: i64,
    /// Bytes appended.
    pub bytes: u64,
}

/// One partition's log. The owner mutates it through `&mut self`; any number of
/// [`LogReader`]s (from [`Log::reader`]) read it concurrently from other threads.
#[derive(Debug)]
pub struct Log {
    dir: PathBuf,
    config: LogConfig,
    /// Sorted by base offset, never empty; the last is the active segment.
    segments: Vec<Segment>,
    log_start_offset: i64,
    /// Every offset below it is fsynced to disk.
    recovery_point: i64,
    /// Offsets below it have been compacted at least once.
    cleaner_offset: i64,
    /// Set by replication; `None` means every appended offset counts as committed.
    high_watermark: Option<i64>,
    unflushed_messages: i64,
    last_flush_ms: i64,
    epochs: LeaderEpochCache,
    view: Arc<RwLock<LogView>>,
    /// Truncations so far: a compaction planned before one is not committed.
    truncations: u64,
}

impl Log {
    /// Opens (creating if needed) the log in `dir`; see the crate docs for what recovery does.
    pub fn open(dir: impl AsRef<Path>, config: LogConfig, now_ms: i64) -> Result<Log> {
        open::open(dir.as_ref(), config, now_ms)
    }

    /// A reader that can be cloned and sent to other threads.
    pub fn reader(&self) -> LogReader {
        LogReader {
            view: Arc::clone(&self.view),
        }
    }

    /// Shorthand for `self.reader().read(..)`.
    pub fn read(&self, from_offset: i64, max_bytes: u64, upper_bound: i64) -> Result<ReadResult> {
        self.reader().read(from_offset, max_bytes, upper_bound)
    }

    /// Shorthand for `self.reader().offset_for(..)`.
    pub fn offset_for(&self, spec: OffsetSpec) -> Result<Option<TimestampAndOffset>> {
        self.reader().offset_for(spec)
    }

    /// The directory holding the segments.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The active segment's file: sync it to make every append so far durable (an append
    /// that rolled the log first synced the segment it left).
    pub fn active_segment_file(&self) -> crate::SegmentFile {
        crate::SegmentFile(Arc::clone(&self.active().data))
    }

    /// The configuration in force.
    pub fn config(&self) -> &LogConfig {
        &self.config
    }

    /// Applies a changed topic configuration from the next append on.
    pub fn set_config(&mut self, config: LogConfig) {
        self.config = config;
    }

    /// First offset still readable.
    pub fn log_start_offset(&self) -> i64 {
        self.log_start_offset
    }

    /// Offset the next appended record gets.
    pub fn log_end_offset(&self) -> i64 {
        self.active().next_offset
    }

    /// Offset below which everything is on disk (fsynced).
    pub fn recovery_point(&self) -> i64 {
        self.recovery_point
    }

    /// The bound that retention and compaction respect: the high watermark set by replication,
    /// or the log end offset when none was set.
    pub fn high_watermark(&self) -> i64 {
        self.high_watermark
            .unwrap_or_else(|| self.log_end_offset())
            .min(self.log_end_offset())
    }

    /// Records the partition's high watermark (replication owns it; the log only obeys it).
    pub fn update_high_watermark(&mut self, high_watermark: i64) {
        self.high_watermark =
            Some(high_watermark.clamp(self.log_start_offset, self.log_end_offset()));
    }

    /// Total bytes of all segments.
    pub fn size_in_bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.size).sum()
    }

    /// Number of segments, the active one included.
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// Base offsets of the segments, oldest first.
    pub fn segment_base_offsets(&self) -> Vec<i64> {
        self.segments.iter().map(Segment::base_offset).collect()
    }

    /// Base offset of the active (last) segment; it changes when the log rolls.
    pub fn active_segment_base_offset(&self) -> i64 {
        self.active().base_offset()
    }

    /// The newest leader epoch seen in appended batches.
    pub fn latest_epoch(&self) -> Option<i32> {
        self.epochs.latest_epoch()
    }

    /// The leader epoch cache's entries, oldest first.
    pub fn epoch_entries(&self) -> &[EpochEntry] {
        self.epochs.entries()
    }

    /// Records that leader epoch `epoch` starts at the log end offset, as a new leader does
    /// before its first append (Kafka's `maybeAssignEpochStartOffset`), so OffsetForLeaderEpoch
    /// and followers' divergence checks see where the previous epoch ended. Epochs not newer
    /// than the latest are ignored.
    pub fn assign_epoch_start(&mut self, epoch: i32) -> Result<()> {
        let start = self.log_end_offset();
        self.epochs.assign(epoch, start)
    }

    /// OffsetForLeaderEpoch: the largest known epoch `<= epoch` and the offset where it ended
    /// (the log end offset for the current epoch); `(-1, -1)` when unknown (see the epoch
    /// cache's rule for epochs older than all known).
    pub fn end_offset_for_epoch(&self, epoch: i32) -> (i32, i64) {
        self.epochs.end_offset_for(epoch, self.log_end_offset())
    }

    fn active(&self) -> &Segment {
        self.segments
            .last()
            .expect("a log always has an active segment")
    }

    fn active_mut(&mut self) -> &mut Segment {
        self.segments
            .last_mut()
            .expect("a log always has an active segment")
    }

    /// Appends producer batches as the partition leader: validates every batch (the log is
    /// unchanged if any fails), assigns offsets from the log end, stamps `leader_epoch`, and
    /// under LogAppendTime the append time `now_ms`.
    pub fn append_as_leader(
        &mut self,
        records: &[u8],
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<LogAppendInfo> {
        let validated = ValidatedBatches::for_leader(records, AppendRules::of(&self.config))?;
        self.append_validated_as_leader(validated, leader_epoch, now_ms)
    }

    /// [`Log::append_as_leader`] of batches validated beforehand (outside the caller's lock).
    /// Batches validated under rules other than this log's current ones are checked again.
    pub fn append_validated_as_leader(
        &mut self,
        validated: ValidatedBatches<'_>,
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<LogAppendInfo> {
        let rules = AppendRules::of(&self.config);
        let validated = if validated.rules == Some(rules) {
            validated
        } else {
            ValidatedBatches::for_leader(validated.records, rules)?
        };
        let records = validated.records;
        let append_time =
            (self.config.message_timestamp_type == TimestampType::LogAppendTime).then_some(now_ms);
        let first_offset = self.log_end_offset();
        self.epochs.assign(leader_epoch, first_offset)?;
        self.write_batches(records, &validated.batches, now_ms, |b, next| {
            batch::leader_header(
                &records[b.position..],
                &b.header,
                next,
                leader_epoch,
                append_time,
            )
        })
        .map(|mut info| {
            info.log_append_time_ms = append_time;
            info
        })
    }

    /// Appends batches replicated from the leader, offsets as given. The first batch must start
    /// at or after the log end offset and offsets must increase; gaps are allowed (the leader's
    /// log may be compacted).
    pub fn append_as_follower(&mut self, records: &[u8], now_ms: i64) -> Result<LogAppendInfo> {
        self.append_validated_as_follower(&ValidatedBatches::for_follower(records)?, now_ms)
    }

    /// [`Log::append_as_follower`] of batches validated beforehand (outside the caller's lock).
    pub fn append_validated_as_follower(
        &mut self,
        validated: &ValidatedBatches<'_>,
        now_ms: i64,
    ) -> Result<LogAppendInfo> {
        let batches = &validated.batches;
        let mut expected = self.log_end_offset();
        for b in batches {
            if b.header.base_offset < expected {
                return Err(LogError::UnexpectedAppendOffset {
                    first_offset: b.header.base_offset,
                    log_end_offset: expected,
                });
            }
            expected = b.header.next_offset();
        }
        for b in batches {
            self.epochs
                .assign(b.header.partition_leader_epoch, b.header.base_offset)?;
        }
        self.write_batches(validated.records, batches, now_ms, |b, _| b.header)
    }

    /// Writes validated batches, rolling segments as needed; `header_for(batch, next_offset)`
    /// gives the header to write in front of the batch's untouched records.
    fn write_batches(
        &mut self,
        records: &[u8],
        batches: &[BatchRef],
        now_ms: i64,
        header_for: impl Fn(&BatchRef, i64) -> batch::BatchHeader,
    ) -> Result<LogAppendInfo> {
        let mut info = LogAppendInfo {
            first_offset: -1,
            last_offset: -1,
            max_timestamp: -1,
            log_append_time_ms: None,
            record_count: 0,
            bytes: 0,
        };
        let interval = self.config.index_interval_bytes;
        for b in batches {
            let header = header_for(b, self.log_end_offset());
            self.maybe_roll(&header, now_ms)?;
            let body =
                &records[b.position + BATCH_HEADER_SIZE..b.position + b.header.size() as usize];
            self.active_mut().append(&header, body, interval)?;
            if info.first_offset < 0 {
                info.first_offset = header.base_offset;
            }
            info.last_offset = header.last_offset();
            info.max_timestamp = info.max_timestamp.max(header.max_timestamp);
            info.record_count += i64::from(header.record_count);
            info.bytes += header.size();
        }
        self.unflushed_messages = self.unflushed_messages.saturating_add(info.record_count);
        self.publish_active();
        self.flush_if_due(now_ms)?;
        Ok(info)
    }

    /// Rolls before appending `next` if the active segment is full by size, by index entries,
    /// by age (`segment.ms`), or if `next`'s offsets would not fit the index's 32-bit relative
    /// offsets.
    fn maybe_roll(&mut self, next: &batch::BatchHeader, now_ms: i64) -> Result<()> {
        let config = &self.config;
        let active = self.active();
        if active.is_empty() {
            return Ok(());
        }
        let full = active.size + next.size() > config.segment_bytes;
        let index_full = active.index_entries() >= config.max_index_entries();
        let aged = active
            .first_batch_timestamp
            .is_some_and(|ts| now_ms.saturating_sub(ts) > config.segment_ms);
        let overflow = next.last_offset() - active.base_offset() > i64::from(i32::MAX);
        if full || index_full || aged || overflow {
            self.roll()?;
        }
        Ok(())
    }

    /// Starts a new active segment at the log end offset (a no-op if the active one is empty).
    pub fn roll(&mut self) -> Result<()> {
        let base = self.log_end_offset();
        if self.active().is_empty() && self.active().base_offset() == base {
            return Ok(());
        }
        // fsync the outgoing segment before the next one exists: a crash can then only lose
        // bytes of the active segment, never leave a later segment after a hole.
        self.active().flush(true)?;
        let segment = Segment::create(&self.dir, base)?;
        if self.active().is_empty() {
            // An empty active segment at another base (e.g. after a truncation into a gap).
            let old = self.segments.pop().expect("active segment");
            old.delete_files()?;
        }
        self.segments.push(segment);
        checkpoint::sync_dir(&self.dir)?;
        self.recovery_point = self.recovery_point.max(base);
        self.publish_segments();
        Ok(())
    }

    /// Flushes if `flush.messages` records or `flush.ms` have passed since the last flush.
    pub fn flush_if_due(&mut self, now_ms: i64) -> Result<()> {
        let due_by_count = self.unflushed_messages >= self.config.flush_messages;
        let due_by_time = self.unflushed_messages > 0
            && now_ms.saturating_sub(self.last_flush_ms) >= self.config.flush_ms;
        if due_by_count || due_by_time {
            self.flush()?;
            self.last_flush_ms = now_ms;
        }
        Ok(())
    }

    /// fsyncs every segment holding offsets at or above the recovery point (and their indexes),
    /// then moves the recovery point to the log end offset and checkpoints it.
    pub fn flush(&mut self) -> Result<()> {
        let end = self.log_end_offset();
        if end <= self.recovery_point && self.unflushed_messages == 0 {
            return Ok(());
        }
        let from = self
            .segments
            .partition_point(|s| s.next_offset <= self.recovery_point)
            .min(self.segments.len() - 1);
        for s in &self.segments[from..] {
            s.flush(true)?;
        }
        self.recovery_point = end;
        self.unflushed_messages = 0;
        self.write_checkpoint()
    }

    /// Flushes everything and leaves the clean-shutdown marker, so the next open trusts the
    /// indexes instead of re-validating the log.
    pub fn close(mut self) -> Result<()> {
        self.flush()?;
        for s in &self.segments {
            s.flush(true)?;
        }
        self.write_checkpoint()?;
        checkpoint::write_atomically(&self.dir, checkpoint::CLEAN_SHUTDOWN, b"")?;
        Ok(())
    }

    fn write_checkpoint(&self) -> Result<()> {
        LogCheckpoint {
            log_start_offset: self.log_start_offset,
            recovery_point: self.recovery_point,
            cleaner_offset: self.cleaner_offset,
        }
        .write(&self.dir)
    }

    /// Publishes the active segment's new end and the log end offset to readers.
    fn publish_active(&self) {
        let mut view = self.view.write();
        self.fill_view(&mut view);
    }

    /// Publishes a new segment list (after roll, deletion, truncation or compaction) together
    /// with the active state, under one lock so readers never pair a list with a stale size.
    fn publish_segments(&self) {
        let segments = Arc::new(segment_views(&self.segments));
        let mut view = self.view.write();
        view.segments = segments;
        self.fill_view(&mut view);
    }

    fn fill_view(&self, view: &mut LogView) {
        let active = self.active();
        view.active = ActiveState {
            size: active.size,
            max_timestamp: active.max_timestamp,
            offset_of_max_timestamp: active.offset_of_max_timestamp,
        };
        view.log_end_offset = active.next_offset;
        view.log_start_offset = self.log_start_offset;
    }
}

fn segment_views(segments: &[Segment]) -> Vec<SegmentView> {
    segments
        .iter()
        .map(|s| SegmentView {
            data: Arc::clone(&s.data),
            size: s.size,
            max_timestamp: s.max_timestamp,
            offset_of_max_timestamp: s.offset_of_max_timestamp,
        })
        .collect()
}

#[cfg(test)]
mod tests;
