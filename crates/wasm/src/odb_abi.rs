//! The object database, checkout and connectivity check of mpgit-core (crates/core/src/odb,
//! the same code the native addon runs), its file operations going to the host
//! (`mpgit_host`, odb/sys/host.rs). ts/core/wasm-odb.ts is the other side. Handles are
//! pointers to boxed state; ids are 20 bytes; paths are UTF-8 bytes (pointer, length).
//! Everything runs on the calling thread, a walk and a checkout in steps (`mp_cc_step`,
//! `mp_co_step`), so that JavaScript gets control back between them (progress, timers, signals).

use crate::abi::{fail, oid_at, out, slice};
use mpgit_core::error::Error;
use mpgit_core::odb::checkout::{write_batch, Plan, Planning, Progress, Summary};
use mpgit_core::odb::connect::Walk;
use mpgit_core::odb::Odb;
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;

type OdbHandle = Arc<Odb>;

fn path(p: *const u8, n: usize) -> Result<PathBuf, Error> {
    String::from_utf8(slice(p, n).to_vec()).map(PathBuf::from).map_err(|_| Error::state("a path is not UTF-8"))
}

fn odb<'a>(h: *mut OdbHandle) -> &'a OdbHandle {
    // SAFETY: h comes from mp_odb_open and is not freed while JavaScript holds it.
    unsafe { &*h }
}

/// Opens the object database of `git_dir` (a delta base cache of `cache_bytes`, negative for
/// the default): a handle, or null.
#[no_mangle]
pub extern "C" fn mp_odb_open(p: *const u8, n: usize, cache_bytes: f64) -> *mut OdbHandle {
    let cache = if cache_bytes < 0.0 { mpgit_core::odb::DEFAULT_CACHE_BYTES } else { cache_bytes as usize };
    match path(p, n).and_then(|d| Odb::open_with(&d, cache)) {
        Ok(o) => Box::into_raw(Box::new(Arc::new(o))),
        Err(e) => {
            fail(e);
            std::ptr::null_mut()
        }
    }
}

#[no_mangle]
pub extern "C" fn mp_odb_add_pack(h: *mut OdbHandle, pp: *const u8, pn: usize, ip: *const u8, in_: usize) -> i32 {
    match path(pp, pn).and_then(|pack| Ok((pack, path(ip, in_)?))).and_then(|(pack, idx)| odb(h).add_pack(&pack, &idx)) {
        Ok(()) => 0,
        Err(e) => fail(e),
    }
}

/// Lets go of the packs and frees the handle (a checkout made from it keeps its own reference).
#[no_mangle]
pub extern "C" fn mp_odb_close(h: *mut OdbHandle) {
    odb(h).close();
    // SAFETY: as odb(); JavaScript forgets the handle.
    unsafe { drop(Box::from_raw(h)) }
}

/// 1 when the object is here, 0 when not, -1 on failure.
#[no_mangle]
pub extern "C" fn mp_odb_has(h: *mut OdbHandle, oid: *const u8) -> i32 {
    match odb(h).has(&oid_at(oid)) {
        Ok(b) => b as i32,
        Err(e) => fail(e),
    }
}

/// The object's type (1..4) with its content out, 0 when it is not here, -1 on failure.
#[no_mangle]
pub extern "C" fn mp_odb_read(h: *mut OdbHandle, oid: *const u8) -> i32 {
    match odb(h).read(&oid_at(oid)) {
        Ok(Some(o)) => {
            out(o.data);
            o.kind as i32
        }
        Ok(None) => 0,
        Err(e) => fail(e),
    }
}

/// A commit: 1 with out = tree (20 bytes), committer time (f64, little-endian), parents (20
/// bytes each); 0 when missing or not a commit; -1 on failure.
#[no_mangle]
pub extern "C" fn mp_odb_read_commit(h: *mut OdbHandle, oid: *const u8) -> i32 {
    match odb(h).read_commit(&oid_at(oid)) {
        Ok(Some(c)) => {
            let mut v = Vec::with_capacity(28 + c.parents.len() * 20);
            v.extend_from_slice(&c.tree);
            v.extend_from_slice(&(c.time as f64).to_le_bytes());
            for p in &c.parents {
                v.extend_from_slice(p);
            }
            out(v);
            1
        }
        Ok(None) => 0,
        Err(e) => fail(e),
    }
}

