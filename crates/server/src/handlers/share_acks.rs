//! The acknowledgement batches of ShareFetch and ShareAcknowledge, checked as Kafka checks them
//! before any share-partition sees them.

use odradek_common::ErrorCode;
use odradek_frontend::RequestContext;

/// An acknowledgement batch as both APIs carry it.
pub(super) struct Ack {
    pub first: i64,
    pub last: i64,
    pub types: Vec<i8>,
}

/// RENEW, the acknowledge type of KIP-1222 (v2, with `IsRenewAck`).
pub(super) const RENEW: i8 = 4;

/// A partition's acknowledgement batches, checked as Kafka checks them (INVALID_REQUEST for the
/// partition): ordered, non-empty, known types; RENEW only in a v2 request saying `IsRenewAck`.
pub(super) fn acks_of(
    ctx: &RequestContext,
    batches: impl Iterator<Item = (i64, i64, Vec<i8>)>,
) -> Result<Vec<Ack>, ErrorCode> {
    checked_acks(ctx.api_version >= 2 && ctx.newer.is_renew_ack, batches)
}

fn checked_acks(
    renew_allowed: bool,
    batches: impl Iterator<Item = (i64, i64, Vec<i8>)>,
) -> Result<Vec<Ack>, ErrorCode> {
    let max_type = if renew_allowed { RENEW } else { RENEW - 1 };
    let mut out: Vec<Ack> = Vec::new();
    for (first, last, types) in batches {
        let bad = first > last
            || types.is_empty()
            // Kafka refuses a batch starting before the previous one's last offset.
            || out.last().is_some_and(|prev| first < prev.last)
            || types.iter().any(|t| !(0..=max_type).contains(t));
        if bad {
            return Err(ErrorCode::InvalidRequest);
        }
        out.push(Ack { first, last, types });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acknowledgement_batches_are_checked_as_kafka_checks_them() {
        let ok = |renew, b: &[(i64, i64, &[i8])]| {
            checked_acks(renew, b.iter().map(|(f, l, t)| (*f, *l, t.to_vec()))).is_ok()
        };
        assert!(ok(false, &[(0, 2, &[1]), (3, 3, &[0, 2, 3][..1])]));
        // Out of order, overlapping, empty types, unknown type.
        assert!(!ok(false, &[(3, 4, &[1]), (0, 1, &[1])]));
        assert!(!ok(false, &[(0, 2, &[1]), (1, 3, &[1])]));
        assert!(!ok(false, &[(0, 2, &[])]));
        assert!(!ok(false, &[(2, 1, &[1])]));
        assert!(!ok(true, &[(0, 0, &[5])]));
        // RENEW only with IsRenewAck (v2), where it may mix with other types.
        assert!(!ok(false, &[(0, 0, &[RENEW])]));
        assert!(ok(true, &[(0, 1, &[RENEW, 1]), (2, 2, &[RENEW])]));
    }
}
