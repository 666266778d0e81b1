//! Where the fields of ShareFetch and ShareAcknowledge v2 (KIP-1206, KIP-1222) sit in the bodies
//! of their v1 messages, which the `kafka-protocol` crate encodes: both ends of the wire (the
//! broker's frontend and the client) take them out of or put them into a v1 body there.
//!
//! - ShareFetch request v2: `ShareAcquireMode` (int8) and `IsRenewAck` (bool) after `GroupId`,
//!   `MemberId` and six int32s (`ShareSessionEpoch` .. `BatchSize`).
//! - ShareAcknowledge request v2: `IsRenewAck` (bool) after `GroupId`, `MemberId` and
//!   `ShareSessionEpoch`.
//! - ShareAcknowledge response v2: `AcquisitionLockTimeoutMs` (int32) after `ThrottleTimeMs`,
//!   `ErrorCode` and `ErrorMessage`.
//!
//! The ShareFetch response is the same at v1 and v2.

/// A body too short for the fields before the new ones.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("truncated at {0}")]
pub struct Truncated(&'static str);

fn uvarint(body: &[u8], at: &mut usize, what: &'static str) -> Result<u32, Truncated> {
    let mut v: u32 = 0;
    for shift in (0..35).step_by(7) {
        let byte = *body.get(*at).ok_or(Truncated(what))?;
        *at += 1;
        v |= u32::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(Truncated(what))
}

/// Skips a compact nullable string (a length + 1 as an unsigned varint, 0 for null).
fn compact_str(body: &[u8], at: &mut usize, what: &'static str) -> Result<(), Truncated> {
    let len = (uvarint(body, at, what)? as usize).saturating_sub(1);
    *at = at.checked_add(len).ok_or(Truncated(what))?;
    if *at > body.len() {
        return Err(Truncated(what));
    }
    Ok(())
}

fn skip(body: &[u8], at: &mut usize, n: usize, what: &'static str) -> Result<(), Truncated> {
    *at += n;
    if *at > body.len() {
        return Err(Truncated(what));
    }
    Ok(())
}

/// Where a v1 request body of ShareFetch (`fetch`) or ShareAcknowledge gets its v2 fields.
pub fn request_fields_at(fetch: bool, body: &[u8]) -> Result<usize, Truncated> {
    let mut at = 0;
    compact_str(body, &mut at, "GroupId")?;
    compact_str(body, &mut at, "MemberId")?;
    let ints = if fetch { 6 } else { 1 };
    skip(body, &mut at, 4 * ints, "the request's int32 fields")?;
    Ok(at)
}

/// Where a v1 ShareAcknowledge response body gets its v2 `AcquisitionLockTimeoutMs`.
pub fn ack_response_timeout_at(body: &[u8]) -> Result<usize, Truncated> {
    let mut at = 0;
    skip(body, &mut at, 6, "ThrottleTimeMs and ErrorCode")?;
    compact_str(body, &mut at, "ErrorMessage")?;
    Ok(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_new_fields_go_after_the_strings_and_ints_before_them() {
        // GroupId "g", MemberId null, then the int32s.
        let ack = [2, b'g', 0, 0, 0, 0, 7, 1];
        assert_eq!(request_fields_at(false, &ack), Ok(7));
        assert_eq!(
            request_fields_at(true, &ack),
            Err(Truncated("the request's int32 fields"))
        );
        let fetch = [[1u8, 0].as_slice(), &[0; 24], &[1]].concat();
        assert_eq!(request_fields_at(true, &fetch), Ok(26));
        // ThrottleTimeMs, ErrorCode, ErrorMessage "ab".
        let resp = [0, 0, 0, 0, 0, 0, 3, b'a', b'b', 1];
        assert_eq!(ack_response_timeout_at(&resp), Ok(9));
        assert!(ack_response_timeout_at(&[0, 0, 0, 0, 0, 0, 9, b'a']).is_err());
        assert!(request_fields_at(false, &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff]).is_err());
    }
}
