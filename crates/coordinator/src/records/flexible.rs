//! Kafka's flexible encoding (KIP-482), as record values of version 0 use it: unsigned varints,
//! compact strings and arrays (length + 1, 0 for null), tagged fields at the end of each struct.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::{need, RecordError, Result};

pub(crate) fn put_uvarint(b: &mut BytesMut, mut v: u32) {
    while v >= 0x80 {
        b.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    b.put_u8(v as u8);
}

pub(crate) fn get_uvarint(b: &mut Bytes, what: &str) -> Result<u32> {
    let mut v: u32 = 0;
    for shift in (0..35).step_by(7) {
        need(b, 1, what)?;
        let byte = b.get_u8();
        v |= u32::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(RecordError(format!("{what}: varint too long")))
}

pub(crate) fn put_compact_str(b: &mut BytesMut, s: Option<&str>) {
    match s {
        None => put_uvarint(b, 0),
        Some(s) => {
            put_uvarint(b, s.len() as u32 + 1);
            b.put_slice(s.as_bytes());
        }
    }
}

pub(crate) fn get_compact_str(b: &mut Bytes, what: &str) -> Result<Option<String>> {
    let n = get_uvarint(b, what)?;
    if n == 0 {
        return Ok(None);
    }
    let len = n as usize - 1;
    need(b, len, what)?;
    String::from_utf8(b.split_to(len).to_vec())
        .map(Some)
        .map_err(|_| RecordError(format!("{what} is not UTF-8")))
}

/// A compact array's length (a null array reads as empty).
pub(crate) fn get_compact_len(b: &mut Bytes, what: &str) -> Result<usize> {
    let n = get_uvarint(b, what)? as usize;
    let len = n.saturating_sub(1);
    // Each element takes at least one byte: a length beyond the buffer is corrupt.
    need(b, len, what)?;
    Ok(len)
}

/// Skips the tagged fields at the end of a struct.
pub(crate) fn skip_tags(b: &mut Bytes) -> Result<()> {
    let n = get_uvarint(b, "tagged fields")?;
    for _ in 0..n {
        get_uvarint(b, "tag")?;
        let size = get_uvarint(b, "tag size")? as usize;
        need(b, size, "tagged field")?;
        b.advance(size);
    }
    Ok(())
}
