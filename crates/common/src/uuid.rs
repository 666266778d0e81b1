//! Kafka's UUIDs (topic ids, cluster ids, directory ids): 16 bytes, written as 22 characters of
//! URL-safe base64 without padding, exactly as Kafka prints them.

use std::fmt;
use std::str::FromStr;

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// A 128-bit id in Kafka's form.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Uuid(pub [u8; 16]);

impl Uuid {
    /// All zeroes: Kafka's "no id".
    pub const ZERO: Uuid = Uuid([0; 16]);
    /// Kafka's reserved id of the `__cluster_metadata` topic (`AAAAAAAAAAAAAAAAAAAAAQ`).
    pub const METADATA_TOPIC_ID: Uuid = Uuid([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);

    /// A random version-4 UUID, never one of the reserved ids and never one whose text starts
    /// with `-` (which command lines would take for an option), as Kafka's `Uuid.randomUuid`.
    pub fn random() -> Uuid {
        loop {
            let u = Uuid(*uuid::Uuid::new_v4().as_bytes());
            if u != Uuid::ZERO && u != Uuid::METADATA_TOPIC_ID && !u.to_string().starts_with('-') {
                return u;
            }
        }
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// From a byte slice of length 16.
    pub fn from_slice(b: &[u8]) -> Option<Uuid> {
        <[u8; 16]>::try_from(b).ok().map(Uuid)
    }
}

impl fmt::Display for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::with_capacity(22);
        for chunk in self.0.chunks(3) {
            let b = [
                chunk[0],
                *chunk.get(1).unwrap_or(&0),
                *chunk.get(2).unwrap_or(&0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            let chars = chunk.len() + 1;
            for i in 0..chars {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            }
        }
        f.write_str(&out)
    }
}

impl fmt::Debug for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Uuid({self})")
    }
}

/// Why a string is not a Kafka UUID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a Kafka UUID (22 characters of URL-safe base64)")]
pub struct ParseUuidError(pub String);

impl FromStr for Uuid {
    type Err = ParseUuidError;

    fn from_str(s: &str) -> Result<Uuid, ParseUuidError> {
        let err = || ParseUuidError(s.to_string());
        if s.len() != 22 {
            return Err(err());
        }
        let mut bits: u32 = 0;
        let mut nbits = 0;
        let mut out = Vec::with_capacity(16);
        for c in s.bytes() {
            let v = ALPHABET.iter().position(|&a| a == c).ok_or_else(err)? as u32;
            bits = (bits << 6) | v;
            nbits += 6;
            if nbits >= 8 {
                nbits -= 8;
                out.push((bits >> nbits) as u8);
                bits &= (1 << nbits) - 1;
            }
        }
        // 22 characters carry 132 bits: the last 4 must be zero for a canonical encoding.
        if bits != 0 || out.len() != 16 {
            return Err(err());
        }
        Uuid::from_slice(&out).ok_or_else(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_kafka() {
        assert_eq!(Uuid::ZERO.to_string(), "AAAAAAAAAAAAAAAAAAAAAA");
        assert_eq!(
            Uuid::METADATA_TOPIC_ID.to_string(),
            "AAAAAAAAAAAAAAAAAAAAAQ"
        );
        let u = Uuid([0xff; 16]);
        assert_eq!(u.to_string(), "_____________________w");
        assert_eq!("_____________________w".parse::<Uuid>(), Ok(u));
    }

    #[test]
    fn random_ids_round_trip_and_are_valid() {
        for _ in 0..1000 {
            let u = Uuid::random();
            let s = u.to_string();
            assert_eq!(s.len(), 22);
            assert!(!s.starts_with('-'));
            assert_eq!(s.parse::<Uuid>(), Ok(u));
        }
    }

    #[test]
    fn rejects_malformed_text() {
        for bad in [
            "",
            "short",
            "AAAAAAAAAAAAAAAAAAAAA=",
            "AAAAAAAAAAAAAAAAAAAAAB",
            "AAAAAAAAAAAAAAAAAAAAAAA",
        ] {
            assert!(bad.parse::<Uuid>().is_err(), "{bad}");
        }
    }
}
