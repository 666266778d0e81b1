//! Compaction building blocks: decoding a batch's records with the `kafka-protocol` codec,
//! rebuilding a batch that keeps a subset of its records, the keyless-record check for compacted
//! topics, and finishing a segment swap that a crash interrupted.
//!
//! A rebuilt batch keeps its base offset, base timestamp, last offset delta, producer fields and
//! attributes; only the record count, length and CRC change, and the kept records' bytes are
//! copied verbatim (recompressed with the batch's codec). So offsets, timestamps and headers
//! (duplicate header keys included) survive compaction exactly.

use std::cell::RefCell;
use std::collections::HashSet;
use std::path::Path;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::compression::{self as codec, Compressor, Decompressor};
use kafka_protocol::records::{Compression, Record, RecordBatchDecoder};

use crate::batch::{self, BatchHeader, BatchRef, BATCH_HEADER_SIZE, LOG_OVERHEAD};
use crate::error::{LogError, Result};

/// A decoded batch: its records and, for each, its bytes inside the decompressed payload.
pub(crate) struct DecodedBatch {
    pub records: Vec<Record>,
    pub raw: Vec<Bytes>,
}

/// The smallest record on the wire: seven one-byte fields (length, attributes, timestamp
/// delta, offset delta, key length, value length, header count).
const MIN_RECORD_BYTES: usize = 7;

/// Decodes (and decompresses) one whole batch into its records and its decompressed payload.
/// `position` is for error messages. The record count the header claims is checked against the
/// payload before the codec reserves room for that many records, so a batch claiming billions
/// of records in a few bytes is an error, not an allocation of gigabytes.
pub(crate) fn decode_records(batch: Bytes, position: u64) -> Result<(Vec<Record>, Bytes)> {
    let header = BatchHeader::parse(&batch)
        .ok_or_else(|| LogError::corrupt(position, "shorter than a batch header"))?;
    let count = usize::try_from(header.record_count).map_err(|_| {
        LogError::corrupt(
            position,
            format!("record count {} is negative", header.record_count),
        )
    })?;
    let too_many = |payload: usize| {
        (count > payload / MIN_RECORD_BYTES)
            .then(|| format!("{count} records cannot fit in {payload} bytes of records"))
    };
    let payload: RefCell<Option<Bytes>> = RefCell::new(None);
    let mut buf = batch;
    // The codec adds a record's timestamp delta to the batch's base timestamp unchecked: a
    // delta that overflows panics where overflow checks are on (debug builds, the fuzzers).
    // A panic in a third-party decoder is a corrupt batch here, never a dead thread.
    let decoded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        RecordBatchDecoder::decode_with_custom_compression(
            &mut buf,
            Some(|records: &mut Bytes, compression: Compression| {
                let plain = decompress(records, compression)?;
                if let Some(e) = too_many(plain.len()) {
                    anyhow::bail!(e);
                }
                deltas_fit(&plain, count, header.base_timestamp, header.base_offset)
                    .map_err(anyhow::Error::msg)?;
                *payload.borrow_mut() = Some(plain.clone());
                Ok(plain)
            }),
        )
    }))
    .map_err(|_| LogError::corrupt(position, "records the codec cannot decode"))?;
    let set =
        decoded.map_err(|e| LogError::corrupt(position, format!("cannot decode records: {e}")))?;
    Ok((set.records, payload.into_inner().unwrap_or_default()))
}

/// Decodes (and decompresses) one whole batch. `position` is for error messages.
pub(crate) fn decode_batch(batch: Bytes, position: u64) -> Result<DecodedBatch> {
    let (records, payload) = decode_records(batch, position)?;
    let raw = split_records(&payload)
        .ok_or_else(|| LogError::corrupt(position, "record lengths do not add up"))?;
    if raw.len() != records.len() {
        return Err(LogError::corrupt(
            position,
            format!(
                "decoded {} records but found {} record frames",
                records.len(),
                raw.len()
            ),
        ));
    }
    Ok(DecodedBatch { records, raw })
}

// `kafka-protocol` codec callbacks speak `anyhow`; errors are turned into `LogError` at once.
fn decompress(records: &mut Bytes, compression: Compression) -> anyhow::Result<Bytes> {
    let keep = |b: &mut Bytes| Ok(b.clone());
    match compression {
        Compression::None => Ok(records.clone()),
        Compression::Gzip => codec::Gzip::decompress(records, keep),
        Compression::Snappy => codec::Snappy::decompress(records, keep),
        Compression::Lz4 => codec::Lz4::decompress(records, keep),
        Compression::Zstd => codec::Zstd::decompress(records, keep),
    }
}

