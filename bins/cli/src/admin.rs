//! `odradek configs ...`.

use clap::{Subcommand, ValueEnum};
use odradek_client::{Client, ClientError};

#[derive(Clone, Copy, ValueEnum)]
pub enum Entity {
    Topic,
    Broker,
    /// A consumer or share group (Kafka's group configs: `share.auto.offset.reset`, ...).
    Group,
}

impl Entity {
    fn code(self) -> i8 {
        match self {
            Entity::Topic => 2,
            Entity::Broker => 4,
            Entity::Group => 32,
        }
    }
}

#[derive(Subcommand)]
pub enum ConfigsCommand {
    /// The configs of a topic, broker or group, with where each value comes from.
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

fn source_name(s: i8) -> &'static str {
    match s {
        1 => "DYNAMIC_TOPIC_CONFIG",
        2 => "DYNAMIC_BROKER_CONFIG",
        3 => "DYNAMIC_DEFAULT_BROKER_CONFIG",
        4 => "STATIC_BROKER_CONFIG",
        5 => "DEFAULT_CONFIG",
        8 => "GROUP_CONFIG",
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
                    Entity::Group => "group",
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
