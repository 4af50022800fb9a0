//! Packs: from a pack's bytes (streamed, or a file) to its `.idx` v2 and `.rev`, byte for byte
//! what `git index-pack` writes.
//!
//! The flow: `scan` (first pass, as the bytes arrive: entry boundaries, CRC-32s, object ids of
//! whole objects, the trailer) -> `resolve` (second pass, parallel: deltas rebuilt from their
//! bases and hashed) -> `indexer` (thin-pack completion, then `index` writes the files).
//! `sha1dc` computes object ids (collision-detecting SHA-1, as git); `inflate` and `delta` are
//! the codecs; `entry` the per-entry header.

//! Without the `native` feature (the WebAssembly core) only the shared modules build: `entry`,
//! `delta`, `index`, `window` (entries read back by offset) and `portable` (the indexer whose
//! scan holds a window of the pack, not the pack).

pub mod delta;
pub mod entry;
pub mod index;
#[cfg(feature = "native")]
pub mod indexer;
#[cfg(feature = "native")]
pub mod inflate;
#[cfg(feature = "portable")]
pub mod portable;
#[cfg(feature = "native")]
pub mod resolve;
#[cfg(feature = "native")]
pub mod scan;
#[cfg(feature = "native")]
pub mod sha1dc;
pub mod window;

pub use crate::error::{Error, ErrorKind, Result};
#[cfg(feature = "native")]
pub use indexer::{index_pack_file, Indexer, Options, Summary};

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters the caller can read at any time while a pack is indexed.
#[derive(Debug, Default)]
pub struct Progress {
    pub bytes: AtomicU64,
    pub objects_total: AtomicU64,
    pub objects_received: AtomicU64,
    pub deltas_total: AtomicU64,
    pub deltas_resolved: AtomicU64,
}

/// A copy of the counters.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ProgressSnapshot {
    pub bytes: u64,
    pub objects_total: u64,
    pub objects_received: u64,
    pub deltas_total: u64,
    pub deltas_resolved: u64,
}

impl Progress {
    pub fn snapshot(&self) -> ProgressSnapshot {
        ProgressSnapshot {
            bytes: self.bytes.load(Ordering::Relaxed),
            objects_total: self.objects_total.load(Ordering::Relaxed),
            objects_received: self.objects_received.load(Ordering::Relaxed),
            deltas_total: self.deltas_total.load(Ordering::Relaxed),
            deltas_resolved: self.deltas_resolved.load(Ordering::Relaxed),
        }
    }
}

/// The largest object the indexer holds in memory whole (a delta's result, or a base with
/// deltas on it): `MPGIT_MAX_OBJECT_SIZE` (bytes, or with a k/m/g suffix), else half the
/// machine's memory. Objects without deltas on them stream, whatever their size.
#[cfg(feature = "native")]
pub fn max_object_size() -> u64 {
    static MAX: crate::once::OnceLock<u64> = crate::once::OnceLock::new();
    *MAX.get_or_init(|| {
        if let Some(v) = std::env::var("MPGIT_MAX_OBJECT_SIZE").ok().and_then(|v| parse_size(&v)) {
            return v;
        }
        physical_memory().map_or(u64::MAX, |bytes| bytes / 2)
    })
}

/// The machine's memory in bytes, if the system says.
#[cfg(all(feature = "native", unix))]
fn physical_memory() -> Option<u64> {
    // SAFETY: sysconf has no preconditions.
    let (pages, page) = unsafe { (libc::sysconf(libc::_SC_PHYS_PAGES), libc::sysconf(libc::_SC_PAGESIZE)) };
    (pages > 0 && page > 0).then(|| (pages as u64).saturating_mul(page as u64))
}

#[cfg(all(feature = "native", windows))]
fn physical_memory() -> Option<u64> {
    /// MEMORYSTATUSEX (sysinfoapi.h).
    #[repr(C)]
    struct MemoryStatusEx {
        length: u32,
        memory_load: u32,
        total_phys: u64,
        avail_phys: u64,
        total_page_file: u64,
        avail_page_file: u64,
        total_virtual: u64,
        avail_virtual: u64,
        avail_extended_virtual: u64,
    }
    #[link(name = "kernel32")]
    extern "system" {
        fn GlobalMemoryStatusEx(status: *mut MemoryStatusEx) -> i32;
    }
    let mut s = MemoryStatusEx { length: std::mem::size_of::<MemoryStatusEx>() as u32, memory_load: 0, total_phys: 0, avail_phys: 0, total_page_file: 0, avail_page_file: 0, total_virtual: 0, avail_virtual: 0, avail_extended_virtual: 0 };
    // SAFETY: s is a MEMORYSTATUSEX with its length set, as the call requires.
    (unsafe { GlobalMemoryStatusEx(&mut s) } != 0 && s.total_phys > 0).then(|| s.total_phys)
}

/// "1234", "64k", "512m", "2g" (git's size suffixes) as bytes.
#[cfg(feature = "native")]
fn parse_size(v: &str) -> Option<u64> {
    let v = v.trim().to_ascii_lowercase();
    let (num, mul) = match v.chars().last()? {
        'k' => (&v[..v.len() - 1], 1u64 << 10),
        'm' => (&v[..v.len() - 1], 1 << 20),
        'g' => (&v[..v.len() - 1], 1 << 30),
        _ => (&v[..], 1),
    };
    num.parse::<u64>().ok()?.checked_mul(mul)
}

#[cfg(test)]
mod tests;
