//! Hand-written baselines of the amp workloads (`LSTM(1, 16), Linear(16, 1)` and
//! `GRU(1, 16), Linear(16, 1)`, one input sample, one output sample): one time step of one
//! stream for each, and one window of truncated backpropagation through time of the LSTM
//! model over a batch of streams with Adam.
//!
//! The same math as the generated code, torch's gate order and formulas (LSTM `i, f, g, o`,
//! `c' = f c + i g`, `h' = o tanh(c')`; GRU `r, z, n`, `n = tanh(W_in x + b_in + r (W_hn h +
//! b_hn))`, `h' = n + z (h - n)`), with the runtime's element functions
//! ([`Real::fast_sigmoid`], [`Real::fast_tanh`]: the same approximations, not copies), and
//! written as we would by hand:
//!
//! * `W_hh` stored transposed, `wt[k][r] = W_hh[r][k]`: the gate product of a step is `H`
//!   broadcast multiply-adds over all gate rows at once (64 or 48 lanes, straight loops the
//!   compiler vectorises), the input weight (`IN = 1`) one more, and the two biases summed
//!   once (LSTM) where the generated code adds both every step;
//! * the gates of a unit activated together in one pass over the units, the output layer a
//!   dot product of the new hidden state;
//! * compiled twice, for AVX2 + FMA (chosen at run time) and the base instruction set, as the
//!   rest of this crate.

use crate::{Adam, AdamStep, Fma, Isa, Optim, Plain, has_avx2_fma};
use nn_runtime::Real;

/// The hidden size of both models.
pub const H: usize = 16;
/// LSTM gate rows, `4 H`.
pub const LG: usize = 4 * H;
/// GRU gate rows, `3 H`.
pub const GG: usize = 3 * H;

/// `sum a[i] b[i]`, in one running sum per lane of eight.
#[inline(always)]
fn dot<I: Isa, const N: usize>(a: &[f32; N], b: &[f32; N]) -> f32 {
    crate::dot::<I, N>(a, b)
}

/// `acc[r] += w[k][r] h[k]` for every row `r`: a step's hidden-side gate product with the
/// weight transposed (under AVX2, the accumulators held in registers throughout).
#[inline(always)]
fn gate_product<I: Isa, const R: usize>(wt: &[[f32; R]; H], h: &[f32; H], acc: &mut [f32; R]) {
    I::broadcast_product::<H, R>(wt, h, acc);
}

/// The state of one stream of the LSTM model.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LstmStream {
    pub h: [f32; H],
    pub c: [f32; H],
}

/// `LSTM(1, 16), Linear(16, 1)` for inference, one stream, one sample a step.
#[derive(Clone, Debug, PartialEq)]
#[repr(C, align(64))]
pub struct LstmStep {
    /// `W_hh` transposed: `wt[k][r] = weight_hh[r][k]`.
    pub wt: [[f32; LG]; H],
    /// `weight_ih`, one column (`IN = 1`).
    pub wx: [f32; LG],
    /// `bias_ih + bias_hh`.
    pub b: [f32; LG],
    /// The output layer's weight (one row) and bias.
    pub ow: [f32; H],
    pub ob: f32,
}

