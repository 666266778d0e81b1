//! One share-partition (KIP-932): the state a share group keeps for one topic partition on the
//! partition's leader. Records between the share-partition start offset (SPSO) and end offset
//! (SPEO) are in flight, each Available, Acquired by one member under a time-limited lock,
//! Acknowledged, or Archived; everything below the SPSO is done. Members acquire records with
//! ShareFetch and acknowledge them (accept, release, reject) with ShareFetch or
//! ShareAcknowledge; a lock that runs out makes its record Available again, and a record
//! delivered `group.share.delivery.count.limit` times is Archived instead.
//!
//! Synchronous and sans-IO: the caller passes `now` (ms) and the log's bounds, and persists
//! [`SharePartition::state`] (the share coordinator's `__share_group_state`) before it answers
//! an acknowledgement.

use std::collections::BTreeMap;

use odradek_common::ErrorCode;

/// The settings of a share-partition (Kafka's names and defaults).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareConfig {
    /// `group.share.record.lock.duration.ms` (30000): how long a member holds what it acquired.
    pub record_lock_duration_ms: i64,
    /// `group.share.delivery.count.limit` (5): deliveries before a record is archived.
    pub delivery_count_limit: i16,
    /// `group.share.partition.max.record.locks` (2000): records in flight (SPEO - SPSO) at most.
    pub max_record_locks: i64,
}

impl Default for ShareConfig {
    fn default() -> Self {
        Self {
            record_lock_duration_ms: 30_000,
            delivery_count_limit: 5,
            max_record_locks: 2000,
        }
    }
}

/// A record's state, with the values Kafka persists (`DeliveryState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordState {
    /// Can be acquired.
    Available,
    /// Held by a member until its lock runs out.
    Acquired,
    /// Accepted by a member: done.
    Acknowledged,
    /// Rejected, or delivered too often: done, never delivered again.
    Archived,
}

impl RecordState {
    /// The persisted value.
    pub fn value(self) -> i8 {
        match self {
            RecordState::Available => 0,
            RecordState::Acquired => 1,
            RecordState::Acknowledged => 2,
            RecordState::Archived => 4,
        }
    }

    /// The state of a persisted value (`None` for a value Kafka does not define).
    pub fn from_value(v: i8) -> Option<Self> {
        match v {
            0 => Some(RecordState::Available),
            1 => Some(RecordState::Acquired),
            2 => Some(RecordState::Acknowledged),
            4 => Some(RecordState::Archived),
            _ => None,
        }
    }

    fn done(self) -> bool {
        matches!(self, RecordState::Acknowledged | RecordState::Archived)
    }
}

/// How a member acknowledges a record (ShareFetch/ShareAcknowledge `AcknowledgeTypes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcknowledgeType {
    /// No record at that offset (a control record or a compacted one): archived.
    Gap,
    /// Processed.
    Accept,
    /// Give it back for another delivery.
    Release,
    /// Cannot be processed: archived.
    Reject,
    /// Still being processed: the member keeps the record, its lock starting again for the
    /// whole lock duration (KIP-1222; its delivery count stays).
    Renew,
}

impl AcknowledgeType {
    /// The type of a wire value.
    pub fn from_value(v: i8) -> Option<Self> {
        match v {
            0 => Some(AcknowledgeType::Gap),
            1 => Some(AcknowledgeType::Accept),
            2 => Some(AcknowledgeType::Release),
            3 => Some(AcknowledgeType::Reject),
            4 => Some(AcknowledgeType::Renew),
            _ => None,
        }
    }
}

/// Records a member acquired: `first_offset..=last_offset`, delivered `delivery_count` times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AcquiredRecords {
    /// First offset.
    pub first_offset: i64,
    /// Last offset.
    pub last_offset: i64,
    /// Deliveries so far, this one included.
    pub delivery_count: i16,
}

/// A run of records with one state and delivery count, as persisted (`StateBatches`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateBatch {
    /// First offset.
    pub first_offset: i64,
    /// Last offset.
    pub last_offset: i64,
    /// State (acquired records are persisted as available: locks do not survive a leader
    /// change).
    pub state: RecordState,
    /// Deliveries so far.
    pub delivery_count: i16,
}

