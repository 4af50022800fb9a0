//! git's delta format: two sizes (base, result), then copy-from-base and insert instructions.
//! Every instruction is bounds-checked; a delta that does not rebuild exactly the announced
//! result from exactly the given base is an error, never a short or padded object.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeltaError {
    /// The delta ends inside its header or an instruction.
    Truncated,
    /// The base is not the size the delta was made against.
    BaseSize { expected: u64, actual: u64 },
    /// A copy reaches past the end of the base.
    CopyOutOfBounds { offset: u64, len: u64, base: u64 },
    /// An instruction writes past the announced result size.
    Overflow { result: u64 },
    /// Opcode 0 is reserved.
    Reserved,
    /// The instructions end before the announced result size is reached.
    Short { written: u64, result: u64 },
    /// The result size cannot be allocated.
    TooLarge(u64),
}

impl fmt::Display for DeltaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeltaError::Truncated => write!(f, "delta data ends inside an instruction"),
            DeltaError::BaseSize { expected, actual } => {
                write!(f, "delta was made against a {}-byte base, the base has {} bytes", expected, actual)
            }
            DeltaError::CopyOutOfBounds { offset, len, base } => {
                write!(f, "delta copies {} bytes at offset {} of a {}-byte base", len, offset, base)
            }
            DeltaError::Overflow { result } => write!(f, "delta writes past its {}-byte result", result),
            DeltaError::Reserved => write!(f, "delta uses the reserved opcode 0"),
            DeltaError::Short { written, result } => write!(f, "delta rebuilds {} of its {} result bytes", written, result),
            DeltaError::TooLarge(n) => write!(f, "delta claims a {}-byte result, more than its instructions can rebuild (or than can be allocated)", n),
        }
    }
}

/// A little-endian base-128 size from the delta header.
fn size_at(d: &[u8], pos: &mut usize) -> Result<u64, DeltaError> {
    let mut size = 0u64;
    let mut shift = 0u32;
    loop {
        let c = *d.get(*pos).ok_or(DeltaError::Truncated)?;
        *pos += 1;
        if shift > 63 {
            return Err(DeltaError::TooLarge(u64::MAX));
        }
        size |= ((c & 0x7f) as u64).checked_shl(shift).unwrap_or(0);
        shift += 7;
        if c & 0x80 == 0 {
            return Ok(size);
        }
    }
}

/// The (base size, result size) a delta announces.
pub fn sizes(delta: &[u8]) -> Result<(u64, u64), DeltaError> {
    let mut pos = 0;
    let base = size_at(delta, &mut pos)?;
    let result = size_at(delta, &mut pos)?;
    Ok((base, result))
}

/// Rebuilds the object `delta` describes from `base`.
pub fn apply(base: &[u8], delta: &[u8]) -> Result<Vec<u8>, DeltaError> {
    let mut out = Vec::new();
    apply_into(base, delta, &mut out)?;
    Ok(out)
}

