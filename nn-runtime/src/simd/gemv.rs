//! `f32` kernels for a batch of one sample through a small `Linear` layer, with the layer's
//! sizes as const generics: the forward matrix-vector product, the transposed product of the
//! input gradient, and the outer product of the weight gradient (or of a fused SGD step).
//!
//! A batch of one is where a general product pays most for being general: the work of a
//! `Linear(32, 32)` layer is 128 vector multiply-adds, as long as the shape tests, the loop
//! bookkeeping and the call of the runtime-shaped kernels of `gemm.rs`. Here every loop bound
//! is a constant, so the loops unroll into straight-line code, the accumulators stay in
//! registers, and the kernel is inlined into the generated network's AVX2 copy.
//!
//! Layout as in the rest of the crate: `A` is `M x K` with contiguous columns (`A(i, p)` at
//! `a[i + p * M]`), as nalgebra stores a weight matrix.
//!
//! Their safe entry points are the methods of [`Kernels`](super::Kernels) for `f32`: each
//! returns `false`, having done nothing, where the processor lacks AVX2 and FMA (the caller
//! then runs its portable loops), and otherwise asserts the slice lengths, which fold away for
//! the callers' constant sizes. The element count `M * K` in those checks is a
//! constant evaluated at compile time, so sizes whose product overflows a `usize` are a
//! compile error rather than a wrapped, too-small bound.

use crate::simd::x86::{lanes_below, reduce8};
use core::arch::x86_64::*;

/// Vectors of rows per block of the forward product: 4 vectors times 2 halves of `K`
/// make 8 independent chains of multiply-adds, enough to keep both FMA units busy.
const BLOCK: usize = 4;

/// The `rows` (at most 8) floats at `p` in a vector, zero above: masked when short.
///
/// # Safety
/// The processor has AVX2 and FMA. `p` is valid for reads of `rows.min(8)` floats.
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn load(p: *const f32, rows: usize) -> __m256 {
    // SAFETY: the features are the caller's promise; the full load reads 8 floats only where
    // `rows >= 8`, and the masked load touches only the lanes below `rows`, all readable by the
    // same promise.
    unsafe {
        if rows >= 8 {
            _mm256_loadu_ps(p)
        } else {
            _mm256_maskload_ps(p, lanes_below(rows))
        }
    }
}

/// Stores the first `rows` (at most 8) lanes of `v` at `p`. A short vector goes through
/// the stack one float at a time rather than by a masked store, which a load of the same
/// floats (the next layer reading its input) could not be forwarded from.
///
/// # Safety
/// The processor has AVX2 and FMA. `p` is valid for writes of `rows.min(8)` floats.
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn store(p: *mut f32, rows: usize, v: __m256) {
    // SAFETY: the features are the caller's promise; the full store writes 8 floats only where
    // `rows >= 8`, the loop `rows` floats otherwise, all writable by the same promise (`lanes`
    // is a local array of 8).
    unsafe {
        if rows >= 8 {
            _mm256_storeu_ps(p, v);
        } else {
            let mut lanes = [0.0f32; 8];
            _mm256_storeu_ps(lanes.as_mut_ptr(), v);
            for (r, &lane) in lanes.iter().enumerate().take(rows) {
                *p.add(r) = lane;
            }
        }
    }
}

/// See [`Kernels::gemv`](super::Kernels::gemv): blocks of up to 32 rows.
///
/// # Safety
/// The processor has AVX2 and FMA. `a` is valid for reads of `M * K` floats, `x` of `K`, and
/// `y` for reads and writes of `M`.
#[target_feature(enable = "avx2,fma")]
#[inline]
pub unsafe fn gemv<const M: usize, const K: usize>(a: *const f32, x: *const f32, y: *mut f32) {
    if M < 8 && 8 % M == 0 {
        // SAFETY: this function's own contract, and `M` divides 8, as `gemv_short` needs.
        return unsafe { gemv_short::<M, K>(a, x, y) };
    }
    let mut r0 = 0;
    while r0 < M {
        let rows = (M - r0).min(8 * BLOCK);
        // SAFETY: `r0 < M`, so `a + r0` and `y + r0` stay inside their operands, and the `rows`
        // rows from there lie below `M`, in every column of `a` and in `y`: the contract of
        // `gemv_rows`, with the features this function's.
        unsafe {
            let (a, y) = (a.add(r0), y.add(r0));
            // Fewer vectors of rows, more chains: 8 to 16 accumulators either way.
            match rows.div_ceil(8) {
                4 => gemv_rows::<4, 2, M, K>(a, x, y, rows),
                3 => gemv_rows::<3, 4, M, K>(a, x, y, rows),
                2 => gemv_rows::<2, 4, M, K>(a, x, y, rows),
                _ => gemv_rows::<1, 8, M, K>(a, x, y, rows),
            }
        }
        r0 += 8 * BLOCK;
    }
}

