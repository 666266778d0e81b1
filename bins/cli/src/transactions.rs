//! `odradek transactions list|describe|describe-producers`: what `kafka-transactions.sh` shows.

use clap::{Args, Subcommand};
use kafka_protocol::messages::describe_producers_request::TopicRequest;
use kafka_protocol::messages::{
    ApiKey, DescribeProducersRequest, DescribeTransactionsRequest, FindCoordinatorRequest,
    ListTransactionsRequest, TopicName, TransactionalId,
};
use kafka_protocol::protocol::StrBytes;
use odradek_client::{Client, ClientError};

#[derive(Subcommand)]
pub enum TransactionsCommand {
    /// Every transactional id with its producer id and state, from every broker.
    List,
    /// One transactional id: state, producer id and epoch, timeout, start, partitions.
    Describe(DescribeArgs),
    /// The producers a partition's leader knows (idempotent and transactional).
    DescribeProducers(ProducersArgs),
}

#[derive(Args)]
pub struct DescribeArgs {
    #[arg(long = "transactional-id")]
    transactional_id: String,
}

#[derive(Args)]
pub struct ProducersArgs {
    #[arg(long)]
    topic: String,
    #[arg(long)]
    partition: i32,
}

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

pub async fn run(client: &mut Client, command: TransactionsCommand) -> Result<(), ClientError> {
    match command {
        TransactionsCommand::List => {
            client.metadata(Some(&[]), false).await?;
            let mut rows = Vec::new();
            for id in client.broker_ids() {
                let Some(addr) = client.broker_address(id).map(str::to_string) else {
                    continue;
                };
                let mut conn = client.connect_to(&addr).await?;
                let v = conn.version(ApiKey::ListTransactions, 1)?;
                let r = conn
                    .send(
                        &ListTransactionsRequest::default().with_duration_filter(-1),
                        v,
                    )
                    .await?;
                ClientError::check(r.error_code, Some(format!("broker {id}")))?;
                rows.extend(r.transaction_states.into_iter().map(|t| {
                    (
                        t.transactional_id.0.to_string(),
                        id,
                        t.producer_id.0,
                        t.transaction_state.to_string(),
                    )
                }));
            }
            rows.sort();
            println!("TransactionalId\tCoordinator\tProducerId\tTransactionState");
            for (tid, coordinator, pid, state) in rows {
                println!("{tid}\t{coordinator}\t{pid}\t{state}");
            }
        }
        TransactionsCommand::Describe(a) => {
            let id = &a.transactional_id;
            let find = FindCoordinatorRequest::default()
                .with_key(s(id))
                .with_key_type(1);
            let r = client.send_any(&find, ApiKey::FindCoordinator, 3).await?;
            ClientError::check(r.error_code, Some(format!("transactional id {id}")))?;
            let mut conn = client.connect_to(&format!("{}:{}", r.host, r.port)).await?;
            let v = conn.version(ApiKey::DescribeTransactions, 0)?;
            let req = DescribeTransactionsRequest::default()
                .with_transactional_ids(vec![TransactionalId(s(id))]);
            let resp = conn.send(&req, v).await?;
            let t = resp.transaction_states.into_iter().next().ok_or_else(|| {
                ClientError::Protocol("empty DescribeTransactions response".into())
            })?;
            ClientError::check(t.error_code, Some(format!("transactional id {id}")))?;
            let partitions: Vec<String> = t
                .topics
                .iter()
                .flat_map(|d| {
                    d.partitions
                        .iter()
                        .map(move |p| format!("{}-{p}", d.topic.0))
                })
                .collect();
            println!("CoordinatorId\tTransactionalId\tProducerId\tProducerEpoch\tTransactionState\tTransactionTimeoutMs\tCurrentTransactionStartTimeMs\tTopicPartitions");
            println!(
                "{}\t{id}\t{}\t{}\t{}\t{}\t{}\t{}",
                r.node_id.0,
                t.producer_id.0,
                t.producer_epoch,
                t.transaction_state,
                t.transaction_timeout_ms,
                t.transaction_start_time_ms,
                partitions.join(",")
            );
        }
        TransactionsCommand::DescribeProducers(a) => {
            let req = DescribeProducersRequest::default()
                .with_topics(vec![TopicRequest::default()
                    .with_name(TopicName(s(&a.topic)))
                    .with_partition_indexes(vec![a.partition])]);
            let mut conn = client.leader_connection(&a.topic, a.partition).await?;
            let v = conn.version(ApiKey::DescribeProducers, 0)?;
            let r = conn.send(&req, v).await?;
            let p = r
                .topics
                .first()
                .and_then(|t| t.partitions.first())
                .ok_or_else(|| ClientError::Protocol("empty DescribeProducers response".into()))?;
            ClientError::check(
                p.error_code,
                p.error_message.as_ref().map(|m| m.to_string()),
            )?;
            println!("ProducerId\tProducerEpoch\tLatestCoordinatorEpoch\tLastSequence\tLastTimestamp\tCurrentTransactionStartOffset");
            for s in &p.active_producers {
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}",
                    s.producer_id.0,
                    s.producer_epoch,
                    s.coordinator_epoch,
                    s.last_sequence,
                    s.last_timestamp,
                    if s.current_txn_start_offset < 0 {
                        "None".to_string()
                    } else {
                        s.current_txn_start_offset.to_string()
                    }
                );
            }
        }
    }
    Ok(())
}
