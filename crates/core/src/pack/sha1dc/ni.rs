//! SHA-1 compression with the x86 SHA extensions, keeping what sha1dc's collision checks need.
//!
//! The SHA instructions compute the message schedule four words at a time (sha1msg1/2) in the
//! vector that the next four rounds consume, so the words the bit conditions read (W[35..=64])
//! come for free, and so do the states the rare recompression starts from (every fourth
//! step's state is the ABCD register). With AVX-512 the bit conditions are checked 16 at a
//! time from a table (`ubc`); without it, by sha1dc's C `ubc_check`.

#[cfg(mpgit_avx512)]
use super::ubc::CONDITIONS;
use std::arch::x86_64::*;

extern "C" {
    fn mpgit_sha1dc_ubc(w: *const u32) -> u32;
    fn mpgit_sha1dc_check_states(m1: *const u32, s58: *const u32, s65: *const u32, ihv_out: *const u32, mask: u32) -> i32;
}

/// What one block's compression keeps for the collision checks.
struct Captured {
    /// W[4k..4k+4] for k = 8..=16, in order.
    w: [__m128i; 9],
    /// The ABCD register after groups 12..=15: the states before steps 52, 56, 60, 64.
    abcd: [__m128i; 4],
}

/// Four rounds (group `K` of 20) with round function `F` = K / 5, keeping the message schedule
/// going: after group K, m[(K+1) % 4] holds W[4K+4..4K+8].
#[inline(always)]
unsafe fn group<const K: usize, const F: i32>(abcd: &mut __m128i, e: &mut [__m128i; 2], m: &mut [__m128i; 4], cap: &mut Captured) {
    let cur = K % 2;
    let other = (K + 1) % 2;
    if K == 0 {
        e[0] = _mm_add_epi32(e[0], m[0]);
    } else {
        e[cur] = _mm_sha1nexte_epu32(e[cur], m[K % 4]);
    }
    if (8..=16).contains(&K) {
        // m[K % 4] is W[4K..4K+4], highest lane first.
        cap.w[K - 8] = _mm_shuffle_epi32(m[K % 4], 0x1B);
    }
    e[other] = *abcd;
    if (3..=18).contains(&K) {
        m[(K + 1) % 4] = _mm_sha1msg2_epu32(m[(K + 1) % 4], m[K % 4]);
    }
    *abcd = _mm_sha1rnds4_epu32::<F>(*abcd, e[cur]);
    if (12..=15).contains(&K) {
        cap.abcd[K - 12] = *abcd;
    }
    if (1..=16).contains(&K) {
        m[(K + 3) % 4] = _mm_sha1msg1_epu32(m[(K + 3) % 4], m[K % 4]);
    }
    if (2..=17).contains(&K) {
        m[(K + 2) % 4] = _mm_xor_si128(m[(K + 2) % 4], m[K % 4]);
    }
}

/// One block: the new (abcd, e); `cap` gets what the checks need.
#[inline(always)]
unsafe fn block(abcd_in: __m128i, e_in: __m128i, block: &[u8], cap: &mut Captured) -> (__m128i, __m128i) {
    let bswap = _mm_set_epi64x(0x0001_0203_0405_0607, 0x0809_0a0b_0c0d_0e0f);
    let p = block.as_ptr() as *const __m128i;
    let mut m = [
        _mm_shuffle_epi8(_mm_loadu_si128(p), bswap),
        _mm_shuffle_epi8(_mm_loadu_si128(p.add(1)), bswap),
        _mm_shuffle_epi8(_mm_loadu_si128(p.add(2)), bswap),
        _mm_shuffle_epi8(_mm_loadu_si128(p.add(3)), bswap),
    ];
    let mut abcd = abcd_in;
    let mut e = [e_in, abcd_in];
    group::<0, 0>(&mut abcd, &mut e, &mut m, cap);
    group::<1, 0>(&mut abcd, &mut e, &mut m, cap);
    group::<2, 0>(&mut abcd, &mut e, &mut m, cap);
    group::<3, 0>(&mut abcd, &mut e, &mut m, cap);
    group::<4, 0>(&mut abcd, &mut e, &mut m, cap);
    group::<5, 1>(&mut abcd, &mut e, &mut m, cap);
    group::<6, 1>(&mut abcd, &mut e, &mut m, cap);
    group::<7, 1>(&mut abcd, &mut e, &mut m, cap);
    group::<8, 1>(&mut abcd, &mut e, &mut m, cap);
    group::<9, 1>(&mut abcd, &mut e, &mut m, cap);
    group::<10, 2>(&mut abcd, &mut e, &mut m, cap);
    group::<11, 2>(&mut abcd, &mut e, &mut m, cap);
    group::<12, 2>(&mut abcd, &mut e, &mut m, cap);
    group::<13, 2>(&mut abcd, &mut e, &mut m, cap);
    group::<14, 2>(&mut abcd, &mut e, &mut m, cap);
    group::<15, 3>(&mut abcd, &mut e, &mut m, cap);
    group::<16, 3>(&mut abcd, &mut e, &mut m, cap);
    group::<17, 3>(&mut abcd, &mut e, &mut m, cap);
    group::<18, 3>(&mut abcd, &mut e, &mut m, cap);
    group::<19, 3>(&mut abcd, &mut e, &mut m, cap);
    // After group 19, e[0] holds the state before it: its A, rotated, is the new E.
    (_mm_add_epi32(abcd, abcd_in), _mm_sha1nexte_epu32(e[0], e_in))
}

