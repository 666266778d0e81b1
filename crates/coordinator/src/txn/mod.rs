//! The transaction coordinator's state machine (KIP-98, with Kafka's transaction version 1
//! rules: one epoch per producer session, markers carry the producer's epoch).
//!
//! Transactional ids live in the internal compacted topic `__transaction_state`: the id `t`
//! belongs to partition `abs(java_hash(t)) % transaction.state.log.num.partitions`, and that
//! partition's leader is its coordinator. For each partition it leads, a broker keeps one
//! [`Transactions`], rebuilt by replaying the partition's records. A call that changes a
//! transaction returns the [`Transition`] to write: the transaction is marked pending (other
//! calls answer CONCURRENT_TRANSACTIONS) until the broker reports the record committed
//! ([`Transactions::complete`]) or failed ([`Transactions::fail`]).
//!
//! States, as Kafka numbers them in the log: Empty 0, Ongoing 1, PrepareCommit 2,
//! PrepareAbort 3, CompleteCommit 4, CompleteAbort 5, Dead 6, PrepareEpochFence 7.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use odradek_common::ErrorCode;

mod records;
pub use records::encode_key;
use records::{decode_key, decode_value, encode_value};

/// The internal topic holding transaction state.
pub const TRANSACTION_STATE_TOPIC: &str = "__transaction_state";

/// The largest epoch before a producer id is replaced (Kafka: `Short.MAX_VALUE - 1`).
const MAX_EPOCH: i16 = i16::MAX - 1;

/// A transaction's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnState {
    /// No transaction open.
    Empty,
    /// Partitions were added; data may be written.
    Ongoing,
    /// EndTxn(commit) accepted; markers being written.
    PrepareCommit,
    /// EndTxn(abort) accepted, or a timeout or fence aborts it; markers being written.
    PrepareAbort,
    /// Every commit marker was written.
    CompleteCommit,
    /// Every abort marker was written.
    CompleteAbort,
    /// The transactional id expired.
    Dead,
    /// A newer producer session fences this one (an abort follows).
    PrepareEpochFence,
}

impl TxnState {
    /// Kafka's number for the state, as written in `__transaction_state`.
    pub fn id(self) -> i8 {
        match self {
            TxnState::Empty => 0,
            TxnState::Ongoing => 1,
            TxnState::PrepareCommit => 2,
            TxnState::PrepareAbort => 3,
            TxnState::CompleteCommit => 4,
            TxnState::CompleteAbort => 5,
            TxnState::Dead => 6,
            TxnState::PrepareEpochFence => 7,
        }
    }

    fn from_id(id: i8) -> Option<TxnState> {
        Some(match id {
            0 => TxnState::Empty,
            1 => TxnState::Ongoing,
            2 => TxnState::PrepareCommit,
            3 => TxnState::PrepareAbort,
            4 => TxnState::CompleteCommit,
            5 => TxnState::CompleteAbort,
            6 => TxnState::Dead,
            7 => TxnState::PrepareEpochFence,
            _ => return None,
        })
    }

    /// Kafka's name for the state (ListTransactions, DescribeTransactions).
    pub fn name(self) -> &'static str {
        match self {
            TxnState::Empty => "Empty",
            TxnState::Ongoing => "Ongoing",
            TxnState::PrepareCommit => "PrepareCommit",
            TxnState::PrepareAbort => "PrepareAbort",
            TxnState::CompleteCommit => "CompleteCommit",
            TxnState::CompleteAbort => "CompleteAbort",
            TxnState::Dead => "Dead",
            TxnState::PrepareEpochFence => "PrepareEpochFence",
        }
    }
}

/// One transactional id's state, as its record stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnMetadata {
    /// The transactional id.
    pub transactional_id: String,
    /// The current producer id.
    pub producer_id: i64,
    /// Its epoch (-1 before the first InitProducerId completes).
    pub producer_epoch: i16,
    /// `transaction.timeout.ms` the producer asked for.
    pub timeout_ms: i32,
    /// The state.
    pub state: TxnState,
    /// The partitions in the transaction (topic, partition).
    pub partitions: BTreeSet<(String, i32)>,
    /// When the open transaction started (-1: none).
    pub start_ms: i64,
    /// When the state last changed.
    pub last_update_ms: i64,
}

/// A record to write for a transaction; the transaction is pending until it is committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// The state to take once the record is committed.
    pub target: TxnMetadata,
}

