//! `odradek perf produce|consume|end-to-end`: what Kafka's perf tests print
//! (`create-topics` is in `perf_topics`).
//!
//! The producer sends, like a real producer, one Produce request per leader broker carrying a
//! batch for each of that broker's partitions, with up to `--max-in-flight` requests pipelined on
//! each broker connection.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use clap::{Args, Subcommand};
use kafka_protocol::messages::{ApiKey, ProduceRequest};
use odradek_client::{Client, ClientError, Connection};
use odradek_log::records::{decode_batches, encode_batch, Compression, NewRecord};

#[derive(Subcommand)]
pub enum PerfCommand {
    /// Produce N records of B bytes over all partitions, printing throughput and latency.
    Produce(ProduceArgs),
    /// Consume N records from the beginning of all partitions, printing throughput.
    Consume(ConsumeArgs),
    /// Produce at a fixed rate while consuming, printing the end-to-end latency (produce call to
    /// record fetched) of every record.
    EndToEnd(ProduceArgs),
    /// Create N topics, one request each, printing the commit latency an admin client sees.
    CreateTopics(crate::perf_topics::CreateTopicsArgs),
}

#[derive(Args, Clone)]
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
    /// Requests in flight per broker (max.in.flight.requests.per.connection).
    #[arg(long = "max-in-flight", default_value_t = 5)]
    max_in_flight: usize,
    /// Produce as an idempotent producer (enable.idempotence=true): a producer id from
    /// InitProducerId per broker connection, sequence numbers per partition.
    #[arg(long)]
    idempotent: bool,
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
        PerfCommand::EndToEnd(a) => end_to_end(client, a).await,
        PerfCommand::CreateTopics(a) => crate::perf_topics::create_topics(client, a).await,
    }
}

/// Latency samples in milliseconds, each standing for `n` records.
#[derive(Default)]
pub(crate) struct Latencies {
    samples: Vec<(f64, u64)>,
}

impl Latencies {
    pub(crate) fn add(&mut self, ms: f64, n: u64) {
        self.samples.push((ms, n));
    }

    pub(crate) fn merge(&mut self, other: Latencies) {
        self.samples.extend(other.samples);
    }

    /// (avg, max, p50, p95, p99, p99.9) over records.
    pub(crate) fn summary(mut self) -> [f64; 6] {
        self.samples.sort_by(|x, y| x.0.total_cmp(&y.0));
        let total: u64 = self.samples.iter().map(|s| s.1).sum();
        if total == 0 {
            return [0.0; 6];
        }
        let avg = self.samples.iter().map(|s| s.0 * s.1 as f64).sum::<f64>() / total as f64;
        let max = self.samples.last().map_or(0.0, |s| s.0);
        let at = |p: f64| {
            let rank = ((total - 1) as f64 * p).round() as u64;
            let mut seen = 0;
            for (ms, n) in &self.samples {
                seen += n;
                if seen > rank {
                    return *ms;
                }
            }
            max
        };
        [avg, max, at(0.5), at(0.95), at(0.99), at(0.999)]
    }
}

/// A running clock shared by producer and consumer (end-to-end latency is measured in-process).
fn nanos_since(origin: Instant) -> u64 {
    origin.elapsed().as_nanos() as u64
}

/// One broker's share of a produce run.
struct Share {
    addr: String,
    partitions: Vec<i32>,
    records: u64,
    rate: f64,
}

