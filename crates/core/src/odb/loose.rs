//! Loose objects: objects/xx/yyyy..., zlib("<type> <size>\0<content>").

use super::{Object, Error, Result};
use crate::pack::entry::{OBJ_BLOB, OBJ_COMMIT, OBJ_TAG, OBJ_TREE};
use crate::oid::hex;
#[cfg(feature = "native")]
use flate2::{Decompress, FlushDecompress, Status};
use std::path::{Path, PathBuf};

/// Longest "<type> <size>\0" header we accept ("commit" + 20 digits + 2).
const MAX_HEADER: usize = 32;

pub fn path(objects_dir: &Path, oid: &[u8; 20]) -> PathBuf {
    let h = hex(oid);
    objects_dir.join(&h[..2]).join(&h[2..])
}

/// The object in the loose file `path`, or None when there is no such file.
pub fn read(path: &Path) -> Result<Option<Object>> {
    let raw = match super::sys::read_file(path) {
        Ok(r) => r,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(&e, format!("reading {}", path.display()))),
    };
    decode(&raw).map(Some).map_err(|why| Error::bad(format!("loose object {} is corrupt ({}); run `git fsck` on the repository", path.display(), why)))
}

/// The "<type> <size>\0" header at the start of `head`: (type, size, where the NUL is).
fn header(head: &[u8], raw_len: usize) -> std::result::Result<(u8, usize, usize), String> {
    let nul = head.iter().position(|&b| b == 0).ok_or("bad header")?;
    let text = std::str::from_utf8(&head[..nul]).map_err(|_| "bad header")?;
    let (name, size) = text.split_once(' ').ok_or("bad header")?;
    let kind = match name {
        "commit" => OBJ_COMMIT,
        "tree" => OBJ_TREE,
        "blob" => OBJ_BLOB,
        "tag" => OBJ_TAG,
        _ => return Err("bad header".into()),
    };
    if size.is_empty() || !size.bytes().all(|c| c.is_ascii_digit()) {
        return Err("bad header".into());
    }
    let size: usize = size.parse().map_err(|_| "size too large")?;
    if size > crate::pack::entry::max_inflated(raw_len) {
        return Err(format!("its header says {} bytes, more than its {} compressed bytes can hold", size, raw_len));
    }
    Ok((kind, size, nul))
}

/// Without zlib (the WebAssembly core): miniz_oxide inflates the whole stream (bounded by what
/// its compressed size can hold), then the header is checked as natively.
#[cfg(not(feature = "native"))]
pub(crate) fn decode(raw: &[u8]) -> std::result::Result<Object, String> {
    use miniz_oxide::inflate::decompress_to_vec_zlib_with_limit;
    let limit = MAX_HEADER + crate::pack::entry::max_inflated(raw.len());
    let all = decompress_to_vec_zlib_with_limit(raw, limit).map_err(|e| match e.status {
        miniz_oxide::inflate::TINFLStatus::FailedCannotMakeProgress => "truncated".to_string(),
        s => format!("bad zlib data: {:?}", s),
    })?;
    let (kind, size, nul) = header(&all[..all.len().min(MAX_HEADER)], raw.len())?;
    let body = all.len() - nul - 1;
    if body > size {
        return Err(format!("longer than the {} bytes its header says", size));
    }
    if body != size {
        return Err(format!("{} bytes where its header says {}", body, size));
    }
    Ok(Object { kind, data: all[nul + 1..].to_vec() })
}

#[cfg(feature = "native")]
pub(crate) fn decode(raw: &[u8]) -> std::result::Result<Object, String> {
    let mut z = Decompress::new(true);
    let mut head = [0u8; MAX_HEADER];
    let st = z.decompress(raw, &mut head, FlushDecompress::None).map_err(|e| format!("bad zlib data: {}", e))?;
    let got = z.total_out() as usize;
    let (kind, size, nul) = header(&head[..got], raw.len())?;
    let mut data = Vec::new();
    data.try_reserve_exact(size).map_err(|_| format!("cannot allocate {} bytes", size))?;
    let first = &head[nul + 1..got];
    if first.len() > size {
        return Err(format!("longer than the {} bytes its header says", size));
    }
    data.extend_from_slice(first);
    let mut ended = st == Status::StreamEnd;
    while !ended {
        let before = (z.total_in(), data.len());
        let input = &raw[z.total_in() as usize..];
        if data.len() == size {
            // Only the end of the stream may follow.
            let mut probe = [0u8; 1];
            let st = z.decompress(input, &mut probe, FlushDecompress::Finish).map_err(|e| format!("bad zlib data: {}", e))?;
            if z.total_out() as usize != nul + 1 + size {
                return Err(format!("longer than the {} bytes its header says", size));
            }
            ended = st == Status::StreamEnd;
        } else {
            let st = z.decompress_vec(input, &mut data, FlushDecompress::Finish).map_err(|e| format!("bad zlib data: {}", e))?;
            ended = st == Status::StreamEnd;
        }
        if !ended && (z.total_in(), data.len()) == before {
            return Err("truncated".into());
        }
    }
    if data.len() != size {
        return Err(format!("{} bytes where its header says {}", data.len(), size));
    }
    Ok(Object { kind, data })
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{write::ZlibEncoder, Compression};
    use std::io::Write;

    fn z(b: &[u8]) -> Vec<u8> {
        let mut e = ZlibEncoder::new(Vec::new(), Compression::default());
        e.write_all(b).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn decodes_and_refuses_bad_headers_and_sizes() {
        let big: Vec<u8> = (0..100_000u32).map(|i| (i * 31 % 253) as u8).collect();
        let mut raw = b"blob 100000\0".to_vec();
        raw.extend_from_slice(&big);
        assert_eq!(decode(&z(&raw)).unwrap(), Object { kind: OBJ_BLOB, data: big });
        assert_eq!(decode(&z(b"tree 0\0")).unwrap(), Object { kind: OBJ_TREE, data: vec![] });
        assert!(decode(&z(b"blob 3\0abcd")).unwrap_err().contains("longer"));
        assert!(decode(&z(b"blob 5\0abcd")).is_err());
        assert!(decode(&z(b"blob x\0abcd")).is_err());
        assert!(decode(&z(b"thing 4\0abcd")).is_err());
        let good = z(b"blob 4\0abcd");
        assert!(decode(&good[..good.len() - 3]).is_err());
        assert!(decode(b"not zlib at all").is_err());
    }
}
