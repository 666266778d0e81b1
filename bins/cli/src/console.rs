//! `odradek produce` and `odradek consume`: lines in, records out, like the Kafka console tools.

use std::io::{BufRead, Write};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use clap::Args;
use odradek_client::group::must_rejoin;
use odradek_client::partitioner::partition_for_key;
use odradek_client::{
    coordinator_moved, AcknowledgeType, Client, ClientError, GroupMember, ShareMember,
};
use odradek_log::records::{decode_batches, encode_batch, Compression, NewRecord};

#[derive(Args)]
pub struct ProduceArgs {
    #[arg(long)]
    topic: String,
    /// Split each line into key and value at the first occurrence of this separator.
    #[arg(long = "key-separator")]
    key_separator: Option<String>,
    /// 0, 1 or -1 (all).
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    acks: i16,
    /// Records per batch at most.
    #[arg(long = "batch-records", default_value_t = 500)]
    batch_records: usize,
}

#[derive(Args)]
pub struct ConsumeArgs {
    #[arg(long)]
    topic: String,
    /// Start at the earliest offset (default: the latest).
    #[arg(long = "from-beginning")]
    from_beginning: bool,
    /// Consume as a member of this consumer group: partitions come from the group's assignment,
    /// reading resumes from its committed offsets, and positions are committed every 5 s and on
    /// exit (Kafka's enable.auto.commit).
    #[arg(long, conflicts_with_all = ["partition", "offset"])]
    group: Option<String>,
    /// Consume as a member of this share group (KIP-932): the group's members share the
    /// topic's partitions and each record goes to one member at a time. Printed records are
    /// accepted (Kafka's implicit acknowledgement), records fetched but not printed (past
    /// --max-messages) are released to the other members, and the member leaves on exit.
    /// Where a new share group starts is the group's share.auto.offset.reset (latest).
    #[arg(
        long = "share-group",
        conflicts_with_all = ["group", "partition", "offset", "from_beginning"]
    )]
    share_group: Option<String>,
    /// Only this partition.
    #[arg(long)]
    partition: Option<i32>,
    /// Start at this offset (with --partition).
    #[arg(long, requires = "partition")]
    offset: Option<i64>,
    /// Stop after this many records.
    #[arg(long = "max-messages")]
    max_messages: Option<usize>,
    /// Stop when no record arrived for this long.
    #[arg(long = "timeout-ms")]
    timeout_ms: Option<u64>,
    /// Print keys too, separated by --key-separator.
    #[arg(long = "print-key")]
    print_key: bool,
    #[arg(long = "key-separator", default_value = "\t")]
    key_separator: String,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

pub async fn produce(client: &mut Client, args: ProduceArgs) -> Result<(), ClientError> {
    let topics = client
        .metadata(Some(std::slice::from_ref(&args.topic)), true)
        .await?;
    let partitions = topics
        .first()
        .map_or(1, |t| t.partitions.len().max(1) as i32);
    let mut pending: Vec<Vec<NewRecord>> = vec![Vec::new(); partitions as usize];
    let mut round_robin = 0i32;
    let stdin = std::io::stdin();
    let mut count = 0usize;
    for line in stdin.lock().lines() {
        let line = line.map_err(|source| ClientError::Io {
            addr: "stdin".into(),
            source,
        })?;
        let (key, value) = match args
            .key_separator
            .as_deref()
            .and_then(|s| line.split_once(s))
        {
            Some((k, v)) => (Some(Bytes::from(k.to_string())), v.to_string()),
            None => (None, line),
        };
        let partition = match &key {
            Some(k) => partition_for_key(k, partitions),
            None => {
                round_robin = (round_robin + 1) % partitions;
                round_robin
            }
        };
        pending[partition as usize].push(NewRecord {
            key,
            value: Some(Bytes::from(value)),
            timestamp_ms: now_ms(),
            headers: vec![],
        });
        count += 1;
        if pending[partition as usize].len() >= args.batch_records {
            send(client, &args, partition, &mut pending[partition as usize]).await?;
        }
    }
    for p in 0..partitions {
        send(client, &args, p, &mut pending[p as usize]).await?;
    }
    eprintln!("Produced {count} records to {}.", args.topic);
    Ok(())
}

async fn send(
    client: &mut Client,
    args: &ProduceArgs,
    partition: i32,
    records: &mut Vec<NewRecord>,
) -> Result<(), ClientError> {
    if records.is_empty() {
        return Ok(());
    }
    let batch = encode_batch(records, Compression::None)
        .map_err(|e| ClientError::Protocol(e.to_string()))?;
    client
        .produce(&args.topic, partition, batch, args.acks)
        .await?;
    records.clear();
    Ok(())
}