impl Transition {
    /// The record's key and value.
    pub fn record(&self) -> (Bytes, Option<Bytes>) {
        (
            encode_key(&self.target.transactional_id),
            Some(encode_value(&self.target)),
        )
    }
}

/// What a transaction needs from the broker once a transition is committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FollowUp {
    /// Nothing.
    None,
    /// Write commit (or abort) markers to these partitions for the producer, then
    /// [`Transactions::markers_written`].
    WriteMarkers {
        /// The transactional id.
        transactional_id: String,
        /// Producer id and epoch for the markers.
        producer_id: i64,
        /// The epoch.
        producer_epoch: i16,
        /// Commit or abort.
        commit: bool,
        /// The partitions.
        partitions: Vec<(String, i32)>,
    },
}

#[derive(Debug, Clone)]
struct Entry {
    meta: TxnMetadata,
    /// A transition written but not yet committed.
    pending: Option<TxnMetadata>,
    /// The epoch before the last bump a producer asked for with its current id and epoch
    /// (KIP-360): a retry of that InitProducerId is answered the current epoch, not fenced.
    last_epoch: i16,
}

/// Settings the coordinator applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnConfig {
    /// `transaction.max.timeout.ms` (900000): larger timeouts are INVALID_TRANSACTION_TIMEOUT.
    pub max_timeout_ms: i32,
    /// `transactional.id.expiration.ms` (604800000).
    pub id_expiration_ms: i64,
}

impl Default for TxnConfig {
    fn default() -> Self {
        Self {
            max_timeout_ms: 900_000,
            id_expiration_ms: 604_800_000,
        }
    }
}

/// The transactions of one `__transaction_state` partition.
#[derive(Debug, Clone, Default)]
pub struct Transactions {
    config: TxnConfig,
    txns: BTreeMap<String, Entry>,
}

/// The answer to InitProducerId.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitResult {
    /// Write the transition; once committed answer this id and epoch.
    Write(i64, i16),
    /// Refused with this error (CONCURRENT_TRANSACTIONS is retriable).
    Error(ErrorCode),
}

impl Transactions {
    /// Empty, under `config`.
    pub fn new(config: TxnConfig) -> Self {
        Self {
            config,
            txns: BTreeMap::new(),
        }
    }

    /// Replays a record of the partition (load): the latest value wins, a tombstone deletes.
    /// Returns false for a record it cannot read (skipped; the caller says so).
    pub fn replay(&mut self, key: &[u8], value: Option<&[u8]>) -> bool {
        let Some(id) = decode_key(key) else {
            return false;
        };
        match value.map(|v| decode_value(&id, v)) {
            Some(Some(meta)) => {
                self.txns.insert(
                    id,
                    Entry {
                        meta,
                        pending: None,
                        last_epoch: -1,
                    },
                );
                true
            }
            Some(None) => false,
            None => {
                self.txns.remove(&id);
                true
            }
        }
    }

    /// The state of `transactional_id`.
    pub fn get(&self, transactional_id: &str) -> Option<&TxnMetadata> {
        self.txns.get(transactional_id).map(|e| &e.meta)
    }

    /// Every transaction of the partition.
    pub fn all(&self) -> impl Iterator<Item = &TxnMetadata> {
        self.txns.values().map(|e| &e.meta)
    }

    /// Whether InitProducerId for `transactional_id` needs a fresh producer id (an unknown id,
    /// or an epoch about to overflow).
    pub fn needs_new_producer_id(&self, transactional_id: &str) -> bool {
        self.txns
            .get(transactional_id)
            .is_none_or(|e| e.meta.producer_epoch >= MAX_EPOCH)
    }

