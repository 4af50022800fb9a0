//! The object database's file operations as system calls (see `sys`). What std offers on every
//! platform is here; checkout's `Dir` (the `*at` calls), tree-path bytes and directory listings
//! as bytes are Unix's below, and `std_dir` has them for other systems (Windows).

use crate::error::{Error, Result};
#[cfg(unix)]
use crate::odb::index_file::Stat;
use memmap2::Mmap;
#[cfg(unix)]
use std::ffi::{CString, OsStr};
use std::fs::File;
use std::io::Write;
#[cfg(unix)]
use std::os::unix::ffi::OsStrExt;
#[cfg(unix)]
use std::os::unix::io::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

/// A pack, read by offset (`pread`): no map, so resident memory is what is being decoded.
pub struct PackReader {
    file: File,
    size: u64,
}

impl PackReader {
    pub fn open(path: &Path) -> Result<PackReader> {
        let file = File::open(path).map_err(|e| Error::io(&e, format!("opening {}", path.display())))?;
        let size = file.metadata().map_err(|e| Error::io(&e, format!("reading {}", path.display())))?.len();
        Ok(PackReader { file, size })
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn read_exact_at(&self, buf: &mut [u8], at: u64) -> std::io::Result<()> {
        crate::pio::read_exact_at(&self.file, buf, at)
    }
}

/// An .idx file's bytes, mapped.
pub struct IdxBytes(Mmap);

impl IdxBytes {
    pub fn open(path: &Path) -> Result<IdxBytes> {
        let f = File::open(path).map_err(|e| Error::io(&e, format!("opening {}", path.display())))?;
        // SAFETY: the .idx is read-only once written (git and mpgit rename it into place whole);
        // every read of it is bounds-checked against the map's length.
        let m = unsafe { Mmap::map(&f) }.map_err(|e| Error::io(&e, format!("mapping {}", path.display())))?;
        Ok(IdxBytes(m))
    }
}

impl std::ops::Deref for IdxBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

pub fn read_file(path: &Path) -> std::io::Result<Vec<u8>> {
    std::fs::read(path)
}

/// The names in a directory (without . and ..).
#[cfg(unix)]
pub fn list_dir(path: &Path) -> std::io::Result<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    for ent in std::fs::read_dir(path)? {
        out.push(ent?.file_name().as_bytes().to_vec());
    }
    Ok(out)
}

/// Modification time in milliseconds since the epoch (following links), None when there is
/// no such file.
pub fn mtime_ms(path: &Path) -> Option<f64> {
    let meta = std::fs::metadata(path).ok()?;
    let t = meta.modified().unwrap_or(std::time::UNIX_EPOCH);
    Some(match t.duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => d.as_secs_f64() * 1000.0,
        Err(e) => -e.duration().as_secs_f64() * 1000.0,
    })
}

pub fn canonicalize(path: &Path) -> std::io::Result<PathBuf> {
    std::fs::canonicalize(path)
}

pub fn is_dir(path: &Path) -> bool {
    path.is_dir()
}

pub fn exists(path: &Path) -> bool {
    path.exists()
}

/// `base` joined with '/'-separated `rel` bytes ("" is `base` itself).
#[cfg(unix)]
pub fn join(base: &Path, rel: &[u8]) -> PathBuf {
    base.join(OsStr::from_bytes(rel))
}

#[cfg(unix)]
pub fn create_dir(base: &Path, rel: &[u8]) -> Result<()> {
    let p = join(base, rel);
    std::fs::create_dir(&p).map_err(|e| Error::io(&e, format!("creating {}", p.display())))
}

/// A file created by `NewFile::create` (it must not have existed: mode 0666 less the umask).
pub struct NewFile(File);

impl NewFile {
    pub fn create(path: &Path) -> std::io::Result<NewFile> {
        std::fs::OpenOptions::new().write(true).create_new(true).open(path).map(NewFile)
    }

    pub fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.0.write_all(bytes)
    }
}

pub fn rename(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::rename(from, to)
}

pub fn remove_file(path: &Path) -> std::io::Result<()> {
    std::fs::remove_file(path)
}

