//! The pack indexer in plain Rust, for the WebAssembly core (crates/wasm): no threads or C.
//! The pack's bytes pass through `scan`, which parses entries as they complete (headers,
//! CRC-32, the zlib stream's end, object ids of whole objects) holding only a window of them;
//! `resolve` rebuilds deltas from a set of roots (each worker of the caller takes a share),
//! reading entries back from the pack file by offset (`Source`: the host's pread in wasm);
//! `thin` appends supplied bases; `Indexer::index_files` writes the .idx/.rev with the shared
//! `index` writer. Entry headers, delta application and the .idx/.rev format are the native
//! indexer's modules; object ids are SHA-1 with collision detection (sha1collisiondetection,
//! the pure-Rust port of git's sha1dc).

pub mod inflate;
pub mod resolve;
pub mod scan;
pub mod thin;

#[cfg(all(test, feature = "native"))]
mod tests;

pub use resolve::{Graph, Resolved, Source};
/// A pack file read by offset (the host's pread in the WebAssembly core): what resolving reads.
pub use crate::odb::sys::PackReader as PackFile;
pub use scan::Scanner;
pub use thin::Indexer;

use super::entry::object_header;
use crate::error::{Error, ErrorKind, Result};

/// Bytes of a wasm32 instance's memory per object, at the peak (writing the .idx): entry,
/// id, kept-delta index, state, graph (about 70), the table the workers get (48), the sorted
/// index entries and the .idx/.rev bytes (about 70), with room to spare.
pub const BYTES_PER_OBJECT: u64 = 200;
/// Memory kept out of the per-object budget: the kept deltas (`scan::DELTA_KEEP`), the scan's
/// window and ring, the objects being rebuilt (one delta chain), the module's own.
pub const RESERVED_BYTES: u64 = 1 << 30;
/// The most objects a pack may have in the WebAssembly core: what bounds it is not the pack's
/// size (its bytes stay in the file, read back by offset) but the per-object tables in the
/// 4 GiB of a wasm32 instance: about 16 million objects. Checked when the pack's header is
/// read, before the tables grow.
pub const MAX_OBJECTS: u32 = (((4u64 << 30) - RESERVED_BYTES) / BYTES_PER_OBJECT) as u32;

/// The error for a pack of `count` objects, past `max`: what to use instead.
pub fn too_many(count: u64, max: u32) -> Error {
    Error {
        kind: ErrorKind::TooLarge,
        message: format!(
            "the pack has {} objects, too many for the WebAssembly core, whose tables of objects must fit in a wasm32 instance's 4 GiB of memory (at most {} objects); the native core has no such limit: install the native package for this platform (mpgit-<os>-<cpu>), or run with MPGIT_CORE=native where it loads",
            count, max
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
