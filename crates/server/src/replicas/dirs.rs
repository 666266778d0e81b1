//! The log directories (`log.dirs`, JBOD): which directory a replica goes to, the high
//! watermark checkpoint of each, a partition directory's `partition.metadata`, and taking a
//! directory offline when its disk fails (KIP-858 in spirit: its replicas stop, the broker
//! goes on with the others).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use odradek_common::Uuid;
use odradek_replication::checkpoint::{write_checkpoint, HIGH_WATERMARK_CHECKPOINT};

use super::{Change, HostedPartition, ReplicaManager};

/// The file naming the topic a partition directory belongs to (Kafka's `partition.metadata`).
pub(super) const PARTITION_METADATA: &str = "partition.metadata";

/// Makes `dir` the directory of topic `topic_id`'s partition: a directory left by a deleted
/// topic of the same name (this broker was down when it was deleted) is removed first, so the
/// new topic never serves the old one's records; a new or unmarked one is marked.
pub(super) fn claim_directory(dir: &std::path::Path, topic_id: Uuid) -> std::io::Result<()> {
    let marker = dir.join(PARTITION_METADATA);
    match std::fs::read_to_string(&marker) {
        Ok(text) => {
            let found = text
                .lines()
                .find_map(|l| l.strip_prefix("topic_id:"))
                .map(|v| v.trim().to_string());
            if found.as_deref() == Some(topic_id.to_string().as_str()) {
                return Ok(());
            }
            tracing::warn!(dir = %dir.display(), found = ?found, expected = %topic_id, "partition directory of another topic with this name; deleting it");
            std::fs::remove_dir_all(dir)?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join("partition.metadata.tmp");
    std::fs::write(&tmp, format!("version: 0\ntopic_id: {topic_id}\n"))?;
    std::fs::rename(&tmp, &marker)
}

/// One of `log.dirs`.
#[derive(Debug)]
pub struct LogDir {
    /// The directory.
    pub path: PathBuf,
    /// Set by an I/O error on any replica in it.
    pub(super) failed: Arc<AtomicBool>,
    /// Taken offline: its replicas are closed and nothing new is placed in it.
    pub(super) offline: AtomicBool,
    /// Its group commit, with `log.flush.before.ack`.
    pub(super) syncer: Option<Arc<crate::group_sync::GroupSync>>,
}

impl LogDir {
    /// Whether it serves replicas.
    pub fn is_online(&self) -> bool {
        !self.offline.load(Ordering::Acquire)
    }
}

/// Refuses directories that both hold a copy of one partition: which is current cannot be
/// told (Kafka refuses to start too).
pub(super) fn refuse_duplicate_copies(dirs: &[PathBuf]) -> Result<(), String> {
    let mut copies: BTreeMap<String, &PathBuf> = BTreeMap::new();
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for e in entries.flatten() {
            if !e.path().join(PARTITION_METADATA).is_file() {
                continue;
            }
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(other) = copies.insert(name.clone(), dir) {
                return Err(format!(
                        "partition {name} has a copy in both {} and {} (log.dirs): remove the stale one",
                        other.display(),
                        dir.display()
                    ));
            }
        }
    }
    Ok(())
}

impl ReplicaManager {
    /// The log directories (`log.dirs`).
    pub fn dirs(&self) -> &[LogDir] {
        &self.dirs
    }

    /// Replicas assigned here whose directory went offline, for the controller (sent with
    /// every heartbeat until metadata moves them).
    pub fn offline_replicas(&self) -> Vec<(Uuid, i32)> {
        self.offline
            .lock()
            .map(|o| o.iter().copied().collect())
            .unwrap_or_default()
    }

    /// Where a replica's directory is or goes: the online directory that already holds
    /// `<topic>-<partition>` (a restart), else the online one with the fewest replicas.
    pub(super) fn place(&self, topic: &str, index: i32) -> Option<usize> {
        let name = format!("{topic}-{index}");
        let online = || (0..self.dirs.len()).filter(|i| self.dirs[*i].is_online());
        if let Some(i) = online().find(|i| self.dirs[*i].path.join(&name).is_dir()) {
            return Some(i);
        }
        let hosted = self.all();
        online().min_by_key(|i| (hosted.iter().filter(|p| p.dir == *i).count(), *i))
    }

    /// Takes every directory with a reported storage error offline: its replicas leave the
    /// map (closed, their files left where they are), are refused with KAFKA_STORAGE_ERROR,
    /// and are reported to the controller, which moves their leadership and ISR membership
    /// away (KIP-858 in spirit; the broker goes on with its other directories). Returns what
    /// the replica fetchers must stop.
    pub fn take_failed_dirs_offline(&self) -> Vec<Change> {
        let mut changes = Vec::new();
        for (i, d) in self.dirs.iter().enumerate() {
            if !d.failed.load(Ordering::Acquire) || !d.is_online() {
                continue;
            }
            // Under the map's write lock, so no replica is added to the directory meanwhile
            // (apply inserts only into an online one, under the same lock).
            let gone: Vec<Arc<HostedPartition>> = match self.partitions.write() {
                Ok(mut partitions) => {
                    d.offline.store(true, Ordering::Release);
                    let keys: Vec<(Uuid, i32)> = partitions
                        .iter()
                        .filter(|(_, p)| p.dir == i)
                        .map(|(k, _)| *k)
                        .collect();
                    keys.iter().filter_map(|k| partitions.remove(k)).collect()
                }
                Err(_) => continue,
            };
            tracing::error!(dir = %d.path.display(), replicas = gone.len(), "log directory offline; its replicas are no longer served");
            if let Ok(mut offline) = self.offline.lock() {
                offline.extend(gone.iter().map(|p| (p.topic_id, p.index)));
            }
            for p in gone {
                {
                    let locked = p.lock();
                    p.removed.store(true, Ordering::Release);
                    if let Ok(mut replica) = locked {
                        replica.go_offline();
                    }
                }
                p.hw_waiters.wake_all();
                p.leo_waiters.wake_all();
                changes.push(Change::Unfollow(p));
            }
        }
        changes
    }

    /// Writes every hosted replica's high watermark to `replication-offset-checkpoint`.
    pub fn checkpoint_high_watermarks(&self) {
        // Replicas not opened yet keep the entries read at start.
        let Ok(mut entries) = self.checkpointed.lock() else {
            return;
        };
        for p in self.all() {
            entries.insert((p.topic.clone(), p.index), (p.dir, p.high_watermark()));
        }
        let entries = entries.clone();
        for (i, d) in self.dirs.iter().enumerate().filter(|(_, d)| d.is_online()) {
            let these: BTreeMap<(String, i32), i64> = entries
                .iter()
                .filter(|(_, (dir, _))| *dir == i)
                .map(|(k, (_, hw))| (k.clone(), *hw))
                .collect();
            if let Err(e) = write_checkpoint(&d.path.join(HIGH_WATERMARK_CHECKPOINT), &these) {
                tracing::warn!(dir = %d.path.display(), error = %e, "cannot write the high watermark checkpoint");
                d.failed.store(true, Ordering::Release);
            }
        }
    }
}
