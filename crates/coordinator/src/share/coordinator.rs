//! The share coordinator's state machine (KIP-932) for one partition of
//! `__share_group_state`: the persisted state of every share-partition whose key maps there.
//! Partition leaders initialise, read and write it (InitializeShareGroupState,
//! ReadShareGroupState, WriteShareGroupState); each call returns the records to append, and the
//! caller answers once they are committed. Loading the partition replays its records.
//!
//! Writes become ShareUpdate records, merged into the state; every
//! `share.coordinator.snapshot.update.records.per.snapshot` (500) updates of a key, a
//! ShareSnapshot holds the whole state instead. A read or write from a leader epoch older than
//! the last one seen is FENCED_LEADER_EPOCH (a partition's new leader fences the old one);
//! a write or initialisation with an older state epoch is FENCED_STATE_EPOCH.

use std::collections::HashMap;

use bytes::Bytes;
use odradek_common::ErrorCode;

use super::partition::{ShareState, StateBatch};
use super::records::{
    decode_key, decode_value, encode_key, encode_value, ShareStateKey, ShareStateRecord,
};

/// A record to append: key, value (`None`: tombstone).
pub type Record = (Bytes, Option<Bytes>);

/// What a leader reads back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadState {
    /// The state epoch.
    pub state_epoch: i32,
    /// The persisted state (SPSO and in-flight batches).
    pub state: ShareState,
}

#[derive(Debug, Clone, Default)]
struct Entry {
    state: ShareState,
    state_epoch: i32,
    leader_epoch: i32,
    snapshot_epoch: i32,
    updates_since_snapshot: u32,
    create_timestamp: i64,
}

/// The share-partition states of one `__share_group_state` partition.
#[derive(Debug, Default)]
pub struct ShareStates {
    entries: HashMap<ShareStateKey, Entry>,
    updates_per_snapshot: u32,
}

impl ShareStates {
    /// No states yet; a snapshot replaces the updates every `updates_per_snapshot` writes.
    pub fn new(updates_per_snapshot: u32) -> Self {
        Self {
            entries: HashMap::new(),
            updates_per_snapshot,
        }
    }

    /// How many share-partitions this partition holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Applies one record of the partition (loading, or after appending it).
    pub fn replay(&mut self, key: Bytes, value: Option<Bytes>) {
        let Ok((key, update)) = decode_key(key) else {
            return;
        };
        let Some(value) = value else {
            self.entries.remove(&key);
            return;
        };
        let Ok(record) = decode_value(update, value) else {
            return;
        };
        let e = self.entries.entry(key).or_default();
        match &record {
            ShareStateRecord::Snapshot {
                snapshot_epoch,
                state_epoch,
                leader_epoch,
                create_timestamp,
                ..
            } => {
                e.snapshot_epoch = *snapshot_epoch;
                e.state_epoch = *state_epoch;
                e.leader_epoch = *leader_epoch;
                e.create_timestamp = *create_timestamp;
                e.updates_since_snapshot = 0;
            }
            ShareStateRecord::Update { leader_epoch, .. } => {
                e.leader_epoch = e.leader_epoch.max(*leader_epoch);
                e.updates_since_snapshot += 1;
            }
        }
        record.apply(&mut e.state);
    }

    /// InitializeShareGroupState: a fresh state at `start_offset` (-1: the leader picks it by
    /// `share.auto.offset.reset` when it first reads), in a snapshot.
    pub fn initialize(
        &self,
        now: i64,
        key: &ShareStateKey,
        state_epoch: i32,
        start_offset: i64,
    ) -> Result<Vec<Record>, ErrorCode> {
        let previous = self.entries.get(key);
        if previous.is_some_and(|e| state_epoch < e.state_epoch) {
            return Err(ErrorCode::FencedStateEpoch);
        }
        Ok(vec![self.snapshot(
            key,
            previous.map_or(0, |e| e.snapshot_epoch + 1),
            state_epoch,
            -1,
            now,
            previous.map_or(now, |e| e.create_timestamp),
            ShareState {
                start_offset,
                batches: Vec::new(),
            },
        )])
    }

