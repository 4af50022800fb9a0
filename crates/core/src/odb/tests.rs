//! The object database, checkout, index and connectivity check against git: `git cat-file
//! --batch` judges what we read, `git status` / `git diff-files` / `git ls-files` what we
//! check out, `git rev-list --objects` what we walk.

use super::checkout::{checkout, write_batch, Plan, Progress};
use super::connect::check_connected;
use super::*;
use crate::oid::parse_oid;
use crate::testutil::{git, make_repo, TempDir};
use std::collections::HashSet;
use std::os::unix::fs::PermissionsExt;

fn oid(s: &str) -> [u8; 20] {
    parse_oid(s.trim()).unwrap_or_else(|| panic!("not an object id: {:?}", s))
}

fn text(b: Vec<u8>) -> String {
    String::from_utf8(b).unwrap()
}

/// Every object of the repository as `git cat-file --batch-all-objects --batch` prints it.
fn all_objects(repo: &Path) -> Vec<([u8; 20], u8, Vec<u8>)> {
    let out = git(repo, &["cat-file", "--batch-all-objects", "--batch"], None);
    let mut objs = Vec::new();
    let mut at = 0;
    while at < out.len() {
        let nl = at + out[at..].iter().position(|&b| b == b'\n').unwrap();
        let head = std::str::from_utf8(&out[at..nl]).unwrap().to_string();
        let parts: Vec<&str> = head.split(' ').collect();
        let size: usize = parts[2].parse().unwrap();
        let kind = match parts[1] {
            "commit" => 1,
            "tree" => 2,
            "blob" => 3,
            "tag" => 4,
            t => panic!("type {}", t),
        };
        objs.push((oid(parts[0]), kind, out[nl + 1..nl + 1 + size].to_vec()));
        at = nl + 1 + size + 1;
    }
    objs
}

/// The .idx of the repository's only pack.
fn pack_index(repo: &Path) -> std::path::PathBuf {
    std::fs::read_dir(repo.join(".git/objects/pack")).unwrap().map(|e| e.unwrap().path()).find(|p| p.extension().map_or(false, |x| x == "idx")).unwrap()
}

fn assert_reads_all(odb: &Odb, objs: &[([u8; 20], u8, Vec<u8>)]) {
    for (id, kind, data) in objs {
        let o = odb.read(id).unwrap().unwrap_or_else(|| panic!("{} not found", hex(id)));
        assert_eq!((o.kind, o.data.len()), (*kind, data.len()), "{}", hex(id));
        assert!(o.data == *data, "{} differs", hex(id));
        assert!(odb.has(id).unwrap());
    }
}

/// `variety_repo` at `name` in a new temporary directory, fully packed.
fn packed_variety_repo(tag: &str, name: &str) -> (TempDir, PathBuf) {
    let d = TempDir::new(tag);
    let repo = d.mkdir(name);
    variety_repo(&repo);
    git(&repo, &["repack", "-adq"], None);
    (d, repo)
}

