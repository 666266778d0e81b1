//! The broker's group coordinator and consumer-facing reads, as `odradek-server` does them
//! (`groups.rs`, `coordinator_runtime.rs`, `handlers/groups.rs`, the consumer branch of
//! `handlers/fetch.rs`): the leader of `__consumer_offsets`-0 loads the real
//! `odradek-coordinator` state machine by replaying the partition's log, appends each commit's
//! records as the partition's leader, and acknowledges once the high watermark passes them.

use bytes::Bytes;
use odradek_common::{ErrorCode, ToErrorCode};
use odradek_coordinator::{CommitOffset, GroupConfig, Groups, OFFSETS_TOPIC};
use odradek_log::records::{
    encode_batch, encode_producer_batch, Compression, NewRecord, ProducerBatch,
};
use odradek_log::{AppendRules, ValidatedBatches};

use super::{Out, SimBroker};
use crate::message::{Message, Node, ProducerIdEpoch, TopicPartition};

/// Kafka's UNSTABLE_OFFSET_COMMIT.
const UNSTABLE_OFFSET_COMMIT: i16 = 88;

/// The coordinator of the groups whose offsets live in `__consumer_offsets`-0, while this
/// broker leads it.
#[derive(Debug)]
pub struct Coordinator {
    partition: TopicPartition,
    leader_epoch: i32,
    groups: Groups,
    /// Commits appended, answered once committed.
    waiters: Vec<CommitWaiter>,
}

#[derive(Debug)]
struct CommitWaiter {
    consumer: Node,
    request_id: u64,
    leader_epoch: i32,
    last_offset: i64,
    deadline_ms: i64,
}

impl SimBroker {
    /// Loads the coordinator when this broker leads `__consumer_offsets`-0 under a new epoch,
    /// drops it when it no longer does (its waiting commits are answered NOT_COORDINATOR).
    pub(super) fn follow_coordinator(&mut self, now: i64, out: &mut Out) {
        let Some((tp, led)) = self.led_internal_partition(OFFSETS_TOPIC) else {
            return;
        };
        let current = self.coordinator.as_ref().map(|c| c.leader_epoch);
        if led == current {
            return;
        }
        if let Some(old) = self.coordinator.take() {
            for w in old.waiters {
                out.push((
                    w.consumer,
                    Message::OffsetCommitAnswer {
                        request_id: w.request_id,
                        error_code: ErrorCode::NotCoordinator.code(),
                    },
                ));
            }
        }
        let Some(leader_epoch) = led else { return };
        let mut groups = Groups::new(GroupConfig::default(), format!("b{}", self.id));
        let partition = &self.replicas[&tp].partition;
        for r in super::txn::read_records(partition.log(), &mut self.errors) {
            if r.control {
                // A transaction marker: key version 0, type 0 abort / 1 commit.
                if let Some(k) = r.key.as_ref().filter(|k| k.len() >= 4) {
                    groups.complete_transaction(r.producer_id, k[3] == 1);
                }
            } else if let Some(key) = r.key {
                if r.transactional {
                    groups.replay_transactional(now, r.producer_id, key, r.value);
                } else {
                    groups.replay(now, key, r.value);
                }
            }
        }
        self.coordinator = Some(Coordinator {
            partition: tp,
            leader_epoch,
            groups,
            waiters: Vec::new(),
        });
    }

