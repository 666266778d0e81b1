//! Admin calls for moving replicas and leaders: AlterPartitionReassignments,
//! ListPartitionReassignments, ElectLeaders, UnregisterBroker, DescribeLogDirs, and CreateTopics
//! with a manual replica assignment.

use kafka_protocol::messages::alter_partition_reassignments_request::{
    ReassignablePartition, ReassignableTopic,
};
use kafka_protocol::messages::create_topics_request::{CreatableReplicaAssignment, CreatableTopic};
use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
use kafka_protocol::messages::list_partition_reassignments_request::ListPartitionReassignmentsTopics;
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, ApiKey, BrokerId, CreateTopicsRequest,
    DescribeLogDirsRequest, ElectLeadersRequest, ListPartitionReassignmentsRequest,
    UnregisterBrokerRequest,
};

use kafka_protocol::protocol::StrBytes;

use crate::client::{name, Client};
use crate::error::ClientError;

/// A partition being reassigned, as ListPartitionReassignments describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reassignment {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// The replica set now: the target, then the replicas being removed.
    pub replicas: Vec<i32>,
    /// Replicas being added.
    pub adding: Vec<i32>,
    /// Replicas being removed.
    pub removing: Vec<i32>,
}

/// One replica in a broker's log directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogDirReplica {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Bytes on disk.
    pub size: i64,
    /// Offset lag (Kafka's: high watermark minus log end, at least 0).
    pub offset_lag: i64,
}

/// A broker's log directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogDir {
    /// The directory.
    pub path: String,
    /// Error code of the directory (0: online).
    pub error_code: i16,
    /// File system size in bytes (-1: unknown).
    pub total_bytes: i64,
    /// Bytes free for the broker (-1: unknown).
    pub usable_bytes: i64,
    /// Replicas in it.
    pub replicas: Vec<LogDirReplica>,
}

/// One partition's answer to an election or a reassignment: its error, if any.
pub type PartitionOutcome = (String, i32, Result<(), ClientError>);

/// A directory id in Kafka's base64 form.
fn directory_uuid(s: &str) -> Result<uuid::Uuid, ClientError> {
    s.parse::<odradek_common::Uuid>()
        .map(|u| uuid::Uuid::from_bytes(*u.as_bytes()))
        .map_err(|_| ClientError::Protocol(format!("{s:?} is not a directory id")))
}

fn outcome(code: i16, message: Option<String>) -> Result<(), ClientError> {
    ClientError::check(code, message)
}

impl Client {
    /// CreateTopics with a manual assignment: one replica list per partition, in order.
    pub async fn create_topic_with_assignment(
        &mut self,
        topic: &str,
        assignment: &[Vec<i32>],
    ) -> Result<(), ClientError> {
        let req = CreateTopicsRequest::default()
            .with_timeout_ms(30_000)
            .with_topics(vec![CreatableTopic::default()
                .with_name(name(topic))
                .with_num_partitions(-1)
                .with_replication_factor(-1)
                .with_assignments(
                    assignment
                        .iter()
                        .enumerate()
                        .map(|(i, r)| {
                            CreatableReplicaAssignment::default()
                                .with_partition_index(i as i32)
                                .with_broker_ids(r.iter().copied().map(BrokerId).collect())
                        })
                        .collect(),
                )]);
        let resp = self.send_any(&req, ApiKey::CreateTopics, 7).await?;
        for t in resp.topics {
            ClientError::check(t.error_code, t.error_message.map(|m| m.to_string()))?;
        }
        Ok(())
    }

