//! The share-partitions this broker leads (KIP-932) and the share sessions of the members that
//! fetch from it. A share-partition is loaded from the share coordinator on its first fetch
//! here (and again when the partition's leader epoch moves); its acknowledgements are written
//! back before they are answered. A session (one per group and member on this broker) holds
//! the partitions a member fetches and the epoch its next ShareFetch or ShareAcknowledge must
//! carry.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use odradek_common::{ErrorCode, Uuid};
use odradek_coordinator::share::records::ShareStateKey;
use odradek_coordinator::share::{ShareConfig, SharePartition};

/// A share-partition on this broker, loaded or not.
#[derive(Debug, Default)]
pub struct Slot {
    /// The state machine, once loaded.
    pub partition: Option<SharePartition>,
    /// The state epoch read from the share coordinator.
    pub state_epoch: i32,
    /// The partition's leader epoch it was loaded under.
    pub leader_epoch: i32,
}

/// A member's share session on this broker.
#[derive(Debug, Clone, Default)]
pub struct ShareSession {
    /// The epoch the next request must carry.
    pub epoch: i32,
    /// The partitions it fetches.
    pub partitions: BTreeSet<(Uuid, i32)>,
    /// When it was last used (ms).
    pub last_used_ms: i64,
}

/// The broker's share-partitions and share sessions.
#[derive(Debug)]
pub struct SharePartitions {
    /// `group.share.*` settings of the state machines.
    pub config: ShareConfig,
    /// `group.share.max.share.sessions`.
    max_sessions: usize,
    /// Each share-partition behind a lock of its own, held across its persistence (a tokio
    /// lock: acknowledgements of one partition are written one at a time, in order).
    slots: Mutex<HashMap<ShareStateKey, Arc<tokio::sync::Mutex<Slot>>>>,
    sessions: Mutex<HashMap<(String, String), ShareSession>>,
}

impl SharePartitions {
    /// None yet.
    pub fn new(config: ShareConfig, max_sessions: usize) -> Self {
        Self {
            config,
            max_sessions,
            slots: Mutex::new(HashMap::new()),
            sessions: Mutex::new(HashMap::new()),
        }
    }

    /// The slot of `key` (created empty).
    pub fn slot(&self, key: &ShareStateKey) -> Arc<tokio::sync::Mutex<Slot>> {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        Arc::clone(slots.entry(key.clone()).or_default())
    }

    /// Every share-partition here.
    pub fn all(&self) -> Vec<(ShareStateKey, Arc<tokio::sync::Mutex<Slot>>)> {
        let slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots
            .iter()
            .map(|(k, v)| (k.clone(), Arc::clone(v)))
            .collect()
    }

    /// A ShareFetch at epoch 0: a new session with `partitions` (replacing the member's
    /// previous one, whose partitions are returned so its records can be released).
    pub fn open(
        &self,
        group: &str,
        member: &str,
        partitions: BTreeSet<(Uuid, i32)>,
        now: i64,
    ) -> Result<Option<ShareSession>, ErrorCode> {
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        let key = (group.to_string(), member.to_string());
        if !sessions.contains_key(&key) && sessions.len() >= self.max_sessions {
            return Err(ErrorCode::ShareSessionLimitReached);
        }
        Ok(sessions.insert(
            key,
            ShareSession {
                epoch: 1,
                partitions,
                last_used_ms: now,
            },
        ))
    }

    /// Sessions unused for `idle_ms` (their member crashed or left without closing them; Kafka
    /// drops a session when its connection closes): removed and returned, so their records can
    /// be released.
    pub fn evict_idle(&self, now: i64, idle_ms: i64) -> Vec<(String, String, ShareSession)> {
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        let idle: Vec<(String, String)> = sessions
            .iter()
            .filter(|(_, s)| s.last_used_ms.saturating_add(idle_ms) <= now)
            .map(|(k, _)| k.clone())
            .collect();
        idle.into_iter()
            .filter_map(|k| sessions.remove(&k).map(|s| (k.0, k.1, s)))
            .collect()
    }

    /// A request at `epoch` (> 0) on the member's session: checks the epoch, applies the
    /// added and forgotten partitions, moves the epoch on, and returns the session's
    /// partitions.
    pub fn advance(
        &self,
        group: &str,
        member: &str,
        epoch: i32,
        added: &[(Uuid, i32)],
        forgotten: &[(Uuid, i32)],
        now: i64,
    ) -> Result<BTreeSet<(Uuid, i32)>, ErrorCode> {
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        let s = sessions
            .get_mut(&(group.to_string(), member.to_string()))
            .ok_or(ErrorCode::ShareSessionNotFound)?;
        if s.epoch != epoch {
            return Err(ErrorCode::InvalidShareSessionEpoch);
        }
        s.partitions.extend(added.iter().copied());
        for f in forgotten {
            s.partitions.remove(f);
        }
        s.epoch = if s.epoch == i32::MAX { 1 } else { s.epoch + 1 };
        s.last_used_ms = now;
        Ok(s.partitions.clone())
    }

    /// A request at epoch -1: the session ends; its partitions are returned.
    pub fn close(&self, group: &str, member: &str) -> Result<ShareSession, ErrorCode> {
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        sessions
            .remove(&(group.to_string(), member.to_string()))
            .ok_or(ErrorCode::ShareSessionNotFound)
    }
}