/// What a share-partition persists: its start offset and the in-flight records that are not
/// simply available after one delivery or none.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ShareState {
    /// The share-partition start offset.
    pub start_offset: i64,
    /// The in-flight records, in order, without gaps.
    pub batches: Vec<StateBatch>,
}

#[derive(Debug, Clone)]
struct InFlight {
    state: RecordState,
    delivery_count: i16,
    /// Member holding it (Acquired only).
    owner: Option<String>,
    /// When its lock runs out (Acquired only).
    lock_deadline: i64,
}

/// One share-partition.
#[derive(Debug, Clone)]
pub struct SharePartition {
    config: ShareConfig,
    /// SPSO: every record below is Acknowledged or Archived.
    start_offset: i64,
    /// SPEO: the first record never acquired.
    end_offset: i64,
    /// Every offset in `start_offset..end_offset`.
    records: BTreeMap<i64, InFlight>,
}

impl SharePartition {
    /// A share-partition that starts at `start_offset` (`share.auto.offset.reset`: the log end
    /// for `latest`, Kafka's default, or the log start for `earliest`).
    pub fn new(config: ShareConfig, start_offset: i64) -> Self {
        Self {
            config,
            start_offset,
            end_offset: start_offset,
            records: BTreeMap::new(),
        }
    }

    /// The share-partition as persisted (after a leader change): acquired records come back
    /// Available with their delivery counts.
    /// A batch reaching past the in-flight window (SPSO + `max_record_locks`) can only come
    /// from a corrupt record: it and what follows are left out.
    pub fn from_state(config: ShareConfig, state: &ShareState) -> Self {
        let window_end = state.start_offset.saturating_add(config.max_record_locks);
        let mut p = Self::new(config, state.start_offset);
        for b in &state.batches {
            if b.last_offset >= window_end {
                break;
            }
            if b.last_offset < p.end_offset || b.first_offset > b.last_offset {
                continue;
            }
            // Offsets between batches were never persisted: available, never delivered.
            for o in p.end_offset..b.first_offset.max(p.end_offset) {
                p.records.insert(o, InFlight::available(0));
            }
            let state = match b.state {
                RecordState::Acquired => RecordState::Available,
                s => s,
            };
            for o in b.first_offset.max(p.end_offset)..=b.last_offset {
                p.records.insert(
                    o,
                    InFlight {
                        state,
                        ..InFlight::available(b.delivery_count)
                    },
                );
            }
            p.end_offset = b.last_offset + 1;
        }
        p.advance();
        p
    }

    /// Sets how long acquisitions and renewals from now on hold a record (the group's
    /// `share.record.lock.duration.ms`, which may change at any time).
    pub fn set_lock_duration_ms(&mut self, ms: i64) {
        self.config.record_lock_duration_ms = ms;
    }

    /// The share-partition start offset (SPSO).
    pub fn start_offset(&self) -> i64 {
        self.start_offset
    }

    /// The share-partition end offset (SPEO).
    pub fn end_offset(&self) -> i64 {
        self.end_offset
    }

    /// Where a read for the next acquisition starts: the first available record in flight
    /// (a redelivery), else the end offset.
    pub fn next_fetch_offset(&self) -> i64 {
        self.records
            .iter()
            .find(|(_, r)| r.state == RecordState::Available)
            .map_or(self.end_offset, |(o, _)| *o)
    }

    /// The state of `offset` and its delivery count (`None` outside the in-flight window).
    pub fn record(&self, offset: i64) -> Option<(RecordState, i16)> {
        self.records
            .get(&offset)
            .map(|r| (r.state, r.delivery_count))
    }

