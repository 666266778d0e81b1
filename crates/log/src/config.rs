//! `LogConfig`: the per-topic settings the log obeys, with Kafka's topic config names and defaults.
//!
//! Two layers, as everywhere in Odradek: [`LogConfig::from_properties`] parses string properties
//! (Kafka's keys), validates every value and fails with the key's name; the resulting struct is
//! always valid.

use std::collections::HashMap;

use crate::error::{LogError, Result};

/// What to do with old segments (`cleanup.policy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CleanupPolicy {
    /// `delete`: remove whole segments past `retention.ms` / `retention.bytes`.
    pub delete: bool,
    /// `compact`: keep only the latest record for each key.
    pub compact: bool,
}

impl CleanupPolicy {
    /// Kafka's default, `delete`.
    pub const DELETE: CleanupPolicy = CleanupPolicy {
        delete: true,
        compact: false,
    };
    /// `compact`.
    pub const COMPACT: CleanupPolicy = CleanupPolicy {
        delete: false,
        compact: true,
    };
}

/// Whether the broker keeps the producer's timestamp or stamps its own (`message.timestamp.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimestampType {
    /// `CreateTime`: keep the producer's timestamps.
    #[default]
    CreateTime,
    /// `LogAppendTime`: the leader overwrites the batch's max timestamp with its own clock.
    LogAppendTime,
}

/// Settings of one partition log. Field names are Kafka's topic config keys with `.` as `_`.
#[derive(Debug, Clone, PartialEq)]
pub struct LogConfig {
    /// `segment.bytes`: roll the active segment at this size. Default 1 GiB.
    pub segment_bytes: u64,
    /// `segment.ms`: roll a non-empty active segment this long after its first batch. Default 7 days.
    pub segment_ms: i64,
    /// `segment.index.bytes`: maximum size of an offset index; a full index rolls the segment.
    /// Default 10 MiB.
    pub segment_index_bytes: u64,
    /// `index.interval.bytes`: bytes of log between two index entries. Default 4096.
    pub index_interval_bytes: u64,
    /// `max.message.bytes`: largest record batch accepted. Default 1048588.
    pub max_message_bytes: u64,
    /// `retention.ms`: delete segments whose newest record is older than this; -1 keeps forever.
    /// Default 7 days.
    pub retention_ms: i64,
    /// `retention.bytes`: delete oldest segments while the log is larger than this; -1 for no
    /// limit. Default -1.
    pub retention_bytes: i64,
    /// `cleanup.policy`. Default `delete`.
    pub cleanup_policy: CleanupPolicy,
    /// `delete.retention.ms`: how long a compacted topic keeps tombstones. Default 1 day.
    pub delete_retention_ms: i64,
    /// `min.compaction.lag.ms`: records younger than this are not compacted. Default 0.
    pub min_compaction_lag_ms: i64,
    /// `min.cleanable.dirty.ratio`: compact once this share of the log is uncleaned. Default 0.5.
    pub min_cleanable_dirty_ratio: f64,
    /// `flush.messages`: fsync after this many appended records. Default `i64::MAX` (rely on
    /// replication); 1 means fsync before every acknowledgement.
    pub flush_messages: i64,
    /// `flush.ms`: fsync when the last flush is this old. Default `i64::MAX`.
    pub flush_ms: i64,
    /// `message.timestamp.type`. Default `CreateTime`.
    pub message_timestamp_type: TimestampType,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            segment_bytes: 1024 * 1024 * 1024,
            segment_ms: 7 * 24 * 60 * 60 * 1000,
            segment_index_bytes: 10 * 1024 * 1024,
            index_interval_bytes: 4096,
            max_message_bytes: 1_048_588,
            retention_ms: 7 * 24 * 60 * 60 * 1000,
            retention_bytes: -1,
            cleanup_policy: CleanupPolicy::DELETE,
            delete_retention_ms: 24 * 60 * 60 * 1000,
            min_compaction_lag_ms: 0,
            min_cleanable_dirty_ratio: 0.5,
            flush_messages: i64::MAX,
            flush_ms: i64::MAX,
            message_timestamp_type: TimestampType::CreateTime,
        }
    }
}

/// The topic config keys [`LogConfig`] understands.
pub const LOG_CONFIG_KEYS: &[&str] = &[
    "segment.bytes",
    "segment.ms",
    "segment.index.bytes",
    "index.interval.bytes",
    "max.message.bytes",
    "retention.ms",
    "retention.bytes",
    "cleanup.policy",
    "delete.retention.ms",
    "min.compaction.lag.ms",
    "min.cleanable.dirty.ratio",
    "flush.messages",
    "flush.ms",
    "message.timestamp.type",
];

impl LogConfig {
    /// Kafka's smallest allowed `segment.bytes` (the size of the smallest legacy record).
    pub const MIN_SEGMENT_BYTES: u64 = 14;