/// A work-tree repository with history (deltas), a symlink, an executable, nested directories
/// and a gitlink at HEAD.
fn variety_repo(dir: &Path) {
    make_repo(dir, 24, 7);
    std::fs::create_dir_all(dir.join("sub/deep/er")).unwrap();
    std::fs::write(dir.join("sub/deep/run.sh"), "#!/bin/sh\necho hi\n").unwrap();
    std::fs::set_permissions(dir.join("sub/deep/run.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(dir.join("sub/deep/er/x.txt"), "x\n").unwrap();
    std::fs::write(dir.join("empty"), "").unwrap();
    std::os::unix::fs::symlink("f0.txt", dir.join("link")).unwrap();
    git(dir, &["add", "-A"], None);
    git(dir, &["update-index", "--add", "--cacheinfo", &format!("160000,{},deps/mod", "1".repeat(40))], None);
    git(dir, &["commit", "-q", "-m", "variety"], None);
}

#[test]
fn reads_what_git_cat_file_reads_ofs_and_ref_deltas_loose_and_alternates() {
    for ofs in [true, false] {
        let d = TempDir::new("odb-read");
        let repo = d.mkdir("r");
        variety_repo(&repo);
        let cfg = format!("repack.useDeltaBaseOffset={}", ofs);
        git(&repo, &["-c", &cfg, "repack", "-adfq", "--depth=20", "--window=50"], None);
        let loose = oid(&text(git(&repo, &["hash-object", "-w", "--stdin"], Some(b"a loose blob\n"))));
        let idx = pack_index(&repo);
        let verify = text(git(&repo, &["verify-pack", "-v", idx.to_str().unwrap()], None));
        assert!(verify.contains("chain length = 5"), "the pack has delta chains");
        let objs = all_objects(&repo);
        assert!(objs.len() > 150 && objs.iter().any(|o| o.0 == loose));
        let odb = Odb::open(&repo.join(".git")).unwrap();
        assert_reads_all(&odb, &objs);
        // Again with a cache too small to hold anything: every chain rebuilt from the pack.
        let cold = Odb::open_with(&repo.join(".git"), 0).unwrap();
        assert_reads_all(&cold, &objs);
        assert_eq!(odb.read(&[0xfe; 20]).unwrap(), None);
        assert!(!odb.has(&[0xfe; 20]).unwrap());
        let e = odb.read_existing(&[0xfe; 20], "blob").unwrap_err();
        assert_eq!((e.kind.clone(), e.code()), (ErrorKind::MissingObject, "MPGIT_MISSING_OBJECTS".to_string()));
        assert!(e.message.contains(&"fe".repeat(20)), "{}", e);

        // A repository borrowing these objects through objects/info/alternates.
        let borrower = d.path("b.git");
        git(&d.0, &["init", "-q", "--bare", "b.git"], None);
        std::fs::write(borrower.join("objects/info/alternates"), format!("{}\n", repo.join(".git/objects").display())).unwrap();
        assert_reads_all(&Odb::open(&borrower).unwrap(), &objs);
        let head = oid(&text(git(&repo, &["rev-parse", "HEAD"], None)));
        let c = odb.read_commit(&head).unwrap().unwrap();
        assert_eq!(hex(&c.tree), text(git(&repo, &["rev-parse", "HEAD^{tree}"], None)).trim());
        assert_eq!(c.parents.len(), 1);
        assert_eq!(odb.read_commit(&c.tree).unwrap(), None, "a tree is not a commit");
        odb.close();
        assert_eq!(odb.read(&head).unwrap_err().kind, ErrorKind::State);
    }
}

#[test]
fn a_corrupt_pack_is_an_error_naming_where_not_a_wrong_object() {
    let d = TempDir::new("odb-corrupt");
    let repo = d.mkdir("r");
    make_repo(&repo, 6, 3);
    git(&repo, &["repack", "-adq"], None);
    let idx = pack_index(&repo);
    // The biggest whole object: "<oid> blob <size> <size in pack> <offset>".
    let verify = text(git(&repo, &["verify-pack", "-v", idx.to_str().unwrap()], None));
    let (big, at, len) = verify
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() == 5 && f[1] == "blob").then(|| (f[0].to_string(), f[4].parse::<u64>().unwrap(), f[3].parse::<u64>().unwrap()))
        })
        .max_by_key(|x| x.2)
        .unwrap();
    let pack = idx.with_extension("pack");
    let mut bytes = std::fs::read(&pack).unwrap();
    bytes[(at + len / 2) as usize] ^= 0x55;
    std::fs::set_permissions(&pack, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::write(&pack, &bytes).unwrap();
    let odb = Odb::open(&repo.join(".git")).unwrap();
    let e = odb.read(&oid(&big)).unwrap_err();
    assert_eq!(e.code(), "MPGIT_BAD_PACK");
    assert!(e.message.contains(&format!("offset {}", at)), "{}", e);

    // A pack that is not the one its index was made for.
    bytes.truncate(bytes.len() - 1);
    std::fs::write(&pack, &bytes).unwrap();
    let e = Odb::open(&repo.join(".git")).err().unwrap();
    assert!(e.message.contains("does not match its index"), "{}", e);
    assert_eq!(Odb::open(&d.path("nothing")).err().unwrap().code(), "MPGIT_NOT_A_REPO");
}

/// A fresh repository at `dst` borrowing `src`'s objects, HEAD at `commit`, nothing checked out.
fn empty_clone(src: &Path, dst: &Path, commit: &str) {
    git(dst.parent().unwrap(), &["init", "-q", dst.file_name().unwrap().to_str().unwrap()], None);
    std::fs::write(dst.join(".git/objects/info/alternates"), format!("{}\n", src.join(".git/objects").display())).unwrap();
    git(dst, &["update-ref", "HEAD", commit], None);
}

