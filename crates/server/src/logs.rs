//! The log manager: one `odradek-log` log per partition this broker hosts, under
//! `<log.dir>/<topic>-<partition>`, opened (and recovered) as metadata assigns partitions,
//! deleted when their topic is deleted, with retention run periodically.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};

use odradek_common::{Clock, Uuid};
use odradek_log::{Log, LogConfig, LogReader};
use odradek_metadata::{ConfigResource, MetadataImage};
use tokio::sync::Notify;

/// One hosted partition.
#[derive(Debug)]
pub struct PartitionLog {
    /// Topic name.
    pub topic: String,
    /// Topic id.
    pub topic_id: Uuid,
    /// Partition index.
    pub partition: i32,
    /// The log. A std `Mutex`: held only for one append (a write to the page cache) or one
    /// retention pass, never across an `.await`.
    pub log: Mutex<Log>,
    /// Readers do not take the lock.
    pub reader: LogReader,
}

/// All hosted partitions.
#[derive(Debug)]
pub struct LogManager {
    dir: PathBuf,
    defaults: LogConfig,
    broker_id: i32,
    clock: Arc<dyn Clock>,
    /// Looked up on every request and changed on metadata updates: a short read lock.
    partitions: RwLock<HashMap<(Uuid, i32), Arc<PartitionLog>>>,
    /// Woken after every append, for long-polling fetches.
    pub appended: Notify,
}

impl LogManager {
    /// A manager for partitions under `dir`.
    pub fn new(dir: PathBuf, defaults: LogConfig, broker_id: i32, clock: Arc<dyn Clock>) -> Self {
        Self {
            dir,
            defaults,
            broker_id,
            clock,
            partitions: RwLock::new(HashMap::new()),
            appended: Notify::new(),
        }
    }

    /// The hosted partition, if any.
    pub fn get(&self, topic_id: Uuid, partition: i32) -> Option<Arc<PartitionLog>> {
        self.partitions
            .read()
            .ok()?
            .get(&(topic_id, partition))
            .cloned()
    }

    fn topic_config(&self, image: &MetadataImage, topic: &str) -> LogConfig {
        let overrides = image.configs.get(&ConfigResource::Topic(topic.to_string()));
        let mut props: HashMap<String, String> = HashMap::new();
        let d = &self.defaults;
        for (k, v) in [
            ("segment.bytes", d.segment_bytes.to_string()),
            ("segment.ms", d.segment_ms.to_string()),
            ("retention.ms", d.retention_ms.to_string()),
            ("retention.bytes", d.retention_bytes.to_string()),
            ("max.message.bytes", d.max_message_bytes.to_string()),
        ] {
            props.insert(k.to_string(), v);
        }
        for (k, v) in overrides {
            if odradek_log::LOG_CONFIG_KEYS.contains(&k.as_str()) {
                props.insert(k, v);
            }
        }
        LogConfig::from_properties(&props)
            .map(|(c, _)| c)
            .unwrap_or_else(|_| self.defaults.clone())
    }

    /// Opens logs for partitions assigned to this broker, applies config changes, and deletes
    /// the logs of partitions no longer here.
    pub fn apply(&self, image: &MetadataImage) {
        let mut wanted = HashMap::new();
        for t in image.topics.by_id.values() {
            let config = self.topic_config(image, &t.name);
            for (p, reg) in &t.partitions {
                if reg.replicas.contains(&self.broker_id) {
                    wanted.insert((t.id, *p), (t.name.clone(), config.clone()));
                }
            }
        }
        let Ok(mut partitions) = self.partitions.write() else {
            return;
        };
        partitions.retain(|key, p| {
            if wanted.contains_key(key) {
                return true;
            }
            let dir = self.dir.join(format!("{}-{}", p.topic, p.partition));
            tracing::info!(topic = %p.topic, partition = p.partition, "deleting the log of a removed partition");
            if let Err(e) = std::fs::remove_dir_all(&dir) {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot delete partition directory");
            }
            false
        });
        for ((id, p), (name, config)) in wanted {
            if let Some(existing) = partitions.get(&(id, p)) {
                if let Ok(mut log) = existing.log.lock() {
                    if log.config() != &config {
                        log.set_config(config);
                    }
                }
                continue;
            }
            let dir = self.dir.join(format!("{name}-{p}"));
            match Log::open(&dir, config, self.clock.now_ms()) {
                Ok(log) => {
                    let reader = log.reader();
                    tracing::info!(topic = %name, partition = p, log_end_offset = log.log_end_offset(), "opened partition log");
                    partitions.insert(
                        (id, p),
                        Arc::new(PartitionLog {
                            topic: name,
                            topic_id: id,
                            partition: p,
                            log: Mutex::new(log),
                            reader,
                        }),
                    );
                }
                Err(e) => {
                    tracing::error!(dir = %dir.display(), error = %e, "cannot open partition log")
                }
            }
        }
    }

    /// One retention (and compaction) pass over every log.
    pub fn enforce_retention(&self) {
        let logs: Vec<Arc<PartitionLog>> = match self.partitions.read() {
            Ok(p) => p.values().cloned().collect(),
            Err(_) => return,
        };
        let now = self.clock.now_ms();
        for p in logs {
            let Ok(mut log) = p.log.lock() else { continue };
            if let Err(e) = log.enforce_retention(now) {
                tracing::warn!(topic = %p.topic, partition = p.partition, error = %e, "retention failed");
            }
            if let Err(e) = log.compact_if_needed(now) {
                tracing::warn!(topic = %p.topic, partition = p.partition, error = %e, "compaction failed");
            }
        }
    }

    /// Flushes and closes every log cleanly (the next start trusts their indexes).
    pub fn close_all(&self) {
        let Ok(mut partitions) = self.partitions.write() else {
            return;
        };
        for (_, p) in partitions.drain() {
            match Arc::try_unwrap(p) {
                Ok(p) => {
                    if let Ok(log) = p.log.into_inner() {
                        if let Err(e) = log.close() {
                            tracing::warn!(error = %e, "closing a log failed");
                        }
                    }
                }
                Err(p) => {
                    if let Ok(mut log) = p.log.lock() {
                        let _ = log.flush();
                    }
                }
            }
        }
    }
}
