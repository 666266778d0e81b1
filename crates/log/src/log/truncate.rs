//! Removing data: truncation (followers, divergence), DeleteRecords, and retention.

use super::Log;
use crate::error::{LogError, Result};
use crate::segment::Segment;

/// What [`Log::enforce_retention`] removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RetentionResult {
    /// Segments deleted.
    pub deleted_segments: usize,
    /// Bytes deleted.
    pub deleted_bytes: u64,
    /// The log start offset afterwards.
    pub log_start_offset: i64,
}

impl Log {
    /// Removes every record at or after `offset` (a batch containing `offset` goes whole). A
    /// target at or past the log end removes no record but still drops leader epochs that start
    /// at the log end (as Kafka does: a replica that became leader and appended nothing before
    /// another was elected holds an epoch no other replica knows, which would make every
    /// divergence check fail again); one below the log start empties the log and restarts it at
    /// `offset`.
    pub fn truncate_to(&mut self, offset: i64) -> Result<()> {
        if offset >= self.log_end_offset() {
            return self.epochs.truncate_from_end(self.log_end_offset());
        }
        if offset < self.log_start_offset {
            return self.truncate_fully_and_start_at(offset);
        }
        while self.segments.len() > 1 && self.active().base_offset() > offset {
            let s = self.segments.pop().expect("more than one segment");
            s.delete_files()?;
        }
        let new_end = self.active_mut().truncate_to(offset)?;
        // A target inside the batch holding the log start removes that whole batch.
        self.log_start_offset = self.log_start_offset.min(new_end);
        self.after_truncation(new_end)?;
        self.publish_segments();
        tracing::info!(dir = %self.dir.display(), offset, log_end_offset = new_end, "truncated log");
        Ok(())
    }

    /// Deletes every segment and restarts the log, empty, at `offset` (a follower too far
    /// behind the leader's log start does this).
    pub fn truncate_fully_and_start_at(&mut self, offset: i64) -> Result<()> {
        if offset < 0 {
            return Err(LogError::OffsetOutOfRange {
                offset,
                log_start_offset: self.log_start_offset,
                log_end_offset: self.log_end_offset(),
            });
        }
        for s in self.segments.drain(..) {
            s.delete_files()?;
        }
        self.segments.push(Segment::create(&self.dir, offset)?);
        crate::checkpoint::sync_dir(&self.dir)?;
        self.log_start_offset = offset;
        self.epochs.clear()?;
        self.after_truncation(offset)?;
        self.publish_segments();
        Ok(())
    }

    fn after_truncation(&mut self, new_end: i64) -> Result<()> {
        self.truncations += 1;
        self.epochs.truncate_from_end(new_end)?;
        self.recovery_point = self.recovery_point.min(new_end);
        self.cleaner_offset = self.cleaner_offset.min(new_end);
        self.high_watermark = self.high_watermark.map(|hw| hw.min(new_end));
        self.write_checkpoint()
    }

    /// DeleteRecords: makes `offset` the new log start (if it is ahead of the current one) and
    /// deletes segments wholly below it. `offset` past the high watermark is out of range.
    /// Returns the new log start offset (Kafka's "low watermark").
    pub fn delete_records_before(&mut self, offset: i64) -> Result<i64> {
        if offset < 0 || offset > self.high_watermark() {
            return Err(LogError::OffsetOutOfRange {
                offset,
                log_start_offset: self.log_start_offset,
                log_end_offset: self.log_end_offset(),
            });
        }
        if offset > self.log_start_offset {
            self.log_start_offset = offset;
            self.epochs.truncate_from_start(offset)?;
            self.delete_below_log_start()?;
            self.write_checkpoint()?;
            self.publish_segments();
        }
        Ok(self.log_start_offset)
    }

    fn delete_below_log_start(&mut self) -> Result<(usize, u64)> {
        let start = self.log_start_offset;
        let n = self
            .segments
            .windows(2)
            .take_while(|w| w[1].base_offset() <= start)
            .count();
        self.delete_oldest(n)
    }

    /// Deletes the `n` oldest segments; deleting all of them rolls a new empty active segment
    /// first. Advances the log start offset past them.
    fn delete_oldest(&mut self, n: usize) -> Result<(usize, u64)> {
        if n == 0 {
            return Ok((0, 0));
        }
        if n >= self.segments.len() {
            self.roll()?;
        }
        let mut bytes = 0;
        for s in self.segments.drain(..n) {
            bytes += s.size;
            s.delete_files()?;
        }
        self.log_start_offset = self.log_start_offset.max(self.segments[0].base_offset());
        self.epochs.truncate_from_start(self.log_start_offset)?;
        Ok((n, bytes))
    }

    /// Applies `retention.ms` and `retention.bytes` (when `cleanup.policy` includes `delete`)
    /// and removes segments wholly below the log start offset. Only whole segments whose every
    /// offset is below the high watermark go; an expired active segment is rolled first.
    pub fn enforce_retention(&mut self, now_ms: i64) -> Result<RetentionResult> {
        let hw = self.high_watermark();
        let mut deletable = 0;
        let mut total: i64 = self.size_in_bytes() as i64;
        let delete_policy = self.config.cleanup_policy.delete;
        for (i, s) in self.segments.iter().enumerate() {
            let next_base = self.segments.get(i + 1).map(Segment::base_offset);
            let end = next_base.unwrap_or(s.next_offset);
            if s.is_empty() || end > hw {
                break;
            }
            let below_start = next_base.is_some_and(|nb| nb <= self.log_start_offset);
            let expired = delete_policy
                && self.config.retention_ms >= 0
                && s.max_timestamp >= 0
                && now_ms.saturating_sub(s.max_timestamp) > self.config.retention_ms;
            let oversize = delete_policy
                && self.config.retention_bytes >= 0
                && total - s.size as i64 >= self.config.retention_bytes;
            if !(below_start || expired || oversize) {
                break;
            }
            total -= s.size as i64;
            deletable += 1;
        }
        let (deleted_segments, deleted_bytes) = self.delete_oldest(deletable)?;
        if deleted_segments > 0 {
            self.write_checkpoint()?;
            self.publish_segments();
            tracing::info!(dir = %self.dir.display(), deleted_segments, deleted_bytes,
                log_start_offset = self.log_start_offset, "retention deleted segments");
        }
        Ok(RetentionResult {
            deleted_segments,
            deleted_bytes,
            log_start_offset: self.log_start_offset,
        })
    }
}
