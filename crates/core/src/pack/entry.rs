//! Pack entries: the object types, the per-entry header (type, size, delta base) and what the
//! indexer remembers of each entry.

use crate::error::{Error, Result};

pub const OBJ_COMMIT: u8 = 1;
pub const OBJ_TREE: u8 = 2;
pub const OBJ_BLOB: u8 = 3;
pub const OBJ_TAG: u8 = 4;
pub const OBJ_OFS_DELTA: u8 = 6;
pub const OBJ_REF_DELTA: u8 = 7;

/// Object sizes at or above this are refused (git's sizes are `unsigned long`; this keeps every
/// size arithmetic in range).
pub const MAX_OBJECT_SIZE: u64 = 1 << 62;

pub fn is_delta(kind: u8) -> bool {
    kind == OBJ_OFS_DELTA || kind == OBJ_REF_DELTA
}

/// "commit", "tree", "blob", "tag" for the four object types.
pub fn type_name(kind: u8) -> &'static str {
    match kind {
        OBJ_COMMIT => "commit",
        OBJ_TREE => "tree",
        OBJ_BLOB => "blob",
        OBJ_TAG => "tag",
        OBJ_OFS_DELTA => "ofs-delta",
        OBJ_REF_DELTA => "ref-delta",
        _ => "unknown",
    }
}

/// The delta base an entry header names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BaseRef {
    None,
    /// OFS_DELTA: the absolute pack offset of the base entry.
    Offset(u64),
    /// REF_DELTA: the base's object id.
    Id([u8; 20]),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub kind: u8,
    /// The inflated size: the object's, or the delta's for delta entries.
    pub size: u64,
    pub base: BaseRef,
    /// Header bytes; the zlib stream follows.
    pub len: usize,
}

/// The header's byte at `i` (then `i` moves past it); when `buf` ends first, the enclosing
/// function returns `Ok(None)`: the header is not all here yet.
macro_rules! next_byte {
    ($buf:expr, $i:ident) => {
        match $buf.get($i) {
            Some(&c) => {
                $i += 1;
                c
            }
            None => return Ok(None),
        }
    };
}

/// Parses the entry header at the start of `buf` (the entry begins at pack `offset`).
/// `Ok(None)` when `buf` ends inside the header.
pub fn parse_header(buf: &[u8], offset: u64) -> Result<Option<Header>> {
    let mut i = 0;
    let c = next_byte!(buf, i);
    let kind = (c >> 4) & 7;
    let mut size = (c & 15) as u64;
    let mut shift = 4u32;
    let mut more = c & 0x80 != 0;
    while more {
        let c = next_byte!(buf, i);
        if shift > 60 {
            return Err(Error::at(offset, "object size does not fit in 62 bits"));
        }
        let add = ((c & 0x7f) as u128) << shift;
        if size as u128 + add >= MAX_OBJECT_SIZE as u128 {
            return Err(Error::at(offset, "object size does not fit in 62 bits"));
        }
        size += add as u64;
        shift += 7;
        more = c & 0x80 != 0;
    }
    if size >= MAX_OBJECT_SIZE {
        return Err(Error::at(offset, "object size does not fit in 62 bits"));
    }
    let base = match kind {
        OBJ_COMMIT | OBJ_TREE | OBJ_BLOB | OBJ_TAG => BaseRef::None,
        OBJ_REF_DELTA => {
            if buf.len() < i + 20 {
                return Ok(None);
            }
            let mut id = [0u8; 20];
            id.copy_from_slice(&buf[i..i + 20]);
            i += 20;
            BaseRef::Id(id)
        }
        OBJ_OFS_DELTA => {
            // Big-endian base-128 with an implied +1 per continuation byte (git's encoding).
            let c = next_byte!(buf, i);
            let mut back = (c & 127) as u64;
            let mut more = c & 0x80 != 0;
            while more {
                let c = next_byte!(buf, i);
                back += 1;
                if back >> 56 != 0 {
                    return Err(Error::at(offset, "offset value overflow for delta base object"));
                }
                back = (back << 7) + (c & 127) as u64;
                more = c & 0x80 != 0;
            }
            if back == 0 || back >= offset {
                return Err(Error::at(offset, "delta base offset is out of bound"));
            }
            BaseRef::Offset(offset - back)
        }
        _ => return Err(Error::at(offset, format!("unknown object type {}", kind))),
    };
    Ok(Some(Header { kind, size, base, len: i }))
}

