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

/// A zlib stream inflated as its input arrives, into a buffer that grows up to `size` + 1.
pub struct Stream {
    d: Box<DecompressorOxide>,
    pub out: Vec<u8>,
    pub written: usize,
    size: usize,
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

impl Stream {
    pub fn new(size: usize, mut out: Vec<u8>) -> Stream {
        let mut d = Box::new(DecompressorOxide::new());
        d.init();
        out.clear();
        out.resize((size + 1).min(FIRST_OUT), 0);
        Stream { d, out, written: 0, size }
    }

    /// Feeds `input` (the bytes after those consumed so far).
    pub fn step(&mut self, input: &[u8]) -> Step {
        let flags = TINFL_FLAG_PARSE_ZLIB_HEADER | TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF | TINFL_FLAG_COMPUTE_ADLER32 | TINFL_FLAG_HAS_MORE_INPUT;
        let mut consumed = 0;
        loop {
            let (status, used, written) = decompress(&mut self.d, &input[consumed..], &mut self.out, self.written, flags);
            consumed += used;
            self.written += written;
            match status {
                TINFLStatus::Done => return if self.written > self.size { Step::Long } else { Step::Done { consumed } },
                TINFLStatus::NeedsMoreInput => return Step::More { consumed },
                TINFLStatus::HasMoreOutput => {
                    if self.out.len() > self.size {
                        return Step::Long;
                    }
                    let grown = (self.out.len() * 2).min(self.size + 1);
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
