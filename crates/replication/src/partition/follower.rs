//! The follower side of a replica: where it fetches from, appending what the leader sends,
//! following its high watermark and log start, and truncating where the logs diverge
//! (KIP-101 / KIP-279), with the producer state rebuilt for what remains.

use odradek_log::control::parse_control_batch;
use odradek_log::ValidatedBatches;

use super::{EpochEndOffset, Partition, Role};
use crate::error::Result;

impl Partition {
    /// Where a follower fetches next: its log end offset and the epoch of its last batch.
    pub fn fetch_position(&self) -> (i64, i32) {
        (
            self.log.log_end_offset(),
            self.log.latest_epoch().unwrap_or(-1),
        )
    }

    /// Appends batches fetched from the leader (offsets as the leader gave them) and takes the
    /// leader's high watermark, bounded by this replica's log end. Returns whether the high
    /// watermark moved.
    pub fn append_as_follower(
        &mut self,
        batches: Option<ValidatedBatches<'_>>,
        leader_high_watermark: i64,
        now_ms: i64,
    ) -> Result<bool> {
        if !matches!(self.role, Role::Follower { .. }) {
            return Err(self.not("follower"));
        }
        if let Some(batches) = batches {
            let base = batches.first().base_offset;
            let leo = self.log.log_end_offset();
            if base < leo && leo == self.log.log_start_offset() {
                // An empty log restarted at the leader's log start, which fell inside this
                // batch (DeleteRecords): start it at the batch instead (Kafka's KAFKA-6975).
                self.log.truncate_fully_and_start_at(base)?;
                self.producers.clear(base)?;
            }
            self.log.append_validated_as_follower(&batches, now_ms)?;
            let markers = batches.batches().map(|(h, bytes)| {
                (
                    h,
                    h.is_control().then(|| parse_control_batch(bytes)).flatten(),
                )
            });
            self.producers
                .record_appended(markers, self.log.log_end_offset());
            self.after_append();
            self.publish_last_stable_offset();
        }
        Ok(self.follow_high_watermark(leader_high_watermark))
    }

    /// The leader's log start moved (retention, DeleteRecords): follow it, within this
    /// replica's high watermark.
    pub fn follow_log_start(&mut self, leader_log_start: i64) -> Result<()> {
        if matches!(self.role, Role::Follower { .. })
            && leader_log_start > self.log.log_start_offset()
            && leader_log_start <= self.high_watermark
        {
            self.log.delete_records_before(leader_log_start)?;
        }
        Ok(())
    }

    fn follow_high_watermark(&mut self, leader_high_watermark: i64) -> bool {
        let hw = leader_high_watermark.min(self.log.log_end_offset());
        if hw > self.high_watermark {
            self.set_high_watermark(hw);
            true
        } else {
            false
        }
    }

    /// The leader answered that this follower's log diverges at `diverging`: truncates to
    /// where the two logs agree (Kafka's rule: if this replica knows the leader's epoch, the
    /// smaller of both end offsets for it; else the end of this replica's largest smaller
    /// epoch). Returns the new log end offset.
    pub fn truncate_on_divergence(&mut self, diverging: EpochEndOffset) -> Result<i64> {
        if !matches!(self.role, Role::Follower { .. }) {
            return Err(self.not("follower"));
        }
        let target = if diverging.epoch < 0 || diverging.end_offset < 0 {
            // The leader knows no epoch at or below ours: keep what is committed.
            self.high_watermark
        } else {
            let (epoch, end) = self.log.end_offset_for_epoch(diverging.epoch);
            if epoch == diverging.epoch {
                end.min(diverging.end_offset)
            } else {
                end
            }
        };
        self.truncate_to(target)?;
        Ok(self.log.log_end_offset())
    }

    /// The follower's fetch offset is outside the leader's log: restart the log at the leader's
    /// start when behind it, or cut it back to the leader's end when past it.
    pub fn reset_to_leader_range(
        &mut self,
        leader_log_start: i64,
        leader_log_end: i64,
    ) -> Result<()> {
        if !matches!(self.role, Role::Follower { .. }) {
            return Err(self.not("follower"));
        }
        let leo = self.log.log_end_offset();
        if leo < leader_log_start {
            tracing::warn!(topic = %self.topic, partition = self.index, leo, leader_log_start, "behind the leader's log start: restarting the log there");
            self.log.truncate_fully_and_start_at(leader_log_start)?;
            self.producers.clear(leader_log_start)?;
            // The log is empty at the leader's start, which is below the leader's HW.
            self.set_high_watermark(leader_log_start);
        } else if leo > leader_log_end {
            // Never below what this replica knows is committed.
            self.truncate_to(leader_log_end.max(self.high_watermark))?;
        }
        Ok(())
    }

    fn truncate_to(&mut self, offset: i64) -> Result<()> {
        let leo = self.log.log_end_offset();
        if offset >= leo {
            // No record goes, but an epoch that starts at the log end (one this replica led
            // without appending) does.
            self.log.truncate_to(offset)?;
            return Ok(());
        }
        if offset < self.high_watermark {
            tracing::warn!(topic = %self.topic, partition = self.index, offset, high_watermark = self.high_watermark, "truncating below the high watermark");
        }
        tracing::info!(topic = %self.topic, partition = self.index, from = leo, to = offset, "truncating a diverging log");
        self.log.truncate_to(offset)?;
        self.reload_producers()?;
        // The one place the HW may move back: only past a log end cut below it (logged above).
        let hw = self.high_watermark.min(self.log.log_end_offset());
        self.set_high_watermark(hw);
        Ok(())
    }

    /// OffsetForLeaderEpoch as this replica answers it.
    pub fn end_offset_for_epoch(&self, epoch: i32) -> EpochEndOffset {
        let (epoch, end_offset) = self.log.end_offset_for_epoch(epoch);
        EpochEndOffset { epoch, end_offset }
    }
}
