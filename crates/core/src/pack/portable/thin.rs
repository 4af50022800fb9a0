//! The indexer around the two passes: which deltas are rebuilt, which REF_DELTA bases are
//! missing, appending supplied bases to a thin pack (as `git index-pack --fix-thin`: unresolved
//! REF_DELTAs in pack order, each missing base appended once, what it unlocks resolved at
//! once), then the .idx/.rev bytes. The appended entries are kept here (`tail`): the caller
//! writes them to the pack file where its trailer was, then the new count and trailer.

use super::resolve::{Graph, Pack, Resolver, Source};
use super::scan::Scanner;
use super::object_id;
use crate::pack::entry::{encode_header, is_delta, Entry, OBJ_REF_DELTA};
use crate::error::{Error, Result};
use crate::pack::index::{self, IdxEntry};

#[derive(Default)]
pub struct Indexer {
    pub scan: Scanner,
    pub graph: Option<Graph>,
    /// Per entry: its object id is known.
    pub done: Vec<bool>,
    pub resolved: u32,
    /// Bases supplied for a thin pack: (id, kind, data).
    bases: Vec<([u8; 20], u8, Vec<u8>)>,
    /// The next REF_DELTA (entry index) `thin_next` looks at.
    thin_cursor: usize,
    pub appended: u32,
    /// Where the received pack's trailer was (the appended bases start there).
    pub original_body: u64,
    /// Where the second pass reads the pack (set before resolving: `set_source`).
    source: Option<Box<dyn Source>>,
    /// The appended entries' bytes, in order, from `original_body`.
    pub tail: Vec<u8>,
}

impl Indexer {
    /// End of input: checks the trailer against `digest` (see `Scanner::finish`), builds the
    /// delta graph. Returns the pack checksum.
    pub fn end(&mut self, digest: &[u8; 20]) -> Result<[u8; 20]> {
        let sum = self.scan.finish(digest)?;
        self.graph = Some(Graph::build(&self.scan.entries, &self.scan.ref_bases));
        self.done = self.scan.entries.iter().map(|e| !is_delta(e.kind)).collect();
        self.original_body = self.scan.body_len();
        Ok(sum)
    }

    /// Where the pack's bytes are read back from: the pack file (or, in tests, its bytes).
    pub fn set_source(&mut self, s: Box<dyn Source>) {
        self.source = Some(s);
    }