    /// Builds a config from Kafka topic properties over the defaults. Keys this struct does not
    /// know are returned in the second element so the caller can warn about them.
    pub fn from_properties(props: &HashMap<String, String>) -> Result<(LogConfig, Vec<String>)> {
        let mut config = LogConfig::default();
        let mut unknown = Vec::new();
        for (key, value) in props {
            config
                .set(key, value)
                .map_err(|reason| LogError::InvalidConfig {
                    key: key.clone(),
                    value: value.clone(),
                    reason,
                })?;
            if !LOG_CONFIG_KEYS.contains(&key.as_str()) {
                unknown.push(key.clone());
            }
        }
        Ok((config, unknown))
    }

    /// Sets one key; unknown keys are ignored (the caller reports them).
    fn set(&mut self, key: &str, value: &str) -> std::result::Result<(), String> {
        let value = value.trim();
        match key {
            "segment.bytes" => {
                self.segment_bytes = parse_at_least(value, Self::MIN_SEGMENT_BYTES as i64)? as u64
            }
            "segment.ms" => self.segment_ms = parse_at_least(value, 1)?,
            "segment.index.bytes" => self.segment_index_bytes = parse_at_least(value, 8)? as u64,
            "index.interval.bytes" => self.index_interval_bytes = parse_at_least(value, 0)? as u64,
            "max.message.bytes" => self.max_message_bytes = parse_at_least(value, 0)? as u64,
            "retention.ms" => self.retention_ms = parse_at_least(value, -1)?,
            "retention.bytes" => self.retention_bytes = parse_int(value)?,
            "cleanup.policy" => self.cleanup_policy = parse_cleanup_policy(value)?,
            "delete.retention.ms" => self.delete_retention_ms = parse_at_least(value, 0)?,
            "min.compaction.lag.ms" => self.min_compaction_lag_ms = parse_at_least(value, 0)?,
            "min.cleanable.dirty.ratio" => {
                let ratio: f64 = value.parse().map_err(|_| "not a number".to_string())?;
                if !(0.0..=1.0).contains(&ratio) {
                    return Err("must be between 0 and 1".into());
                }
                self.min_cleanable_dirty_ratio = ratio;
            }
            "flush.messages" => self.flush_messages = parse_at_least(value, 1)?,
            "flush.ms" => self.flush_ms = parse_at_least(value, 0)?,
            "message.timestamp.type" => {
                self.message_timestamp_type = match value {
                    "CreateTime" => TimestampType::CreateTime,
                    "LogAppendTime" => TimestampType::LogAppendTime,
                    _ => return Err("must be CreateTime or LogAppendTime".into()),
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// How many entries an offset index may hold before the segment rolls.
    pub(crate) fn max_index_entries(&self) -> usize {
        (self.segment_index_bytes / crate::index::OFFSET_ENTRY_SIZE as u64) as usize
    }
}

fn parse_int(value: &str) -> std::result::Result<i64, String> {
    value
        .parse::<i64>()
        .map_err(|_| "not a whole number".to_string())
}

fn parse_at_least(value: &str, min: i64) -> std::result::Result<i64, String> {
    let v = parse_int(value)?;
    if v < min {
        return Err(format!("must be at least {min}"));
    }
    Ok(v)
}

fn parse_cleanup_policy(value: &str) -> std::result::Result<CleanupPolicy, String> {
    let mut policy = CleanupPolicy::default();
    for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part {
            "delete" => policy.delete = true,
            "compact" => policy.compact = true,
            _ => {
                return Err(format!(
                    "unknown policy {part:?}; expected delete and/or compact"
                ))
            }
        }
    }
    if !policy.delete && !policy.compact {
        return Err("expected delete and/or compact".into());
    }
    Ok(policy)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_are_kafkas() {
        let c = LogConfig::default();
        assert_eq!(c.segment_bytes, 1_073_741_824);
        assert_eq!(c.max_message_bytes, 1_048_588);
        assert_eq!(c.retention_ms, 604_800_000);
        assert_eq!(c.retention_bytes, -1);
        assert_eq!(c.index_interval_bytes, 4096);
        assert_eq!(c.cleanup_policy, CleanupPolicy::DELETE);
        assert_eq!(c.flush_messages, i64::MAX);
    }

    #[test]
    fn parses_known_keys_and_reports_unknown_ones() {
        let (c, unknown) = LogConfig::from_properties(&props(&[
            ("segment.bytes", "1048576"),
            ("cleanup.policy", "compact,delete"),
            ("message.timestamp.type", "LogAppendTime"),
            ("confluent.placement", "x"),
        ]))
        .expect("valid config");
        assert_eq!(c.segment_bytes, 1_048_576);
        assert!(c.cleanup_policy.compact && c.cleanup_policy.delete);
        assert_eq!(c.message_timestamp_type, TimestampType::LogAppendTime);
        assert_eq!(unknown, vec!["confluent.placement".to_string()]);
    }

    #[test]
    fn bad_values_name_the_key() {
        for (key, value) in [
            ("segment.bytes", "10"),
            ("retention.ms", "soon"),
            ("cleanup.policy", "shred"),
            ("min.cleanable.dirty.ratio", "1.5"),
            ("flush.messages", "0"),
        ] {
            let err = LogConfig::from_properties(&props(&[(key, value)]))
                .expect_err("value must be refused");
            let text = err.to_string();
            assert!(text.contains(key), "{text} should name {key}");
            assert!(text.contains(value), "{text} should show {value}");
        }
    }
}
