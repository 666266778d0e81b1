//! The invariants, each a named check over the whole simulated cluster. Every step checks the
//! cheap ones; every few steps and at the end the ones that read logs.

use std::collections::BTreeMap;
use std::sync::Arc;

use odradek_metadata::{MetadataImage, PartitionRegistration};

use odradek_replication::Role;

use crate::broker::{batch_headers, SimBroker};
use crate::client::Producer;
use crate::consumer::{Consumer, Observation};
use crate::controller::SimController;
use crate::copier::{copied_from, Copier};
use crate::message::TopicPartition;

/// What was seen so far, to check the next state against.
#[derive(Debug, Default)]
pub struct Checker {
    /// (partition, leader epoch) -> the broker that led under it.
    leaders: BTreeMap<(TopicPartition, i32), i32>,
    /// Committed batches per partition: base offset -> (last offset, CRC).
    committed: BTreeMap<TopicPartition, BTreeMap<i64, (i64, u32)>>,
    /// The highest high watermark any leader had, per partition: everything below it was
    /// committed.
    committed_end: BTreeMap<TopicPartition, i64>,
    /// Who recorded each committed batch (broker, leader epoch), for the report.
    committed_by: BTreeMap<(TopicPartition, i64), (i32, i32)>,
    /// The high watermark each replica had, per broker incarnation.
    high_watermarks: BTreeMap<(i32, u64, TopicPartition), i64>,
    /// The first image any node applied at each metadata offset: every other node's image at
    /// that offset must equal it.
    images: BTreeMap<i64, Arc<MetadataImage>>,
    /// The offset up to which each controller's images were checked.
    checked_voter_images: BTreeMap<u64, i64>,
    /// Partition leader changes committed (new leader epochs in the metadata log).
    pub leader_changes: u64,
    /// Partition changes committed since the world last took them, for the trace.
    pub partition_changes: Vec<String>,
}

/// A broken invariant: its name and what was seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The invariant's name.
    pub invariant: &'static str,
    /// What broke it.
    pub detail: String,
}

fn violation(invariant: &'static str, detail: String) -> Violation {
    Violation { invariant, detail }
}

impl Checker {
    /// Records committed batches as leaders' high watermarks pass them, and checks the
    /// invariants that need no full log read.
    pub fn check_step(
        &mut self,
        now: i64,
        brokers: &[SimBroker],
        controllers: &[SimController],
    ) -> Result<(), Violation> {
        for c in controllers {
            let from = self
                .checked_voter_images
                .get(&c.voter.id)
                .copied()
                .unwrap_or(0);
            for (offset, image) in c.voter.images.range(from + 1..) {
                self.metadata_images_agree(&format!("controller {}", c.voter.id), *offset, image)?;
            }
            if let Some((last, _)) = c.voter.images.iter().next_back() {
                self.checked_voter_images.insert(c.voter.id, *last);
            }
            if let Some(e) = c.voter.errors.first() {
                return Err(violation("metadata_records_replay", e.clone()));
            }
        }
        for b in brokers.iter().filter(|b| b.up) {
            for (tp, r) in &b.replicas {
                let p = &r.partition;
                if p.role() == Role::Leader {
                    self.at_most_one_leader_per_epoch(b.id, *tp, p.leader_epoch())?;
                }
            }
            for (tp, hw) in &b.leader_high_watermarks {
                self.record_committed(b, *tp, *hw)?;
            }
        }
        for b in brokers.iter().filter(|b| b.up) {
            for (tp, r) in &b.replicas {
                self.high_watermark_never_goes_back(b, *tp, r.partition.high_watermark())?;
                if r.partition.role() != Role::Leader {
                    self.followers_never_expose_past_the_leaders_high_watermark(b, *tp)?;
                }
            }
            if b.image.offset >= 1 {
                self.metadata_images_agree(&format!("broker {}", b.id), b.image.offset, &b.image)?;
            }
            if let Some(e) = b.errors.first() {
                return Err(violation(
                    "replicas_never_fail",
                    format!("at {now} ms: {e}"),
                ));
            }
        }
        Ok(())
    }