    /// Acquires up to `max_records` below `upper` for `member`: first records given back or
    /// whose lock ran out (redeliveries, in offset order), then new ones, as long as no more
    /// than `group.share.partition.max.record.locks` are in flight. `upper` is the end of what
    /// the caller read from the log (at most the high watermark): nothing is handed out whose
    /// data the answer would not carry. Records below `log_start` are gone from the log and
    /// leave the window.
    pub fn acquire(
        &mut self,
        member: &str,
        now: i64,
        log_start: i64,
        upper: i64,
        max_records: usize,
    ) -> Vec<AcquiredRecords> {
        self.expire_locks(now);
        self.skip_to(log_start);
        let deadline = now + self.config.record_lock_duration_ms;
        let limit = self.config.delivery_count_limit;
        let mut taken: Vec<(i64, i16)> = Vec::new();
        let below = upper.max(self.start_offset);
        for (&o, r) in self.records.range_mut(self.start_offset..below) {
            if taken.len() >= max_records {
                break;
            }
            if r.state != RecordState::Available {
                continue;
            }
            if r.delivery_count >= limit {
                // Loaded at the limit: never delivered again.
                r.state = RecordState::Archived;
                continue;
            }
            r.acquire(member, deadline);
            taken.push((o, r.delivery_count));
        }
        while taken.len() < max_records
            && self.end_offset < upper
            && self.end_offset - self.start_offset < self.config.max_record_locks
        {
            let mut r = InFlight::available(0);
            r.acquire(member, deadline);
            taken.push((self.end_offset, r.delivery_count));
            self.records.insert(self.end_offset, r);
            self.end_offset += 1;
        }
        self.advance();
        ranges(&taken)
    }

    /// Acknowledges `first_offset..=last_offset` for `member`, with one type for the whole
    /// range or one per offset (RENEW keeps a record acquired, its lock starting again). Every
    /// offset must be acquired by `member` under a live lock (else INVALID_RECORD_STATE and
    /// nothing changes); a bad range or type, or an offset past the
    /// end offset, is INVALID_REQUEST; offsets below the start offset are skipped (done).
    pub fn acknowledge(
        &mut self,
        member: &str,
        now: i64,
        first_offset: i64,
        last_offset: i64,
        types: &[i8],
    ) -> Result<(), ErrorCode> {
        self.expire_locks(now);
        let len = last_offset
            .checked_sub(first_offset)
            .and_then(|d| d.checked_add(1))
            .filter(|&n| n > 0)
            .ok_or(ErrorCode::InvalidRequest)?;
        if !(types.len() == 1 || types.len() as i64 == len) {
            return Err(ErrorCode::InvalidRequest);
        }
        let types: Vec<AcknowledgeType> = types
            .iter()
            .map(|t| AcknowledgeType::from_value(*t))
            .collect::<Option<_>>()
            .ok_or(ErrorCode::InvalidRequest)?;
        // Kafka's rules: offsets past the end offset were never handed out (a bad request);
        // offsets below the start offset are done already and skipped.
        if last_offset >= self.end_offset {
            return Err(ErrorCode::InvalidRequest);
        }
        let first = first_offset.max(self.start_offset);
        let skipped = (first - first_offset) as usize;
        // All or nothing: check first.
        for o in first..=last_offset {
            match self.records.get(&o) {
                Some(r)
                    if r.state == RecordState::Acquired && r.owner.as_deref() == Some(member) => {}
                _ => return Err(ErrorCode::InvalidRecordState),
            }
        }
        let limit = self.config.delivery_count_limit;
        for (i, o) in (first..=last_offset).enumerate() {
            let t = if types.len() == 1 {
                types[0]
            } else {
                types[skipped + i]
            };
            if let Some(r) = self.records.get_mut(&o) {
                if t == AcknowledgeType::Renew {
                    r.lock_deadline = now + self.config.record_lock_duration_ms;
                    continue;
                }
                r.owner = None;
                r.state = match t {
                    AcknowledgeType::Renew => RecordState::Acquired,
                    AcknowledgeType::Accept => RecordState::Acknowledged,
                    AcknowledgeType::Gap | AcknowledgeType::Reject => RecordState::Archived,
                    AcknowledgeType::Release if r.delivery_count >= limit => RecordState::Archived,
                    AcknowledgeType::Release => RecordState::Available,
                };
            }
        }
        self.advance();
        Ok(())
    }

