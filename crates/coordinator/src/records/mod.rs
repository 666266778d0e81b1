//! The records of `__consumer_offsets`, in Kafka's own layout (so a Kafka tool reading the topic
//! understands them): a key version, then the key; a value version, then the value.
//!
//! - key version 0/1: an offset commit, `OffsetCommitKey` (group, topic, partition);
//!   value `OffsetCommitValue` v0-v3 (we write v3: offset, leader epoch, metadata, commit time).
//! - key version 2: a group, `GroupMetadataKey` (group); value `GroupMetadataValue` v0-v3 (we
//!   write v3). A null value is a tombstone: the offset or group was deleted.
//! - key versions 3, 5, 6, 7, 8: a KIP-848 consumer group's records ([`consumer`]).
//! - key versions 10-15: a KIP-932 share group's records ([`share_group`]).

use bytes::{Buf, BufMut, Bytes, BytesMut};

pub mod consumer;
pub(crate) mod flexible;
pub mod share_group;

use consumer::ConsumerKey;
use share_group::ShareKey;

/// A decoded record key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RecordKey {
    /// The committed offset of one partition for a group.
    Offset {
        /// Group id.
        group: String,
        /// Topic name.
        topic: String,
        /// Partition index.
        partition: i32,
    },
    /// A group's membership as of its last completed rebalance.
    Group {
        /// Group id.
        group: String,
    },
    /// A record of a KIP-848 consumer group.
    Consumer {
        /// Group id.
        group: String,
        /// Which record.
        key: ConsumerKey,
    },
    /// A record of a KIP-932 share group.
    Share {
        /// Group id.
        group: String,
        /// Which record.
        key: ShareKey,
    },
}

impl RecordKey {
    /// The group the record belongs to.
    pub fn group(&self) -> &str {
        match self {
            RecordKey::Offset { group, .. }
            | RecordKey::Group { group }
            | RecordKey::Consumer { group, .. }
            | RecordKey::Share { group, .. } => group,
        }
    }
}

/// A committed offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetValue {
    /// The next offset to consume.
    pub offset: i64,
    /// The leader epoch of the last consumed record (-1: unknown).
    pub leader_epoch: i32,
    /// Client metadata stored with the offset.
    pub metadata: String,
    /// When it was committed (ms).
    pub commit_timestamp: i64,
}

/// A member as the group record stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberValue {
    /// Member id.
    pub member_id: String,
    /// `group.instance.id` of a static member.
    pub group_instance_id: Option<String>,
    /// Client id.
    pub client_id: String,
    /// Client host.
    pub client_host: String,
    /// Rebalance timeout (ms).
    pub rebalance_timeout_ms: i32,
    /// Session timeout (ms).
    pub session_timeout_ms: i32,
    /// The member's metadata for the chosen protocol.
    pub subscription: Bytes,
    /// Its assignment from the leader.
    pub assignment: Bytes,
}

/// A group's state after a completed rebalance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupValue {
    /// Protocol type ("consumer" for consumers).
    pub protocol_type: String,
    /// Generation.
    pub generation: i32,
    /// Chosen protocol (assignor).
    pub protocol: Option<String>,
    /// Leader member id.
    pub leader: Option<String>,
    /// When the group entered its state (ms).
    pub current_state_timestamp: i64,
    /// Members.
    pub members: Vec<MemberValue>,
}

/// A record that cannot be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad __consumer_offsets record: {0}")]
pub struct RecordError(pub String);

pub(crate) type Result<T> = std::result::Result<T, RecordError>;

pub(crate) fn put_str(b: &mut BytesMut, s: &str) {
    b.put_i16(s.len() as i16);
    b.put_slice(s.as_bytes());
}

fn put_nullable_str(b: &mut BytesMut, s: Option<&str>) {
    match s {
        Some(s) => put_str(b, s),
        None => b.put_i16(-1),
    }
}

pub(crate) fn put_bytes(b: &mut BytesMut, v: &[u8]) {
    b.put_i32(v.len() as i32);
    b.put_slice(v);
}

pub(crate) fn need(b: &impl Buf, n: usize, what: &str) -> Result<()> {
    if b.remaining() < n {
        return Err(RecordError(format!("truncated at {what}")));
    }
    Ok(())
}

pub(crate) fn get_i16(b: &mut Bytes, what: &str) -> Result<i16> {
    need(b, 2, what)?;
    Ok(b.get_i16())
}