    fn at_most_one_leader_per_epoch(
        &mut self,
        broker: i32,
        tp: TopicPartition,
        epoch: i32,
    ) -> Result<(), Violation> {
        let leader = *self.leaders.entry((tp, epoch)).or_insert(broker);
        if leader != broker {
            return Err(violation(
                "at_most_one_leader_per_epoch",
                format!(
                    "{}-{} epoch {epoch}: brokers {leader} and {broker} both lead",
                    tp.0, tp.1
                ),
            ));
        }
        Ok(())
    }

    /// A leader's high watermark passed batches: they are committed, and a batch committed
    /// before at the same offset must be the same batch.
    fn record_committed(
        &mut self,
        b: &SimBroker,
        tp: TopicPartition,
        hw: i64,
    ) -> Result<(), Violation> {
        let Some(r) = b.replicas.get(&tp) else {
            return Ok(());
        };
        let p = &r.partition;
        let end = self.committed_end.entry(tp).or_insert(0);
        if hw <= *end {
            return Ok(());
        }
        let from = *end;
        let headers = batch_headers(p.log(), from, hw).map_err(|e| {
            violation(
                "committed_records_are_readable",
                format!("broker {} {}-{}: {e}", b.id, tp.0, tp.1),
            )
        })?;
        let reached = headers.last().map_or(from, |h| h.next_offset());
        if reached < hw {
            return Err(violation(
                "committed_records_are_readable",
                format!(
                    "broker {} {}-{}: high watermark {hw}, but its log holds batches only up to {reached}",
                    b.id, tp.0, tp.1
                ),
            ));
        }
        let committed = self.committed.entry(tp).or_default();
        for h in headers {
            if let Some((last, crc)) = committed.get(&h.base_offset) {
                if (*last, *crc) != (h.last_offset(), h.crc) {
                    return Err(violation(
                        "committed_records_never_change",
                        format!(
                            "{}-{} offset {}: committed batch (last {last}, crc {crc:#x}), leader {} now has (last {}, crc {:#x})",
                            tp.0, tp.1, h.base_offset, b.id, h.last_offset(), h.crc
                        ),
                    ));
                }
            }
            committed.insert(h.base_offset, (h.last_offset(), h.crc));
            self.committed_by
                .insert((tp, h.base_offset), (b.id, p.leader_epoch()));
        }
        *end = hw;
        Ok(())
    }

    fn high_watermark_never_goes_back(
        &mut self,
        b: &SimBroker,
        tp: TopicPartition,
        hw: i64,
    ) -> Result<(), Violation> {
        let seen = self
            .high_watermarks
            .entry((b.id, b.incarnation, tp))
            .or_insert(hw);
        if hw < *seen {
            return Err(violation(
                "high_watermark_never_goes_back",
                format!(
                    "broker {} {}-{}: high watermark {} after {}",
                    b.id, tp.0, tp.1, hw, *seen
                ),
            ));
        }
        *seen = hw;
        Ok(())
    }

    fn followers_never_expose_past_the_leaders_high_watermark(
        &self,
        b: &SimBroker,
        tp: TopicPartition,
    ) -> Result<(), Violation> {
        let hw = b.replicas[&tp].partition.high_watermark();
        let leaders = self.committed_end.get(&tp).copied().unwrap_or(0);
        // A replica restarted from its checkpoint may hold a high watermark no leader of this
        // run reported yet only if it was one before; in this run every HW comes from a leader.
        if hw > leaders {
            return Err(violation(
                "followers_never_expose_past_the_leaders_high_watermark",
                format!(
                    "broker {} {}-{}: high watermark {hw}, no leader's passed {leaders}",
                    b.id, tp.0, tp.1
                ),
            ));
        }
        Ok(())
    }

