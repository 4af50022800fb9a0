//! The first pass over a pack as its bytes arrive: every entry's header, CRC-32 and end (its
//! zlib stream inflated, checking it gives the header's size), the ids of whole objects, and at
//! the end the trailer: the plain SHA-1 of everything before it, which the caller computes as
//! the bytes pass (node's SHA-1 uses the CPU's SHA instructions; a soft one here cost a fifth
//! of the indexing time), and nothing may follow it.

use super::inflate::{Step, Stream};
use super::{object_id, too_large, MAX_PACK};
use crate::pack::entry::{parse_header, BaseRef, Entry, Header, OBJ_OFS_DELTA, OBJ_REF_DELTA};
use crate::error::{Error, Result};

/// `delta_at` of an entry whose inflated delta is not kept (a whole object, or past `DELTA_KEEP`).
pub const NOT_KEPT: u32 = u32::MAX;
/// Inflated delta bytes kept from the first pass, at most.
pub const DELTA_KEEP: usize = 128 << 20;

/// An entry whose zlib stream has not ended yet.
struct Partial {
    hdr: Header,
    offset: u64,
    /// Pack position of the next compressed byte to feed.
    next: usize,
    stream: Stream,
    base: u32,
}

/// The pack so far, and what is known of its entries.
pub struct Scanner {
    /// Every byte received (the WebAssembly core keeps the pack in memory).
    pub pack: Vec<u8>,
    /// Where the next entry starts (or the trailer, after the last one).
    parsed: usize,
    count: Option<u32>,
    /// In pack order. `base`: OFS_DELTA -> the base entry's index; REF_DELTA -> `ref_bases` index.
    pub entries: Vec<Entry>,
    /// Per entry: the object id (whole objects here; deltas once resolved).
    pub oids: Vec<[u8; 20]>,
    pub ref_bases: Vec<[u8; 20]>,
    pub deltas: u32,
    /// The inflated bytes of the deltas, kept from this pass so that resolving does not
    /// inflate them again (deltas are small: a tenth of a typical pack), up to `DELTA_KEEP`.
    pub delta_bytes: Vec<u8>,
    /// Per entry: where its inflated delta starts in `delta_bytes`, or `NOT_KEPT`.
    pub delta_at: Vec<u32>,
    partial: Option<Partial>,
    spare: Vec<u8>,
    /// The pack checksum, once the trailer is checked.
    pub checksum: Option<[u8; 20]>,
    /// The most pack bytes taken (`MAX_PACK`; tests lower it).
    pub max_pack: u64,
    /// The most inflated delta bytes kept (`DELTA_KEEP`; tests lower it).
    pub delta_keep: usize,
}

impl Default for Scanner {
    fn default() -> Self {
        Scanner {
            pack: Vec::new(),
            parsed: 0,
            count: None,
            entries: Vec::new(),
            oids: Vec::new(),
            ref_bases: Vec::new(),
            deltas: 0,
            delta_bytes: Vec::new(),
            delta_at: Vec::new(),
            partial: None,
            spare: Vec::new(),
            checksum: None,
            max_pack: MAX_PACK,
            delta_keep: DELTA_KEEP,
        }
    }
}

impl Scanner {
    /// Room for `n` more bytes at the end of `pack` (the caller copies them in, then `commit`s).
    pub fn reserve(&mut self, n: usize) -> Result<&mut [u8]> {
        let len = self.pack.len();
        let total = len as u64 + n as u64;
        if total > self.max_pack {
            return Err(too_large(total));
        }
        self.pack.try_reserve(n).map_err(|_| too_large(total))?;
        self.pack.resize(len + n, 0);
        Ok(&mut self.pack[len..])
    }

    /// The pack's whole size, when known (a file): reserved at once, not grown by doubling.
    /// A size past `max_pack` is refused here, before any byte is read.
    pub fn expect(&mut self, total: u64) -> Result<()> {
        if total > self.max_pack {
            return Err(too_large(total));
        }
        let more = (total as usize).saturating_sub(self.pack.len());
        self.pack.try_reserve_exact(more).map_err(|_| too_large(total))
    }

    /// Takes back the part of the last `reserve` that was not filled.
    pub fn unreserve(&mut self, unused: usize) {
        self.pack.truncate(self.pack.len() - unused);
    }

    /// The number of objects the header announces (once read).
    pub fn count(&self) -> Option<u32> {
        self.count
    }

