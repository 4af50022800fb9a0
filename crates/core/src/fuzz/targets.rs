//! The targets over in-memory parsers: entry headers, inflate, delta application, trees,
//! commits and tags, the index file. Each states its memory bound as (per input byte, fixed).

use super::harness::{Accepted, Target, Verdict};
use super::targets_odb;
use crate::odb::index_file::{self, Stat};
use crate::odb::parse;
use crate::pack::delta::{self, DeltaError};
use crate::pack::entry::{encode_header, parse_header, BaseRef, MAX_OBJECT_SIZE, OBJ_OFS_DELTA, OBJ_REF_DELTA};
use crate::error::ErrorKind;
use crate::pack::inflate::{deflate, max_inflated, InflateError, Inflater, StreamInflate};
use crate::testutil::varint;
use arbitrary::Unstructured;

const MIB: usize = 1 << 20;

pub fn all() -> Vec<Target> {
    vec![
        Target { name: "pack-entry-header", max_len: 64, mem_per_byte: 0, mem_fixed: MIB, seeds: header_seeds, run: header },
        // A zlib stream may inflate 1032-fold; the output is held once, the re-encoding once more.
        Target { name: "inflate", max_len: 16 << 10, mem_per_byte: 3 * 1032, mem_fixed: 4 * MIB, seeds: inflate_seeds, run: inflate },
        // The result is bounded by (delta bytes) x (base bytes): bases here are at most 1 KiB.
        Target { name: "delta", max_len: 16 << 10, mem_per_byte: 2 * 1024, mem_fixed: 4 * MIB, seeds: delta_seeds, run: delta_target },
        Target { name: "tree", max_len: 16 << 10, mem_per_byte: 16, mem_fixed: 2 * MIB, seeds: tree_seeds, run: tree },
        Target { name: "commit", max_len: 16 << 10, mem_per_byte: 16, mem_fixed: 2 * MIB, seeds: commit_seeds, run: commit },
        Target { name: "index-file", max_len: 16 << 10, mem_per_byte: 64, mem_fixed: 2 * MIB, seeds: index_seeds, run: index_file_target },
        targets_odb::loose_target(),
        targets_odb::idx_target(),
        targets_odb::pack_scan_target(),
    ]
}

fn check(cond: bool, why: impl FnOnce() -> String) -> Result<(), String> {
    if cond {
        Ok(())
    } else {
        Err(why())
    }
}

// ---- pack entry headers --------------------------------------------------------------------

const OFFSETS: [u64; 5] = [12, 300, 1 << 20, 1 << 40, u64::MAX / 2];

fn ofs_encode(mut back: u64) -> Vec<u8> {
    let mut out = vec![(back & 127) as u8];
    back >>= 7;
    while back != 0 {
        back -= 1;
        out.push(0x80 | (back & 127) as u8);
        back >>= 7;
    }
    out.reverse();
    out
}

fn header_seeds() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for (i, (kind, size)) in [(1u8, 0u64), (2, 15), (3, 16), (4, 1 << 20), (3, (1 << 32) - 1), (3, MAX_OBJECT_SIZE - 1)].into_iter().enumerate() {
        let mut v = vec![i as u8 % 5];
        v.extend(encode_header(kind, size));
        out.push(v);
    }
    let mut ofs = vec![2u8];
    ofs.extend(encode_header(OBJ_OFS_DELTA, 100));
    ofs.extend(ofs_encode(200));
    out.push(ofs);
    let mut r = vec![0u8];
    r.extend(encode_header(OBJ_REF_DELTA, 4 << 30));
    r.extend([0xab; 20]);
    out.push(r);
    out
}

