//! `odradek groups list|describe|delete`: what `kafka-consumer-groups` shows and does.

use clap::{Args, Subcommand};
use odradek_client::group::{delete_group, describe_group, list_groups};
use odradek_client::{Client, ClientError};

#[derive(Subcommand)]
pub enum GroupsCommand {
    /// List every consumer group with its state.
    List,
    /// Per partition: committed offset, log end offset, lag, and the member that owns it.
    Describe(GroupArg),
    /// Delete an empty group and its committed offsets.
    Delete(GroupArg),
}

#[derive(Args)]
pub struct GroupArg {
    #[arg(long)]
    group: String,
}

pub async fn run(client: &mut Client, command: GroupsCommand) -> Result<(), ClientError> {
    match command {
        GroupsCommand::List => {
            println!("GROUP\tSTATE\tPROTOCOL-TYPE");
            for (group, state, protocol_type) in list_groups(client).await? {
                println!("{group}\t{state}\t{protocol_type}");
            }
        }
        GroupsCommand::Describe(a) => {
            let info = describe_group(client, &a.group).await?;
            if info.state == "Dead" && info.offsets.is_empty() {
                return Err(ClientError::Kafka {
                    code: 69, // GROUP_ID_NOT_FOUND
                    message: Some(format!("consumer group '{}' does not exist", a.group)),
                });
            }
            if info.members.is_empty() {
                eprintln!("Consumer group '{}' has no active members.", a.group);
            }
            println!(
                "GROUP\tTOPIC\tPARTITION\tCURRENT-OFFSET\tLOG-END-OFFSET\tLAG\tCONSUMER-ID\tHOST\tCLIENT-ID"
            );
            let mut rows: Vec<((String, i32), i64)> = info.offsets.clone();
            for m in &info.members {
                for tp in &m.assignment {
                    if !rows.iter().any(|(k, _)| k == tp) {
                        rows.push((tp.clone(), -1));
                    }
                }
            }
            rows.sort();
            for ((topic, p), committed) in rows {
                let end = client.list_offset(&topic, p, -1).await?;
                let owner = info
                    .members
                    .iter()
                    .find(|m| m.assignment.contains(&(topic.clone(), p)));
                let (id, host, client_id) = owner.map_or(("-", "-", "-"), |m| {
                    (m.member_id.as_str(), m.host.as_str(), m.client_id.as_str())
                });
                let (current, lag) = if committed >= 0 {
                    (committed.to_string(), (end - committed).to_string())
                } else {
                    ("-".to_string(), "-".to_string())
                };
                println!(
                    "{}\t{topic}\t{p}\t{current}\t{end}\t{lag}\t{id}\t{host}\t{client_id}",
                    a.group
                );
            }
        }
        GroupsCommand::Delete(a) => {
            delete_group(client, &a.group).await?;
            println!(
                "Deletion of requested consumer groups ('{}') was successful.",
                a.group
            );
        }
    }
    Ok(())
}
