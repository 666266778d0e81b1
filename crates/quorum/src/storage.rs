//! `raft::Storage` over RocksDB: the controller quorum's log, hard state, conf state and latest
//! snapshot, under `<metadata.log.dir>/__cluster_metadata-0/`.
//!
//! Keys: `e` + big-endian index -> encoded `Entry`; `m/hard_state`, `m/conf_state`, `m/snapshot`
//! (metadata and state-machine data), the format stamp `m/cluster_id`, `m/node_id`, and the
//! voters' addresses as last learned, `m/addresses` (`id=host:port` lines). Every write that raft
//! needs durable is one synced `WriteBatch`. `m/conf_state` is the voter set as of the latest
//! snapshot (the entries after it are applied again at start-up, voter changes included).
//!
//! Threading: the quorum driver task is the only writer; readers (the committed-log reader
//! serving FetchMetadata) share the same `Arc<DB>`, which RocksDB makes safe. The cached indexes
//! sit behind a short `RwLock`, never held across an await.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::RwLock;
use protobuf::Message as PbMessage;
use raft::prelude::{ConfState, Entry, HardState, Snapshot};
use raft::{GetEntriesContext, RaftState, StorageError};
use rocksdb::{Direction, IteratorMode, Options, WriteBatch, WriteOptions, DB};

use crate::error::QuorumError;

const HARD_STATE: &[u8] = b"m/hard_state";
const CONF_STATE: &[u8] = b"m/conf_state";
const SNAPSHOT: &[u8] = b"m/snapshot";
const CLUSTER_ID: &[u8] = b"m/cluster_id";
const NODE_ID: &[u8] = b"m/node_id";
const ADDRESSES: &[u8] = b"m/addresses";

fn entry_key(index: u64) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = b'e';
    k[1..].copy_from_slice(&index.to_be_bytes());
    k
}

#[derive(Debug, Default)]
struct Cached {
    hard_state: HardState,
    conf_state: ConfState,
    snapshot: Snapshot,
    last_index: u64,
}

impl Cached {
    fn first_index(&self) -> u64 {
        self.snapshot.get_metadata().index + 1
    }
}

/// The Raft log store. Cheap to clone (shared).
#[derive(Clone)]
pub struct RocksStorage {
    path: PathBuf,
    db: Arc<DB>,
    cached: Arc<RwLock<Cached>>,
}

impl std::fmt::Debug for RocksStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RocksStorage")
            .field("path", &self.path)
            .finish()
    }
}

/// What `format` stamped into a store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreIdentity {
    /// The cluster id.
    pub cluster_id: String,
    /// This voter's node id.
    pub node_id: u64,
}

impl RocksStorage {
    fn storage_err(path: &Path, e: impl std::fmt::Display) -> QuorumError {
        QuorumError::Storage {
            path: path.to_path_buf(),
            message: e.to_string(),
        }
    }

    fn open_db(path: &Path, create: bool) -> Result<DB, QuorumError> {
        let mut opts = Options::default();
        opts.create_if_missing(create);
        // The metadata log is small: keep RocksDB's footprint small too.
        opts.set_max_open_files(64);
        opts.set_keep_log_file_num(2);
        DB::open(&opts, path).map_err(|e| Self::storage_err(path, e))
    }

