//! The object database of a repository: every pack under objects/pack (looked up through its
//! .idx v2), loose objects, and the object directories objects/info/alternates names. Reading
//! resolves delta chains (OFS and REF deltas) with a bounded cache of delta bases, as git does.
//!
//! On top of it: `checkout` (a tree into an empty work tree, in parallel, and the index v2 for
//! it: `index_file`), `connect` (is everything some tips reach here?) and `parse` (commits,
//! trees and tags, with the path checks a checkout needs). Inflate, delta application and the
//! entry header are the pack module's.

mod cache;
pub mod checkout;
pub mod connect;
pub mod fast_map;
pub mod index_file;
pub(crate) mod loose;
pub(crate) mod packfile;
pub mod parse;
pub(crate) mod sys;
mod zlib;

pub use crate::error::{ErrorKind, Error, Result};

use crate::pack::delta;
use crate::pack::entry::BaseRef;
use crate::oid::hex;
use cache::BaseCache;
use packfile::PackFile;
use zlib::{EntryInflater, Failure};
use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, RwLock};

/// Bytes of delta bases kept. git's core.deltaBaseCacheLimit is 96 MiB; measured on a
/// 240k-object history, a checkout gains nothing past 0 and a full connectivity walk nothing
/// past 16 MiB (each HEAD blob has a chain of its own; trees share theirs), and every cached
/// byte is resident.
pub const DEFAULT_CACHE_BYTES: usize = 16 << 20;
/// Longest delta chain followed (git's pack.depth tops out at 4095).
const MAX_DELTA_CHAIN: usize = 10_000;
/// How deep objects/info/alternates may nest (git's limit too).
const MAX_ALTERNATE_DEPTH: usize = 5;
/// How many times a REF_DELTA may send us to another pack for its base.
const MAX_CROSS_PACK: usize = 64;

/// A whole object: its type (1 commit, 2 tree, 3 blob, 4 tag) and content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    pub kind: u8,
    pub data: Vec<u8>,
}

/// Per-thread state of readers: the inflater (not shareable) and the buffer entries are read into.
struct Scratch {
    inflater: EntryInflater,
    entry: Vec<u8>,
}

thread_local! {
    static SCRATCH: RefCell<Option<Scratch>> = const { RefCell::new(None) };
}

/// Entry buffers larger than this are let go after use rather than kept for the next read
/// (kept ones save the page faults of a fresh mapping per big object).
const KEEP_MAX: usize = 16 << 20;

fn with_scratch<T>(f: impl FnOnce(&mut Scratch) -> T) -> T {
    SCRATCH.with(|cell| {
        // A reader on this thread already holds it (cannot happen: reads do not nest through
        // here), or it is the first use: a fresh one either way.
        let taken = cell.try_borrow_mut().ok().and_then(|mut s| s.take());
        let mut s = taken.unwrap_or_else(|| Scratch { inflater: EntryInflater::new(), entry: Vec::new() });
        let out = f(&mut s);
        if s.entry.capacity() > KEEP_MAX {
            s.entry = Vec::new();
        }
        if let Ok(mut slot) = cell.try_borrow_mut() {
            *slot = Some(s);
        }
        out
    })
}

pub struct Odb {
    git_dir: PathBuf,
    objects_dirs: Vec<PathBuf>,
    /// Newest first: recent objects are asked for most.
    packs: RwLock<Vec<Arc<PackFile>>>,
    cache: BaseCache,
    next_id: AtomicU32,
    closed: AtomicBool,
}

impl Odb {
    /// The objects of the repository at `git_dir` (its objects/ and their alternates).
    pub fn open(git_dir: &Path) -> Result<Odb> {
        Odb::open_with(git_dir, DEFAULT_CACHE_BYTES)
    }

    pub fn open_with(git_dir: &Path, cache_bytes: usize) -> Result<Odb> {
        let objects = git_dir.join("objects");
        if !sys::is_dir(&objects) {
            return Err(Error {
                kind: ErrorKind::NotARepo,
                message: format!("{} does not exist: not a git repository", objects.display()),
            });
        }
        let mut dirs = Vec::new();
        add_objects_dir(&objects, 0, &mut dirs);
        let odb = Odb {
            git_dir: git_dir.to_path_buf(),
            objects_dirs: dirs,
            packs: RwLock::new(Vec::new()),
            cache: BaseCache::new(cache_bytes),
            next_id: AtomicU32::new(0),
            closed: AtomicBool::new(false),
        };
        let mut found = Vec::new();
        for d in &odb.objects_dirs {
            found.extend(list_packs(&d.join("pack"))?);
        }
        // Newest first (by modification time, as git orders them).
        found.sort_by(|a, b| b.0.partial_cmp(&a.0).unwrap_or(std::cmp::Ordering::Equal).then_with(|| b.1.cmp(&a.1)));
        let mut packs = Vec::with_capacity(found.len());
        for (_, pack, idx) in found {
            packs.push(Arc::new(PackFile::open(odb.next_id.fetch_add(1, Ordering::Relaxed), &pack, &idx)?));
        }
        *odb.packs.write().unwrap() = packs;
        Ok(odb)
    }

