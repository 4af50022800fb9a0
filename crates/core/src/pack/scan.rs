//! The first pass over a pack, fed its bytes as they arrive: the header, then every entry's
//! header, inflated just far enough to know where it ends (and that it inflates to the size its
//! header gives), its CRC-32, and, for whole objects, its object id. Finally the trailer: the
//! SHA-1 of everything before it, and nothing after it.
//!
//! Entries whose compressed bytes are all buffered are inflated in one call by libdeflate
//! (`WHOLE_MAX` bounds the buffer this takes); larger ones, or ones whose stream runs longer
//! than zlib's bound, stream through zlib. Whole objects are hashed here, while their inflated
//! bytes are in cache (handing them to other threads cost more than it saved: the second
//! pass is where the threads are).

use super::entry::{self, BaseRef, Entry};
use crate::error::{Error, Result};
use super::inflate::{compress_bound, InflateError, Inflater, StreamInflate};
use super::sha1dc::Sha1Dc;
use super::Progress;
use sha1::{Digest, Sha1};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Entries inflating to at most this many bytes are inflated whole (libdeflate), waiting until
/// their compressed bytes are buffered; larger ones stream through zlib in bounded memory.
pub const WHOLE_MAX: u64 = 32 << 20;
/// Output buffer of a streaming inflate.
const STREAM_CHUNK: usize = 256 << 10;
/// The inflate buffer is reused from entry to entry up to this size.
const SCRATCH_KEEP: usize = 4 << 20;

/// What the first pass learned.
pub struct Scanned {
    pub version: u32,
    pub entries: Vec<Entry>,
    /// The base object id of each REF_DELTA entry (indexed by its `Entry::base`).
    pub ref_bases: Vec<[u8; 20]>,
    /// Object ids of whole objects (`known[i]`); deltas get theirs when resolved.
    pub oids: Vec<[u8; 20]>,
    pub known: Vec<bool>,
    /// Where the trailer starts: the end of the last entry.
    pub objects_end: u64,
    /// The trailer: SHA-1 of the pack up to it.
    pub checksum: [u8; 20],
}

enum State {
    Header,
    Entry,
    Stream(Box<Streaming>),
    Trailer,
    Done,
}

struct Streaming {
    offset: u64,
    header: entry::Header,
    base: u32,
    z: StreamInflate,
    crc: crc32fast::Hasher,
    hasher: Option<Sha1Dc>,
}

pub struct Scanner {
    buf: Vec<u8>,
    /// Parse position in `buf`; bytes before it are consumed.
    pos: usize,
    /// Pack offset of `buf[0]`.
    buf_offset: u64,
    /// Bytes of `buf` already fed to `pack_sum`.
    summed: usize,
    pack_sum: Sha1,
    state: State,
    version: u32,
    nr_objects: u32,
    entries: Vec<Entry>,
    ref_bases: Vec<[u8; 20]>,
    oids: Vec<[u8; 20]>,
    known: Vec<bool>,
    objects_end: u64,
    checksum: [u8; 20],
    inflater: Inflater,
    scratch: Vec<u8>,
    progress: Arc<Progress>,
    whole_max: u64,
}

impl Scanner {
    pub fn new(progress: Arc<Progress>) -> Scanner {
        Self::with_whole_max(progress, WHOLE_MAX)
    }

    /// As `new`, inflating whole only entries of at most `whole_max` bytes.
    pub fn with_whole_max(progress: Arc<Progress>, whole_max: u64) -> Scanner {
        Scanner {
            buf: Vec::new(),
            pos: 0,
            buf_offset: 0,
            summed: 0,
            pack_sum: Sha1::new(),
            state: State::Header,
            version: 0,
            nr_objects: 0,
            entries: Vec::new(),
            ref_bases: Vec::new(),
            oids: Vec::new(),
            known: Vec::new(),
            objects_end: 0,
            checksum: [0; 20],
            inflater: Inflater::new(),
            scratch: Vec::new(),
            progress,
            whole_max,
        }
    }

    /// Feeds the next bytes of the pack and parses as far as they go.
    pub fn push(&mut self, data: &[u8]) -> Result<()> {
        self.progress.bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
        if matches!(self.state, State::Done) && !data.is_empty() {
            return Err(junk(self.offset_of(self.buf.len())));
        }
        self.compact();
        self.buf.extend_from_slice(data);
        self.parse(false)
    }