    /// ReadShareGroupState from the partition's leader at `leader_epoch`: its state, and the
    /// record that notes a newer leader epoch (fencing the previous leader's writes).
    pub fn read(
        &self,
        now: i64,
        key: &ShareStateKey,
        leader_epoch: i32,
    ) -> Result<(ReadState, Vec<Record>), ErrorCode> {
        let e = self.entries.get(key).ok_or(ErrorCode::InvalidRequest)?;
        if leader_epoch < e.leader_epoch {
            return Err(ErrorCode::FencedLeaderEpoch);
        }
        let records = if leader_epoch > e.leader_epoch {
            vec![self.update(key, e, leader_epoch, -1, &[], now)]
        } else {
            Vec::new()
        };
        Ok((
            ReadState {
                state_epoch: e.state_epoch,
                state: e.state.clone(),
            },
            records,
        ))
    }

    /// WriteShareGroupState: the leader's start offset and changed (or all) in-flight batches.
    pub fn write(
        &self,
        now: i64,
        key: &ShareStateKey,
        state_epoch: i32,
        leader_epoch: i32,
        start_offset: i64,
        batches: &[StateBatch],
    ) -> Result<Vec<Record>, ErrorCode> {
        let e = self.entries.get(key).ok_or(ErrorCode::InvalidRequest)?;
        if leader_epoch < e.leader_epoch {
            return Err(ErrorCode::FencedLeaderEpoch);
        }
        if state_epoch < e.state_epoch {
            return Err(ErrorCode::FencedStateEpoch);
        }
        // Batches in order, each within the widest in-flight window past the start offset.
        let start = if start_offset >= 0 {
            start_offset
        } else {
            e.state.start_offset
        };
        let window_end = start.saturating_add(super::records::MAX_WINDOW);
        let mut previous = i64::MIN;
        for b in batches {
            if b.first_offset > b.last_offset
                || b.first_offset <= previous
                || b.last_offset >= window_end
            {
                return Err(ErrorCode::InvalidRequest);
            }
            previous = b.last_offset;
        }
        Ok(vec![self.update(
            key,
            e,
            leader_epoch,
            start_offset,
            batches,
            now,
        )])
    }

    /// DeleteShareGroupState: the key's tombstones.
    pub fn delete(&self, key: &ShareStateKey) -> Vec<Record> {
        if !self.entries.contains_key(key) {
            return Vec::new();
        }
        vec![
            (encode_key(key, false), None),
            (encode_key(key, true), None),
        ]
    }

