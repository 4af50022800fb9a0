//! Input generation: byte-level mutations of corpus inputs (bit flips, interesting values,
//! inserted / deleted / duplicated ranges, splices of two inputs, truncation), or fresh random
//! bytes. Deterministic for a seed (ChaCha8).

use rand_chacha::ChaCha8Rng;
use rand_core::RngCore;

pub type Rng = ChaCha8Rng;

pub fn below(rng: &mut Rng, n: usize) -> usize {
    if n <= 1 {
        0
    } else {
        (rng.next_u64() % n as u64) as usize
    }
}

const INTERESTING8: [u8; 9] = [0, 1, 0x0f, 0x10, 0x7f, 0x80, 0x81, 0xfe, 0xff];
const INTERESTING32: [u32; 8] = [0, 1, 0x7f, 0x8000, 0x7fff_ffff, 0x8000_0000, 0xffff_fffe, 0xffff_ffff];

/// A new input: usually a mutation of a corpus input, sometimes random bytes.
pub fn next_input(rng: &mut Rng, corpus: &[Vec<u8>], max_len: usize) -> Vec<u8> {
    if corpus.is_empty() || below(rng, 16) == 0 {
        let len = below(rng, max_len.min(4096) + 1);
        let mut v = vec![0u8; len];
        rng.fill_bytes(&mut v);
        return v;
    }
    let mut v = corpus[below(rng, corpus.len())].clone();
    let rounds = 1 + below(rng, 6);
    for _ in 0..rounds {
        mutate_once(rng, &mut v, corpus, max_len);
    }
    v.truncate(max_len);
    v
}

fn mutate_once(rng: &mut Rng, v: &mut Vec<u8>, corpus: &[Vec<u8>], max_len: usize) {
    let len = v.len();
    match below(rng, 11) {
        0 | 1 if len > 0 => {
            let at = below(rng, len);
            v[at] ^= 1 << below(rng, 8);
        }
        2 if len > 0 => {
            let at = below(rng, len);
            v[at] = INTERESTING8[below(rng, INTERESTING8.len())];
        }
        3 if len > 0 => {
            let at = below(rng, len);
            v[at] = v[at].wrapping_add(if below(rng, 2) == 0 { 1 } else { 255 });
        }
        4 if len >= 4 => {
            let at = below(rng, len - 3);
            let x = INTERESTING32[below(rng, INTERESTING32.len())];
            let b = if below(rng, 2) == 0 { x.to_be_bytes() } else { x.to_le_bytes() };
            v[at..at + 4].copy_from_slice(&b);
        }
        5 if len < max_len => {
            let at = below(rng, len + 1);
            let n = 1 + below(rng, 16);
            let mut ins = vec![0u8; n];
            rng.fill_bytes(&mut ins);
            v.splice(at..at, ins);
        }
        6 if len > 0 => {
            let at = below(rng, len);
            let n = 1 + below(rng, (len - at).min(64));
            v.drain(at..at + n);
        }
        7 if len > 0 && len < max_len => {
            // Duplicate a range somewhere else (repeated entries, lengths that no longer match).
            let at = below(rng, len);
            let n = 1 + below(rng, (len - at).min(256));
            let chunk = v[at..at + n].to_vec();
            let to = below(rng, len + 1);
            v.splice(to..to, chunk);
        }
        8 if !corpus.is_empty() => {
            // Splice: a prefix of this input and a suffix of another.
            let other = &corpus[below(rng, corpus.len())];
            let cut = below(rng, len + 1);
            let from = below(rng, other.len() + 1);
            v.truncate(cut);
            v.extend_from_slice(&other[from..]);
        }
        9 if len > 0 => v.truncate(below(rng, len)),
        _ if len > 0 => {
            // Overwrite a run with one byte value (zero runs, 0xff runs).
            let at = below(rng, len);
            let n = 1 + below(rng, (len - at).min(32));
            let b = INTERESTING8[below(rng, INTERESTING8.len())];
            v[at..at + n].fill(b);
        }
        _ => v.push(rng.next_u32() as u8),
    }
}
