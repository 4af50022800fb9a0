//! The indexer as callers drive it: a pack streamed in (`Indexer`: written to disk and parsed
//! on a background thread as it arrives, then resolved, completed if thin, indexed) or a pack
//! already on disk (`index_pack_file`).

use super::entry::{self, Entry, OBJ_OFS_DELTA, OBJ_REF_DELTA};
use crate::error::{Error, Result};
use super::index::{self, IdxEntry, IdxList};
use super::inflate;
use super::resolve::{self, Pack, Root};
use super::scan::{object_id, Scanned, Scanner};
use super::{Progress, ProgressSnapshot};
use crate::oid::hex;
use crossbeam::channel::{unbounded, Sender};
use sha1::{Digest, Sha1};
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// git's core.deltaBaseCacheLimit default; index-pack allows it per thread, and so do we.
pub const DEFAULT_CACHE_PER_THREAD: usize = 96 << 20;
/// Bytes queued for the parser beyond which `write` blocks (a caller that honours the queued
/// count it gets back pauses long before).
const QUEUE_HARD_MAX: u64 = 256 << 20;
/// Read size when indexing a pack file.
const FILE_CHUNK: usize = 2 << 20;
/// Pack bytes written between two requests to start writing them back to disk: the final
/// fsync (git syncs packs too) then waits for the last few MiB, not for the whole pack.
const WRITEBACK_STEP: u64 = 8 << 20;

/// Asks the kernel to start writing `len` bytes at `at` of `file` to disk, without waiting.
fn start_writeback(file: &File, at: u64, len: u64) {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::io::AsRawFd;
        // SAFETY: a valid descriptor; the call only schedules I/O. Failure is harmless: the
        // final fsync writes whatever is left.
        unsafe {
            libc::sync_file_range(file.as_raw_fd(), at as libc::off64_t, len as libc::off64_t, libc::SYNC_FILE_RANGE_WRITE);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (file, at, len);
}

#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Threads resolving deltas (the streaming first pass runs on one thread of its own).
    pub threads: usize,
    /// Cap on cached delta-base bytes; default `DEFAULT_CACHE_PER_THREAD` per thread.
    pub max_cache_bytes: Option<usize>,
}

impl Options {
    fn threads(&self) -> usize {
        self.threads.max(1)
    }
    fn cache_max(&self) -> usize {
        self.max_cache_bytes.unwrap_or(DEFAULT_CACHE_PER_THREAD * self.threads())
    }
}

/// What indexing a pack produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// The pack's trailer (after completion, for a thin pack): its name in `pack-<hex>.pack`.
    pub pack_checksum: [u8; 20],
    pub object_count: u32,
    pub delta_count: u32,
    pub appended_bases: u32,
}

/// A pack after both passes.
struct Indexed {
    file: File,
    /// What the first pass found; object ids of deltas are filled in as they resolve.
    scan: Scanned,
    ofs_children: Vec<(u32, u32)>,
    ref_children: Vec<([u8; 20], u32)>,
    claimed: Vec<AtomicBool>,
    delta_count: u32,
    appended: u32,
    opts: Options,
    progress: Arc<Progress>,
}

impl Indexed {
    /// Runs the second pass over what the first pass found.
    fn new(s: Scanned, file: File, opts: Options, progress: Arc<Progress>) -> Result<Indexed> {
        let mut ofs_children = Vec::new();
        let mut ref_children = Vec::new();
        for (i, e) in s.entries.iter().enumerate() {
            match e.kind {
                OBJ_OFS_DELTA => ofs_children.push((e.base, i as u32)),
                OBJ_REF_DELTA => ref_children.push((s.ref_bases[e.base as usize], i as u32)),
                _ => {}
            }
        }
        ofs_children.sort_unstable();
        ref_children.sort_unstable();
        let delta_count = (ofs_children.len() + ref_children.len()) as u32;
        let claimed = (0..s.entries.len()).map(|_| AtomicBool::new(false)).collect();
        let mut ix = Indexed {
            file,
            scan: s,
            ofs_children,
            ref_children,
            claimed,
            delta_count,
            appended: 0,
            opts,
            progress,
        };
        let roots: Vec<Root> = (0..ix.scan.entries.len())
            .filter(|&i| !entry::is_delta(ix.scan.entries[i].kind) && ix.has_children(i))
            .map(|i| Root { entry: i as u32, kind: ix.scan.entries[i].kind, oid: ix.scan.oids[i], data: None })
            .collect();
        ix.resolve(roots, opts.threads())?;
        Ok(ix)
    }

