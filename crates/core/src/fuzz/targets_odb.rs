//! The targets over what is read from files: loose objects, a pack with its .idx read through
//! the object database, and the pack scanner (the indexer's first pass). Seeds are real: a
//! small history packed by `git pack-objects` and indexed by `git index-pack`.

use super::harness::{Accepted, Target, Verdict};
use crate::odb::{loose, Odb};
use crate::pack::entry::{OBJ_BLOB, OBJ_COMMIT};
use crate::error::ErrorKind;
use crate::pack::inflate::deflate;
use crate::pack::scan::Scanner;
use crate::pack::Progress;
use crate::testutil::{git, TempDir};
use std::path::PathBuf;
use crate::once::OnceLock;
use std::sync::Arc;

const MIB: usize = 1 << 20;

pub fn loose_target() -> Target {
    // The object is held once decoded and once re-encoded; inflating is bounded by 1032x.
    Target { name: "loose", max_len: 16 << 10, mem_per_byte: 3 * 1032, mem_fixed: 4 * MIB, seeds: loose_seeds, run: loose_run }
}

pub fn idx_target() -> Target {
    // Entries inflate at most 1032-fold; delta results are bounded by their instructions.
    Target { name: "idx", max_len: 64 << 10, mem_per_byte: 4 * 1032, mem_fixed: 8 * MIB, seeds: idx_seeds, run: idx_run }
}

pub fn pack_scan_target() -> Target {
    Target { name: "pack-scan", max_len: 64 << 10, mem_per_byte: 2 * 1032, mem_fixed: 8 * MIB, seeds: pack_seeds, run: pack_scan }
}

/// A small real history: two packs of it (OFS_DELTA and REF_DELTA bases) and their .idx.
struct Real {
    packs: Vec<(Vec<u8>, Vec<u8>)>,
    oids: Vec<[u8; 20]>,
}

fn real() -> &'static Real {
    static R: OnceLock<Real> = OnceLock::new();
    R.get_or_init(|| {
        let d = TempDir::new("fuzz-seed");
        let dir = &d.0;
        git(dir, &["init", "-q", "-b", "main", "."], None);
        let mut text: Vec<String> = (0..60).map(|i| format!("line {} of a file that changes a little per commit", i)).collect();
        for c in 0..4 {
            text[c * 7] = format!("edited in commit {}", c);
            std::fs::write(dir.join("a.txt"), text.join("\n")).unwrap();
            std::fs::write(dir.join(format!("small{}.txt", c)), format!("small {}\n", c)).unwrap();
            git(dir, &["add", "-A"], None);
            git(dir, &["commit", "-q", "-m", &format!("commit {}", c)], None);
        }
        git(dir, &["tag", "-a", "-m", "tag", "v1"], None);
        let list = git(dir, &["rev-list", "--objects", "--all"], None);
        let oids = String::from_utf8(list).unwrap().lines().filter_map(|l| crate::oid::parse_oid(&l[..40.min(l.len())])).collect();
        let mut packs = Vec::new();
        for ofs in [true, false] {
            let mut args = vec!["pack-objects", "--stdout", "--all", "-q"];
            if ofs {
                args.push("--delta-base-offset");
            }
            let pack = git(dir, &args, Some(b""));
            std::fs::write(dir.join("p.pack"), &pack).unwrap();
            git(dir, &["index-pack", "-o", "p.idx", "p.pack"], None);
            packs.push((std::fs::read(dir.join("p.idx")).unwrap(), pack));
            let _ = std::fs::remove_file(dir.join("p.idx"));
        }
        Real { packs, oids }
    })
}

// ---- loose objects -------------------------------------------------------------------------

fn loose_seeds() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for raw in [&b"blob 5\0hello"[..], b"tree 0\0", b"commit 3\0abc", b"blob 4294967296\0x", b"tag 99999999999999999999\0"] {
        out.push(deflate(raw, 6).unwrap());
    }
    out
}

/// A loose file's bytes: a typed error, or an object that re-encodes (header + zlib) and
/// decodes again to itself.
fn loose_run(input: &[u8]) -> Verdict {
    match loose::decode(input) {
        Ok(o) => {
            let name = crate::pack::entry::type_name(o.kind);
            let mut raw = format!("{} {}\0", name, o.data.len()).into_bytes();
            raw.extend_from_slice(&o.data);
            let again = loose::decode(&deflate(&raw, 1).map_err(|e| e.to_string())?).map_err(|e| format!("re-encoding refused: {}", e))?;
            if again != o {
                return Err("re-encoding decodes to another object".into());
            }
            Ok(Accepted::Parsed)
        }
        Err(_) => Ok(Accepted::Refused),
    }
}

// ---- .idx + pack through the object database -----------------------------------------------

fn idx_seeds() -> Vec<Vec<u8>> {
    real().packs.iter().map(|(idx, pack)| [&(idx.len() as u32).to_le_bytes()[..], idx, pack].concat()).collect()
}

