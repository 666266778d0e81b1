//! Membership of a consumer group through Kafka's classic protocol, as a Kafka consumer does it:
//! find the coordinator, join (with the KIP-394 member-id round trip), assign partitions with the
//! range assignor when elected leader, sync, heartbeat, fetch and commit offsets, leave.
//!
//! Subscriptions and assignments use Kafka's consumer protocol encoding, so members of the same
//! group may be any Kafka client.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    ApiKey, ConsumerProtocolAssignment, ConsumerProtocolSubscription, FindCoordinatorRequest,
    GroupId, HeartbeatRequest, JoinGroupRequest, LeaveGroupRequest, OffsetCommitRequest,
    OffsetFetchRequest, SyncGroupRequest, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use odradek_common::ErrorCode;

use crate::client::Client;
use crate::connection::Connection;
use crate::error::ClientError;

// The Kafka error codes the membership loop acts on.
const COORDINATOR_LOAD_IN_PROGRESS: i16 = ErrorCode::CoordinatorLoadInProgress as i16;
const COORDINATOR_NOT_AVAILABLE: i16 = ErrorCode::CoordinatorNotAvailable as i16;
const NOT_COORDINATOR: i16 = ErrorCode::NotCoordinator as i16;
const ILLEGAL_GENERATION: i16 = ErrorCode::IllegalGeneration as i16;
const UNKNOWN_MEMBER_ID: i16 = ErrorCode::UnknownMemberId as i16;
const REBALANCE_IN_PROGRESS: i16 = ErrorCode::RebalanceInProgress as i16;
const MEMBER_ID_REQUIRED: i16 = ErrorCode::MemberIdRequired as i16;

/// Whether `e` means this member must rejoin the group (its generation is gone, its session
/// expired, or a rebalance is under way) rather than give up.
pub fn must_rejoin(e: &ClientError) -> bool {
    matches!(
        e,
        ClientError::Kafka {
            code: ILLEGAL_GENERATION | UNKNOWN_MEMBER_ID | REBALANCE_IN_PROGRESS,
            ..
        }
    )
}

/// Whether `e` means the coordinator moved or cannot be reached: find it again and retry.
pub fn coordinator_moved(e: &ClientError) -> bool {
    matches!(
        e,
        ClientError::Io { .. }
            | ClientError::Kafka {
                code: NOT_COORDINATOR | COORDINATOR_NOT_AVAILABLE | COORDINATOR_LOAD_IN_PROGRESS,
                ..
            }
    )
}

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn encode_versioned<T: Encodable>(version: i16, v: &T) -> Result<Bytes, ClientError> {
    let mut b = BytesMut::new();
    b.put_i16(version);
    v.encode(&mut b, version)
        .map_err(|e| ClientError::Protocol(format!("cannot encode: {e}")))?;
    Ok(b.freeze())
}

fn decode_versioned<T: Decodable>(mut b: Bytes) -> Result<T, ClientError> {
    if b.len() < 2 {
        return Err(ClientError::Protocol("empty consumer protocol data".into()));
    }
    let version = i16::from_be_bytes([b[0], b[1]]);
    let _ = b.split_to(2);
    T::decode(&mut b, version.clamp(0, 3))
        .map_err(|e| ClientError::Protocol(format!("bad consumer protocol data: {e}")))
}

/// Per member, the partitions assigned to it: (member id, [(topic, partitions)]).
pub type Plan = Vec<(String, Vec<(String, Vec<i32>)>)>;

/// Kafka's range assignor: for each topic, the members subscribed to it (sorted by member id)
/// take consecutive ranges of its partitions, the first ones one extra when it does not divide.
pub fn range_assign(members: &[(String, Vec<String>)], partitions: &dyn Fn(&str) -> i32) -> Plan {
    let mut sorted: Vec<&(String, Vec<String>)> = members.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut topics: Vec<&String> = sorted.iter().flat_map(|m| m.1.iter()).collect();
    topics.sort();
    topics.dedup();
    let mut out: Plan = sorted.iter().map(|m| (m.0.clone(), Vec::new())).collect();
    for topic in topics {
        let subscribed: Vec<usize> = (0..sorted.len())
            .filter(|i| sorted[*i].1.contains(topic))
            .collect();
        let n = partitions(topic).max(0);
        let k = subscribed.len() as i32;
        let (per, extra) = (n / k, n % k);
        let mut next = 0;
        for (rank, i) in subscribed.iter().enumerate() {
            let count = per + i32::from((rank as i32) < extra);
            if count > 0 {
                out[*i]
                    .1
                    .push((topic.clone(), (next..next + count).collect()));
            }
            next += count;
        }
    }
    out
}