    /// Initialises an empty store for `node_id` of `cluster_id` with the voter set, and with
    /// `bootstrap` (state-machine data, may be empty) as the snapshot at index 0, so every voter
    /// starts from the same bootstrap state. Refuses a store that is already formatted.
    pub fn format(
        path: &Path,
        cluster_id: &str,
        node_id: u64,
        voters: &[u64],
        bootstrap: Vec<u8>,
    ) -> Result<(), QuorumError> {
        std::fs::create_dir_all(path).map_err(|e| Self::storage_err(path, e))?;
        let db = Self::open_db(path, true)?;
        if db
            .get(CLUSTER_ID)
            .map_err(|e| Self::storage_err(path, e))?
            .is_some()
        {
            return Err(QuorumError::NotFormatted(format!(
                "{} is already formatted",
                path.display()
            )));
        }
        let mut conf_state = ConfState::default();
        conf_state.set_voters(voters.to_vec());
        let mut snapshot = Snapshot::default();
        snapshot.mut_metadata().set_conf_state(conf_state.clone());
        snapshot.set_data(bootstrap.into());
        let enc = |m: &dyn PbMessage| m.write_to_bytes().map_err(|e| Self::storage_err(path, e));
        let mut batch = WriteBatch::default();
        batch.put(CONF_STATE, enc(&conf_state)?);
        batch.put(SNAPSHOT, enc(&snapshot)?);
        batch.put(HARD_STATE, enc(&HardState::default())?);
        batch.put(CLUSTER_ID, cluster_id.as_bytes());
        batch.put(NODE_ID, node_id.to_be_bytes());
        let mut wo = WriteOptions::default();
        wo.set_sync(true);
        db.write_opt(batch, &wo)
            .map_err(|e| Self::storage_err(path, e))
    }

    /// Reads the format stamp without opening for writing; `Ok(None)` if never formatted.
    pub fn identity(path: &Path) -> Result<Option<StoreIdentity>, QuorumError> {
        if !path.join("CURRENT").exists() {
            return Ok(None);
        }
        let db = DB::open_for_read_only(&Options::default(), path, false)
            .map_err(|e| Self::storage_err(path, e))?;
        Self::read_identity(path, &db)
    }

    fn read_identity(path: &Path, db: &DB) -> Result<Option<StoreIdentity>, QuorumError> {
        let cluster = db.get(CLUSTER_ID).map_err(|e| Self::storage_err(path, e))?;
        let node = db.get(NODE_ID).map_err(|e| Self::storage_err(path, e))?;
        match (cluster, node) {
            (Some(c), Some(n)) if n.len() == 8 => {
                let mut b = [0u8; 8];
                b.copy_from_slice(&n);
                Ok(Some(StoreIdentity {
                    cluster_id: String::from_utf8_lossy(&c).into_owned(),
                    node_id: u64::from_be_bytes(b),
                }))
            }
            _ => Ok(None),
        }
    }

    /// Opens a formatted store.
    pub fn open(path: &Path) -> Result<(RocksStorage, StoreIdentity), QuorumError> {
        if !path.join("CURRENT").exists() {
            return Err(QuorumError::NotFormatted(format!(
                "{} is not formatted: run odradek-storage format",
                path.display()
            )));
        }
        let db = Self::open_db(path, false)?;
        let identity = Self::read_identity(path, &db)?.ok_or_else(|| {
            QuorumError::NotFormatted(format!(
                "{} is not formatted: run odradek-storage format",
                path.display()
            ))
        })?;
        let get = |key: &[u8]| db.get(key).map_err(|e| Self::storage_err(path, e));
        let mut cached = Cached::default();
        if let Some(b) = get(HARD_STATE)? {
            cached.hard_state =
                HardState::parse_from_bytes(&b).map_err(|e| Self::storage_err(path, e))?;
        }
        if let Some(b) = get(CONF_STATE)? {
            cached.conf_state =
                ConfState::parse_from_bytes(&b).map_err(|e| Self::storage_err(path, e))?;
        }
        if let Some(b) = get(SNAPSHOT)? {
            cached.snapshot =
                Snapshot::parse_from_bytes(&b).map_err(|e| Self::storage_err(path, e))?;
        }
        let last_entry = db
            .iterator(IteratorMode::From(&entry_key(u64::MAX), Direction::Reverse))
            .next()
            .transpose()
            .map_err(|e| Self::storage_err(path, e))?
            .filter(|(k, _)| k.len() == 9 && k[0] == b'e')
            .map(|(k, _)| {
                let mut b = [0u8; 8];
                b.copy_from_slice(&k[1..]);
                u64::from_be_bytes(b)
            });
        cached.last_index = last_entry
            .unwrap_or(0)
            .max(cached.snapshot.get_metadata().index);
        let storage = RocksStorage {
            path: path.to_path_buf(),
            db: Arc::new(db),
            cached: Arc::new(RwLock::new(cached)),
        };
        Ok((storage, identity))
    }

