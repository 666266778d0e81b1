//! Committed offsets: OffsetCommit, OffsetFetch, retention, and DeleteGroups.

use std::collections::HashSet;

use bytes::Bytes;
use odradek_common::ErrorCode;

use super::{CommitOffset, GroupState, Groups, Output};
use crate::records::{encode_key, encode_offset, OffsetValue, RecordKey};

impl Groups {
    /// OffsetCommit: an error per offset, and the records to append (then [`Groups::replay`])
    /// for the accepted ones.
    pub fn commit(
        &mut self,
        now: i64,
        group: &str,
        generation: i32,
        member: &str,
        instance: Option<&str>,
        offsets: &[CommitOffset],
    ) -> (Vec<ErrorCode>, Output) {
        let all = |e: ErrorCode| (vec![e; offsets.len()], Output::default());
        if group.is_empty() {
            return all(ErrorCode::InvalidGroupId);
        }
        match self.groups.get_mut(group) {
            None if generation >= 0 => return all(ErrorCode::IllegalGeneration),
            None => {}
            Some(g) => {
                if let Some(cg) = &g.consumer {
                    if let Err(e) = Self::check_consumer_commit(cg, member, generation) {
                        return all(e);
                    }
                    return self.offset_records(now, group, offsets);
                }
                if g.state == GroupState::Dead {
                    return all(ErrorCode::CoordinatorNotAvailable);
                }
                if g.fenced(member, instance) {
                    return all(ErrorCode::FencedInstanceId);
                }
                let simple = generation < 0 && g.state == GroupState::Empty;
                if !simple {
                    if g.state == GroupState::CompletingRebalance {
                        return all(ErrorCode::RebalanceInProgress);
                    }
                    let Some(m) = g.members.get_mut(member) else {
                        return all(ErrorCode::UnknownMemberId);
                    };
                    m.heartbeat_deadline = now + i64::from(m.session_timeout_ms);
                    if generation != g.generation {
                        return all(ErrorCode::IllegalGeneration);
                    }
                }
            }
        }
        self.offset_records(now, group, offsets)
    }

    /// TxnOffsetCommit (KIP-98, KIP-447): Kafka's checks (a fenced static member,
    /// UNKNOWN_MEMBER_ID for a named member the group lacks, ILLEGAL_GENERATION for another
    /// generation when one is given), then the records, which the broker appends in the
    /// producer's transaction and applies with [`Groups::replay_transactional`].
    pub fn txn_commit(
        &mut self,
        now: i64,
        group: &str,
        generation: i32,
        member: &str,
        instance: Option<&str>,
        offsets: &[CommitOffset],
    ) -> (Vec<ErrorCode>, Output) {
        let all = |e: ErrorCode| (vec![e; offsets.len()], Output::default());
        if group.is_empty() {
            return all(ErrorCode::InvalidGroupId);
        }
        if let Some(g) = self.groups.get(group) {
            if g.state == GroupState::Dead {
                return all(ErrorCode::CoordinatorNotAvailable);
            }
            if g.fenced(member, instance) {
                return all(ErrorCode::FencedInstanceId);
            }
            if !member.is_empty() && !g.members.contains_key(member) {
                return all(ErrorCode::UnknownMemberId);
            }
            if generation >= 0 && generation != g.generation {
                return all(ErrorCode::IllegalGeneration);
            }
        } else if !member.is_empty() || generation >= 0 {
            return all(ErrorCode::IllegalGeneration);
        }
        self.offset_records(now, group, offsets)
    }

    fn offset_records(
        &self,
        now: i64,
        group: &str,
        offsets: &[CommitOffset],
    ) -> (Vec<ErrorCode>, Output) {
        let mut out = Output::default();
        let errors = offsets
            .iter()
            .map(|o| {
                let metadata = o.metadata.clone().unwrap_or_default();
                if metadata.len() > self.config.offset_metadata_max_bytes {
                    return ErrorCode::OffsetMetadataTooLarge;
                }
                out.records.push((
                    encode_key(&RecordKey::Offset {
                        group: group.to_string(),
                        topic: o.topic.clone(),
                        partition: o.partition,
                    }),
                    Some(encode_offset(&OffsetValue {
                        offset: o.offset,
                        leader_epoch: o.leader_epoch,
                        metadata,
                        commit_timestamp: now,
                    })),
                ));
                ErrorCode::None
            })
            .collect();
        (errors, out)
    }

    /// The committed offsets of `group` for `partitions` (all committed ones when `None`);
    /// `None` where nothing is committed.
    pub fn fetch(
        &self,
        group: &str,
        partitions: Option<&[(String, Vec<i32>)]>,
    ) -> Vec<(String, i32, Option<OffsetValue>)> {
        let offsets = self.groups.get(group).map(|g| &g.offsets);
        match partitions {
            Some(list) => list
                .iter()
                .flat_map(|(t, ps)| ps.iter().map(move |p| (t.clone(), *p)))
                .map(|(t, p)| {
                    let v = offsets.and_then(|o| o.get(&(t.clone(), p))).cloned();
                    (t, p, v)
                })
                .collect(),
            None => offsets
                .into_iter()
                .flatten()
                .map(|((t, p), v)| (t.clone(), *p, Some(v.clone())))
                .collect(),
        }
    }