pub async fn consume(client: &mut Client, args: ConsumeArgs) -> Result<(), ClientError> {
    if let Some(group) = args.group.clone() {
        return consume_group(client, &args, &group).await;
    }
    if let Some(group) = args.share_group.clone() {
        return consume_share_group(client, &args, &group).await;
    }
    let topics = client
        .metadata(Some(std::slice::from_ref(&args.topic)), false)
        .await?;
    let all: Vec<i32> = topics
        .first()
        .map(|t| t.partitions.iter().map(|p| p.partition).collect())
        .unwrap_or_default();
    let partitions: Vec<i32> = match args.partition {
        Some(p) => vec![p],
        None => all,
    };
    let mut positions = Vec::new();
    for p in &partitions {
        let start = match (args.offset, args.from_beginning) {
            (Some(o), _) => o,
            (None, true) => client.list_offset(&args.topic, *p, -2).await?,
            (None, false) => client.list_offset(&args.topic, *p, -1).await?,
        };
        positions.push(((args.topic.clone(), *p), start));
    }
    let mut printer = Printer::new(&args);
    while !printer.poll(client, &mut positions).await? && !printer.should_stop() {}
    printer.finish();
    Ok(())
}

/// Fetches and prints records, counting them against `--max-messages` and `--timeout-ms`.
struct Printer<'a> {
    args: &'a ConsumeArgs,
    out: std::io::StdoutLock<'static>,
    printed: usize,
    last_record: Instant,
    interrupted: Interrupt,
}

impl<'a> Printer<'a> {
    fn new(args: &'a ConsumeArgs) -> Self {
        Self {
            args,
            out: std::io::stdout().lock(),
            printed: 0,
            last_record: Instant::now(),
            interrupted: Interrupt::install(),
        }
    }

    /// One fetch from each of `positions` (topic, partition -> next offset), printing what came
    /// and advancing the positions; `true` once `--max-messages` records were printed.
    async fn poll(
        &mut self,
        client: &mut Client,
        positions: &mut [((String, i32), i64)],
    ) -> Result<bool, ClientError> {
        for ((topic, p), next) in positions.iter_mut() {
            let (bytes, _hw) = client
                .fetch(topic, *p, *next, 1 << 20, Duration::from_millis(200))
                .await?;
            let records =
                decode_batches(bytes).map_err(|e| ClientError::Protocol(e.to_string()))?;
            let from = *next;
            for r in records.into_iter().filter(|r| r.offset >= from) {
                *next = r.offset + 1;
                if self.print(&r) {
                    let _ = self.out.flush();
                    return Ok(true);
                }
            }
        }
        let _ = self.out.flush();
        Ok(false)
    }

    /// Prints one record; `true` once `--max-messages` records were printed.
    fn print(&mut self, r: &kafka_protocol::records::Record) -> bool {
        print_record(&mut self.out, self.args, r);
        self.printed += 1;
        self.last_record = Instant::now();
        self.args.max_messages.is_some_and(|m| self.printed >= m)
    }

    /// Interrupted, or nothing came for `--timeout-ms`.
    fn should_stop(&self) -> bool {
        self.interrupted.is_stopped()
            || self
                .args
                .timeout_ms
                .is_some_and(|t| self.last_record.elapsed() >= Duration::from_millis(t))
    }

    fn finish(&self) {
        eprintln!("Processed a total of {} messages", self.printed);
    }
}

/// Set by Ctrl-C / SIGTERM, so a consumer stops between fetches: it prints its total and, in a
/// group, commits its positions and leaves (as Kafka's console consumer does).
struct Interrupt(std::sync::Arc<std::sync::atomic::AtomicBool>);

impl Interrupt {
    fn install() -> Self {
        let flag = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let set = flag.clone();
        tokio::spawn(async move {
            let term = async {
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(mut s) => {
                        s.recv().await;
                    }
                    Err(_) => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term => {}
            }
            set.store(true, std::sync::atomic::Ordering::Relaxed);
        });
        Interrupt(flag)
    }

