//! The simulated controller: the real control managers (registration, heartbeats, fencing,
//! AlterPartition, topic creation) over a committed metadata log, replayed into images through
//! the one replay path (`MetadataDelta`) exactly as a controller's state machine does. Its log
//! is durable; a crash loses only what is in memory (broker sessions), as a controller failover
//! does: the next active controller gives every broker a fresh session.
//!
//! The quorum itself is not simulated here: a command commits as soon as it is handled.

use std::sync::Arc;

use odradek_common::Uuid;
use odradek_controller::managers::cluster::{self, BrokerSessions};
use odradek_controller::managers::{replication, ControllerSettings};
use odradek_controller::pb;
use odradek_metadata::proto::MetadataRecord;
use odradek_metadata::{decode_batch, encode_batch, MetadataDelta, MetadataImage};

use crate::message::Message;
use crate::rng::SimRng;

/// Entries sent per metadata fetch.
const MAX_ENTRIES_PER_FETCH: usize = 64;

/// How often expired broker sessions are fenced (the real controller's 500 ms tick).
const FENCE_CHECK_MS: i64 = 500;

/// The controller node.
#[derive(Debug)]
pub struct SimController {
    settings: ControllerSettings,
    /// Committed entries: (offset, records). Durable.
    log: Vec<(i64, Vec<MetadataRecord>)>,
    /// The image after every committed entry, for the agreement invariant: `images[i]` is the
    /// image at offset `i + 1`.
    images: Vec<Arc<MetadataImage>>,
    sessions: BrokerSessions,
    up: bool,
    next_fence_check_ms: i64,
    /// Leader changes committed (partition records with a new leader epoch).
    pub leader_changes: u64,
}

impl SimController {
    /// A controller with an empty log.
    pub fn new(settings: ControllerSettings) -> Self {
        Self {
            settings,
            log: Vec::new(),
            images: Vec::new(),
            sessions: BrokerSessions::default(),
            up: true,
            next_fence_check_ms: 0,
            leader_changes: 0,
        }
    }

    /// Whether it is running.
    pub fn is_up(&self) -> bool {
        self.up
    }

    /// The latest committed image.
    pub fn image(&self) -> Arc<MetadataImage> {
        self.images
            .last()
            .cloned()
            .unwrap_or_else(|| Arc::new(MetadataImage::empty()))
    }

    /// The image at `offset` (after the entry at `offset` was replayed), if committed.
    pub fn image_at(&self, offset: i64) -> Option<&Arc<MetadataImage>> {
        usize::try_from(offset - 1)
            .ok()
            .and_then(|i| self.images.get(i))
    }

    /// The last committed offset (0: none).
    pub fn committed_offset(&self) -> i64 {
        self.log.len() as i64
    }

    /// The process dies: its sessions go (the log is durable).
    pub fn crash(&mut self) {
        self.up = false;
        self.sessions = BrokerSessions::default();
    }

    /// A controller becomes active again: every registered broker gets a fresh session.
    pub fn restart(&mut self, now_ms: i64) {
        self.up = true;
        self.sessions.reset(&self.image(), now_ms);
        self.next_fence_check_ms = now_ms + FENCE_CHECK_MS;
    }

    /// Creates `name` with `partitions` partitions of `replication_factor` replicas.
    pub fn create_topic(
        &mut self,
        name: &str,
        partitions: i32,
        replication_factor: i32,
        rng: &mut SimRng,
    ) -> Result<Uuid, String> {
        let request = pb::CreateTopicsRequest {
            topics: vec![pb::CreatableTopic {
                name: name.to_string(),
                num_partitions: partitions,
                replication_factor,
                ..Default::default()
            }],
            validate_only: false,
        };
        let image = self.image();
        let result = replication::create_topics(&image, &request, &self.settings, &mut || {
            Uuid(rng.bytes16())
        });
        let topic = &result.response.topics[0];
        if topic.error_code != 0 {
            return Err(topic.error_message.clone());
        }
        let id = Uuid::from_slice(&topic.topic_id).ok_or("topic id is not 16 bytes")?;
        self.commit(result.records);
        Ok(id)
    }

    /// Handles a message; returns the answer, if any.
    pub fn handle(&mut self, now_ms: i64, message: Message) -> Option<Message> {
        if !self.up {
            return None;
        }
        let image = self.image();
        match message {
            Message::Register(req) => {
                let result =
                    cluster::register_broker(&image, &req, &self.settings, &self.sessions, now_ms);
                if result.response.error_code == 0 {
                    self.sessions.touch(req.broker_id, now_ms);
                }
                self.commit(result.records);
                Some(Message::Registered(result.response))
            }
            Message::Heartbeat(req) => {
                let result = cluster::heartbeat(&image, &req, &self.settings);
                if result.response.error_code == 0 {
                    self.sessions.touch(req.broker_id, now_ms);
                }
                self.commit(result.records);
                Some(Message::HeartbeatAnswer(result.response))
            }
            Message::AlterPartition(req) => {
                let result = replication::alter_partition(&image, &req);
                self.commit(result.records);
                Some(Message::AlterPartitionAnswer(req, result.response))
            }
            Message::FetchMetadata { from_offset } => {
                let from = usize::try_from(from_offset.max(1) - 1).unwrap_or(0);
                let entries = self
                    .log
                    .iter()
                    .skip(from)
                    .take(MAX_ENTRIES_PER_FETCH)
                    .cloned()
                    .collect();
                Some(Message::Metadata {
                    entries,
                    committed: self.committed_offset(),
                })
            }
            _ => None,
        }
    }

    /// Timers: fences brokers whose sessions expired.
    pub fn tick(&mut self, now_ms: i64) {
        if !self.up || now_ms < self.next_fence_check_ms {
            return;
        }
        self.next_fence_check_ms = now_ms + FENCE_CHECK_MS;
        let records = cluster::fence_expired(&self.image(), &self.sessions, &self.settings, now_ms);
        self.commit(records);
    }

    /// Commits `records` as one entry: encoded and decoded as the quorum carries them, then
    /// replayed into the next image.
    fn commit(&mut self, records: Vec<MetadataRecord>) {
        if records.is_empty() {
            return;
        }
        let offset = self.committed_offset() + 1;
        let records = decode_batch(&encode_batch(&records))
            .expect("the controller's own records decode after encoding");
        let before = self.image();
        let mut delta = MetadataDelta::new(Arc::clone(&before));
        for r in &records {
            delta
                .replay(offset, r)
                .unwrap_or_else(|e| panic!("record at offset {offset} does not replay: {e}"));
        }
        let mut image = delta.apply();
        image.offset = offset;
        self.leader_changes += count_leader_changes(&before, &image);
        self.log.push((offset, records));
        self.images.push(Arc::new(image));
    }
}

/// Partitions whose leader epoch moved between two images.
fn count_leader_changes(before: &MetadataImage, after: &MetadataImage) -> u64 {
    let mut n = 0;
    for (id, t) in &after.topics.by_id {
        for (p, reg) in &t.partitions {
            let old = before
                .topics
                .by_id
                .get(id)
                .and_then(|t| t.partitions.get(p))
                .map(|r| r.leader_epoch);
            if old.is_some_and(|e| e != reg.leader_epoch) {
                n += 1;
            }
        }
    }
    n
}
