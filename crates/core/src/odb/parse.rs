//! The object kinds walks and checkouts read: commits (tree, parents, committer time), trees
//! (entries) and annotated tags (what they point at). Input is untrusted: malformed objects
//! are errors, and a tree entry whose name would escape the work tree or write into the
//! repository is refused, as git's verify_path does (and as the TypeScript reader does).

use super::{Error, Result};
use crate::oid::hex;

pub const MODE_TREE: u32 = 0o040000;
pub const MODE_FILE: u32 = 0o100644;
pub const MODE_EXEC: u32 = 0o100755;
pub const MODE_SYMLINK: u32 = 0o120000;
pub const MODE_GITLINK: u32 = 0o160000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commit {
    pub tree: [u8; 20],
    pub parents: Vec<[u8; 20]>,
    /// Committer time, seconds since the epoch (0 when absent).
    pub time: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    pub object: [u8; 20],
    pub kind: Vec<u8>,
}

/// An object id written in hex (lower case, as git writes them).
fn hex_oid(s: &[u8]) -> Option<[u8; 20]> {
    if s.len() != 40 || !s.iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    crate::oid::parse_oid(std::str::from_utf8(s).ok()?)
}

/// The header lines of a commit or tag (up to the blank line), as (key, value); continuation
/// lines (a signature's) are skipped.
fn headers<'a>(data: &'a [u8], what: &str) -> Result<Vec<(&'a [u8], &'a [u8])>> {
    let end = data.windows(2).position(|w| w == b"\n\n").unwrap_or(data.len());
    let mut out = Vec::new();
    for line in data[..end].split(|&b| b == b'\n') {
        if line.is_empty() || line[0] == b' ' {
            continue;
        }
        match line.iter().position(|&b| b == b' ') {
            Some(sp) if sp > 0 => out.push((&line[..sp], &line[sp + 1..])),
            _ => {
                let shown = String::from_utf8_lossy(&line[..line.len().min(80)]);
                return Err(Error::bad(format!("malformed {} header line {:?}", what, shown)));
            }
        }
    }
    Ok(out)
}

pub fn commit(data: &[u8], oid: &[u8; 20]) -> Result<Commit> {
    let what = format!("commit {}", hex(oid));
    let mut tree = None;
    let mut parents = Vec::new();
    let mut time = 0i64;
    for (k, v) in headers(data, &what)? {
        match k {
            b"tree" => tree = hex_oid(v),
            b"parent" => parents.push(hex_oid(v).ok_or_else(|| Error::bad(format!("{} has a malformed parent line", what)))?),
            b"committer" => {
                // "... <email> <seconds> <+zone>"
                if let Some(gt) = v.iter().rposition(|&b| b == b'>') {
                    let rest = &v[gt + 1..];
                    let mut parts = rest.split(|&b| b == b' ').filter(|p| !p.is_empty());
                    if let Some(secs) = parts.next() {
                        time = std::str::from_utf8(secs).ok().and_then(|s| s.parse().ok()).unwrap_or(0);
                    }
                }
            }
            _ => {}
        }
    }
    let tree = tree.ok_or_else(|| Error::bad(format!("{} has no valid tree line", what)))?;
    Ok(Commit { tree, parents, time })
}

