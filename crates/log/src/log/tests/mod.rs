use kafka_protocol::records::Compression;
use odradek_common::{ErrorCode, ToErrorCode};

use super::*;
use crate::batch::test_batches::{batch, simple};
use crate::batch::BatchHeader;
use crate::config::CleanupPolicy;

mod compaction;

fn small_segments() -> LogConfig {
    LogConfig {
        segment_bytes: 1024,
        index_interval_bytes: 100,
        ..LogConfig::default()
    }
}

fn open(dir: &Path, config: LogConfig) -> Log {
    Log::open(dir, config, 0).expect("open log")
}

/// Reads everything readable and returns (offset, base offset of its batch) per batch.
fn batches(log: &Log) -> Vec<BatchHeader> {
    let mut out = Vec::new();
    let mut next = log.log_start_offset();
    let end = log.log_end_offset();
    while next < end {
        let r = log.read(next, 1, end).expect("read");
        let Some(slice) = r.records else { break };
        let bytes = slice.read_to_bytes().expect("bytes");
        let h = BatchHeader::parse(&bytes).expect("header");
        next = h.next_offset();
        out.push(h);
    }
    out
}

#[test]
fn leader_append_assigns_offsets_and_reads_back_whole_batches() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), LogConfig::default());
    let a = log
        .append_as_leader(&simple(3, 10, 100), 0, 1)
        .expect("append");
    let b = log
        .append_as_leader(&simple(2, 10, 200), 0, 2)
        .expect("append");
    assert_eq!((a.first_offset, a.last_offset), (0, 2));
    assert_eq!((b.first_offset, b.last_offset), (3, 4));
    assert_eq!(log.log_end_offset(), 5);

    // An offset inside the second batch returns that whole batch.
    let r = log.read(4, 1 << 20, 5).expect("read");
    let slice = r.records.expect("records");
    assert_eq!(slice.first_offset(), 3);
    assert_eq!(slice.last_offset(), 4);
    let h = BatchHeader::parse(&slice.read_to_bytes().expect("bytes")).expect("header");
    assert_eq!(h.base_offset, 3);
    assert_eq!(h.partition_leader_epoch, 0);

    // max_bytes smaller than a batch still returns one batch.
    let r = log.read(0, 1, 5).expect("read");
    assert_eq!(r.records.expect("one batch").last_offset(), 2);

    // The upper bound (high watermark) hides batches at or above it.
    let r = log.read(0, 1 << 20, 3).expect("read");
    assert_eq!(r.records.expect("first batch").last_offset(), 2);
    assert!(log.read(3, 1 << 20, 3).expect("read").records.is_none());

    // Reading at the log end is empty; past it is out of range.
    assert!(log.read(5, 1 << 20, 5).expect("read").records.is_none());
    let err = log.read(6, 1 << 20, 6).expect_err("out of range");
    assert_eq!(err.error_code(), ErrorCode::OffsetOutOfRange);
}

#[test]
fn batches_validated_under_old_rules_are_checked_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), LogConfig::default());
    let big = simple(1, 600, 1);
    let rules = AppendRules::of(log.config());
    let validated = ValidatedBatches::for_leader(&big, rules).expect("valid under 1 MiB");
    // max.message.bytes lowered between validation and append (a topic config change).
    log.set_config(LogConfig {
        max_message_bytes: 500,
        ..LogConfig::default()
    });
    let err = log
        .append_validated_as_leader(validated, 0, 1)
        .expect_err("too large now");
    assert_eq!(err.error_code(), ErrorCode::MessageTooLarge);
    assert_eq!(log.log_end_offset(), 0);
    // Under unchanged rules the validated batches go in as they are.
    let small = simple(2, 10, 1);
    let validated =
        ValidatedBatches::for_leader(&small, AppendRules::of(log.config())).expect("valid");
    let info = log
        .append_validated_as_leader(validated, 0, 1)
        .expect("append");
    assert_eq!((info.first_offset, info.last_offset), (0, 1));
}

