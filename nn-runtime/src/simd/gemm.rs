//! A register-blocked matrix product for `f32` layers, over nalgebra's static storage.
//!
//! nalgebra's static-size product is unrolled code that is fast for small matrices but runs a
//! `128 x 784 x 64` product at a quarter of this machine's peak, and the compiler's
//! vectorisation of small loops over odd sizes (a 10-class output layer, a batch of one)
//! assembles vectors element by element. Products of every `Linear` layer of more than a
//! few dozen multiply-adds come here instead, to AVX2/FMA kernels chosen at run time when the
//! processor has those instructions:
//!
//! * the general case: a `16 x 6` block of `C` held in 12 registers, blocked over `k` so the
//!   slice of `A` it walks stays in L1. `A` is read in place when its columns are contiguous
//!   and the block has 16 rows; otherwise (the rows left below the last full block, or an `A`
//!   read transposed, as `W^T` in the input gradient) its `16 x kc` panel is first copied,
//!   zero-padded, to the stack, so one kernel serves every shape and only the store is masked;
//! * one column (`n == 1`, a batch of one sample): a matrix-vector product, 32 rows at a time
//!   with the sum over `k` split in two, so that eight independent chains of fused
//!   multiply-adds hide their latency; and for a transposed `A`, eight dot products along
//!   contiguous rows at a time, reduced together by a transpose of horizontal adds (a single
//!   sample through a small layer skips this module: see `gemv.rs`);
//! * one step deep (`k == 1`, the weight gradient of one sample): an outer product, one
//!   multiply per element of `C`.
//!
//! Every kernel sums its products first and scales them by `alpha` as it stores them, writing
//! or adding to `C`: `C += -lr * dz x^T` is a plain SGD step on a weight matrix. It agrees with
//! a stored gradient and a separate update to a few units in the last place, not bit for bit:
//! the scaling and the addition may fuse into one rounding, and the products of a batch may be
//! summed in another order than the gradient kernel's.
//!
//! Nothing is allocated: the only buffer is a 16 KiB panel on the stack.
//!
//! Layout: every matrix is column-major-like with explicit strides: `A(i, p)` at
//! `a[i * rsa + p * csa]`, `B(p, j)` at `b[p * rsb + j * csb]`, `C(i, j)` at `c[i + j * ldc]`.

/// `C = alpha A B` (or `C += alpha A B` with `accumulate`), `A` `m x k`, `B` `k x n`, `C`
/// `m x n`, with the strides of the module documentation. The products are summed first and
/// scaled once, as they are stored: with `alpha = -lr` and `accumulate`, a plain SGD step
/// `W -= lr * dz x^T` (equal to a separate gradient and update to a few units in the last
/// place; see the module documentation).
///
/// Returns `false`, having done nothing, where the processor lacks AVX2 and FMA: the caller
/// then uses its portable path. Inlined, so that for the constant sizes of a layer the bounds
/// checks and shape tests fold away.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(super) fn sgemm(
    (m, k, n): (usize, usize, usize),
    a: &[f32],
    (rsa, csa): (usize, usize),
    b: &[f32],
    (rsb, csb): (usize, usize),
    c: &mut [f32],
    ldc: usize,
    alpha: f32,
    accumulate: bool,
) -> bool {
    if !crate::simd::has_avx2_fma() {
        return false;
    }
    if m == 0 || n == 0 {
        return true;
    }
    // Every index the kernels form stays below these bounds (the largest index of each
    // matrix, plus one); checked once here so the inner loops can use unchecked pointer
    // arithmetic. `ldc >= m` keeps the columns of `C` apart, so its writes are too.
    // Overflow in these sums would wrap them below the real extent, so it fails the
    // check as an out-of-bounds shape would.
    let last_k = k.max(1) - 1;
    let a_end = extent(&[(m - 1, rsa), (last_k, csa)], 1);
    let b_end = extent(&[(last_k, rsb), (n - 1, csb)], 1);
    let c_end = extent(&[(n - 1, ldc)], m);
    assert!(
        ldc >= m
            && a_end.is_some_and(|end| a.len() >= end)
            && b_end.is_some_and(|end| b.len() >= end)
            && c_end.is_some_and(|end| c.len() >= end),
        "sgemm: a matrix is shorter than its shape and strides say"
    );
    // SAFETY: the features are present, and the bounds were checked above.
    unsafe {
        x86::sgemm(
            (m, k, n),
            a.as_ptr(),
            (rsa, csa),
            b.as_ptr(),
            (rsb, csb),
            c.as_mut_ptr(),
            ldc,
            alpha,
            accumulate,
        )
    };
    true
}

