//! AVX2 + FMA kernels for the small layers (sizes known at compile time, multiples of 8 along
//! the vectorised index): what the `Fma` instruction set of `super` runs. Each is the same
//! loop as its portable twin in `super`, written with intrinsics so that the register use is
//! ours and not the unroller's.
//!
//! Callers guarantee that the processor has AVX2 and FMA.

use std::arch::x86_64::*;

/// The eight lane sums of `a[0..8]`, in order, in one vector.
#[target_feature(enable = "avx2,fma")]
#[inline]
fn reduce8(a: [__m256; 8]) -> __m256 {
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

/// The sum of the lanes of `v`.
#[target_feature(enable = "avx2,fma")]
#[inline]
fn hsum(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_movehdup_ps(s));
    _mm_cvtss_f32(s)
}

/// The lanes of `x`, zero where subnormal: a comparison of `|x|` and a mask, no arithmetic
/// on `x`.
#[target_feature(enable = "avx2,fma")]
#[inline]
fn flush(x: __m256) -> __m256 {
    let abs = _mm256_andnot_ps(_mm256_set1_ps(-0.0), x);
    let normal = _mm256_cmp_ps::<_CMP_GE_OQ>(abs, _mm256_set1_ps(f32::MIN_POSITIVE));
    _mm256_and_ps(x, normal)
}

/// `y[b][o] = bias[o] + sum_i w[o][i] x[b][i]`; `IN % 8 == 0`. Outputs in groups of eight,
/// each group's eight dot products reduced together.
#[target_feature(enable = "avx2,fma")]
#[inline]
pub unsafe fn forward<const IN: usize, const OUT: usize, const B: usize>(
    w: &[[f32; IN]; OUT],
    bias: &[f32; OUT],
    x: &[[f32; IN]; B],
    y: &mut [[f32; OUT]; B],
) {
    let mut o = 0;
    while o + 8 <= OUT {
        for b in 0..B {
            let mut acc = [_mm256_setzero_ps(); 8];
            for c in 0..IN / 8 {
                unsafe {
                    let xv = _mm256_loadu_ps(x[b].as_ptr().add(8 * c));
                    for r in 0..8 {
                        let wv = _mm256_loadu_ps(w[o + r].as_ptr().add(8 * c));
                        acc[r] = _mm256_fmadd_ps(wv, xv, acc[r]);
                    }
                }
            }
            unsafe {
                let s = _mm256_add_ps(reduce8(acc), _mm256_loadu_ps(bias.as_ptr().add(o)));
                _mm256_storeu_ps(y[b].as_mut_ptr().add(o), s);
            }
        }
        o += 8;
    }
    while o < OUT {
        for b in 0..B {
            let mut acc = _mm256_setzero_ps();
            for c in 0..IN / 8 {
                unsafe {
                    let xv = _mm256_loadu_ps(x[b].as_ptr().add(8 * c));
                    let wv = _mm256_loadu_ps(w[o].as_ptr().add(8 * c));
                    acc = _mm256_fmadd_ps(wv, xv, acc);
                }
            }
            y[b][o] = hsum(acc) + bias[o];
        }
        o += 1;
    }
}

/// `acc[v] = sum_p s(p) * row(p)[8v..8v+8]` for `V` vectors: the shared inner loop of the
/// input and weight gradients.
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn axpy_chunk<const V: usize>(
    n: usize,
    scalar: impl Fn(usize) -> f32,
    row: impl Fn(usize) -> *const f32,
    out: *mut f32,
) {
    let mut acc = [_mm256_setzero_ps(); V];
    for p in 0..n {
        let s = _mm256_set1_ps(scalar(p));
        let r = row(p);
        for (v, acc) in acc.iter_mut().enumerate() {
            *acc = _mm256_fmadd_ps(s, unsafe { _mm256_loadu_ps(r.add(8 * v)) }, *acc);
        }
    }
    for (v, acc) in acc.iter().enumerate() {
        unsafe { _mm256_storeu_ps(out.add(8 * v), *acc) };
    }
}

/// Runs [`axpy_chunk`] over `len` floats (a multiple of 8) in chunks of up to 32.
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn axpy_row(
    len: usize,
    n: usize,
    scalar: impl Fn(usize) -> f32 + Copy,
    row: impl Fn(usize) -> *const f32 + Copy,
    out: *mut f32,
) {
    let mut i0 = 0;
    while i0 < len {
        let rows = move |p| unsafe { row(p).add(i0) };
        let out = unsafe { out.add(i0) };
        unsafe {
            match (len - i0) / 8 {
                1 => axpy_chunk::<1>(n, scalar, rows, out),
                2 => axpy_chunk::<2>(n, scalar, rows, out),
                3 => axpy_chunk::<3>(n, scalar, rows, out),
                _ => axpy_chunk::<4>(n, scalar, rows, out),
            }
        }
        i0 += 32;
    }
}