pub fn tag(data: &[u8], oid: &[u8; 20]) -> Result<Tag> {
    let what = format!("tag {}", hex(oid));
    let mut object = None;
    let mut kind = None;
    for (k, v) in headers(data, &what)? {
        match k {
            b"object" => object = hex_oid(v),
            b"type" => kind = Some(v.to_vec()),
            _ => {}
        }
    }
    match (object, kind) {
        (Some(object), Some(kind)) if !kind.is_empty() => Ok(Tag { object, kind }),
        _ => Err(Error::bad(format!("{} has no valid object/type lines", what))),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TreeEntry<'a> {
    pub mode: u32,
    pub name: &'a [u8],
    pub oid: [u8; 20],
}

/// Whether a checkout refuses a path component (git's verify_path): empty, ".", "..", ".git"
/// in any case, or containing a separator or NUL; with git's defaults, also what NTFS would
/// take for `.git` (core.protectNTFS: `git~1`, `.git ` and `.git.`, also after a backslash)
/// and, on macOS, what HFS+ would (core.protectHFS: `.git` with ignorable code points).
pub fn unsafe_name(name: &[u8]) -> bool {
    name.is_empty()
        || name == b"."
        || name == b".."
        || name.eq_ignore_ascii_case(b".git")
        || name.iter().any(|&b| b == b'/' || b == 0)
        || at_each_ntfs_component(name, ntfs_dotgit)
        || (cfg!(target_os = "macos") && hfs_dot(name, b"git"))
}

/// What a symbolic link may not be named besides (verify_path): `.gitmodules` as NTFS or HFS+
/// would read it.
pub fn unsafe_link_name(name: &[u8]) -> bool {
    at_each_ntfs_component(name, |n| ntfs_dot_generic(n, b"gitmodules", b"gi7eba")) || (cfg!(target_os = "macos") && hfs_dot(name, b"gitmodules"))
}

/// Applies `f` to the name and to what follows each backslash (a separator to NTFS).
fn at_each_ntfs_component(name: &[u8], f: impl Fn(&[u8]) -> bool) -> bool {
    f(name) || name.iter().enumerate().any(|(i, &b)| b == b'\\' && f(&name[i + 1..]))
}

/// Only spaces and periods up to the end, a backslash or (for NTFS streams) a colon.
fn only_spaces_and_periods(rest: &[u8], colon_ends: bool) -> bool {
    for &c in rest {
        if c == b'\\' || (colon_ends && c == b':') {
            return true;
        }
        if c != b' ' && c != b'.' {
            return false;
        }
    }
    true
}

/// git's is_ntfs_dotgit: `.git` or `git~1` in any case, then only spaces and periods.
fn ntfs_dotgit(name: &[u8]) -> bool {
    let rest = if name.len() >= 4 && name[0] == b'.' && name[1..4].eq_ignore_ascii_case(b"git") {
        &name[4..]
    } else if name.len() >= 5 && name[..3].eq_ignore_ascii_case(b"git") && &name[3..5] == b"~1" {
        &name[5..]
    } else {
        return false;
    };
    only_spaces_and_periods(rest, false)
}

/// git's is_ntfs_dot_generic: `.<name>`, its 8.3 short name `<first 6>~1..4`, or a fall-back
/// short name `<prefix>~N`, each followed only by spaces and periods (or a `:stream`).
fn ntfs_dot_generic(name: &[u8], dotgit_name: &[u8], short_prefix: &[u8]) -> bool {
    let len = dotgit_name.len();
    if name.len() > len && name[0] == b'.' && name[1..=len].eq_ignore_ascii_case(dotgit_name) {
        return only_spaces_and_periods(&name[len + 1..], true);
    }
    if name.len() >= 8 && name[..6].eq_ignore_ascii_case(&dotgit_name[..6]) && name[6] == b'~' && (b'1'..=b'4').contains(&name[7]) {
        return only_spaces_and_periods(&name[8..], true);
    }
    let mut saw_tilde = false;
    let mut i = 0;
    while i < 8 {
        let c = match name.get(i) {
            Some(&c) => c,
            None => return false,
        };
        if saw_tilde {
            if !c.is_ascii_digit() {
                return false;
            }
        } else if c == b'~' {
            i += 1;
            match name.get(i) {
                Some(d) if (b'1'..=b'9').contains(d) => {}
                _ => return false,
            }
            saw_tilde = true;
        } else if i >= 6 || c & 0x80 != 0 || c.to_ascii_lowercase() != short_prefix[i] {
            return false;
        }
        i += 1;
    }
    only_spaces_and_periods(&name[8.min(name.len())..], true)
}

/// git's is_hfs_dot_generic: `.<needle>` once the code points HFS+ ignores are dropped.
fn hfs_dot(name: &[u8], needle: &[u8]) -> bool {
    let text = match std::str::from_utf8(name) {
        Ok(t) => t,
        Err(_) => return false,
    };
    let ignorable = |c: char| matches!(c as u32, 0x200c..=0x200f | 0x202a..=0x202e | 0x206a..=0x206f | 0xfeff);
    let mut chars = text.chars().filter(|&c| !ignorable(c));
    if chars.next() != Some('.') {
        return false;
    }
    for &n in needle {
        match chars.next() {
            Some(c) if c.is_ascii() && c.to_ascii_lowercase() as u8 == n => {}
            _ => return false,
        }
    }
    matches!(chars.next(), None | Some('/'))
}

/// The entries of a tree. With `check_names`, names a checkout must refuse are errors. Names
/// are bytes, as in git: one that is not UTF-8 is written as it is where the file system takes
/// it (odb/sys; Windows' std_dir.rs refuses it when creating the entry).
pub fn tree<'a>(data: &'a [u8], oid: &[u8; 20], check_names: bool) -> Result<Vec<TreeEntry<'a>>> {
    let mut out = Vec::new();
    let mut at = 0;
    let malformed = |at: usize| Error::bad(format!("tree {} is malformed at byte {}", hex(oid), at));
    while at < data.len() {
        let sp = data[at..].iter().position(|&b| b == b' ').map(|p| at + p).ok_or_else(|| malformed(at))?;
        let nul = data[sp..].iter().position(|&b| b == 0).map(|p| sp + p).ok_or_else(|| malformed(at))?;
        if nul + 21 > data.len() {
            return Err(malformed(at));
        }
        let mode_text = &data[at..sp];
        if !(5..=6).contains(&mode_text.len()) || !mode_text.iter().all(|c| (b'0'..=b'7').contains(c)) {
            return Err(Error::bad(format!("tree {} has a bad mode {:?}", hex(oid), String::from_utf8_lossy(mode_text))));
        }
        let mode = mode_text.iter().fold(0u32, |m, c| m * 8 + (c - b'0') as u32);
        let name = &data[sp + 1..nul];
        if check_names {
            if unsafe_name(name) || (mode == 0o120000 && unsafe_link_name(name)) {
                return Err(Error::bad(format!(
                    "tree {} has an unsafe entry name {:?}; the repository contains a path git refuses to check out",
                    hex(oid),
                    String::from_utf8_lossy(name)
                )));
            }
        }
        let mut id = [0u8; 20];
        id.copy_from_slice(&data[nul + 1..nul + 21]);
        out.push(TreeEntry { mode, name, oid: id });
        at = nul + 21;
    }
    if check_names {
        // Two entries of one name (a link and a directory, say) would be written over or
        // through each other: git's fsck calls it duplicateEntries.
        let mut names: Vec<&[u8]> = out.iter().map(|e| e.name).collect();
        names.sort_unstable();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(Error::bad(format!(
                "tree {} has two entries named {:?}; the repository is corrupt or hostile (git fsck: duplicateEntries)",
                hex(oid),
                String::from_utf8_lossy(w[0])
            )));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(mode: &str, name: &[u8]) -> Vec<u8> {
        let mut v = format!("{} ", mode).into_bytes();
        v.extend_from_slice(name);
        v.push(0);
        v.extend_from_slice(&[1u8; 20]);
        v
    }

    #[test]
    fn hfs_reads_dotgit_through_ignorable_code_points() {
        // Applied on macOS only (core.protectHFS's default), checked everywhere.
        assert!(hfs_dot(".g\u{200c}it".as_bytes(), b"git"));
        assert!(hfs_dot("\u{feff}.GIT".as_bytes(), b"git"));
        assert!(hfs_dot(".gitmodules\u{200d}".as_bytes(), b"gitmodules"));
        assert!(!hfs_dot(".gitx".as_bytes(), b"git"));
        assert!(!hfs_dot("g.it".as_bytes(), b"git"));
    }

    #[test]
    fn links_named_like_gitmodules_are_refused_as_git_does() {
        let id = [9u8; 20];
        for name in [&b".gitmodules"[..], b".GITMODULES ", b"gitmod~1", b"gi7eba~9", b".gitmodules:$DATA"] {
            assert!(tree(&entry("120000", name), &id, true).is_err(), "{:?}", name);
            assert!(tree(&entry("100644", name), &id, true).is_ok(), "{:?}", name);
        }
        assert!(tree(&entry("120000", b"gitmodules"), &id, true).is_ok());
        assert!(tree(&entry("100644", b"git~2"), &id, true).is_ok());
        assert!(tree(&entry("100644", b".gitx"), &id, true).is_ok());
        let two = [entry("120000", b"a"), entry("40000", b"a")].concat();
        assert!(tree(&two, &id, true).unwrap_err().message.contains("two entries named"));
    }

    #[test]
    fn trees_refuse_what_a_checkout_must_not_write() {
        let id = [9u8; 20];
        let ok = entry("100644", b"ok.txt");
        assert_eq!(tree(&ok, &id, true).unwrap()[0].name, b"ok.txt");
        for name in [&b".."[..], b".", b".git", b".GIT", b".Git", b"a/b", b"", b"git~1", b"GIT~1", b".git ", b".git.", b".git . ", b"x\\.git", b"x\\git~1.."] {
            let e = tree(&entry("100644", name), &id, true).unwrap_err();
            assert!(e.message.contains("unsafe entry name"), "{:?}: {}", name, e);
            // A walk that only follows ids does not care.
            if !name.is_empty() && !name.contains(&b'/') {
                assert!(tree(&entry("100644", name), &id, false).is_ok());
            }
        }
        assert_eq!(tree(&entry("100644", b"caf\xe9"), &id, true).unwrap()[0].name, b"caf\xe9", "names are bytes, as in git");
        assert!(tree(b"100644 trunc", &id, true).unwrap_err().message.contains("malformed"));
        assert!(tree(&entry("10064x", b"a"), &id, true).unwrap_err().message.contains("bad mode"));
        let mut two = entry("40000", b"dir");
        two.extend(entry("120000", b"link"));
        let es = tree(&two, &id, true).unwrap();
        assert_eq!((es[0].mode, es[1].mode), (MODE_TREE, MODE_SYMLINK));
    }

    #[test]
    fn commits_and_tags() {
        let t = "1".repeat(40);
        let p = "2".repeat(40);
        let c = format!("tree {}\nparent {}\nparent {}\nauthor A <a@x> 1 +0000\ncommitter C <c@x> 1700000123 -0130\ngpgsig -----BEGIN\n more\n\nmsg\n", t, p, p);
        let got = commit(c.as_bytes(), &[0; 20]).unwrap();
        assert_eq!(got.tree, [0x11; 20]);
        assert_eq!(got.parents, vec![[0x22; 20], [0x22; 20]]);
        assert_eq!(got.time, 1700000123);
        assert!(commit(b"parent x\n", &[0; 20]).is_err());
        assert!(commit(b"author A\n\n", &[0; 20]).unwrap_err().message.contains("no valid tree"));
        let tg = tag(format!("object {}\ntype commit\ntag v1\n\nmsg", t).as_bytes(), &[0; 20]).unwrap();
        assert_eq!((tg.object, tg.kind.as_slice()), ([0x11; 20], &b"commit"[..]));
        assert!(tag(b"type commit\n", &[0; 20]).is_err());
    }
}
