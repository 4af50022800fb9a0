//! Inflating pack entries: libdeflate where the whole compressed entry is in memory and the
//! inflated size is known (it is, from the entry header: several times faster than zlib), zlib
//! streaming where it is not (entries larger than a bound, or not yet fully received).
//! Deflating (bases appended to a thin pack) uses zlib, as git does, so the bytes match.

use flate2::{Decompress, FlushDecompress, Status};
use std::ffi::c_void;

#[repr(C)]
struct RawDecompressor {
    _private: [u8; 0],
}

extern "C" {
    fn libdeflate_alloc_decompressor() -> *mut RawDecompressor;
    fn libdeflate_free_decompressor(d: *mut RawDecompressor);
    fn libdeflate_zlib_decompress_ex(
        d: *mut RawDecompressor,
        input: *const c_void,
        in_nbytes: usize,
        out: *mut c_void,
        out_nbytes_avail: usize,
        actual_in_nbytes: *mut usize,
        actual_out_nbytes: *mut usize,
    ) -> i32;
}

extern "C" {
    fn zlibVersion() -> *const std::os::raw::c_char;
}

/// The inflaters in use, for reports: libdeflate (the version built against) for whole
/// entries, and the zlib streaming inflate resolves to (in node, node's own zlib).
pub fn libraries() -> (String, String) {
    // SAFETY: zlibVersion returns a static NUL-terminated string.
    let zlib = unsafe { std::ffi::CStr::from_ptr(zlibVersion()) }.to_string_lossy().into_owned();
    (format!("libdeflate {}", env!("MPGIT_LIBDEFLATE_VERSION")), format!("zlib {}", zlib))
}

const LIBDEFLATE_SUCCESS: i32 = 0;
const LIBDEFLATE_INSUFFICIENT_SPACE: i32 = 3;

/// Why a whole-buffer inflate failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InflateError {
    /// Not a valid zlib stream (or one cut short by the end of the input).
    BadData,
    /// The stream inflates to fewer bytes than expected (the count it gave).
    Short(usize),
    /// The stream inflates to more bytes than expected.
    Long,
}

/// A libdeflate decompressor (one per thread: it is not shareable).
pub struct Inflater(*mut RawDecompressor);

// SAFETY: a decompressor is plain heap state with no thread affinity; &mut self guards use.
unsafe impl Send for Inflater {}

impl Default for Inflater {
    fn default() -> Self {
        Self::new()
    }
}

impl Inflater {
    pub fn new() -> Inflater {
        // SAFETY: no preconditions; null means out of memory.
        let d = unsafe { libdeflate_alloc_decompressor() };
        assert!(!d.is_null(), "libdeflate_alloc_decompressor: out of memory");
        Inflater(d)
    }

    /// Inflates the zlib stream at the start of `input` (which may continue past it) into
    /// `out`, which must be exactly the expected size. Returns the compressed bytes consumed.
    pub fn inflate(&mut self, input: &[u8], out: &mut [u8]) -> Result<usize, InflateError> {
        let mut used_in = 0usize;
        let mut used_out = 0usize;
        // SAFETY: the pointers and lengths describe live slices; libdeflate writes at most
        // out.len() bytes and reads at most input.len().
        let r = unsafe {
            libdeflate_zlib_decompress_ex(
                self.0,
                input.as_ptr() as *const c_void,
                input.len(),
                out.as_mut_ptr() as *mut c_void,
                out.len(),
                &mut used_in,
                &mut used_out,
            )
        };
        match r {
            LIBDEFLATE_SUCCESS if used_out == out.len() => Ok(used_in),
            LIBDEFLATE_SUCCESS => Err(InflateError::Short(used_out)),
            LIBDEFLATE_INSUFFICIENT_SPACE => Err(InflateError::Long),
            _ => Err(InflateError::BadData),
        }
    }
}

