//! Reading the log concurrently with the writer.
//!
//! The [`crate::Log`] owner publishes a [`LogView`] after every change: the segment list (an
//! `Arc`, replaced only on roll, deletion, truncation or compaction) plus the log start, log end
//! and readable size of the active segment. A [`LogReader`] clones the view under a read lock
//! held for a few nanoseconds, then reads with positioned reads (`pread`) and no lock at all, so
//! readers never wait on a disk write and never see a partially written batch: the published size
//! only moves after a batch is fully written.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use parking_lot::RwLock;

use crate::batch::BatchHeader;
use crate::control::ControlRecord;
use crate::error::{LogError, Result};
use crate::segment::SegmentData;

/// A segment as readers see it.
#[derive(Debug, Clone)]
pub(crate) struct SegmentView {
    pub data: Arc<SegmentData>,
    /// Readable bytes (for the active segment, see [`LogView::active`]).
    pub size: u64,
    /// Largest batch max timestamp in the segment, -1 when empty.
    pub max_timestamp: i64,
    /// Base offset of the batch holding `max_timestamp`.
    pub offset_of_max_timestamp: i64,
}

/// What the writer publishes; cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct LogView {
    /// Sorted by base offset; the last one is the active segment, whose `size` and timestamps
    /// are those in `active` instead.
    pub segments: Arc<Vec<SegmentView>>,
    pub active: ActiveState,
    pub log_start_offset: i64,
    pub log_end_offset: i64,
}

/// The fast-moving fields of the active segment.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ActiveState {
    pub size: u64,
    pub max_timestamp: i64,
    pub offset_of_max_timestamp: i64,
}

impl LogView {
    fn segment(&self, i: usize) -> SegmentView {
        let mut s = self.segments[i].clone();
        if i + 1 == self.segments.len() {
            s.size = self.active.size;
            s.max_timestamp = self.active.max_timestamp;
            s.offset_of_max_timestamp = self.active.offset_of_max_timestamp;
        }
        s
    }

    /// Index of the segment that would hold `offset`.
    fn segment_index_for(&self, offset: i64) -> usize {
        self.segments
            .partition_point(|s| s.data.base_offset <= offset)
            .saturating_sub(1)
    }
}

/// A range of whole batches in one segment file: send it with zero copy (`sendfile` from
/// [`FileSlice::file`] at [`FileSlice::position`]) or copy it with [`FileSlice::read_to_bytes`].
/// Holding a slice keeps the segment's file open even if the log deletes it meanwhile.
#[derive(Debug, Clone)]
pub struct FileSlice {
    segment: Arc<SegmentData>,
    position: u64,
    len: u64,
    first_offset: i64,
    last_offset: i64,
}

impl FileSlice {
    /// The segment file the bytes are in.
    pub fn file(&self) -> &File {
        self.segment
            .opened_file()
            .expect("a slice is made by a read that opened its segment's file")
    }

    /// Byte position of the first batch in [`FileSlice::file`].
    pub fn position(&self) -> u64 {
        self.position
    }

    /// Number of bytes: whole batches only.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the slice holds no bytes (never true for slices the log returns).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Base offset of the first batch (may be below the offset asked for: whole batches).
    pub fn first_offset(&self) -> i64 {
        self.first_offset
    }

    /// Last offset of the last batch.
    pub fn last_offset(&self) -> i64 {
        self.last_offset
    }

    /// Copies the batches into memory.
    pub fn read_to_bytes(&self) -> Result<Bytes> {
        let mut buf = BytesMut::zeroed(self.len as usize);
        self.file()
            .read_exact_at(&mut buf, self.position)
            .map_err(|e| LogError::io(&self.segment.log_path, e))?;
        Ok(buf.freeze())
    }
}

/// The segment file's descriptor, for `sendfile` (the slice keeps the file open).
impl std::os::fd::AsFd for FileSlice {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.file().as_fd()
    }
}

/// The answer to a read.
#[derive(Debug, Clone)]
pub struct ReadResult {
    /// The batches, or `None` when there is nothing at or after the offset below the bound.
    pub records: Option<FileSlice>,
    /// Log start offset when the read was served.
    pub log_start_offset: i64,
    /// Log end offset when the read was served.
    pub log_end_offset: i64,
}

