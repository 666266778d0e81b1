//! A client of a cluster: bootstrap, metadata, admin calls, produce and fetch, each sent to the
//! right broker.

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, BrokerId, CreatePartitionsRequest, CreateTopicsRequest, DeleteTopicsRequest,
    DescribeConfigsRequest, FetchRequest, ListOffsetsRequest, MetadataRequest, ProduceRequest,
    TopicName,
};
use kafka_protocol::protocol::StrBytes;

use crate::connection::Connection;
use crate::error::ClientError;
use crate::security::ClientSecurity;

/// A partition as Metadata describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionInfo {
    /// Index.
    pub partition: i32,
    /// Leader broker id (-1: none).
    pub leader: i32,
    /// Replicas.
    pub replicas: Vec<i32>,
    /// In-sync replicas.
    pub isr: Vec<i32>,
}

/// A topic as Metadata describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicInfo {
    /// Name.
    pub name: String,
    /// Topic id (Kafka's base64 form).
    pub id: String,
    /// Partitions by index.
    pub partitions: Vec<PartitionInfo>,
}

/// A cluster client.
#[derive(Debug)]
pub struct Client {
    bootstrap: Vec<String>,
    client_id: String,
    brokers: HashMap<i32, String>,
    conns: HashMap<String, Connection>,
    leaders: HashMap<(String, i32), i32>,
    cluster_id: Option<String>,
    security: ClientSecurity,
}

pub(crate) fn name(n: &str) -> TopicName {
    TopicName(StrBytes::from_string(n.to_string()))
}

impl Client {
    /// Another client with the same bootstrap servers, client id and security, and
    /// connections of its own (for callers that want requests in flight side by side).
    pub fn sibling(&self) -> Client {
        Client {
            bootstrap: self.bootstrap.clone(),
            client_id: self.client_id.clone(),
            brokers: HashMap::new(),
            conns: HashMap::new(),
            leaders: HashMap::new(),
            cluster_id: None,
            security: self.security.clone(),
        }
    }

    /// A client for `bootstrap` (comma-separated host:port).
    pub fn new(bootstrap: &str, client_id: &str) -> Client {
        Client {
            bootstrap: bootstrap
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
            client_id: client_id.to_string(),
            brokers: HashMap::new(),
            conns: HashMap::new(),
            leaders: HashMap::new(),
            cluster_id: None,
            security: ClientSecurity::plaintext(),
        }
    }

    /// Connects with `security` (TLS, SASL) from now on.
    pub fn with_security(mut self, security: ClientSecurity) -> Client {
        self.security = security;
        self.conns.clear();
        self
    }

    /// How this client connects.
    pub fn security(&self) -> &ClientSecurity {
        &self.security
    }

    /// A new connection to `addr` with this client's id and security.
    pub async fn connect_to(&self, addr: &str) -> Result<Connection, ClientError> {
        Connection::connect_secure(addr, &self.client_id, &self.security).await
    }

    async fn conn(&mut self, addr: &str) -> Result<&mut Connection, ClientError> {
        if !self.conns.contains_key(addr) {
            let c = Connection::connect_secure(addr, &self.client_id, &self.security).await?;
            self.conns.insert(addr.to_string(), c);
        }
        Ok(self.conns.get_mut(addr).expect("inserted above"))
    }

