//! The hand-written baseline of the conv workload: the digits convolutional network of
//! `examples/data/digits_conv.rs`,
//!
//! ```text
//! Unflatten(1, 8, 8), Conv2d(1, 16, 3, padding = 1), ReLU, Conv2d(16, 16, 3, padding = 1),
//! ReLU, MaxPool2d(2), Conv2d(16, 32, 3, padding = 1), ReLU, MaxPool2d(2), Flatten,
//! Linear(128, 10)
//! ```
//!
//! one Adam training step on a batch of 32 with cross-entropy, and one single-sample forward.
//!
//! The same math as the generated code (torch's): a 3x3 convolution with zero padding 1 is
//! `bias[o] + sum_{ci, kh, kw} w[o][ci][kh][kw] x[ci][h + kh - 1][w + kw - 1]`; a 2x2 max-pool
//! takes the first maximum of each window in scan order (and sends the window's gradient
//! there); the weight gradient is summed over the batch and the positions, the bias gradient
//! likewise; Adam and the loss are the rest of this crate's. Sums run in other orders than the
//! runtime's im2col and GEMM kernels, so results agree to rounding, not bit for bit.
//!
//! Written as we would by hand, by direct loops rather than im2col:
//!
//! * every map a convolution reads is kept zero-padded (`[C][H + 2][W + 2]`, the border
//!   written once, when the buffers are made, and never again): the layer below writes its
//!   ReLU output straight into the padded buffer's interior, so a convolution has no bounds
//!   tests and no copies;
//! * a convolution's output plane is accumulated in registers: at 8x8 a row of eight per
//!   register, each weight broadcast once into all eight rows of the shifted input; at 4x4 two
//!   rows per register and four output planes at once, each pair of input rows loaded once for
//!   the four (the AVX2 + FMA kernels of `avx`; portable loops otherwise);
//! * the input's gradient is the same kernel run on the padded output gradient with the
//!   weights flipped and transposed (`wf[ci][o][2 - kh][2 - kw] = w[o][ci][kh][kw]`), built
//!   once per step;
//! * the weight gradient keeps nine vector accumulators (one per kernel entry) per `(o, ci)`
//!   over the whole batch, summed across their lanes once per step;
//! * each layer's gradient row handed to Adam as soon as it is complete (as in the rest of
//!   this crate), the input gradient formed before the update;
//! * compiled twice, for AVX2 + FMA (chosen at run time) and the base instruction set.

use crate::{
    Dense, Fma, Identity, Isa, LossFn, Optim, Plain, Slots, backward_input, backward_params,
    boxed_zeroed, forward, has_avx2_fma,
};

/// Samples per training batch.
pub const CONV_BATCH: usize = 32;

/// One sample's padded input and activations through the network. All-zero bytes are all
/// zeros, so it is made zeroed, which zeroes the borders for good.
#[derive(Clone)]
#[repr(C, align(64))]
struct Maps {
    /// The 8x8 input, padded.
    x0: [[[f32; 10]; 10]; 1],
    /// ReLU of the first convolution, padded.
    a1: [[[f32; 10]; 10]; 16],
    /// ReLU of the second convolution.
    a2: [[[f32; 8]; 8]; 16],
    /// Its 2x2 max-pool, padded.
    a3: [[[f32; 6]; 6]; 16],
    /// ReLU of the third convolution.
    a4: [[[f32; 4]; 4]; 32],
}

/// One sample's gradients with respect to the convolutions' outputs (ReLU's derivative
/// applied), padded, as the input-gradient kernel reads them.
#[derive(Clone)]
#[repr(C, align(64))]
struct Grads {
    z1: [[[f32; 10]; 10]; 16],
    z2: [[[f32; 10]; 10]; 16],
    z4: [[[f32; 6]; 6]; 32],
}

