//! The indexer against `git index-pack` (git 2.39 is a test dependency, like everywhere in
//! mpgit): real repositories, real packs from `git pack-objects`, files compared byte for byte.
//! Corrupt packs are built by hand (`PackBuilder`) so that each defect is exactly the one meant.

use crate::oid::hex;
use super::entry::{encode_header, OBJ_BLOB, OBJ_COMMIT, OBJ_OFS_DELTA, OBJ_REF_DELTA};
use super::inflate::deflate;
use super::*;
use crate::testutil::{git, make_repo, varint, TempDir};
use sha1::{Digest, Sha1};
use std::path::{Path, PathBuf};

/// `git pack-objects` over `revs` (e.g. ["--all"] or ["HEAD", "^HEAD~3"]); `thin` allows
/// REF_DELTAs against objects the revs exclude.
pub(super) fn pack_objects(repo: &Path, revs: &[&str], thin: bool) -> Vec<u8> {
    let (opts, revs): (Vec<&str>, Vec<&str>) = revs.iter().partition(|r| r.starts_with("--"));
    let input = revs.join("\n") + "\n";
    let mut args = vec!["pack-objects", "--stdout", "--revs", "--delta-base-offset", "-q"];
    args.extend(opts);
    if thin {
        args.push("--thin");
    }
    git(repo, &args, Some(input.as_bytes()))
}

/// What `git index-pack` makes of `pack` (pack bytes after --fix-thin, .idx, .rev).
pub(super) fn git_index(repo: &Path, dir: &TempDir, pack: &[u8], fix_thin: bool) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let p = dir.path("git.pack");
    let idx = dir.path("git.idx");
    let _ = std::fs::remove_file(&p);
    let _ = std::fs::remove_file(&idx);
    let _ = std::fs::remove_file(dir.path("git.rev"));
    let ps = p.to_str().unwrap();
    let is = idx.to_str().unwrap();
    if fix_thin {
        git(repo, &["-c", "pack.writeReverseIndex=true", "index-pack", "--stdin", "--fix-thin", "-o", is, ps], Some(pack));
    } else {
        std::fs::write(&p, pack).unwrap();
        git(repo, &["-c", "pack.writeReverseIndex=true", "index-pack", "-o", is, ps], None);
    }
    (std::fs::read(&p).unwrap(), std::fs::read(&idx).unwrap(), std::fs::read(dir.path("git.rev")).unwrap())
}

/// A repository (`make_repo` with `commits` and `seed`) in a new temporary directory, and what
/// `git pack-objects` makes of `revs` in it.
fn repo_and_pack(tag: &str, commits: usize, seed: u64, revs: &[&str], thin: bool) -> (TempDir, PathBuf, Vec<u8>) {
    let dir = TempDir::new(tag);
    let repo = dir.mkdir("repo");
    make_repo(&repo, commits, seed);
    let pack = pack_objects(&repo, revs, thin);
    (dir, repo, pack)
}

fn opts(threads: usize) -> Options {
    Options { threads, max_cache_bytes: None }
}

/// A pack's bytes after indexing, its .idx, its .rev, and the summary.
type Indexed = (Vec<u8>, Vec<u8>, Vec<u8>, Summary);

/// Streams `pack` through an Indexer in chunks of `chunk` bytes; with `repo`, completes it
/// from that repository's objects. Returns (pack, idx, rev, summary).
fn stream_index(dir: &TempDir, tag: &str, pack: &[u8], chunk: usize, o: Options, repo: Option<&Path>) -> Result<Indexed> {
    let p = dir.path(&format!("{}.pack", tag));
    let idx = dir.path(&format!("{}.idx", tag));
    let rev = dir.path(&format!("{}.rev", tag));
    let ix = Indexer::create(&p, o)?;
    for c in pack.chunks(chunk.max(1)) {
        ix.write(c)?;
    }
    let missing = ix.resolve()?;
    if let Some(repo) = repo {
        for id in &missing {
            let (kind, data) = object_of(repo, id);
            ix.add_base(*id, kind, &data)?;
        }
    }
    let s = ix.finish(&idx, Some(&rev), repo.is_some(), inflate::GIT_APPEND_LEVEL)?;
    Ok((std::fs::read(&p).unwrap(), std::fs::read(&idx).unwrap(), std::fs::read(&rev).unwrap(), s))
}

