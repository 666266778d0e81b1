//! The records of `__transaction_state`, in Kafka's layout (so Kafka's tools read them): key
//! `TransactionLogKey` v0 (the transactional id), value `TransactionLogValue` v0.

use std::collections::{BTreeMap, BTreeSet};

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::{TxnMetadata, TxnState};

/// The key of `transactional_id`'s record: version 0, then the id as a Kafka string.
pub fn encode_key(transactional_id: &str) -> Bytes {
    let mut b = BytesMut::with_capacity(4 + transactional_id.len());
    b.put_i16(0);
    b.put_i16(transactional_id.len() as i16);
    b.put_slice(transactional_id.as_bytes());
    b.freeze()
}

fn get_string(b: &mut &[u8]) -> Option<String> {
    if b.remaining() < 2 {
        return None;
    }
    let len = b.get_i16();
    let len = usize::try_from(len).ok()?;
    if b.remaining() < len {
        return None;
    }
    let s = String::from_utf8(b[..len].to_vec()).ok()?;
    b.advance(len);
    Some(s)
}

pub(super) fn decode_key(key: &[u8]) -> Option<String> {
    let mut b = key;
    if b.remaining() < 2 || b.get_i16() != 0 {
        return None;
    }
    get_string(&mut b)
}

/// Kafka's `TransactionLogValue` v0: producer id, epoch, timeout, state, partitions by topic,
/// last update and start timestamps.
pub(super) fn encode_value(m: &TxnMetadata) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i16(0);
    b.put_i64(m.producer_id);
    b.put_i16(m.producer_epoch);
    b.put_i32(m.timeout_ms);
    b.put_i8(m.state.id());
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (t, p) in &m.partitions {
        by_topic.entry(t).or_default().push(*p);
    }
    b.put_i32(by_topic.len() as i32);
    for (t, ps) in by_topic {
        b.put_i16(t.len() as i16);
        b.put_slice(t.as_bytes());
        b.put_i32(ps.len() as i32);
        for p in ps {
            b.put_i32(p);
        }
    }
    b.put_i64(m.last_update_ms);
    b.put_i64(m.start_ms);
    b.freeze()
}

pub(super) fn decode_value(id: &str, value: &[u8]) -> Option<TxnMetadata> {
    let mut b = value;
    if b.remaining() < 2 {
        return None;
    }
    let version = b.get_i16();
    if version != 0 || b.remaining() < 8 + 2 + 4 + 1 + 4 {
        return None;
    }
    let producer_id = b.get_i64();
    let producer_epoch = b.get_i16();
    let timeout_ms = b.get_i32();
    let state = TxnState::from_id(b.get_i8())?;
    let topics = b.get_i32();
    let mut partitions = BTreeSet::new();
    for _ in 0..topics.max(0) {
        let t = get_string(&mut b)?;
        if b.remaining() < 4 {
            return None;
        }
        let n = b.get_i32();
        for _ in 0..n.max(0) {
            if b.remaining() < 4 {
                return None;
            }
            partitions.insert((t.clone(), b.get_i32()));
        }
    }
    if b.remaining() < 16 {
        return None;
    }
    let last_update_ms = b.get_i64();
    let start_ms = b.get_i64();
    Some(TxnMetadata {
        transactional_id: id.to_string(),
        producer_id,
        producer_epoch,
        timeout_ms,
        state,
        partitions,
        start_ms,
        last_update_ms,
    })
}
