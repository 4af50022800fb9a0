//! The portable indexer (what the WebAssembly core runs) against `git index-pack` and the
//! native indexer's helpers: the same .idx/.rev (and --fix-thin pack) bytes however the bytes
//! arrive and however the roots are shared out, the kept deltas or none, clear errors on
//! corrupt input, the bounded window of the scan, reading entries back from a file (past
//! 4 GiB too), and the object limit. Built natively with the `portable` feature.

use super::resolve::{Pack, Resolver, Source};
use super::{object_id, Graph, Indexer, PackFile, MAX_OBJECTS};
use crate::error::{ErrorKind, Result};
use crate::pack::entry::{OBJ_BLOB, OBJ_COMMIT};
use crate::pack::inflate::{deflate, GIT_APPEND_LEVEL};
use crate::pack::tests::{delta, git_index, object_of, pack_objects, thin_fixture, PackBuilder, ThinFixture};
use crate::testutil::{make_repo, TempDir};
use sha1::{Digest, Sha1};

/// How a test drives the indexer.
#[derive(Clone, Copy)]
struct Drive {
    /// Bytes per write.
    chunk: usize,
    /// Half the roots resolved by a second resolver built as a worker builds it (its own graph).
    split: bool,
    /// Keep the first pass's inflated deltas (else every delta is inflated again).
    keep: bool,
}

const PLAIN: Drive = Drive { chunk: 1 << 20, split: false, keep: true };

/// Feeds `pack` as the JavaScript side does (reserve, copy, commit: the window never holds
/// more than a chunk), ends the input with the SHA-1 of all but the last 20 bytes, and
/// resolves every root, reading entries back from the pack's bytes (the file in wasm).
/// Returns the checksum.
fn scan_and_resolve(ix: &mut Indexer, pack: &[u8], d: Drive) -> Result<[u8; 20]> {
    scan_and_resolve_from(ix, pack, d, Box::new(pack.to_vec()))
}

fn scan_and_resolve_from(ix: &mut Indexer, pack: &[u8], d: Drive, src: Box<dyn Source>) -> Result<[u8; 20]> {
    if !d.keep {
        ix.scan.delta_keep = 0;
    }
    for c in pack.chunks(d.chunk.max(1)) {
        ix.scan.reserve(c.len()).copy_from_slice(c);
        ix.scan.commit(0);
        ix.scan.advance()?;
        assert!(ix.scan.window_len() <= d.chunk.max(64), "the window holds {} bytes", ix.scan.window_len());
    }
    let digest: [u8; 20] = Sha1::digest(&pack[..pack.len().saturating_sub(20)]).into();
    let sum = ix.end(&digest)?;
    ix.set_source(src);
    let roots = ix.roots();
    let half = if d.split { roots.len() / 2 } else { roots.len() };
    ix.resolve(&roots[..half])?;
    if d.split {
        let s = &ix.scan;
        let graph = Graph::build(&s.entries, &s.ref_bases);
        let bytes = pack.to_vec();
        // As a worker has them: only the kept deltas of its batch, each batch on its own.
        let mut out = Vec::new();
        for batch in roots[half..].chunks(3) {
            let (kept, delta_bytes) = ix.batch_deltas(batch);
            let mut delta_at = vec![super::scan::NOT_KEPT; s.entries.len()];
            let mut at = 0;
            for &c in &kept {
                delta_at[c as usize] = at;
                at += s.entries[c as usize].size as u32;
            }
            let pack = Pack { src: &bytes, entries: &s.entries, body_len: ix.original_body, delta_bytes: &delta_bytes, delta_at: &delta_at };
            let mut r = Resolver::new(pack, &graph);
            for &root in batch {
                r.root(root, &s.oids[root as usize])?;
            }
            out.append(&mut r.out);
        }
        ix.apply(&out);
    }
    Ok(sum)
}

/// The .idx and .rev of a complete pack.
fn index(pack: &[u8], d: Drive) -> Result<(Vec<u8>, Vec<u8>, Indexer)> {
    let mut ix = Indexer::default();
    let sum = scan_and_resolve(&mut ix, pack, d)?;
    ix.check_complete()?;
    let (idx, rev) = ix.index_files(&sum);
    Ok((idx, rev, ix))
}

