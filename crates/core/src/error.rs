//! The core's one error type, for packs and the object database alike: what kind (which
//! becomes the JavaScript `err.code`) and a message that says where (pack offsets, object ids)
//! and what to do.

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
    /// A pack too large for the WebAssembly core's memory (the native core has no such bound).
    TooLarge,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub kind: ErrorKind,
    pub message: String,
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn bad(message: impl Into<String>) -> Self {
        Error { kind: ErrorKind::BadPack, message: message.into() }
    }
    /// Corrupt data in the entry at `offset`.
    pub fn at(offset: u64, what: impl fmt::Display) -> Self {
        Error::bad(format!("pack has bad object at offset {}: {}", offset, what))
    }
    pub fn missing(message: impl Into<String>) -> Self {
        Error { kind: ErrorKind::MissingBase, message: message.into() }
    }
    pub fn missing_object(message: impl Into<String>) -> Self {
        Error { kind: ErrorKind::MissingObject, message: message.into() }
    }
    /// The object-id hasher cannot start (a forced SHA-1 backend the CPU lacks).
    #[cfg(feature = "native")]
    pub fn sha1_backend() -> Result<()> {
        crate::pack::sha1dc::select::current().map(|_| ()).map_err(|e| Error { kind: ErrorKind::Sha1Backend, message: e.to_string() })
    }
    pub fn state(message: impl Into<String>) -> Self {
        Error { kind: ErrorKind::State, message: message.into() }
    }
    /// An I/O error on `what` (a path or an operation).
    pub fn io(e: &io::Error, what: impl fmt::Display) -> Self {
        Error { kind: ErrorKind::Io(errno_name(e).unwrap_or("EIO").to_string()), message: format!("{}: {}", what, e) }
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
            ErrorKind::TooLarge => "MPGIT_PACK_TOO_LARGE".into(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

/// The symbolic errno of an I/O error ("ENOSPC", "EADDRINUSE"), or None for one not named here.
#[cfg(all(not(feature = "native"), not(feature = "portable")))]
pub fn errno_name(_: &io::Error) -> Option<&'static str> {
    None
}

/// The errno name the WebAssembly core's host gave the failure (odb/sys/host.rs), when it is
/// one of those the native core names too.
#[cfg(all(not(feature = "native"), feature = "portable"))]
pub fn errno_name(e: &io::Error) -> Option<&'static str> {
    const NAMES: [&str; 17] = ["ENOENT", "EEXIST", "EACCES", "EPERM", "ENOSPC", "EDQUOT", "EROFS", "EISDIR", "ENOTDIR", "EMFILE", "ENFILE", "ENOMEM", "EFBIG", "EINVAL", "ELOOP", "ENAMETOOLONG", "EBADF"];
    let host = e.get_ref()?.downcast_ref::<crate::odb::sys::HostError>()?;
    NAMES.iter().copied().find(|n| *n == host.code)
}

/// The symbolic errno of an I/O error ("ENOSPC", "EADDRINUSE"), or None for one not named here.
#[cfg(all(feature = "native", unix))]
pub fn errno_name(e: &io::Error) -> Option<&'static str> {
    Some(match e.raw_os_error()? {
        libc::ENOENT => "ENOENT",
        libc::EEXIST => "EEXIST",
        libc::EACCES => "EACCES",
        libc::EPERM => "EPERM",
        libc::ENOSPC => "ENOSPC",
        libc::EDQUOT => "EDQUOT",
        libc::EROFS => "EROFS",
        libc::EISDIR => "EISDIR",
        libc::ENOTDIR => "ENOTDIR",
        libc::EMFILE => "EMFILE",
        libc::ENFILE => "ENFILE",
        libc::ENOMEM => "ENOMEM",
        libc::EFBIG => "EFBIG",
        libc::EINVAL => "EINVAL",
        libc::ELOOP => "ELOOP",
        libc::ENAMETOOLONG => "ENAMETOOLONG",
        libc::EPROTONOSUPPORT => "EPROTONOSUPPORT",
        libc::ENOPROTOOPT => "ENOPROTOOPT",
        libc::EAFNOSUPPORT => "EAFNOSUPPORT",
        libc::EADDRINUSE => "EADDRINUSE",
        libc::EADDRNOTAVAIL => "EADDRNOTAVAIL",
        libc::ECONNREFUSED => "ECONNREFUSED",
        libc::ETIMEDOUT => "ETIMEDOUT",
        libc::ENETUNREACH => "ENETUNREACH",
        libc::EHOSTUNREACH => "EHOSTUNREACH",
        _ => return None,
    })
}

/// Windows' errors under the errno names the Unix builds give (what JavaScript sees as
/// `err.code`): by kind, and the disk-full codes by number.
#[cfg(all(feature = "native", not(unix)))]
pub fn errno_name(e: &io::Error) -> Option<&'static str> {
    // ERROR_HANDLE_DISK_FULL, ERROR_DISK_FULL (winerror.h).
    if let Some(39) | Some(112) = e.raw_os_error() {
        return Some("ENOSPC");
    }
    Some(match e.kind() {
        io::ErrorKind::NotFound => "ENOENT",
        io::ErrorKind::AlreadyExists => "EEXIST",
        io::ErrorKind::PermissionDenied => "EACCES",
        io::ErrorKind::OutOfMemory => "ENOMEM",
        io::ErrorKind::InvalidInput => "EINVAL",
        io::ErrorKind::AddrInUse => "EADDRINUSE",
        io::ErrorKind::AddrNotAvailable => "EADDRNOTAVAIL",
        io::ErrorKind::ConnectionRefused => "ECONNREFUSED",
        io::ErrorKind::TimedOut => "ETIMEDOUT",
        _ => return None,
    })
}
