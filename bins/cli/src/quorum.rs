//! `odradek metadata-quorum describe | add-controller | remove-controller`, as
//! kafka-metadata-quorum prints them (Kafka 3.9+, KIP-853).

use std::collections::BTreeMap;

use clap::{Args, Subcommand};
use kafka_protocol::messages::describe_quorum_response::ReplicaState;
use odradek_client::{Client, ClientError};

#[derive(Subcommand)]
pub enum QuorumCommand {
    /// The controller quorum, as kafka-metadata-quorum describe prints it.
    Describe(QuorumArgs),
    /// Add the controller that `--command-config` describes (its server.properties: node.id,
    /// its controller listener) to the voters: it catches up as an observer first.
    #[command(name = "add-controller")]
    AddController,
    /// Remove a controller from the voters.
    #[command(name = "remove-controller")]
    RemoveController {
        #[arg(long = "controller-id", short = 'i')]
        controller_id: i32,
        /// Its metadata directory id (from its meta.properties; optional here).
        #[arg(long = "controller-directory-id", short = 'd')]
        controller_directory_id: Option<String>,
    },
}

#[derive(Args)]
pub struct QuorumArgs {
    /// Leader, epoch, high watermark, lag, voters and observers.
    #[arg(long)]
    status: bool,
    /// Each voter's and observer's log end offset, lag and last fetch and caught-up times.
    #[arg(long)]
    replication: bool,
}

/// Kafka prints the directory id of a voter; Odradek's quorum does not track them.
const NO_DIRECTORY: &str = "AAAAAAAAAAAAAAAAAAAAAA";

fn bad(m: impl Into<String>) -> ClientError {
    ClientError::Protocol(m.into())
}

fn properties(path: &str) -> Result<BTreeMap<String, String>, ClientError> {
    let text =
        std::fs::read_to_string(path).map_err(|e| bad(format!("cannot read {path}: {e}")))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('!'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect())
}

/// The controller's advertised (else bound) endpoints of its controller listeners.
fn controller_endpoints(
    props: &BTreeMap<String, String>,
) -> Result<Vec<(String, String, u16)>, ClientError> {
    let names = props
        .get("controller.listener.names")
        .ok_or_else(|| bad("controller.listener.names was not found. Is this a valid controller configuration file?"))?;
    let parse = |key: &str| -> BTreeMap<String, (String, u16)> {
        props
            .get(key)
            .into_iter()
            .flat_map(|v| v.split(','))
            .filter_map(|l| {
                let (name, addr) = l.trim().split_once("://")?;
                let (host, port) = addr.rsplit_once(':')?;
                let host = if host.is_empty() { "localhost" } else { host };
                Some((name.to_string(), (host.to_string(), port.parse().ok()?)))
            })
            .collect()
    };
    if !props.contains_key("listeners") {
        return Err(bad(
            "listeners was not found. Is this a valid controller configuration file?",
        ));
    }
    // An advertised listener overrides the listener of the same name, as in Kafka.
    let mut parsed = parse("listeners");
    parsed.extend(parse("advertised.listeners"));
    names
        .split(',')
        .map(|n| {
            let n = n.trim();
            parsed
                .get(n)
                .map(|(h, p)| (n.to_string(), h.clone(), *p))
                .ok_or_else(|| {
                    bad(format!(
                        "Cannot find information about controller listener name: {n}"
                    ))
                })
        })
        .collect()
}

/// The metadata directory's id from its meta.properties.
fn directory_id(props: &BTreeMap<String, String>) -> Result<String, ClientError> {
    let dir = props
        .get("metadata.log.dir")
        .or_else(|| props.get("log.dirs"))
        .or_else(|| props.get("log.dir"))
        .and_then(|d| d.split(',').next())
        .map(|d| d.trim().to_string())
        .ok_or_else(|| bad("neither metadata.log.dir nor log.dirs was found"))?;
    let meta = std::path::Path::new(&dir).join("meta.properties");
    let props = properties(&meta.display().to_string())?;
    props.get("directory.id").cloned().ok_or_else(|| {
        bad(format!(
            "{} has no directory.id: format the controller first",
            meta.display()
        ))
    })
}

