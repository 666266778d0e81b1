//! Compaction: the latest value per key, tombstones past `delete.retention.ms`, interrupted
//! passes, passes apart from the log, and segments with transactions left alone.

use std::collections::HashMap;

use bytes::Bytes;

use super::*;

fn kv(key: &str, value: Option<&str>, ts: i64) -> Bytes {
    batch(
        &[(Some(key.as_bytes()), value.map(str::as_bytes), ts)],
        Compression::None,
    )
}

/// key -> (offset, value) of everything readable.
fn contents(log: &Log) -> Vec<(i64, String, Option<String>)> {
    let end = log.log_end_offset();
    let mut out = Vec::new();
    let mut next = log.log_start_offset();
    while next < end {
        let Some(slice) = log.read(next, 1 << 20, end).expect("read").records else {
            break;
        };
        let mut bytes = slice.read_to_bytes().expect("bytes");
        next = slice.last_offset() + 1;
        while !bytes.is_empty() {
            let set =
                kafka_protocol::records::RecordBatchDecoder::decode(&mut bytes).expect("decode");
            for r in set.records {
                out.push((
                    r.offset,
                    String::from_utf8(r.key.expect("key").to_vec()).expect("utf8"),
                    r.value
                        .map(|v| String::from_utf8(v.to_vec()).expect("utf8")),
                ));
            }
        }
    }
    out
}

#[test]
fn compaction_keeps_the_latest_value_per_key_and_drops_old_tombstones() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = LogConfig {
        cleanup_policy: CleanupPolicy::COMPACT,
        delete_retention_ms: 1000,
        ..small_segments()
    };
    let mut log = open(dir.path(), config.clone());
    let err = log
        .append_as_leader(&simple(1, 3, 0), 0, 0)
        .expect_err("keyless record on a compacted topic");
    assert_eq!(err.error_code(), ErrorCode::InvalidRecord);

    // k1's last write is a tombstone at offset 41; afterwards its slot goes to k2.
    let key_of = |i: i64| match i % 5 {
        1 if i > 41 => "k2".to_string(),
        k => format!("k{k}"),
    };
    for i in 0..60i64 {
        let value = if i == 41 { None } else { Some(format!("v{i}")) };
        log.append_as_leader(&kv(&key_of(i), value.as_deref(), i), 0, i)
            .expect("append");
    }
    let end = log.log_end_offset();
    let active_base = *log.segment_base_offsets().last().expect("segments");
    assert!(
        active_base > 41,
        "the tombstone must be in a cleanable segment"
    );
    let r = log.compact(100).expect("compact");
    assert!(r.cleaned_segments > 0 && r.records_removed > 0);
    assert!(r.bytes_after < r.bytes_before);
    assert_eq!(log.log_end_offset(), end);
    let after = contents(&log);
    assert!(
        after.windows(2).all(|w| w[0].0 < w[1].0),
        "offsets only increase"
    );
    let mut last: HashMap<String, (i64, Option<String>)> = HashMap::new();
    for (o, k, v) in &after {
        last.insert(k.clone(), (*o, v.clone()));
    }
    for k in 0..5 {
        let key = format!("k{k}");
        let latest = (0..60)
            .filter(|i| key_of(*i) == key)
            .max()
            .expect("some offset");
        let expected = (latest != 41).then(|| format!("v{latest}"));
        assert_eq!(last.get(&key), Some(&(latest, expected)), "{key}");
    }
    // In the cleaned segments each key appears at most once.
    let cleaned: Vec<_> = after.iter().filter(|(o, _, _)| *o < active_base).collect();
    let mut keys: Vec<_> = cleaned.iter().map(|(_, k, _)| k.clone()).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), cleaned.len());
    // The tombstone is young (timestamp 41, now 100, delete.retention.ms 1000): it stays.
    assert!(after.iter().any(|(o, _, v)| *o == 41 && v.is_none()));

    // Once past delete.retention.ms, the tombstone goes, and k1 is gone for good.
    log.compact(1_000_000).expect("compact");
    assert!(contents(&log).iter().all(|(_, k, _)| k != "k1"));
    drop(log);
    let log = open(dir.path(), config);
    assert_eq!(log.log_end_offset(), end);
    assert!(contents(&log).iter().all(|(_, k, _)| k != "k1"));
}

#[test]
fn an_interrupted_compaction_is_finished_or_discarded_on_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = LogConfig {
        cleanup_policy: CleanupPolicy::COMPACT,
        ..small_segments()
    };
    let mut log = open(dir.path(), config.clone());
    for i in 0..40i64 {
        log.append_as_leader(&kv(&format!("k{}", i % 3), Some("v"), i), 0, i)
            .expect("append");
    }
    let before = contents(&log);
    drop(log);
    // A cleaner that died before its commit point leaves .cleaned files: they are discarded.
    let junk = dir.path().join(format!("{:020}.log.cleaned", 0));
    std::fs::write(&junk, b"partial").expect("write");
    let log = open(dir.path(), config.clone());
    assert!(!junk.exists());
    assert_eq!(contents(&log), before);
    drop(log);
    // One that died after it leaves a .swap file: it replaces the segment.
    let mut log = open(dir.path(), config.clone());
    log.compact(100).expect("compact");
    let compacted = contents(&log);
    drop(log);
    let seg = dir.path().join(format!("{:020}.log", 0));
    let swap = dir.path().join(format!("{:020}.log.swap", 0));
    std::fs::copy(&seg, &swap).expect("copy");
    std::fs::write(&seg, b"stale original").expect("write");
    let log = open(dir.path(), config);
    assert!(!swap.exists());
    assert_eq!(contents(&log), compacted);
}