/// [`gemv`] for `rows` rows (more than `8 (V - 1)`, at most `8 V`) in `V` vectors, summed
/// over `K` in `C` interleaved chains (column `p` goes to chain `p % C`), added at the end:
/// independent chains of multiply-adds hide their latency where `V` alone would not.
///
/// # Safety
/// The processor has AVX2 and FMA. `a` is the start of `rows` readable rows (at most `8 V`) in
/// each of `K` columns `M` floats apart; `x` is valid for reads of `K` floats, `y` for reads
/// and writes of `rows`.
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn gemv_rows<const V: usize, const C: usize, const M: usize, const K: usize>(
    a: *const f32,
    x: *const f32,
    y: *mut f32,
    rows: usize,
) {
    let rows_of = |v: usize| (rows - 8 * v).min(8);
    let mut acc = [[_mm256_setzero_ps(); V]; C];
    for (v, acc) in acc[0].iter_mut().enumerate() {
        // SAFETY: vector `v` covers rows `8 v .. 8 v + rows_of(v)`, below `rows`, all of which
        // `y` holds.
        *acc = unsafe { load(y.add(8 * v), rows_of(v)) };
    }
    // SAFETY: called for `p < K` only: `x + p` is inside `x`, column `p` starts at `a + p M`,
    // and the rows each load reads are below `rows`, as in the load of `y` above.
    let step = |acc: &mut [__m256; V], p: usize| unsafe {
        let xp = _mm256_set1_ps(*x.add(p));
        let column = a.add(p * M);
        for (v, acc) in acc.iter_mut().enumerate() {
            *acc = _mm256_fmadd_ps(load(column.add(8 * v), rows_of(v)), xp, *acc);
        }
    };
    let mut p = 0;
    while p + C <= K {
        for (c, acc) in acc.iter_mut().enumerate() {
            step(acc, p + c);
        }
        p += C;
    }
    for (c, acc) in acc.iter_mut().enumerate().take(K - p) {
        step(acc, p + c);
    }
    // A tree of sums over the chains.
    let mut width = C;
    while width > 1 {
        width /= 2;
        for c in 0..width {
            let other = acc[c + width];
            for (sum, &more) in acc[c].iter_mut().zip(&other) {
                *sum = _mm256_add_ps(*sum, more);
            }
        }
    }
    for (v, &sum) in acc[0].iter().enumerate() {
        // SAFETY: as for the load of `y` above: the same rows.
        unsafe { store(y.add(8 * v), rows_of(v), sum) };
    }
}

/// See [`Kernels::gemv_t`](super::Kernels::gemv_t): eight outputs at a time, each a dot
/// product down one column of `A`, the eight reduced together by a transpose of horizontal
/// adds.
///
/// # Safety
/// The processor has AVX2 and FMA. `a` is valid for reads of `M * K` floats, `x` of `M`, and
/// `y` for writes of `K`.
#[target_feature(enable = "avx2,fma")]
#[inline]
pub unsafe fn gemv_t<const M: usize, const K: usize>(a: *const f32, x: *const f32, y: *mut f32) {
    if M < 8 && 8 % M == 0 {
        // SAFETY: this function's own contract, and `M` divides 8, as `gemv_t_short` needs.
        return unsafe { gemv_t_short::<M, K>(a, x, y) };
    }
    // Eight outputs at a time, their partial dot products reduced together by `reduce8`.
    for c0 in (0..K).step_by(8) {
        let outputs = (K - c0).min(8);
        let mut acc = [_mm256_setzero_ps(); 8];
        let mut r = 0;
        while r < M {
            let rows = (M - r).min(8);
            // SAFETY: `r < M` and `rows = min(M - r, 8)`: the loads read rows `r .. r + rows`
            // of `x` and of column `c0 + c < K` of `a`, all inside.
            unsafe {
                let xv = load(x.add(r), rows);
                for (c, acc) in acc.iter_mut().enumerate().take(outputs) {
                    let w = load(a.add(r + (c0 + c) * M), rows);
                    *acc = _mm256_fmadd_ps(w, xv, *acc);
                }
            }
            r += 8;
        }
        // SAFETY: `c0 < K` and `outputs = min(K - c0, 8)`: inside `y`.
        unsafe { store(y.add(c0), outputs, reduce8(acc)) };
    }
}

