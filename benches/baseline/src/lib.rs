//! Hand-written baselines for the five workloads of issue 4: the same math as the networks
//! `network!` generates, written as well as we can by hand, so that each benchmark figure is a
//! ratio against it.
//!
//! * Plain fixed-size arrays: a weight is `[[f32; IN]; OUT]` (out x in, PyTorch's layout), a
//!   batch `[[f32; N]; B]` (one sample per row; the same bytes as the generated code's
//!   column-major `SMatrix<f32, N, B>`, so both read the very same input memory).
//! * Loops the compiler vectorises, sizes known at compile time; the bias and the activation
//!   are applied while each output row is still in registers; the activation's derivative is
//!   applied while the input gradient is formed; no input gradient for the first layer.
//! * The optimizer update is fused into the weight-gradient loop: each gradient row is updated
//!   into its parameter row as soon as it is complete, so no gradient tensor is stored.
//! * Each step is compiled twice, for AVX2 + FMA (chosen at run time when the processor has
//!   them, multiplies and adds fused) and for the base x86-64 instruction set.
//! * Large layers (the mnist workload's `Linear(784, 128)`) go to the cache-blocked AVX2/FMA
//!   kernels of [`gemm`], with the SGD update fused into the weight-gradient product.
//! * Losses and optimizers follow the runtime's definitions (PyTorch's): MSE and cross-entropy
//!   as batch means, Adam with torch's bias corrections and, as the runtime, its moments
//!   stored as zero once they decay below the smallest normal float, plain SGD. `tanh` is Eigen's rational
//!   approximation (clamped at +-7.9, exact below 4e-4), within a few ulp of `f32::tanh` and
//!   vectorisable, where `f32::tanh` is a scalar libm call of about 8 ns; `exp` in the
//!   cross-entropy is the runtime's own element function `Real::fast_exp` (Cephes'
//!   polynomial, within 1 ulp, vectorisable: the same math, not a second copy of it), `ln` the
//!   standard library's, as in the generated code.
//!
//! The recurrent baselines of the amp workloads are in [`recurrent`], the convolutional one of
//! the conv workloads in [`conv`].
//!
//! `tests/baseline_agrees.rs` checks that, from the same weights, one step of each baseline
//! gives the generated network's loss and updated parameters.

#![allow(clippy::needless_range_loop)]

pub mod gemm;
#[cfg(target_arch = "x86_64")]
mod small;
pub mod workloads;

pub use gemm::has_avx2_fma;

// ---------------------------------------------------------------------------------------------
// Instruction sets: the same source, with or without fused multiply-adds.
// ---------------------------------------------------------------------------------------------

/// The arithmetic and the small-layer kernels of one instruction set.
pub trait Isa: Copy {
    /// `a * b + c`.
    fn madd(a: f32, b: f32, c: f32) -> f32;

    /// `y[b][o] = bias[o] + sum_i w[o][i] x[b][i]`.
    #[inline(always)]
    fn forward<const IN: usize, const OUT: usize, const B: usize>(
        w: &[[f32; IN]; OUT],
        bias: &[f32; OUT],
        x: &[[f32; IN]; B],
        y: &mut [[f32; OUT]; B],
    ) {
        for b in 0..B {
            for o in 0..OUT {
                y[b][o] = dot::<Self, IN>(&w[o], &x[b]) + bias[o];
            }
        }
    }

    /// `dx[b][i] = sum_o dz[b][o] w[o][i]`.
    #[inline(always)]
    fn input_grad<const IN: usize, const OUT: usize, const B: usize>(
        w: &[[f32; IN]; OUT],
        dz: &[[f32; OUT]; B],
        dx: &mut [[f32; IN]; B],
    ) {
        for b in 0..B {
            let mut acc = [0.0f32; IN];
            for o in 0..OUT {
                let d = dz[b][o];
                for i in 0..IN {
                    acc[i] = Self::madd(d, w[o][i], acc[i]);
                }
            }
            dx[b] = acc;
        }
    }

    /// `g[i] = sum_b dz[b][o] x[b][i]`: row `o` of the weight gradient.
    #[inline(always)]
    fn weight_grad_row<const IN: usize, const OUT: usize, const B: usize>(
        o: usize,
        dz: &[[f32; OUT]; B],
        x: &[[f32; IN]; B],
        g: &mut [f32; IN],
    ) {
        *g = [0.0; IN];
        for b in 0..B {
            let d = dz[b][o];
            for i in 0..IN {
                g[i] = Self::madd(d, x[b][i], g[i]);
            }
        }
    }