#[test]
fn bad_batches_leave_the_log_unchanged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(
        dir.path(),
        LogConfig {
            max_message_bytes: 500,
            ..LogConfig::default()
        },
    );
    log.append_as_leader(&simple(1, 10, 1), 0, 1)
        .expect("append");
    let size = log.size_in_bytes();

    let good = simple(2, 10, 1);
    let mut corrupt = good.to_vec();
    let n = corrupt.len();
    corrupt[n - 1] ^= 1;
    // A valid batch followed by a corrupt one: nothing of the request is appended.
    let mut mixed = good.to_vec();
    mixed.extend_from_slice(&corrupt);
    for (records, code) in [
        (corrupt.clone(), ErrorCode::CorruptMessage),
        (mixed, ErrorCode::CorruptMessage),
        (good[..good.len() - 3].to_vec(), ErrorCode::CorruptMessage),
        (simple(1, 600, 1).to_vec(), ErrorCode::MessageTooLarge),
        (vec![0u8; 7], ErrorCode::CorruptMessage),
        (Vec::new(), ErrorCode::InvalidRecord),
    ] {
        let err = log.append_as_leader(&records, 0, 1).expect_err("refused");
        assert_eq!(err.error_code(), code, "{err}");
        assert_eq!(log.log_end_offset(), 1);
        assert_eq!(log.size_in_bytes(), size);
    }
}

#[test]
fn segments_roll_by_size_and_reads_cross_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), small_segments());
    for i in 0..40 {
        log.append_as_leader(&simple(2, 50, i), 0, i)
            .expect("append");
    }
    assert!(log.segment_count() > 5, "{} segments", log.segment_count());
    let all = batches(&log);
    assert_eq!(all.len(), 40);
    for (i, h) in all.iter().enumerate() {
        assert_eq!(h.base_offset, 2 * i as i64);
    }
    // Every segment file is named after its base offset.
    for base in log.segment_base_offsets() {
        assert!(dir.path().join(format!("{base:020}.log")).exists());
    }
}

#[test]
fn segment_ms_rolls_by_age() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(
        dir.path(),
        LogConfig {
            segment_ms: 1000,
            ..LogConfig::default()
        },
    );
    log.append_as_leader(&simple(1, 10, 0), 0, 0)
        .expect("append");
    log.append_as_leader(&simple(1, 10, 500), 0, 500)
        .expect("append");
    assert_eq!(log.segment_count(), 1);
    log.append_as_leader(&simple(1, 10, 1500), 0, 1500)
        .expect("append");
    assert_eq!(log.segment_base_offsets(), vec![0, 2]);
}

#[test]
fn clean_and_unclean_reopen_keep_every_batch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), small_segments());
    for i in 0..30 {
        log.append_as_leader(&simple(3, 40, i), 0, i)
            .expect("append");
    }
    let before = batches(&log);
    log.close().expect("close");
    assert!(dir.path().join(".clean-shutdown").exists());

    let log = open(dir.path(), small_segments());
    assert!(!dir.path().join(".clean-shutdown").exists());
    assert_eq!(batches(&log), before);
    assert_eq!(log.log_end_offset(), 90);
    drop(log); // a crash: no marker

    let log = open(dir.path(), small_segments());
    assert_eq!(batches(&log), before);
    assert_eq!(log.log_end_offset(), 90);
}

#[test]
fn recovery_truncates_a_torn_tail_at_the_last_whole_batch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), LogConfig::default());
    for i in 0..5 {
        log.append_as_leader(&simple(2, 30, i), 0, i)
            .expect("append");
    }
    let path = dir.path().join(format!("{:020}.log", 0));
    drop(log);
    let len = std::fs::metadata(&path).expect("meta").len();
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .expect("open");
    f.set_len(len - 7).expect("tear the last batch");
    drop(f);

    let mut log = open(dir.path(), LogConfig::default());
    assert_eq!(log.log_end_offset(), 8);
    assert_eq!(batches(&log).len(), 4);
    // Appends continue where the valid log ends.
    let info = log
        .append_as_leader(&simple(1, 5, 9), 0, 9)
        .expect("append");
    assert_eq!(info.first_offset, 8);
}

