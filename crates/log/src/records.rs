//! Building and reading Kafka record batches, for programs that embed the log and have no Kafka
//! producer in front of it. A thin layer over the `kafka-protocol` record codec; the log itself
//! never decodes records on its append and read paths.

use bytes::{Bytes, BytesMut};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::protocol::StrBytes;
pub use kafka_protocol::records::{Compression, Record};
use kafka_protocol::records::{RecordBatchEncoder, RecordEncodeOptions, TimestampType};

use crate::batch::BatchHeader;
use crate::error::{LogError, Result};

/// A record to be written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewRecord {
    /// The key (`None` for a keyless record).
    pub key: Option<Bytes>,
    /// The value (`None` is a tombstone on compacted topics).
    pub value: Option<Bytes>,
    /// Creation time, milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
    /// Headers, in order. Keys must be UTF-8 (Kafka header keys are strings); a repeated key
    /// keeps its last value here, as the codec models headers as a map.
    pub headers: Vec<(String, Option<Bytes>)>,
}

impl NewRecord {
    /// A record with a value and a timestamp.
    pub fn value(value: impl Into<Bytes>, timestamp_ms: i64) -> Self {
        Self {
            value: Some(value.into()),
            timestamp_ms,
            ..Self::default()
        }
    }

    /// A record with a key, a value and a timestamp.
    pub fn keyed(key: impl Into<Bytes>, value: impl Into<Bytes>, timestamp_ms: i64) -> Self {
        Self {
            key: Some(key.into()),
            value: Some(value.into()),
            timestamp_ms,
            headers: Vec::new(),
        }
    }
}

/// The producer fields of a batch from an idempotent (or transactional) producer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerBatch {
    /// The producer id from InitProducerId.
    pub producer_id: i64,
    /// Its epoch.
    pub producer_epoch: i16,
    /// The sequence of the batch's first record.
    pub base_sequence: i32,
    /// Whether the batch belongs to a transaction.
    pub transactional: bool,
}

/// Encodes `records` as one record batch (magic 2) with offsets `0..n`, as a non-idempotent
/// producer would send it. [`crate::Log::append_as_leader`] assigns the real offsets.
pub fn encode_batch(records: &[NewRecord], compression: Compression) -> Result<Bytes> {
    encode(records, compression, None)
}

/// [`encode_batch`] for an idempotent or transactional producer.
pub fn encode_producer_batch(
    records: &[NewRecord],
    compression: Compression,
    producer: ProducerBatch,
) -> Result<Bytes> {
    encode(records, compression, Some(producer))
}

fn encode(
    records: &[NewRecord],
    compression: Compression,
    producer: Option<ProducerBatch>,
) -> Result<Bytes> {
    if records.is_empty() {
        return Err(LogError::invalid(
            0,
            "a record batch needs at least one record",
        ));
    }
    let records: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(i, r)| Record {
            transactional: producer.is_some_and(|p| p.transactional),
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: producer.map_or(-1, |p| p.producer_id),
            producer_epoch: producer.map_or(-1, |p| p.producer_epoch),
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // `offset - sequence` is constant so the codec keeps all records in one batch;
            // without a producer the encoded base sequence is -1 (no idempotence).
            sequence: match producer {
                Some(p) => p.base_sequence.wrapping_add(i as i32),
                None => (i as i32).wrapping_sub(1),
            },
            timestamp: r.timestamp_ms,
            key: r.key.clone(),
            value: r.value.clone(),
            headers: r
                .headers
                .iter()
                .map(|(k, v)| (StrBytes::from_string(k.clone()), v.clone()))
                .collect::<IndexMap<_, _>>(),
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
    .map_err(|e| LogError::invalid(0, format!("cannot encode records: {e}")))?;
    Ok(buf.freeze())
}

/// Decodes every record of every batch in `bytes` (for example a [`crate::ReadResult`]'s
/// bytes), decompressing as needed and checking each batch's CRC.
pub fn decode_batches(bytes: Bytes) -> Result<Vec<Record>> {
    let mut buf = bytes;
    let mut out = Vec::new();
    let mut position = 0u64;
    while !buf.is_empty() {
        let size = BatchHeader::parse(&buf)
            .map(|h| h.size())
            .filter(|size| *size <= buf.len() as u64)
            .ok_or_else(|| LogError::corrupt(position, "not a whole record batch"))?;
        let batch = buf.split_to(size as usize);
        let (records, _) = crate::cleaner::decode_records(batch, position)?;
        position += size;
        out.extend(records);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_then_decode_round_trips() {
        let recs = vec![
            NewRecord::keyed("k", "v", 5),
            NewRecord {
                headers: vec![("h".into(), Some(Bytes::from_static(b"1")))],
                ..NewRecord::value("w", 6)
            },
        ];
        for c in [Compression::None, Compression::Zstd] {
            let b = encode_batch(&recs, c).expect("encode");
            let mut two = b.to_vec();
            two.extend_from_slice(&b);
            let got = decode_batches(Bytes::from(two)).expect("decode");
            assert_eq!(got.len(), 4);
            assert_eq!(got[0].key.as_deref(), Some(&b"k"[..]));
            assert_eq!(got[1].value.as_deref(), Some(&b"w"[..]));
            assert_eq!(got[1].headers.len(), 1);
            assert_eq!(got[1].timestamp, 6);
        }
        assert!(encode_batch(&[], Compression::None).is_err());
        assert!(decode_batches(Bytes::from_static(b"garbage")).is_err());
    }

    #[test]
    fn a_timestamp_delta_that_overflows_is_an_error_not_a_panic() {
        for c in [Compression::None, Compression::Lz4] {
            let b = encode_batch(&[NewRecord::value("a", 0), NewRecord::value("b", 5)], c)
                .expect("encode");
            let mut header = BatchHeader::parse(&b).expect("header");
            // The second record's delta (5) added to a base timestamp near i64::MAX overflows.
            header.base_timestamp = i64::MAX - 1;
            header.crc = crate::batch::crc_with_header(&header, &b[crate::BATCH_HEADER_SIZE..]);
            let mut forged = b.to_vec();
            forged[..crate::BATCH_HEADER_SIZE].copy_from_slice(&header.encode());
            let e = decode_batches(Bytes::from(forged)).expect_err("refused");
            assert!(e.to_string().contains("overflows"), "{e}");
        }
    }

    #[test]
    fn a_record_count_the_payload_cannot_hold_is_refused_before_allocating() {
        for c in [Compression::None, Compression::Gzip] {
            let b = encode_batch(&[NewRecord::value("v", 1)], c).expect("encode");
            let mut header = BatchHeader::parse(&b).expect("header");
            // Two billion records in a few bytes: an error, not a reservation of ~100 GB.
            header.record_count = 2_000_000_000;
            header.crc = crate::batch::crc_with_header(&header, &b[crate::BATCH_HEADER_SIZE..]);
            let mut forged = b.to_vec();
            forged[..crate::BATCH_HEADER_SIZE].copy_from_slice(&header.encode());
            let e = decode_batches(Bytes::from(forged)).expect_err("refused");
            assert!(e.to_string().contains("cannot fit"), "{e}");
        }
    }
}