    pub fn git_dir(&self) -> &Path {
        &self.git_dir
    }

    /// Makes a pack written after opening visible (fetch adds its new pack this way).
    pub fn add_pack(&self, pack: &Path, idx: &Path) -> Result<()> {
        self.check_open()?;
        let p = PackFile::open(self.next_id.fetch_add(1, Ordering::Relaxed), pack, idx)?;
        let mut packs = self.packs.write().unwrap();
        if packs.iter().any(|q| q.idx_path() == idx) {
            return Ok(());
        }
        packs.insert(0, Arc::new(p));
        Ok(())
    }

    /// Lets go of the packs (their descriptors and maps) and the cache; reads fail afterwards.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.packs.write().unwrap().clear();
        self.cache.clear();
    }

    fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::state("the object database is closed"));
        }
        Ok(())
    }

    fn packs(&self) -> Vec<Arc<PackFile>> {
        self.packs.read().unwrap().clone()
    }

    /// Objects in the packs (a hint for sizing tables: loose objects are not counted, and
    /// packs may share objects).
    pub fn object_count(&self) -> usize {
        self.packs.read().unwrap().iter().map(|p| p.count()).sum()
    }

    /// Whether the object is here (packed or loose), without reading it.
    pub fn has(&self, oid: &[u8; 20]) -> Result<bool> {
        self.check_open()?;
        if self.packs.read().unwrap().iter().any(|p| p.find(oid).is_some()) {
            return Ok(true);
        }
        Ok(self.objects_dirs.iter().any(|d| sys::exists(&loose::path(d, oid))))
    }

    /// The object, or None when it is not here.
    pub fn read(&self, oid: &[u8; 20]) -> Result<Option<Object>> {
        self.check_open()?;
        with_scratch(|s| self.read_with(s, oid, 0))
    }

    /// As `read`, the content going into `out`, whose capacity is reused: a caller reading
    /// many big objects one after another (checkout) does not fault in fresh pages for each.
    /// Returns the object's type, or None when it is not here.
    pub fn read_into(&self, oid: &[u8; 20], out: &mut Vec<u8>) -> Result<Option<u8>> {
        self.check_open()?;
        with_scratch(|s| {
            let at = self.locate(oid)?;
            if let Some((p, off)) = &at {
                let h = p.read_entry(*off, &mut s.entry)?;
                if matches!(h.base, BaseRef::None) {
                    inflate_into(s, p, *off, h.size, h.len, out)?;
                    return Ok(Some(h.kind));
                }
            }
            // Deltified or loose: the result is a new buffer anyway.
            Ok(self.read_at(s, oid, at, 0)?.map(|o| {
                *out = o.data;
                o.kind
            }))
        })
    }

    /// The object, or a `MissingObject` error naming it (`what` says what it is to the caller).
    pub fn read_existing(&self, oid: &[u8; 20], what: &str) -> Result<Object> {
        self.read(oid)?.ok_or_else(|| Error::missing_object(format!("{} {} is missing from the repository", what, hex(oid))))
    }

    fn read_with(&self, s: &mut Scratch, oid: &[u8; 20], hops: usize) -> Result<Option<Object>> {
        let at = self.locate(oid)?;
        self.read_at(s, oid, at, hops)
    }

    /// Where the object is packed: the pack and the entry's offset (None: loose, or not here).
    fn locate(&self, oid: &[u8; 20]) -> Result<Option<(Arc<PackFile>, u64)>> {
        for p in self.packs() {
            if let Some(i) = p.find(oid) {
                let at = p.offset_at(i)?;
                return Ok(Some((p, at)));
            }
        }
        Ok(None)
    }

    /// The object `oid`, packed where `locate` found it, else loose.
    fn read_at(&self, s: &mut Scratch, oid: &[u8; 20], at: Option<(Arc<PackFile>, u64)>, hops: usize) -> Result<Option<Object>> {
        if let Some((p, at)) = at {
            let (kind, data) = self.read_packed(s, &p, at, hops)?;
            let data = Arc::try_unwrap(data).unwrap_or_else(|shared| (*shared).clone());
            return Ok(Some(Object { kind, data }));
        }
        for d in &self.objects_dirs {
            if let Some(o) = loose::read(&loose::path(d, oid))? {
                return Ok(Some(o));
            }
        }
        Ok(None)
    }

    /// The object at `offset` of `pack`, its delta chain resolved (bases from the cache when
    /// they are there; the bases rebuilt on the way are cached for the next reader).
    fn read_packed(&self, s: &mut Scratch, pack: &PackFile, offset: u64, hops: usize) -> Result<(u8, Arc<Vec<u8>>)> {
        let mut chain: Vec<(u64, Vec<u8>)> = Vec::new();
        let mut at = offset;
        let (kind, mut data) = loop {
            if let Some(hit) = self.cache.get(&(pack.id(), at)) {
                break hit;
            }
            let h = pack.read_entry(at, &mut s.entry)?;
            let body = inflate(s, pack, at, h.size, h.len)?;
            match h.base {
                BaseRef::None => {
                    let data = Arc::new(body);
                    if !chain.is_empty() {
                        self.cache.put((pack.id(), at), h.kind, &data);
                    }
                    break (h.kind, data);
                }
                BaseRef::Offset(base) => {
                    chain.push((at, body));
                    at = base;
                }
                BaseRef::Id(base) => {
                    chain.push((at, body));
                    match pack.find(&base) {
                        Some(i) => at = pack.offset_at(i)?,
                        None => {
                            // A base in another pack or loose: allowed to read (thin packs fixed
                            // by other tools), never in packs git writes.
                            if hops >= MAX_CROSS_PACK {
                                return Err(Error::bad(format!("{}: REF_DELTA bases lead through more than {} packs at offset {}", pack.name(), MAX_CROSS_PACK, at)));
                            }
                            let o = self.read_with(s, &base, hops + 1)?.ok_or_else(|| {
                                Error::missing_object(format!("{}: the delta base {} of the object at offset {} is missing", pack.name(), hex(&base), at))
                            })?;
                            break (o.kind, Arc::new(o.data));
                        }
                    }
                }
            }
            if chain.len() > MAX_DELTA_CHAIN {
                return Err(Error::bad(format!("{}: delta chain longer than {} at offset {}", pack.name(), MAX_DELTA_CHAIN, offset)));
            }
        };
        while let Some((off, d)) = chain.pop() {
            let out = delta::apply(&data, &d).map_err(|e| Error::bad(format!("{}: bad delta at offset {}: {}", pack.name(), off, e)))?;
            data = Arc::new(out);
            if !chain.is_empty() {
                self.cache.put((pack.id(), off), kind, &data);
            }
        }
        Ok((kind, data))
    }

    /// A commit's tree, parents and committer time; None when the object is missing or is
    /// not a commit.
    pub fn read_commit(&self, oid: &[u8; 20]) -> Result<Option<parse::Commit>> {
        match self.read(oid)? {
            Some(o) if o.kind == crate::pack::entry::OBJ_COMMIT => parse::commit(&o.data, oid).map(Some),
            _ => Ok(None),
        }
    }
}

