//! Memory, errors, the output buffer, and the indexer's calls (main instance and workers).

use mpgit_core::pack::entry::Entry;
use mpgit_core::error::{ErrorKind, Error};
use mpgit_core::pack::portable::scan::NOT_KEPT;
use mpgit_core::pack::portable::{resolve, Graph, Indexer, PackFile as PackReader};
use std::cell::RefCell;
use std::path::PathBuf;

thread_local! {
    static ERR: RefCell<(u32, String)> = RefCell::new((0, String::new()));
    /// The errno name of the last I/O failure (code 10).
    static ERRNO: RefCell<String> = RefCell::new(String::new());
    static OUT: RefCell<Vec<u8>> = RefCell::new(Vec::new());
}

/// Error codes as the JavaScript side maps them to `err.code`.
fn code(k: &ErrorKind) -> u32 {
    match k {
        ErrorKind::BadPack => 1,
        ErrorKind::MissingBase => 2,
        ErrorKind::State => 3,
        ErrorKind::MissingObject => 4,
        ErrorKind::TooLarge => 7,
        ErrorKind::NotARepo => 8,
        ErrorKind::Locked => 9,
        ErrorKind::Io(_) => 10,
        _ => 5,
    }
}

pub(crate) fn fail(e: Error) -> i32 {
    if let ErrorKind::Io(name) = &e.kind {
        ERRNO.with(|r| *r.borrow_mut() = name.clone());
    }
    ERR.with(|r| *r.borrow_mut() = (code(&e.kind), e.message));
    -1
}

pub(crate) fn out(bytes: Vec<u8>) -> i32 {
    let n = bytes.len() as i32;
    OUT.with(|o| *o.borrow_mut() = bytes);
    n
}

pub(crate) fn slice<'a>(p: *const u8, n: usize) -> &'a [u8] {
    if n == 0 {
        return &[];
    }
    // SAFETY: the caller passes a range it allocated with mp_alloc (or our own buffers).
    unsafe { std::slice::from_raw_parts(p, n) }
}

pub(crate) fn oid_at(p: *const u8) -> [u8; 20] {
    let mut o = [0u8; 20];
    o.copy_from_slice(slice(p, 20));
    o
}

/// Keeps a panic's message for JavaScript, which sees the trap that follows it.
#[no_mangle]
pub extern "C" fn mp_init() {
    std::panic::set_hook(Box::new(|info| {
        ERR.with(|r| {
            if let Ok(mut r) = r.try_borrow_mut() {
                *r = (6, format!("internal error in the WebAssembly core: {}", info));
            }
        });
    }));
}

#[no_mangle]
pub extern "C" fn mp_alloc(n: usize) -> *mut u8 {
    let mut v = Vec::<u8>::with_capacity(n.max(1));
    let p = v.as_mut_ptr();
    std::mem::forget(v);
    p
}

#[no_mangle]
pub extern "C" fn mp_free(p: *mut u8, n: usize) {
    // SAFETY: p and n come from mp_alloc.
    unsafe { drop(Vec::from_raw_parts(p, 0, n.max(1))) }
}

#[no_mangle]
pub extern "C" fn mp_err_code() -> u32 {
    ERR.with(|r| r.borrow().0)
}

#[no_mangle]
pub extern "C" fn mp_err_len() -> usize {
    ERR.with(|r| r.borrow().1.len())
}

#[no_mangle]
pub extern "C" fn mp_err_ptr() -> *const u8 {
    ERR.with(|r| r.borrow().1.as_ptr())
}

/// The errno name ("ENOENT") of the last failure with code 10, out.
#[no_mangle]
pub extern "C" fn mp_err_errno() -> i32 {
    let name = ERRNO.with(|r| r.borrow().clone());
    out(name.into_bytes())
}

#[no_mangle]
pub extern "C" fn mp_out_ptr() -> *const u8 {
    OUT.with(|o| o.borrow().as_ptr())
}

#[no_mangle]
pub extern "C" fn mp_out_len() -> usize {
    OUT.with(|o| o.borrow().len())
}

