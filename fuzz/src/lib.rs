//! The bodies of Odradek's fuzz targets, one function per target (each `fuzz_targets/<name>.rs`
//! calls the function of its name). Every target feeds bytes that a socket or a disk could hold
//! to the code that reads them, and checks that bad input is an error, never a panic, a hang or
//! an allocation beyond what the input holds (libFuzzer's `-malloc_limit_mb` catches those), and,
//! where the code promises more (recovery yields only whole, valid batches), that promise.
//!
//! Run one with `cargo fuzz run -s none <target>` from the repository root (stable toolchain);
//! `scripts/fuzz.sh` runs them all, and `.ci` runs a short pass of each over the corpus in
//! `fuzz/corpus/<target>` (seeds) and `fuzz/regressions/<target>` (inputs that once failed).

use std::collections::HashMap;
use std::sync::Arc;

use arbitrary::{Arbitrary, Unstructured};
use bytes::Bytes;
use kafka_protocol::messages::ApiKey;
use odradek_log::{AppendRules, Log, LogConfig, ValidatedBatches};

/// A request frame (the bytes after the size prefix), decoded as a connection decodes it, with
/// every API at every version Kafka defines served.
pub fn request(data: &[u8]) {
    let frame = Bytes::copy_from_slice(data);
    let _ =
        odradek_frontend::decode::decode_request(frame, |key: ApiKey| {
            Some(odradek_frontend::newer::known_versions(key))
        });
}

/// Produce payloads: a leader's and a follower's validation, then, for batches that pass, the
/// decoding of every record (decompressing gzip, snappy, lz4 and zstd) and control records.
pub fn record_batch(data: &[u8]) {
    let Some((&flags, records)) = data.split_first() else {
        return;
    };
    let rules = AppendRules {
        max_message_bytes: 1 << 20,
        require_keys: flags & 1 == 1,
    };
    let leader = ValidatedBatches::for_leader(records, rules);
    let follower = ValidatedBatches::for_follower(records);
    if leader.is_ok() {
        assert!(
            follower.is_ok(),
            "a batch a leader accepts is one a follower accepts"
        );
    }
    if let Ok(batches) = follower {
        for (header, bytes) in batches.batches() {
            if header.is_control() {
                let _ = odradek_log::control::parse_control_batch(bytes);
            }
        }
        let _ = odradek_log::records::decode_batches(Bytes::copy_from_slice(records));
    }
}

/// The files a `log_recovery` input puts in the log directory, by their one-byte ids.
const LOG_DIR_FILES: [&str; 5] = [
    "00000000000000000000.log",
    "00000000000000000000.index",
    "00000000000000000100.log",
    "leader-epoch-checkpoint",
    "log-checkpoint",
];

/// A log directory of arbitrary files, opened (recovered), read end to end and appended to.
/// The input is a flags byte (bit 0: the clean-shutdown marker is present, so the indexes are
/// trusted) then files, each a one-byte id (an index into the names above), a big-endian u16
/// length and the bytes; a truncated last file takes what is left. A plain segment file with
/// a zero byte and `0x00 len` before it is thus a seed. After an unclean shutdown, recovery
/// must leave only whole batches that pass a follower's checks, ending at the log end offset,
/// and a cleanly closed log must reopen with the same log end.
pub fn log_recovery(data: &[u8]) {
    let Some((&flags, mut rest)) = data.split_first() else {
        return;
    };
    let clean_shutdown = flags & 1 == 1;
    let Ok(dir) = tempfile::tempdir() else {
        return;
    };
    let path = dir.path();
    let write = |name: &str, bytes: &[u8]| {
        std::fs::write(path.join(name), bytes).expect("write a file into a fresh temp dir");
    };
    while let [id, hi, lo, tail @ ..] = rest {
        let len = usize::from(u16::from_be_bytes([*hi, *lo])).min(tail.len());
        let name = LOG_DIR_FILES[usize::from(*id) % LOG_DIR_FILES.len()];
        write(name, &tail[..len]);
        rest = &tail[len..];
    }
    if clean_shutdown {
        write(".clean-shutdown", b"");
    }
    let config = LogConfig::default();
    let Ok(mut log) = Log::open(path, config.clone(), 0) else {
        return;
    };
    let start = log.log_start_offset();
    let end = log.log_end_offset();
    assert!(start <= end, "log start {start} past log end {end}");
    let read = log
        .read(start, u64::MAX / 2, end)
        .and_then(|r| r.to_bytes());
    if !clean_shutdown {
        // Recovery re-read every byte: what it kept must be whole, valid batches.
        let bytes = read.expect("a recovered log reads back");
        if !bytes.is_empty() {
            let batches = ValidatedBatches::for_follower(&bytes)
                .expect("recovery keeps only batches a follower would accept");
            let last = batches
                .headers()
                .map(|h| h.last_offset())
                .max()
                .expect("non-empty");
            assert!(last < end, "batch ending at {last} past log end {end}");
        }
    }
    // The log stays usable: an append lands at the log end.
    let batch = odradek_log::records::encode_batch(
        &[odradek_log::records::NewRecord::value("after recovery", 0)],
        odradek_log::records::Compression::None,
    )
    .expect("encode a one-record batch");
    if let Ok(info) = log.append_as_leader(&batch, 0, 0) {
        assert_eq!(info.first_offset, end, "an append lands at the log end");
        let end = log.log_end_offset();
        if log.close().is_ok() {
            let reopened = Log::open(path, config, 0).expect("a cleanly closed log reopens");
            assert_eq!(
                reopened.log_end_offset(),
                end,
                "reopening keeps the log end"
            );
        }
    }
}

