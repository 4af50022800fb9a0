//! The second pass: rebuilds every delta from its base and hashes it, on `threads` threads.
//!
//! Work is a stack of bases that still have unclaimed delta children; a thread takes the next
//! child of the top base, rebuilds it, and pushes it in turn when it has children of its own.
//! So the children of a base are done before new roots are taken (depth first), and the
//! threads share the children of one base when a tree is wide. A base's data stays in memory
//! while children of it are unclaimed; those bytes are the cache, capped at `cache_max`: past
//! it, the data of the bases deepest in the stack (the ones needed last) is dropped and rebuilt
//! from the nearest base that still has it (or from the pack) when its turn comes, as git does.
//! Threads hold the data they work on outside the cache: at most one base, one delta and one
//! result each.

use super::delta;
use super::entry::Entry;
use crate::error::{Error, Result};
use super::inflate::{InflateError, Inflater};
use super::scan::{collision, object_id};
use super::Progress;
use super::window::{Reader, KEEP_MAX};
use std::fs::File;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};

/// The pack and what the first pass learned of it, shared by the threads.
pub struct Pack<'a> {
    pub file: &'a File,
    /// Entries in pack order.
    pub entries: &'a [Entry],
    /// End of the last entry (the trailer's offset).
    pub entries_end: u64,
    /// (base entry, delta entry) for every OFS_DELTA, sorted.
    pub ofs_children: &'a [(u32, u32)],
    /// (base object id, delta entry) for every REF_DELTA, sorted.
    pub ref_children: &'a [([u8; 20], u32)],
    /// Set once a delta is taken by a base: a REF_DELTA claimed twice has two bases.
    pub claimed: &'a [AtomicBool],
    pub progress: &'a Progress,
}

/// A base to start from: a whole object with delta children.
pub struct Root {
    pub entry: u32,
    pub kind: u8,
    pub oid: [u8; 20],
    /// Its data when the caller has it (bases appended to a thin pack); else read from the pack.
    pub data: Option<Arc<Vec<u8>>>,
}

struct Base {
    entry: u32,
    kind: u8,
    parent: Option<Arc<Base>>,
    /// None once evicted (or once every child is claimed).
    data: Mutex<Option<Arc<Vec<u8>>>>,
    children: Vec<u32>,
    next: AtomicUsize,
}

struct Sched {
    stack: Vec<Arc<Base>>,
    next_root: usize,
    active: usize,
    /// Threads waiting for work (notify only when there are: a wake-up is a system call).
    waiting: usize,
    cache_used: usize,
    failed: Option<Error>,
}

enum Task {
    Root(usize),
    Child(Arc<Base>, u32, Option<Arc<Vec<u8>>>),
}

/// Per-thread reading and inflating state.
struct Local {
    inflater: Inflater,
    reader: Reader,
    /// Buffers reused from object to object (no allocation per delta, no heap churn).
    delta: Vec<u8>,
    result: Vec<u8>,
}

fn keep(v: Vec<u8>) -> Vec<u8> {
    if v.capacity() > KEEP_MAX {
        Vec::new()
    } else {
        v
    }
}

impl<'a> Pack<'a> {
    fn end_of(&self, i: usize) -> u64 {
        self.entries.get(i + 1).map_or(self.entries_end, |e| e.offset)
    }