    /// Reads up to `max` bytes from `src` straight into the buffer and parses them; 0 at its end.
    pub fn push_from(&mut self, src: &mut impl std::io::Read, max: usize) -> std::io::Result<Result<usize>> {
        self.compact();
        let old = self.buf.len();
        self.buf.resize(old + max, 0);
        let n = loop {
            match src.read(&mut self.buf[old..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.buf.truncate(old);
                    return Err(e);
                }
            }
        };
        self.buf.truncate(old + n);
        if n == 0 {
            return Ok(Ok(0));
        }
        self.progress.bytes.fetch_add(n as u64, Ordering::Relaxed);
        if matches!(self.state, State::Done) {
            return Ok(Err(junk(self.offset_of(old))));
        }
        Ok(self.parse(false).map(|_| n))
    }

    /// End of input: everything must have parsed, up to and including the trailer.
    pub fn finish(mut self) -> Result<Scanned> {
        self.parse(true)?;
        if !matches!(self.state, State::Done) {
            return Err(Error::bad(format!("pack is truncated at offset {}", self.offset_of(self.buf.len()))));
        }
        if let Some(i) = self.known.iter().zip(&self.entries).position(|(&k, e)| !k && !entry::is_delta(e.kind)) {
            return Err(Error::at(self.entries[i].offset, "object was not hashed (internal error)"));
        }
        Ok(Scanned {
            version: self.version,
            entries: self.entries,
            ref_bases: self.ref_bases,
            oids: self.oids,
            known: self.known,
            objects_end: self.objects_end,
            checksum: self.checksum,
        })
    }

    fn offset_of(&self, pos: usize) -> u64 {
        self.buf_offset + pos as u64
    }