/// Splits `records` over the topic's partitions and groups them by leader.
async fn plan(client: &mut Client, a: &ProduceArgs) -> Result<Vec<Share>, ClientError> {
    let topics = client
        .metadata(Some(std::slice::from_ref(&a.topic)), true)
        .await?;
    let topic = topics
        .first()
        .ok_or_else(|| ClientError::Protocol(format!("no metadata for {}", a.topic)))?;
    let mut by_leader: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
    for p in &topic.partitions {
        if p.leader < 0 {
            return Err(ClientError::Kafka {
                code: 5,
                message: Some(format!("{}-{}", a.topic, p.partition)),
            });
        }
        by_leader.entry(p.leader).or_default().push(p.partition);
    }
    let total = topic.partitions.len().max(1) as u64;
    let mut shares = Vec::new();
    let mut assigned = 0;
    for (i, (leader, partitions)) in by_leader.into_iter().enumerate() {
        let addr = client
            .broker_address(leader)
            .ok_or_else(|| ClientError::Protocol(format!("unknown broker {leader}")))?
            .to_string();
        let records = if i == 0 {
            0
        } else {
            a.records * partitions.len() as u64 / total
        };
        assigned += records;
        let rate = a.throughput as f64 * partitions.len() as f64 / total as f64;
        shares.push(Share {
            addr,
            partitions,
            records,
            rate,
        });
    }
    if let Some(first) = shares.first_mut() {
        first.records = a.records - assigned;
    }
    Ok(shares)
}

/// Produces one broker's share; `stamp` puts the send time into each value (end-to-end runs).
async fn produce_share(
    share: Share,
    a: ProduceArgs,
    client_id: String,
    acked_total: Arc<AtomicU64>,
    origin: Option<Instant>,
    security: odradek_client::ClientSecurity,
) -> Result<Latencies, ClientError> {
    let mut conn = Connection::connect_secure(&share.addr, &client_id, &security).await?;
    let version = conn.version(ApiKey::Produce, 9)?;
    // Idempotence: one producer id for this connection, a sequence per partition.
    let producer = if a.idempotent {
        let v = conn.version(ApiKey::InitProducerId, 4)?;
        let r = conn
            .send(
                &kafka_protocol::messages::InitProducerIdRequest::default()
                    .with_transactional_id(None),
                v,
            )
            .await?;
        ClientError::check(r.error_code, Some("InitProducerId".into()))?;
        Some((r.producer_id.0, r.producer_epoch))
    } else {
        None
    };
    let mut sequences: std::collections::HashMap<i32, i32> = std::collections::HashMap::new();
    let per_batch = (a.batch_size / (a.record_size + 8)).max(1) as u64;
    let filler = Bytes::from(vec![b'x'; a.record_size]);
    let start = Instant::now();
    let (mut sent, mut acked) = (0u64, 0u64);
    let mut latencies = Latencies::default();
    let mut in_flight: VecDeque<(i32, Instant, u64)> = VecDeque::new();
    while acked < share.records {
        while sent < share.records && in_flight.len() < a.max_in_flight.max(1) {
            if share.rate > 0.0 {
                let due = Duration::from_secs_f64(sent as f64 / share.rate);
                if let Some(wait) = due.checked_sub(start.elapsed()) {
                    if !in_flight.is_empty() {
                        break;
                    }
                    tokio::time::sleep(wait).await;
                }
            }
            let now_ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64);
            // Rate-limited runs send what is due by now (at least one record per partition),
            // so records leave at the rate asked for instead of in full batches.
            let per_partition = if share.rate > 0.0 {
                let due = (start.elapsed().as_secs_f64() * share.rate) as u64 + 1;
                (due.saturating_sub(sent) / share.partitions.len() as u64).clamp(1, per_batch)
            } else {
                per_batch
            };
            // Spread what is left evenly, so every partition gets its share.
            let per_partition =
                per_partition.min((share.records - sent).div_ceil(share.partitions.len() as u64));
            let mut batches = Vec::new();
            let mut in_request = 0;
            for p in &share.partitions {
                let n = per_partition.min(share.records - sent - in_request);
                if n == 0 {
                    break;
                }
                let value = match origin {
                    Some(o) => {
                        let mut v = BytesMut::with_capacity(a.record_size.max(8));
                        v.put_u64(nanos_since(o));
                        v.resize(a.record_size.max(8), b'x');
                        v.freeze()
                    }
                    None => filler.clone(),
                };
                let records: Vec<NewRecord> = (0..n)
                    .map(|_| NewRecord {
                        value: Some(value.clone()),
                        timestamp_ms: now_ms,
                        ..NewRecord::default()
                    })
                    .collect();
                let batch = match producer {
                    None => encode_batch(&records, Compression::None),
                    Some((producer_id, producer_epoch)) => {
                        let seq = sequences.entry(*p).or_insert(0);
                        let base_sequence = *seq;
                        *seq = seq.wrapping_add(n as i32);
                        odradek_log::records::encode_producer_batch(
                            &records,
                            Compression::None,
                            odradek_log::records::ProducerBatch {
                                producer_id,
                                producer_epoch,
                                base_sequence,
                                transactional: false,
                            },
                        )
                    }
                }
                .map_err(|e| ClientError::Protocol(e.to_string()))?;
                batches.push((*p, batch));
                in_request += n;
            }
            let req = Client::produce_request(&a.topic, batches, a.acks);
            if a.acks == 0 {
                conn.send_no_response(&req, version).await?;
                in_flight.push_back((-1, Instant::now(), in_request));
            } else {
                let correlation = conn.send_pipelined(&req, version).await?;
                in_flight.push_back((correlation, Instant::now(), in_request));
            }
            sent += in_request;
        }
        let Some((correlation, at, n)) = in_flight.pop_front() else {
            break;
        };
        if correlation >= 0 {
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
        latencies.add(at.elapsed().as_secs_f64() * 1000.0, n);
        acked += n;
        acked_total.fetch_add(n, Ordering::Relaxed);
    }
    Ok(latencies)
}

