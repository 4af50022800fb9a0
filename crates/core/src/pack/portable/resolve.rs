//! The second pass: deltas rebuilt from their bases, depth first from each root (a whole object
//! with delta children), each result hashed. Entries are read back from the pack by offset
//! (`Source`, through `window::Reader` as the native indexer reads them: an entry ends where
//! the next begins, small ones come from a window), so the pack itself is never held. A
//! caller with several workers gives each a share of the roots: a tree of deltas is resolved
//! where its root is, REF_DELTA children included (every worker has the whole graph), so
//! workers never wait for each other.

use super::inflate;
use super::object_id;
use super::scan::NOT_KEPT;
use crate::pack::delta;
use crate::pack::window::Reader;
use crate::pack::entry::{is_delta, Entry, OBJ_REF_DELTA};
use crate::error::{Error, Result};
use miniz_oxide::inflate::core::DecompressorOxide;

/// Who is whose delta base: OFS_DELTA children by base entry, REF_DELTA children by base id.
pub struct Graph {
    ofs_start: Vec<u32>,
    ofs_children: Vec<u32>,
    refs: Vec<([u8; 20], u32)>,
}

impl Graph {
    pub fn build(entries: &[Entry], ref_bases: &[[u8; 20]]) -> Graph {
        let n = entries.len();
        let mut ofs_start = vec![0u32; n + 1];
        let mut refs = Vec::new();
        for (i, e) in entries.iter().enumerate() {
            if e.kind == OBJ_REF_DELTA {
                refs.push((ref_bases[e.base as usize], i as u32));
            } else if is_delta(e.kind) {
                ofs_start[e.base as usize + 1] += 1;
            }
        }
        for i in 0..n {
            ofs_start[i + 1] += ofs_start[i];
        }
        let mut fill = ofs_start.clone();
        let mut ofs_children = vec![0u32; ofs_start[n] as usize];
        for (i, e) in entries.iter().enumerate() {
            if is_delta(e.kind) && e.kind != OBJ_REF_DELTA {
                ofs_children[fill[e.base as usize] as usize] = i as u32;
                fill[e.base as usize] += 1;
            }
        }
        refs.sort_unstable();
        Graph { ofs_start, ofs_children, refs }
    }

    fn ofs(&self, i: u32) -> &[u32] {
        &self.ofs_children[self.ofs_start[i as usize] as usize..self.ofs_start[i as usize + 1] as usize]
    }

    fn refs_of(&self, oid: &[u8; 20]) -> impl Iterator<Item = u32> + '_ {
        let oid = *oid;
        let at = self.refs.partition_point(|(b, _)| *b < oid);
        self.refs[at..].iter().take_while(move |(b, _)| *b == oid).map(|&(_, c)| c)
    }

    /// The children of entry `i` (None for an appended base) with id `oid`.
    fn children(&self, i: Option<u32>, oid: &[u8; 20]) -> Vec<u32> {
        let mut v: Vec<u32> = i.map(|i| self.ofs(i).to_vec()).unwrap_or_default();
        v.extend(self.refs_of(oid));
        v
    }

    /// The deltas below root `root` (id `oid`) known before resolving: its children and
    /// their OFS_DELTA descendants (a REF_DELTA child of a delta names an id known only once
    /// that delta is rebuilt).
    pub fn known_below(&self, root: u32, oid: &[u8; 20], out: &mut Vec<u32>) {
        let mut stack = self.children(Some(root), oid);
        while let Some(c) = stack.pop() {
            out.push(c);
            stack.extend_from_slice(self.ofs(c));
        }
    }

    /// Whole objects that are some delta's base, in pack order.
    pub fn roots(&self, entries: &[Entry], oids: &[[u8; 20]]) -> Vec<u32> {
        (0..entries.len() as u32)
            .filter(|&i| !is_delta(entries[i as usize].kind) && (!self.ofs(i).is_empty() || self.refs_of(&oids[i as usize]).next().is_some()))
            .collect()
    }

    /// The REF_DELTA entries waiting for `oid`.
    pub fn has_ref_children(&self, oid: &[u8; 20]) -> bool {
        self.refs_of(oid).next().is_some()
    }
}

/// What a pass rebuilt: (entry, object id) of each delta.
pub type Resolved = Vec<(u32, [u8; 20])>;

/// Where a resolver reads the pack's bytes: the pack file (the host's pread in the
/// WebAssembly core), or bytes in memory.
pub trait Source {
    /// Fills `buf` with the pack's bytes from offset `at`.
    fn read_at(&self, buf: &mut [u8], at: u64) -> Result<()>;
}

impl Source for Vec<u8> {
    fn read_at(&self, buf: &mut [u8], at: u64) -> Result<()> {
        let from = usize::try_from(at).ok().filter(|&f| f <= self.len() && self.len() - f >= buf.len());
        match from {
            Some(f) => {
                buf.copy_from_slice(&self[f..f + buf.len()]);
                Ok(())
            }
            None => Err(Error::at(at, "the pack is shorter than the entries indexed")),
        }
    }
}

