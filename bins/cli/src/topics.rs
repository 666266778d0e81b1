//! `odradek topics ...`, printing what `kafka-topics.sh` prints.

use clap::Subcommand;
use odradek_client::{Client, ClientError};

#[derive(Subcommand)]
pub enum TopicsCommand {
    /// Topic names, one per line.
    List {
        /// Leave out internal topics (`__consumer_offsets`).
        #[arg(long = "exclude-internal")]
        exclude_internal: bool,
    },
    /// Partitions with Leader, Replicas and Isr, like kafka-topics --describe.
    Describe {
        /// Only this topic.
        #[arg(long)]
        topic: Option<String>,
        /// Only partitions whose ISR is smaller than their replica set.
        #[arg(long)]
        under_replicated_partitions: bool,
        /// Only partitions whose ISR is smaller than the topic's min.insync.replicas.
        #[arg(long)]
        under_min_isr_partitions: bool,
        /// Only partitions without a live leader.
        #[arg(long)]
        unavailable_partitions: bool,
    },
    /// Create a topic.
    Create {
        #[arg(long)]
        topic: String,
        /// Partitions (default: the broker's num.partitions).
        #[arg(long, default_value_t = -1)]
        partitions: i32,
        /// Replication factor (default: the broker's default.replication.factor).
        #[arg(long = "replication-factor", default_value_t = -1)]
        replication_factor: i16,
        /// A topic config, key=value (repeatable).
        #[arg(long = "config")]
        configs: Vec<String>,
    },
    /// Delete a topic.
    Delete {
        #[arg(long)]
        topic: String,
    },
    /// Grow a topic to more partitions.
    Alter {
        #[arg(long)]
        topic: String,
        #[arg(long)]
        partitions: i32,
    },
}

fn list(ids: &[i32]) -> String {
    ids.iter().map(i32::to_string).collect::<Vec<_>>().join(",")
}

pub async fn run(client: &mut Client, command: TopicsCommand) -> Result<(), ClientError> {
    match command {
        TopicsCommand::List { exclude_internal } => {
            for t in client.metadata(None, false).await? {
                if !(exclude_internal && t.name.starts_with("__")) {
                    println!("{}", t.name);
                }
            }
        }
        TopicsCommand::Describe {
            topic,
            under_replicated_partitions,
            under_min_isr_partitions,
            unavailable_partitions,
        } => {
            let wanted = topic.map(|t| vec![t]);
            let topics = client.metadata(wanted.as_deref(), false).await?;
            // Metadata lists the live (unfenced) brokers.
            let live: Vec<i32> = client.broker_ids();
            // As kafka-topics: with a filter, only the matching partition lines are printed.
            let filtered =
                under_replicated_partitions || under_min_isr_partitions || unavailable_partitions;
            for t in topics {
                let rf = t.partitions.first().map_or(0, |p| p.replicas.len());
                let all_configs = client.describe_configs(2, &t.name).await?;
                let min_isr: usize = all_configs
                    .iter()
                    .find(|(k, _, _)| k == "min.insync.replicas")
                    .and_then(|(_, v, _)| v.parse().ok())
                    .unwrap_or(1);
                if !filtered {
                    let configs = client.topic_overrides(&t.name).await?;
                    let configs: Vec<String> =
                        configs.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    println!(
                        "Topic: {}\tTopicId: {}\tPartitionCount: {}\tReplicationFactor: {rf}\tConfigs: {}",
                        t.name,
                        t.id,
                        t.partitions.len(),
                        configs.join(",")
                    );
                }
                for p in &t.partitions {
                    let unavailable = p.leader < 0 || !live.contains(&p.leader);
                    let keep = !filtered
                        || (under_replicated_partitions && p.isr.len() < p.replicas.len())
                        || (under_min_isr_partitions && p.isr.len() < min_isr)
                        || (unavailable_partitions && unavailable);
                    if !keep {
                        continue;
                    }
                    println!(
                        "\tTopic: {}\tPartition: {}\tLeader: {}\tReplicas: {}\tIsr: {}",
                        t.name,
                        p.partition,
                        if p.leader < 0 {
                            "none".to_string()
                        } else {
                            p.leader.to_string()
                        },
                        list(&p.replicas),
                        list(&p.isr)
                    );
                }
            }
        }
        TopicsCommand::Create {
            topic,
            partitions,
            replication_factor,
            configs,
        } => {
            let mut pairs = Vec::new();
            for c in configs {
                let (k, v) = c.split_once('=').ok_or_else(|| {
                    ClientError::Protocol(format!("--config {c:?}: expected key=value"))
                })?;
                pairs.push((k.to_string(), v.to_string()));
            }
            client
                .create_topic(&topic, partitions, replication_factor, &pairs)
                .await?;
            println!("Created topic {topic}.");
        }
        TopicsCommand::Delete { topic } => {
            client.delete_topic(&topic).await?;
            println!("Deleted topic {topic}.");
        }
        TopicsCommand::Alter { topic, partitions } => {
            client.create_partitions(&topic, partitions).await?;
            println!("Topic {topic} now has {partitions} partitions.");
        }
    }
    Ok(())
}
