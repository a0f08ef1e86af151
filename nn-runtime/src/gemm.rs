//! A cache-blocked matrix product for large `f32` layers, over nalgebra's static storage.
//!
//! nalgebra's static-size product is unrolled code that is fast for small matrices but runs a
//! `128 x 784 x 64` product at a quarter of this machine's peak (DESIGN.md section 4). Large
//! layers come here instead: an AVX2/FMA register-blocked kernel (16 rows x 6 columns of `C`
//! held in 12 registers), blocked over `k` so the slice of `A` it walks stays in L1, chosen at
//! run time when the processor has those instructions. It needs no packing buffers, so it
//! allocates nothing.
//!
//! Layout: every matrix is column-major. `A` (`m x k`) must have contiguous columns (row stride
//! 1, column stride `lda`); `B` (`k x n`) may have any strides, so `x^T` is read in place.

/// `C = A B` (or `C += A B` with `accumulate`), `A` `m x k` with columns `lda` apart, `B(p, j)`
/// at `b[p * rsb + j * csb]`, `C` `m x n` with columns `ldc` apart.
///
/// Returns `false`, having done nothing, where the processor lacks AVX2 and FMA: the caller
/// then uses its portable path.
#[allow(clippy::too_many_arguments)]
pub fn sgemm(
    (m, k, n): (usize, usize, usize),
    a: &[f32],
    lda: usize,
    b: &[f32],
    (rsb, csb): (usize, usize),
    c: &mut [f32],
    ldc: usize,
    accumulate: bool,
) -> bool {
    if m == 0 || n == 0 {
        return true;
    }
    // Every index the kernel forms stays below these bounds; checked once here so the inner
    // loops can use unchecked pointer arithmetic.
    let a_end = (k.max(1) - 1) * lda + m;
    let b_end = (k.max(1) - 1) * rsb + (n - 1) * csb + 1;
    let c_end = (n - 1) * ldc + m;
    assert!(lda >= m && ldc >= m && a.len() >= a_end && b.len() >= b_end && c.len() >= c_end);
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the features are present, and the bounds were checked above.
            unsafe {
                x86::sgemm(
                    (m, k, n),
                    a.as_ptr(),
                    lda,
                    b.as_ptr(),
                    (rsb, csb),
                    c.as_mut_ptr(),
                    ldc,
                    accumulate,
                )
            };
            return true;
        }
    }
    false
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// Rows of `C` per register block: two 8-lane vectors.
    const MR: usize = 16;
    /// Columns of `C` per register block: 6 x 2 accumulators + 2 loads of `A` + 1 broadcast
    /// of `B` fill 15 of the 16 vector registers.
    const NR: usize = 6;
    /// Depth of one pass over `k`: a `16 x 256` slice of `A` is 16 KiB, half of L1.
    const KC: usize = 256;

    /// See [`super::sgemm`]; bounds are the caller's duty.
    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn sgemm(
        (m, k, n): (usize, usize, usize),
        a: *const f32,
        lda: usize,
        b: *const f32,
        (rsb, csb): (usize, usize),
        c: *mut f32,
        ldc: usize,
        accumulate: bool,
    ) {
        if k == 0 {
            if !accumulate {
                for j in 0..n {
                    unsafe { core::ptr::write_bytes(c.add(j * ldc), 0, m) };
                }
            }
            return;
        }
        let mut p0 = 0;
        while p0 < k {
            let kc = KC.min(k - p0);
            // The first pass over k writes C (unless asked to add); later passes add.
            let add = accumulate || p0 > 0;
            let mut i0 = 0;
            while i0 + MR <= m {
                let mut j0 = 0;
                while j0 < n {
                    let nr = NR.min(n - j0);
                    unsafe {
                        let (a, b) = (a.add(p0 * lda + i0), b.add(p0 * rsb + j0 * csb));
                        let c = c.add(j0 * ldc + i0);
                        match nr {
                            6 => block::<6>(kc, a, lda, b, rsb, csb, c, ldc, add),
                            5 => block::<5>(kc, a, lda, b, rsb, csb, c, ldc, add),
                            4 => block::<4>(kc, a, lda, b, rsb, csb, c, ldc, add),
                            3 => block::<3>(kc, a, lda, b, rsb, csb, c, ldc, add),
                            2 => block::<2>(kc, a, lda, b, rsb, csb, c, ldc, add),
                            _ => block::<1>(kc, a, lda, b, rsb, csb, c, ldc, add),
                        }
                    }
                    j0 += nr;
                }
                i0 += MR;
            }
            // Rows left over below the last full block: plain dot products.
            for i in i0..m {
                for j in 0..n {
                    let mut sum = 0.0f32;
                    for p in p0..p0 + kc {
                        sum += unsafe { *a.add(p * lda + i) * *b.add(p * rsb + j * csb) };
                    }
                    let out = unsafe { &mut *c.add(j * ldc + i) };
                    *out = if add { *out + sum } else { sum };
                }
            }
            p0 += kc;
        }
    }

    /// One `16 x NR` block of `C` over `kc` steps of `k`, held in registers throughout.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    #[allow(clippy::too_many_arguments)]
    unsafe fn block<const NR: usize>(
        kc: usize,
        a: *const f32,
        lda: usize,
        b: *const f32,
        rsb: usize,
        csb: usize,
        c: *mut f32,
        ldc: usize,
        add: bool,
    ) {
        let mut acc = [[_mm256_setzero_ps(); 2]; NR];
        for p in 0..kc {
            unsafe {
                let column = a.add(p * lda);
                let (a0, a1) = (_mm256_loadu_ps(column), _mm256_loadu_ps(column.add(8)));
                let row = b.add(p * rsb);
                for (j, acc) in acc.iter_mut().enumerate() {
                    let bj = _mm256_broadcast_ss(&*row.add(j * csb));
                    acc[0] = _mm256_fmadd_ps(a0, bj, acc[0]);
                    acc[1] = _mm256_fmadd_ps(a1, bj, acc[1]);
                }
            }
        }
        for (j, acc) in acc.iter().enumerate() {
            unsafe {
                let out = c.add(j * ldc);
                let (mut c0, mut c1) = (acc[0], acc[1]);
                if add {
                    c0 = _mm256_add_ps(c0, _mm256_loadu_ps(out));
                    c1 = _mm256_add_ps(c1, _mm256_loadu_ps(out.add(8)));
                }
                _mm256_storeu_ps(out, c0);
                _mm256_storeu_ps(out.add(8), c1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The product by definition, in f64.
    #[allow(clippy::too_many_arguments)]
    fn reference(
        (m, k, n): (usize, usize, usize),
        a: &[f32],
        lda: usize,
        b: &[f32],
        (rsb, csb): (usize, usize),
    ) -> Vec<f64> {
        let mut c = vec![0.0; m * n];
        for j in 0..n {
            for i in 0..m {
                for p in 0..k {
                    c[j * m + i] += a[p * lda + i] as f64 * b[p * rsb + j * csb] as f64;
                }
            }
        }
        c
    }

    fn values(len: usize, salt: u32) -> Vec<f32> {
        (0..len)
            .map(|i| {
                ((i as u32).wrapping_mul(2654435761).wrapping_add(salt) % 1000) as f32 / 500.0 - 1.0
            })
            .collect()
    }

    #[test]
    fn matches_the_definition_on_awkward_shapes() {
        if !(std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma"))
        {
            return; // the portable path is nalgebra's, tested through the networks
        }
        for &(m, k, n) in &[
            (16, 1, 1),
            (17, 3, 7),
            (128, 784, 64),
            (33, 300, 13),
            (48, 257, 6),
            (5, 9, 2),
        ] {
            for transposed_b in [false, true] {
                let lda = m + 3;
                let a = values(k * lda, 1);
                // B as k x n column-major, or read as the transpose of an n x k matrix.
                let (b, strides) = if transposed_b {
                    (values(n * k, 2), (n, 1))
                } else {
                    (values(k * n, 2), (1, k))
                };
                let ldc = m + 1;
                let mut c = values(n * ldc, 3);
                let before = c.clone();
                assert!(sgemm((m, k, n), &a, lda, &b, strides, &mut c, ldc, true));
                let expected = reference((m, k, n), &a, lda, &b, strides);
                for j in 0..n {
                    for i in 0..m {
                        let want = expected[j * m + i] + before[j * ldc + i] as f64;
                        let got = c[j * ldc + i] as f64;
                        assert!(
                            (got - want).abs() <= 1e-4 * (1.0 + want.abs()),
                            "{m}x{k}x{n} ({i},{j}): {got} vs {want}"
                        );
                    }
                    // Padding rows between columns are untouched.
                    for i in m..ldc.min(m + 1) {
                        assert_eq!(c[j * ldc + i], before[j * ldc + i]);
                    }
                }
                let mut fresh = values(n * ldc, 4);
                assert!(sgemm(
                    (m, k, n),
                    &a,
                    lda,
                    &b,
                    strides,
                    &mut fresh,
                    ldc,
                    false
                ));
                assert!((fresh[0] as f64 - expected[0]).abs() <= 1e-4 * (1.0 + expected[0].abs()));
            }
        }
    }
}