#[inline(always)]
unsafe fn lanes(v: __m128i) -> [u32; 4] {
    let mut l = [0u32; 4];
    _mm_storeu_si128(l.as_mut_ptr() as *mut __m128i, v);
    l
}

#[inline(always)]
unsafe fn ihv(abcd: __m128i, e: __m128i) -> [u32; 5] {
    let l = lanes(abcd);
    [l[3], l[2], l[1], l[0], _mm_extract_epi32(e, 3) as u32]
}

/// The recompression check for a block that met bit conditions `mask` (rare: a few percent of
/// random blocks). `abcd` are the captured registers' lanes.
#[cold]
#[inline(never)]
#[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
// The inner unsafe block is what newer rustc asks for (unsafe_op_in_unsafe_fn); 1.63 calls it unused.
#[allow(unused_unsafe)]
unsafe fn near_collision(block: &[u8], abcd: [[u32; 4]; 4], ihv_out: [u32; 5], mask: u32) -> bool {
    let (m1, s58, s65) = states(block, abcd);
    // SAFETY: m1 is 80 words, the states and ihv_out 5 each.
    unsafe { mpgit_sha1dc_check_states(m1.as_ptr(), s58.as_ptr(), s65.as_ptr(), ihv_out.as_ptr(), mask) != 0 }
}

/// The expanded message, and the states before steps 58 and 65 laid out as sha1dc's C keeps
/// them (its variables rotate with the step: slot j holds role (j + t) % 5).
#[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
unsafe fn states(block: &[u8], abcd: [[u32; 4]; 4]) -> ([u32; 80], [u32; 5], [u32; 5]) {
    let w = schedule(block);
    // (A, B, C, D) before step 4k+4 is the register after group k; E is A four steps back,
    // rotated.
    let state = |reg: [u32; 4], prev: [u32; 4]| [reg[3], reg[2], reg[1], reg[0], prev[3].rotate_left(30)];
    let step = |s: &mut [u32; 5], f: u32, k: u32, w: u32| {
        let t = s[0].rotate_left(5).wrapping_add(f).wrapping_add(s[4]).wrapping_add(k).wrapping_add(w);
        *s = [t, s[0], s[1].rotate_left(30), s[2], s[3]];
    };
    let maj = |s: &[u32; 5]| (s[1] & s[2]) | (s[1] & s[3]) | (s[2] & s[3]);
    let parity = |s: &[u32; 5]| s[1] ^ s[2] ^ s[3];
    let mut s = state(abcd[1], abcd[0]);
    for &wt in &w[56..58] {
        let f = maj(&s);
        step(&mut s, f, 0x8F1B_BCDC, wt);
    }
    let s58 = [s[3], s[4], s[0], s[1], s[2]];
    let mut s = state(abcd[3], abcd[2]);
    let f = parity(&s);
    step(&mut s, f, 0xCA62_C1D6, w[64]);
    (w, s58, s)
}

/// The whole message schedule W[0..80] of a block, four words at a time with sha1msg1/2.
#[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
unsafe fn schedule(block: &[u8]) -> [u32; 80] {
    let bswap = _mm_set_epi64x(0x0001_0203_0405_0607, 0x0809_0a0b_0c0d_0e0f);
    let p = block.as_ptr() as *const __m128i;
    // v[k] holds W[4k..4k+4], highest lane first (the instructions' order).
    let mut v = [_mm_setzero_si128(); 20];
    for (k, vk) in v.iter_mut().take(4).enumerate() {
        *vk = _mm_shuffle_epi8(_mm_loadu_si128(p.add(k)), bswap);
    }
    for k in 4..20 {
        let t = _mm_xor_si128(_mm_sha1msg1_epu32(v[k - 4], v[k - 3]), v[k - 2]);
        v[k] = _mm_sha1msg2_epu32(t, v[k - 1]);
    }
    let mut w = [0u32; 80];
    for (k, vk) in v.iter().enumerate() {
        _mm_storeu_si128(w.as_mut_ptr().add(4 * k) as *mut __m128i, _mm_shuffle_epi32(*vk, 0x1B));
    }
    w
}

