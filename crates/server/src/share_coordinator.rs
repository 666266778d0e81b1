//! The share coordinator of this broker (KIP-932): one [`ShareStates`] per
//! `__share_group_state` partition it leads, rebuilt from the partition's log when it becomes
//! leader. Partition leaders initialise, read and write share-partition states through it
//! (InitializeShareGroupState, ReadShareGroupState, WriteShareGroupState,
//! DeleteShareGroupState); each call's records are appended to the partition, and the caller
//! answers once they are committed.

use std::sync::Arc;

use odradek_common::ErrorCode;
use odradek_coordinator::share::coordinator::{Record, ShareStates};
use odradek_coordinator::share::records::{ShareStateKey, SHARE_STATE_TOPIC};
use odradek_metadata::MetadataImage;

use crate::coordinator_runtime::{append_records, Shards};
use crate::groups::AppendPosition;
use crate::replicas::ReplicaManager;

/// The broker's share coordinator.
#[derive(Debug)]
pub struct ShareCoordinator {
    shards: Shards<ShareStates>,
    updates_per_snapshot: u32,
    clock: Arc<dyn odradek_common::Clock>,
}

impl ShareCoordinator {
    /// A coordinator leading nothing yet.
    pub fn new(
        broker_id: i32,
        updates_per_snapshot: u32,
        clock: Arc<dyn odradek_common::Clock>,
    ) -> Self {
        Self {
            shards: Shards::new(SHARE_STATE_TOPIC, broker_id),
            updates_per_snapshot,
            clock,
        }
    }

    /// The `__share_group_state` partition of `key` in `image`, if the topic exists.
    pub fn partition_of(image: &MetadataImage, key: &ShareStateKey) -> Option<i32> {
        let t = image.topics.get_by_name(SHARE_STATE_TOPIC)?;
        Some(key.state_partition(t.partitions.len() as i32))
    }

    /// Runs `f` on the states of `key`'s partition, appends the records it returns (and applies
    /// them), and returns its value with where they were appended. NOT_COORDINATOR when
    /// another broker leads the partition, COORDINATOR_LOAD_IN_PROGRESS while it loads,
    /// COORDINATOR_NOT_AVAILABLE without the topic.
    pub fn exec<T>(
        &self,
        image: &MetadataImage,
        key: &ShareStateKey,
        f: impl FnOnce(&ShareStates, i64) -> Result<(T, Vec<Record>), ErrorCode>,
    ) -> Result<(T, Option<AppendPosition>), ErrorCode> {
        let p = Self::partition_of(image, key).ok_or(ErrorCode::CoordinatorNotAvailable)?;
        let now = self.clock.now_ms();
        let result = self.shards.with(p, |states, partition, _| {
            let (value, records) = f(states, now)?;
            if records.is_empty() {
                return Ok((value, None));
            }
            let appended = append_records(partition, &records, None, 1, 1, now)?;
            for (k, v) in records {
                states.replay(k, v);
            }
            Ok((
                value,
                Some(AppendPosition {
                    partition: Arc::clone(partition),
                    leader_epoch: appended.leader_epoch,
                    last_offset: appended.info.last_offset,
                }),
            ))
        });
        match result {
            Err(ErrorCode::NotCoordinator) => Err(self.shards.missing(image, p)),
            Err(e) => Err(e),
            Ok(r) => r,
        }
    }

    /// Follows leadership of `__share_group_state` in `image`: loads the partitions this
    /// broker now leads (reading their logs; call on a blocking thread), drops the others.
    pub fn on_image(&self, image: &MetadataImage, replicas: &ReplicaManager) {
        let n = self.updates_per_snapshot;
        self.shards.on_image(image, replicas, |p, partition| {
            let mut states = ShareStates::new(n);
            partition.read_all_records(|r| {
                if let Some(k) = r.key {
                    states.replay(k, r.value);
                }
            });
            tracing::debug!(
                partition = p,
                keys = states.len(),
                "loaded {SHARE_STATE_TOPIC}-{p}"
            );
            states
        });
    }
}
