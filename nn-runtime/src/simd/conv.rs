//! Direct 3x3 convolutions (stride 1, padding 1, dilation 1, one group) on small maps, for
//! `f32` with AVX2 and FMA: the shaped convolution's forward pass and its input gradient
//! without im2col.
//!
//! Why: through im2col each sample of the digits conv network paid a zeroed `CK x HO WO`
//! buffer (37 KiB for a `Conv2d(16, 16, 3)` at 8x8), the unfold, a small GEMM and, backward,
//! a fold; the profile had half the training step in those per-sample GEMMs and a third in
//! the unfold, fold and copies. Here each sample is copied once into a zero-padded buffer
//! (`[C][H + 2][W + 2]`, border and all, no buffer zeroed) and the output planes are
//! accumulated in registers, a row of eight (at width 8) or two rows of four (at width 4) per
//! vector, several output channels at once so that every load of the input feeds more than
//! one fused multiply-add. The input's gradient is the same kernel on the padded output
//! gradient with the weight flipped and transposed.
//!
//! Layouts are the runtime's: a sample's map channel-major (`c H W + h W + w`), a batch one
//! sample after another; the weight `CO x CI 9` column-major, its entry `(o, (ci 3 + kh) 3 +
//! kw)` at `((ci 3 + kh) 3 + kw) CO + o` (torch's `weight[o, ci, kh, kw]`).

use core::arch::x86_64::*;
use core::mem::MaybeUninit;

/// Whether [`forward`] and [`backward_input`] take maps of `H x W` with `CO` outputs (and,
/// backward, `CI` inputs): width 8 with a multiple of 4 rows and an even number of output
/// channels, or width 4 with a multiple of 4 rows and a multiple of 4 output channels (the
/// register blocks of [`plane_block`]). Other shapes keep im2col.
pub(crate) const fn fits(co: usize, h: usize, w: usize) -> bool {
    h.is_multiple_of(4)
        && h > 0
        && co > 0
        && ((w == 8 && co.is_multiple_of(2)) || (w == 4 && co.is_multiple_of(4)))
}

/// Floats of one sample's padded map, `C (H + 2) (W + 2)`, which the kernels' buffers of
/// `4 C H W` floats hold for every shape [`fits`] takes (`H, W >= 4`).
const fn padded(c: usize, h: usize, w: usize) -> usize {
    c * (h + 2) * (w + 2)
}

/// Writes sample `x` (`C x H x W`, channel-major) into `pad` as a `[C][H + 2][W + 2]` map
/// with a zero border: every float of the first `C (H + 2) (W + 2)`, so the buffer needs no
/// zeroing first (the memsets of 4 `C H W` floats were a fifth of a single-sample forward's
/// instructions, callgrind).
#[inline(always)]
fn pad_into<const C: usize, const H: usize, const W: usize>(
    x: &[f32],
    pad: &mut [MaybeUninit<f32>],
) {
    let (wp, zero) = (W + 2, MaybeUninit::new(0.0));
    let planes = pad[..padded(C, H, W)].chunks_exact_mut((H + 2) * wp);
    for (plane, x) in planes.zip(x.chunks_exact(H * W)) {
        plane[..wp].fill(zero);
        plane[(H + 1) * wp..].fill(zero);
        for (row, x) in plane[wp..].chunks_exact_mut(wp).zip(x.chunks_exact(W)) {
            row[0] = zero;
            row[W + 1] = zero;
            for (to, &from) in row[1..=W].iter_mut().zip(x) {
                *to = MaybeUninit::new(from);
            }
        }
    }
}

/// The forward pass of a batch: `y[b]` (`CO x H x W`) `= bias + w * x[b]`, the 3x3
/// correlation of each sample of `x` (`CI x H x W`, `NI = CI H W` floats each) with zero
/// padding 1; no bias where `bias` is empty. `y` is overwritten, every element (it may
/// start uninitialised).
///
/// # Safety
///
/// The processor must have AVX2 and FMA, and [`fits`]`(CO, H, W)` must hold; lengths are
/// checked here.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn forward<
    const CI: usize,
    const CO: usize,
    const H: usize,
    const W: usize,
    const NI: usize,
