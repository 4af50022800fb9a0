//! The parts of the native file operations that are Unix system calls there (see `native`),
//! with std::fs on other systems (Windows): tree paths as UTF-8 (git for Windows' paths are),
//! checkout's entries created exclusively by path, symbolic links written as plain files
//! holding their target (git's `core.symlinks=false`, git for Windows' default), the stat
//! data git for Windows keeps (times and size; dev, ino, uid and gid zero).

use crate::error::{Error, Result};
use crate::odb::index_file::Stat;
use std::fs::{self, File, Metadata};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// The names in a directory (without . and ..), as UTF-8 bytes.
pub fn list_dir(path: &Path) -> std::io::Result<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    for ent in fs::read_dir(path)? {
        out.push(ent?.file_name().to_string_lossy().into_owned().into_bytes());
    }
    Ok(out)
}

/// The directory `rel` ('/'-separated tree path bytes, UTF-8 here) of `base`.
pub fn create_dir(base: &Path, rel: &[u8]) -> Result<()> {
    let p = base.join(utf8(rel, "a path")?);
    fs::create_dir(&p).map_err(|e| Error::io(&e, format!("creating {}", p.display())))
}

fn utf8<'a>(b: &'a [u8], shown: &str) -> Result<&'a str> {
    std::str::from_utf8(b).map_err(|_| Error::bad(format!("{} is not UTF-8, which a path on this system must be", shown)))
}

/// Seconds and nanoseconds since the epoch (negative before it).
fn since_epoch(t: std::io::Result<SystemTime>) -> (i64, i64) {
    match t.unwrap_or(UNIX_EPOCH).duration_since(UNIX_EPOCH) {
        Ok(d) => (d.as_secs() as i64, d.subsec_nanos() as i64),
        Err(e) => (-(e.duration().as_secs() as i64), 0),
    }
}

fn stat_of(m: &Metadata) -> Stat {
    let (ctime_sec, ctime_nsec) = since_epoch(m.created());
    let (mtime_sec, mtime_nsec) = since_epoch(m.modified());
    Stat { ctime_sec, ctime_nsec, mtime_sec, mtime_nsec, dev: 0, ino: 0, uid: 0, gid: 0, size: m.len() }
}

/// A work-tree directory checkout writes into; it must be a directory, not a link to one.
pub struct Dir {
    path: PathBuf,
}

impl Dir {
    /// The directory `rel` (tree path bytes) of `work_tree`.
    pub fn open(work_tree: &Path, rel: &[u8]) -> Result<Dir> {
        let path = work_tree.join(utf8(rel, "a path")?);
        let m = fs::symlink_metadata(&path).map_err(|e| Error::io(&e, format!("opening {}", path.display())))?;
        if !m.is_dir() {
            return Err(Error::bad(format!("{} is not a directory (or is a link)", path.display())));
        }
        Ok(Dir { path })
    }

    /// An empty directory `name` (a gitlink). `shown` names the entry in messages.
    pub fn mkdir(&self, name: &[u8], shown: &str) -> Result<()> {
        fs::create_dir(self.path.join(utf8(name, shown)?)).map_err(|e| Error::io(&e, format!("creating {}", shown)))
    }

    /// A new file `name` holding `data` (`exec` has no meaning here); its stat.
    pub fn create_file(&self, name: &[u8], data: &[u8], _exec: bool, shown: &str) -> Result<Stat> {
        let path = self.path.join(utf8(name, shown)?);
        // create_new: never an existing file, nor through a link (CREATE_NEW).
        let mut f = File::options().write(true).create_new(true).open(&path).map_err(|e| Error::io(&e, format!("creating {}", shown)))?;
        f.write_all(data).map_err(|e| Error::io(&e, format!("writing {}", shown)))?;
        let m = f.metadata().map_err(|e| Error::io(&e, format!("reading back {}", shown)))?;
        Ok(stat_of(&m))
    }

    /// A symbolic link `name` to `target`, as git with `core.symlinks=false` writes one: a
    /// plain file holding the target (links need a privilege on Windows).
    pub fn symlink(&self, target: &[u8], name: &[u8], shown: &str) -> Result<Stat> {
        self.create_file(name, target, false, shown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn entries_are_created_exclusively_never_through_a_link_with_their_stat() {
        let base = std::env::temp_dir().join(format!("mpgit-std-dir-{}", std::process::id()));
        let _ = fs::remove_dir_all(&base);
        fs::create_dir_all(base.join("a")).unwrap();
        let d = Dir::open(&base, b"a").unwrap();
        let st = d.create_file(b"f.txt", b"hello", false, "a/f.txt").unwrap();
        assert_eq!(fs::read(base.join("a/f.txt")).unwrap(), b"hello");
        assert_eq!(st.size, 5);
        assert!(st.mtime_sec > 0);
        let again = d.create_file(b"f.txt", b"x", false, "a/f.txt").unwrap_err();
        assert_eq!(again.kind, ErrorKind::Io("EEXIST".into()));
        assert_eq!(fs::read(base.join("a/f.txt")).unwrap(), b"hello");
        // A link is a file holding its target, as git writes it with core.symlinks=false.
        let st = d.symlink(b"f.txt", b"link", "a/link").unwrap();
        assert_eq!((fs::read(base.join("a/link")).unwrap(), st.size), (b"f.txt".to_vec(), 5));
        d.mkdir(b"sub", "a/sub").unwrap();
        create_dir(&base, b"a/sub/deeper").unwrap();
        assert!(create_dir(&base, b"a/\xfe").unwrap_err().message.contains("is not UTF-8"));
        assert!(base.join("a/sub").is_dir());
        let mut names = list_dir(&base.join("a")).unwrap();
        names.sort();
        assert_eq!(names, vec![b"f.txt".to_vec(), b"link".to_vec(), b"sub".to_vec()]);
        // Never into a directory through a link, nor a name that is not UTF-8.
        std::os::unix::fs::symlink(base.join("a"), base.join("via")).unwrap();
        let through_link = Dir::open(&base, b"via").err().expect("a link to a directory is refused");
        assert!(through_link.message.contains("is not a directory (or is a link)"), "{}", through_link.message);
        assert!(d.create_file(b"\xff.txt", b"", false, "a/?.txt").unwrap_err().message.contains("is not UTF-8"));
        fs::remove_dir_all(&base).unwrap();
    }
}
