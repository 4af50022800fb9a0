//! Inflating a pack entry to exactly the size its header says: libdeflate natively (the pack
//! module's `Inflater`), miniz_oxide in the WebAssembly core (with the adler32 checked: unlike
//! the indexer's, these streams were never checked before).

/// Why an entry did not inflate.
pub enum Failure {
    /// Its size could not be allocated.
    NoMemory,
    BadData,
    /// It does not inflate to the size its header says.
    WrongSize,
}

#[cfg(feature = "native")]
pub struct EntryInflater(crate::pack::inflate::Inflater);

#[cfg(feature = "native")]
impl EntryInflater {
    pub fn new() -> EntryInflater {
        EntryInflater(crate::pack::inflate::Inflater::new())
    }

    /// Inflates the zlib stream at the start of `input` into `out` (replaced), `size` bytes.
    pub fn inflate(&mut self, input: &[u8], out: &mut Vec<u8>, size: usize) -> Result<(), Failure> {
        use crate::pack::inflate::InflateError;
        match self.0.inflate_vec(input, out, size) {
            Ok(_) => Ok(()),
            Err(None) => Err(Failure::NoMemory),
            Err(Some(InflateError::BadData)) => Err(Failure::BadData),
            Err(Some(_)) => Err(Failure::WrongSize),
        }
    }
}

#[cfg(not(feature = "native"))]
pub struct EntryInflater(Box<miniz_oxide::inflate::core::DecompressorOxide>);

#[cfg(not(feature = "native"))]
impl EntryInflater {
    pub fn new() -> EntryInflater {
        EntryInflater(Box::new(miniz_oxide::inflate::core::DecompressorOxide::new()))
    }

    pub fn inflate(&mut self, input: &[u8], out: &mut Vec<u8>, size: usize) -> Result<(), Failure> {
        use miniz_oxide::inflate::core::{decompress, inflate_flags as f};
        use miniz_oxide::inflate::TINFLStatus;
        out.clear();
        // One byte more than expected, so that a longer stream shows as such.
        out.try_reserve_exact(size + 1).map_err(|_| Failure::NoMemory)?;
        out.resize(size + 1, 0);
        self.0.init();
        let flags = f::TINFL_FLAG_PARSE_ZLIB_HEADER | f::TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF | f::TINFL_FLAG_COMPUTE_ADLER32;
        let (status, _, written) = decompress(&mut self.0, input, out, 0, flags);
        out.truncate(written);
        match status {
            TINFLStatus::Done if written == size => Ok(()),
            TINFLStatus::Done | TINFLStatus::HasMoreOutput | TINFLStatus::NeedsMoreInput | TINFLStatus::FailedCannotMakeProgress => Err(Failure::WrongSize),
            _ => Err(Failure::BadData),
        }
    }
}