/// Runs every broker's share at once; prints a progress line every 5 s.
async fn produce_all(
    client: &mut Client,
    a: &ProduceArgs,
    origin: Option<Instant>,
) -> Result<(Latencies, f64), ClientError> {
    let shares = plan(client, a).await?;
    let acked = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let tasks: Vec<_> = shares
        .into_iter()
        .map(|s| {
            tokio::spawn(produce_share(
                s,
                a.clone(),
                client.client_id().to_string(),
                acked.clone(),
                origin,
                client.security().clone(),
            ))
        })
        .collect();
    let progress = {
        let (acked, size) = (acked.clone(), a.record_size);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(5)).await;
                let n = acked.load(Ordering::Relaxed);
                let secs = start.elapsed().as_secs_f64();
                eprintln!(
                    "{n} records sent, {:.1} records/sec ({:.2} MB/sec)",
                    n as f64 / secs,
                    n as f64 * size as f64 / 1e6 / secs
                );
            }
        })
    };
    let mut all = Latencies::default();
    let mut result = Ok(());
    for t in tasks {
        match t.await {
            Ok(Ok(l)) => all.merge(l),
            Ok(Err(e)) => result = Err(e),
            Err(e) => result = Err(ClientError::Protocol(format!("producer task failed: {e}"))),
        }
    }
    progress.abort();
    result.map(|()| (all, start.elapsed().as_secs_f64()))
}

async fn produce(client: &mut Client, a: ProduceArgs) -> Result<(), ClientError> {
    let (latencies, secs) = produce_all(client, &a, None).await?;
    let n = a.records;
    let [avg, max, p50, p95, p99, p999] = latencies.summary();
    println!(
        "{n} records sent, {:.1} records/sec ({:.2} MB/sec), {avg:.2} ms avg latency, {max:.2} ms max latency, {p50:.0} ms 50th, {p95:.0} ms 95th, {p99:.0} ms 99th, {p999:.0} ms 99.9th.",
        n as f64 / secs,
        n as f64 * a.record_size as f64 / 1e6 / secs,
    );
    Ok(())
}

/// The topic's partitions and their offsets at `timestamp` (-1 latest, -2 earliest).
async fn partitions_at(
    client: &mut Client,
    topic: &str,
    timestamp: i64,
) -> Result<Vec<(i32, i64)>, ClientError> {
    let topics = client.metadata(Some(&[topic.to_string()]), false).await?;
    let mut out = Vec::new();
    for p in topics
        .first()
        .map(|t| t.partitions.clone())
        .unwrap_or_default()
    {
        out.push((
            p.partition,
            client.list_offset(topic, p.partition, timestamp).await?,
        ));
    }
    Ok(out)
}