impl LstmStep {
    /// One sample through the model, advancing `s`.
    #[inline(never)]
    pub fn step(&self, x: f32, s: &mut LstmStream) -> f32 {
        dispatch!(self.__avx2 / step_one(x, s))
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn __avx2<I: Isa>(&self, x: f32, s: &mut LstmStream) -> f32 {
        self.step_one::<I>(x, s)
    }

    #[inline(always)]
    fn step_one<I: Isa>(&self, x: f32, s: &mut LstmStream) -> f32 {
        let mut a = [0.0f32; LG];
        for r in 0..LG {
            a[r] = I::madd(self.wx[r], x, self.b[r]);
        }
        gate_product::<I, LG>(&self.wt, &s.h, &mut a);
        for j in 0..H {
            let i = a[j].fast_sigmoid();
            let f = a[H + j].fast_sigmoid();
            let g = a[2 * H + j].fast_tanh();
            let o = a[3 * H + j].fast_sigmoid();
            let c = f * s.c[j] + i * g;
            s.c[j] = c;
            s.h[j] = o * c.fast_tanh();
        }
        dot::<I, H>(&self.ow, &s.h) + self.ob
    }
}

/// `GRU(1, 16), Linear(16, 1)` for inference, one stream, one sample a step; its state is
/// the hidden state.
#[derive(Clone, Debug, PartialEq)]
#[repr(C, align(64))]
pub struct GruStep {
    /// `W_hh` transposed: `wt[k][r] = weight_hh[r][k]`.
    pub wt: [[f32; GG]; H],
    /// `weight_ih`, one column.
    pub wx: [f32; GG],
    /// `bias_ih` and `bias_hh`, apart: the reset gate scales the candidate's hidden side.
    pub bi: [f32; GG],
    pub bh: [f32; GG],
    pub ow: [f32; H],
    pub ob: f32,
}

impl GruStep {
    /// One sample through the model, advancing `h`.
    #[inline(never)]
    pub fn step(&self, x: f32, h: &mut [f32; H]) -> f32 {
        dispatch!(self.__avx2 / step_one(x, h))
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn __avx2<I: Isa>(&self, x: f32, h: &mut [f32; H]) -> f32 {
        self.step_one::<I>(x, h)
    }

    #[inline(always)]
    fn step_one<I: Isa>(&self, x: f32, h: &mut [f32; H]) -> f32 {
        let (mut gi, mut gh) = ([0.0f32; GG], self.bh);
        for r in 0..GG {
            gi[r] = I::madd(self.wx[r], x, self.bi[r]);
        }
        gate_product::<I, GG>(&self.wt, h, &mut gh);
        for j in 0..H {
            let r = (gi[j] + gh[j]).fast_sigmoid();
            let z = (gi[H + j] + gh[H + j]).fast_sigmoid();
            let n = (gi[2 * H + j] + r * gh[2 * H + j]).fast_tanh();
            h[j] = n + z * (h[j] - n);
        }
        dot::<I, H>(&self.ow, h) + self.ob
    }
}

/// The parameters of the LSTM model as the training baseline keeps them (and, in the same
/// layout, their gradients and Adam's two moments).
#[derive(Clone, Debug, PartialEq)]
#[repr(C, align(64))]
pub struct LstmParams {
    /// `W_hh` transposed: `wt[k][r] = weight_hh[r][k]`.
    pub wt: [[f32; LG]; H],
    pub wx: [f32; LG],
    pub bi: [f32; LG],
    pub bh: [f32; LG],
    pub ow: [f32; H],
    pub ob: [f32; 1],
}

impl LstmParams {
    const ZERO: Self = Self {
        wt: [[0.0; LG]; H],
        wx: [0.0; LG],
        bi: [0.0; LG],
        bh: [0.0; LG],
        ow: [0.0; H],
        ob: [0.0],
    };
}

/// What one step of one stream keeps for the backward pass.
#[derive(Clone, Copy)]
struct Kept {
    /// The state before the step.
    h: [f32; H],
    c: [f32; H],
    /// The activated gates, `i, f, g, o`.
    gates: [f32; LG],
    /// `tanh(c')` and `h'`.
    tc: [f32; H],
    hn: [f32; H],
    /// The input, and the loss's gradient with respect to the output (already scaled).
    x: f32,
    dy: f32,
}

/// `LSTM(1, 16), Linear(16, 1)` trained by truncated backpropagation through time on windows
/// of `T` steps of `B` streams, MSE (torch's `nn.MSELoss()` of the `(T, B, 1)` output, the
/// generated `train_sequence`'s loss) and Adam; the state is carried from one window to the
/// next. Lives on the heap.
#[repr(C, align(64))]
pub struct LstmWindow<const T: usize, const B: usize> {
    pub p: LstmParams,
    /// Adam's first and second moments.
    m: LstmParams,
    v: LstmParams,
    /// The state of each stream between windows.
    pub state: [LstmStream; B],
    /// Per step and stream, what the backward pass needs.
    tape: [[Kept; B]; T],
}

impl<const T: usize, const B: usize> LstmWindow<T, B> {
    /// A model with parameters `p`, a zero state and fresh optimizer moments.
    pub fn new(p: LstmParams) -> Box<Self> {
        // SAFETY: nothing but `f32` arrays.
        let mut w: Box<Self> = unsafe { crate::boxed_zeroed() };
        w.p = p;
        w
    }

    /// Zeroes the state and the optimizer's moments (with [`Optim::restart`], a fresh
    /// optimizer).
    pub fn clear_state(&mut self) {
        self.m = LstmParams::ZERO;
        self.v = LstmParams::ZERO;
        self.state = core::array::from_fn(|_| LstmStream::default());
    }

