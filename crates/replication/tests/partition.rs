//! `Partition` without a runtime: the leader's high watermark, acks=all, ISR shrink and expand,
//! divergence and truncation (KIP-101 / KIP-279 scenarios), and a property test over random
//! schedules of appends and follower fetches.

use bytes::Bytes;
use odradek_common::ToErrorCode;
use odradek_log::records::{encode_batch, Compression, NewRecord};
use odradek_log::{AppendRules, Log, LogConfig, ValidatedBatches};
use odradek_replication::{
    EpochEndOffset, Partition, PartitionState, ReplicationError, Role, Transition,
};
use proptest::prelude::*;

fn batch(n: usize) -> Bytes {
    let records: Vec<NewRecord> = (0..n)
        .map(|i| NewRecord::value(format!("v{i}"), 0))
        .collect();
    encode_batch(&records, Compression::None).expect("encode")
}

/// Producer batches validated as the broker does before it locks the partition.
fn valid(b: &Bytes) -> ValidatedBatches<'_> {
    ValidatedBatches::for_leader(b, AppendRules::of(&LogConfig::default())).expect("valid")
}

fn replica(dir: &std::path::Path, broker: i32) -> Partition {
    let log = Log::open(dir.join(format!("b{broker}")), LogConfig::default(), 0).expect("open");
    Partition::new("t", 0, broker, log, None).expect("replica")
}

fn state(leader: i32, leader_epoch: i32, isr: &[i32]) -> PartitionState {
    PartitionState {
        leader,
        leader_epoch,
        partition_epoch: leader_epoch * 100 + isr.len() as i32,
        replicas: vec![1, 2, 3],
        isr: isr.to_vec(),
    }
}

/// Copies the leader's batches from `from` into a follower, as a fetch response would.
fn replicate(leader: &Partition, follower: &mut Partition, now: i64) {
    let (offset, _) = follower.fetch_position();
    let read = leader
        .reader()
        .read(offset, u64::MAX, leader.log().log_end_offset())
        .expect("read");
    let bytes = read.to_bytes().expect("bytes");
    follower
        .append_as_follower(
            (!bytes.is_empty()).then(|| ValidatedBatches::for_follower(&bytes).expect("valid")),
            leader.high_watermark(),
            now,
        )
        .expect("follower append");
}

/// The follower's next fetch from `leader`, which must answer a diverging epoch: that epoch
/// and the follower's log end after it truncated to it.
fn diverge(leader: &mut Partition, follower: &mut Partition, id: i32) -> (EpochEndOffset, i64) {
    let (offset, epoch) = follower.fetch_position();
    let d = leader
        .follower_fetch(id, offset, epoch, 0, 0)
        .expect("fetch")
        .diverging_epoch
        .expect("diverges");
    (d, follower.truncate_on_divergence(d).expect("truncate"))
}

#[test]
fn high_watermark_is_the_minimum_log_end_over_the_isr_and_acks_all_waits_for_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut leader = replica(dir.path(), 1);
    let mut f2 = replica(dir.path(), 2);
    let mut f3 = replica(dir.path(), 3);
    let s = state(1, 1, &[1, 2, 3]);
    assert_eq!(leader.apply(s.clone(), 0).0, Transition::BecameLeader);
    assert_eq!(
        f2.apply(s.clone(), 0).0,
        Transition::BecameFollower { leader: 1 }
    );
    f3.apply(s, 0);

    let a = leader
        .append_as_leader(valid(&batch(5)), -1, 2, 0)
        .expect("append");
    assert_eq!((a.info.first_offset, a.info.last_offset), (0, 4));
    assert_eq!(leader.high_watermark(), 0);
    assert!(
        leader.acks_all_outcome(a.leader_epoch, 4, 2).is_none(),
        "waits"
    );

    // Broker 2 has it; broker 3 has not fetched yet: the HW holds.
    replicate(&leader, &mut f2, 1);
    let r = leader.follower_fetch(2, 5, 1, 0, 1).expect("fetch");
    assert!(!r.high_watermark_advanced);
    assert_eq!(leader.high_watermark(), 0);
    // Broker 3 fetches at 2 (it has part): HW = 2. Then all: HW = 5, the ack completes.
    leader.follower_fetch(3, 2, -1, 0, 2).expect("fetch");
    assert_eq!(leader.high_watermark(), 2);
    replicate(&leader, &mut f3, 3);
    assert!(
        leader
            .follower_fetch(3, 5, 1, 0, 3)
            .expect("fetch")
            .high_watermark_advanced
    );
    assert_eq!(leader.high_watermark(), 5);
    assert!(matches!(
        leader.acks_all_outcome(a.leader_epoch, 4, 2),
        Some(Ok(()))
    ));
    // Followers learn the HW from the next response, never past their own log end.
    f2.append_as_follower(None, leader.high_watermark(), 4)
        .expect("hw");
    assert_eq!(f2.high_watermark(), 5);
}

