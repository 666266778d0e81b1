//! The synchronous half of a share-group member: which fetched records the member may hand out
//! (those inside the response's acquired ranges), the acknowledgements it owes the
//! share-partition leaders, and how they travel as Kafka's acknowledgement batches. No I/O.

use std::collections::{BTreeMap, BTreeSet};

use bytes::{Buf, Bytes};
use kafka_protocol::records::{Record, RecordBatchDecoder};

/// How a delivered record is acknowledged (Kafka's `AcknowledgeType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AcknowledgeType {
    /// Processed: never delivered again.
    Accept,
    /// Not processed: available again at once, for any member.
    Release,
    /// Unprocessable: never delivered again (archived).
    Reject,
}

impl AcknowledgeType {
    /// The type's code in acknowledgement batches.
    pub fn code(self) -> i8 {
        match self {
            AcknowledgeType::Accept => 1,
            AcknowledgeType::Release => 2,
            AcknowledgeType::Reject => 3,
        }
    }
}

/// The acknowledgement code of an acquired offset that holds no record the member can hand
/// out (compacted away, or a transaction marker).
pub(crate) const GAP: i8 = 0;

/// A share-partition: (topic id, partition).
pub(crate) type SharePartition = (uuid::Uuid, i32);

/// One acknowledgement batch: offsets `first..=last`, all of one type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AckBatch {
    pub first_offset: i64,
    pub last_offset: i64,
    pub acknowledge_type: i8,
}

/// Consecutive offsets of one type merge into one batch (a batch with a single type applies it
/// to every offset of its range), in offset order.
pub(crate) fn batches(acks: &BTreeMap<i64, i8>) -> Vec<AckBatch> {
    let mut out: Vec<AckBatch> = Vec::new();
    for (&offset, &kind) in acks {
        match out.last_mut() {
            Some(b) if b.acknowledge_type == kind && b.last_offset + 1 == offset => {
                b.last_offset = offset;
            }
            _ => out.push(AckBatch {
                first_offset: offset,
                last_offset: offset,
                acknowledge_type: kind,
            }),
        }
    }
    out
}

/// The acknowledgements not yet sent, per share-partition (offset -> type code). A later
/// acknowledgement of the same offset replaces an earlier one that was not sent.
#[derive(Debug, Default)]
pub(crate) struct PendingAcks(BTreeMap<SharePartition, BTreeMap<i64, i8>>);

impl PendingAcks {
    pub(crate) fn add(&mut self, partition: SharePartition, offset: i64, kind: i8) {
        self.0.entry(partition).or_default().insert(offset, kind);
    }

    /// The share-partitions with acknowledgements to send.
    pub(crate) fn partitions(&self) -> BTreeSet<SharePartition> {
        self.0.keys().copied().collect()
    }

    /// Removes and returns `partition`'s acknowledgements as batches (empty when none).
    pub(crate) fn take(&mut self, partition: &SharePartition) -> Vec<AckBatch> {
        self.0
            .remove(partition)
            .map(|acks| batches(&acks))
            .unwrap_or_default()
    }
}

/// A share-partition's acquired range, as ShareFetch answers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Acquired {
    pub first_offset: i64,
    pub last_offset: i64,
    pub delivery_count: i16,
}

/// Most offsets one partition of one ShareFetch response may acquire: far above what a fetch
/// asks for (`max_records`, plus whole batches), low enough that a broken answer cannot make
/// the member track billions of offsets.
pub(crate) const MAX_ACQUIRED_OFFSETS: i64 = 1 << 20;

/// What one partition of a ShareFetch response hands the member.
#[derive(Debug, Default)]
pub(crate) struct Selected {
    /// The data records inside the acquired ranges, in offset order, with delivery counts.
    pub records: Vec<(Record, i16)>,
    /// Acquired offsets without a data record: acknowledged as GAP, as Kafka's consumer does.
    pub gaps: Vec<i64>,
    /// Acquired offsets inside batches that could not be decoded: rejected, as Kafka's
    /// consumer rejects a corrupt batch.
    pub rejected: Vec<i64>,
}

