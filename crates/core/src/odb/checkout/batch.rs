//! A checkout's units handed to writers that share no memory with the plan (the WebAssembly
//! core's worker instances, one per thread): the plan encodes a batch of units as bytes
//! (`Plan::take_batch`), a writer with a database of its own writes them (`write_batch`) and
//! answers with each entry's stat and size, which the plan records (`Plan::record_batch`) for
//! the index, exactly as if it had written them itself.
//!
//! Little-endian throughout. A batch: units, each `dir_len u32, dir, n u32` then n entries of
//! `index u32, mode u32, oid [20], name_at u32, path_len u32, path`. An answer: one record of
//! `RESULT_LEN` bytes per entry: `index u32, has_stat u8, ctime_sec i64, ctime_nsec i64,
//! mtime_sec i64, mtime_nsec i64, dev u64, ino u64, uid u32, gid u32, size u64, bytes u64`.

use super::{write_unit, Item, Plan, Progress, Written};
use crate::odb::index_file::Stat;
use crate::odb::{Error, Odb, Result};
use std::path::Path;
use std::sync::atomic::Ordering;

const RESULT_LEN: usize = 4 + 1 + 8 * 4 + 8 + 8 + 4 + 4 + 8 + 8;

fn corrupt(what: &str) -> Error {
    Error::state(format!("a checkout batch is malformed: {}", what))
}

/// Reads little-endian fields off the front of a byte slice.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.0.len() < n {
            return Err(corrupt("it ends early"));
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    fn u32(&mut self) -> Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64> {
        let mut a = [0; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(a))
    }
    fn bytes(&mut self) -> Result<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_le_bytes());
    out.extend_from_slice(b);
}

impl Plan {
    /// The next units, at least `entries` entries of them (whole units), encoded; None when
    /// every unit is handed out. They count as written once `record_batch` has their answer.
    pub fn take_batch(&mut self, entries: usize) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        let mut taken = 0;
        while taken < entries.max(1) && self.next < self.units.len() {
            let (d, list) = &self.units[self.next];
            put_bytes(&mut out, &self.dirs[*d as usize]);
            out.extend_from_slice(&(list.len() as u32).to_le_bytes());
            for &i in list {
                let it = &self.items[i as usize];
                out.extend_from_slice(&i.to_le_bytes());
                out.extend_from_slice(&it.mode.to_le_bytes());
                out.extend_from_slice(&it.oid);
                out.extend_from_slice(&(it.name_at as u32).to_le_bytes());
                put_bytes(&mut out, &it.path);
            }
            taken += list.len();
            self.next += 1;
        }
        self.outstanding += taken;
        if taken == 0 {
            None
        } else {
            Some(out)
        }
    }

    /// Records a writer's answer to a batch: the stats the index gets, the bytes, the progress.
    pub fn record_batch(&mut self, answer: &[u8], progress: &Progress) -> Result<()> {
        if answer.len() % RESULT_LEN != 0 {
            return Err(corrupt("an answer's length is not a whole number of entries"));
        }
        let mut written: Vec<Written> = Vec::with_capacity(answer.len() / RESULT_LEN);
        let mut r = Reader(answer);
        while !r.0.is_empty() {
            let i = r.u32()?;
            let has = r.take(1)?[0] != 0;
            let st = Stat {
                ctime_sec: r.u64()? as i64,
                ctime_nsec: r.u64()? as i64,
                mtime_sec: r.u64()? as i64,
                mtime_nsec: r.u64()? as i64,
                dev: r.u64()?,
                ino: r.u64()?,
                uid: r.u32()?,
                gid: r.u32()?,
                size: r.u64()?,
            };
            if i as usize >= self.items.len() {
                return Err(corrupt("an answer names an entry the plan does not have"));
            }
            written.push((i, if has { Some(st) } else { None }, r.u64()?));
        }
        let n = written.len();
        if n > self.outstanding {
            return Err(corrupt("more entries answered than were handed out"));
        }
        self.outstanding -= n;
        self.record(written);
        progress.done.fetch_add(n as u64, Ordering::Relaxed);
        Ok(())
    }
}

/// Writes the units of a batch into `work_tree` (every entry, or the first error), reading
/// their blobs from `odb`: the answer `Plan::record_batch` takes.
pub fn write_batch(odb: &Odb, work_tree: &Path, batch: &[u8]) -> Result<Vec<u8>> {
    let progress = Progress::default();
    let mut r = Reader(batch);
    let mut out = Vec::new();
    while !r.0.is_empty() {
        let dir = r.bytes()?.to_vec();
        let n = r.u32()? as usize;
        let mut items = Vec::with_capacity(n.min(r.0.len()));
        let mut global = Vec::with_capacity(n.min(r.0.len()));
        for _ in 0..n {
            global.push(r.u32()?);
            let mode = r.u32()?;
            let mut oid = [0; 20];
            oid.copy_from_slice(r.take(20)?);
            let name_at = r.u32()? as usize;
            let path = r.bytes()?.to_vec();
            if name_at > path.len() {
                return Err(corrupt("a name starts past its path"));
            }
            items.push(Item { path, name_at, dir: 0, mode, oid });
        }
        let list: Vec<u32> = (0..n as u32).collect();
        for (j, st, bytes) in write_unit(odb, work_tree, &dir, &items, &list, &progress)? {
            let s = st.unwrap_or_default();
            out.extend_from_slice(&global[j as usize].to_le_bytes());
            out.push(st.is_some() as u8);
            for v in [s.ctime_sec as u64, s.ctime_nsec as u64, s.mtime_sec as u64, s.mtime_nsec as u64, s.dev, s.ino] {
                out.extend_from_slice(&v.to_le_bytes());
            }
            out.extend_from_slice(&s.uid.to_le_bytes());
            out.extend_from_slice(&s.gid.to_le_bytes());
            out.extend_from_slice(&s.size.to_le_bytes());
            out.extend_from_slice(&bytes.to_le_bytes());
        }
    }
    Ok(out)
}
