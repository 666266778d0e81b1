//! `odradek-log`: Odradek's segment log, one per partition, embeddable in any Rust program.
//!
//! # What it owns
//! A partition's records on local disk, in Kafka's formats: append (as leader, assigning
//! offsets, or as follower, taking them as given), read, truncate, DeleteRecords, ListOffsets
//! lookups, the leader epoch cache, retention, compaction, flushing and crash recovery.
//!
//! # Layering
//! Layer L1 of DESIGN.md: synchronous, no async runtime, no threads of its own. Time comes in
//! as `now_ms` arguments. It depends only on `odradek-common` and the `kafka-protocol` record
//! codec (used for compaction and timestamp lookups, never on the append or fetch path).
//!
//! # On disk
//! ```text
//! <dir>/00000000000000000000.log        record batches, Kafka v2 format, exactly as appended
//! <dir>/00000000000000000000.index      sparse: (u32 offset - base, u32 file position), BE
//! <dir>/00000000000000000000.timeindex  sparse: (i64 max timestamp so far, u32 offset - base)
//! <dir>/leader-epoch-checkpoint         Kafka's format: "0", count, "epoch start_offset" lines
//! <dir>/log-checkpoint                  "0", log start offset, recovery point, cleaner offset
//! <dir>/.clean-shutdown                 present only after a clean close
//! ```
//! A segment is named after its base offset (20 digits). Batches are stored as received: the
//! leader rewrites only the base offset and partition leader epoch (outside the CRC) and, for
//! `message.timestamp.type=LogAppendTime`, the max timestamp and CRC. Index entries are added
//! every `index.interval.bytes`; a segment rolls at `segment.bytes`, after `segment.ms`, when its
//! index is full (`segment.index.bytes`), or when offsets would overflow its 32-bit relative form.
//!
//! # Durability and recovery
//! Appends go to the page cache. `flush.messages` / `flush.ms` (Kafka's defaults: never; rely on
//! replication) or an explicit [`Log::flush`] fsync the segments and move the *recovery point*,
//! which is checkpointed. [`Log::close`] flushes and leaves the clean-shutdown marker; the next
//! open then trusts the indexes after a sanity check. Without the marker, every segment from the
//! one holding the recovery point onwards is re-read: each batch's header and CRC-32C are checked,
//! indexes are rebuilt, and the segment is truncated at the first byte that is not part of a valid
//! batch (later segments are then deleted). So recovery never yields a partial or corrupt batch.
//!
//! # Threading contract
//! [`Log`] has one owner, which mutates it through `&mut self` (append, roll, truncate,
//! retention, compaction, flush). [`LogReader`]s, from [`Log::reader`], are `Clone + Send + Sync`
//! and read concurrently from any thread: the owner publishes an immutable view (segment list,
//! log start/end, readable size of the active segment) after each change under a lock held for a
//! few field copies, and readers use positioned reads outside any lock. Readers therefore never
//! wait on disk writes and never see a batch before it is completely written. Offset and time
//! index entries are behind their own short locks (a push by the writer, a binary search by a
//! reader). A read that races with a truncation of the same range may fail with an I/O error;
//! one that races with retention or compaction keeps reading the old file, which stays open.
//!
//! # Example
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = std::env::temp_dir().join(format!("odradek-doc-{}", std::process::id()));
//! use odradek_log::{Log, LogConfig};
//! let mut log = Log::open(&dir, LogConfig::default(), 0)?;
//! assert_eq!(log.log_end_offset(), 0);
//! // `records` would be a Kafka v2 record batch from a producer:
//! // let info = log.append_as_leader(&records, leader_epoch, now_ms)?;
//! let read = log.read(0, 1 << 20, log.log_end_offset())?;
//! assert!(read.records.is_none());
//! log.close()?;
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok(()) }
//! ```

mod batch;
mod checkpoint;
mod cleaner;
mod config;
pub mod control;
mod epoch;
mod error;
mod index;
mod log;
mod reader;
pub mod records;
mod segment;
mod validated;

pub use batch::{BatchHeader, BATCH_HEADER_SIZE, LOG_OVERHEAD, MAGIC_V2};
pub use config::{CleanupPolicy, LogConfig, TimestampType, LOG_CONFIG_KEYS};
pub use control::ControlRecord;
pub use epoch::EpochEntry;
pub use error::{LogError, Result};
pub use log::{CleanResult, CompactedSegments, CompactionJob, Log, LogAppendInfo, RetentionResult};
pub use reader::{FileSlice, LogReader, OffsetSpec, ReadResult, TimestampAndOffset};
pub use segment::SegmentFile;
pub use validated::{AppendRules, ValidatedBatches};
