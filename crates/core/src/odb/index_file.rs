//! The index (.git/index), version 2 (gitformat-index): a header, one entry per path sorted by
//! path bytes, the SHA-1 of it all. Each entry's stat data is what fstat/lstat said about the
//! file just written, so git sees the work tree as clean without re-reading a file. The same
//! bytes as ts/repo/index-file.ts `encodeIndex` (the writer used without the addon).

use super::{ErrorKind, Error, Result};
use super::sys;
use sha1::{Digest, Sha1};
use std::path::Path;

/// The stat fields the index keeps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stat {
    pub ctime_sec: i64,
    pub ctime_nsec: i64,
    pub mtime_sec: i64,
    pub mtime_nsec: i64,
    pub dev: u64,
    pub ino: u64,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
}

pub struct Entry<'a> {
    /// Relative to the work tree, '/'-separated.
    pub path: &'a [u8],
    /// 0o100644, 0o100755, 0o120000 or 0o160000.
    pub mode: u32,
    pub oid: [u8; 20],
    /// None leaves the stat fields zero (git then checks the path itself).
    pub stat: Option<Stat>,
}

const ENTRY_FIXED: usize = 62;
const NAME_MASK: usize = 0xfff;

/// Serializes `entries` (sorted here; two entries with one path are an error).
pub fn encode(entries: &mut [Entry]) -> Result<Vec<u8>> {
    entries.sort_unstable_by(|a, b| a.path.cmp(b.path));
    if let Some(w) = entries.windows(2).find(|w| w[0].path == w[1].path) {
        return Err(Error::bad(format!("the tree has two entries for {}", String::from_utf8_lossy(w[0].path))));
    }
    let total: usize = 12 + entries.iter().map(|e| (ENTRY_FIXED + e.path.len() + 8) & !7).sum::<usize>();
    let mut buf = Vec::with_capacity(total + 20);
    buf.extend_from_slice(b"DIRC");
    buf.extend_from_slice(&2u32.to_be_bytes());
    buf.extend_from_slice(&(entries.len() as u32).to_be_bytes());
    for e in entries.iter() {
        let start = buf.len();
        let s = e.stat.unwrap_or_default();
        // Each field as git keeps it: the low 32 bits.
        for v in [s.ctime_sec as u64, s.ctime_nsec as u64, s.mtime_sec as u64, s.mtime_nsec as u64, s.dev, s.ino, e.mode as u64, s.uid as u64, s.gid as u64, s.size] {
            buf.extend_from_slice(&(v as u32).to_be_bytes());
        }
        buf.extend_from_slice(&e.oid);
        buf.extend_from_slice(&(e.path.len().min(NAME_MASK) as u16).to_be_bytes());
        buf.extend_from_slice(e.path);
        // NUL-padded to a multiple of 8, with at least one NUL.
        buf.resize(start + ((ENTRY_FIXED + e.path.len() + 8) & !7), 0);
    }
    debug_assert_eq!(buf.len(), total);
    let sum = Sha1::digest(&buf);
    buf.extend_from_slice(&sum);
    Ok(buf)
}

/// Writes `bytes` to `path` through `path.lock` and a rename, as git does: a reader never sees
/// half an index, and a lock held by another git process is not broken.
pub fn write_locked(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut lock = path.as_os_str().to_owned();
    lock.push(".lock");
    let lock = std::path::PathBuf::from(lock);
    let mut f = match sys::NewFile::create(&lock) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(Error { kind: ErrorKind::Locked, message: format!("{} exists: another git process is running (if none is, remove it)", lock.display()) });
        }
        Err(e) => return Err(Error::io(&e, format!("creating {}", lock.display()))),
    };
    let done = f.write_all(bytes).and_then(|_| sys::rename(&lock, path));
    drop(f);
    if let Err(e) = done {
        let _ = sys::remove_file(&lock);
        return Err(Error::io(&e, format!("writing {}", path.display())));
    }
    Ok(())
}