/// `command_config`: the global `--command-config` file, which for add-controller is the new
/// controller's configuration (as kafka-metadata-quorum takes it).
pub async fn run(
    client: &mut Client,
    command: QuorumCommand,
    command_config: Option<&std::path::Path>,
) -> Result<(), ClientError> {
    match command {
        QuorumCommand::Describe(args) => describe(client, args).await,
        QuorumCommand::AddController => {
            let command_config = command_config
                .ok_or_else(|| bad("add-controller needs --command-config <the new controller's server.properties>"))?
                .display()
                .to_string();
            let props = properties(&command_config)?;
            let id: i32 = props
                .get("node.id")
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| {
                    bad("node.id was not found. Is this a valid controller configuration file?")
                })?;
            let endpoints = controller_endpoints(&props)?;
            let dir = directory_id(&props)?;
            client.add_raft_voter(id, &dir, &endpoints).await?;
            let shown: Vec<String> = endpoints
                .iter()
                .map(|(n, h, p)| format!("{n}://{h}:{p}"))
                .collect();
            println!(
                "Added controller {id} with directory id {dir} and endpoints: {}",
                shown.join(", ")
            );
            Ok(())
        }
        QuorumCommand::RemoveController {
            controller_id,
            controller_directory_id,
        } => {
            if controller_id < 0 {
                return Err(bad(format!(
                    "Invalid negative --controller-id: {controller_id}"
                )));
            }
            let dir = controller_directory_id.unwrap_or_else(|| NO_DIRECTORY.to_string());
            client.remove_raft_voter(controller_id, &dir).await?;
            println!("Removed KRaft controller {controller_id} with directory id {dir}");
            Ok(())
        }
    }
}

async fn describe(client: &mut Client, args: QuorumArgs) -> Result<(), ClientError> {
    client.metadata(Some(&[]), false).await?;
    let resp = client.describe_quorum().await?;
    let p = resp
        .topics
        .first()
        .and_then(|t| t.partitions.first())
        .ok_or_else(|| bad("empty DescribeQuorum response"))?;
    ClientError::check(
        p.error_code,
        p.error_message.as_ref().map(|m| m.to_string()),
    )?;
    let endpoints: BTreeMap<i32, Vec<String>> = resp
        .nodes
        .iter()
        .map(|n| {
            (
                n.node_id.0,
                n.listeners
                    .iter()
                    .map(|l| format!("{}://{}:{}", l.name, l.host, l.port))
                    .collect(),
            )
        })
        .collect();
    let leader = p
        .current_voters
        .iter()
        .find(|v| v.replica_id == p.leader_id);
    let leader_end = leader.map_or(-1, |l| l.log_end_offset);
    let lag = |end: i64| {
        if end < 0 || leader_end < 0 {
            -1
        } else {
            leader_end - end
        }
    };
    if args.status || !args.replication {
        let slowest = p.current_voters.iter().min_by_key(|v| v.log_end_offset);
        let max_lag = slowest.map_or(0, |s| lag(s.log_end_offset));
        // As Kafka: the leader's last caught-up time minus the slowest voter's.
        let max_lag_time = match (leader, slowest) {
            (Some(l), Some(s)) if l.replica_id == s.replica_id => 0,
            (Some(l), Some(s))
                if l.last_caught_up_timestamp >= 0 && s.last_caught_up_timestamp >= 0 =>
            {
                l.last_caught_up_timestamp - s.last_caught_up_timestamp
            }
            _ => -1,
        };
        let list = |rs: &[ReplicaState]| {
            let items: Vec<String> = rs
                .iter()
                .map(|r| {
                    let eps: Vec<String> = endpoints
                        .get(&r.replica_id.0)
                        .into_iter()
                        .flatten()
                        .map(|e| format!("\"{e}\""))
                        .collect();
                    // Kafka prints null for an unknown directory id and leaves out an empty
                    // endpoint list.
                    let eps = if eps.is_empty() {
                        String::new()
                    } else {
                        format!(", \"endpoints\": [{}]", eps.join(", "))
                    };
                    format!("{{\"id\": {}, \"directoryId\": null{eps}}}", r.replica_id.0)
                })
                .collect();
            format!("[{}]", items.join(", "))
        };
        println!(
            "ClusterId:              {}",
            client.cluster_id().unwrap_or("unknown")
        );
        println!("LeaderId:               {}", p.leader_id.0);
        println!("LeaderEpoch:            {}", p.leader_epoch);
        println!("HighWatermark:          {}", p.high_watermark);
        println!("MaxFollowerLag:         {max_lag}");
        println!("MaxFollowerLagTimeMs:   {max_lag_time}");
        println!("CurrentVoters:          {}", list(&p.current_voters));
        println!("CurrentObservers:       {}", list(&p.observers));
    }
    if args.replication {
        println!("NodeId\tDirectoryId\tLogEndOffset\tLag\tLastFetchTimestamp\tLastCaughtUpTimestamp\tStatus");
        let mut rows: Vec<(&ReplicaState, &str)> = Vec::new();
        rows.extend(leader.map(|l| (l, "Leader")));
        rows.extend(
            p.current_voters
                .iter()
                .filter(|v| v.replica_id != p.leader_id)
                .map(|v| (v, "Follower")),
        );
        rows.extend(p.observers.iter().map(|v| (v, "Observer")));
        for (v, status) in rows {
            println!(
                "{}\t{NO_DIRECTORY}\t{}\t{}\t{}\t{}\t{status}",
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