    /// Parses what the bytes received so far complete.
    pub fn advance(&mut self) -> Result<()> {
        loop {
            let count = match self.count {
                Some(c) => c,
                None => {
                    if self.pack.len() < 12 {
                        return Ok(());
                    }
                    let h = &self.pack[..12];
                    if &h[..4] != b"PACK" {
                        return Err(Error::bad("pack signature mismatch: this is not a pack (no \"PACK\" at offset 0)"));
                    }
                    let version = u32::from_be_bytes([h[4], h[5], h[6], h[7]]);
                    if version != 2 && version != 3 {
                        return Err(Error::bad(format!("pack version {} unsupported (at offset 4; versions 2 and 3 are)", version)));
                    }
                    let c = u32::from_be_bytes([h[8], h[9], h[10], h[11]]);
                    self.count = Some(c);
                    self.parsed = 12;
                    // A count the bytes cannot hold (2 bytes an entry at least) is not reserved for.
                    let cap = (c as usize).min(self.pack.len() / 2 + 1024);
                    self.entries.reserve(cap);
                    self.oids.reserve(cap);
                    c
                }
            };
            if self.partial.is_none() {
                if self.entries.len() as u32 == count {
                    return self.trailer();
                }
                let offset = self.parsed as u64;
                let hdr = match parse_header(&self.pack[self.parsed..], offset)? {
                    Some(h) => h,
                    None => return Ok(()),
                };
                let base = match hdr.base {
                    BaseRef::None => 0,
                    BaseRef::Offset(o) => match self.entries.binary_search_by_key(&o, |e| e.offset) {
                        Ok(i) => i as u32,
                        Err(_) => return Err(Error::at(offset, format!("delta base offset {} is not the start of an entry", o))),
                    },
                    BaseRef::Id(id) => {
                        self.ref_bases.push(id);
                        (self.ref_bases.len() - 1) as u32
                    }
                };
                let size = usize::try_from(hdr.size).map_err(|_| Error::at(offset, "object too large for the WebAssembly core"))?;
                let stream = Stream::new(size, std::mem::take(&mut self.spare));
                self.partial = Some(Partial { hdr, offset, next: self.parsed + hdr.len, stream, base });
            }
            let p = self.partial.as_mut().expect("set above");
            match p.stream.step(&self.pack[p.next..]) {
                Step::More { consumed } => {
                    p.next += consumed;
                    return Ok(());
                }
                Step::Bad(why) => return Err(Error::at(p.offset, format!("bad zlib data ({})", why))),
                Step::Long => return Err(Error::at(p.offset, format!("inflates to more than the {} bytes its header says", p.hdr.size))),
                Step::Done { consumed } => {
                    let p = self.partial.take().expect("set above");
                    let end = p.next + consumed;
                    if p.stream.written as u64 != p.hdr.size {
                        return Err(Error::at(p.offset, format!("inflates to {} bytes, its header says {}", p.stream.written, p.hdr.size)));
                    }
                    let kind = p.hdr.kind;
                    let data = &p.stream.out[..p.stream.written];
                    let mut at = NOT_KEPT;
                    let oid = if kind == OBJ_OFS_DELTA || kind == OBJ_REF_DELTA {
                        self.deltas += 1;
                        if self.delta_bytes.len() + data.len() <= self.delta_keep {
                            at = self.delta_bytes.len() as u32;
                            self.delta_bytes.extend_from_slice(data);
                        }
                        [0u8; 20]
                    } else {
                        object_id(kind, data, p.offset)?
                    };
                    let crc32 = crc32fast::hash(&self.pack[p.offset as usize..end]);
                    self.entries.push(Entry { offset: p.offset, size: p.hdr.size, base: p.base, crc32, hdr_len: p.hdr.len as u8, kind });
                    self.oids.push(oid);
                    self.delta_at.push(at);
                    self.parsed = end;
                    self.spare = p.stream.into_out();
                    // A big buffer is not kept for the small entries that follow.
                    if self.spare.capacity() > 16 << 20 {
                        self.spare = Vec::new();
                    }
                }
            }
        }
    }

    fn trailer(&mut self) -> Result<()> {
        if self.pack.len() > self.parsed + 20 {
            return Err(Error::bad(format!("pack has junk after its trailer, at offset {}", self.parsed + 20)));
        }
        Ok(())
    }

    /// End of input: the pack must be complete, and `digest` (the SHA-1 of every byte but the
    /// last 20) its trailer.
    pub fn finish(&mut self, digest: &[u8; 20]) -> Result<[u8; 20]> {
        self.advance()?;
        let complete = self.partial.is_none() && self.count == Some(self.entries.len() as u32) && self.pack.len() == self.parsed + 20;
        if complete {
            if self.pack[self.parsed..] != digest[..] {
                let (at, have) = (self.parsed, crate::oid::hex(&self.pack[self.parsed..]));
                return Err(Error::bad(format!("pack is corrupted (SHA-1 mismatch): trailer at offset {} is {}, the data hashes to {}", at, have, crate::oid::hex(digest))));
            }
            self.checksum = Some(*digest);
        }
        match self.checksum {
            Some(c) => Ok(c),
            None => Err(Error::bad(match (&self.partial, self.count) {
                (Some(p), _) => format!("pack is truncated: it ends inside the object at offset {}", p.offset),
                (None, None) => format!("pack is truncated: it ends at offset {} inside its 12-byte header", self.pack.len()),
                (None, Some(c)) if (self.entries.len() as u32) < c => format!("pack is truncated: it ends inside the object at offset {}", self.parsed),
                _ => format!("pack is truncated: it ends at offset {} inside its 20-byte trailer", self.pack.len()),
            })),
        }
    }

    /// Where entry `i`'s compressed data ends (the next entry, or the trailer).
    pub fn entry_end(&self, i: usize) -> usize {
        match self.entries.get(i + 1) {
            Some(e) => e.offset as usize,
            None => self.parsed,
        }
    }

    /// Pack bytes up to the trailer.
    pub fn body_len(&self) -> usize {
        self.parsed
    }

    pub(super) fn set_body_len(&mut self, n: usize) {
        self.parsed = n;
    }
}