/// Files a compaction job writes (`*.cleaned`) still in `dir`.
fn cleaned_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .expect("dir")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains("cleaned"))
        .count()
}

#[test]
fn compaction_runs_apart_from_the_log_and_yields_to_changes_made_meanwhile() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = LogConfig {
        cleanup_policy: CleanupPolicy::COMPACT,
        ..small_segments()
    };
    let mut log = open(dir.path(), config.clone());
    for i in 0..40i64 {
        log.append_as_leader(&kv(&format!("k{}", i % 3), Some("v"), i), 0, i)
            .expect("append");
    }
    // Appends while the job runs: they land in the active segment and survive the commit.
    let job = log.plan_compaction(100, true).expect("cleanable segments");
    for i in 40..45i64 {
        log.append_as_leader(&kv("late", Some("v"), i), 0, i)
            .expect("append");
    }
    let appended = contents(&log);
    let done = job.run().expect("run");
    let r = log.commit_compaction(done).expect("commit");
    assert!(r.cleaned_segments > 0 && r.records_removed > 0);
    let after = contents(&log);
    assert!(after.len() < appended.len());
    assert_eq!(
        after.iter().filter(|(_, k, _)| k == "late").count(),
        5,
        "records appended during the run are kept"
    );
    assert_eq!(log.log_end_offset(), 45);

    // A truncation while the job runs: the commit drops the cleaned files, the log stays as
    // truncated.
    for i in 45..80i64 {
        log.append_as_leader(&kv(&format!("k{}", i % 3), Some("v"), i), 0, i)
            .expect("append");
    }
    let job = log.plan_compaction(100, true).expect("cleanable segments");
    let cut = log.segment_base_offsets()[2];
    log.truncate_to(cut).expect("truncate");
    let truncated = contents(&log);
    // The job either fails reading the cut file or, if it read before the cut, commits
    // nothing.
    if let Ok(done) = job.run() {
        let r = log.commit_compaction(done).expect("commit");
        assert_eq!(r, CleanResult::default(), "a stale job commits nothing");
    }
    assert_eq!(contents(&log), truncated);
    assert_eq!(cleaned_files(dir.path()), 0, "no cleaned files left behind");

    // DeleteRecords while the job runs: the job reads the unlinked file to the end, and the
    // commit, finding the segment gone, drops the cleaned files.
    for i in 80..120i64 {
        log.append_as_leader(&kv(&format!("k{}", i % 3), Some("v"), i), 0, i)
            .expect("append");
    }
    let job = log.plan_compaction(100, true).expect("cleanable segments");
    log.delete_records_before(log.segment_base_offsets()[1])
        .expect("delete records");
    let deleted = contents(&log);
    let done = job.run().expect("the job reads the unlinked segment");
    let r = log.commit_compaction(done).expect("commit");
    assert_eq!(r, CleanResult::default(), "a stale job commits nothing");
    assert_eq!(contents(&log), deleted);
    assert_eq!(cleaned_files(dir.path()), 0, "no cleaned files left behind");
    drop(log);
    let log = open(dir.path(), config);
    assert_eq!(contents(&log), deleted);
}

#[test]
fn compaction_leaves_segments_with_transactions_from_the_first_one_on() {
    use crate::records::{encode_producer_batch, NewRecord, ProducerBatch};
    let dir = tempfile::tempdir().expect("tempdir");
    let config = LogConfig {
        cleanup_policy: CleanupPolicy::COMPACT,
        ..small_segments()
    };
    let mut log = open(dir.path(), config);
    // Plain duplicates of k first (cleanable), then transactional ones, then plain again.
    for i in 0..60i64 {
        let bytes = if (20..30).contains(&i) {
            let r = [NewRecord::keyed("k", format!("v{i}"), i)];
            let p = ProducerBatch {
                producer_id: 7,
                producer_epoch: 0,
                base_sequence: (i - 20) as i32,
                transactional: true,
            };
            encode_producer_batch(&r, crate::records::Compression::None, p).expect("encode")
        } else {
            kv("k", Some(&format!("v{i}")), i)
        };
        log.append_as_leader(&bytes, 0, i).expect("append");
    }
    let before = contents(&log);
    log.compact(100).expect("compact");
    let after = contents(&log);
    // Everything from the first segment holding a transactional batch on is untouched.
    let seg_of_20 = *log
        .segment_base_offsets()
        .iter()
        .filter(|b| **b <= 20)
        .max()
        .expect("a segment");
    assert!(seg_of_20 > 0, "some plain segments come before it");
    assert_eq!(
        after.iter().filter(|(o, _, _)| *o >= seg_of_20).count(),
        before.iter().filter(|(o, _, _)| *o >= seg_of_20).count(),
        "no record at or after the transactional segment was removed"
    );
    assert_eq!(
        after
            .iter()
            .filter(|(o, _, _)| *o >= seg_of_20)
            .collect::<Vec<_>>(),
        before
            .iter()
            .filter(|(o, _, _)| *o >= seg_of_20)
            .collect::<Vec<_>>()
    );
    // Before it, duplicates of k did go.
    assert!(after.iter().filter(|(o, _, _)| *o < seg_of_20).count() <= 1);
}