/// As `apply`, into `out` (its contents replaced; its allocation reused when large enough).
pub fn apply_into(base: &[u8], delta: &[u8], out: &mut Vec<u8>) -> Result<(), DeltaError> {
    let mut pos = 0;
    let base_size = size_at(delta, &mut pos)?;
    let result_size = size_at(delta, &mut pos)?;
    if base_size != base.len() as u64 {
        return Err(DeltaError::BaseSize { expected: base_size, actual: base.len() as u64 });
    }
    // Each instruction byte rebuilds at most min(base, 16 MiB) bytes (a copy) or one (an
    // insert): a larger claim is refused before anything is reserved for it.
    let per_byte = (base.len() as u64).clamp(1, 0xff_ffff);
    if result_size > ((delta.len() - pos) as u64).saturating_mul(per_byte) {
        return Err(DeltaError::TooLarge(result_size));
    }
    out.clear();
    let cap = usize::try_from(result_size).map_err(|_| DeltaError::TooLarge(result_size))?;
    out.try_reserve_exact(cap).map_err(|_| DeltaError::TooLarge(result_size))?;
    while pos < delta.len() {
        let op = delta[pos];
        pos += 1;
        if op & 0x80 != 0 {
            // Copy: which offset and size bytes follow is in the low seven bits.
            let mut offset = 0u64;
            let mut len = 0u64;
            for i in 0..4 {
                if op & (1 << i) != 0 {
                    offset |= (*delta.get(pos).ok_or(DeltaError::Truncated)? as u64) << (8 * i);
                    pos += 1;
                }
            }
            for i in 0..3 {
                if op & (0x10 << i) != 0 {
                    len |= (*delta.get(pos).ok_or(DeltaError::Truncated)? as u64) << (8 * i);
                    pos += 1;
                }
            }
            if len == 0 {
                len = 0x10000;
            }
            if offset + len > base.len() as u64 {
                return Err(DeltaError::CopyOutOfBounds { offset, len, base: base.len() as u64 });
            }
            if out.len() as u64 + len > result_size {
                return Err(DeltaError::Overflow { result: result_size });
            }
            out.extend_from_slice(&base[offset as usize..(offset + len) as usize]);
        } else if op != 0 {
            let len = op as usize;
            let bytes = delta.get(pos..pos + len).ok_or(DeltaError::Truncated)?;
            if (out.len() + len) as u64 > result_size {
                return Err(DeltaError::Overflow { result: result_size });
            }
            out.extend_from_slice(bytes);
            pos += len;
        } else {
            return Err(DeltaError::Reserved);
        }
    }
    if out.len() as u64 != result_size {
        return Err(DeltaError::Short { written: out.len() as u64, result: result_size });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::varint;

    fn delta(base: u64, result: u64, ops: &[u8]) -> Vec<u8> {
        let mut d = Vec::new();
        varint(base, &mut d);
        varint(result, &mut d);
        d.extend_from_slice(ops);
        d
    }

    #[test]
    fn copies_and_inserts() {
        let base = b"hello, delta world";
        // copy 5 at 0, insert "!!", copy 5 at 13 (offset byte 13, size byte 5)
        let d = delta(18, 12, &[0x90, 5, 2, b'!', b'!', 0x91, 13, 5]);
        assert_eq!(apply(base, &d).unwrap(), b"hello!!world");
        assert_eq!(sizes(&d).unwrap(), (18, 12));
    }

    #[test]
    fn size_zero_copy_means_64k() {
        let base = vec![3u8; 0x10000];
        let d = delta(0x10000, 0x10000, &[0x80]);
        assert_eq!(apply(&base, &d).unwrap().len(), 0x10000);
    }

    #[test]
    fn copy_out_of_bounds() {
        let base = b"0123456789";
        let d = delta(10, 4, &[0x91, 8, 4]);
        assert_eq!(apply(base, &d), Err(DeltaError::CopyOutOfBounds { offset: 8, len: 4, base: 10 }));
        // A huge offset must not wrap around.
        let d = delta(10, 4, &[0x9f, 0xff, 0xff, 0xff, 0xff, 4]);
        assert!(matches!(apply(base, &d), Err(DeltaError::CopyOutOfBounds { .. })));
    }

    #[test]
    fn insert_past_end_and_truncated_insert() {
        let d = delta(0, 2, &[3, b'a', b'b', b'c']);
        assert_eq!(apply(b"", &d), Err(DeltaError::Overflow { result: 2 }));
        let d = delta(0, 2, &[3, b'a']);
        assert_eq!(apply(b"", &d), Err(DeltaError::Truncated));
        let d = delta(4, 8, &[0x90, 4, 0x90, 4, 0x90, 4]);
        assert_eq!(apply(b"abcd", &d), Err(DeltaError::Overflow { result: 8 }));
    }

    #[test]
    fn size_mismatches() {
        let d = delta(5, 2, &[2, b'x', b'y']);
        assert_eq!(apply(b"abcd", &d), Err(DeltaError::BaseSize { expected: 5, actual: 4 }));
        let d = delta(4, 5, &[2, b'x', b'y']);
        assert_eq!(apply(b"abcd", &d), Err(DeltaError::Short { written: 2, result: 5 }));
        assert_eq!(apply(b"abcd", &delta(4, 1, &[0])), Err(DeltaError::Reserved));
        assert_eq!(apply(b"abcd", &[0x84]), Err(DeltaError::Truncated));
        let d = delta(4, 1 << 60, &[]);
        assert_eq!(apply(b"abcd", &d), Err(DeltaError::TooLarge(1 << 60)));
        // A claim past what the instructions can rebuild is refused before anything is
        // reserved: 3 instruction bytes against a 4-byte base rebuild at most 12 bytes.
        assert_eq!(apply(b"abcd", &delta(4, 13, &[0x90, 4, 0x80])), Err(DeltaError::TooLarge(13)));
        assert_eq!(apply(b"", &delta(0, 1 << 32, &[0x80; 64])), Err(DeltaError::TooLarge(1 << 32)));
        // A 1-byte copy of a 64 KiB base is within the bound (a real delta bomb's shape).
        let base = vec![7u8; 0x10000];
        assert_eq!(apply(&base, &delta(0x10000, 0x30000, &[0x80, 0x80, 0x80])).unwrap().len(), 0x30000);
    }
}