/// `dx[b][i] = sum_o dz[b][o] w[o][i]`; `IN % 8 == 0`.
#[target_feature(enable = "avx2,fma")]
#[inline]
pub unsafe fn input_grad<const IN: usize, const OUT: usize, const B: usize>(
    w: &[[f32; IN]; OUT],
    dz: &[[f32; OUT]; B],
    dx: &mut [[f32; IN]; B],
) {
    for b in 0..B {
        let d = &dz[b];
        unsafe {
            axpy_row(IN, OUT, |o| d[o], |o| w[o].as_ptr(), dx[b].as_mut_ptr());
        }
    }
}

/// `g[i] = sum_b dz[b][o] x[b][i]` (row `o` of the weight gradient); `IN % 8 == 0`.
#[target_feature(enable = "avx2,fma")]
#[inline]
pub unsafe fn weight_grad_row<const IN: usize, const OUT: usize, const B: usize>(
    o: usize,
    dz: &[[f32; OUT]; B],
    x: &[[f32; IN]; B],
    g: &mut [f32; IN],
) {
    unsafe {
        axpy_row(IN, B, |b| dz[b][o], |b| x[b].as_ptr(), g.as_mut_ptr());
    }
}

/// `p[i] += a * g[i]`; `N % 8 == 0`.
#[target_feature(enable = "avx2,fma")]
#[inline]
pub unsafe fn axpy<const N: usize>(a: f32, g: &[f32; N], p: &mut [f32; N]) {
    let a = _mm256_set1_ps(a);
    for c in 0..N / 8 {
        unsafe {
            let (g, p) = (g.as_ptr().add(8 * c), p.as_mut_ptr().add(8 * c));
            _mm256_storeu_ps(
                p,
                _mm256_fmadd_ps(a, _mm256_loadu_ps(g), _mm256_loadu_ps(p)),
            );
        }
    }
}

/// Adam's update (see `super::Isa::adam`); `N % 8 == 0`. `k` is
/// `[beta1, beta2, eps, step_size, 1 / sqrt(bias_correction2)]`.
#[target_feature(enable = "avx2,fma")]
#[inline]
pub unsafe fn adam<const N: usize>(
    k: [f32; 5],
    p: &mut [f32; N],
    g: &[f32; N],
    m: &mut [f32; N],
    v: &mut [f32; N],
) {
    let [b1, b2, eps, step, inv_bc2] = k.map(|x| _mm256_set1_ps(x));
    let (omb1, omb2) = (_mm256_set1_ps(1.0 - k[0]), _mm256_set1_ps(1.0 - k[1]));
    for c in 0..N / 8 {
        unsafe {
            let at = 8 * c;
            let gv = _mm256_loadu_ps(g.as_ptr().add(at));
            let mv = _mm256_fmadd_ps(
                b1,
                _mm256_loadu_ps(m.as_ptr().add(at)),
                _mm256_mul_ps(omb1, gv),
            );
            let g2 = _mm256_mul_ps(_mm256_mul_ps(omb2, gv), gv);
            let vv = _mm256_fmadd_ps(b2, _mm256_loadu_ps(v.as_ptr().add(at)), g2);
            // Moments below the smallest normal float are stored as zero (see `super::flush`).
            let (mv, vv) = (flush(mv), flush(vv));
            let denom = _mm256_fmadd_ps(_mm256_sqrt_ps(vv), inv_bc2, eps);
            let pv = _mm256_loadu_ps(p.as_ptr().add(at));
            let pv = _mm256_sub_ps(pv, _mm256_mul_ps(step, _mm256_div_ps(mv, denom)));
            _mm256_storeu_ps(m.as_mut_ptr().add(at), mv);
            _mm256_storeu_ps(v.as_mut_ptr().add(at), vv);
            _mm256_storeu_ps(p.as_mut_ptr().add(at), pv);
        }
    }
}

/// `acc[r] += sum_k h[k] wt[k][r]`; `R % 8 == 0`, `R <= 64`. The rows' accumulators stay in
/// registers (up to eight vectors) through the whole sum and are stored once.
#[target_feature(enable = "avx2,fma")]
#[inline]
pub unsafe fn broadcast_product<const K: usize, const R: usize>(
    wt: &[[f32; R]; K],
    h: &[f32; K],
    acc: &mut [f32; R],
) {
    let mut v = [_mm256_setzero_ps(); 8];
    for (c, v) in v.iter_mut().enumerate().take(R / 8) {
        *v = unsafe { _mm256_loadu_ps(acc.as_ptr().add(8 * c)) };
    }
    for k in 0..K {
        let s = _mm256_set1_ps(h[k]);
        for (c, v) in v.iter_mut().enumerate().take(R / 8) {
            *v = _mm256_fmadd_ps(unsafe { _mm256_loadu_ps(wt[k].as_ptr().add(8 * c)) }, s, *v);
        }
    }
    for (c, v) in v.iter().enumerate().take(R / 8) {
        unsafe { _mm256_storeu_ps(acc.as_mut_ptr().add(8 * c), *v) };
    }
}