#[test]
fn recovery_truncates_at_a_corrupt_batch_and_drops_later_segments() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), small_segments());
    for i in 0..30 {
        log.append_as_leader(&simple(1, 100, i), 0, i)
            .expect("append");
    }
    let bases = log.segment_base_offsets();
    assert!(bases.len() >= 3);
    drop(log);
    // Flip a byte in the middle of the first segment: the recovery point is 0 (never flushed).
    let path = dir.path().join(format!("{:020}.log", bases[0]));
    let mut bytes = std::fs::read(&path).expect("read");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&path, bytes).expect("write");

    let log = open(dir.path(), small_segments());
    assert_eq!(log.segment_count(), 1);
    let all = batches(&log);
    assert!(!all.is_empty() && all.len() < 30);
    assert_eq!(log.log_end_offset(), all.len() as i64);
    for base in &bases[1..] {
        assert!(!dir.path().join(format!("{base:020}.log")).exists());
    }
}

#[test]
fn flushed_segments_are_trusted_after_a_crash() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), small_segments());
    for i in 0..20 {
        log.append_as_leader(&simple(1, 100, i), 0, i)
            .expect("append");
    }
    log.flush().expect("flush");
    assert_eq!(log.recovery_point(), 20);
    for i in 20..25 {
        log.append_as_leader(&simple(1, 100, i), 0, i)
            .expect("append");
    }
    drop(log);
    let log = open(dir.path(), small_segments());
    assert_eq!(log.log_end_offset(), 25);
    assert_eq!(batches(&log).len(), 25);
}

#[test]
fn flush_messages_one_fsyncs_every_append() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(
        dir.path(),
        LogConfig {
            flush_messages: 1,
            ..LogConfig::default()
        },
    );
    log.append_as_leader(&simple(3, 10, 1), 0, 1)
        .expect("append");
    assert_eq!(log.recovery_point(), 3);
    let lazy_dir = tempfile::tempdir().expect("tempdir");
    let mut lazy = open(lazy_dir.path(), LogConfig::default());
    lazy.append_as_leader(&simple(3, 10, 1), 0, 1)
        .expect("append");
    assert_eq!(lazy.recovery_point(), 0);
}

#[test]
fn follower_append_keeps_offsets_and_refuses_going_backwards() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), LogConfig::default());
    let b = crate::batch::test_batches::batch_at(
        10,
        &[(None, Some(b"x"), 1), (None, Some(b"y"), 2)],
        Compression::None,
    );
    log.append_as_follower(&b, 0)
        .expect("gap at the start is fine");
    assert_eq!(log.log_end_offset(), 12);
    let err = log.append_as_follower(&b, 0).expect_err("backwards");
    assert!(matches!(err, LogError::UnexpectedAppendOffset { .. }));
    assert_eq!(log.log_end_offset(), 12);
}

#[test]
fn truncation_removes_whole_batches_and_epochs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), small_segments());
    for i in 0..10 {
        log.append_as_leader(&simple(3, 60, i), (i / 4) as i32, i)
            .expect("append");
    }
    assert_eq!(log.latest_epoch(), Some(2));
    assert_eq!(log.end_offset_for_epoch(0), (0, 12));
    log.truncate_to(13).expect("truncate inside a batch");
    assert_eq!(log.log_end_offset(), 12);
    assert_eq!(log.latest_epoch(), Some(0));
    assert_eq!(batches(&log).len(), 4);
    let info = log
        .append_as_leader(&simple(1, 10, 1), 5, 1)
        .expect("append");
    assert_eq!(info.first_offset, 12);
    assert_eq!(log.end_offset_for_epoch(0), (0, 12));
    assert_eq!(log.end_offset_for_epoch(5), (5, 13));

    log.truncate_fully_and_start_at(100).expect("restart");
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (100, 100));
    assert_eq!(log.segment_base_offsets(), vec![100]);
    assert_eq!(
        log.append_as_leader(&simple(1, 1, 1), 6, 1)
            .expect("append")
            .first_offset,
        100
    );
    log.close().expect("close");
    let log = open(dir.path(), small_segments());
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (100, 101));
}

