//! `odradek`: the facade over Odradek's layered crates, for users who want one dependency.
//!
//! Each layer is also published on its own; depend on the one you need (for example
//! `odradek-log` to embed the segment log). This crate only re-exports them and owns the
//! workspace's examples, integration tests and benchmarks.

pub use odradek_client as client;
pub use odradek_common as common;
pub use odradek_controller as controller;
pub use odradek_coordinator as coordinator;
pub use odradek_frontend as frontend;
pub use odradek_log as log;
pub use odradek_metadata as metadata;
pub use odradek_quorum as quorum;
pub use odradek_replication as replication;
pub use odradek_server as server;