/// The digits conv network: four layers with parameters (the convolutions' weights as
/// `[out][in 9]`, torch's `[out, in, 3, 3]` row-major), their Adam state, and per-sample
/// buffers for a batch of `B`. On the heap, cache-line aligned.
#[repr(C, align(64))]
pub struct ConvNet<const B: usize, const S: usize> {
    pub c1: Dense<9, 16>,
    pub c3: Dense<144, 16>,
    pub c6: Dense<144, 32>,
    pub l10: Dense<128, 10>,
    s1: Slots<9, 16, S>,
    s3: Slots<144, 16, S>,
    s6: Slots<144, 32, S>,
    s10: Slots<128, 10, S>,
    maps: [Maps; B],
    grads: [Grads; B],
    /// The second max-pool's output, flattened (`c 4 + h 2 + w`): the linear layer's input.
    a5: [[f32; 128]; B],
    y: [[f32; 10]; B],
    dy: [[f32; 10]; B],
    d5: [[f32; 128]; B],
}

/// Baseline of conv: Adam (2 slots per parameter), batch 32.
pub type ConvBase = ConvNet<CONV_BATCH, 2>;

/// The convolution kernels of one instruction set: portable loops (the defaults, what
/// [`Plain`] runs), and for [`Fma`] the AVX2 + FMA kernels of [`avx`] at the network's two map
/// sizes (8x8 and 4x4).
trait Conv: Isa {
    /// See [`conv3x3`].
    #[inline(always)]
    fn conv<
        const CI: usize,
        const CO: usize,
        const K: usize,
        const H: usize,
        const W: usize,
        const HP: usize,
        const WP: usize,
    >(
        w: &[[f32; K]; CO],
        bias: Option<&[f32; CO]>,
        xp: &[[[f32; WP]; HP]; CI],
        out: impl FnMut(usize, &[[f32; W]; H]),
    ) {
        conv3x3::<Self, CI, CO, K, H, W, HP, WP>(w, bias, xp, out)
    }

    /// See [`conv3x3_weight_row`].
    #[inline(always)]
    fn weight_row<
        'a,
        const CI: usize,
        const CO: usize,
        const K: usize,
        const H: usize,
        const W: usize,
        const HP: usize,
        const WP: usize,
        const B: usize,
    >(
        o: usize,
        samples: impl Fn(usize) -> (&'a [[[f32; WP]; HP]; CO], &'a [[[f32; WP]; HP]; CI]),
        g: &mut [f32; K],
    ) {
        conv3x3_weight_row::<Self, CI, CO, K, H, W, HP, WP, B>(o, samples, g)
    }
}

impl Conv for Plain {}

impl Conv for Fma {
    #[inline(always)]
    fn conv<
        const CI: usize,
        const CO: usize,
        const K: usize,
        const H: usize,
        const W: usize,
        const HP: usize,
        const WP: usize,
    >(
        w: &[[f32; K]; CO],
        bias: Option<&[f32; CO]>,
        xp: &[[[f32; WP]; HP]; CI],
        mut out: impl FnMut(usize, &[[f32; W]; H]),
    ) {
        #[cfg(target_arch = "x86_64")]
        if H == 8 && W == 8 {
            for o in 0..CO {
                // SAFETY: `Fma` code runs only where the processor has AVX2 and FMA.
                let plane = unsafe {
                    avx::conv8::<CI, K, H, W, HP, WP>(&w[o], bias.map_or(0.0, |b| b[o]), xp)
                };
                out(o, &plane);
            }
            return;
        } else if H == 4 && W == 4 && CO.is_multiple_of(4) {
            for o in (0..CO).step_by(4) {
                let bias = core::array::from_fn(|i| bias.map_or(0.0, |b| b[o + i]));
                // SAFETY: as above.
                let planes = unsafe { avx::conv4::<CI, CO, K, H, W, HP, WP>(w, o, bias, xp) };
                for (i, plane) in planes.iter().enumerate() {
                    out(o + i, plane);
                }
            }
            return;
        }
        conv3x3::<Self, CI, CO, K, H, W, HP, WP>(w, bias, xp, out)
    }

