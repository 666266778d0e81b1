//! `odradek-metadata`: the cluster metadata state machine.
//!
//! # What it owns
//! The metadata records ([`proto`], protobuf, compiled from `proto/` without a system `protoc`),
//! the immutable [`MetadataImage`] built from them, [`MetadataDelta`] (replay records against an
//! image, then [`MetadataDelta::apply`] to get the next image), and snapshots, which are the
//! records that rebuild an image and load through the same delta path. One replay path serves the
//! active controller, standby controllers, snapshot loading and brokers' metadata caches.
//!
//! # Layering
//! Layer L1 of DESIGN.md: pure and synchronous, no I/O, no clock. Depends on `odradek-common` and
//! `prost` only.
//!
//! # Threading
//! Images are immutable and cheap to share: each sub-image (cluster, topics, configs, features,
//! producer ids) sits behind an `Arc`, and a delta copies only the sub-images its records touch,
//! so unchanged parts are shared between consecutive images. A delta has one owner.

pub mod acl;
mod chunked;
mod delta;
mod error;
mod image;
mod security;
mod snapshot;

/// The generated record types (`odradek.metadata.v1`).
#[allow(missing_docs, clippy::all, missing_debug_implementations)]
pub mod proto {
    include!(concat!(env!("OUT_DIR"), "/odradek.metadata.v1.rs"));
}

pub use chunked::ChunkedMap;
pub use delta::{MetadataChanges, MetadataDelta};
pub use error::MetadataError;
pub use image::{
    BrokerRegistration, ClusterImage, ConfigResource, ConfigsImage, Endpoint, FeaturesImage,
    MetadataImage, PartitionRegistration, ProducerIdsImage, TopicImage, TopicsImage,
};
pub use odradek_common::Uuid as TopicId;
pub use security::{
    AclsImage, ClientQuotasImage, QuotaEntity, QuotaValue, ScramImage, QUOTA_ENTITY_TYPES,
};
pub use snapshot::{decode_batch, decode_snapshot, encode_batch, encode_snapshot};

/// Kafka's "no leader" value.
pub const NO_LEADER: i32 = -1;
