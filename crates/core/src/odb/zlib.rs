//! Inflating a pack entry to exactly the size its header says: libdeflate natively (the pack
//! module's `Inflater`), miniz_oxide in the WebAssembly core (`pack::portable::inflate::checked`:
//! with the adler32 checked, since unlike the indexer's these streams were never checked).

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
        use crate::pack::portable::inflate::{checked, Unexact};
        checked(&mut self.0, input, size, out).map_err(|e| match e {
            Unexact::NoMemory => Failure::NoMemory,
            Unexact::BadData => Failure::BadData,
            Unexact::WrongSize => Failure::WrongSize,
        })
    }
}