/// See [`Kernels::gemv_t_outer`](super::Kernels::gemv_t_outer): eight columns of `A` at a
/// time, as in [`gemv_t`], each vector of a column updated and stored right after it was used
/// for the dot product.
///
/// # Safety
/// The processor has AVX2 and FMA. `M` is a multiple of 8; `a` is valid for reads and writes of
/// `M * K` floats, `x` for reads of `M`, `v` of `K`, and `y` for writes of `K`.
#[target_feature(enable = "avx2,fma")]
#[inline]
pub unsafe fn gemv_t_outer<const M: usize, const K: usize>(
    a: *mut f32,
    x: *const f32,
    v: *const f32,
    y: *mut f32,
    alpha: f32,
) {
    // The frame of `gemv_t`, written out in both: with the dot products in a closure returning
    // their eight accumulators to a shared frame, LLVM interleaved the update stores with the
    // reductions here and spilled vectors (+20% instructions in the online workload's step).
    for c0 in (0..K).step_by(8) {
        let outputs = (K - c0).min(8);
        let mut acc = [_mm256_setzero_ps(); 8];
        for (c, acc) in acc.iter_mut().enumerate().take(outputs) {
            // SAFETY: `c0 + c < K`, so `v + c0 + c` is inside `v` and the column inside `a`;
            // `r < M` steps by 8 and `M` is a multiple of 8, so every whole vector at `r` is
            // inside the column and inside `x`.
            unsafe {
                let s = _mm256_set1_ps(alpha * *v.add(c0 + c));
                let column = a.add((c0 + c) * M);
                for r in (0..M).step_by(8) {
                    let xv = _mm256_loadu_ps(x.add(r));
                    let w = _mm256_loadu_ps(column.add(r));
                    *acc = _mm256_fmadd_ps(w, xv, *acc);
                    _mm256_storeu_ps(column.add(r), _mm256_fmadd_ps(xv, s, w));
                }
            }
        }
        // SAFETY: `c0 < K` and `outputs = min(K - c0, 8)`: inside `y`, which the caller
        // promised writable for `K` floats.
        unsafe { store(y.add(c0), outputs, reduce8(acc)) };
    }
}

/// See [`Kernels::outer`](super::Kernels::outer): column `j` of `A` is `u` times
/// `alpha v(j)`, whole vectors and then the last `M % 8` rows one by one.
///
/// # Safety
/// The processor has AVX2 and FMA. `u` is valid for reads of `M` floats, `v` of `K`, and `a`
/// for reads and writes of `M * K`.
#[target_feature(enable = "avx2,fma")]
#[inline]
pub unsafe fn outer<const M: usize, const K: usize>(
    u: *const f32,
    v: *const f32,
    a: *mut f32,
    alpha: f32,
    add: bool,
) {
    if M < 8 && 8 % M == 0 {
        // SAFETY: this function's own contract, and `M` divides 8, as `outer_short` needs.
        return unsafe { outer_short::<M, K>(u, v, a, alpha, add) };
    }
    for j in 0..K {
        // SAFETY: `j < K`: `v + j` is inside `v` and column `j` inside `a`; whole vectors at
        // `i` with `i + 8 <= M`, then single floats at `i < M`, inside `u` and the column.
        unsafe {
            let s = alpha * *v.add(j);
            let sv = _mm256_set1_ps(s);
            let column = a.add(j * M);
            let mut i = 0;
            while i + 8 <= M {
                let uv = _mm256_loadu_ps(u.add(i));
                let out = column.add(i);
                let value = if add {
                    _mm256_fmadd_ps(uv, sv, _mm256_loadu_ps(out))
                } else {
                    _mm256_mul_ps(uv, sv)
                };
                _mm256_storeu_ps(out, value);
                i += 8;
            }
            while i < M {
                let out = column.add(i);
                *out = if add {
                    crate::simd::x86::mul_add(*u.add(i), s, *out)
                } else {
                    *u.add(i) * s
                };
                i += 1;
            }
        }
    }
}

