//! Log compaction (`cleanup.policy=compact`): keep the latest record per key.
//!
//! One pass, in three steps so that the log's owner need not hold it while segments are
//! rewritten: plan (take the cleanable sealed segments), run (build a key -> latest offset map
//! over them and rewrite each into `<base>.log.cleaned`), commit (if the segments are unchanged:
//! rename each cleaned file to `<base>.log.swap`, move the rebuilt indexes into place, and
//! rename the swap file over the original). A crash before the commit
//! leaves the original (the `.cleaned` files are deleted on open); a crash after it is finished
//! on open (the `.swap` file replaces the original and its indexes are rebuilt).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

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
        self.plan_compaction(now_ms, false)
            .map(|job| self.commit_compaction(job.run()?))
            .transpose()
    }

    /// Compacts every cleanable segment now: for each key only the record with the highest
    /// offset stays; tombstones (null values) older than `delete.retention.ms` go too. Offsets
    /// never change.
    pub fn compact(&mut self, now_ms: i64) -> Result<CleanResult> {
        self.plan_compaction(now_ms, true)
            .map(|job| self.commit_compaction(job.run()?))
            .transpose()
            .map(Option::unwrap_or_default)
    }

    /// The first step of a compaction pass that does not hold the log while it rewrites:
    /// takes the cleanable segments (all of them with `force`, else only when the topic is
    /// compacted and the dirty ratio reached `min.cleanable.dirty.ratio`). Run the job
    /// anywhere ([`CompactionJob::run`] reads those sealed segments and writes the cleaned
    /// files beside them), then [`Log::commit_compaction`].
    pub fn plan_compaction(&self, now_ms: i64, force: bool) -> Option<CompactionJob> {
        if !force {
            if !self.config.cleanup_policy.compact {
                return None;
            }
            let ratio = self.dirty_ratio(now_ms);
            if ratio == 0.0 || ratio < self.config.min_cleanable_dirty_ratio {
                return None;
            }
        }
        let n = self.cleanable_segments(now_ms);
        if n == 0 {
            return None;
        }
        Some(CompactionJob {
            dir: self.dir.clone(),
            segments: self.segments[..n].to_vec(),
            cleaned_up_to: self.segments[n].base_offset(),
            index_interval_bytes: self.config.index_interval_bytes,
            delete_retention_ms: self.config.delete_retention_ms,
            now_ms,
            truncations: self.truncations,
        })
    }

    /// The last step: swaps the cleaned files in, unless the segments changed since the job
    /// was planned (truncated, deleted by retention or DeleteRecords), in which case the
    /// cleaned files are dropped and nothing changes (the next pass plans again).
    pub fn commit_compaction(&mut self, done: CompactedSegments) -> Result<CleanResult> {
        let unchanged =
            done.truncations == self.truncations
                && self.segments.len() > done.segments.len()
                && done.segments.iter().zip(&self.segments).all(|(c, s)| {
                    Arc::ptr_eq(&c.original.data, &s.data) && c.original.size == s.size
                });
        if !unchanged {
            tracing::info!(dir = %self.dir.display(), "log changed during compaction; dropping the cleaned segments");
            done.discard()?;
            return Ok(CleanResult::default());
        }
        let mut result = CleanResult::default();
        for (i, c) in done.segments.into_iter().enumerate() {
            let base = c.original.base_offset();
            let bytes_after = c.cleaned.size;
            drop(c.cleaned);
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
            let (segment, _) = Segment::open(&dir, base, true, self.config.index_interval_bytes)?;
            self.segments[i] = segment;
            result.cleaned_segments += 1;
            result.bytes_before += c.original.size;
            result.bytes_after += bytes_after;
            result.records_removed += c.records_removed;
        }
        self.cleaner_offset = self.cleaner_offset.max(done.cleaned_up_to);
        self.write_checkpoint()?;
        self.publish_segments();
        tracing::info!(dir = %self.dir.display(), cleaned_segments = result.cleaned_segments,
            bytes_before = result.bytes_before, bytes_after = result.bytes_after,
            records_removed = result.records_removed, "compacted log");
        Ok(result)
    }
}