    #[inline(always)]
    fn weight_row<
        'a,
        const CI: usize,
        const CO: usize,
        const K: usize,
        const H: usize,
        const W: usize,
        const HP: usize,
        const WP: usize,
        const B: usize,
    >(
        o: usize,
        samples: impl Fn(usize) -> (&'a [[[f32; WP]; HP]; CO], &'a [[[f32; WP]; HP]; CI]),
        g: &mut [f32; K],
    ) {
        #[cfg(target_arch = "x86_64")]
        if (H == 8 && W == 8) || (H == 4 && W == 4) {
            for ci in 0..CI {
                // SAFETY: as above.
                let row = unsafe {
                    avx::weight_grad::<H, W, HP, WP, B>(|b| {
                        let (dz, xp) = samples(b);
                        (&dz[o], &xp[ci])
                    })
                };
                g[ci * 9..][..9].copy_from_slice(&row);
            }
            return;
        }
        conv3x3_weight_row::<Self, CI, CO, K, H, W, HP, WP, B>(o, samples, g)
    }
}

/// `out(o, plane)` for each output channel `o` of a 3x3 convolution of the padded map `xp`
/// (`CI` channels, `H x W` inside a border of one), `plane` its `H x W` sums plus `bias[o]`
/// (none: zero). `K` is `CI 9`.
#[inline(always)]
fn conv3x3<
    I: Isa,
    const CI: usize,
    const CO: usize,
    const K: usize,
    const H: usize,
    const W: usize,
    const HP: usize,
    const WP: usize,
>(
    w: &[[f32; K]; CO],
    bias: Option<&[f32; CO]>,
    xp: &[[[f32; WP]; HP]; CI],
    mut out: impl FnMut(usize, &[[f32; W]; H]),
) {
    const { assert!(K == CI * 9 && HP == H + 2 && WP == W + 2) };
    for o in 0..CO {
        let mut acc = [[bias.map_or(0.0, |b| b[o]); W]; H];
        for ci in 0..CI {
            for kh in 0..3 {
                for kw in 0..3 {
                    let wv = w[o][ci * 9 + kh * 3 + kw];
                    for h in 0..H {
                        let row = &xp[ci][h + kh];
                        for x in 0..W {
                            acc[h][x] = I::madd(wv, row[x + kw], acc[h][x]);
                        }
                    }
                }
            }
        }
        out(o, &acc);
    }
}

/// Row `o` of a 3x3 convolution's weight gradient, `g[ci 9 + kh 3 + kw] = sum_b sum_{h, x}
/// dz[b][o][h][x] xp[b][ci][h + kh][x + kw]`, from the padded output gradients `dz` and the
/// padded inputs `xp` of the batch (each sample's maps found by `maps`).
#[inline(always)]
fn conv3x3_weight_row<
    'a,
    I: Isa,
    const CI: usize,
    const CO: usize,
    const K: usize,
    const H: usize,
    const W: usize,
    const HP: usize,
    const WP: usize,
    const B: usize,
>(
    o: usize,
    samples: impl Fn(usize) -> (&'a [[[f32; WP]; HP]; CO], &'a [[[f32; WP]; HP]; CI]),
    g: &mut [f32; K],
) {
    const { assert!(K == CI * 9 && HP == H + 2 && WP == W + 2) };
    for ci in 0..CI {
        let mut acc = [[0.0f32; W]; 9];
        for b in 0..B {
            let (dz, xp) = samples(b);
            for h in 0..H {
                let d = &dz[o][h + 1];
                for kh in 0..3 {
                    let row = &xp[ci][h + kh];
                    for kw in 0..3 {
                        for x in 0..W {
                            acc[kh * 3 + kw][x] =
                                I::madd(d[x + 1], row[x + kw], acc[kh * 3 + kw][x]);
                        }
                    }
                }
            }
        }
        for k in 0..9 {
            g[ci * 9 + k] = lanes_sum(&acc[k]);
        }
    }
}