>(
    w: &[f32],
    bias: &[f32],
    x: &[f32],
    y: &mut [MaybeUninit<f32>],
) {
    // Asserted, not in a `const` block: the callers monomorphise this for shapes that do not
    // fit too, behind a test of `fits` that folds away.
    assert!(fits(CO, H, W) && NI == CI * H * W && padded(CI, H, W) <= 4 * NI);
    let no = CO * H * W;
    assert!(w.len() >= CO * CI * 9 && (bias.is_empty() || bias.len() >= CO));
    assert!(x.len() / NI == y.len() / no && x.len().is_multiple_of(NI));
    let mut pad = [[MaybeUninit::<f32>::uninit(); NI]; 4];
    let pad = pad.as_flattened_mut();
    for (xb, yb) in x.chunks_exact(NI).zip(y.chunks_exact_mut(no)) {
        pad_into::<CI, H, W>(xb, pad);
        let xp = pad.as_ptr().cast::<f32>();
        // SAFETY: the features are present (this function's contract); `w` holds the
        // `CO x CI 9` weight and `bias` is empty or holds `CO`, as asserted; `xp` the padded
        // `CI x (H + 2) x (W + 2)` map, all of it written by `pad_into`; `yb` the
        // `CO x H x W` output.
        unsafe { planes::<CI, CO, H, W>(w.as_ptr(), bias, xp, yb.as_mut_ptr().cast()) };
    }
}

/// The input's gradient of a batch: `dx[b]` (`CI x H x W`) `= sum_o w[o, ci]^flipped *
/// dy[b][o]`, the full correlation of each sample's output gradient `dy` (`CO x H x W`,
/// `NO = CO H W` floats each) with the flipped, transposed weight: the transpose of
/// [`forward`]. `dx` is overwritten, every element (it may start uninitialised).
///
/// # Safety
///
/// The processor must have AVX2 and FMA, and [`fits`]`(CI, H, W)` must hold; lengths are
/// checked here.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn backward_input<
    const CI: usize,
    const CO: usize,
    const H: usize,
    const W: usize,
    const NO: usize,
    const CK: usize,
>(
    w: &[f32],
    dy: &[f32],
    dx: &mut [MaybeUninit<f32>],
) {
    assert!(fits(CI, H, W) && NO == CO * H * W && CK == CI * 9 && padded(CO, H, W) <= 4 * NO);
    let ni = CI * H * W;
    assert!(w.len() >= CO * CK);
    assert!(dy.len() / NO == dx.len() / ni && dy.len().is_multiple_of(NO));
    // wf is a `CI x CO 9` weight: its entry `(ci, (o 3 + 2 - kh) 3 + 2 - kw)` is w's
    // `(o, (ci 3 + kh) 3 + kw)`, so that correlating with it undoes the forward shifts.
    let mut wf = [[0.0f32; CK]; CO];
    let wf = wf.as_flattened_mut();
    for ci in 0..CI {
        for o in 0..CO {
            for k in 0..9 {
                wf[(o * 9 + 8 - k) * CI + ci] = w[(ci * 9 + k) * CO + o];
            }
        }
    }
    let mut pad = [[MaybeUninit::<f32>::uninit(); NO]; 4];
    let pad = pad.as_flattened_mut();
    for (dyb, dxb) in dy.chunks_exact(NO).zip(dx.chunks_exact_mut(ni)) {
        pad_into::<CO, H, W>(dyb, pad);
        let dyp = pad.as_ptr().cast::<f32>();
        // SAFETY: as in `forward`, with the roles of the channels exchanged: `wf` is the
        // `CI x CO 9` weight, `dyp` the padded `CO x (H + 2) x (W + 2)` gradient (written by
        // `pad_into`), `dxb` the `CI x H x W` output.
        unsafe { planes::<CO, CI, H, W>(wf.as_ptr(), &[], dyp, dxb.as_mut_ptr().cast()) };
    }
}