#[cfg(unix)]
fn cstr(b: &[u8], what: &str) -> Result<CString> {
    CString::new(b).map_err(|_| Error::bad(format!("{} contains a NUL byte", what)))
}

#[cfg(unix)]
fn last_os_error(what: String) -> Error {
    Error::io(&std::io::Error::last_os_error(), what)
}

// The casts: the field types differ between systems (macOS: dev_t is i32).
#[cfg(unix)]
#[allow(clippy::unnecessary_cast)]
fn stat_of(st: &libc::stat) -> Stat {
    Stat {
        ctime_sec: st.st_ctime as i64,
        ctime_nsec: st.st_ctime_nsec as i64,
        mtime_sec: st.st_mtime as i64,
        mtime_nsec: st.st_mtime_nsec as i64,
        dev: st.st_dev as u64,
        ino: st.st_ino as u64,
        uid: st.st_uid as u32,
        gid: st.st_gid as u32,
        size: st.st_size as u64,
    }
}

/// A work-tree directory checkout writes into: entries are created relative to its
/// descriptor, never following a symbolic link.
#[cfg(unix)]
pub struct Dir {
    fd: OwnedFd,
}

#[cfg(unix)]
impl Dir {
    /// The directory `rel` (tree path bytes) of `work_tree`.
    pub fn open(work_tree: &Path, rel: &[u8]) -> Result<Dir> {
        let path = join(work_tree, rel);
        let c = cstr(path.as_os_str().as_bytes(), "a path")?;
        // SAFETY: a NUL-terminated path; the descriptor is owned (closed on drop) right away.
        let raw = unsafe { libc::open(c.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC | libc::O_NOFOLLOW) };
        if raw < 0 {
            return Err(last_os_error(format!("opening {}", path.display())));
        }
        Ok(Dir { fd: unsafe { OwnedFd::from_raw_fd(raw) } })
    }

    /// An empty directory `name` (a gitlink). `shown` names the entry in messages.
    pub fn mkdir(&self, name: &[u8], shown: &str) -> Result<()> {
        let name = cstr(name, "a path")?;
        // SAFETY: a directory descriptor and a NUL-terminated name.
        if unsafe { libc::mkdirat(self.fd.as_raw_fd(), name.as_ptr(), 0o777) } != 0 {
            return Err(last_os_error(format!("creating {}", shown)));
        }
        Ok(())
    }

    /// A new file `name` holding `data` (0777 when `exec`, else 0666, less the umask, as git
    /// does); its stat from its descriptor.
    pub fn create_file(&self, name: &[u8], data: &[u8], exec: bool, shown: &str) -> Result<Stat> {
        let name = cstr(name, "a path")?;
        let perm = if exec { 0o777 } else { 0o666 };
        // SAFETY (all calls below): valid descriptors, NUL-terminated strings, a stat buffer
        // the kernel fills.
        let fd = unsafe { libc::openat(self.fd.as_raw_fd(), name.as_ptr(), libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC, perm as libc::c_uint) };
        if fd < 0 {
            return Err(last_os_error(format!("creating {}", shown)));
        }
        let mut f = unsafe { File::from_raw_fd(fd) };
        f.write_all(data).map_err(|e| Error::io(&e, format!("writing {}", shown)))?;
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        if unsafe { libc::fstat(f.as_raw_fd(), &mut st) } != 0 {
            return Err(last_os_error(format!("reading back {}", shown)));
        }
        Ok(stat_of(&st))
    }

    /// A symbolic link `name` to `target`; its own stat (lstat).
    pub fn symlink(&self, target: &[u8], name: &[u8], shown: &str) -> Result<Stat> {
        let target = cstr(target, &format!("the target of the symbolic link {}", shown))?;
        let name = cstr(name, "a path")?;
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: as in create_file.
        if unsafe { libc::symlinkat(target.as_ptr(), self.fd.as_raw_fd(), name.as_ptr()) } != 0 {
            return Err(last_os_error(format!("creating {}", shown)));
        }
        if unsafe { libc::fstatat(self.fd.as_raw_fd(), name.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) } != 0 {
            return Err(last_os_error(format!("reading back {}", shown)));
        }
        Ok(stat_of(&st))
    }
}