#[test]
fn delete_records_completes_when_every_live_replica_followed_the_log_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut leader = replica(dir.path(), 1);
    let mut f2 = replica(dir.path(), 2);
    let mut f3 = replica(dir.path(), 3);
    let s = state(1, 1, &[1, 2, 3]);
    leader.apply(s.clone(), 0);
    f2.apply(s.clone(), 0);
    f3.apply(s, 0);
    leader
        .append_as_leader(valid(&batch(10)), -1, 2, 0)
        .expect("append");
    for (id, f) in [(2, &mut f2), (3, &mut f3)] {
        replicate(&leader, f, 1);
        leader.follower_fetch(id, 10, 1, 0, 1).expect("fetch");
    }
    assert_eq!(leader.high_watermark(), 10);
    for f in [&mut f2, &mut f3] {
        f.append_as_follower(None, leader.high_watermark(), 1)
            .expect("hw");
    }
    let all = |_: i32| true;
    assert_eq!(leader.low_watermark(all), 0);

    // Past the HW: out of range; -1 means the HW.
    assert!(leader.delete_records_before(11).is_err());
    assert_eq!(leader.delete_records_before(6).expect("delete"), 6);
    assert_eq!(
        leader.low_watermark(all),
        0,
        "the followers still start at 0"
    );
    // Broker 2 follows the leader's log start (from the fetch response) and reports it.
    f2.follow_log_start(6).expect("follow");
    leader
        .follower_fetch(2, 10, 1, f2.log().log_start_offset(), 2)
        .expect("fetch");
    assert_eq!(leader.low_watermark(all), 0, "broker 3 has not");
    // Broker 3 is down (fenced): it no longer holds DeleteRecords back.
    assert_eq!(leader.low_watermark(|id| id != 3), 6);
    f3.follow_log_start(6).expect("follow");
    leader
        .follower_fetch(3, 10, 1, f3.log().log_start_offset(), 3)
        .expect("fetch");
    assert_eq!(leader.low_watermark(all), 6);
    assert_eq!(leader.delete_records_before(-1).expect("to the HW"), 10);
    // Not the leader: refused.
    assert!(f2.delete_records_before(8).is_err());
    // A compacted-only topic: POLICY_VIOLATION, as Kafka.
    leader.log_mut().set_config(LogConfig {
        cleanup_policy: odradek_log::CleanupPolicy::COMPACT,
        ..LogConfig::default()
    });
    let e = leader
        .delete_records_before(10)
        .expect_err("compacted only");
    assert_eq!(e.error_code(), odradek_common::ErrorCode::PolicyViolation);
}