/// The `CO` output planes of one sample: `y[o] = bias[o] + sum_{ci, kh, kw} w(o, (ci 3 + kh)
/// 3 + kw) xp[ci][h + kh][w + kw]`, `xp` padded, in register blocks of [`plane_block`].
///
/// # Safety
///
/// AVX2 and FMA; `w` holds `CO CI 9` floats, `bias` none or `CO`, `xp` `CI (H + 2) (W + 2)`,
/// `y` `CO H W`; [`fits`]`(CO, H, W)`.
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn planes<const CI: usize, const CO: usize, const H: usize, const W: usize>(
    w: *const f32,
    bias: &[f32],
    xp: *const f32,
    y: *mut f32,
) {
    // Output channels per block: each input vector loaded feeds OB fused multiply-adds.
    // At width 8, 2 channels x 4 rows = 8 accumulators; at width 4, 4 channels x 2 vectors
    // (4 rows) = 8, the rest of the 16 registers for the input and the broadcast weights.
    let ob = if W == 8 { 2 } else { 4 };
    for o in (0..CO).step_by(ob) {
        for h in (0..H).step_by(4) {
            // SAFETY: `o + ob <= CO` and `h + 4 <= H` (fits), the rest as this function's.
            unsafe {
                if W == 8 {
                    plane_block::<CI, CO, H, W, 2, 4>(w, bias, xp, y, o, h);
                } else {
                    plane_block::<CI, CO, H, W, 4, 2>(w, bias, xp, y, o, h);
                }
            }
        }
    }
}

/// Output channels `o..o + OB`, rows `h..h + 4`, of [`planes`]: `V` vectors per plane (a
/// row of eight each at width 8, two rows of four at width 4), `OB x V` accumulators.
///
/// # Safety
///
/// As [`planes`], with `o + OB <= CO` and `h + 4 <= H`.
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn plane_block<
    const CI: usize,
    const CO: usize,
    const H: usize,
    const W: usize,
    const OB: usize,
    const V: usize,
>(
    w: *const f32,
    bias: &[f32],
    xp: *const f32,
    y: *mut f32,
    o: usize,
    h: usize,
) {
    let wp = W + 2;
    let mut acc = [[_mm256_setzero_ps(); V]; OB];
    if !bias.is_empty() {
        for (i, acc) in acc.iter_mut().enumerate() {
            *acc = [_mm256_set1_ps(bias[o + i]); V];
        }
    }
    for ci in 0..CI {
        // SAFETY: plane `ci < CI` of `CI` planes of `(H + 2) (W + 2)`.
        let plane = unsafe { xp.add(ci * (H + 2) * wp) };
        for kh in 0..3 {
            for kw in 0..3 {
                let c = (ci * 3 + kh) * 3 + kw;
                let mut wv = [_mm256_setzero_ps(); OB];
                for (i, wv) in wv.iter_mut().enumerate() {
                    // SAFETY: entry `c CO + o + i < CI 9 CO` of the weight.
                    *wv = _mm256_set1_ps(unsafe { *w.add(c * CO + o + i) });
                }
                for v in 0..V {
                    // SAFETY: rows `h + v + kh` (or `h + 2 v + kh` and the next) are at most
                    // `H + 1`, and columns `kw..kw + 8` (or `kw..kw + 4`) lie inside a row
                    // of `W + 2`.
                    let x = unsafe {
                        if W == 8 {
                            _mm256_loadu_ps(plane.add((h + v + kh) * wp + kw))
                        } else {
                            let row = plane.add((h + 2 * v + kh) * wp + kw);
                            _mm256_loadu2_m128(row.add(wp), row)
                        }
                    };
                    for (acc, wv) in acc.iter_mut().zip(&wv) {
                        acc[v] = _mm256_fmadd_ps(*wv, x, acc[v]);
                    }
                }
            }
        }
    }
    for (i, acc) in acc.iter().enumerate() {
        for (v, acc) in acc.iter().enumerate() {
            // SAFETY: plane `o + i < CO`, its rows `h + v` (width 8) or `h + 2 v` and the
            // next (width 4, contiguous), eight floats inside the plane.
            unsafe {
                let row = if W == 8 { h + v } else { h + 2 * v };
                _mm256_storeu_ps(y.add(((o + i) * H + row) * W), *acc);
            }
        }
    }
}

/// Whether [`backward_weight`] takes `CO` output channels on `H x W` maps: whole vectors of
/// output channels (at most 4 of them, the register blocks of [`weight_block`]), and maps of
/// at least 2 x 2 (so that a padded map fits in the buffer of `4 C H W` floats).
pub(crate) const fn fits_weight(co: usize, h: usize, w: usize) -> bool {
    co.is_multiple_of(8) && co > 0 && co <= 32 && h >= 2 && w >= 2
}