    /// InitProducerId with a transactional id. `fresh_id` is a newly allocated producer id
    /// when [`Transactions::needs_new_producer_id`] said so. `expected` is the producer id
    /// and epoch a producer sends to resume (KIP-360; -1 when none).
    pub fn init_producer_id(
        &mut self,
        now: i64,
        transactional_id: &str,
        timeout_ms: i32,
        expected: (i64, i16),
        fresh_id: Option<i64>,
    ) -> (InitResult, Option<Transition>) {
        if timeout_ms <= 0 || timeout_ms > self.config.max_timeout_ms {
            return (
                InitResult::Error(ErrorCode::InvalidTransactionTimeout),
                None,
            );
        }
        let Some(entry) = self.txns.get_mut(transactional_id) else {
            let Some(pid) = fresh_id else {
                return (
                    InitResult::Error(ErrorCode::CoordinatorLoadInProgress),
                    None,
                );
            };
            let target = TxnMetadata {
                transactional_id: transactional_id.to_string(),
                producer_id: pid,
                producer_epoch: 0,
                timeout_ms,
                state: TxnState::Empty,
                partitions: BTreeSet::new(),
                start_ms: -1,
                last_update_ms: now,
            };
            let placeholder = TxnMetadata {
                producer_epoch: -1,
                ..target.clone()
            };
            self.txns.insert(
                transactional_id.to_string(),
                Entry {
                    meta: placeholder,
                    pending: Some(target.clone()),
                    last_epoch: -1,
                },
            );
            return (InitResult::Write(pid, 0), Some(Transition { target }));
        };
        if entry.pending.is_some() {
            return (InitResult::Error(ErrorCode::ConcurrentTransactions), None);
        }
        let meta = &entry.meta;
        if expected.0 >= 0 && (expected.0 != meta.producer_id || expected.1 != meta.producer_epoch)
        {
            let ended = matches!(
                meta.state,
                TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort
            );
            if expected.0 == meta.producer_id && expected.1 == entry.last_epoch && ended {
                // A retry of the bump it asked for (its answer was lost): the same answer.
                return (
                    InitResult::Write(meta.producer_id, meta.producer_epoch),
                    None,
                );
            }
            // KIP-360: a producer resuming with an id and epoch that are no longer current.
            return (InitResult::Error(ErrorCode::ProducerFenced), None);
        }
        entry.last_epoch = if expected.0 >= 0 {
            meta.producer_epoch
        } else {
            -1
        };
        let meta = &entry.meta;
        match meta.state {
            TxnState::PrepareCommit | TxnState::PrepareAbort | TxnState::PrepareEpochFence => {
                (InitResult::Error(ErrorCode::ConcurrentTransactions), None)
            }
            TxnState::Ongoing => {
                // A new session of the same transactional id fences the old one: its open
                // transaction is aborted under a bumped epoch, and this caller retries.
                let transition = Self::abort_with_bump(meta, now);
                entry.pending = Some(transition.target.clone());
                (
                    InitResult::Error(ErrorCode::ConcurrentTransactions),
                    Some(transition),
                )
            }
            TxnState::Empty
            | TxnState::CompleteCommit
            | TxnState::CompleteAbort
            | TxnState::Dead => {
                let (pid, epoch) = match fresh_id {
                    Some(pid) if meta.producer_epoch >= MAX_EPOCH => (pid, 0),
                    _ => (meta.producer_id, meta.producer_epoch.saturating_add(1)),
                };
                let target = TxnMetadata {
                    producer_id: pid,
                    producer_epoch: epoch,
                    timeout_ms,
                    state: TxnState::Empty,
                    partitions: BTreeSet::new(),
                    start_ms: -1,
                    last_update_ms: now,
                    ..meta.clone()
                };
                entry.pending = Some(target.clone());
                (InitResult::Write(pid, epoch), Some(Transition { target }))
            }
        }
    }

    fn abort_with_bump(meta: &TxnMetadata, now: i64) -> Transition {
        Transition {
            target: TxnMetadata {
                producer_epoch: meta.producer_epoch.saturating_add(1),
                state: TxnState::PrepareAbort,
                last_update_ms: now,
                ..meta.clone()
            },
        }
    }

    /// Checks a client call's producer id and epoch (Kafka: INVALID_PRODUCER_ID_MAPPING for an
    /// unknown id or another producer id, PRODUCER_FENCED for another epoch,
    /// CONCURRENT_TRANSACTIONS while a transition is pending).
    fn check_producer(
        &self,
        transactional_id: &str,
        producer_id: i64,
        epoch: i16,
    ) -> Result<&TxnMetadata, ErrorCode> {
        let entry = self
            .txns
            .get(transactional_id)
            .ok_or(ErrorCode::InvalidProducerIdMapping)?;
        if entry.meta.producer_id != producer_id {
            return Err(ErrorCode::InvalidProducerIdMapping);
        }
        if entry.meta.producer_epoch != epoch {
            return Err(ErrorCode::ProducerFenced);
        }
        if entry.pending.is_some() {
            return Err(ErrorCode::ConcurrentTransactions);
        }
        Ok(&entry.meta)
    }

