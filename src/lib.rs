//! `odradek`: the facade over Odradek's layered crates, for users who want one dependency.
//!
//! Each layer is also published on its own; depend on the one you need (for example
//! `odradek-log` to embed the segment log). This crate only re-exports them and owns the
//! workspace's examples, integration tests and benchmarks.

pub use odradek_common as common;
pub use odradek_log as log;