impl Inflater {
    /// As `inflate`, replacing the contents of `out` (not zeroed first: the inflate fills it).
    /// A size the input cannot inflate to (past deflate's ratio) reserves only what it can:
    /// a hostile header's size costs memory in proportion to the bytes actually sent.
    pub fn inflate_vec(&mut self, input: &[u8], out: &mut Vec<u8>, size: usize) -> Result<usize, Option<InflateError>> {
        out.clear();
        let cap = size.min(max_inflated(input.len()));
        out.try_reserve_exact(cap).map_err(|_| None)?;
        let spare = &mut out.spare_capacity_mut()[..cap];
        // SAFETY: libdeflate only writes to the output buffer; MaybeUninit<u8> has u8's layout.
        let buf = unsafe { std::slice::from_raw_parts_mut(spare.as_mut_ptr() as *mut u8, cap) };
        let used = match self.inflate(input, buf) {
            // The stream ended after `cap` bytes, short of `size`.
            Ok(_) if cap < size => return Err(Some(InflateError::Short(cap))),
            r => r.map_err(Some)?,
        };
        // SAFETY: a successful inflate wrote exactly `size` bytes (checked in `inflate`).
        unsafe { out.set_len(size) };
        Ok(used)
    }
}

impl Drop for Inflater {
    fn drop(&mut self) {
        // SAFETY: allocated by libdeflate_alloc_decompressor, freed once.
        unsafe { libdeflate_free_decompressor(self.0) }
    }
}

pub use super::entry::max_inflated;

/// zlib's compressBound: the most bytes a zlib stream of `size` bytes takes from a sane
/// encoder. The scanner waits for this many bytes before trying a whole-buffer inflate.
pub fn compress_bound(size: u64) -> u64 {
    size + (size >> 12) + (size >> 14) + (size >> 25) + 13
}

/// What one step of a streaming inflate did.
pub struct Step {
    pub consumed: usize,
    pub produced: usize,
    pub done: bool,
}

/// A zlib streaming inflate of one entry, fed as its bytes arrive.
pub struct StreamInflate {
    z: Decompress,
}

impl Default for StreamInflate {
    fn default() -> Self {
        Self::new()
    }
}

impl StreamInflate {
    pub fn new() -> StreamInflate {
        StreamInflate { z: Decompress::new(true) }
    }

    pub fn total_out(&self) -> u64 {
        self.z.total_out()
    }

    /// Inflates from `input` into `out`; `done` once the zlib stream (and its checksum) ended.
    pub fn step(&mut self, input: &[u8], out: &mut [u8]) -> Result<Step, InflateError> {
        let (in0, out0) = (self.z.total_in(), self.z.total_out());
        let status = self.z.decompress(input, out, FlushDecompress::None).map_err(|_| InflateError::BadData)?;
        let consumed = (self.z.total_in() - in0) as usize;
        let produced = (self.z.total_out() - out0) as usize;
        Ok(Step { consumed, produced, done: status == Status::StreamEnd })
    }
}

/// zlib level git's index-pack deflates appended bases with by default: its
/// `zlib_compression_level`, Z_BEST_SPEED unless core.looseCompression / core.compression say.
pub const GIT_APPEND_LEVEL: u32 = 1;

/// `data` deflated as git's index-pack does for appended bases: zlib at `level` (0..=9),
/// default window and memory level, everything in one Z_FINISH, by zlib itself (git's). A host
/// process may bring its own zlib (node does, a faster fork whose output differs) and export
/// its symbols: the addon links Debian's libz.a with its symbols kept local
/// (`--exclude-libs`, crates/node/build.rs), so these calls bind to that copy, not the host's.
pub fn deflate(data: &[u8], level: u32) -> std::io::Result<Vec<u8>> {
    system_zlib::deflate(data, level.min(9) as i32)
}

mod system_zlib {
    use std::ffi::c_void;
    use std::os::raw::{c_char, c_int, c_uint, c_ulong};
    use std::io;

    /// zlib's z_stream (zlib.h).
    #[repr(C)]
    struct ZStream {
        next_in: *const u8,
        avail_in: c_uint,
        total_in: c_ulong,
        next_out: *mut u8,
        avail_out: c_uint,
        total_out: c_ulong,
        msg: *const c_char,
        state: *mut c_void,
        zalloc: *const c_void,
        zfree: *const c_void,
        opaque: *mut c_void,
        data_type: c_int,
        adler: c_ulong,
        reserved: c_ulong,
    }