async fn end_to_end(client: &mut Client, a: ProduceArgs) -> Result<(), ClientError> {
    if a.record_size < 8 {
        return Err(ClientError::Protocol(
            "--record-size must be at least 8 (the send time travels in the value)".into(),
        ));
    }
    let next = partitions_at(client, &a.topic, -1).await?;
    let origin = Instant::now();
    let consumer = Client::new(&client.bootstrap(), client.client_id())
        .with_security(client.security().clone());
    let reader = tokio::spawn(read_stamped(
        consumer,
        a.topic.clone(),
        next,
        a.records,
        origin,
    ));
    let produced = produce_all(client, &a, Some(origin)).await;
    let (latencies, seen) = match reader.await {
        Ok(r) => r?,
        Err(e) => return Err(ClientError::Protocol(format!("consumer task failed: {e}"))),
    };
    produced?;
    let secs = origin.elapsed().as_secs_f64();
    let [avg, max, p50, p95, p99, p999] = latencies.summary();
    println!(
        "{seen} records received, {:.1} records/sec ({:.2} MB/sec), {avg:.2} ms avg end-to-end latency, {max:.2} ms max, {p50:.2} ms 50th, {p95:.2} ms 95th, {p99:.2} ms 99th, {p999:.2} ms 99.9th.",
        seen as f64 / secs,
        seen as f64 * a.record_size as f64 / 1e6 / secs,
    );
    if seen < a.records {
        return Err(ClientError::Protocol(format!(
            "only {seen} of {} records came back within 30 s",
            a.records
        )));
    }
    Ok(())
}

/// Fetches from `next` until `records` came back (or nothing came for 30 s), taking each record's
/// latency from the send time in its first 8 bytes.
async fn read_stamped(
    mut consumer: Client,
    topic: String,
    mut next: Vec<(i32, i64)>,
    records: u64,
    origin: Instant,
) -> Result<(Latencies, u64), ClientError> {
    let mut latencies = Latencies::default();
    let mut seen = 0u64;
    let mut idle_since = Instant::now();
    while seen < records && idle_since.elapsed() < Duration::from_secs(30) {
        for (p, offset) in &mut next {
            let (data, _) = consumer
                .fetch(&topic, *p, *offset, 1 << 20, Duration::from_millis(20))
                .await?;
            let now = nanos_since(origin);
            for r in decode_batches(data).map_err(|e| ClientError::Protocol(e.to_string()))? {
                if r.offset < *offset {
                    continue;
                }
                *offset = r.offset + 1;
                seen += 1;
                idle_since = Instant::now();
                let sent = r
                    .value
                    .as_ref()
                    .and_then(|v| v.get(..8))
                    .and_then(|b| b.try_into().ok())
                    .map_or(now, u64::from_be_bytes);
                latencies.add(now.saturating_sub(sent) as f64 / 1e6, 1);
            }
        }
    }
    Ok((latencies, seen))
}

async fn consume(client: &mut Client, a: ConsumeArgs) -> Result<(), ClientError> {
    let mut next = partitions_at(client, &a.topic, -2).await?;
    let start = Instant::now();
    let (mut records, mut bytes) = (0u64, 0u64);
    let mut idle_since = Instant::now();
    while records < a.records {
        let before = records;
        for (p, offset) in &mut next {
            let (data, _) = client
                .fetch(
                    &a.topic,
                    *p,
                    *offset,
                    a.fetch_size,
                    Duration::from_millis(100),
                )
                .await?;
            bytes += data.len() as u64;
            for r in decode_batches(data).map_err(|e| ClientError::Protocol(e.to_string()))? {
                if r.offset >= *offset {
                    *offset = r.offset + 1;
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