    /// OffsetCommit of one partition (generation -1: a consumer with assigned partitions), or
    /// with `producer` a TxnOffsetCommit: its records are appended in the producer's
    /// transaction and take effect with the transaction's commit marker.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn offset_commit(
        &mut self,
        consumer: Node,
        request_id: u64,
        group: &str,
        data: TopicPartition,
        offset: i64,
        producer: Option<ProducerIdEpoch>,
        now: i64,
    ) -> Result<(), i16> {
        let topic = self
            .topic_name(data)
            .ok_or(ErrorCode::UnknownTopicOrPartition.code())?;
        let c = self
            .coordinator
            .as_mut()
            .ok_or(ErrorCode::NotCoordinator.code())?;
        let r = self
            .replicas
            .get_mut(&c.partition)
            .ok_or(ErrorCode::NotCoordinator.code())?;
        c.groups
            .commit_pending_offsets(r.partition.high_watermark());
        let offsets = [CommitOffset {
            topic,
            partition: data.1,
            offset,
            leader_epoch: -1,
            metadata: None,
        }];
        let (codes, output) = match producer {
            None => c.groups.commit(now, group, -1, "", None, &offsets),
            Some(_) => c.groups.txn_commit(now, group, -1, "", None, &offsets),
        };
        if let Some(code) = codes.into_iter().find(|c| *c != ErrorCode::None) {
            return Err(code.code());
        }
        if output.records.is_empty() {
            // Nothing to append: answered at once, as the server does.
            self.pending_answers.push((
                consumer,
                Message::OffsetCommitAnswer {
                    request_id,
                    error_code: 0,
                },
            ));
            return Ok(());
        }
        // The server's `append_records`: one batch, acks=1 here, the caller waits for the ISR.
        let records: Vec<NewRecord> = output
            .records
            .iter()
            .map(|(k, v)| NewRecord {
                key: Some(k.clone()),
                value: v.clone(),
                timestamp_ms: now,
                ..NewRecord::default()
            })
            .collect();
        let batch = match producer {
            None => encode_batch(&records, Compression::None),
            Some((producer_id, producer_epoch)) => encode_producer_batch(
                &records,
                Compression::None,
                ProducerBatch {
                    producer_id,
                    producer_epoch,
                    base_sequence: -1,
                    transactional: true,
                },
            ),
        }
        .map_err(|_| ErrorCode::CoordinatorNotAvailable.code())?;
        let rules = AppendRules::of(r.partition.log().config());
        let validated = ValidatedBatches::for_leader(&batch, rules)
            .map_err(|_| ErrorCode::CoordinatorNotAvailable.code())?;
        let appended = r
            .partition
            .append_as_coordinator(validated, 1, 1, now)
            .map_err(|e| match e.error_code() {
                ErrorCode::NotLeaderOrFollower | ErrorCode::FencedLeaderEpoch => {
                    ErrorCode::NotCoordinator.code()
                }
                ErrorCode::InvalidProducerEpoch => ErrorCode::ProducerFenced.code(),
                _ => ErrorCode::CoordinatorNotAvailable.code(),
            })?;
        let first = appended.info.last_offset - (output.records.len() as i64 - 1);
        for (i, (k, v)) in output.records.into_iter().enumerate() {
            match producer {
                None => c.groups.replay_appended(now, k, v, first + i as i64),
                Some((pid, _)) => c.groups.replay_transactional(now, pid, k, v),
            }
        }
        c.waiters.push(CommitWaiter {
            consumer,
            request_id,
            leader_epoch: appended.leader_epoch,
            last_offset: appended.info.last_offset,
            deadline_ms: now + self.settings.request_timeout_ms,
        });
        if self.settings.commit_before_replication {
            c.waiters.last_mut().expect("pushed above").deadline_ms = i64::MIN;
        }
        Ok(())
    }

    /// Answers the commits whose records the ISR has (or that failed).
    pub(super) fn complete_commits(&mut self, now: i64, out: &mut Out) {
        let min_isr = self.settings.min_insync_replicas;
        let Some(c) = self.coordinator.as_mut() else {
            return;
        };
        let Some(r) = self.replicas.get(&c.partition) else {
            return;
        };
        c.groups
            .commit_pending_offsets(r.partition.high_watermark());
        c.waiters.retain(|w| {
            let code = match r
                .partition
                .acks_all_outcome(w.leader_epoch, w.last_offset, min_isr)
            {
                Some(Ok(())) => 0,
                Some(Err(e)) if e.error_code() == ErrorCode::NotLeaderOrFollower => {
                    ErrorCode::NotCoordinator.code()
                }
                Some(Err(_)) => ErrorCode::CoordinatorNotAvailable.code(),
                None if w.deadline_ms == i64::MIN => 0,
                None if now >= w.deadline_ms => ErrorCode::CoordinatorNotAvailable.code(),
                None => return true,
            };
            out.push((
                w.consumer,
                Message::OffsetCommitAnswer {
                    request_id: w.request_id,
                    error_code: code,
                },
            ));
            false
        });
    }

    /// OffsetFetch of one partition; with the leader epoch the coordinator was loaded under.
    pub(super) fn offset_fetch(
        &mut self,
        group: &str,
        data: TopicPartition,
    ) -> Result<(Option<i64>, i32), i16> {
        let topic = self
            .topic_name(data)
            .ok_or(ErrorCode::UnknownTopicOrPartition.code())?;
        let c = self
            .coordinator
            .as_mut()
            .ok_or(ErrorCode::NotCoordinator.code())?;
        if let Some(r) = self.replicas.get(&c.partition) {
            c.groups
                .commit_pending_offsets(r.partition.high_watermark());
        }
        // Kafka's consumers fetch with require_stable (KIP-447): an offset a transaction
        // committed but has not ended is UNSTABLE_OFFSET_COMMIT, retried.
        if c.groups.has_unstable_offset(group, &topic, data.1) {
            return Err(UNSTABLE_OFFSET_COMMIT);
        }
        let fetched = c.groups.fetch(group, Some(&[(topic, vec![data.1])]));
        let offset = fetched
            .into_iter()
            .next()
            .and_then(|(_, _, v)| v)
            .map(|v| v.offset);
        Ok((offset, c.leader_epoch))
    }

    /// A consumer's fetch: whole batches from `offset`, below the high watermark; with
    /// `read_committed`, below the last stable offset and with the aborted transactions of the
    /// range (the server's `handlers/fetch.rs`).
    pub(super) fn consumer_fetch(
        &self,
        tp: TopicPartition,
        offset: i64,
        read_committed: bool,
    ) -> Result<(Bytes, Vec<(i64, i64)>), i16> {
        let r = self
            .replicas
            .get(&tp)
            .ok_or(ErrorCode::NotLeaderOrFollower.code())?;
        r.partition
            .check_leader(-1)
            .map_err(|e| e.error_code().code())?;
        let upper = if self.settings.read_uncommitted {
            r.partition.log().log_end_offset()
        } else if read_committed {
            r.partition.last_stable_offset()
        } else {
            r.partition.high_watermark()
        };
        let bytes = r
            .partition
            .reader()
            .read(offset, 16 * 1024, upper)
            .and_then(|read| read.to_bytes())
            .map_err(|e| e.error_code().code())?;
        let aborted = if read_committed && !self.settings.ignore_aborted_transactions {
            r.partition
                .aborted_transactions(offset, upper)
                .into_iter()
                .map(|a| (a.producer_id, a.first_offset))
                .collect()
        } else {
            Vec::new()
        };
        Ok((bytes, aborted))
    }

    /// Whether the group coordinator is loaded for `tp` (of `__consumer_offsets`).
    pub(super) fn coordinator_loaded(&self, tp: TopicPartition) -> bool {
        self.coordinator.as_ref().is_some_and(|c| c.partition == tp)
    }

    /// A transaction's marker on `__consumer_offsets` partition `tp` is committed: its offset
    /// commits take effect (commit) or are dropped (abort).
    pub(super) fn complete_offsets_transaction(
        &mut self,
        tp: TopicPartition,
        producer_id: i64,
        commit: bool,
    ) {
        if let Some(c) = self.coordinator.as_mut().filter(|c| c.partition == tp) {
            c.groups.complete_transaction(producer_id, commit);
        }
    }

    fn topic_name(&self, tp: TopicPartition) -> Option<String> {
        self.image.topics.by_id.get(&tp.0).map(|t| t.name.clone())
    }
}