    /// AddPartitionsToTxn (and AddOffsetsToTxn, with the group's `__consumer_offsets`
    /// partition): `Ok(None)` when they are already in the open transaction.
    pub fn add_partitions(
        &mut self,
        now: i64,
        transactional_id: &str,
        producer_id: i64,
        epoch: i16,
        partitions: &[(String, i32)],
    ) -> Result<Option<Transition>, ErrorCode> {
        let meta = self.check_producer(transactional_id, producer_id, epoch)?;
        match meta.state {
            TxnState::PrepareCommit | TxnState::PrepareAbort | TxnState::PrepareEpochFence => {
                return Err(ErrorCode::ConcurrentTransactions)
            }
            TxnState::Dead => return Err(ErrorCode::InvalidProducerIdMapping),
            _ => {}
        }
        if meta.state == TxnState::Ongoing && partitions.iter().all(|p| meta.partitions.contains(p))
        {
            return Ok(None);
        }
        let mut target = meta.clone();
        if target.state != TxnState::Ongoing {
            target.partitions.clear();
            target.start_ms = now;
        }
        target.state = TxnState::Ongoing;
        target.partitions.extend(partitions.iter().cloned());
        target.last_update_ms = now;
        self.set_pending(transactional_id, &target);
        Ok(Some(Transition { target }))
    }

    fn set_pending(&mut self, transactional_id: &str, target: &TxnMetadata) {
        if let Some(e) = self.txns.get_mut(transactional_id) {
            e.pending = Some(target.clone());
        }
    }

    /// EndTxn: `Ok(Some)` writes PrepareCommit/PrepareAbort (the client is answered once it is
    /// committed; the markers follow), `Ok(None)` answers a retry of an ended transaction at
    /// once. Kafka's errors: INVALID_TXN_STATE for an end that does not match the state,
    /// CONCURRENT_TRANSACTIONS while the previous end is still writing markers.
    pub fn end_txn(
        &mut self,
        now: i64,
        transactional_id: &str,
        producer_id: i64,
        epoch: i16,
        commit: bool,
    ) -> Result<Option<Transition>, ErrorCode> {
        let meta = self.check_producer(transactional_id, producer_id, epoch)?;
        let target_state = if commit {
            TxnState::PrepareCommit
        } else {
            TxnState::PrepareAbort
        };
        match (meta.state, commit) {
            (TxnState::Ongoing, _) => {}
            (TxnState::CompleteCommit, true) | (TxnState::CompleteAbort, false) => return Ok(None),
            (TxnState::PrepareCommit, true) | (TxnState::PrepareAbort, false) => {
                return Err(ErrorCode::ConcurrentTransactions)
            }
            (TxnState::PrepareEpochFence, _) => return Err(ErrorCode::ConcurrentTransactions),
            _ => return Err(ErrorCode::InvalidTxnState),
        }
        let target = TxnMetadata {
            state: target_state,
            last_update_ms: now,
            ..meta.clone()
        };
        self.set_pending(transactional_id, &target);
        Ok(Some(Transition { target }))
    }

    /// The transition's record was committed: it takes effect. Returns what must follow
    /// (markers after a Prepare state).
    pub fn complete(&mut self, transition: &Transition) -> FollowUp {
        let t = &transition.target;
        let Some(e) = self.txns.get_mut(&t.transactional_id) else {
            return FollowUp::None;
        };
        if e.pending.as_ref() != Some(t) {
            return FollowUp::None;
        }
        e.pending = None;
        e.meta = t.clone();
        Self::follow_up(t)
    }

    fn follow_up(t: &TxnMetadata) -> FollowUp {
        match t.state {
            TxnState::PrepareCommit | TxnState::PrepareAbort => FollowUp::WriteMarkers {
                transactional_id: t.transactional_id.clone(),
                producer_id: t.producer_id,
                producer_epoch: t.producer_epoch,
                commit: t.state == TxnState::PrepareCommit,
                partitions: t.partitions.iter().cloned().collect(),
            },
            _ => FollowUp::None,
        }
    }

    /// The transition's record could not be written: the transaction stays as it was (a new
    /// id whose first record failed is forgotten).
    pub fn fail(&mut self, transition: &Transition) {
        let id = &transition.target.transactional_id;
        if let Some(e) = self.txns.get_mut(id) {
            if e.pending.as_ref() == Some(&transition.target) {
                e.pending = None;
                if e.meta.producer_epoch < 0 {
                    self.txns.remove(id);
                }
            }
        }
    }