    /// `acc[r] += sum_k h[k] wt[k][r]`: a product with the weight stored transposed, as
    /// broadcast multiply-adds over all rows at once (the recurrent baselines' gate products).
    #[inline(always)]
    fn broadcast_product<const K: usize, const R: usize>(
        wt: &[[f32; R]; K],
        h: &[f32; K],
        acc: &mut [f32; R],
    ) {
        for k in 0..K {
            let hk = h[k];
            for r in 0..R {
                acc[r] = Self::madd(wt[k][r], hk, acc[r]);
            }
        }
    }

    /// `p[i] += a * g[i]` (the SGD update with `a = -lr`).
    #[inline(always)]
    fn axpy<const N: usize>(a: f32, g: &[f32; N], p: &mut [f32; N]) {
        for i in 0..N {
            p[i] = Self::madd(a, g[i], p[i]);
        }
    }

    /// Adam's update of `p` and its moments `m`, `v` from the gradient `g`.
    #[inline(always)]
    fn adam<const N: usize>(
        k: AdamStep,
        p: &mut [f32; N],
        g: &[f32; N],
        m: &mut [f32; N],
        v: &mut [f32; N],
    ) {
        for i in 0..N {
            let g = g[i];
            m[i] = flush(Self::madd(BETA1, m[i], (1.0 - BETA1) * g));
            v[i] = flush(Self::madd(BETA2, v[i], (1.0 - BETA2) * g * g));
            let denom = Self::madd(v[i].sqrt(), k.inv_bias_correction2_sqrt, EPS);
            p[i] -= k.step_size * (m[i] / denom);
        }
    }
}

/// `x`, or zero where `x` is subnormal: Adam's moments are stored flushed, as the runtime's
/// are (a decayed moment kept subnormal costs a microcode assist per instruction that
/// touches it).
#[inline(always)]
fn flush(x: f32) -> f32 {
    if x.abs() < f32::MIN_POSITIVE { 0.0 } else { x }
}

/// The base instruction set: a multiply then an add (no FMA without a target feature), and
/// the portable loops.
#[derive(Clone, Copy)]
pub struct Plain;

impl Isa for Plain {
    #[inline(always)]
    fn madd(a: f32, b: f32, c: f32) -> f32 {
        a * b + c
    }
}

/// AVX2 + FMA: fused multiply-adds, and the intrinsic kernels of `small` wherever the
/// vectorised index is a multiple of 8 and the layer is not tiny (the xor network's layers
/// stay fully unrolled scalar code). Only instantiated inside `avx2,fma` functions.
#[derive(Clone, Copy)]
pub struct Fma;

impl Isa for Fma {
    #[inline(always)]
    fn madd(a: f32, b: f32, c: f32) -> f32 {
        a.mul_add(b, c)
    }

    #[inline(always)]
    fn forward<const IN: usize, const OUT: usize, const B: usize>(
        w: &[[f32; IN]; OUT],
        bias: &[f32; OUT],
        x: &[[f32; IN]; B],
        y: &mut [[f32; OUT]; B],
    ) {
        #[cfg(target_arch = "x86_64")]
        if IN.is_multiple_of(8) && OUT >= 8 {
            // SAFETY: `Fma` code runs only where the processor has AVX2 and FMA.
            return unsafe { small::forward(w, bias, x, y) };
        }
        for b in 0..B {
            for o in 0..OUT {
                y[b][o] = dot::<Self, IN>(&w[o], &x[b]) + bias[o];
            }
        }
    }

    #[inline(always)]
    fn input_grad<const IN: usize, const OUT: usize, const B: usize>(
        w: &[[f32; IN]; OUT],
        dz: &[[f32; OUT]; B],
        dx: &mut [[f32; IN]; B],
    ) {
        #[cfg(target_arch = "x86_64")]
        if IN.is_multiple_of(8) && IN * OUT >= 64 {
            // SAFETY: as above.
            return unsafe { small::input_grad(w, dz, dx) };
        }
        Plain::input_grad(w, dz, dx)
    }