/// A member of a consumer group.
#[derive(Debug)]
pub struct GroupMember {
    group: String,
    topics: Vec<String>,
    coordinator: Connection,
    member_id: String,
    generation: i32,
    session_timeout_ms: i32,
    assignment: Vec<(String, i32)>,
}

impl GroupMember {
    /// Finds `group`'s coordinator through `client` and joins the group subscribed to
    /// `topics`; returns once the member has its assignment.
    pub async fn join(
        client: &mut Client,
        group: &str,
        topics: &[String],
        session_timeout_ms: i32,
    ) -> Result<GroupMember, ClientError> {
        let coordinator = Self::coordinator(client, group).await?;
        let mut member = GroupMember {
            group: group.to_string(),
            topics: topics.to_vec(),
            coordinator,
            member_id: String::new(),
            generation: -1,
            session_timeout_ms,
            assignment: Vec::new(),
        };
        // The coordinator may still be loading (or moving): retry as Kafka clients do.
        for _ in 0..40 {
            match member.rejoin(client).await {
                Err(ClientError::Kafka {
                    code: COORDINATOR_LOAD_IN_PROGRESS | COORDINATOR_NOT_AVAILABLE | NOT_COORDINATOR,
                    ..
                }) => {
                    tokio::time::sleep(std::time::Duration::from_millis(250)).await;
                    member.coordinator = Self::coordinator(client, group).await?;
                }
                other => return other.map(|()| member),
            }
        }
        Err(ClientError::Kafka {
            code: COORDINATOR_NOT_AVAILABLE,
            message: Some(format!("group {group}")),
        })
    }

    /// A connection to `group`'s coordinator (waiting while `__consumer_offsets` is created).
    pub async fn coordinator(client: &mut Client, group: &str) -> Result<Connection, ClientError> {
        let mut last = None;
        for _ in 0..20 {
            // Version 3 at most: one key per request (v4 batches keys).
            let req = FindCoordinatorRequest::default()
                .with_key(s(group))
                .with_key_type(0);
            let resp = client.send_any(&req, ApiKey::FindCoordinator, 3).await?;
            let (code, host, port) = (resp.error_code, resp.host.to_string(), resp.port);
            // COORDINATOR_NOT_AVAILABLE / LOAD_IN_PROGRESS while the offsets topic is created.
            if code == COORDINATOR_NOT_AVAILABLE || code == COORDINATOR_LOAD_IN_PROGRESS {
                last = Some(ClientError::Kafka {
                    code,
                    message: Some(format!("group {group}")),
                });
                tokio::time::sleep(std::time::Duration::from_millis(250)).await;
                continue;
            }
            ClientError::check(code, Some(format!("group {group}")))?;
            return client.connect_to(&format!("{host}:{port}")).await;
        }
        Err(last.unwrap_or_else(|| ClientError::Protocol("no coordinator".into())))
    }

    /// Finds the group's coordinator again after it moved (its broker died or lost
    /// leadership of the group's `__consumer_offsets` partition), retrying for about 30 s:
    /// longer than `broker.session.timeout.ms`, after which the controller has moved it.
    pub async fn relocate(&mut self, client: &mut Client) -> Result<(), ClientError> {
        let mut last = None;
        for _ in 0..60 {
            match Self::coordinator(client, &self.group).await {
                Ok(c) => {
                    self.coordinator = c;
                    return Ok(());
                }
                Err(e) if coordinator_moved(&e) => {
                    last = Some(e);
                    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                }
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| ClientError::Protocol("no coordinator".into())))
    }