// The AVX-512 check is built where rustc has AVX-512 (1.89 and later: `mpgit_avx512`, set by
// build.rs); older compilers (the MSRV, 1.63) build the SHA-NI path with sha1dc's C check only.

/// The condition table as AVX-512 lanes: 16 conditions per group.
#[cfg(mpgit_avx512)]
const GROUPS: usize = (CONDITIONS.len() + 15) / 16;

#[cfg(mpgit_avx512)]
#[repr(C, align(64))]
struct Lanes {
    i: [[i32; 16]; GROUPS],
    x: [[u32; 16]; GROUPS],
    j: [[i32; 16]; GROUPS],
    y: [[u32; 16]; GROUPS],
    c: [[u32; 16]; GROUPS],
    dvs: [[u32; 16]; GROUPS],
}

/// Word indices are relative to W[33]: the checks read W[35..=64], two registers' worth.
#[cfg(mpgit_avx512)]
const W_BASE: u8 = 33;

#[cfg(mpgit_avx512)]
const LANES: Lanes = {
    let mut l = Lanes {
        i: [[0; 16]; GROUPS],
        x: [[0; 16]; GROUPS],
        j: [[0; 16]; GROUPS],
        y: [[0; 16]; GROUPS],
        // Padding lanes compare bit 0 of 0 with 1: never met.
        c: [[1; 16]; GROUPS],
        dvs: [[0; 16]; GROUPS],
    };
    let mut k = 0;
    while k < CONDITIONS.len() {
        let (i, x, j, y, c, dvs) = CONDITIONS[k];
        assert!(i >= W_BASE && i < W_BASE + 32 && j >= W_BASE && j < W_BASE + 32);
        let (g, lane) = (k / 16, k % 16);
        l.i[g][lane] = (i - W_BASE) as i32;
        l.x[g][lane] = x as u32;
        l.j[g][lane] = (j - W_BASE) as i32;
        l.y[g][lane] = y as u32;
        l.c[g][lane] = c as u32;
        l.dvs[g][lane] = dvs;
        k += 1;
    }
    l
};

#[cfg(mpgit_avx512)]
static TABLE: Lanes = LANES;

/// The disturbance vectors whose conditions W[33..49] (`lo`) and W[49..65] (`hi`) meet.
#[cfg(mpgit_avx512)]
#[inline(always)]
unsafe fn ubc_avx512(lo: __m512i, hi: __m512i) -> u32 {
    let one = _mm512_set1_epi32(1);
    let mut cleared = _mm512_setzero_si512();
    let load = |p: &[u32; 16]| _mm512_load_si512(p.as_ptr() as *const __m512i);
    let loadi = |p: &[i32; 16]| _mm512_load_si512(p.as_ptr() as *const __m512i);
    for g in 0..GROUPS {
        let a = _mm512_srlv_epi32(_mm512_permutex2var_epi32(lo, loadi(&TABLE.i[g]), hi), load(&TABLE.x[g]));
        let b = _mm512_srlv_epi32(_mm512_permutex2var_epi32(lo, loadi(&TABLE.j[g]), hi), load(&TABLE.y[g]));
        // Bit 0 of a ^ b ^ c is 0 where the condition holds, i.e. where its vectors are ruled out.
        let t = _mm512_ternarylogic_epi32::<0x96>(a, b, load(&TABLE.c[g]));
        let hit = _mm512_testn_epi32_mask(t, one);
        cleared = _mm512_mask_or_epi32(cleared, hit, cleared, load(&TABLE.dvs[g]));
    }
    !(_mm512_reduce_or_epi32(cleared) as u32)
}

/// W[33..49] and W[49..65] from the captured schedule vectors.
#[cfg(mpgit_avx512)]
#[inline(always)]
unsafe fn words(w: &[__m128i; 9]) -> (__m512i, __m512i) {
    let quad = |a: __m128i, b: __m128i, c: __m128i, d: __m128i| {
        let z = _mm512_castsi128_si512(a);
        let z = _mm512_inserti32x4::<1>(z, b);
        let z = _mm512_inserti32x4::<2>(z, c);
        _mm512_inserti32x4::<3>(z, d)
    };
    let w32 = quad(w[0], w[1], w[2], w[3]);
    let w48 = quad(w[4], w[5], w[6], w[7]);
    let w64 = _mm512_castsi128_si512(w[8]);
    (_mm512_alignr_epi32::<1>(w48, w32), _mm512_alignr_epi32::<1>(w64, w48))
}