/// Parses an entry header at one of a few pack offsets; a parsed header must re-encode to the
/// bytes read (or to fewer, when the input used redundant continuation bytes).
fn header(input: &[u8]) -> Verdict {
    let (&sel, buf) = match input.split_first() {
        Some(x) => x,
        None => return Ok(Accepted::Refused),
    };
    let offset = OFFSETS[sel as usize % OFFSETS.len()];
    match parse_header(buf, offset) {
        Ok(None) => {
            // The input ended inside the header: more bytes must finish it one way or the other.
            let mut longer = buf.to_vec();
            longer.extend([0u8; 40]);
            check(!matches!(parse_header(&longer, offset), Ok(None)), || "a header that never ends".into())?;
            Ok(Accepted::Refused)
        }
        Ok(Some(h)) => {
            check(h.len <= buf.len() && h.size < MAX_OBJECT_SIZE, || format!("header {:?} out of range", h))?;
            let mut enc = encode_header(h.kind, h.size);
            let size_len = enc.len();
            match h.base {
                BaseRef::None => {}
                BaseRef::Offset(b) => {
                    check(b < offset && h.kind == OBJ_OFS_DELTA, || format!("bad base {:?} at {}", h, offset))?;
                    enc.extend(ofs_encode(offset - b));
                }
                BaseRef::Id(id) => {
                    check(h.kind == OBJ_REF_DELTA, || "REF base on a non-REF kind".into())?;
                    enc.extend(id);
                }
            }
            let back = parse_header(&enc, offset).map_err(|e| format!("re-encoding refused: {}", e))?;
            check(back.map(|b| (b.kind, b.size, b.base)) == Some((h.kind, h.size, h.base)), || "re-encoding parses differently".into())?;
            // Same bytes, unless the input's size or offset had redundant continuation bytes.
            check(enc[..] == buf[..h.len] || enc.len() < h.len || size_len < h.len, || format!("re-encoding {:?} differs from {:?}", enc, &buf[..h.len]))?;
            Ok(Accepted::Parsed)
        }
        Err(e) => {
            check(e.kind == ErrorKind::BadPack && e.message.contains(&format!("offset {}", offset)), || format!("untyped or unplaced error: {}", e))?;
            Ok(Accepted::Refused)
        }
    }
}

// ---- inflate -------------------------------------------------------------------------------

fn inflate_seeds() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let texts: [&[u8]; 4] = [b"", b"hello hello hello hello", &[0u8; 5000], b"tree 1234567890abcdef\nparent x\n\nmessage"];
    for (i, t) in texts.iter().enumerate() {
        let z = deflate(t, (i as u32 * 3) % 10).unwrap();
        // Selector 0: the right size; 1: a size from the next 4 bytes; 2: 4 GiB.
        out.push([&[0u8][..], &z].concat());
        out.push([&[1u8][..], &(t.len() as u32 + 1).to_le_bytes(), &z].concat());
        out.push([&[2u8][..], &z].concat());
    }
    out
}