pub(crate) fn get_i32(b: &mut Bytes, what: &str) -> Result<i32> {
    need(b, 4, what)?;
    Ok(b.get_i32())
}

fn get_i64(b: &mut Bytes, what: &str) -> Result<i64> {
    need(b, 8, what)?;
    Ok(b.get_i64())
}

pub(crate) fn get_nullable_str(b: &mut Bytes, what: &str) -> Result<Option<String>> {
    let len = get_i16(b, what)?;
    if len < 0 {
        return Ok(None);
    }
    need(b, len as usize, what)?;
    let raw = b.split_to(len as usize);
    String::from_utf8(raw.to_vec())
        .map(Some)
        .map_err(|_| RecordError(format!("{what} is not UTF-8")))
}

pub(crate) fn get_str(b: &mut Bytes, what: &str) -> Result<String> {
    get_nullable_str(b, what)?.ok_or_else(|| RecordError(format!("{what} is null")))
}

pub(crate) fn get_bytes(b: &mut Bytes, what: &str) -> Result<Bytes> {
    let len = get_i32(b, what)?;
    if len < 0 {
        return Ok(Bytes::new());
    }
    need(b, len as usize, what)?;
    Ok(b.split_to(len as usize))
}

/// Encodes a key (offset keys as version 1, group keys as version 2).
pub fn encode_key(key: &RecordKey) -> Bytes {
    let mut b = BytesMut::new();
    match key {
        RecordKey::Offset {
            group,
            topic,
            partition,
        } => {
            b.put_i16(1);
            put_str(&mut b, group);
            put_str(&mut b, topic);
            b.put_i32(*partition);
        }
        RecordKey::Group { group } => {
            b.put_i16(2);
            put_str(&mut b, group);
        }
        RecordKey::Consumer { group, key } => key.encode(group, &mut b),
        RecordKey::Share { group, key } => key.encode(group, &mut b),
    }
    b.freeze()
}

/// Decodes a key.
pub fn decode_key(mut b: Bytes) -> Result<RecordKey> {
    match get_i16(&mut b, "key version")? {
        0 | 1 => Ok(RecordKey::Offset {
            group: get_str(&mut b, "group")?,
            topic: get_str(&mut b, "topic")?,
            partition: get_i32(&mut b, "partition")?,
        }),
        2 => Ok(RecordKey::Group {
            group: get_str(&mut b, "group")?,
        }),
        v @ 10..=15 => ShareKey::decode(v, &mut b),
        v => ConsumerKey::decode(v, &mut b),
    }
}

/// Encodes an offset value (version 3).
pub fn encode_offset(v: &OffsetValue) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i16(3);
    b.put_i64(v.offset);
    b.put_i32(v.leader_epoch);
    put_str(&mut b, &v.metadata);
    b.put_i64(v.commit_timestamp);
    b.freeze()
}

/// Decodes an offset value of versions 0-3.
pub fn decode_offset(mut b: Bytes) -> Result<OffsetValue> {
    let version = get_i16(&mut b, "value version")?;
    if !(0..=3).contains(&version) {
        return Err(RecordError(format!(
            "unknown offset value version {version}"
        )));
    }
    let offset = get_i64(&mut b, "offset")?;
    let leader_epoch = if version >= 3 {
        get_i32(&mut b, "leader epoch")?
    } else {
        -1
    };
    let metadata = get_str(&mut b, "metadata")?;
    let commit_timestamp = get_i64(&mut b, "commit timestamp")?;
    Ok(OffsetValue {
        offset,
        leader_epoch,
        metadata,
        commit_timestamp,
    })
}

/// Encodes a group value (version 3).
pub fn encode_group(v: &GroupValue) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i16(3);
    put_str(&mut b, &v.protocol_type);
    b.put_i32(v.generation);
    put_nullable_str(&mut b, v.protocol.as_deref());
    put_nullable_str(&mut b, v.leader.as_deref());
    b.put_i64(v.current_state_timestamp);
    b.put_i32(v.members.len() as i32);
    for m in &v.members {
        put_str(&mut b, &m.member_id);
        put_nullable_str(&mut b, m.group_instance_id.as_deref());
        put_str(&mut b, &m.client_id);
        put_str(&mut b, &m.client_host);
        b.put_i32(m.rebalance_timeout_ms);
        b.put_i32(m.session_timeout_ms);
        put_bytes(&mut b, &m.subscription);
        put_bytes(&mut b, &m.assignment);
    }
    b.freeze()
}

