//! `odradek perf create-topics`: how long a topic creation takes to commit, one request per
//! topic, with `--concurrency` requests in flight (each on a connection of its own).
//!
//! A CreateTopics request is answered once the controller committed the topic and the broker
//! that forwarded it sees it in its metadata, so the latency printed is what an admin client
//! waits for.

use std::time::Instant;

use clap::Args;
use odradek_client::{Client, ClientError};

use crate::perf::Latencies;

#[derive(Args)]
pub struct CreateTopicsArgs {
    /// Topic names are `<prefix>-<n>`.
    #[arg(long, default_value = "perf-topic")]
    prefix: String,
    /// Topics to create.
    #[arg(long)]
    topics: u64,
    /// Partitions per topic.
    #[arg(long, default_value_t = 1)]
    partitions: i32,
    /// Replication factor (-1: the broker's default.replication.factor).
    #[arg(long = "replication-factor", default_value_t = -1, allow_negative_numbers = true)]
    replication_factor: i16,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 1)]
    concurrency: u64,
    /// Number of the first topic (to add topics to an earlier run's).
    #[arg(long, default_value_t = 0)]
    start: u64,
}

pub async fn create_topics(client: &mut Client, a: CreateTopicsArgs) -> Result<(), ClientError> {
    let concurrency = a.concurrency.clamp(1, 1024);
    let started = Instant::now();
    let mut workers = Vec::new();
    for w in 0..concurrency {
        let mut client = client.sibling();
        let names: Vec<String> = (a.start..a.start + a.topics)
            .filter(|n| n % concurrency == w)
            .map(|n| format!("{}-{n}", a.prefix))
            .collect();
        let (partitions, rf) = (a.partitions, a.replication_factor);
        workers.push(tokio::spawn(async move {
            let mut latencies = Latencies::default();
            for name in names {
                let t = Instant::now();
                client.create_topic(&name, partitions, rf, &[]).await?;
                latencies.add(t.elapsed().as_secs_f64() * 1e3, 1);
            }
            Ok::<_, ClientError>(latencies)
        }));
    }
    let mut latencies = Latencies::default();
    for w in workers {
        let joined = w
            .await
            .map_err(|e| ClientError::Protocol(format!("a create-topics worker failed: {e}")))?;
        latencies.merge(joined?);
    }
    let secs = started.elapsed().as_secs_f64();
    let [avg, max, p50, p95, p99, p999] = latencies.summary();
    println!(
        "{} topics of {} partitions created, {:.1} topics/sec, {avg:.2} ms avg latency, {max:.2} ms max latency, {p50:.2} ms 50th, {p95:.2} ms 95th, {p99:.2} ms 99th, {p999:.2} ms 99.9th.",
        a.topics,
        a.partitions,
        a.topics as f64 / secs
    );
    Ok(())
}