/// The header git writes for a whole object of `kind` and `size` (appended bases of a thin pack).
pub fn encode_header(kind: u8, size: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(10);
    let mut c = (kind << 4) | (size & 15) as u8;
    let mut s = size >> 4;
    while s != 0 {
        out.push(c | 0x80);
        c = (s & 0x7f) as u8;
        s >>= 7;
    }
    out.push(c);
    out
}

/// What the indexer keeps per entry (32 bytes; memory grows with the object count only).
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    pub offset: u64,
    /// Inflated size from the header.
    pub size: u64,
    /// OFS_DELTA: index of the base entry. REF_DELTA: index into the scan's `ref_bases`.
    pub base: u32,
    pub crc32: u32,
    pub hdr_len: u8,
    pub kind: u8,
}

impl Entry {
    pub fn data_offset(&self) -> u64 {
        self.offset + self.hdr_len as u64
    }
}

/// The `"<type> <size>\0"` prefix an object id hashes (in a buffer; its length).
pub fn object_header(kind: u8, size: u64) -> ([u8; 32], usize) {
    let mut buf = [0u8; 32];
    let name = type_name(kind).as_bytes();
    buf[..name.len()].copy_from_slice(name);
    let mut n = name.len();
    buf[n] = b' ';
    n += 1;
    let mut digits = [0u8; 20];
    let mut d = 0;
    let mut v = size;
    loop {
        digits[d] = b'0' + (v % 10) as u8;
        d += 1;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    for k in (0..d).rev() {
        buf[n] = digits[k];
        n += 1;
    }
    buf[n] = 0;
    (buf, n + 1)
}

/// Deflate's largest expansion: 258 bytes from two bits, 1032 to 1.
const MAX_RATIO: usize = 1032;

/// The most bytes a zlib stream in `input_len` bytes can inflate to.
pub fn max_inflated(input_len: usize) -> usize {
    input_len.saturating_mul(MAX_RATIO).saturating_add(MAX_RATIO)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip_and_bounds() {
        for (kind, size) in [(OBJ_BLOB, 0u64), (OBJ_COMMIT, 15), (OBJ_TREE, 16), (OBJ_TAG, 1 << 40), (OBJ_BLOB, (1 << 62) - 1)] {
            let h = encode_header(kind, size);
            let p = parse_header(&h, 12).unwrap().unwrap();
            assert_eq!((p.kind, p.size, p.len, p.base), (kind, size, h.len(), BaseRef::None));
            // Every proper prefix asks for more bytes.
            for cut in 0..h.len() {
                assert_eq!(parse_header(&h[..cut], 12).unwrap(), None);
            }
        }
        let too_big = [0xbf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f];
        assert_eq!(parse_header(&too_big, 12).unwrap_err().kind, crate::error::ErrorKind::BadPack);
        assert!(parse_header(&[0x50], 12).unwrap_err().message.contains("unknown object type 5"));
    }

    #[test]
    fn object_headers() {
        for (kind, size, want) in [(OBJ_BLOB, 0u64, "blob 0\0"), (OBJ_COMMIT, 1234, "commit 1234\0"), (OBJ_TREE, u64::MAX, "tree 18446744073709551615\0")] {
            let (b, n) = object_header(kind, size);
            assert_eq!(&b[..n], want.as_bytes());
        }
    }

    #[test]
    fn ofs_delta_offsets() {
        // 0x80|1 then 0x00: back = ((1 + 1) << 7) + 0 = 256.
        let h = [0x60, 0x81, 0x00];
        let p = parse_header(&h, 1000).unwrap().unwrap();
        assert_eq!(p.base, BaseRef::Offset(1000 - 256));
        assert!(parse_header(&h, 256).unwrap_err().message.contains("out of bound"));
        assert!(parse_header(&[0x60, 0x00], 100).unwrap_err().message.contains("out of bound"));
        let overflow = [0x60, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f];
        assert!(parse_header(&overflow, 1 << 40).unwrap_err().message.contains("overflow"));
    }
}
