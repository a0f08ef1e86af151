//! Cache-blocked `f32` matrix products for the large layers, with runtime AVX2/FMA dispatch.
//!
//! Two shapes cover a `Linear` layer whose weight is stored `[[f32; IN]; OUT]` (PyTorch's
//! row-major layout) and whose batches are `[[f32; N]; B]` (one sample per row):
//!
//! * [`dot_nt`]: `C[j][i] = act(bias[i] + sum_p A[i][p] B[j][p])`, both operands contiguous
//!   along the summed index: the forward pass `z[b][o] = bias[o] + sum_i W[o][i] x[b][i]`.
//!   Register tile: 4 rows of `A` x 3 rows of `B`, 12 vector accumulators, reduced once at
//!   the end of the row, bias and ReLU fused into the store.
//! * [`axpy_nn`]: `C[j][i] += alpha * sum_p A[p][i] B(p, j)`, `A` contiguous along `i`: the
//!   weight gradient `W[o][i] -= lr * sum_b dz[b][o] x[b][i]`, i.e. the SGD update fused into
//!   the product, so the gradient is never stored. Register tile: 16 columns x 6 rows of `C`
//!   (12 accumulators), the summed index blocked by [`KC`] so the `16 x KC` panel of `A`
//!   stays in L1.
//!
//! Each has a portable fallback (plain loops written for the auto-vectoriser), used where the
//! processor lacks AVX2 or FMA; both paths are public so that tests can compare them.

#![allow(clippy::too_many_arguments)]

/// Depth of one pass over the summed index in [`axpy_nn`].
pub const KC: usize = 256;

/// Budget, in floats, for the rows of `B` that [`dot_nt`] keeps hot while it walks `A`
/// (256 KiB: comfortably inside L2).
const DOT_PANEL_FLOATS: usize = 64 * 1024;

/// Whether the AVX2 + FMA kernels can run here (a cached check: one load and a test).
#[inline(always)]
pub fn has_avx2_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// `C[j*ldc + i] = act(bias[i] + sum_{p<k} A[i*lda + p] * B[j*ldb + p])` for `i < m`, `j < n`;
/// `act` is ReLU when `relu`, the identity otherwise.
pub fn dot_nt(
    (m, n, k): (usize, usize, usize),
    a: &[f32],
    lda: usize,
    b: &[f32],
    ldb: usize,
    bias: &[f32],
    relu: bool,
    c: &mut [f32],
    ldc: usize,
) {
    if m == 0 || n == 0 {
        return;
    }
    assert!(lda >= k && ldb >= k && ldc >= m && bias.len() >= m);
    assert!(a.len() >= (m - 1) * lda + k && b.len() >= (n - 1) * ldb + k);
    assert!(c.len() >= (n - 1) * ldc + m);
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma() {
        // SAFETY: the features are present and every index stays within the bounds above.
        unsafe {
            x86::dot_nt(
                (m, n, k),
                a.as_ptr(),
                lda,
                b.as_ptr(),
                ldb,
                bias.as_ptr(),
                relu,
                c.as_mut_ptr(),
                ldc,
            )
        };
        return;
    }
    dot_nt_portable((m, n, k), a, lda, b, ldb, bias, relu, c, ldc);
}

/// `C[j*ldc + i] += alpha * sum_{p<k} A[p*lda + i] * B[p*rsb + j*csb]` for `i < m`, `j < n`.
pub fn axpy_nn(
    (m, n, k): (usize, usize, usize),
    a: &[f32],
    lda: usize,
    b: &[f32],
    (rsb, csb): (usize, usize),
    alpha: f32,
    c: &mut [f32],
    ldc: usize,
) {
    if m == 0 || n == 0 || k == 0 {
        return;
    }
    assert!(lda >= m && ldc >= m);
    assert!(a.len() >= (k - 1) * lda + m);
    assert!(b.len() > (k - 1) * rsb + (n - 1) * csb);
    assert!(c.len() >= (n - 1) * ldc + m);
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma() {
        // SAFETY: the features are present and every index stays within the bounds above.
        unsafe {
            x86::axpy_nn(
                (m, n, k),
                a.as_ptr(),
                lda,
                b.as_ptr(),
                (rsb, csb),
                alpha,
                c.as_mut_ptr(),
                ldc,
            )
        };
        return;
    }
    axpy_nn_portable((m, n, k), a, lda, b, (rsb, csb), alpha, c, ldc);
}

/// [`dot_nt`] without SIMD intrinsics: eight running sums per dot product, which the
/// compiler turns into vector registers.
pub fn dot_nt_portable(
    (m, n, k): (usize, usize, usize),
    a: &[f32],
    lda: usize,
    b: &[f32],
    ldb: usize,
    bias: &[f32],
    relu: bool,
    c: &mut [f32],
    ldc: usize,
) {
    for j in 0..n {
        let row_b = &b[j * ldb..j * ldb + k];
        for i in 0..m {
            let row_a = &a[i * lda..i * lda + k];
            let mut acc = [0.0f32; 8];
            let (ca, cb) = (row_a.chunks_exact(8), row_b.chunks_exact(8));
            let (ra, rb) = (ca.remainder(), cb.remainder());
            for (xa, xb) in ca.zip(cb) {
                for l in 0..8 {
                    acc[l] += xa[l] * xb[l];
                }
            }
            let mut s =
                ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
            for (xa, xb) in ra.iter().zip(rb) {
                s += xa * xb;
            }
            s += bias[i];
            c[j * ldc + i] = if relu && s <= 0.0 { 0.0 } else { s };
        }
    }
}

