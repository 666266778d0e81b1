//! Kafka record batch v2 (magic 2) headers: parse, validate, and the few header rewrites a broker
//! makes. Records inside a batch are never touched on the append and read paths.
//!
//! ```text
//! offset  size  field
//!      0     8  base offset              \ not covered by the CRC: the leader rewrites them
//!      8     4  batch length (bytes after this field)
//!     12     4  partition leader epoch   /
//!     16     1  magic (2)
//!     17     4  CRC-32C of bytes 21..end
//!     21     2  attributes (bits 0-2 compression, 3 timestamp type, 4 transactional,
//!               5 control, 6 delete horizon)
//!     23     4  last offset delta
//!     27     8  base timestamp
//!     35     8  max timestamp
//!     43     8  producer id
//!     51     2  producer epoch
//!     53     4  base sequence
//!     57     4  record count
//!     61        records (possibly compressed)
//! ```

use crate::error::{LogError, Result};

/// Bytes of a v2 batch header, records excluded.
pub const BATCH_HEADER_SIZE: usize = 61;
/// Bytes before the part counted by the batch length field (base offset + length).
pub const LOG_OVERHEAD: usize = 12;
/// The only record format Odradek stores.
pub const MAGIC_V2: i8 = 2;

const CRC_COVERED_FROM: usize = 21;
const ATTR_TIMESTAMP_TYPE: i16 = 1 << 3;
const ATTR_TRANSACTIONAL: i16 = 1 << 4;
const ATTR_CONTROL: i16 = 1 << 5;

/// The parsed header of one record batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    /// Offset of the first record.
    pub base_offset: i64,
    /// Bytes after the length field; the batch occupies `LOG_OVERHEAD + batch_length` bytes.
    pub batch_length: i32,
    /// Epoch of the leader that appended the batch.
    pub partition_leader_epoch: i32,
    /// Record format version.
    pub magic: i8,
    /// Stored CRC-32C.
    pub crc: u32,
    /// Attribute bits.
    pub attributes: i16,
    /// `last offset - base offset`.
    pub last_offset_delta: i32,
    /// Timestamp of the first record.
    pub base_timestamp: i64,
    /// Largest record timestamp (or the append time under LogAppendTime).
    pub max_timestamp: i64,
    /// Idempotent producer id, or -1.
    pub producer_id: i64,
    /// Idempotent producer epoch, or -1.
    pub producer_epoch: i16,
    /// Sequence of the first record, or -1.
    pub base_sequence: i32,
    /// Number of records in the batch.
    pub record_count: i32,
}

fn be_i64(b: &[u8], at: usize) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    i64::from_be_bytes(a)
}

fn be_i32(b: &[u8], at: usize) -> i32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    i32::from_be_bytes(a)
}

fn be_i16(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}

impl BatchHeader {
    /// Reads the header fields from the first [`BATCH_HEADER_SIZE`] bytes of `buf`; checks nothing
    /// else. Returns `None` when `buf` is shorter than a header.
    pub fn parse(buf: &[u8]) -> Option<BatchHeader> {
        if buf.len() < BATCH_HEADER_SIZE {
            return None;
        }
        Some(BatchHeader {
            base_offset: be_i64(buf, 0),
            batch_length: be_i32(buf, 8),
            partition_leader_epoch: be_i32(buf, 12),
            magic: buf[16] as i8,
            crc: be_i32(buf, 17) as u32,
            attributes: be_i16(buf, 21),
            last_offset_delta: be_i32(buf, 23),
            base_timestamp: be_i64(buf, 27),
            max_timestamp: be_i64(buf, 35),
            producer_id: be_i64(buf, 43),
            producer_epoch: be_i16(buf, 51),
            base_sequence: be_i32(buf, 53),
            record_count: be_i32(buf, 57),
        })
    }