fn repo_pack(dir: &TempDir, commits: usize, seed: u64) -> (std::path::PathBuf, Vec<u8>) {
    let repo = dir.path("repo");
    std::fs::create_dir(&repo).unwrap();
    make_repo(&repo, commits, seed);
    let pack = pack_objects(&repo, &["--all"], false);
    (repo, pack)
}

#[test]
fn idx_and_rev_equal_git_in_any_chunking_with_shared_roots_and_without_kept_deltas() {
    let dir = TempDir::new("portable-full");
    let (repo, pack) = repo_pack(&dir, 30, 11);
    let (_, git_idx, git_rev) = git_index(&repo, &dir, &pack, false);
    let drives = [
        PLAIN,
        Drive { chunk: 1, split: false, keep: true },
        Drive { chunk: 7, split: true, keep: true },
        Drive { chunk: 4096, split: true, keep: false },
        Drive { chunk: 65536, split: false, keep: false },
    ];
    for d in drives {
        let (idx, rev, ix) = index(&pack, d).unwrap();
        let what = format!("chunk {}, split {}, keep {}", d.chunk, d.split, d.keep);
        assert!(idx == git_idx, "{}: .idx differs from git's", what);
        assert!(rev == git_rev, "{}: .rev differs from git's", what);
        assert!(ix.scan.deltas > 30, "{}: the repository should make deltas ({})", what, ix.scan.deltas);
        assert_eq!(ix.resolved, ix.scan.deltas, "{}", what);
        // Kept: every delta, in one buffer; not kept: none.
        let kept = ix.scan.delta_at.iter().filter(|&&a| a != super::scan::NOT_KEPT).count() as u32;
        assert_eq!(kept, if d.keep { ix.scan.deltas } else { 0 }, "{}", what);
        // The workers' batches find every kept delta (this pack's are all OFS_DELTAs).
        assert_eq!(ix.batch_deltas(&ix.roots()).0.len() as u32, kept, "{}", what);
    }
    // Entries read back from the pack file (as the WebAssembly core does, through its host).
    let path = dir.path("the.pack");
    std::fs::write(&path, &pack).unwrap();
    let mut ix = Indexer::default();
    let sum = scan_and_resolve_from(&mut ix, &pack, Drive { chunk: 4096, split: true, keep: false }, Box::new(PackFile::open(&path).unwrap())).unwrap();
    let (idx, rev) = ix.index_files(&sum);
    assert!(idx == git_idx && rev == git_rev, "read from the file: .idx/.rev differ from git's");
}

/// Entries past 4 GiB are read at their offsets: a whole object and its OFS_DELTA child
/// written at 5 GiB into a sparse file, resolved from there.
#[test]
fn entries_past_4_gib_are_read_back_at_their_offsets() {
    use crate::pack::entry::{encode_header, Entry, OBJ_OFS_DELTA};
    let dir = TempDir::new("portable-far");
    let path = dir.path("far.pack");
    let base = b"hello, delta world";
    let d = delta(18, 20, &[0x90, 18, 2, b'!', b'!']);
    let at = 5u64 << 30;
    let mut bytes = encode_header(OBJ_BLOB, base.len() as u64);
    let hdr0 = bytes.len() as u8;
    bytes.extend(deflate(base, 6).unwrap());
    let second = at + bytes.len() as u64;
    // The delta's header (its base distance is not read back: the table says who its base is).
    let mut h1 = encode_header(OBJ_OFS_DELTA, d.len() as u64);
    h1.push((second - at) as u8);
    let hdr1 = h1.len() as u8;
    bytes.extend(h1);
    bytes.extend(deflate(&d, 6).unwrap());
    let end = at + bytes.len() as u64;
    {
        use std::io::{Seek, SeekFrom, Write};
        let mut f = std::fs::File::create(&path).unwrap();
        f.seek(SeekFrom::Start(at)).unwrap();
        f.write_all(&bytes).unwrap();
        f.write_all(&[0; 20]).unwrap();
    }
    let entries = [
        Entry { offset: at, size: base.len() as u64, base: 0, crc32: 0, hdr_len: hdr0, kind: OBJ_BLOB },
        Entry { offset: second, size: d.len() as u64, base: 0, crc32: 0, hdr_len: hdr1, kind: OBJ_OFS_DELTA },
    ];
    let graph = Graph::build(&entries, &[]);
    let file = PackFile::open(&path).unwrap();
    let pack = Pack { src: &file, entries: &entries, body_len: end, delta_bytes: &[], delta_at: &[super::scan::NOT_KEPT; 2] };
    let mut r = Resolver::new(pack, &graph);
    r.root(0, &object_id(OBJ_BLOB, base, 0).unwrap()).unwrap();
    assert_eq!(r.out, vec![(1, object_id(OBJ_BLOB, b"hello, delta world!!", 0).unwrap())]);
}

