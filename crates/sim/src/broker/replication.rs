//! Replication between brokers, as the server does it: the replica fetchers (`fetcher.rs`)
//! on the follower side, the follower branch of the fetch handler (`handlers/fetch.rs`) on
//! the leader side.

use odradek_common::{ErrorCode, ToErrorCode};
use odradek_log::ValidatedBatches;
use odradek_replication::{EpochEndOffset, Role};

use super::{Out, SimBroker};
use crate::message::{Message, Node, ReplicaFetch, ReplicaFetchAnswer};

impl SimBroker {
    /// The replica fetchers: one fetch in flight per followed partition.
    pub(super) fn send_fetches(&mut self, now: i64, out: &mut Out) {
        let timeout = self.settings.request_timeout_ms;
        for (tp, r) in &mut self.replicas {
            let Role::Follower { leader } = r.partition.role() else {
                continue;
            };
            let lost = r.fetch_sent_ms.is_some_and(|t| now - t > timeout);
            if (r.fetch_sent_ms.is_some() && !lost) || now < r.next_fetch_ms {
                continue;
            }
            let (fetch_offset, last_fetched_epoch) = r.partition.fetch_position();
            r.fetch_sent_ms = Some(now);
            r.fetch_id += 1;
            out.push((
                Node::Broker(leader),
                Message::Fetch(ReplicaFetch {
                    fetch_id: r.fetch_id,
                    partition: *tp,
                    replica: self.id,
                    current_leader_epoch: r.partition.leader_epoch(),
                    fetch_offset,
                    last_fetched_epoch,
                    log_start_offset: r.partition.log().log_start_offset(),
                }),
            ));
        }
    }

    /// The leader's side of a replica fetch (the server's `handlers/fetch.rs`, follower branch).
    pub(super) fn serve_fetch(
        &mut self,
        req: &ReplicaFetch,
        now: i64,
        out: &mut Out,
    ) -> ReplicaFetchAnswer {
        let refuse = |code: ErrorCode, hw: i64, start: i64| ReplicaFetchAnswer {
            error_code: code.code(),
            high_watermark: hw,
            log_start_offset: start,
            diverging: None,
            records: bytes::Bytes::new(),
        };
        let Some(r) = self.replicas.get_mut(&req.partition) else {
            return refuse(ErrorCode::NotLeaderOrFollower, -1, -1);
        };
        if let Err(e) = r.partition.check_leader(req.current_leader_epoch) {
            return refuse(e.error_code(), -1, -1);
        }
        let fetched = r.partition.follower_fetch(
            req.replica,
            req.fetch_offset,
            req.last_fetched_epoch,
            req.log_start_offset,
            now,
        );
        let f = match fetched {
            Ok(f) => f,
            Err(e) => {
                let hw = r.partition.high_watermark();
                let start = r.partition.log().log_start_offset();
                return refuse(e.error_code(), hw, start);
            }
        };
        let answer = if let Some(d) = f.diverging_epoch {
            ReplicaFetchAnswer {
                error_code: 0,
                high_watermark: f.high_watermark,
                log_start_offset: f.log_start_offset,
                diverging: Some((d.epoch, d.end_offset)),
                records: bytes::Bytes::new(),
            }
        } else {
            let records = r
                .partition
                .reader()
                .read(req.fetch_offset, 32 * 1024, f.log_end_offset)
                .and_then(|read| read.to_bytes());
            match records {
                Ok(records) => ReplicaFetchAnswer {
                    error_code: 0,
                    high_watermark: f.high_watermark,
                    log_start_offset: f.log_start_offset,
                    diverging: None,
                    records,
                },
                Err(e) => refuse(e.error_code(), f.high_watermark, f.log_start_offset),
            }
        };
        if let Some(proposal) = f.isr_proposal {
            self.propose(req.partition, proposal, now, out);
        }
        if f.high_watermark_advanced {
            self.complete_waiters(now, out);
            self.complete_commits(now, out);
        }
        answer
    }

    /// A follower applies the leader's answer (the server's `fetcher.rs` `handle_partition`).
    pub(super) fn on_fetch_answer(
        &mut self,
        from: Node,
        req: ReplicaFetch,
        a: ReplicaFetchAnswer,
        now: i64,
    ) {
        let backoff = self.settings.fetch_backoff_ms;
        let Some(r) = self.replicas.get_mut(&req.partition) else {
            return;
        };
        let Node::Broker(leader) = from else { return };
        if req.fetch_id != r.fetch_id {
            // An answer to an earlier request (a duplicate, or one given up on).
            return;
        }
        // Metadata or a truncation moved the partition on while the request was out.
        if r.partition.role() != (Role::Follower { leader })
            || r.partition.leader_epoch() != req.current_leader_epoch
            || r.partition.fetch_position().0 != req.fetch_offset
        {
            return;
        }
        r.fetch_sent_ms = None;
        if a.error_code == ErrorCode::OffsetOutOfRange.code() {
            if let Err(e) = r
                .partition
                .reset_to_leader_range(a.log_start_offset, a.high_watermark)
            {
                self.errors
                    .push(format!("cannot reset an out-of-range replica: {e}"));
            }
            return;
        }
        if a.error_code != 0 {
            r.next_fetch_ms = now + backoff;
            return;
        }
        if let Some((epoch, end_offset)) = a.diverging {
            if let Err(e) = r
                .partition
                .truncate_on_divergence(EpochEndOffset { epoch, end_offset })
            {
                self.errors
                    .push(format!("cannot truncate a diverging replica: {e}"));
            }
            return;
        }
        let validated = if a.records.is_empty() {
            None
        } else {
            match ValidatedBatches::for_follower(&a.records) {
                Ok(v) => Some(v),
                Err(e) => {
                    self.errors
                        .push(format!("the leader sent invalid batches: {e}"));
                    return;
                }
            }
        };
        if validated.is_none() {
            r.next_fetch_ms = now + backoff;
        }
        match r
            .partition
            .append_as_follower(validated, a.high_watermark, now)
        {
            Ok(_) => {
                if let Err(e) = r.partition.follow_log_start(a.log_start_offset) {
                    self.errors
                        .push(format!("cannot follow the leader's log start: {e}"));
                }
            }
            Err(e) => self.errors.push(format!(
                "broker {}: cannot append replicated batches at {}: {e}",
                self.id, req.fetch_offset
            )),
        }
    }
}
