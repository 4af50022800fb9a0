//! The pack indexer and object reader in plain Rust over bytes in memory: no threads, files or
//! C, for the WebAssembly core (crates/wasm). The pack's bytes are kept in one buffer as they
//! arrive; `scan` parses entries as they complete (headers, CRC-32, the zlib stream's end,
//! object ids of whole objects); `resolve` rebuilds deltas from a set of roots (each worker of
//! the caller takes a share of the roots); `thin` appends supplied bases; `Indexer::idx`/`rev`
//! write the files with the shared `index` writer. Entry headers, delta application and the
//! .idx/.rev format are the native indexer's modules; object ids are SHA-1 with collision
//! detection (sha1collisiondetection, the pure-Rust port of git's sha1dc).

pub mod inflate;
pub mod resolve;
pub mod scan;
pub mod thin;

#[cfg(all(test, feature = "native"))]
mod tests;

pub use resolve::{Graph, Resolved};
pub use scan::Scanner;
pub use thin::Indexer;

use super::entry::object_header;
use crate::error::{Error, ErrorKind, Result};

/// The largest pack the WebAssembly core takes: the whole pack lives in a wasm32 instance's
/// memory (4 GiB at most), which also needs room for the entry tables, the kept deltas and the
/// objects being rebuilt. Bigger packs are refused before any byte is read where the size is
/// known (a file), else as soon as the bytes received pass it.
pub const MAX_PACK: u64 = 3 << 30;

/// The error for a pack of `bytes` (or more) past `MAX_PACK`: what to use instead.
pub fn too_large(bytes: u64) -> Error {
    Error {
        kind: ErrorKind::TooLarge,
        message: format!(
            "the pack ({} bytes or more) is too large for the WebAssembly core, which holds the whole pack in its memory (at most {} bytes); the native core has no such limit: install the native package for this platform (mpgit-<os>-<cpu>), or run with MPGIT_CORE=native where it loads",
            bytes, MAX_PACK
        ),
    }
}

/// The object id of an object of `kind` with `data`: SHA-1 of "<type> <size>\0" + data,
/// refusing input that shows a collision attack (as git's sha1dc does).
pub fn object_id(kind: u8, data: &[u8], offset: u64) -> Result<[u8; 20]> {
    let (hdr, n) = object_header(kind, data.len() as u64);
    let mut h = sha1collisiondetection::Sha1CD::default();
    h.update(&hdr[..n]);
    h.update(data);
    let mut out = [0u8; 20];
    match h.finalize_cd() {
        Ok(d) => {
            out.copy_from_slice(d.as_slice());
            Ok(out)
        }
        Err(_) => Err(Error::at(offset, "SHA-1 collision attack detected in this object (sha1dc); refusing the pack")),
    }
}
