//! What the console's pages show, asked of the broker's handlers as Kafka requests.

use std::collections::BTreeMap;

use bytes::Bytes;
use kafka_protocol::messages::consumer_protocol_assignment::ConsumerProtocolAssignment;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreateTopicsRequest};
use kafka_protocol::messages::delete_topics_request::{DeleteTopicState, DeleteTopicsRequest};
use kafka_protocol::messages::describe_configs_request::{
    DescribeConfigsRequest, DescribeConfigsResource,
};
use kafka_protocol::messages::describe_groups_request::DescribeGroupsRequest;
use kafka_protocol::messages::describe_log_dirs_request::{
    DescribableLogDirTopic, DescribeLogDirsRequest,
};
use kafka_protocol::messages::describe_quorum_request::{
    DescribeQuorumRequest, PartitionData as QuorumPartition, TopicData as QuorumTopic,
};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchRequest, FetchTopic};
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig, IncrementalAlterConfigsRequest,
};
use kafka_protocol::messages::list_groups_request::ListGroupsRequest;
use kafka_protocol::messages::list_offsets_request::{
    ListOffsetsPartition, ListOffsetsRequest, ListOffsetsTopic,
};
use kafka_protocol::messages::metadata_request::MetadataRequest;
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequest;
use kafka_protocol::messages::{ApiKey, BrokerId, GroupId, RequestKind, ResponseKind, TopicName};
use kafka_protocol::protocol::{Decodable, StrBytes};
use odradek_common::ErrorCode;

use super::{Console, User};

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn err_name(code: i16) -> String {
    ErrorCode::from_code(code).map_or_else(|| format!("error {code}"), |e| e.name().to_string())
}

fn unexpected(api: ApiKey) -> String {
    format!("{api:?}: unexpected response")
}

/// A broker of the cluster.
#[derive(Debug, Clone)]
pub struct BrokerRow {
    pub id: i32,
    pub host: String,
    pub port: i32,
    pub rack: String,
}

/// A partition as Metadata describes it.
#[derive(Debug, Clone)]
pub struct PartitionRow {
    pub index: i32,
    pub leader: i32,
    pub leader_epoch: i32,
    pub replicas: String,
    pub isr: String,
    pub under_replicated: bool,
    pub offline: bool,
    pub error: String,
    pub start: i64,
    pub end: i64,
    /// Bytes of this broker's replica ("-" when it hosts none).
    pub size: String,
}

/// A topic as Metadata describes it.
#[derive(Debug, Clone)]
pub struct TopicRow {
    pub name: String,
    pub internal: bool,
    pub partitions: Vec<PartitionRow>,
    pub replication_factor: usize,
    pub under_replicated: usize,
    pub offline: usize,
}

/// The cluster as Metadata describes it.
#[derive(Debug, Clone)]
pub struct Cluster {
    pub cluster_id: String,
    pub controller_id: i32,
    pub brokers: Vec<BrokerRow>,
    pub topics: Vec<TopicRow>,
}

