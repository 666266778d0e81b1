//! Batches checked before an append, so that the checks (CRC-32C over every byte, key decoding
//! on compacted topics) run outside whatever lock guards the [`Log`](crate::Log).

use crate::batch::{self, BatchRef, CountCheck};
use crate::config::LogConfig;
use crate::error::Result;

/// The config-dependent checks a leader's append makes (a config change between validation and
/// append makes the append check again).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendRules {
    /// `max.message.bytes`: the largest batch accepted.
    pub max_message_bytes: u64,
    /// `cleanup.policy` includes `compact`: every record needs a key.
    pub require_keys: bool,
}

impl AppendRules {
    /// The rules of `config`.
    pub fn of(config: &LogConfig) -> Self {
        Self {
            max_message_bytes: config.max_message_bytes,
            require_keys: config.cleanup_policy.compact,
        }
    }
}

/// Record batches that passed the checks of an append: framing, magic 2, record counts,
/// CRC-32C, and for a leader's append the [`AppendRules`] they were checked under.
#[derive(Debug, Clone)]
pub struct ValidatedBatches<'a> {
    pub(crate) records: &'a [u8],
    pub(crate) batches: Vec<BatchRef>,
    /// `None` for a follower's append (no size or key rules: the leader applied them).
    pub(crate) rules: Option<AppendRules>,
}

impl<'a> ValidatedBatches<'a> {
    /// Producer batches for a leader's append under `rules`: offsets dense, at most
    /// `max_message_bytes` each, keys present on compacted topics.
    pub fn for_leader(records: &'a [u8], rules: AppendRules) -> Result<Self> {
        let batches =
            batch::validate_all(records, Some(rules.max_message_bytes), CountCheck::Dense)?;
        if rules.require_keys {
            crate::cleaner::require_keys(records, &batches)?;
        }
        Ok(Self {
            records,
            batches,
            rules: Some(rules),
        })
    }

    /// Batches fetched from a leader, for a follower's append (compaction may have left gaps).
    pub fn for_follower(records: &'a [u8]) -> Result<Self> {
        let batches = batch::validate_all(records, None, CountCheck::AllowGaps)?;
        Ok(Self {
            records,
            batches,
            rules: None,
        })
    }

    /// The bytes validated.
    pub fn records(&self) -> &'a [u8] {
        self.records
    }

    /// The headers of the batches, in order (offsets as received: a leader's append assigns
    /// new ones from its log end).
    pub fn headers(&self) -> impl Iterator<Item = &batch::BatchHeader> {
        self.batches.iter().map(|b| &b.header)
    }

    /// Each batch's header with its bytes (header included), in order.
    pub fn batches(&self) -> impl Iterator<Item = (&batch::BatchHeader, &'a [u8])> + '_ {
        let records = self.records;
        self.batches.iter().map(move |b| {
            (
                &b.header,
                &records[b.position..b.position + b.header.size() as usize],
            )
        })
    }

    /// The header of the first batch.
    pub fn first(&self) -> &batch::BatchHeader {
        &self.batches[0].header
    }
}