impl ReadResult {
    /// The batches copied into memory (empty when there were none).
    pub fn to_bytes(&self) -> Result<Bytes> {
        self.records
            .as_ref()
            .map_or_else(|| Ok(Bytes::new()), FileSlice::read_to_bytes)
    }
}

/// Which offset a ListOffsets request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetSpec {
    /// `-2`: the log start offset.
    Earliest,
    /// `-1`: the log end offset (the broker bounds it by the high watermark or LSO).
    Latest,
    /// `-3`: the record with the largest timestamp.
    MaxTimestamp,
    /// A timestamp: the earliest record whose timestamp is `>=` it.
    Timestamp(i64),
}

/// A ListOffsets answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimestampAndOffset {
    /// The record's timestamp, or -1 for Earliest/Latest.
    pub timestamp: i64,
    /// The offset.
    pub offset: i64,
    /// Leader epoch of the batch holding the record, when known.
    pub leader_epoch: Option<i32>,
}

/// A cloneable, `Send + Sync` handle that reads the log while its owner appends.
#[derive(Debug, Clone)]
pub struct LogReader {
    pub(crate) view: Arc<RwLock<LogView>>,
}

impl LogReader {
    fn snapshot(&self) -> LogView {
        self.view.read().clone()
    }

    /// The log start offset.
    pub fn log_start_offset(&self) -> i64 {
        self.view.read().log_start_offset
    }

    /// The log end offset (offset of the next record to be appended).
    pub fn log_end_offset(&self) -> i64 {
        self.view.read().log_end_offset
    }

    /// Reads whole batches starting with the one that contains `from_offset`, up to `max_bytes`
    /// (but at least one batch, however large), never including a batch whose last offset is
    /// `>= upper_bound` (the broker passes the high watermark), and never crossing a segment.
    /// `from_offset` outside `[log_start_offset, log_end_offset]` is `OffsetOutOfRange`.
    pub fn read(&self, from_offset: i64, max_bytes: u64, upper_bound: i64) -> Result<ReadResult> {
        let view = self.snapshot();
        let mut result = ReadResult {
            records: None,
            log_start_offset: view.log_start_offset,
            log_end_offset: view.log_end_offset,
        };
        if from_offset < view.log_start_offset || from_offset > view.log_end_offset {
            return Err(LogError::OffsetOutOfRange {
                offset: from_offset,
                log_start_offset: view.log_start_offset,
                log_end_offset: view.log_end_offset,
            });
        }
        if from_offset >= upper_bound.min(view.log_end_offset) {
            return Ok(result);
        }
        for i in view.segment_index_for(from_offset)..view.segments.len() {
            let seg = view.segment(i);
            let Some((position, first)) = seg.data.find_batch(from_offset, seg.size)? else {
                continue;
            };
            if first.last_offset() >= upper_bound {
                return Ok(result);
            }
            let mut len = first.size();
            let mut last_offset = first.last_offset();
            while let Some(h) = seg.data.read_header(position + len, seg.size)? {
                if h.last_offset() >= upper_bound
                    || len + h.size() > max_bytes
                    || position + len + h.size() > seg.size
                {
                    break;
                }
                len += h.size();
                last_offset = h.last_offset();
            }
            result.records = Some(FileSlice {
                segment: seg.data,
                position,
                len,
                first_offset: first.base_offset,
                last_offset,
            });
            return Ok(result);
        }
        Ok(result)
    }

    /// Calls `f` with the header of every batch from the one holding `from_offset` (or the log
    /// start, if later) to the log end, in offset order, and for a control batch its marker.
    /// Only the 61-byte headers are read (and a control batch's few bytes), so a replay of
    /// producer state over a long log costs one small read per batch.
    pub fn for_each_batch(
        &self,
        from_offset: i64,
        mut f: impl FnMut(&BatchHeader, Option<ControlRecord>),
    ) -> Result<()> {
        let view = self.snapshot();
        let from = from_offset.max(view.log_start_offset);
        if from >= view.log_end_offset {
            return Ok(());
        }
        for i in view.segment_index_for(from)..view.segments.len() {
            let seg = view.segment(i);
            let Some((mut position, first)) = seg.data.find_batch(from, seg.size)? else {
                continue;
            };
            let mut next = Some(first);
            while let Some(header) = next {
                if header.batch_length < 0 || position + header.size() > seg.size {
                    break;
                }
                let marker = if header.is_control() {
                    let mut buf = vec![0u8; header.size().min(1024) as usize];
                    seg.data
                        .file()?
                        .read_exact_at(&mut buf, position)
                        .map_err(|e| LogError::io(&seg.data.log_path, e))?;
                    crate::control::parse_control_batch(&buf)
                } else {
                    None
                };
                f(&header, marker);
                position += header.size();
                next = seg.data.read_header(position, seg.size)?;
            }
        }
        Ok(())
    }

