//! Power loss over a real log directory. A process crash (kill -9) loses nothing written: the
//! page cache survives it. A power loss loses what was not fsynced: the log's recovery point
//! says what was (every offset below it), so the bytes of the active segment after it keep a
//! random prefix (some pages reached the disk), the tail of that prefix may be torn (garbage
//! where a page was half written), and later segments are gone.
//!
//! A crash may also come in the middle of an append that has not returned (nothing depends on
//! it yet): [`tear_in_flight_write`] leaves part of a batch after the log's end, which recovery
//! must cut off, fsync or not.
//!
//! Approximation: only segment data is torn. The checkpoint files (`log-checkpoint`,
//! `leader-epoch-checkpoint`, producer snapshots, `replication-offset-checkpoint`) are written
//! atomically and are taken as durable once written, and a truncation is taken as durable.

use std::fs::OpenOptions;
use std::io::{Seek, SeekFrom, Write};

use odradek_log::Log;

use crate::rng::SimRng;

/// Tears `log`'s unsynced tail; says what it did, if anything.
pub fn lose_unsynced(log: &Log, rng: &mut SimRng) -> std::io::Result<Option<String>> {
    let synced = log.recovery_point();
    let end = log.log_end_offset();
    if synced >= end {
        return Ok(None);
    }
    let bases = log.segment_base_offsets();
    let Some(&base) = bases.iter().rev().find(|b| **b <= synced) else {
        return Ok(None);
    };
    // The file position of the first unsynced batch.
    let read = log
        .read(synced, 1, end)
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let Some(slice) = read.records else {
        return Ok(None);
    };
    let position = slice.position();
    let path = log.dir().join(format!("{base:020}.log"));
    let mut file = OpenOptions::new().write(true).open(&path)?;
    let len = file.metadata()?.len();
    let keep = position + rng.below(len.saturating_sub(position) + 1);
    file.set_len(keep)?;
    let mut torn = false;
    if keep > position && rng.chance(0.5) {
        // A half-written page: garbage over the last few bytes kept.
        let n = rng.below((keep - position).min(512)) + 1;
        let garbage: Vec<u8> = (0..n).map(|_| rng.next_u64() as u8).collect();
        file.seek(SeekFrom::Start(keep - n))?;
        file.write_all(&garbage)?;
        torn = true;
    }
    let mut removed = 0;
    for later in bases.iter().filter(|b| **b > base) {
        for ext in ["log", "index", "timeindex"] {
            let p = log.dir().join(format!("{later:020}.{ext}"));
            if p.exists() {
                std::fs::remove_file(p)?;
            }
        }
        removed += 1;
    }
    Ok(Some(format!(
        "synced below offset {synced} (byte {position}), kept {} of {} unsynced bytes{}{}",
        keep - position,
        len - position,
        if torn { ", torn" } else { "" },
        if removed > 0 {
            format!(", {removed} later segments gone")
        } else {
            String::new()
        }
    )))
}

/// Leaves a torn write after the end of `log`'s active segment: a prefix of its last batch (as
/// if a batch like it was being written) or, now and then, garbage. Says what it left.
pub fn tear_in_flight_write(log: &Log, rng: &mut SimRng) -> std::io::Result<Option<String>> {
    let end = log.log_end_offset();
    let base = log.active_segment_base_offset();
    let path = log.dir().join(format!("{base:020}.log"));
    let tail = if end > log.log_start_offset() && rng.chance(0.8) {
        let read = log
            .read(end - 1, 1, end)
            .and_then(|r| r.to_bytes())
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        if read.len() < 2 {
            return Ok(None);
        }
        let n = 1 + rng.below(read.len() as u64 - 1) as usize;
        read[..n].to_vec()
    } else {
        let n = 1 + rng.below(200) as usize;
        (0..n).map(|_| rng.next_u64() as u8).collect()
    };
    let mut file = OpenOptions::new().append(true).open(&path)?;
    file.write_all(&tail)?;
    Ok(Some(format!(
        "{} bytes of an unfinished append after offset {end}",
        tail.len()
    )))
}