    /// The compressed bytes [start, end), from the thread's read window when they are small
    /// (`window::Reader`).
    fn compressed<'l>(&self, local: &'l mut Reader, start: u64, end: u64) -> Result<&'l [u8]> {
        let read = |buf: &mut [u8], at: u64| -> Result<usize> {
            let mut got = 0;
            while got < buf.len() {
                match crate::pio::read_at(self.file, &mut buf[got..], at + got as u64) {
                    Ok(0) => break,
                    Ok(n) => got += n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(Error::io(&e, format!("reading the pack at offset {}", at))),
                }
            }
            Ok(got)
        };
        local.get(start, end, self.entries_end, read)
    }

    /// The inflated data of entry `i` (an object, or a delta).
    fn inflate(&self, local: &mut Local, i: usize) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.inflate_into(local, i, &mut out)?;
        Ok(out)
    }

    /// As `inflate`, into `out`.
    fn inflate_into(&self, local: &mut Local, i: usize, out: &mut Vec<u8>) -> Result<()> {
        let e = &self.entries[i];
        let start = e.data_offset();
        let end = self.end_of(i);
        if end < start {
            return Err(Error::at(e.offset, "entry overlaps the next one"));
        }
        check_size(e.offset, e.size)?;
        let size = usize::try_from(e.size).map_err(|_| Error::at(e.offset, "object too large for this machine"))?;
        let input = self.compressed(&mut local.reader, start, end)?;
        match local.inflater.inflate_vec(input, out, size) {
            Ok(used) if used as u64 == end - start => Ok(()),
            Ok(_) => Err(Error::at(e.offset, "zlib stream ends before the next entry (the pack changed on disk?)")),
            Err(None) => Err(Error::at(e.offset, format!("cannot allocate {} bytes to inflate it", e.size))),
            Err(Some(InflateError::BadData)) => Err(Error::at(e.offset, "bad zlib data (the pack changed on disk?)")),
            Err(Some(_)) => Err(Error::at(e.offset, format!("does not inflate to the {} bytes its header says", e.size))),
        }
    }

    /// The delta children of an object: its OFS_DELTAs and the REF_DELTAs naming its id, each
    /// claimed (a REF_DELTA already claimed means two objects with its base's id).
    fn children(&self, entry: u32, oid: &[u8; 20]) -> Result<Vec<u32>> {
        let lo = self.ofs_children.partition_point(|&(b, _)| b < entry);
        let mut out: Vec<u32> = self.ofs_children[lo..].iter().take_while(|&&(b, _)| b == entry).map(|&(_, c)| c).collect();
        if !self.ref_children.is_empty() {
            let lo = self.ref_children.partition_point(|(b, _)| b < oid);
            out.extend(self.ref_children[lo..].iter().take_while(|(b, _)| b == oid).map(|&(_, c)| c));
        }
        for &c in &out {
            if self.claimed[c as usize].swap(true, Ordering::AcqRel) {
                return Err(Error::bad(format!(
                    "REF_DELTA at offset {} already resolved (duplicate base {}?)",
                    self.entries[c as usize].offset,
                    crate::oid::hex(oid)
                )));
            }
        }
        Ok(out)
    }

    /// The data of `base`, rebuilding it (and the ancestors it needs) when it was evicted.
    fn data_of(&self, local: &mut Local, base: &Arc<Base>) -> Result<Arc<Vec<u8>>> {
        let mut chain = vec![base.clone()];
        let mut data = loop {
            let b = chain.last().unwrap().clone();
            if let Some(d) = b.data.lock().unwrap().clone() {
                chain.pop();
                break d;
            }
            match &b.parent {
                Some(p) => chain.push(p.clone()),
                None => {
                    chain.pop();
                    break Arc::new(self.inflate(local, b.entry as usize)?);
                }
            }
        };
        while let Some(b) = chain.pop() {
            data = Arc::new(self.apply(local, b.entry, &data)?);
        }
        Ok(data)
    }

    /// Rebuilds delta entry `i` on `base` into `out`.
    fn apply_into(&self, local: &mut Local, i: u32, base: &[u8], out: &mut Vec<u8>) -> Result<()> {
        let mut d = std::mem::take(&mut local.delta);
        let offset = self.entries[i as usize].offset;
        let r = self.inflate_into(local, i as usize, &mut d).and_then(|_| {
            // A result past the limit is refused before anything is reserved for it.
            if let Ok((_, result)) = delta::sizes(&d) {
                check_size(offset, result)?;
            }
            delta::apply_into(base, &d, out).map_err(|e| Error::at(offset, format!("failed to apply delta: {}", e)))
        });
        local.delta = keep(d);
        r
    }

    /// Rebuilds delta entry `i` on `base`.
    fn apply(&self, local: &mut Local, i: u32, base: &[u8]) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.apply_into(local, i, base, &mut out)?;
        Ok(out)
    }
}