#[test]
fn checkout_and_index_leave_git_status_clean() {
    let (d, src) = packed_variety_repo("odb-checkout", "src");
    let head = text(git(&src, &["rev-parse", "HEAD"], None)).trim().to_string();
    for threads in [1, 3] {
        let dst = d.path(&format!("dst{}", threads));
        empty_clone(&src, &dst, &head);
        let odb = Odb::open(&dst.join(".git")).unwrap();
        let progress = Progress::default();
        let s = checkout(&odb, &oid(&head), &dst, Some(&dst.join(".git/index")), threads, &progress).unwrap();
        let ls = text(git(&src, &["ls-files", "-s"], None));
        assert_eq!(s.entries as usize, ls.lines().count());
        assert_eq!(progress.done.load(std::sync::atomic::Ordering::Relaxed), s.entries);
        assert_eq!(text(git(&dst, &["ls-files", "-s"], None)), ls);
        // diff-files trusts the stat data (status would refresh it first).
        git(&dst, &["diff-files", "--quiet"], None);
        assert_eq!(text(git(&dst, &["status", "--porcelain", "--ignored"], None)), "");
        assert_eq!(std::fs::read_link(dst.join("link")).unwrap().to_str(), Some("f0.txt"));
        assert_eq!(std::fs::metadata(dst.join("sub/deep/run.sh")).unwrap().permissions().mode() & 0o100, 0o100);
        assert_eq!(std::fs::metadata(dst.join("f0.txt")).unwrap().permissions().mode() & 0o111, 0);
        assert!(dst.join("deps/mod").is_dir());
        assert_eq!(std::fs::read(dst.join("big.bin")).unwrap(), std::fs::read(src.join("big.bin")).unwrap());
        // A second checkout into the same place refuses to overwrite anything.
        let again = checkout(&odb, &oid(&head), &dst, None, threads, &Progress::default()).unwrap_err();
        assert_eq!(again.code(), "EEXIST", "{}", again);
    }
}

#[test]
fn checkout_in_batches_written_by_other_databases_gives_the_same_index() {
    let (d, src) = packed_variety_repo("odb-checkout-batch", "src");
    let head = text(git(&src, &["rev-parse", "HEAD"], None)).trim().to_string();
    let dst = d.path("dst");
    empty_clone(&src, &dst, &head);
    let odb = Odb::open(&dst.join(".git")).unwrap();
    let progress = Progress::default();
    let mut plan = Plan::new(&odb, &oid(&head), &dst, 2, &progress).unwrap();
    // Two writers, each with a database of its own, the batches alternating between them.
    let writers = [Odb::open(&dst.join(".git")).unwrap(), Odb::open(&dst.join(".git")).unwrap()];
    let mut answers = Vec::new();
    let mut k = 0;
    while let Some(b) = plan.take_batch(3) {
        answers.push(write_batch(&writers[k % 2], &dst, &b).unwrap());
        k += 1;
    }
    assert!(k > 2 && !plan.written());
    for a in answers.iter().rev() {
        plan.record_batch(a, &progress).unwrap();
    }
    assert!(plan.written());
    let s = plan.finish(Some(&dst.join(".git/index"))).unwrap();
    assert_eq!(progress.done.load(std::sync::atomic::Ordering::Relaxed), s.entries);
    assert_eq!(text(git(&dst, &["ls-files", "-s"], None)), text(git(&src, &["ls-files", "-s"], None)));
    git(&dst, &["diff-files", "--quiet"], None);
    assert_eq!(text(git(&dst, &["status", "--porcelain", "--ignored"], None)), "");
    // A writer's error is the error a checkout on one thread gives (here: a file in the way).
    let other = d.path("other");
    std::fs::create_dir(&other).unwrap();
    let batch = Plan::new(&odb, &oid(&head), &other, 1, &Progress::default()).unwrap().take_batch(1).unwrap();
    let again = write_batch(&writers[0], &dst, &batch).unwrap_err();
    assert_eq!(again.code(), "EEXIST", "{}", again);
}

/// Writes a tree object from (mode, name, id) entries, unchecked (as a hostile server could).
fn raw_tree(repo: &Path, entries: &[(&str, &[u8], &str)]) -> String {
    let mut t = Vec::new();
    for (mode, name, id) in entries {
        t.extend_from_slice(mode.as_bytes());
        t.push(b' ');
        t.extend_from_slice(name);
        t.push(0);
        t.extend_from_slice(&oid(id));
    }
    text(git(repo, &["hash-object", "-t", "tree", "--literally", "-w", "--stdin"], Some(&t))).trim().to_string()
}

