//! The portable indexer (what the WebAssembly core runs) against `git index-pack` and the
//! native indexer's helpers: the same .idx/.rev (and --fix-thin pack) bytes however the bytes
//! arrive and however the roots are shared out, the kept deltas or none, clear errors on
//! corrupt input, and the size limit. Built natively with the `portable` feature.

use super::resolve::{Pack, Resolver};
use super::{object_id, too_large, Graph, Indexer, MAX_PACK};
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

/// Feeds `pack` as the JavaScript side does (reserve, copy, commit), ends the input with the
/// SHA-1 of all but the last 20 bytes, and resolves every root. Returns the checksum.
fn scan_and_resolve(ix: &mut Indexer, pack: &[u8], d: Drive) -> Result<[u8; 20]> {
    if !d.keep {
        ix.scan.delta_keep = 0;
    }
    for c in pack.chunks(d.chunk.max(1)) {
        ix.scan.reserve(c.len())?.copy_from_slice(c);
        ix.scan.unreserve(0);
        ix.scan.advance()?;
    }
    let digest: [u8; 20] = Sha1::digest(&pack[..pack.len().saturating_sub(20)]).into();
    let sum = ix.end(&digest)?;
    let roots = ix.roots();
    let half = if d.split { roots.len() / 2 } else { roots.len() };
    ix.resolve(&roots[..half])?;
    if d.split {
        let s = &ix.scan;
        let graph = Graph::build(&s.entries, &s.ref_bases);
        let pack = Pack { bytes: &s.pack, entries: &s.entries, body_len: s.body_len(), delta_bytes: &s.delta_bytes, delta_at: &s.delta_at };
        let mut r = Resolver::new(pack, &graph);
        for &root in &roots[half..] {
            r.root(root, &s.oids[root as usize])?;
        }
        let out = std::mem::take(&mut r.out);
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
    }
}

#[test]
fn kept_deltas_stop_at_their_cap_and_the_rest_are_inflated_again() {
    let dir = TempDir::new("portable-cap");
    let (repo, pack) = repo_pack(&dir, 12, 5);
    let (_, git_idx, _) = git_index(&repo, &dir, &pack, false);
    let mut ix = Indexer::default();
    ix.scan.delta_keep = 2000;
    let sum = scan_and_resolve(&mut ix, &pack, Drive { chunk: 333, split: true, keep: true }).unwrap();
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
        ix.seal_count();
        let sum: [u8; 20] = Sha1::digest(&ix.scan.pack).into();
        ix.seal(sum);
        assert!(ix.scan.pack == git_pack, "split {}: the completed pack differs from git's --fix-thin", split);
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
fn a_pack_past_the_limit_is_refused_naming_the_native_core() {
    assert_eq!(MAX_PACK, 3 << 30);
    let e = too_large(MAX_PACK + 1);
    assert_eq!((e.kind.clone(), e.code()), (ErrorKind::TooLarge, "MPGIT_PACK_TOO_LARGE".to_string()));
    assert!(e.message.contains("MPGIT_CORE=native") && e.message.contains("native package"), "{}", e);

    // A known size: refused before anything is taken.
    let mut ix = Indexer::default();
    ix.scan.max_pack = 1000;
    assert_eq!(ix.scan.expect(1001).unwrap_err().kind, ErrorKind::TooLarge);
    assert!(ix.scan.pack.capacity() < 1000);
    ix.scan.expect(1000).unwrap();
    // A stream: refused at the write that passes it, whatever was taken before.
    let mut b = PackBuilder::new();
    for i in 0..40 {
        b.object(OBJ_BLOB, format!("blob number {} with some bytes", i).as_bytes());
    }
    let pack = b.finish();
    assert!(pack.len() > 1000);
    let mut ix = Indexer::default();
    ix.scan.max_pack = 1000;
    let mut taken = 0;
    let e = loop {
        match ix.scan.reserve(100) {
            Ok(buf) => {
                buf.copy_from_slice(&pack[taken..taken + 100]);
                taken += 100;
                ix.scan.advance().unwrap();
            }
            Err(e) => break e,
        }
    };
    assert_eq!((e.kind, taken), (ErrorKind::TooLarge, 1000));
    assert!(e.message.contains("1100 bytes or more"), "{}", e.message);
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