    /// ListOffsets: the offset (and timestamp) that `spec` names, or `None` when no record
    /// qualifies (a timestamp after every record, or an empty log for `MaxTimestamp`).
    pub fn offset_for(&self, spec: OffsetSpec) -> Result<Option<TimestampAndOffset>> {
        let view = self.snapshot();
        match spec {
            OffsetSpec::Earliest => Ok(Some(TimestampAndOffset {
                timestamp: -1,
                offset: view.log_start_offset,
                leader_epoch: None,
            })),
            OffsetSpec::Latest => Ok(Some(TimestampAndOffset {
                timestamp: -1,
                offset: view.log_end_offset,
                leader_epoch: None,
            })),
            OffsetSpec::MaxTimestamp => max_timestamp_offset(&view),
            OffsetSpec::Timestamp(ts) => offset_for_timestamp(&view, ts),
        }
    }
}

fn offset_for_timestamp(view: &LogView, target: i64) -> Result<Option<TimestampAndOffset>> {
    let start = view.segment_index_for(view.log_start_offset);
    for i in start..view.segments.len() {
        let seg = view.segment(i);
        if seg.max_timestamp < target {
            continue;
        }
        // The time index gives the last point before which every timestamp is below target.
        let from_offset = {
            let ti = seg.data.time_index.read();
            let floor = ti.floor_by(target - 1, |e| e.timestamp);
            floor.map_or(seg.data.base_offset, |e| {
                seg.data.base_offset + i64::from(e.relative_offset)
            })
        };
        let mut position = seg.data.lookup_position(from_offset);
        while let Some(h) = seg.data.read_header(position, seg.size)? {
            if position + h.size() > seg.size {
                break;
            }
            if h.max_timestamp >= target && h.last_offset() >= view.log_start_offset {
                let found = first_record_matching(&seg, position, &h, |ts, off| {
                    ts >= target && off >= view.log_start_offset
                })?;
                if found.is_some() {
                    return Ok(found);
                }
            }
            position += h.size();
        }
    }
    Ok(None)
}

fn max_timestamp_offset(view: &LogView) -> Result<Option<TimestampAndOffset>> {
    let start = view.segment_index_for(view.log_start_offset);
    let best = (start..view.segments.len())
        .map(|i| view.segment(i))
        .filter(|s| s.size > 0 && s.max_timestamp >= 0)
        .fold(None::<SegmentView>, |best, s| match best {
            Some(b) if b.max_timestamp >= s.max_timestamp => Some(b),
            _ => Some(s),
        });
    let Some(seg) = best else {
        return Ok(None);
    };
    let Some((position, h)) = seg.data.find_batch(seg.offset_of_max_timestamp, seg.size)? else {
        return Ok(None);
    };
    let max = seg.max_timestamp;
    first_record_matching(&seg, position, &h, |ts, off| {
        ts == max && off >= view.log_start_offset
    })
}

/// Decodes one batch (decompressing it) and returns the first record that `pred` accepts.
/// Only ListOffsets by timestamp does per-record work; produce and fetch never do.
fn first_record_matching(
    seg: &SegmentView,
    position: u64,
    header: &BatchHeader,
    pred: impl Fn(i64, i64) -> bool,
) -> Result<Option<TimestampAndOffset>> {
    let mut buf = BytesMut::zeroed(header.size() as usize);
    seg.data
        .file()?
        .read_exact_at(&mut buf, position)
        .map_err(|e| LogError::io(&seg.data.log_path, e))?;
    let (records, _) = crate::cleaner::decode_records(buf.freeze(), position)?;
    let epoch = (header.partition_leader_epoch >= 0).then_some(header.partition_leader_epoch);
    Ok(records.iter().find_map(|r| {
        let ts = if header.is_log_append_time() {
            header.max_timestamp
        } else {
            r.timestamp
        };
        pred(ts, r.offset).then_some(TimestampAndOffset {
            timestamp: ts,
            offset: r.offset,
            leader_epoch: epoch,
        })
    }))
}