/// Lane `l` of a vector over a matrix of `M` rows (`M` dividing 8) stored as one run:
/// which of the vector's `8 / M` columns it is in, and which row.
#[target_feature(enable = "avx2,fma")]
#[inline]
fn lane_columns_rows<const M: usize>() -> (__m256i, __m256i) {
    let lane = |l: usize| [(l / M) as i32, (l % M) as i32];
    let [c0, r0] = lane(0);
    let [c1, r1] = lane(1);
    let [c2, r2] = lane(2);
    let [c3, r3] = lane(3);
    let [c4, r4] = lane(4);
    let [c5, r5] = lane(5);
    let [c6, r6] = lane(6);
    let [c7, r7] = lane(7);
    (
        _mm256_setr_epi32(c0, c1, c2, c3, c4, c5, c6, c7),
        _mm256_setr_epi32(r0, r1, r2, r3, r4, r5, r6, r7),
    )
}

/// The `count` floats of a run of `len` floats starting at `at` (`at < len` or
/// `count == 0`), zero above, without forming a pointer past the run.
///
/// # Safety
/// The processor has AVX2 and FMA. `p` is valid for reads of `len` floats, and `count` is at
/// most 8.
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn load_run(p: *const f32, at: usize, len: usize, count: usize) -> __m256 {
    if at >= len || count == 0 {
        return _mm256_setzero_ps();
    }
    // SAFETY: `at < len`, as tested above, so `p + at` is inside the run and so are the
    // `min(count, len - at)` floats from it.
    unsafe { load(p.add(at), count.min(len - at)) }
}

/// [`gemv`] for 1, 2 or 4 rows (a layer with few outputs): `A` is walked as one
/// contiguous run, `8 / M` columns per vector, each lane multiplied by its column's `x`;
/// four chains of multiply-adds; at the end each row's lanes are summed. Instead of one
/// mostly empty masked load per column.
///
/// # Safety
/// The processor has AVX2 and FMA. `M` is 1, 2 or 4; `a` is valid for reads of `M * K` floats,
/// `x` of `K`, and `y` for reads and writes of `M`.
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn gemv_short<const M: usize, const K: usize>(a: *const f32, x: *const f32, y: *mut f32) {
    const CHAINS: usize = 4;
    let per = 8 / M;
    let (column_of, _) = lane_columns_rows::<M>();
    let vectors = K.div_ceil(per);
    let mut acc = [_mm256_setzero_ps(); CHAINS];
    for t in 0..vectors {
        // SAFETY: `load_run` is bounded by the lengths `M K` of `a` and `K` of `x`, so neither
        // load reads past its operand.
        unsafe {
            // The last vector may hold fewer columns: both loads are then masked, and
            // the missing lanes are zero times zero.
            let columns = (K - t * per).min(per);
            let av = load_run(a, t * 8, M * K, columns * M);
            let xv = _mm256_permutevar8x32_ps(load_run(x, t * per, K, columns), column_of);
            acc[t % CHAINS] = _mm256_fmadd_ps(av, xv, acc[t % CHAINS]);
        }
    }
    let sum = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
    // Lane l holds a part of row l % M: fold the vector down to its first M lanes.
    let mut half = _mm_add_ps(_mm256_castps256_ps128(sum), _mm256_extractf128_ps::<1>(sum));
    if M <= 2 {
        half = _mm_add_ps(half, _mm_movehl_ps(half, half));
    }
    if M == 1 {
        half = _mm_add_ss(half, _mm_movehdup_ps(half));
    }
    // SAFETY: `y` holds `M` floats, `M <= 8`: the short load and store touch those only.
    unsafe {
        let total = _mm256_add_ps(_mm256_castps128_ps256(half), load(y, M));
        store(y, M, total);
    }
}