/// `last + sum(index * stride)`, the length a slice needs to hold every index formed from
/// these (largest index, stride) pairs, or `None` where it does not fit in a `usize`.
#[inline(always)]
fn extent(terms: &[(usize, usize)], last: usize) -> Option<usize> {
    terms.iter().try_fold(last, |end, &(index, stride)| {
        index.checked_mul(stride)?.checked_add(end)
    })
}

mod x86 {
    use crate::simd::x86::{lanes_below, reduce8};
    use core::arch::x86_64::*;
    use core::mem::MaybeUninit;

    /// [`block`] for a width `nr` (at most [`NR`]) known only at run time: one monomorphised
    /// kernel per width, each with its accumulators in registers. A macro, so that the calls
    /// stay where they were, inlined into the loops of [`blocked`] and
    /// [`blocked_by_columns`].
    macro_rules! block_of_width {
        ($nr:expr, $($arg:expr),* $(,)?) => {
            match $nr {
                6 => block::<6>($($arg),*),
                5 => block::<5>($($arg),*),
                4 => block::<4>($($arg),*),
                3 => block::<3>($($arg),*),
                2 => block::<2>($($arg),*),
                _ => block::<1>($($arg),*),
            }
        };
    }

    /// Rows of `C` per register block: two 8-lane vectors.
    const MR: usize = 16;
    /// Columns of `C` per register block: 6 x 2 accumulators + 2 loads of `A` + 1 broadcast
    /// of `B` fill 15 of the 16 vector registers.
    const NR: usize = 6;
    /// Depth of one pass over `k`: a `16 x 256` slice of `A` is 16 KiB, half of L1.
    const KC: usize = 256;
    /// Rows of the matrix-vector kernel per pass: 4 vectors, times 2 halves of `k`, make 8
    /// accumulators (8 independent chains of 4-cycle fused multiply-adds keep both FMA units
    /// busy).
    const GEMV_ROWS: usize = 32;
    /// Floats of `A` that [`blocked_by_columns`] keeps in L1: 32 KiB, two thirds of it.
    const L1_FLOATS: usize = 8192;

    /// See [`super::sgemm`]; bounds are the caller's duty. Inlined where the caller is
    /// compiled for AVX2 and FMA too (the generated networks' fast copies), so that the
    /// shape tests fold away for their constant sizes.
    ///
    /// # Safety
    /// The processor has AVX2 and FMA, and every element the shape and strides name lies inside
    /// its operand: `A(i, p)` at `a + i rsa + p csa` and `B(p, j)` at `b + p rsb + j csb`
    /// readable, `C(i, j)` at `c + i + j ldc` readable and writable, for `i < m`, `p < k`, `j <
    /// n`. (What `super::sgemm` checks.)
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn sgemm(
        (m, k, n): (usize, usize, usize),
        a: *const f32,
        (rsa, csa): (usize, usize),
        b: *const f32,
        (rsb, csb): (usize, usize),
        c: *mut f32,
        ldc: usize,
        alpha: f32,
        accumulate: bool,
    ) {
        if k == 0 {
            if !accumulate {
                for j in 0..n {
                    // SAFETY: column `j < n` of `C`: its `m` floats are writable by this
                    // function's contract.
                    unsafe { core::ptr::write_bytes(c.add(j * ldc), 0, m) };
                }
            }
            return;
        }
        let store = Store::new(alpha, accumulate);
        if k == 1 && rsa == 1 {
            // An outer product (a weight gradient from a batch of one): one multiply per
            // element of C, which the blocked kernel would pack and run one step deep.
            // SAFETY: this function's contract with `k == 1` and `rsa == 1`: `a` holds the
            // contiguous column of `m`, `b` the row of `n` at stride `csb`.
            return unsafe { outer(m, n, a, b, csb, c, ldc, store) };
        }
        if n == 1 {
            // A batch of one: a matrix-vector product, which the 16 x 6 block would run with
            // five of its six columns idle.
            if rsa == 1 {
                // SAFETY: this function's contract with `n == 1` and `rsa == 1`: columns of `A`
                // contiguous, `csa` apart, `x` at stride `rsb`, `y` the one column of `C`.
                return unsafe { gemv_n((m, k), (a, csa), (b, rsb), c, store) };
            }
            if csa == 1 && rsb == 1 {
                // SAFETY: this function's contract with `n == 1`, `csa == 1` and `rsb == 1`:
                // rows of `A` contiguous, `rsa` apart, `x` contiguous.
                return unsafe { gemv_t(m, k, a, rsa, b, c, store) };
            }
        }
        // SAFETY: `blocked` has this function's contract.
        unsafe { blocked((m, k, n), (a, rsa, csa), (b, rsb, csb), (c, ldc), store) }
    }

