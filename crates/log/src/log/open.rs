//! Opening a log: tidy what an interrupted compaction left, load segments, recover what a crash
//! may have torn, and settle the offsets.

use std::path::Path;
use std::sync::Arc;

use parking_lot::RwLock;

use super::{segment_views, Log};
use crate::checkpoint::{self, LogCheckpoint, CLEAN_SHUTDOWN};
use crate::cleaner;
use crate::config::LogConfig;
use crate::epoch::LeaderEpochCache;
use crate::error::{LogError, Result};
use crate::reader::{ActiveState, LogView};
use crate::segment::Segment;

pub(super) fn open(dir: &Path, config: LogConfig, now_ms: i64) -> Result<Log> {
    std::fs::create_dir_all(dir).map_err(|e| LogError::io(dir, e))?;
    let swapped = cleaner::complete_interrupted_swaps(dir)?;
    let marker = dir.join(CLEAN_SHUTDOWN);
    let clean = marker.exists();
    let stored = LogCheckpoint::read(dir)?;
    let recovery_point = if clean {
        i64::MAX
    } else {
        stored.map_or(0, |c| c.recovery_point)
    };

    let bases = segment_base_offsets(dir)?;
    let mut segments: Vec<Segment> = Vec::with_capacity(bases.len().max(1));
    let mut recovered_any = false;
    for (i, &base) in bases.iter().enumerate() {
        let next_base = bases.get(i + 1).copied();
        // A segment wholly below the recovery point was fsynced: trust its indexes.
        let flushed = next_base.is_some_and(|nb| nb <= recovery_point) || clean;
        let trust = flushed && !swapped.contains(&base);
        let (segment, truncated) = Segment::open(dir, base, trust, config.index_interval_bytes)?;
        recovered_any |= !trust;
        if let Some(prev) = segments.last() {
            if segment.size > 0 && prev.next_offset > base {
                tracing::warn!(dir = %dir.display(), base, previous_end = prev.next_offset,
                    "segment overlaps its predecessor; dropping it and every later segment");
                delete_from(&bases[i..], dir, segment)?;
                break;
            }
        }
        segments.push(segment);
        if truncated > 0 && i + 1 < bases.len() {
            tracing::warn!(dir = %dir.display(), base, "corrupt segment; deleting later segments");
            let later: Vec<i64> = bases[i + 1..].to_vec();
            for b in later {
                let (s, _) = Segment::open(dir, b, false, config.index_interval_bytes)?;
                s.delete_files()?;
            }
            break;
        }
    }

    let stored_start = stored.map_or(0, |c| c.log_start_offset);
    if segments.is_empty() {
        segments.push(Segment::create(dir, stored_start.max(0))?);
    }
    let log_end = segments.last().map_or(0, |s| s.next_offset);
    let first_base = segments[0].base_offset();
    let log_start_offset = stored_start.max(first_base).min(log_end);

    if recovered_any {
        // Recovered bytes came from the page cache or disk; make them durable before claiming
        // them as below the recovery point.
        for s in &segments {
            s.flush(true)?;
        }
    }
    let mut epochs = LeaderEpochCache::load(dir)?;
    epochs.truncate_from_end(log_end)?;
    epochs.truncate_from_start(log_start_offset)?;

    let view = LogView {
        segments: Arc::new(segment_views(&segments)),
        active: ActiveState {
            size: 0,
            max_timestamp: -1,
            offset_of_max_timestamp: 0,
        },
        log_start_offset,
        log_end_offset: log_end,
    };
    let log = Log {
        dir: dir.to_path_buf(),
        config,
        segments,
        log_start_offset,
        recovery_point: log_end,
        cleaner_offset: stored.map_or(0, |c| c.cleaner_offset).min(log_end),
        high_watermark: None,
        unflushed_messages: 0,
        last_flush_ms: now_ms,
        epochs,
        view: Arc::new(RwLock::new(view)),
        truncations: 0,
    };
    log.publish_segments();
    log.write_checkpoint()?;
    // From here on a crash is an unclean shutdown.
    match std::fs::remove_file(&marker) {
        Ok(()) => checkpoint::sync_dir(dir)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(LogError::io(&marker, e)),
    }
    tracing::debug!(dir = %dir.display(), clean, log_start_offset, log_end_offset = log_end,
        segments = log.segments.len(), "opened log");
    Ok(log)
}

fn delete_from(bases: &[i64], dir: &Path, first: Segment) -> Result<()> {
    first.delete_files()?;
    for &b in &bases[1..] {
        for ext in ["log", "index", "timeindex"] {
            let p = dir.join(crate::segment::file_name(b, ext));
            if let Err(e) = std::fs::remove_file(&p) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    return Err(LogError::io(&p, e));
                }
            }
        }
    }
    Ok(())
}

/// Base offsets of the `<20 digits>.log` files in `dir`, sorted; stray index files without a
/// log file are removed.
fn segment_base_offsets(dir: &Path) -> Result<Vec<i64>> {
    let mut bases = Vec::new();
    let mut orphans = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| LogError::io(dir, e))? {
        let entry = entry.map_err(|e| LogError::io(dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some((stem, ext)) = name.split_once('.') else {
            continue;
        };
        if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(base) = stem.parse::<i64>() else {
            continue;
        };
        match ext {
            "log" => bases.push(base),
            "index" | "timeindex" => orphans.push((base, entry.path())),
            _ => {}
        }
    }
    bases.sort_unstable();
    for (base, path) in orphans {
        if bases.binary_search(&base).is_err() {
            std::fs::remove_file(&path).map_err(|e| LogError::io(&path, e))?;
        }
    }
    Ok(bases)
}
