//! Log compaction (`cleanup.policy=compact`): keep the latest record per key.
//!
//! One pass: build a key -> latest offset map over the cleanable segments, then rewrite each of
//! them into `<base>.log.cleaned`, commit by renaming it to `<base>.log.swap`, move the rebuilt
//! indexes into place, and rename the swap file over the original. A crash before the commit
//! leaves the original (the `.cleaned` files are deleted on open); a crash after it is finished
//! on open (the `.swap` file replaces the original and its indexes are rebuilt).

use std::collections::HashMap;

use super::Log;
use crate::batch::{BatchHeader, BATCH_HEADER_SIZE};
use crate::checkpoint::sync_dir;
use crate::cleaner::{self, CLEANED, SWAP};
use crate::error::{LogError, Result};
use crate::segment::{file_name, Segment};

/// What a compaction pass did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CleanResult {
    /// Segments rewritten.
    pub cleaned_segments: usize,
    /// Their size before.
    pub bytes_before: u64,
    /// Their size after.
    pub bytes_after: u64,
    /// Records removed (superseded values and expired tombstones).
    pub records_removed: u64,
}

impl Log {
    /// How many of the oldest segments may be compacted: never the active segment, only
    /// segments wholly below the high watermark, and none holding records younger than
    /// `min.compaction.lag.ms`.
    fn cleanable_segments(&self, now_ms: i64) -> usize {
        let hw = self.high_watermark();
        let lag = self.config.min_compaction_lag_ms;
        let mut n = 0;
        for w in self.segments.windows(2) {
            let (s, next) = (&w[0], &w[1]);
            if next.base_offset() > hw || now_ms.saturating_sub(s.max_timestamp) < lag {
                break;
            }
            n += 1;
        }
        n
    }

    /// Share of the cleanable bytes not yet compacted (Kafka's dirty ratio).
    pub fn dirty_ratio(&self, now_ms: i64) -> f64 {
        let n = self.cleanable_segments(now_ms);
        let total: u64 = self.segments[..n].iter().map(|s| s.size).sum();
        let dirty: u64 = self.segments[..n]
            .iter()
            .filter(|s| s.next_offset > self.cleaner_offset)
            .map(|s| s.size)
            .sum();
        if total == 0 {
            0.0
        } else {
            dirty as f64 / total as f64
        }
    }

    /// Compacts when the topic is compacted and the dirty ratio reached
    /// `min.cleanable.dirty.ratio`.
    pub fn compact_if_needed(&mut self, now_ms: i64) -> Result<Option<CleanResult>> {
        if !self.config.cleanup_policy.compact {
            return Ok(None);
        }
        let ratio = self.dirty_ratio(now_ms);
        if ratio == 0.0 || ratio < self.config.min_cleanable_dirty_ratio {
            return Ok(None);
        }
        self.compact(now_ms).map(Some)
    }

    /// Compacts every cleanable segment now: for each key only the record with the highest
    /// offset stays; tombstones (null values) older than `delete.retention.ms` go too. Offsets
    /// never change.
    pub fn compact(&mut self, now_ms: i64) -> Result<CleanResult> {
        let n = self.cleanable_segments(now_ms);
        let mut result = CleanResult::default();
        if n == 0 {
            return Ok(result);
        }
        let latest = self.latest_offsets_by_key(n)?;
        for i in 0..n {
            let (before, after, removed) = self.rewrite_segment(i, &latest, now_ms)?;
            result.cleaned_segments += 1;
            result.bytes_before += before;
            result.bytes_after += after;
            result.records_removed += removed;
        }
        self.cleaner_offset = self.cleaner_offset.max(self.segments[n].base_offset());
        self.write_checkpoint()?;
        self.publish_segments();
        tracing::info!(dir = %self.dir.display(), cleaned_segments = n,
            bytes_before = result.bytes_before, bytes_after = result.bytes_after,
            records_removed = result.records_removed, "compacted log");
        Ok(result)
    }

    fn latest_offsets_by_key(&self, n: usize) -> Result<HashMap<Vec<u8>, i64>> {
        let mut latest = HashMap::new();
        for s in &self.segments[..n] {
            s.for_each_batch(|position, h, bytes| {
                if h.is_control() {
                    return Ok(());
                }
                let decoded = cleaner::decode_batch(bytes, position)?;
                for r in &decoded.records {
                    if let Some(key) = &r.key {
                        latest.insert(key.to_vec(), r.offset);
                    }
                }
                Ok(())
            })?;
        }
        Ok(latest)
    }

    /// Rewrites segment `i`; returns (bytes before, bytes after, records removed).
    fn rewrite_segment(
        &mut self,
        i: usize,
        latest: &HashMap<Vec<u8>, i64>,
        now_ms: i64,
    ) -> Result<(u64, u64, u64)> {
        let base = self.segments[i].base_offset();
        let interval = self.config.index_interval_bytes;
        let delete_retention_ms = self.config.delete_retention_ms;
        let suffix = format!(".{CLEANED}");
        let mut out = Segment::create_with_suffix(&self.dir, base, &suffix)?;
        let mut removed = 0u64;
        let before = self.segments[i].size;
        self.segments[i].for_each_batch(|position, h, bytes| {
            let write = |out: &mut Segment, h: &BatchHeader, bytes: &[u8]| {
                out.append(h, &bytes[BATCH_HEADER_SIZE..], interval)
            };
            if h.is_control() {
                return write(&mut out, h, &bytes);
            }
            let decoded = cleaner::decode_batch(bytes.clone(), position)?;
            let tombstones_expired = now_ms.saturating_sub(h.max_timestamp) > delete_retention_ms;
            let keep: Vec<bool> = decoded
                .records
                .iter()
                .map(|r| match &r.key {
                    None => true,
                    Some(k) => {
                        latest.get(k.as_ref()) == Some(&r.offset)
                            && !(r.value.is_none() && tombstones_expired)
                    }
                })
                .collect();
            let kept = keep.iter().filter(|k| **k).count();
            removed += (keep.len() - kept) as u64;
            if kept == keep.len() {
                write(&mut out, h, &bytes)
            } else if let Some(rebuilt) = cleaner::rebuild_batch(h, &decoded, &keep)? {
                let nh = BatchHeader::parse(&rebuilt)
                    .ok_or_else(|| LogError::corrupt(position, "rebuilt batch too short"))?;
                write(&mut out, &nh, &rebuilt)
            } else {
                Ok(())
            }
        })?;
        out.flush(true)?;
        let after = out.size;
        drop(out);

        let dir = self.dir.clone();
        let path = |ext: &str| dir.join(file_name(base, ext));
        let rename = |from: &str, to: &str| {
            std::fs::rename(path(from), path(to)).map_err(|e| LogError::io(path(to), e))
        };
        rename(&format!("log.{CLEANED}"), &format!("log.{SWAP}"))?;
        sync_dir(&dir)?; // the commit point
        rename(&format!("index.{CLEANED}"), "index")?;
        rename(&format!("timeindex.{CLEANED}"), "timeindex")?;
        rename(&format!("log.{SWAP}"), "log")?;
        sync_dir(&dir)?;
        let (segment, _) = Segment::open(&dir, base, true, interval)?;
        self.segments[i] = segment;
        Ok((before, after, removed))
    }
}