/// The sum of `v`'s entries, pairwise.
#[inline(always)]
fn lanes_sum<const W: usize>(v: &[f32; W]) -> f32 {
    if W == 8 {
        ((v[0] + v[4]) + (v[1] + v[5])) + ((v[2] + v[6]) + (v[3] + v[7]))
    } else {
        v.iter().sum()
    }
}

/// The bias gradient of a convolution: `sum_b sum_{h, x} dz[b][o][h][x]`.
#[inline(always)]
fn conv_bias_grad<
    'a,
    const CO: usize,
    const H: usize,
    const W: usize,
    const HP: usize,
    const WP: usize,
    const B: usize,
>(
    dz: impl Fn(usize) -> &'a [[[f32; WP]; HP]; CO],
) -> [f32; CO] {
    let mut g = [0.0f32; CO];
    for b in 0..B {
        let dz = dz(b);
        for o in 0..CO {
            let mut s = [0.0f32; W];
            for h in 0..H {
                for x in 0..W {
                    s[x] += dz[o][h + 1][x + 1];
                }
            }
            g[o] += lanes_sum(&s);
        }
    }
    g
}

/// The flipped, transposed weight: `wf[ci][o 9 + (2 - kh) 3 + (2 - kw)] = w[o][ci 9 + kh 3 +
/// kw]`, so that the input gradient is [`conv3x3`] of the padded output gradient.
#[inline(always)]
fn flipped<const CI: usize, const CO: usize, const K: usize, const KT: usize>(
    w: &[[f32; K]; CO],
) -> [[f32; KT]; CI] {
    const { assert!(K == CI * 9 && KT == CO * 9) };
    let mut wf = [[0.0f32; KT]; CI];
    for o in 0..CO {
        for ci in 0..CI {
            for k in 0..9 {
                wf[ci][o * 9 + 8 - k] = w[o][ci * 9 + k];
            }
        }
    }
    wf
}

/// Index `(dh, dw)` of the first maximum of the 2x2 window at `(2 ho, 2 wo)` in scan order,
/// and the maximum.
#[inline(always)]
fn window_max<const H: usize, const W: usize>(
    p: &[[f32; W]; H],
    ho: usize,
    wo: usize,
) -> (usize, usize, f32) {
    let (mut best, mut at) = (f32::NEG_INFINITY, (0, 0));
    for dh in 0..2 {
        for dw in 0..2 {
            let v = p[2 * ho + dh][2 * wo + dw];
            if v > best {
                best = v;
                at = (dh, dw);
            }
        }
    }
    (at.0, at.1, best)
}

/// The convolutional part of one sample: fills `maps` (whose borders are zero) from `x`.
#[inline(always)]
fn maps_forward<I: Conv>(
    (c1, c3, c6): (&Dense<9, 16>, &Dense<144, 16>, &Dense<144, 32>),
    x: &[f32; 64],
    m: &mut Maps,
    a5: &mut [f32; 128],
) {
    for h in 0..8 {
        m.x0[0][h + 1][1..9].copy_from_slice(&x[h * 8..][..8]);
    }
    I::conv::<1, 16, 9, 8, 8, 10, 10>(&c1.w, Some(&c1.b), &m.x0, |o, p| {
        for h in 0..8 {
            for x in 0..8 {
                m.a1[o][h + 1][x + 1] = p[h][x].max(0.0);
            }
        }
    });
    I::conv::<16, 16, 144, 8, 8, 10, 10>(&c3.w, Some(&c3.b), &m.a1, |o, p| {
        for h in 0..8 {
            for x in 0..8 {
                m.a2[o][h][x] = p[h][x].max(0.0);
            }
        }
    });
    for c in 0..16 {
        for ho in 0..4 {
            for wo in 0..4 {
                m.a3[c][ho + 1][wo + 1] = window_max(&m.a2[c], ho, wo).2;
            }
        }
    }
    I::conv::<16, 32, 144, 4, 4, 6, 6>(&c6.w, Some(&c6.b), &m.a3, |o, p| {
        for h in 0..4 {
            for x in 0..4 {
                m.a4[o][h][x] = p[h][x].max(0.0);
            }
        }
    });
    for c in 0..32 {
        for ho in 0..2 {
            for wo in 0..2 {
                a5[c * 4 + ho * 2 + wo] = window_max(&m.a4[c], ho, wo).2;
            }
        }
    }
}

