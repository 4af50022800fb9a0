//! The files that index a pack, byte for byte as git writes them (gitformat-pack):
//! `.idx` version 2 and the `.rev` reverse index. Their checksums are plain SHA-1: they guard
//! against disk corruption, not attacks, and git computes the same digest.

use sha1::{Digest, Sha1};
use std::io::{self, Write};

/// One object as the index lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdxEntry {
    pub oid: [u8; 20],
    pub offset: u64,
    pub crc32: u32,
}

/// Offsets above this go to the 64-bit table (git's default `off32_limit`).
const OFF32_LIMIT: u64 = 0x7fff_ffff;

/// Objects in index order, however they are stored.
pub trait IdxList {
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The k-th object in index order.
    fn get(&self, k: usize) -> IdxEntry;
}

impl IdxList for [IdxEntry] {
    fn len(&self) -> usize {
        <[IdxEntry]>::len(self)
    }
    fn get(&self, k: usize) -> IdxEntry {
        self[k]
    }
}

/// Sorts `entries` into index order: by object id, duplicates by pack offset (git sorts with a
/// stable sort over pack order).
pub fn sort(entries: &mut [IdxEntry]) {
    entries.sort_unstable_by(|a, b| a.oid.cmp(&b.oid).then(a.offset.cmp(&b.offset)));
}

/// Index order of objects stored in pack order (`oids[i]` and `offsets(i)`): positions sorted
/// by id, duplicates by offset. Four bytes per object.
pub fn order(oids: &[[u8; 20]], offset: impl Fn(usize) -> u64) -> Vec<u32> {
    let mut order: Vec<u32> = (0..oids.len() as u32).collect();
    order.sort_unstable_by(|&a, &b| oids[a as usize].cmp(&oids[b as usize]).then(offset(a as usize).cmp(&offset(b as usize))));
    order
}

/// A writer that checksums what passes through it; `finish` appends the checksum.
struct Summed<W: Write> {
    w: W,
    sum: Sha1,
}

impl<W: Write> Summed<W> {
    fn put(&mut self, b: &[u8]) -> io::Result<()> {
        self.sum.update(b);
        self.w.write_all(b)
    }
    fn finish(mut self) -> io::Result<W> {
        let sum: [u8; 20] = self.sum.finalize().into();
        self.w.write_all(&sum)?;
        Ok(self.w)
    }
}

/// Writes the `.idx` v2 for `entries` (already in index order, see `sort`) to `w`.
pub fn write_idx<W: Write, L: IdxList + ?Sized>(w: W, entries: &L, pack_checksum: &[u8; 20]) -> io::Result<W> {
    let mut out = Summed { w, sum: Sha1::new() };
    out.put(&[0xff, b't', b'O', b'c', 0, 0, 0, 2])?;
    let n = entries.len();
    let mut fanout = [0u32; 256];
    for k in 0..n {
        fanout[entries.get(k).oid[0] as usize] += 1;
    }
    let mut total = 0u32;
    for count in fanout {
        total += count;
        out.put(&total.to_be_bytes())?;
    }
    for k in 0..n {
        out.put(&entries.get(k).oid)?;
    }
    for k in 0..n {
        out.put(&entries.get(k).crc32.to_be_bytes())?;
    }
    let mut next_large = 0u32;
    for k in 0..n {
        let offset = entries.get(k).offset;
        let v = if offset > OFF32_LIMIT {
            next_large += 1;
            0x8000_0000 | (next_large - 1)
        } else {
            offset as u32
        };
        out.put(&v.to_be_bytes())?;
    }
    for k in 0..n {
        let offset = entries.get(k).offset;
        if offset > OFF32_LIMIT {
            out.put(&offset.to_be_bytes())?;
        }
    }
    out.put(pack_checksum)?;
    out.finish()
}