    /// Writes the header back into its 61-byte wire form (the stored `crc` field as is).
    pub fn encode(&self) -> [u8; BATCH_HEADER_SIZE] {
        let mut b = [0u8; BATCH_HEADER_SIZE];
        b[0..8].copy_from_slice(&self.base_offset.to_be_bytes());
        b[8..12].copy_from_slice(&self.batch_length.to_be_bytes());
        b[12..16].copy_from_slice(&self.partition_leader_epoch.to_be_bytes());
        b[16] = self.magic as u8;
        b[17..21].copy_from_slice(&self.crc.to_be_bytes());
        b[21..23].copy_from_slice(&self.attributes.to_be_bytes());
        b[23..27].copy_from_slice(&self.last_offset_delta.to_be_bytes());
        b[27..35].copy_from_slice(&self.base_timestamp.to_be_bytes());
        b[35..43].copy_from_slice(&self.max_timestamp.to_be_bytes());
        b[43..51].copy_from_slice(&self.producer_id.to_be_bytes());
        b[51..53].copy_from_slice(&self.producer_epoch.to_be_bytes());
        b[53..57].copy_from_slice(&self.base_sequence.to_be_bytes());
        b[57..61].copy_from_slice(&self.record_count.to_be_bytes());
        b
    }

    /// Total bytes the batch occupies on disk and on the wire.
    pub fn size(&self) -> u64 {
        LOG_OVERHEAD as u64 + self.batch_length.max(0) as u64
    }

    /// Offset of the last record (also after compaction removed records from the batch).
    pub fn last_offset(&self) -> i64 {
        self.base_offset + i64::from(self.last_offset_delta)
    }

    /// Offset after the batch.
    pub fn next_offset(&self) -> i64 {
        self.last_offset() + 1
    }

    /// Compression codec id: 0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd.
    pub fn compression(&self) -> i16 {
        self.attributes & 0x7
    }

    /// Whether the max timestamp is the broker's append time.
    pub fn is_log_append_time(&self) -> bool {
        self.attributes & ATTR_TIMESTAMP_TYPE != 0
    }

    /// Whether the batch belongs to a transaction.
    pub fn is_transactional(&self) -> bool {
        self.attributes & ATTR_TRANSACTIONAL != 0
    }

    /// Whether the batch holds a control record (transaction marker).
    pub fn is_control(&self) -> bool {
        self.attributes & ATTR_CONTROL != 0
    }
}

/// How strictly [`validate_batch`] checks the record count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CountCheck {
    /// Producer batches: offsets are dense, `record_count == last_offset_delta + 1`.
    Dense,
    /// Replicated or recovered batches: compaction may have removed records.
    AllowGaps,
}

/// Validates the batch at the start of `buf` and returns its header. `position` is used only in
/// error messages. Checks the length, magic, `max_message_bytes` (when given), record count and
/// CRC-32C, in that order.
pub(crate) fn validate_batch(
    buf: &[u8],
    position: u64,
    max_message_bytes: Option<u64>,
    count_check: CountCheck,
) -> Result<BatchHeader> {
    let header = BatchHeader::parse(buf).ok_or_else(|| {
        LogError::corrupt(
            position,
            format!("{} bytes is shorter than a batch header", buf.len()),
        )
    })?;
    if (header.batch_length as i64) < (BATCH_HEADER_SIZE - LOG_OVERHEAD) as i64 {
        return Err(LogError::corrupt(
            position,
            format!(
                "batch length {} is below the header size",
                header.batch_length
            ),
        ));
    }
    let size = header.size();
    if size > buf.len() as u64 {
        return Err(LogError::corrupt(
            position,
            format!(
                "batch of {size} bytes runs past the {} bytes available",
                buf.len()
            ),
        ));
    }
    if header.magic != MAGIC_V2 {
        return Err(LogError::invalid(
            position,
            format!(
                "record format magic {} is not supported (only 2)",
                header.magic
            ),
        ));
    }
    if let Some(max) = max_message_bytes {
        if size > max {
            return Err(LogError::RecordTooLarge { size, max });
        }
    }
    if header.last_offset_delta < 0 || header.record_count < 0 {
        return Err(LogError::invalid(
            position,
            format!(
                "negative last offset delta {} or record count {}",
                header.last_offset_delta, header.record_count
            ),
        ));
    }
    let span = i64::from(header.last_offset_delta) + 1;
    let count_ok = match count_check {
        CountCheck::Dense => i64::from(header.record_count) == span,
        CountCheck::AllowGaps => i64::from(header.record_count) <= span,
    };
    if !count_ok {
        return Err(LogError::invalid(
            position,
            format!(
                "record count {} does not match last offset delta {}",
                header.record_count, header.last_offset_delta
            ),
        ));
    }
    let actual = crc32c::crc32c(&buf[CRC_COVERED_FROM..size as usize]);
    if actual != header.crc {
        return Err(LogError::corrupt(
            position,
            format!(
                "CRC-32C mismatch: stored {:#010x}, computed {actual:#010x}",
                header.crc
            ),
        ));
    }
    Ok(header)
}

