//! `odradek groups list|describe|delete`: what `kafka-consumer-groups` shows and does.

use clap::{Args, Subcommand};
use odradek_client::group::{delete_group, describe_group, describe_share_group, list_groups};
use odradek_client::{Client, ClientError};

#[derive(Subcommand)]
pub enum GroupsCommand {
    /// List every consumer group with its state.
    List,
    /// Per partition: committed offset, log end offset, lag, and the member that owns it; for a
    /// KIP-848 consumer group also its epochs and each member's epoch, assignment and target.
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
            println!("GROUP\tSTATE\tPROTOCOL-TYPE\tTYPE");
            for (group, state, protocol_type, group_type) in list_groups(client).await? {
                println!("{group}\t{state}\t{protocol_type}\t{group_type}");
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
            if info.group_type == "consumer" {
                print_consumer_members(&a.group, &info);
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

/// The members of a KIP-848 consumer group with their epochs, assignments and targets (as
/// `kafka-consumer-groups --describe --members --verbose` shows them).
fn print_consumer_members(group: &str, info: &odradek_client::group::GroupInfo) {
    let list = |ps: &[(String, i32)]| -> String {
        if ps.is_empty() {
            return "-".into();
        }
        let mut by_topic: Vec<(String, Vec<i32>)> = Vec::new();
        for (t, p) in ps {
            match by_topic.iter_mut().find(|(n, _)| n == t) {
                Some((_, v)) => v.push(*p),
                None => by_topic.push((t.clone(), vec![*p])),
            }
        }
        by_topic
            .iter()
            .map(|(t, v)| {
                let v: Vec<String> = v.iter().map(i32::to_string).collect();
                format!("{t}:{}", v.join(","))
            })
            .collect::<Vec<_>>()
            .join(";")
    };
    println!();
    println!(
        "GROUP\tSTATE\tGROUP-EPOCH\tASSIGNMENT-EPOCH\tASSIGNOR\t#MEMBERS\n{group}\t{}\t{}\t{}\t{}\t{}",
        info.state,
        info.epochs.0,
        info.epochs.1,
        info.protocol,
        info.members.len()
    );
    println!();
    println!("GROUP\tCONSUMER-ID\tHOST\tCLIENT-ID\tEPOCH\tASSIGNMENT\tTARGET-ASSIGNMENT");
    for m in &info.members {
        println!(
            "{group}\t{}\t{}\t{}\t{}\t{}\t{}",
            m.member_id,
            m.host,
            m.client_id,
            m.member_epoch,
            list(&m.assignment),
            list(&m.target)
        );
    }
}

#[derive(Subcommand)]
pub enum ShareGroupsCommand {
    /// List every share group with its state.
    List,
    /// The group's state and epochs, then each member's epoch and partitions.
    Describe(GroupArg),
}

pub async fn run_share(
    client: &mut Client,
    command: ShareGroupsCommand,
) -> Result<(), ClientError> {
    match command {
        ShareGroupsCommand::List => {
            println!("GROUP\tSTATE");
            for (group, state, _, group_type) in list_groups(client).await? {
                if group_type == "share" {
                    println!("{group}\t{state}");
                }
            }
        }
        ShareGroupsCommand::Describe(a) => {
            let info = describe_share_group(client, &a.group).await?;
            println!("GROUP\tSTATE\tGROUP-EPOCH\tASSIGNMENT-EPOCH\tASSIGNOR\t#MEMBERS");
            println!(
                "{}\t{}\t{}\t{}\t{}\t{}",
                a.group,
                info.state,
                info.epochs.0,
                info.epochs.1,
                info.assignor,
                info.members.len()
            );
            println!();
            println!("GROUP\tCONSUMER-ID\tHOST\tCLIENT-ID\tEPOCH\tASSIGNMENT");
            for m in &info.members {
                let assignment: Vec<String> = m
                    .assignment
                    .iter()
                    .map(|(t, p)| format!("{t}:{p}"))
                    .collect();
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}",
                    a.group,
                    m.member_id,
                    m.host,
                    m.client_id,
                    m.member_epoch,
                    if assignment.is_empty() {
                        "-".to_string()
                    } else {
                        assignment.join(",")
                    }
                );
            }
        }
    }
    Ok(())
}