#[test]
fn kept_deltas_stop_at_their_cap_and_the_rest_are_inflated_again() {
    let dir = TempDir::new("portable-cap");
    let (repo, pack) = repo_pack(&dir, 12, 5);
    let (_, git_idx, _) = git_index(&repo, &dir, &pack, false);
    let mut ix = Indexer::default();
    ix.scan.delta_keep = 2000;
    let path = dir.path("the.pack");
    std::fs::write(&path, &pack).unwrap();
    let sum = scan_and_resolve_from(&mut ix, &pack, Drive { chunk: 333, split: true, keep: true }, Box::new(PackFile::open(&path).unwrap())).unwrap();
    let kept = ix.scan.delta_at.iter().filter(|&&a| a != super::scan::NOT_KEPT).count() as u32;
    assert!(kept > 0 && kept < ix.scan.deltas, "kept {} of {}", kept, ix.scan.deltas);
    assert!(ix.scan.delta_bytes.len() <= 2000);
    ix.check_complete().unwrap();
    assert!(ix.index_files(&sum).0 == git_idx);
}

#[test]
fn object_ids_are_the_native_indexers() {
    let big: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
    for (kind, data) in [(OBJ_BLOB, &b""[..]), (OBJ_COMMIT, &b"tree 0\n"[..]), (OBJ_BLOB, &big[..63]), (OBJ_BLOB, &big[..64]), (OBJ_BLOB, &big[..])] {
        let want = crate::pack::scan::object_id(kind, data).unwrap();
        assert_eq!(object_id(kind, data, 0).unwrap(), want, "{} bytes", data.len());
    }
}

#[test]
fn thin_pack_completed_like_git_fix_thin() {
    let dir = TempDir::new("portable-thin");
    let ThinFixture { repo, thin, git_pack, git_idx, git_rev } = thin_fixture(&dir);
    for split in [false, true] {
        let mut ix = Indexer::default();
        scan_and_resolve(&mut ix, &thin, Drive { chunk: 10_000, split, keep: true }).unwrap();
        let missing = ix.missing();
        assert!(!missing.is_empty());
        assert_eq!(ix.check_complete().unwrap_err().kind, ErrorKind::MissingBase);
        for id in &missing {
            let (kind, data) = object_of(&repo, id);
            ix.add_base(*id, kind, data).unwrap();
        }
        while let Some(k) = ix.thin_next() {
            let z = deflate(ix.base_data(k).1, GIT_APPEND_LEVEL).unwrap();
            ix.thin_append(k, &z).unwrap();
        }
        assert!(ix.appended > 0);
        // What the JavaScript side does to the file: the tail where the trailer was, the new
        // count, the SHA-1 of it all as the trailer.
        let mut done = thin[..ix.original_body as usize].to_vec();
        done.extend_from_slice(&ix.tail);
        done[8..12].copy_from_slice(&ix.count_after_append().to_be_bytes());
        let sum: [u8; 20] = Sha1::digest(&done).into();
        done.extend_from_slice(&sum);
        ix.seal(sum);
        assert!(done == git_pack, "split {}: the completed pack differs from git's --fix-thin", split);
        ix.check_complete().unwrap();
        let (idx, rev) = ix.index_files(&sum);
        assert!(idx == git_idx && rev == git_rev, "split {}: .idx/.rev differ from git's", split);
    }
    // A base whose bytes are not its id is refused.
    let mut ix = Indexer::default();
    scan_and_resolve(&mut ix, &thin, PLAIN).unwrap();
    let id = ix.missing()[0];
    let e = ix.add_base(id, OBJ_BLOB, b"not the object".to_vec()).unwrap_err();
    assert_eq!(e.kind, ErrorKind::BadPack, "{}", e);
}

