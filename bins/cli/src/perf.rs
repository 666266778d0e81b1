//! `odradek perf produce|consume`: what Kafka's producer and consumer perf tests print.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::{Args, Subcommand};
use kafka_protocol::messages::ProduceRequest;
use odradek_client::{Client, ClientError};
use odradek_log::records::{decode_batches, encode_batch, Compression, NewRecord};

#[derive(Subcommand)]
pub enum PerfCommand {
    /// Produce N records of B bytes, printing throughput and latency percentiles.
    Produce(ProduceArgs),
    /// Consume N records from the beginning, printing throughput.
    Consume(ConsumeArgs),
}

#[derive(Args)]
pub struct ProduceArgs {
    #[arg(long)]
    topic: String,
    #[arg(long)]
    records: u64,
    #[arg(long = "record-size")]
    record_size: usize,
    /// Records per second at most (-1: as fast as possible).
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    throughput: i64,
    #[arg(long, default_value_t = 1, allow_negative_numbers = true)]
    acks: i16,
    /// Bytes per batch (the producer's batch.size).
    #[arg(long = "batch-size", default_value_t = 16384)]
    batch_size: usize,
    /// Requests in flight per partition (max.in.flight.requests.per.connection).
    #[arg(long = "max-in-flight", default_value_t = 5)]
    max_in_flight: usize,
}

#[derive(Args)]
pub struct ConsumeArgs {
    #[arg(long)]
    topic: String,
    #[arg(long)]
    records: u64,
    #[arg(long = "fetch-size", default_value_t = 1 << 20)]
    fetch_size: i32,
}

pub async fn run(client: &mut Client, command: PerfCommand) -> Result<(), ClientError> {
    match command {
        PerfCommand::Produce(a) => produce(client, a).await,
        PerfCommand::Consume(a) => consume(client, a).await,
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

async fn produce(client: &mut Client, a: ProduceArgs) -> Result<(), ClientError> {
    client
        .metadata(Some(std::slice::from_ref(&a.topic)), true)
        .await?;
    let per_batch = (a.batch_size / (a.record_size + 8)).max(1);
    let value = Bytes::from(vec![b'x'; a.record_size]);
    let start = Instant::now();
    let mut sent = 0u64;
    let mut acked = 0u64;
    let mut latencies_ms: Vec<f64> =
        Vec::with_capacity((a.records / per_batch as u64 + 1) as usize);
    let mut max_ms = 0f64;
    let mut in_flight: VecDeque<(i32, Instant, u64)> = VecDeque::new();
    let mut last_report = Instant::now();
    let (conn, version) = client.produce_connection(&a.topic, 0).await?;
    while acked < a.records {
        while sent < a.records && in_flight.len() < a.max_in_flight.max(1) {
            if a.throughput > 0 {
                let due = Duration::from_secs_f64(sent as f64 / a.throughput as f64);
                if let Some(wait) = due.checked_sub(start.elapsed()) {
                    if !in_flight.is_empty() {
                        break;
                    }
                    tokio::time::sleep(wait).await;
                }
            }
            let n = per_batch.min((a.records - sent) as usize);
            let now_ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64);
            let records: Vec<NewRecord> = (0..n)
                .map(|_| NewRecord {
                    value: Some(value.clone()),
                    timestamp_ms: now_ms,
                    ..NewRecord::default()
                })
                .collect();
            let batch = encode_batch(&records, Compression::None)
                .map_err(|e| ClientError::Protocol(e.to_string()))?;
            let req = Client::produce_request(&a.topic, 0, batch, a.acks);
            let correlation = conn.send_pipelined(&req, version).await?;
            in_flight.push_back((correlation, Instant::now(), n as u64));
            sent += n as u64;
        }
        let Some((correlation, at, n)) = in_flight.pop_front() else {
            break;
        };
        if a.acks != 0 {
            let resp = conn.receive::<ProduceRequest>(correlation, version).await?;
            for t in &resp.responses {
                for p in &t.partition_responses {
                    ClientError::check(
                        p.error_code,
                        p.error_message.as_ref().map(|m| m.to_string()),
                    )?;
                }
            }
        }
        let ms = at.elapsed().as_secs_f64() * 1000.0;
        max_ms = max_ms.max(ms);
        latencies_ms.push(ms);
        acked += n;
        if last_report.elapsed() >= Duration::from_secs(5) {
            let secs = start.elapsed().as_secs_f64();
            eprintln!(
                "{acked} records sent, {:.1} records/sec ({:.2} MB/sec)",
                acked as f64 / secs,
                acked as f64 * a.record_size as f64 / 1e6 / secs
            );
            last_report = Instant::now();
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let avg = latencies_ms.iter().sum::<f64>() / latencies_ms.len().max(1) as f64;
    latencies_ms.sort_by(|x, y| x.total_cmp(y));
    println!(
        "{acked} records sent, {:.1} records/sec ({:.2} MB/sec), {avg:.2} ms avg latency, {max_ms:.2} ms max latency, {:.0} ms 50th, {:.0} ms 95th, {:.0} ms 99th, {:.0} ms 99.9th.",
        acked as f64 / secs,
        acked as f64 * a.record_size as f64 / 1e6 / secs,
        percentile(&latencies_ms, 0.5),
        percentile(&latencies_ms, 0.95),
        percentile(&latencies_ms, 0.99),
        percentile(&latencies_ms, 0.999),
    );
    Ok(())
}

async fn consume(client: &mut Client, a: ConsumeArgs) -> Result<(), ClientError> {
    let topics = client
        .metadata(Some(std::slice::from_ref(&a.topic)), false)
        .await?;
    let partitions: Vec<i32> = topics
        .first()
        .map(|t| t.partitions.iter().map(|p| p.partition).collect())
        .unwrap_or_default();
    let mut next: Vec<i64> = Vec::new();
    for p in &partitions {
        next.push(client.list_offset(&a.topic, *p, -2).await?);
    }
    let start = Instant::now();
    let (mut records, mut bytes) = (0u64, 0u64);
    let mut idle_since = Instant::now();
    while records < a.records {
        let before = records;
        for (i, p) in partitions.iter().enumerate() {
            let (data, _) = client
                .fetch(
                    &a.topic,
                    *p,
                    next[i],
                    a.fetch_size,
                    Duration::from_millis(100),
                )
                .await?;
            bytes += data.len() as u64;
            for r in decode_batches(data).map_err(|e| ClientError::Protocol(e.to_string()))? {
                if r.offset >= next[i] {
                    next[i] = r.offset + 1;
                    records += 1;
                }
            }
        }
        if records > before {
            idle_since = Instant::now();
        } else if idle_since.elapsed() > Duration::from_secs(10) {
            break;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!("start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec");
    println!(
        "{:.3}, {:.3}, {:.4}, {:.4}, {records}, {:.4}",
        0.0,
        secs,
        bytes as f64 / 1e6,
        bytes as f64 / 1e6 / secs,
        records as f64 / secs
    );
    Ok(())
}