#[test]
fn acks_all_needs_min_insync_replicas_and_fails_when_leadership_moves() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut leader = replica(dir.path(), 1);
    leader.apply(state(1, 1, &[1]), 0);
    let e = leader
        .append_as_leader(valid(&batch(1)), -1, 2, 0)
        .expect_err("refused");
    assert!(matches!(
        e,
        ReplicationError::NotEnoughReplicas { isr: 1, min: 2, .. }
    ));
    assert_eq!(leader.log().log_end_offset(), 0, "nothing written");
    // acks=1 is not bound by min.insync.replicas, and a lone ISR commits at once.
    let a = leader
        .append_as_leader(valid(&batch(1)), 1, 2, 0)
        .expect("acks=1");
    assert!(a.high_watermark_advanced);
    // Leadership moves away while an acks=all append waits: NOT_LEADER_OR_FOLLOWER.
    leader.apply(state(1, 2, &[1, 2]), 0);
    let w = leader
        .append_as_leader(valid(&batch(1)), -1, 2, 0)
        .expect("append");
    leader.apply(state(2, 3, &[2]), 0);
    assert!(matches!(
        leader.acks_all_outcome(w.leader_epoch, w.info.last_offset, 2),
        Some(Err(ReplicationError::NotLeaderOrFollower { .. }))
    ));
    assert!(
        leader.append_as_leader(valid(&batch(1)), 1, 1, 0).is_err(),
        "a follower refuses appends"
    );
}

#[test]
fn a_lagging_follower_leaves_the_isr_and_rejoins_once_caught_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut leader = replica(dir.path(), 1);
    leader.apply(state(1, 1, &[1, 2, 3]), 0);
    leader
        .append_as_leader(valid(&batch(3)), 1, 1, 0)
        .expect("append");
    // Broker 2 keeps up; broker 3 never fetches.
    leader.follower_fetch(2, 3, 1, 0, 10_000).expect("fetch");
    assert!(
        leader.maybe_shrink_isr(20_000, 30_000).is_none(),
        "within the lag time"
    );
    leader.follower_fetch(2, 3, 1, 0, 35_000).expect("fetch");
    let shrink = leader.maybe_shrink_isr(35_000, 30_000).expect("shrink");
    assert_eq!(shrink.new_isr, vec![1, 2]);
    assert_eq!(shrink.leader_epoch, 1);
    // While pending, the removed member still counts for the HW (maximal ISR), and no second
    // proposal is made.
    assert_eq!(leader.high_watermark(), 0);
    assert!(leader.maybe_shrink_isr(36_000, 30_000).is_none());
    // Committed: the HW moves to what 1 and 2 have.
    let mut s = state(1, 1, &[1, 2]);
    s.partition_epoch = 200;
    let (t, advanced) = leader.apply(s.clone(), 36_000);
    assert_eq!((t, advanced), (Transition::Updated, true));
    assert_eq!(leader.high_watermark(), 3);
    // Broker 3 comes back and catches up to the HW: it is proposed for the ISR.
    let r = leader.follower_fetch(3, 1, -1, 0, 37_000).expect("fetch");
    assert!(r.isr_proposal.is_none(), "below the HW");
    let r = leader.follower_fetch(3, 3, 1, 0, 38_000).expect("fetch");
    assert_eq!(
        r.isr_proposal.clone().expect("expand").new_isr,
        vec![1, 2, 3]
    );
    // Refused by the controller: proposed again at the next fetch. A refusal of an older
    // proposal, or a timeout, does not drop the pending one.
    let pending = leader
        .follower_fetch(3, 3, 1, 0, 38_500)
        .expect("fetch")
        .isr_proposal;
    assert!(pending.is_none(), "one proposal at a time");
    let mut stale = r.isr_proposal.clone().expect("expand");
    stale.partition_epoch -= 1;
    leader.isr_proposal_refused(&stale);
    assert!(leader
        .follower_fetch(3, 3, 1, 0, 38_600)
        .expect("fetch")
        .isr_proposal
        .is_none());
    leader.isr_proposal_refused(&r.isr_proposal.clone().expect("expand"));
    assert!(leader
        .follower_fetch(3, 3, 1, 0, 39_000)
        .expect("fetch")
        .isr_proposal
        .is_some());
}