/// Decodes a group value of versions 0-3.
pub fn decode_group(mut b: Bytes) -> Result<GroupValue> {
    let version = get_i16(&mut b, "value version")?;
    if !(0..=3).contains(&version) {
        return Err(RecordError(format!(
            "unknown group value version {version}"
        )));
    }
    let protocol_type = get_str(&mut b, "protocol type")?;
    let generation = get_i32(&mut b, "generation")?;
    let protocol = get_nullable_str(&mut b, "protocol")?;
    let leader = get_nullable_str(&mut b, "leader")?;
    let current_state_timestamp = if version >= 2 {
        get_i64(&mut b, "state timestamp")?
    } else {
        -1
    };
    let count = get_i32(&mut b, "member count")?.max(0);
    let mut members = Vec::with_capacity(count.min(1024) as usize);
    for _ in 0..count {
        let member_id = get_str(&mut b, "member id")?;
        let group_instance_id = if version >= 3 {
            get_nullable_str(&mut b, "group instance id")?
        } else {
            None
        };
        let client_id = get_str(&mut b, "client id")?;
        let client_host = get_str(&mut b, "client host")?;
        let rebalance_timeout_ms = if version >= 1 {
            get_i32(&mut b, "rebalance timeout")?
        } else {
            -1
        };
        let session_timeout_ms = get_i32(&mut b, "session timeout")?;
        let rebalance_timeout_ms = if rebalance_timeout_ms < 0 {
            session_timeout_ms
        } else {
            rebalance_timeout_ms
        };
        members.push(MemberValue {
            member_id,
            group_instance_id,
            client_id,
            client_host,
            rebalance_timeout_ms,
            session_timeout_ms,
            subscription: get_bytes(&mut b, "subscription")?,
            assignment: get_bytes(&mut b, "assignment")?,
        });
    }
    Ok(GroupValue {
        protocol_type,
        generation,
        protocol,
        leader,
        current_state_timestamp,
        members,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_values_round_trip() {
        for key in [
            RecordKey::Offset {
                group: "g".into(),
                topic: "orders".into(),
                partition: 7,
            },
            RecordKey::Group { group: "g".into() },
        ] {
            assert_eq!(decode_key(encode_key(&key)), Ok(key));
        }
        let offset = OffsetValue {
            offset: 42,
            leader_epoch: 3,
            metadata: "m".into(),
            commit_timestamp: 1_700_000_000_000,
        };
        assert_eq!(decode_offset(encode_offset(&offset)), Ok(offset));
        let group = GroupValue {
            protocol_type: "consumer".into(),
            generation: 4,
            protocol: Some("range".into()),
            leader: Some("m-1".into()),
            current_state_timestamp: 5,
            members: vec![MemberValue {
                member_id: "m-1".into(),
                group_instance_id: None,
                client_id: "c".into(),
                client_host: "/127.0.0.1".into(),
                rebalance_timeout_ms: 300_000,
                session_timeout_ms: 45_000,
                subscription: Bytes::from_static(b"sub"),
                assignment: Bytes::from_static(b"assign"),
            }],
        };
        assert_eq!(decode_group(encode_group(&group)), Ok(group));
    }

    #[test]
    fn kafka_layout_of_an_offset_key() {
        // OffsetCommitKey v1: version, group, topic, partition, all big-endian.
        let key = encode_key(&RecordKey::Offset {
            group: "g".into(),
            topic: "t".into(),
            partition: 2,
        });
        assert_eq!(&key[..], &[0, 1, 0, 1, b'g', 0, 1, b't', 0, 0, 0, 2]);
    }

    #[test]
    fn older_offset_values_decode() {
        // OffsetCommitValue v1: offset, metadata, commit timestamp, expire timestamp.
        let mut b = BytesMut::new();
        b.put_i16(1);
        b.put_i64(9);
        put_str(&mut b, "");
        b.put_i64(100);
        b.put_i64(200);
        let v = decode_offset(b.freeze()).expect("v1");
        assert_eq!((v.offset, v.leader_epoch, v.commit_timestamp), (9, -1, 100));
    }

    #[test]
    fn truncated_records_are_errors_not_panics() {
        let full = encode_key(&RecordKey::Offset {
            group: "group".into(),
            topic: "topic".into(),
            partition: 1,
        });
        for n in 0..full.len() {
            assert!(decode_key(full.slice(..n)).is_err());
        }
        assert!(decode_key(Bytes::from_static(&[0, 9])).is_err());
    }
}