/// One validated batch inside an append buffer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BatchRef {
    /// Byte position of the batch within the buffer.
    pub position: usize,
    /// Its header.
    pub header: BatchHeader,
}

/// Validates every batch in `buf`; the whole buffer must be whole batches.
pub(crate) fn validate_all(
    buf: &[u8],
    max_message_bytes: Option<u64>,
    count_check: CountCheck,
) -> Result<Vec<BatchRef>> {
    let mut batches = Vec::new();
    let mut position = 0usize;
    while position < buf.len() {
        let header = validate_batch(
            &buf[position..],
            position as u64,
            max_message_bytes,
            count_check,
        )?;
        batches.push(BatchRef { position, header });
        position += header.size() as usize;
    }
    if batches.is_empty() {
        return Err(LogError::invalid(
            0,
            "no record batch in the appended buffer",
        ));
    }
    Ok(batches)
}

/// The header a leader writes for a batch it assigns offsets to: new base offset and leader
/// epoch (outside the CRC) and, under LogAppendTime, the append time as max timestamp with the
/// CRC recomputed over the new header and the untouched records.
pub(crate) fn leader_header(
    batch: &[u8],
    header: &BatchHeader,
    base_offset: i64,
    leader_epoch: i32,
    log_append_time_ms: Option<i64>,
) -> BatchHeader {
    let mut out = *header;
    out.base_offset = base_offset;
    out.partition_leader_epoch = leader_epoch;
    if let Some(now) = log_append_time_ms {
        out.attributes |= ATTR_TIMESTAMP_TYPE;
        out.max_timestamp = now;
        out.crc = crc_with_header(&out, &batch[BATCH_HEADER_SIZE..header.size() as usize]);
    }
    out
}

/// CRC-32C of a batch made of `header` (its CRC field ignored) followed by `records`.
pub(crate) fn crc_with_header(header: &BatchHeader, records: &[u8]) -> u32 {
    let encoded = header.encode();
    let crc = crc32c::crc32c(&encoded[CRC_COVERED_FROM..]);
    crc32c::crc32c_append(crc, records)
}

#[cfg(test)]
pub(crate) mod test_batches {
    //! Batch builders for tests, through the `kafka-protocol` record codec.

    use bytes::{Bytes, BytesMut};
    use kafka_protocol::indexmap::IndexMap;
    use kafka_protocol::records::{
        Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };

    /// One record for [`batch`]: key, value (None = tombstone), timestamp.
    pub type Rec<'a> = (Option<&'a [u8]>, Option<&'a [u8]>, i64);