    // zlib, linked by libz-sys (flate2's backend), statically into the addon.
    extern "C" {
        fn deflateInit2_(strm: *mut ZStream, level: c_int, method: c_int, window_bits: c_int, mem_level: c_int, strategy: c_int, version: *const c_char, stream_size: c_int) -> c_int;
        #[link_name = "deflate"]
        fn zlib_deflate(strm: *mut ZStream, flush: c_int) -> c_int;
        fn deflateEnd(strm: *mut ZStream) -> c_int;
        fn zlibVersion() -> *const c_char;
    }

    const Z_OK: c_int = 0;
    const Z_STREAM_END: c_int = 1;
    const Z_FINISH: c_int = 4;
    const Z_DEFLATED: c_int = 8;
    const Z_DEFAULT_STRATEGY: c_int = 0;
    const MAX_WBITS: c_int = 15;
    const DEF_MEM_LEVEL: c_int = 8;

    pub fn deflate(data: &[u8], level: c_int) -> io::Result<Vec<u8>> {
        let mut out: Vec<u8> = Vec::with_capacity(super::compress_bound(data.len() as u64) as usize + 64);
        // SAFETY: a zeroed z_stream is what deflateInit2_ expects (null allocators: its own);
        // next_in/next_out point into live buffers of the lengths given; the stream is ended
        // before they go away.
        unsafe {
            let mut z: ZStream = std::mem::zeroed();
            let rc = deflateInit2_(&mut z, level, Z_DEFLATED, MAX_WBITS, DEF_MEM_LEVEL, Z_DEFAULT_STRATEGY, zlibVersion(), std::mem::size_of::<ZStream>() as c_int);
            if rc != Z_OK {
                return Err(io::Error::new(io::ErrorKind::Other, format!("deflateInit2_ failed ({})", rc)));
            }
            let mut rest = data;
            let status = loop {
                let chunk = rest.len().min(c_uint::MAX as usize);
                z.next_in = rest.as_ptr();
                z.avail_in = chunk as c_uint;
                if out.capacity() == out.len() {
                    out.reserve(out.capacity().max(4096));
                }
                let room = (out.capacity() - out.len()).min(c_uint::MAX as usize);
                z.next_out = out.as_mut_ptr().add(out.len());
                z.avail_out = room as c_uint;
                let rc = zlib_deflate(&mut z, Z_FINISH);
                out.set_len(out.len() + room - z.avail_out as usize);
                rest = &rest[chunk - z.avail_in as usize..];
                if rc != Z_OK {
                    break rc;
                }
            };
            deflateEnd(&mut z);
            if status != Z_STREAM_END {
                return Err(io::Error::new(io::ErrorKind::Other, format!("deflate failed ({})", status)));
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_buffer_inflate_reports_consumed_and_size_errors() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8 ^ (i / 1000) as u8).collect();
        let z = deflate(&data, 6).unwrap();
        let mut padded = z.clone();
        padded.extend_from_slice(b"next entry bytes");
        let mut inf = Inflater::new();
        let mut out = vec![0u8; data.len()];
        assert_eq!(inf.inflate(&padded, &mut out), Ok(z.len()));
        assert_eq!(out, data);
        let mut small = vec![0u8; data.len() - 1];
        assert_eq!(inf.inflate(&z, &mut small), Err(InflateError::Long));
        let mut big = vec![0u8; data.len() + 1];
        assert_eq!(inf.inflate(&z, &mut big), Err(InflateError::Short(data.len())));
        assert!(inf.inflate(&z[..z.len() - 1], &mut out).is_err());
        let mut bad = z.clone();
        bad[z.len() / 2] ^= 0x55;
        assert!(inf.inflate(&bad, &mut out).is_err());
    }

    #[test]
    fn streaming_inflate_finds_the_same_end() {
        let data = vec![7u8; 300_000];
        let z = deflate(&data, 6).unwrap();
        let mut s = StreamInflate::new();
        let mut out = vec![0u8; 4096];
        let (mut pos, mut total) = (0, 0);
        loop {
            let end = (pos + 10).min(z.len());
            let st = s.step(&z[pos..end], &mut out).unwrap();
            pos += st.consumed;
            total += st.produced;
            if st.done {
                break;
            }
        }
        assert_eq!((pos, total), (z.len(), data.len()));
    }
}