    /// Offsets retention (`offsets.retention.minutes`, KIP-211): the offsets of a group that
    /// has been Empty for `retention_ms` expire, and so do those of a group that never had
    /// members (assign-mode commits) once `retention_ms` passed since their commit; groups of
    /// members keep theirs. A group left with neither members nor offsets is removed. Returns the
    /// tombstones to append (then replay).
    pub fn expire_offsets(&mut self, now: i64, retention_ms: i64) -> Output {
        let mut out = Output::default();
        // A commit still pending (appended, not yet committed) keeps its partition and its
        // group, as Kafka skips partitions with pending commits.
        let pending: HashSet<(&str, &(String, i32))> = self
            .pending_offsets
            .values()
            .map(|c| (c.group.as_str(), &c.partition))
            .collect();
        let has_pending: HashSet<&str> = pending.iter().map(|(g, _)| *g).collect();
        for (id, g) in &self.groups {
            let pending = |tp: &(String, i32)| pending.contains(&(id.as_str(), tp));
            let consumer_empty_since = g
                .consumer
                .as_ref()
                .map(|c| c.members.is_empty().then_some(c.state_timestamp));
            let expired: Vec<&(String, i32)> = match (g.state, &g.protocol_type) {
                // A consumer group: as a classic one, by how long it has been empty.
                _ if consumer_empty_since.is_some() => match consumer_empty_since.flatten() {
                    Some(since) if since.saturating_add(retention_ms) <= now => {
                        g.offsets.keys().collect()
                    }
                    _ => Vec::new(),
                },
                (GroupState::Empty, Some(_)) => {
                    if g.state_timestamp.saturating_add(retention_ms) <= now {
                        g.offsets.keys().collect()
                    } else {
                        Vec::new()
                    }
                }
                (_, None) => g
                    .offsets
                    .iter()
                    .filter(|(_, v)| v.commit_timestamp.saturating_add(retention_ms) <= now)
                    .map(|(k, _)| k)
                    .collect(),
                _ => Vec::new(),
            };
            let expired: Vec<&(String, i32)> =
                expired.into_iter().filter(|tp| !pending(tp)).collect();
            for (topic, partition) in &expired {
                out.records.push((
                    encode_key(&RecordKey::Offset {
                        group: id.clone(),
                        topic: topic.clone(),
                        partition: *partition,
                    }),
                    None,
                ));
            }
            if g.members.is_empty()
                && g.state == GroupState::Empty
                && expired.len() == g.offsets.len()
                && !has_pending.contains(id.as_str())
                && (!expired.is_empty() || g.generation > 0 || g.consumer.is_some())
                && consumer_empty_since.is_none_or(|c| c.is_some())
            {
                if g.consumer.is_some() {
                    out.records.extend(super::consumer::group_tombstones(id));
                }
                out.records
                    .push((encode_key(&RecordKey::Group { group: id.clone() }), None));
            }
        }
        out
    }

    /// DeleteGroups of one group: the tombstones to append (then replay), or why not.
    pub fn delete(&mut self, group: &str) -> Result<Vec<(Bytes, Option<Bytes>)>, ErrorCode> {
        let g = self.groups.get(group).ok_or(ErrorCode::GroupIdNotFound)?;
        if g.consumer.as_ref().is_some_and(|c| !c.members.is_empty())
            || g.share.as_ref().is_some_and(|s| !s.members.is_empty())
        {
            return Err(ErrorCode::NonEmptyGroup);
        }
        match g.state {
            GroupState::Dead => return Err(ErrorCode::GroupIdNotFound),
            GroupState::Empty => {}
            _ => return Err(ErrorCode::NonEmptyGroup),
        }
        let mut records: Vec<(Bytes, Option<Bytes>)> = g
            .offsets
            .keys()
            .map(|(t, p)| {
                (
                    encode_key(&RecordKey::Offset {
                        group: group.to_string(),
                        topic: t.clone(),
                        partition: *p,
                    }),
                    None,
                )
            })
            .collect();
        if g.consumer.is_some() {
            records.extend(super::consumer::group_tombstones(group));
        }
        if g.share.is_some() {
            records.extend(crate::records::share_group::group_tombstones(group));
        }
        records.push((
            encode_key(&RecordKey::Group {
                group: group.to_string(),
            }),
            None,
        ));
        if let Some(g) = self.groups.get_mut(group) {
            g.offsets.clear();
        }
        Ok(records)
    }
}
