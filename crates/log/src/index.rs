//! Sparse indexes of a segment, in Kafka's on-disk formats:
//!
//! - `.index`: 8-byte entries `(relative offset: u32, file position: u32)`, big-endian;
//! - `.timeindex`: 12-byte entries `(max timestamp so far: i64, relative offset: u32)`.
//!
//! Entries live in memory (a sorted `Vec`) and are appended to the file when the log flushes,
//! rolls or closes; the file is trusted on a clean open after a sanity check and rebuilt from the
//! segment otherwise. Readers search the same `Vec` under a short read lock held by the caller.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::error::{LogError, Result};

/// Size of one `.index` entry.
pub const OFFSET_ENTRY_SIZE: usize = 8;
/// Size of one `.timeindex` entry.
pub const TIME_ENTRY_SIZE: usize = 12;

/// One fixed-size index entry.
pub(crate) trait IndexEntry: Copy + std::fmt::Debug {
    const SIZE: usize;
    fn encode(&self, out: &mut Vec<u8>);
    fn decode(b: &[u8]) -> Self;
    /// Offset relative to the segment's base offset.
    fn relative_offset(&self) -> u32;
}

/// `.index` entry: where in the file a batch at or below this offset starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OffsetEntry {
    pub relative_offset: u32,
    pub position: u32,
}

impl IndexEntry for OffsetEntry {
    const SIZE: usize = OFFSET_ENTRY_SIZE;
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.relative_offset.to_be_bytes());
        out.extend_from_slice(&self.position.to_be_bytes());
    }
    fn decode(b: &[u8]) -> Self {
        OffsetEntry {
            relative_offset: u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
            position: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
        }
    }
    fn relative_offset(&self) -> u32 {
        self.relative_offset
    }
}

/// `.timeindex` entry: the largest timestamp seen up to (and including) the batch ending at
/// this offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimeEntry {
    pub timestamp: i64,
    pub relative_offset: u32,
}

impl IndexEntry for TimeEntry {
    const SIZE: usize = TIME_ENTRY_SIZE;
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.timestamp.to_be_bytes());
        out.extend_from_slice(&self.relative_offset.to_be_bytes());
    }
    fn decode(b: &[u8]) -> Self {
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&b[..8]);
        TimeEntry {
            timestamp: i64::from_be_bytes(ts),
            relative_offset: u32::from_be_bytes([b[8], b[9], b[10], b[11]]),
        }
    }
    fn relative_offset(&self) -> u32 {
        self.relative_offset
    }
}

/// An index: sorted entries in memory, the first `persisted` of which are on disk.
#[derive(Debug)]
pub(crate) struct IndexFile<E: IndexEntry> {
    path: PathBuf,
    entries: Vec<E>,
    persisted: usize,
}

impl<E: IndexEntry> IndexFile<E> {
    /// An empty index that will be written to `path`.
    pub fn new(path: PathBuf) -> Self {
        Self {
            path,
            entries: Vec::new(),
            persisted: 0,
        }
    }

    /// Loads the index file. `Ok(None)` means the file is missing or not a whole number of
    /// entries: the caller rebuilds it.
    pub fn load(path: PathBuf) -> Result<Option<Self>> {
        let mut file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(LogError::io(&path, e)),
        };
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .map_err(|e| LogError::io(&path, e))?;
        if bytes.len() % E::SIZE != 0 {
            return Ok(None);
        }
        let entries: Vec<E> = bytes.chunks_exact(E::SIZE).map(E::decode).collect();
        let persisted = entries.len();
        Ok(Some(Self {
            path,
            entries,
            persisted,
        }))
    }

    pub fn entries(&self) -> &[E] {
        &self.entries
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn last(&self) -> Option<&E> {
        self.entries.last()
    }

    pub fn push(&mut self, entry: E) {
        debug_assert!(
            self.entries
                .last()
                .is_none_or(|l| l.relative_offset() <= entry.relative_offset()),
            "index entries must be appended in offset order: {:?} after {:?} in {}",
            entry,
            self.entries.last(),
            self.path.display()
        );
        self.entries.push(entry);
    }

    /// The last entry whose key is `<= key` under `key_of`, which must be monotonic.
    pub fn floor_by<K: Ord>(&self, key: K, key_of: impl Fn(&E) -> K) -> Option<E> {
        let idx = self.entries.partition_point(|e| key_of(e) <= key);
        idx.checked_sub(1).map(|i| self.entries[i])
    }

    /// Drops entries whose relative offset is `>= relative_offset`.
    pub fn truncate_from(&mut self, relative_offset: u32) {
        let keep = self
            .entries
            .partition_point(|e| e.relative_offset() < relative_offset);
        self.entries.truncate(keep);
        self.persisted = self.persisted.min(keep);
    }

    pub fn clear(&mut self) {
        self.entries.clear();
        self.persisted = 0;
    }

    /// Writes entries not yet on disk (rewriting a truncated tail) and optionally fsyncs.
    pub fn persist(&mut self, sync: bool) -> Result<()> {
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&self.path)
            .map_err(|e| LogError::io(&self.path, e))?;
        let on_disk = (self.persisted * E::SIZE) as u64;
        let io = |e| LogError::io(&self.path, e);
        let len = file.metadata().map_err(io)?.len();
        if len != on_disk {
            file.set_len(on_disk).map_err(io)?;
        }
        if self.persisted < self.entries.len() {
            let mut buf = Vec::with_capacity((self.entries.len() - self.persisted) * E::SIZE);
            for e in &self.entries[self.persisted..] {
                e.encode(&mut buf);
            }
            file.seek(SeekFrom::Start(on_disk)).map_err(io)?;
            file.write_all(&buf).map_err(io)?;
            self.persisted = self.entries.len();
        }
        if sync {
            file.sync_data().map_err(io)?;
        }
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn persists_incrementally_and_after_truncation() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("0.index");
        let mut idx = IndexFile::<OffsetEntry>::new(path.clone());
        for i in 0..10u32 {
            idx.push(OffsetEntry {
                relative_offset: i * 10,
                position: i * 4096,
            });
        }
        idx.persist(true).expect("persist");
        idx.truncate_from(45);
        assert_eq!(idx.len(), 5);
        idx.push(OffsetEntry {
            relative_offset: 47,
            position: 30_000,
        });
        idx.persist(false).expect("persist");
        let loaded = IndexFile::<OffsetEntry>::load(path.clone())
            .expect("io")
            .expect("whole entries");
        assert_eq!(loaded.entries(), idx.entries());
        assert_eq!(
            loaded.floor_by(46, |e| e.relative_offset),
            Some(OffsetEntry {
                relative_offset: 40,
                position: 4 * 4096
            })
        );
        assert_eq!(
            loaded
                .floor_by(0, |e| e.relative_offset)
                .map(|e| e.position),
            Some(0)
        );

        std::fs::write(&path, [0u8; 7]).expect("write");
        assert!(IndexFile::<OffsetEntry>::load(path).expect("io").is_none());
    }

    #[test]
    fn time_entries_round_trip() {
        let e = TimeEntry {
            timestamp: -5_000_000_000,
            relative_offset: 77,
        };
        let mut buf = Vec::new();
        e.encode(&mut buf);
        assert_eq!(buf.len(), TIME_ENTRY_SIZE);
        assert_eq!(TimeEntry::decode(&buf), e);
    }
}
