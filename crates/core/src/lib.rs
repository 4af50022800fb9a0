//! mpgit's core, in plain Rust: what must be fast or needs system calls.
//!
//! - `pack`: pack parsing, delta resolution, object ids (sha1dc) and index writing.
//! - `odb`: reading a repository's objects, checkout and the index, the connectivity check.
//! - `mptcp`: MPTCP/TCP sockets and their counters.
//! - `error`: the one error type of them all; `oid`: object ids as hex; `once`: `OnceLock` for
//!   Rust 1.63.
//! - `pio`: reads and writes at a file offset, on Unix and Windows alike.
//! - `alloc`: the global allocator (large blocks mapped directly), set here for the program.

#[cfg(feature = "native")]
pub mod alloc;
pub mod error;
#[cfg(all(feature = "native", unix))]
pub mod mptcp;
#[cfg(any(feature = "native", feature = "portable"))]
pub mod odb;
pub mod oid;
pub mod once;
pub mod pack;
#[cfg(feature = "native")]
pub mod pio;

pub use error::{Error, ErrorKind, Result};

/// Rust's allocations in any program using mpgit-core (see `alloc`): large blocks mapped
/// directly, so that indexing's resident memory is what it uses (Linux; elsewhere the system's).
#[cfg(all(feature = "native", target_os = "linux"))]
#[global_allocator]
static ALLOC: alloc::MpgitAlloc = alloc::MpgitAlloc;

/// Most threads a caller may ask for (indexing, checkout): beyond the machine's, they only cost.
pub const MAX_THREADS: usize = 1024;

#[cfg(all(test, feature = "native"))]
mod fuzz;
#[cfg(test)]
mod testutil;