/// Objects the second pass holds whole (delta results, bases with deltas on them) are bounded:
/// a few KiB of deltas can describe gigabytes (a delta bomb).
fn check_size(offset: u64, size: u64) -> Result<()> {
    let max = super::max_object_size();
    if size > max {
        return Err(Error::at(
            offset,
            format!("the object is {} bytes, more than the {} bytes an object may have in memory (MPGIT_MAX_OBJECT_SIZE; default half the machine's memory)", size, max),
        ));
    }
    Ok(())
}

/// Where resolved object ids go: written in batches, so threads keep little to themselves.
pub struct Ids<'a> {
    pub oids: &'a mut [[u8; 20]],
    pub known: &'a mut [bool],
}

impl Ids<'_> {
    fn put(&mut self, batch: &[(u32, [u8; 20])]) {
        for &(i, oid) in batch {
            self.oids[i as usize] = oid;
            self.known[i as usize] = true;
        }
    }
}

/// Ids a thread gathers before it hands them to `Ids`.
const ID_BATCH: usize = 4096;

/// Resolves every delta below `roots` on `threads` threads, recording each rebuilt delta's id.
pub fn resolve(pack: &Pack, roots: Vec<Root>, threads: usize, cache_max: usize, ids: Ids) -> Result<()> {
    if roots.is_empty() {
        return Ok(());
    }
    let sched = Mutex::new(Sched { stack: Vec::new(), next_root: 0, active: 0, waiting: 0, cache_used: 0, failed: None });
    let cv = Condvar::new();
    let sink = Mutex::new(ids);
    let threads = threads.max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = (1..threads).map(|_| s.spawn(|| worker(pack, &roots, &sched, &cv, cache_max, &sink))).collect();
        worker(pack, &roots, &sched, &cv, cache_max, &sink);
        for h in handles {
            let _ = h.join();
        }
    });
    match sched.into_inner().unwrap().failed {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

fn worker(pack: &Pack, roots: &[Root], sched: &Mutex<Sched>, cv: &Condvar, cache_max: usize, sink: &Mutex<Ids>) {
    let mut local = Local { inflater: Inflater::new(), reader: Reader::default(), delta: Vec::new(), result: Vec::new() };
    let mut out = Vec::with_capacity(ID_BATCH);
    work(pack, roots, sched, cv, cache_max, &mut local, &mut out, sink);
    sink.lock().unwrap().put(&out);
}

#[allow(clippy::too_many_arguments)]
fn work(pack: &Pack, roots: &[Root], sched: &Mutex<Sched>, cv: &Condvar, cache_max: usize, local: &mut Local, out: &mut Vec<(u32, [u8; 20])>, sink: &Mutex<Ids>) {
    loop {
        let task = {
            let mut s = sched.lock().unwrap();
            loop {
                if s.failed.is_some() {
                    return;
                }
                if let Some(top) = s.stack.last().cloned() {
                    let i = top.next.fetch_add(1, Ordering::Relaxed);
                    let child = top.children[i];
                    let data = if i + 1 == top.children.len() {
                        // Last child claimed: the base leaves the stack and the cache; the
                        // claiming thread keeps the data alive as long as it needs it.
                        s.stack.pop();
                        let d = top.data.lock().unwrap().take();
                        if let Some(d) = &d {
                            s.cache_used -= d.len();
                        }
                        d
                    } else {
                        top.data.lock().unwrap().clone()
                    };
                    s.active += 1;
                    break Task::Child(top, child, data);
                }
                if s.next_root < roots.len() {
                    s.next_root += 1;
                    s.active += 1;
                    break Task::Root(s.next_root - 1);
                }
                if s.active == 0 {
                    if s.waiting > 0 {
                        cv.notify_all();
                    }
                    return;
                }
                s.waiting += 1;
                s = cv.wait(s).unwrap();
                s.waiting -= 1;
            }
        };
        // A panic must not leave the others waiting for this thread: it becomes an error.
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(pack, roots, local, task, out)))
            .unwrap_or_else(|_| Err(Error::bad("internal error while resolving deltas (a panic); please report it")));
        if out.len() >= ID_BATCH {
            sink.lock().unwrap().put(out);
            out.clear();
        }
        let mut s = sched.lock().unwrap();
        s.active -= 1;
        match result {
            Err(e) => {
                if s.failed.is_none() {
                    s.failed = Some(e);
                }
                cv.notify_all();
                return;
            }
            Ok(done) => {
                if let Some((base, data)) = done.rebuilt {
                    // Cache a rebuilt base again while children of it are still unclaimed
                    // (under the lock, so that claiming its last child accounts for it).
                    let mut slot = base.data.lock().unwrap();
                    if slot.is_none() && base.next.load(Ordering::Relaxed) < base.children.len() {
                        s.cache_used += data.len();
                        *slot = Some(data);
                    }
                }
                if let Some(base) = done.base {
                    s.cache_used += base.data.lock().unwrap().as_ref().map_or(0, |d| d.len());
                    s.stack.push(base);
                }
                evict(&mut s, cache_max);
                if s.waiting > 0 && (!s.stack.is_empty() || s.active == 0) {
                    cv.notify_all();
                }
            }
        }
    }
}

