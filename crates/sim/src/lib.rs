//! `odradek-sim`: deterministic simulation of an Odradek cluster (not published).
//!
//! # What it owns
//! A whole cluster in one thread, from one seed: a controller running the real control
//! managers over a committed metadata log ([`controller`]), brokers running the real
//! `odradek-replication` partitions over real `odradek-log` logs on disk ([`broker`]),
//! acks=all producers, plain and idempotent ([`client`]), a network that delays, reorders,
//! drops, duplicates and cuts ([`net`]), crashes that are kill -9 or, with fsync on, power
//! losses that tear what was not fsynced ([`disk`]), pauses (SIGSTOP), controller failovers and
//! clock skew ([`world`]). After every step, named invariants are checked ([`invariants`]):
//! committed records are never lost or changed, a replica's high watermark never goes back,
//! at most one leader per partition and epoch, followers never expose past a leader's high
//! watermark, brokers' metadata images equal the controller's at the same offset, and at the
//! end every acknowledged batch is at its offset and no idempotent retry was duplicated.
//!
//! A run that breaks one prints its seed, the step and the last events; the same seed replays
//! it exactly: `cargo run -p odradek-sim -- --seed N --steps M`. Gates fail a run that
//! acknowledged nothing, changed no leader or injected no fault.
//!
//! # What it does not simulate (yet)
//! The controller quorum (a command commits as soon as the one controller handles it; a
//! failover loses the broker sessions, as in Kafka), consumer groups and transactions, and
//! more than one batch in flight per producer.
//!
//! # Layering
//! Above the cores it drives (common, log, metadata, replication, controller's managers);
//! nothing depends on it. Time is the simulation's: the cores are given `now` as they are by
//! the server. The logs are real files in a directory the caller gives.

pub mod broker;
pub mod client;
pub mod controller;
pub mod disk;
pub mod invariants;
pub mod message;
pub mod net;
pub mod rng;
pub mod world;

pub use world::{run, Failure, Hazard, SimConfig, Stats};

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
    Ok(())
}