#[test]
fn checkout_refuses_unsafe_paths_and_never_writes_through_a_link() {
    let d = TempDir::new("odb-unsafe");
    let repo = d.path("r");
    git(&d.0, &["init", "-q", "r"], None);
    let blob = text(git(&repo, &["hash-object", "-w", "--stdin"], Some(b"payload\n"))).trim().to_string();
    let odb = Odb::open(&repo.join(".git")).unwrap();
    for (k, name) in [&b".git"[..], b".GIT", b"..", b".", b"a/b"].into_iter().enumerate() {
        let inner = raw_tree(&repo, &[("100644", b"config", &blob)]);
        let t = raw_tree(&repo, &[(if name == b"a/b" { "100644" } else { "40000" }, name, if name == b"a/b" { &blob } else { &inner })]);
        let wt = d.mkdir(&format!("wt-{}", k));
        let e = checkout(&odb, &oid(&t), &wt, None, 2, &Progress::default()).unwrap_err();
        assert_eq!(e.code(), "MPGIT_BAD_PACK");
        assert!(e.message.contains("unsafe entry name"), "{}", e);
        assert_eq!(std::fs::read_dir(&wt).unwrap().count(), 0, "nothing written");
    }
    // A symbolic link and a directory of the same name: refused as a duplicate entry before
    // anything is written; nothing lands where the link points.
    let outside = d.mkdir("outside");
    let target = text(git(&repo, &["hash-object", "-w", "--stdin"], Some(outside.to_str().unwrap().as_bytes()))).trim().to_string();
    let inner = raw_tree(&repo, &[("100644", b"x", &blob)]);
    let t = raw_tree(&repo, &[("120000", b"a", &target), ("40000", b"a", &inner)]);
    let wt = d.mkdir("wt-link");
    let e = checkout(&odb, &oid(&t), &wt, None, 1, &Progress::default()).unwrap_err();
    assert_eq!(e.code(), "MPGIT_BAD_PACK", "{}", e);
    assert!(e.message.contains("two entries named \"a\""), "{}", e);
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
    // A blob where a tree should be, and a missing blob.
    let e = checkout(&odb, &oid(&blob), &wt, None, 1, &Progress::default()).unwrap_err();
    assert!(e.message.contains("expected a tree or a commit"), "{}", e);
    let t = raw_tree(&repo, &[("100644", b"gone", &"3".repeat(40))]);
    let e = checkout(&odb, &oid(&t), &d.path("wt-link"), None, 1, &Progress::default()).unwrap_err();
    assert_eq!(e.kind, ErrorKind::MissingObject);
    assert!(e.message.contains(&format!("blob {} (gone) is missing", "3".repeat(40))), "{}", e);
}

#[test]
fn connectivity_counts_what_rev_list_counts_and_names_a_missing_object() {
    let (d, repo) = packed_variety_repo("odb-connect", "r");
    let tips: Vec<[u8; 20]> = text(git(&repo, &["for-each-ref", "--format=%(objectname)"], None)).lines().map(oid).collect();
    let reachable = text(git(&repo, &["rev-list", "--objects", "--all"], None)).lines().count() as u64;
    let odb = Odb::open(&repo.join(".git")).unwrap();
    assert_eq!(check_connected(&odb, &tips, &HashSet::new(), None).unwrap(), reachable);
    // Everything is in `before`: the walk stops at once.
    let before = Odb::open(&repo.join(".git")).unwrap();
    assert_eq!(check_connected(&odb, &tips, &HashSet::new(), Some(&before)).unwrap(), tips.iter().collect::<HashSet<_>>().len() as u64);
    // A shallow HEAD: its parents are not walked.
    let head = oid(&text(git(&repo, &["rev-parse", "HEAD"], None)));
    let one = text(git(&repo, &["rev-list", "--objects", "-n1", "HEAD"], None)).lines().count() as u64;
    let shallow: HashSet<[u8; 20]> = [head].into_iter().collect();
    assert_eq!(check_connected(&odb, &[head], &shallow, None).unwrap(), one);

    // A blob of HEAD left out: the pack rebuilt without it.
    let blob = text(git(&repo, &["rev-parse", "HEAD:sub/deep/er/x.txt"], None)).trim().to_string();
    drop((odb, before));
    let keep: Vec<String> = text(git(&repo, &["rev-list", "--objects", "--all"], None)).lines().map(|l| l[..40].to_string()).filter(|o| *o != blob).collect();
    let fresh = d.mkdir("fresh");
    git(&repo, &["pack-objects", "-q", fresh.join("pack").to_str().unwrap()], Some((keep.join("\n") + "\n").as_bytes()));
    let pack_dir = repo.join(".git/objects/pack");
    for e in std::fs::read_dir(&pack_dir).unwrap() {
        std::fs::remove_file(e.unwrap().path()).unwrap();
    }
    for e in std::fs::read_dir(&fresh).unwrap() {
        let p = e.unwrap().path();
        std::fs::rename(&p, pack_dir.join(p.file_name().unwrap())).unwrap();
    }
    let odb3 = Odb::open(&repo.join(".git")).unwrap();
    assert!(!odb3.has(&oid(&blob)).unwrap());
    let e = check_connected(&odb3, &[head], &HashSet::new(), None).unwrap_err();
    assert_eq!(e.code(), "MPGIT_MISSING_OBJECTS");
    let tree = text(git(&repo, &["rev-parse", "HEAD:sub/deep/er"], None)).trim().to_string();
    assert!(e.message.contains(&format!("object {} (reached from object {}) is missing", blob, tree)), "{}", e);
    let e = check_connected(&odb3, &[[0x42; 20]], &HashSet::new(), None).unwrap_err();
    assert!(e.message.contains("(reached from a ref)"), "{}", e);
}
