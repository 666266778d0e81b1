//! Membership of a share group (KIP-932), as Kafka's share consumer does it with
//! `share.acknowledgement.mode=implicit`: the member heartbeats its group coordinator with
//! ShareGroupHeartbeat (v1: the member id is the client's own), fetches its assigned
//! share-partitions from their leaders with ShareFetch in one share session per leader broker,
//! and hands out only the records each response acquired for it. The records of one poll are
//! accepted by the next poll (piggybacked on its ShareFetch), by [`ShareMember::commit`] or by
//! [`ShareMember::close`], unless [`ShareMember::acknowledge`] said otherwise first.
//!
//! Delivery is at least once: an acknowledgement that is lost with its connection or session
//! leaves its records acquired until the lock runs out, and they come back.

mod acknowledgements;
mod failures;
mod renew;
mod requests;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use kafka_protocol::messages::share_fetch_response::PartitionData;
use kafka_protocol::messages::{
    ApiKey, GroupId, ShareFetchResponse, ShareGroupHeartbeatRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::Record;
use odradek_common::ErrorCode;

pub use acknowledgements::AcknowledgeType;
use acknowledgements::{
    decode, next_epoch, select, session_change, AckBatch, Acquired, PendingAcks, SharePartition,
    GAP,
};
use requests::{acknowledge_request, fetch_request, Sender};

use crate::client::Client;
use crate::connection::Connection;
use crate::error::ClientError;
use crate::group::{coordinator_moved, GroupMember};

// The Kafka error codes the member acts on.
const COORDINATOR_NOT_AVAILABLE: i16 = ErrorCode::CoordinatorNotAvailable as i16;
const UNKNOWN_MEMBER_ID: i16 = ErrorCode::UnknownMemberId as i16;
const FENCED_MEMBER_EPOCH: i16 = ErrorCode::FencedMemberEpoch as i16;
const SHARE_SESSION_NOT_FOUND: i16 = ErrorCode::ShareSessionNotFound as i16;
const INVALID_SHARE_SESSION_EPOCH: i16 = ErrorCode::InvalidShareSessionEpoch as i16;
const UNKNOWN_TOPIC_ID: i16 = ErrorCode::UnknownTopicId as i16;

/// Heartbeat interval until the coordinator names one (Kafka's
/// `group.share.heartbeat.interval.ms`).
const DEFAULT_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(5);

/// Kafka's `retry.backoff.ms`.
const RETRY_BACKOFF: Duration = Duration::from_millis(100);

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

/// A record a share-partition acquired for this member.
#[derive(Debug, Clone)]
pub struct ShareRecord {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// How many times the record has been delivered, this delivery included.
    pub delivery_count: i16,
    /// The record (its offset, key, value, headers and timestamp).
    pub record: Record,
    topic_id: uuid::Uuid,
}

impl ShareRecord {
    fn share_partition(&self) -> SharePartition {
        (self.topic_id, self.partition)
    }
}

/// Acknowledgements that did not take (the broker refused them, or they were lost with a
/// session or connection: their records may be delivered again), or records rejected because
/// they could not be decoded. Kafka's consumer hands these to its acknowledgement callback.
#[derive(Debug)]
pub struct ShareFailure {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Why.
    pub error: ClientError,
}

impl std::fmt::Display for ShareFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}: {}", self.topic, self.partition, self.error)
    }
}

/// Whether a partition error means the member's metadata is stale (the leader moved, the topic
/// changed): refresh it and fetch again.
fn metadata_moved(code: i16) -> bool {
    code == UNKNOWN_TOPIC_ID
        || ClientError::Kafka {
            code,
            message: None,
        }
        .is_retriable()
}

/// A share session with one leader broker.
#[derive(Debug)]
struct LeaderSession {
    conn: Connection,
    /// The epoch the next request carries: 0 opens the session.
    epoch: i32,
    /// The share-partitions the broker holds in the session.
    partitions: BTreeSet<SharePartition>,
}

/// A member of a share group.
#[derive(Debug)]
pub struct ShareMember {
    group: String,
    member_id: String,
    topics: Vec<String>,
    coordinator: Connection,
    member_epoch: i32,
    heartbeat_interval: Duration,
    next_heartbeat: Instant,
    assignment: BTreeSet<SharePartition>,
    names: HashMap<uuid::Uuid, String>,
    leaders: BTreeMap<SharePartition, i32>,
    metadata_stale: bool,
    sessions: BTreeMap<i32, LeaderSession>,
    pending: PendingAcks,
    /// Records the last poll handed out and nobody acknowledged yet.
    delivered: BTreeSet<(SharePartition, i64)>,
    failures: Vec<ShareFailure>,
}

