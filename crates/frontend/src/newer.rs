//! Request and response versions newer than the `kafka-protocol` crate's, which the frontend
//! reads and writes itself. Each adds plain fields to a version the crate knows, so a newer
//! request is read by taking those fields out and decoding the rest at the older version, and a
//! newer response is the older one with the new fields put in.
//!
//! | API | newer | as | what it adds |
//! |---|---|---|---|
//! | ShareFetch | v2 (KIP-1206, KIP-1222) | v1 | request: `ShareAcquireMode` (int8), `IsRenewAck` (bool) after `BatchSize` |
//! | ShareAcknowledge | v2 (KIP-1222) | v1 | request: `IsRenewAck` (bool) after `ShareSessionEpoch`; response: `AcquisitionLockTimeoutMs` (int32) after `ErrorMessage` |

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, ResponseKind};
use kafka_protocol::protocol::VersionRange;
use odradek_common::share_v2;

/// The fields of a newer request version that the crate's types do not hold (their defaults
/// for an older version).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NewerFields {
    /// ShareFetch v2 `ShareAcquireMode`: 0 batch-optimized, 1 record-limit (KIP-1206).
    pub share_acquire_mode: i8,
    /// ShareFetch and ShareAcknowledge v2 `IsRenewAck`: the acknowledgements may RENEW
    /// acquisition locks (KIP-1222).
    pub is_renew_ack: bool,
}

/// The versions of `api_key` Kafka defines that the frontend can read: the crate's, extended
/// by the ones this module reads.
pub fn known_versions(api_key: ApiKey) -> VersionRange {
    let crate_range = api_key.valid_versions();
    match api_key {
        ApiKey::ShareFetch | ApiKey::ShareAcknowledge => VersionRange {
            min: crate_range.min,
            max: 2,
        },
        _ => crate_range,
    }
}

/// The version the crate encodes and decodes `api_key`'s messages at for `version`.
pub(crate) fn codec_version(api_key: ApiKey, version: i16) -> i16 {
    match api_key {
        ApiKey::ShareFetch | ApiKey::ShareAcknowledge => version.min(1),
        _ => version,
    }
}

/// The body of a request of `api_key` at `version` as the crate reads it (at
/// [`codec_version`]), with the fields it does not hold.
pub(crate) fn older_request(
    api_key: ApiKey,
    version: i16,
    body: Bytes,
) -> Result<(Bytes, NewerFields), String> {
    if codec_version(api_key, version) == version {
        return Ok((body, NewerFields::default()));
    }
    let fetch = api_key == ApiKey::ShareFetch;
    let at = share_v2::request_fields_at(fetch, &body).map_err(|e| e.to_string())?;
    let width = if fetch { 2 } else { 1 };
    let Some(added) = body.get(at..at + width) else {
        return Err("truncated at the v2 fields".into());
    };
    let fields = NewerFields {
        share_acquire_mode: if fetch { added[0] as i8 } else { 0 },
        is_renew_ack: added[width - 1] != 0,
    };
    let rest = body.slice(at + width..);
    let mut older = BytesMut::with_capacity(at + rest.len());
    older.put_slice(&body[..at]);
    older.put_slice(&rest);
    Ok((older.freeze(), fields))
}

/// A private key of a response's unknown tagged fields carrying a newer response field to
/// the encoder (negative: no real tag is).
const ACQUISITION_LOCK_TIMEOUT_KEY: i32 = -1;

/// Sets ShareAcknowledge v2's `AcquisitionLockTimeoutMs` on a response (written only at v2).
pub fn set_acquisition_lock_timeout(
    response: &mut kafka_protocol::messages::ShareAcknowledgeResponse,
    ms: i32,
) {
    response.unknown_tagged_fields.insert(
        ACQUISITION_LOCK_TIMEOUT_KEY,
        Bytes::copy_from_slice(&ms.to_be_bytes()),
    );
}

/// A ShareAcknowledge response to encode at v1 (its private key taken out), with the
/// `AcquisitionLockTimeoutMs` to write into it at v2; `None` for any other response.
pub(crate) fn older_response(response: &ResponseKind) -> Option<(ResponseKind, i32)> {
    let ResponseKind::ShareAcknowledge(r) = response else {
        return None;
    };
    let mut r = r.clone();
    let ms = r
        .unknown_tagged_fields
        .remove(&ACQUISITION_LOCK_TIMEOUT_KEY)
        .and_then(|b| <[u8; 4]>::try_from(&b[..]).ok())
        .map_or(0, i32::from_be_bytes);
    Some((ResponseKind::ShareAcknowledge(r), ms))
}

/// Puts ShareAcknowledge v2's `AcquisitionLockTimeoutMs` into a body encoded at v1: after
/// ThrottleTimeMs (int32), ErrorCode (int16) and ErrorMessage (a compact nullable string).
pub(crate) fn newer_share_acknowledge_body(older: &[u8], ms: i32) -> Result<Bytes, String> {
    let at = share_v2::ack_response_timeout_at(older).map_err(|e| e.to_string())?;
    let mut out = BytesMut::with_capacity(older.len() + 4);
    out.put_slice(&older[..at]);
    out.put_i32(ms);
    out.put_slice(&older[at..]);
    Ok(out.freeze())
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::{ShareAcknowledgeRequest, ShareAcknowledgeResponse};
    use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

    use super::*;

    #[test]
    fn a_v2_share_acknowledge_reads_as_v1_with_its_renew_flag() {
        let v1 = ShareAcknowledgeRequest::default()
            .with_group_id(Some(StrBytes::from_static_str("g").into()))
            .with_member_id(Some(StrBytes::from_static_str("m")))
            .with_share_session_epoch(3);
        let mut b = BytesMut::new();
        v1.encode(&mut b, 1).expect("encodes");
        // v2: IsRenewAck after the epoch (1 + 2 + 2 + 4 bytes in).
        let mut v2 = BytesMut::new();
        v2.put_slice(&b[..9]);
        v2.put_u8(1);
        v2.put_slice(&b[9..]);
        let (older, fields) =
            older_request(ApiKey::ShareAcknowledge, 2, v2.freeze()).expect("reads");
        assert!(fields.is_renew_ack);
        let mut older = older;
        let back = ShareAcknowledgeRequest::decode(&mut older, 1).expect("decodes");
        assert_eq!(back, v1);
        assert!(
            older_request(ApiKey::ShareAcknowledge, 2, Bytes::from_static(&[2, b'g'])).is_err()
        );
    }

    #[test]
    fn a_v2_share_acknowledge_response_carries_the_lock_timeout_after_the_error_message() {
        let mut r = ShareAcknowledgeResponse::default()
            .with_error_message(Some(StrBytes::from_static_str("x")));
        set_acquisition_lock_timeout(&mut r, 30_000);
        let (older, ms) = older_response(&ResponseKind::ShareAcknowledge(r))
            .expect("a share acknowledge response");
        assert_eq!(ms, 30_000);
        let ResponseKind::ShareAcknowledge(older) = older else {
            panic!("kept its kind")
        };
        assert!(older.unknown_tagged_fields.is_empty());
        let mut b = BytesMut::new();
        older.encode(&mut b, 1).expect("encodes");
        let body = newer_share_acknowledge_body(&b, ms).expect("spliced");
        // ThrottleTimeMs, ErrorCode, "x" (length 2 then the byte), then the timeout.
        assert_eq!(&body[8..12], &30_000i32.to_be_bytes());
        assert_eq!(body.len(), b.len() + 4);
    }
}