    #[inline(always)]
    fn weight_grad_row<const IN: usize, const OUT: usize, const B: usize>(
        o: usize,
        dz: &[[f32; OUT]; B],
        x: &[[f32; IN]; B],
        g: &mut [f32; IN],
    ) {
        #[cfg(target_arch = "x86_64")]
        if IN.is_multiple_of(8) && IN * OUT >= 64 {
            // SAFETY: as above.
            return unsafe { small::weight_grad_row(o, dz, x, g) };
        }
        *g = [0.0; IN];
        for b in 0..B {
            let d = dz[b][o];
            for i in 0..IN {
                g[i] = d.mul_add(x[b][i], g[i]);
            }
        }
    }

    #[inline(always)]
    fn broadcast_product<const K: usize, const R: usize>(
        wt: &[[f32; R]; K],
        h: &[f32; K],
        acc: &mut [f32; R],
    ) {
        #[cfg(target_arch = "x86_64")]
        if R.is_multiple_of(8) && R <= 64 {
            // SAFETY: as above.
            return unsafe { small::broadcast_product(wt, h, acc) };
        }
        Plain::broadcast_product(wt, h, acc)
    }

    #[inline(always)]
    fn axpy<const N: usize>(a: f32, g: &[f32; N], p: &mut [f32; N]) {
        #[cfg(target_arch = "x86_64")]
        if N.is_multiple_of(8) {
            // SAFETY: as above.
            return unsafe { small::axpy(a, g, p) };
        }
        for i in 0..N {
            p[i] = a.mul_add(g[i], p[i]);
        }
    }

    #[inline(always)]
    fn adam<const N: usize>(
        k: AdamStep,
        p: &mut [f32; N],
        g: &[f32; N],
        m: &mut [f32; N],
        v: &mut [f32; N],
    ) {
        #[cfg(target_arch = "x86_64")]
        if N.is_multiple_of(8) {
            // SAFETY: as above.
            return unsafe {
                small::adam(
                    [BETA1, BETA2, EPS, k.step_size, k.inv_bias_correction2_sqrt],
                    p,
                    g,
                    m,
                    v,
                )
            };
        }
        Plain::adam(k, p, g, m, v)
    }
}

// ---------------------------------------------------------------------------------------------
// Layers, activations, losses, optimizers.
// ---------------------------------------------------------------------------------------------

/// A `Linear(IN, OUT)` layer: weight `[[f32; IN]; OUT]` (out x in) and bias. Cache-line
/// aligned, as the generated layers are: where `IN` is a multiple of 8, vectors of rows then
/// never straddle two lines (which would slow the unaligned loads and stores, differently
/// from run to run).
#[derive(Clone, Debug, PartialEq)]
#[repr(C, align(64))]
pub struct Dense<const IN: usize, const OUT: usize> {
    pub w: [[f32; IN]; OUT],
    pub b: [f32; OUT],
}

/// Optimizer state of one layer: `S` scalars per parameter (0 for SGD, 2 for Adam), stored
/// next to the row they belong to.
#[derive(Clone, Debug)]
#[repr(C, align(64))]
pub struct Slots<const IN: usize, const OUT: usize, const S: usize> {
    w: [[[f32; IN]; S]; OUT],
    b: [[f32; OUT]; S],
}

/// An activation applied elementwise after a `Linear`.
pub trait Act {
    /// `f(z)`.
    fn f(z: f32) -> f32;
    /// `g * f'(z)` written in terms of the output `y = f(z)`.
    fn back(g: f32, y: f32) -> f32;
}

/// `max(z, 0)`.
pub struct Relu;

impl Act for Relu {
    #[inline(always)]
    fn f(z: f32) -> f32 {
        if z > 0.0 { z } else { 0.0 }
    }
    #[inline(always)]
    fn back(g: f32, y: f32) -> f32 {
        if y > 0.0 { g } else { 0.0 }
    }
}

/// `tanh(z)`, derivative `1 - y^2`.
pub struct Tanh;

impl Act for Tanh {
    #[inline(always)]
    fn f(z: f32) -> f32 {
        tanh(z)
    }
    #[inline(always)]
    fn back(g: f32, y: f32) -> f32 {
        g * (1.0 - y * y)
    }
}

/// No activation (the output layer).
pub struct Identity;

impl Act for Identity {
    #[inline(always)]
    fn f(z: f32) -> f32 {
        z
    }
    #[inline(always)]
    fn back(g: f32, _: f32) -> f32 {
        g
    }
}

