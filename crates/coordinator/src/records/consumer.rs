//! The records of a KIP-848 consumer group in `__consumer_offsets`, in Kafka's layout. Keys are
//! the record type (int16) then a non-flexible struct (int16-length strings); values are a
//! version (int16, 0) then a flexible struct (compact strings and arrays, tagged fields).
//!
//! | type | key | value |
//! |---|---|---|
//! | 3 | `ConsumerGroupMetadataKey` (group) | `ConsumerGroupMetadataValue`: group epoch |
//! | 5 | `ConsumerGroupMemberMetadataKey` (group, member) | `ConsumerGroupMemberMetadataValue` |
//! | 6 | `ConsumerGroupTargetAssignmentMetadataKey` (group) | assignment epoch |
//! | 7 | `ConsumerGroupTargetAssignmentMemberKey` (group, member) | the member's target |
//! | 8 | `ConsumerGroupCurrentMemberAssignmentKey` (group, member) | epochs, state, partitions |
//!
//! Type 4 (`ConsumerGroupPartitionMetadata`, the subscribed topics' metadata) is read and
//! ignored: the coordinator measures the subscribed topics again on the first heartbeat after a
//! load, with one group epoch bump.

use std::collections::BTreeSet;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use odradek_common::Uuid;

use super::flexible::{
    get_compact_len, get_compact_str, get_uvarint, put_compact_str, put_uvarint, skip_tags,
};
use super::{encode_key, get_i16, get_i32, get_str, need, put_str, RecordError, RecordKey, Result};
use crate::groups::consumer::Assignment;

/// Which record of a consumer group a key names.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ConsumerKey {
    /// Type 3: the group epoch.
    Metadata,
    /// Type 4: the subscribed topics' metadata (read and ignored).
    PartitionMetadata,
    /// Type 5: a member's metadata.
    Member(String),
    /// Type 6: the target assignment's epoch.
    TargetMetadata,
    /// Type 7: a member's target assignment.
    TargetMember(String),
    /// Type 8: a member's current assignment.
    CurrentAssignment(String),
}

impl ConsumerKey {
    fn record_type(&self) -> i16 {
        match self {
            ConsumerKey::Metadata => 3,
            ConsumerKey::PartitionMetadata => 4,
            ConsumerKey::Member(_) => 5,
            ConsumerKey::TargetMetadata => 6,
            ConsumerKey::TargetMember(_) => 7,
            ConsumerKey::CurrentAssignment(_) => 8,
        }
    }

    pub(super) fn encode(&self, group: &str, b: &mut BytesMut) {
        b.put_i16(self.record_type());
        put_str(b, group);
        match self {
            ConsumerKey::Member(m)
            | ConsumerKey::TargetMember(m)
            | ConsumerKey::CurrentAssignment(m) => put_str(b, m),
            ConsumerKey::Metadata
            | ConsumerKey::PartitionMetadata
            | ConsumerKey::TargetMetadata => {}
        }
    }

    pub(super) fn decode(record_type: i16, b: &mut Bytes) -> Result<RecordKey> {
        let group = get_str(b, "group")?;
        let key = match record_type {
            3 => ConsumerKey::Metadata,
            4 => ConsumerKey::PartitionMetadata,
            5 => ConsumerKey::Member(get_str(b, "member")?),
            6 => ConsumerKey::TargetMetadata,
            7 => ConsumerKey::TargetMember(get_str(b, "member")?),
            8 => ConsumerKey::CurrentAssignment(get_str(b, "member")?),
            v => return Err(RecordError(format!("unknown key version {v}"))),
        };
        Ok(RecordKey::Consumer { group, key })
    }
}

/// `ConsumerGroupMemberMetadataValue` v0.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MemberMetadataValue {
    /// `group.instance.id` of a static member.
    pub instance_id: Option<String>,
    /// Rack.
    pub rack_id: Option<String>,
    /// Client id.
    pub client_id: String,
    /// Client host.
    pub client_host: String,
    /// Subscribed topic names, sorted.
    pub subscribed_topic_names: Vec<String>,
    /// Subscribed topic regex.
    pub subscribed_topic_regex: Option<String>,
    /// Rebalance timeout (ms).
    pub rebalance_timeout_ms: i32,
    /// The broker-side assignor asked for.
    pub server_assignor: Option<String>,
    /// Set for a member that speaks the classic protocol (JoinGroup, SyncGroup) inside the
    /// consumer group: tagged field 0.
    pub classic: Option<ClassicMemberMetadata>,
}