/// The kind and bytes of object `id` in `repo` (a base for --fix-thin).
pub(super) fn object_of(repo: &Path, id: &[u8; 20]) -> (u8, Vec<u8>) {
    let h = hex(id);
    let kind = match String::from_utf8(git(repo, &["cat-file", "-t", &h], None)).unwrap().trim() {
        "commit" => 1,
        "tree" => 2,
        "blob" => 3,
        "tag" => 4,
        k => panic!("unexpected type {}", k),
    };
    (kind, git(repo, &["cat-file", entry::type_name(kind), &h], None))
}

/// A repository with history, a thin pack of its last 4 commits, and what git index-pack
/// --fix-thin makes of it (pack, .idx, .rev).
pub(super) struct ThinFixture {
    pub repo: PathBuf,
    pub thin: Vec<u8>,
    pub git_pack: Vec<u8>,
    pub git_idx: Vec<u8>,
    pub git_rev: Vec<u8>,
}

pub(super) fn thin_fixture(dir: &TempDir) -> ThinFixture {
    let repo = dir.mkdir("repo");
    make_repo(&repo, 20, 3);
    let thin = pack_objects(&repo, &["HEAD", "^HEAD~4"], true);
    let (git_pack, git_idx, git_rev) = git_index(&repo, dir, &thin, true);
    assert!(git_pack.len() > thin.len(), "git appended no base: the pack is not thin");
    ThinFixture { repo, thin, git_pack, git_idx, git_rev }
}

fn file_index(dir: &TempDir, tag: &str, pack: &[u8], o: Options) -> Result<(Vec<u8>, Vec<u8>, Summary)> {
    let p = dir.path(&format!("{}.pack", tag));
    std::fs::write(&p, pack).unwrap();
    let idx = dir.path(&format!("{}.idx", tag));
    let rev = dir.path(&format!("{}.rev", tag));
    let s = index_pack_file(&p, o, &idx, Some(&rev))?;
    Ok((std::fs::read(&idx).unwrap(), std::fs::read(&rev).unwrap(), s))
}

#[test]
fn idx_and_rev_are_byte_equal_to_git_at_1_and_2_threads() {
    let (dir, repo, pack) = repo_and_pack("full", 30, 11, &["--all"], false);
    let (_, git_idx, git_rev) = git_index(&repo, &dir, &pack, false);
    for threads in [1, 2] {
        let (idx, rev, s) = file_index(&dir, &format!("file{}", threads), &pack, opts(threads)).unwrap();
        assert!(idx == git_idx, "file mode, {} threads: .idx differs from git's", threads);
        assert!(rev == git_rev, "file mode, {} threads: .rev differs from git's", threads);
        assert_eq!(&s.pack_checksum[..], &pack[pack.len() - 20..]);
        assert!(s.delta_count > 30, "the test repository should make deltas ({})", s.delta_count);
        assert_eq!(s.appended_bases, 0);
        let (p, idx, rev, _) = stream_index(&dir, &format!("stream{}", threads), &pack, 65536, opts(threads), None).unwrap();
        assert!(p == pack && idx == git_idx && rev == git_rev, "stream mode, {} threads differs from git", threads);
    }
    // More threads than cores, and the progress counters at the end.
    let ix = Indexer::create(&dir.path("p4.pack"), opts(4)).unwrap();
    for c in pack.chunks(10_000) {
        ix.write(c).unwrap();
    }
    assert!(ix.resolve().unwrap().is_empty());
    let p = ix.progress();
    let n = u32::from_be_bytes(pack[8..12].try_into().unwrap()) as u64;
    assert_eq!((p.bytes, p.objects_total, p.objects_received), (pack.len() as u64, n, n));
    assert!(p.deltas_total > 30 && p.deltas_resolved == p.deltas_total, "{:?}", p);
    ix.finish(&dir.path("p4.idx"), None, false, 1).unwrap();
    assert!(std::fs::read(dir.path("p4.idx")).unwrap() == git_idx);
}