impl ShareMember {
    /// Finds `group`'s coordinator through `client` and joins the group (with a new member
    /// id) subscribed to `topics`.
    pub async fn join(
        client: &mut Client,
        group: &str,
        topics: &[String],
    ) -> Result<ShareMember, ClientError> {
        let mut member = ShareMember {
            group: group.to_string(),
            // Kafka's form of a random UUID: 22 characters of base64.
            member_id: odradek_common::Uuid::random().to_string(),
            topics: topics.to_vec(),
            coordinator: GroupMember::coordinator(client, group).await?,
            member_epoch: 0,
            heartbeat_interval: DEFAULT_HEARTBEAT_INTERVAL,
            next_heartbeat: Instant::now(),
            assignment: BTreeSet::new(),
            names: HashMap::new(),
            leaders: BTreeMap::new(),
            metadata_stale: true,
            sessions: BTreeMap::new(),
            pending: PendingAcks::default(),
            delivered: BTreeSet::new(),
            failures: Vec::new(),
        };
        // The coordinator may still be loading (or moving): retry as Kafka clients do.
        for _ in 0..40 {
            match member.heartbeat_once().await {
                Err(e) if coordinator_moved(&e) => {
                    tokio::time::sleep(Duration::from_millis(250)).await;
                    member.coordinator = GroupMember::coordinator(client, group).await?;
                }
                other => {
                    other?;
                    return Ok(member);
                }
            }
        }
        Err(ClientError::Kafka {
            code: COORDINATOR_NOT_AVAILABLE,
            message: Some(format!("share group {group}")),
        })
    }

    /// The member id (chosen by this member, as ShareGroupHeartbeat v1 wants).
    pub fn member_id(&self) -> &str {
        &self.member_id
    }

    /// The member epoch (0 until the coordinator answered the join).
    pub fn member_epoch(&self) -> i32 {
        self.member_epoch
    }

    /// The assigned partitions as (topic, partition), for those whose topic name is known.
    pub fn assignment(&self) -> Vec<(String, i32)> {
        self.assignment
            .iter()
            .filter_map(|(id, p)| self.names.get(id).map(|n| (n.clone(), *p)))
            .collect()
    }