/// `ClassicMemberMetadata`: what a classic-protocol member of a consumer group joined with.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClassicMemberMetadata {
    /// The JoinGroup's session timeout (ms): the member's session, not the consumer group's.
    pub session_timeout_ms: i32,
    /// The protocols it supports, in its order: (name, metadata, a `ConsumerProtocolSubscription`).
    pub protocols: Vec<(String, Bytes)>,
}

impl ClassicMemberMetadata {
    fn encode(&self, b: &mut BytesMut) {
        b.put_i32(self.session_timeout_ms);
        put_uvarint(b, self.protocols.len() as u32 + 1);
        for (name, metadata) in &self.protocols {
            put_compact_str(b, Some(name));
            put_uvarint(b, metadata.len() as u32 + 1);
            b.put_slice(metadata);
            put_uvarint(b, 0);
        }
        put_uvarint(b, 0);
    }

    fn decode(b: &mut Bytes) -> Result<Self> {
        let session_timeout_ms = get_i32(b, "session timeout")?;
        let mut protocols = Vec::new();
        for _ in 0..get_compact_len(b, "supported protocols")? {
            let name = get_compact_str(b, "protocol name")?.unwrap_or_default();
            let len = (get_uvarint(b, "protocol metadata")? as usize).saturating_sub(1);
            need(b, len, "protocol metadata")?;
            let metadata = b.split_to(len);
            skip_tags(b)?;
            protocols.push((name, metadata));
        }
        skip_tags(b)?;
        Ok(Self {
            session_timeout_ms,
            protocols,
        })
    }
}

/// `ConsumerGroupCurrentMemberAssignmentValue` v0.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CurrentAssignmentValue {
    /// Member epoch.
    pub member_epoch: i32,
    /// Previous member epoch.
    pub previous_member_epoch: i32,
    /// Member state (Kafka's `MemberState` value).
    pub state: i8,
    /// Assigned partitions.
    pub assigned: Assignment,
    /// Partitions pending revocation.
    pub pending_revocation: Assignment,
}

pub(super) fn put_topic_partitions(b: &mut BytesMut, a: &Assignment) {
    put_uvarint(b, a.len() as u32 + 1);
    for (t, ps) in a {
        b.put_slice(t.as_bytes());
        put_uvarint(b, ps.len() as u32 + 1);
        for p in ps {
            b.put_i32(*p);
        }
        put_uvarint(b, 0);
    }
}

pub(super) fn get_topic_partitions(b: &mut Bytes) -> Result<Assignment> {
    let mut a = Assignment::new();
    for _ in 0..get_compact_len(b, "topic partitions")? {
        need(b, 16, "topic id")?;
        let t = Uuid::from_slice(&b.split_to(16)).ok_or_else(|| RecordError("topic id".into()))?;
        let mut ps = BTreeSet::new();
        for _ in 0..get_compact_len(b, "partitions")? {
            ps.insert(get_i32(b, "partition")?);
        }
        skip_tags(b)?;
        if !ps.is_empty() {
            a.entry(t).or_default().extend(ps);
        }
    }
    Ok(a)
}

pub(super) fn value(f: impl FnOnce(&mut BytesMut)) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i16(0);
    f(&mut b);
    put_uvarint(&mut b, 0);
    b.freeze()
}

fn key(group: &str, key: ConsumerKey) -> Bytes {
    encode_key(&RecordKey::Consumer {
        group: group.to_string(),
        key,
    })
}

// ---- the records ----

/// The group epoch record.
pub fn group_metadata(group: &str, epoch: i32) -> (Bytes, Option<Bytes>) {
    (
        key(group, ConsumerKey::Metadata),
        Some(value(|b| b.put_i32(epoch))),
    )
}

/// The key of a member's metadata record.
pub fn member_metadata_key(group: &str, member: &str) -> Bytes {
    key(group, ConsumerKey::Member(member.to_string()))
}