    fn has_children(&self, i: usize) -> bool {
        let ofs = self.ofs_children.binary_search_by_key(&(i as u32), |&(b, _)| b).is_ok();
        ofs || (!self.ref_children.is_empty() && self.ref_children.binary_search_by(|(b, _)| b.cmp(&self.scan.oids[i])).is_ok())
    }

    fn resolve(&mut self, roots: Vec<Root>, threads: usize) -> Result<()> {
        let pack = Pack {
            file: &self.file,
            entries: &self.scan.entries,
            entries_end: self.scan.objects_end,
            ofs_children: &self.ofs_children,
            ref_children: &self.ref_children,
            claimed: &self.claimed,
            progress: &self.progress,
        };
        let ids = resolve::Ids { oids: &mut self.scan.oids, known: &mut self.scan.known };
        resolve::resolve(&pack, roots, threads, self.opts.cache_max(), ids)
    }

    fn unresolved(&self) -> usize {
        self.scan.known.iter().filter(|&&k| !k).count()
    }

    /// Base ids of REF_DELTAs still unresolved, once each, in pack order.
    fn missing(&self) -> Vec<[u8; 20]> {
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::new();
        for (i, e) in self.scan.entries.iter().enumerate() {
            if e.kind == OBJ_REF_DELTA && !self.scan.known[i] {
                let id = self.scan.ref_bases[e.base as usize];
                if seen.insert(id) {
                    out.push(id);
                }
            }
        }
        out
    }

    /// Completes a thin pack as `git index-pack --fix-thin` does: for each unresolved REF_DELTA
    /// in pack order whose base was supplied, appends the base (zlib, git's level) and resolves
    /// what it unlocks; then rewrites the object count and the trailer.
    fn fix_thin(&mut self, bases: &HashMap<[u8; 20], (u8, Arc<Vec<u8>>)>, level: u32) -> Result<()> {
        let refs: Vec<usize> = (0..self.scan.entries.len()).filter(|&i| self.scan.entries[i].kind == OBJ_REF_DELTA).collect();
        let mut end = self.scan.objects_end;
        for d in refs {
            if self.scan.known[d] {
                continue;
            }
            let id = self.scan.ref_bases[self.scan.entries[d].base as usize];
            let (kind, data) = match bases.get(&id) {
                Some(b) => b,
                None => continue,
            };
            match object_id(*kind, data) {
                Ok(got) if got == id => {}
                _ => return Err(Error::bad(format!("local object {} is corrupt: its data does not hash to its id", hex(&id)))),
            }
            let header = entry::encode_header(*kind, data.len() as u64);
            let z = inflate::deflate(data, level).map_err(|e| Error::io(&e, "deflating a base to append"))?;
            let mut crc = crc32fast::Hasher::new();
            crc.update(&header);
            crc.update(&z);
            self.write_at(&header, end)?;
            self.write_at(&z, end + header.len() as u64)?;
            let n = self.scan.entries.len();
            if n >= u32::MAX as usize {
                return Err(Error::bad("too many objects for one pack"));
            }
            self.scan.entries.push(Entry { offset: end, size: data.len() as u64, base: 0, crc32: crc.finalize(), hdr_len: header.len() as u8, kind: *kind });
            self.scan.oids.push(id);
            self.scan.known.push(true);
            self.claimed.push(AtomicBool::new(false));
            end += (header.len() + z.len()) as u64;
            self.scan.objects_end = end;
            self.appended += 1;
            // One base at a time, as git does (which delta needs a base depends on what the
            // earlier ones resolved); a base's deltas are usually few, so on this thread.
            self.resolve(vec![Root { entry: n as u32, kind: *kind, oid: id, data: Some(data.clone()) }], 1)?;
        }
        if self.appended == 0 {
            return Ok(());
        }
        self.write_at(&(self.scan.entries.len() as u32).to_be_bytes(), 8)?;
        let mut sum = Sha1::new();
        let mut buf = vec![0u8; FILE_CHUNK];
        let mut at = 0u64;
        while at < end {
            let n = ((end - at) as usize).min(buf.len());
            crate::pio::read_exact_at(&self.file, &mut buf[..n], at).map_err(|e| Error::io(&e, "re-reading the pack to checksum it"))?;
            sum.update(&buf[..n]);
            at += n as u64;
        }
        self.scan.checksum = sum.finalize().into();
        let checksum = self.scan.checksum;
        self.write_at(&checksum, end)?;
        self.file.set_len(end + 20).map_err(|e| Error::io(&e, "truncating the pack"))?;
        Ok(())
    }