/// `tanh` in `f32` by Eigen's rational approximation: branch-free, so loops over it
/// vectorise. Clamped to +-7.9053111 (where `tanh` rounds to +-1), and `x` itself below 4e-4.
#[inline(always)]
#[allow(clippy::excessive_precision)] // Eigen's coefficients, as published
pub fn tanh(x: f32) -> f32 {
    let tiny = x.abs() < 4e-4;
    let c = x.clamp(-7.905_311, 7.905_311);
    let x2 = c * c;
    let mut p = x2 * -2.760_768_5e-16 + 2.000_187_9e-13;
    p = p * x2 + -8.604_671_5e-11;
    p = p * x2 + 5.122_297e-8;
    p = p * x2 + 1.485_722_4e-5;
    p = p * x2 + 6.372_619_3e-4;
    p = p * x2 + 4.893_524_6e-3;
    p *= c;
    let mut q = x2 * 1.198_258_4e-6 + 1.185_347e-4;
    q = q * x2 + 2.268_434_6e-3;
    q = q * x2 + 4.893_525e-3;
    if tiny { x } else { p / q }
}

/// A loss: the batch mean, and its gradient with respect to the output.
pub trait LossFn {
    /// Writes the gradient into `dy` and returns the loss.
    fn value_and_grad<I: Isa, const R: usize, const B: usize>(
        y: &[[f32; R]; B],
        t: &[[f32; R]; B],
        dy: &mut [[f32; R]; B],
    ) -> f32;
}

/// Mean squared error over every element (`nn.MSELoss()`).
pub struct Mse;

impl LossFn for Mse {
    #[inline(always)]
    fn value_and_grad<I: Isa, const R: usize, const B: usize>(
        y: &[[f32; R]; B],
        t: &[[f32; R]; B],
        dy: &mut [[f32; R]; B],
    ) -> f32 {
        let n = (R * B) as f32;
        let scale = 2.0 / n;
        let mut sum = 0.0;
        for b in 0..B {
            for r in 0..R {
                let d = y[b][r] - t[b][r];
                sum = I::madd(d, d, sum);
                dy[b][r] = d * scale;
            }
        }
        sum / n
    }
}

/// Cross-entropy on logits with class-probability targets (`nn.CrossEntropyLoss()`), softmax
/// fused and shifted by the maximum.
pub struct CrossEntropy;

impl LossFn for CrossEntropy {
    #[inline(always)]
    fn value_and_grad<I: Isa, const R: usize, const B: usize>(
        y: &[[f32; R]; B],
        t: &[[f32; R]; B],
        dy: &mut [[f32; R]; B],
    ) -> f32 {
        let inv_b = 1.0 / B as f32;
        // The shifted logits, then every exponential of the batch in one flat loop (which
        // vectorises), then the per-sample sums.
        let mut max = [0.0f32; B];
        for b in 0..B {
            max[b] = y[b].iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
            for r in 0..R {
                dy[b][r] = y[b][r] - max[b];
            }
        }
        for e in dy.as_flattened_mut() {
            *e = nn_runtime::Real::fast_exp(*e);
        }
        let mut total = 0.0;
        for b in 0..B {
            let (z, t, e) = (&y[b], &t[b], &mut dy[b]);
            let sum: f32 = e.iter().sum();
            let mass: f32 = t.iter().sum();
            let log_sum = sum.ln();
            let scale = mass / sum;
            for r in 0..R {
                total -= t[r] * (z[r] - max[b] - log_sum);
                e[r] = (e[r] * scale - t[r]) * inv_b;
            }
        }
        total * inv_b
    }
}

/// An optimizer: per-step constants, then an elementwise rule over a parameter row.
pub trait Optim {
    /// Scalars of state per parameter.
    const SLOTS: usize;
    /// What one step's rule needs besides the element (learning rate, bias corrections).
    type Step: Copy;
    /// Starts a step (advancing the step count).
    fn begin(&mut self) -> Self::Step;
    /// The learning rate when the rule is plain SGD (which large layers fuse into the GEMM).
    fn sgd_lr(&self) -> Option<f32>;
    /// Updates the parameters `p` from their gradient `g` and state `s`.
    fn update<I: Isa, const N: usize, const S: usize>(
        k: Self::Step,
        p: &mut [f32; N],
        g: &[f32; N],
        s: &mut [[f32; N]; S],
    );
    /// Forgets the step count (the state arrays are zeroed by the network).
    fn restart(&mut self);
}

