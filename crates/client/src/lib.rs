//! `odradek-client`: an async Kafka client over the `kafka-protocol` codecs, for Odradek's CLI,
//! tests and benchmarks: admin calls, produce, fetch, ListOffsets, and consumer-group membership
//! ([`GroupMember`]: Kafka's classic protocol with the range assignor), and share-group
//! membership ([`ShareMember`]: KIP-932, implicit acknowledgement). Not a replacement for the
//! real clients the compatibility suite uses.
//!
//! # Layering
//! Layer L2: tokio and the codecs; no other Odradek crate but `odradek-common`.
//!
//! # Threading
//! A [`Connection`] and a [`Client`] are used through `&mut self`: one request at a time per
//! connection, no locks. Use one client per task.

mod client;
mod connection;
mod error;
pub mod group;
pub mod partitioner;
mod reassign;
mod sasl;
pub mod security;
mod security_admin;
pub mod share;

pub use client::{Client, PartitionInfo, TopicInfo};
pub use connection::Connection;
pub use error::ClientError;
pub use group::{coordinator_moved, GroupMember};
pub use odradek_common::parse_properties;
pub use odradek_common::scram::ScramMechanism;
pub use reassign::{LogDir, LogDirReplica, PartitionOutcome, Reassignment};
pub use security::{ClientSecurity, SaslLogin};
pub use security_admin::{AclEntry, QuotaEntityParts};
pub use share::{AcknowledgeType, ShareFailure, ShareMember, ShareRecord};