    /// (Re)joins: JoinGroup, the leader's range assignment, SyncGroup.
    pub async fn rejoin(&mut self, client: &mut Client) -> Result<(), ClientError> {
        let subscription = encode_versioned(
            0,
            &ConsumerProtocolSubscription::default()
                .with_topics(self.topics.iter().map(|t| s(t)).collect()),
        )?;
        let join_v = self.coordinator.version(ApiKey::JoinGroup, 7)?;
        let joined = loop {
            let req = JoinGroupRequest::default()
                .with_group_id(GroupId(s(&self.group)))
                .with_session_timeout_ms(self.session_timeout_ms)
                .with_rebalance_timeout_ms(60_000)
                .with_member_id(s(&self.member_id))
                .with_protocol_type(s("consumer"))
                .with_protocols(vec![JoinGroupRequestProtocol::default()
                    .with_name(s("range"))
                    .with_metadata(subscription.clone())]);
            let resp = self.coordinator.send(&req, join_v).await?;
            if resp.error_code == MEMBER_ID_REQUIRED {
                self.member_id = resp.member_id.to_string();
                continue;
            }
            // Our member id expired meanwhile: join again as a new member.
            if resp.error_code == UNKNOWN_MEMBER_ID && !self.member_id.is_empty() {
                self.member_id.clear();
                continue;
            }
            ClientError::check(
                resp.error_code,
                Some(format!("joining group {}", self.group)),
            )?;
            break resp;
        };
        self.member_id = joined.member_id.to_string();
        self.generation = joined.generation_id;
        let mut assignments = Vec::new();
        if joined.leader == joined.member_id {
            let mut members = Vec::new();
            for m in &joined.members {
                let sub: ConsumerProtocolSubscription = decode_versioned(m.metadata.clone())?;
                members.push((
                    m.member_id.to_string(),
                    sub.topics.iter().map(|t| t.to_string()).collect::<Vec<_>>(),
                ));
            }
            let wanted: Vec<String> = members.iter().flat_map(|m| m.1.clone()).collect();
            let counts: std::collections::HashMap<String, i32> = client
                .metadata(Some(&wanted), false)
                .await?
                .into_iter()
                .map(|t| (t.name, t.partitions.len() as i32))
                .collect();
            for (member, plan) in range_assign(&members, &|t| counts.get(t).copied().unwrap_or(0)) {
                let a = ConsumerProtocolAssignment::default().with_assigned_partitions(
                    plan.into_iter()
                        .map(|(t, ps)| {
                            TopicPartition::default()
                                .with_topic(TopicName(s(&t)))
                                .with_partitions(ps)
                        })
                        .collect(),
                );
                assignments.push(
                    SyncGroupRequestAssignment::default()
                        .with_member_id(s(&member))
                        .with_assignment(encode_versioned(0, &a)?),
                );
            }
        }
        let sync_v = self.coordinator.version(ApiKey::SyncGroup, 5)?;
        let mut req = SyncGroupRequest::default()
            .with_group_id(GroupId(s(&self.group)))
            .with_generation_id(self.generation)
            .with_member_id(s(&self.member_id))
            .with_assignments(assignments);
        if sync_v >= 5 {
            req.protocol_type = Some(s("consumer"));
            req.protocol_name = joined.protocol_name.clone();
        }
        let resp = self.coordinator.send(&req, sync_v).await?;
        ClientError::check(
            resp.error_code,
            Some(format!("syncing group {}", self.group)),
        )?;
        self.assignment = if resp.assignment.is_empty() {
            Vec::new()
        } else {
            let a: ConsumerProtocolAssignment = decode_versioned(resp.assignment)?;
            a.assigned_partitions
                .iter()
                .flat_map(|tp| tp.partitions.iter().map(|p| (tp.topic.0.to_string(), *p)))
                .collect()
        };
        Ok(())
    }

    /// The partitions assigned to this member.
    pub fn assignment(&self) -> &[(String, i32)] {
        &self.assignment
    }

    /// The member id.
    pub fn member_id(&self) -> &str {
        &self.member_id
    }

    /// The generation.
    pub fn generation(&self) -> i32 {
        self.generation
    }

    /// Heartbeat: `Ok(false)` when the member must rejoin (the group is rebalancing, or this
    /// member's session expired or its generation is gone).
    pub async fn heartbeat(&mut self) -> Result<bool, ClientError> {
        let v = self.coordinator.version(ApiKey::Heartbeat, 4)?;
        let req = HeartbeatRequest::default()
            .with_group_id(GroupId(s(&self.group)))
            .with_generation_id(self.generation)
            .with_member_id(s(&self.member_id));
        let resp = self.coordinator.send(&req, v).await?;
        match resp.error_code {
            REBALANCE_IN_PROGRESS => return Ok(false),
            // Expired (UNKNOWN_MEMBER_ID) or left behind (ILLEGAL_GENERATION): rejoin, as a new
            // member after an expiry.
            UNKNOWN_MEMBER_ID => {
                self.member_id.clear();
                return Ok(false);
            }
            ILLEGAL_GENERATION => return Ok(false),
            _ => {}
        }
        ClientError::check(
            resp.error_code,
            Some(format!("heartbeat to group {}", self.group)),
        )?;
        Ok(true)
    }