/// Records of `__consumer_offsets` and `__transaction_state` as a coordinator loads them.
#[derive(Debug, Arbitrary)]
struct CoordinatorRecords {
    records: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

/// Arbitrary records replayed into the group coordinator (as when it loads its partition of
/// `__consumer_offsets`) and the transaction coordinator, then everything loaded described.
pub fn coordinator_records(data: &[u8]) {
    let Ok(input) = CoordinatorRecords::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    let mut groups =
        odradek_coordinator::Groups::new(odradek_coordinator::GroupConfig::default(), "fuzz");
    let mut txns = odradek_coordinator::txn::Transactions::new(Default::default());
    for (key, value) in &input.records {
        let _ = odradek_coordinator::records::decode_key(Bytes::copy_from_slice(key));
        groups.replay(
            0,
            Bytes::copy_from_slice(key),
            value.as_deref().map(Bytes::copy_from_slice),
        );
        txns.replay(key, value.as_deref());
    }
    // Every group loaded is described, and a consumer group (KIP-848) goes on: a member joins
    // and the loaded members' deadlines fire, whatever epochs and assignments were loaded.
    let topics: std::collections::BTreeMap<String, (odradek_common::Uuid, i32)> =
        [("t".to_string(), (odradek_common::Uuid([1; 16]), 3))].into();
    for listing in groups.list() {
        let _ = groups.describe(&listing.group_id);
        if groups.describe_consumer(&listing.group_id).is_ok() {
            let join = odradek_coordinator::ConsumerHeartbeat {
                group_id: listing.group_id.clone(),
                member_id: "fuzz-member".into(),
                rebalance_timeout_ms: 1000,
                subscribed_topic_names: Some(vec!["t".into()]),
                owned: Some(Default::default()),
                api_version: 1,
                ..Default::default()
            };
            let _ = groups.consumer_heartbeat(1, join, &topics);
        }
    }
    let _ = groups.tick(i64::MAX / 2);
    let _ = groups.committed_offsets();
    let _ = txns.unfinished();
}

/// A metadata log entry (a batch of records) and a snapshot, decoded and replayed into an
/// image, as a broker or standby controller replays what the quorum committed.
pub fn metadata_records(data: &[u8]) {
    let empty = Arc::new(odradek_metadata::MetadataImage::empty());
    if let Ok(records) = odradek_metadata::decode_batch(data) {
        let mut delta = odradek_metadata::MetadataDelta::new(Arc::clone(&empty));
        for (i, r) in records.iter().enumerate() {
            let _ = delta.replay(i as i64 + 1, r);
        }
        let image = delta.apply();
        // A snapshot of whatever replayed loads back.
        let snapshot = odradek_metadata::encode_snapshot(&image);
        odradek_metadata::decode_snapshot(&snapshot).expect("our own snapshot decodes");
    }
    let _ = odradek_metadata::decode_snapshot(data);
}

/// SASL messages a client sends (SCRAM client-first and client-final), the server-first a
/// client reads, and the JAAS configuration text a client or broker is given.
pub fn sasl(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    use odradek_common::scram::{ClientFinal, ClientFirst, ServerFirst};
    let _ = ClientFirst::parse(text);
    let _ = ClientFinal::parse(text);
    let _ = ServerFirst::parse(text);
    let _ = odradek_common::jaas::parse(text);
}

/// `server.properties`-style text, and the topic configuration it would set.
pub fn properties(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let props = odradek_common::parse_properties(text);
    let map: HashMap<String, String> = props.into_iter().collect();
    let _ = LogConfig::from_properties(&map);
}