/// Inflates with libdeflate to the size a header would claim, and streams the same bytes
/// through zlib: both must agree (the scanner uses either, depending on how bytes arrive), and
/// what inflates must deflate and inflate back to itself.
fn inflate(input: &[u8]) -> Verdict {
    let (&sel, rest) = match input.split_first() {
        Some(x) => x,
        None => return Ok(Accepted::Refused),
    };
    // zlib's view first: what the stream holds (bounded by deflate's ratio).
    let mut z = StreamInflate::new();
    let mut streamed = Vec::new();
    let mut chunk = vec![0u8; 64 << 10];
    let mut at = 0;
    let zlib: Result<usize, InflateError> = loop {
        match z.step(&rest[at..], &mut chunk) {
            Err(e) => break Err(e),
            Ok(s) => {
                at += s.consumed;
                streamed.extend_from_slice(&chunk[..s.produced]);
                check(streamed.len() <= max_inflated(rest.len()), || "zlib inflated past deflate's ratio".into())?;
                if s.done {
                    break Ok(at);
                }
                if s.consumed == 0 && s.produced == 0 {
                    break Err(InflateError::BadData);
                }
            }
        }
    };
    let (claimed, data) = match sel % 3 {
        0 => (streamed.len(), rest),
        1 if rest.len() >= 4 => (u32::from_le_bytes(rest[..4].try_into().unwrap()) as usize, &rest[4..]),
        _ => (4 << 30, rest),
    };
    let zlib = if sel % 3 == 1 && rest.len() >= 4 { None } else { Some(zlib) };
    let mut out = Vec::new();
    let r = Inflater::new().inflate_vec(data, &mut out, claimed);
    if let Some(zlib) = zlib {
        match (&r, &zlib) {
            (Ok(used), Ok(zused)) => check(used == zused && out == streamed, || "libdeflate and zlib inflate differently".into())?,
            (Ok(_), Err(_)) => return Err("libdeflate accepts a stream zlib refuses".into()),
            _ => {}
        }
    }
    match r {
        Ok(used) => {
            check(out.len() == claimed && used <= data.len(), || "inflated size differs from the claim".into())?;
            let again = deflate(&out, 6).map_err(|e| e.to_string())?;
            let mut back = Vec::new();
            Inflater::new().inflate_vec(&again, &mut back, out.len()).map_err(|e| format!("re-encoding does not inflate: {:?}", e))?;
            check(back == out, || "re-encoding inflates to other bytes".into())?;
            Ok(Accepted::Parsed)
        }
        Err(Some(InflateError::Short(n))) => check(n < claimed, || "Short with the full size".into()).map(|_| Accepted::Refused),
        Err(_) => Ok(Accepted::Refused),
    }
}

// ---- delta application ---------------------------------------------------------------------

/// Input layout: base length (2 bytes, at most 1 KiB), the base, then the delta.
fn delta_input(base: &[u8], delta: &[u8]) -> Vec<u8> {
    [&(base.len() as u16).to_le_bytes()[..], base, delta].concat()
}

fn delta_seeds() -> Vec<Vec<u8>> {
    let base: Vec<u8> = (0..1000u32).map(|i| (i * 7 % 251) as u8).collect();
    let mut out = Vec::new();
    let mut d = Vec::new();
    varint(1000, &mut d);
    varint(1003, &mut d);
    d.extend([0x91, 10, 200, 3, b'x', b'y', b'z', 0xb3, 100, 0, 0x20, 3]);
    out.push(delta_input(&base, &d)); // copy, insert, copy
    for claim in [1u64 << 32, 1 << 40, u64::MAX >> 2] {
        let mut d = Vec::new();
        varint(1000, &mut d);
        varint(claim, &mut d);
        d.extend([0x80; 8]); // 1-byte copies: the bomb's shape
        out.push(delta_input(&base, &d));
    }
    let mut oob = Vec::new();
    varint(1000, &mut oob);
    varint(100, &mut oob);
    oob.extend([0x9f, 0xff, 0xff, 0xff, 0xff, 100]); // copy at offset 4 GiB - 1
    out.push(delta_input(&base, &oob));
    out
}

/// The format as gitformat-pack describes it, written plainly: no preallocation, no bounds
/// shortcut. The real application must agree with it on every delta.
fn reference_apply(base: &[u8], d: &[u8]) -> Option<Vec<u8>> {
    let mut pos = 0;
    let mut size = || -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let c = *d.get(pos)?;
            pos += 1;
            v |= ((c & 0x7f) as u64) << shift;
            if c & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    };
    let (bsize, rsize) = (size()?, size()?);
    if bsize != base.len() as u64 {
        return None;
    }
    let mut out = Vec::new();
    while pos < d.len() {
        let op = d[pos];
        pos += 1;
        if op & 0x80 != 0 {
            let (mut off, mut len) = (0u64, 0u64);
            for i in 0..7 {
                if op & (1 << i) != 0 {
                    let b = *d.get(pos)? as u64;
                    pos += 1;
                    if i < 4 { off |= b << (8 * i) } else { len |= b << (8 * (i - 4)) }
                }
            }
            if len == 0 {
                len = 0x10000;
            }
            out.extend_from_slice(base.get(off as usize..(off + len) as usize)?);
        } else if op != 0 {
            out.extend_from_slice(d.get(pos..pos + op as usize)?);
            pos += op as usize;
        } else {
            return None;
        }
        if out.len() as u64 > rsize {
            return None;
        }
    }
    (out.len() as u64 == rsize).then_some(out)
}

