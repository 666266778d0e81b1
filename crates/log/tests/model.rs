//! Model-based property tests of the segment log: random sequences of appends, reads,
//! truncations, rolls, DeleteRecords, retention, flushes, clean restarts and crashes (the active
//! segment cut at a random byte, unflushed bytes dropped, or a byte corrupted), checked after
//! every step against a plain in-memory model of which batches the log holds.

use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use odradek_log::{BatchHeader, CleanupPolicy, Log, LogConfig, OffsetSpec};
use proptest::prelude::*;

/// A batch as the model knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct MBatch {
    base: i64,
    count: i64,
    tag: u64,
    timestamp: i64,
}

impl MBatch {
    fn last(&self) -> i64 {
        self.base + self.count - 1
    }
}

#[derive(Debug, Default)]
struct Model {
    batches: Vec<MBatch>,
    start: i64,
    end: i64,
}

impl Model {
    /// Keeps the batches whose every record lies before the first removed one.
    fn keep_batches(&mut self, keep: usize) {
        if keep < self.batches.len() {
            self.end = self.batches[keep].base;
            self.batches.truncate(keep);
        }
        self.start = self.start.min(self.end);
    }
}

#[derive(Debug, Clone)]
enum Op {
    Append {
        count: u8,
        value_len: u16,
        lz4: bool,
    },
    Read {
        at: f64,
        max_bytes: u16,
    },
    Truncate {
        at: f64,
    },
    Roll,
    DeleteRecords {
        at: f64,
    },
    Retention {
        advance_ms: u16,
    },
    Flush,
    CloseReopen,
    /// A process crash: the page cache survives, nothing is cut.
    Crash,
    /// The active segment cut at a random byte (a torn write, or a disk that lost anything).
    CrashCut {
        at: f64,
    },
    /// An OS crash: every byte after the last flush is lost.
    CrashDropUnflushed,
    /// A byte of some batch in the active segment flipped while the process was down.
    CrashCorrupt {
        at: f64,
        byte: u16,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (1u8..6, 1u16..300, any::<bool>())
            .prop_map(|(count, value_len, lz4)| Op::Append { count, value_len, lz4 }),
        3 => (0.0..=1.0f64, 1u16..3000).prop_map(|(at, max_bytes)| Op::Read { at, max_bytes }),
        1 => (0.0..=1.0f64).prop_map(|at| Op::Truncate { at }),
        1 => Just(Op::Roll),
        1 => (0.0..=1.0f64).prop_map(|at| Op::DeleteRecords { at }),
        1 => (0u16..4000).prop_map(|advance_ms| Op::Retention { advance_ms }),
        1 => Just(Op::Flush),
        1 => Just(Op::CloseReopen),
        1 => Just(Op::Crash),
        1 => (0.0..=1.0f64).prop_map(|at| Op::CrashCut { at }),
        1 => Just(Op::CrashDropUnflushed),
        1 => (0.0..=1.0f64, any::<u16>()).prop_map(|(at, byte)| Op::CrashCorrupt { at, byte }),
    ]
}

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 3000,
        index_interval_bytes: 400,
        retention_ms: 20_000,
        ..LogConfig::default()
    }
}

fn make_batch(tag: u64, count: u8, value_len: u16, timestamp: i64, lz4: bool) -> Bytes {
    let records: Vec<Record> = (0..count)
        .map(|j| {
            let mut value = format!("{tag}:{j}:").into_bytes();
            value.resize(value.len().max(value_len as usize), b'x');
            Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: -1,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: TimestampType::Creation,
                offset: i64::from(j),
                sequence: -1 + i32::from(j),
                timestamp,
                key: None,
                value: Some(Bytes::from(value)),
                headers: IndexMap::new(),
            }
        })
        .collect();
    let mut buf = BytesMut::new();
    let compression = if lz4 {
        Compression::Lz4
    } else {
        Compression::None
    };
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression,
        },
    )
    .expect("encode");
    buf.freeze()
}