/// Writes the `.rev` for `entries` (in index order) to `w`: for each object in pack order,
/// its position in the index.
pub fn write_rev<W: Write, L: IdxList + ?Sized>(w: W, entries: &L, pack_checksum: &[u8; 20]) -> io::Result<W> {
    let mut order: Vec<u32> = (0..entries.len() as u32).collect();
    order.sort_unstable_by_key(|&k| entries.get(k as usize).offset);
    let mut out = Summed { w, sum: Sha1::new() };
    out.put(b"RIDX")?;
    out.put(&1u32.to_be_bytes())?; // version
    out.put(&1u32.to_be_bytes())?; // hash function: SHA-1
    for i in order {
        out.put(&i.to_be_bytes())?;
    }
    out.put(pack_checksum)?;
    out.finish()
}

/// The `.idx` v2 bytes (see `write_idx`).
pub fn idx_bytes(entries: &[IdxEntry], pack_checksum: &[u8; 20]) -> Vec<u8> {
    write_idx(Vec::new(), entries, pack_checksum).expect("writing to memory")
}

/// The `.rev` bytes (see `write_rev`).
pub fn rev_bytes(entries: &[IdxEntry], pack_checksum: &[u8; 20]) -> Vec<u8> {
    write_rev(Vec::new(), entries, pack_checksum).expect("writing to memory")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn be32(b: &[u8], at: usize) -> u32 {
        u32::from_be_bytes(b[at..at + 4].try_into().unwrap())
    }

    #[test]
    fn large_offsets_go_to_the_64_bit_table_in_index_order() {
        let mut entries = vec![
            IdxEntry { oid: [0x30; 20], offset: 0x8000_0000, crc32: 3 },
            IdxEntry { oid: [0x10; 20], offset: 12, crc32: 1 },
            IdxEntry { oid: [0x20; 20], offset: 0x1_2345_6789, crc32: 2 },
            IdxEntry { oid: [0x40; 20], offset: 0x7fff_ffff, crc32: 4 },
        ];
        sort(&mut entries);
        let idx = idx_bytes(&entries, &[0xaa; 20]);
        let n = 4;
        assert_eq!(&idx[..8], &[0xff, b't', b'O', b'c', 0, 0, 0, 2]);
        assert_eq!(be32(&idx, 8 + 0x10 * 4), 1); // fanout[0x10]
        assert_eq!(be32(&idx, 8 + 0x0f * 4), 0);
        assert_eq!(be32(&idx, 8 + 255 * 4), 4);
        let crc = 8 + 1024 + n * 20;
        assert_eq!((0..n).map(|i| be32(&idx, crc + 4 * i)).collect::<Vec<_>>(), vec![1, 2, 3, 4]);
        let off = crc + n * 4;
        let small: Vec<u32> = (0..n).map(|i| be32(&idx, off + 4 * i)).collect();
        assert_eq!(small, vec![12, 0x8000_0000, 0x8000_0001, 0x7fff_ffff]);
        let large = off + n * 4;
        assert_eq!(u64::from_be_bytes(idx[large..large + 8].try_into().unwrap()), 0x1_2345_6789);
        assert_eq!(u64::from_be_bytes(idx[large + 8..large + 16].try_into().unwrap()), 0x8000_0000);
        assert_eq!(&idx[large + 16..large + 36], &[0xaa; 20]);
        assert_eq!(idx.len(), large + 16 + 40);
        let sum: [u8; 20] = Sha1::digest(&idx[..idx.len() - 20]).into();
        assert_eq!(&idx[idx.len() - 20..], &sum);

        let rev = rev_bytes(&entries, &[0xaa; 20]);
        // Pack order: 12 (idx 0), 0x7fffffff (3), 0x80000000 (2), 0x123456789 (1).
        assert_eq!(&rev[..12], b"RIDX\0\0\0\x01\0\0\0\x01");
        assert_eq!((0..4).map(|i| be32(&rev, 12 + 4 * i)).collect::<Vec<_>>(), vec![0, 3, 2, 1]);
    }

    #[test]
    fn empty_index() {
        let idx = idx_bytes(&[], &[0; 20]);
        assert_eq!(idx.len(), 8 + 1024 + 40);
        assert!(idx[8..8 + 1024].iter().all(|&b| b == 0));
    }
}