    /// A connection to any reachable broker (bootstrap first).
    async fn any(&mut self) -> Result<&mut Connection, ClientError> {
        let mut last = None;
        let candidates: Vec<String> = self
            .conns
            .keys()
            .cloned()
            .chain(self.bootstrap.iter().cloned())
            .collect();
        for addr in candidates {
            match Connection::connect_secure(&addr, &self.client_id, &self.security).await {
                Ok(c) => {
                    self.conns.insert(addr.clone(), c);
                    return Ok(self.conns.get_mut(&addr).expect("inserted above"));
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| ClientError::Protocol("no bootstrap servers".into())))
    }

    /// Sends `req` to any broker at the highest version both sides speak, up to `ours`.
    pub async fn send_any<R: kafka_protocol::protocol::Request>(
        &mut self,
        req: &R,
        key: ApiKey,
        ours: i16,
    ) -> Result<R::Response, ClientError> {
        let conn = self.any().await?;
        let v = conn.version(key, ours)?;
        conn.send(req, v).await
    }

    pub(crate) async fn broker(&mut self, id: i32) -> Result<&mut Connection, ClientError> {
        let addr = self
            .brokers
            .get(&id)
            .cloned()
            .ok_or_else(|| ClientError::Protocol(format!("unknown broker {id}")))?;
        self.conn(&addr).await
    }

    /// A new connection to the leader of `topic`-`partition` (for requests only a leader
    /// answers, such as DescribeProducers).
    pub async fn leader_connection(
        &mut self,
        topic: &str,
        partition: i32,
    ) -> Result<Connection, ClientError> {
        let leader = self.leader(topic, partition).await?;
        let addr = self
            .brokers
            .get(&leader)
            .cloned()
            .ok_or_else(|| ClientError::Protocol(format!("unknown broker {leader}")))?;
        self.connect_to(&addr).await
    }

    /// Metadata for `topics` (all when `None`); refreshes the broker and leader caches.
    pub async fn metadata(
        &mut self,
        topics: Option<&[String]>,
        auto_create: bool,
    ) -> Result<Vec<TopicInfo>, ClientError> {
        let req = MetadataRequest::default()
            .with_topics(topics.map(|ts| {
                ts.iter()
                    .map(|t| MetadataRequestTopic::default().with_name(Some(name(t))))
                    .collect()
            }))
            .with_allow_auto_topic_creation(auto_create);
        let resp = self.send_any(&req, ApiKey::Metadata, 12).await?;
        self.brokers = resp
            .brokers
            .iter()
            .map(|b| (b.node_id.0, format!("{}:{}", b.host, b.port)))
            .collect();
        self.cluster_id = resp.cluster_id.as_ref().map(|c| c.to_string());
        let mut out = Vec::new();
        for t in resp.topics {
            let topic = t.name.map(|n| n.0.to_string()).unwrap_or_default();
            ClientError::check(t.error_code, Some(format!("topic {topic}")))?;
            let mut partitions: Vec<PartitionInfo> = t
                .partitions
                .iter()
                .map(|p| PartitionInfo {
                    partition: p.partition_index,
                    leader: p.leader_id.0,
                    replicas: p.replica_nodes.iter().map(|b| b.0).collect(),
                    isr: p.isr_nodes.iter().map(|b| b.0).collect(),
                })
                .collect();
            partitions.sort_by_key(|p| p.partition);
            for p in &partitions {
                self.leaders.insert((topic.clone(), p.partition), p.leader);
            }
            let id = odradek_common::Uuid(*t.topic_id.as_bytes()).to_string();
            out.push(TopicInfo {
                name: topic,
                id,
                partitions,
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// The address (host:port) of broker `id` from the last Metadata response.
    pub fn broker_address(&self, id: i32) -> Option<&str> {
        self.brokers.get(&id).map(String::as_str)
    }

    /// The bootstrap servers, comma-separated, as given to [`Client::new`].
    pub fn bootstrap(&self) -> String {
        self.bootstrap.join(",")
    }

    /// The broker ids from the last Metadata response, sorted.
    pub fn broker_ids(&self) -> Vec<i32> {
        let mut ids: Vec<i32> = self.brokers.keys().copied().collect();
        ids.sort_unstable();
        ids
    }

    /// The client id this client sends.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The cluster id from the last Metadata response.
    pub fn cluster_id(&self) -> Option<&str> {
        self.cluster_id.as_deref()
    }

    /// DescribeQuorum for `__cluster_metadata`-0.
    pub async fn describe_quorum(
        &mut self,
    ) -> Result<kafka_protocol::messages::DescribeQuorumResponse, ClientError> {
        use kafka_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
        let req = kafka_protocol::messages::DescribeQuorumRequest::default().with_topics(vec![
            TopicData::default()
                .with_topic_name(name("__cluster_metadata"))
                .with_partitions(vec![PartitionData::default().with_partition_index(0)]),
        ]);
        let resp = self.send_any(&req, ApiKey::DescribeQuorum, 2).await?;
        ClientError::check(
            resp.error_code,
            resp.error_message.as_ref().map(|m| m.to_string()),
        )?;
        Ok(resp)
    }

    /// DescribeConfigs of one resource (2 topic, 4 broker): (name, value, source) sorted.
    pub async fn describe_configs(
        &mut self,
        resource_type: i8,
        resource: &str,
    ) -> Result<Vec<(String, String, i8)>, ClientError> {
        let req = DescribeConfigsRequest::default().with_resources(vec![
            DescribeConfigsResource::default()
                .with_resource_type(resource_type)
                .with_resource_name(StrBytes::from_string(resource.to_string()))
                .with_configuration_keys(None),
        ]);
        // A broker's configs come from that broker, as Kafka's admin client asks them.
        let resp = match resource.parse::<i32>() {
            Ok(id) if resource_type == 4 => {
                if !self.brokers.contains_key(&id) {
                    self.metadata(Some(&[]), false).await?;
                }
                let conn = self.broker(id).await?;
                let v = conn.version(ApiKey::DescribeConfigs, 4)?;
                conn.send(&req, v).await?
            }
            _ => self.send_any(&req, ApiKey::DescribeConfigs, 4).await?,
        };
        let mut out = Vec::new();
        for r in resp.results {
            ClientError::check(r.error_code, r.error_message.map(|m| m.to_string()))?;
            for c in r.configs {
                out.push((
                    c.name.to_string(),
                    c.value.map(|v| v.to_string()).unwrap_or_default(),
                    c.config_source,
                ));
            }
        }
        out.sort();
        Ok(out)
    }

    /// IncrementalAlterConfigs on one resource: `ops` are (name, op, value) with Kafka's
    /// operations (0 SET, 1 DELETE, 2 APPEND, 3 SUBTRACT).
    pub async fn alter_configs(
        &mut self,
        resource_type: i8,
        resource: &str,
        ops: &[(String, i8, Option<String>)],
    ) -> Result<(), ClientError> {
        use kafka_protocol::messages::incremental_alter_configs_request::{
            AlterConfigsResource, AlterableConfig,
        };
        let req = kafka_protocol::messages::IncrementalAlterConfigsRequest::default()
            .with_resources(vec![AlterConfigsResource::default()
                .with_resource_type(resource_type)
                .with_resource_name(StrBytes::from_string(resource.to_string()))
                .with_configs(
                    ops.iter()
                        .map(|(k, op, v)| {
                            AlterableConfig::default()
                                .with_name(StrBytes::from_string(k.clone()))
                                .with_config_operation(*op)
                                .with_value(v.clone().map(StrBytes::from_string))
                        })
                        .collect(),
                )]);
        let resp = self
            .send_any(&req, ApiKey::IncrementalAlterConfigs, 1)
            .await?;
        for r in resp.responses {
            ClientError::check(r.error_code, r.error_message.map(|m| m.to_string()))?;
        }
        Ok(())
    }

    /// CreateTopics (-1 for the broker defaults).
    pub async fn create_topic(
        &mut self,
        topic: &str,
        partitions: i32,
        replication_factor: i16,
        configs: &[(String, String)],
    ) -> Result<(), ClientError> {
        let req = CreateTopicsRequest::default()
            .with_timeout_ms(30_000)
            .with_topics(vec![CreatableTopic::default()
                .with_name(name(topic))
                .with_num_partitions(partitions)
                .with_replication_factor(replication_factor)
                .with_configs(
                    configs
                        .iter()
                        .map(|(k, v)| {
                            CreatableTopicConfig::default()
                                .with_name(StrBytes::from_string(k.clone()))
                                .with_value(Some(StrBytes::from_string(v.clone())))
                        })
                        .collect(),
                )]);
        let resp = self.send_any(&req, ApiKey::CreateTopics, 7).await?;
        for t in resp.topics {
            ClientError::check(t.error_code, t.error_message.map(|m| m.to_string()))?;
        }
        Ok(())
    }

    /// DeleteTopics.
    pub async fn delete_topic(&mut self, topic: &str) -> Result<(), ClientError> {
        let conn = self.any().await?;
        let v = conn.version(ApiKey::DeleteTopics, 6)?;
        let mut req = DeleteTopicsRequest::default().with_timeout_ms(30_000);
        if v >= 6 {
            req.topics = vec![DeleteTopicState::default().with_name(Some(name(topic)))];
        } else {
            req.topic_names = vec![name(topic)];
        }
        let resp = conn.send(&req, v).await?;
        for t in resp.responses {
            ClientError::check(t.error_code, t.error_message.map(|m| m.to_string()))?;
        }
        Ok(())
    }

    /// CreatePartitions: grow `topic` to `count` partitions.
    pub async fn create_partitions(&mut self, topic: &str, count: i32) -> Result<(), ClientError> {
        let req = CreatePartitionsRequest::default()
            .with_timeout_ms(30_000)
            .with_topics(vec![CreatePartitionsTopic::default()
                .with_name(name(topic))
                .with_count(count)
                // Placed by the controller (null, not an empty list of assignments).
                .with_assignments(None)]);
        let resp = self.send_any(&req, ApiKey::CreatePartitions, 3).await?;
        for r in resp.results {
            ClientError::check(r.error_code, r.error_message.map(|m| m.to_string()))?;
        }
        Ok(())
    }

    /// The dynamic (non-default) configs of a topic, sorted.
    pub async fn topic_overrides(
        &mut self,
        topic: &str,
    ) -> Result<Vec<(String, String)>, ClientError> {
        const DYNAMIC_TOPIC_CONFIG: i8 = 1;
        Ok(self
            .describe_configs(2, topic)
            .await?
            .into_iter()
            .filter(|(_, _, source)| *source == DYNAMIC_TOPIC_CONFIG)
            .map(|(k, v, _)| (k, v))
            .collect())
    }

    async fn leader(&mut self, topic: &str, partition: i32) -> Result<i32, ClientError> {
        if let Some(l) = self
            .leaders
            .get(&(topic.to_string(), partition))
            .copied()
            .filter(|l| *l >= 0)
        {
            return Ok(l);
        }
        self.metadata(Some(&[topic.to_string()]), false).await?;
        self.leaders
            .get(&(topic.to_string(), partition))
            .copied()
            .filter(|l| *l >= 0)
            .ok_or_else(|| ClientError::Kafka {
                code: 3,
                message: Some(format!("{topic}-{partition}")),
            })
    }

    /// Produces one record batch (Kafka v2 bytes) to a partition; returns its base offset
    /// (-1 with acks=0).
    pub async fn produce(
        &mut self,
        topic: &str,
        partition: i32,
        records: Bytes,
        acks: i16,
    ) -> Result<i64, ClientError> {
        self.produce_transactional(topic, partition, records, acks, None)
            .await
    }

    /// [`Client::produce`] of a transactional producer's batch: the request names its
    /// `transactional_id`, as Kafka requires for transactional batches.
    pub async fn produce_transactional(
        &mut self,
        topic: &str,
        partition: i32,
        records: Bytes,
        acks: i16,
        transactional_id: Option<&str>,
    ) -> Result<i64, ClientError> {
        let leader = self.leader(topic, partition).await?;
        let req = Self::produce_request(topic, vec![(partition, records)], acks)
            .with_transactional_id(transactional_id.map(|t| {
                kafka_protocol::messages::TransactionalId(StrBytes::from_string(t.to_string()))
            }));
        let conn = self.broker(leader).await?;
        let v = conn.version(ApiKey::Produce, 9)?;
        if acks == 0 {
            conn.send_no_response(&req, v).await?;
            return Ok(-1);
        }
        let resp = conn.send(&req, v).await?;
        let p = resp
            .responses
            .first()
            .and_then(|t| t.partition_responses.first())
            .ok_or_else(|| ClientError::Protocol("empty produce response".into()))?;
        if p.error_code != 0 {
            self.leaders.remove(&(topic.to_string(), partition));
        }
        ClientError::check(
            p.error_code,
            p.error_message.as_ref().map(|m| m.to_string()),
        )?;
        Ok(p.base_offset)
    }

    /// A Produce request carrying one batch for each of `batches`' partitions of `topic`.
    pub fn produce_request(topic: &str, batches: Vec<(i32, Bytes)>, acks: i16) -> ProduceRequest {
        ProduceRequest::default()
            .with_acks(acks)
            .with_timeout_ms(30_000)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(name(topic))
                .with_partition_data(
                    batches
                        .into_iter()
                        .map(|(p, records)| {
                            PartitionProduceData::default()
                                .with_index(p)
                                .with_records(Some(records))
                        })
                        .collect(),
                )])
    }

    /// Fetches from `offset`; returns the record batches and the high watermark.
    pub async fn fetch(
        &mut self,
        topic: &str,
        partition: i32,
        offset: i64,
        max_bytes: i32,
        max_wait: Duration,
    ) -> Result<(Bytes, i64), ClientError> {
        let leader = self.leader(topic, partition).await?;
        let req = FetchRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_max_wait_ms(max_wait.as_millis().min(i32::MAX as u128) as i32)
            .with_min_bytes(1)
            .with_max_bytes(max_bytes)
            .with_topics(vec![FetchTopic::default()
                .with_topic(name(topic))
                .with_partitions(vec![FetchPartition::default()
                    .with_partition(partition)
                    .with_fetch_offset(offset)
                    .with_partition_max_bytes(max_bytes)])]);
        let addr = self.brokers.get(&leader).cloned();
        let conn = self.broker(leader).await?;
        let v = conn.version(ApiKey::Fetch, 12)?;
        let resp = match conn.send(&req, v).await {
            Ok(r) => r,
            Err(e) => {
                // The leader's broker went away: forget the connection and the leader, so the
                // next call asks Metadata for the new one.
                if let Some(addr) = addr {
                    self.conns.remove(&addr);
                }
                self.leaders.remove(&(topic.to_string(), partition));
                return Err(e);
            }
        };
        let p = resp
            .responses
            .first()
            .and_then(|t| t.partitions.first())
            .ok_or_else(|| ClientError::Protocol("empty fetch response".into()))?;
        if p.error_code != 0 {
            self.leaders.remove(&(topic.to_string(), partition));
        }
        ClientError::check(p.error_code, None)?;
        Ok((p.records.clone().unwrap_or_default(), p.high_watermark))
    }

    /// ListOffsets: -2 earliest, -1 latest, or a timestamp.
    pub async fn list_offset(
        &mut self,
        topic: &str,
        partition: i32,
        timestamp: i64,
    ) -> Result<i64, ClientError> {
        let leader = self.leader(topic, partition).await?;
        let req = ListOffsetsRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_topics(vec![ListOffsetsTopic::default()
                .with_name(name(topic))
                .with_partitions(vec![ListOffsetsPartition::default()
                    .with_partition_index(partition)
                    .with_timestamp(timestamp)])]);
        let conn = self.broker(leader).await?;
        let v = conn.version(ApiKey::ListOffsets, 7)?;
        let resp = conn.send(&req, v).await?;
        let p = resp
            .topics
            .first()
            .and_then(|t| t.partitions.first())
            .ok_or_else(|| ClientError::Protocol("empty list offsets response".into()))?;
        ClientError::check(p.error_code, None)?;
        Ok(p.offset)
    }
}