/// Splits `acquired` over the decoded `records` and the `undecodable` offset ranges.
pub(crate) fn select(
    records: Vec<Record>,
    undecodable: &[(i64, i64)],
    acquired: &[Acquired],
) -> Result<Selected, String> {
    let mut total = 0i64;
    for a in acquired {
        if a.first_offset < 0 || a.last_offset < a.first_offset {
            return Err(format!(
                "acquired range {}..={} is empty or negative",
                a.first_offset, a.last_offset
            ));
        }
        total = total.saturating_add((a.last_offset - a.first_offset).saturating_add(1));
    }
    if total > MAX_ACQUIRED_OFFSETS {
        return Err(format!(
            "{total} acquired offsets in one response (at most {MAX_ACQUIRED_OFFSETS})"
        ));
    }
    let mut by_offset: BTreeMap<i64, Record> = records
        .into_iter()
        .filter(|r| !r.control)
        .map(|r| (r.offset, r))
        .collect();
    let mut out = Selected::default();
    let mut ranges = acquired.to_vec();
    ranges.sort_by_key(|a| a.first_offset);
    for a in ranges {
        for offset in a.first_offset..=a.last_offset {
            if undecodable.iter().any(|(f, l)| (*f..=*l).contains(&offset)) {
                out.rejected.push(offset);
            } else if let Some(r) = by_offset.remove(&offset) {
                out.records.push((r, a.delivery_count));
            } else {
                out.gaps.push(offset);
            }
        }
    }
    Ok(out)
}

/// Bytes of a record batch (v2) header before its records.
const BATCH_HEADER_BYTES: usize = 61;

/// Decodes the whole record batches of `bytes` (a trailing partial batch is ignored, as Kafka
/// clients do). A batch that does not decode is skipped; its offset range is returned beside
/// the records of the others.
pub(crate) fn decode(mut bytes: Bytes) -> (Vec<Record>, Vec<(i64, i64)>) {
    let mut records = Vec::new();
    let mut undecodable = Vec::new();
    while bytes.len() >= BATCH_HEADER_BYTES {
        let base_offset = (&bytes[0..8]).get_i64();
        let length = (&bytes[8..12]).get_i32();
        let last_offset_delta = (&bytes[23..27]).get_i32();
        let Some(size) = usize::try_from(length)
            .ok()
            .and_then(|l| l.checked_add(12))
            .filter(|s| *s >= BATCH_HEADER_BYTES)
        else {
            // The rest cannot be framed: nothing after it can be trusted.
            undecodable.push((
                base_offset,
                base_offset.saturating_add(last_offset_delta.into()),
            ));
            break;
        };
        if size > bytes.len() {
            break;
        }
        let mut batch = bytes.split_to(size);
        // The codec adds timestamp deltas unchecked and panics on overflow where overflow
        // checks are on: a batch it cannot decode is a bad batch, not a dead consumer.
        let decoded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            RecordBatchDecoder::decode(&mut batch)
        }));
        match decoded {
            Ok(Ok(set)) => records.extend(set.records),
            _ => undecodable.push((
                base_offset,
                base_offset.saturating_add(last_offset_delta.into()),
            )),
        }
    }
    (records, undecodable)
}

/// What one ShareFetch changes in a leader's share session.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct SessionChange {
    /// The partitions the request lists: those it adds to the session, and those it carries
    /// acknowledgements for.
    pub listed: BTreeSet<SharePartition>,
    /// The partitions it removes from the session.
    pub forgotten: BTreeSet<SharePartition>,
}

