//! One pack and its .idx v2: lookup through the fanout table, entry reads by `pread` (a
//! read-only reader needs no map of the pack: resident memory stays what is being decoded).

use super::sys::{IdxBytes, PackReader};
use super::{Error, Result};
use crate::pack::entry::{parse_header, Header};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

const IDX_MAGIC: [u8; 4] = [0xff, b't', b'O', b'c'];
const FANOUT_AT: usize = 8;
const NAMES_AT: usize = FANOUT_AT + 256 * 4;
const PACK_HEADER: u64 = 12;
const TRAILER: u64 = 20;

pub struct PackFile {
    id: u32,
    pack_path: PathBuf,
    idx_path: PathBuf,
    idx: IdxBytes,
    count: usize,
    file: PackReader,
    size: u64,
    /// Every entry's offset, sorted: where an entry ends is where the next one starts (made
    /// at the first read).
    sorted: Mutex<Option<Arc<Vec<u64>>>>,
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

impl PackFile {
    pub fn open(id: u32, pack_path: &Path, idx_path: &Path) -> Result<PackFile> {
        let bad_idx = |what: &str| Error::bad(format!("{}: {}", idx_path.display(), what));
        // Every read of it below is bounds-checked against its length.
        let idx = IdxBytes::open(idx_path)?;
        if idx.len() < NAMES_AT + 40 || idx[..4] != IDX_MAGIC || be32(&idx, 4) != 2 {
            return Err(bad_idx("not a version 2 pack index (run `git index-pack` on the pack to rebuild it)"));
        }
        let mut prev = 0;
        for i in 0..256 {
            let n = be32(&idx, FANOUT_AT + i * 4);
            if n < prev {
                return Err(bad_idx("the fanout table is not sorted"));
            }
            prev = n;
        }
        let count = prev as usize;
        let min = NAMES_AT + count * 28 + 40;
        if idx.len() < min || (idx.len() - min) % 8 != 0 {
            return Err(bad_idx("truncated or of the wrong size"));
        }
        let file = PackReader::open(pack_path)?;
        let size = file.size();
        let p = PackFile { id, pack_path: pack_path.to_path_buf(), idx_path: idx_path.to_path_buf(), idx, count, file, size, sorted: Mutex::new(None) };
        // The pack must be the one the index was made for: its header count and its trailer.
        let mut head = [0u8; 12];
        let mut trailer = [0u8; 20];
        if size < PACK_HEADER + TRAILER || p.pread(&mut head, 0).is_err() || p.pread(&mut trailer, size - TRAILER).is_err() {
            return Err(Error::bad(format!("{} is truncated", pack_path.display())));
        }
        if &head[..4] != b"PACK" || !matches!(be32(&head, 4), 2 | 3) || be32(&head, 8) as usize != count {
            return Err(Error::bad(format!("{} does not match its index {} (header)", pack_path.display(), idx_path.display())));
        }
        let at = p.idx.len() - 40;
        if p.idx[at..at + 20] != trailer {
            return Err(Error::bad(format!("{} does not match its index {} (checksum)", pack_path.display(), idx_path.display())));
        }
        Ok(p)
    }

    pub fn id(&self) -> u32 {
        self.id
    }

    pub fn count(&self) -> usize {
        self.count
    }

    pub fn idx_path(&self) -> &Path {
        &self.idx_path
    }

    /// The pack's file name, for messages.
    pub fn name(&self) -> String {
        self.pack_path.display().to_string()
    }

    /// The position of `oid` in the index.
    pub fn find(&self, oid: &[u8; 20]) -> Option<usize> {
        let b = oid[0] as usize;
        let mut lo = if b == 0 { 0 } else { be32(&self.idx, FANOUT_AT + (b - 1) * 4) as usize };
        let mut hi = be32(&self.idx, FANOUT_AT + b * 4) as usize;
        let names = &self.idx[NAMES_AT..NAMES_AT + self.count * 20];
        while lo < hi {
            let mid = (lo + hi) / 2;
            match names[mid * 20..mid * 20 + 20].cmp(&oid[..]) {
                std::cmp::Ordering::Equal => return Some(mid),
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
            }
        }
        None
    }

    /// The pack offset of the object at position `i` of the index.
    pub fn offset_at(&self, i: usize) -> Result<u64> {
        let off32 = NAMES_AT + self.count * 24;
        let o = be32(&self.idx, off32 + i * 4);
        if o & 0x8000_0000 == 0 {
            return Ok(o as u64);
        }
        let at = off32 + self.count * 4 + (o & 0x7fff_ffff) as usize * 8;
        if at + 8 > self.idx.len() - 40 {
            return Err(Error::bad(format!("{}: large offset out of range", self.idx_path.display())));
        }
        Ok(u64::from_be_bytes(self.idx[at..at + 8].try_into().unwrap()))
    }

    /// Where the entry at `offset` ends: the next entry's offset, or the trailer.
    fn end_of(&self, offset: u64) -> Result<u64> {
        let sorted = self.sorted_offsets()?;
        let k = sorted.partition_point(|&o| o <= offset);
        if k == 0 || sorted[k - 1] != offset {
            return Err(Error::bad(format!("{}: no entry starts at offset {}", self.name(), offset)));
        }
        Ok(sorted.get(k).copied().unwrap_or(self.size - TRAILER))
    }

    fn sorted_offsets(&self) -> Result<Arc<Vec<u64>>> {
        if let Some(s) = &*self.sorted.lock().unwrap() {
            return Ok(s.clone());
        }
        // Made outside the lock (two first readers may both make it: the same table).
        let mut v = Vec::with_capacity(self.count);
        for i in 0..self.count {
            v.push(self.offset_at(i)?);
        }
        v.sort_unstable();
        let v = Arc::new(v);
        *self.sorted.lock().unwrap() = Some(v.clone());
        Ok(v)
    }

    fn pread(&self, buf: &mut [u8], at: u64) -> std::io::Result<()> {
        self.file.read_exact_at(buf, at)
    }

    /// Reads the whole entry at `offset` into `buf` and parses its header.
    pub fn read_entry(&self, offset: u64, buf: &mut Vec<u8>) -> Result<Header> {
        let end = self.end_of(offset)?;
        if offset < PACK_HEADER || end <= offset || end > self.size - TRAILER {
            return Err(Error::bad(format!("{}: bad entry at offset {}", self.name(), offset)));
        }
        let len = (end - offset) as usize;
        buf.clear();
        buf.try_reserve_exact(len).map_err(|_| Error::bad(format!("{}: cannot allocate {} bytes for the entry at offset {}", self.name(), len, offset)))?;
        buf.resize(len, 0);
        self.pread(buf, offset).map_err(|e| Error::io(&e, format!("reading {} at offset {}", self.name(), offset)))?;
        match parse_header(buf, offset) {
            Ok(Some(h)) => Ok(h),
            Ok(None) => Err(Error::bad(format!("{}: the entry header at offset {} runs past the entry", self.name(), offset))),
            Err(e) => Err(Error::bad(format!("{}: {}", self.name(), e.message))),
        }
    }
}
