//! KIP-848 consumer groups at scale: what one ConsumerGroupHeartbeat costs the coordinator in a
//! group of growing size (members subscribed to 100 topics of 10 partitions): a steady
//! heartbeat (nothing changes), and a member joining (the group epoch moves, the uniform
//! assignor computes the whole target again, the joiner is reconciled).
//!
//! ```sh
//! cargo bench --bench groups
//! ```
//! Figures: BENCHMARKS.md ("Consumer groups (KIP-848) at scale").

use std::collections::BTreeMap;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion};
use odradek::common::Uuid;
use odradek::coordinator::{ConsumerHeartbeat, GroupConfig, Groups};

const TOPICS: u8 = 100;
const PARTITIONS: i32 = 10;

fn topics() -> BTreeMap<String, (Uuid, i32)> {
    (0..TOPICS)
        .map(|t| (format!("t{t}"), (Uuid([t; 16]), PARTITIONS)))
        .collect()
}

fn join(member: &str) -> ConsumerHeartbeat {
    ConsumerHeartbeat {
        group_id: "g".into(),
        member_id: member.into(),
        rebalance_timeout_ms: 300_000,
        subscribed_topic_names: Some((0..TOPICS).map(|t| format!("t{t}")).collect()),
        owned: Some(Default::default()),
        api_version: 1,
        ..Default::default()
    }
}

/// A settled group, its topics, and each member's id and epoch.
type Settled = (Groups, BTreeMap<String, (Uuid, i32)>, Vec<(String, i32)>);

/// A group of `members` members, every one at its target (each heartbeat once more after all
/// joined, acknowledging what it holds, until nothing moves).
fn settled(members: usize) -> Settled {
    let topics = topics();
    let mut groups = Groups::new(GroupConfig::default(), "bench");
    let mut epochs: Vec<(String, i32)> = Vec::new();
    for m in 0..members {
        let id = format!("member-{m}");
        let (r, _) = groups.consumer_heartbeat(0, join(&id), &topics);
        epochs.push((id, r.member_epoch));
    }
    let mut owned: Vec<Option<odradek::coordinator::Assignment>> = vec![None; members];
    for _round in 0..4 {
        for (i, (id, epoch)) in epochs.iter_mut().enumerate() {
            let hb = ConsumerHeartbeat {
                group_id: "g".into(),
                member_id: id.clone(),
                member_epoch: *epoch,
                rebalance_timeout_ms: -1,
                owned: owned[i].clone(),
                api_version: 1,
                ..Default::default()
            };
            let (r, _) = groups.consumer_heartbeat(1, hb, &topics);
            *epoch = r.member_epoch;
            if let Some(a) = r.assignment {
                owned[i] = Some(a);
            }
        }
    }
    (groups, topics, epochs)
}

fn heartbeat(c: &mut Criterion) {
    let mut g = c.benchmark_group("consumer_group_heartbeat");
    g.measurement_time(Duration::from_secs(5));
    for members in [10usize, 100, 1000] {
        let (mut groups, topics, epochs) = settled(members);
        let (id, epoch) = epochs[members / 2].clone();
        g.bench_with_input(BenchmarkId::new("steady", members), &members, |b, _| {
            b.iter(|| {
                let hb = ConsumerHeartbeat {
                    group_id: "g".into(),
                    member_id: id.clone(),
                    member_epoch: epoch,
                    rebalance_timeout_ms: -1,
                    api_version: 1,
                    ..Default::default()
                };
                groups.consumer_heartbeat(2, hb, &topics)
            })
        });
        let base = groups.clone();
        g.bench_with_input(BenchmarkId::new("join", members), &members, |b, _| {
            b.iter_batched(
                || base.clone(),
                |mut groups| groups.consumer_heartbeat(3, join("newcomer"), &topics),
                BatchSize::LargeInput,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, heartbeat);
criterion_main!(benches);
