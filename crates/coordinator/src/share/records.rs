//! The records of `__share_group_state` (KIP-932), in Kafka's layout, so that a share-partition's
//! state reads the same to Kafka's tools: the key is the record type (int16: 0 snapshot, 1
//! update) then `GroupId` (string), `TopicId` (uuid), `Partition` (int32); the value is version
//! 0 then a flexible struct.
//!
//! - `ShareSnapshotValue`: SnapshotEpoch, StateEpoch, LeaderEpoch (int32), StartOffset (int64),
//!   CreateTimestamp, WriteTimestamp (int64), StateBatches; the whole state.
//! - `ShareUpdateValue`: SnapshotEpoch, LeaderEpoch, StartOffset (-1 unchanged), StateBatches;
//!   only the ranges that changed, merged into the state on replay.
//!
//! A state batch is FirstOffset, LastOffset (int64), DeliveryState (int8), DeliveryCount
//! (int16). The key of a share-partition maps to partition `abs(java_hash(key)) %
//! share.coordinator.state.topic.num.partitions` of the topic, where the key string is
//! `group:topicId:partition` (the topic id in Kafka's base64 form).

use bytes::{Buf, BufMut, Bytes, BytesMut};
use odradek_common::Uuid;

use super::partition::{RecordState, ShareState, StateBatch};
use crate::records::flexible::{get_compact_len, put_uvarint, skip_tags};
use crate::records::{get_i16, get_i32, get_str, need, put_str, RecordError};

type Result<T> = std::result::Result<T, RecordError>;

/// The widest in-flight window a share-partition can have (Kafka caps
/// `group.share.partition.max.record.locks` at 10,000): a state never holds offsets past its
/// start offset plus this.
pub const MAX_WINDOW: i64 = 10_000;

/// The internal topic holding share-partition states.
pub const SHARE_STATE_TOPIC: &str = "__share_group_state";

/// Which share-partition a record is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShareStateKey {
    /// Share group id.
    pub group: String,
    /// Topic id.
    pub topic_id: Uuid,
    /// Partition.
    pub partition: i32,
}

impl ShareStateKey {
    /// Kafka's key string, `group:topicId:partition`.
    pub fn coordinator_key(&self) -> String {
        format!("{}:{}:{}", self.group, self.topic_id, self.partition)
    }

    /// The `__share_group_state` partition holding this share-partition's records.
    pub fn state_partition(&self, partitions: i32) -> i32 {
        crate::partition_for(&self.coordinator_key(), partitions)
    }
}

/// A decoded share state record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShareStateRecord {
    /// The whole state (type 0).
    Snapshot {
        /// Snapshots written for this key so far.
        snapshot_epoch: i32,
        /// The share-partition's state epoch (its group's epoch when it was initialised).
        state_epoch: i32,
        /// The leader epoch of the partition leader that wrote it (-1: the coordinator).
        leader_epoch: i32,
        /// SPSO.
        start_offset: i64,
        /// When the first snapshot was written (ms).
        create_timestamp: i64,
        /// When this one was (ms).
        write_timestamp: i64,
        /// In-flight records.
        batches: Vec<StateBatch>,
    },
    /// Changed ranges (type 1).
    Update {
        /// The snapshot this update follows.
        snapshot_epoch: i32,
        /// The leader epoch of the partition leader that wrote it.
        leader_epoch: i32,
        /// SPSO, or -1 when unchanged.
        start_offset: i64,
        /// The changed ranges.
        batches: Vec<StateBatch>,
    },
}

/// Encodes the key of a snapshot (`update` false) or update record.
pub fn encode_key(key: &ShareStateKey, update: bool) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i16(i16::from(update));
    put_str(&mut b, &key.group);
    b.put_slice(key.topic_id.as_bytes());
    b.put_i32(key.partition);
    b.freeze()
}

/// Decodes a key: the share-partition, and whether it is an update.
pub fn decode_key(mut b: Bytes) -> Result<(ShareStateKey, bool)> {
    let update = match get_i16(&mut b, "record type")? {
        0 => false,
        1 => true,
        t => return Err(RecordError(format!("unknown share state record type {t}"))),
    };
    let group = get_str(&mut b, "group")?;
    need(&b, 16, "topic id")?;
    let topic_id =
        Uuid::from_slice(&b.split_to(16)).ok_or_else(|| RecordError("topic id".into()))?;
    let partition = get_i32(&mut b, "partition")?;
    Ok((
        ShareStateKey {
            group,
            topic_id,
            partition,
        },
        update,
    ))
}

fn put_batches(b: &mut BytesMut, batches: &[StateBatch]) {
    put_uvarint(b, batches.len() as u32 + 1);
    for s in batches {
        b.put_i64(s.first_offset);
        b.put_i64(s.last_offset);
        b.put_i8(s.state.value());
        b.put_i16(s.delivery_count);
        put_uvarint(b, 0);
    }
}