    /// An update, or a snapshot of the merged state when enough updates piled up.
    fn update(
        &self,
        key: &ShareStateKey,
        e: &Entry,
        leader_epoch: i32,
        start_offset: i64,
        batches: &[StateBatch],
        now: i64,
    ) -> Record {
        let update = ShareStateRecord::Update {
            snapshot_epoch: e.snapshot_epoch,
            leader_epoch,
            start_offset,
            batches: batches.to_vec(),
        };
        if e.updates_since_snapshot + 1 < self.updates_per_snapshot {
            return (encode_key(key, true), Some(encode_value(&update)));
        }
        let mut state = e.state.clone();
        update.apply(&mut state);
        self.snapshot(
            key,
            e.snapshot_epoch + 1,
            e.state_epoch,
            leader_epoch.max(e.leader_epoch),
            now,
            e.create_timestamp,
            state,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn snapshot(
        &self,
        key: &ShareStateKey,
        snapshot_epoch: i32,
        state_epoch: i32,
        leader_epoch: i32,
        now: i64,
        create_timestamp: i64,
        state: ShareState,
    ) -> Record {
        (
            encode_key(key, false),
            Some(encode_value(&ShareStateRecord::Snapshot {
                snapshot_epoch,
                state_epoch,
                leader_epoch,
                start_offset: state.start_offset,
                create_timestamp,
                write_timestamp: now,
                batches: state.batches,
            })),
        )
    }
}

#[cfg(test)]
mod tests {
    use odradek_common::Uuid;

    use super::*;
    use crate::share::partition::RecordState;

    fn key() -> ShareStateKey {
        ShareStateKey {
            group: "g".into(),
            topic_id: Uuid([1; 16]),
            partition: 0,
        }
    }

    fn apply(s: &mut ShareStates, records: Vec<Record>) {
        for (k, v) in records {
            s.replay(k, v);
        }
    }

    fn batch(first: i64, last: i64, state: RecordState, count: i16) -> StateBatch {
        StateBatch {
            first_offset: first,
            last_offset: last,
            state,
            delivery_count: count,
        }
    }

    #[test]
    fn initialise_read_write_and_fence() {
        let mut s = ShareStates::new(3);
        assert_eq!(s.read(0, &key(), 0), Err(ErrorCode::InvalidRequest));
        let recs = s.initialize(0, &key(), 1, 100).expect("initialised");
        apply(&mut s, recs);
        let (r, recs) = s.read(1, &key(), 5).expect("read");
        assert_eq!((r.state_epoch, r.state.start_offset), (1, 100));
        apply(&mut s, recs);
        // The leader at epoch 5 fenced any older one.
        assert_eq!(s.read(1, &key(), 4), Err(ErrorCode::FencedLeaderEpoch));
        assert_eq!(
            s.write(1, &key(), 1, 4, 100, &[]),
            Err(ErrorCode::FencedLeaderEpoch)
        );
        assert_eq!(
            s.write(1, &key(), 0, 5, 100, &[]),
            Err(ErrorCode::FencedStateEpoch)
        );
        let w = s
            .write(
                2,
                &key(),
                1,
                5,
                100,
                &[
                    batch(100, 101, RecordState::Acknowledged, 1),
                    batch(102, 102, RecordState::Available, 2),
                ],
            )
            .expect("written");
        apply(&mut s, w);
        let recs = s.write(3, &key(), 1, 5, 102, &[]).expect("written");
        apply(&mut s, recs);
        let (r, _) = s.read(4, &key(), 5).expect("read");
        assert_eq!(r.state.start_offset, 102);
        assert_eq!(
            r.state.batches,
            [batch(102, 102, RecordState::Available, 2)]
        );
    }

    #[test]
    fn bad_batches_are_refused() {
        let mut s = ShareStates::new(3);
        let recs = s.initialize(0, &key(), 1, 100).expect("initialised");
        apply(&mut s, recs);
        for bad in [
            vec![batch(5, 4, RecordState::Available, 1)],
            vec![
                batch(100, 105, RecordState::Available, 1),
                batch(104, 106, RecordState::Available, 1),
            ],
            vec![batch(100, i64::MAX, RecordState::Available, 1)],
        ] {
            assert_eq!(
                s.write(1, &key(), 1, 0, 100, &bad),
                Err(ErrorCode::InvalidRequest)
            );
        }
    }

    #[test]
    fn snapshots_replace_updates_and_the_log_rebuilds_the_same_state() {
        let mut s = ShareStates::new(3);
        let mut log = Vec::new();
        let mut step = |s: &mut ShareStates, recs: Vec<Record>| {
            log.extend(recs.clone());
            apply(s, recs);
        };
        let recs = s.initialize(0, &key(), 1, 0).expect("initialised");
        step(&mut s, recs);
        for i in 0..7i64 {
            let recs = s
                .write(
                    i,
                    &key(),
                    1,
                    0,
                    i,
                    &[batch(i, i, RecordState::Available, 1)],
                )
                .expect("written");
            step(&mut s, recs);
        }
        // Updates and snapshots alternate: some records are snapshots (type 0).
        assert!(log.iter().skip(1).any(|(k, _)| k[1] == 0));
        let mut loaded = ShareStates::new(3);
        apply(&mut loaded, log);
        assert_eq!(
            loaded.read(9, &key(), 0).expect("read").0,
            s.read(9, &key(), 0).expect("read").0
        );
        let (r, _) = loaded.read(9, &key(), 0).expect("read");
        assert_eq!(r.state.start_offset, 6);
        assert_eq!(r.state.batches, [batch(6, 6, RecordState::Available, 1)]);
        let recs = loaded.delete(&key());
        apply(&mut loaded, recs);
        assert!(loaded.is_empty());
    }
}
