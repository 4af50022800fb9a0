//! The first pass over a pack as its bytes arrive: every entry's header, CRC-32 and end (its
//! zlib stream inflated, checking it gives the header's size), the ids of whole objects, and at
//! the end the trailer: the plain SHA-1 of everything before it, which the caller computes as
//! the bytes pass (node's SHA-1 uses the CPU's SHA instructions; a soft one here cost a fifth
//! of the indexing time), and nothing may follow it.

use super::inflate::{Step, Stream};
use super::{too_many, MAX_OBJECTS};
use crate::error::{Error, Result};
use crate::pack::entry::{object_header, parse_header, BaseRef, Entry, Header, OBJ_OFS_DELTA, OBJ_REF_DELTA};
use sha1collisiondetection::Sha1CD;

/// `delta_at` of an entry whose inflated delta is not kept (a whole object, or past `DELTA_KEEP`).
pub const NOT_KEPT: u32 = u32::MAX;
/// Inflated delta bytes kept from the first pass, at most (see docs/ARCHITECTURE.md: measured
/// with bench:index-pack; the rest are read again from the pack file and inflated when resolved).
pub const DELTA_KEEP: usize = 128 << 20;

/// The fewest bytes an entry takes (a one-byte header and the shortest zlib stream).
const MIN_ENTRY: u64 = 9;

/// An entry whose zlib stream has not ended yet.
struct Partial {
    hdr: Header,
    offset: u64,
    /// Pack position of the next compressed byte to feed.
    next: u64,
    stream: Stream,
    base: u32,
    crc: crc32fast::Hasher,
    /// A whole object's id, hashed as its bytes are inflated.
    id: Option<Box<Sha1CD>>,
    /// A delta whose inflated bytes are kept.
    keep: bool,
}

/// What is known of the pack's entries; of its bytes only a window: from where parsing
/// stands (an entry's header not yet whole, a stream's next input, the trailer) to the last
/// byte received. The bytes themselves go to the pack file (the caller writes them), from
/// which the second pass reads what it needs.
pub struct Scanner {
    window: Vec<u8>,
    /// The pack offset of `window[0]`.
    window_at: u64,
    /// Bytes received in all.
    received: u64,
    /// Where the next entry starts (or the trailer, after the last one).
    parsed: u64,
    count: Option<u32>,
    /// In pack order. `base`: OFS_DELTA -> the base entry's index; REF_DELTA -> `ref_bases` index.
    pub entries: Vec<Entry>,
    /// Per entry: the object id (whole objects here; deltas once resolved).
    pub oids: Vec<[u8; 20]>,
    pub ref_bases: Vec<[u8; 20]>,
    pub deltas: u32,
    /// The inflated bytes of the deltas, kept from this pass so that resolving does not read
    /// and inflate them again (deltas are small: a tenth of a typical pack), up to `DELTA_KEEP`.
    pub delta_bytes: Vec<u8>,
    /// Per entry: where its inflated delta starts in `delta_bytes`, or `NOT_KEPT`.
    pub delta_at: Vec<u32>,
    partial: Option<Partial>,
    spare: Vec<u8>,
    /// The pack checksum, once the trailer is checked.
    pub checksum: Option<[u8; 20]>,
    /// The most objects taken (`MAX_OBJECTS`; tests lower it).
    pub max_objects: u32,
    /// The pack's whole size, when known (a file): a count past `max_objects` that the size
    /// can hold is refused at the header; one it cannot is a corrupt count, as natively.
    pub known_size: Option<u64>,
    /// The most inflated delta bytes kept (`DELTA_KEEP`; tests lower it).
    pub delta_keep: usize,
}

impl Default for Scanner {
    fn default() -> Self {
        Scanner {
            window: Vec::new(),
            window_at: 0,
            received: 0,
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
            max_objects: MAX_OBJECTS,
            known_size: None,
            delta_keep: DELTA_KEEP,
        }
    }
}

