//! Decoding one request frame (the bytes after its size prefix), synchronously: the fixed
//! prefix (API key, version, correlation id), then the header and body of a served API at a
//! served version. Connections use it, and so does the request fuzz target (`fuzz/`), so the
//! fuzzer exercises exactly what a socket reaches.

use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind};
use kafka_protocol::protocol::{Decodable, VersionRange};

use crate::newer::NewerFields;

/// The API key, version and correlation id that open every request frame. A frame shorter
/// than them, or naming an API key Kafka does not define, is refused.
pub fn frame_prefix(frame: &[u8]) -> Result<(ApiKey, i16, i32), String> {
    let Some(prefix) = frame.get(..8) else {
        return Err("request shorter than a header".into());
    };
    let api_key_raw = i16::from_be_bytes([prefix[0], prefix[1]]);
    let version = i16::from_be_bytes([prefix[2], prefix[3]]);
    let correlation_id = i32::from_be_bytes([prefix[4], prefix[5], prefix[6], prefix[7]]);
    let api_key =
        ApiKey::try_from(api_key_raw).map_err(|_| format!("unknown API key {api_key_raw}"))?;
    Ok((api_key, version, correlation_id))
}

/// Decodes the header and body of a request for `api_key` at `version`, which must lie in
/// `served` (the broker's range for that API; `None`: not served) and in the range Kafka
/// defines, with the fields of a version newer than the codec crate's
/// ([`crate::newer`]). Every failure is a message for the log; the connection is then closed.
pub fn decode_body(
    frame: &mut Bytes,
    api_key: ApiKey,
    version: i16,
    served: Option<VersionRange>,
) -> Result<(RequestHeader, RequestKind, NewerFields), String> {
    let range = served.ok_or_else(|| format!("API {api_key:?} is not served"))?;
    let known = crate::newer::known_versions(api_key);
    let min = range.min.max(known.min);
    let max = range.max.min(known.max);
    if version < min || version > max {
        return Err(format!(
            "{api_key:?} version {version} is not supported ({min}..={max})"
        ));
    }
    let header = RequestHeader::decode(frame, api_key.request_header_version(version))
        .map_err(|e| format!("bad request header: {e}"))?;
    let (mut body, newer) = crate::newer::older_request(api_key, version, std::mem::take(frame))
        .map_err(|e| format!("cannot decode {api_key:?} v{version}: {e}"))?;
    let request = RequestKind::decode(
        api_key,
        &mut body,
        crate::newer::codec_version(api_key, version),
    )
    .map_err(|e| format!("cannot decode {api_key:?} v{version}: {e}"))?;
    Ok((header, request, newer))
}

/// [`frame_prefix`] then [`decode_body`], for a frame of any API but ApiVersions (which the
/// frontend answers from the prefix alone), with `served` giving the broker's version ranges.
pub fn decode_request(
    mut frame: Bytes,
    served: impl Fn(ApiKey) -> Option<VersionRange>,
) -> Result<(RequestHeader, RequestKind), String> {
    let (api_key, version, _) = frame_prefix(&frame)?;
    decode_body(&mut frame, api_key, version, served(api_key))
        .map(|(header, request, _)| (header, request))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_version(key: ApiKey) -> Option<VersionRange> {
        Some(key.valid_versions())
    }

    #[test]
    fn refuses_short_unknown_and_unsupported_frames() {
        assert!(frame_prefix(&[0, 0, 0])
            .expect_err("refused")
            .contains("shorter"));
        let unknown = [0x7f, 0x7f, 0, 0, 0, 0, 0, 1];
        assert!(frame_prefix(&unknown)
            .expect_err("refused")
            .contains("unknown API key"));
        // Metadata (3) at version 999.
        let frame = Bytes::from_static(&[0, 3, 0x03, 0xe7, 0, 0, 0, 1, 0, 0]);
        let e = decode_request(frame, every_version).expect_err("refused");
        assert!(e.contains("version 999 is not supported"), "{e}");
        let frame = Bytes::from_static(&[0, 3, 0, 1, 0, 0, 0, 1]);
        let e = decode_request(frame, |_| None).expect_err("refused");
        assert!(e.contains("not served"), "{e}");
    }

    #[test]
    fn truncated_body_is_an_error_not_a_panic() {
        // Metadata v1, client id null, then a topic count of 5 and nothing else.
        let frame = Bytes::from_static(&[0, 3, 0, 1, 0, 0, 0, 9, 0xff, 0xff, 0, 0, 0, 5]);
        let e = decode_request(frame, every_version).expect_err("refused");
        assert!(e.contains("cannot decode Metadata v1"), "{e}");
    }

    #[test]
    fn decodes_a_valid_request() {
        // Metadata v1 with a null topic list (all topics).
        let frame =
            Bytes::from_static(&[0, 3, 0, 1, 0, 0, 0, 9, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
        let (header, request) = decode_request(frame, every_version).expect("decodes");
        assert_eq!(header.correlation_id, 9);
        assert!(matches!(request, RequestKind::Metadata(m) if m.topics.is_none()));
    }
}