/// Builds a well-formed delta from bytes (copies inside the base, inserts, the exact result
/// size), so that mutations of it stay near the format: the base is `base`.
fn structured_delta(base: &[u8], u: &mut Unstructured) -> Vec<u8> {
    let mut ops = Vec::new();
    let mut total = 0u64;
    while !u.is_empty() && ops.len() < 4096 {
        if u.arbitrary::<bool>().unwrap_or(false) && !base.is_empty() {
            let off = u.int_in_range(0..=base.len() - 1).unwrap_or(0);
            let len = u.int_in_range(1..=(base.len() - off).min(0xffff)).unwrap_or(1);
            let mut op = 0x80u8;
            let mut args = Vec::new();
            for i in 0..4 {
                let b = (off >> (8 * i)) as u8;
                if b != 0 {
                    op |= 1 << i;
                    args.push(b);
                }
            }
            for i in 0..3 {
                let b = ((if len == 0x10000 { 0 } else { len }) >> (8 * i)) as u8;
                if b != 0 {
                    op |= 0x10 << i;
                    args.push(b);
                }
            }
            ops.push(op);
            ops.extend(args);
            total += len as u64;
        } else {
            let n = u.int_in_range(1..=127u8).unwrap_or(1);
            let bytes = u.bytes(n as usize).unwrap_or(&[]);
            if bytes.is_empty() {
                break;
            }
            ops.push(bytes.len() as u8);
            ops.extend_from_slice(bytes);
            total += bytes.len() as u64;
        }
    }
    let mut d = Vec::new();
    varint(base.len() as u64, &mut d);
    varint(total, &mut d);
    d.extend(ops);
    d
}

fn delta_target(input: &[u8]) -> Verdict {
    if input.len() < 2 {
        return Ok(Accepted::Refused);
    }
    let blen = (u16::from_le_bytes([input[0], input[1]]) as usize % 1025).min(input.len() - 2);
    let (base, rest) = input[2..].split_at(blen);
    // Half the inputs (by their second byte) describe a delta rather than being one.
    let built;
    let d = if input[1] & 0x80 != 0 {
        built = structured_delta(base, &mut Unstructured::new(rest));
        &built[..]
    } else {
        rest
    };
    let got = delta::apply(base, d);
    let want = reference_apply(base, d);
    match (got, want) {
        (Ok(a), Some(b)) => check(a == b && Some(a.len() as u64) == delta::sizes(d).ok().map(|s| s.1), || "result differs from the reference".into()).map(|_| Accepted::Parsed),
        (Err(e), None) => {
            let _typed: DeltaError = e;
            Ok(Accepted::Refused)
        }
        (Ok(_), None) => Err("accepted a delta the reference refuses".into()),
        (Err(e), Some(_)) => Err(format!("refused a delta the reference applies: {}", e)),
    }
}

// ---- trees, commits, tags ------------------------------------------------------------------

fn tree_seeds() -> Vec<Vec<u8>> {
    let entry = |mode: &str, name: &[u8]| [format!("{} ", mode).as_bytes(), name, b"\0", &[0x5a; 20]].concat();
    vec![
        [entry("100644", b"a.txt"), entry("40000", b"dir"), entry("120000", b"link"), entry("160000", b"sub")].concat(),
        entry("100755", b"run.sh"),
        entry("100644", b".git"),
        entry("100644", b"../x"),
        entry("40000", b"git~1"),
        vec![],
    ]
}