#[test]
fn any_chunking_and_a_tiny_cache_give_the_same_index() {
    let (dir, repo, pack) = repo_and_pack("chunks", 12, 5, &["--all"], false);
    let (_, git_idx, git_rev) = git_index(&repo, &dir, &pack, false);
    for (i, chunk) in [1usize, 7, 4096, 1 << 20].into_iter().enumerate() {
        let o = Options { threads: 1 + i % 2, max_cache_bytes: Some(if i == 1 { 1 } else { 64 << 20 }) };
        let (p, idx, rev, s) = stream_index(&dir, &format!("c{}", i), &pack, chunk, o, None).unwrap();
        assert!(p == pack && idx == git_idx && rev == git_rev, "chunk {} differs from git", chunk);
        assert_eq!(s.object_count as usize, u32::from_be_bytes(pack[8..12].try_into().unwrap()) as usize);
    }
    // The cache cap at its smallest: every base is evicted and rebuilt from the pack.
    let (idx, rev, _) = file_index(&dir, "tiny-cache", &pack, Options { threads: 2, max_cache_bytes: Some(0) }).unwrap();
    assert!(idx == git_idx && rev == git_rev);
}

#[test]
fn streaming_inflate_path_matches_the_whole_buffer_path() {
    let (dir, repo, pack) = repo_and_pack("zstream", 6, 9, &["--all"], false);
    let (_, git_idx, _) = git_index(&repo, &dir, &pack, false);
    // Every entry above 64 bytes streams through zlib, fed in small pieces.
    let progress = std::sync::Arc::new(Progress::default());
    let mut sc = scan::Scanner::with_whole_max(progress, 64);
    for c in pack.chunks(333) {
        sc.push(c).unwrap();
    }
    let s = sc.finish().unwrap();
    let mut sc2 = scan::Scanner::new(std::sync::Arc::new(Progress::default()));
    sc2.push(&pack).unwrap();
    let s2 = sc2.finish().unwrap();
    let crcs: Vec<(u64, u32, u64)> = s.entries.iter().map(|e| (e.offset, e.crc32, e.size)).collect();
    let crcs2: Vec<(u64, u32, u64)> = s2.entries.iter().map(|e| (e.offset, e.crc32, e.size)).collect();
    assert_eq!(crcs, crcs2);
    assert_eq!(s.oids, s2.oids);
    assert_eq!(s.known, s2.known);
    let (idx, _, _) = file_index(&dir, "plain", &pack, opts(1)).unwrap();
    assert!(idx == git_idx);
}

#[test]
fn thin_pack_completed_like_git_fix_thin() {
    let dir = TempDir::new("thin");
    let ThinFixture { repo, thin, git_pack, git_idx, git_rev } = thin_fixture(&dir);
    for threads in [1, 2] {
        let (p, idx, rev, s) = stream_index(&dir, &format!("t{}", threads), &thin, 10_000, opts(threads), Some(&repo)).unwrap();
        assert!(s.appended_bases > 0);
        if p != git_pack {
            let first = p.iter().zip(&git_pack).position(|(a, b)| a != b);
            panic!("{} threads: completed pack ({} bytes) differs from git's --fix-thin ({} bytes) first at {:?}", threads, p.len(), git_pack.len(), first);
        }
        assert!(idx == git_idx, "{} threads: .idx differs", threads);
        assert!(rev == git_rev, "{} threads: .rev differs", threads);
        assert_eq!(&s.pack_checksum[..], &git_pack[git_pack.len() - 20..]);
    }
    // A base whose data does not hash to its id is refused, not appended.
    let ix = Indexer::create(&dir.path("corrupt-base.pack"), opts(2)).unwrap();
    ix.write(&thin).unwrap();
    let missing = ix.resolve().unwrap();
    ix.add_base(missing[0], 3, b"not the object").unwrap();
    let e = ix.finish(&dir.path("corrupt-base.idx"), None, true, 1).unwrap_err();
    assert_eq!(e.kind, ErrorKind::BadPack, "{}", e);
    assert!(e.message.contains("is corrupt"), "{}", e);
    // Without the bases: a clear missing-base error, and the ids that are missing.
    let ix = Indexer::create(&dir.path("nofix.pack"), opts(2)).unwrap();
    ix.write(&thin).unwrap();
    let missing = ix.resolve().unwrap();
    assert!(!missing.is_empty());
    let e = ix.finish(&dir.path("nofix.idx"), None, false, 1).unwrap_err();
    assert_eq!(e.kind, ErrorKind::MissingBase, "{}", e);
    assert!(e.message.contains("unresolved delta"), "{}", e);
    let e = file_index(&dir, "thinfile", &thin, opts(1)).unwrap_err();
    assert_eq!(e.kind, ErrorKind::MissingBase);
}