/// The ShareFetch at session `epoch` that makes a session holding `held` fetch `wanted`,
/// acknowledging for `acked`. The request that opens a session (epoch 0) lists everything and
/// acknowledges nothing; a later one lists only what changed (Kafka's incremental share
/// session), and forgets an acknowledged partition it no longer fetches. Either way the
/// session holds `wanted` afterwards.
pub(crate) fn session_change(
    epoch: i32,
    held: &BTreeSet<SharePartition>,
    wanted: &BTreeSet<SharePartition>,
    acked: &BTreeSet<SharePartition>,
) -> SessionChange {
    if epoch == 0 {
        return SessionChange {
            listed: wanted.clone(),
            forgotten: BTreeSet::new(),
        };
    }
    SessionChange {
        listed: wanted.difference(held).chain(acked).copied().collect(),
        forgotten: held
            .union(acked)
            .filter(|tp| !wanted.contains(tp))
            .copied()
            .collect(),
    }
}

/// The share session epoch after `epoch` (Kafka's: 0 opens the session, then 1, 2, ...,
/// wrapping back to 1).
pub(crate) fn next_epoch(epoch: i32) -> i32 {
    if epoch == i32::MAX {
        1
    } else {
        epoch + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use kafka_protocol::records::{
        Compression, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };

    fn record(offset: i64, value: &str) -> Record {
        Record {
            transactional: false,
            control: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset,
            // Offsets and sequences move together, so the encoder keeps them in one batch.
            sequence: offset as i32,
            timestamp: 0,
            key: None,
            value: Some(Bytes::from(value.to_string())),
            headers: Default::default(),
            delete_horizon: false,
        }
    }

    fn encode(records: &[Record]) -> Bytes {
        let mut buf = BytesMut::new();
        RecordBatchEncoder::encode(
            &mut buf,
            records,
            &RecordEncodeOptions {
                version: 2,
                compression: Compression::None,
            },
        )
        .expect("encode a batch");
        buf.freeze()
    }

    fn acquired(first: i64, last: i64, delivery_count: i16) -> Acquired {
        Acquired {
            first_offset: first,
            last_offset: last,
            delivery_count,
        }
    }

    #[test]
    fn consecutive_offsets_of_one_type_merge_into_one_batch() {
        let acks: BTreeMap<i64, i8> = [(5, 1), (6, 1), (7, 1), (9, 1), (10, 2), (11, 2), (12, 1)]
            .into_iter()
            .collect();
        let b = |first_offset, last_offset, acknowledge_type| AckBatch {
            first_offset,
            last_offset,
            acknowledge_type,
        };
        assert_eq!(
            batches(&acks),
            vec![b(5, 7, 1), b(9, 9, 1), b(10, 11, 2), b(12, 12, 1)]
        );
        assert!(batches(&BTreeMap::new()).is_empty());
    }

    #[test]
    fn a_later_acknowledgement_of_an_offset_replaces_the_unsent_one() {
        let tp = (uuid::Uuid::from_u128(7), 0);
        let mut pending = PendingAcks::default();
        for o in 0..4 {
            pending.add(tp, o, AcknowledgeType::Accept.code());
        }
        pending.add(tp, 2, AcknowledgeType::Release.code());
        assert_eq!(pending.partitions(), [tp].into_iter().collect());
        let sent = pending.take(&tp);
        assert_eq!(
            sent.iter()
                .map(|b| (b.first_offset, b.last_offset, b.acknowledge_type))
                .collect::<Vec<_>>(),
            vec![(0, 1, 1), (2, 2, 2), (3, 3, 1)]
        );
        assert!(pending.partitions().is_empty());
        assert!(pending.take(&tp).is_empty());
    }

    #[test]
    fn only_records_inside_acquired_ranges_are_handed_out() {
        // Offsets 0..10 fetched; 2..=4 acquired for the first time, 7..=8 redelivered.
        let records: Vec<Record> = (0..10).map(|o| record(o, &format!("v{o}"))).collect();
        let s = select(records, &[], &[acquired(7, 8, 2), acquired(2, 4, 1)]).expect("select");
        let got: Vec<(i64, i16)> = s.records.iter().map(|(r, d)| (r.offset, *d)).collect();
        assert_eq!(got, vec![(2, 1), (3, 1), (4, 1), (7, 2), (8, 2)]);
        assert!(s.gaps.is_empty() && s.rejected.is_empty());
    }

    #[test]
    fn acquired_offsets_without_a_data_record_are_gaps() {
        // 3 was compacted away; 4 is a transaction marker.
        let mut marker = record(4, "");
        marker.control = true;
        let records = vec![record(2, "a"), marker, record(5, "b")];
        let s = select(records, &[], &[acquired(2, 5, 1)]).expect("select");
        assert_eq!(
            s.records.iter().map(|(r, _)| r.offset).collect::<Vec<_>>(),
            vec![2, 5]
        );
        assert_eq!(s.gaps, vec![3, 4]);
    }

    #[test]
    fn offsets_of_an_undecodable_batch_are_rejected() {
        let s = select(vec![record(0, "a")], &[(1, 3)], &[acquired(0, 4, 1)]).expect("select");
        assert_eq!(s.records.len(), 1);
        assert_eq!(s.rejected, vec![1, 2, 3]);
        assert_eq!(s.gaps, vec![4]);
    }

    #[test]
    fn absurd_acquired_ranges_are_refused() {
        assert!(select(vec![], &[], &[acquired(0, i64::MAX, 1)]).is_err());
        assert!(select(vec![], &[], &[acquired(5, 4, 1)]).is_err());
        assert!(select(vec![], &[], &[acquired(-1, 4, 1)]).is_err());
    }

    #[test]
    fn decode_reads_whole_batches_and_ignores_a_partial_tail() {
        let first = encode(&[record(0, "a"), record(1, "b")]);
        let second = encode(&[record(2, "c")]);
        let mut all = BytesMut::new();
        all.extend_from_slice(&first);
        all.extend_from_slice(&second);
        all.extend_from_slice(&first[..first.len() - 3]);
        let (records, bad) = decode(all.freeze());
        assert_eq!(
            records.iter().map(|r| r.offset).collect::<Vec<_>>(),
            vec![0, 1, 2]
        );
        assert!(bad.is_empty());
    }

    #[test]
    fn a_corrupt_batch_is_reported_by_its_offsets_and_the_rest_decode() {
        let good = encode(&[record(0, "a")]);
        let mut corrupt = BytesMut::from(&encode(&[record(1, "b"), record(2, "c")])[..]);
        // The magic byte: a version the codec does not know.
        corrupt[16] = 9;
        let mut all = BytesMut::new();
        all.extend_from_slice(&good);
        all.extend_from_slice(&corrupt);
        let (records, bad) = decode(all.freeze());
        assert_eq!(records.len(), 1);
        assert_eq!(bad, vec![(1, 2)]);
    }

    #[test]
    fn a_share_session_lists_only_what_changed_after_it_opened() {
        let tp = |p| (uuid::Uuid::from_u128(1), p);
        let set = |ps: &[i32]| ps.iter().map(|p| tp(*p)).collect::<BTreeSet<_>>();
        // Opening: everything, no acknowledgements.
        let open = session_change(0, &set(&[]), &set(&[0, 1]), &set(&[]));
        assert_eq!((open.listed, open.forgotten), (set(&[0, 1]), set(&[])));
        // Steady: nothing listed but the partitions with acknowledgements.
        let steady = session_change(3, &set(&[0, 1]), &set(&[0, 1]), &set(&[1]));
        assert_eq!((steady.listed, steady.forgotten), (set(&[1]), set(&[])));
        // Partition 2 assigned, 0 taken away with acknowledgements still owed: 0 is
        // acknowledged and forgotten in the same request.
        let moved = session_change(4, &set(&[0, 1]), &set(&[1, 2]), &set(&[0]));
        assert_eq!((moved.listed, moved.forgotten), (set(&[0, 2]), set(&[0])));
    }

    #[test]
    fn session_epochs_wrap_to_one() {
        assert_eq!(next_epoch(0), 1);
        assert_eq!(next_epoch(41), 42);
        assert_eq!(next_epoch(i32::MAX), 1);
    }
}