impl Scanner {
    /// Room for `n` more bytes after those received (the caller copies them in, then `commit`s).
    pub fn reserve(&mut self, n: usize) -> &mut [u8] {
        let len = self.window.len();
        self.window.resize(len + n, 0);
        &mut self.window[len..]
    }

    /// Takes the bytes of the last `reserve` but the `unused` ones not filled.
    pub fn commit(&mut self, unused: usize) {
        let n = self.window.len() - unused;
        self.window.truncate(n);
        self.received = self.window_at + n as u64;
    }

    /// Pack bytes received so far.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Bytes held in the window (bounded: a chunk and the part of an entry it ends in).
    pub fn window_len(&self) -> usize {
        self.window.len()
    }

    /// The number of objects the header announces (once read).
    pub fn count(&self) -> Option<u32> {
        self.count
    }

    /// The window's bytes from pack offset `at`.
    fn from(&self, at: u64) -> &[u8] {
        &self.window[(at - self.window_at) as usize..]
    }

    /// Parses what the bytes received so far complete, then drops the window's bytes that
    /// nothing needs any more.
    pub fn advance(&mut self) -> Result<()> {
        // After an error nothing more is parsed (and an entry given up on may start before
        // the window): the window stays as it is.
        self.parse()?;
        let keep = self.partial.as_ref().map_or(self.parsed, |p| p.next).min(self.received);
        let drop = keep.saturating_sub(self.window_at) as usize;
        if drop > 0 {
            self.window.drain(..drop);
            self.window_at = keep;
        }
        Ok(())
    }