/// Inflates the entry read into `s.entry` (header of `hdr_len` bytes) to exactly `size` bytes.
fn inflate(s: &mut Scratch, pack: &PackFile, at: u64, size: u64, hdr_len: usize) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    inflate_into(s, pack, at, size, hdr_len, &mut out)?;
    Ok(out)
}

/// As `inflate`, into `out` (its contents replaced).
fn inflate_into(s: &mut Scratch, pack: &PackFile, at: u64, size: u64, hdr_len: usize, out: &mut Vec<u8>) -> Result<()> {
    let size_us = usize::try_from(size).map_err(|_| Error::bad(format!("{}: object at offset {} is too large for this machine", pack.name(), at)))?;
    match s.inflater.inflate(&s.entry[hdr_len..], out, size_us) {
        Ok(()) => Ok(()),
        Err(Failure::NoMemory) => Err(Error::bad(format!("{}: cannot allocate {} bytes for the object at offset {}", pack.name(), size, at))),
        Err(Failure::BadData) => Err(Error::bad(format!("{}: corrupt object at offset {}: bad zlib data", pack.name(), at))),
        Err(Failure::WrongSize) => Err(Error::bad(format!("{}: corrupt object at offset {}: it does not inflate to the {} bytes its header says", pack.name(), at, size))),
    }
}

/// Adds `dir` and, recursively, the directories its info/alternates names.
fn add_objects_dir(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
    let abs = sys::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    if out.contains(&abs) || !sys::is_dir(&abs) {
        return;
    }
    out.push(abs.clone());
    if depth >= MAX_ALTERNATE_DEPTH {
        return;
    }
    let text = match sys::read_file(&abs.join("info").join("alternates")).map(String::from_utf8) {
        Ok(Ok(t)) => t,
        _ => return,
    };
    for line in text.lines() {
        let p = line.trim();
        if p.is_empty() || p.starts_with('#') {
            continue;
        }
        let p = Path::new(p);
        // has_root, not is_absolute: the same on unix, and true in wasm too.
        add_objects_dir(&if p.has_root() { p.to_path_buf() } else { abs.join(p) }, depth + 1, out);
    }
}

/// (modification time in ms, .pack, .idx) of every pack-<40 hex>.idx with its .pack in `dir`.
fn list_packs(dir: &Path) -> Result<Vec<(f64, PathBuf, PathBuf)>> {
    let names = match sys::list_dir(dir) {
        Ok(n) => n,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(&e, format!("listing {}", dir.display()))),
    };
    let mut out = Vec::new();
    for name in names {
        let hash = match std::str::from_utf8(&name).ok().and_then(|n| n.strip_prefix("pack-")).and_then(|n| n.strip_suffix(".idx")) {
            Some(h) if h.len() == 40 && h.bytes().all(|c| c.is_ascii_hexdigit()) => h,
            _ => continue,
        };
        let idx = dir.join(format!("pack-{}.idx", hash));
        let pack = dir.join(format!("pack-{}.pack", hash));
        if let Some(mtime) = sys::mtime_ms(&pack) {
            out.push((mtime, pack, idx));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