    /// One window: forward through `T` steps (`xs[t][b]`, `ys[t][b]`: step `t` of stream
    /// `b`), loss, backward through time, Adam's update. Returns the loss before the update.
    #[inline(never)]
    pub fn train_window(&mut self, xs: &[[f32; B]; T], ys: &[[f32; B]; T], opt: &mut Adam) -> f32 {
        dispatch!(self.__avx2 / window(xs, ys, opt))
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn __avx2<I: Isa>(
        &mut self,
        xs: &[[f32; B]; T],
        ys: &[[f32; B]; T],
        opt: &mut Adam,
    ) -> f32 {
        self.window::<I>(xs, ys, opt)
    }

    #[inline(always)]
    fn window<I: Isa>(&mut self, xs: &[[f32; B]; T], ys: &[[f32; B]; T], opt: &mut Adam) -> f32 {
        let p = &self.p;
        // The loss is the mean over steps of each step's mean over the streams.
        let (scale, per_stream) = (1.0 / T as f32, 1.0 / B as f32);
        let mut loss = 0.0f32;
        let mut bsum = [0.0f32; LG];
        for r in 0..LG {
            bsum[r] = p.bi[r] + p.bh[r];
        }
        for t in 0..T {
            let mut step_loss = 0.0f32;
            for b in 0..B {
                let (s, k) = (&mut self.state[b], &mut self.tape[t][b]);
                let x = xs[t][b];
                (k.x, k.h, k.c) = (x, s.h, s.c);
                let mut a = [0.0f32; LG];
                for r in 0..LG {
                    a[r] = I::madd(p.wx[r], x, bsum[r]);
                }
                gate_product::<I, LG>(&p.wt, &s.h, &mut a);
                for j in 0..H {
                    let i = a[j].fast_sigmoid();
                    let f = a[H + j].fast_sigmoid();
                    let g = a[2 * H + j].fast_tanh();
                    let o = a[3 * H + j].fast_sigmoid();
                    let c = f * s.c[j] + i * g;
                    let tc = c.fast_tanh();
                    (
                        k.gates[j],
                        k.gates[H + j],
                        k.gates[2 * H + j],
                        k.gates[3 * H + j],
                    ) = (i, f, g, o);
                    s.c[j] = c;
                    k.tc[j] = tc;
                    s.h[j] = o * tc;
                }
                k.hn = s.h;
                let e = dot::<I, H>(&p.ow, &s.h) + p.ob[0] - ys[t][b];
                step_loss = I::madd(e, e, step_loss);
                k.dy = 2.0 * e * per_stream * scale;
            }
            loss += step_loss * per_stream;
        }

        // Backward through time, the gradients of the window summed.
        let mut g = LstmParams::ZERO;
        let mut carry = [LstmStream::default(); B];
        for t in (0..T).rev() {
            for b in 0..B {
                let (k, carry) = (&self.tape[t][b], &mut carry[b]);
                let dy = k.dy;
                g.ob[0] += dy;
                let mut da = [0.0f32; LG];
                for j in 0..H {
                    g.ow[j] = I::madd(dy, k.hn[j], g.ow[j]);
                    let dh = I::madd(dy, p.ow[j], carry.h[j]);
                    let (i, f, gg, o) = (
                        k.gates[j],
                        k.gates[H + j],
                        k.gates[2 * H + j],
                        k.gates[3 * H + j],
                    );
                    let tc = k.tc[j];
                    let dct = carry.c[j] + dh * o * (1.0 - tc * tc);
                    da[j] = dct * gg * i * (1.0 - i);
                    da[H + j] = dct * k.c[j] * f * (1.0 - f);
                    da[2 * H + j] = dct * i * (1.0 - gg * gg);
                    da[3 * H + j] = dh * tc * o * (1.0 - o);
                    carry.c[j] = dct * f;
                }
                for r in 0..LG {
                    g.wx[r] = I::madd(da[r], k.x, g.wx[r]);
                    g.bi[r] += da[r];
                }
                for j in 0..H {
                    let hj = k.h[j];
                    for r in 0..LG {
                        g.wt[j][r] = I::madd(hj, da[r], g.wt[j][r]);
                    }
                    carry.h[j] = dot::<I, LG>(&p.wt[j], &da);
                }
            }
        }
        g.bh = g.bi;

        let step = opt.begin();
        let (p, m, v) = (&mut self.p, &mut self.m, &mut self.v);
        for j in 0..H {
            adam::<I, LG>(step, &mut p.wt[j], &g.wt[j], &mut m.wt[j], &mut v.wt[j]);
        }
        adam::<I, LG>(step, &mut p.wx, &g.wx, &mut m.wx, &mut v.wx);
        adam::<I, LG>(step, &mut p.bi, &g.bi, &mut m.bi, &mut v.bi);
        adam::<I, LG>(step, &mut p.bh, &g.bh, &mut m.bh, &mut v.bh);
        adam::<I, H>(step, &mut p.ow, &g.ow, &mut m.ow, &mut v.ow);
        adam::<I, 1>(step, &mut p.ob, &g.ob, &mut m.ob, &mut v.ob);
        loss * scale
    }
}

/// Adam's update of one tensor.
#[inline(always)]
fn adam<I: Isa, const N: usize>(
    k: AdamStep,
    p: &mut [f32; N],
    g: &[f32; N],
    m: &mut [f32; N],
    v: &mut [f32; N],
) {
    I::adam(k, p, g, m, v);
}

impl Default for LstmStream {
    /// The zero state.
    fn default() -> Self {
        LstmStream {
            h: [0.0; H],
            c: [0.0; H],
        }
    }
}
