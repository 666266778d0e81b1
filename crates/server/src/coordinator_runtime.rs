//! The coordinators' shared runtime (Kafka's `CoordinatorRuntime`, in spirit): for each
//! partition of an internal topic (`__consumer_offsets`, `__transaction_state`) that this broker
//! leads, one shard holding a state machine, rebuilt from the partition's log when leadership
//! arrives and dropped when it goes. The group and the transaction coordinators are two users of
//! it; each keeps only what is its own (parked requests, marker jobs).
//!
//! Calls on a shard run under one std `Mutex` (never held across an `.await`), so the records
//! a state machine returns are appended in the order it produced them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use odradek_common::{ErrorCode, ToErrorCode, Uuid};
use odradek_log::records::{
    encode_batch, encode_producer_batch, Compression, NewRecord, ProducerBatch,
};
use odradek_metadata::MetadataImage;
use odradek_replication::LeaderAppend;

use crate::replicas::{led_partitions, HostedPartition, ReplicaManager};

/// Appends a coordinator's records (key, value) to its partition as leader, in one batch:
/// transactional under `producer` (id and epoch, no sequence: a TxnOffsetCommit), with `acks`
/// and `min_insync_replicas` as for a producer; wakes the partition's waiters. Kafka's mapping
/// for a coordinator: NOT_COORDINATOR when leadership is lost, PRODUCER_FENCED for a zombie's
/// transactional write, COORDINATOR_NOT_AVAILABLE otherwise (retriable).
pub fn append_records(
    partition: &HostedPartition,
    records: &[(Bytes, Option<Bytes>)],
    producer: Option<(i64, i16)>,
    acks: i16,
    min_insync_replicas: usize,
    now: i64,
) -> Result<LeaderAppend, ErrorCode> {
    let records: Vec<NewRecord> = records
        .iter()
        .map(|(k, v)| NewRecord {
            key: Some(k.clone()),
            value: v.clone(),
            timestamp_ms: now,
            ..NewRecord::default()
        })
        .collect();
    let batch = match producer {
        None => encode_batch(&records, Compression::None),
        Some((producer_id, producer_epoch)) => encode_producer_batch(
            &records,
            Compression::None,
            ProducerBatch {
                producer_id,
                producer_epoch,
                base_sequence: -1,
                transactional: true,
            },
        ),
    }
    .map_err(|_| ErrorCode::CoordinatorNotAvailable)?;
    let failed = |e: &dyn std::fmt::Display| {
        tracing::warn!(topic = %partition.topic, partition = partition.index, error = %e, "a coordinator's append failed");
    };
    let validated = partition.validate_for_leader(&batch).map_err(|e| {
        failed(&e);
        ErrorCode::CoordinatorNotAvailable
    })?;
    let mut locked = partition
        .lock()
        .map_err(|_| ErrorCode::CoordinatorNotAvailable)?;
    let appended = locked
        .append_as_coordinator(validated, acks, min_insync_replicas, now)
        .map_err(|e| {
            failed(&e);
            match e.error_code() {
                ErrorCode::NotLeaderOrFollower
                | ErrorCode::FencedLeaderEpoch
                | ErrorCode::KafkaStorageError => ErrorCode::NotCoordinator,
                ErrorCode::InvalidProducerEpoch => ErrorCode::ProducerFenced,
                _ => ErrorCode::CoordinatorNotAvailable,
            }
        })?;
    // log.flush.before.ack: synced by the next group commit. The coordinator answers once
    // the record is committed, which counts only followers' synced copies; a replica-less
    // coordinator partition (replication factor 1) may answer just before its sync.
    drop(partition.sync(|| locked.log().active_segment_file()));
    drop(locked);
    partition.leo_waiters.wake_all();
    if appended.high_watermark_advanced {
        partition.hw_waiters.wake_all();
    }
    Ok(appended)
}

#[derive(Debug)]
enum Slot<S> {
    Loading,
    Loaded {
        state: S,
        partition: Arc<HostedPartition>,
    },
}

/// A led partition: its topic id, the leader epoch it was loaded under, its shard.
type Led<S> = (Uuid, i32, Slot<S>);

/// The shards of one internal topic on this broker.
#[derive(Debug)]
pub struct Shards<S> {
    topic: &'static str,
    broker_id: i32,
    slots: Mutex<HashMap<i32, Led<S>>>,
}

/// What [`Shards::on_image`] changed.
#[derive(Debug, Default)]
pub struct Followed {
    /// Partitions no longer led (their shards dropped).
    pub lost: Vec<i32>,
    /// Partitions loaded, with the leader epoch they were loaded under.
    pub loaded: Vec<(i32, i32)>,
}

impl<S> Shards<S> {
    /// No shard yet.
    pub fn new(topic: &'static str, broker_id: i32) -> Self {
        Self {
            topic,
            broker_id,
            slots: Mutex::new(HashMap::new()),
        }
    }