    /// The committed offsets of `partitions` (-1 where none).
    pub async fn committed(
        &mut self,
        partitions: &[(String, i32)],
    ) -> Result<Vec<((String, i32), i64)>, ClientError> {
        let v = self.coordinator.version(ApiKey::OffsetFetch, 7)?;
        let mut topics: Vec<OffsetFetchRequestTopic> = Vec::new();
        for (t, p) in partitions {
            match topics.iter_mut().find(|x| x.name.0.as_str() == t) {
                Some(x) => x.partition_indexes.push(*p),
                None => topics.push(
                    OffsetFetchRequestTopic::default()
                        .with_name(TopicName(s(t)))
                        .with_partition_indexes(vec![*p]),
                ),
            }
        }
        let req = OffsetFetchRequest::default()
            .with_group_id(GroupId(s(&self.group)))
            .with_topics(Some(topics));
        let resp = self.coordinator.send(&req, v).await?;
        ClientError::check(
            resp.error_code,
            Some(format!("offsets of group {}", self.group)),
        )?;
        let mut out = Vec::new();
        for t in resp.topics {
            for p in t.partitions {
                ClientError::check(p.error_code, None)?;
                out.push((
                    (t.name.0.to_string(), p.partition_index),
                    p.committed_offset,
                ));
            }
        }
        Ok(out)
    }

    /// Commits `offsets` (the next offset to read, per partition) for this generation.
    pub async fn commit(&mut self, offsets: &[((String, i32), i64)]) -> Result<(), ClientError> {
        if offsets.is_empty() {
            return Ok(());
        }
        let v = self.coordinator.version(ApiKey::OffsetCommit, 8)?;
        let mut topics: Vec<OffsetCommitRequestTopic> = Vec::new();
        for ((t, p), o) in offsets {
            let part = OffsetCommitRequestPartition::default()
                .with_partition_index(*p)
                .with_committed_offset(*o)
                .with_committed_metadata(Some(StrBytes::default()));
            match topics.iter_mut().find(|x| x.name.0.as_str() == t) {
                Some(x) => x.partitions.push(part),
                None => topics.push(
                    OffsetCommitRequestTopic::default()
                        .with_name(TopicName(s(t)))
                        .with_partitions(vec![part]),
                ),
            }
        }
        let req = OffsetCommitRequest::default()
            .with_group_id(GroupId(s(&self.group)))
            .with_generation_id_or_member_epoch(self.generation)
            .with_member_id(s(&self.member_id))
            .with_topics(topics);
        let resp = self.coordinator.send(&req, v).await?;
        for t in resp.topics {
            for p in t.partitions {
                ClientError::check(
                    p.error_code,
                    Some(format!("committing {}-{}", t.name.0, p.partition_index)),
                )?;
            }
        }
        Ok(())
    }

    /// Leaves the group (its partitions go to the other members at once).
    pub async fn leave(mut self) -> Result<(), ClientError> {
        let v = self.coordinator.version(ApiKey::LeaveGroup, 4)?;
        let mut req = LeaveGroupRequest::default().with_group_id(GroupId(s(&self.group)));
        if v >= 3 {
            req.members = vec![MemberIdentity::default().with_member_id(s(&self.member_id))];
        } else {
            req.member_id = s(&self.member_id);
        }
        let resp = self.coordinator.send(&req, v).await?;
        ClientError::check(resp.error_code, None)
    }
}

/// A member as DescribeGroups shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberInfo {
    /// Member id.
    pub member_id: String,
    /// Client id.
    pub client_id: String,
    /// Client host.
    pub host: String,
    /// Assigned partitions.
    pub assignment: Vec<(String, i32)>,
    /// Member epoch (consumer groups; -1 in a classic group).
    pub member_epoch: i32,
    /// Target assignment (consumer groups; empty in a classic group).
    pub target: Vec<(String, i32)>,
}

/// A group as an operator sees it (DescribeGroups).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupInfo {
    /// State (Empty, Stable, ...; Dead when unknown).
    pub state: String,
    /// Protocol type.
    pub protocol_type: String,
    /// Chosen assignor (the broker-side assignor of a consumer group).
    pub protocol: String,
    /// "classic", or "consumer" for a KIP-848 consumer group.
    pub group_type: String,
    /// Group epoch and target assignment epoch of a consumer group (-1 in a classic group).
    pub epochs: (i32, i32),
    /// Members.
    pub members: Vec<MemberInfo>,
    /// Committed offsets.
    pub offsets: Vec<((String, i32), i64)>,
}