    fn parse(&mut self) -> Result<()> {
        loop {
            let count = match self.count {
                Some(c) => c,
                None => {
                    if self.received < 12 {
                        return Ok(());
                    }
                    let h = &self.window[..12];
                    if &h[..4] != b"PACK" {
                        return Err(Error::bad("pack signature mismatch: this is not a pack (no \"PACK\" at offset 0)"));
                    }
                    let version = u32::from_be_bytes([h[4], h[5], h[6], h[7]]);
                    if version != 2 && version != 3 {
                        return Err(Error::bad(format!("pack version {} unsupported (at offset 4; versions 2 and 3 are)", version)));
                    }
                    let c = u32::from_be_bytes([h[8], h[9], h[10], h[11]]);
                    // Checked before the tables grow: past it they would not fit in the instance.
                    if c > self.max_objects && self.known_size.map_or(false, |n| n >= 32 + MIN_ENTRY * c as u64) {
                        return Err(too_many(c as u64, self.max_objects));
                    }
                    self.count = Some(c);
                    self.parsed = 12;
                    // A count the bytes so far cannot hold is not reserved for all at once.
                    let cap = (c as usize).min(1 << 20);
                    self.entries.reserve(cap);
                    self.oids.reserve(cap);
                    self.delta_at.reserve(cap);
                    c
                }
            };
            if self.partial.is_none() {
                if self.entries.len() as u32 == count {
                    return self.trailer();
                }
                // A stream's count is known to be true only as its entries come.
                if self.entries.len() as u32 == self.max_objects {
                    return Err(too_many(count as u64, self.max_objects));
                }
                let offset = self.parsed;
                let hdr = match parse_header(self.from(offset), offset)? {
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
                let delta = hdr.kind == OBJ_OFS_DELTA || hdr.kind == OBJ_REF_DELTA;
                let keep = delta && (self.delta_bytes.len() as u64).saturating_add(hdr.size) <= self.delta_keep as u64;
                let spare = std::mem::take(&mut self.spare);
                let stream = if keep { Stream::kept(hdr.size, spare) } else { Stream::passed(hdr.size, spare) };
                let id = if delta {
                    None
                } else {
                    let mut h = Box::new(Sha1CD::default());
                    let (head, n) = object_header(hdr.kind, hdr.size);
                    h.update(&head[..n]);
                    Some(h)
                };
                let mut crc = crc32fast::Hasher::new();
                crc.update(&self.from(offset)[..hdr.len]);
                self.partial = Some(Partial { hdr, offset, next: offset + hdr.len as u64, stream, base, crc, id, keep });
            }
            let p = self.partial.as_mut().expect("set above");
            let input = &self.window[(p.next - self.window_at) as usize..];
            let id = &mut p.id;
            let step = p.stream.step(input, &mut |piece| {
                if let Some(h) = id.as_mut() {
                    h.update(piece);
                }
            });
            match step {
                Step::More { consumed } => {
                    p.crc.update(&input[..consumed]);
                    p.next += consumed as u64;
                    return Ok(());
                }
                Step::Bad(why) => return Err(Error::at(p.offset, format!("bad zlib data ({})", why))),
                Step::Long => return Err(Error::at(p.offset, format!("inflates to more than the {} bytes its header says", p.hdr.size))),
                Step::Done { consumed } => {
                    p.crc.update(&input[..consumed]);
                    let p = self.partial.take().expect("set above");
                    let end = p.next + consumed as u64;
                    if p.stream.written != p.hdr.size {
                        return Err(Error::at(p.offset, format!("inflates to {} bytes, its header says {}", p.stream.written, p.hdr.size)));
                    }
                    let kind = p.hdr.kind;
                    let mut at = NOT_KEPT;
                    let oid = match p.id {
                        Some(h) => match h.finalize_cd() {
                            Ok(d) => {
                                let mut o = [0u8; 20];
                                o.copy_from_slice(d.as_slice());
                                o
                            }
                            Err(_) => return Err(Error::at(p.offset, "SHA-1 collision attack detected in this object (sha1dc); refusing the pack")),
                        },
                        None => {
                            self.deltas += 1;
                            if p.keep {
                                at = self.delta_bytes.len() as u32;
                                self.delta_bytes.extend_from_slice(&p.stream.out[..p.hdr.size as usize]);
                            }
                            [0u8; 20]
                        }
                    };
                    self.entries.push(Entry { offset: p.offset, size: p.hdr.size, base: p.base, crc32: p.crc.finalize(), hdr_len: p.hdr.len as u8, kind });
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
        if self.received > self.parsed + 20 {
            return Err(Error::bad(format!("pack has junk after its trailer, at offset {}", self.parsed + 20)));
        }
        Ok(())
    }

    /// End of input: the pack must be complete, and `digest` (the SHA-1 of every byte but the
    /// last 20) its trailer.
    pub fn finish(&mut self, digest: &[u8; 20]) -> Result<[u8; 20]> {
        self.advance()?;
        let complete = self.partial.is_none() && self.count == Some(self.entries.len() as u32) && self.received == self.parsed + 20;
        if complete {
            let trailer = self.from(self.parsed);
            if trailer != &digest[..] {
                let (at, have) = (self.parsed, crate::oid::hex(trailer));
                return Err(Error::bad(format!("pack is corrupted (SHA-1 mismatch): trailer at offset {} is {}, the data hashes to {}", at, have, crate::oid::hex(digest))));
            }
            self.checksum = Some(*digest);
        }
        match self.checksum {
            Some(c) => Ok(c),
            None => Err(Error::bad(match (&self.partial, self.count) {
                (Some(p), _) => format!("pack is truncated: it ends inside the object at offset {}", p.offset),
                (None, None) => format!("pack is truncated: it ends at offset {} inside its 12-byte header", self.received),
                (None, Some(c)) if (self.entries.len() as u32) < c => format!("pack is truncated: it ends inside the object at offset {}", self.parsed),
                _ => format!("pack is truncated: it ends at offset {} inside its 20-byte trailer", self.received),
            })),
        }
    }

    /// Where entry `i`'s compressed data ends (the next entry, or the trailer).
    pub fn entry_end(&self, i: usize) -> u64 {
        match self.entries.get(i + 1) {
            Some(e) => e.offset,
            None => self.parsed,
        }
    }

    /// Pack bytes up to the trailer.
    pub fn body_len(&self) -> u64 {
        self.parsed
    }

    pub(super) fn set_body_len(&mut self, n: u64) {
        self.parsed = n;
    }
}
