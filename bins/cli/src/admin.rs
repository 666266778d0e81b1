//! `odradek configs ...` and `odradek metadata-quorum describe ...`.

use clap::{Args, Subcommand, ValueEnum};
use odradek_client::{Client, ClientError};

#[derive(Clone, Copy, ValueEnum)]
pub enum Entity {
    Topic,
    Broker,
}

impl Entity {
    fn code(self) -> i8 {
        match self {
            Entity::Topic => 2,
            Entity::Broker => 4,
        }
    }
}

#[derive(Subcommand)]
pub enum ConfigsCommand {
    /// The configs of a topic or broker, with where each value comes from.
    Describe {
        #[arg(long)]
        entity: Entity,
        #[arg(long)]
        name: String,
    },
    /// Set and delete configs.
    Alter {
        #[arg(long)]
        entity: Entity,
        #[arg(long)]
        name: String,
        /// key=value[,key=value...]
        #[arg(long = "add-config")]
        add: Option<String>,
        /// key[,key...]
        #[arg(long = "delete-config")]
        delete: Option<String>,
    },
}

#[derive(Subcommand)]
pub enum QuorumCommand {
    /// The controller quorum, as kafka-metadata-quorum describe prints it.
    Describe(QuorumArgs),
}

#[derive(Args)]
pub struct QuorumArgs {
    /// Leader, epoch, high watermark, lag and voters.
    #[arg(long)]
    status: bool,
    /// Each voter's log end offset and lag.
    #[arg(long)]
    replication: bool,
}

fn source_name(s: i8) -> &'static str {
    match s {
        1 => "DYNAMIC_TOPIC_CONFIG",
        2 => "DYNAMIC_BROKER_CONFIG",
        3 => "DYNAMIC_DEFAULT_BROKER_CONFIG",
        4 => "STATIC_BROKER_CONFIG",
        5 => "DEFAULT_CONFIG",
        _ => "UNKNOWN",
    }
}

pub async fn configs(client: &mut Client, command: ConfigsCommand) -> Result<(), ClientError> {
    match command {
        ConfigsCommand::Describe { entity, name } => {
            println!(
                "Configs for {} '{name}':",
                match entity {
                    Entity::Topic => "topic",
                    Entity::Broker => "broker",
                }
            );
            for (k, v, s) in client.describe_configs(entity.code(), &name).await? {
                println!("  {k}={v} ({})", source_name(s));
            }
        }
        ConfigsCommand::Alter {
            entity,
            name,
            add,
            delete,
        } => {
            let mut ops = Vec::new();
            for pair in add
                .iter()
                .flat_map(|a| a.split(','))
                .filter(|p| !p.is_empty())
            {
                let (k, v) = pair.split_once('=').ok_or_else(|| {
                    ClientError::Protocol(format!("--add-config {pair:?}: expected key=value"))
                })?;
                ops.push((k.trim().to_string(), 0, Some(v.trim().to_string())));
            }
            for k in delete
                .iter()
                .flat_map(|d| d.split(','))
                .filter(|k| !k.is_empty())
            {
                ops.push((k.trim().to_string(), 1, None));
            }
            if ops.is_empty() {
                return Err(ClientError::Protocol(
                    "nothing to alter: give --add-config and/or --delete-config".into(),
                ));
            }
            client.alter_configs(entity.code(), &name, &ops).await?;
            println!("Completed updating config for {name}.");
        }
    }
    Ok(())
}

pub async fn quorum(client: &mut Client, command: QuorumCommand) -> Result<(), ClientError> {
    let QuorumCommand::Describe(args) = command;
    client.metadata(Some(&[]), false).await?;
    let resp = client.describe_quorum().await?;
    let p = resp
        .topics
        .first()
        .and_then(|t| t.partitions.first())
        .ok_or_else(|| ClientError::Protocol("empty DescribeQuorum response".into()))?;
    ClientError::check(
        p.error_code,
        p.error_message.as_ref().map(|m| m.to_string()),
    )?;
    let leader_end = p
        .current_voters
        .iter()
        .map(|v| v.log_end_offset)
        .max()
        .unwrap_or(-1);
    let lag = |end: i64| if end < 0 { -1 } else { leader_end - end };
    if args.status || !args.replication {
        let voters: Vec<String> = p
            .current_voters
            .iter()
            .map(|v| v.replica_id.0.to_string())
            .collect();
        let max_lag = p
            .current_voters
            .iter()
            .map(|v| lag(v.log_end_offset))
            .max()
            .unwrap_or(0);
        println!(
            "ClusterId:              {}",
            client.cluster_id().unwrap_or("unknown")
        );
        println!("LeaderId:               {}", p.leader_id.0);
        println!("LeaderEpoch:            {}", p.leader_epoch);
        println!("HighWatermark:          {}", p.high_watermark);
        println!("MaxFollowerLag:         {max_lag}");
        println!("MaxFollowerLagTimeMs:   -1");
        println!("CurrentVoters:          [{}]", voters.join(","));
        println!("CurrentObservers:       []");
    }
    if args.replication {
        println!("NodeId\tLogEndOffset\tLag\tLastFetchTimestamp\tLastCaughtUpTimestamp\tStatus");
        for v in &p.current_voters {
            let status = if v.replica_id == p.leader_id {
                "Leader"
            } else {
                "Follower"
            };
            println!(
                "{}\t{}\t{}\t{}\t{}\t{status}",
                v.replica_id.0,
                v.log_end_offset,
                lag(v.log_end_offset),
                v.last_fetch_timestamp,
                v.last_caught_up_timestamp
            );
        }
    }
    Ok(())
}
