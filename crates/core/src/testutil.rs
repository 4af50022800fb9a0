//! Helpers the crate's tests share: temporary directories, running git (a test dependency
//! everywhere in mpgit), deterministic numbers, and a repository whose history makes deltas.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!("mpgit-test-{}-{}-{}", tag, std::process::id(), N.fetch_add(1, Ordering::Relaxed)));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
    /// `name` under the directory, created empty.
    pub fn mkdir(&self, name: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::create_dir(&p).unwrap();
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn git(dir: &Path, args: &[&str], stdin: Option<&[u8]>) -> Vec<u8> {
    let mut cmd = Command::new("git");
    cmd.current_dir(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.com")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.com")
        .env("GIT_AUTHOR_DATE", "1700000000 +0000")
        .env("GIT_COMMITTER_DATE", "1700000000 +0000")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("git is needed by these tests and could not run: {}", e));
    if let Some(input) = stdin {
        use std::io::Write;
        let mut w = child.stdin.take().unwrap();
        let input = input.to_vec();
        std::thread::spawn(move || {
            let _ = w.write_all(&input);
        });
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "git {:?} failed: {}", args, String::from_utf8_lossy(&out.stderr));
    out.stdout
}

/// A delta header size: little-endian base-128.
pub fn varint(mut n: u64, out: &mut Vec<u8>) {
    loop {
        let c = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(c);
            return;
        }
        out.push(c | 0x80);
    }
}

/// Deterministic pseudo-random numbers (xorshift).
pub struct Rng(pub u64);
impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A repository whose history makes deltas: text files edited a few lines per commit, files
/// added, and a larger binary-ish file that changes a little each time.
pub fn make_repo(dir: &Path, commits: usize, seed: u64) {
    git(dir, &["init", "-q", "-b", "main", "."], None);
    let mut rng = Rng(seed | 1);
    let mut files: Vec<Vec<String>> = (0..6)
        .map(|f| (0..60 + f * 15).map(|l| format!("file {} line {} value {}", f, l, rng.next() % 100000)).collect())
        .collect();
    let mut big: Vec<u8> = (0..300_000).map(|_| (rng.next() % 7) as u8 + b'a').collect();
    for c in 0..commits {
        for _ in 0..4 {
            let f = rng.below(files.len() as u64) as usize;
            let l = rng.below(files[f].len() as u64) as usize;
            files[f][l] = format!("edited in commit {} value {}", c, rng.next() % 100000);
            if rng.below(3) == 0 {
                files[f].insert(l, format!("inserted in commit {}", c));
            }
        }
        if c % 7 == 3 {
            files.push((0..40).map(|l| format!("new file in commit {} line {}", c, l)).collect());
        }
        for _ in 0..20 {
            let at = rng.below(big.len() as u64) as usize;
            big[at] = b'A' + (rng.next() % 26) as u8;
        }
        for (i, lines) in files.iter().enumerate() {
            std::fs::write(dir.join(format!("f{}.txt", i)), lines.join("\n") + "\n").unwrap();
        }
        std::fs::write(dir.join("big.bin"), &big).unwrap();
        git(dir, &["add", "-A"], None);
        git(dir, &["commit", "-q", "-m", &format!("commit {}", c)], None);
    }
    git(dir, &["tag", "-a", "-m", "a tag", "v1"], None);
}
