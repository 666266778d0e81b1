//! `odradek-common`: the vocabulary every Odradek layer shares.
//!
//! What it owns: identifier newtypes ([`NodeId`], [`LeaderEpoch`], Kafka's [`Uuid`]), the injected
//! [`Clock`], the Java properties parser for `server.properties`, and the
//! mapping from each crate's error enum to Kafka's numeric error codes ([`ErrorCode`], [`ToErrorCode`]).
//!
//! What it may depend on: nothing of Odradek's; it performs no I/O (layer L0 in DESIGN.md).
//!
//! Threading: every type here is `Send + Sync` and free of interior locking, except [`ManualClock`],
//! whose single atomic makes it shareable between a test and the code under test.

mod clock;
mod error_code;
pub mod group_configs;
mod ids;
pub mod jaas;
mod properties;
pub mod scram;
pub mod share_v2;
mod uuid;

pub use clock::{Clock, ManualClock, SystemClock};
pub use error_code::{ErrorCode, ToErrorCode};
pub use ids::{LeaderEpoch, NodeId};
pub use properties::parse_properties;
pub use uuid::{ParseUuidError, Uuid};