fn get_batches(b: &mut Bytes) -> Result<Vec<StateBatch>> {
    let n = get_compact_len(b, "state batches")?;
    let mut out = Vec::with_capacity(n.min(b.remaining() / 20));
    for _ in 0..n {
        need(b, 19, "state batch")?;
        let first_offset = b.get_i64();
        let last_offset = b.get_i64();
        let state = RecordState::from_value(b.get_i8())
            .ok_or_else(|| RecordError("unknown delivery state".into()))?;
        let delivery_count = b.get_i16();
        skip_tags(b)?;
        out.push(StateBatch {
            first_offset,
            last_offset,
            state,
            delivery_count,
        });
    }
    Ok(out)
}

/// Encodes a record's value.
pub fn encode_value(r: &ShareStateRecord) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i16(0);
    match r {
        ShareStateRecord::Snapshot {
            snapshot_epoch,
            state_epoch,
            leader_epoch,
            start_offset,
            create_timestamp,
            write_timestamp,
            batches,
        } => {
            b.put_i32(*snapshot_epoch);
            b.put_i32(*state_epoch);
            b.put_i32(*leader_epoch);
            b.put_i64(*start_offset);
            b.put_i64(*create_timestamp);
            b.put_i64(*write_timestamp);
            put_batches(&mut b, batches);
        }
        ShareStateRecord::Update {
            snapshot_epoch,
            leader_epoch,
            start_offset,
            batches,
        } => {
            b.put_i32(*snapshot_epoch);
            b.put_i32(*leader_epoch);
            b.put_i64(*start_offset);
            put_batches(&mut b, batches);
        }
    }
    put_uvarint(&mut b, 0);
    b.freeze()
}

/// Decodes the value of a snapshot (`update` false) or update record.
pub fn decode_value(update: bool, mut b: Bytes) -> Result<ShareStateRecord> {
    let version = get_i16(&mut b, "value version")?;
    if version != 0 {
        return Err(RecordError(format!("unknown value version {version}")));
    }
    let b = &mut b;
    let r = if update {
        let snapshot_epoch = get_i32(b, "snapshot epoch")?;
        let leader_epoch = get_i32(b, "leader epoch")?;
        need(b, 8, "start offset")?;
        let start_offset = b.get_i64();
        ShareStateRecord::Update {
            snapshot_epoch,
            leader_epoch,
            start_offset,
            batches: get_batches(b)?,
        }
    } else {
        let snapshot_epoch = get_i32(b, "snapshot epoch")?;
        let state_epoch = get_i32(b, "state epoch")?;
        let leader_epoch = get_i32(b, "leader epoch")?;
        need(b, 24, "offsets and timestamps")?;
        let start_offset = b.get_i64();
        let create_timestamp = b.get_i64();
        let write_timestamp = b.get_i64();
        ShareStateRecord::Snapshot {
            snapshot_epoch,
            state_epoch,
            leader_epoch,
            start_offset,
            create_timestamp,
            write_timestamp,
            batches: get_batches(b)?,
        }
    };
    skip_tags(b)?;
    Ok(r)
}

impl ShareStateRecord {
    /// Replays this record into `state` (a share coordinator loading `__share_group_state`): a
    /// snapshot replaces it; an update moves the start offset (unless -1) and overlays its
    /// ranges, where the higher delivery count (then the higher state) wins, as Kafka merges
    /// them. Ranges below the start offset are dropped, and equal neighbours coalesce.
    pub fn apply(&self, state: &mut ShareState) {
        match self {
            ShareStateRecord::Snapshot {
                start_offset,
                batches,
                ..
            } => {
                state.start_offset = *start_offset;
                state.batches = batches.clone();
            }
            ShareStateRecord::Update {
                start_offset,
                batches,
                ..
            } => {
                if *start_offset >= 0 {
                    state.start_offset = *start_offset;
                }
                let mut runs: Vec<StateBatch> = state.batches.clone();
                runs.extend(batches.iter().copied());
                state.batches = merge(runs, state.start_offset);
            }
        }
    }
}