/// A 3x3 convolution's parameter gradients from the batch's padded output gradients and
/// padded inputs (`samples(b)`), each row handed to the optimizer as soon as it is complete.
#[inline(always)]
fn conv_params<
    'a,
    I: Conv,
    O: Optim,
    const CI: usize,
    const CO: usize,
    const K: usize,
    const H: usize,
    const W: usize,
    const HP: usize,
    const WP: usize,
    const B: usize,
    const S: usize,
>(
    l: &mut Dense<K, CO>,
    s: &mut Slots<K, CO, S>,
    k: O::Step,
    samples: impl Fn(usize) -> (&'a [[[f32; WP]; HP]; CO], &'a [[[f32; WP]; HP]; CI]) + Copy,
) {
    for o in 0..CO {
        let mut g = [0.0f32; K];
        I::weight_row::<CI, CO, K, H, W, HP, WP, B>(o, samples, &mut g);
        O::update::<I, K, S>(k, &mut l.w[o], &g, &mut s.w[o]);
    }
    let gb = conv_bias_grad::<CO, H, W, HP, WP, B>(|b| samples(b).0);
    O::update::<I, CO, S>(k, &mut l.b, &gb, &mut s.b);
}

impl<const B: usize, const S: usize> ConvNet<B, S> {
    /// All zero (the padded borders among it), on the heap.
    pub fn zeroed() -> Box<Self> {
        // SAFETY: nothing but `f32` arrays.
        unsafe { boxed_zeroed() }
    }

    /// Zeroes the optimizer state (with [`Optim::restart`], a fresh optimizer).
    pub fn clear_state(&mut self) {
        // SAFETY: nothing but `f32` arrays.
        let s = unsafe {
            (
                boxed_zeroed(),
                boxed_zeroed(),
                boxed_zeroed(),
                boxed_zeroed(),
            )
        };
        (self.s1, self.s3, self.s6, self.s10) = (*s.0, *s.1, *s.2, *s.3);
    }