/// The error `pack` gives, from the scan, the end of input or the resolution.
fn error_of(pack: &[u8]) -> crate::error::Error {
    match index(pack, PLAIN) {
        Ok(_) => panic!("indexed a corrupt pack"),
        Err(e) => e,
    }
}

#[test]
fn corrupt_packs_are_errors_naming_what_and_where() {
    let mut b = PackBuilder::new();
    let base = b.object(OBJ_BLOB, b"hello, delta world");
    b.ofs_delta(base, &delta(18, 12, &[0x90, 5, 2, b'!', b'!', 0x91, 13, 5]));
    b.object(OBJ_COMMIT, b"");
    let good = b.finish();
    let (idx, _, ix) = index(&good, Drive { chunk: 3, split: false, keep: true }).unwrap();
    assert_eq!((ix.scan.entries.len(), ix.resolved), (3, 1));
    assert_eq!(idx.len(), 8 + 256 * 4 + 3 * (20 + 4 + 4) + 40);

    let cases: Vec<(&str, Vec<u8>, ErrorKind, &str)> = vec![
        ("not a pack", [b"PACX".as_ref(), &good[4..]].concat(), ErrorKind::BadPack, "not a pack"),
        ("version 4", [&good[..7], &[4u8][..], &good[8..]].concat(), ErrorKind::BadPack, "pack version 4 unsupported (at offset 4"),
        ("truncated in an entry", good[..30].to_vec(), ErrorKind::BadPack, "truncated"),
        ("truncated in the trailer", good[..good.len() - 5].to_vec(), ErrorKind::BadPack, "truncated"),
        ("bad trailer", [&good[..good.len() - 1], &[good[good.len() - 1] ^ 1][..]].concat(), ErrorKind::BadPack, "SHA-1 mismatch"),
        ("junk after the trailer", [&good[..], b"x"].concat(), ErrorKind::BadPack, "junk after its trailer"),
    ];
    for (what, pack, kind, needle) in cases {
        let e = error_of(&pack);
        assert_eq!(e.kind, kind, "{}: {}", what, e);
        assert!(e.message.contains(needle), "{}: {:?} lacks {:?}", what, e.message, needle);
    }

    // Bad zlib in the second entry (its stream starts after a 1-byte header and its offset).
    let mut bad = good.clone();
    let second = 12 + {
        let mut b = PackBuilder::new();
        b.object(OBJ_BLOB, b"hello, delta world");
        b.finish().len() - 12 - 20
    };
    bad[second + 3] ^= 0xff;
    let e = error_of(&bad);
    assert_eq!(e.kind, ErrorKind::BadPack, "{}", e);
    assert!(e.message.contains(&format!("offset {}", second)), "{}", e);

    // A delta whose base size is wrong, and one that copies past its base: the entry's offset.
    for (what, d) in [("base size", delta(99, 5, &[0x90, 5])), ("copy out of bounds", delta(18, 30, &[0x90, 30]))] {
        let mut b = PackBuilder::new();
        let base = b.object(OBJ_BLOB, b"hello, delta world");
        let at = b.ofs_delta(base, &d);
        let e = error_of(&b.finish());
        assert_eq!(e.kind, ErrorKind::BadPack, "{}: {}", what, e);
        assert!(e.message.contains(&format!("offset {}", at)), "{}: {}", what, e);
    }

    // A REF_DELTA to an object that is not there: missing, then a missing-base error.
    let mut b = PackBuilder::new();
    b.ref_delta(&[7; 20], &delta(3, 3, &[0x90, 3]));
    let e = error_of(&b.finish());
    assert_eq!(e.kind, ErrorKind::MissingBase, "{}", e);
    assert!(e.message.contains("1 unresolved deltas"), "{}", e);
}