/// Parses a tree with and without the name checks; a parsed tree re-encodes to its bytes
/// (modes written as git writes them: no leading zero).
fn tree(input: &[u8]) -> Verdict {
    let id = [7u8; 20];
    let loose = parse::tree(input, &id, false);
    match parse::tree(input, &id, true) {
        Ok(entries) => {
            check(loose.as_ref().map(|l| l == &entries).unwrap_or(false), || "the checked parse differs from the unchecked one".into())?;
            let mut enc = Vec::new();
            for e in &entries {
                // Names are bytes, as in git: only unsafe ones are refused, UTF-8 or not.
                check(!parse::unsafe_name(e.name), || format!("unsafe name {:?} accepted", e.name))?;
                enc.extend(format!("{:o} ", e.mode).as_bytes());
                enc.extend(e.name);
                enc.push(0);
                enc.extend(e.oid);
            }
            // git never writes a mode with a leading zero (it reads one): only such input may
            // re-encode differently.
            if !has_zero_padded_mode(input, &entries) {
                check(enc == input, || "re-encoding differs".into())?;
                check(parse::tree(&enc, &id, true).map(|again| again == entries).unwrap_or(false), || "re-encoding parses differently".into())?;
            }
            Ok(Accepted::Parsed)
        }
        Err(e) => check(e.kind == ErrorKind::BadPack, || format!("untyped error {}", e)).map(|_| Accepted::Refused),
    }
}

/// Whether some entry's mode text has a leading zero (git never writes one; it parses).
fn has_zero_padded_mode(input: &[u8], entries: &[parse::TreeEntry]) -> bool {
    let mut at = 0;
    for e in entries {
        if input.get(at) == Some(&b'0') {
            return true;
        }
        let sp = input[at..].iter().position(|&b| b == b' ').unwrap_or(0);
        at += sp + 1 + e.name.len() + 1 + 20;
    }
    false
}

fn commit_seeds() -> Vec<Vec<u8>> {
    let t = "1".repeat(40);
    vec![
        format!("tree {}\nparent {}\nauthor A <a@x> 1 +0000\ncommitter C <c@x> 1700000123 -0130\ngpgsig -----BEGIN\n more\n\nmsg\n", t, t).into_bytes(),
        format!("object {}\ntype commit\ntag v1\ntagger T <t@x> 5 +0000\n\nmsg", t).into_bytes(),
        b"tree zz\n\n".to_vec(),
    ]
}

fn commit(input: &[u8]) -> Verdict {
    let id = [3u8; 20];
    let c = parse::commit(input, &id);
    let t = parse::tag(input, &id);
    for e in [c.as_ref().err(), t.as_ref().err()].into_iter().flatten() {
        check(e.kind == ErrorKind::BadPack, || format!("untyped error {}", e))?;
    }
    if let Ok(c) = &c {
        // The tree and parents it reports are ones the text names, in hex.
        let text = String::from_utf8_lossy(input);
        check(text.contains(&crate::oid::hex(&c.tree)), || "tree id not in the text".into())?;
    }
    Ok(if c.is_ok() || t.is_ok() { Accepted::Parsed } else { Accepted::Refused })
}

// ---- the index file ------------------------------------------------------------------------

fn index_seeds() -> Vec<Vec<u8>> {
    vec![b"a.txt\x01dir/b\x02dir/c\x03".repeat(3), vec![b'p'; 5000], vec![]]
}