    /// One sample through the network.
    #[inline(never)]
    pub fn forward(&self, x: &[f32; 64]) -> [f32; 10] {
        dispatch!(self.__avx2_forward / forward_one(x))
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn __avx2_forward<I: Conv>(&self, x: &[f32; 64]) -> [f32; 10] {
        self.forward_one::<I>(x)
    }

    #[inline(always)]
    fn forward_one<I: Conv>(&self, x: &[f32; 64]) -> [f32; 10] {
        // SAFETY: nothing but `f32` arrays. On the heap would cost an allocation per call; a
        // zeroed value on the stack costs its memset, as the generated code's zeroed outputs.
        let mut maps: Maps = unsafe { core::mem::zeroed() };
        let mut a5 = [[0.0f32; 128]];
        maps_forward::<I>((&self.c1, &self.c3, &self.c6), x, &mut maps, &mut a5[0]);
        let mut y = [[0.0f32; 10]];
        forward::<I, Identity, 128, 10, 1>(&self.l10, &a5, &mut y);
        y[0]
    }

    /// One training step: forward, loss, backward, update. Returns the loss before the update.
    #[inline(never)]
    pub fn train_step<L: LossFn, O: Optim>(
        &mut self,
        xs: &[[f32; 64]; B],
        ys: &[[f32; 10]; B],
        opt: &mut O,
    ) -> f32 {
        const { assert!(S == O::SLOTS) };
        dispatch!(self.__avx2_train / step::<L, O>(xs, ys, opt))
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn __avx2_train<I: Conv, L: LossFn, O: Optim>(
        &mut self,
        xs: &[[f32; 64]; B],
        ys: &[[f32; 10]; B],
        opt: &mut O,
    ) -> f32 {
        self.step::<I, L, O>(xs, ys, opt)
    }

    #[inline(always)]
    fn step<I: Conv, L: LossFn, O: Optim>(
        &mut self,
        xs: &[[f32; 64]; B],
        ys: &[[f32; 10]; B],
        opt: &mut O,
    ) -> f32 {
        for b in 0..B {
            let layers = (&self.c1, &self.c3, &self.c6);
            maps_forward::<I>(layers, &xs[b], &mut self.maps[b], &mut self.a5[b]);
        }
        forward::<I, Identity, 128, 10, B>(&self.l10, &self.a5, &mut self.y);
        let loss = L::value_and_grad::<I, 10, B>(&self.y, ys, &mut self.dy);
        let k = opt.begin();

        // Linear(128, 10): the input's gradient with the weights before their update.
        backward_input::<I, Identity, 128, 10, B>(&self.l10, &self.a5, &self.dy, &mut self.d5);
        backward_params::<I, O, 128, 10, B, S>(&mut self.l10, &mut self.s10, k, &self.a5, &self.dy);

        // MaxPool2d and ReLU: each window's gradient to its maximum, if that is positive.
        for b in 0..B {
            let (m, g, d5) = (&self.maps[b], &mut self.grads[b], &self.d5[b]);
            for c in 0..32 {
                for ho in 0..2 {
                    for wo in 0..2 {
                        let (dh, dw, max) = window_max(&m.a4[c], ho, wo);
                        let d = if max > 0.0 {
                            d5[c * 4 + ho * 2 + wo]
                        } else {
                            0.0
                        };
                        for h in 0..2 {
                            for x in 0..2 {
                                let hit = (h, x) == (dh, dw);
                                g.z4[c][2 * ho + h + 1][2 * wo + x + 1] = if hit { d } else { 0.0 };
                            }
                        }
                    }
                }
            }
        }

        // Conv2d(16, 32) at 4x4: the input's gradient, then the parameters'.
        let wf = flipped::<16, 32, 144, 288>(&self.c6.w);
        for b in 0..B {
            let (m, g) = (&self.maps[b], &mut self.grads[b]);
            let z4 = &g.z4;
            let z2 = &mut g.z2;
            I::conv::<32, 16, 288, 4, 4, 6, 6>(&wf, None, z4, |c, p| {
                // MaxPool2d at 8x8 and ReLU, as above.
                for ho in 0..4 {
                    for wo in 0..4 {
                        let (dh, dw, max) = window_max(&m.a2[c], ho, wo);
                        let d = if max > 0.0 { p[ho][wo] } else { 0.0 };
                        for h in 0..2 {
                            for x in 0..2 {
                                let hit = (h, x) == (dh, dw);
                                z2[c][2 * ho + h + 1][2 * wo + x + 1] = if hit { d } else { 0.0 };
                            }
                        }
                    }
                }
            });
        }
        let (grads, maps) = (&self.grads, &self.maps);
        conv_params::<I, O, 16, 32, 144, 4, 4, 6, 6, B, S>(&mut self.c6, &mut self.s6, k, |b| {
            (&grads[b].z4, &maps[b].a3)
        });

        // Conv2d(16, 16) at 8x8.
        let wf = flipped::<16, 16, 144, 144>(&self.c3.w);
        for b in 0..B {
            let (m, g) = (&self.maps[b], &mut self.grads[b]);
            let z2 = &g.z2;
            let z1 = &mut g.z1;
            I::conv::<16, 16, 144, 8, 8, 10, 10>(&wf, None, z2, |c, p| {
                for h in 0..8 {
                    for x in 0..8 {
                        let on = m.a1[c][h + 1][x + 1] > 0.0;
                        z1[c][h + 1][x + 1] = if on { p[h][x] } else { 0.0 };
                    }
                }
            });
        }
        let (grads, maps) = (&self.grads, &self.maps);
        conv_params::<I, O, 16, 16, 144, 8, 8, 10, 10, B, S>(&mut self.c3, &mut self.s3, k, |b| {
            (&grads[b].z2, &maps[b].a1)
        });

        // Conv2d(1, 16): the parameters only.
        let (grads, maps) = (&self.grads, &self.maps);
        conv_params::<I, O, 1, 16, 9, 8, 8, 10, 10, B, S>(&mut self.c1, &mut self.s1, k, |b| {
            (&grads[b].z1, &maps[b].x0)
        });
        loss
    }
}

/// The AVX2 + FMA kernels of [`Fma`]'s [`Conv`]: a 3x3 convolution at 8x8 (one output plane,
/// a row of eight per register, each weight broadcast once into all eight rows) and at 4x4
/// (four output planes at once, two rows per register, each pair of input rows loaded once
/// for the four), and the weight gradient of one `(o, ci)` pair over a batch at either size
/// (nine accumulators, one per kernel entry, summed across their lanes once at the end).
///
/// Callers guarantee that the processor has AVX2 and FMA; every load stays inside the padded
/// rows (a row of `W + 2` read from column `kw <= 2` for `W` entries).
#[cfg(target_arch = "x86_64")]
mod avx {
    use std::arch::x86_64::*;

    /// The sum of the lanes of `v`.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    fn hsum(v: __m256) -> f32 {
        let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_movehdup_ps(s));
        _mm_cvtss_f32(s)
    }