/// A pack assembled entry by entry, for inputs git would never write.
pub(super) struct PackBuilder {
    bytes: Vec<u8>,
    count: u32,
    offsets: Vec<u64>,
}

impl PackBuilder {
    pub(super) fn new() -> PackBuilder {
        let mut bytes = b"PACK\0\0\0\x02\0\0\0\0".to_vec();
        bytes.reserve(1024);
        PackBuilder { bytes, count: 0, offsets: Vec::new() }
    }
    /// An entry whose header says `size` and whose zlib stream holds `data`.
    pub(super) fn raw(&mut self, kind: u8, size: u64, extra: &[u8], data: &[u8]) -> u64 {
        let off = self.bytes.len() as u64;
        self.bytes.extend_from_slice(&encode_header(kind, size));
        self.bytes.extend_from_slice(extra);
        self.bytes.extend_from_slice(&deflate(data, 6).unwrap());
        self.count += 1;
        self.offsets.push(off);
        off
    }
    pub(super) fn object(&mut self, kind: u8, data: &[u8]) -> u64 {
        self.raw(kind, data.len() as u64, &[], data)
    }
    pub(super) fn ofs_delta(&mut self, base: u64, delta: &[u8]) -> u64 {
        let off = self.bytes.len() as u64;
        let mut back = off - base;
        let mut enc = vec![(back & 127) as u8];
        back >>= 7;
        while back != 0 {
            back -= 1;
            enc.insert(0, 0x80 | (back & 127) as u8);
            back >>= 7;
        }
        self.raw(OBJ_OFS_DELTA, delta.len() as u64, &enc, delta)
    }
    pub(super) fn ref_delta(&mut self, base: &[u8; 20], delta: &[u8]) -> u64 {
        self.raw(OBJ_REF_DELTA, delta.len() as u64, base, delta)
    }
    pub(super) fn finish(mut self) -> Vec<u8> {
        self.bytes[8..12].copy_from_slice(&self.count.to_be_bytes());
        let sum: [u8; 20] = Sha1::digest(&self.bytes).into();
        self.bytes.extend_from_slice(&sum);
        self.bytes
    }
}

/// A delta: base size, result size, then raw instructions.
pub(super) fn delta(base: u64, result: u64, ops: &[u8]) -> Vec<u8> {
    let mut d = Vec::new();
    varint(base, &mut d);
    varint(result, &mut d);
    d.extend_from_slice(ops);
    d
}

fn index_bytes(dir: &TempDir, tag: &str, pack: &[u8], threads: usize) -> Result<Summary> {
    file_index(dir, tag, pack, opts(threads)).map(|(_, _, s)| s)
}

fn assert_bad(r: Result<Summary>, what: &str, needle: &str) {
    match r {
        Ok(_) => panic!("{}: indexed a corrupt pack", what),
        Err(e) => {
            assert_eq!(e.kind, ErrorKind::BadPack, "{}: {}", what, e);
            assert!(e.message.contains(needle), "{}: message {:?} lacks {:?}", what, e.message, needle);
        }
    }
}