    /// [`sgemm`]'s general case, in a function of its own so that the matrix-vector cases do
    /// not pay for its 16 KiB stack frame (a stack probe per page on every call).
    ///
    /// # Safety
    /// As [`sgemm`].
    #[target_feature(enable = "avx2,fma")]
    #[inline(never)]
    unsafe fn blocked(
        (m, k, n): (usize, usize, usize),
        (a, rsa, csa): (*const f32, usize, usize),
        (b, rsb, csb): (*const f32, usize, usize),
        (c, ldc): (*mut f32, usize),
        store: Store,
    ) {
        if rsa == 1 && m.is_multiple_of(MR) && m <= L1_FLOATS / 32 && n > 2 * NR {
            let (a, b, c) = ((a, csa), (b, rsb, csb), (c, ldc));
            // SAFETY: this function's contract, with `rsa == 1` and `m` a multiple of 16, as
            // `blocked_by_columns` needs.
            return unsafe { blocked_by_columns((m, k, n), a, b, c, store) };
        }
        // The packed panel: only the first `kc` columns of it are written, and only those are
        // read, so it needs no initialisation (16 KiB of zeroes per call would cost more than
        // a small product).
        let mut panel = MaybeUninit::<[f32; MR * KC]>::uninit();
        let panel = panel.as_mut_ptr().cast::<f32>();
        let mut p0 = 0;
        while p0 < k {
            let kc = KC.min(k - p0);
            let store = store.pass(p0);
            let mut i0 = 0;
            while i0 < m {
                let rows = MR.min(m - i0);
                // A full block of contiguous columns is read in place; anything else is packed.
                let (ap, lda) = if rsa == 1 && rows == MR {
                    // SAFETY: `i0 < m` and `p0 < k`: the element `A(i0, p0)`, inside `A`.
                    (unsafe { a.add(i0 + p0 * csa) }, csa)
                } else {
                    // SAFETY: `A(i0, p0)` and the `rows x kc` block from it lie inside `A`
                    // (`i0 + rows <= m`, `p0 + kc <= k`), and `panel` holds `MR x KC` floats,
                    // of which `MR x kc` are written.
                    unsafe { pack(a.add(i0 * rsa + p0 * csa), rows, kc, (rsa, csa), panel) };
                    (panel.cast_const(), MR)
                };
                let mut j0 = 0;
                while j0 < n {
                    let nr = NR.min(n - j0);
                    // SAFETY: `B(p0, j0)` and `C(i0, j0)` are inside their operands; the block
                    // reads `kc` steps of `nr` columns of `B` and 16 rows of `ap` (in place
                    // only where the block has 16 rows of `A`, else the zero-padded panel) and
                    // stores `rows` rows of `nr` columns of `C`, all inside.
                    unsafe {
                        let b = b.add(p0 * rsb + j0 * csb);
                        let c = c.add(j0 * ldc + i0);
                        let s = (rsb, csb);
                        block_of_width!(nr, kc, ap, lda, b, s, c, ldc, store, rows);
                    }
                    j0 += nr;
                }
                i0 += rows;
            }
            p0 += kc;
        }
    }

    /// How a kernel puts its sums into `C`: `C = alpha sum` or `C += alpha sum`.
    #[derive(Clone, Copy)]
    struct Store {
        alpha: f32,
        add: bool,
    }

    impl Store {
        fn new(alpha: f32, add: bool) -> Self {
            Store { alpha, add }
        }

        /// How the pass over `k` from `p0` stores: the first writes `C` (unless asked to
        /// add), later passes add to what the earlier ones stored.
        #[inline(always)]
        fn pass(self, p0: usize) -> Self {
            Store {
                add: self.add || p0 > 0,
                ..self
            }
        }

        /// Stores eight sums at `out`: one multiply (exact for `alpha = 1`), or one fused
        /// multiply-add onto what is there.
        ///
        /// # Safety
        /// The processor has AVX2 and FMA, and `out` is valid for reads and writes of 8 floats.
        #[target_feature(enable = "avx2,fma")]
        #[inline]
        unsafe fn full(self, out: *mut f32, sum: __m256) {
            let alpha = _mm256_set1_ps(self.alpha);
            // SAFETY: the 8 floats at `out` are readable and writable by this function's
            // contract.
            unsafe {
                let value = if self.add {
                    _mm256_fmadd_ps(sum, alpha, _mm256_loadu_ps(out))
                } else {
                    _mm256_mul_ps(sum, alpha)
                };
                _mm256_storeu_ps(out, value);
            }
        }

