//! The object database's file operations in the WebAssembly core: calls to the host (node's
//! synchronous fs, ts/core/wasm-host.ts), which has the system calls wasm lacks.
//!
//! The host ABI (module `mpgit_host`): paths are bytes (pointer, length), never NUL-terminated
//! and not necessarily UTF-8; descriptors are numbers; offsets and sizes are doubles (exact to
//! 2^53). A call that fails returns a negative number and keeps the failure, which
//! `host_error` then makes the pending result ("<errno name> <message>", its length returned);
//! results of variable length (a listing, a real path, an error) are pending results too,
//! copied into memory the caller allocated by `host_result`. Stat records are 10 doubles:
//! kind (1 file, 2 directory, 3 symbolic link, 4 other), ctime seconds, ctime nanoseconds,
//! mtime seconds, mtime nanoseconds, dev, ino (each its low 32 bits: what the index keeps),
//! uid, gid, size.

use crate::error::{Error, Result};
use crate::odb::index_file::Stat;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

#[link(wasm_import_module = "mpgit_host")]
extern "C" {
    /// Opens a file read-only: its descriptor, or -1.
    fn host_open(path: *const u8, len: usize) -> i32;
    /// The size of an open file, or -1.
    fn host_fsize(fd: i32) -> f64;
    /// Reads up to `n` bytes at offset `at`: how many (0 at the end), or -1.
    fn host_pread(fd: i32, buf: *mut u8, n: usize, at: f64) -> i32;
    fn host_close(fd: i32);
    /// stat (`follow` 1) or lstat (0) into `out` (a stat record): 0, or -1.
    fn host_stat(path: *const u8, len: usize, follow: i32, out: *mut f64) -> i32;
    /// fstat into `out`: 0, or -1.
    fn host_fstat(fd: i32, out: *mut f64) -> i32;
    /// The names in a directory, each followed by a NUL, as the pending result: its length, or -1.
    fn host_readdir(path: *const u8, len: usize) -> i32;
    /// The real path (links resolved) as the pending result: its length, or -1.
    fn host_realpath(path: *const u8, len: usize) -> i32;
    /// Copies the pending result into `buf` (as long as the call that made it said).
    fn host_result(buf: *mut u8);
    /// The last failure as the pending result ("<errno name> <message>"): its length.
    fn host_error() -> i32;
    /// mkdir with `mode` (less the umask): 0, or -1.
    fn host_mkdir(path: *const u8, len: usize, mode: u32) -> i32;
    /// Creates a file that must not exist (O_CREAT|O_EXCL|O_NOFOLLOW, write-only) with `mode`
    /// (less the umask): its descriptor, or -1.
    fn host_create(path: *const u8, len: usize, mode: u32) -> i32;
    /// Writes all `n` bytes: 0, or -1.
    fn host_write(fd: i32, buf: *const u8, n: usize) -> i32;
    fn host_symlink(target: *const u8, tlen: usize, path: *const u8, plen: usize) -> i32;
    fn host_rename(from: *const u8, flen: usize, to: *const u8, tlen: usize) -> i32;
    fn host_unlink(path: *const u8, len: usize) -> i32;
}

/// A failure the host reported: its errno name ("ENOENT") and message.
#[derive(Debug)]
pub struct HostError {
    pub code: String,
    pub message: String,
}

impl fmt::Display for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for HostError {}

fn pending(len: i32) -> Vec<u8> {
    let mut v = vec![0u8; len.max(0) as usize];
    if !v.is_empty() {
        // SAFETY: the host writes exactly the pending result's length, which `len` is.
        unsafe { host_result(v.as_mut_ptr()) }
    }
    v
}

/// The host's last failure as an io::Error of the matching kind.
fn last_error() -> io::Error {
    // SAFETY: host calls take plain numbers and memory we own.
    let text = String::from_utf8_lossy(&pending(unsafe { host_error() })).into_owned();
    let (code, message) = match text.split_once(' ') {
        Some((c, m)) => (c.to_string(), m.to_string()),
        None => ("EIO".to_string(), text),
    };
    let kind = match code.as_str() {
        "ENOENT" => io::ErrorKind::NotFound,
        "EEXIST" => io::ErrorKind::AlreadyExists,
        "EACCES" | "EPERM" => io::ErrorKind::PermissionDenied,
        _ => io::ErrorKind::Other,
    };
    io::Error::new(kind, HostError { code, message })
}

fn bytes(p: &Path) -> &[u8] {
    // Paths here come from JavaScript strings (UTF-8); tree paths travel as bytes (`join`).
    p.to_str().map(|s| s.as_bytes()).unwrap_or(b"")
}

fn ok(r: i32) -> io::Result<i32> {
    if r < 0 {
        Err(last_error())
    } else {
        Ok(r)
    }
}