fn scratch_repo() -> &'static PathBuf {
    static D: OnceLock<PathBuf> = OnceLock::new();
    D.get_or_init(|| {
        let base = if std::path::Path::new("/dev/shm").is_dir() { PathBuf::from("/dev/shm") } else { std::env::temp_dir() };
        let d = base.join(format!("mpgit-fuzz-odb-{}", std::process::id()));
        std::fs::create_dir_all(d.join("objects/pack")).unwrap();
        d
    })
}

/// Input: idx length (4 bytes LE), the .idx, the pack. Opened as a repository's only pack;
/// every object the seed history has, and every id the .idx lists (up to 64), is read.
fn idx_run(input: &[u8]) -> Verdict {
    if input.len() < 4 {
        return Ok(Accepted::Refused);
    }
    let n = (u32::from_le_bytes(input[..4].try_into().unwrap()) as usize).min(input.len() - 4);
    let (idx, pack) = input[4..].split_at(n);
    let repo = scratch_repo();
    let dir = repo.join("objects/pack");
    let name = "pack-0000000000000000000000000000000000000000";
    std::fs::write(dir.join(format!("{}.idx", name)), idx).map_err(|e| e.to_string())?;
    std::fs::write(dir.join(format!("{}.pack", name)), pack).map_err(|e| e.to_string())?;
    let odb = match Odb::open(repo) {
        Ok(o) => o,
        Err(e) => return typed(&e).map(|_| Accepted::Refused),
    };
    let mut ids: Vec<[u8; 20]> = real().oids.clone();
    // The ids the (mutated) .idx itself lists.
    if idx.len() >= 8 + 1024 {
        let count = u32::from_be_bytes(idx[8 + 255 * 4..8 + 1024].try_into().unwrap()) as usize;
        for k in 0..count.min(64) {
            if let Some(id) = idx.get(1032 + k * 20..1052 + k * 20) {
                ids.push(id.try_into().unwrap());
            }
        }
    }
    let mut any = false;
    for id in &ids {
        match odb.read(id) {
            Ok(Some(o)) => {
                any = true;
                if o.kind == OBJ_COMMIT {
                    let _ = crate::odb::parse::commit(&o.data, id);
                }
            }
            Ok(None) => {}
            Err(e) => typed(&e)?,
        }
        let _ = odb.has(id);
    }
    Ok(if any { Accepted::Parsed } else { Accepted::Refused })
}

fn typed(e: &crate::pack::Error) -> Result<(), String> {
    match e.kind {
        ErrorKind::BadPack | ErrorKind::MissingObject | ErrorKind::Io(_) => Ok(()),
        _ => Err(format!("unexpected error kind {:?}: {}", e.kind, e)),
    }
}

// ---- the pack scanner ----------------------------------------------------------------------

fn pack_seeds() -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = real().packs.iter().map(|(_, p)| p.clone()).collect();
    // A blob whose header claims 4 GiB, with a few bytes of stream.
    let mut p = b"PACK\0\0\0\x02\0\0\0\x01".to_vec();
    p.extend(crate::pack::entry::encode_header(OBJ_BLOB, 4 << 30));
    p.extend(deflate(b"tiny", 1).unwrap());
    out.push(p);
    out
}

/// The first pass over a pack, pushed in pieces whose sizes the input decides: a typed error
/// that names where (an offset), or a scan whose entries fill the pack up to its trailer.
fn pack_scan(input: &[u8]) -> Verdict {
    // Most mutations break the trailer: for inputs whose last byte is even, a trailer that
    // matches is written, so that what the entries hold decides.
    let fixed;
    let input = if input.len() > 32 && input[input.len() - 1] & 1 == 0 {
        use sha1::{Digest, Sha1};
        let body = &input[..input.len() - 20];
        fixed = [body, &Sha1::digest(body)[..]].concat();
        &fixed[..]
    } else {
        input
    };
    let mut s = Scanner::with_whole_max(Arc::new(Progress::default()), if input.len() % 2 == 0 { 32 << 20 } else { 64 });
    let mut step = 1 + input.iter().take(16).map(|&b| b as usize).sum::<usize>();
    let mut at = 0;
    let mut res = Ok(());
    while at < input.len() && res.is_ok() {
        let end = (at + step).min(input.len());
        res = s.push(&input[at..end]);
        at = end;
        step = step * 3 % 4093 + 1;
    }
    let res = res.and_then(|_| s.finish());
    match res {
        Ok(sc) => {
            if sc.objects_end + 20 != input.len() as u64 {
                return Err(format!("scan ends at {} in a {}-byte pack", sc.objects_end, input.len()));
            }
            if sc.entries.len() as u32 != u32::from_be_bytes(input[8..12].try_into().unwrap()) {
                return Err("entry count differs from the header".into());
            }
            Ok(Accepted::Parsed)
        }
        Err(e) if e.kind == ErrorKind::BadPack && e.message.contains("offset") => Ok(Accepted::Refused),
        Err(e) => Err(format!("error without an offset: {}", e)),
    }
}