/// `p -= lr * g` (`torch.optim.SGD(params, lr)`).
#[derive(Clone, Copy, Debug)]
pub struct Sgd {
    pub lr: f32,
}

impl Optim for Sgd {
    const SLOTS: usize = 0;
    type Step = f32;
    #[inline(always)]
    fn begin(&mut self) -> f32 {
        self.lr
    }
    #[inline(always)]
    fn sgd_lr(&self) -> Option<f32> {
        Some(self.lr)
    }
    #[inline(always)]
    fn update<I: Isa, const N: usize, const S: usize>(
        lr: f32,
        p: &mut [f32; N],
        g: &[f32; N],
        _: &mut [[f32; N]; S],
    ) {
        I::axpy(-lr, g, p);
    }
    fn restart(&mut self) {}
}

/// `torch.optim.Adam(params, lr)` with its defaults: betas (0.9, 0.999), eps 1e-8.
#[derive(Clone, Copy, Debug)]
pub struct Adam {
    pub lr: f32,
    /// `beta1^t` and `beta2^t` after `t` steps, kept as running products in `f64`.
    beta1_t: f64,
    beta2_t: f64,
}

impl Adam {
    pub fn new(lr: f32) -> Self {
        Self {
            lr,
            beta1_t: 1.0,
            beta2_t: 1.0,
        }
    }
}

/// One Adam step's constants, computed once per step in `f64` as torch computes them.
#[derive(Clone, Copy, Debug)]
pub struct AdamStep {
    step_size: f32,
    inv_bias_correction2_sqrt: f32,
}

const BETA1: f32 = 0.9;
const BETA2: f32 = 0.999;
const EPS: f32 = 1e-8;

impl Optim for Adam {
    const SLOTS: usize = 2;
    type Step = AdamStep;
    #[inline(always)]
    fn begin(&mut self) -> AdamStep {
        self.beta1_t *= BETA1 as f64;
        self.beta2_t *= BETA2 as f64;
        let (bc1, bc2) = (1.0 - self.beta1_t, 1.0 - self.beta2_t);
        AdamStep {
            step_size: (self.lr as f64 / bc1) as f32,
            inv_bias_correction2_sqrt: (1.0 / bc2.sqrt()) as f32,
        }
    }
    #[inline(always)]
    fn sgd_lr(&self) -> Option<f32> {
        None
    }
    #[inline(always)]
    fn update<I: Isa, const N: usize, const S: usize>(
        k: AdamStep,
        p: &mut [f32; N],
        g: &[f32; N],
        s: &mut [[f32; N]; S],
    ) {
        let (m, v) = s.split_at_mut(1);
        I::adam(k, p, g, &mut m[0], &mut v[0]);
    }
    fn restart(&mut self) {
        *self = Adam::new(self.lr);
    }
}

// ---------------------------------------------------------------------------------------------
// Layer kernels for small layers: plain loops over compile-time sizes.
// ---------------------------------------------------------------------------------------------

/// `sum a[i] b[i]`, in eight running sums (one vector register) when `N >= 8`.
#[inline(always)]
fn dot<I: Isa, const N: usize>(a: &[f32; N], b: &[f32; N]) -> f32 {
    if N < 8 {
        let mut s = 0.0;
        for i in 0..N {
            s = I::madd(a[i], b[i], s);
        }
        return s;
    }
    let mut acc = [0.0f32; 8];
    for c in 0..N / 8 {
        for l in 0..8 {
            acc[l] = I::madd(a[8 * c + l], b[8 * c + l], acc[l]);
        }
    }
    let mut s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for i in N / 8 * 8..N {
        s = I::madd(a[i], b[i], s);
    }
    s
}

/// `y[b] = act(W x[b] + bias)` for every sample.
#[inline(always)]
fn forward<I: Isa, A: Act, const IN: usize, const OUT: usize, const B: usize>(
    l: &Dense<IN, OUT>,
    x: &[[f32; IN]; B],
    y: &mut [[f32; OUT]; B],
) {
    I::forward(&l.w, &l.b, x, y);
    // The activation in a pass of its own over the rows (still in L1), so it vectorises.
    for b in 0..B {
        for o in 0..OUT {
            y[b][o] = A::f(y[b][o]);
        }
    }
}