/// The SHA-1 (with collision detection) object id of `kind` + data, into the output buffer.
#[no_mangle]
pub extern "C" fn mp_object_id(kind: u8, p: *const u8, n: usize) -> i32 {
    match mpgit_core::pack::portable::object_id(kind, slice(p, n), 0) {
        Ok(id) => out(id.to_vec()),
        Err(e) => fail(e),
    }
}

fn ix<'a>(h: *mut Indexer) -> &'a mut Indexer {
    // SAFETY: h comes from mp_ix_new and is not freed while JavaScript holds it.
    unsafe { &mut *h }
}

#[no_mangle]
pub extern "C" fn mp_ix_new() -> *mut Indexer {
    Box::into_raw(Box::default())
}

#[no_mangle]
pub extern "C" fn mp_ix_free(h: *mut Indexer) {
    // SAFETY: as ix().
    unsafe { drop(Box::from_raw(h)) }
}

/// Room for `n` more pack bytes: JavaScript copies them in, then calls mp_ix_commit.
#[no_mangle]
pub extern "C" fn mp_ix_reserve(h: *mut Indexer, n: usize) -> *mut u8 {
    ix(h).scan.reserve(n).as_mut_ptr()
}

/// Parses what the bytes so far complete (`unused`: reserved bytes not filled).
#[no_mangle]
pub extern "C" fn mp_ix_commit(h: *mut Indexer, unused: usize) -> i32 {
    let i = ix(h);
    i.scan.commit(unused);
    match i.scan.advance() {
        Ok(()) => 0,
        Err(e) => fail(e),
    }
}

/// The pack's whole size, when known (a double: any file size, exactly): a pack of more
/// objects than the instance holds is then refused at its header.
#[no_mangle]
pub extern "C" fn mp_ix_expect(h: *mut Indexer, total: f64) {
    ix(h).scan.known_size = Some(total as u64);
}

/// A pack file's path (UTF-8 bytes), opened through the host for reading by offset.
fn open_pack(p: *const u8, n: usize) -> Result<PackReader, Error> {
    let path = String::from_utf8(slice(p, n).to_vec()).map(PathBuf::from).map_err(|_| Error::state("the pack's path is not UTF-8"))?;
    PackReader::open(&path)
}

/// Opens the pack file (`n` bytes of path at `p`) that resolving reads entries back from.
#[no_mangle]
pub extern "C" fn mp_ix_open(h: *mut Indexer, p: *const u8, n: usize) -> i32 {
    match open_pack(p, n) {
        Ok(r) => {
            ix(h).set_source(Box::new(r));
            0
        }
        Err(e) => fail(e),
    }
}

/// Progress: bytes (a double), then objects total, objects received, deltas total, deltas
/// resolved (u32 each).
#[no_mangle]
pub extern "C" fn mp_ix_progress(h: *mut Indexer) -> i32 {
    let i = ix(h);
    let v = [i.scan.count().unwrap_or(0), i.scan.entries.len() as u32, i.scan.deltas, i.resolved];
    let mut b = (i.scan.received() as f64).to_le_bytes().to_vec();
    b.extend(v.iter().flat_map(|x| x.to_le_bytes()));
    out(b)
}

/// End of input: the trailer checked against `digest` (20 bytes: the SHA-1 of every byte but
/// the last 20, computed by the caller), the delta graph built; the pack checksum out.
#[no_mangle]
pub extern "C" fn mp_ix_end(h: *mut Indexer, digest: *const u8) -> i32 {
    match ix(h).end(&oid_at(digest)) {
        Ok(sum) => out(sum.to_vec()),
        Err(e) => fail(e),
    }
}

/// The roots of the delta trees (u32 entry indices) out; returns their number.
#[no_mangle]
pub extern "C" fn mp_ix_roots(h: *mut Indexer) -> i32 {
    let r = ix(h).roots();
    out(r.iter().flat_map(|x| x.to_le_bytes()).collect()) / 4
}