/// A planned compaction pass: the sealed segments to clean, read without the log.
#[derive(Debug)]
pub struct CompactionJob {
    dir: PathBuf,
    segments: Vec<Segment>,
    cleaned_up_to: i64,
    index_interval_bytes: u64,
    delete_retention_ms: i64,
    now_ms: i64,
    truncations: u64,
}

/// A run compaction job: cleaned files written beside the originals, not swapped in yet.
#[derive(Debug)]
pub struct CompactedSegments {
    segments: Vec<Cleaned>,
    cleaned_up_to: i64,
    truncations: u64,
}

#[derive(Debug)]
struct Cleaned {
    original: Segment,
    cleaned: Segment,
    records_removed: u64,
}

impl CompactedSegments {
    /// Drops the job's cleaned files without swapping them in (the log went away meanwhile).
    pub fn discard(self) -> Result<()> {
        for c in &self.segments {
            c.cleaned.delete_files()?;
        }
        Ok(())
    }
}

impl CompactionJob {
    /// Builds the key -> latest offset map over the segments and writes each one's cleaned
    /// copy (`<base>.log.cleaned` and its indexes, fsynced). Touches nothing the log reads.
    /// Fails (leaving no cleaned file) if a segment was truncated under it.
    pub fn run(mut self) -> Result<CompactedSegments> {
        // Transactions are not compacted yet: a segment holding a transactional batch or a
        // marker, and every later one, stays as it is (Kafka's cleaner drops aborted records and
        // keeps markers until their data is gone; keeping everything loses nothing).
        if let Some(i) = first_transactional(&self.segments)? {
            self.cleaned_up_to = self.cleaned_up_to.min(self.segments[i].base_offset());
            self.segments.truncate(i);
        }
        let latest = latest_offsets_by_key(&self.segments)?;
        let mut segments = Vec::with_capacity(self.segments.len());
        for original in self.segments {
            let written = rewrite_segment(
                &self.dir,
                &original,
                &latest,
                self.index_interval_bytes,
                self.delete_retention_ms,
                self.now_ms,
            );
            match written {
                Ok((cleaned, records_removed)) => segments.push(Cleaned {
                    original,
                    cleaned,
                    records_removed,
                }),
                Err(e) => {
                    for c in &segments {
                        let _ = c.cleaned.delete_files();
                    }
                    return Err(e);
                }
            }
        }
        Ok(CompactedSegments {
            segments,
            cleaned_up_to: self.cleaned_up_to,
            truncations: self.truncations,
        })
    }
}

/// The first segment holding a transactional batch or a transaction marker (headers only).
fn first_transactional(segments: &[Segment]) -> Result<Option<usize>> {
    for (i, s) in segments.iter().enumerate() {
        let mut position = 0;
        while let Some(h) = s.data.read_header(position, s.size)? {
            if h.batch_length < 0 || position + h.size() > s.size {
                break;
            }
            if h.is_transactional() || h.is_control() {
                return Ok(Some(i));
            }
            position += h.size();
        }
    }
    Ok(None)
}

fn latest_offsets_by_key(segments: &[Segment]) -> Result<HashMap<Vec<u8>, i64>> {
    let mut latest = HashMap::new();
    for s in segments {
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

/// Writes the cleaned copy of `segment` (files suffixed `.cleaned`, fsynced); returns it and
/// the number of records removed.
fn rewrite_segment(
    dir: &Path,
    segment: &Segment,
    latest: &HashMap<Vec<u8>, i64>,
    interval: u64,
    delete_retention_ms: i64,
    now_ms: i64,
) -> Result<(Segment, u64)> {
    let suffix = format!(".{CLEANED}");
    let mut out = Segment::create_with_suffix(dir, segment.base_offset(), &suffix)?;
    let mut removed = 0u64;
    let written = segment.for_each_batch(|position, h, bytes| {
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
    });
    // A segment truncated or deleted under the job fails its read: leave nothing behind.
    if let Err(e) = written.and_then(|()| out.flush(true)) {
        let _ = out.delete_files();
        return Err(e);
    }
    Ok((out, removed))
}
