use super::*;
use sha1::Digest;

fn backends() -> Vec<Backend> {
    [Backend::Portable, Backend::ShaNi, Backend::ShaNiAvx512].into_iter().filter(|b| b.supported()).collect()
}

fn hash(backend: Backend, chunks: &[&[u8]]) -> Result<[u8; 20], Collision> {
    let mut h = Sha1Dc::with_backend(backend);
    for c in chunks {
        h.update(c);
    }
    h.finalize()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{:02x}", x)).collect()
}

/// A deterministic byte stream (xorshift), so failures reproduce.
fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

#[test]
fn nist_and_classic_vectors() {
    let cases: [(&[u8], &str); 4] = [
        (b"", "da39a3ee5e6b4b0d3255bfef95601890afd80709"),
        (b"abc", "a9993e364706816aba3e25717850c26c9cd0d89d"),
        (b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", "84983e441c3bd26ebaae4aa1f95129e5e54670f1"),
        (b"\x9e\x61\xe5\x5d\x9e\xd3\x7b\x1c\x20", "411ccee1f6e3677df12698411eb09d3ff580af97"),
    ];
    for backend in backends() {
        for (input, want) in cases {
            assert_eq!(hex(&hash(backend, &[input]).unwrap()), want, "{:?} {:?}", backend, input);
        }
        let million_a = vec![b'a'; 1_000_000];
        assert_eq!(hex(&hash(backend, &[&million_a]).unwrap()), "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
    }
}

#[test]
fn matches_sha1_and_the_reference_sha1dc_on_random_input_and_splits() {
    for (i, len) in [0usize, 1, 55, 56, 63, 64, 65, 119, 120, 127, 128, 129, 1000, 4096, 100_003].into_iter().enumerate() {
        let data = bytes(i as u64 + 7, len);
        let want: [u8; 20] = sha1::Sha1::digest(&data).into();
        let mut reference = sha1collisiondetection::Sha1CD::default();
        reference.update(&data);
        assert_eq!(reference.finalize_cd().unwrap().as_slice(), &want);
        for backend in backends() {
            assert_eq!(hash(backend, &[&data]).unwrap(), want, "{:?} len {}", backend, len);
            // Odd splits exercise the partial-block buffer.
            for cut in [1usize, 3, 63, 64, 65] {
                if cut <= len {
                    let (a, b) = data.split_at(cut);
                    let (b1, b2) = b.split_at(b.len() / 2);
                    assert_eq!(hash(backend, &[a, b1, b2]).unwrap(), want, "{:?} len {} cut {}", backend, len, cut);
                }
            }
        }
    }
}

#[test]
fn sha_instructions_capture_the_words_and_states_sha1dc_checks() {
    if !Backend::ShaNi.supported() {
        return; // the portable backend expands and keeps states in sha1dc's own C
    }
    for seed in 0..2000u64 {
        let block = bytes(seed * 31 + 1, 64);
        let mut want = [0u32; 80];
        let (mut want58, mut want65) = ([0u32; 5], [0u32; 5]);
        unsafe { mpgit_sha1dc_expand(block.as_ptr(), want.as_mut_ptr()) };
        unsafe { mpgit_sha1dc_states(block.as_ptr(), want58.as_mut_ptr(), want65.as_mut_ptr()) };
        let (got, s58, s65) = unsafe { ni::captured(&block) };
        assert_eq!(&got[..], &want[..], "block seed {}", seed);
        assert_eq!((s58, s65), (want58, want65), "block seed {}", seed);
    }
}

/// The bit conditions as sha1dc's C evaluates them.
fn c_ubc(w: &[u32; 80]) -> u32 {
    unsafe { mpgit_sha1dc_ubc(w.as_ptr()) }
}

/// The condition table evaluated plainly.
fn table_ubc(w: &[u32; 80]) -> u32 {
    let mut mask = !0u32;
    for &(i, x, j, y, c, dvs) in ubc::CONDITIONS.iter() {
        if ((w[i as usize] >> x) ^ (w[j as usize] >> y)) & 1 == c as u32 {
            mask &= !dvs;
        }
    }
    mask
}

#[test]
fn condition_table_and_avx512_agree_with_sha1dc() {
    #[cfg(mpgit_avx512)]
    let avx512 = Backend::ShaNiAvx512.supported();
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        (rng >> 16) as u32
    };
    let check = |w: &[u32; 80]| {
        let want = c_ubc(w);
        assert_eq!(table_ubc(w), want, "table vs sha1dc on {:08x?}", &w[35..65]);
        #[cfg(mpgit_avx512)]
        if avx512 {
            assert_eq!(unsafe { ni::ubc_words(w) }, want, "AVX-512 vs sha1dc on {:08x?}", &w[35..65]);
        }
        want
    };
    let mut w = [0u32; 80];
    for _ in 0..20_000 {
        w.iter_mut().for_each(|x| *x = next());
        check(&w);
    }
    // Messages meeting every condition of one disturbance vector (random ones rarely do),
    // and each single-bit change of them: each condition must clear exactly its vectors.
    for dv in 0..32 {
        let mut met = 0;
        for _ in 0..20 {
            w.iter_mut().for_each(|x| *x = next());
            for _ in 0..200 {
                let mut violated = false;
                for &(i, x, j, y, c, dvs) in ubc::CONDITIONS.iter() {
                    if dvs >> dv & 1 == 1 && ((w[i as usize] >> x) ^ (w[j as usize] >> y)) & 1 == c as u32 {
                        violated = true;
                        if next() & 1 == 0 {
                            w[i as usize] ^= 1 << x;
                        } else {
                            w[j as usize] ^= 1 << y;
                        }
                    }
                }
                if !violated {
                    break;
                }
            }
            if check(&w) >> dv & 1 == 1 {
                met += 1;
            }
            for word in 35..=64 {
                for bit in 0..32 {
                    w[word] ^= 1 << bit;
                    check(&w);
                    w[word] ^= 1 << bit;
                }
            }
        }
        assert!(met > 0, "no message met the conditions of vector {}", dv);
    }
}

extern "C" {
    fn mpgit_sha1dc_expand(block: *const u8, w: *mut u32);
    fn mpgit_sha1dc_states(block: *const u8, s58: *mut u32, s65: *mut u32);
    fn mpgit_sha1dc_ubc(w: *const u32) -> u32;
}

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/src/pack/sha1dc/testdata/{}", env!("CARGO_MANIFEST_DIR"), name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("test fixture {}: {}", path, e))
}

