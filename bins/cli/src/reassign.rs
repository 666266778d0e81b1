//! `odradek reassign ...`: kafka-reassign-partitions' generate, execute, verify, cancel and
//! list, with its JSON files and its output; and `balance`, which proposes moves that even out
//! replicas, leaders and bytes per broker.

use std::collections::{BTreeMap, BTreeSet};

use clap::Subcommand;
use odradek_client::{Client, ClientError};
use serde_json::{json, Value};

#[derive(Subcommand)]
pub enum ReassignCommand {
    /// Print the current assignment of some topics and one that moves them onto a broker list.
    Generate {
        /// {"version":1,"topics":[{"topic":"t"}]}
        #[arg(long = "topics-to-move-json-file")]
        topics_to_move_json_file: String,
        /// Brokers to place the replicas on, e.g. 1,2,4.
        #[arg(long = "broker-list")]
        broker_list: String,
    },
    /// Start the reassignment a JSON file describes.
    Execute {
        /// {"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[1,2,3]}]}
        #[arg(long = "reassignment-json-file")]
        reassignment_json_file: String,
        /// Limit replication between the brokers involved to this many bytes per second.
        #[arg(long)]
        throttle: Option<u64>,
        /// Start it even though other reassignments are under way.
        #[arg(long)]
        additional: bool,
    },
    /// Say whether each partition of a JSON file got its replicas; clear throttles when all did.
    Verify {
        #[arg(long = "reassignment-json-file")]
        reassignment_json_file: String,
    },
    /// Cancel the reassignments of a JSON file's partitions (and clear the throttles).
    Cancel {
        #[arg(long = "reassignment-json-file")]
        reassignment_json_file: String,
        /// Leave the throttles in place.
        #[arg(long = "preserve-throttles")]
        preserve_throttles: bool,
    },
    /// The partitions being reassigned.
    List,
    /// Propose moves that even out replicas, leaders and bytes per broker; `--execute` starts
    /// them after printing.
    Balance {
        /// Brokers to balance over (default: every live broker).
        #[arg(long = "broker-list")]
        broker_list: Option<String>,
        /// Start the proposed reassignment.
        #[arg(long)]
        execute: bool,
    },
}

type Assignment = BTreeMap<(String, i32), Vec<i32>>;

fn bad(m: impl Into<String>) -> ClientError {
    ClientError::Protocol(m.into())
}

fn read_json(path: &str) -> Result<Value, ClientError> {
    let text =
        std::fs::read_to_string(path).map_err(|e| bad(format!("cannot read {path}: {e}")))?;
    serde_json::from_str(&text).map_err(|e| bad(format!("{path} is not valid JSON: {e}")))
}

fn broker_list(s: &str) -> Result<Vec<i32>, ClientError> {
    let ids: Vec<i32> = s
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            p.parse()
                .map_err(|_| bad(format!("--broker-list: {p:?} is not a broker id")))
        })
        .collect::<Result<_, _>>()?;
    let unique: BTreeSet<i32> = ids.iter().copied().collect();
    if ids.is_empty() || unique.len() != ids.len() {
        return Err(bad("--broker-list needs distinct broker ids"));
    }
    Ok(ids)
}

/// The partitions of a reassignment JSON file.
fn parse_reassignment(v: &Value) -> Result<Assignment, ClientError> {
    let parts = v
        .get("partitions")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("the reassignment JSON needs a \"partitions\" array"))?;
    let mut out = Assignment::new();
    for p in parts {
        let topic = p
            .get("topic")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("each partition needs a \"topic\""))?;
        let partition = p.get("partition").and_then(Value::as_i64).ok_or_else(|| {
            bad(format!(
                "a partition of {topic} needs a \"partition\" number"
            ))
        })?;
        let replicas: Vec<i32> = p
            .get("replicas")
            .and_then(Value::as_array)
            .ok_or_else(|| bad(format!("{topic}-{partition} needs a \"replicas\" array")))?
            .iter()
            .map(|r| {
                r.as_i64()
                    .map(|r| r as i32)
                    .ok_or_else(|| bad(format!("{topic}-{partition}: replicas must be broker ids")))
            })
            .collect::<Result<_, _>>()?;
        if let Some(dirs) = p.get("log_dirs").and_then(Value::as_array) {
            if dirs.iter().any(|d| d.as_str() != Some("any")) {
                return Err(bad(format!(
                    "{topic}-{partition}: only \"any\" log dirs are supported"
                )));
            }
        }
        if out
            .insert((topic.to_string(), partition as i32), replicas)
            .is_some()
        {
            return Err(bad(format!("{topic}-{partition} appears more than once")));
        }
    }
    Ok(out)
}