    /// `member` left the group: what it holds becomes available again (delivery counts stay).
    pub fn release_member(&mut self, member: &str) {
        let limit = self.config.delivery_count_limit;
        for r in self.records.values_mut() {
            if r.state == RecordState::Acquired && r.owner.as_deref() == Some(member) {
                r.release(limit);
            }
        }
        self.advance();
    }

    /// Locks that ran out by `now`: their records become available again, or archived at the
    /// delivery limit. Returns how many.
    pub fn expire_locks(&mut self, now: i64) -> usize {
        let limit = self.config.delivery_count_limit;
        let mut n = 0;
        for r in self.records.values_mut() {
            if r.state == RecordState::Acquired && r.lock_deadline <= now {
                r.release(limit);
                n += 1;
            }
        }
        if n > 0 {
            self.advance();
        }
        n
    }

    /// When the next lock runs out, if any record is acquired.
    pub fn next_lock_deadline(&self) -> Option<i64> {
        self.records
            .values()
            .filter(|r| r.state == RecordState::Acquired)
            .map(|r| r.lock_deadline)
            .min()
    }

    /// What to persist: the start offset and every in-flight record (acquired ones as
    /// available), in runs.
    pub fn state(&self) -> ShareState {
        let mut batches: Vec<StateBatch> = Vec::new();
        for (&o, r) in &self.records {
            let state = match r.state {
                RecordState::Acquired => RecordState::Available,
                s => s,
            };
            match batches.last_mut() {
                Some(b)
                    if b.last_offset + 1 == o
                        && b.state == state
                        && b.delivery_count == r.delivery_count =>
                {
                    b.last_offset = o;
                }
                _ => batches.push(StateBatch {
                    first_offset: o,
                    last_offset: o,
                    state,
                    delivery_count: r.delivery_count,
                }),
            }
        }
        ShareState {
            start_offset: self.start_offset,
            batches,
        }
    }

    /// Whether an acquisition could hand anything out: a record available again, or room in
    /// the window for a new one.
    pub fn can_acquire(&self) -> bool {
        self.end_offset - self.start_offset < self.config.max_record_locks
            || self
                .records
                .values()
                .any(|r| r.state == RecordState::Available)
    }

    /// Records below `log_start` are no longer in the log (retention, DeleteRecords): the
    /// window starts there.
    pub fn skip_to(&mut self, log_start: i64) {
        if log_start <= self.start_offset {
            return;
        }
        self.records = self.records.split_off(&log_start);
        self.start_offset = log_start;
        self.end_offset = self.end_offset.max(log_start);
    }

    /// Moves the start offset past the records that are done.
    fn advance(&mut self) {
        while let Some(entry) = self.records.first_entry() {
            if *entry.key() != self.start_offset || !entry.get().state.done() {
                break;
            }
            entry.remove();
            self.start_offset += 1;
        }
        debug_assert!(
            self.records.len() as i64 == self.end_offset - self.start_offset,
            "every in-flight offset has a state: SPSO {} SPEO {} records {}",
            self.start_offset,
            self.end_offset,
            self.records.len()
        );
    }
}

impl InFlight {
    fn available(delivery_count: i16) -> Self {
        Self {
            state: RecordState::Available,
            delivery_count,
            owner: None,
            lock_deadline: 0,
        }
    }

    fn acquire(&mut self, member: &str, deadline: i64) {
        self.state = RecordState::Acquired;
        self.delivery_count = self.delivery_count.saturating_add(1);
        self.owner = Some(member.to_string());
        self.lock_deadline = deadline;
    }

    fn release(&mut self, limit: i16) {
        self.owner = None;
        self.state = if self.delivery_count >= limit {
            RecordState::Archived
        } else {
            RecordState::Available
        };
    }
}