        /// [`Store::full`] for one sum.
        ///
        /// # Safety
        /// The processor has AVX2 and FMA, and `out` is valid for reads and writes of one
        /// float.
        #[target_feature(enable = "avx2,fma")]
        #[inline]
        unsafe fn one(self, out: *mut f32, sum: f32) {
            // SAFETY: the float at `out` is readable and writable by this function's contract.
            unsafe {
                *out = if self.add {
                    crate::simd::x86::mul_add(sum, self.alpha, *out)
                } else {
                    sum * self.alpha
                };
            }
        }

        /// [`Store::full`] for the lanes of `mask` only: the others are neither read nor
        /// written.
        ///
        /// # Safety
        /// The processor has AVX2 and FMA, and `out` is valid for reads and writes of the lanes
        /// of `mask`.
        #[target_feature(enable = "avx2,fma")]
        #[inline]
        unsafe fn masked(self, out: *mut f32, mask: __m256i, sum: __m256) {
            let alpha = _mm256_set1_ps(self.alpha);
            // SAFETY: the masked load and store touch only the lanes of `mask`, which this
            // function's contract makes readable and writable.
            unsafe {
                let value = if self.add {
                    _mm256_fmadd_ps(sum, alpha, _mm256_maskload_ps(out, mask))
                } else {
                    _mm256_mul_ps(sum, alpha)
                };
                _mm256_maskstore_ps(out, mask, value);
            }
        }
    }

    /// `C (+)= alpha a b^T` for a contiguous column `a` (`m`) and a row `b` (`n`, `b(j)` at
    /// `b[j * incb]`): column `j` of `C` is `a` times `alpha b(j)`, eight rows at a time and
    /// the last `m % 8` one by one. (Not masked: the columns of a short `C` lie a few floats
    /// apart, and a load overlapping the masked store just before it cannot be forwarded
    /// from it, which stalled every column.)
    ///
    /// # Safety
    /// The processor has AVX2 and FMA; `a` is valid for reads of `m` floats, `b` of the `n`
    /// floats `incb` apart, and `c` for reads and writes of `m` floats in each of `n` columns
    /// `ldc` apart.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    #[allow(clippy::too_many_arguments)]
    unsafe fn outer(
        m: usize,
        n: usize,
        a: *const f32,
        b: *const f32,
        incb: usize,
        c: *mut f32,
        ldc: usize,
        store: Store,
    ) {
        for j in 0..n {
            // SAFETY: `j < n`: `b(j)` and column `j` of `C` are inside; whole vectors at `i`
            // with `i + 8 <= m`, then single floats at `i < m`, inside `a` and the column.
            unsafe {
                let bj = *b.add(j * incb);
                let bv = _mm256_set1_ps(bj);
                let column = c.add(j * ldc);
                let mut i = 0;
                while i + 8 <= m {
                    store.full(column.add(i), _mm256_mul_ps(_mm256_loadu_ps(a.add(i)), bv));
                    i += 8;
                }
                for i in i..m {
                    store.one(column.add(i), *a.add(i) * bj);
                }
            }
        }
    }

    /// [`blocked`] where `A` is read in place in whole blocks of rows, at most 256 of them:
    /// `k` is cut into slices of `A` that fit in L1 (64 deep for 128 rows), and within a
    /// slice the blocks of columns of `C` are the outer loop, so each `kc x 6` block of `B` is
    /// read from memory once and serves every block of rows while `A` stays in L1. (Rows
    /// outer, as in [`blocked`], read all of `B` once per block of 16 rows, and a 256-deep
    /// slice of 16 rows with columns 512 bytes apart does not even stay in L1.) Measured on
    /// mnist's forward product and fused SGD step: 7-10% faster.
    ///
    /// # Safety
    /// As [`sgemm`] with `rsa == 1` (`lda` for `csa`), and `m` a multiple of 16.
    #[target_feature(enable = "avx2,fma")]
    #[inline(never)]
    unsafe fn blocked_by_columns(
        (m, k, n): (usize, usize, usize),
        (a, lda): (*const f32, usize),
        (b, rsb, csb): (*const f32, usize, usize),
        (c, ldc): (*mut f32, usize),
        store: Store,
    ) {
        let depth = (L1_FLOATS / m).min(KC);
        let mut p0 = 0;
        while p0 < k {
            let kc = depth.min(k - p0);
            let store = store.pass(p0);
            for j0 in (0..n).step_by(NR) {
                let nr = NR.min(n - j0);
                for i0 in (0..m).step_by(MR) {
                    // SAFETY: `i0 < m`, `p0 < k`, `j0 < n`: the blocks start inside `A`, `B`
                    // and `C`, and as `m` is a multiple of 16 every block has its 16 rows of
                    // `A` and `C`, read in place; `kc` steps and `nr` columns stay inside `k`
                    // and `n`.
                    unsafe {
                        let (ap, bp) = (a.add(i0 + p0 * lda), b.add(p0 * rsb + j0 * csb));
                        let c = c.add(j0 * ldc + i0);
                        block_of_width!(nr, kc, ap, lda, bp, (rsb, csb), c, ldc, store, MR);
                    }
                }
            }
            p0 += kc;
        }
    }