    /// Every marker of a Prepare state was written: the transaction completes.
    pub fn markers_written(
        &mut self,
        now: i64,
        transactional_id: &str,
        producer_id: i64,
        epoch: i16,
    ) -> Option<Transition> {
        let e = self.txns.get_mut(transactional_id)?;
        let m = &e.meta;
        if e.pending.is_some() || m.producer_id != producer_id || m.producer_epoch != epoch {
            return None;
        }
        let state = match m.state {
            TxnState::PrepareCommit => TxnState::CompleteCommit,
            TxnState::PrepareAbort => TxnState::CompleteAbort,
            _ => return None,
        };
        let target = TxnMetadata {
            state,
            partitions: BTreeSet::new(),
            start_ms: -1,
            last_update_ms: now,
            ..m.clone()
        };
        e.pending = Some(target.clone());
        Some(Transition { target })
    }

    /// Transactions loaded in a Prepare state (the previous coordinator died before writing
    /// every marker): their markers are written again.
    pub fn unfinished(&self) -> Vec<FollowUp> {
        self.txns
            .values()
            .filter(|e| e.pending.is_none())
            .map(|e| Self::follow_up(&e.meta))
            .filter(|f| *f != FollowUp::None)
            .collect()
    }

    /// Open transactions past their timeout are aborted under a bumped epoch (fencing the
    /// producer, as Kafka does), and ids idle past `transactional.id.expiration.ms` removed.
    /// Returns the transitions to write and the ids to delete (tombstones).
    pub fn expire(&mut self, now: i64) -> (Vec<Transition>, Vec<Bytes>) {
        let mut aborts = Vec::new();
        let mut expired = Vec::new();
        for (id, e) in &mut self.txns {
            if e.pending.is_some() {
                continue;
            }
            let m = &e.meta;
            if m.state == TxnState::Ongoing
                && m.start_ms >= 0
                && now.saturating_sub(m.start_ms) > i64::from(m.timeout_ms)
            {
                let t = Self::abort_with_bump(m, now);
                e.pending = Some(t.target.clone());
                aborts.push(t);
            } else if matches!(
                m.state,
                TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort
            ) && now.saturating_sub(m.last_update_ms) > self.config.id_expiration_ms
            {
                expired.push(id.clone());
            }
        }
        let tombstones = expired
            .iter()
            .map(|id| {
                self.txns.remove(id);
                encode_key(id)
            })
            .collect();
        (aborts, tombstones)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(t: &str, i: i32) -> (String, i32) {
        (t.to_string(), i)
    }

    /// Writes and commits a transition, as the broker does.
    fn commit(t: &mut Transactions, tr: Option<Transition>) -> FollowUp {
        t.complete(&tr.expect("a transition"))
    }

    #[test]
    fn a_transaction_runs_init_add_end_markers_complete() {
        let mut t = Transactions::new(TxnConfig::default());
        let (r, tr) = t.init_producer_id(0, "tx", 60_000, (-1, -1), Some(1000));
        assert_eq!(r, InitResult::Write(1000, 0));
        commit(&mut t, tr);
        let tr = t
            .add_partitions(1, "tx", 1000, 0, &[p("a", 0)])
            .expect("add");
        // While the record is being written, others wait.
        assert_eq!(
            t.add_partitions(1, "tx", 1000, 0, &[p("b", 0)]),
            Err(ErrorCode::ConcurrentTransactions)
        );
        commit(&mut t, tr);
        assert_eq!(t.add_partitions(2, "tx", 1000, 0, &[p("a", 0)]), Ok(None));
        let tr = t
            .add_partitions(2, "tx", 1000, 0, &[p("b", 1)])
            .expect("add b");
        commit(&mut t, tr);
        let tr = t.end_txn(3, "tx", 1000, 0, true).expect("end");
        let follow = commit(&mut t, tr);
        assert_eq!(
            follow,
            FollowUp::WriteMarkers {
                transactional_id: "tx".into(),
                producer_id: 1000,
                producer_epoch: 0,
                commit: true,
                partitions: vec![p("a", 0), p("b", 1)],
            }
        );
        assert_eq!(
            t.end_txn(3, "tx", 1000, 0, true),
            Err(ErrorCode::ConcurrentTransactions)
        );
        assert_eq!(
            t.end_txn(3, "tx", 1000, 0, false),
            Err(ErrorCode::InvalidTxnState)
        );
        let done = t.markers_written(4, "tx", 1000, 0);
        commit(&mut t, done);
        assert_eq!(t.get("tx").expect("tx").state, TxnState::CompleteCommit);
        assert_eq!(t.end_txn(5, "tx", 1000, 0, true), Ok(None), "a retry");
        assert_eq!(
            t.end_txn(5, "tx", 1000, 0, false),
            Err(ErrorCode::InvalidTxnState)
        );
        // Wrong producer or epoch.
        assert_eq!(
            t.add_partitions(5, "tx", 7, 0, &[p("a", 0)]),
            Err(ErrorCode::InvalidProducerIdMapping)
        );
        assert_eq!(
            t.add_partitions(5, "tx", 1000, 3, &[p("a", 0)]),
            Err(ErrorCode::ProducerFenced)
        );
        assert_eq!(
            t.end_txn(5, "nope", 1000, 0, true),
            Err(ErrorCode::InvalidProducerIdMapping)
        );
    }

    #[test]
    fn a_new_session_bumps_the_epoch_and_aborts_an_open_transaction() {
        let mut t = Transactions::new(TxnConfig::default());
        let tr = t.init_producer_id(0, "tx", 60_000, (-1, -1), Some(5)).1;
        commit(&mut t, tr);
        let tr = t.add_partitions(1, "tx", 5, 0, &[p("a", 0)]).expect("add");
        commit(&mut t, tr);
        // The zombie's successor starts: the open transaction is aborted under epoch 1.
        let (r, tr) = t.init_producer_id(2, "tx", 60_000, (-1, -1), None);
        assert_eq!(r, InitResult::Error(ErrorCode::ConcurrentTransactions));
        let follow = commit(&mut t, tr);
        assert!(matches!(
            follow,
            FollowUp::WriteMarkers {
                commit: false,
                producer_epoch: 1,
                ..
            }
        ));
        // The zombie is fenced.
        assert_eq!(
            t.end_txn(3, "tx", 5, 0, true),
            Err(ErrorCode::ProducerFenced)
        );
        let tr = t.markers_written(3, "tx", 5, 1);
        commit(&mut t, tr);
        let (r, tr) = t.init_producer_id(4, "tx", 60_000, (-1, -1), None);
        assert_eq!(r, InitResult::Write(5, 2));
        commit(&mut t, tr);
        // KIP-360: resuming with the current epoch bumps it; a retry of that bump gets the same
        // answer; an older epoch is fenced.
        let (r, tr) = t.init_producer_id(5, "tx", 60_000, (5, 2), None);
        assert_eq!(r, InitResult::Write(5, 3));
        commit(&mut t, tr);
        let (r, tr) = t.init_producer_id(5, "tx", 60_000, (5, 2), None);
        assert_eq!((r, tr), (InitResult::Write(5, 3), None));
        let (r, _) = t.init_producer_id(5, "tx", 60_000, (5, 1), None);
        assert_eq!(r, InitResult::Error(ErrorCode::ProducerFenced));
        let (r, _) = t.init_producer_id(5, "tx", 0, (-1, -1), None);
        assert_eq!(r, InitResult::Error(ErrorCode::InvalidTransactionTimeout));
    }

    #[test]
    fn timeouts_abort_and_records_round_trip_through_replay() {
        let mut t = Transactions::new(TxnConfig::default());
        let tr = t.init_producer_id(0, "tx", 1_000, (-1, -1), Some(9)).1;
        commit(&mut t, tr);
        let tr = t
            .add_partitions(10, "tx", 9, 0, &[p("a", 0), p("a", 1)])
            .expect("add");
        let (k, v) = tr.as_ref().expect("a transition").record();
        commit(&mut t, tr);
        let mut replayed = Transactions::new(TxnConfig::default());
        replayed.replay(&k, v.as_deref());
        assert_eq!(replayed.get("tx"), t.get("tx"));
        let (aborts, _) = t.expire(500);
        assert!(aborts.is_empty());
        let (aborts, _) = t.expire(1_011);
        assert_eq!(aborts.len(), 1);
        assert_eq!(aborts[0].target.state, TxnState::PrepareAbort);
        assert_eq!(aborts[0].target.producer_epoch, 1);
        // A coordinator that loads a Prepare state finishes it.
        let (k, v) = aborts[0].record();
        let mut loaded = Transactions::new(TxnConfig::default());
        loaded.replay(&k, v.as_deref());
        assert!(matches!(
            &loaded.unfinished()[..],
            [FollowUp::WriteMarkers { commit: false, .. }]
        ));
        loaded.replay(&k, None);
        assert!(loaded.get("tx").is_none(), "a tombstone deletes");
        assert!(decode_value("x", &[0, 0, 1]).is_none());
    }
}