/// `dx[b] = A'(x[b]) * (W^T dz[b])`: the gradient passed to the layer below, whose
/// activation `A` produced `x` (the derivative is applied in the same pass).
#[inline(always)]
fn backward_input<I: Isa, A: Act, const IN: usize, const OUT: usize, const B: usize>(
    l: &Dense<IN, OUT>,
    x: &[[f32; IN]; B],
    dz: &[[f32; OUT]; B],
    dx: &mut [[f32; IN]; B],
) {
    I::input_grad(&l.w, dz, dx);
    for b in 0..B {
        for i in 0..IN {
            dx[b][i] = A::back(dx[b][i], x[b][i]);
        }
    }
}

/// The parameter gradients `dW[o] = sum_b dz[b][o] x[b]`, `db = sum_b dz[b]`, each row handed
/// to the optimizer as soon as it is complete.
#[inline(always)]
fn backward_params<
    I: Isa,
    O: Optim,
    const IN: usize,
    const OUT: usize,
    const B: usize,
    const S: usize,
>(
    l: &mut Dense<IN, OUT>,
    s: &mut Slots<IN, OUT, S>,
    k: O::Step,
    x: &[[f32; IN]; B],
    dz: &[[f32; OUT]; B],
) {
    for o in 0..OUT {
        let mut g = [0.0f32; IN];
        I::weight_grad_row(o, dz, x, &mut g);
        O::update::<I, IN, S>(k, &mut l.w[o], &g, &mut s.w[o]);
    }
    let mut gb = [0.0f32; OUT];
    for b in 0..B {
        for o in 0..OUT {
            gb[o] += dz[b][o];
        }
    }
    O::update::<I, OUT, S>(k, &mut l.b, &gb, &mut s.b);
}

/// Products with at least this many multiply-adds use the blocked kernels of [`gemm`].
const LARGE: usize = 1 << 18;

/// [`forward`] for ReLU layers, by the blocked kernel when the layer is large.
#[inline(always)]
fn forward_relu<I: Isa, const IN: usize, const OUT: usize, const B: usize>(
    l: &Dense<IN, OUT>,
    x: &[[f32; IN]; B],
    y: &mut [[f32; OUT]; B],
) {
    if IN * OUT * B >= LARGE {
        gemm::dot_nt(
            (OUT, B, IN),
            l.w.as_flattened(),
            IN,
            x.as_flattened(),
            IN,
            &l.b,
            true,
            y.as_flattened_mut(),
            OUT,
        );
    } else {
        forward::<I, Relu, IN, OUT, B>(l, x, y);
    }
}

/// [`backward_params`], by the blocked kernel with the SGD update fused when the layer is
/// large and the optimizer is SGD.
#[inline(always)]
fn backward_params_any<
    I: Isa,
    O: Optim,
    const IN: usize,
    const OUT: usize,
    const B: usize,
    const S: usize,
>(
    l: &mut Dense<IN, OUT>,
    s: &mut Slots<IN, OUT, S>,
    opt: &O,
    k: O::Step,
    x: &[[f32; IN]; B],
    dz: &[[f32; OUT]; B],
) {
    match opt.sgd_lr() {
        Some(lr) if IN * OUT * B >= LARGE => {
            // W[o][i] += -lr * sum_b dz[b][o] x[b][i]: A = x (B x IN), B(b, o) = dz[b][o].
            gemm::axpy_nn(
                (IN, OUT, B),
                x.as_flattened(),
                IN,
                dz.as_flattened(),
                (OUT, 1),
                -lr,
                l.w.as_flattened_mut(),
                IN,
            );
            let mut gb = [0.0f32; OUT];
            for b in 0..B {
                for o in 0..OUT {
                    gb[o] += dz[b][o];
                }
            }
            O::update::<I, OUT, S>(k, &mut l.b, &gb, &mut s.b);
        }
        _ => backward_params::<I, O, IN, OUT, B, S>(l, s, k, x, dz),
    }
}

/// A zeroed value on the heap, never on the stack (large networks do not fit there).
///
/// # Safety
/// All-zero bytes must be a valid `T` (true of arrays of `f32`, `i32` and structs of them).
unsafe fn boxed_zeroed<T>() -> Box<T> {
    // SAFETY: as the caller promises.
    unsafe { Box::<T>::new_zeroed().assume_init() }
}