/// The weight's gradient of a batch: `dw` (`CO x CI 9`, column-major) overwritten with
/// `sum_b sum_{h, w} dy[b][o][h][w] xp[b][ci][h + kh][w + kw]`, `xp` the padded input.
///
/// Vectorised over the output channels, where the weight's columns are contiguous: each
/// sample's output gradient is transposed once to position-major (`[H W][CO]`), and for a
/// block of kernel entries each position adds an input value (broadcast) times the
/// position's `CO` gradients into the entries' columns, kept in registers over the
/// sample's positions and added into `dw` once per sample. No unfolded copy, no horizontal
/// sums.
///
/// # Safety
///
/// The processor must have AVX2 and FMA, and [`fits_weight`]`(CO, H, W)` must hold; lengths
/// are checked here.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn backward_weight<
    const CI: usize,
    const CO: usize,
    const H: usize,
    const W: usize,
    const NI: usize,
    const NO: usize,
>(
    x: &[f32],
    dy: &[f32],
    dw: &mut [f32],
) {
    assert!(fits_weight(CO, H, W) && NI == CI * H * W && NO == CO * H * W);
    assert!(padded(CI, H, W) <= 4 * NI && dw.len() >= CO * CI * 9);
    assert!(x.len() / NI == dy.len() / NO && x.len().is_multiple_of(NI));
    dw[..CO * CI * 9].fill(0.0);
    let mut pad = [[MaybeUninit::<f32>::uninit(); NI]; 4];
    let pad = pad.as_flattened_mut();
    let mut dyt = [0.0f32; NO];
    let p = H * W;
    for (xb, dyb) in x.chunks_exact(NI).zip(dy.chunks_exact(NO)) {
        pad_into::<CI, H, W>(xb, pad);
        if p.is_multiple_of(8) {
            // SAFETY: the features are present (this function's contract); `CO` is a
            // multiple of 8 (`fits_weight`) and so is `p`, and `dyb`, `dyt` hold `CO p`.
            unsafe { transpose8::<CO>(dyb.as_ptr(), dyt.as_mut_ptr(), p) };
        } else {
            for o in 0..CO {
                for (q, &d) in dyb[o * p..][..p].iter().enumerate() {
                    dyt[q * CO + o] = d;
                }
            }
        }
        // Kernel entries per block: 12 accumulators (or 3 entries of 4 vectors), the
        // rest of the registers for the gradients and the broadcast input. `CI 9` is a
        // multiple of 3, so blocks of 3 finish what the larger blocks leave.
        let (xp, dt, dwp) = (pad.as_ptr().cast::<f32>(), dyt.as_ptr(), dw.as_mut_ptr());
        let ck = CI * 9;
        let mut c = 0;
        // SAFETY: the features are present (this function's contract); `xp` holds the padded
        // `CI x (H + 2) x (W + 2)` map (all of it written by `pad_into`), `dt` the `H W x CO` gradient, `dwp` the `CO x CI 9`
        // weight gradient, and every block stays below `CI 9` entries (the loop bounds).
        unsafe {
            match CO / 8 {
                1 => {
                    while c + 12 <= ck {
                        weight_block::<CO, H, W, 12, 1>(xp, dt, dwp, c);
                        c += 12;
                    }
                }
                2 => {
                    while c + 6 <= ck {
                        weight_block::<CO, H, W, 6, 2>(xp, dt, dwp, c);
                        c += 6;
                    }
                }
                _ => {}
            }
            while c < ck {
                match CO / 8 {
                    1 => weight_block::<CO, H, W, 3, 1>(xp, dt, dwp, c),
                    2 => weight_block::<CO, H, W, 3, 2>(xp, dt, dwp, c),
                    3 => weight_block::<CO, H, W, 3, 3>(xp, dt, dwp, c),
                    _ => weight_block::<CO, H, W, 3, 4>(xp, dt, dwp, c),
                }
                c += 3;
            }
        }
    }
}