fn to_json(a: &Assignment) -> String {
    let partitions: Vec<Value> = a
        .iter()
        .map(|((t, p), r)| {
            json!({"topic": t, "partition": p, "replicas": r, "log_dirs": vec!["any"; r.len()]})
        })
        .collect();
    json!({"version": 1, "partitions": partitions}).to_string()
}

fn names(parts: &[(String, i32)]) -> String {
    parts
        .iter()
        .map(|(t, p)| format!("{t}-{p}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn ids(v: &[i32]) -> String {
    v.iter().map(i32::to_string).collect::<Vec<_>>().join(",")
}

/// The partitions being reassigned.
async fn ongoing(client: &mut Client) -> Result<BTreeSet<(String, i32)>, ClientError> {
    Ok(client
        .list_reassignments(None)
        .await?
        .into_iter()
        .map(|r| (r.topic, r.partition))
        .collect())
}

/// The current replicas of the given topics (all when `None`).
async fn current(
    client: &mut Client,
    topics: Option<&[String]>,
) -> Result<Assignment, ClientError> {
    let mut out = Assignment::new();
    for t in client.metadata(topics, false).await? {
        for p in t.partitions {
            out.insert((t.name.clone(), p.partition), p.replicas);
        }
    }
    Ok(out)
}

pub async fn run(client: &mut Client, command: ReassignCommand) -> Result<(), ClientError> {
    match command {
        ReassignCommand::Generate {
            topics_to_move_json_file,
            broker_list: list,
        } => {
            let brokers = broker_list(&list)?;
            let v = read_json(&topics_to_move_json_file)?;
            let topics: Vec<String> = v
                .get("topics")
                .and_then(Value::as_array)
                .ok_or_else(|| bad("the topics JSON needs a \"topics\" array"))?
                .iter()
                .map(|t| {
                    t.get("topic")
                        .and_then(Value::as_str)
                        .map(str::to_string)
                        .ok_or_else(|| bad("each topic needs a \"topic\" name"))
                })
                .collect::<Result<_, _>>()?;
            let now = current(client, Some(&topics)).await?;
            let mut proposed = Assignment::new();
            let mut index_in_topic: BTreeMap<&str, usize> = BTreeMap::new();
            for ((t, p), replicas) in &now {
                if replicas.len() > brokers.len() {
                    return Err(bad(format!(
                        "{t}-{p} has {} replicas, more than the {} brokers listed",
                        replicas.len(),
                        brokers.len()
                    )));
                }
                // Round robin from a per-topic start, as Kafka's rack-unaware placement.
                let i = index_in_topic.entry(t.as_str()).or_default();
                let start = *i;
                *i += 1;
                let r: Vec<i32> = (0..replicas.len())
                    .map(|j| brokers[(start + j) % brokers.len()])
                    .collect();
                proposed.insert((t.clone(), *p), r);
            }
            println!("Current partition replica assignment");
            println!("{}", to_json(&now));
            println!();
            println!("Proposed partition reassignment configuration");
            println!("{}", to_json(&proposed));
        }
        ReassignCommand::Execute {
            reassignment_json_file,
            throttle,
            additional,
        } => {
            let target = parse_reassignment(&read_json(&reassignment_json_file)?)?;
            if !additional && !client.list_reassignments(None).await?.is_empty() {
                return Err(bad(EXISTING));
            }
            execute(client, &target, throttle).await?;
        }
        ReassignCommand::Verify {
            reassignment_json_file,
        } => {
            let target = parse_reassignment(&read_json(&reassignment_json_file)?)?;
            verify(client, &target).await?;
        }
        ReassignCommand::Cancel {
            reassignment_json_file,
            preserve_throttles,
        } => {
            let target = parse_reassignment(&read_json(&reassignment_json_file)?)?;
            let ongoing = ongoing(client).await?;
            let to_cancel: Vec<(String, i32, Option<Vec<i32>>)> = target
                .keys()
                .filter(|k| ongoing.contains(*k))
                .map(|(t, p)| (t.clone(), *p, None))
                .collect();
            if to_cancel.is_empty() {
                println!("None of the specified partition reassignments are active.");
            } else {
                let cancelled = check_outcomes(client.alter_reassignments(&to_cancel).await?)?;
                println!(
                    "Successfully cancelled partition reassignment{} for: {}",
                    plural(cancelled.len()),
                    names(&cancelled)
                );
            }
            if !preserve_throttles {
                clear_throttles(client, &target).await?;
            }
        }
        ReassignCommand::List => {
            let ongoing = client.list_reassignments(None).await?;
            if ongoing.is_empty() {
                println!("No partition reassignments found.");
            } else {
                println!("Current partition reassignments:");
                for r in ongoing {
                    let list = |label: &str, v: &[i32]| {
                        if v.is_empty() {
                            String::new()
                        } else {
                            format!(" {label}: {}.", ids(v))
                        }
                    };
                    println!(
                        "{}-{}: replicas: {}.{}{}",
                        r.topic,
                        r.partition,
                        ids(&r.replicas),
                        list("adding", &r.adding),
                        list("removing", &r.removing)
                    );
                }
            }
        }
        ReassignCommand::Balance {
            broker_list: list,
            execute: run_it,
        } => {
            // Under way, a partition's replica list holds the replicas leaving too.
            if !client.list_reassignments(None).await?.is_empty() {
                return Err(bad(
                    "reassignments are under way: let them finish (or cancel them) before balancing",
                ));
            }
            let now = current(client, None).await?;
            let brokers = match list {
                Some(l) => broker_list(&l)?,
                None => client.broker_ids(),
            };
            let mut sizes: BTreeMap<(String, i32), i64> = BTreeMap::new();
            for b in client.broker_ids() {
                for d in client.describe_log_dirs(b).await? {
                    for r in d.replicas {
                        let e = sizes.entry((r.topic, r.partition)).or_default();
                        *e = (*e).max(r.size);
                    }
                }
            }
            let proposed = crate::balance::propose(&now, &sizes, &brokers);
            crate::balance::print_summary(&now, &proposed, &sizes, &brokers);
            let moves: Assignment = proposed
                .into_iter()
                .filter(|(k, r)| now.get(k) != Some(r))
                .collect();
            if moves.is_empty() {
                println!("The cluster is balanced: nothing to move.");
                return Ok(());
            }
            println!("Proposed partition reassignment configuration");
            println!("{}", to_json(&moves));
            if run_it {
                println!();
                execute(client, &moves, None).await?;
            }
        }
    }
    Ok(())
}

/// The partitions that succeeded, or the first failure.
fn check_outcomes(
    outcomes: Vec<odradek_client::PartitionOutcome>,
) -> Result<Vec<(String, i32)>, ClientError> {
    let mut ok = Vec::new();
    let mut failed = Vec::new();
    for (t, p, r) in outcomes {
        match r {
            Ok(()) => ok.push((t, p)),
            Err(e) => failed.push(format!("{t}-{p}: {e}")),
        }
    }
    if !failed.is_empty() {
        return Err(bad(format!(
            "some reassignments failed:\n  {}{}",
            failed.join("\n  "),
            if ok.is_empty() {
                String::new()
            } else {
                format!("\nstarted: {}", names(&ok))
            }
        )));
    }
    Ok(ok)
}

const LEADER_RATE: &str = "leader.replication.throttled.rate";
const FOLLOWER_RATE: &str = "follower.replication.throttled.rate";
const LEADER_REPLICAS: &str = "leader.replication.throttled.replicas";
const FOLLOWER_REPLICAS: &str = "follower.replication.throttled.replicas";

async fn execute(
    client: &mut Client,
    target: &Assignment,
    throttle: Option<u64>,
) -> Result<(), ClientError> {
    let topics: Vec<String> = target
        .keys()
        .map(|(t, _)| t.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let now = current(client, Some(&topics)).await?;
    for k in target.keys() {
        if !now.contains_key(k) {
            return Err(bad(format!("partition {}-{} does not exist", k.0, k.1)));
        }
    }
    let before: Assignment = now
        .into_iter()
        .filter(|(k, _)| target.contains_key(k))
        .collect();
    println!("Current partition replica assignment");
    println!();
    println!("{}", to_json(&before));
    println!();
    println!("Save this to use as the --reassignment-json-file option during rollback");
    if let Some(rate) = throttle {
        // Kafka's throttle: the replicas now in place are throttled as leaders (sources), the
        // ones being added as followers, at `rate` bytes/s on every broker involved.
        let mut leaders: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        let mut followers: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        let mut brokers = BTreeSet::new();
        for ((t, p), new) in target {
            let old = &before[&(t.clone(), *p)];
            for b in old {
                leaders.entry(t).or_default().push(format!("{p}:{b}"));
            }
            for b in new.iter().filter(|b| !old.contains(b)) {
                followers.entry(t).or_default().push(format!("{p}:{b}"));
            }
            brokers.extend(old.iter().chain(new.iter()).copied());
        }
        for t in &topics {
            let mut ops = vec![(
                LEADER_REPLICAS.to_string(),
                0,
                Some(
                    leaders
                        .get(t.as_str())
                        .cloned()
                        .unwrap_or_default()
                        .join(","),
                ),
            )];
            if let Some(f) = followers.get(t.as_str()) {
                ops.push((FOLLOWER_REPLICAS.to_string(), 0, Some(f.join(","))));
            }
            client.alter_configs(2, t, &ops).await?;
        }
        for b in &brokers {
            let ops = [
                (LEADER_RATE.to_string(), 0, Some(rate.to_string())),
                (FOLLOWER_RATE.to_string(), 0, Some(rate.to_string())),
            ];
            client.alter_configs(4, &b.to_string(), &ops).await?;
        }
        println!("Warning: You must run --verify periodically, until the reassignment completes, to ensure the throttle is removed.");
        println!("The inter-broker throttle limit was set to {rate} B/s");
    }
    let targets: Vec<(String, i32, Option<Vec<i32>>)> = target
        .iter()
        .map(|((t, p), r)| (t.clone(), *p, Some(r.clone())))
        .collect();
    let started = check_outcomes(client.alter_reassignments(&targets).await?)?;
    println!(
        "Successfully started partition reassignment{} for {}",
        plural(started.len()),
        names(&started)
    );
    Ok(())
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

const EXISTING: &str = "Cannot execute because there is an existing partition assignment.  Use --additional to override this and create a new partition assignment in addition to the existing one. The --additional flag can also be used to change the throttle by resubmitting the current reassignment.";

/// Removes the throttle rates from every broker (and the file's) and the throttled-replica
/// lists from the file's topics, as kafka-reassign-partitions does.
async fn clear_throttles(client: &mut Client, target: &Assignment) -> Result<(), ClientError> {
    client.metadata(Some(&[]), false).await?;
    let live: BTreeSet<i32> = client.broker_ids().into_iter().collect();
    let mut brokers = live.clone();
    brokers.extend(target.values().flatten().copied());
    println!(
        "Clearing broker-level throttles on broker{} {}",
        plural(brokers.len()),
        ids(&brokers.iter().copied().collect::<Vec<_>>())
    );
    for b in brokers.iter().filter(|b| live.contains(b)) {
        let ops = [
            (LEADER_RATE.to_string(), 1, None),
            (FOLLOWER_RATE.to_string(), 1, None),
        ];
        client.alter_configs(4, &b.to_string(), &ops).await?;
    }
    let topics: BTreeSet<&String> = target.keys().map(|(t, _)| t).collect();
    println!(
        "Clearing topic-level throttles on topic{} {}",
        plural(topics.len()),
        topics
            .iter()
            .map(|t| t.as_str())
            .collect::<Vec<_>>()
            .join(",")
    );
    for t in topics {
        let ops = [
            (LEADER_REPLICAS.to_string(), 1, None),
            (FOLLOWER_REPLICAS.to_string(), 1, None),
        ];
        client.alter_configs(2, t, &ops).await?;
    }
    Ok(())
}

async fn verify(client: &mut Client, target: &Assignment) -> Result<(), ClientError> {
    let topics: Vec<String> = target
        .keys()
        .map(|(t, _)| t.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let ongoing = ongoing(client).await?;
    let now = current(client, Some(&topics)).await?;
    println!("Status of partition reassignment:");
    let mut all_done = true;
    for ((t, p), want) in target {
        let key = (t.clone(), *p);
        if ongoing.contains(&key) {
            all_done = false;
            println!("Reassignment of partition {t}-{p} is still in progress.");
        } else if now.get(&key) == Some(want) {
            println!("Reassignment of partition {t}-{p} is completed.");
        } else {
            let has = now.get(&key).map(|r| ids(r)).unwrap_or_default();
            println!(
                "There is no active reassignment of partition {t}-{p}, but replica set is {has} rather than {}.",
                ids(want)
            );
        }
    }
    // Throttles go once nothing in the cluster is moving any more, as
    // kafka-reassign-partitions --verify does.
    if !all_done || !ongoing.is_empty() {
        return Ok(());
    }
    println!();
    clear_throttles(client, target).await
}