/// Splits a decompressed records payload into the records' frames (length varint included).
fn split_records(payload: &Bytes) -> Option<Vec<Bytes>> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while at < payload.len() {
        let (len, varint_len) = read_zigzag_varint(&payload[at..])?;
        let len = usize::try_from(len).ok()?;
        let end = at.checked_add(varint_len)?.checked_add(len)?;
        if end > payload.len() {
            return None;
        }
        out.push(payload.slice(at..end));
        at = end;
    }
    Some(out)
}

/// Checks that the first `count` records' timestamp and offset deltas, added to the batch's
/// base timestamp and base offset, stay within `i64` (the codec adds them unchecked). Records
/// too malformed to read are left for the codec to refuse.
fn deltas_fit(
    payload: &[u8],
    count: usize,
    base_timestamp: i64,
    base_offset: i64,
) -> std::result::Result<(), String> {
    let mut at = 0usize;
    for _ in 0..count {
        let Some((len, n)) = payload.get(at..).and_then(read_zigzag_varint) else {
            return Ok(());
        };
        let Some(record) = usize::try_from(len)
            .ok()
            .and_then(|len| payload.get(at + n..at + n + len))
        else {
            return Ok(());
        };
        // After the attributes byte: the timestamp delta (varlong), the offset delta (varint).
        let Some((timestamp_delta, t)) = record.get(1..).and_then(read_zigzag_varlong) else {
            return Ok(());
        };
        let Some((offset_delta, _)) = record.get(1 + t..).and_then(read_zigzag_varint) else {
            return Ok(());
        };
        if base_timestamp.checked_add(timestamp_delta).is_none() {
            return Err(format!(
                "timestamp delta {timestamp_delta} overflows the base timestamp {base_timestamp}"
            ));
        }
        if base_offset.checked_add(i64::from(offset_delta)).is_none() {
            return Err(format!(
                "offset delta {offset_delta} overflows the base offset {base_offset}"
            ));
        }
        at += n + record.len();
    }
    Ok(())
}

/// Reads a zigzag-encoded 64-bit varint; returns the value and the bytes it took.
fn read_zigzag_varlong(b: &[u8]) -> Option<(i64, usize)> {
    let mut raw: u64 = 0;
    for (i, byte) in b.iter().take(10).enumerate() {
        raw |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            let value = ((raw >> 1) as i64) ^ -((raw & 1) as i64);
            return Some((value, i + 1));
        }
    }
    None
}

/// Reads a zigzag-encoded 32-bit varint; returns the value and the bytes it took.
fn read_zigzag_varint(b: &[u8]) -> Option<(i32, usize)> {
    let mut raw: u32 = 0;
    for (i, byte) in b.iter().take(5).enumerate() {
        raw |= u32::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            let value = ((raw >> 1) as i32) ^ -((raw & 1) as i32);
            return Some((value, i + 1));
        }
    }
    None
}

/// Rebuilds `original` keeping only the records whose flag in `keep` is true. Returns `None`
/// when no record is kept.
pub(crate) fn rebuild_batch(
    original: &BatchHeader,
    decoded: &DecodedBatch,
    keep: &[bool],
) -> Result<Option<Bytes>> {
    let kept: Vec<&Bytes> = decoded
        .raw
        .iter()
        .zip(keep)
        .filter_map(|(r, k)| k.then_some(r))
        .collect();
    if kept.is_empty() {
        return Ok(None);
    }
    let mut plain = BytesMut::with_capacity(kept.iter().map(|r| r.len()).sum());
    for r in &kept {
        plain.put_slice(r);
    }
    let mut payload = BytesMut::new();
    let fill = |b: &mut BytesMut| {
        b.put_slice(&plain);
        Ok(())
    };
    let compressed = match original.compression() {
        0 => codec::None::compress(&mut payload, fill),
        1 => codec::Gzip::compress(&mut payload, fill),
        2 => codec::Snappy::compress(&mut payload, fill),
        3 => codec::Lz4::compress(&mut payload, fill),
        4 => codec::Zstd::compress(&mut payload, fill),
        other => {
            return Err(LogError::invalid(
                0,
                format!("unknown compression codec {other}"),
            ))
        }
    };
    compressed.map_err(|e| LogError::invalid(0, format!("cannot recompress batch: {e}")))?;
    let mut header = *original;
    header.record_count = kept.len() as i32;
    header.batch_length = (BATCH_HEADER_SIZE - LOG_OVERHEAD + payload.len()) as i32;
    header.crc = batch::crc_with_header(&header, &payload);
    let mut out = BytesMut::with_capacity(header.size() as usize);
    out.put_slice(&header.encode());
    out.put_slice(&payload);
    Ok(Some(out.freeze()))
}