    /// AlterPartitionReassignments: each (topic, partition, target) starts, replaces or (with
    /// no target) cancels a reassignment. Per-partition outcomes, in the answer's order.
    pub async fn alter_reassignments(
        &mut self,
        targets: &[(String, i32, Option<Vec<i32>>)],
    ) -> Result<Vec<PartitionOutcome>, ClientError> {
        let mut topics: Vec<ReassignableTopic> = Vec::new();
        for (topic, partition, target) in targets {
            let p = ReassignablePartition::default()
                .with_partition_index(*partition)
                .with_replicas(
                    target
                        .as_ref()
                        .map(|t| t.iter().copied().map(BrokerId).collect()),
                );
            match topics.iter_mut().find(|t| t.name.0.as_str() == topic) {
                Some(t) => t.partitions.push(p),
                None => topics.push(
                    ReassignableTopic::default()
                        .with_name(name(topic))
                        .with_partitions(vec![p]),
                ),
            }
        }
        let req = AlterPartitionReassignmentsRequest::default()
            .with_timeout_ms(30_000)
            .with_allow_replication_factor_change(true)
            .with_topics(topics);
        let resp = self
            .send_any(&req, ApiKey::AlterPartitionReassignments, 1)
            .await?;
        ClientError::check(resp.error_code, resp.error_message.map(|m| m.to_string()))?;
        Ok(resp
            .responses
            .into_iter()
            .flat_map(|t| {
                let topic = t.name.0.to_string();
                t.partitions.into_iter().map(move |p| {
                    (
                        topic.clone(),
                        p.partition_index,
                        outcome(p.error_code, p.error_message.map(|m| m.to_string())),
                    )
                })
            })
            .collect())
    }

    /// ListPartitionReassignments of `topics` ((name, partitions)), all when `None`.
    pub async fn list_reassignments(
        &mut self,
        topics: Option<&[(String, Vec<i32>)]>,
    ) -> Result<Vec<Reassignment>, ClientError> {
        let req = ListPartitionReassignmentsRequest::default()
            .with_timeout_ms(30_000)
            .with_topics(topics.map(|ts| {
                ts.iter()
                    .map(|(t, ps)| {
                        ListPartitionReassignmentsTopics::default()
                            .with_name(name(t))
                            .with_partition_indexes(ps.clone())
                    })
                    .collect()
            }));
        let resp = self
            .send_any(&req, ApiKey::ListPartitionReassignments, 0)
            .await?;
        ClientError::check(resp.error_code, resp.error_message.map(|m| m.to_string()))?;
        let ids = |v: Vec<BrokerId>| v.into_iter().map(|b| b.0).collect();
        let mut out: Vec<Reassignment> = resp
            .topics
            .into_iter()
            .flat_map(|t| {
                let topic = t.name.0.to_string();
                t.partitions.into_iter().map(move |p| Reassignment {
                    topic: topic.clone(),
                    partition: p.partition_index,
                    replicas: ids(p.replicas),
                    adding: ids(p.adding_replicas),
                    removing: ids(p.removing_replicas),
                })
            })
            .collect();
        out.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
        Ok(out)
    }

    /// ElectLeaders (0 preferred, 1 unclean) for `partitions`, every partition when `None`
    /// (then partitions already led as wanted are left out of the answer).
    pub async fn elect_leaders(
        &mut self,
        election_type: i8,
        partitions: Option<&[(String, i32)]>,
    ) -> Result<Vec<PartitionOutcome>, ClientError> {
        let topic_partitions = partitions.map(|ps| {
            let mut topics: Vec<TopicPartitions> = Vec::new();
            for (topic, p) in ps {
                match topics.iter_mut().find(|t| t.topic.0.as_str() == topic) {
                    Some(t) => t.partitions.push(*p),
                    None => topics.push(
                        TopicPartitions::default()
                            .with_topic(name(topic))
                            .with_partitions(vec![*p]),
                    ),
                }
            }
            topics
        });
        let req = ElectLeadersRequest::default()
            .with_election_type(election_type)
            .with_timeout_ms(30_000)
            .with_topic_partitions(topic_partitions);
        let resp = self.send_any(&req, ApiKey::ElectLeaders, 2).await?;
        ClientError::check(resp.error_code, None)?;
        let mut out: Vec<PartitionOutcome> = resp
            .replica_election_results
            .into_iter()
            .flat_map(|t| {
                let topic = t.topic.0.to_string();
                t.partition_result.into_iter().map(move |p| {
                    (
                        topic.clone(),
                        p.partition_id,
                        outcome(p.error_code, p.error_message.map(|m| m.to_string())),
                    )
                })
            })
            .collect();
        out.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
        Ok(out)
    }