fn stat_record(s: &[f64; 10]) -> Stat {
    Stat {
        ctime_sec: s[1] as i64,
        ctime_nsec: s[2] as i64,
        mtime_sec: s[3] as i64,
        mtime_nsec: s[4] as i64,
        dev: s[5] as u64,
        ino: s[6] as u64,
        uid: s[7] as u32,
        gid: s[8] as u32,
        size: s[9] as u64,
    }
}

fn stat_path(p: &[u8], follow: bool) -> io::Result<[f64; 10]> {
    let mut s = [0f64; 10];
    // SAFETY: the path's bytes and a record of 10 doubles.
    ok(unsafe { host_stat(p.as_ptr(), p.len(), follow as i32, s.as_mut_ptr()) })?;
    Ok(s)
}

fn open_fd(p: &[u8]) -> io::Result<i32> {
    // SAFETY: the path's bytes.
    ok(unsafe { host_open(p.as_ptr(), p.len()) })
}

/// A pack, read by offset.
pub struct PackReader {
    fd: i32,
    size: u64,
}

impl PackReader {
    pub fn open(path: &Path) -> Result<PackReader> {
        let fd = open_fd(bytes(path)).map_err(|e| Error::io(&e, format!("opening {}", path.display())))?;
        // Dropped (closed) on the error path below.
        let mut r = PackReader { fd, size: 0 };
        // SAFETY: a descriptor we hold.
        let size = unsafe { host_fsize(fd) };
        if size < 0.0 {
            return Err(Error::io(&last_error(), format!("reading {}", path.display())));
        }
        r.size = size as u64;
        Ok(r)
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn read_exact_at(&self, buf: &mut [u8], at: u64) -> io::Result<()> {
        read_all(self.fd, buf, at)
    }
}

impl Drop for PackReader {
    fn drop(&mut self) {
        // SAFETY: a descriptor we hold, closed once.
        unsafe { host_close(self.fd) }
    }
}

fn read_all(fd: i32, buf: &mut [u8], at: u64) -> io::Result<()> {
    let mut done = 0;
    while done < buf.len() {
        // SAFETY: the unfilled rest of `buf`.
        let n = ok(unsafe { host_pread(fd, buf[done..].as_mut_ptr(), buf.len() - done, (at + done as u64) as f64) })?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "failed to fill whole buffer"));
        }
        done += n as usize;
    }
    Ok(())
}

/// An .idx file's bytes, read whole (wasm has no maps).
pub struct IdxBytes(Vec<u8>);

impl IdxBytes {
    pub fn open(path: &Path) -> Result<IdxBytes> {
        read_file(path).map(IdxBytes).map_err(|e| Error::io(&e, format!("reading {}", path.display())))
    }
}

impl std::ops::Deref for IdxBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

pub fn read_file(path: &Path) -> io::Result<Vec<u8>> {
    let fd = open_fd(bytes(path))?;
    // SAFETY: a descriptor we hold.
    let size = unsafe { host_fsize(fd) };
    let r = if size < 0.0 {
        Err(last_error())
    } else {
        let mut v = Vec::new();
        match v.try_reserve_exact(size as usize) {
            Err(_) => Err(io::Error::new(io::ErrorKind::Other, format!("cannot allocate {} bytes", size))),
            Ok(()) => {
                v.resize(size as usize, 0);
                read_all(fd, &mut v, 0).map(|_| v)
            }
        }
    };
    // SAFETY: closed once.
    unsafe { host_close(fd) };
    r
}

pub fn list_dir(path: &Path) -> io::Result<Vec<Vec<u8>>> {
    let p = bytes(path);
    // SAFETY: the path's bytes.
    let n = ok(unsafe { host_readdir(p.as_ptr(), p.len()) })?;
    let all = pending(n);
    Ok(all.split(|&b| b == 0).filter(|n| !n.is_empty()).map(|n| n.to_vec()).collect())
}

pub fn mtime_ms(path: &Path) -> Option<f64> {
    let s = stat_path(bytes(path), true).ok()?;
    Some(s[3] * 1000.0 + s[4] / 1e6)
}

pub fn canonicalize(path: &Path) -> io::Result<PathBuf> {
    let p = bytes(path);
    // SAFETY: the path's bytes.
    let n = ok(unsafe { host_realpath(p.as_ptr(), p.len()) })?;
    String::from_utf8(pending(n)).map(PathBuf::from).map_err(|_| io::Error::new(io::ErrorKind::Other, "the real path is not UTF-8"))
}

pub fn is_dir(path: &Path) -> bool {
    stat_path(bytes(path), true).map_or(false, |s| s[0] == 2.0)
}

pub fn exists(path: &Path) -> bool {
    stat_path(bytes(path), true).is_ok()
}

/// `base` joined with '/'-separated `rel` bytes ("" is `base` itself).
fn join(base: &Path, rel: &[u8]) -> Vec<u8> {
    let mut p = bytes(base).to_vec();
    if !rel.is_empty() {
        if p.last() != Some(&b'/') {
            p.push(b'/');
        }
        p.extend_from_slice(rel);
    }
    p
}

