//! zlib inflate with miniz_oxide: a whole stream into a buffer of known size (`exact`), and the
//! resumable form the scanner uses while bytes arrive (`Stream`).

use miniz_oxide::inflate::core::inflate_flags::{
    TINFL_FLAG_COMPUTE_ADLER32, TINFL_FLAG_HAS_MORE_INPUT, TINFL_FLAG_IGNORE_ADLER32, TINFL_FLAG_PARSE_ZLIB_HEADER, TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF,
};
use miniz_oxide::inflate::core::{decompress, DecompressorOxide};
use miniz_oxide::inflate::TINFLStatus;

/// Inflates the zlib stream at the start of `input` into exactly `size` bytes (a stream the
/// scanner already checked). None when it does not inflate to exactly that.
pub fn exact(d: &mut DecompressorOxide, input: &[u8], size: usize, out: &mut Vec<u8>) -> Option<()> {
    d.init();
    out.clear();
    // One byte more than expected, so that a longer stream shows as such.
    out.resize(size + 1, 0);
    let flags = TINFL_FLAG_PARSE_ZLIB_HEADER | TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF | TINFL_FLAG_IGNORE_ADLER32;
    let (status, _, written) = decompress(d, input, out, 0, flags);
    out.truncate(written);
    (status == TINFLStatus::Done && written == size).then(|| ())
}

/// Why `checked` failed.
pub enum Unexact {
    /// `size` bytes could not be allocated.
    NoMemory,
    BadData,
    /// The stream does not inflate to `size` bytes (or is cut short).
    WrongSize,
}

/// As `exact`, for a stream nothing has checked yet (the object database's entries): the
/// adler32 is verified and the buffer is reserved fallibly.
pub fn checked(d: &mut DecompressorOxide, input: &[u8], size: usize, out: &mut Vec<u8>) -> Result<(), Unexact> {
    d.init();
    out.clear();
    out.try_reserve_exact(size + 1).map_err(|_| Unexact::NoMemory)?;
    out.resize(size + 1, 0);
    let flags = TINFL_FLAG_PARSE_ZLIB_HEADER | TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF | TINFL_FLAG_COMPUTE_ADLER32;
    let (status, _, written) = decompress(d, input, out, 0, flags);
    out.truncate(written);
    match status {
        TINFLStatus::Done if written == size => Ok(()),
        TINFLStatus::Done | TINFLStatus::HasMoreOutput | TINFLStatus::NeedsMoreInput | TINFLStatus::FailedCannotMakeProgress => Err(Unexact::WrongSize),
        _ => Err(Unexact::BadData),
    }
}

/// A zlib stream inflated as its input arrives. Kept (`Stream::kept`): into a buffer that
/// grows up to `size` + 1, the whole output there at the end (a delta the scan keeps). Passed
/// on (`Stream::passed`): into a ring of `RING` bytes (zlib's window fits in it), each piece
/// handed to the caller as it comes (hashed) and then overwritten, so that an object of any
/// size costs the ring only.
pub struct Stream {
    d: Box<DecompressorOxide>,
    pub out: Vec<u8>,
    pub written: u64,
    size: u64,
    ring: bool,
}

/// What one step of a `Stream` found.
pub enum Step {
    /// The stream ended, `consumed` bytes of the input given.
    Done { consumed: usize },
    /// All input was used; the stream goes on.
    More { consumed: usize },
    /// Corrupt data, or an adler32 mismatch.
    Bad(&'static str),
    /// The stream inflates to more than `size` bytes.
    Long,
}

/// First output buffer: output grows with the input, so a header's claim costs nothing upfront.
const FIRST_OUT: usize = 64 << 10;
/// The ring of a passed-on stream: a power of two (miniz wraps its output in it), past zlib's
/// 32 KiB window; big enough that pieces are handed on in long runs.
pub const RING: usize = 256 << 10;

impl Stream {
    /// A stream whose whole output stays in `out` (`size`: at most what memory holds).
    pub fn kept(size: u64, mut out: Vec<u8>) -> Stream {
        out.clear();
        out.resize((size as usize).saturating_add(1).min(FIRST_OUT), 0);
        Stream { d: Self::decompressor(), out, written: 0, size, ring: false }
    }

    /// A stream whose output is handed on a piece at a time (`step`'s `sink`).
    pub fn passed(size: u64, mut out: Vec<u8>) -> Stream {
        out.clear();
        out.resize(RING, 0);
        Stream { d: Self::decompressor(), out, written: 0, size, ring: true }
    }

    fn decompressor() -> Box<DecompressorOxide> {
        let mut d = Box::new(DecompressorOxide::new());
        d.init();
        d
    }

    /// Feeds `input` (the bytes after those consumed so far); a passed-on stream's new output
    /// goes to `sink`.
    pub fn step(&mut self, input: &[u8], sink: &mut dyn FnMut(&[u8])) -> Step {
        let mut flags = TINFL_FLAG_PARSE_ZLIB_HEADER | TINFL_FLAG_COMPUTE_ADLER32 | TINFL_FLAG_HAS_MORE_INPUT;
        if !self.ring {
            flags |= TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF;
        }
        let mut consumed = 0;
        loop {
            let pos = if self.ring { (self.written as usize) & (RING - 1) } else { self.written as usize };
            let (status, used, written) = decompress(&mut self.d, &input[consumed..], &mut self.out, pos, flags);
            consumed += used;
            self.written += written as u64;
            if self.written > self.size {
                return Step::Long;
            }
            if self.ring && written > 0 {
                sink(&self.out[pos..pos + written]);
            }
            match status {
                TINFLStatus::Done => return Step::Done { consumed },
                TINFLStatus::NeedsMoreInput => return Step::More { consumed },
                TINFLStatus::HasMoreOutput if self.ring => {}
                TINFLStatus::HasMoreOutput => {
                    if self.out.len() as u64 > self.size {
                        return Step::Long;
                    }
                    let grown = (self.out.len() * 2).min(self.size as usize + 1);
                    self.out.resize(grown, 0);
                }
                TINFLStatus::Adler32Mismatch => return Step::Bad("adler32 mismatch"),
                _ => return Step::Bad("invalid zlib data"),
            }
        }
    }

    /// The output buffer, for the next stream.
    pub fn into_out(self) -> Vec<u8> {
        self.out
    }
}