    fn write_at(&self, bytes: &[u8], at: u64) -> Result<()> {
        crate::pio::write_all_at(&self.file, bytes, at).map_err(|e| Error::io(&e, format!("writing the pack at offset {}", at)))
    }

    fn check_complete(&self) -> Result<()> {
        let n = self.unresolved();
        if n > 0 {
            let first = self.scan.entries.iter().zip(&self.scan.known).find(|(_, &k)| !k).map_or(0, |(e, _)| e.offset);
            return Err(Error::missing(format!(
                "pack has {} unresolved delta{}, the first at offset {} (bases missing: {}): it is thin; complete it from a repository that has them",
                n,
                if n == 1 { "" } else { "s" },
                first,
                self.missing().iter().take(3).map(|id| hex(id)).collect::<Vec<_>>().join(", ")
            )));
        }
        Ok(())
    }

    fn write_index(&self, idx_path: &Path, rev_path: Option<&Path>) -> Result<()> {
        let list = IdxView { entries: &self.scan.entries, oids: &self.scan.oids, order: index::order(&self.scan.oids, |i| self.scan.entries[i].offset) };
        write_file(idx_path, |w| index::write_idx(w, &list, &self.scan.checksum))?;
        if let Some(rev) = rev_path {
            write_file(rev, |w| index::write_rev(w, &list, &self.scan.checksum))?;
        }
        Ok(())
    }

    fn summary(&self) -> Summary {
        Summary {
            pack_checksum: self.scan.checksum,
            object_count: self.scan.entries.len() as u32,
            delta_count: self.delta_count,
            appended_bases: self.appended,
        }
    }
}

/// The indexer's objects (in pack order) seen in index order.
struct IdxView<'a> {
    entries: &'a [Entry],
    oids: &'a [[u8; 20]],
    order: Vec<u32>,
}

impl IdxList for IdxView<'_> {
    fn len(&self) -> usize {
        self.order.len()
    }
    fn get(&self, k: usize) -> IdxEntry {
        let i = self.order[k] as usize;
        IdxEntry { oid: self.oids[i], offset: self.entries[i].offset, crc32: self.entries[i].crc32 }
    }
}

/// Creates `path` and fills it with what `fill` writes, synced to disk.
fn write_file(path: &Path, fill: impl FnOnce(BufWriter<File>) -> std::io::Result<BufWriter<File>>) -> Result<()> {
    let f = File::create(path).map_err(|e| Error::io(&e, format!("creating {}", path.display())))?;
    let w = fill(BufWriter::with_capacity(1 << 16, f)).map_err(|e| Error::io(&e, format!("writing {}", path.display())))?;
    let f = w.into_inner().map_err(|e| Error::io(e.error(), format!("writing {}", path.display())))?;
    f.sync_all().map_err(|e| Error::io(&e, format!("syncing {}", path.display())))
}

/// Indexes a pack already on disk (no thin-pack completion: missing bases are an error).
pub fn index_pack_file(pack_path: &Path, opts: Options, idx_path: &Path, rev_path: Option<&Path>) -> Result<Summary> {
    Error::sha1_backend()?;
    let mut file = File::open(pack_path).map_err(|e| Error::io(&e, format!("opening {}", pack_path.display())))?;
    let progress = Arc::new(Progress::default());
    let mut scanner = Scanner::new(progress.clone());
    while scanner.push_from(&mut file, FILE_CHUNK).map_err(|e| Error::io(&e, format!("reading {}", pack_path.display())))?? > 0 {}
    let ix = Indexed::new(scanner.finish()?, file, opts, progress)?;
    ix.check_complete()?;
    ix.write_index(idx_path, rev_path)?;
    let summary = ix.summary();
    drop(ix);
    crate::alloc::release_free_memory();
    Ok(summary)
}