fn join(ids: &[BrokerId]) -> String {
    ids.iter()
        .map(|b| b.0.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

impl Console {
    /// Metadata of every topic (`None`) or of one.
    pub(crate) async fn cluster(
        &self,
        user: &User,
        topic: Option<&str>,
    ) -> Result<Cluster, String> {
        let topics = topic.map(|t| {
            vec![
                kafka_protocol::messages::metadata_request::MetadataRequestTopic::default()
                    .with_name(Some(TopicName(s(t)))),
            ]
        });
        let req = MetadataRequest::default()
            .with_topics(topics)
            .with_allow_auto_topic_creation(false);
        let ResponseKind::Metadata(r) = self
            .call(user, ApiKey::Metadata, 12, RequestKind::Metadata(req))
            .await?
        else {
            return Err(unexpected(ApiKey::Metadata));
        };
        let mut topics: Vec<TopicRow> = r
            .topics
            .iter()
            .filter_map(|t| {
                let name = t.name.as_ref()?.0.to_string();
                if t.error_code != 0 && topic.is_none() {
                    return None;
                }
                let mut partitions: Vec<PartitionRow> = t
                    .partitions
                    .iter()
                    .map(|p| PartitionRow {
                        index: p.partition_index,
                        leader: p.leader_id.0,
                        leader_epoch: p.leader_epoch,
                        replicas: join(&p.replica_nodes),
                        isr: join(&p.isr_nodes),
                        under_replicated: p.isr_nodes.len() < p.replica_nodes.len(),
                        offline: p.leader_id.0 < 0,
                        error: if p.error_code == 0 {
                            String::new()
                        } else {
                            err_name(p.error_code)
                        },
                        start: -1,
                        end: -1,
                        size: "-".into(),
                    })
                    .collect();
                partitions.sort_by_key(|p| p.index);
                Some(TopicRow {
                    name,
                    internal: t.is_internal,
                    replication_factor: t.partitions.first().map_or(0, |p| p.replica_nodes.len()),
                    under_replicated: partitions.iter().filter(|p| p.under_replicated).count(),
                    offline: partitions.iter().filter(|p| p.offline).count(),
                    partitions,
                })
            })
            .collect();
        if let (Some(name), Some(t)) = (topic, r.topics.first()) {
            if t.error_code != 0 {
                return Err(format!("topic '{name}': {}", err_name(t.error_code)));
            }
        }
        topics.sort_by(|a, b| a.name.cmp(&b.name));
        let mut brokers: Vec<BrokerRow> = r
            .brokers
            .iter()
            .map(|b| BrokerRow {
                id: b.node_id.0,
                host: b.host.to_string(),
                port: b.port,
                rack: b.rack.as_ref().map(|r| r.to_string()).unwrap_or_default(),
            })
            .collect();
        brokers.sort_by_key(|b| b.id);
        Ok(Cluster {
            cluster_id: r.cluster_id.map(|c| c.to_string()).unwrap_or_default(),
            controller_id: r.controller_id.0,
            brokers,
            topics,
        })
    }

    /// Fills in the log start and end offsets of `topic`'s partitions (ListOffsets earliest
    /// and latest; partitions this broker cannot answer for keep -1) and the sizes of this
    /// broker's replicas (DescribeLogDirs).
    pub(crate) async fn fill_offsets(&self, user: &User, topic: &mut TopicRow) {
        let req = DescribeLogDirsRequest::default().with_topics(Some(vec![
            DescribableLogDirTopic::default()
                .with_topic(TopicName(s(&topic.name)))
                .with_partitions(topic.partitions.iter().map(|p| p.index).collect()),
        ]));
        if let Ok(ResponseKind::DescribeLogDirs(r)) = self
            .call(
                user,
                ApiKey::DescribeLogDirs,
                4,
                RequestKind::DescribeLogDirs(req),
            )
            .await
        {
            for dp in r
                .results
                .iter()
                .flat_map(|d| &d.topics)
                .filter(|t| t.name.0.as_str() == topic.name)
                .flat_map(|t| &t.partitions)
            {
                if let Some(p) = topic
                    .partitions
                    .iter_mut()
                    .find(|p| p.index == dp.partition_index)
                {
                    p.size = human_bytes(dp.partition_size);
                }
            }
        }
        for (spec, start) in [(-2i64, true), (-1, false)] {
            let req = ListOffsetsRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_topics(vec![ListOffsetsTopic::default()
                    .with_name(TopicName(s(&topic.name)))
                    .with_partitions(
                        topic
                            .partitions
                            .iter()
                            .map(|p| {
                                ListOffsetsPartition::default()
                                    .with_partition_index(p.index)
                                    .with_current_leader_epoch(-1)
                                    .with_timestamp(spec)
                            })
                            .collect(),
                    )]);
            let Ok(ResponseKind::ListOffsets(r)) = self
                .call(user, ApiKey::ListOffsets, 7, RequestKind::ListOffsets(req))
                .await
            else {
                continue;
            };
            for rp in r.topics.iter().flat_map(|t| &t.partitions) {
                if rp.error_code != 0 {
                    continue;
                }
                if let Some(p) = topic
                    .partitions
                    .iter_mut()
                    .find(|p| p.index == rp.partition_index)
                {
                    if start {
                        p.start = rp.offset;
                    } else {
                        p.end = rp.offset;
                    }
                }
            }
        }
    }

    /// The controller quorum: leader, epoch, high watermark, voters and observers with their
    /// log end and lag.
    pub(crate) async fn quorum(&self, user: &User) -> Result<Quorum, String> {
        let req = DescribeQuorumRequest::default().with_topics(vec![QuorumTopic::default()
            .with_topic_name(TopicName(s("__cluster_metadata")))
            .with_partitions(vec![QuorumPartition::default().with_partition_index(0)])]);
        let ResponseKind::DescribeQuorum(r) = self
            .call(
                user,
                ApiKey::DescribeQuorum,
                1,
                RequestKind::DescribeQuorum(req),
            )
            .await?
        else {
            return Err(unexpected(ApiKey::DescribeQuorum));
        };
        if r.error_code != 0 {
            return Err(format!("DescribeQuorum: {}", err_name(r.error_code)));
        }
        let p = r
            .topics
            .first()
            .and_then(|t| t.partitions.first())
            .ok_or("DescribeQuorum: no partition")?;
        if p.error_code != 0 {
            return Err(format!("DescribeQuorum: {}", err_name(p.error_code)));
        }
        let now = self.broker.clock.now_ms();
        let row = |v: &kafka_protocol::messages::describe_quorum_response::ReplicaState,
                   role: &str| VoterRow {
            id: v.replica_id.0,
            role: if v.replica_id.0 == p.leader_id.0 {
                "leader".into()
            } else {
                role.into()
            },
            log_end_offset: v.log_end_offset,
            lag: (p.high_watermark - v.log_end_offset).max(0),
            last_fetch: if v.last_fetch_timestamp > 0 {
                format!("{} ms ago", (now - v.last_fetch_timestamp).max(0))
            } else {
                "-".into()
            },
        };
        let mut voters: Vec<VoterRow> = p.current_voters.iter().map(|v| row(v, "voter")).collect();
        voters.extend(p.observers.iter().map(|v| row(v, "observer")));
        Ok(Quorum {
            leader_id: p.leader_id.0,
            leader_epoch: p.leader_epoch,
            high_watermark: p.high_watermark,
            voters,
        })
    }

    /// Creates a topic.
    pub(crate) async fn create_topic(
        &self,
        user: &User,
        name: &str,
        partitions: i32,
        replication_factor: i16,
    ) -> Result<(), String> {
        let req = CreateTopicsRequest::default()
            .with_timeout_ms(30_000)
            .with_topics(vec![CreatableTopic::default()
                .with_name(TopicName(s(name)))
                .with_num_partitions(partitions)
                .with_replication_factor(replication_factor)]);
        let ResponseKind::CreateTopics(r) = self
            .call(
                user,
                ApiKey::CreateTopics,
                7,
                RequestKind::CreateTopics(req),
            )
            .await?
        else {
            return Err(unexpected(ApiKey::CreateTopics));
        };
        match r.topics.first() {
            Some(t) if t.error_code != 0 => Err(format!(
                "{}: {}",
                err_name(t.error_code),
                t.error_message
                    .as_ref()
                    .map(|m| m.to_string())
                    .unwrap_or_default()
            )),
            Some(_) => Ok(()),
            None => Err("CreateTopics: no result".into()),
        }
    }

    /// Deletes a topic.
    pub(crate) async fn delete_topic(&self, user: &User, name: &str) -> Result<(), String> {
        let req = DeleteTopicsRequest::default()
            .with_timeout_ms(30_000)
            .with_topics(vec![
                DeleteTopicState::default().with_name(Some(TopicName(s(name))))
            ]);
        let ResponseKind::DeleteTopics(r) = self
            .call(
                user,
                ApiKey::DeleteTopics,
                6,
                RequestKind::DeleteTopics(req),
            )
            .await?
        else {
            return Err(unexpected(ApiKey::DeleteTopics));
        };
        match r.responses.first() {
            Some(t) if t.error_code != 0 => Err(err_name(t.error_code)),
            Some(_) => Ok(()),
            None => Err("DeleteTopics: no result".into()),
        }
    }

    /// The configs of a topic: (name, value, source, read-only).
    pub(crate) async fn topic_configs(
        &self,
        user: &User,
        name: &str,
    ) -> Result<Vec<ConfigRow>, String> {
        let req = DescribeConfigsRequest::default().with_resources(vec![
            DescribeConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(s(name))
                .with_configuration_keys(None),
        ]);
        let ResponseKind::DescribeConfigs(r) = self
            .call(
                user,
                ApiKey::DescribeConfigs,
                4,
                RequestKind::DescribeConfigs(req),
            )
            .await?
        else {
            return Err(unexpected(ApiKey::DescribeConfigs));
        };
        let res = r.results.first().ok_or("DescribeConfigs: no result")?;
        if res.error_code != 0 {
            return Err(err_name(res.error_code));
        }
        Ok(res
            .configs
            .iter()
            .map(|c| ConfigRow {
                name: c.name.to_string(),
                value: if c.is_sensitive {
                    "(sensitive)".into()
                } else {
                    c.value.as_ref().map(|v| v.to_string()).unwrap_or_default()
                },
                source: match c.config_source {
                    1 => "topic",
                    2 => "broker (dynamic)",
                    3 => "cluster default (dynamic)",
                    4 => "broker (static)",
                    5 => "default",
                    _ => "",
                }
                .into(),
                overridden: c.config_source == 1,
            })
            .collect())
    }

    /// Sets (or, with an empty value, removes) one topic config.
    pub(crate) async fn alter_topic_config(
        &self,
        user: &User,
        topic: &str,
        key: &str,
        value: &str,
    ) -> Result<(), String> {
        let (op, value) = if value.is_empty() {
            (1, None)
        } else {
            (0, Some(s(value)))
        };
        let req = IncrementalAlterConfigsRequest::default().with_resources(vec![
            AlterConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(s(topic))
                .with_configs(vec![AlterableConfig::default()
                    .with_name(s(key))
                    .with_config_operation(op)
                    .with_value(value)]),
        ]);
        let ResponseKind::IncrementalAlterConfigs(r) = self
            .call(
                user,
                ApiKey::IncrementalAlterConfigs,
                1,
                RequestKind::IncrementalAlterConfigs(req),
            )
            .await?
        else {
            return Err(unexpected(ApiKey::IncrementalAlterConfigs));
        };
        match r.responses.first() {
            Some(x) if x.error_code != 0 => Err(format!(
                "{}: {}",
                err_name(x.error_code),
                x.error_message
                    .as_ref()
                    .map(|m| m.to_string())
                    .unwrap_or_default()
            )),
            Some(_) => Ok(()),
            None => Err("IncrementalAlterConfigs: no result".into()),
        }
    }

    /// The groups this broker coordinates: (id, state, protocol type).
    pub(crate) async fn list_groups(
        &self,
        user: &User,
    ) -> Result<Vec<(String, String, String)>, String> {
        let ResponseKind::ListGroups(r) = self
            .call(
                user,
                ApiKey::ListGroups,
                4,
                RequestKind::ListGroups(ListGroupsRequest::default()),
            )
            .await?
        else {
            return Err(unexpected(ApiKey::ListGroups));
        };
        if r.error_code != 0 {
            return Err(err_name(r.error_code));
        }
        let mut out: Vec<_> = r
            .groups
            .iter()
            .map(|g| {
                (
                    g.group_id.0.to_string(),
                    g.group_state.to_string(),
                    g.protocol_type.to_string(),
                )
            })
            .collect();
        out.sort();
        Ok(out)
    }

    /// One group: state, members and their assignments, committed offsets with lag.
    pub(crate) async fn describe_group(&self, user: &User, id: &str) -> Result<Group, String> {
        let req = DescribeGroupsRequest::default().with_groups(vec![GroupId(s(id))]);
        let ResponseKind::DescribeGroups(r) = self
            .call(
                user,
                ApiKey::DescribeGroups,
                5,
                RequestKind::DescribeGroups(req),
            )
            .await?
        else {
            return Err(unexpected(ApiKey::DescribeGroups));
        };
        let g = r.groups.first().ok_or("DescribeGroups: no group")?;
        if g.error_code != 0 {
            return Err(format!("group '{id}': {}", err_name(g.error_code)));
        }
        let members = g
            .members
            .iter()
            .map(|m| MemberRow {
                member_id: m.member_id.to_string(),
                instance_id: m
                    .group_instance_id
                    .as_ref()
                    .map(|i| i.to_string())
                    .unwrap_or_default(),
                client_id: m.client_id.to_string(),
                host: m.client_host.to_string(),
                assignment: describe_assignment(&m.member_assignment),
            })
            .collect();
        let req = OffsetFetchRequest::default()
            .with_group_id(GroupId(s(id)))
            .with_topics(None);
        let ResponseKind::OffsetFetch(o) = self
            .call(user, ApiKey::OffsetFetch, 7, RequestKind::OffsetFetch(req))
            .await?
        else {
            return Err(unexpected(ApiKey::OffsetFetch));
        };
        if o.error_code != 0 {
            return Err(format!("offsets of '{id}': {}", err_name(o.error_code)));
        }
        // End offsets from the broker's lag computation where it hosts the partition.
        let ends: BTreeMap<(String, i32), i64> = crate::metrics::consumer_lag(&self.broker)
            .into_iter()
            .filter(|l| l.group == id)
            .map(|l| ((l.topic, l.partition), l.end))
            .collect();
        let mut offsets: Vec<OffsetRow> = o
            .topics
            .iter()
            .flat_map(|t| {
                let ends = &ends;
                t.partitions.iter().map(move |p| {
                    let topic = t.name.0.to_string();
                    let end = ends.get(&(topic.clone(), p.partition_index)).copied();
                    OffsetRow {
                        lag: end.map_or_else(
                            || "-".into(),
                            |e| (e - p.committed_offset).max(0).to_string(),
                        ),
                        end: end.map_or_else(|| "-".into(), |e| e.to_string()),
                        topic,
                        partition: p.partition_index,
                        committed: p.committed_offset,
                    }
                })
            })
            .collect();
        offsets.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
        // DescribeGroups answers an unknown group as Dead without an error, as Kafka does.
        if g.group_state.as_str() == "Dead" && offsets.is_empty() {
            return Err(format!("group '{id}': GROUP_ID_NOT_FOUND"));
        }
        Ok(Group {
            id: id.to_string(),
            state: g.group_state.to_string(),
            protocol_type: g.protocol_type.to_string(),
            protocol: g.protocol_data.to_string(),
            members,
            offsets,
        })
    }

    /// Up to `max` records of a partition from `offset`, as Fetch returns them (read
    /// uncommitted, below the high watermark).
    pub(crate) async fn fetch(
        &self,
        user: &User,
        topic: &str,
        partition: i32,
        offset: i64,
        max: usize,
    ) -> Result<(Vec<odradek_log::records::Record>, i64), String> {
        let req = FetchRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_max_wait_ms(0)
            .with_min_bytes(1)
            .with_max_bytes(1024 * 1024)
            .with_session_epoch(-1)
            .with_topics(vec![FetchTopic::default()
                .with_topic(TopicName(s(topic)))
                .with_partitions(vec![FetchPartition::default()
                    .with_partition(partition)
                    .with_current_leader_epoch(-1)
                    .with_fetch_offset(offset.max(0))
                    .with_last_fetched_epoch(-1)
                    .with_log_start_offset(-1)
                    .with_partition_max_bytes(1024 * 1024)])]);
        let ResponseKind::Fetch(r) = self
            .call(user, ApiKey::Fetch, 12, RequestKind::Fetch(req))
            .await?
        else {
            return Err(unexpected(ApiKey::Fetch));
        };
        if r.error_code != 0 {
            return Err(err_name(r.error_code));
        }
        let p = r
            .responses
            .first()
            .and_then(|t| t.partitions.first())
            .ok_or("Fetch: no partition")?;
        if p.error_code != 0 {
            return Err(format!(
                "partition {partition} of '{topic}': {}{}",
                err_name(p.error_code),
                if p.error_code == ErrorCode::NotLeaderOrFollower.code() {
                    " (this broker does not lead it: open the console of its leader)"
                } else {
                    ""
                }
            ));
        }
        let records = odradek_log::records::decode_batches(p.records.clone().unwrap_or_default())
            .map_err(|e| e.to_string())?;
        let records = records
            .into_iter()
            .filter(|r| r.offset >= offset && !r.control)
            .take(max)
            .collect();
        Ok((records, p.high_watermark))
    }

    /// The first offset at or after `timestamp_ms` (ListOffsets by time).
    pub(crate) async fn offset_for_time(
        &self,
        user: &User,
        topic: &str,
        partition: i32,
        timestamp_ms: i64,
    ) -> Result<i64, String> {
        let req = ListOffsetsRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_topics(vec![ListOffsetsTopic::default()
                .with_name(TopicName(s(topic)))
                .with_partitions(vec![ListOffsetsPartition::default()
                    .with_partition_index(partition)
                    .with_current_leader_epoch(-1)
                    .with_timestamp(timestamp_ms)])]);
        let ResponseKind::ListOffsets(r) = self
            .call(user, ApiKey::ListOffsets, 7, RequestKind::ListOffsets(req))
            .await?
        else {
            return Err(unexpected(ApiKey::ListOffsets));
        };
        let p = r
            .topics
            .first()
            .and_then(|t| t.partitions.first())
            .ok_or("ListOffsets: no partition")?;
        if p.error_code != 0 {
            return Err(err_name(p.error_code));
        }
        Ok(p.offset)
    }
}

/// A controller in the quorum.
#[derive(Debug, Clone)]
pub struct VoterRow {
    pub id: i32,
    pub role: String,
    pub log_end_offset: i64,
    pub lag: i64,
    pub last_fetch: String,
}

/// The controller quorum.
#[derive(Debug, Clone)]
pub struct Quorum {
    pub leader_id: i32,
    pub leader_epoch: i32,
    pub high_watermark: i64,
    pub voters: Vec<VoterRow>,
}

/// One topic config.
#[derive(Debug, Clone)]
pub struct ConfigRow {
    pub name: String,
    pub value: String,
    pub source: String,
    pub overridden: bool,
}

/// A group member.
#[derive(Debug, Clone)]
pub struct MemberRow {
    pub member_id: String,
    pub instance_id: String,
    pub client_id: String,
    pub host: String,
    pub assignment: String,
}

/// A committed offset with the partition's end and the lag.
#[derive(Debug, Clone)]
pub struct OffsetRow {
    pub topic: String,
    pub partition: i32,
    pub committed: i64,
    pub end: String,
    pub lag: String,
}

/// A consumer group.
#[derive(Debug, Clone)]
pub struct Group {
    pub id: String,
    pub state: String,
    pub protocol_type: String,
    pub protocol: String,
    pub members: Vec<MemberRow>,
    pub offsets: Vec<OffsetRow>,
}

/// `n` bytes as B, KiB, MiB or GiB.
fn human_bytes(n: i64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n.max(0) as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < units.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", units[u])
    }
}

/// A consumer protocol assignment as `topic: 0, 1; other: 2`, or its size when it is not one.
pub(crate) fn describe_assignment(bytes: &Bytes) -> String {
    if bytes.len() < 2 {
        return String::new();
    }
    let mut b = bytes.clone();
    let version = i16::from_be_bytes([bytes[0], bytes[1]]);
    let _ = bytes::Buf::get_i16(&mut b);
    match ConsumerProtocolAssignment::decode(&mut b, version.clamp(0, 3)) {
        Ok(a) => a
            .assigned_partitions
            .iter()
            .map(|tp| {
                let ps: Vec<String> = tp.partitions.iter().map(|p| p.to_string()).collect();
                format!("{}: {}", tp.topic.0, ps.join(", "))
            })
            .collect::<Vec<_>>()
            .join("; "),
        Err(_) => format!("({} bytes)", bytes.len()),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(super::human_bytes(512), "512 B");
        assert_eq!(super::human_bytes(1536), "1.5 KiB");
        assert_eq!(super::human_bytes(3 * 1024 * 1024 * 1024), "3.0 GiB");
    }
}