#[test]
fn a_follower_of_a_new_leader_truncates_its_unreplicated_tail_kip_101() {
    // Broker 1 leads epoch 1 and writes 0..5, of which broker 2 replicates 0..3. Broker 1 dies
    // with 3..5 uncommitted; broker 2 leads epoch 2 and writes 3..7 (other records at the same
    // offsets). Broker 1 returns as follower: it must truncate to 3 before fetching on.
    let dir = tempfile::tempdir().expect("tempdir");
    let mut b1 = replica(dir.path(), 1);
    let mut b2 = replica(dir.path(), 2);
    b1.apply(state(1, 1, &[1, 2]), 0);
    b2.apply(state(1, 1, &[1, 2]), 0);
    b1.append_as_leader(valid(&batch(3)), 1, 1, 0)
        .expect("append");
    replicate(&b1, &mut b2, 0);
    b1.append_as_leader(valid(&batch(2)), 1, 1, 0)
        .expect("append");
    assert_eq!(b1.log().log_end_offset(), 5);

    b2.apply(state(2, 2, &[2]), 1);
    assert_eq!(b2.role(), Role::Leader);
    b2.append_as_leader(valid(&batch(4)), 1, 1, 1)
        .expect("append");
    b1.apply(state(2, 2, &[2]), 1);
    let (offset, epoch) = b1.fetch_position();
    assert_eq!((offset, epoch), (5, 1));
    let (diverging, end) = diverge(&mut b2, &mut b1, 1);
    assert_eq!(
        diverging,
        EpochEndOffset {
            epoch: 1,
            end_offset: 3
        }
    );
    assert_eq!(end, 3);
    // Now it agrees, replicates the new leader's records, and ends identical.
    let (offset, epoch) = b1.fetch_position();
    assert!(b2
        .follower_fetch(1, offset, epoch, 0, 3)
        .expect("fetch")
        .diverging_epoch
        .is_none());
    replicate(&b2, &mut b1, 3);
    let all = |p: &Partition| {
        p.reader()
            .read(0, u64::MAX, p.log().log_end_offset())
            .expect("read")
            .to_bytes()
            .expect("bytes")
    };
    assert_eq!(all(&b1), all(&b2));
}

#[test]
fn a_follower_that_misses_the_leaders_epoch_truncates_to_its_own_earlier_epoch_end_kip_279() {
    // Broker 1 wrote 0..2 in epoch 1 and 2..4 in epoch 3 (a leadership nobody replicated);
    // broker 2 led epoch 2 and wrote 2..6. Broker 1, following epoch 4 led by broker 2, asks
    // with last epoch 3: the leader answers its largest epoch <= 3, which is 2, ending at 6.
    // Broker 1 does not know epoch 2, so it truncates to the end of its epoch below: 2.
    let dir = tempfile::tempdir().expect("tempdir");
    let mut b1 = replica(dir.path(), 1);
    let mut b2 = replica(dir.path(), 2);
    b1.apply(state(1, 1, &[1, 2]), 0);
    b2.apply(state(1, 1, &[1, 2]), 0);
    b1.append_as_leader(valid(&batch(2)), 1, 1, 0)
        .expect("append");
    replicate(&b1, &mut b2, 0);
    b2.apply(state(2, 2, &[2]), 0);
    b2.append_as_leader(valid(&batch(4)), 1, 1, 0)
        .expect("append");
    b1.apply(state(1, 3, &[1]), 0);
    b1.append_as_leader(valid(&batch(2)), 1, 1, 0)
        .expect("append");
    b2.apply(state(2, 4, &[2]), 0);
    b1.apply(state(2, 4, &[2]), 0);
    let (offset, epoch) = b1.fetch_position();
    assert_eq!((offset, epoch), (4, 3));
    let (d, end) = diverge(&mut b2, &mut b1, 1);
    assert_eq!(
        d,
        EpochEndOffset {
            epoch: 2,
            end_offset: 6
        }
    );
    assert_eq!(end, 2);
    let (offset, epoch) = b1.fetch_position();
    assert_eq!((offset, epoch), (2, 1));
    assert!(b2
        .follower_fetch(1, offset, epoch, 0, 0)
        .expect("fetch")
        .diverging_epoch
        .is_none());
}