/// Drops cached base data, deepest in the stack first, until the cache fits (the top base,
/// the one needed next, is kept).
fn evict(s: &mut Sched, cache_max: usize) {
    let keep = s.stack.len().saturating_sub(1);
    let mut i = 0;
    while s.cache_used > cache_max && i < keep {
        if let Some(d) = s.stack[i].data.lock().unwrap().take() {
            s.cache_used -= d.len();
        }
        i += 1;
    }
}

/// What a task leaves behind: the object as a new base when it has delta children, and a
/// base whose evicted data had to be rebuilt.
struct Done {
    base: Option<Arc<Base>>,
    rebuilt: Option<(Arc<Base>, Arc<Vec<u8>>)>,
}

fn run(pack: &Pack, roots: &[Root], local: &mut Local, task: Task, out: &mut Vec<(u32, [u8; 20])>) -> Result<Done> {
    match task {
        Task::Root(r) => {
            let root = &roots[r];
            let children = pack.children(root.entry, &root.oid)?;
            if children.is_empty() {
                return Ok(Done { base: None, rebuilt: None });
            }
            let data = match &root.data {
                Some(d) => d.clone(),
                None => Arc::new(pack.inflate(local, root.entry as usize)?),
            };
            let base = Base { entry: root.entry, kind: root.kind, parent: None, data: Mutex::new(Some(data)), children, next: AtomicUsize::new(0) };
            Ok(Done { base: Some(Arc::new(base)), rebuilt: None })
        }
        Task::Child(parent, child, data) => {
            let (base_data, rebuilt) = match data {
                Some(d) => (d, None),
                None => {
                    let d = pack.data_of(local, &parent)?;
                    (d.clone(), Some((parent.clone(), d)))
                }
            };
            let mut result = std::mem::take(&mut local.result);
            let applied = pack.apply_into(local, child, &base_data, &mut result);
            drop(base_data);
            let hashed = applied.and_then(|_| object_id(parent.kind, &result).map_err(|_| collision(pack.entries[child as usize].offset)));
            let oid = match hashed {
                Ok(oid) => oid,
                Err(e) => {
                    local.result = keep(result);
                    return Err(e);
                }
            };
            out.push((child, oid));
            pack.progress.deltas_resolved.fetch_add(1, Ordering::Relaxed);
            let children = pack.children(child, &oid)?;
            if children.is_empty() {
                local.result = keep(result);
                return Ok(Done { base: None, rebuilt });
            }
            // The result becomes a base: it leaves the reused buffer (trimmed if that was big).
            if result.capacity() > 2 * result.len() + 4096 {
                result.shrink_to_fit();
            }
            let kind = parent.kind;
            let base = Base { entry: child, kind, parent: Some(parent), data: Mutex::new(Some(Arc::new(result))), children, next: AtomicUsize::new(0) };
            Ok(Done { base: Some(Arc::new(base)), rebuilt })
        }
    }
}