/// Two fixtures that plain SHA-1 gives the same digest (checked), each detected as a
/// collision by every backend. Returns the first.
fn both_detected(a: &str, b: &str) -> Vec<u8> {
    let (a, b) = (fixture(a), fixture(b));
    assert_ne!(a, b);
    assert_eq!(sha1::Sha1::digest(&a), sha1::Sha1::digest(&b));
    for backend in backends() {
        assert_eq!(hash(backend, &[&a]), Err(Collision), "{:?}", backend);
        assert_eq!(hash(backend, &[&b]), Err(Collision), "{:?}", backend);
    }
    a
}

#[test]
fn detects_the_shattered_collision() {
    // The first 320 bytes of the two SHAttered PDFs: a shared prefix, then the two
    // near-collision blocks.
    let a = both_detected("shattered-1.prefix", "shattered-2.prefix");
    for backend in backends() {
        // Detection does not depend on how the input is split.
        assert_eq!(hash(backend, &[&a[..100], &a[100..]]), Err(Collision), "{:?}", backend);
        // The shared prefix alone is harmless.
        assert!(hash(backend, &[&a[..192]]).is_ok());
    }
}

#[test]
fn detects_the_sha_mbles_chosen_prefix_collision() {
    both_detected("sha-mbles-1.bin", "sha-mbles-2.bin");
}