fn u32s(p: *const u8, n: usize) -> Vec<u32> {
    slice(p, n * 4).chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

/// Resolves the trees of `n` roots (u32 indices at `p`) in this instance.
#[no_mangle]
pub extern "C" fn mp_ix_resolve(h: *mut Indexer, p: *const u8, n: usize) -> i32 {
    let roots = u32s(p, n);
    match ix(h).resolve(&roots) {
        Ok(()) => 0,
        Err(e) => fail(e),
    }
}

/// What a worker needs besides the pack file: entries, whole objects' ids, REF_DELTA bases
/// (the layout `mp_wk_table` reads: a header of `TABLE_HEAD` bytes, the two counts then the
/// body's length as a u64). The kept deltas come with each batch (mp_ix_batch).
#[no_mangle]
pub extern "C" fn mp_ix_table(h: *mut Indexer) -> i32 {
    let i = ix(h);
    let s = &i.scan;
    let mut v = Vec::with_capacity(TABLE_HEAD + s.entries.len() * (ENTRY_LEN + 20) + s.ref_bases.len() * 20);
    for n in [s.entries.len(), s.ref_bases.len()] {
        v.extend_from_slice(&(n as u32).to_le_bytes());
    }
    v.extend_from_slice(&i.original_body.to_le_bytes());
    for e in &s.entries {
        v.extend_from_slice(&e.offset.to_le_bytes());
        v.extend_from_slice(&e.size.to_le_bytes());
        v.extend_from_slice(&e.base.to_le_bytes());
        v.extend_from_slice(&[e.kind, e.hdr_len, 0, 0]);
    }
    for o in s.oids.iter().chain(&s.ref_bases) {
        v.extend_from_slice(o);
    }
    out(v)
}

/// The kept deltas a worker needs for a batch of `n` roots (u32 indices at `p`): their number
/// k, k entry indices (u32), then their bytes one after another (each its entry's size), out.
#[no_mangle]
pub extern "C" fn mp_ix_batch(h: *mut Indexer, p: *const u8, n: usize) -> i32 {
    let (kept, bytes) = ix(h).batch_deltas(&u32s(p, n));
    let mut v = Vec::with_capacity(4 + kept.len() * 4 + bytes.len());
    v.extend_from_slice(&(kept.len() as u32).to_le_bytes());
    for c in &kept {
        v.extend_from_slice(&c.to_le_bytes());
    }
    v.extend_from_slice(&bytes);
    out(v)
}

/// Bytes per entry in a worker's table, and of its header.
const ENTRY_LEN: usize = 24;
const TABLE_HEAD: usize = 16;

/// Records `n` results of workers (u32 entry index + 20-byte id each).
#[no_mangle]
pub extern "C" fn mp_ix_apply(h: *mut Indexer, p: *const u8, n: usize) {
    let r: Vec<(u32, [u8; 20])> = slice(p, n * 24).chunks_exact(24).map(|c| (u32::from_le_bytes([c[0], c[1], c[2], c[3]]), oid_at(c[4..].as_ptr()))).collect();
    ix(h).apply(&r);
}

/// REF_DELTA bases neither in the pack nor rebuilt (20 bytes each) out; returns their number.
#[no_mangle]
pub extern "C" fn mp_ix_missing(h: *mut Indexer) -> i32 {
    out(ix(h).missing().concat()) / 20
}

#[no_mangle]
pub extern "C" fn mp_ix_add_base(h: *mut Indexer, oid: *const u8, kind: u8, p: *const u8, n: usize) -> i32 {
    match ix(h).add_base(oid_at(oid), kind, slice(p, n).to_vec()) {
        Ok(()) => 0,
        Err(e) => fail(e),
    }
}

/// The next supplied base to append: its index (its bytes out, its kind from mp_ix_base_kind), or -1.
#[no_mangle]
pub extern "C" fn mp_ix_thin_next(h: *mut Indexer) -> i32 {
    let i = ix(h);
    match i.thin_next() {
        Some(k) => {
            out(i.base_data(k).1.to_vec());
            k as i32
        }
        None => -1,
    }
}

#[no_mangle]
pub extern "C" fn mp_ix_base_kind(h: *mut Indexer, k: usize) -> u32 {
    ix(h).base_data(k).0 as u32
}

/// Appends base `k` deflated (`n` bytes at `p`) and resolves what it unlocks.
#[no_mangle]
pub extern "C" fn mp_ix_thin_append(h: *mut Indexer, k: usize, p: *const u8, n: usize) -> i32 {
    match ix(h).thin_append(k, slice(p, n)) {
        Ok(()) => 0,
        Err(e) => fail(e),
    }
}

/// After appending: the pack's new object count (JavaScript writes it, and the tail, to the file).
#[no_mangle]
pub extern "C" fn mp_ix_count_after(h: *mut Indexer) -> u32 {
    ix(h).count_after_append()
}

/// The new trailer (`digest`: the SHA-1 of the pack file with its tail and count written).
#[no_mangle]
pub extern "C" fn mp_ix_seal(h: *mut Indexer, digest: *const u8) {
    ix(h).seal(oid_at(digest))
}

/// The appended entries' bytes (written to the file from mp_ix_original_body on).
#[no_mangle]
pub extern "C" fn mp_ix_tail_ptr(h: *mut Indexer) -> *const u8 {
    ix(h).tail.as_ptr()
}

#[no_mangle]
pub extern "C" fn mp_ix_tail_len(h: *mut Indexer) -> usize {
    ix(h).tail.len()
}

/// Where the received pack's trailer was: a double (any offset, exactly).
#[no_mangle]
pub extern "C" fn mp_ix_original_body(h: *mut Indexer) -> f64 {
    ix(h).original_body as f64
}

/// The .idx bytes then the .rev bytes out (for the checksum at `sum`); returns the .idx length.
#[no_mangle]
pub extern "C" fn mp_ix_index(h: *mut Indexer, sum: *const u8) -> i32 {
    let i = ix(h);
    if let Err(e) = i.check_complete() {
        return fail(e);
    }
    // The output buffer may still hold the workers' table (tens of bytes an object): let it
    // go before the .idx is built, so that the two never take memory at once.
    out(Vec::new());
    let (mut idx, rev) = i.index_files(&oid_at(sum));
    let n = idx.len() as i32;
    idx.extend_from_slice(&rev);
    out(idx);
    n
}

/// A worker's instance: the pack file (read by offset) and the table from mp_ix_table.
#[derive(Default)]
pub struct Worker {
    source: Option<PackReader>,
    entries: Vec<Entry>,
    oids: Vec<[u8; 20]>,
    body_len: u64,
    delta_bytes: Vec<u8>,
    delta_at: Vec<u32>,
    graph: Option<Graph>,
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn le64(b: &[u8], at: usize) -> u64 {
    (le32(b, at) as u64) | ((le32(b, at + 4) as u64) << 32)
}

/// A worker without its pack or table yet (it starts while the main instance scans).
#[no_mangle]
pub extern "C" fn mp_wk_new() -> *mut Worker {
    Box::into_raw(Box::default())
}

/// Opens the pack file (`n` bytes of path at `p`) this worker reads entries from.
#[no_mangle]
pub extern "C" fn mp_wk_open(h: *mut Worker, p: *const u8, n: usize) -> i32 {
    match open_pack(p, n) {
        Ok(r) => {
            wk(h).source = Some(r);
            0
        }
        Err(e) => fail(e),
    }
}

/// The table from mp_ix_table (`n` bytes at `p`): entries, ids, the delta graph.
#[no_mangle]
pub extern "C" fn mp_wk_table(h: *mut Worker, p: *const u8, n: usize) -> i32 {
    let t = slice(p, n);
    let w = wk(h);
    let wrong = || fail(Error::state("a resolution thread got a table of the wrong size"));
    if n < TABLE_HEAD {
        return wrong();
    }
    let (count, nref) = (le32(t, 0) as usize, le32(t, 4) as usize);
    if n != TABLE_HEAD + count * (ENTRY_LEN + 20) + nref * 20 {
        return wrong();
    }
    w.body_len = le64(t, 8);
    let mut at = TABLE_HEAD;
    w.entries.reserve_exact(count);
    for _ in 0..count {
        w.entries.push(Entry { offset: le64(t, at), size: le64(t, at + 8), base: le32(t, at + 16), kind: t[at + 20], hdr_len: t[at + 21], crc32: 0 });
        at += ENTRY_LEN;
    }
    w.delta_at = vec![NOT_KEPT; count];
    w.oids.reserve_exact(count);
    for _ in 0..count {
        w.oids.push(oid_at(t[at..].as_ptr()));
        at += 20;
    }
    let ref_bases: Vec<[u8; 20]> = (0..nref).map(|k| oid_at(t[at + k * 20..].as_ptr())).collect();
    w.graph = Some(Graph::build(&w.entries, &ref_bases));
    0
}

fn wk<'a>(h: *mut Worker) -> &'a mut Worker {
    // SAFETY: h comes from mp_wk_new and is not freed while JavaScript holds it.
    unsafe { &mut *h }
}

/// Resolves the trees of `n` roots (u32 indices at `p`) with the kept deltas mp_ix_batch gave
/// for them (`dn` bytes at `dp`); results (u32 entry + 20-byte id each) out; returns their number.
#[no_mangle]
pub extern "C" fn mp_wk_resolve(h: *mut Worker, p: *const u8, n: usize, dp: *const u8, dn: usize) -> i32 {
    let w = wk(h);
    let roots = u32s(p, n);
    let kept = match w.take_batch(slice(dp, dn)) {
        Ok(k) => k,
        Err(e) => return fail(e),
    };
    let r = w.resolve(&roots);
    for c in kept {
        w.delta_at[c as usize] = NOT_KEPT;
    }
    match r {
        Ok(v) => out(v) / 24,
        Err(e) => fail(e),
    }
}

impl Worker {
    /// The batch's kept deltas into place (their entries returned, to be forgotten after).
    fn take_batch(&mut self, b: &[u8]) -> Result<Vec<u32>, Error> {
        let bad = || Error::state("a resolution thread got a batch of the wrong size");
        if b.len() < 4 {
            return Err(bad());
        }
        let k = le32(b, 0) as usize;
        let data = 4 + k * 4;
        if b.len() < data {
            return Err(bad());
        }
        let kept: Vec<u32> = (0..k).map(|j| le32(b, 4 + j * 4)).collect();
        let mut at = 0usize;
        for &c in &kept {
            let e = self.entries.get(c as usize).ok_or_else(bad)?;
            self.delta_at[c as usize] = at as u32;
            at += e.size as usize;
        }
        if data + at != b.len() {
            return Err(bad());
        }
        self.delta_bytes = b[data..].to_vec();
        Ok(kept)
    }

    /// The trees of `roots`, as (u32 entry + 20-byte id) records.
    fn resolve(&self, roots: &[u32]) -> Result<Vec<u8>, Error> {
        let (graph, src) = match (&self.graph, &self.source) {
            (Some(g), Some(s)) => (g, s),
            _ => return Err(Error::state("resolve before the pack file and the table")),
        };
        let pack = resolve::Pack { src, entries: &self.entries, body_len: self.body_len, delta_bytes: &self.delta_bytes, delta_at: &self.delta_at };
        let mut r = resolve::Resolver::new(pack, graph);
        for &root in roots {
            r.root(root, &self.oids[root as usize])?;
        }
        let mut v = Vec::with_capacity(r.out.len() * 24);
        for (i, o) in &r.out {
            v.extend_from_slice(&i.to_le_bytes());
            v.extend_from_slice(o);
        }
        Ok(v)
    }
}

#[no_mangle]
pub extern "C" fn mp_wk_free(h: *mut Worker) {
    // SAFETY: as wk().
    unsafe { drop(Box::from_raw(h)) }
}