enum Stage {
    Receiving { tx: Sender<Vec<u8>>, parser: JoinHandle<Result<(Scanned, File)>> },
    Busy,
    Resolved { ix: Box<Indexed>, bases: HashMap<[u8; 20], (u8, Arc<Vec<u8>>)> },
    Finished,
    Failed(Error),
}

/// Bytes handed to the parser thread and not parsed yet.
#[derive(Default)]
struct Queue {
    bytes: Mutex<u64>,
    cv: Condvar,
}

impl Queue {
    fn sub(&self, n: u64) {
        let mut b = self.bytes.lock().unwrap();
        *b = b.saturating_sub(n);
        self.cv.notify_all();
    }
}

/// A pack arriving in chunks: written to `path` and parsed as it comes (see the module docs).
pub struct Indexer {
    opts: Options,
    progress: Arc<Progress>,
    queue: Arc<Queue>,
    /// The parser thread's error, so that `write` reports it without waiting for the end.
    parse_error: Arc<Mutex<Option<Error>>>,
    stage: Mutex<Stage>,
}

impl Indexer {
    /// Creates `pack_path` (which must not exist) and starts the parser thread.
    pub fn create(pack_path: &Path, opts: Options) -> Result<Indexer> {
        Error::sha1_backend()?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(pack_path)
            .map_err(|e| Error::io(&e, format!("creating {}", pack_path.display())))?;
        let progress = Arc::new(Progress::default());
        let queue = Arc::new(Queue::default());
        let parse_error: Arc<Mutex<Option<Error>>> = Arc::new(Mutex::new(None));
        let (tx, rx) = unbounded::<Vec<u8>>();
        let path: PathBuf = pack_path.to_path_buf();
        let parser = {
            let (progress, queue, parse_error) = (progress.clone(), queue.clone(), parse_error.clone());
            std::thread::Builder::new()
                .name("mpgit-index".into())
                .spawn(move || {
                    let run = || -> Result<(Scanned, File)> {
                        let mut scanner = Scanner::new(progress);
                        let (mut written, mut flushed) = (0u64, 0u64);
                        for chunk in rx.iter() {
                            let r = file.write_all(&chunk).map_err(|e| Error::io(&e, format!("writing {}", path.display())));
                            written += chunk.len() as u64;
                            if written - flushed >= WRITEBACK_STEP {
                                start_writeback(&file, flushed, written - flushed);
                                flushed = written;
                            }
                            let r = r.and_then(|_| scanner.push(&chunk));
                            queue.sub(chunk.len() as u64);
                            r?;
                        }
                        Ok((scanner.finish()?, file))
                    };
                    let r = run();
                    if let Err(e) = &r {
                        *parse_error.lock().unwrap() = Some(e.clone());
                        *queue.bytes.lock().unwrap() = 0;
                        queue.cv.notify_all();
                    }
                    r
                })
                .map_err(|e| Error::io(&e, "starting the parser thread"))?
        };
        Ok(Indexer { opts, progress, queue, parse_error, stage: Mutex::new(Stage::Receiving { tx, parser }) })
    }

    pub fn progress(&self) -> ProgressSnapshot {
        self.progress.snapshot()
    }

    /// Appends pack bytes. Returns the bytes queued but not yet parsed.
    pub fn write(&self, chunk: &[u8]) -> Result<u64> {
        let stage = self.stage.try_lock().map_err(|_| Error::state("write after the end of input"))?;
        let tx = match &*stage {
            Stage::Receiving { tx, .. } => tx,
            _ => return Err(Error::state("write after the end of input")),
        };
        if let Some(e) = self.parse_error.lock().unwrap().clone() {
            return Err(e);
        }
        if chunk.is_empty() {
            return Ok(*self.queue.bytes.lock().unwrap());
        }
        *self.queue.bytes.lock().unwrap() += chunk.len() as u64;
        if tx.send(chunk.to_vec()).is_err() {
            return Err(self.parse_error.lock().unwrap().clone().unwrap_or_else(|| Error::state("the parser thread has stopped")));
        }
        let mut queued = self.queue.bytes.lock().unwrap();
        while *queued > QUEUE_HARD_MAX {
            queued = self.queue.cv.wait_timeout(queued, Duration::from_millis(100)).unwrap().0;
            if self.parse_error.lock().unwrap().is_some() {
                break;
            }
        }
        Ok(*queued)
    }