/// [`axpy_nn`] without SIMD intrinsics: 64 columns of `C` accumulate in a local array over the
/// whole sum, then are scaled and added once.
pub fn axpy_nn_portable(
    (m, n, k): (usize, usize, usize),
    a: &[f32],
    lda: usize,
    b: &[f32],
    (rsb, csb): (usize, usize),
    alpha: f32,
    c: &mut [f32],
    ldc: usize,
) {
    const W: usize = 64;
    for j in 0..n {
        let mut i0 = 0;
        while i0 < m {
            let w = W.min(m - i0);
            let mut acc = [0.0f32; W];
            for p in 0..k {
                let bj = b[p * rsb + j * csb];
                let row = &a[p * lda + i0..p * lda + i0 + w];
                for (acc, &x) in acc.iter_mut().zip(row) {
                    *acc += x * bj;
                }
            }
            for (out, acc) in c[j * ldc + i0..j * ldc + i0 + w].iter_mut().zip(&acc) {
                *out += alpha * acc;
            }
            i0 += w;
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{DOT_PANEL_FLOATS, KC};
    use std::arch::x86_64::*;

    /// Sum of the eight lanes of `v`.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    fn hsum(v: __m256) -> f32 {
        let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_movehdup_ps(s));
        _mm_cvtss_f32(s)
    }

    /// The four sums of the lanes of `a`, `b`, `c`, `d`, in that order.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    fn hsum4(a: __m256, b: __m256, c: __m256, d: __m256) -> __m128 {
        let ab = _mm256_hadd_ps(a, b);
        let cd = _mm256_hadd_ps(c, d);
        let abcd = _mm256_hadd_ps(ab, cd);
        _mm_add_ps(
            _mm256_castps256_ps128(abcd),
            _mm256_extractf128_ps::<1>(abcd),
        )
    }

    /// See [`super::dot_nt`]; bounds are the caller's duty.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn dot_nt(
        (m, n, k): (usize, usize, usize),
        a: *const f32,
        lda: usize,
        b: *const f32,
        ldb: usize,
        bias: *const f32,
        relu: bool,
        c: *mut f32,
        ldc: usize,
    ) {
        // Rows of B in panels that stay in L2; within a panel, 4 rows of A (in L1) meet every
        // row of the panel before the next 4 rows of A are loaded.
        let nc = (DOT_PANEL_FLOATS / k.max(1) / 3 * 3).max(3);
        let mut j0 = 0;
        while j0 < n {
            let j_end = (j0 + nc).min(n);
            let mut i0 = 0;
            while i0 < m {
                let mr = (m - i0).min(4);
                let mut j = j0;
                while j < j_end {
                    let nr = (j_end - j).min(3);
                    unsafe {
                        let (a, b) = (a.add(i0 * lda), b.add(j * ldb));
                        let (bias, c) = (bias.add(i0), c.add(j * ldc + i0));
                        macro_rules! tile {
                            ($mr:literal, $nr:literal) => {
                                dot_tile::<$mr, $nr>(k, a, lda, b, ldb, bias, relu, c, ldc)
                            };
                        }
                        match (mr, nr) {
                            (4, 3) => tile!(4, 3),
                            (4, 2) => tile!(4, 2),
                            (4, 1) => tile!(4, 1),
                            (3, 3) => tile!(3, 3),
                            (3, 2) => tile!(3, 2),
                            (3, 1) => tile!(3, 1),
                            (2, 3) => tile!(2, 3),
                            (2, 2) => tile!(2, 2),
                            (2, 1) => tile!(2, 1),
                            (1, 3) => tile!(1, 3),
                            (1, 2) => tile!(1, 2),
                            _ => tile!(1, 1),
                        }
                    }
                    j += nr;
                }
                i0 += mr;
            }
            j0 = j_end;
        }
    }

    /// `MR` rows of A against `NR` rows of B over the whole sum, in `MR * NR` accumulators.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn dot_tile<const MR: usize, const NR: usize>(
        k: usize,
        a: *const f32,
        lda: usize,
        b: *const f32,
        ldb: usize,
        bias: *const f32,
        relu: bool,
        c: *mut f32,
        ldc: usize,
    ) {
        let mut acc = [[_mm256_setzero_ps(); MR]; NR];
        let k8 = k & !7;
        let mut p = 0;
        while p < k8 {
            unsafe {
                let mut bv = [_mm256_setzero_ps(); NR];
                for (j, bv) in bv.iter_mut().enumerate() {
                    *bv = _mm256_loadu_ps(b.add(j * ldb + p));
                }
                for i in 0..MR {
                    let av = _mm256_loadu_ps(a.add(i * lda + p));
                    for j in 0..NR {
                        acc[j][i] = _mm256_fmadd_ps(av, bv[j], acc[j][i]);
                    }
                }
            }
            p += 8;
        }
        for (j, acc) in acc.iter().enumerate() {
            unsafe {
                let out = c.add(j * ldc);
                if MR == 4 && k8 == k {
                    let mut s = hsum4(acc[0], acc[1], acc[2], acc[3]);
                    s = _mm_add_ps(s, _mm_loadu_ps(bias));
                    if relu {
                        s = _mm_max_ps(s, _mm_setzero_ps());
                    }
                    _mm_storeu_ps(out, s);
                } else {
                    for (i, &v) in acc.iter().enumerate() {
                        let mut s = hsum(v);
                        for q in k8..k {
                            s = (*a.add(i * lda + q)).mul_add(*b.add(j * ldb + q), s);
                        }
                        s += *bias.add(i);
                        *out.add(i) = if relu && s <= 0.0 { 0.0 } else { s };
                    }
                }
            }
        }
    }

    /// See [`super::axpy_nn`]; bounds are the caller's duty.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn axpy_nn(
        (m, n, k): (usize, usize, usize),
        a: *const f32,
        lda: usize,
        b: *const f32,
        (rsb, csb): (usize, usize),
        alpha: f32,
        c: *mut f32,
        ldc: usize,
    ) {
        let mut p0 = 0;
        while p0 < k {
            let kc = KC.min(k - p0);
            let (a, b) = unsafe { (a.add(p0 * lda), b.add(p0 * rsb)) };
            let mut i0 = 0;
            // 16 columns of C at a time (two vectors), then 8, then one by one.
            while i0 < m {
                let width = if m - i0 >= 16 {
                    16
                } else if m - i0 >= 8 {
                    8
                } else {
                    1
                };
                let mut j0 = 0;
                while j0 < n {
                    let nr = (n - j0).min(6);
                    unsafe {
                        let (a, b, c) = (a.add(i0), b.add(j0 * csb), c.add(j0 * ldc + i0));
                        macro_rules! tile {
                            ($v:literal, $nr:literal) => {
                                axpy_tile::<$v, $nr>(kc, a, lda, b, rsb, csb, alpha, c, ldc)
                            };
                        }
                        match (width, nr) {
                            (16, 6) => tile!(2, 6),
                            (16, 5) => tile!(2, 5),
                            (16, 4) => tile!(2, 4),
                            (16, 3) => tile!(2, 3),
                            (16, 2) => tile!(2, 2),
                            (16, 1) => tile!(2, 1),
                            (8, 6) => tile!(1, 6),
                            (8, 5) => tile!(1, 5),
                            (8, 4) => tile!(1, 4),
                            (8, 3) => tile!(1, 3),
                            (8, 2) => tile!(1, 2),
                            (8, 1) => tile!(1, 1),
                            _ => {
                                for j in 0..nr {
                                    let mut s = 0.0f32;
                                    for p in 0..kc {
                                        s = (*a.add(p * lda)).mul_add(*b.add(p * rsb + j * csb), s);
                                    }
                                    let out = c.add(j * ldc);
                                    *out = alpha.mul_add(s, *out);
                                }
                            }
                        }
                    }
                    j0 += nr;
                }
                i0 += width;
            }
            p0 += kc;
        }
    }

    /// `8 * V` columns by `NR` rows of C, accumulated in registers over `kc` steps, then
    /// `C += alpha * acc`.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn axpy_tile<const V: usize, const NR: usize>(
        kc: usize,
        a: *const f32,
        lda: usize,
        b: *const f32,
        rsb: usize,
        csb: usize,
        alpha: f32,
        c: *mut f32,
        ldc: usize,
    ) {
        let mut acc = [[_mm256_setzero_ps(); V]; NR];
        for p in 0..kc {
            unsafe {
                let row = a.add(p * lda);
                let mut av = [_mm256_setzero_ps(); V];
                for (v, av) in av.iter_mut().enumerate() {
                    *av = _mm256_loadu_ps(row.add(8 * v));
                }
                let bp = b.add(p * rsb);
                for (j, acc) in acc.iter_mut().enumerate() {
                    let bj = _mm256_broadcast_ss(&*bp.add(j * csb));
                    for v in 0..V {
                        acc[v] = _mm256_fmadd_ps(av[v], bj, acc[v]);
                    }
                }
            }
        }
        let alpha = _mm256_set1_ps(alpha);
        for (j, acc) in acc.iter().enumerate() {
            for (v, &acc) in acc.iter().enumerate() {
                unsafe {
                    let out = c.add(j * ldc + 8 * v);
                    _mm256_storeu_ps(out, _mm256_fmadd_ps(alpha, acc, _mm256_loadu_ps(out)));
                }
            }
        }
    }
}