fn shown(p: &[u8]) -> String {
    String::from_utf8_lossy(p).into_owned()
}

pub fn create_dir(base: &Path, rel: &[u8]) -> Result<()> {
    let p = join(base, rel);
    // SAFETY: the path's bytes.
    ok(unsafe { host_mkdir(p.as_ptr(), p.len(), 0o777) }).map(|_| ()).map_err(|e| Error::io(&e, format!("creating {}", shown(&p))))
}

fn create(p: &[u8], mode: u32) -> io::Result<i32> {
    // SAFETY: the path's bytes.
    ok(unsafe { host_create(p.as_ptr(), p.len(), mode) })
}

fn write_fd(fd: i32, data: &[u8]) -> io::Result<()> {
    // SAFETY: `data` is ours for the call.
    ok(unsafe { host_write(fd, data.as_ptr(), data.len()) }).map(|_| ())
}

/// A file created by `NewFile::create` (it must not have existed: mode 0666 less the umask).
pub struct NewFile {
    fd: i32,
}

impl NewFile {
    pub fn create(path: &Path) -> io::Result<NewFile> {
        create(bytes(path), 0o666).map(|fd| NewFile { fd })
    }

    pub fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        write_fd(self.fd, data)
    }
}

impl Drop for NewFile {
    fn drop(&mut self) {
        // SAFETY: a descriptor we hold, closed once.
        unsafe { host_close(self.fd) }
    }
}

pub fn rename(from: &Path, to: &Path) -> io::Result<()> {
    let (f, t) = (bytes(from), bytes(to));
    // SAFETY: the paths' bytes.
    ok(unsafe { host_rename(f.as_ptr(), f.len(), t.as_ptr(), t.len()) }).map(|_| ())
}

pub fn remove_file(path: &Path) -> io::Result<()> {
    let p = bytes(path);
    // SAFETY: the path's bytes.
    ok(unsafe { host_unlink(p.as_ptr(), p.len()) }).map(|_| ())
}

/// A work-tree directory checkout writes into. The host works by path: opening checks that
/// the directory is one (not a link to one), and its entries are created exclusively and never
/// through a link (O_EXCL|O_NOFOLLOW).
pub struct Dir {
    path: Vec<u8>,
}

impl Dir {
    pub fn open(work_tree: &Path, rel: &[u8]) -> Result<Dir> {
        let path = join(work_tree, rel);
        let s = stat_path(&path, false).map_err(|e| Error::io(&e, format!("opening {}", shown(&path))))?;
        if s[0] != 2.0 {
            let e = io::Error::new(io::ErrorKind::Other, HostError { code: "ENOTDIR".into(), message: "not a directory".into() });
            return Err(Error::io(&e, format!("opening {}", shown(&path))));
        }
        Ok(Dir { path })
    }

    fn entry(&self, name: &[u8]) -> Vec<u8> {
        let mut p = self.path.clone();
        p.push(b'/');
        p.extend_from_slice(name);
        p
    }

    pub fn mkdir(&self, name: &[u8], shown: &str) -> Result<()> {
        let p = self.entry(name);
        // SAFETY: the path's bytes.
        ok(unsafe { host_mkdir(p.as_ptr(), p.len(), 0o777) }).map(|_| ()).map_err(|e| Error::io(&e, format!("creating {}", shown)))
    }

    pub fn create_file(&self, name: &[u8], data: &[u8], exec: bool, shown: &str) -> Result<Stat> {
        let fd = create(&self.entry(name), if exec { 0o777 } else { 0o666 }).map_err(|e| Error::io(&e, format!("creating {}", shown)))?;
        let mut s = [0f64; 10];
        let r = write_fd(fd, data).map_err(|e| Error::io(&e, format!("writing {}", shown))).and_then(|_| {
            // SAFETY: a descriptor we hold and a record of 10 doubles.
            ok(unsafe { host_fstat(fd, s.as_mut_ptr()) }).map_err(|e| Error::io(&e, format!("reading back {}", shown)))
        });
        // SAFETY: closed once.
        unsafe { host_close(fd) };
        r.map(|_| stat_record(&s))
    }

    pub fn symlink(&self, target: &[u8], name: &[u8], shown: &str) -> Result<Stat> {
        if target.contains(&0) {
            return Err(Error::bad(format!("the target of the symbolic link {} contains a NUL byte", shown)));
        }
        let p = self.entry(name);
        // SAFETY: the target's and the path's bytes.
        ok(unsafe { host_symlink(target.as_ptr(), target.len(), p.as_ptr(), p.len()) }).map_err(|e| Error::io(&e, format!("creating {}", shown)))?;
        let s = stat_path(&p, false).map_err(|e| Error::io(&e, format!("reading back {}", shown)))?;
        Ok(stat_record(&s))
    }
}