macro_rules! compress_with {
    ($(#[$attr:meta])* $name:ident, $ubc:expr) => {
        $(#[$attr])*
        pub unsafe fn $name(h: &mut [u32; 5], blocks: &[u8]) -> bool {
            let mut abcd = _mm_shuffle_epi32(_mm_loadu_si128(h.as_ptr() as *const __m128i), 0x1B);
            let mut e = _mm_set_epi32(h[4] as i32, 0, 0, 0);
            let zero = _mm_setzero_si128();
            let mut cap = Captured { w: [zero; 9], abcd: [zero; 4] };
            let mut collision = false;
            for b in blocks.chunks_exact(64) {
                (abcd, e) = block(abcd, e, b, &mut cap);
                let mask: u32 = $ubc(&cap);
                if mask != 0 {
                    let regs = [lanes(cap.abcd[0]), lanes(cap.abcd[1]), lanes(cap.abcd[2]), lanes(cap.abcd[3])];
                    collision |= near_collision(b, regs, ihv(abcd, e), mask);
                }
            }
            h.copy_from_slice(&ihv(abcd, e));
            collision
        }
    };
}

#[cfg(mpgit_avx512)]
compress_with!(
    /// Compresses whole blocks into `h`, checking bit conditions with AVX-512; true when one
    /// block is a near-collision block.
    ///
    /// # Safety
    /// The CPU must have SHA, SSSE3, SSE4.1 and AVX-512F (`Backend::ShaNiAvx512.supported()`);
    /// `blocks.len()` is a multiple of 64.
    #[target_feature(enable = "sha,sse2,ssse3,sse4.1,avx,avx512f")]
    compress_avx512,
    |cap: &Captured| {
        let (lo, hi) = words(&cap.w);
        let mask = ubc_avx512(lo, hi);
        // The SHA instructions exist only in legacy-SSE encoding: running them with the upper
        // ZMM state dirty costs a state transition per block (25x slower on Sapphire Rapids).
        // (Keeping the check in ZMM16-31, outside that state, with no VZEROUPPER: measured, no
        // faster.)
        _mm256_zeroupper();
        mask
    }
);

compress_with!(
    /// As `compress_avx512`, checking bit conditions with sha1dc's C.
    ///
    /// # Safety
    /// The CPU must have SHA, SSSE3 and SSE4.1 (`Backend::ShaNi.supported()`); `blocks.len()` is a multiple of 64.
    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    compress,
    |cap: &Captured| {
        let mut w = [0u32; 80];
        for (k, v) in cap.w.iter().enumerate() {
            _mm_storeu_si128(w.as_mut_ptr().add(32 + 4 * k) as *mut __m128i, *v);
        }
        // SAFETY: w holds 80 words; the C reads W[35..=64].
        mpgit_sha1dc_ubc(w.as_ptr())
    }
);

/// What one block's compression (from a zero chaining value) captures: W[32..68], and the
/// states before steps 58 and 65 in sha1dc's layout (tests compare them with sha1dc's).
///
/// # Safety
/// As for `compress`.
#[cfg(test)]
#[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
pub unsafe fn captured(b: &[u8]) -> ([u32; 80], [u32; 5], [u32; 5]) {
    let zero = _mm_setzero_si128();
    let mut cap = Captured { w: [zero; 9], abcd: [zero; 4] };
    block(zero, zero, b, &mut cap);
    let mut w = [0u32; 80];
    for (k, v) in cap.w.iter().enumerate() {
        w[32 + 4 * k..36 + 4 * k].copy_from_slice(&lanes(*v));
    }
    let regs = [lanes(cap.abcd[0]), lanes(cap.abcd[1]), lanes(cap.abcd[2]), lanes(cap.abcd[3])];
    let (all, s58, s65) = states(b, regs);
    assert_eq!(&all[32..68], &w[32..68]);
    (all, s58, s65)
}

/// The AVX-512 bit-condition check on an arbitrary expanded message.
///
/// # Safety
/// The CPU must have AVX-512F.
#[cfg(all(test, mpgit_avx512))]
#[target_feature(enable = "avx512f")]
pub unsafe fn ubc_words(w: &[u32; 80]) -> u32 {
    let lo = _mm512_loadu_si512(w.as_ptr().add(33) as *const __m512i);
    let hi = _mm512_loadu_si512(w.as_ptr().add(49) as *const __m512i);
    ubc_avx512(lo, hi)
}
