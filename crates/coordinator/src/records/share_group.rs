//! The records of a KIP-932 share group in `__consumer_offsets`, in Kafka's layout (keys: the
//! record type, then a non-flexible struct; values: version 0, then a flexible struct).
//!
//! | type | key | value |
//! |---|---|---|
//! | 10 | `ShareGroupMemberMetadataKey` (group, member) | rack, client id and host, subscribed topics |
//! | 11 | `ShareGroupMetadataKey` (group) | group epoch, metadata hash |
//! | 12 | `ShareGroupTargetAssignmentMetadataKey` (group) | assignment epoch |
//! | 13 | `ShareGroupTargetAssignmentMemberKey` (group, member) | the member's target |
//! | 14 | `ShareGroupCurrentMemberAssignmentKey` (group, member) | epochs, state, partitions |
//!
//! Type 15 (`ShareGroupStatePartitionMetadata`, which partitions' share state is initialised) is
//! read and ignored.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::consumer::{get_topic_partitions, put_topic_partitions, value};
use super::flexible::{get_compact_len, get_compact_str, put_compact_str, put_uvarint, skip_tags};
use super::{encode_key, get_i16, get_i32, get_str, need, put_str, RecordError, RecordKey, Result};
use crate::groups::consumer::Assignment;

/// Which record of a share group a key names.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ShareKey {
    /// Type 10: a member's metadata.
    Member(String),
    /// Type 11: the group epoch.
    Metadata,
    /// Type 12: the target assignment's epoch.
    TargetMetadata,
    /// Type 13: a member's target.
    TargetMember(String),
    /// Type 14: a member's current assignment.
    CurrentAssignment(String),
    /// Type 15: share state initialisation (read and ignored).
    StatePartitionMetadata,
}

impl ShareKey {
    fn record_type(&self) -> i16 {
        match self {
            ShareKey::Member(_) => 10,
            ShareKey::Metadata => 11,
            ShareKey::TargetMetadata => 12,
            ShareKey::TargetMember(_) => 13,
            ShareKey::CurrentAssignment(_) => 14,
            ShareKey::StatePartitionMetadata => 15,
        }
    }

    pub(super) fn encode(&self, group: &str, b: &mut BytesMut) {
        b.put_i16(self.record_type());
        put_str(b, group);
        match self {
            ShareKey::Member(m) | ShareKey::TargetMember(m) | ShareKey::CurrentAssignment(m) => {
                put_str(b, m)
            }
            ShareKey::Metadata | ShareKey::TargetMetadata | ShareKey::StatePartitionMetadata => {}
        }
    }

    pub(super) fn decode(record_type: i16, b: &mut Bytes) -> Result<RecordKey> {
        let group = get_str(b, "group")?;
        let key = match record_type {
            10 => ShareKey::Member(get_str(b, "member")?),
            11 => ShareKey::Metadata,
            12 => ShareKey::TargetMetadata,
            13 => ShareKey::TargetMember(get_str(b, "member")?),
            14 => ShareKey::CurrentAssignment(get_str(b, "member")?),
            15 => ShareKey::StatePartitionMetadata,
            v => return Err(RecordError(format!("unknown key version {v}"))),
        };
        Ok(RecordKey::Share { group, key })
    }
}

/// `ShareGroupMemberMetadataValue` v0.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ShareMemberValue {
    /// Rack.
    pub rack_id: Option<String>,
    /// Client id.
    pub client_id: String,
    /// Client host.
    pub client_host: String,
    /// Subscribed topic names, sorted.
    pub subscribed_topic_names: Vec<String>,
}

/// A decoded share group record value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShareValue {
    /// Type 10.
    Member(ShareMemberValue),
    /// Type 11 (group epoch) or 12 (assignment epoch).
    Epoch(i32),
    /// Type 13.
    Target(Assignment),
    /// Type 14: member epoch, previous epoch, assigned partitions.
    Current(i32, i32, Assignment),
    /// Type 15, ignored.
    StatePartitionMetadata,
}

fn key(group: &str, key: ShareKey) -> Bytes {
    encode_key(&RecordKey::Share {
        group: group.to_string(),
        key,
    })
}

/// The key of a member's metadata record.
pub fn member_key(group: &str, member: &str) -> Bytes {
    key(group, ShareKey::Member(member.to_string()))
}

/// A member's metadata record.
pub fn member(group: &str, member: &str, v: &ShareMemberValue) -> (Bytes, Option<Bytes>) {
    let value = value(|b| {
        put_compact_str(b, v.rack_id.as_deref());
        put_compact_str(b, Some(&v.client_id));
        put_compact_str(b, Some(&v.client_host));
        put_uvarint(b, v.subscribed_topic_names.len() as u32 + 1);
        for n in &v.subscribed_topic_names {
            put_compact_str(b, Some(n));
        }
    });
    (member_key(group, member), Some(value))
}