/// A checkout set up by mp_co_new and run (once) by steps of mp_co_step.
pub struct Job {
    odb: OdbHandle,
    tree: [u8; 20],
    work_tree: PathBuf,
    index: Option<PathBuf>,
    progress: Progress,
    planning: Option<Planning>,
    plan: Option<Plan>,
    ended: bool,
}

fn job<'a>(h: *mut Job) -> &'a mut Job {
    // SAFETY: h comes from mp_co_new and is not freed while JavaScript holds it.
    unsafe { &mut *h }
}

/// A checkout of `tree` (a tree or commit id) into the work tree; `index` null (ip 0) for none.
#[no_mangle]
pub extern "C" fn mp_co_new(h: *mut OdbHandle, tree: *const u8, wp: *const u8, wn: usize, ip: *const u8, in_: usize) -> *mut Job {
    let made = path(wp, wn).and_then(|w| Ok((w, if ip.is_null() { None } else { Some(path(ip, in_)?) })));
    match made {
        Ok((work_tree, index)) => Box::into_raw(Box::new(Job { odb: odb(h).clone(), tree: oid_at(tree), work_tree, index, progress: Progress::default(), planning: None, plan: None, ended: false })),
        Err(e) => {
            fail(e);
            std::ptr::null_mut()
        }
    }
}

/// The next step of the checkout: the first plans it (the tree flattened, the directories
/// made), the next ones write at least `entries` entries each, the last writes the index.
/// 1 while there is more to do; 0 when done, out = entries, directories, bytes (f64 each); -1.
#[no_mangle]
pub extern "C" fn mp_co_step(h: *mut Job, entries: usize) -> i32 {
    let j = job(h);
    if j.ended {
        return fail(Error::state("this checkout has already run"));
    }
    let step = match j.plan.as_mut() {
        None => Plan::new(&j.odb, &j.tree, &j.work_tree, 1, &j.progress).map(|p| {
            j.plan = Some(p);
            None
        }),
        Some(p) if !p.written() => p.write_some(&j.odb, &j.work_tree, entries, &j.progress).map(|_| None),
        Some(_) => j.plan.take().map_or_else(|| Err(Error::state("no checkout plan")), |p| p.finish(j.index.as_deref()).map(Some)),
    };
    match step {
        Ok(None) => 1,
        Ok(Some(s)) => {
            j.ended = true;
            out(summary(&s));
            0
        }
        Err(e) => {
            j.ended = true;
            fail(e)
        }
    }
}

/// Plans the checkout, `budget` trees (then directories) at a time: the tree flattened and
/// checked, the directories made, the units sized for `threads` writers. 1 while there is more
/// to do; 0 when planned, out = the entries to write (f64); -1. Then either mp_co_step writes
/// them here, or they go out in batches (mp_co_batch) to worker instances (mp_cw_write) whose
/// answers come back (mp_co_record); mp_co_step then writes the index.
#[no_mangle]
pub extern "C" fn mp_co_plan(h: *mut Job, threads: usize, budget: usize) -> i32 {
    let j = job(h);
    if j.ended || j.plan.is_some() {
        return fail(Error::state("this checkout has already run"));
    }
    let step = match j.planning.take() {
        Some(p) => Ok(p),
        None => Planning::start(&j.odb, &j.tree),
    }
    .and_then(|mut p| Ok((p.step(&j.odb, &j.work_tree, budget.max(1), &j.progress)?, p)))
    .and_then(|(done, p)| {
        if !done {
            j.planning = Some(p);
            return Ok(None);
        }
        p.finish(threads.max(1)).map(Some)
    });
    match step {
        Ok(None) => 1,
        Ok(Some(p)) => {
            out((p.entries() as f64).to_le_bytes().to_vec());
            j.plan = Some(p);
            0
        }
        Err(e) => {
            j.ended = true;
            fail(e)
        }
    }
}

/// The next batch of at least `entries` entries (whole units) out: its length, 0 when every
/// unit is handed out, -1.
#[no_mangle]
pub extern "C" fn mp_co_batch(h: *mut Job, entries: usize) -> i32 {
    match job(h).plan.as_mut() {
        Some(p) => match p.take_batch(entries) {
            Some(b) => {
                let n = b.len() as i32;
                out(b);
                n
            }
            None => 0,
        },
        None => fail(Error::state("the checkout is not planned")),
    }
}