/// `dt = d^T` for a `CO x p` row-major `d` (`dt` then `p x CO`), in 8 x 8 blocks of
/// register shuffles: the scalar transpose cost several instructions an element (callgrind).
///
/// # Safety
///
/// AVX2; `CO` and `p` multiples of 8, `d` and `dt` holding `CO p` floats each.
#[target_feature(enable = "avx2,fma")]
unsafe fn transpose8<const CO: usize>(d: *const f32, dt: *mut f32, p: usize) {
    for o in (0..CO).step_by(8) {
        for q in (0..p).step_by(8) {
            // SAFETY: rows `o..o + 8 <= CO` of `d`, columns `q..q + 8 <= p`; rows
            // `q..q + 8` of `dt`, columns `o..o + 8`: inside both (this function's contract).
            unsafe {
                let r: [__m256; 8] =
                    core::array::from_fn(|i| _mm256_loadu_ps(d.add((o + i) * p + q)));
                let t0 = _mm256_unpacklo_ps(r[0], r[1]);
                let t1 = _mm256_unpackhi_ps(r[0], r[1]);
                let t2 = _mm256_unpacklo_ps(r[2], r[3]);
                let t3 = _mm256_unpackhi_ps(r[2], r[3]);
                let t4 = _mm256_unpacklo_ps(r[4], r[5]);
                let t5 = _mm256_unpackhi_ps(r[4], r[5]);
                let t6 = _mm256_unpacklo_ps(r[6], r[7]);
                let t7 = _mm256_unpackhi_ps(r[6], r[7]);
                let u0 = _mm256_shuffle_ps::<0x44>(t0, t2);
                let u1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
                let u2 = _mm256_shuffle_ps::<0x44>(t1, t3);
                let u3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
                let u4 = _mm256_shuffle_ps::<0x44>(t4, t6);
                let u5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
                let u6 = _mm256_shuffle_ps::<0x44>(t5, t7);
                let u7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
                let c = [
                    _mm256_permute2f128_ps::<0x20>(u0, u4),
                    _mm256_permute2f128_ps::<0x20>(u1, u5),
                    _mm256_permute2f128_ps::<0x20>(u2, u6),
                    _mm256_permute2f128_ps::<0x20>(u3, u7),
                    _mm256_permute2f128_ps::<0x31>(u0, u4),
                    _mm256_permute2f128_ps::<0x31>(u1, u5),
                    _mm256_permute2f128_ps::<0x31>(u2, u6),
                    _mm256_permute2f128_ps::<0x31>(u3, u7),
                ];
                for (j, c) in c.iter().enumerate() {
                    _mm256_storeu_ps(dt.add((q + j) * CO + o), *c);
                }
            }
        }
    }
}

/// Kernel entries `c..c + CB` of [`backward_weight`] for one sample: `CB x V` accumulators
/// (`V = CO / 8`), added into `dw`'s columns `c..c + CB`.
///
/// # Safety
///
/// AVX2 and FMA; `xp` the padded map of `ci < CI` channels for every entry's `ci = c / 9`,
/// `dt` `H W CO` floats, `dw` the `CO x CI 9` gradient with `c + CB <= CI 9`; `V 8 == CO`.
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn weight_block<
    const CO: usize,
    const H: usize,
    const W: usize,
    const CB: usize,
    const V: usize,
>(
    xp: *const f32,
    dt: *const f32,
    dw: *mut f32,
    c: usize,
) {
    let wp = W + 2;
    // Where each entry's input is, relative to the output position's padded row and column.
    let off: [usize; CB] = core::array::from_fn(|j| {
        let (ci, k) = ((c + j) / 9, (c + j) % 9);
        ci * (H + 2) * wp + (k / 3) * wp + k % 3
    });
    let mut acc = [[_mm256_setzero_ps(); V]; CB];
    for h in 0..H {
        for w in 0..W {
            let q = h * W + w;
            let mut d = [_mm256_setzero_ps(); V];
            for (v, d) in d.iter_mut().enumerate() {
                // SAFETY: position `q < H W` of `H W` rows of `CO = 8 V` gradients.
                *d = unsafe { _mm256_loadu_ps(dt.add(q * CO + 8 * v)) };
            }
            for (j, acc) in acc.iter_mut().enumerate() {
                // SAFETY: row `h + k / 3 <= H + 1`, column `w + k % 3 <= W + 1` of a plane
                // of the padded map.
                let x = _mm256_set1_ps(unsafe { *xp.add(h * wp + w + off[j]) });
                for (acc, d) in acc.iter_mut().zip(&d) {
                    *acc = _mm256_fmadd_ps(x, *d, *acc);
                }
            }
        }
    }
    for (j, acc) in acc.iter().enumerate() {
        for (v, acc) in acc.iter().enumerate() {
            // SAFETY: column `c + j < CI 9` of `CO = 8 V` rows.
            unsafe {
                let at = dw.add((c + j) * CO + 8 * v);
                _mm256_storeu_ps(at, _mm256_add_ps(_mm256_loadu_ps(at), *acc));
            }
        }
    }
}