/// Each public step below dispatches once, at run time: to a copy compiled for AVX2 + FMA
/// (`I` = [`Fma`]) when the processor has them, to the base instruction set (`I` = [`Plain`])
/// otherwise. Every kernel is `#[inline(always)]`, so each copy is compiled whole for its
/// instruction set.
macro_rules! dispatch {
    ($self:ident . $avx2:ident / $plain:ident $(:: <$($generic:ty),+>)? ($($arg:expr),*)) => {{
        #[cfg(target_arch = "x86_64")]
        if has_avx2_fma() {
            // SAFETY: the processor has AVX2 and FMA.
            return unsafe { $self.$avx2::<Fma $($(, $generic)+)?>($($arg),*) };
        }
        $self.$plain::<Plain $($(, $generic)+)?>($($arg),*)
    }};
}

// ---------------------------------------------------------------------------------------------
// Workload networks.
// ---------------------------------------------------------------------------------------------

/// `Linear(IN, HID) ReLU Linear(HID, OUT)` trained on batches of `B`, with `S` optimizer
/// slots per parameter: the xor, digits and mnist workloads. Lives on the heap with its
/// activation buffers, cache-line aligned (as its layers are).
#[repr(align(64))]
pub struct Mlp2<const IN: usize, const HID: usize, const OUT: usize, const B: usize, const S: usize>
{
    pub l0: Dense<IN, HID>,
    pub l2: Dense<HID, OUT>,
    s0: Slots<IN, HID, S>,
    s2: Slots<HID, OUT, S>,
    h: [[f32; HID]; B],
    y: [[f32; OUT]; B],
    dy: [[f32; OUT]; B],
    dh: [[f32; HID]; B],
}