#[test]
fn a_pack_of_too_many_objects_is_refused_at_its_header_naming_the_native_core() {
    assert!(MAX_OBJECTS > 15_000_000 && MAX_OBJECTS < 20_000_000, "{}", MAX_OBJECTS);
    let mut b = PackBuilder::new();
    for i in 0..40 {
        b.object(OBJ_BLOB, format!("blob number {} with some bytes", i).as_bytes());
    }
    let pack = b.finish();
    // A file whose size can hold its count: refused at the header, before the tables grow.
    let mut ix = Indexer::default();
    ix.scan.max_objects = 39;
    ix.scan.known_size = Some(pack.len() as u64);
    ix.scan.reserve(12).copy_from_slice(&pack[..12]);
    ix.scan.commit(0);
    let e = ix.scan.advance().unwrap_err();
    assert_eq!((e.kind.clone(), e.code()), (ErrorKind::TooLarge, "MPGIT_PACK_TOO_LARGE".to_string()));
    assert!(e.message.contains("40 objects") && e.message.contains("at most 39"), "{}", e);
    assert!(e.message.contains("MPGIT_CORE=native") && e.message.contains("native package"), "{}", e);
    assert!(ix.scan.entries.capacity() == 0);
    // A stream: refused when its entries pass the limit.
    let mut ix = Indexer::default();
    ix.scan.max_objects = 39;
    let e = scan_and_resolve(&mut ix, &pack, Drive { chunk: 50, split: false, keep: true }).unwrap_err();
    assert_eq!((e.kind.clone(), ix.scan.entries.len()), (ErrorKind::TooLarge, 39));
    // A count no file of its size can hold is a corrupt pack (as natively), not a large one.
    let mut lying = pack.clone();
    lying[8] = 0xff;
    let mut ix = Indexer::default();
    ix.scan.known_size = Some(pack.len() as u64);
    let e = scan_and_resolve(&mut ix, &lying, PLAIN).unwrap_err();
    assert_eq!(e.kind, ErrorKind::BadPack, "{}", e);
    // At the limit, it is taken.
    let mut ix = Indexer::default();
    ix.scan.max_objects = 40;
    let sum = scan_and_resolve(&mut ix, &pack, PLAIN).unwrap();
    assert_eq!(ix.index_files(&sum).0.len(), 8 + 256 * 4 + 40 * 28 + 40);
}

/// An object bigger than the scan's ring is hashed as it is inflated, never held whole.
#[test]
fn a_big_object_passes_through_the_ring() {
    let big: Vec<u8> = (0..3 * super::inflate::RING as u32 + 17).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
    let mut b = PackBuilder::new();
    b.object(OBJ_BLOB, &big);
    b.object(OBJ_COMMIT, b"tree 0\n");
    let pack = b.finish();
    let mut ix = Indexer::default();
    let sum = scan_and_resolve(&mut ix, &pack, Drive { chunk: 10_000, split: false, keep: true }).unwrap();
    assert_eq!(ix.scan.oids[0], object_id(OBJ_BLOB, &big, 0).unwrap());
    assert_eq!(ix.scan.entries[0].crc32, crc32fast::hash(&pack[12..ix.scan.entries[1].offset as usize]));
    ix.check_complete().unwrap();
    ix.index_files(&sum);
}

#[test]
fn checked_inflate_verifies_the_adler32_and_the_size() {
    use super::inflate::{checked, Unexact};
    let data: Vec<u8> = (0..50_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let z = deflate(&data, 6).unwrap();
    let mut d = miniz_oxide::inflate::core::DecompressorOxide::new();
    let mut out = Vec::new();
    assert!(checked(&mut d, &z, data.len(), &mut out).is_ok());
    assert_eq!(out, data);
    assert!(matches!(checked(&mut d, &z, data.len() - 1, &mut out), Err(Unexact::WrongSize)));
    assert!(matches!(checked(&mut d, &z, data.len() + 1, &mut out), Err(Unexact::WrongSize)));
    assert!(matches!(checked(&mut d, &z[..z.len() - 9], data.len(), &mut out), Err(Unexact::WrongSize)));
    let mut bad = z.clone();
    let n = bad.len();
    bad[n - 1] ^= 1; // the adler32: what `exact` does not look at
    assert!(matches!(checked(&mut d, &bad, data.len(), &mut out), Err(Unexact::BadData)));
    assert!(super::inflate::exact(&mut d, &bad, data.len(), &mut out).is_some());
}