    fn is_stopped(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// Where each assigned partition starts: the group's committed offset, else the earliest
/// (`--from-beginning`) or latest offset, as Kafka's auto.offset.reset.
async fn start_positions(
    client: &mut Client,
    member: &mut GroupMember,
    from_beginning: bool,
) -> Result<Vec<((String, i32), i64)>, ClientError> {
    let assigned = member.assignment().to_vec();
    let mut out = Vec::new();
    for ((topic, p), committed) in member.committed(&assigned).await? {
        let start = if committed >= 0 {
            committed
        } else {
            client
                .list_offset(&topic, p, if from_beginning { -2 } else { -1 })
                .await?
        };
        out.push(((topic, p), start));
    }
    Ok(out)
}

fn print_record(out: &mut impl Write, args: &ConsumeArgs, r: &kafka_protocol::records::Record) {
    let value = String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned();
    let line = if args.print_key {
        let key = String::from_utf8_lossy(r.key.as_deref().unwrap_or_default()).into_owned();
        format!("{key}{}{value}", args.key_separator)
    } else {
        value
    };
    let _ = writeln!(out, "{line}");
}

async fn consume_group(
    client: &mut Client,
    args: &ConsumeArgs,
    group: &str,
) -> Result<(), ClientError> {
    const HEARTBEAT: Duration = Duration::from_secs(3);
    const AUTO_COMMIT: Duration = Duration::from_secs(5);
    let topics = vec![args.topic.clone()];
    let mut member = GroupMember::join(client, group, &topics, 10_000).await?;
    let mut positions = start_positions(client, &mut member, args.from_beginning).await?;
    let (mut last_heartbeat, mut last_commit) = (Instant::now(), Instant::now());
    let mut printer = Printer::new(args);
    loop {
        if positions.is_empty() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        match printer.poll(client, &mut positions).await {
            Ok(true) => break,
            Ok(false) => {}
            // A partition leader moved or its broker died: ask again after a moment.
            Err(e) if e.is_retriable() => tokio::time::sleep(Duration::from_millis(500)).await,
            Err(e) => return Err(e),
        }
        if printer.should_stop() {
            break;
        }
        let mut rejoin = false;
        if last_commit.elapsed() >= AUTO_COMMIT {
            match member.commit(&positions).await {
                Ok(()) => {}
                Err(e) if must_rejoin(&e) => rejoin = true,
                Err(e) if coordinator_moved(&e) => {
                    eprintln!("warning: the group coordinator moved ({e}); finding it again");
                    member.relocate(client).await?;
                }
                Err(e) => return Err(e),
            }
            last_commit = Instant::now();
        }
        if rejoin || last_heartbeat.elapsed() >= HEARTBEAT {
            last_heartbeat = Instant::now();
            let alive = match member.heartbeat().await {
                Ok(alive) => alive,
                Err(e) if coordinator_moved(&e) => {
                    eprintln!("warning: the group coordinator moved ({e}); finding it again");
                    member.relocate(client).await?;
                    true
                }
                Err(e) => return Err(e),
            };
            if rejoin || !alive {
                // Rebalance: commit what was read (when the generation still allows it),
                // rejoin, and start from the new assignment.
                if let Err(e) = member.commit(&positions).await {
                    eprintln!("warning: offsets not committed before rejoining: {e}");
                }
                loop {
                    match member.rejoin(client).await {
                        Err(e) if coordinator_moved(&e) => member.relocate(client).await?,
                        other => break other?,
                    }
                }
                positions = start_positions(client, &mut member, args.from_beginning).await?;
            }
        }
    }
    // On the way out a lost generation is a warning, as in Kafka's console consumer: the
    // records were printed, and the group's next member resumes from the last commit.
    match member.commit(&positions).await {
        Err(e) if must_rejoin(&e) => eprintln!("warning: offsets not committed: {e}"),
        other => other?,
    }
    match member.leave().await {
        Err(e) if must_rejoin(&e) => {}
        other => other?,
    }
    printer.finish();
    Ok(())
}

/// `--share-group`: a share-group member that prints what it is handed. What it printed is
/// accepted by its next fetch (or on exit); what it fetched past `--max-messages` is released,
/// so the group's other members get it at once rather than after the acquisition lock.
async fn consume_share_group(
    client: &mut Client,
    args: &ConsumeArgs,
    group: &str,
) -> Result<(), ClientError> {
    let topics = vec![args.topic.clone()];
    let mut member = ShareMember::join(client, group, &topics).await?;
    let mut printer = Printer::new(args);
    loop {
        let records = match member.poll(client, Duration::from_millis(500)).await {
            Ok(r) => r,
            // A leader or the coordinator moved, or a broker died: ask again after a moment.
            Err(e) if e.is_retriable() => {
                tokio::time::sleep(Duration::from_millis(500)).await;
                Vec::new()
            }
            Err(e) => return Err(e),
        };
        let mut done = false;
        for (i, r) in records.iter().enumerate() {
            if printer.print(&r.record) {
                member.acknowledge(&records[i + 1..], AcknowledgeType::Release);
                done = true;
                break;
            }
        }
        let _ = printer.out.flush();
        for f in member.take_failures() {
            eprintln!("warning: acknowledgement failed: {f}");
        }
        if done || printer.should_stop() {
            break;
        }
    }
    for f in member.close(client).await? {
        eprintln!("warning: acknowledgement failed: {f}");
    }
    printer.finish();
    Ok(())
}
