//! The consumer's embedded protocol, the bytes a classic member puts in JoinGroup and gets back
//! from SyncGroup: `ConsumerProtocolSubscription` and `ConsumerProtocolAssignment` (versions
//! 0-3, Kafka's non-flexible encoding). The coordinator reads them when a classic member joins a
//! consumer group or a classic group is upgraded, and writes assignments for classic members.

use bytes::{BufMut, Bytes, BytesMut};

use crate::records::{get_bytes, get_i16, get_i32, get_nullable_str, get_str, need, put_str};
use crate::records::{RecordError, Result};

/// Partitions by topic name, as the embedded protocol lists them.
pub(crate) type NamedPartitions = Vec<(String, Vec<i32>)>;

/// A `ConsumerProtocolSubscription`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Subscription {
    /// Subscribed topic names.
    pub topics: Vec<String>,
    /// What the member owns (v1+; cooperative members list it, eager ones leave it empty).
    pub owned: NamedPartitions,
    /// Rack (v3+).
    pub rack: Option<String>,
}

/// A `ConsumerProtocolAssignment`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct EmbeddedAssignment {
    /// Assigned partitions.
    pub partitions: NamedPartitions,
    /// A client-side assignor's user data (a custom assignor; the broker cannot carry it).
    pub user_data: Bytes,
}

/// The version a member's metadata is written at (its first two bytes), which its assignment
/// is answered at, within the versions Kafka defines (0-3).
pub(crate) fn version_of(metadata: &[u8]) -> i16 {
    match metadata {
        [a, b, ..] => i16::from_be_bytes([*a, *b]).clamp(0, 3),
        _ => 0,
    }
}

fn get_array_len(b: &mut Bytes, what: &str) -> Result<usize> {
    let n = get_i32(b, what)?;
    // Null arrays read as empty; each element takes at least two bytes.
    let n = usize::try_from(n).unwrap_or(0);
    need(b, n, what)?;
    Ok(n)
}

fn get_partitions(b: &mut Bytes) -> Result<NamedPartitions> {
    let mut out = Vec::new();
    for _ in 0..get_array_len(b, "topic partitions")? {
        let topic = get_str(b, "topic")?;
        let mut ps = Vec::new();
        for _ in 0..get_array_len(b, "partitions")? {
            ps.push(get_i32(b, "partition")?);
        }
        out.push((topic, ps));
    }
    Ok(out)
}

/// Reads a `ConsumerProtocolSubscription`; fields of versions above 3 are ignored, as Kafka's
/// readers do.
pub(crate) fn decode_subscription(mut b: Bytes) -> Result<Subscription> {
    let b = &mut b;
    let version = get_i16(b, "subscription version")?;
    if version < 0 {
        return Err(RecordError(format!("subscription version {version}")));
    }
    let mut s = Subscription::default();
    for _ in 0..get_array_len(b, "topics")? {
        s.topics.push(get_str(b, "topic")?);
    }
    get_bytes(b, "user data")?;
    if version >= 1 {
        s.owned = get_partitions(b)?;
    }
    if version >= 2 {
        get_i32(b, "generation")?;
    }
    if version >= 3 {
        s.rack = get_nullable_str(b, "rack")?;
    }
    Ok(s)
}

/// Reads a `ConsumerProtocolAssignment` (empty bytes: nothing assigned).
pub(crate) fn decode_assignment(mut b: Bytes) -> Result<EmbeddedAssignment> {
    if b.is_empty() {
        return Ok(EmbeddedAssignment::default());
    }
    let b = &mut b;
    let version = get_i16(b, "assignment version")?;
    if version < 0 {
        return Err(RecordError(format!("assignment version {version}")));
    }
    Ok(EmbeddedAssignment {
        partitions: get_partitions(b)?,
        user_data: get_bytes(b, "user data")?,
    })
}

/// Writes a `ConsumerProtocolAssignment` at `version` (0-3 share one layout), without user data.
pub(crate) fn encode_assignment(version: i16, partitions: &NamedPartitions) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i16(version);
    b.put_i32(partitions.len() as i32);
    for (topic, ps) in partitions {
        put_str(&mut b, topic);
        b.put_i32(ps.len() as i32);
        for p in ps {
            b.put_i32(*p);
        }
    }
    // Null user data.
    b.put_i32(-1);
    b.freeze()
}

/// Writes a `ConsumerProtocolSubscription` (tests; a real member writes its own).
#[cfg(test)]
pub(crate) fn encode_subscription(version: i16, s: &Subscription) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i16(version);
    b.put_i32(s.topics.len() as i32);
    for t in &s.topics {
        put_str(&mut b, t);
    }
    b.put_i32(-1);
    if version >= 1 {
        b.put_i32(s.owned.len() as i32);
        for (topic, ps) in &s.owned {
            put_str(&mut b, topic);
            b.put_i32(ps.len() as i32);
            for p in ps {
                b.put_i32(*p);
            }
        }
    }
    if version >= 2 {
        b.put_i32(-1);
    }
    if version >= 3 {
        match &s.rack {
            Some(r) => put_str(&mut b, r),
            None => b.put_i16(-1),
        }
    }
    b.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscriptions_of_every_version_read_back() {
        let s = Subscription {
            topics: vec!["a".into(), "b".into()],
            owned: vec![("a".into(), vec![0, 2])],
            rack: Some("r1".into()),
        };
        for v in 0..=3 {
            let got = decode_subscription(encode_subscription(v, &s)).expect("decodes");
            assert_eq!(got.topics, s.topics, "v{v}");
            assert_eq!(got.owned.is_empty(), v == 0, "v{v}");
            assert_eq!(got.rack.is_some(), v == 3, "v{v}");
        }
    }

    #[test]
    fn assignments_round_trip_and_truncation_is_an_error() {
        let ps = vec![("a".to_string(), vec![1, 3]), ("b".to_string(), vec![0])];
        let bytes = encode_assignment(3, &ps);
        assert_eq!(version_of(&bytes), 3);
        let got = decode_assignment(bytes.clone()).expect("decodes");
        assert_eq!(got.partitions, ps);
        assert!(got.user_data.is_empty());
        assert!(decode_assignment(bytes.slice(..bytes.len() - 5)).is_err());
        assert!(decode_subscription(Bytes::from_static(&[0, 1, 0, 0, 0, 9])).is_err());
        assert_eq!(
            decode_assignment(Bytes::new()).expect("empty"),
            EmbeddedAssignment::default()
        );
    }
}