/// Every group known to any broker: (group id, state, protocol type, group type), sorted.
pub async fn list_groups(
    client: &mut Client,
) -> Result<Vec<(String, String, String, String)>, ClientError> {
    use kafka_protocol::messages::ListGroupsRequest;
    client.metadata(Some(&[]), false).await?;
    let mut out = Vec::new();
    for id in client.broker_ids() {
        let Some(addr) = client.broker_address(id).map(str::to_string) else {
            continue;
        };
        let mut conn = client.connect_to(&addr).await?;
        let v = conn.version(ApiKey::ListGroups, 5)?;
        let resp = conn.send(&ListGroupsRequest::default(), v).await?;
        ClientError::check(
            resp.error_code,
            Some(format!("listing groups on broker {id}")),
        )?;
        out.extend(resp.groups.into_iter().map(|g| {
            (
                g.group_id.0.to_string(),
                g.group_state.to_string(),
                g.protocol_type.to_string(),
                if g.group_type.is_empty() {
                    "classic".to_string()
                } else {
                    g.group_type.to_string()
                },
            )
        }));
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// DescribeGroups and OffsetFetch of `group`, from its coordinator.
pub async fn describe_group(client: &mut Client, group: &str) -> Result<GroupInfo, ClientError> {
    use kafka_protocol::messages::DescribeGroupsRequest;
    let mut conn = GroupMember::coordinator(client, group).await?;
    let v = conn.version(ApiKey::DescribeGroups, 5)?;
    let resp = conn
        .send(
            &DescribeGroupsRequest::default().with_groups(vec![GroupId(s(group))]),
            v,
        )
        .await?;
    let g = resp
        .groups
        .into_iter()
        .next()
        .ok_or_else(|| ClientError::Protocol("empty DescribeGroups response".into()))?;
    ClientError::check(g.error_code, Some(format!("group {group}")))?;
    let mut members = Vec::new();
    for m in g.members {
        let assigned = if m.member_assignment.is_empty() {
            Vec::new()
        } else {
            let a: ConsumerProtocolAssignment = decode_versioned(m.member_assignment)?;
            a.assigned_partitions
                .iter()
                .flat_map(|tp| tp.partitions.iter().map(|p| (tp.topic.0.to_string(), *p)))
                .collect()
        };
        members.push(MemberInfo {
            member_id: m.member_id.to_string(),
            client_id: m.client_id.to_string(),
            host: m.client_host.to_string(),
            assignment: assigned,
            member_epoch: -1,
            target: Vec::new(),
        });
    }
    let v = conn.version(ApiKey::OffsetFetch, 7)?;
    let resp = conn
        .send(
            &OffsetFetchRequest::default()
                .with_group_id(GroupId(s(group)))
                .with_topics(None),
            v,
        )
        .await?;
    ClientError::check(resp.error_code, Some(format!("offsets of group {group}")))?;
    let mut offsets: Vec<((String, i32), i64)> = resp
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| {
                (
                    (t.name.0.to_string(), p.partition_index),
                    p.committed_offset,
                )
            })
        })
        .collect();
    offsets.sort();
    let mut info = GroupInfo {
        state: g.group_state.to_string(),
        protocol_type: g.protocol_type.to_string(),
        protocol: g.protocol_data.to_string(),
        group_type: "classic".into(),
        epochs: (-1, -1),
        members,
        offsets,
    };
    if let Some(consumer) = describe_consumer_group(&mut conn, group).await? {
        info = GroupInfo {
            offsets: info.offsets,
            ..consumer
        };
    }
    Ok(info)
}