/// Records a worker's answer to a batch (mp_cw_write's output): 0, or -1.
#[no_mangle]
pub extern "C" fn mp_co_record(h: *mut Job, p: *const u8, n: usize) -> i32 {
    let j = job(h);
    match j.plan.as_mut() {
        Some(plan) => match plan.record_batch(slice(p, n), &j.progress) {
            Ok(()) => 0,
            Err(e) => fail(e),
        },
        None => fail(Error::state("the checkout is not planned")),
    }
}

/// Writes a batch (mp_co_batch's output) here, with the checkout's own database, as a worker
/// would (while the workers start): the answer's length (out), or -1.
#[no_mangle]
pub extern "C" fn mp_co_write(h: *mut Job, bp: *const u8, bn: usize) -> i32 {
    let j = job(h);
    answer(write_batch(&j.odb, &j.work_tree, slice(bp, bn)))
}

fn answer(r: Result<Vec<u8>, Error>) -> i32 {
    match r {
        Ok(a) => {
            let n = a.len() as i32;
            out(a);
            n
        }
        Err(e) => fail(e),
    }
}

/// In a worker instance: writes a batch (mp_co_batch's output) into the work tree, reading
/// blobs from `h`: the answer's length (out), or -1.
#[no_mangle]
pub extern "C" fn mp_cw_write(h: *mut OdbHandle, wp: *const u8, wn: usize, bp: *const u8, bn: usize) -> i32 {
    answer(path(wp, wn).and_then(|w| write_batch(odb(h), &w, slice(bp, bn))))
}

fn summary(s: &Summary) -> Vec<u8> {
    [s.entries as f64, s.directories as f64, s.bytes as f64].iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Progress: done, total (f64 each) out.
#[no_mangle]
pub extern "C" fn mp_co_progress(h: *mut Job) -> i32 {
    let p = &job(h).progress;
    out([p.done.load(Ordering::Relaxed) as f64, p.total.load(Ordering::Relaxed) as f64].iter().flat_map(|x| x.to_le_bytes()).collect())
}

#[no_mangle]
pub extern "C" fn mp_co_free(h: *mut Job) {
    // SAFETY: as job().
    unsafe { drop(Box::from_raw(h)) }
}

fn ids(p: *const u8, n: usize) -> Vec<[u8; 20]> {
    slice(p, n * 20).chunks_exact(20).map(|c| oid_at(c.as_ptr())).collect()
}

/// A connectivity check set up by mp_cc_new and run by steps of mp_cc_step: the databases are
/// held (a handle closed meanwhile makes the next step fail, as reading from it would).
pub struct Walking {
    odb: OdbHandle,
    before: Option<OdbHandle>,
    shallow: HashSet<[u8; 20]>,
    walk: Walk,
    ended: bool,
}

/// The connectivity check from `nt` tips (20 bytes each), `ns` shallow commits, stopping at
/// what `before` (a handle, or null) has.
#[no_mangle]
pub extern "C" fn mp_cc_new(h: *mut OdbHandle, tp: *const u8, nt: usize, sp: *const u8, ns: usize, before: *mut OdbHandle) -> *mut Walking {
    let odb = odb(h).clone();
    let walk = Walk::new(&odb, &ids(tp, nt));
    let before = if before.is_null() { None } else { Some(self::odb(before).clone()) };
    Box::into_raw(Box::new(Walking { odb, before, shallow: ids(sp, ns).into_iter().collect(), walk, ended: false }))
}

/// Walks at most `objects` more objects: 1 while there is more; 0 when done, out = the objects
/// reached (f64); -1.
#[no_mangle]
pub extern "C" fn mp_cc_step(h: *mut Walking, objects: usize) -> i32 {
    // SAFETY: h comes from mp_cc_new and is not freed while JavaScript holds it.
    let w = unsafe { &mut *h };
    if w.ended {
        return fail(Error::state("this connectivity check has already run"));
    }
    match w.walk.step(&w.odb, &w.shallow, w.before.as_deref(), objects) {
        Ok(None) => 1,
        Ok(Some(n)) => {
            w.ended = true;
            out((n as f64).to_le_bytes().to_vec());
            0
        }
        Err(e) => {
            w.ended = true;
            fail(e)
        }
    }
}

#[no_mangle]
pub extern "C" fn mp_cc_free(h: *mut Walking) {
    // SAFETY: as mp_cc_step.
    unsafe { drop(Box::from_raw(h)) }
}