    /// Runs `f` on the loaded shard of partition `p` with its partition and leader epoch:
    /// NOT_COORDINATOR when this broker has no shard for it, COORDINATOR_LOAD_IN_PROGRESS
    /// while it loads.
    pub fn with<T>(
        &self,
        p: i32,
        f: impl FnOnce(&mut S, &Arc<HostedPartition>, i32) -> T,
    ) -> Result<T, ErrorCode> {
        let mut slots = self.slots.lock().map_err(|_| ErrorCode::NotCoordinator)?;
        let (_, epoch, slot) = slots.get_mut(&p).ok_or(ErrorCode::NotCoordinator)?;
        match slot {
            Slot::Loaded { state, partition } => Ok(f(state, partition, *epoch)),
            Slot::Loading => Err(ErrorCode::CoordinatorLoadInProgress),
        }
    }

    /// Kafka's answer for a partition with no shard here: COORDINATOR_LOAD_IN_PROGRESS when
    /// `image` already shows this broker leading it (the shard is about to load), else
    /// NOT_COORDINATOR.
    pub fn missing(&self, image: &MetadataImage, p: i32) -> ErrorCode {
        let leads = image
            .topics
            .get_by_name(self.topic)
            .and_then(|t| t.partitions.get(&p))
            .is_some_and(|r| r.leader == self.broker_id);
        if leads {
            ErrorCode::CoordinatorLoadInProgress
        } else {
            ErrorCode::NotCoordinator
        }
    }

    /// The partitions with a shard (loaded or loading).
    pub fn partitions(&self) -> Vec<i32> {
        self.slots
            .lock()
            .map(|s| s.keys().copied().collect())
            .unwrap_or_default()
    }

    /// Whether partition `p` has a shard loaded under `leader_epoch`.
    pub fn leads(&self, p: i32, leader_epoch: i32) -> bool {
        self.slots
            .lock()
            .is_ok_and(|s| s.get(&p).is_some_and(|(_, e, _)| *e == leader_epoch))
    }

    /// `f` over every loaded shard; COORDINATOR_LOAD_IN_PROGRESS if one is loading.
    pub fn each_loaded<T>(&self, mut f: impl FnMut(&S) -> T) -> Result<Vec<T>, ErrorCode> {
        let slots = self
            .slots
            .lock()
            .map_err(|_| ErrorCode::CoordinatorNotAvailable)?;
        let mut out = Vec::new();
        for (_, _, slot) in slots.values() {
            match slot {
                Slot::Loaded { state, .. } => out.push(f(state)),
                Slot::Loading => return Err(ErrorCode::CoordinatorLoadInProgress),
            }
        }
        Ok(out)
    }

    /// `f` over every loaded shard, skipping those still loading (for metrics: a partition
    /// being loaded must not blank the others).
    pub fn each_ready<T>(&self, mut f: impl FnMut(&S) -> T) -> Vec<T> {
        let Ok(slots) = self.slots.lock() else {
            return Vec::new();
        };
        slots
            .values()
            .filter_map(|(_, _, slot)| match slot {
                Slot::Loaded { state, .. } => Some(f(state)),
                Slot::Loading => None,
            })
            .collect()
    }

    /// Follows leadership of the topic in `image`: drops the shards of partitions this broker
    /// no longer leads (or leads under another epoch), and loads the new ones with `load`
    /// (which reads the partition's log: call on a blocking thread). Requests meanwhile get
    /// COORDINATOR_LOAD_IN_PROGRESS.
    pub fn on_image(
        &self,
        image: &MetadataImage,
        replicas: &ReplicaManager,
        load: impl Fn(i32, &Arc<HostedPartition>) -> S,
    ) -> Followed {
        let led = led_partitions(image, self.topic, self.broker_id);
        let mut followed = Followed::default();
        let to_load: Vec<(i32, Uuid, i32)> = {
            let Ok(mut slots) = self.slots.lock() else {
                return followed;
            };
            followed.lost = slots
                .iter()
                .filter(|(p, (id, epoch, _))| led.get(p) != Some(&(*id, *epoch)))
                .map(|(p, _)| *p)
                .collect();
            for p in &followed.lost {
                slots.remove(p);
                tracing::info!(
                    partition = p,
                    "no longer coordinator for {}-{p}",
                    self.topic
                );
            }
            led.iter()
                .filter(|(p, _)| !slots.contains_key(p))
                .map(|(p, (id, epoch))| (*p, *id, *epoch))
                .collect()
        };
        for (p, id, epoch) in to_load {
            let Some(partition) = replicas.get(id, p) else {
                continue;
            };
            if let Ok(mut slots) = self.slots.lock() {
                slots.insert(p, (id, epoch, Slot::Loading));
            }
            let state = load(p, &partition);
            if let Ok(mut slots) = self.slots.lock() {
                if let Some((sid, sepoch, slot)) = slots.get_mut(&p) {
                    if (*sid, *sepoch) == (id, epoch) {
                        *slot = Slot::Loaded { state, partition };
                        followed.loaded.push((p, epoch));
                    }
                }
            }
        }
        followed
    }
}
