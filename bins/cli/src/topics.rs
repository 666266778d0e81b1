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
        TopicsCommand::Describe { topic } => {
            let wanted = topic.map(|t| vec![t]);
            for t in client.metadata(wanted.as_deref(), false).await? {
                let rf = t.partitions.first().map_or(0, |p| p.replicas.len());
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
                for p in &t.partitions {
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