impl<const IN: usize, const HID: usize, const OUT: usize, const B: usize, const S: usize>
    Mlp2<IN, HID, OUT, B, S>
{
    /// All zero, on the heap.
    pub fn zeroed() -> Box<Self> {
        // SAFETY: nothing but `f32` arrays.
        unsafe { boxed_zeroed() }
    }

    /// Zeroes the optimizer state (with [`Optim::restart`], a fresh optimizer).
    pub fn clear_state(&mut self) {
        // SAFETY: nothing but `f32` arrays.
        let (s0, s2) = unsafe { (boxed_zeroed(), boxed_zeroed()) };
        self.s0 = *s0;
        self.s2 = *s2;
    }

    /// One training step: forward, loss, backward, update. Returns the loss before the update.
    #[inline(never)]
    pub fn train_step<L: LossFn, O: Optim>(
        &mut self,
        xs: &[[f32; IN]; B],
        ys: &[[f32; OUT]; B],
        opt: &mut O,
    ) -> f32 {
        const { assert!(S == O::SLOTS) };
        dispatch!(self.__avx2 / step::<L, O>(xs, ys, opt))
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn __avx2<I: Isa, L: LossFn, O: Optim>(
        &mut self,
        xs: &[[f32; IN]; B],
        ys: &[[f32; OUT]; B],
        opt: &mut O,
    ) -> f32 {
        self.step::<I, L, O>(xs, ys, opt)
    }

    #[inline(always)]
    fn step<I: Isa, L: LossFn, O: Optim>(
        &mut self,
        xs: &[[f32; IN]; B],
        ys: &[[f32; OUT]; B],
        opt: &mut O,
    ) -> f32 {
        forward_relu::<I, IN, HID, B>(&self.l0, xs, &mut self.h);
        forward::<I, Identity, HID, OUT, B>(&self.l2, &self.h, &mut self.y);
        let loss = L::value_and_grad::<I, OUT, B>(&self.y, ys, &mut self.dy);
        let k = opt.begin();
        // The input gradient of layer 2 reads its weights before they are updated.
        backward_input::<I, Relu, HID, OUT, B>(&self.l2, &self.h, &self.dy, &mut self.dh);
        backward_params::<I, O, HID, OUT, B, S>(&mut self.l2, &mut self.s2, k, &self.h, &self.dy);
        backward_params_any::<I, O, IN, HID, B, S>(
            &mut self.l0,
            &mut self.s0,
            opt,
            k,
            xs,
            &self.dh,
        );
        loss
    }
}

/// `Linear(IN, H1) Tanh Linear(H1, H2) Tanh Linear(H2, OUT)`, trained on batches of `B`: the
/// infer and online workloads. Cache-line aligned, as [`Mlp2`].
#[repr(align(64))]
pub struct Mlp3<
    const IN: usize,
    const H1: usize,
    const H2: usize,
    const OUT: usize,
    const B: usize,
    const S: usize,
> {
    pub l0: Dense<IN, H1>,
    pub l2: Dense<H1, H2>,
    pub l4: Dense<H2, OUT>,
    s0: Slots<IN, H1, S>,
    s2: Slots<H1, H2, S>,
    s4: Slots<H2, OUT, S>,
    h1: [[f32; H1]; B],
    h2: [[f32; H2]; B],
    y: [[f32; OUT]; B],
    dy: [[f32; OUT]; B],
    d2: [[f32; H2]; B],
    d1: [[f32; H1]; B],
}

impl<
    const IN: usize,
    const H1: usize,
    const H2: usize,
    const OUT: usize,
    const B: usize,
    const S: usize,
> Mlp3<IN, H1, H2, OUT, B, S>
{
    /// All zero, on the heap.
    pub fn zeroed() -> Box<Self> {
        // SAFETY: nothing but `f32` arrays.
        unsafe { boxed_zeroed() }
    }

    /// Zeroes the optimizer state.
    pub fn clear_state(&mut self) {
        // SAFETY: nothing but `f32` arrays.
        let s = unsafe { (boxed_zeroed(), boxed_zeroed(), boxed_zeroed()) };
        (self.s0, self.s2, self.s4) = (*s.0, *s.1, *s.2);
    }

    /// One sample through the network.
    #[inline(never)]
    pub fn forward(&self, x: &[f32; IN]) -> [f32; OUT] {
        dispatch!(self.__avx2_forward / forward_one(x))
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn __avx2_forward<I: Isa>(&self, x: &[f32; IN]) -> [f32; OUT] {
        self.forward_one::<I>(x)
    }

    #[inline(always)]
    fn forward_one<I: Isa>(&self, x: &[f32; IN]) -> [f32; OUT] {
        let (mut h1, mut h2, mut y) = ([[0.0; H1]], [[0.0; H2]], [[0.0; OUT]]);
        forward::<I, Tanh, IN, H1, 1>(&self.l0, core::array::from_ref(x), &mut h1);
        forward::<I, Tanh, H1, H2, 1>(&self.l2, &h1, &mut h2);
        forward::<I, Identity, H2, OUT, 1>(&self.l4, &h2, &mut y);
        y[0]
    }

    /// One training step: forward, loss, backward, update. Returns the loss before the update.
    #[inline(never)]
    pub fn train_step<L: LossFn, O: Optim>(
        &mut self,
        xs: &[[f32; IN]; B],
        ys: &[[f32; OUT]; B],
        opt: &mut O,
    ) -> f32 {
        const { assert!(S == O::SLOTS) };
        dispatch!(self.__avx2_train / step::<L, O>(xs, ys, opt))
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn __avx2_train<I: Isa, L: LossFn, O: Optim>(
        &mut self,
        xs: &[[f32; IN]; B],
        ys: &[[f32; OUT]; B],
        opt: &mut O,
    ) -> f32 {
        self.step::<I, L, O>(xs, ys, opt)
    }

    #[inline(always)]
    fn step<I: Isa, L: LossFn, O: Optim>(
        &mut self,
        xs: &[[f32; IN]; B],
        ys: &[[f32; OUT]; B],
        opt: &mut O,
    ) -> f32 {
        forward::<I, Tanh, IN, H1, B>(&self.l0, xs, &mut self.h1);
        forward::<I, Tanh, H1, H2, B>(&self.l2, &self.h1, &mut self.h2);
        forward::<I, Identity, H2, OUT, B>(&self.l4, &self.h2, &mut self.y);
        let loss = L::value_and_grad::<I, OUT, B>(&self.y, ys, &mut self.dy);
        let k = opt.begin();
        backward_input::<I, Tanh, H2, OUT, B>(&self.l4, &self.h2, &self.dy, &mut self.d2);
        backward_params::<I, O, H2, OUT, B, S>(&mut self.l4, &mut self.s4, k, &self.h2, &self.dy);
        backward_input::<I, Tanh, H1, H2, B>(&self.l2, &self.h1, &self.d2, &mut self.d1);
        backward_params::<I, O, H1, H2, B, S>(&mut self.l2, &mut self.s2, k, &self.h1, &self.d2);
        backward_params::<I, O, IN, H1, B, S>(&mut self.l0, &mut self.s0, k, xs, &self.d1);
        loss
    }
}

// After `dispatch!`, which they use.
pub mod conv;
pub mod recurrent;