/// Reads the whole log and returns each batch as the model would describe it.
fn read_all(log: &Log) -> Vec<MBatch> {
    let mut out = Vec::new();
    let end = log.log_end_offset();
    let mut next = log.log_start_offset();
    while next < end {
        let slice = log
            .read(next, 1 << 20, end)
            .expect("read")
            .records
            .expect("no hole below the log end");
        let mut bytes = slice.read_to_bytes().expect("bytes");
        while !bytes.is_empty() {
            let set = RecordBatchDecoder::decode(&mut bytes).expect("a whole, valid batch");
            let first = &set.records[0];
            let value =
                String::from_utf8(first.value.clone().expect("value").to_vec()).expect("utf8");
            let tag: u64 = value
                .split(':')
                .next()
                .expect("tag")
                .parse()
                .expect("number");
            out.push(MBatch {
                base: first.offset,
                count: set.records.len() as i64,
                tag,
                timestamp: first.timestamp,
            });
            next = first.offset + set.records.len() as i64;
        }
    }
    out
}

fn check(log: &Log, model: &Model) {
    assert_eq!(log.log_end_offset(), model.end, "log end offset");
    assert_eq!(log.log_start_offset(), model.start, "log start offset");
    let expected: Vec<MBatch> = model
        .batches
        .iter()
        .copied()
        .filter(|b| b.last() >= model.start)
        .collect();
    assert_eq!(read_all(log), expected, "log contents");
}

fn active_segment(dir: &Path) -> PathBuf {
    let mut logs: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    logs.sort();
    logs.pop().expect("an active segment")
}

/// (position, header) of every whole batch in a segment file.
fn batches_in(path: &Path) -> Vec<(u64, BatchHeader)> {
    let bytes = std::fs::read(path).expect("read segment");
    let mut out = Vec::new();
    let mut pos = 0usize;
    while let Some(h) = BatchHeader::parse(&bytes[pos..]) {
        if pos + h.size() as usize > bytes.len() {
            break;
        }
        out.push((pos as u64, h));
        pos += h.size() as usize;
    }
    out
}

/// Cuts the active segment at `cut` bytes; the model keeps what lies wholly before the cut.
fn cut_active(dir: &Path, model: &mut Model, cut_at: impl Fn(&[(u64, BatchHeader)], u64) -> u64) {
    let path = active_segment(dir);
    let len = std::fs::metadata(&path).expect("meta").len();
    let batches = batches_in(&path);
    let cut = cut_at(&batches, len).min(len);
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .expect("open")
        .set_len(cut)
        .expect("cut");
    let first_lost = batches.iter().find(|(pos, h)| pos + h.size() > cut);
    if let Some((_, h)) = first_lost {
        let keep = model.batches.partition_point(|b| b.base < h.base_offset);
        model.keep_batches(keep);
    }
}

struct Harness {
    dir: tempfile::TempDir,
    log: Option<Log>,
    model: Model,
    now_ms: i64,
    next_tag: u64,
}

impl Harness {
    fn log(&mut self) -> &mut Log {
        self.log.as_mut().expect("log is open")
    }

    fn reopen(&mut self) {
        self.log = Some(Log::open(self.dir.path(), config(), self.now_ms).expect("reopen"));
    }

    fn pick(&self, at: f64) -> i64 {
        let span = (self.model.end - self.model.start) as f64;
        self.model.start + (span * at).round() as i64
    }