#[test]
fn a_leader_that_appended_nothing_drops_its_empty_epoch_and_rejoins() {
    // Broker 1 leads epoch 0 and writes 0..3, replicated to broker 2. Broker 1 then leads epoch
    // 1 but appends nothing before broker 2 is elected for epoch 2: broker 1's epoch cache has
    // an entry (1 @ 3) that broker 2 never saw. Following broker 2, broker 1 is told it diverges
    // at (0, 3); truncating "to 3" removes no record but must drop the empty epoch, or every
    // later fetch diverges again and it never rejoins the ISR (seen in a rolling restart).
    let dir = tempfile::tempdir().expect("tempdir");
    let mut b1 = replica(dir.path(), 1);
    let mut b2 = replica(dir.path(), 2);
    b1.apply(state(1, 0, &[1, 2]), 0);
    b2.apply(state(1, 0, &[1, 2]), 0);
    b1.append_as_leader(valid(&batch(3)), 1, 1, 0)
        .expect("append");
    replicate(&b1, &mut b2, 0);
    b1.apply(state(1, 1, &[1, 2]), 0);
    b2.apply(state(2, 2, &[2]), 0);
    b1.apply(state(2, 2, &[2]), 0);
    let (offset, epoch) = b1.fetch_position();
    assert_eq!((offset, epoch), (3, 1));
    let (d, end) = diverge(&mut b2, &mut b1, 1);
    assert_eq!(
        d,
        EpochEndOffset {
            epoch: 0,
            end_offset: 3
        }
    );
    assert_eq!(end, 3);
    let (offset, epoch) = b1.fetch_position();
    assert_eq!((offset, epoch), (3, 0), "the empty epoch is gone");
    let r = b2.follower_fetch(1, offset, epoch, 0, 0).expect("fetch");
    assert!(r.diverging_epoch.is_none());
    assert_eq!(r.isr_proposal.expect("rejoins").new_isr, vec![2, 1]);
}

#[test]
fn leader_epoch_rule_and_unknown_replicas() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut leader = replica(dir.path(), 1);
    leader.apply(state(1, 5, &[1, 2, 3]), 0);
    assert!(leader.check_leader(5).is_ok());
    assert!(leader.check_leader(-1).is_ok());
    assert!(matches!(
        leader.check_leader(4),
        Err(ReplicationError::FencedLeaderEpoch { .. })
    ));
    assert!(matches!(
        leader.check_leader(6),
        Err(ReplicationError::UnknownLeaderEpoch { .. })
    ));
    assert!(matches!(
        leader.follower_fetch(9, 0, -1, 0, 0),
        Err(ReplicationError::UnknownReplica { replica: 9, .. })
    ));
}

/// One step of a random schedule on a leader with followers 2 and 3.
#[derive(Debug, Clone)]
enum Step {
    Append(usize),
    Fetch { follower: i32, up_to_fraction: u8 },
    Tick(i64),
    Shrink,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (1usize..5).prop_map(Step::Append),
        (2i32..4, 0u8..=4).prop_map(|(follower, up_to_fraction)| Step::Fetch {
            follower,
            up_to_fraction
        }),
        (1i64..20_000).prop_map(Step::Tick),
        Just(Step::Shrink),
    ]
}

