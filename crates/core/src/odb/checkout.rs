//! Checking out a tree into an empty work tree, and writing the index for it.
//!
//! The tree is flattened first (every path checked as git's verify_path does), then every
//! directory is created, parents first, then the entries are written by `threads` threads,
//! a directory's worth at a time (opened once; entries created relative to it, never
//! following a symbolic link): regular files (the exec bit from the mode, the umask applied,
//! as git does), symbolic links, and gitlinks as empty directories (as git leaves a submodule
//! that is not initialized). Each entry's stat is taken from its descriptor as it is written,
//! and the index v2 is written from those, so `git status` is clean without reading a file.

use super::index_file::{self, Stat};
use super::sys;
use super::parse::{MODE_EXEC, MODE_GITLINK, MODE_SYMLINK};
use super::{Odb, Error, Result};
use crate::pack::entry::type_name;
use crate::pack::entry::OBJ_BLOB;
use crate::oid::hex;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

mod batch;
mod planning;
pub use batch::write_batch;
pub use planning::Planning;

/// Deepest tree nesting followed.
const MAX_TREE_DEPTH: usize = 4096;
/// Most entries of one directory handed to a thread at once (big directories are shared).
const UNIT_MAX: usize = 256;
/// Fewest: a unit opens its directory once, so a few entries per unit cost little, and a
/// directory of a few big files (binaries, assets) is still spread over every thread.
const UNIT_MIN: usize = 4;
/// Units per thread aimed at, so that one slow unit does not leave the other threads idle.
const UNITS_PER_THREAD: usize = 8;

/// Counters the caller can read while the checkout runs.
#[derive(Debug, Default)]
pub struct Progress {
    pub total: AtomicU64,
    pub done: AtomicU64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Files, symbolic links and gitlinks written (the index's entries).
    pub entries: u64,
    pub directories: u64,
    /// Bytes of file content and link targets.
    pub bytes: u64,
}

/// What writing one entry gives back: its position, its stat (None for a gitlink), its bytes.
type Written = (u32, Option<Stat>, u64);

struct Item {
    path: Vec<u8>,
    /// Where the last component starts in `path`.
    name_at: usize,
    dir: u32,
    mode: u32,
    oid: [u8; 20],
}

/// Writes the tree of `tree_or_commit` into `work_tree` (which must hold none of its paths),
/// then, with `index`, the index for it there. `threads` at least 1.
pub fn checkout(odb: &Odb, tree_or_commit: &[u8; 20], work_tree: &Path, index: Option<&Path>, threads: usize, progress: &Progress) -> Result<Summary> {
    let mut plan = Plan::new(odb, tree_or_commit, work_tree, threads, progress)?;
    plan.write_rest(odb, work_tree, threads, progress)?;
    plan.finish(index)
}

/// A checkout under way: the tree flattened (every name checked), its directories created, its
/// entries in units (a directory's entries together, bounded), written either all at once
/// (`write_rest`: on threads natively), a few units per call (`write_some`: for a caller that
/// must get control back now and then, as the WebAssembly core's, which has one thread), or in
/// batches by writers of their own (`take_batch`, `write_batch`, `record_batch`: the
/// WebAssembly core's worker instances), then the index (`finish`).
pub struct Plan {
    dirs: Vec<Vec<u8>>,
    items: Vec<Item>,
    /// Each unit's directory and entries.
    units: Vec<(u32, Vec<u32>)>,
    /// Units written (or handed out in batches) so far.
    next: usize,
    /// Entries handed out in batches whose answers are not recorded yet.
    outstanding: usize,
    stats: Vec<Option<Stat>>,
    bytes: u64,
}

impl Plan {
    pub fn new(odb: &Odb, tree_or_commit: &[u8; 20], work_tree: &Path, threads: usize, progress: &Progress) -> Result<Plan> {
        let mut p = Planning::start(odb, tree_or_commit)?;
        p.step(odb, work_tree, usize::MAX, progress)?;
        p.finish(threads)
    }

    /// Whether every entry is written.
    pub fn written(&self) -> bool {
        self.next == self.units.len() && self.outstanding == 0
    }

    /// The entries to write (files, symbolic links, gitlinks).
    pub fn entries(&self) -> usize {
        self.items.len()
    }