/// ConsumerGroupDescribe (KIP-848) of `group`; `None` when it is not a consumer group or the
/// broker does not serve the API.
async fn describe_consumer_group(
    conn: &mut Connection,
    group: &str,
) -> Result<Option<GroupInfo>, ClientError> {
    use kafka_protocol::messages::consumer_group_describe_response::Assignment;
    use kafka_protocol::messages::ConsumerGroupDescribeRequest;
    let Ok(v) = conn.version(ApiKey::ConsumerGroupDescribe, 1) else {
        return Ok(None);
    };
    let resp = conn
        .send(
            &ConsumerGroupDescribeRequest::default().with_group_ids(vec![GroupId(s(group))]),
            v,
        )
        .await?;
    let Some(g) = resp.groups.into_iter().next() else {
        return Err(ClientError::Protocol(
            "empty ConsumerGroupDescribe response".into(),
        ));
    };
    if g.error_code == ErrorCode::GroupIdNotFound.code() {
        return Ok(None);
    }
    ClientError::check(g.error_code, Some(format!("group {group}")))?;
    let partitions = |a: &Assignment| -> Vec<(String, i32)> {
        let mut out: Vec<(String, i32)> = a
            .topic_partitions
            .iter()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .map(|p| (t.topic_name.0.to_string(), *p))
            })
            .collect();
        out.sort();
        out
    };
    Ok(Some(GroupInfo {
        state: g.group_state.to_string(),
        protocol_type: "consumer".into(),
        protocol: g.assignor_name.to_string(),
        group_type: "consumer".into(),
        epochs: (g.group_epoch, g.assignment_epoch),
        members: g
            .members
            .iter()
            .map(|m| MemberInfo {
                member_id: m.member_id.to_string(),
                client_id: m.client_id.to_string(),
                host: m.client_host.to_string(),
                assignment: partitions(&m.assignment),
                member_epoch: m.member_epoch,
                target: partitions(&m.target_assignment),
            })
            .collect(),
        offsets: Vec::new(),
    }))
}

/// DeleteGroups of an empty group (with its committed offsets).
pub async fn delete_group(client: &mut Client, group: &str) -> Result<(), ClientError> {
    use kafka_protocol::messages::DeleteGroupsRequest;
    let mut conn = GroupMember::coordinator(client, group).await?;
    let v = conn.version(ApiKey::DeleteGroups, 2)?;
    let resp = conn
        .send(
            &DeleteGroupsRequest::default().with_groups_names(vec![GroupId(s(group))]),
            v,
        )
        .await?;
    for r in resp.results {
        ClientError::check(r.error_code, Some(format!("group {group}")))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::range_assign;

    #[test]
    fn range_assignor_matches_kafka() {
        // Kafka's RangeAssignor: 3 partitions over 2 members -> [0, 1] and [2].
        let members = vec![
            ("b".to_string(), vec!["t".to_string()]),
            ("a".to_string(), vec!["t".to_string(), "u".to_string()]),
        ];
        let plan = range_assign(&members, &|t| if t == "t" { 3 } else { 2 });
        assert_eq!(
            plan,
            vec![
                (
                    "a".to_string(),
                    vec![("t".to_string(), vec![0, 1]), ("u".to_string(), vec![0, 1])]
                ),
                ("b".to_string(), vec![("t".to_string(), vec![2])]),
            ]
        );
    }
}

/// A share group (KIP-932) as ShareGroupDescribe shows it: state, epochs, and each member's
/// epoch and partitions (topic, partition).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareGroupInfo {
    /// "Empty" or "Stable".
    pub state: String,
    /// Group epoch and assignment epoch.
    pub epochs: (i32, i32),
    /// The assignor ("simple").
    pub assignor: String,
    /// Members.
    pub members: Vec<MemberInfo>,
}

/// ShareGroupDescribe of `group` from its coordinator.
pub async fn describe_share_group(
    client: &mut Client,
    group: &str,
) -> Result<ShareGroupInfo, ClientError> {
    use kafka_protocol::messages::ShareGroupDescribeRequest;
    let mut conn = GroupMember::coordinator(client, group).await?;
    let v = conn.version(ApiKey::ShareGroupDescribe, 1)?;
    let resp = conn
        .send(
            &ShareGroupDescribeRequest::default().with_group_ids(vec![GroupId(s(group))]),
            v,
        )
        .await?;
    let g = resp
        .groups
        .into_iter()
        .next()
        .ok_or_else(|| ClientError::Protocol("empty ShareGroupDescribe response".into()))?;
    ClientError::check(g.error_code, Some(format!("share group {group}")))?;
    Ok(ShareGroupInfo {
        state: g.group_state.to_string(),
        epochs: (g.group_epoch, g.assignment_epoch),
        assignor: g.assignor_name.to_string(),
        members: g
            .members
            .iter()
            .map(|m| {
                let mut assignment: Vec<(String, i32)> = m
                    .assignment
                    .topic_partitions
                    .iter()
                    .flat_map(|t| {
                        t.partitions
                            .iter()
                            .map(|p| (t.topic_name.0.to_string(), *p))
                    })
                    .collect();
                assignment.sort();
                MemberInfo {
                    member_id: m.member_id.to_string(),
                    client_id: m.client_id.to_string(),
                    host: m.client_host.to_string(),
                    assignment,
                    member_epoch: m.member_epoch,
                    target: Vec::new(),
                }
            })
            .collect(),
    })
}