/// Compacted topics refuse records without a key (Kafka: INVALID_RECORD). Control batches are
/// exempt. This decodes the records: the price of compaction, paid only on compacted topics.
pub(crate) fn require_keys(records: &[u8], batches: &[BatchRef]) -> Result<()> {
    for b in batches.iter().filter(|b| !b.header.is_control()) {
        let bytes =
            Bytes::copy_from_slice(&records[b.position..b.position + b.header.size() as usize]);
        let decoded = decode_batch(bytes, b.position as u64)?;
        if decoded.records.iter().any(|r| r.key.is_none()) {
            return Err(LogError::invalid(
                b.position as u64,
                "compacted topic cannot accept a record without a key",
            ));
        }
    }
    Ok(())
}

/// Suffix of files being written by the cleaner.
pub(crate) const CLEANED: &str = "cleaned";
/// Suffix of a cleaned log file that is committed to replace the original.
pub(crate) const SWAP: &str = "swap";

/// On open: a `<base>.log.swap` is a finished cleaning whose final rename did not happen, so it
/// replaces `<base>.log`; any `*.cleaned` file is an unfinished cleaning and is deleted. Returns
/// the bases of swapped segments, whose indexes must be rebuilt.
pub(crate) fn complete_interrupted_swaps(dir: &Path) -> Result<HashSet<i64>> {
    let mut swapped = HashSet::new();
    let mut leftovers = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| LogError::io(dir, e))? {
        let entry = entry.map_err(|e| LogError::io(dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(stem) = name.strip_suffix(&format!(".log.{SWAP}")) {
            if let Ok(base) = stem.parse::<i64>() {
                let target = dir.join(format!("{stem}.log"));
                std::fs::rename(entry.path(), &target).map_err(|e| LogError::io(&target, e))?;
                swapped.insert(base);
                tracing::warn!(dir = %dir.display(), base, "completed an interrupted compaction swap");
            }
        } else if name.ends_with(&format!(".{CLEANED}")) || name.ends_with(".tmp") {
            leftovers.push(entry.path());
        }
    }
    for p in leftovers {
        std::fs::remove_file(&p).map_err(|e| LogError::io(&p, e))?;
    }
    if !swapped.is_empty() {
        crate::checkpoint::sync_dir(dir)?;
    }
    Ok(swapped)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::test_batches::batch;
    use crate::batch::{validate_batch, CountCheck};

    #[test]
    fn varints_decode_like_kafka() {
        assert_eq!(read_zigzag_varint(&[0x00]), Some((0, 1)));
        assert_eq!(read_zigzag_varint(&[0x01]), Some((-1, 1)));
        assert_eq!(read_zigzag_varint(&[0x02]), Some((1, 1)));
        assert_eq!(read_zigzag_varint(&[0xac, 0x02]), Some((150, 2)));
        assert_eq!(read_zigzag_varint(&[0x80]), None);
    }

    #[test]
    fn rebuilt_batches_keep_offsets_and_are_valid_for_every_codec() {
        for compression in [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let b = batch(
                &[
                    (Some(b"a"), Some(b"1"), 10),
                    (Some(b"b"), Some(b"2"), 11),
                    (Some(b"a"), Some(b"3"), 12),
                ],
                compression,
            );
            let h = BatchHeader::parse(&b).expect("header");
            let decoded = decode_batch(b.clone(), 0).expect("decodes");
            assert_eq!(decoded.records.len(), 3);
            let rebuilt = rebuild_batch(&h, &decoded, &[false, true, true])
                .expect("rebuilds")
                .expect("keeps records");
            let nh = validate_batch(&rebuilt, 0, None, CountCheck::AllowGaps).expect("valid");
            assert_eq!(nh.base_offset, h.base_offset);
            assert_eq!(nh.last_offset_delta, 2, "{compression:?}");
            assert_eq!(nh.record_count, 2);
            assert_eq!(nh.compression(), h.compression());
            let again = decode_batch(rebuilt, 0).expect("decodes");
            let got: Vec<(i64, &[u8])> = again
                .records
                .iter()
                .map(|r| (r.offset, r.value.as_deref().unwrap_or_default()))
                .collect();
            assert_eq!(got, vec![(1, &b"2"[..]), (2, &b"3"[..])]);
            assert!(rebuild_batch(&h, &decoded, &[false, false, false])
                .expect("ok")
                .is_none());
        }
    }
}