    fn record(&mut self, written: Vec<Written>) {
        for (i, st, n) in written {
            self.stats[i as usize] = st;
            self.bytes += n;
        }
    }

    /// Writes the next units on this thread until at least `entries` more entries are written,
    /// or none is left.
    pub fn write_some(&mut self, odb: &Odb, work_tree: &Path, entries: usize, progress: &Progress) -> Result<()> {
        let mut done = 0;
        while done < entries && self.next < self.units.len() {
            let (d, list) = &self.units[self.next];
            let w = write_unit(odb, work_tree, &self.dirs[*d as usize], &self.items, list, progress)?;
            done += list.len();
            self.next += 1;
            self.record(w);
        }
        Ok(())
    }

    /// Writes every unit left, on `threads` threads (rayon).
    #[cfg(feature = "native")]
    pub fn write_rest(&mut self, odb: &Odb, work_tree: &Path, threads: usize, progress: &Progress) -> Result<()> {
        use rayon::prelude::*;
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads.max(1))
            .thread_name(|i| format!("mpgit-checkout-{}", i))
            .build()
            .map_err(|e| Error::io(&std::io::Error::new(std::io::ErrorKind::Other, e.to_string()), "starting the checkout threads"))?;
        let (dirs, items) = (&self.dirs, &self.items);
        let rest = &self.units[self.next..];
        let written = pool.install(|| rest.par_iter().map(|(d, list)| write_unit(odb, work_tree, &dirs[*d as usize], items, list, progress)).collect::<Result<Vec<_>>>());
        drop(pool);
        // The threads' arenas (decoded blobs, freed) go back to the system.
        crate::alloc::release_free_memory();
        self.next = self.units.len();
        self.record(written?.into_iter().flatten().collect());
        Ok(())
    }

    /// Writes every unit left, one after another (an instance of the WebAssembly core has one thread).
    #[cfg(not(feature = "native"))]
    pub fn write_rest(&mut self, odb: &Odb, work_tree: &Path, _threads: usize, progress: &Progress) -> Result<()> {
        self.write_some(odb, work_tree, usize::MAX, progress)
    }

    /// With `index`, writes the index for what was written (every entry must be).
    pub fn finish(self, index: Option<&Path>) -> Result<Summary> {
        if !self.written() {
            return Err(Error::state("the checkout is not written yet"));
        }
        if let Some(index) = index {
            let mut entries: Vec<index_file::Entry> = self.items.iter().zip(&self.stats).map(|(it, st)| index_file::Entry { path: &it.path, mode: it.mode, oid: it.oid, stat: *st }).collect();
            index_file::write_locked(index, &index_file::encode(&mut entries)?)?;
        }
        Ok(Summary { entries: self.items.len() as u64, directories: (self.dirs.len() - 1) as u64, bytes: self.bytes })
    }
}

/// Writes the entries `list` of the directory `dir`; their stats (None for gitlinks) and sizes.
fn write_unit(odb: &Odb, work_tree: &Path, dir: &[u8], items: &[Item], list: &[u32], progress: &Progress) -> Result<Vec<Written>> {
    let d = sys::Dir::open(work_tree, dir)?;
    let mut out = Vec::with_capacity(list.len());
    // One content buffer for the unit, reused from object to object.
    let mut data = Vec::new();
    for &i in list {
        let it = &items[i as usize];
        let shown = || String::from_utf8_lossy(&it.path).into_owned();
        let name = &it.path[it.name_at..];
        if it.mode == MODE_GITLINK {
            d.mkdir(name, &shown())?;
            out.push((i, None, 0));
            progress.done.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        let kind = odb
            .read_into(&it.oid, &mut data)?
            .ok_or_else(|| Error::missing_object(format!("blob {} ({}) is missing from the repository", hex(&it.oid), shown())))?;
        if kind != OBJ_BLOB {
            return Err(Error::bad(format!("{}: {} is a {}, expected a blob", shown(), hex(&it.oid), type_name(kind))));
        }
        let st = if it.mode == MODE_SYMLINK { d.symlink(&data, name, &shown())? } else { d.create_file(name, &data, it.mode == MODE_EXEC, &shown())? };
        out.push((i, Some(st), data.len() as u64));
        progress.done.fetch_add(1, Ordering::Relaxed);
    }
    Ok(out)
}