/// Flattens overlapping runs (the higher delivery count, then state value, wins), drops what
/// lies below `start_offset`, and coalesces neighbours with one state and count.
fn merge(runs: Vec<StateBatch>, start_offset: i64) -> Vec<StateBatch> {
    use std::collections::BTreeMap;
    // Per offset: bounded by the in-flight window (group.share.partition.max.record.locks).
    let mut at: BTreeMap<i64, (i16, i8)> = BTreeMap::new();
    // Offsets past the widest window cannot be in flight: a bad record cannot make the merge
    // walk (or keep) more than MAX_WINDOW offsets.
    let window_end = start_offset.saturating_add(MAX_WINDOW);
    for r in runs {
        if r.first_offset > r.last_offset {
            continue;
        }
        for o in r.first_offset.max(start_offset)..=r.last_offset.min(window_end - 1) {
            let v = (r.delivery_count, r.state.value());
            let e = at.entry(o).or_insert(v);
            if v > *e {
                *e = v;
            }
        }
    }
    let mut out: Vec<StateBatch> = Vec::new();
    for (o, (count, state)) in at {
        let state = RecordState::from_value(state).unwrap_or(RecordState::Available);
        match out.last_mut() {
            Some(b) if b.last_offset + 1 == o && b.state == state && b.delivery_count == count => {
                b.last_offset = o
            }
            _ => out.push(StateBatch {
                first_offset: o,
                last_offset: o,
                state,
                delivery_count: count,
            }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> ShareStateKey {
        ShareStateKey {
            group: "g".into(),
            topic_id: Uuid([7; 16]),
            partition: 3,
        }
    }

    fn batches() -> Vec<StateBatch> {
        vec![
            StateBatch {
                first_offset: 10,
                last_offset: 12,
                state: RecordState::Acknowledged,
                delivery_count: 1,
            },
            StateBatch {
                first_offset: 13,
                last_offset: 13,
                state: RecordState::Available,
                delivery_count: 2,
            },
        ]
    }

    #[test]
    fn records_round_trip() {
        for update in [false, true] {
            let (k, u) = decode_key(encode_key(&key(), update)).expect("key");
            assert_eq!((k, u), (key(), update));
        }
        let snapshot = ShareStateRecord::Snapshot {
            snapshot_epoch: 1,
            state_epoch: 4,
            leader_epoch: 7,
            start_offset: 10,
            create_timestamp: 1000,
            write_timestamp: 2000,
            batches: batches(),
        };
        assert_eq!(
            decode_value(false, encode_value(&snapshot)).expect("snapshot"),
            snapshot
        );
        let update = ShareStateRecord::Update {
            snapshot_epoch: 1,
            leader_epoch: 7,
            start_offset: -1,
            batches: batches(),
        };
        assert_eq!(
            decode_value(true, encode_value(&update)).expect("update"),
            update
        );
    }

    #[test]
    fn the_key_has_kafkas_bytes_and_partition() {
        let k = encode_key(&key(), false);
        assert_eq!(&k[..5], &[0, 0, 0, 1, b'g']);
        assert_eq!(&k[5..21], &[7; 16]);
        assert_eq!(&k[21..], &[0, 0, 0, 3]);
        assert_eq!(key().coordinator_key(), format!("g:{}:3", Uuid([7; 16])));
        assert!((0..50).contains(&key().state_partition(50)));
    }

    #[test]
    fn updates_merge_into_the_snapshot() {
        let mut state = ShareState::default();
        ShareStateRecord::Snapshot {
            snapshot_epoch: 0,
            state_epoch: 1,
            leader_epoch: 0,
            start_offset: 10,
            create_timestamp: 0,
            write_timestamp: 0,
            batches: batches(),
        }
        .apply(&mut state);
        // 13 was redelivered and released again (count 3); 14 acknowledged on first delivery;
        // a stale range for 11 with a lower count loses.
        ShareStateRecord::Update {
            snapshot_epoch: 0,
            leader_epoch: 0,
            start_offset: -1,
            batches: vec![
                StateBatch {
                    first_offset: 13,
                    last_offset: 13,
                    state: RecordState::Available,
                    delivery_count: 3,
                },
                StateBatch {
                    first_offset: 14,
                    last_offset: 14,
                    state: RecordState::Acknowledged,
                    delivery_count: 1,
                },
                StateBatch {
                    first_offset: 11,
                    last_offset: 11,
                    state: RecordState::Available,
                    delivery_count: 0,
                },
            ],
        }
        .apply(&mut state);
        assert_eq!(state.start_offset, 10);
        let runs: Vec<(i64, i64, RecordState, i16)> = state
            .batches
            .iter()
            .map(|b| (b.first_offset, b.last_offset, b.state, b.delivery_count))
            .collect();
        assert_eq!(
            runs,
            [
                (10, 12, RecordState::Acknowledged, 1),
                (13, 13, RecordState::Available, 3),
                (14, 14, RecordState::Acknowledged, 1),
            ]
        );
        // The start offset moves past 12: what lies below is dropped.
        ShareStateRecord::Update {
            snapshot_epoch: 0,
            leader_epoch: 0,
            start_offset: 13,
            batches: vec![],
        }
        .apply(&mut state);
        assert_eq!(state.batches[0].first_offset, 13);
    }

    #[test]
    fn truncated_values_are_errors_not_panics() {
        let v = encode_value(&ShareStateRecord::Snapshot {
            snapshot_epoch: 0,
            state_epoch: 0,
            leader_epoch: 0,
            start_offset: 0,
            create_timestamp: 0,
            write_timestamp: 0,
            batches: batches(),
        });
        for n in 0..v.len() {
            assert!(decode_value(false, v.slice(..n)).is_err(), "{n}");
        }
        assert!(decode_key(Bytes::from_static(&[0, 2, 0, 0])).is_err());
    }
}
