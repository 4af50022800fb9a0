//! The connectivity check (git's check_connected, `rev-list --objects` in effect): every object
//! some tips reach must be here. Commits and tags are walked first; trees wait, then go in the
//! order their commits came (newest first): packs keep recent objects whole and older ones as
//! deltas against them, so each delta base is rebuilt once and found in the cache after.
//! Blobs are only looked up, never read.
//!
//! A tree is mostly the tree at the same path one commit later, which the walk has just done:
//! each tree is compared entry by entry with that one (when it is among the trees read
//! recently), and only the entries that differ are looked up. On a history of small changes
//! that is a few entries per tree instead of all of them, which dominated the walk.

use super::cache::Lru;
use super::fast_map::{FastSet, Id};
use super::parse::{self, TreeEntry, MODE_GITLINK, MODE_TREE};
use super::{Odb, Error, Result};
use crate::pack::entry::{OBJ_COMMIT, OBJ_TAG, OBJ_TREE};
use crate::oid::hex;
use std::cmp::Ordering;
use std::collections::HashSet;
use std::sync::Arc;

/// Bytes of recently walked trees kept to compare the next ones with.
const RECENT_TREES_BYTES: usize = 16 << 20;

/// A missing object and what referred to it (None: a tip).
fn missing(oid: &[u8; 20], from: Option<[u8; 20]>) -> Error {
    let from = from.map_or_else(|| "a ref".to_string(), |f| format!("object {}", hex(&f)));
    Error::missing_object(format!("object {} (reached from {}) is missing: the fetched packs are incomplete", hex(oid), from))
}

/// An object to walk: what referred to it, and for a tree, a walked tree it likely resembles
/// (the same path in the commit that led here).
#[derive(Clone, Copy)]
struct Work {
    oid: [u8; 20],
    from: Option<[u8; 20]>,
    like: Option<[u8; 20]>,
}

/// git's tree order: names compared as if a tree's had a trailing '/'.
fn tree_order(a: &TreeEntry, b: &TreeEntry) -> Ordering {
    let n = a.name.len().min(b.name.len());
    a.name[..n].cmp(&b.name[..n]).then_with(|| {
        let end = |e: &TreeEntry| e.name.get(n).copied().unwrap_or(if e.mode == MODE_TREE { b'/' } else { 0 });
        end(a).cmp(&end(b))
    })
}

/// Walks from `tips`; `shallow` commits count as having no parents; objects `before` has (the
/// database as it was before a fetch: complete) end the walk. Returns the objects reached.
pub fn check_connected(odb: &Odb, tips: &[[u8; 20]], shallow: &HashSet<[u8; 20]>, before: Option<&Odb>) -> Result<u64> {
    let mut w = Walk::new(odb, tips);
    let r = w.step(odb, shallow, before, usize::MAX).map(|n| n.unwrap_or(0));
    drop(w);
    #[cfg(feature = "native")]
    crate::alloc::release_free_memory();
    r
}

/// A walk under way, done whole (`check_connected`) or some objects at a time (`step`: the
/// WebAssembly core's, which must give the event loop its thread back now and then). Each step
/// is given the same databases and shallow commits.
pub struct Walk {
    /// Everything here is either walked already or on its way (on the stack, or in `trees`).
    seen: FastSet<Id>,
    stack: Vec<Work>,
    trees: Vec<Work>,
    next_tree: usize,
    /// Trees whose every entry is in `seen` (or in `before`): what the next ones are compared with.
    recent: Lru<Id>,
}

impl Walk {
    pub fn new(odb: &Odb, tips: &[[u8; 20]]) -> Walk {
        let mut seen: FastSet<Id> = FastSet::default();
        seen.reserve(odb.object_count());
        let mut stack = Vec::new();
        for t in tips {
            if seen.insert(Id(*t)) {
                stack.push(Work { oid: *t, from: None, like: None });
            }
        }
        Walk { seen, stack, trees: Vec::new(), next_tree: 0, recent: Lru::new(RECENT_TREES_BYTES) }
    }

    /// Walks at most `budget` more objects: Some(objects reached) when the walk is complete,
    /// None when there is more.
    pub fn step(&mut self, odb: &Odb, shallow: &HashSet<[u8; 20]>, before: Option<&Odb>, budget: usize) -> Result<Option<u64>> {
        let Walk { seen, stack, trees, next_tree, recent } = self;
        for _ in 0..budget {
            let w = match stack.pop() {
                Some(w) => w,
                None if *next_tree < trees.len() => {
                    *next_tree += 1;
                    trees[*next_tree - 1]
                }
                None => return Ok(Some(seen.len() as u64)),
            };
            if let Some(b) = before {
                if b.has(&w.oid)? {
                    continue;
                }
            }
            let obj = odb.read(&w.oid)?.ok_or_else(|| missing(&w.oid, w.from))?;
            match obj.kind {
                OBJ_COMMIT => {
                    let c = parse::commit(&obj.data, &w.oid)?;
                    if seen.insert(Id(c.tree)) {
                        trees.push(Work { oid: c.tree, from: Some(w.oid), like: w.like });
                    }
                    if !shallow.contains(&w.oid) {
                        for p in c.parents {
                            if seen.insert(Id(p)) {
                                // The parent's tree will resemble this commit's.
                                stack.push(Work { oid: p, from: Some(w.oid), like: Some(c.tree) });
                            }
                        }
                    }
                }
                OBJ_TREE => {
                    let data = Arc::new(obj.data);
                    let like_data = w.like.and_then(|l| recent.get(&Id(l))).map(|(_, d)| d);
                    let like = match (&like_data, w.like) {
                        (Some(d), Some(l)) => parse::tree(d, &l, false)?,
                        _ => Vec::new(),
                    };
                    let mut j = 0;
                    for e in parse::tree(&data, &w.oid, false)? {
                        while j < like.len() && like[j].name != e.name && tree_order(&like[j], &e) == Ordering::Less {
                            j += 1;
                        }
                        let prev = like.get(j).filter(|p| p.name == e.name);
                        if prev.map_or(false, |p| p.oid == e.oid && p.mode == e.mode) {
                            continue; // in `seen` since that tree was walked
                        }
                        if e.mode == MODE_GITLINK || !seen.insert(Id(e.oid)) {
                            continue;
                        }
                        if e.mode == MODE_TREE {
                            let like = prev.filter(|p| p.mode == MODE_TREE).map(|p| p.oid);
                            stack.push(Work { oid: e.oid, from: Some(w.oid), like });
                        } else if !odb.has(&e.oid)? {
                            return Err(missing(&e.oid, Some(w.oid)));
                        }
                    }
                    recent.put(Id(w.oid), OBJ_TREE, &data);
                }
                OBJ_TAG => {
                    let t = parse::tag(&obj.data, &w.oid)?;
                    if seen.insert(Id(t.object)) {
                        stack.push(Work { oid: t.object, from: Some(w.oid), like: None });
                    }
                }
                _ => {}
            }
        }
        Ok(None)
    }
}
