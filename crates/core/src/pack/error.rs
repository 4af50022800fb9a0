//! The indexer's errors: what kind (which becomes the JavaScript `err.code`) and a message
//! that says where (pack offsets) and what to do.

use std::fmt;
use std::io;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    /// Corrupt, truncated or hostile pack data.
    BadPack,
    /// Deltas whose base is neither in the pack nor was supplied (a thin pack without fix-thin).
    MissingBase,
    /// The caller used the indexer out of order (e.g. wrote after the end of input).
    State,
    /// A file system error; the symbolic errno ("ENOSPC", "EEXIST", ...).
    Io(String),
    /// An object the repository should have is not there (the object database, checkout,
    /// the connectivity check).
    MissingObject,
    /// Not a repository (no objects directory).
    NotARepo,
    /// A `.lock` file is in the way: another git process is writing the same file.
    Locked,
    /// The SHA-1 backend forced by MPGIT_SHA1_BACKEND cannot run on this CPU.
    Sha1Backend,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackError {
    pub kind: ErrorKind,
    pub message: String,
}

pub type Result<T> = std::result::Result<T, PackError>;

impl PackError {
    pub fn bad(message: impl Into<String>) -> Self {
        PackError { kind: ErrorKind::BadPack, message: message.into() }
    }
    /// Corrupt data in the entry at `offset`.
    pub fn at(offset: u64, what: impl fmt::Display) -> Self {
        PackError::bad(format!("pack has bad object at offset {}: {}", offset, what))
    }
    pub fn missing(message: impl Into<String>) -> Self {
        PackError { kind: ErrorKind::MissingBase, message: message.into() }
    }
    pub fn missing_object(message: impl Into<String>) -> Self {
        PackError { kind: ErrorKind::MissingObject, message: message.into() }
    }
    /// The object-id hasher cannot start (a forced SHA-1 backend the CPU lacks).
    #[cfg(feature = "native")]
    pub fn sha1_backend() -> Result<()> {
        super::sha1dc::select::current().map(|_| ()).map_err(|e| PackError { kind: ErrorKind::Sha1Backend, message: e.to_string() })
    }
    pub fn state(message: impl Into<String>) -> Self {
        PackError { kind: ErrorKind::State, message: message.into() }
    }
    /// An I/O error on `what` (a path or an operation).
    pub fn io(e: &io::Error, what: impl fmt::Display) -> Self {
        PackError { kind: ErrorKind::Io(errno_name(e)), message: format!("{}: {}", what, e) }
    }
    /// The stable code JavaScript sees as `err.code`.
    pub fn code(&self) -> String {
        match &self.kind {
            ErrorKind::BadPack => "MPGIT_BAD_PACK".into(),
            ErrorKind::MissingBase => "MPGIT_MISSING_BASE".into(),
            ErrorKind::State => "ERR_INVALID_STATE".into(),
            ErrorKind::Io(code) => code.clone(),
            ErrorKind::MissingObject => "MPGIT_MISSING_OBJECTS".into(),
            ErrorKind::NotARepo => "MPGIT_NOT_A_REPO".into(),
            ErrorKind::Locked => "MPGIT_LOCKED".into(),
            ErrorKind::Sha1Backend => "MPGIT_SHA1_BACKEND".into(),
        }
    }
}

impl fmt::Display for PackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for PackError {}

#[cfg(not(feature = "native"))]
fn errno_name(_: &io::Error) -> String {
    "EIO".to_string()
}

#[cfg(feature = "native")]
fn errno_name(e: &io::Error) -> String {
    let name = match e.raw_os_error() {
        Some(libc::ENOENT) => "ENOENT",
        Some(libc::EEXIST) => "EEXIST",
        Some(libc::EACCES) => "EACCES",
        Some(libc::EPERM) => "EPERM",
        Some(libc::ENOSPC) => "ENOSPC",
        Some(libc::EDQUOT) => "EDQUOT",
        Some(libc::EROFS) => "EROFS",
        Some(libc::EISDIR) => "EISDIR",
        Some(libc::ENOTDIR) => "ENOTDIR",
        Some(libc::EMFILE) => "EMFILE",
        Some(libc::ENFILE) => "ENFILE",
        Some(libc::ENOMEM) => "ENOMEM",
        Some(libc::EFBIG) => "EFBIG",
        Some(libc::EINVAL) => "EINVAL",
        Some(libc::ELOOP) => "ELOOP",
        Some(libc::ENAMETOOLONG) => "ENAMETOOLONG",
        _ => "EIO",
    };
    name.to_string()
}