/// A member's metadata record.
pub fn member_metadata(
    group: &str,
    member: &str,
    v: &MemberMetadataValue,
) -> (Bytes, Option<Bytes>) {
    let value = value(|b| {
        put_compact_str(b, v.instance_id.as_deref());
        put_compact_str(b, v.rack_id.as_deref());
        put_compact_str(b, Some(&v.client_id));
        put_compact_str(b, Some(&v.client_host));
        put_uvarint(b, v.subscribed_topic_names.len() as u32 + 1);
        for n in &v.subscribed_topic_names {
            put_compact_str(b, Some(n));
        }
        put_compact_str(b, v.subscribed_topic_regex.as_deref());
        b.put_i32(v.rebalance_timeout_ms);
        put_compact_str(b, v.server_assignor.as_deref());
    });
    let value = match &v.classic {
        None => value,
        Some(classic) => {
            // The struct's tagged fields: one, tag 0, the classic member's metadata, a nullable
            // struct (Kafka writes its size + 1, then 1 for "present", then the struct).
            let mut tagged = BytesMut::new();
            classic.encode(&mut tagged);
            let mut b = BytesMut::from(&value[..value.len() - 1]);
            put_uvarint(&mut b, 1);
            put_uvarint(&mut b, 0);
            put_uvarint(&mut b, tagged.len() as u32 + 1);
            put_uvarint(&mut b, 1);
            b.put_slice(&tagged);
            b.freeze()
        }
    };
    (member_metadata_key(group, member), Some(value))
}

/// The target assignment epoch record.
pub fn target_metadata(group: &str, epoch: i32) -> (Bytes, Option<Bytes>) {
    (
        key(group, ConsumerKey::TargetMetadata),
        Some(value(|b| b.put_i32(epoch))),
    )
}

/// The key of a member's target assignment record.
pub fn target_member_key(group: &str, member: &str) -> Bytes {
    key(group, ConsumerKey::TargetMember(member.to_string()))
}

/// A member's target assignment record.
pub fn target_member(group: &str, member: &str, a: &Assignment) -> (Bytes, Option<Bytes>) {
    (
        target_member_key(group, member),
        Some(value(|b| put_topic_partitions(b, a))),
    )
}

/// The key of a member's current assignment record.
pub fn current_assignment_key(group: &str, member: &str) -> Bytes {
    key(group, ConsumerKey::CurrentAssignment(member.to_string()))
}

/// A member's current assignment record.
pub fn current_assignment(
    group: &str,
    member: &str,
    v: &CurrentAssignmentValue,
) -> (Bytes, Option<Bytes>) {
    let value = value(|b| {
        b.put_i32(v.member_epoch);
        b.put_i32(v.previous_member_epoch);
        b.put_i8(v.state);
        put_topic_partitions(b, &v.assigned);
        put_topic_partitions(b, &v.pending_revocation);
    });
    (current_assignment_key(group, member), Some(value))
}

/// A decoded consumer group record value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsumerValue {
    /// Group epoch (type 3) or target assignment epoch (type 6).
    Epoch(i32),
    /// Type 4, ignored.
    PartitionMetadata,
    /// Type 5.
    Member(MemberMetadataValue),
    /// Type 7.
    Target(Assignment),
    /// Type 8.
    Current(CurrentAssignmentValue),
}