#[test]
fn delete_records_moves_the_log_start_and_survives_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), small_segments());
    for i in 0..30 {
        log.append_as_leader(&simple(1, 100, i), 0, i)
            .expect("append");
    }
    let segments = log.segment_count();
    assert_eq!(log.delete_records_before(17).expect("delete"), 17);
    assert!(log.segment_count() < segments);
    assert_eq!(
        log.read(16, 100, 30).expect_err("below start").error_code(),
        ErrorCode::OffsetOutOfRange
    );
    assert!(log.read(17, 100, 30).expect("read").records.is_some());
    assert!(log.delete_records_before(31).is_err());
    drop(log);
    let log = open(dir.path(), small_segments());
    assert_eq!(log.log_start_offset(), 17);
}

#[test]
fn retention_by_time_and_size_deletes_whole_old_segments() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = LogConfig {
        retention_ms: 10_000,
        ..small_segments()
    };
    let mut log = open(dir.path(), config.clone());
    for i in 0..30 {
        log.append_as_leader(&simple(1, 100, i * 1000), 0, i * 1000)
            .expect("append");
    }
    let r = log.enforce_retention(30_000).expect("retention");
    assert!(r.deleted_segments > 0);
    assert_eq!(r.log_start_offset, log.log_start_offset());
    // Everything left is young enough, except possibly within the first remaining segment.
    let first = batches(&log)[0];
    assert!(first.base_offset > 0);
    assert!(log.read(first.base_offset, 1, 30).is_ok());

    // Nothing of the active segment goes while it is young; all goes once everything expired.
    let r = log.enforce_retention(1_000_000).expect("retention");
    assert!(r.deleted_segments > 0);
    assert_eq!(log.log_start_offset(), 30);
    assert_eq!(log.log_end_offset(), 30);

    let dir2 = tempfile::tempdir().expect("tempdir");
    let mut log = open(
        dir2.path(),
        LogConfig {
            retention_bytes: 2000,
            retention_ms: -1,
            ..small_segments()
        },
    );
    for i in 0..30 {
        log.append_as_leader(&simple(1, 100, i), 0, i)
            .expect("append");
    }
    log.enforce_retention(0).expect("retention");
    assert!(
        log.size_in_bytes() <= 2000 + 1024,
        "{}",
        log.size_in_bytes()
    );
    assert!(log.size_in_bytes() >= 2000 - 1024);

    // The high watermark protects uncommitted data.
    let dir3 = tempfile::tempdir().expect("tempdir");
    let mut log = open(
        dir3.path(),
        LogConfig {
            retention_ms: 0,
            ..small_segments()
        },
    );
    for i in 0..30 {
        log.append_as_leader(&simple(1, 100, 0), 0, i)
            .expect("append");
    }
    log.update_high_watermark(0);
    assert_eq!(
        log.enforce_retention(10)
            .expect("retention")
            .deleted_segments,
        0
    );
}

