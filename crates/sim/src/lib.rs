//! `odradek-sim`: deterministic simulation of an Odradek cluster (not published).
//!
//! # What it owns
//! A whole cluster in one thread, from one seed: three controllers, each a raft-rs voter
//! ([`quorum`]) whose leader runs the real control managers one command at a time and answers
//! once the records are committed and applied ([`controller`]), brokers running the real
//! `odradek-replication` partitions over real `odradek-log` logs on disk ([`broker`]),
//! acks=all producers, plain and idempotent ([`client`]), consumers of a group committing
//! offsets to the real group coordinator on the leader of `__consumer_offsets` ([`consumer`]),
//! transactional copy loops over the real transaction coordinator on the leader of
//! `__transaction_state` and read_committed consumers of their output ([`copier`]),
//! a network that delays, reorders,
//! drops, duplicates and cuts ([`net`]), crashes that are kill -9 or, with fsync on, power
//! losses that tear what was not fsynced ([`disk`]), pauses (SIGSTOP), controller failovers and
//! clock skew, controllers crashed or cut off from the other voters ([`world`]). After every step, named invariants are checked ([`invariants`]):
//! committed records are never lost or changed, a replica's high watermark never goes back,
//! at most one leader per partition and epoch, followers never expose past a leader's high
//! watermark, every node's metadata image at an offset is the same image, and at the
//! end every acknowledged batch is at its offset and no idempotent retry was duplicated;
//! consumers read in order only committed batches, and OffsetFetch returns the latest
//! acknowledged commit (or one sent and never acknowledged, which may land later);
//! read_committed consumers are never handed aborted data, and each copy loop's committed
//! output holds every input record once, in order.
//!
//! A run that breaks one prints its seed, the step and the last events; the same seed replays
//! it exactly: `cargo run -p odradek-sim -- --seed N --steps M`. Gates fail a run that
//! acknowledged nothing, consumed nothing, changed no leader or injected no fault.
//!
//! # What it does not simulate (yet)
//! Raft snapshots and log compaction, quorum membership changes, group membership (join, sync,
//! rebalances: consumers here are assigned their partitions), producer id blocks from the
//! controller, and more than one batch in flight per producer.
//!
//! # Layering
//! Above the cores it drives (common, log, metadata, replication, controller's managers);
//! nothing depends on it. Time is the simulation's: the cores are given `now` as they are by
//! the server. The logs are real files in a directory the caller gives.

pub mod broker;
pub mod client;
pub mod consumer;
pub mod controller;
pub mod copier;
pub mod disk;
pub mod invariants;
pub mod message;
pub mod net;
pub mod quorum;
pub mod rng;
pub mod world;

pub use world::{run, Failure, Hazard, SimConfig, Stats};

/// A fresh directory for a run's logs: in memory (`/dev/shm`) where there is one, since the
/// logs fsync as a broker's do and a run's outcome does not depend on the disk.
pub fn scratch_dir() -> std::io::Result<tempfile::TempDir> {
    let shm = std::path::Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(d) = tempfile::tempdir_in(shm) {
            return Ok(d);
        }
    }
    tempfile::tempdir()
}

/// Checks that a finished run did something: a run with no acknowledged batch, no leader
/// change or no fault proves nothing.
pub fn gate(stats: &Stats) -> Result<(), String> {
    if stats.acked == 0 {
        return Err("no batch was acknowledged".into());
    }
    if stats.leader_changes == 0 {
        return Err("no leader changed".into());
    }
    if stats.faults() == 0 {
        return Err("no fault was injected".into());
    }
    if stats.consumed == 0 {
        return Err("no batch was consumed".into());
    }
    Ok(())
}