#[test]
fn hand_built_pack_indexes_like_git() {
    let dir = TempDir::new("built");
    let mut b = PackBuilder::new();
    let base = b.object(OBJ_BLOB, b"hello, delta world");
    b.ofs_delta(base, &delta(18, 12, &[0x90, 5, 2, b'!', b'!', 0x91, 13, 5]));
    let base_id = scan::object_id(OBJ_BLOB, b"hello, delta world").unwrap();
    b.ref_delta(&base_id, &delta(18, 5, &[0x90, 5]));
    b.object(OBJ_COMMIT, b"");
    let pack = b.finish();
    let repo = dir.mkdir("repo");
    git(&repo, &["init", "-q", "."], None);
    let (_, git_idx, git_rev) = git_index(&repo, &dir, &pack, false);
    for threads in [1, 2] {
        let (idx, rev, s) = file_index(&dir, &format!("b{}", threads), &pack, opts(threads)).unwrap();
        assert!(idx == git_idx && rev == git_rev);
        assert_eq!((s.object_count, s.delta_count), (4, 2));
    }
    // An empty pack, and a pack holding the same object twice (git allows both).
    let empty = PackBuilder::new().finish();
    let mut b = PackBuilder::new();
    b.object(OBJ_BLOB, b"twice");
    b.object(OBJ_BLOB, b"other");
    b.object(OBJ_BLOB, b"twice");
    let twice = b.finish();
    for (tag, pack) in [("empty", empty), ("twice", twice)] {
        let (_, git_idx, git_rev) = git_index(&repo, &dir, &pack, false);
        let (idx, rev, _) = file_index(&dir, tag, &pack, opts(2)).unwrap();
        assert!(idx == git_idx && rev == git_rev, "{}: differs from git", tag);
    }
}