/// The group epoch record (the metadata hash is written as 0: Odradek measures the subscribed
/// topics again on the first heartbeat after a load).
pub fn group_metadata(group: &str, epoch: i32) -> (Bytes, Option<Bytes>) {
    (
        key(group, ShareKey::Metadata),
        Some(value(|b| {
            b.put_i32(epoch);
            b.put_i64(0);
        })),
    )
}

/// The target assignment epoch record.
pub fn target_metadata(group: &str, epoch: i32) -> (Bytes, Option<Bytes>) {
    (
        key(group, ShareKey::TargetMetadata),
        Some(value(|b| b.put_i32(epoch))),
    )
}

/// The key of a member's target record.
pub fn target_member_key(group: &str, member: &str) -> Bytes {
    key(group, ShareKey::TargetMember(member.to_string()))
}

/// A member's target record.
pub fn target_member(group: &str, member: &str, a: &Assignment) -> (Bytes, Option<Bytes>) {
    (
        target_member_key(group, member),
        Some(value(|b| put_topic_partitions(b, a))),
    )
}

/// The key of a member's current assignment record.
pub fn current_key(group: &str, member: &str) -> Bytes {
    key(group, ShareKey::CurrentAssignment(member.to_string()))
}

/// A member's current assignment record (share members are always STABLE: no revocation).
pub fn current(
    group: &str,
    member: &str,
    epoch: i32,
    previous: i32,
    a: &Assignment,
) -> (Bytes, Option<Bytes>) {
    (
        current_key(group, member),
        Some(value(|b| {
            b.put_i32(epoch);
            b.put_i32(previous);
            b.put_i8(0);
            put_topic_partitions(b, a);
        })),
    )
}

/// The tombstones that delete an empty share group: target epoch, then group epoch.
pub fn group_tombstones(group: &str) -> [(Bytes, Option<Bytes>); 2] {
    [
        (key(group, ShareKey::TargetMetadata), None),
        (key(group, ShareKey::Metadata), None),
    ]
}

/// Decodes the value of a record whose key is `key`.
pub fn decode_value(key: &ShareKey, mut b: Bytes) -> Result<ShareValue> {
    let version = get_i16(&mut b, "value version")?;
    if version != 0 {
        return Err(RecordError(format!("unknown value version {version}")));
    }
    let b = &mut b;
    let v = match key {
        ShareKey::Member(_) => {
            let rack_id = get_compact_str(b, "rack id")?;
            let client_id = get_compact_str(b, "client id")?.unwrap_or_default();
            let client_host = get_compact_str(b, "client host")?.unwrap_or_default();
            let mut subscribed_topic_names = Vec::new();
            for _ in 0..get_compact_len(b, "subscribed topics")? {
                subscribed_topic_names.push(get_compact_str(b, "topic")?.unwrap_or_default());
            }
            ShareValue::Member(ShareMemberValue {
                rack_id,
                client_id,
                client_host,
                subscribed_topic_names,
            })
        }
        ShareKey::Metadata => {
            let epoch = get_i32(b, "epoch")?;
            need(b, 8, "metadata hash")?;
            b.advance(8);
            ShareValue::Epoch(epoch)
        }
        ShareKey::TargetMetadata => ShareValue::Epoch(get_i32(b, "epoch")?),
        ShareKey::TargetMember(_) => ShareValue::Target(get_topic_partitions(b)?),
        ShareKey::CurrentAssignment(_) => {
            let epoch = get_i32(b, "member epoch")?;
            let previous = get_i32(b, "previous member epoch")?;
            need(b, 1, "state")?;
            b.advance(1);
            ShareValue::Current(epoch, previous, get_topic_partitions(b)?)
        }
        ShareKey::StatePartitionMetadata => return Ok(ShareValue::StatePartitionMetadata),
    };
    skip_tags(b)?;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use odradek_common::Uuid;

    use super::*;
    use crate::records::decode_key;

    #[test]
    fn records_round_trip() {
        let a = Assignment::from([(Uuid([2; 16]), BTreeSet::from([0, 1]))]);
        let m = ShareMemberValue {
            rack_id: None,
            client_id: "c".into(),
            client_host: "/127.0.0.1".into(),
            subscribed_topic_names: vec!["t".into()],
        };
        let cases = [
            (member("g", "m", &m), ShareValue::Member(m.clone())),
            (group_metadata("g", 3), ShareValue::Epoch(3)),
            (target_metadata("g", 3), ShareValue::Epoch(3)),
            (target_member("g", "m", &a), ShareValue::Target(a.clone())),
            (
                current("g", "m", 3, 2, &a),
                ShareValue::Current(3, 2, a.clone()),
            ),
        ];
        for ((k, v), want) in cases {
            let RecordKey::Share { group, key } = decode_key(k).expect("key") else {
                panic!("not a share key")
            };
            assert_eq!(group, "g");
            let v = v.expect("value");
            assert_eq!(decode_value(&key, v.clone()).expect("value"), want);
            for n in 0..v.len() {
                assert!(
                    decode_value(&key, v.slice(..n)).is_err(),
                    "truncated at {n}"
                );
            }
        }
    }
}