/// Entries built from the input (paths as checked tree names allow: no NUL), encoded, then
/// read back with an independent reader of gitformat-index v2: the same entries come back.
fn index_file_target(input: &[u8]) -> Verdict {
    let mut u = Unstructured::new(input);
    let mut owned: Vec<(Vec<u8>, u32, [u8; 20], Option<Stat>)> = Vec::new();
    while !u.is_empty() && owned.len() < 200 {
        // Mostly short paths (duplicates among them), sometimes past the 12-bit length field.
        let long = u.ratio(1u8, 8).unwrap_or(false);
        let len = u.int_in_range(0..=if long { 5000usize } else { 3 }).unwrap_or(0).min(u.len());
        let mut path: Vec<u8> = u.bytes(len).unwrap_or(&[]).iter().map(|&b| if b == 0 { b'/' } else { b }).collect();
        if path.is_empty() {
            path.push(b'x');
        }
        let mode = *u.choose(&[0o100644u32, 0o100755, 0o120000, 0o160000]).unwrap_or(&0o100644);
        let oid: [u8; 20] = u.arbitrary().unwrap_or([0; 20]);
        let stat = if u.arbitrary().unwrap_or(false) {
            Some(Stat { ctime_sec: u.arbitrary().unwrap_or(0), mtime_nsec: u.arbitrary().unwrap_or(0), size: u.arbitrary().unwrap_or(0), ino: u.arbitrary().unwrap_or(0), ..Default::default() })
        } else {
            None
        };
        owned.push((path, mode, oid, stat));
    }
    let mut entries: Vec<index_file::Entry> = owned.iter().map(|(p, m, o, s)| index_file::Entry { path: p, mode: *m, oid: *o, stat: *s }).collect();
    let bytes = match index_file::encode(&mut entries) {
        Ok(b) => b,
        Err(e) => {
            let mut paths: Vec<&[u8]> = owned.iter().map(|o| &o.0[..]).collect();
            paths.sort();
            check(paths.windows(2).any(|w| w[0] == w[1]), || format!("refused entries without duplicates: {}", e))?;
            return Ok(Accepted::Refused);
        }
    };
    let back = read_index(&bytes).map_err(|e| format!("our index does not read back: {}", e))?;
    check(back.len() == entries.len(), || "entry count differs".into())?;
    for (e, (p, m, o)) in entries.iter().zip(&back) {
        check(e.path == &p[..] && e.mode == *m && e.oid == *o, || format!("entry {:?} reads back differently", String::from_utf8_lossy(e.path)))?;
    }
    Ok(Accepted::Parsed)
}

/// gitformat-index v2, as git reads it: header, entries (62 fixed bytes, name, NUL padding to a
/// multiple of 8; names of 0xfff bytes or more run to their NUL), SHA-1 of it all.
fn read_index(b: &[u8]) -> Result<Vec<(Vec<u8>, u32, [u8; 20])>, String> {
    use sha1::{Digest, Sha1};
    let be32 = |at: usize| -> Result<u32, String> { b.get(at..at + 4).map(|s| u32::from_be_bytes(s.try_into().unwrap())).ok_or_else(|| "truncated".to_string()) };
    if b.len() < 32 || &b[..4] != b"DIRC" || be32(4)? != 2 {
        return Err("bad header".into());
    }
    if Sha1::digest(&b[..b.len() - 20])[..] != b[b.len() - 20..] {
        return Err("bad checksum".into());
    }
    let n = be32(8)? as usize;
    let mut at = 12;
    let mut out = Vec::new();
    for _ in 0..n {
        let mode = be32(at + 24)?;
        let oid: [u8; 20] = b.get(at + 40..at + 60).ok_or("truncated")?.try_into().unwrap();
        let flags = u16::from_be_bytes(b.get(at + 60..at + 62).ok_or("truncated")?.try_into().unwrap()) as usize;
        let name_at = at + 62;
        let len = if flags & 0xfff < 0xfff { flags & 0xfff } else { b[name_at..].iter().position(|&c| c == 0).ok_or("unterminated name")? };
        let name = b.get(name_at..name_at + len).ok_or("truncated name")?.to_vec();
        if b.get(name_at + len) != Some(&0) {
            return Err("name not NUL-terminated".into());
        }
        at += (62 + len + 8) & !7;
        out.push((name, mode, oid));
    }
    if at + 20 != b.len() {
        return Err("trailing bytes".into());
    }
    if out.windows(2).any(|w| w[0].0 >= w[1].0) {
        return Err("entries not sorted".into());
    }
    Ok(out)
}