/// [`gemv_t`] for 1, 2 or 4 rows: eight outputs (columns) from `M` vectors of `A`'s run,
/// each multiplied by `x` repeated along it, the `M` lanes of each column summed by
/// horizontal adds. Instead of one mostly empty masked load per column.
///
/// # Safety
/// The processor has AVX2 and FMA. `M` is 1, 2 or 4; `a` is valid for reads of `M * K` floats,
/// `x` of `M`, and `y` for writes of `K`.
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn gemv_t_short<const M: usize, const K: usize>(a: *const f32, x: *const f32, y: *mut f32) {
    let (_, row_of) = lane_columns_rows::<M>();
    // SAFETY: `x` holds `M` floats, `M <= 8`.
    let xv = _mm256_permutevar8x32_ps(unsafe { load(x, M) }, row_of);
    let mut c0 = 0;
    while c0 < K {
        let outputs = (K - c0).min(8);
        // The products of columns c0 .. c0 + 8, M vectors of them.
        // SAFETY: `load_run` is bounded by the length `M K` of `a`: no read past it.
        let part = |v: usize| unsafe {
            let at = c0 * M + 8 * v;
            _mm256_mul_ps(
                load_run(a, at, M * K, outputs * M - (8 * v).min(outputs * M)),
                xv,
            )
        };
        let sums = match M {
            // One row: the products are the outputs.
            1 => part(0),
            // Pairs: [c0 c1 c4 c5 | c2 c3 c6 c7], then the 64-bit halves put in order.
            2 => {
                let h = _mm256_hadd_ps(part(0), part(1));
                _mm256_castpd_ps(_mm256_permute4x64_pd::<0b11_01_10_00>(_mm256_castps_pd(h)))
            }
            // Quads: two rounds of pairs give [c0 c2 c4 c6 | c1 c3 c5 c7], interleaved.
            _ => {
                let h01 = _mm256_hadd_ps(part(0), part(1));
                let h23 = _mm256_hadd_ps(part(2), part(3));
                let h = _mm256_hadd_ps(h01, h23);
                _mm256_permutevar8x32_ps(h, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7))
            }
        };
        // SAFETY: `c0 < K` and `outputs = min(K - c0, 8)`: inside `y`.
        unsafe { store(y.add(c0), outputs, sums) };
        c0 += 8;
    }
}