    fn apply(&mut self, op: &Op) {
        match *op {
            Op::Append {
                count,
                value_len,
                lz4,
            } => {
                let tag = self.next_tag;
                self.next_tag += 1;
                let now = self.now_ms;
                let batch = make_batch(tag, count, value_len, now, lz4);
                let info = self.log().append_as_leader(&batch, 0, now).expect("append");
                assert_eq!(info.first_offset, self.model.end);
                self.model.batches.push(MBatch {
                    base: self.model.end,
                    count: i64::from(count),
                    tag,
                    timestamp: now,
                });
                self.model.end += i64::from(count);
            }
            Op::Read { at, max_bytes } => {
                let from = self.pick(at);
                let end = self.model.end;
                let r = self
                    .log()
                    .read(from, u64::from(max_bytes), end)
                    .expect("read");
                match r.records {
                    None => assert_eq!(from, end, "only a read at the log end is empty"),
                    Some(slice) => {
                        let expected = self
                            .model
                            .batches
                            .iter()
                            .find(|b| b.last() >= from)
                            .expect("a batch holds the offset");
                        assert_eq!(
                            slice.first_offset(),
                            expected.base,
                            "whole batch from {from}"
                        );
                        let bytes = slice.read_to_bytes().expect("bytes");
                        let one = BatchHeader::parse(&bytes).expect("header").size();
                        assert!(
                            slice.len() <= u64::from(max_bytes) || slice.len() == one,
                            "max_bytes respected beyond the first batch"
                        );
                    }
                }
            }
            Op::Truncate { at } => {
                let to = self.pick(at);
                self.log().truncate_to(to).expect("truncate");
                let keep = self.model.batches.partition_point(|b| b.last() < to);
                self.model.keep_batches(keep);
            }
            Op::Roll => self.log().roll().expect("roll"),
            Op::DeleteRecords { at } => {
                let to = self.pick(at);
                let start = self
                    .log()
                    .delete_records_before(to)
                    .expect("delete records");
                self.model.start = self.model.start.max(to);
                assert_eq!(start, self.model.start);
            }
            Op::Retention { advance_ms } => {
                self.now_ms += i64::from(advance_ms);
                let now = self.now_ms;
                let retention_ms = config().retention_ms;
                let r = self.log().enforce_retention(now).expect("retention");
                let old_start = self.model.start;
                assert!(r.log_start_offset >= old_start);
                self.model.start = r.log_start_offset;
                // Nothing young enough to keep was deleted (DeleteRecords may have removed some).
                for b in self.model.batches.iter().filter(|b| b.last() >= old_start) {
                    if now - b.timestamp <= retention_ms {
                        assert!(b.last() >= self.model.start, "young batch {b:?} deleted");
                    }
                }
            }
            Op::Flush => {
                self.log().flush().expect("flush");
                assert_eq!(self.log().recovery_point(), self.model.end);
            }
            Op::CloseReopen => {
                self.log.take().expect("open").close().expect("close");
                self.reopen();
            }
            Op::Crash => {
                drop(self.log.take());
                self.reopen();
            }
            Op::CrashCut { at } => {
                drop(self.log.take());
                cut_active(self.dir.path(), &mut self.model, |_, len| {
                    (len as f64 * at).round() as u64
                });
                self.reopen();
            }
            Op::CrashDropUnflushed => {
                let recovery_point = self.log().recovery_point();
                drop(self.log.take());
                cut_active(self.dir.path(), &mut self.model, |batches, len| {
                    batches
                        .iter()
                        .find(|(_, h)| h.base_offset >= recovery_point)
                        .map_or(len, |(pos, _)| *pos)
                });
                self.reopen();
                assert!(self.model.end >= recovery_point.min(self.model.end));
                assert_eq!(self.log().log_end_offset(), self.model.end);
            }
            Op::CrashCorrupt { at, byte } => {
                drop(self.log.take());
                let path = active_segment(self.dir.path());
                let batches = batches_in(&path);
                if !batches.is_empty() {
                    let i = ((batches.len() - 1) as f64 * at).round() as usize;
                    let (pos, h) = batches[i];
                    // Bytes covered by the CRC: the attributes onwards.
                    let covered = h.size() - 21;
                    let flip_at = pos + 21 + u64::from(byte) % covered;
                    let mut bytes = std::fs::read(&path).expect("read");
                    bytes[flip_at as usize] ^= 0x5a;
                    std::fs::write(&path, bytes).expect("write");
                    let keep = self
                        .model
                        .batches
                        .partition_point(|b| b.base < h.base_offset);
                    self.model.keep_batches(keep);
                }
                self.reopen();
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn log_matches_the_model(ops in proptest::collection::vec(op(), 1..80)) {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = Log::open(dir.path(), config(), 0).expect("open");
        let mut h = Harness { dir, log: Some(log), model: Model::default(), now_ms: 0, next_tag: 0 };
        for op in &ops {
            h.apply(op);
            check(h.log.as_ref().expect("open"), &h.model);
        }
        // ListOffsets agrees with the model at the end.
        let log = h.log.as_ref().expect("open");
        let earliest = log.offset_for(OffsetSpec::Earliest).expect("earliest").expect("some");
        prop_assert_eq!(earliest.offset, h.model.start);
    }
}

// ---- compaction ----

#[derive(Debug, Clone)]
enum COp {
    Write { key: u8, tombstone: bool, codec: u8 },
    Compact,
}

fn cop() -> impl Strategy<Value = COp> {
    prop_oneof![
        12 => (0u8..8, proptest::bool::weighted(0.15), 0u8..5)
            .prop_map(|(key, tombstone, codec)| COp::Write { key, tombstone, codec }),
        1 => Just(COp::Compact),
    ]
}

fn codec(c: u8) -> Compression {
    match c {
        0 => Compression::None,
        1 => Compression::Gzip,
        2 => Compression::Snappy,
        3 => Compression::Lz4,
        _ => Compression::Zstd,
    }
}

fn keyed_batch(key: u8, value: Option<String>, compression: Compression) -> Bytes {
    let record = Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: -1,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: -1,
        timestamp: 1,
        key: Some(Bytes::from(vec![b'k', key])),
        value: value.map(Bytes::from),
        headers: IndexMap::new(),
    };
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        [&record],
        &RecordEncodeOptions {
            version: 2,
            compression,
        },
    )
    .expect("encode");
    buf.freeze()
}

/// Every record readable: (offset, key, value).
fn records(log: &Log) -> Vec<(i64, Vec<u8>, Option<Vec<u8>>)> {
    let mut out = Vec::new();
    let end = log.log_end_offset();
    let mut next = log.log_start_offset();
    while next < end {
        let Some(slice) = log.read(next, 1 << 20, end).expect("read").records else {
            break;
        };
        next = slice.last_offset() + 1;
        let mut bytes = slice.read_to_bytes().expect("bytes");
        while !bytes.is_empty() {
            for r in RecordBatchDecoder::decode(&mut bytes)
                .expect("decode")
                .records
            {
                out.push((
                    r.offset,
                    r.key.expect("key").to_vec(),
                    r.value.map(|v| v.to_vec()),
                ));
            }
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn compaction_keeps_latest_value_per_key_and_offsets(ops in proptest::collection::vec(cop(), 1..150)) {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = LogConfig {
            cleanup_policy: CleanupPolicy::COMPACT,
            segment_bytes: 600,
            index_interval_bytes: 100,
            ..LogConfig::default()
        };
        let mut log = Log::open(dir.path(), config.clone(), 0).expect("open");
        // written[offset] = (key, value)
        let mut written: Vec<(Vec<u8>, Option<Vec<u8>>)> = Vec::new();
        for op in &ops {
            match op {
                COp::Write { key, tombstone, codec: c } => {
                    let value = (!tombstone).then(|| format!("v{}", written.len()));
                    let batch = keyed_batch(*key, value.clone(), codec(*c));
                    log.append_as_leader(&batch, 0, 1).expect("append");
                    written.push((vec![b'k', *key], value.map(String::into_bytes)));
                }
                // Tombstones are young (delete.retention.ms is a day): all are kept.
                COp::Compact => { log.compact(2).expect("compact"); }
            }
            let got = records(&log);
            // Offsets never change: every record read is the one written at its offset.
            for (offset, key, value) in &got {
                let (k, v) = &written[*offset as usize];
                prop_assert_eq!((key, value), (k, v), "record at offset {}", offset);
            }
            // The latest write of every key is still there.
            let mut latest = std::collections::HashMap::new();
            for (offset, (k, _)) in written.iter().enumerate() {
                latest.insert(k.clone(), offset as i64);
            }
            for offset in latest.values() {
                prop_assert!(got.iter().any(|(o, _, _)| o == offset), "latest offset {} lost", offset);
            }
            prop_assert_eq!(log.log_end_offset(), written.len() as i64);
        }
        // And it all survives a restart.
        let before = records(&log);
        log.close().expect("close");
        let log = Log::open(dir.path(), config, 0).expect("reopen");
        prop_assert_eq!(records(&log), before);
    }
}