    fn write(&self, batch: WriteBatch) -> raft::Result<()> {
        let mut wo = WriteOptions::default();
        wo.set_sync(true);
        self.db
            .write_opt(batch, &wo)
            .map_err(|e| raft_store_err(&self.path, e))
    }

    /// Persists new entries (replacing any conflicting tail) and, if given, the hard state, in
    /// one synced write.
    pub fn append(&self, entries: &[Entry], hard_state: Option<&HardState>) -> raft::Result<()> {
        let mut batch = WriteBatch::default();
        let old_last = self.cached.read().last_index;
        if let Some(first) = entries.first() {
            if first.index <= old_last {
                batch.delete_range(entry_key(first.index), entry_key(old_last + 1));
            }
            for e in entries {
                batch.put(entry_key(e.index), e.write_to_bytes()?);
            }
        }
        if let Some(hs) = hard_state {
            batch.put(HARD_STATE, hs.write_to_bytes()?);
        }
        self.write(batch)?;
        let mut c = self.cached.write();
        if let Some(last) = entries.last() {
            c.last_index = last.index;
        }
        if let Some(hs) = hard_state {
            c.hard_state = hs.clone();
        }
        Ok(())
    }

    /// Records a new commit index.
    pub fn set_commit(&self, commit: u64) -> raft::Result<()> {
        let mut hs = self.cached.read().hard_state.clone();
        hs.commit = commit;
        self.append(&[], Some(&hs))
    }

    /// Installs a snapshot received from the leader: the log restarts after it.
    pub fn apply_snapshot(&self, snapshot: &Snapshot) -> raft::Result<()> {
        let meta = snapshot.get_metadata();
        let mut hs = self.cached.read().hard_state.clone();
        hs.term = hs.term.max(meta.term);
        hs.commit = meta.index;
        let mut batch = WriteBatch::default();
        batch.delete_range(entry_key(0), entry_key(u64::MAX));
        batch.put(SNAPSHOT, snapshot.write_to_bytes()?);
        batch.put(CONF_STATE, meta.get_conf_state().write_to_bytes()?);
        batch.put(HARD_STATE, hs.write_to_bytes()?);
        self.write(batch)?;
        let mut c = self.cached.write();
        c.hard_state = hs;
        c.conf_state = meta.get_conf_state().clone();
        c.snapshot = snapshot.clone();
        c.last_index = meta.index;
        Ok(())
    }

    /// The voter set as of the last applied entry (a voter change was applied): the next
    /// snapshot carries it.
    pub fn set_conf_state(&self, conf_state: ConfState) {
        self.cached.write().conf_state = conf_state;
    }

    /// The voters' addresses as last persisted.
    pub fn addresses(&self) -> std::collections::BTreeMap<u64, String> {
        let Ok(Some(b)) = self.db.get(ADDRESSES) else {
            return Default::default();
        };
        String::from_utf8_lossy(&b)
            .lines()
            .filter_map(|l| l.split_once('='))
            .filter_map(|(id, a)| Some((id.parse().ok()?, a.to_string())))
            .collect()
    }

    /// Persists the voters' addresses.
    pub fn set_addresses(
        &self,
        addresses: &std::collections::BTreeMap<u64, String>,
    ) -> raft::Result<()> {
        let text: String = addresses
            .iter()
            .map(|(id, a)| format!("{id}={a}\n"))
            .collect();
        let mut batch = WriteBatch::default();
        batch.put(ADDRESSES, text.as_bytes());
        self.write(batch)
    }

    /// Takes a snapshot of the state machine at `applied` (data = its encoding) and drops the
    /// log entries it covers.
    pub fn compact_to_snapshot(&self, applied: u64, data: Vec<u8>) -> raft::Result<()> {
        let term = raft::Storage::term(self, applied)?;
        let conf_state = self.cached.read().conf_state.clone();
        let mut snapshot = Snapshot::default();
        snapshot.set_data(data.into());
        let meta = snapshot.mut_metadata();
        meta.index = applied;
        meta.term = term;
        meta.set_conf_state(conf_state);
        let mut batch = WriteBatch::default();
        batch.put(SNAPSHOT, snapshot.write_to_bytes()?);
        batch.put(
            CONF_STATE,
            snapshot.get_metadata().get_conf_state().write_to_bytes()?,
        );
        batch.delete_range(entry_key(0), entry_key(applied + 1));
        self.write(batch)?;
        self.cached.write().snapshot = snapshot;
        Ok(())
    }