    /// UnregisterBroker.
    pub async fn unregister_broker(&mut self, broker_id: i32) -> Result<(), ClientError> {
        let req = UnregisterBrokerRequest::default().with_broker_id(BrokerId(broker_id));
        let resp = self.send_any(&req, ApiKey::UnregisterBroker, 0).await?;
        ClientError::check(resp.error_code, resp.error_message.map(|m| m.to_string()))
    }

    /// AddRaftVoter (KIP-853): controller `id` with metadata directory `directory_id` (Kafka's
    /// base64 form) and its controller `endpoints` (name, host, port).
    pub async fn add_raft_voter(
        &mut self,
        id: i32,
        directory_id: &str,
        endpoints: &[(String, String, u16)],
    ) -> Result<(), ClientError> {
        use kafka_protocol::messages::add_raft_voter_request::Listener;
        let req = kafka_protocol::messages::AddRaftVoterRequest::default()
            .with_cluster_id(
                self.cluster_id()
                    .map(|c| StrBytes::from_string(c.to_string())),
            )
            .with_timeout_ms(60_000)
            .with_voter_id(id)
            .with_voter_directory_id(directory_uuid(directory_id)?)
            .with_listeners(
                endpoints
                    .iter()
                    .map(|(n, h, p)| {
                        Listener::default()
                            .with_name(StrBytes::from_string(n.clone()))
                            .with_host(StrBytes::from_string(h.clone()))
                            .with_port(*p)
                    })
                    .collect(),
            );
        let resp = self.send_any(&req, ApiKey::AddRaftVoter, 0).await?;
        ClientError::check(resp.error_code, resp.error_message.map(|m| m.to_string()))
    }

    /// RemoveRaftVoter.
    pub async fn remove_raft_voter(
        &mut self,
        id: i32,
        directory_id: &str,
    ) -> Result<(), ClientError> {
        let req = kafka_protocol::messages::RemoveRaftVoterRequest::default()
            .with_cluster_id(
                self.cluster_id()
                    .map(|c| StrBytes::from_string(c.to_string())),
            )
            .with_voter_id(id)
            .with_voter_directory_id(directory_uuid(directory_id)?);
        let resp = self.send_any(&req, ApiKey::RemoveRaftVoter, 0).await?;
        ClientError::check(resp.error_code, resp.error_message.map(|m| m.to_string()))
    }

    /// DescribeLogDirs of broker `broker_id` (every replica it holds).
    pub async fn describe_log_dirs(&mut self, broker_id: i32) -> Result<Vec<LogDir>, ClientError> {
        if self.broker_address(broker_id).is_none() {
            self.metadata(Some(&[]), false).await?;
        }
        let conn = self.broker(broker_id).await?;
        let v = conn.version(ApiKey::DescribeLogDirs, 4)?;
        let resp = conn
            .send(&DescribeLogDirsRequest::default().with_topics(None), v)
            .await?;
        ClientError::check(resp.error_code, None)?;
        Ok(resp
            .results
            .into_iter()
            .map(|d| {
                let mut replicas: Vec<LogDirReplica> = d
                    .topics
                    .into_iter()
                    .flat_map(|t| {
                        let topic = t.name.0.to_string();
                        t.partitions.into_iter().map(move |p| LogDirReplica {
                            topic: topic.clone(),
                            partition: p.partition_index,
                            size: p.partition_size,
                            offset_lag: p.offset_lag,
                        })
                    })
                    .collect();
                replicas.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
                LogDir {
                    path: d.log_dir.to_string(),
                    error_code: d.error_code,
                    total_bytes: d.total_bytes,
                    usable_bytes: d.usable_bytes,
                    replicas,
                }
            })
            .collect())
    }
}