/// [`outer`] for a column of 1, 2 or 4 rows (a layer with few outputs): `A` is walked as
/// one contiguous run, `8 / M` columns per vector, `u` repeated along the vector and each
/// column's `alpha v(j)` spread over its `M` lanes, instead of one float at a time.
///
/// # Safety
/// The processor has AVX2 and FMA. `M` is 1, 2 or 4; `u` is valid for reads of `M` floats, `v`
/// of `K`, and `a` for reads and writes of `M * K`.
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn outer_short<const M: usize, const K: usize>(
    u: *const f32,
    v: *const f32,
    a: *mut f32,
    alpha: f32,
    add: bool,
) {
    let per = 8 / M;
    // Lane l of a vector belongs to column l / M and row l % M.
    let column_of = _mm256_setr_epi32(
        0,
        (1 / M) as i32,
        (2 / M) as i32,
        (3 / M) as i32,
        (4 / M) as i32,
        (5 / M) as i32,
        (6 / M) as i32,
        (7 / M) as i32,
    );
    let row_of = _mm256_setr_epi32(
        0,
        (1 % M) as i32,
        (2 % M) as i32,
        (3 % M) as i32,
        (4 % M) as i32,
        (5 % M) as i32,
        (6 % M) as i32,
        (7 % M) as i32,
    );
    // SAFETY: `u` holds `M` floats; while `j + per <= K`, `v + j` holds the `per` floats loaded
    // and `a + j M` the `per M = 8` floats stored; the tail loops keep `j < K` and `i < M`.
    unsafe {
        let uv = _mm256_permutevar8x32_ps(load(u, M), row_of);
        let alpha = _mm256_set1_ps(alpha);
        let mut j = 0;
        while j + per <= K {
            let sv = _mm256_mul_ps(
                _mm256_permutevar8x32_ps(load(v.add(j), per), column_of),
                alpha,
            );
            let out = a.add(j * M);
            let value = if add {
                _mm256_fmadd_ps(uv, sv, _mm256_loadu_ps(out))
            } else {
                _mm256_mul_ps(uv, sv)
            };
            _mm256_storeu_ps(out, value);
            j += per;
        }
        let alpha = _mm256_cvtss_f32(alpha);
        for j in j..K {
            let s = alpha * *v.add(j);
            for i in 0..M {
                let out = a.add(j * M + i);
                *out = if add {
                    crate::simd::x86::mul_add(*u.add(i), s, *out)
                } else {
                    *u.add(i) * s
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::simd::{Kernels, has_avx2_fma};

    fn values(len: usize, salt: u32) -> Vec<f32> {
        (0..len)
            .map(|i| {
                ((i as u32).wrapping_mul(2654435761).wrapping_add(salt) % 1000) as f32 / 500.0 - 1.0
            })
            .collect()
    }

    fn close(got: f32, want: f64) -> bool {
        (got as f64 - want).abs() <= 1e-5 * (1.0 + want.abs())
    }

    /// `got[i]` against `want(i)`, for every `i`.
    fn assert_close(what: &str, got: &[f32], want: impl Fn(usize) -> f64) {
        for (i, &got) in got.iter().enumerate() {
            let want = want(i);
            assert!(close(got, want), "{what} {i}: {got} vs {want}");
        }
    }

    /// Every kernel against the definition for one shape; nothing written past the end.
    fn check<const M: usize, const K: usize>() {
        if !has_avx2_fma() {
            return;
        }
        let (a, x, u) = (values(M * K, 1), values(K, 2), values(M, 3));
        // y = A x + y, with a guard float past the end.
        let mut y = values(M + 1, 4);
        let before = y.clone();
        assert!(<f32 as Kernels>::gemv::<M, K>(&a, &x, &mut y[..M]));
        assert_close(&format!("gemv {M}x{K} row"), &y[..M], |i| {
            let products = (0..K).map(|p| a[i + p * M] as f64 * x[p] as f64);
            before[i] as f64 + products.sum::<f64>()
        });
        assert_eq!(y[M], before[M]);
        // y = A^T u
        let mut y = values(K + 1, 5);
        let guard = y[K];
        assert!(<f32 as Kernels>::gemv_t::<M, K>(&a, &u, &mut y[..K]));
        assert_close(&format!("gemv_t {M}x{K} column"), &y[..K], |p| {
            (0..M).map(|i| a[i + p * M] as f64 * u[i] as f64).sum()
        });
        assert_eq!(y[K], guard);
        // y = A^T u, then A += alpha u x^T, in one pass (where M allows).
        let mut c = values(M * K + 1, 6);
        let before = c.clone();
        let mut y = values(K + 1, 5);
        if <f32 as Kernels>::gemv_t_outer::<M, K>(&mut c[..M * K], &u, &x, &mut y[..K], -0.5) {
            for p in 0..K {
                let want = (0..M)
                    .map(|i| before[i + p * M] as f64 * u[i] as f64)
                    .sum::<f64>();
                assert!(close(y[p], want), "gemv_t_outer {M}x{K} column {p}");
                for i in 0..M {
                    let want = before[i + p * M] as f64 - 0.5 * u[i] as f64 * x[p] as f64;
                    assert!(close(c[i + p * M], want), "gemv_t_outer {M}x{K} ({i},{p})");
                }
            }
            assert_eq!((y[K], c[M * K]), (guard, before[M * K]));
        } else {
            assert!(!M.is_multiple_of(8), "{M}x{K} has whole vectors");
        }
        // A (+)= alpha u x^T
        for (alpha, add) in [(1.0f32, false), (-0.5, true)] {
            let mut c = values(M * K + 1, 6);
            let before = c.clone();
            assert!(<f32 as Kernels>::outer::<M, K>(
                &u,
                &x,
                &mut c[..M * K],
                alpha,
                add
            ));
            for p in 0..K {
                for i in 0..M {
                    let start = if add { before[i + p * M] as f64 } else { 0.0 };
                    let want = start + alpha as f64 * u[i] as f64 * x[p] as f64;
                    let got = c[i + p * M];
                    assert!(close(got, want), "outer {M}x{K} ({i},{p}): {got} vs {want}");
                }
            }
            assert_eq!(c[M * K], before[M * K]);
        }
    }

    #[test]
    fn match_the_definition() {
        check::<32, 16>();
        check::<32, 32>();
        check::<4, 32>();
        check::<1, 64>();
        check::<7, 9>();
        check::<13, 11>();
        check::<40, 24>();
        check::<64, 64>();
        check::<17, 5>();
        check::<8, 8>();
        check::<2, 33>();
        check::<4, 9>();
        check::<1, 13>();
        check::<1, 1>();
        check::<1, 8>();
        check::<1, 9>();
        check::<2, 1>();
        check::<2, 3>();
        check::<2, 16>();
        check::<4, 1>();
        check::<4, 2>();
        check::<4, 7>();
        check::<4, 64>();
    }
}