    /// Drops consumed bytes from the buffer (summing them first).
    fn compact(&mut self) {
        self.sum_consumed();
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.buf_offset += self.pos as u64;
            self.summed -= self.pos;
            self.pos = 0;
        }
    }

    fn sum_consumed(&mut self) {
        if self.summed < self.pos {
            self.pack_sum.update(&self.buf[self.summed..self.pos]);
            self.summed = self.pos;
        }
    }

    fn parse(&mut self, eof: bool) -> Result<()> {
        loop {
            let avail = self.buf.len() - self.pos;
            match &mut self.state {
                State::Header => {
                    if avail < 12 {
                        return if eof { Err(Error::bad(format!("pack is truncated: it ends at offset {} inside its 12-byte header", avail))) } else { Ok(()) };
                    }
                    let h = &self.buf[self.pos..self.pos + 12];
                    if &h[..4] != b"PACK" {
                        return Err(Error::bad("pack signature mismatch: this is not a pack (no \"PACK\" at offset 0)"));
                    }
                    let version = u32::from_be_bytes(h[4..8].try_into().unwrap());
                    if version != 2 && version != 3 {
                        return Err(Error::bad(format!("pack version {} unsupported (at offset 4; versions 2 and 3 are)", version)));
                    }
                    self.version = version;
                    self.nr_objects = u32::from_be_bytes(h[8..12].try_into().unwrap());
                    self.progress.objects_total.store(self.nr_objects as u64, Ordering::Relaxed);
                    // A lying count must not allocate: reserve for a modest count up front (the
                    // tables grow with the entries actually received beyond it).
                    let reserve = (self.nr_objects as usize).min(1 << 14);
                    self.entries.reserve(reserve);
                    self.oids.reserve(reserve);
                    self.known.reserve(reserve);
                    self.pos += 12;
                    self.state = State::Entry;
                }
                State::Entry => {
                    if self.entries.len() == self.nr_objects as usize {
                        self.objects_end = self.offset_of(self.pos);
                        self.state = State::Trailer;
                        continue;
                    }
                    if !self.entry(eof)? {
                        return Ok(());
                    }
                }
                State::Stream(_) => {
                    if !self.stream(eof)? {
                        return Ok(());
                    }
                }
                State::Trailer => {
                    if avail < 20 {
                        return if eof {
                            Err(Error::bad(format!("pack is truncated: it ends at offset {} inside its 20-byte trailer", self.offset_of(self.buf.len()))))
                        } else {
                            Ok(())
                        };
                    }
                    self.sum_consumed();
                    let sum: [u8; 20] = self.pack_sum.clone().finalize().into();
                    if self.buf[self.pos..self.pos + 20] != sum {
                        return Err(Error::bad(format!(
                            "pack is corrupted (SHA-1 mismatch): trailer at offset {} is {}, the data hashes to {}",
                            self.objects_end,
                            crate::oid::hex(&self.buf[self.pos..self.pos + 20]),
                            crate::oid::hex(&sum)
                        )));
                    }
                    self.checksum = sum;
                    self.pos += 20;
                    self.summed = self.pos;
                    self.state = State::Done;
                }
                State::Done => {
                    if avail > 0 {
                        return Err(junk(self.offset_of(self.pos)));
                    }
                    return Ok(());
                }
            }
        }
    }

    /// The delta base of a header as an `Entry::base` value.
    fn base_index(&mut self, h: &entry::Header, offset: u64) -> Result<u32> {
        Ok(match h.base {
            BaseRef::None => 0,
            BaseRef::Offset(o) => match find_offset(&self.entries, o) {
                Some(i) => i as u32,
                None => return Err(Error::at(offset, format!("delta base offset {} is not the start of an object", o))),
            },
            BaseRef::Id(id) => {
                self.ref_bases.push(id);
                (self.ref_bases.len() - 1) as u32
            }
        })
    }

    /// Parses the entry at `pos`. False when more input is needed first.
    fn entry(&mut self, eof: bool) -> Result<bool> {
        let offset = self.offset_of(self.pos);
        let h = match entry::parse_header(&self.buf[self.pos..], offset)? {
            Some(h) => h,
            None => return if eof { Err(truncated(offset)) } else { Ok(false) },
        };
        let data_start = self.pos + h.len;
        let avail = (self.buf.len() - data_start) as u64;
        if h.size <= self.whole_max {
            if avail < compress_bound(h.size) && !eof {
                return Ok(false);
            }
            match self.inflater.inflate_vec(&self.buf[data_start..], &mut self.scratch, h.size as usize) {
                Ok(used) => {
                    let base = self.base_index(&h, offset)?;
                    let end = data_start + used;
                    let crc = crc32fast::hash(&self.buf[self.pos..end]);
                    self.pos = end;
                    let data = if entry::is_delta(h.kind) { None } else { Some(std::mem::take(&mut self.scratch)) };
                    self.add(offset, &h, base, crc, data, None)?;
                    return Ok(true);
                }
                // Longer than zlib's bound, or corrupt: before the end of the input, zlib
                // streams it and tells which (libdeflate cannot tell a cut stream from a bad one).
                Err(Some(_)) if !eof => {}
                Err(Some(e)) => return Err(inflate_error(offset, &h, e)),
                Err(None) => return Err(Error::at(offset, format!("cannot allocate {} bytes to inflate it", h.size))),
            }
        }
        let base = self.base_index(&h, offset)?;
        let mut crc = crc32fast::Hasher::new();
        crc.update(&self.buf[self.pos..data_start]);
        let hasher = if entry::is_delta(h.kind) {
            None
        } else {
            let mut s = Sha1Dc::new();
            let (hdr, n) = entry::object_header(h.kind, h.size);
            s.update(&hdr[..n]);
            Some(s)
        };
        self.pos = data_start;
        self.state = State::Stream(Box::new(Streaming { offset, header: h, base, z: StreamInflate::new(), crc, hasher }));
        Ok(true)
    }

    /// Continues a streaming inflate. False when more input is needed first.
    fn stream(&mut self, eof: bool) -> Result<bool> {
        let s = match &mut self.state {
            State::Stream(s) => s,
            _ => unreachable!(),
        };
        if self.scratch.len() < STREAM_CHUNK {
            self.scratch.resize(STREAM_CHUNK, 0);
        }
        loop {
            let step = s.z.step(&self.buf[self.pos..], &mut self.scratch[..STREAM_CHUNK]).map_err(|e| inflate_error(s.offset, &s.header, e))?;
            s.crc.update(&self.buf[self.pos..self.pos + step.consumed]);
            self.pos += step.consumed;
            if let Some(h) = s.hasher.as_mut() {
                h.update(&self.scratch[..step.produced]);
            }
            if s.z.total_out() > s.header.size {
                return Err(inflate_error(s.offset, &s.header, InflateError::Long));
            }
            if step.done {
                if s.z.total_out() != s.header.size {
                    return Err(inflate_error(s.offset, &s.header, InflateError::Short(s.z.total_out() as usize)));
                }
                let s = match std::mem::replace(&mut self.state, State::Entry) {
                    State::Stream(s) => s,
                    _ => unreachable!(),
                };
                let s = *s;
                let oid = match s.hasher {
                    Some(h) => Some(h.finalize().map_err(|_| collision(s.offset))?),
                    None => None,
                };
                self.add(s.offset, &s.header, s.base, s.crc.finalize(), None, oid)?;
                return Ok(true);
            }
            if step.consumed == 0 && step.produced == 0 {
                return if eof { Err(truncated(s.offset)) } else { Ok(false) };
            }
        }
    }

    /// Records a parsed entry; hashes (or hands off) a whole object's `data`.
    fn add(&mut self, offset: u64, h: &entry::Header, base: u32, crc32: u32, data: Option<Vec<u8>>, oid: Option<[u8; 20]>) -> Result<()> {
        let index = self.entries.len() as u32;
        self.entries.push(Entry { offset, size: h.size, base, crc32, hdr_len: h.len as u8, kind: h.kind });
        self.oids.push(oid.unwrap_or([0; 20]));
        self.known.push(oid.is_some());
        if entry::is_delta(h.kind) {
            self.progress.deltas_total.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(data) = data {
            let oid = object_id(h.kind, &data).map_err(|_| collision(offset))?;
            self.oids[index as usize] = oid;
            self.known[index as usize] = true;
            self.scratch = data;
        }
        // The buffer is kept for the next entry unless a big one made it big.
        if self.scratch.capacity() > SCRATCH_KEEP {
            self.scratch = Vec::new();
        }
        self.progress.objects_received.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// The entry starting at pack offset `o`. Bases are usually close behind their deltas, so the
/// search gallops back from the end before it bisects.
fn find_offset(entries: &[Entry], o: u64) -> Option<usize> {
    // Entries at `hi` and after all start after `o`.
    let mut hi = entries.len();
    let mut step = 1;
    loop {
        let lo = hi.saturating_sub(step);
        if lo == 0 || entries[lo].offset <= o {
            return entries[lo..hi].binary_search_by_key(&o, |e| e.offset).ok().map(|i| lo + i);
        }
        hi = lo;
        step *= 2;
    }
}

/// The object id of a whole object.
pub fn object_id(kind: u8, data: &[u8]) -> std::result::Result<[u8; 20], super::sha1dc::Collision> {
    let mut h = Sha1Dc::new();
    let (hdr, n) = entry::object_header(kind, data.len() as u64);
    h.update(&hdr[..n]);
    h.update(data);
    h.finalize()
}

pub fn collision(offset: u64) -> Error {
    Error::at(offset, "SHA-1 collision attack detected in this object (sha1dc); refusing the pack")
}

fn truncated(offset: u64) -> Error {
    Error::bad(format!("pack is truncated: it ends inside the object at offset {}", offset))
}

fn junk(offset: u64) -> Error {
    Error::bad(format!("pack has junk after its trailer, at offset {}", offset))
}

fn inflate_error(offset: u64, h: &entry::Header, e: InflateError) -> Error {
    match e {
        InflateError::BadData => Error::at(offset, "bad zlib data (corrupt or truncated)"),
        InflateError::Short(n) => Error::at(offset, format!("inflates to {} bytes, its header says {}", n, h.size)),
        InflateError::Long => Error::at(offset, format!("inflates to more than the {} bytes its header says", h.size)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn find_offset_gallops_to_any_entry() {
        let entries: Vec<Entry> = (0..1000u64).map(|i| Entry { offset: 12 + i * 7, size: 0, base: 0, crc32: 0, hdr_len: 1, kind: 3 }).collect();
        for (i, e) in entries.iter().enumerate() {
            assert_eq!(find_offset(&entries, e.offset), Some(i));
            assert_eq!(find_offset(&entries, e.offset + 1), None);
        }
        assert_eq!(find_offset(&entries, 0), None);
        assert_eq!(find_offset(&entries[..0], 12), None);
    }
}
