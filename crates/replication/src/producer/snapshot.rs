//! The producer state's `<offset>.snapshot` files.
//!
//! Snapshot layout, big-endian: version i16, CRC-32C u32 of everything after it, producer count
//! i32, then per producer: id i64, epoch i16, coordinator epoch i32, open transaction's first
//! offset i64 (-1: none), last timestamp i64, batch count u8, and per batch first sequence i32,
//! last sequence i32, first offset i64, last offset i64, timestamp i64; then the aborted
//! transactions: count i32, and per transaction producer id i64, first offset i64, marker
//! offset i64.

use std::collections::{HashMap, VecDeque};
use std::fs;
use std::path::Path;

use super::{AbortedTxn, BatchMetadata, ProducerEntry};

const SNAPSHOT_VERSION: i16 = 1;

pub(super) type Snapshot = (HashMap<i64, ProducerEntry>, Vec<AbortedTxn>);

pub(super) fn encode_snapshot(
    producers: &HashMap<i64, ProducerEntry>,
    aborted: &[AbortedTxn],
) -> Vec<u8> {
    let mut body = Vec::with_capacity(4 + producers.len() * 64);
    body.extend_from_slice(&(producers.len() as i32).to_be_bytes());
    let mut ids: Vec<&i64> = producers.keys().collect();
    ids.sort_unstable();
    for id in ids {
        let e = &producers[id];
        body.extend_from_slice(&id.to_be_bytes());
        body.extend_from_slice(&e.epoch.to_be_bytes());
        body.extend_from_slice(&e.coordinator_epoch.to_be_bytes());
        body.extend_from_slice(&e.current_txn_first_offset.unwrap_or(-1).to_be_bytes());
        body.extend_from_slice(&e.last_timestamp.to_be_bytes());
        body.push(e.batches.len() as u8);
        for b in &e.batches {
            body.extend_from_slice(&b.first_sequence.to_be_bytes());
            body.extend_from_slice(&b.last_sequence.to_be_bytes());
            body.extend_from_slice(&b.first_offset.to_be_bytes());
            body.extend_from_slice(&b.last_offset.to_be_bytes());
            body.extend_from_slice(&b.timestamp.to_be_bytes());
        }
    }
    body.extend_from_slice(&(aborted.len() as i32).to_be_bytes());
    for a in aborted {
        body.extend_from_slice(&a.producer_id.to_be_bytes());
        body.extend_from_slice(&a.first_offset.to_be_bytes());
        body.extend_from_slice(&a.last_offset.to_be_bytes());
    }
    let mut out = Vec::with_capacity(body.len() + 6);
    out.extend_from_slice(&SNAPSHOT_VERSION.to_be_bytes());
    out.extend_from_slice(&crc32c::crc32c(&body).to_be_bytes());
    out.extend_from_slice(&body);
    out
}

/// A cursor over a snapshot's bytes; every read fails cleanly at the end.
struct Cursor<'a>(&'a [u8]);

impl Cursor<'_> {
    fn take<const N: usize>(&mut self) -> std::result::Result<[u8; N], String> {
        if self.0.len() < N {
            return Err("truncated".into());
        }
        let (head, rest) = self.0.split_at(N);
        self.0 = rest;
        Ok(head.try_into().expect("split at N"))
    }
    fn i16(&mut self) -> std::result::Result<i16, String> {
        self.take::<2>().map(i16::from_be_bytes)
    }
    fn i32(&mut self) -> std::result::Result<i32, String> {
        self.take::<4>().map(i32::from_be_bytes)
    }
    fn i64(&mut self) -> std::result::Result<i64, String> {
        self.take::<8>().map(i64::from_be_bytes)
    }
}

pub(super) fn read_snapshot(path: &Path) -> std::result::Result<Snapshot, String> {
    let bytes = fs::read(path).map_err(|e| e.to_string())?;
    decode_snapshot(&bytes)
}

pub(super) fn decode_snapshot(bytes: &[u8]) -> std::result::Result<Snapshot, String> {
    let mut c = Cursor(bytes);
    let version = c.i16()?;
    if version != SNAPSHOT_VERSION {
        return Err(format!("unknown snapshot version {version}"));
    }
    let crc = u32::from_be_bytes(c.take::<4>()?);
    if crc32c::crc32c(c.0) != crc {
        return Err("CRC-32C mismatch".into());
    }
    let count = c.i32()?;
    let mut producers = HashMap::new();
    for _ in 0..count.max(0) {
        let id = c.i64()?;
        let epoch = c.i16()?;
        let coordinator_epoch = c.i32()?;
        let txn = c.i64()?;
        let last_timestamp = c.i64()?;
        let n = c.take::<1>()?[0] as usize;
        let mut batches = VecDeque::with_capacity(n);
        for _ in 0..n {
            batches.push_back(BatchMetadata {
                first_sequence: c.i32()?,
                last_sequence: c.i32()?,
                first_offset: c.i64()?,
                last_offset: c.i64()?,
                timestamp: c.i64()?,
            });
        }
        producers.insert(
            id,
            ProducerEntry {
                epoch,
                batches,
                last_timestamp,
                coordinator_epoch,
                current_txn_first_offset: (txn >= 0).then_some(txn),
            },
        );
    }
    let aborted_count = c.i32()?;
    let mut aborted = Vec::new();
    for _ in 0..aborted_count.max(0) {
        aborted.push(AbortedTxn {
            producer_id: c.i64()?,
            first_offset: c.i64()?,
            last_offset: c.i64()?,
        });
    }
    if !c.0.is_empty() {
        return Err("trailing bytes".into());
    }
    Ok((producers, aborted))
}