proptest! {
    /// Over any schedule: the HW never moves back, never passes the log end of an ISR member
    /// that has fetched (nor the leader's), and an acknowledged acks=all append is below it.
    #[test]
    fn high_watermark_never_moves_back_nor_passes_an_isr_member(steps in proptest::collection::vec(step(), 1..60)) {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut leader = replica(dir.path(), 1);
        let mut isr = vec![1, 2, 3];
        let mut partition_epoch = 0;
        let apply = |leader: &mut Partition, isr: &[i32], pe: i32, now: i64| {
            leader.apply(PartitionState { leader: 1, leader_epoch: 1, partition_epoch: pe, replicas: vec![1, 2, 3], isr: isr.to_vec() }, now)
        };
        apply(&mut leader, &isr, partition_epoch, 0);
        let mut now = 0;
        let mut follower_leo = std::collections::BTreeMap::from([(2, 0i64), (3, 0i64)]);
        let mut hw = leader.high_watermark();
        let mut acked: Vec<i64> = Vec::new();
        let mut waiting: Vec<(i32, i64)> = Vec::new();
        for s in steps {
            match s {
                Step::Append(n) => {
                    let a = leader.append_as_leader(valid(&batch(n)), -1, 1, now).expect("append");
                    waiting.push((a.leader_epoch, a.info.last_offset));
                }
                Step::Fetch { follower, up_to_fraction } => {
                    let leo = leader.log().log_end_offset();
                    let have = follower_leo[&follower];
                    let to = have + (leo - have) * i64::from(up_to_fraction) / 4;
                    follower_leo.insert(follower, to);
                    let r = leader.follower_fetch(follower, to, -1, 0, now).expect("fetch");
                    if let Some(p) = r.isr_proposal {
                        isr = p.new_isr;
                        partition_epoch += 1;
                        apply(&mut leader, &isr, partition_epoch, now);
                    }
                }
                Step::Tick(ms) => now += ms,
                Step::Shrink => {
                    if let Some(p) = leader.maybe_shrink_isr(now, 30_000) {
                        isr = p.new_isr;
                        partition_epoch += 1;
                        apply(&mut leader, &isr, partition_epoch, now);
                    }
                }
            }
            let new_hw = leader.high_watermark();
            prop_assert!(new_hw >= hw, "HW moved back: {hw} -> {new_hw}");
            prop_assert!(new_hw <= leader.log().log_end_offset());
            for r in &isr {
                if *r != 1 {
                    prop_assert!(new_hw <= follower_leo[r], "HW {new_hw} passes ISR member {r} at {}", follower_leo[r]);
                }
            }
            hw = new_hw;
            waiting.retain(|(epoch, last)| match leader.acks_all_outcome(*epoch, *last, 1) {
                Some(Ok(())) => { acked.push(*last); false }
                None => true,
                Some(Err(e)) => panic!("unexpected {e}"),
            });
            for last in &acked {
                prop_assert!(*last < hw, "acknowledged offset {last} not below the HW {hw}");
            }
        }
    }
}

/// A batch of `n` records from producer `pid` at `epoch`, from sequence `seq`.
fn producer_batch(pid: i64, epoch: i16, seq: i32, n: usize, transactional: bool) -> Bytes {
    use odradek_log::records::{encode_producer_batch, ProducerBatch};
    let records: Vec<NewRecord> = (0..n)
        .map(|i| NewRecord::value(format!("p{pid}-{}", seq as usize + i), 0))
        .collect();
    let producer = ProducerBatch {
        producer_id: pid,
        producer_epoch: epoch,
        base_sequence: seq,
        transactional,
    };
    encode_producer_batch(&records, Compression::None, producer).expect("encode")
}

fn idempotent(pid: i64, epoch: i16, seq: i32, n: usize) -> Bytes {
    producer_batch(pid, epoch, seq, n, false)
}

fn transactional(pid: i64, epoch: i16, seq: i32, n: usize) -> Bytes {
    producer_batch(pid, epoch, seq, n, true)
}