    fn pack(&self) -> Result<Pack<'_>> {
        let src = self.source.as_deref().ok_or_else(|| Error::state("resolve before the pack file is open"))?;
        Ok(Pack { src, entries: &self.scan.entries, body_len: self.original_body, delta_bytes: &self.scan.delta_bytes, delta_at: &self.scan.delta_at })
    }

    pub fn roots(&self) -> Vec<u32> {
        self.graph.as_ref().map(|g| g.roots(&self.scan.entries, &self.scan.oids)).unwrap_or_default()
    }

    /// Records what a resolver (here or in a worker) rebuilt.
    pub fn apply(&mut self, r: &[(u32, [u8; 20])]) {
        for &(i, oid) in r {
            if !self.done[i as usize] {
                self.done[i as usize] = true;
                self.resolved += 1;
            }
            self.scan.oids[i as usize] = oid;
        }
    }

    /// Resolves the trees of `roots` here (one thread).
    pub fn resolve(&mut self, roots: &[u32]) -> Result<()> {
        let g = self.graph.as_ref().ok_or_else(|| Error::state("resolve before the end of input"))?;
        let mut r = Resolver::new(self.pack()?, g);
        for &root in roots {
            let oid = self.scan.oids[root as usize];
            r.root(root, &oid)?;
        }
        let out = std::mem::take(&mut r.out);
        self.apply(&out);
        Ok(())
    }

    /// The kept deltas of the trees below `roots` (what a worker resolving them needs of
    /// them, rather than all of them): their entries, and their bytes one after another.
    /// Deltas not among them are read back from the pack and inflated, as those not kept.
    pub fn batch_deltas(&self, roots: &[u32]) -> (Vec<u32>, Vec<u8>) {
        let (mut below, mut kept, mut bytes) = (Vec::new(), Vec::new(), Vec::new());
        if let Some(g) = &self.graph {
            for &r in roots {
                g.known_below(r, &self.scan.oids[r as usize], &mut below);
            }
        }
        for c in below {
            let at = self.scan.delta_at[c as usize];
            if at != super::scan::NOT_KEPT {
                let n = self.scan.entries[c as usize].size as usize;
                kept.push(c);
                bytes.extend_from_slice(&self.scan.delta_bytes[at as usize..at as usize + n]);
            }
        }
        (kept, bytes)
    }

    /// REF_DELTA bases neither in the pack nor rebuilt, in pack order of first use.
    pub fn missing(&self) -> Vec<[u8; 20]> {
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::new();
        for (i, e) in self.scan.entries.iter().enumerate() {
            if e.kind == OBJ_REF_DELTA && !self.done[i] {
                let b = self.scan.ref_bases[e.base as usize];
                if seen.insert(b) {
                    out.push(b);
                }
            }
        }
        out
    }

    pub fn add_base(&mut self, oid: [u8; 20], kind: u8, data: Vec<u8>) -> Result<()> {
        if object_id(kind, &data, 0)? != oid {
            return Err(Error::bad(format!("the base supplied as {} has another object id", crate::oid::hex(&oid))));
        }
        self.bases.push((oid, kind, data));
        Ok(())
    }

    /// The next supplied base to append (an index for `base_data` and `thin_append`), or None.
    pub fn thin_next(&mut self) -> Option<usize> {
        while self.thin_cursor < self.scan.entries.len() {
            let i = self.thin_cursor;
            self.thin_cursor += 1;
            let e = self.scan.entries[i];
            if e.kind != OBJ_REF_DELTA || self.done[i] {
                continue;
            }
            let want = self.scan.ref_bases[e.base as usize];
            if let Some(k) = self.bases.iter().position(|(o, _, _)| *o == want) {
                return Some(k);
            }
        }
        None
    }

    /// The kind and bytes of supplied base `k` (the caller deflates them).
    pub fn base_data(&self, k: usize) -> (u8, &[u8]) {
        (self.bases[k].1, &self.bases[k].2)
    }

    /// Appends base `k` as a whole object whose zlib stream is `deflated`, then resolves
    /// what it unlocks.
    pub fn thin_append(&mut self, k: usize, deflated: &[u8]) -> Result<()> {
        let (oid, kind, data) = self.bases[k].clone();
        let offset = self.original_body + self.tail.len() as u64;
        let mut bytes = encode_header(kind, data.len() as u64);
        let hdr_len = bytes.len() as u8;
        bytes.extend_from_slice(deflated);
        let crc32 = crc32fast::hash(&bytes);
        self.tail.extend_from_slice(&bytes);
        self.scan.append_entry(Entry { offset, size: data.len() as u64, base: 0, crc32, hdr_len, kind }, oid, offset + bytes.len() as u64);
        self.done.push(true);
        self.appended += 1;
        let g = self.graph.as_ref().expect("end() ran");
        let mut r = Resolver::new(self.pack()?, g);
        r.base(kind, data, &oid)?;
        let out = std::mem::take(&mut r.out);
        self.apply(&out);
        Ok(())
    }

    /// After appending: the pack's new object count (the caller writes it at offset 8, the
    /// tail after `original_body`, hashes the file and hands the digest to `seal`).
    pub fn count_after_append(&self) -> u32 {
        self.scan.entries.len() as u32
    }

    /// The new trailer (`digest`: the SHA-1 of the pack file after the tail and count are
    /// written), the checksum the .idx names.
    pub fn seal(&mut self, digest: [u8; 20]) {
        self.scan.checksum = Some(digest);
    }

    /// Deltas still without a base: an error naming how many.
    pub fn check_complete(&self) -> Result<()> {
        let left = self.done.iter().filter(|d| !**d).count();
        if left > 0 {
            return Err(Error::missing(format!("pack has {} unresolved deltas (their bases are neither in the pack nor supplied)", left)));
        }
        Ok(())
    }

    fn idx_entries(&self) -> Vec<IdxEntry> {
        let mut v: Vec<IdxEntry> = self.scan.entries.iter().zip(&self.scan.oids).map(|(e, o)| IdxEntry { oid: *o, offset: e.offset, crc32: e.crc32 }).collect();
        index::sort(&mut v);
        v
    }

    /// The .idx v2 and .rev bytes.
    pub fn index_files(&self, checksum: &[u8; 20]) -> (Vec<u8>, Vec<u8>) {
        let v = self.idx_entries();
        (index::idx_bytes(&v, checksum), index::rev_bytes(&v, checksum))
    }
}

impl Scanner {
    /// Records an appended entry (a thin pack's base), its data ending at `end`.
    fn append_entry(&mut self, e: Entry, oid: [u8; 20], end: u64) {
        self.entries.push(e);
        self.oids.push(oid);
        self.delta_at.push(super::scan::NOT_KEPT);
        self.set_body_len(end);
    }
}