/// Decodes the value of a record whose key is `key`.
pub fn decode_value(key: &ConsumerKey, mut b: Bytes) -> Result<ConsumerValue> {
    let version = get_i16(&mut b, "value version")?;
    if version != 0 {
        return Err(RecordError(format!("unknown value version {version}")));
    }
    let b = &mut b;
    let v = match key {
        ConsumerKey::Metadata | ConsumerKey::TargetMetadata => {
            ConsumerValue::Epoch(get_i32(b, "epoch")?)
        }
        ConsumerKey::PartitionMetadata => return Ok(ConsumerValue::PartitionMetadata),
        ConsumerKey::Member(_) => {
            let instance_id = get_compact_str(b, "instance id")?;
            let rack_id = get_compact_str(b, "rack id")?;
            let client_id = get_compact_str(b, "client id")?.unwrap_or_default();
            let client_host = get_compact_str(b, "client host")?.unwrap_or_default();
            let mut subscribed_topic_names = Vec::new();
            for _ in 0..get_compact_len(b, "subscribed topics")? {
                subscribed_topic_names.push(get_compact_str(b, "topic")?.unwrap_or_default());
            }
            let mut v = MemberMetadataValue {
                instance_id,
                rack_id,
                client_id,
                client_host,
                subscribed_topic_names,
                subscribed_topic_regex: get_compact_str(b, "regex")?,
                rebalance_timeout_ms: get_i32(b, "rebalance timeout")?,
                server_assignor: get_compact_str(b, "server assignor")?,
                classic: None,
            };
            // Tagged fields: 0 is the classic member's metadata; others are skipped.
            for _ in 0..get_uvarint(b, "tagged fields")? {
                let tag = get_uvarint(b, "tag")?;
                let size = get_uvarint(b, "tag size")? as usize;
                need(b, size, "tagged field")?;
                let mut field = b.split_to(size);
                // A nullable struct: 1 first when present, 0 when null.
                if tag == 0 && get_uvarint(&mut field, "classic member metadata")? > 0 {
                    v.classic = Some(ClassicMemberMetadata::decode(&mut field)?);
                }
            }
            return Ok(ConsumerValue::Member(v));
        }
        ConsumerKey::TargetMember(_) => ConsumerValue::Target(get_topic_partitions(b)?),
        ConsumerKey::CurrentAssignment(_) => ConsumerValue::Current(CurrentAssignmentValue {
            member_epoch: get_i32(b, "member epoch")?,
            previous_member_epoch: get_i32(b, "previous member epoch")?,
            state: {
                need(b, 1, "state")?;
                b.get_i8()
            },
            assigned: get_topic_partitions(b)?,
            pending_revocation: get_topic_partitions(b)?,
        }),
    };
    skip_tags(b)?;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::decode_key;

    #[test]
    fn records_round_trip() {
        let t = Uuid([3; 16]);
        let a = Assignment::from([(t, BTreeSet::from([0, 2]))]);
        let md = MemberMetadataValue {
            instance_id: Some("i".into()),
            rack_id: None,
            client_id: "c".into(),
            client_host: "/127.0.0.1".into(),
            subscribed_topic_names: vec!["a".into(), "b".into()],
            subscribed_topic_regex: None,
            rebalance_timeout_ms: 300_000,
            server_assignor: Some("uniform".into()),
            classic: None,
        };
        let classic = MemberMetadataValue {
            classic: Some(ClassicMemberMetadata {
                session_timeout_ms: 45_000,
                protocols: vec![
                    (
                        "cooperative-sticky".into(),
                        Bytes::from_static(b"\x00\x01sub"),
                    ),
                    ("range".into(), Bytes::new()),
                ],
            }),
            ..md.clone()
        };
        // Kafka's layout of the nullable tagged struct: the tagged-field count and tag, its
        // size + 1, 1 for "present", then the struct.
        let plain = member_metadata("g", "m", &md).1.expect("a value");
        let tagged = member_metadata("g", "m", &classic).1.expect("a value");
        let at = plain.len() - 1;
        let struct_len = tagged.len() - at - 4;
        assert_eq!(
            &tagged[at..at + 4],
            &[1, 0, struct_len as u8 + 1, 1],
            "count, tag, size, present"
        );
        let cur = CurrentAssignmentValue {
            member_epoch: 4,
            previous_member_epoch: 3,
            state: 1,
            assigned: a.clone(),
            pending_revocation: Assignment::new(),
        };
        let cases = [
            (group_metadata("g", 7), ConsumerValue::Epoch(7)),
            (
                member_metadata("g", "m", &md),
                ConsumerValue::Member(md.clone()),
            ),
            (
                member_metadata("g", "m", &classic),
                ConsumerValue::Member(classic.clone()),
            ),
            (target_metadata("g", 6), ConsumerValue::Epoch(6)),
            (
                target_member("g", "m", &a),
                ConsumerValue::Target(a.clone()),
            ),
            (
                current_assignment("g", "m", &cur),
                ConsumerValue::Current(cur.clone()),
            ),
        ];
        for ((k, v), want) in cases {
            let RecordKey::Consumer { group, key } = decode_key(k).expect("in the test setup")
            else {
                panic!("not a consumer key")
            };
            assert_eq!(group, "g");
            assert_eq!(
                decode_value(&key, v.expect("in the test setup")).expect("in the test setup"),
                want
            );
        }
    }

    #[test]
    fn the_group_epoch_record_has_kafkas_bytes() {
        // Key: type 3, then "g" as an int16-length string; value: version 0, epoch, no tags.
        let (k, v) = group_metadata("g", 5);
        assert_eq!(&k[..], &[0, 3, 0, 1, b'g']);
        assert_eq!(&v.expect("in the test setup")[..], &[0, 0, 0, 0, 0, 5, 0]);
    }

    #[test]
    fn truncated_values_are_errors_not_panics() {
        let (k, v) = current_assignment("g", "m", &CurrentAssignmentValue::default());
        let RecordKey::Consumer { key, .. } = decode_key(k).expect("in the test setup") else {
            panic!()
        };
        let v = v.expect("in the test setup");
        for n in 0..v.len() {
            assert!(decode_value(&key, v.slice(..n)).is_err(), "{n}");
        }
    }
}
