//! Every file operation of the object database and checkout, in one place: `native` makes the
//! system calls (pread on packs, the .idx mapped, `*at` calls relative to a directory's
//! descriptor in checkout), `host` asks the WebAssembly core's host (node's synchronous fs
//! calls, ts/core/wasm-host.ts) through the `mpgit_host` imports. Both offer the same names:
//!
//! - `PackReader` (`open`, `size`, `read_exact_at`): a pack read by offset.
//! - `IdxBytes` (`open`, derefs to the bytes): an .idx, mapped natively, read whole in wasm.
//! - `read_file`, `list_dir` (names), `mtime_ms`, `canonicalize`, `is_dir`, `exists`.
//! - `create_dir`; `Dir` (`open`, `mkdir`, `create_file`, `symlink`: checkout's entries,
//!   created exclusively and never through a link, each with its stat for the index);
//!   `NewFile` (`create` one that must not exist, `write_all`: the index's .lock), `rename`,
//!   `remove_file`.
//!
//! Tree paths are bytes (not always UTF-8): a work-tree path is the base `Path` plus the
//! '/'-separated bytes of the tree (`Dir::open(work_tree, rel)`).
//!
//! Errors are `std::io::Error`s: natively the OS's; in wasm with the host's errno name kept
//! (`HostError`), so that `Error::io` gives JavaScript the same `err.code`.

#[cfg(feature = "native")]
mod native;
#[cfg(feature = "native")]
pub use native::*;
// Also built by Unix tests, which run its own tests (the Windows build is only checked here).
#[cfg(all(feature = "native", any(not(unix), test)))]
mod std_dir;
#[cfg(all(feature = "native", not(unix)))]
pub use std_dir::*;

#[cfg(not(feature = "native"))]
mod host;
#[cfg(not(feature = "native"))]
pub use host::*;
