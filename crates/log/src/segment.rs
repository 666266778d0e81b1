//! One segment: `<base offset>.log` with its `.index` and `.timeindex`.
//!
//! [`SegmentData`] is what readers share (the open file and the two indexes, each behind a short
//! lock); [`Segment`] is the writer's handle and holds the mutable bookkeeping (size, max
//! timestamp, bytes since the last index entry). Only the [`crate::Log`] owner writes.

use std::fs::{File, OpenOptions};
use std::io::{IoSlice, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use parking_lot::RwLock;

use crate::batch::{self, BatchHeader, CountCheck, BATCH_HEADER_SIZE, LOG_OVERHEAD};
use crate::error::{LogError, Result};
use crate::index::{IndexFile, OffsetEntry, TimeEntry};

/// `<20-digit zero-padded base offset>.<ext>`, Kafka's segment file naming.
pub(crate) fn file_name(base_offset: i64, ext: &str) -> String {
    format!("{base_offset:020}.{ext}")
}

/// The shared, read-mostly part of a segment.
#[derive(Debug)]
pub(crate) struct SegmentData {
    pub base_offset: i64,
    pub log_path: PathBuf,
    /// Opened read + append. Readers use positioned reads (`read_at`), the single writer appends,
    /// so neither needs a lock on the file itself. An empty segment opens its file on first
    /// use ([`SegmentData::file`]): a broker hosting many idle partitions holds no descriptor
    /// for them.
    file: OnceLock<File>,
    /// Locked briefly: the writer to push an entry, readers for one binary search.
    pub offset_index: RwLock<IndexFile<OffsetEntry>>,
    /// Same contract as `offset_index`.
    pub time_index: RwLock<IndexFile<TimeEntry>>,
}

impl SegmentData {
    /// The segment's file, opened now if this is its first use.
    pub fn file(&self) -> Result<&File> {
        if let Some(f) = self.file.get() {
            return Ok(f);
        }
        let opened = OpenOptions::new()
            .read(true)
            .append(true)
            .open(&self.log_path)
            .map_err(|e| LogError::io(&self.log_path, e))?;
        // Two first users may race to open; one descriptor wins, the other closes.
        Ok(self.file.get_or_init(|| opened))
    }

    /// The file if it is open: always so once a batch was appended or read.
    pub fn opened_file(&self) -> Option<&File> {
        self.file.get()
    }

    /// Reads the header of the batch at `position`, if a whole header lies before `end`.
    pub fn read_header(&self, position: u64, end: u64) -> Result<Option<BatchHeader>> {
        if position + BATCH_HEADER_SIZE as u64 > end {
            return Ok(None);
        }
        let mut buf = [0u8; BATCH_HEADER_SIZE];
        self.file()?
            .read_exact_at(&mut buf, position)
            .map_err(|e| LogError::io(&self.log_path, e))?;
        Ok(BatchHeader::parse(&buf))
    }

    /// Position from which to scan for `offset`: the last indexed batch at or before it.
    pub fn lookup_position(&self, offset: i64) -> u64 {
        let rel = offset
            .saturating_sub(self.base_offset)
            .clamp(0, i64::from(u32::MAX)) as u32;
        self.offset_index
            .read()
            .floor_by(rel, |e| e.relative_offset)
            .map_or(0, |e| u64::from(e.position))
    }

    /// Finds the first batch whose last offset is `>= offset`, scanning headers from the index
    /// position up to `end`. Returns its position and header.
    pub fn find_batch(&self, offset: i64, end: u64) -> Result<Option<(u64, BatchHeader)>> {
        let mut position = self.lookup_position(offset);
        while let Some(header) = self.read_header(position, end)? {
            if header.batch_length < 0 || position + header.size() > end {
                return Ok(None);
            }
            if header.last_offset() >= offset {
                return Ok(Some((position, header)));
            }
            position += header.size();
        }
        Ok(None)
    }
}

/// The file of a segment that was active, for syncing what was appended to it from another
/// thread (a group commit). Holding it keeps the file open even if the log deletes the segment.
#[derive(Debug, Clone)]
pub struct SegmentFile(pub(crate) Arc<SegmentData>);

impl SegmentFile {
    /// `fdatasync`s the file: every byte appended to it so far is on disk, and so is its size.
    pub fn sync_data(&self) -> Result<()> {
        match self.0.opened_file() {
            // Never opened: nothing was appended through it.
            None => Ok(()),
            Some(f) => f.sync_data().map_err(|e| LogError::io(&self.0.log_path, e)),
        }
    }

    /// Whether both name the same segment file.
    pub fn same_file(&self, other: &SegmentFile) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// The writer's view of a segment. A clone shares the open file (the compaction job reads a
/// clone of sealed segments without the log).
#[derive(Debug, Clone)]
pub(crate) struct Segment {
    pub data: Arc<SegmentData>,
    /// Bytes of whole batches in the file.
    pub size: u64,
    /// Offset after the last batch (the base offset when empty).
    pub next_offset: i64,
    /// Largest batch max timestamp, or -1 when empty.
    pub max_timestamp: i64,
    /// Base offset of the first batch that reached `max_timestamp`.
    pub offset_of_max_timestamp: i64,
    /// Max timestamp of the first batch: `segment.ms` counts from it, as in Kafka.
    pub first_batch_timestamp: Option<i64>,
    bytes_since_index_entry: u64,
}

impl Segment {
    /// Creates a new empty segment in `dir` (emptying a leftover file of the same name).
    pub fn create(dir: &Path, base_offset: i64) -> Result<Segment> {
        Self::create_with_suffix(dir, base_offset, "")
    }

    /// Like [`Segment::create`], with `suffix` appended to every file name (the cleaner writes
    /// `<base>.log.cleaned` and friends).
    pub fn create_with_suffix(dir: &Path, base_offset: i64, suffix: &str) -> Result<Segment> {
        let log_path = dir.join(file_name(base_offset, &format!("log{suffix}")));
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .truncate(false)
            .open(&log_path)
            .map_err(|e| LogError::io(&log_path, e))?;
        file.set_len(0).map_err(|e| LogError::io(&log_path, e))?;
        // Empty: the descriptor is opened again on first use.
        drop(file);
        let offset_index =
            IndexFile::new(dir.join(file_name(base_offset, &format!("index{suffix}"))));
        let time_index =
            IndexFile::new(dir.join(file_name(base_offset, &format!("timeindex{suffix}"))));
        Ok(Self::from_parts(
            base_offset,
            log_path,
            None,
            offset_index,
            time_index,
        ))
    }

    fn from_parts(
        base_offset: i64,
        log_path: PathBuf,
        file: Option<File>,
        offset_index: IndexFile<OffsetEntry>,
        time_index: IndexFile<TimeEntry>,
    ) -> Segment {
        Segment {
            data: Arc::new(SegmentData {
                base_offset,
                log_path,
                file: file.map(OnceLock::from).unwrap_or_default(),
                offset_index: RwLock::new(offset_index),
                time_index: RwLock::new(time_index),
            }),
            size: 0,
            next_offset: base_offset,
            max_timestamp: -1,
            offset_of_max_timestamp: base_offset,
            first_batch_timestamp: None,
            bytes_since_index_entry: 0,
        }
    }

    /// Opens an existing segment. With `trust_indexes` (clean shutdown) the index files are
    /// loaded and sanity-checked, and only the tail after the last index entry is scanned;
    /// otherwise, or when the check fails, the segment is recovered (see [`Segment::recover`]).
    /// Returns the segment and the number of bytes truncated by recovery.
    pub fn open(
        dir: &Path,
        base_offset: i64,
        trust_indexes: bool,
        index_interval_bytes: u64,
    ) -> Result<(Segment, u64)> {
        let log_path = dir.join(file_name(base_offset, "log"));
        let file_len = std::fs::metadata(&log_path)
            .map_err(|e| LogError::io(&log_path, e))?
            .len();
        // An empty segment opens its file on first use.
        let file = if file_len == 0 {
            None
        } else {
            let file = OpenOptions::new()
                .read(true)
                .append(true)
                .open(&log_path)
                .map_err(|e| LogError::io(&log_path, e))?;
            Some(file)
        };
        let index_path = dir.join(file_name(base_offset, "index"));
        let time_path = dir.join(file_name(base_offset, "timeindex"));
        if trust_indexes {
            if let (Some(oi), Some(ti)) = (
                IndexFile::<OffsetEntry>::load(index_path.clone())?,
                IndexFile::<TimeEntry>::load(time_path.clone())?,
            ) {
                if indexes_are_sane(&oi, &ti, file_len) {
                    let mut seg = Self::from_parts(base_offset, log_path, file, oi, ti);
                    seg.size = file_len;
                    if seg.load_tail_state()? {
                        return Ok((seg, 0));
                    }
                    tracing::warn!(segment = %seg.data.log_path.display(),
                        "segment tail does not match its index; recovering");
                    return seg.into_recovered(index_interval_bytes);
                }
            }
            tracing::warn!(segment = %log_path.display(), "index failed its sanity check; rebuilding");
        }
        let seg = Self::from_parts(
            base_offset,
            log_path,
            file,
            IndexFile::new(index_path),
            IndexFile::new(time_path),
        );
        seg.into_recovered(index_interval_bytes)
    }

    fn into_recovered(mut self, index_interval_bytes: u64) -> Result<(Segment, u64)> {
        let truncated = self.recover(index_interval_bytes)?;
        Ok((self, truncated))
    }

    /// After loading trusted indexes: scans from the last offset-index entry to the end of the
    /// file to learn the next offset and max timestamp. Returns false if the tail is not made
    /// of whole, plausible batch headers (then the caller recovers the segment).
    fn load_tail_state(&mut self) -> Result<bool> {
        let data = Arc::clone(&self.data);
        if let Some(first) = data.read_header(0, self.size)? {
            self.first_batch_timestamp = Some(first.max_timestamp);
        }
        if let Some(last) = data.time_index.read().last() {
            self.max_timestamp = last.timestamp;
            self.offset_of_max_timestamp = data.base_offset + i64::from(last.relative_offset);
        }
        let mut position = data
            .offset_index
            .read()
            .last()
            .map_or(0, |e| u64::from(e.position));
        let scan_from = position;
        while position < self.size {
            let Some(h) = data.read_header(position, self.size)? else {
                return Ok(false);
            };
            if h.magic != batch::MAGIC_V2
                || (h.batch_length as usize) < BATCH_HEADER_SIZE - LOG_OVERHEAD
                || position + h.size() > self.size
                || h.base_offset < self.next_offset
            {
                return Ok(false);
            }
            self.observe_batch(&h);
            position += h.size();
        }
        self.bytes_since_index_entry = self.size - scan_from;
        Ok(true)
    }

    fn observe_batch(&mut self, h: &BatchHeader) {
        if h.max_timestamp > self.max_timestamp {
            self.max_timestamp = h.max_timestamp;
            self.offset_of_max_timestamp = h.base_offset;
        }
        if self.first_batch_timestamp.is_none() {
            self.first_batch_timestamp = Some(h.max_timestamp);
        }
        self.next_offset = h.next_offset();
    }

    /// Re-validates every batch (CRC included), rebuilds both indexes, and truncates the file at
    /// the first byte that is not part of a valid batch. Returns the number of bytes removed.
    pub fn recover(&mut self, index_interval_bytes: u64) -> Result<u64> {
        let data = Arc::clone(&self.data);
        let path = &data.log_path;
        let file_len = std::fs::metadata(path)
            .map_err(|e| LogError::io(path, e))?
            .len();
        data.offset_index.write().clear();
        data.time_index.write().clear();
        self.size = 0;
        self.next_offset = data.base_offset;
        self.max_timestamp = -1;
        self.offset_of_max_timestamp = data.base_offset;
        self.first_batch_timestamp = None;
        self.bytes_since_index_entry = 0;

        if file_len == 0 {
            return Ok(0);
        }
        let file = data.file()?;
        let mut reader = std::io::BufReader::with_capacity(1 << 20, file.take(file_len));
        let mut buf = Vec::new();
        let mut position = 0u64;
        loop {
            let mut prefix = [0u8; LOG_OVERHEAD];
            if !read_full(&mut reader, &mut prefix).map_err(|e| LogError::io(path, e))? {
                break;
            }
            let length = i32::from_be_bytes([prefix[8], prefix[9], prefix[10], prefix[11]]);
            let size = LOG_OVERHEAD as u64 + length.max(0) as u64;
            if length < (BATCH_HEADER_SIZE - LOG_OVERHEAD) as i32 || position + size > file_len {
                break;
            }
            buf.clear();
            buf.extend_from_slice(&prefix);
            buf.resize(size as usize, 0);
            if !read_full(&mut reader, &mut buf[LOG_OVERHEAD..])
                .map_err(|e| LogError::io(path, e))?
            {
                break;
            }
            let header = match batch::validate_batch(&buf, position, None, CountCheck::AllowGaps) {
                Ok(h) if h.base_offset >= self.next_offset => h,
                Ok(h) => {
                    tracing::warn!(segment = %path.display(), position, base_offset = h.base_offset,
                        "batch offsets go backwards; truncating");
                    break;
                }
                Err(e) => {
                    tracing::warn!(segment = %path.display(), position, error = %e, "truncating at invalid batch");
                    break;
                }
            };
            self.index_batch(&header, position, index_interval_bytes);
            self.observe_batch(&header);
            position += size;
            self.size = position;
        }
        let truncated = file_len - self.size;
        if truncated > 0 {
            tracing::warn!(segment = %path.display(), valid_bytes = self.size, truncated,
                "recovery truncated a torn or corrupt tail");
            file.set_len(self.size).map_err(|e| LogError::io(path, e))?;
        }
        Ok(truncated)
    }

    /// Adds index entries for a batch about to be (or just) written at `position`, following
    /// Kafka: an entry once more than `index.interval.bytes` were written since the last one.
    fn index_batch(&mut self, h: &BatchHeader, position: u64, index_interval_bytes: u64) {
        let base = self.data.base_offset;
        if self.bytes_since_index_entry > index_interval_bytes {
            let rel_last = (h.last_offset() - base) as u32;
            self.data.offset_index.write().push(OffsetEntry {
                relative_offset: rel_last,
                position: position as u32,
            });
            let mut ti = self.data.time_index.write();
            let max_so_far = self.max_timestamp.max(h.max_timestamp);
            if ti.last().is_none_or(|l| max_so_far > l.timestamp) {
                let at = if h.max_timestamp > self.max_timestamp {
                    h.base_offset
                } else {
                    self.offset_of_max_timestamp
                };
                ti.push(TimeEntry {
                    timestamp: max_so_far,
                    relative_offset: (at - base) as u32,
                });
            }
            self.bytes_since_index_entry = 0;
        }
        self.bytes_since_index_entry += h.size();
    }

    /// Appends one batch: `header` (already rewritten by the caller) followed by `records`, the
    /// batch's bytes after the header, written without copying. On a failed write the file is
    /// cut back so the segment ends at a batch boundary.
    pub fn append(
        &mut self,
        header: &BatchHeader,
        records: &[u8],
        index_interval_bytes: u64,
    ) -> Result<()> {
        debug_assert_eq!(
            header.size(),
            (BATCH_HEADER_SIZE + records.len()) as u64,
            "batch size mismatch appending at offset {} to {}",
            header.base_offset,
            self.data.log_path.display()
        );
        debug_assert!(
            header.base_offset >= self.next_offset,
            "append at {} below segment next offset {}",
            header.base_offset,
            self.next_offset
        );
        let encoded = header.encode();
        let position = self.size;
        let file = self.data.file()?;
        if let Err(e) = write_all_vectored(file, &encoded, records) {
            // Best effort: leave no partial batch behind; recovery would also cut it.
            let _ = file.set_len(position);
            return Err(LogError::io(&self.data.log_path, e));
        }
        self.index_batch(header, position, index_interval_bytes);
        self.observe_batch(header);
        self.size += header.size();
        Ok(())
    }

    /// Removes every batch whose last offset is `>= offset`. Returns the segment's new next
    /// offset: a batch containing `offset` is removed whole, so it may be below `offset`.
    pub fn truncate_to(&mut self, offset: i64) -> Result<i64> {
        let data = Arc::clone(&self.data);
        let Some((position, removed)) = data.find_batch(offset, self.size)? else {
            return Ok(self.next_offset.min(offset.max(data.base_offset)));
        };
        data.file()?
            .set_len(position)
            .map_err(|e| LogError::io(&data.log_path, e))?;
        let rel = (removed.base_offset - data.base_offset).max(0) as u32;
        data.offset_index.write().truncate_from(rel);
        data.time_index.write().truncate_from(rel);
        // Rebuild the bookkeeping from the remaining headers: truncation is rare.
        self.next_offset = data.base_offset;
        self.max_timestamp = -1;
        self.offset_of_max_timestamp = data.base_offset;
        self.first_batch_timestamp = None;
        let mut pos = 0;
        while let Some(h) = data.read_header(pos, position)? {
            self.observe_batch(&h);
            pos += h.size();
        }
        self.size = position;
        let last_indexed = data
            .offset_index
            .read()
            .last()
            .map_or(0, |e| u64::from(e.position));
        self.bytes_since_index_entry = position.saturating_sub(last_indexed);
        // Offsets between the remaining batches and the removed one may be a compaction gap.
        self.next_offset = self.next_offset.max(offset.min(removed.base_offset));
        Ok(self.next_offset)
    }

    /// Writes index tails and fsyncs the log file (and, with `sync`, the indexes).
    pub fn flush(&self, sync: bool) -> Result<()> {
        self.data.offset_index.write().persist(sync)?;
        self.data.time_index.write().persist(sync)?;
        if let (true, Some(file)) = (sync, self.data.opened_file()) {
            file.sync_data()
                .map_err(|e| LogError::io(&self.data.log_path, e))?;
        }
        Ok(())
    }

    /// Calls `f(position, header, batch bytes)` for every whole batch, reading one batch at a
    /// time (the cleaner's sequential pass).
    pub fn for_each_batch(
        &self,
        mut f: impl FnMut(u64, &BatchHeader, bytes::Bytes) -> Result<()>,
    ) -> Result<()> {
        let mut position = 0;
        while let Some(h) = self.data.read_header(position, self.size)? {
            if position + h.size() > self.size {
                break;
            }
            let mut buf = bytes::BytesMut::zeroed(h.size() as usize);
            self.data
                .file()?
                .read_exact_at(&mut buf, position)
                .map_err(|e| LogError::io(&self.data.log_path, e))?;
            f(position, &h, buf.freeze())?;
            position += h.size();
        }
        Ok(())
    }

    /// Number of offset index entries (a full index rolls the segment).
    pub fn index_entries(&self) -> usize {
        self.data.offset_index.read().len()
    }

    pub fn base_offset(&self) -> i64 {
        self.data.base_offset
    }

    pub fn is_empty(&self) -> bool {
        self.size == 0
    }

    /// Deletes the segment's files. Readers holding the `Arc<SegmentData>` keep reading the
    /// unlinked file until they drop it.
    pub fn delete_files(&self) -> Result<()> {
        let paths = [
            self.data.log_path.clone(),
            self.data.offset_index.read().path().to_path_buf(),
            self.data.time_index.read().path().to_path_buf(),
        ];
        for p in paths {
            match std::fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(LogError::io(&p, e)),
            }
        }
        Ok(())
    }
}

fn indexes_are_sane(oi: &IndexFile<OffsetEntry>, ti: &IndexFile<TimeEntry>, file_len: u64) -> bool {
    let offsets_sorted = oi
        .entries()
        .windows(2)
        .all(|w| w[0].relative_offset < w[1].relative_offset && w[0].position < w[1].position);
    let positions_in_file = oi.last().is_none_or(|e| u64::from(e.position) < file_len);
    let times_sorted = ti
        .entries()
        .windows(2)
        .all(|w| w[0].timestamp < w[1].timestamp && w[0].relative_offset <= w[1].relative_offset);
    let times_within_offsets = match (ti.last(), oi.last()) {
        (None, _) => true,
        (Some(t), Some(o)) => t.relative_offset <= o.relative_offset,
        (Some(_), None) => false,
    };
    offsets_sorted && positions_in_file && times_sorted && times_within_offsets
}

/// Reads exactly `buf.len()` bytes; `Ok(false)` on a clean or torn end of input.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<bool> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => return Ok(false),
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// Writes `a` then `b` at the end of an append-mode file with as few syscalls as possible.
fn write_all_vectored(mut file: &File, a: &[u8], b: &[u8]) -> std::io::Result<()> {
    let mut storage = [IoSlice::new(a), IoSlice::new(b)];
    let mut slices: &mut [IoSlice<'_>] = &mut storage;
    while !slices.is_empty() {
        match file.write_vectored(slices) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut slices, n),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
