//! Making a checkout's plan: the tree flattened (every path checked; directories parents
//! before children, the root "" first), then every directory created, parents first, then the
//! entries grouped in units. All at once natively (`Plan::new`), or a bounded amount of work
//! per `step` for a caller that must get control back now and then (the WebAssembly core's: on
//! a tree of a million files flattening alone takes seconds).

use super::{Item, Plan, Progress, MAX_TREE_DEPTH, UNITS_PER_THREAD, UNIT_MAX, UNIT_MIN};
use crate::odb::parse::{self, MODE_EXEC, MODE_FILE, MODE_GITLINK, MODE_SYMLINK, MODE_TREE};
use crate::odb::{sys, Error, Odb, Result};
use crate::oid::hex;
use crate::pack::entry::{type_name, OBJ_COMMIT, OBJ_TREE};
use std::path::Path;
use std::sync::atomic::Ordering;

pub struct Planning {
    dirs: Vec<Vec<u8>>,
    items: Vec<Item>,
    /// Trees still to read: id, its directory, its depth.
    stack: Vec<([u8; 20], u32, usize)>,
    /// Directories created so far (the root is there).
    made: usize,
}

impl Planning {
    /// The plan of a checkout of `tree_or_commit` (a tree, or a commit's tree), begun.
    pub fn start(odb: &Odb, tree_or_commit: &[u8; 20]) -> Result<Planning> {
        let root = odb.read_existing(tree_or_commit, "tree")?;
        let tree = match root.kind {
            OBJ_TREE => *tree_or_commit,
            OBJ_COMMIT => parse::commit(&root.data, tree_or_commit)?.tree,
            k => return Err(Error::bad(format!("{} is a {}, expected a tree or a commit", hex(tree_or_commit), type_name(k)))),
        };
        Ok(Planning { dirs: vec![Vec::new()], items: Vec::new(), stack: vec![(tree, 0, 0)], made: 1 })
    }

    /// Reads at most `budget` trees, or once every tree is read (the total then set in
    /// `progress`), creates at most `budget` directories: true when nothing is left to do.
    pub fn step(&mut self, odb: &Odb, work_tree: &Path, budget: usize, progress: &Progress) -> Result<bool> {
        if !self.stack.is_empty() {
            for _ in 0..budget {
                match self.stack.pop() {
                    Some((oid, dir, depth)) => self.read_tree(odb, oid, dir, depth)?,
                    None => break,
                }
            }
            if !self.stack.is_empty() {
                return Ok(false);
            }
            progress.total.store(self.items.len() as u64, Ordering::Relaxed);
        }
        let end = self.made.saturating_add(budget).min(self.dirs.len());
        for d in &self.dirs[self.made..end] {
            sys::create_dir(work_tree, d)?;
        }
        self.made = end;
        Ok(self.made == self.dirs.len())
    }

    /// Adds the entries of one tree (its subtrees to the stack), with their modes as a
    /// checkout writes them.
    fn read_tree(&mut self, odb: &Odb, oid: [u8; 20], dir: u32, depth: usize) -> Result<()> {
        if depth > MAX_TREE_DEPTH {
            return Err(Error::bad(format!("tree {} nests deeper than {} levels", hex(&oid), MAX_TREE_DEPTH)));
        }
        let obj = odb.read_existing(&oid, "tree")?;
        if obj.kind != OBJ_TREE {
            return Err(Error::bad(format!("{} is a {}, expected a tree", hex(&oid), type_name(obj.kind))));
        }
        let entries = parse::tree(&obj.data, &oid, true)?;
        // Two entries with one name (a link and a directory through it, say) would have the
        // second written over or through the first: git's fsck calls it duplicateEntries.
        let mut names: Vec<&[u8]> = entries.iter().map(|e| e.name).collect();
        names.sort_unstable();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(Error::bad(format!("tree {} has two entries named {:?}; the repository is corrupt or hostile", hex(&oid), String::from_utf8_lossy(w[0]))));
        }
        for e in entries {
            let prefix = &self.dirs[dir as usize];
            let mut path = Vec::with_capacity(prefix.len() + 1 + e.name.len());
            path.extend_from_slice(prefix);
            if !prefix.is_empty() {
                path.push(b'/');
            }
            path.extend_from_slice(e.name);
            if e.mode == MODE_TREE {
                self.dirs.push(path);
                self.stack.push((e.oid, (self.dirs.len() - 1) as u32, depth + 1));
            } else {
                let mode = match e.mode {
                    MODE_GITLINK | MODE_SYMLINK => e.mode,
                    m if m & 0o111 != 0 => MODE_EXEC,
                    _ => MODE_FILE,
                };
                self.items.push(Item { name_at: path.len() - e.name.len(), path, dir, mode, oid: e.oid });
            }
        }
        Ok(())
    }

    /// The plan, its units sized for `threads` writers (every step must be done).
    pub fn finish(self, threads: usize) -> Result<Plan> {
        if !self.stack.is_empty() || self.made != self.dirs.len() {
            return Err(Error::state("the checkout is not planned yet"));
        }
        let Planning { dirs, items, .. } = self;
        // A directory's entries together, in bounded units.
        let mut by_dir: Vec<Vec<u32>> = vec![Vec::new(); dirs.len()];
        for (i, it) in items.iter().enumerate() {
            by_dir[it.dir as usize].push(i as u32);
        }
        let unit = (items.len() / (threads.max(1) * UNITS_PER_THREAD)).clamp(UNIT_MIN, UNIT_MAX);
        let units = by_dir.iter().enumerate().flat_map(|(d, list)| list.chunks(unit).map(move |c| (d as u32, c.to_vec()))).collect();
        let stats = vec![None; items.len()];
        Ok(Plan { dirs, items, units, next: 0, outstanding: 0, stats, bytes: 0 })
    }
}
