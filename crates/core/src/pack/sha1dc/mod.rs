//! Collision-detecting SHA-1 for object ids, as git computes them (sha1dc).
//!
//! sha1dc hashes like SHA-1 and, for every 64-byte block, checks the expanded message against
//! the "unavoidable bit conditions" of the 32 disturbance vectors known attacks use; only a
//! block that meets them (rare: a fraction of a percent of blocks) is recompressed to see
//! whether it is a near-collision block. Plain SHA-1 is cheap with the CPU's SHA instructions,
//! so where they exist (`ni`) we compress with them, keep the message words and states the
//! checks read, check the bit conditions 16 at a time with AVX-512 (`ubc`: sha1dc's conditions
//! as a table), and hand a block to sha1dc's C recompression only when its conditions are met.
//! Elsewhere every block runs through sha1dc's own C block function. All paths detect the
//! same collisions; `tests` checks them against each other and against known attacks.

#[cfg(target_arch = "x86_64")]
mod ni;
pub mod select;
mod ubc;

pub use select::{selection, SelectError, Selection};

/// A collision attack was detected in the hashed data (git refuses such objects).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Collision;

extern "C" {
    fn mpgit_sha1dc_blocks(ihv: *mut u32, data: *const u8, nblocks: usize) -> i32;
}

const IV: [u32; 5] = [0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0];

/// Which block function runs (`select` names them, knows what CPU flags they need and
/// chooses one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SHA instructions for the compression, AVX-512 for the bit conditions.
    ShaNiAvx512,
    /// SHA instructions for the compression, sha1dc's C for the bit conditions.
    ShaNi,
    /// sha1dc's C for everything.
    Portable,
}

/// Compresses whole 64-byte blocks into `h`; true when one of them is a near-collision block.
fn compress(backend: Backend, h: &mut [u32; 5], blocks: &[u8]) -> bool {
    debug_assert_eq!(blocks.len() % 64, 0);
    if blocks.is_empty() {
        return false;
    }
    match backend {
        // SAFETY (both): a hasher only takes a backend whose CPU flags are all present
        // (Sha1Dc::with_backend checks Backend::supported).
        #[cfg(all(target_arch = "x86_64", mpgit_avx512))]
        Backend::ShaNiAvx512 => unsafe { ni::compress_avx512(h, blocks) },
        #[cfg(target_arch = "x86_64")]
        Backend::ShaNi => unsafe { ni::compress(h, blocks) },
        // SAFETY: h is 5 words and blocks holds blocks.len() / 64 whole blocks.
        _ => unsafe { mpgit_sha1dc_blocks(h.as_mut_ptr(), blocks.as_ptr(), blocks.len() / 64) != 0 },
    }
}

/// An incremental collision-detecting SHA-1.
#[derive(Clone)]
pub struct Sha1Dc {
    h: [u32; 5],
    buf: [u8; 64],
    buf_len: usize,
    total: u64,
    collision: bool,
    backend: Backend,
}

impl Default for Sha1Dc {
    fn default() -> Self {
        Self::new()
    }
}

impl Sha1Dc {
    /// A hasher on the process's backend (`select`: measured at first use, or forced). When
    /// the forced one cannot run, the indexer's entry points have refused to start
    /// (`select::current`), so the portable fallback here is only for callers that did not ask.
    pub fn new() -> Self {
        Self::with_backend(select::current().unwrap_or(Backend::Portable))
    }

    /// A hasher on a given backend; a backend the CPU lacks falls back to the portable one.
    pub fn with_backend(backend: Backend) -> Self {
        let backend = if backend.supported() { backend } else { Backend::Portable };
        Sha1Dc { h: IV, buf: [0; 64], buf_len: 0, total: 0, collision: false, backend }
    }

    pub fn update(&mut self, mut data: &[u8]) {
        self.total += data.len() as u64;
        if self.buf_len > 0 {
            let take = (64 - self.buf_len).min(data.len());
            self.buf[self.buf_len..self.buf_len + take].copy_from_slice(&data[..take]);
            self.buf_len += take;
            data = &data[take..];
            if self.buf_len < 64 {
                return;
            }
            let block = self.buf;
            self.collision |= compress(self.backend, &mut self.h, &block);
            self.buf_len = 0;
        }
        let whole = data.len() & !63;
        self.collision |= compress(self.backend, &mut self.h, &data[..whole]);
        let rest = &data[whole..];
        self.buf[..rest.len()].copy_from_slice(rest);
        self.buf_len = rest.len();
    }

    /// The digest, or `Collision` when any block of the input was a near-collision block.
    pub fn finalize(mut self) -> Result<[u8; 20], Collision> {
        let bits = self.total.wrapping_mul(8);
        let mut tail = [0u8; 128];
        tail[..self.buf_len].copy_from_slice(&self.buf[..self.buf_len]);
        tail[self.buf_len] = 0x80;
        let len = if self.buf_len < 56 { 64 } else { 128 };
        tail[len - 8..len].copy_from_slice(&bits.to_be_bytes());
        self.collision |= compress(self.backend, &mut self.h, &tail[..len]);
        if self.collision {
            return Err(Collision);
        }
        let mut out = [0u8; 20];
        for (i, w) in self.h.iter().enumerate() {
            out[i * 4..i * 4 + 4].copy_from_slice(&w.to_be_bytes());
        }
        Ok(out)
    }
}

/// The collision-detecting SHA-1 of `data`.
pub fn digest(data: &[u8]) -> Result<[u8; 20], Collision> {
    let mut h = Sha1Dc::new();
    h.update(data);
    h.finalize()
}

#[cfg(test)]
mod tests;
