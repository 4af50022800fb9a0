//! Compressed bytes of pack entries read back by offset, as both indexers' second passes read
//! them (the native one with pread, the WebAssembly core's through its host): an entry ends
//! where the next begins, small ones are served from a window of `READ_WINDOW` bytes (nearby
//! entries are often needed together, and one read serves them), big ones get a buffer of
//! their own, not kept for the next.

use crate::error::{Error, Result};

/// Bytes one read fetches around small entries.
pub const READ_WINDOW: usize = 16 << 10;

/// Reused buffers larger than this are let go rather than kept for the next object.
pub const KEEP_MAX: usize = 1 << 20;

/// The read window and the buffer for big entries (one per resolving thread).
#[derive(Default)]
pub struct Reader {
    compressed: Vec<u8>,
    window: Vec<u8>,
    window_at: u64,
    window_len: usize,
}

impl Reader {
    /// The bytes [start, end) of a pack whose entries end at `limit`. `read` fills a buffer
    /// from an offset and says how many bytes it got (fewer only where the file ends).
    pub fn get(&mut self, start: u64, end: u64, limit: u64, read: impl Fn(&mut [u8], u64) -> Result<usize>) -> Result<&[u8]> {
        let len = usize::try_from(end.saturating_sub(start)).map_err(|_| Error::at(start, "entry too large for this build"))?;
        if len <= READ_WINDOW / 4 {
            let in_window = start >= self.window_at && end <= self.window_at + self.window_len as u64;
            if !in_window {
                self.window.resize(READ_WINDOW, 0);
                let want = limit.saturating_sub(start).min(READ_WINDOW as u64) as usize;
                self.window_len = read(&mut self.window[..want], start)?;
                self.window_at = start;
                if self.window_len < len {
                    return Err(Error::bad(format!("pack is truncated on disk at offset {}", start + self.window_len as u64)));
                }
            }
            let from = (start - self.window_at) as usize;
            return Ok(&self.window[from..from + len]);
        }
        if self.compressed.capacity() > KEEP_MAX {
            self.compressed = Vec::new();
        }
        self.compressed.resize(len, 0);
        if read(&mut self.compressed, start)? < len {
            return Err(Error::bad(format!("pack is truncated on disk before offset {}", end)));
        }
        Ok(&self.compressed)
    }
}