    /// Encodes the records as one v2 batch with base offset 0.
    pub fn batch(records: &[Rec<'_>], compression: Compression) -> Bytes {
        batch_at(0, records, compression)
    }

    /// Encodes the records as one v2 batch with the given base offset.
    pub fn batch_at(base_offset: i64, records: &[Rec<'_>], compression: Compression) -> Bytes {
        let records: Vec<Record> = records
            .iter()
            .enumerate()
            .map(|(i, (k, v, ts))| Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: -1,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: TimestampType::Creation,
                offset: base_offset + i as i64,
                sequence: -1 + i as i32,
                timestamp: *ts,
                key: k.map(Bytes::copy_from_slice),
                value: v.map(Bytes::copy_from_slice),
                headers: IndexMap::new(),
            })
            .collect();
        let mut buf = BytesMut::new();
        RecordBatchEncoder::encode(
            &mut buf,
            &records,
            &RecordEncodeOptions {
                version: 2,
                compression,
            },
        )
        .expect("test batch encodes");
        buf.freeze()
    }

    /// A batch of `n` uncompressed records with `value_size`-byte values.
    pub fn simple(n: usize, value_size: usize, timestamp: i64) -> Bytes {
        let value = vec![b'v'; value_size];
        let recs: Vec<Rec<'_>> = (0..n)
            .map(|_| (None, Some(&value[..]), timestamp))
            .collect();
        batch(&recs, Compression::None)
    }
}

#[cfg(test)]
mod tests {
    use super::test_batches::*;
    use super::*;

    #[test]
    fn parses_and_validates_a_codec_built_batch() {
        let b = simple(3, 10, 1_000);
        let h = validate_batch(&b, 0, Some(1 << 20), CountCheck::Dense).expect("valid batch");
        assert_eq!(h.magic, 2);
        assert_eq!(h.record_count, 3);
        assert_eq!(h.last_offset_delta, 2);
        assert_eq!(h.size(), b.len() as u64);
        assert_eq!(h.max_timestamp, 1_000);
        assert_eq!(BatchHeader::parse(&h.encode()), Some(h));
    }

    #[test]
    fn each_defect_gets_its_error() {
        let b = simple(2, 10, 1);
        // Flipped record byte: CRC.
        let mut bad = b.to_vec();
        let last = bad.len() - 1;
        bad[last] ^= 0xff;
        assert!(matches!(
            validate_batch(&bad, 0, None, CountCheck::Dense),
            Err(LogError::CorruptRecord { .. })
        ));
        // Truncated.
        assert!(matches!(
            validate_batch(&b[..b.len() - 1], 0, None, CountCheck::Dense),
            Err(LogError::CorruptRecord { .. })
        ));
        // Too large.
        assert!(matches!(
            validate_batch(&b, 0, Some(10), CountCheck::Dense),
            Err(LogError::RecordTooLarge { .. })
        ));
        // Wrong magic.
        let mut old = b.to_vec();
        old[16] = 1;
        assert!(matches!(
            validate_batch(&old, 0, None, CountCheck::Dense),
            Err(LogError::InvalidRecord { .. })
        ));
        // Record count disagreeing with the offset delta (CRC fixed up so only the count is wrong).
        let mut h = BatchHeader::parse(&b).expect("header");
        h.record_count = 5;
        h.crc = crc_with_header(&h, &b[BATCH_HEADER_SIZE..]);
        let mut wrong = h.encode().to_vec();
        wrong.extend_from_slice(&b[BATCH_HEADER_SIZE..]);
        assert!(matches!(
            validate_batch(&wrong, 0, None, CountCheck::AllowGaps),
            Err(LogError::InvalidRecord { .. })
        ));
    }

    #[test]
    fn log_append_time_rewrite_keeps_the_crc_valid() {
        let b = simple(4, 20, 5);
        let h = BatchHeader::parse(&b).expect("header");
        let nh = leader_header(&b, &h, 1234, 7, Some(99_999));
        let mut out = nh.encode().to_vec();
        out.extend_from_slice(&b[BATCH_HEADER_SIZE..]);
        let v = validate_batch(&out, 0, None, CountCheck::Dense).expect("still valid");
        assert_eq!(v.base_offset, 1234);
        assert_eq!(v.partition_leader_epoch, 7);
        assert_eq!(v.max_timestamp, 99_999);
        assert!(v.is_log_append_time());
    }
}