impl Source for crate::odb::sys::PackReader {
    fn read_at(&self, buf: &mut [u8], at: u64) -> Result<()> {
        self.read_exact_at(buf, at).map_err(|e| Error::io(&e, format!("reading the pack at offset {}", at)))
    }
}

/// The pack as a resolver reads it.
pub struct Pack<'a> {
    pub src: &'a dyn Source,
    pub entries: &'a [Entry],
    /// Where the last entry's data ends (the trailer's offset).
    pub body_len: u64,
    /// The first pass's inflated deltas (`Scanner::delta_bytes`, `delta_at`).
    pub delta_bytes: &'a [u8],
    pub delta_at: &'a [u32],
}

impl<'a> Pack<'a> {
    /// Where entry `i`'s compressed data starts and ends.
    fn extent(&self, i: u32) -> (u64, u64) {
        let e = &self.entries[i as usize];
        let end = self.entries.get(i as usize + 1).map_or(self.body_len, |n| n.offset);
        (e.data_offset(), end)
    }

    /// Delta `i` inflated by the first pass, if kept.
    fn kept_delta(&self, i: u32) -> Option<&'a [u8]> {
        let at = *self.delta_at.get(i as usize)?;
        if at == NOT_KEPT {
            return None;
        }
        let start = at as usize;
        self.delta_bytes.get(start..start + self.entries[i as usize].size as usize)
    }
}

/// The compressed bytes [start, end) of the pack in `src`.
fn read<'r>(reader: &'r mut Reader, src: &dyn Source, start: u64, end: u64, limit: u64) -> Result<&'r [u8]> {
    reader.get(start, end, limit, |buf, at| src.read_at(buf, at).map(|()| buf.len()))
}

struct Frame {
    data: Vec<u8>,
    kind: u8,
    children: Vec<u32>,
    next: usize,
}

/// Resolves, for the callers' progress, counting each rebuilt delta in `done`.
pub struct Resolver<'a> {
    pack: Pack<'a>,
    graph: &'a Graph,
    reader: Reader,
    d: Box<DecompressorOxide>,
    delta_buf: Vec<u8>,
    pub out: Resolved,
}

impl<'a> Resolver<'a> {
    pub fn new(pack: Pack<'a>, graph: &'a Graph) -> Resolver<'a> {
        Resolver { pack, graph, reader: Reader::default(), d: Box::new(DecompressorOxide::new()), delta_buf: Vec::new(), out: Vec::new() }
    }

    fn inflate(&mut self, i: u32) -> Result<Vec<u8>> {
        let e = self.pack.entries[i as usize];
        let (start, end) = self.pack.extent(i);
        let z = read(&mut self.reader, self.pack.src, start, end, self.pack.body_len)?;
        let size = usize::try_from(e.size).map_err(|_| Error::at(e.offset, "object too large for the WebAssembly core"))?;
        let mut v = Vec::new();
        inflate::exact(&mut self.d, z, size, &mut v).ok_or_else(|| Error::at(e.offset, "inflate failed on the second pass"))?;
        Ok(v)
    }

    /// Every delta below the whole object `root` (an entry; `oids[root]` its id).
    pub fn root(&mut self, root: u32, oid: &[u8; 20]) -> Result<()> {
        let data = self.inflate(root)?;
        let kind = self.pack.entries[root as usize].kind;
        self.below(Some(root), kind, data, oid)
    }

    /// Every delta below an object given whole (a base appended to a thin pack).
    pub fn base(&mut self, kind: u8, data: Vec<u8>, oid: &[u8; 20]) -> Result<()> {
        self.below(None, kind, data, oid)
    }

    fn below(&mut self, at: Option<u32>, kind: u8, data: Vec<u8>, oid: &[u8; 20]) -> Result<()> {
        let children = self.graph.children(at, oid);
        if children.is_empty() {
            return Ok(());
        }
        let mut stack = vec![Frame { data, kind, children, next: 0 }];
        while let Some(top) = stack.last_mut() {
            if top.next == top.children.len() {
                stack.pop();
                continue;
            }
            let c = top.children[top.next];
            top.next += 1;
            let kind = top.kind;
            let e = self.pack.entries[c as usize];
            let top = stack.last().expect("not empty");
            let result = match self.pack.kept_delta(c) {
                Some(d) => delta::apply(&top.data, d),
                None => {
                    let (start, end) = self.pack.extent(c);
                    let z = read(&mut self.reader, self.pack.src, start, end, self.pack.body_len)?;
                    inflate::exact(&mut self.d, z, e.size as usize, &mut self.delta_buf).ok_or_else(|| Error::at(e.offset, "inflate failed on the second pass"))?;
                    delta::apply(&top.data, &self.delta_buf)
                }
            }
            .map_err(|err| Error::at(e.offset, err))?;
            let id = object_id(kind, &result, e.offset)?;
            self.out.push((c, id));
            let children = self.graph.children(Some(c), &id);
            if !children.is_empty() {
                stack.push(Frame { data: result, kind, children, next: 0 });
            }
        }
        Ok(())
    }
}