    fn sender(&self) -> Sender<'_> {
        Sender {
            group: &self.group,
            member_id: &self.member_id,
        }
    }

    /// The failures since the last call (see [`ShareFailure`]).
    pub fn take_failures(&mut self) -> Vec<ShareFailure> {
        std::mem::take(&mut self.failures)
    }

    /// Acknowledges `records` (handed out by [`ShareMember::poll`]) as `kind` instead of the
    /// implicit accept; the acknowledgements go with the next ShareFetch to each leader, or
    /// with [`ShareMember::commit`] or [`ShareMember::close`].
    pub fn acknowledge(&mut self, records: &[ShareRecord], kind: AcknowledgeType) {
        for r in records {
            let key = (r.share_partition(), r.record.offset);
            if self.delivered.remove(&key) {
                self.pending.add(key.0, key.1, kind.code());
            }
        }
    }

    /// Accepts what the last poll handed out and nobody acknowledged (implicit mode).
    fn accept_delivered(&mut self) {
        for (tp, offset) in std::mem::take(&mut self.delivered) {
            self.pending.add(tp, offset, AcknowledgeType::Accept.code());
        }
    }

    /// Heartbeats when due, then fetches from every assigned partition's leader (waiting up to
    /// `max_wait` for records) and returns the records acquired for this member. The records of
    /// the previous poll are accepted first, unless acknowledged otherwise.
    pub async fn poll(
        &mut self,
        client: &mut Client,
        max_wait: Duration,
    ) -> Result<Vec<ShareRecord>, ClientError> {
        self.accept_delivered();
        if Instant::now() >= self.next_heartbeat {
            self.heartbeat(client).await?;
        }
        if self.metadata_stale {
            self.refresh(client).await?;
        }
        let plan = self.plan();
        // Sessions with nothing left to fetch or acknowledge end (their records released).
        let idle: Vec<i32> = self
            .sessions
            .keys()
            .copied()
            .filter(|l| !plan.contains_key(l) && self.acks_for(*l).is_empty())
            .collect();
        for leader in idle {
            let _ = self.send_acknowledgements(leader, true).await;
        }
        if plan.is_empty() {
            let until_heartbeat = self
                .next_heartbeat
                .saturating_duration_since(Instant::now());
            tokio::time::sleep(max_wait.min(until_heartbeat)).await;
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for (leader, partitions) in plan {
            // One long wait per poll: once some records came, the other leaders answer at once.
            let wait = if out.is_empty() {
                max_wait
            } else {
                Duration::ZERO
            };
            match self.fetch_from(client, leader, &partitions, wait).await {
                Ok(records) => out.extend(records),
                Err(e) if e.is_retriable() => self.metadata_stale = true,
                Err(e) => return Err(e),
            }
        }
        if out.is_empty() && self.metadata_stale {
            // A leader moved or cannot be reached: Kafka's retry.backoff.ms before asking again.
            tokio::time::sleep(RETRY_BACKOFF).await;
        }
        self.delivered
            .extend(out.iter().map(|r| (r.share_partition(), r.record.offset)));
        Ok(out)
    }

    /// Accepts what was handed out and not acknowledged, and sends every pending
    /// acknowledgement now with ShareAcknowledge (Kafka's `commitSync`).
    pub async fn commit(&mut self) -> Result<(), ClientError> {
        self.accept_delivered();
        let leaders: Vec<i32> = self.sessions.keys().copied().collect();
        for leader in leaders {
            self.send_acknowledgements(leader, false).await?;
        }
        Ok(())
    }

    /// Leaves the group: accepts what was handed out and not acknowledged, sends the pending
    /// acknowledgements with a ShareAcknowledge that closes each share session (releasing
    /// what the member still holds), then leaves with member epoch -1. Returns the failures
    /// not yet taken.
    pub async fn close(mut self, client: &mut Client) -> Result<Vec<ShareFailure>, ClientError> {
        self.accept_delivered();
        let leaders: Vec<i32> = self.sessions.keys().copied().collect();
        let mut first_error = None;
        for leader in leaders {
            if let Err(e) = self.send_acknowledgements(leader, true).await {
                first_error.get_or_insert(e);
            }
        }
        // Acknowledgements with no open session to carry them (its leader is unknown).
        for tp in self.pending.partitions() {
            self.pending.take(&tp);
            self.fail(
                tp,
                &ClientError::Protocol("no share session to acknowledge through".into()),
            );
        }
        self.member_epoch = -1;
        for attempt in 0..2 {
            match self.heartbeat_once().await {
                Err(e) if attempt == 0 && coordinator_moved(&e) => self.relocate(client).await?,
                // Already gone (its session expired): nothing to leave.
                Err(ClientError::Kafka {
                    code: UNKNOWN_MEMBER_ID,
                    ..
                }) => break,
                other => {
                    other?;
                    break;
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(self.failures),
        }
    }

    /// One ShareGroupHeartbeat; keeps the epoch, interval and assignment it answers.
    async fn heartbeat_once(&mut self) -> Result<(), ClientError> {
        let v = self.coordinator.version(ApiKey::ShareGroupHeartbeat, 1)?;
        // The subscription goes with a join; afterwards null means unchanged.
        let subscribed =
            (self.member_epoch == 0).then(|| self.topics.iter().map(|t| TopicName(s(t))).collect());
        let req = ShareGroupHeartbeatRequest::default()
            .with_group_id(GroupId(s(&self.group)))
            .with_member_id(s(&self.member_id))
            .with_member_epoch(self.member_epoch)
            .with_subscribed_topic_names(subscribed);
        let resp = self.coordinator.send(&req, v).await?;
        ClientError::check(
            resp.error_code,
            resp.error_message
                .map(|m| m.to_string())
                .or_else(|| Some(format!("share group {}", self.group))),
        )?;
        if self.member_epoch == -1 {
            return Ok(());
        }
        self.member_epoch = resp.member_epoch;
        let interval_ms = u64::try_from(resp.heartbeat_interval_ms).unwrap_or(0);
        if interval_ms > 0 {
            self.heartbeat_interval = Duration::from_millis(interval_ms);
        }
        self.next_heartbeat = Instant::now() + self.heartbeat_interval;
        if let Some(a) = resp.assignment {
            self.assignment = a
                .topic_partitions
                .iter()
                .flat_map(|t| t.partitions.iter().map(move |p| (t.topic_id, *p)))
                .collect();
            self.metadata_stale = true;
        }
        Ok(())
    }

    /// A heartbeat that follows a moved coordinator and rejoins (same member id, epoch 0) when
    /// the coordinator no longer knows this member or fenced its epoch.
    async fn heartbeat(&mut self, client: &mut Client) -> Result<(), ClientError> {
        for _ in 0..3 {
            match self.heartbeat_once().await {
                Ok(()) => return Ok(()),
                Err(e) if coordinator_moved(&e) => self.relocate(client).await?,
                Err(ClientError::Kafka {
                    code: UNKNOWN_MEMBER_ID | FENCED_MEMBER_EPOCH,
                    ..
                }) => self.member_epoch = 0,
                Err(e) => return Err(e),
            }
        }
        // Not through yet: try again on the next poll.
        Ok(())
    }

    /// Finds the coordinator again after it moved, for about 30 s (longer than
    /// `broker.session.timeout.ms`, after which the controller has moved it).
    async fn relocate(&mut self, client: &mut Client) -> Result<(), ClientError> {
        let mut last = None;
        for _ in 0..60 {
            match GroupMember::coordinator(client, &self.group).await {
                Ok(c) => {
                    self.coordinator = c;
                    return Ok(());
                }
                Err(e) if coordinator_moved(&e) => {
                    last = Some(e);
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| ClientError::Protocol("no coordinator".into())))
    }

    /// Topic names and partition leaders of the assignment, from Metadata.
    async fn refresh(&mut self, client: &mut Client) -> Result<(), ClientError> {
        if self.assignment.is_empty() {
            self.metadata_stale = false;
            return Ok(());
        }
        let topics = match client.metadata(Some(&self.topics), false).await {
            Ok(t) => t,
            // One subscribed topic does not exist: ask for each, skipping the missing ones.
            Err(ClientError::Kafka { .. }) => {
                let mut found = Vec::new();
                for t in self.topics.clone() {
                    if let Ok(info) = client.metadata(Some(&[t]), false).await {
                        found.extend(info);
                    }
                }
                found
            }
            Err(e) => return Err(e),
        };
        let by_id: HashMap<String, &crate::client::TopicInfo> =
            topics.iter().map(|t| (t.id.clone(), t)).collect();
        self.leaders.clear();
        for (id, p) in self.assignment.clone() {
            let Some(t) = by_id.get(&odradek_common::Uuid(*id.as_bytes()).to_string()) else {
                continue;
            };
            self.names.insert(id, t.name.clone());
            if let Some(info) = t.partitions.iter().find(|i| i.partition == p) {
                self.leaders.insert((id, p), info.leader);
            }
        }
        self.metadata_stale = false;
        Ok(())
    }

    /// The assigned partitions by leader broker; a partition without a leader waits for the
    /// next metadata refresh.
    fn plan(&mut self) -> BTreeMap<i32, BTreeSet<SharePartition>> {
        let mut plan: BTreeMap<i32, BTreeSet<SharePartition>> = BTreeMap::new();
        for tp in &self.assignment {
            match self.leaders.get(tp) {
                Some(&leader) if leader >= 0 => {
                    plan.entry(leader).or_default().insert(*tp);
                }
                _ => self.metadata_stale = true,
            }
        }
        plan
    }

    /// The broker that takes `tp`'s acknowledgements: its leader, else the leader whose
    /// session holds it (a partition no longer assigned).
    fn ack_leader(&self, tp: &SharePartition) -> Option<i32> {
        self.leaders
            .get(tp)
            .copied()
            .filter(|l| *l >= 0)
            .or_else(|| {
                self.sessions
                    .iter()
                    .find(|(_, s)| s.partitions.contains(tp))
                    .map(|(l, _)| *l)
            })
    }

    /// The share-partitions with acknowledgements pending for `leader`.
    fn acks_for(&self, leader: i32) -> BTreeSet<SharePartition> {
        self.pending
            .partitions()
            .into_iter()
            .filter(|tp| self.ack_leader(tp) == Some(leader))
            .collect()
    }

    fn topic_name(&self, id: &uuid::Uuid) -> String {
        self.names
            .get(id)
            .cloned()
            .unwrap_or_else(|| odradek_common::Uuid(*id.as_bytes()).to_string())
    }

    /// The session with `leader`, connecting (epoch 0) when there is none.
    async fn session(
        &mut self,
        client: &mut Client,
        leader: i32,
    ) -> Result<&mut LeaderSession, ClientError> {
        if let std::collections::btree_map::Entry::Vacant(vacant) = self.sessions.entry(leader) {
            if client.broker_address(leader).is_none() {
                client.metadata(Some(&[]), false).await?;
            }
            let addr = client
                .broker_address(leader)
                .map(str::to_string)
                .ok_or_else(|| ClientError::Protocol(format!("unknown broker {leader}")))?;
            vacant.insert(LeaderSession {
                conn: client.connect_to(&addr).await?,
                epoch: 0,
                partitions: BTreeSet::new(),
            });
        }
        Ok(self.sessions.get_mut(&leader).expect("inserted above"))
    }

    /// One ShareFetch to `leader` for `partitions`, carrying the acknowledgements pending for
    /// it (none on the request that opens a session: Kafka forbids them there).
    async fn fetch_from(
        &mut self,
        client: &mut Client,
        leader: i32,
        partitions: &BTreeSet<SharePartition>,
        max_wait: Duration,
    ) -> Result<Vec<ShareRecord>, ClientError> {
        let session = self.session(client, leader).await?;
        let (epoch, held) = (session.epoch, session.partitions.clone());
        let acked = if epoch > 0 {
            self.acks_for(leader)
        } else {
            BTreeSet::new()
        };
        let change = session_change(epoch, &held, partitions, &acked);
        let sent: BTreeMap<SharePartition, Vec<AckBatch>> = change
            .listed
            .iter()
            .map(|tp| {
                let batches = if acked.contains(tp) {
                    self.pending.take(tp)
                } else {
                    Vec::new()
                };
                (*tp, batches)
            })
            .collect();
        let req = fetch_request(self.sender(), epoch, max_wait, &sent, &change.forgotten);
        let session = self.sessions.get_mut(&leader).expect("opened above");
        let v = session.conn.version(ApiKey::ShareFetch, 1)?;
        let resp = match session.conn.send(&req, v).await {
            Ok(r) => r,
            Err(e) => {
                // The connection is gone, and with it what this request carried.
                self.sessions.remove(&leader);
                self.lost(&sent, &e);
                return Err(e);
            }
        };
        self.fetched(leader, epoch, partitions, &sent, resp)
    }

    /// A ShareFetch response from `leader` to a request at session `epoch`: the session moves
    /// on, and the records each partition acquired come out. A partition's error other than
    /// stale metadata fails the whole poll, giving back what the others acquired.
    fn fetched(
        &mut self,
        leader: i32,
        epoch: i32,
        partitions: &BTreeSet<SharePartition>,
        sent: &BTreeMap<SharePartition, Vec<AckBatch>>,
        resp: ShareFetchResponse,
    ) -> Result<Vec<ShareRecord>, ClientError> {
        if resp.error_code != 0 {
            let e = ClientError::Kafka {
                code: resp.error_code,
                message: resp.error_message.map(|m| m.to_string()),
            };
            self.lost(sent, &e);
            if matches!(
                resp.error_code,
                SHARE_SESSION_NOT_FOUND | INVALID_SHARE_SESSION_EPOCH
            ) {
                // The broker dropped the session (idle, or an epoch went astray): open anew.
                self.sessions.remove(&leader);
                return Ok(Vec::new());
            }
            return Err(e);
        }
        let session = self.sessions.get_mut(&leader).expect("opened above");
        session.epoch = next_epoch(epoch);
        session.partitions = partitions.clone();
        let mut out = Vec::new();
        let mut fatal = None;
        for t in resp.responses {
            for p in t.partitions {
                let tp = (t.topic_id, p.partition_index);
                match self.take_partition(tp, p, sent) {
                    Ok(records) => out.extend(records),
                    Err(e) => {
                        fatal.get_or_insert(e);
                    }
                }
            }
        }
        if let Some(e) = fatal {
            // Give back what this response acquired: the caller will not see it.
            for r in &out {
                self.pending.add(
                    r.share_partition(),
                    r.record.offset,
                    AcknowledgeType::Release.code(),
                );
            }
            return Err(e);
        }
        Ok(out)
    }

    /// One partition of a ShareFetch response: its acknowledgement outcome, its error, and the
    /// records it acquired for this member.
    fn take_partition(
        &mut self,
        tp: SharePartition,
        p: PartitionData,
        sent: &BTreeMap<SharePartition, Vec<AckBatch>>,
    ) -> Result<Vec<ShareRecord>, ClientError> {
        if p.acknowledge_error_code != 0 && sent.get(&tp).is_some_and(|b| !b.is_empty()) {
            let e = ClientError::Kafka {
                code: p.acknowledge_error_code,
                message: p.acknowledge_error_message.map(|m| m.to_string()),
            };
            self.fail(tp, &e);
        }
        if p.error_code != 0 {
            if metadata_moved(p.error_code) {
                self.metadata_stale = true;
                return Ok(Vec::new());
            }
            return Err(ClientError::Kafka {
                code: p.error_code,
                message: Some(format!(
                    "{}-{}{}",
                    self.topic_name(&tp.0),
                    tp.1,
                    p.error_message
                        .map(|m| format!(": {m}"))
                        .unwrap_or_default()
                )),
            });
        }
        if p.acquired_records.is_empty() {
            return Ok(Vec::new());
        }
        let acquired: Vec<Acquired> = p
            .acquired_records
            .iter()
            .map(|a| Acquired {
                first_offset: a.first_offset,
                last_offset: a.last_offset,
                delivery_count: a.delivery_count,
            })
            .collect();
        let (records, undecodable) = decode(p.records.unwrap_or_default());
        let selected = select(records, &undecodable, &acquired).map_err(|m| {
            ClientError::Protocol(format!("{}-{}: {m}", self.topic_name(&tp.0), tp.1))
        })?;
        for offset in selected.gaps {
            self.pending.add(tp, offset, GAP);
        }
        if let (Some(first), Some(last)) = (selected.rejected.first(), selected.rejected.last()) {
            let e = ClientError::Protocol(format!(
                "records at offsets {first}..={last} cannot be decoded; rejected"
            ));
            self.fail(tp, &e);
        }
        for offset in selected.rejected {
            self.pending.add(tp, offset, AcknowledgeType::Reject.code());
        }
        let topic = self.topic_name(&tp.0);
        Ok(selected
            .records
            .into_iter()
            .map(|(record, delivery_count)| ShareRecord {
                topic: topic.clone(),
                partition: tp.1,
                delivery_count,
                record,
                topic_id: tp.0,
            })
            .collect())
    }

    /// ShareAcknowledge of what is pending for `leader`; with `closing`, at epoch -1, which
    /// also ends the session (sent even with nothing to acknowledge).
    async fn send_acknowledgements(
        &mut self,
        leader: i32,
        closing: bool,
    ) -> Result<(), ClientError> {
        let Some(epoch) = self.sessions.get(&leader).map(|s| s.epoch) else {
            return Ok(());
        };
        if epoch == 0 {
            // Never opened: nothing to close, and nothing can have been acquired through it.
            if closing {
                self.sessions.remove(&leader);
            }
            return Ok(());
        }
        let acked = self.acks_for(leader);
        if acked.is_empty() && !closing {
            return Ok(());
        }
        let sent: BTreeMap<SharePartition, Vec<AckBatch>> = acked
            .iter()
            .map(|tp| (*tp, self.pending.take(tp)))
            .collect();
        let req = acknowledge_request(self.sender(), if closing { -1 } else { epoch }, &sent);
        let session = self.sessions.get_mut(&leader).expect("checked above");
        let result = match session.conn.version(ApiKey::ShareAcknowledge, 1) {
            Ok(v) => session.conn.send(&req, v).await,
            Err(e) => Err(e),
        };
        let resp = match result {
            Ok(r) => r,
            Err(e) => {
                self.sessions.remove(&leader);
                self.lost(&sent, &e);
                return Err(e);
            }
        };
        if resp.error_code != 0 {
            let e = ClientError::Kafka {
                code: resp.error_code,
                message: resp.error_message.map(|m| m.to_string()),
            };
            self.lost(&sent, &e);
            self.sessions.remove(&leader);
            let session_gone = matches!(
                resp.error_code,
                SHARE_SESSION_NOT_FOUND | INVALID_SHARE_SESSION_EPOCH
            );
            return if session_gone { Ok(()) } else { Err(e) };
        }
        if closing {
            self.sessions.remove(&leader);
        } else if let Some(s) = self.sessions.get_mut(&leader) {
            s.epoch = next_epoch(epoch);
        }
        self.fail_partitions(resp.responses);
        Ok(())
    }
}