    /// Output plane `bias + sum_{ci, kh, kw} w[ci 9 + kh 3 + kw] xp[ci][h + kh][x + kw]` of an
    /// 8x8 convolution.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    pub unsafe fn conv8<
        const CI: usize,
        const K: usize,
        const H: usize,
        const W: usize,
        const HP: usize,
        const WP: usize,
    >(
        w: &[f32; K],
        bias: f32,
        xp: &[[[f32; WP]; HP]; CI],
    ) -> [[f32; W]; H] {
        assert!(H == 8 && W == 8 && HP == 10 && WP == 10 && K == CI * 9);
        let mut acc = [_mm256_set1_ps(bias); 8];
        for (ci, plane) in xp.iter().enumerate() {
            for kh in 0..3 {
                for kw in 0..3 {
                    let wv = _mm256_set1_ps(w[ci * 9 + kh * 3 + kw]);
                    for (h, acc) in acc.iter_mut().enumerate() {
                        // SAFETY: columns kw..kw + 8 of a row of 10.
                        let x = unsafe { _mm256_loadu_ps(plane[h + kh].as_ptr().add(kw)) };
                        *acc = _mm256_fmadd_ps(wv, x, *acc);
                    }
                }
            }
        }
        let mut out = [[0.0; W]; H];
        for (row, acc) in out.iter_mut().zip(acc) {
            // SAFETY: a row of 8.
            unsafe { _mm256_storeu_ps(row.as_mut_ptr(), acc) };
        }
        out
    }