#[test]
fn list_offsets_by_timestamp_and_max_timestamp() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), small_segments());
    // Timestamps 0, 10, 20, ... with one batch of 3 records at 100..102 and a late max at 5000.
    for i in 0..20 {
        log.append_as_leader(&simple(1, 60, i * 10), 0, 0)
            .expect("append");
    }
    let b = batch(
        &[
            (None, Some(b"a"), 300),
            (None, Some(b"b"), 5000),
            (None, Some(b"c"), 301),
        ],
        Compression::Lz4,
    );
    log.append_as_leader(&b, 3, 0).expect("append");
    let at = |ts| log.offset_for(OffsetSpec::Timestamp(ts)).expect("lookup");
    assert_eq!(at(0).map(|t| t.offset), Some(0));
    assert_eq!(at(55).map(|t| (t.offset, t.timestamp)), Some((6, 60)));
    assert_eq!(at(190).map(|t| t.offset), Some(19));
    assert_eq!(at(191).map(|t| (t.offset, t.timestamp)), Some((20, 300)));
    assert_eq!(at(301).map(|t| (t.offset, t.timestamp)), Some((21, 5000)));
    assert_eq!(at(5001), None);
    let max = log
        .offset_for(OffsetSpec::MaxTimestamp)
        .expect("max")
        .expect("some");
    assert_eq!(
        (max.offset, max.timestamp, max.leader_epoch),
        (21, 5000, Some(3))
    );
    assert_eq!(
        log.offset_for(OffsetSpec::Earliest)
            .expect("e")
            .map(|t| t.offset),
        Some(0)
    );
    assert_eq!(
        log.offset_for(OffsetSpec::Latest)
            .expect("l")
            .map(|t| t.offset),
        Some(23)
    );
}

#[test]
fn log_append_time_stamps_the_broker_clock() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(
        dir.path(),
        LogConfig {
            message_timestamp_type: TimestampType::LogAppendTime,
            ..LogConfig::default()
        },
    );
    let info = log
        .append_as_leader(&simple(2, 10, 5), 0, 777)
        .expect("append");
    assert_eq!(info.log_append_time_ms, Some(777));
    let bytes = log
        .read(0, 1 << 20, 2)
        .expect("read")
        .to_bytes()
        .expect("bytes");
    let h = crate::batch::validate_batch(&bytes, 0, None, crate::batch::CountCheck::Dense)
        .expect("CRC still valid");
    assert_eq!(h.max_timestamp, 777);
    assert!(h.is_log_append_time());
}

#[test]
fn readers_on_other_threads_see_only_whole_batches() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), small_segments());
    let reader = log.reader();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop = std::sync::Arc::clone(&done);
    let handle = std::thread::spawn(move || {
        let mut seen = 0i64;
        while !stop.load(std::sync::atomic::Ordering::Relaxed) || seen < reader.log_end_offset() {
            let end = reader.log_end_offset();
            if seen >= end {
                std::thread::yield_now();
                continue;
            }
            let r = reader.read(seen, 4096, end).expect("concurrent read");
            let bytes = r.to_bytes().expect("bytes");
            let batches = crate::batch::validate_all(&bytes, None, crate::batch::CountCheck::Dense)
                .expect("whole valid batches only");
            for b in batches {
                assert_eq!(b.header.base_offset, seen, "offsets in order, none skipped");
                seen = b.header.next_offset();
            }
        }
        seen
    });
    for i in 0..500 {
        log.append_as_leader(&simple(2, 30, i), 0, i)
            .expect("append");
    }
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    assert_eq!(handle.join().expect("reader thread"), 1000);
}

/// Descriptors this process holds open on files under `dir`.
fn open_files_under(dir: &Path) -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("list /proc/self/fd")
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|target| target.starts_with(dir))
        .count()
}

#[test]
fn an_empty_log_holds_no_file_open_until_its_first_batch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().canonicalize().expect("canonical dir");
    let mut log = open(&path, LogConfig::default());
    assert_eq!(open_files_under(&path), 0, "a new empty log opens nothing");
    assert!(log.read(0, 1 << 20, 0).expect("read").records.is_none());
    log.flush().expect("flush an unopened segment");
    drop(log);

    let mut log = open(&path, LogConfig::default());
    assert_eq!(
        open_files_under(&path),
        0,
        "a reopened empty log opens nothing"
    );
    log.append_as_leader(&simple(3, 10, 100), 0, 1)
        .expect("append");
    assert_eq!(
        open_files_under(&path),
        1,
        "the first batch opens the segment"
    );
    log.flush().expect("flush");
    drop(log);

    let log = open(&path, LogConfig::default());
    assert_eq!(
        open_files_under(&path),
        1,
        "a non-empty segment is opened with the log"
    );
    assert_eq!(batches(&log).len(), 1);
}