#[test]
fn an_idempotent_retry_gets_its_original_offsets_on_the_leader_after_restart_and_failover() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut leader = replica(dir.path(), 1);
    let mut f2 = replica(dir.path(), 2);
    let s = state(1, 1, &[1, 2]);
    leader.apply(s.clone(), 0);
    f2.apply(s, 0);
    leader
        .append_as_leader(valid(&batch(2)), 1, 1, 0)
        .expect("plain");
    let first = leader
        .append_as_leader(valid(&idempotent(7, 0, 0, 3)), -1, 1, 0)
        .expect("first");
    assert_eq!(
        (
            first.info.first_offset,
            first.info.last_offset,
            first.duplicate
        ),
        (2, 4, false)
    );
    let retry = leader
        .append_as_leader(valid(&idempotent(7, 0, 0, 3)), -1, 1, 0)
        .expect("retry");
    assert_eq!(
        (
            retry.info.first_offset,
            retry.info.last_offset,
            retry.duplicate
        ),
        (2, 4, true)
    );
    assert_eq!(leader.log().log_end_offset(), 5, "nothing appended twice");
    let gap = leader.append_as_leader(valid(&idempotent(7, 0, 9, 1)), -1, 1, 0);
    assert_eq!(
        gap.expect_err("gap").error_code(),
        odradek_common::ErrorCode::OutOfOrderSequenceNumber
    );

    // The follower rebuilds the state from what it replicates; as the new leader it
    // recognises the retry.
    replicate(&leader, &mut f2, 0);
    let s2 = state(2, 2, &[1, 2]);
    f2.apply(s2, 0);
    let retry = f2
        .append_as_leader(valid(&idempotent(7, 0, 0, 3)), -1, 1, 0)
        .expect("retry on the new leader");
    assert_eq!((retry.info.first_offset, retry.duplicate), (2, true));
    let next = f2
        .append_as_leader(valid(&idempotent(7, 0, 3, 1)), -1, 1, 0)
        .expect("next");
    assert_eq!(next.info.first_offset, 5);

    // A restart without a clean close (no snapshot) replays the log; with one, loads it.
    let config = LogConfig::default();
    let path = dir.path().join("b2");
    drop(f2);
    for clean in [false, true] {
        let log = Log::open(&path, config.clone(), 0).expect("reopen");
        let mut p = Partition::new("t", 0, 2, log, None).expect("recover");
        p.apply(state(2, 3, &[2]), 0);
        let retry = p
            .append_as_leader(valid(&idempotent(7, 0, 3, 1)), -1, 1, 0)
            .expect("retry after restart");
        assert_eq!(
            (retry.info.first_offset, retry.duplicate),
            (5, true),
            "clean={clean}"
        );
        if clean {
            assert!(path.read_dir().expect("dir").any(|e| e
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .ends_with(".snapshot")));
        }
        p.into_log().close().expect("close");
    }
}

#[test]
fn truncation_forgets_the_producer_batches_it_removes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut leader = replica(dir.path(), 1);
    let mut f2 = replica(dir.path(), 2);
    let s = state(1, 1, &[1, 2]);
    leader.apply(s.clone(), 0);
    f2.apply(s, 0);
    leader
        .append_as_leader(valid(&idempotent(7, 0, 0, 1)), -1, 1, 0)
        .expect("committed");
    replicate(&leader, &mut f2, 0);
    leader.follower_fetch(2, 1, 1, 0, 0).expect("fetch");
    // Broker 1 appends seq 1 that never reaches broker 2.
    leader
        .append_as_leader(valid(&idempotent(7, 0, 1, 1)), -1, 1, 0)
        .expect("unreplicated");
    // Broker 2 leads in epoch 2 and takes seq 1 from the producer's retry.
    f2.apply(state(2, 2, &[2]), 0);
    let retried = f2
        .append_as_leader(valid(&idempotent(7, 0, 1, 1)), -1, 1, 0)
        .expect("retried on the new leader");
    assert!(!retried.duplicate);
    // Broker 1 follows, truncates its tail, and must not think seq 1 is at its old offset.
    leader.apply(state(2, 2, &[2]), 0);
    diverge(&mut f2, &mut leader, 1);
    assert_eq!(
        leader
            .producer_states()
            .get(7)
            .expect("known")
            .last_sequence(),
        0
    );
    replicate(&f2, &mut leader, 0);
    assert_eq!(
        leader
            .producer_states()
            .get(7)
            .expect("known")
            .last_sequence(),
        1
    );
}