    fn take(&self, want: &str) -> Result<Stage> {
        let mut stage = self.stage.lock().unwrap();
        match std::mem::replace(&mut *stage, Stage::Busy) {
            Stage::Failed(e) => {
                *stage = Stage::Failed(e.clone());
                Err(e)
            }
            Stage::Busy => Err(Error::state(format!("{}: the indexer is busy", want))),
            other => Ok(other),
        }
    }

    fn fail(&self, e: Error) -> Error {
        *self.stage.lock().unwrap() = Stage::Failed(e.clone());
        e
    }

    /// End of input: checks the trailer, resolves every delta the pack can, and returns the
    /// ids of REF_DELTA bases it lacks (a thin pack).
    pub fn resolve(&self) -> Result<Vec<[u8; 20]>> {
        let (tx, parser) = match self.take("resolve")? {
            Stage::Receiving { tx, parser } => (tx, parser),
            other => {
                *self.stage.lock().unwrap() = other;
                return Err(Error::state("resolve called twice"));
            }
        };
        drop(tx);
        let scanned = parser.join().unwrap_or_else(|_| Err(Error::bad("the parser thread panicked")));
        let result = scanned.and_then(|(s, file)| Indexed::new(s, file, self.opts, self.progress.clone()));
        match result {
            Ok(ix) => {
                let missing = ix.missing();
                *self.stage.lock().unwrap() = Stage::Resolved { ix: Box::new(ix), bases: HashMap::new() };
                Ok(missing)
            }
            Err(e) => Err(self.fail(e)),
        }
    }

    /// Supplies a base a thin pack lacks (type 1..=4, its data).
    pub fn add_base(&self, oid: [u8; 20], kind: u8, data: &[u8]) -> Result<()> {
        if !(entry::OBJ_COMMIT..=entry::OBJ_TAG).contains(&kind) {
            return Err(Error::state(format!("base type {} is not 1 (commit) .. 4 (tag)", kind)));
        }
        let mut stage = self.stage.try_lock().map_err(|_| Error::state("add_base while the indexer is busy"))?;
        let bases = match &mut *stage {
            Stage::Resolved { bases, .. } => bases,
            _ => return Err(Error::state("add_base before resolve or after finish")),
        };
        bases.insert(oid, (kind, Arc::new(data.to_vec())));
        Ok(())
    }

    /// Completes a thin pack (`fix_thin`: appended bases deflated at zlib `level`, see
    /// `inflate::GIT_APPEND_LEVEL`), then writes the index (and reverse index).
    pub fn finish(&self, idx_path: &Path, rev_path: Option<&Path>, fix_thin: bool, level: u32) -> Result<Summary> {
        let (mut ix, bases) = match self.take("finish")? {
            Stage::Resolved { ix, bases } => (ix, bases),
            other => {
                *self.stage.lock().unwrap() = other;
                return Err(Error::state("finish before resolve, or twice"));
            }
        };
        let mut run = || -> Result<Summary> {
            if fix_thin && ix.unresolved() > 0 {
                ix.fix_thin(&bases, level)?;
            }
            ix.check_complete()?;
            ix.file.sync_all().map_err(|e| Error::io(&e, "syncing the pack"))?;
            ix.write_index(idx_path, rev_path)?;
            Ok(ix.summary())
        };
        let r = run();
        drop((ix, bases));
        crate::alloc::release_free_memory();
        match r {
            Ok(s) => {
                *self.stage.lock().unwrap() = Stage::Finished;
                Ok(s)
            }
            Err(e) => Err(self.fail(e)),
        }
    }
}