    /// Output planes `o..o + 4` of a 4x4 convolution, as [`conv8`]'s.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    pub unsafe fn conv4<
        const CI: usize,
        const CO: usize,
        const K: usize,
        const H: usize,
        const W: usize,
        const HP: usize,
        const WP: usize,
    >(
        w: &[[f32; K]; CO],
        o: usize,
        bias: [f32; 4],
        xp: &[[[f32; WP]; HP]; CI],
    ) -> [[[f32; W]; H]; 4] {
        assert!(H == 4 && W == 4 && HP == 6 && WP == 6 && K == CI * 9 && o + 4 <= CO);
        // acc[i][0]: rows 0 and 1 of plane o + i, acc[i][1]: rows 2 and 3.
        let mut acc = bias.map(|b| [_mm256_set1_ps(b); 2]);
        for (ci, plane) in xp.iter().enumerate() {
            for kh in 0..3 {
                for kw in 0..3 {
                    let at = |h: usize| plane[h + kh][kw..].as_ptr();
                    // SAFETY: columns kw..kw + 4 of rows of 6.
                    let (x01, x23) = unsafe {
                        (
                            _mm256_loadu2_m128(at(1), at(0)),
                            _mm256_loadu2_m128(at(3), at(2)),
                        )
                    };
                    for (i, acc) in acc.iter_mut().enumerate() {
                        let wv = _mm256_set1_ps(w[o + i][ci * 9 + kh * 3 + kw]);
                        acc[0] = _mm256_fmadd_ps(wv, x01, acc[0]);
                        acc[1] = _mm256_fmadd_ps(wv, x23, acc[1]);
                    }
                }
            }
        }
        let mut out = [[[0.0; W]; H]; 4];
        for (plane, acc) in out.iter_mut().zip(acc) {
            let (r0, r1) = (plane[0].as_mut_ptr(), plane[1].as_mut_ptr());
            let (r2, r3) = (plane[2].as_mut_ptr(), plane[3].as_mut_ptr());
            // SAFETY: rows of 4.
            unsafe {
                _mm256_storeu2_m128(r1, r0, acc[0]);
                _mm256_storeu2_m128(r3, r2, acc[1]);
            }
        }
        out
    }

    /// `g[kh 3 + kw] = sum_b sum_{h, x} dz_b[h + 1][x + 1] x_b[h + kh][x + kw]`, with
    /// `(dz_b, x_b) = planes(b)` an output gradient's plane and an input's, both padded, at
    /// 8x8 or 4x4.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    pub unsafe fn weight_grad<
        'a,
        const H: usize,
        const W: usize,
        const HP: usize,
        const WP: usize,
        const B: usize,
    >(
        planes: impl Fn(usize) -> (&'a [[f32; WP]; HP], &'a [[f32; WP]; HP]),
    ) -> [f32; 9] {
        assert!((H == 8 && W == 8 || H == 4 && W == 4) && HP == H + 2 && WP == W + 2);
        let mut acc = [_mm256_setzero_ps(); 9];
        for b in 0..B {
            let (dz, x) = planes(b);
            if W == 8 {
                for h in 0..8 {
                    // SAFETY: columns 1..9 and kw..kw + 8 of rows of 10.
                    let d = unsafe { _mm256_loadu_ps(dz[h + 1][1..].as_ptr()) };
                    for kh in 0..3 {
                        for kw in 0..3 {
                            let xv = unsafe { _mm256_loadu_ps(x[h + kh][kw..].as_ptr()) };
                            acc[kh * 3 + kw] = _mm256_fmadd_ps(d, xv, acc[kh * 3 + kw]);
                        }
                    }
                }
            } else {
                for h in [0, 2] {
                    // SAFETY: columns 1..5 and kw..kw + 4 of rows of 6, two rows at once.
                    let d = unsafe {
                        _mm256_loadu2_m128(dz[h + 2][1..].as_ptr(), dz[h + 1][1..].as_ptr())
                    };
                    for kh in 0..3 {
                        for kw in 0..3 {
                            let xv = unsafe {
                                _mm256_loadu2_m128(
                                    x[h + 1 + kh][kw..].as_ptr(),
                                    x[h + kh][kw..].as_ptr(),
                                )
                            };
                            acc[kh * 3 + kw] = _mm256_fmadd_ps(d, xv, acc[kh * 3 + kw]);
                        }
                    }
                }
            }
        }
        acc.map(|v| hsum(v))
    }
}