    /// Every replica's log below its high watermark agrees with the committed batches, and the
    /// leader of the latest epoch holds everything committed (it was elected from the ISR).
    pub fn check_logs(&self, brokers: &[SimBroker]) -> Result<(), Violation> {
        for b in brokers.iter().filter(|b| b.up) {
            for (tp, r) in &b.replicas {
                let p = &r.partition;
                let end = self.committed_end.get(tp).copied().unwrap_or(0);
                let Some(committed) = self.committed.get(tp) else {
                    continue;
                };
                // Only the leader of the latest epoch: a deposed leader that has not heard of
                // its successor yet may lag what its successor committed.
                let is_latest = self.latest_leader_epoch(*tp) == Some(p.leader_epoch());
                if p.role() == Role::Leader && is_latest && p.log().log_end_offset() < end {
                    return Err(violation(
                        "committed_records_are_never_lost",
                        format!(
                            "broker {} leads {}-{} (epoch {}) with log end {} below the committed {end}",
                            b.id, tp.0, tp.1, p.leader_epoch(), p.log().log_end_offset()
                        ),
                    ));
                }
                // Below its own high watermark a replica holds only committed batches; above
                // it, a replica may hold a tail it has yet to truncate (it led, or followed a
                // leader, under an epoch that did not commit it).
                let upper = p.high_watermark().min(end);
                let headers = batch_headers(p.log(), 0, upper).map_err(|e| {
                    violation(
                        "committed_records_are_readable",
                        format!("broker {} {}-{}: {e}", b.id, tp.0, tp.1),
                    )
                })?;
                for h in headers {
                    let Some((last, crc)) = committed.get(&h.base_offset) else {
                        continue;
                    };
                    if (*last, *crc) != (h.last_offset(), h.crc) {
                        return Err(violation(
                            "committed_records_never_change",
                            format!(
                                "broker {} {}-{} offset {}: has (last {}, crc {:#x}, epoch {}), committed (last {last}, crc {crc:#x}) by (broker, epoch) {:?}",
                                b.id, tp.0, tp.1, h.base_offset, h.last_offset(), h.crc, h.partition_leader_epoch,
                                self.committed_by.get(&(*tp, h.base_offset))
                            ),
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// What a consumer saw: batches read in order from its position, each one committed as
    /// read (consumers read below the high watermark), and a committed offset that is the
    /// latest commit acknowledged before it was asked for, or one of the commits sent and not
    /// acknowledged.
    pub fn check_consumed(
        &self,
        tp: TopicPartition,
        offsets: TopicPartition,
        seen: &Observation,
    ) -> Result<(), Violation> {
        match seen {
            Observation::Read { position, batches } => {
                let mut next = *position;
                for (i, h) in batches.iter().enumerate() {
                    let in_order = if i == 0 {
                        h.base_offset <= next && next <= h.last_offset()
                    } else {
                        h.base_offset == next
                    };
                    if !in_order {
                        return Err(violation(
                            "consumers_read_in_order",
                            format!(
                                "{}-{}: a consumer at {next} was given the batch {}..={}",
                                tp.0, tp.1, h.base_offset, h.last_offset()
                            ),
                        ));
                    }
                    let committed = self.committed.get(&tp).and_then(|c| c.get(&h.base_offset));
                    if committed != Some(&(h.last_offset(), h.crc)) {
                        return Err(violation(
                            "consumers_read_only_committed_records",
                            format!(
                                "{}-{} offset {}: a consumer read (last {}, crc {:#x}), committed there: {committed:?}",
                                tp.0, tp.1, h.base_offset, h.last_offset(), h.crc
                            ),
                        ));
                    }
                    next = h.next_offset();
                }
                Ok(())
            }
            Observation::Committed { .. } => Ok(()),
            Observation::Fetched {
                offset,
                acknowledged,
                unanswered,
                coordinator_epoch,
            } => match (offset, acknowledged) {
                (_, None) => Ok(()),
                // A deposed coordinator that has not heard of its successor answers from its
                // own state; Kafka promises freshness only from the current coordinator.
                _ if Some(*coordinator_epoch) < self.latest_leader_epoch(offsets) => Ok(()),
                (Some(o), Some(a)) if o == a || unanswered.contains(o) => Ok(()),
                _ => Err(violation(
                    "acknowledged_offset_commits_are_never_lost",
                    format!(
                        "{}-{}: committed offset {offset:?}, though the latest commit acknowledged was {acknowledged:?} and none unanswered was ({unanswered:?})",
                        tp.0, tp.1
                    ),
                )),
            },
        }
    }

    /// The latest leader epoch any broker led `tp` under.
    fn latest_leader_epoch(&self, tp: TopicPartition) -> Option<i32> {
        self.leaders
            .range((tp, i32::MIN)..=(tp, i32::MAX))
            .next_back()
            .map(|((_, e), _)| *e)
    }

    /// At the end: every acknowledged batch is in the leader's log at its offset, once, and no
    /// idempotent batch appears twice.
    pub fn check_acknowledged(
        &self,
        brokers: &[SimBroker],
        producers: &[Producer],
    ) -> Result<(), Violation> {
        for producer in producers {
            let tp = producer.partition();
            let Some(leader) = leader_of(brokers, tp) else {
                return Err(violation(
                    "acknowledged_records_survive",
                    format!("{}-{} has no leader at the end", tp.0, tp.1),
                ));
            };
            let headers = batch_headers(leader.log(), 0, leader.log().log_end_offset())
                .map_err(|e| violation("committed_records_are_readable", e.to_string()))?;
            let by_offset: BTreeMap<i64, _> = headers.iter().map(|h| (h.base_offset, h)).collect();
            for a in &producer.acked {
                match by_offset.get(&a.offset) {
                    Some(h) if h.crc == a.crc && h.record_count == a.record_count => {}
                    found => {
                        return Err(violation(
                            "acknowledged_records_survive",
                            format!(
                                "producer {} batch acknowledged at {}-{} offset {} (crc {:#x}): the leader has {}",
                                producer.index, tp.0, tp.1, a.offset, a.crc,
                                found.map_or("nothing there".to_string(), |h| format!(
                                    "a batch with crc {:#x}",
                                    h.crc
                                ))
                            ),
                        ));
                    }
                }
            }
            let mut seen = BTreeMap::new();
            for h in headers
                .iter()
                .filter(|h| h.producer_id >= 0 && !h.is_control())
            {
                let key = (h.producer_id, h.producer_epoch, h.base_sequence);
                if let Some(first) = seen.insert(key, h.base_offset) {
                    return Err(violation(
                        "idempotent_retries_never_duplicate",
                        format!(
                            "{}-{}: producer {} epoch {} sequence {} at offsets {first} and {}",
                            tp.0, tp.1, key.0, key.1, key.2, h.base_offset
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}

impl Checker {
    /// Every node's image at a metadata offset is the same image.
    fn metadata_images_agree(
        &mut self,
        node: &str,
        offset: i64,
        image: &Arc<MetadataImage>,
    ) -> Result<(), Violation> {
        if let Some(first) = self.images.get(&offset) {
            if **first != **image {
                return Err(violation(
                    "metadata_images_agree",
                    format!("{node}'s image at offset {offset} differs from another node's"),
                ));
            }
            return Ok(());
        }
        if let Some((_, before)) = self.images.range(..offset).next_back() {
            for (id, p, old, new) in partition_changes(before, image) {
                if old.leader_epoch != new.leader_epoch {
                    self.leader_changes += 1;
                }
                self.partition_changes.push(format!(
                    "metadata {offset}: {}-{p} leader {} epoch {} isr {:?} (was leader {} epoch {} isr {:?})",
                    id.to_string().chars().take(8).collect::<String>(),
                    new.leader, new.leader_epoch, new.isr, old.leader, old.leader_epoch, old.isr
                ));
            }
        }
        self.images.insert(offset, Arc::clone(image));
        Ok(())
    }
}

/// Partitions whose registration changed between two images: (topic, partition, before,
/// after).
fn partition_changes<'a>(
    before: &'a MetadataImage,
    after: &'a MetadataImage,
) -> Vec<(
    odradek_common::Uuid,
    i32,
    &'a PartitionRegistration,
    &'a PartitionRegistration,
)> {
    let mut out = Vec::new();
    for (id, t) in &after.topics.by_id {
        for (p, reg) in &t.partitions {
            let old = before
                .topics
                .by_id
                .get(id)
                .and_then(|t| t.partitions.get(p));
            if let Some(old) = old.filter(|old| *old != reg) {
                out.push((*id, *p, old, reg));
            }
        }
    }
    out
}

/// The replica of `tp` on a running broker that leads it.
fn leader_of(brokers: &[SimBroker], tp: TopicPartition) -> Option<&odradek_replication::Partition> {
    brokers.iter().filter(|b| b.up).find_map(|b| {
        let r = b.replicas.get(&tp)?;
        (r.partition.role() == Role::Leader).then_some(&r.partition)
    })
}

/// What a partition's committed log says of its transactions.
#[derive(Debug, Default)]
struct Transactions {
    /// Base offsets of transactional data batches whose commit marker is committed.
    committed: std::collections::BTreeSet<i64>,
    /// Those whose abort marker is committed.
    aborted: std::collections::BTreeSet<i64>,
    /// Per producer id, the records of its committed transactions, in log order.
    committed_records: BTreeMap<i64, Vec<odradek_log::records::Record>>,
}

/// The transactions of `tp` below the high watermark of its leader at the end.
fn committed_transactions(
    brokers: &[SimBroker],
    tp: TopicPartition,
) -> Result<Option<Transactions>, Violation> {
    let Some(p) = leader_of(brokers, tp) else {
        return Ok(None);
    };
    let unreadable = |e: String| violation("committed_records_are_readable", e);
    let mut out = Transactions::default();
    // Open transactions: producer id -> (base offset, records) of its batches so far.
    let mut open: BTreeMap<i64, Vec<(i64, Vec<odradek_log::records::Record>)>> = BTreeMap::new();
    let hw = p.high_watermark();
    let mut next = p.log().log_start_offset();
    while next < hw {
        let bytes = p
            .log()
            .read(next, 1 << 20, hw)
            .and_then(|r| r.to_bytes())
            .map_err(|e| unreadable(e.to_string()))?;
        if bytes.is_empty() {
            break;
        }
        let mut at = 0usize;
        while let Some(h) = bytes.get(at..).and_then(odradek_log::BatchHeader::parse) {
            let size = h.size() as usize;
            let batch = bytes.slice(at..at + size);
            at += size;
            next = h.next_offset();
            if !h.is_transactional() {
                continue;
            }
            let records = odradek_log::records::decode_batches(batch)
                .map_err(|e| unreadable(e.to_string()))?;
            if h.is_control() {
                let commit = records
                    .first()
                    .and_then(|r| r.key.as_ref())
                    .is_some_and(|k| k.len() >= 4 && k[3] == 1);
                for (base, records) in open.remove(&h.producer_id).unwrap_or_default() {
                    if commit {
                        out.committed.insert(base);
                        out.committed_records
                            .entry(h.producer_id)
                            .or_default()
                            .extend(records);
                    } else {
                        out.aborted.insert(base);
                    }
                }
            } else {
                open.entry(h.producer_id)
                    .or_default()
                    .push((h.base_offset, records));
            }
            if at >= bytes.len() {
                break;
            }
        }
    }
    Ok(Some(out))
}

/// The offsets of the data records of `tp` below its leader's high watermark at the end.
fn committed_record_offsets(brokers: &[SimBroker], tp: TopicPartition) -> Option<Vec<i64>> {
    let p = leader_of(brokers, tp)?;
    let hw = p.high_watermark();
    let mut offsets = Vec::new();
    let mut next = p.log().log_start_offset();
    while next < hw {
        let bytes = p.log().read(next, 1 << 20, hw).ok()?.to_bytes().ok()?;
        if bytes.is_empty() {
            break;
        }
        let records = odradek_log::records::decode_batches(bytes).ok()?;
        let last = records.last()?.offset;
        offsets.extend(records.iter().filter(|r| !r.control).map(|r| r.offset));
        next = last + 1;
    }
    offsets.retain(|o| *o < hw);
    Some(offsets)
}

impl Checker {
    /// At the end: read_committed consumers were never handed a batch of an aborted (or
    /// undecided) transaction, and each copy loop's committed output is exactly its input,
    /// once and in order, up to at least its last acknowledged commit.
    pub fn check_transactions(
        &self,
        brokers: &[SimBroker],
        copiers: &[Copier],
        consumers: &[Consumer],
    ) -> Result<(), Violation> {
        let mut decided: BTreeMap<TopicPartition, Transactions> = BTreeMap::new();
        let transactions_of = |decided: &mut BTreeMap<TopicPartition, Transactions>,
                               tp: TopicPartition|
         -> Result<bool, Violation> {
            if let std::collections::btree_map::Entry::Vacant(e) = decided.entry(tp) {
                match committed_transactions(brokers, tp)? {
                    Some(t) => {
                        e.insert(t);
                    }
                    None => return Ok(false),
                }
            }
            Ok(true)
        };
        for c in consumers {
            if c.delivered_transactional.is_empty()
                || !transactions_of(&mut decided, c.partition())?
            {
                continue;
            }
            let t = &decided[&c.partition()];
            for (base, producer_id) in &c.delivered_transactional {
                if !t.committed.contains(base) {
                    let fate = if t.aborted.contains(base) {
                        "aborted"
                    } else {
                        "not ended"
                    };
                    return Err(violation(
                        "read_committed_never_shows_aborted_data",
                        format!(
                            "consumer {} was handed the batch at {}-{} offset {base} of producer {producer_id}, whose transaction is {fate}",
                            c.index, c.partition().0, c.partition().1
                        ),
                    ));
                }
            }
        }
        for c in copiers {
            let Some(producer_id) = c.producer_id else {
                continue;
            };
            if !transactions_of(&mut decided, c.output)? {
                return Err(violation(
                    "transactional_copies_are_exactly_once",
                    format!("copier {}: its output has no leader at the end", c.index),
                ));
            }
            let copies: Vec<i64> = decided[&c.output]
                .committed_records
                .get(&producer_id)
                .into_iter()
                .flatten()
                .map(|r| r.value.as_deref().and_then(copied_from).unwrap_or(-1))
                .collect();
            let Some(input) = committed_record_offsets(brokers, c.input) else {
                return Err(violation(
                    "transactional_copies_are_exactly_once",
                    format!("copier {}: its input cannot be read at the end", c.index),
                ));
            };
            let acknowledged = c.acknowledged_commits.iter().copied().max().unwrap_or(0);
            let expected: Vec<i64> = input.iter().copied().take(copies.len()).collect();
            if copies != expected {
                let at = copies
                    .iter()
                    .zip(&expected)
                    .position(|(a, b)| a != b)
                    .unwrap_or(expected.len());
                return Err(violation(
                    "transactional_copies_are_exactly_once",
                    format!(
                        "copier {}: committed copy {at} is of input offset {:?}, expected {:?} (copies of {:?} in all)",
                        c.index,
                        copies.get(at),
                        expected.get(at),
                        &copies[at.saturating_sub(3)..(at + 3).min(copies.len())]
                    ),
                ));
            }
            let owed = input.iter().filter(|o| **o < acknowledged).count();
            if copies.len() < owed {
                return Err(violation(
                    "transactional_copies_are_exactly_once",
                    format!(
                        "copier {}: a commit up to input offset {acknowledged} was acknowledged, but only {} input records are copied (owed {owed})",
                        c.index,
                        copies.len()
                    ),
                ));
            }
        }
        Ok(())
    }
}