    /// The latest snapshot (metadata and data).
    pub fn latest_snapshot(&self) -> Snapshot {
        self.cached.read().snapshot.clone()
    }

    /// The persisted hard state.
    pub fn hard_state(&self) -> HardState {
        self.cached.read().hard_state.clone()
    }

    /// Committed entries in `[from, to)`, for readers that follow the log (never past commit).
    pub fn committed_entries(
        &self,
        from: u64,
        to: u64,
        max_bytes: u64,
    ) -> raft::Result<Vec<Entry>> {
        let commit = self.cached.read().hard_state.commit;
        let to = to.min(commit + 1);
        if from >= to {
            return Ok(Vec::new());
        }
        raft::Storage::entries(self, from, to, max_bytes, GetEntriesContext::empty(false))
    }
}

fn raft_store_err(path: &Path, e: impl std::fmt::Display) -> raft::Error {
    raft::Error::Store(StorageError::Other(Box::new(std::io::Error::other(
        format!("{}: {e}", path.display()),
    ))))
}

impl raft::Storage for RocksStorage {
    fn initial_state(&self) -> raft::Result<RaftState> {
        let c = self.cached.read();
        Ok(RaftState::new(c.hard_state.clone(), c.conf_state.clone()))
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        _context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        let (first, last) = {
            let c = self.cached.read();
            (c.first_index(), c.last_index)
        };
        if low < first {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        if high > last + 1 {
            return Err(raft::Error::Store(StorageError::Unavailable));
        }
        let max_size = max_size.into();
        let mut out = Vec::with_capacity((high - low).min(1024) as usize);
        let mut size = 0u64;
        let iter = self
            .db
            .iterator(IteratorMode::From(&entry_key(low), Direction::Forward));
        for item in iter {
            let (k, v) = item.map_err(|e| raft_store_err(&self.path, e))?;
            if k.len() != 9 || k[0] != b'e' {
                break;
            }
            let e = Entry::parse_from_bytes(&v)?;
            if e.index >= high {
                break;
            }
            size += v.len() as u64;
            if !out.is_empty() && max_size.is_some_and(|m| size > m) {
                break;
            }
            out.push(e);
        }
        if out.len() as u64 != high - low && max_size.is_none() {
            return Err(raft::Error::Store(StorageError::Unavailable));
        }
        Ok(out)
    }

    fn term(&self, idx: u64) -> raft::Result<u64> {
        let (snap_index, snap_term, first, last) = {
            let c = self.cached.read();
            let m = c.snapshot.get_metadata();
            (m.index, m.term, c.first_index(), c.last_index)
        };
        if idx == snap_index {
            return Ok(snap_term);
        }
        if idx < first {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        if idx > last {
            return Err(raft::Error::Store(StorageError::Unavailable));
        }
        let v = self
            .db
            .get(entry_key(idx))
            .map_err(|e| raft_store_err(&self.path, e))?
            .ok_or(raft::Error::Store(StorageError::Unavailable))?;
        Ok(Entry::parse_from_bytes(&v)?.term)
    }

    fn first_index(&self) -> raft::Result<u64> {
        Ok(self.cached.read().first_index())
    }

    fn last_index(&self) -> raft::Result<u64> {
        Ok(self.cached.read().last_index)
    }

    fn snapshot(&self, request_index: u64, _to: u64) -> raft::Result<Snapshot> {
        let snap = self.cached.read().snapshot.clone();
        if snap.get_metadata().index < request_index {
            return Err(raft::Error::Store(
                StorageError::SnapshotTemporarilyUnavailable,
            ));
        }
        Ok(snap)
    }
}
