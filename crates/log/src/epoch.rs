//! The leader epoch cache: for each leader epoch, the first offset that leader appended.
//! Followers use it (through OffsetForLeaderEpoch) to find where their log diverges from the
//! leader's. Persisted in Kafka's `leader-epoch-checkpoint` format:
//!
//! ```text
//! 0                 version
//! 2                 number of entries
//! 0 0               epoch start_offset
//! 3 1500
//! ```

use std::path::{Path, PathBuf};

use crate::checkpoint::write_atomically;
use crate::error::{LogError, Result};

pub(crate) const LEADER_EPOCH_CHECKPOINT: &str = "leader-epoch-checkpoint";

/// One entry: `epoch` started at `start_offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochEntry {
    /// The leader epoch.
    pub epoch: i32,
    /// The first offset appended in that epoch.
    pub start_offset: i64,
}

/// Epoch -> start offset, sorted by both; written through to its checkpoint file on every change
/// (changes happen once per leader change, so the cost does not matter).
#[derive(Debug)]
pub(crate) struct LeaderEpochCache {
    dir: PathBuf,
    entries: Vec<EpochEntry>,
}

impl LeaderEpochCache {
    pub fn load(dir: &Path) -> Result<Self> {
        let path = dir.join(LEADER_EPOCH_CHECKPOINT);
        let entries = match std::fs::read_to_string(&path) {
            Ok(text) => parse(&text).ok_or_else(|| {
                LogError::io(
                    &path,
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        "malformed leader-epoch-checkpoint",
                    ),
                )
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(LogError::io(&path, e)),
        };
        Ok(Self {
            dir: dir.to_path_buf(),
            entries,
        })
    }

    pub fn entries(&self) -> &[EpochEntry] {
        &self.entries
    }

    pub fn latest_epoch(&self) -> Option<i32> {
        self.entries.last().map(|e| e.epoch)
    }

    /// Records that `epoch` begins at `start_offset`, if it is newer than the latest epoch.
    /// Older or equal epochs are ignored, as in Kafka.
    pub fn assign(&mut self, epoch: i32, start_offset: i64) -> Result<()> {
        if epoch < 0 || self.latest_epoch().is_some_and(|latest| epoch <= latest) {
            return Ok(());
        }
        // A new epoch cannot start before an earlier one's start: drop such stale entries.
        self.entries.retain(|e| e.start_offset < start_offset);
        self.entries.push(EpochEntry {
            epoch,
            start_offset,
        });
        self.persist()
    }

    /// OffsetForLeaderEpoch, as Kafka's leader epoch cache answers it: the largest epoch
    /// `<= requested` and the offset where it ended (the next epoch's start, or
    /// `log_end_offset` for the latest). An epoch older than everything known answers itself
    /// with the first known epoch's start (that data is gone; the follower replicates from
    /// there); one newer than everything, or any epoch of an empty cache, answers `(-1, -1)`.
    pub fn end_offset_for(&self, requested: i32, log_end_offset: i64) -> (i32, i64) {
        match self.entries.last() {
            None => return (-1, -1),
            Some(_) if requested < 0 => return (-1, -1),
            Some(last) if requested == last.epoch => return (last.epoch, log_end_offset),
            // Newer than anything we know: Kafka answers UNDEFINED, as here.
            Some(last) if requested > last.epoch => return (-1, -1),
            Some(_) => {}
        }
        let idx = self.entries.partition_point(|e| e.epoch <= requested);
        match idx {
            0 => (requested, self.entries[0].start_offset),
            i => (self.entries[i - 1].epoch, self.entries[i].start_offset),
        }
    }

    /// Drops entries that start at or after `end_offset` (the log was truncated there).
    pub fn truncate_from_end(&mut self, end_offset: i64) -> Result<()> {
        let before = self.entries.len();
        self.entries.retain(|e| e.start_offset < end_offset);
        if self.entries.len() != before {
            self.persist()?;
        }
        Ok(())
    }

    /// The log start moved to `start_offset`: entries wholly before it go; the one covering it
    /// is moved up to start there.
    pub fn truncate_from_start(&mut self, start_offset: i64) -> Result<()> {
        let covering = self
            .entries
            .partition_point(|e| e.start_offset <= start_offset);
        if covering == 0 {
            return Ok(());
        }
        let mut changed = covering > 1;
        self.entries.drain(..covering - 1);
        if self.entries[0].start_offset < start_offset {
            self.entries[0].start_offset = start_offset;
            changed = true;
        }
        if changed {
            self.persist()?;
        }
        Ok(())
    }

    pub fn clear(&mut self) -> Result<()> {
        self.entries.clear();
        self.persist()
    }

    fn persist(&self) -> Result<()> {
        let mut text = format!("0\n{}\n", self.entries.len());
        for e in &self.entries {
            text.push_str(&format!("{} {}\n", e.epoch, e.start_offset));
        }
        write_atomically(&self.dir, LEADER_EPOCH_CHECKPOINT, text.as_bytes())
    }
}

fn parse(text: &str) -> Option<Vec<EpochEntry>> {
    let mut lines = text.lines();
    if lines.next()?.trim() != "0" {
        return None;
    }
    let count: usize = lines.next()?.trim().parse().ok()?;
    let mut entries = Vec::with_capacity(count.min(1024));
    for _ in 0..count {
        let mut parts = lines.next()?.split_whitespace();
        let epoch = parts.next()?.parse().ok()?;
        let start_offset = parts.next()?.parse().ok()?;
        entries.push(EpochEntry {
            epoch,
            start_offset,
        });
    }
    Some(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn end_offsets_follow_offset_for_leader_epoch_semantics() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut c = LeaderEpochCache::load(dir.path()).expect("load");
        assert_eq!(c.end_offset_for(0, 0), (-1, -1));
        c.assign(1, 0).expect("assign");
        c.assign(3, 100).expect("assign");
        c.assign(2, 50).expect("older epoch ignored");
        c.assign(5, 250).expect("assign");
        assert_eq!(
            c.end_offset_for(0, 300),
            (0, 0),
            "older than all: the first start"
        );
        assert_eq!(c.end_offset_for(1, 300), (1, 100));
        assert_eq!(c.end_offset_for(2, 300), (1, 100));
        assert_eq!(c.end_offset_for(3, 300), (3, 250));
        assert_eq!(c.end_offset_for(5, 300), (5, 300));
        assert_eq!(c.end_offset_for(9, 300), (-1, -1));

        let reloaded = LeaderEpochCache::load(dir.path()).expect("reload");
        assert_eq!(reloaded.entries(), c.entries());

        c.truncate_from_end(100).expect("truncate");
        assert_eq!(c.latest_epoch(), Some(1));
        c.assign(6, 120).expect("assign");
        c.truncate_from_start(130).expect("truncate");
        assert_eq!(
            c.entries(),
            &[EpochEntry {
                epoch: 6,
                start_offset: 130
            }]
        );
        assert_eq!(
            LeaderEpochCache::load(dir.path())
                .expect("reload")
                .entries(),
            c.entries()
        );
    }
}