#[test]
fn corrupt_packs_are_clear_errors() {
    let dir = TempDir::new("corrupt");
    let good = {
        let mut b = PackBuilder::new();
        let base = b.object(OBJ_BLOB, &vec![b'x'; 5000]);
        b.ofs_delta(base, &delta(5000, 10, &[0x90, 10]));
        b.finish()
    };
    index_bytes(&dir, "good", &good, 1).unwrap();

    // Bad zlib: a byte of the first entry's compressed data flipped.
    let mut bad = good.clone();
    bad[12 + 3 + 4] ^= 0xff;
    assert_bad(index_bytes(&dir, "zlib", &bad, 1), "bad zlib", "offset 12");

    // Truncated anywhere: inside the header, an entry, the trailer.
    for cut in [5, 12, 14, 30, good.len() - 25, good.len() - 1] {
        assert_bad(index_bytes(&dir, &format!("cut{}", cut), &good[..cut], 1), &format!("cut at {}", cut), "truncated");
    }
    // Bad trailer.
    let mut bad = good.clone();
    *bad.last_mut().unwrap() ^= 1;
    assert_bad(index_bytes(&dir, "trailer", &bad, 1), "bad trailer", "SHA-1 mismatch");
    // Something after the trailer.
    let mut bad = good.clone();
    bad.push(0);
    assert_bad(index_bytes(&dir, "junk", &bad, 2), "junk after trailer", "junk after its trailer");
    // Not a pack; an unsupported version.
    assert_bad(index_bytes(&dir, "sig", b"PACX\0\0\0\x02\0\0\0\0", 1), "signature", "signature");
    let mut v = good.clone();
    v[7] = 4;
    assert_bad(index_bytes(&dir, "ver", &v, 1), "version", "version 4");

    // Size mismatch: the header says 6000, the stream holds 5000.
    let mut b = PackBuilder::new();
    b.raw(OBJ_BLOB, 6000, &[], &vec![b'x'; 5000]);
    assert_bad(index_bytes(&dir, "short", &b.finish(), 1), "size mismatch", "inflates to 5000 bytes, its header says 6000");
    let mut b = PackBuilder::new();
    b.raw(OBJ_BLOB, 10, &[], &vec![b'x'; 5000]);
    assert_bad(index_bytes(&dir, "long", &b.finish(), 1), "size mismatch", "more than the 10 bytes");

    // Deltas that do not apply: copy out of bounds, insert past the end, wrong base size.
    for (i, (d, needle)) in [
        (delta(5000, 10, &[0x93, 0x88, 0x13, 10]), "copies 10 bytes at offset 5000"),
        (delta(5000, 2, &[3, 1, 2, 3]), "writes past its 2-byte result"),
        (delta(4999, 1, &[1, 0]), "made against a 4999-byte base"),
        (delta(5000, 20, &[0x90, 10]), "rebuilds 10 of its 20"),
    ]
    .into_iter()
    .enumerate()
    {
        let mut b = PackBuilder::new();
        let base = b.object(OBJ_BLOB, &vec![b'x'; 5000]);
        b.ofs_delta(base, &d);
        for threads in [1, 2] {
            assert_bad(index_bytes(&dir, &format!("delta{}-{}", i, threads), &b.bytes_finished(), threads), "bad delta", needle);
        }
    }

    // An OFS_DELTA whose base offset is not an entry.
    let mut b = PackBuilder::new();
    let base = b.object(OBJ_BLOB, &vec![b'x'; 5000]);
    b.ofs_delta(base + 1, &delta(5000, 10, &[0x90, 10]));
    assert_bad(index_bytes(&dir, "ofs", &b.finish(), 1), "ofs base", "not the start of an object");

    // Missing base: a REF_DELTA to an object nowhere.
    let mut b = PackBuilder::new();
    b.ref_delta(&[7; 20], &delta(5, 5, &[0x90, 5]));
    let e = index_bytes(&dir, "missing", &b.finish(), 2).unwrap_err();
    assert_eq!(e.kind, ErrorKind::MissingBase, "{}", e);
    assert!(e.message.contains(&hex(&[7; 20])), "{}", e);

    // A count that lies: more objects than the pack holds.
    let mut b = PackBuilder::new();
    b.object(OBJ_BLOB, b"one");
    let mut p = b.finish();
    p[11] = 9;
    let n = p.len();
    let sum: [u8; 20] = Sha1::digest(&p[..n - 20]).into();
    p[n - 20..].copy_from_slice(&sum);
    assert!(index_bytes(&dir, "count", &p, 1).is_err());
}

impl PackBuilder {
    fn bytes_finished(&self) -> Vec<u8> {
        let b = PackBuilder { bytes: self.bytes.clone(), count: self.count, offsets: self.offsets.clone() };
        b.finish()
    }
}

#[test]
fn streaming_errors_surface_on_write_and_resolve() {
    let dir = TempDir::new("streamerr");
    let ix = Indexer::create(&dir.path("x.pack"), opts(2)).unwrap();
    // The pack file exists from the start; a second indexer on the same path is refused.
    let e = Indexer::create(&dir.path("x.pack"), opts(1)).err().unwrap();
    assert_eq!(e.code(), "EEXIST");
    ix.write(b"NOTAPACK....").unwrap_or(0);
    // The parser fails in the background; later writes or resolve report it.
    let mut failed = None;
    for _ in 0..200 {
        match ix.write(b"more") {
            Err(e) => {
                failed = Some(e);
                break;
            }
            Ok(_) => std::thread::sleep(std::time::Duration::from_millis(5)),
        }
    }
    let e = failed.unwrap_or_else(|| ix.resolve().unwrap_err());
    assert_eq!(e.kind, ErrorKind::BadPack);
    assert!(e.message.contains("signature"), "{}", e);
    // Out of order use is refused.
    let ix = Indexer::create(&dir.path("y.pack"), opts(1)).unwrap();
    assert_eq!(ix.add_base([0; 20], 3, b"").unwrap_err().kind, ErrorKind::State);
    assert_eq!(ix.finish(&dir.path("y.idx"), None, false, 1).unwrap_err().kind, ErrorKind::State);
}
