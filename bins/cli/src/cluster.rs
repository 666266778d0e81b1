//! `odradek leader-election`, `odradek log-dirs describe` and `odradek cluster unregister`, as
//! kafka-leader-election, kafka-log-dirs and kafka-cluster print them.

use clap::{Args, Subcommand, ValueEnum};
use odradek_client::{Client, ClientError};
use serde_json::json;

#[derive(Clone, Copy, ValueEnum)]
pub enum ElectionType {
    Preferred,
    Unclean,
}

#[derive(Args)]
pub struct LeaderElectionArgs {
    /// Preferred: back to the first replica; unclean: any live replica of a leaderless partition.
    #[arg(long = "election-type")]
    election_type: ElectionType,
    #[arg(long)]
    topic: Option<String>,
    #[arg(long)]
    partition: Option<i32>,
    /// Every partition of every topic.
    #[arg(long = "all-topic-partitions")]
    all_topic_partitions: bool,
}

#[derive(Subcommand)]
pub enum LogDirsCommand {
    /// Each broker's log directory with the size and offset lag of every replica, as JSON.
    Describe {
        /// Brokers to ask (default: all live brokers), e.g. 1,2.
        #[arg(long = "broker-list")]
        broker_list: Option<String>,
        /// Only these topics, e.g. a,b.
        #[arg(long = "topic-list")]
        topic_list: Option<String>,
    },
}

#[derive(Subcommand)]
pub enum ClusterCommand {
    /// Remove a broker's registration (a broker that is gone for good).
    Unregister {
        #[arg(long)]
        id: i32,
    },
}

pub async fn leader_election(
    client: &mut Client,
    args: LeaderElectionArgs,
) -> Result<(), ClientError> {
    let partitions = match (args.all_topic_partitions, &args.topic, args.partition) {
        (true, None, None) => None,
        (false, Some(t), Some(p)) => Some(vec![(t.clone(), p)]),
        _ => {
            return Err(ClientError::Protocol(
                "give --all-topic-partitions, or --topic and --partition".into(),
            ))
        }
    };
    let code = match args.election_type {
        ElectionType::Preferred => 0,
        ElectionType::Unclean => 1,
    };
    let outcomes = client.elect_leaders(code, partitions.as_deref()).await?;
    let mut elected = Vec::new();
    let mut not_needed = Vec::new();
    let mut failed = Vec::new();
    for (t, p, r) in outcomes {
        match r {
            Ok(()) => elected.push(format!("{t}-{p}")),
            Err(ClientError::Kafka { code: 84, .. }) => not_needed.push(format!("{t}-{p}")),
            Err(e) => failed.push(format!("{t}-{p}: {e}")),
        }
    }
    // Kafka's ElectionType names.
    let kind = match args.election_type {
        ElectionType::Preferred => "PREFERRED",
        ElectionType::Unclean => "UNCLEAN",
    };
    if !elected.is_empty() {
        println!(
            "Successfully completed leader election ({kind}) for partitions {}",
            elected.join(", ")
        );
        if matches!(args.election_type, ElectionType::Unclean) {
            println!("Warning: an unclean election makes a replica that was not in sync the leader; records only the lost in-sync replicas had are gone.");
        }
    }
    if !not_needed.is_empty() {
        println!(
            "Valid replica already elected for partitions {}",
            not_needed.join(", ")
        );
    }
    for f in &failed {
        println!("Error completing leader election ({kind}) for partition: {f}");
    }
    if !failed.is_empty() {
        return Err(ClientError::Protocol(format!(
            "{} replica(s) could not be elected",
            failed.len()
        )));
    }
    Ok(())
}

pub async fn log_dirs(client: &mut Client, command: LogDirsCommand) -> Result<(), ClientError> {
    let LogDirsCommand::Describe {
        broker_list,
        topic_list,
    } = command;
    client.metadata(Some(&[]), false).await?;
    let brokers: Vec<i32> = match broker_list {
        Some(l) => l
            .split(',')
            .map(|b| {
                b.trim().parse().map_err(|_| {
                    ClientError::Protocol(format!("--broker-list: {b:?} is not a broker id"))
                })
            })
            .collect::<Result<_, _>>()?,
        None => client.broker_ids(),
    };
    let existing = client.broker_ids();
    let unknown: Vec<String> = brokers
        .iter()
        .filter(|b| !existing.contains(b))
        .map(i32::to_string)
        .collect();
    if !unknown.is_empty() {
        return Err(ClientError::Protocol(format!(
            "The given brokers do not exist from --broker-list: {}. Current existent brokers: {}",
            unknown.join(","),
            existing
                .iter()
                .map(i32::to_string)
                .collect::<Vec<_>>()
                .join(",")
        )));
    }
    let topics: Option<Vec<String>> =
        topic_list.map(|l| l.split(',').map(|t| t.trim().to_string()).collect());
    let mut out = Vec::new();
    for b in brokers {
        let dirs = client.describe_log_dirs(b).await?;
        let log_dirs: Vec<serde_json::Value> = dirs
            .into_iter()
            .map(|d| {
                let partitions: Vec<serde_json::Value> = d
                    .replicas
                    .iter()
                    .filter(|r| topics.as_ref().is_none_or(|ts| ts.contains(&r.topic)))
                    .map(|r| json!({"partition": format!("{}-{}", r.topic, r.partition), "size": r.size, "offsetLag": r.offset_lag, "isFuture": false}))
                    .collect();
                json!({"logDir": d.path, "error": if d.error_code == 0 { serde_json::Value::Null } else { json!(error_name(d.error_code)) }, "partitions": partitions, "totalBytes": d.total_bytes, "usableBytes": d.usable_bytes})
            })
            .collect();
        out.push(json!({"broker": b, "logDirs": log_dirs}));
    }
    println!("Querying brokers for log directories information");
    println!(
        "Received log directory information from brokers {}",
        out.iter()
            .map(|b| b["broker"].to_string())
            .collect::<Vec<_>>()
            .join(",")
    );
    println!("{}", json!({"version": 1, "brokers": out}));
    Ok(())
}

/// The exception class Kafka's tool prints for a directory's error.
fn error_name(code: i16) -> String {
    match code {
        56 => "KafkaStorageException".to_string(),
        57 => "LogDirNotFoundException".to_string(),
        c => format!("Kafka error {c}"),
    }
}

pub async fn cluster(client: &mut Client, command: ClusterCommand) -> Result<(), ClientError> {
    let ClusterCommand::Unregister { id } = command;
    client.unregister_broker(id).await?;
    println!("Broker {id} is no longer registered.");
    Ok(())
}
