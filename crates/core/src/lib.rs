//! mpgit's core, in plain Rust: what must be fast or needs system calls.
//!
//! - `pack`: pack parsing, delta resolution, object ids (sha1dc) and index writing.
//! - `odb`: reading a repository's objects, checkout and the index, the connectivity check.
//! - `mptcp`: MPTCP/TCP sockets and their counters.
//! - `error`: the one error type of them all; `oid`: object ids as hex.
//! - `alloc`: the global allocator (large blocks mapped directly), set here for the program.

#[cfg(feature = "native")]
pub mod alloc;
pub mod error;
#[cfg(feature = "native")]
pub mod mptcp;
#[cfg(any(feature = "native", feature = "portable"))]
pub mod odb;
pub mod oid;
pub mod pack;

pub use error::{Error, ErrorKind, Result};

/// Rust's allocations in any program using mpgit-core (see `alloc`): large blocks mapped
/// directly, so that indexing's resident memory is what it uses.
#[cfg(feature = "native")]
#[global_allocator]
static ALLOC: alloc::MpgitAlloc = alloc::MpgitAlloc;

/// Most threads a caller may ask for (indexing, checkout): beyond the machine's, they only cost.
pub const MAX_THREADS: usize = 1024;

#[cfg(all(test, feature = "native"))]
mod fuzz;
#[cfg(test)]
mod testutil;
