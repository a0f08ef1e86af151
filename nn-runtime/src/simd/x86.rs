//! x86 helpers both kernel files use.

use core::arch::x86_64::*;

/// The mask of the lanes of an 8-lane vector below `valid` (all of them from 8 on), for
/// `_mm256_maskload_ps` / `_mm256_maskstore_ps`, which touch no memory in the other lanes.
#[target_feature(enable = "avx2,fma")]
#[inline]
pub(super) fn lanes_below(valid: usize) -> __m256i {
    let valid = _mm256_set1_epi32(valid.min(8) as i32);
    _mm256_cmpgt_epi32(valid, _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7))
}

/// The sums of the lanes of `a[0]`, ..., `a[7]`, in order, in one vector: a transpose by
/// horizontal adds (7 shuffling adds and a final add for eight sums).
#[target_feature(enable = "avx2,fma")]
#[inline]
pub(super) fn reduce8(a: [__m256; 8]) -> __m256 {
    let t0 = _mm256_hadd_ps(a[0], a[1]);
    let t1 = _mm256_hadd_ps(a[2], a[3]);
    let t2 = _mm256_hadd_ps(a[4], a[5]);
    let t3 = _mm256_hadd_ps(a[6], a[7]);
    let u0 = _mm256_hadd_ps(t0, t1);
    let u1 = _mm256_hadd_ps(t2, t3);
    let lo = _mm256_permute2f128_ps::<0x20>(u0, u1);
    let hi = _mm256_permute2f128_ps::<0x31>(u0, u1);
    _mm256_add_ps(lo, hi)
}

/// `a * b + c` rounded once: std's `f32::mul_add`, which core lacks, as the one instruction
/// (`vfmadd`) it compiles to with FMA, so that the `std` and `no_std` builds give the same bits.
#[target_feature(enable = "avx2,fma")]
#[inline]
pub(super) fn mul_add(a: f32, b: f32, c: f32) -> f32 {
    _mm_cvtss_f32(_mm_fmadd_ss(_mm_set_ss(a), _mm_set_ss(b), _mm_set_ss(c)))
}