#[test]
fn open_transactions_hold_the_last_stable_offset_and_aborted_ones_are_reported() {
    use odradek_log::ControlRecord;
    use odradek_replication::producer::AbortedTxn;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut leader = replica(dir.path(), 1);
    let mut f2 = replica(dir.path(), 2);
    let s = state(1, 1, &[1, 2]);
    leader.apply(s.clone(), 0);
    f2.apply(s, 0);
    leader
        .append_as_leader(valid(&batch(2)), -1, 1, 0)
        .expect("plain"); // 0..1
    leader
        .append_as_leader(valid(&transactional(5, 0, 0, 2)), -1, 1, 0)
        .expect("txn 5"); // 2..3
    leader
        .append_as_leader(valid(&transactional(6, 0, 0, 1)), -1, 1, 0)
        .expect("txn 6"); // 4
                          // A non-transactional batch from a producer inside a transaction is refused.
    let bad = leader.append_as_leader(valid(&idempotent(5, 0, 2, 1)), -1, 1, 0);
    assert_eq!(
        bad.expect_err("refused").error_code(),
        odradek_common::ErrorCode::InvalidTxnState
    );
    replicate(&leader, &mut f2, 0);
    leader.follower_fetch(2, 5, 1, 0, 0).expect("fetch");
    assert_eq!(leader.high_watermark(), 5);
    assert_eq!(leader.last_stable_offset(), 2, "txn 5 is open");
    let abort = ControlRecord {
        commit: false,
        coordinator_epoch: 0,
    };
    let commit = ControlRecord {
        commit: true,
        coordinator_epoch: 0,
    };
    let m = leader
        .append_marker_as_leader(5, 0, abort, 1, 0)
        .expect("abort 5"); // 5
    assert_eq!(m.info.first_offset, 5);
    assert_eq!(
        leader.last_stable_offset(),
        2,
        "the marker is not committed yet"
    );
    leader
        .append_marker_as_leader(6, 0, commit, 1, 0)
        .expect("commit 6"); // 6
    replicate(&leader, &mut f2, 0);
    leader.follower_fetch(2, 7, 1, 0, 0).expect("fetch");
    assert_eq!(leader.high_watermark(), 7);
    assert_eq!(leader.last_stable_offset(), 7);
    let aborted = vec![AbortedTxn {
        producer_id: 5,
        first_offset: 2,
        last_offset: 5,
    }];
    assert_eq!(leader.aborted_transactions(0, 7), aborted);
    assert_eq!(
        leader.aborted_transactions(6, 7),
        vec![],
        "ended before the read"
    );
    assert_eq!(leader.aborted_transactions(0, 2), vec![], "began after it");
    // The follower learned the same from the markers it replicated.
    assert_eq!(f2.aborted_transactions(0, 7), aborted);
    // A zombie coordinator and an old producer epoch are refused.
    let old = ControlRecord {
        commit: true,
        coordinator_epoch: -5,
    };
    assert!(leader.append_marker_as_leader(6, 0, old, 1, 0).is_err());
    // After a restart (clean, then not) the aborted transaction is still known.
    let path = dir.path().join("b1");
    leader.into_log().close().expect("close");
    for _ in 0..2 {
        let log = Log::open(&path, LogConfig::default(), 0).expect("reopen");
        let p = Partition::new("t", 0, 1, log, Some(7)).expect("recover");
        assert_eq!(p.aborted_transactions(0, 7), aborted);
        assert_eq!(p.last_stable_offset(), 7);
        drop(p);
    }
}
