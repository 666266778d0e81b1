//! Control batches: the commit and abort markers a transaction coordinator has partition
//! leaders write (KIP-98). A marker batch is transactional and control, carries the producer's
//! id and epoch, sequence -1, and one uncompressed record whose key is `version: i16 = 0,
//! type: i16` (0 abort, 1 commit) and whose value is `version: i16 = 0, coordinator_epoch: i32`.

use bytes::{BufMut, Bytes, BytesMut};

use crate::batch::{BatchHeader, BATCH_HEADER_SIZE, LOG_OVERHEAD, MAGIC_V2};

const ATTR_TRANSACTIONAL: i16 = 1 << 4;
const ATTR_CONTROL: i16 = 1 << 5;
const ABORT: i16 = 0;
const COMMIT: i16 = 1;

/// A transaction marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ControlRecord {
    /// Commit (true) or abort.
    pub commit: bool,
    /// The epoch of the coordinator that wrote it.
    pub coordinator_epoch: i32,
}

fn put_varint(buf: &mut BytesMut, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        buf.put_u8((z as u8) | 0x80);
        z >>= 7;
    }
    buf.put_u8(z as u8);
}

/// Reads a zigzag varint from `buf` at `*at`, moving `*at` past it.
fn get_varint(buf: &[u8], at: &mut usize) -> Option<i64> {
    let mut z: u64 = 0;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*at)?;
        *at += 1;
        z |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(((z >> 1) as i64) ^ -((z & 1) as i64));
        }
    }
    None
}

/// Encodes a marker batch for `producer_id`/`producer_epoch` at `timestamp_ms` (base offset 0:
/// the leader's append assigns it).
pub fn encode_control_batch(
    producer_id: i64,
    producer_epoch: i16,
    marker: ControlRecord,
    timestamp_ms: i64,
) -> Bytes {
    let mut key = BytesMut::with_capacity(4);
    key.put_i16(0);
    key.put_i16(if marker.commit { COMMIT } else { ABORT });
    let mut value = BytesMut::with_capacity(6);
    value.put_i16(0);
    value.put_i32(marker.coordinator_epoch);
    let mut body = BytesMut::new();
    body.put_i8(0); // attributes
    put_varint(&mut body, 0); // timestamp delta
    put_varint(&mut body, 0); // offset delta
    put_varint(&mut body, key.len() as i64);
    body.put_slice(&key);
    put_varint(&mut body, value.len() as i64);
    body.put_slice(&value);
    put_varint(&mut body, 0); // headers
    let mut record = BytesMut::new();
    put_varint(&mut record, body.len() as i64);
    record.put_slice(&body);
    let header = BatchHeader {
        base_offset: 0,
        batch_length: (BATCH_HEADER_SIZE - LOG_OVERHEAD + record.len()) as i32,
        partition_leader_epoch: -1,
        magic: MAGIC_V2,
        crc: 0,
        attributes: ATTR_TRANSACTIONAL | ATTR_CONTROL,
        last_offset_delta: 0,
        base_timestamp: timestamp_ms,
        max_timestamp: timestamp_ms,
        producer_id,
        producer_epoch,
        base_sequence: -1,
        record_count: 1,
    };
    let mut out = BytesMut::with_capacity(BATCH_HEADER_SIZE + record.len());
    out.put_slice(&header.encode());
    out.put_slice(&record);
    let crc = crc32c::crc32c(&out[21..]);
    out[17..21].copy_from_slice(&crc.to_be_bytes());
    out.freeze()
}

/// The marker in a control batch (`batch` starts with its header), or `None` if the batch is
/// not a control batch or its record is not a marker (an empty control batch: compaction
/// removed its record).
pub fn parse_control_batch(batch: &[u8]) -> Option<ControlRecord> {
    let h = BatchHeader::parse(batch)?;
    if !h.is_control() || h.record_count < 1 || h.compression() != 0 {
        return None;
    }
    let mut at = BATCH_HEADER_SIZE;
    let _length = get_varint(batch, &mut at)?;
    at += 1; // attributes
    get_varint(batch, &mut at)?; // timestamp delta
    get_varint(batch, &mut at)?; // offset delta
    let key_len = usize::try_from(get_varint(batch, &mut at)?).ok()?;
    let key = batch.get(at..at + key_len)?;
    at += key_len;
    if key.len() < 4 {
        return None;
    }
    let kind = i16::from_be_bytes([key[2], key[3]]);
    let value_len = usize::try_from(get_varint(batch, &mut at)?).ok()?;
    let value = batch.get(at..at + value_len)?;
    let coordinator_epoch = if value.len() >= 6 {
        i32::from_be_bytes([value[2], value[3], value[4], value[5]])
    } else {
        -1
    };
    match kind {
        ABORT | COMMIT => Some(ControlRecord {
            commit: kind == COMMIT,
            coordinator_epoch,
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_round_trip_and_pass_validation() {
        for commit in [true, false] {
            let marker = ControlRecord {
                commit,
                coordinator_epoch: 7,
            };
            let b = encode_control_batch(42, 3, marker, 1_700_000_000_000);
            let h = crate::batch::validate_batch(&b, 0, None, crate::batch::CountCheck::Dense)
                .expect("a valid batch");
            assert!(h.is_control() && h.is_transactional());
            assert_eq!(
                (h.producer_id, h.producer_epoch, h.base_sequence),
                (42, 3, -1)
            );
            assert_eq!(parse_control_batch(&b), Some(marker));
            // Kafka's own decoder reads it as one control record.
            let records = crate::records::decode_batches(b.clone()).expect("decodes");
            assert_eq!(records.len(), 1);
            assert!(records[0].control);
        }
        let plain = crate::records::encode_batch(
            &[crate::records::NewRecord::value("x", 0)],
            crate::records::Compression::None,
        )
        .expect("encode");
        assert_eq!(parse_control_batch(&plain), None);
        assert_eq!(parse_control_batch(&[0u8; 10]), None);
    }
}