/// Consecutive offsets with one delivery count, as ranges.
fn ranges(taken: &[(i64, i16)]) -> Vec<AcquiredRecords> {
    let mut out: Vec<AcquiredRecords> = Vec::new();
    for &(o, count) in taken {
        match out.last_mut() {
            Some(r) if r.last_offset + 1 == o && r.delivery_count == count => r.last_offset = o,
            _ => out.push(AcquiredRecords {
                first_offset: o,
                last_offset: o,
                delivery_count: count,
            }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn config() -> ShareConfig {
        ShareConfig {
            record_lock_duration_ms: 1000,
            delivery_count_limit: 3,
            max_record_locks: 10,
        }
    }

    fn acquired(first: i64, last: i64, count: i16) -> AcquiredRecords {
        AcquiredRecords {
            first_offset: first,
            last_offset: last,
            delivery_count: count,
        }
    }

    #[test]
    fn members_get_disjoint_records_and_accepted_ones_are_done() {
        let mut p = SharePartition::new(config(), 0);
        assert_eq!(p.acquire("a", 0, 0, 6, 3), [acquired(0, 2, 1)]);
        assert_eq!(p.acquire("b", 0, 0, 6, 10), [acquired(3, 5, 1)]);
        assert_eq!(p.acquire("c", 0, 0, 6, 10), []);
        // b cannot acknowledge a's records; nothing changes.
        assert_eq!(
            p.acknowledge("b", 1, 0, 2, &[1]),
            Err(ErrorCode::InvalidRecordState)
        );
        assert_eq!(p.acknowledge("a", 1, 0, 2, &[1]), Ok(()));
        assert_eq!(p.start_offset(), 3);
        // b accepts 3, releases 4, rejects 5: 4 goes to the next member.
        assert_eq!(p.acknowledge("b", 1, 3, 5, &[1, 2, 3]), Ok(()));
        assert_eq!(p.start_offset(), 4);
        assert_eq!(p.acquire("c", 2, 0, 6, 10), [acquired(4, 4, 2)]);
        assert_eq!(p.acknowledge("c", 2, 4, 4, &[1]), Ok(()));
        assert_eq!((p.start_offset(), p.end_offset()), (6, 6));
        assert_eq!(
            p.state(),
            ShareState {
                start_offset: 6,
                batches: vec![]
            }
        );
    }

    #[test]
    fn a_lock_that_runs_out_redelivers_until_the_limit_then_archives() {
        let mut p = SharePartition::new(config(), 10);
        assert_eq!(p.acquire("a", 0, 0, 11, 5), [acquired(10, 10, 1)]);
        assert_eq!(p.next_lock_deadline(), Some(1000));
        assert_eq!(p.acquire("b", 999, 0, 11, 5), []);
        assert_eq!(p.acquire("b", 1000, 0, 11, 5), [acquired(10, 10, 2)]);
        // a's lock is gone: it cannot acknowledge any more.
        assert_eq!(
            p.acknowledge("a", 1001, 10, 10, &[1]),
            Err(ErrorCode::InvalidRecordState)
        );
        assert_eq!(p.acquire("c", 2000, 0, 11, 5), [acquired(10, 10, 3)]);
        // Third delivery was the last: its lock running out archives it.
        assert_eq!(p.expire_locks(3000), 1);
        assert_eq!(p.record(10), None);
        assert_eq!((p.start_offset(), p.end_offset()), (11, 11));
    }

    #[test]
    fn a_renewed_lock_runs_for_the_whole_duration_again_and_only_its_holder_renews() {
        let mut p = SharePartition::new(config(), 0);
        assert_eq!(p.acquire("a", 0, 0, 3, 5), [acquired(0, 2, 1)]);
        // Another member may not renew a's records; nothing changes.
        assert_eq!(
            p.acknowledge("b", 900, 0, 2, &[4]),
            Err(ErrorCode::InvalidRecordState)
        );
        // a renews 0-1 at 900 (until 1900) and accepts 2 in the same batch.
        assert_eq!(p.acknowledge("a", 900, 0, 2, &[4, 4, 1]), Ok(()));
        assert_eq!(p.record(0), Some((RecordState::Acquired, 1)));
        assert_eq!(p.next_lock_deadline(), Some(1900));
        // Past the first lock, within the renewed one: still a's, nothing to acquire.
        assert_eq!(p.acquire("b", 1500, 0, 3, 5), []);
        assert_eq!(p.acknowledge("a", 1600, 0, 0, &[1]), Ok(()));
        // Once the renewed lock runs out, the record goes to the next member (second
        // delivery: renewing did not count as one), and a can no longer renew it.
        assert_eq!(p.acquire("b", 1900, 0, 3, 5), [acquired(1, 1, 2)]);
        assert_eq!(
            p.acknowledge("a", 1901, 1, 1, &[4]),
            Err(ErrorCode::InvalidRecordState)
        );
    }

    #[test]
    fn in_flight_records_are_bounded() {
        let mut p = SharePartition::new(config(), 0);
        assert_eq!(p.acquire("a", 0, 0, 100, 100), [acquired(0, 9, 1)]);
        assert_eq!(p.acquire("b", 0, 0, 100, 100), []);
        p.acknowledge("a", 0, 0, 4, &[1]).expect("acquired by a");
        assert_eq!(p.acquire("b", 0, 0, 100, 100), [acquired(10, 14, 1)]);
    }

    #[test]
    fn a_member_that_leaves_gives_back_its_records() {
        let mut p = SharePartition::new(config(), 0);
        p.acquire("a", 0, 0, 4, 4);
        p.release_member("a");
        assert_eq!(p.acquire("b", 1, 0, 4, 4), [acquired(0, 3, 2)]);
    }

    #[test]
    fn bad_acknowledgements_are_refused() {
        let mut p = SharePartition::new(config(), 0);
        p.acquire("a", 0, 0, 4, 4);
        assert_eq!(
            p.acknowledge("a", 0, 3, 1, &[1]),
            Err(ErrorCode::InvalidRequest)
        );
        assert_eq!(
            p.acknowledge("a", 0, 0, 3, &[1, 1]),
            Err(ErrorCode::InvalidRequest)
        );
        assert_eq!(
            p.acknowledge("a", 0, 0, 3, &[9]),
            Err(ErrorCode::InvalidRequest)
        );
        assert_eq!(
            p.acknowledge("a", 0, 0, 9, &[1]),
            Err(ErrorCode::InvalidRequest)
        );
        assert_eq!(
            p.acknowledge("b", 0, 0, 3, &[1]),
            Err(ErrorCode::InvalidRecordState)
        );
        assert_eq!(
            p.acknowledge("a", 0, i64::MIN, i64::MAX, &[1]),
            Err(ErrorCode::InvalidRequest)
        );
    }

    #[test]
    fn the_persisted_state_brings_back_what_is_in_flight() {
        let mut p = SharePartition::new(config(), 0);
        p.acquire("a", 0, 0, 6, 6);
        p.acknowledge("a", 0, 1, 1, &[1]).expect("acquired");
        p.acknowledge("a", 0, 2, 2, &[3]).expect("acquired");
        p.acknowledge("a", 0, 3, 3, &[2]).expect("acquired");
        let state = p.state();
        assert_eq!(state.start_offset, 0);
        let loaded = SharePartition::from_state(config(), &state);
        assert_eq!(loaded.state(), state);
        // A new leader: what a held (0, 4, 5) and what was released (3) are available again,
        // with their delivery counts; 1 and 2 are done.
        let mut loaded = loaded;
        assert_eq!(
            loaded.acquire("b", 0, 0, 6, 10),
            [acquired(0, 0, 2), acquired(3, 5, 2)]
        );
        assert_eq!(loaded.record(1), Some((RecordState::Acknowledged, 1)));
    }

    #[test]
    fn nothing_is_acquired_past_what_was_read() {
        let mut p = SharePartition::new(config(), 0);
        p.acquire("a", 0, 0, 6, 6);
        p.acknowledge("a", 0, 1, 1, &[2]).expect("acquired");
        p.acknowledge("a", 0, 4, 4, &[2]).expect("acquired");
        // The read covered offsets 0..3 only: 4 stays available for a later fetch.
        assert_eq!(p.acquire("b", 0, 0, 3, 10), [acquired(1, 1, 2)]);
        assert_eq!(p.acquire("b", 0, 0, 6, 10), [acquired(4, 4, 2)]);
    }

    #[test]
    fn records_gone_from_the_log_leave_the_window() {
        let mut p = SharePartition::new(config(), 0);
        p.acquire("a", 0, 0, 5, 5);
        assert_eq!(p.acquire("b", 0, 3, 8, 10), [acquired(5, 7, 1)]);
        assert_eq!(p.start_offset(), 3);
        // Below the start offset: done already, skipped. Straddling it: only a's part counts.
        assert_eq!(p.acknowledge("a", 0, 0, 0, &[1]), Ok(()));
        assert_eq!(p.acknowledge("a", 0, 1, 4, &[2, 2, 1, 1]), Ok(()));
        assert_eq!(p.record(3), None);
        assert_eq!(p.start_offset(), 5);
    }

    proptest! {
        /// Under any interleaving of acquires, acknowledgements, leaves and time, checked
        /// against a model of the locks: a record is never acquired while another member's
        /// lock on it holds (a renewed lock holding for its whole duration again), only the
        /// holder of a live lock can acknowledge or renew it, no record is
        /// delivered more than the limit, the window stays within the in-flight bound, and
        /// the persisted state loads back to itself.
        #[test]
        fn invariants_hold(ops in proptest::collection::vec((0u8..5, 0u8..3, 0i64..12, 1usize..5, 0u8..5), 1..80)) {
            let cfg = config();
            let mut p = SharePartition::new(cfg.clone(), 0);
            let mut now = 0i64;
            // Offset -> (member, lock deadline), as the model sees the locks.
            let mut locks: BTreeMap<i64, (String, i64)> = BTreeMap::new();
            for (op, m, off, n, t) in ops {
                let member = format!("m{m}");
                now += 100;
                match op {
                    0 | 1 => {
                        for r in p.acquire(&member, now, 0, 40, n) {
                            prop_assert!(r.delivery_count <= cfg.delivery_count_limit);
                            for o in r.first_offset..=r.last_offset {
                                if let Some((holder, deadline)) = locks.get(&o) {
                                    prop_assert!(*deadline <= now, "{o} still locked by {holder}");
                                }
                                locks.insert(o, (member.clone(), now + cfg.record_lock_duration_ms));
                            }
                        }
                    }
                    2 => {
                        let first = p.start_offset() + off % 4;
                        let last = first + n as i64 - 1;
                        // Locks that ran out go first (the acknowledgement does that too):
                        // offsets they moved the start past are skipped, not refused.
                        p.expire_locks(now);
                        let from = first.max(p.start_offset());
                        let held = last < p.end_offset()
                            && (from..=last).all(|o| {
                                locks.get(&o).is_some_and(|(h, d)| *h == member && *d > now)
                            });
                        let done = p.acknowledge(&member, now, first, last, &[t as i8]);
                        prop_assert_eq!(done.is_ok(), held, "ack {}..={} by {}", first, last, member);
                        if done.is_ok() {
                            for o in from..=last {
                                if t == 4 {
                                    // RENEW: the holder keeps it, for a whole lock again.
                                    locks.insert(o, (member.clone(), now + cfg.record_lock_duration_ms));
                                } else {
                                    locks.remove(&o);
                                }
                            }
                        }
                    }
                    3 => {
                        p.release_member(&member);
                        locks.retain(|_, (h, _)| *h != member);
                    }
                    _ => now += 600,
                }
                prop_assert!(p.end_offset() - p.start_offset() <= cfg.max_record_locks);
                let loaded = SharePartition::from_state(cfg.clone(), &p.state());
                prop_assert_eq!(loaded.state(), p.state());
                for o in p.start_offset()..p.end_offset() {
                    let (_, c) = p.record(o).expect("every in-flight offset has a state");
                    prop_assert!(c <= cfg.delivery_count_limit);
                }
            }
        }
    }
}