    /// Copies the `rows x kc` block of `A` at `a` (strides `rsa`, `csa`; `rows <= MR`,
    /// `kc <= KC`) into `panel` as `MR x kc` with contiguous columns, rows from `rows` on zero.
    ///
    /// Whole vectors where it can: with contiguous columns (`rsa == 1`) each panel column is two
    /// masked loads and two stores, and otherwise its zero rows are two vector stores before
    /// the scalar copies. (Element by element, the compiler turned each column's zero rows into
    /// a `memset` call: half the time of a 10-row layer's product.)
    ///
    /// # Safety
    /// The processor has AVX2 and FMA; the `rows x kc` block at `a` (strides `rsa`, `csa`) is
    /// readable, `rows <= 16`, and `panel` is valid for writes of `16 kc` floats.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn pack(
        a: *const f32,
        rows: usize,
        kc: usize,
        (rsa, csa): (usize, usize),
        panel: *mut f32,
    ) {
        if rsa == 1 {
            let (low, high) = (lanes_below(rows), lanes_below(rows.saturating_sub(8)));
            for p in 0..kc {
                // SAFETY: `p < kc`: column `p` of the block (its `rows` floats, masked to them)
                // and of the panel (16 floats) are inside; `source + 8` is formed only where
                // `rows > 8`.
                unsafe {
                    let (source, column) = (a.add(p * csa), panel.add(p * MR));
                    _mm256_storeu_ps(column, _mm256_maskload_ps(source, low));
                    // With 8 rows or fewer the upper half is all zero, and `source + 8` could
                    // lie past the end of A: it is not formed.
                    let upper = if rows > 8 {
                        _mm256_maskload_ps(source.add(8), high)
                    } else {
                        _mm256_setzero_ps()
                    };
                    _mm256_storeu_ps(column.add(8), upper);
                }
            }
        } else {
            for p in 0..kc {
                // SAFETY: `p < kc` and `r < rows`: `A(r, p)` is inside the block, and the 16
                // floats of panel column `p` inside the panel.
                unsafe {
                    let column = panel.add(p * MR);
                    _mm256_storeu_ps(column, _mm256_setzero_ps());
                    _mm256_storeu_ps(column.add(8), _mm256_setzero_ps());
                    for r in 0..rows {
                        column.add(r).write(*a.add(r * rsa + p * csa));
                    }
                }
            }
        }
    }

    /// One `16 x NR` block of `C` over `kc` steps of `k`, held in registers throughout; `A`
    /// has 16 readable rows (in place or packed), of which the first `rows` are stored.
    ///
    /// # Safety
    /// The processor has AVX2 and FMA; `a` holds 16 readable rows in each of `kc` columns `lda`
    /// apart; `B` at `b` (strides `rsb`, `csb`) is readable over `kc` rows and `NR` columns;
    /// `c` is valid for reads and writes of `rows` floats (at most 16) in each of `NR` columns
    /// `ldc` apart.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    #[allow(clippy::too_many_arguments)]
    unsafe fn block<const NR: usize>(
        kc: usize,
        a: *const f32,
        lda: usize,
        b: *const f32,
        (rsb, csb): (usize, usize),
        c: *mut f32,
        ldc: usize,
        store: Store,
        rows: usize,
    ) {
        let mut acc = [[_mm256_setzero_ps(); 2]; NR];
        for p in 0..kc {
            // SAFETY: `p < kc` and `j < NR`: both vectors of column `p` of `a` and `B(p, j)`
            // are inside, by this function's contract.
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
        if rows == MR {
            for (j, acc) in acc.iter().enumerate() {
                // SAFETY: `rows == 16` here: both vectors of column `j < NR` of `C` are inside.
                unsafe {
                    let out = c.add(j * ldc);
                    store.full(out, acc[0]);
                    store.full(out.add(8), acc[1]);
                }
            }
        } else {
            // Rows past the end of C: masked, so they are neither read nor written. With 8
            // rows or fewer the second half is skipped, not just masked: its address could
            // lie past the end of C's allocation, which even forming is undefined.
            let masks = [lanes_below(rows), lanes_below(rows.saturating_sub(8))];
            let halves = if rows > 8 { 2 } else { 1 };
            for (j, acc) in acc.iter().enumerate() {
                for (h, (&sum, &mask)) in acc.iter().zip(&masks).take(halves).enumerate() {
                    // SAFETY: the masked store touches only rows below `rows` of column `j <
                    // NR`, and the second half is formed only where `rows > 8`.
                    unsafe {
                        store.masked(c.add(j * ldc + 8 * h), mask, sum);
                    }
                }
            }
        }
    }

    /// `y (+)= A x`, `A` `m x k` with contiguous columns `lda` apart, `x(p)` at `x[p * incx]`.
    ///
    /// # Safety
    /// The processor has AVX2 and FMA; `a` holds `m` readable rows in each of `k` columns `lda`
    /// apart, `x` `k` readable floats `incx` apart, and `y` `m` floats valid for reads and
    /// writes.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn gemv_n(
        (m, k): (usize, usize),
        (a, lda): (*const f32, usize),
        (x, incx): (*const f32, usize),
        y: *mut f32,
        store: Store,
    ) {
        let mut i0 = 0;
        while i0 < m {
            let rows = GEMV_ROWS.min(m - i0);
            // SAFETY: `i0 < m`, and the `rows` rows from it lie below `m`: the contract of
            // `gemv_n_rows` for the block.
            unsafe {
                let (a, y) = (a.add(i0), y.add(i0));
                match rows.div_ceil(8) {
                    4 => gemv_n_rows::<4>(k, (a, lda), (x, incx), y, store, rows),
                    3 => gemv_n_rows::<3>(k, (a, lda), (x, incx), y, store, rows),
                    2 => gemv_n_rows::<2>(k, (a, lda), (x, incx), y, store, rows),
                    _ => gemv_n_rows::<1>(k, (a, lda), (x, incx), y, store, rows),
                }
            }
            i0 += rows;
        }
    }

    /// [`gemv_n`] for `rows` rows (more than `8 (V - 1)`, at most `8 V`): `V` vectors, the
    /// last one masked when `rows` is not a multiple of 8; even and odd `p` summed apart.
    ///
    /// # Safety
    /// As [`gemv_n`] for `rows` rows (more than `8 (V - 1)`, at most `8 V`).
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn gemv_n_rows<const V: usize>(
        k: usize,
        (a, lda): (*const f32, usize),
        (x, incx): (*const f32, usize),
        y: *mut f32,
        store: Store,
        rows: usize,
    ) {
        let last = lanes_below(rows - 8 * (V - 1));
        let full = rows == 8 * V;
        // Loads of one column's `V` vectors of A; only the last may be partial.
        // SAFETY: called with a column of `a` and `v < V`: whole vectors lie below `rows`, and
        // the last, where short, is masked to the rows below `rows`.
        let load = |column: *const f32, v: usize| unsafe {
            if full || v + 1 < V {
                _mm256_loadu_ps(column.add(8 * v))
            } else {
                _mm256_maskload_ps(column.add(8 * v), last)
            }
        };
        let mut acc = [[_mm256_setzero_ps(); V]; 2];
        let mut p = 0;
        while p + 2 <= k {
            for (h, acc) in acc.iter_mut().enumerate() {
                // SAFETY: `p + h < k`: `x(p + h)` and its column of `a` are inside.
                unsafe {
                    let xp = _mm256_broadcast_ss(&*x.add((p + h) * incx));
                    let column = a.add((p + h) * lda);
                    for (v, acc) in acc.iter_mut().enumerate() {
                        *acc = _mm256_fmadd_ps(load(column, v), xp, *acc);
                    }
                }
            }
            p += 2;
        }
        if p < k {
            // SAFETY: `p < k`: `x(p)` and column `p` of `a` are inside.
            unsafe {
                let xp = _mm256_broadcast_ss(&*x.add(p * incx));
                let column = a.add(p * lda);
                for (v, acc) in acc[0].iter_mut().enumerate() {
                    *acc = _mm256_fmadd_ps(load(column, v), xp, *acc);
                }
            }
        }
        for (v, (&even, &odd)) in acc[0].iter().zip(&acc[1]).enumerate() {
            // SAFETY: vector `v` of `y`: whole, or masked to the rows below `rows`, all inside
            // `y`.
            unsafe {
                let sum = _mm256_add_ps(even, odd);
                let out = y.add(8 * v);
                if full || v + 1 < V {
                    store.full(out, sum);
                } else {
                    store.masked(out, last, sum);
                }
            }
        }
    }

    /// `y (+)= A x` for `A(i, p)` at `a[i * lda + p]` (rows contiguous: `W^T` read in place)
    /// and contiguous `x`: eight rows at a time, eight dot products along the rows reduced
    /// together at the end.
    ///
    /// # Safety
    /// The processor has AVX2 and FMA; `a` holds `m` readable rows of `k` contiguous floats,
    /// `lda` apart, `x` `k` readable floats, and `y` `m` floats valid for reads and writes.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    #[allow(clippy::too_many_arguments)]
    unsafe fn gemv_t(
        m: usize,
        k: usize,
        a: *const f32,
        lda: usize,
        x: *const f32,
        y: *mut f32,
        store: Store,
    ) {
        let chunks = k / 8;
        let tail = k % 8;
        let tail_mask = lanes_below(tail);
        let mut i0 = 0;
        while i0 < m {
            let rows = 8.min(m - i0);
            // Rows past the end of A repeat its last row: their sums are computed and dropped.
            let row: [*const f32; 8] =
                // SAFETY: row `i0 + min(r, rows - 1)` is below `m`: each pointer is the start
                // of a row of `A`.
                core::array::from_fn(|r| unsafe { a.add((i0 + r.min(rows - 1)) * lda) });
            let mut acc = [_mm256_setzero_ps(); 8];
            for q in 0..chunks {
                // SAFETY: `q < k / 8`: the 8 floats at `8 q` are inside `x` and inside each of
                // the 8 rows.
                unsafe {
                    let xv = _mm256_loadu_ps(x.add(8 * q));
                    for (acc, row) in acc.iter_mut().zip(&row) {
                        *acc = _mm256_fmadd_ps(_mm256_loadu_ps(row.add(8 * q)), xv, *acc);
                    }
                }
            }
            if tail > 0 {
                // SAFETY: the masked loads read only the `k % 8` floats at `8 (k / 8)`, the
                // last of `x` and of each row.
                unsafe {
                    let at = 8 * chunks;
                    let xv = _mm256_maskload_ps(x.add(at), tail_mask);
                    for (acc, row) in acc.iter_mut().zip(&row) {
                        let av = _mm256_maskload_ps(row.add(at), tail_mask);
                        *acc = _mm256_fmadd_ps(av, xv, *acc);
                    }
                }
            }
            let sum = reduce8(acc);
            // SAFETY: `y + i0` with `i0 < m`: a whole vector where 8 rows remain, else
            // masked to the `rows` left.
            unsafe {
                let out = y.add(i0);
                if rows == 8 {
                    store.full(out, sum);
                } else {
                    store.masked(out, lanes_below(rows), sum);
                }
            }
            i0 += rows;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The product by definition, in f64.
    fn reference(
        (m, k, n): (usize, usize, usize),
        a: &[f32],
        (rsa, csa): (usize, usize),
        b: &[f32],
        (rsb, csb): (usize, usize),
    ) -> Vec<f64> {
        let mut c = vec![0.0; m * n];
        for j in 0..n {
            for i in 0..m {
                for p in 0..k {
                    c[j * m + i] += a[i * rsa + p * csa] as f64 * b[p * rsb + j * csb] as f64;
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

    /// Every kernel (blocked, packed, row tails, both matrix-vector forms, the outer product),
    /// with and without accumulation and scaling, against the definition; the padding between
    /// columns of `C` untouched.
    #[test]
    fn matches_the_definition_on_awkward_shapes() {
        if !crate::simd::has_avx2_fma() {
            return; // the portable path is nalgebra's, tested through the networks
        }
        let mut shapes = vec![
            (16, 1, 1),
            (17, 3, 7),
            (128, 784, 64),
            (33, 300, 13),
            (48, 257, 6),
            (5, 9, 2),
            (10, 128, 64),
            (128, 10, 64),
            (32, 16, 1),
            (4, 32, 1),
            (32, 4, 1),
            (10, 32, 32),
            (1, 8, 4),
            (17, 1, 7),
            (8, 1, 3),
            (3, 1, 5),
            (40, 1, 2),
            (32, 1, 16),
            (32, 300, 40),
            (128, 300, 20),
            (16, 70, 13),
        ];
        // Every row count through the matrix-vector kernels' vector counts and masks, and
        // every depth through their tails.
        for m in 1..=41 {
            shapes.push((m, (m * 7) % 19 + 1, 1));
            shapes.push((m, (m * 5) % 11 + 1, 3));
        }
        for &(m, k, n) in &shapes {
            for transposed_a in [false, true] {
                for transposed_b in [false, true] {
                    // A as m x k with columns m + 3 apart, or read as the transpose of a
                    // k x m matrix with columns k + 2 apart.
                    let (a, a_strides) = if transposed_a {
                        (values(m * (k + 2), 1), (k + 2, 1))
                    } else {
                        (values(k * (m + 3), 1), (1, m + 3))
                    };
                    // B as k x n column-major, or read as the transpose of an n x k matrix.
                    let (b, b_strides) = if transposed_b {
                        (values(n * k, 2), (n, 1))
                    } else {
                        (values(k * n, 2), (1, k))
                    };
                    let expected = reference((m, k, n), &a, a_strides, &b, b_strides);
                    for (alpha, accumulate) in
                        [(1.0, true), (1.0, false), (-0.25, true), (3.0, false)]
                    {
                        let ldc = m + 1;
                        let mut c = values(n * ldc, 3);
                        let before = c.clone();
                        let shape = (m, k, n);
                        assert!(sgemm(
                            shape, &a, a_strides, &b, b_strides, &mut c, ldc, alpha, accumulate
                        ));
                        for j in 0..n {
                            for i in 0..m {
                                let start = if accumulate {
                                    before[j * ldc + i] as f64
                                } else {
                                    0.0
                                };
                                let want = alpha as f64 * expected[j * m + i] + start;
                                let got = c[j * ldc + i] as f64;
                                assert!(
                                    (got - want).abs() <= 1e-4 * (1.0 + want.abs()),
                                    "{m}x{k}x{n} A^T {transposed_a} B^T {transposed_b} \
                                     alpha {alpha} add {accumulate} ({i},{j}): {got} vs {want}"
                                );
                            }
                            // Padding rows between columns are untouched.
                            assert_eq!(c[j * ldc + m], before[j * ldc + m]);
                        }
                    }
                }
            }
        }
    }

    /// Strides so large that the extent of `A` overflows a `usize` (and would wrap to a small
    /// number) are refused before any kernel runs, on every processor.
    #[test]
    fn refuses_strides_whose_extent_overflows() {
        assert_eq!(extent(&[(3, usize::MAX / 2), (0, 1)], 1), None);
        assert_eq!(extent(&[(1, usize::MAX), (0, 1)], 1), None);
        assert_eq!(extent(&[(2, 3), (4, 5)], 1), Some(27));
        if !crate::simd::has_avx2_fma() {
            return;
        }
        let a = [1.0f32; 4];
        let b = [1.0f32; 4];
        let mut c = [0.0f32; 4];
        // (m - 1) * rsa + 1 = 3 * (usize::MAX / 3 + 1) + 1 wraps to 3 <= a.len(). Test
        // builds check overflow, so any panic would do: the message tells the bounds check
        // from an arithmetic overflow.
        let rsa = usize::MAX / 3 + 1;
        let refused = std::panic::catch_unwind(move || {
            sgemm((4, 1, 1), &a, (rsa, 1), &b, (1, 1), &mut c, 4, 1.0, false)
        });
        let payload = refused.expect_err("a wrapping extent was accepted");
        let message = payload
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| payload.downcast_ref::<String>().map(String::as_str));
        assert_eq!(
            message,
            Some("sgemm: a matrix is shorter than its shape and strides say")
        );
    }

    /// `C` exactly as long as its last column, so a kernel that stored past the last row
    /// would fail the bounds check or corrupt nothing it may not.
    #[test]
    fn writes_nothing_past_the_last_row() {
        if !crate::simd::has_avx2_fma() {
            return;
        }
        for &(m, k, n) in &[
            (3, 5, 1),
            (10, 7, 1),
            (10, 7, 5),
            (4, 32, 1),
            (13, 4, 1),
            (13, 1, 3),
        ] {
            for a_strides in [(1, m), (k, 1)] {
                let a = values(m * k, 5);
                let b = values(k * n, 6);
                let mut c = values(m * n + 8, 7);
                let guard = c[m * n..].to_vec();
                let len = m * n;
                assert!(sgemm(
                    (m, k, n),
                    &a,
                    a_strides,
                    &b,
                    (1, k),
                    &mut c[..len],
                    m,
                    1.0,
                    false
                ));
                assert_eq!(&c[m * n..], &guard[..]);
            }
        }
    }
}
