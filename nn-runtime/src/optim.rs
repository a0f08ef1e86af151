//! Optimizers with `torch.optim`'s update rules and defaults.
//!
//! An optimizer sees a network as a list of parameter tensors, each a flat slice, given in the
//! same order at every step; so one implementation serves every generated network. Its state
//! (moments, momentum buffers) is allocated on the first step and reused afterwards: one
//! optimizer value serves one network.
//!
//! Each type equals its `torch.optim` class (torch 2.x) run with the single-tensor
//! implementation (`foreach=False`), `maximize=False` and, for Adam and AdamW, `amsgrad=False`:
//! same defaults, same order of operations, same first-step special cases. The rules are
//! elementwise, so the order in which a tensor is flattened does not matter. Scalars that
//! depend only on the hyperparameters and the step count (bias corrections, step sizes,
//! `1 - beta`) are computed in `f64` and rounded once to `T`, as torch computes them in Python
//! floats; the per-element arithmetic runs in `T`, as torch's kernels run in the tensor's
//! dtype. `tests/fixtures/optim` holds torch's own trajectories, which the tests replay: f64
//! agrees to 1e-13 relative or better, f32 to a few units in the last place, well within 1e-5
//! relative (torch's vectorised kernels may fuse a multiply and an add where we round twice).
//! One deliberate difference: Adam and AdamW store a moment that has decayed below the
//! smallest normal number as zero, where torch keeps it subnormal (see `adam_element`),
//! unless `eps` is too small for that to leave the updates unchanged.
//!
//! The builders check their argument as the torch constructors do and panic with a message
//! naming it; [`Optimizer::step`] never panics, and allocates only on the first call.
//!
//! ```
//! use nn_runtime::{Adam, Optimizer};
//!
//! let mut weight = [0.5f32, -1.0, 2.0];
//! let mut bias = [0.0f32];
//! let mut opt = Adam::new(0.01).betas(0.9, 0.99);
//! for _ in 0..3 {
//!     // Gradients of sum(p^2): 2p.
//!     let gw = weight.map(|w| 2.0 * w);
//!     let gb = bias.map(|b| 2.0 * b);
//!     opt.step(&mut [&mut weight, &mut bias], &[&gw, &gb]);
//! }
//! assert!(weight[0] < 0.5 && weight[1] > -1.0);
//! ```

use crate::kernels::fast;
use crate::real::Real;

/// An update rule applied to every parameter tensor of one network.
pub trait Optimizer<T: Real> {
    /// Applies one optimisation step. `params[i]` and `grads[i]` are the same tensor, flattened
    /// (same length); the list has the same lengths in the same order at every call.
    fn step(&mut self, params: &mut [&mut [T]], grads: &[&[T]]);

    /// The learning rate when this optimizer's step is plain gradient descent, `p -= lr * g`
    /// for every element, with no state: a network's `train_step` then folds the update into
    /// its backward pass (each layer's parameters change as soon as their gradient is known,
    /// after the gradient for the layer below was taken from the old weights, and no gradient
    /// is stored) instead of calling [`step`](Self::step). `None`, the default, for every
    /// other rule.
    fn plain_sgd_rate(&self) -> Option<T> {
        None
    }
}

// ---------------------------------------------------------------------------------------------
// Shared machinery: lazily allocated per-element state and the loop over every element.
// ---------------------------------------------------------------------------------------------

/// Per-element optimizer state for every tensor of one network, and the step count.
///
/// `S` is what one parameter element needs between steps (a momentum buffer, two moments...).
/// Torch keeps a `step` per tensor; all tensors here step together, so one count serves all.
#[derive(Clone, Debug)]
struct State<S> {
    /// Steps taken since the state was allocated (torch's `state["step"]`).
    step: u64,
    /// `beta1^step` and `beta2^step` for Adam's bias corrections, kept as running products in
    /// `f64` rather than two `powf` calls a step (which cost as much as a whole small step).
    powers: [f64; 2],
    /// The state of each tensor, in the order of `params`: `per_element` runs of one `S` per
    /// parameter element, one run after another (all first moments, then all second moments),
    /// so that each quantity is contiguous and the element loops load whole vectors of it.
    tensors: Vec<Runs<S>>,
}

/// The state of one tensor: `count` runs of `len` values each, zeroed, every run starting on
/// a cache line where the size of `S` allows it.
///
/// The element loops load and store whole vectors of each run; a vector that straddles two
/// cache lines costs about twice as much, and whether a `Vec` from the allocator starts on a
/// 32-byte boundary differs from one program (and one run) to the next. So the buffer is a
/// line longer than needed and the runs start at its first line boundary.
#[derive(Debug)]
struct Runs<S> {
    buf: Vec<S>,
    /// Index in `buf` of the first run's first value.
    start: usize,
    /// Distance between the starts of consecutive runs: `len`, rounded up to whole lines.
    stride: usize,
    len: usize,
    count: usize,
}

impl<S: Clone + Default> Runs<S> {
    /// `count` runs of `len` zeroed values.
    fn zeroed(len: usize, count: usize) -> Self {
        let size = size_of::<S>().max(1);
        // Values per line, or 1 where `S` does not divide a line (no alignment is attempted).
        let per_line = if Self::LINE.is_multiple_of(size) {
            Self::LINE / size
        } else {
            1
        };
        let stride = len.next_multiple_of(per_line);
        let buf = vec![S::default(); stride * count + per_line - 1];
        let start = buf.as_ptr().align_offset(Self::LINE).min(per_line - 1);
        Self {
            buf,
            start,
            stride,
            len,
            count,
        }
    }
}

impl<S> Runs<S> {
    /// Bytes of a cache line.
    const LINE: usize = 64;

    /// Values per run.
    fn len(&self) -> usize {
        self.len
    }

    /// Run `i`.
    #[cfg(test)]
    fn run(&self, i: usize) -> &[S] {
        let at = self.start + i * self.stride;
        &self.buf[at..at + self.len]
    }

    /// The first run, for optimizers with one value per element.
    fn first_mut(&mut self) -> &mut [S] {
        &mut self.buf[self.start..self.start + self.len]
    }

    /// The first two runs, for optimizers with two values per element.
    fn pair_mut(&mut self) -> (&mut [S], &mut [S]) {
        debug_assert!(self.count >= 2, "pair_mut of {} runs", self.count);
        let (first, second) = self.buf[self.start..].split_at_mut(self.stride);
        (&mut first[..self.len], &mut second[..self.len])
    }
}

impl<S: Clone> Clone for Runs<S> {
    /// A copy in a buffer of its own, its runs moved to that buffer's first line boundary (the
    /// original's offset says nothing about the new buffer's).
    fn clone(&self) -> Self {
        let mut buf = self.buf.clone();
        let slack = buf.len() - self.stride * self.count;
        let start = buf.as_ptr().align_offset(Self::LINE).min(slack);
        let data = self.stride * self.count;
        if start > self.start {
            buf[self.start..start + data].rotate_right(start - self.start);
        } else {
            buf[start..self.start + data].rotate_left(self.start - start);
        }
        Self {
            buf,
            start,
            ..*self
        }
    }
}

impl<S> Default for State<S> {
    fn default() -> Self {
        Self {
            step: 0,
            powers: [1.0; 2],
            tensors: Vec::new(),
        }
    }
}

impl<S: Copy + Default> State<S> {
    /// Makes the state match the shape of `params`, zero-initialised as torch's `zeros_like`.
    ///
    /// It allocates only when the shapes differ: on the first step, or when a caller breaks the
    /// same-list contract, where starting over (as a fresh torch optimizer would) beats mixing
    /// one tensor's moments into another's. In steady state it only compares lengths.
    fn fit<T>(&mut self, params: &[&mut [T]], per_element: usize) {
        let fits = self.tensors.len() == params.len()
            && self
                .tensors
                .iter()
                .zip(params)
                .all(|(s, p)| s.len() == p.len() && s.count == per_element);
        if !fits {
            self.tensors.clear();
            self.tensors
                .extend(params.iter().map(|p| Runs::zeroed(p.len(), per_element)));
            self.step = 0;
            self.powers = [1.0; 2];
        }
    }
}

impl<S> State<S> {
    /// After a change of betas mid-run, `beta^step` for the new betas, as torch computes its
    /// bias corrections from the betas of the step (`1 - beta1 ** step`), not from a product
    /// over the betas of past steps.
    fn rebase_powers<T: Real>(&mut self, beta1: T, beta2: T) {
        let step = self.step as f64;
        self.powers = [beta1.widen().powf(step), beta2.widen().powf(step)];
    }
}

/// Calls `update(param, grad, state)` on every element of every tensor.
///
/// Mismatched lengths are a broken contract; zipping stops at the shorter list rather than
/// panicking, since a training loop must never panic inside `step`.
#[inline(always)]
fn for_each_element<T: Real, S>(
    params: &mut [&mut [T]],
    grads: &[&[T]],
    state: &mut [Runs<S>],
    mut update: impl FnMut(&mut T, T, &mut S),
) {
    for ((p, g), s) in params.iter_mut().zip(grads).zip(state) {
        for ((p, &g), s) in p.iter_mut().zip(g.iter()).zip(s.first_mut()) {
            update(p, g, s);
        }
    }
}

/// The gradient with L2 weight decay folded in: torch's `grad.add(param, alpha=weight_decay)`.
///
/// Torch skips the addition when the decay is zero; so do we, so that an infinite parameter
/// does not turn the gradient into NaN where torch would leave it alone.
#[inline]
fn with_l2<T: Real>(grad: T, param: T, weight_decay: T) -> T {
    if weight_decay == T::zero() {
        grad
    } else {
        grad + weight_decay * param
    }
}

/// Torch's `start.lerp_(end, weight)`, written as its CPU kernel computes it (from the nearer
/// end), so that the running averages round as torch's do.
#[inline]
fn lerp<T: Real>(start: T, end: T, weight: T) -> T {
    if weight.abs() < T::cast(0.5) {
        start + weight * (end - start)
    } else {
        end - (end - start) * (T::one() - weight)
    }
}

/// `1 - x`, computed in `f64` and rounded once, as torch's `1 - beta` in Python floats is.
fn one_minus<T: Real>(x: T) -> T {
    T::cast(1.0 - x.widen())
}

/// Panics, naming the optimizer and the argument, unless `value >= 0` (so NaN panics too), as
/// the torch constructors raise `ValueError` for a negative learning rate, momentum, epsilon,
/// weight decay or alpha.
#[track_caller]
fn check_non_negative<T: Real>(value: T, optimizer: &str, name: &str) {
    assert!(
        value >= T::zero(),
        "{optimizer}: invalid {name} {value}: torch.optim requires {name} >= 0"
    );
}

// ---------------------------------------------------------------------------------------------
// SGD
// ---------------------------------------------------------------------------------------------

/// Stochastic gradient descent with optional momentum, Nesterov momentum and L2 weight decay,
/// as `torch.optim.SGD(params, lr, momentum=0, dampening=0, weight_decay=0, nesterov=False)`.
///
/// Per element, with gradient `g`, parameter `p` and momentum buffer `b`:
///
/// ```text
/// g = g + weight_decay * p                        if weight_decay != 0
/// b = g                                           on the first step     } if momentum != 0
/// b = momentum * b + (1 - dampening) * g          on later steps        }
/// g = g + momentum * b   if nesterov,   else  g = b                     }
/// p = p - lr * g
/// ```
///
/// The first step copies the gradient into the buffer undampened, as torch does. Defaults (as
/// torch's): `momentum = 0`, `dampening = 0`, `nesterov = false`, `weight_decay = 0`. State:
/// one buffer element per parameter element when momentum is non-zero, nothing otherwise.
#[derive(Clone, Debug)]
pub struct Sgd<T: Real> {
    lr: T,
    momentum: T,
    dampening: T,
    nesterov: bool,
    weight_decay: T,
    /// Torch's `momentum_buffer`s; allocated on the first step with a non-zero momentum.
    buffers: State<T>,
}

impl<T: Real> Sgd<T> {
    /// SGD with learning rate `lr` and torch's other defaults.
    ///
    /// # Panics
    /// If `lr` is negative or NaN (torch raises `ValueError`).
    #[track_caller]
    pub fn new(lr: T) -> Self {
        check_non_negative(lr, "Sgd", "learning rate");
        Self {
            lr,
            momentum: T::zero(),
            dampening: T::zero(),
            nesterov: false,
            weight_decay: T::zero(),
            buffers: State::default(),
        }
    }

    /// Sets the momentum factor (torch's `momentum`, default 0).
    ///
    /// # Panics
    /// If `momentum` is negative or NaN, or zero while Nesterov momentum is on.
    #[must_use]
    #[track_caller]
    pub fn momentum(mut self, momentum: T) -> Self {
        check_non_negative(momentum, "Sgd", "momentum");
        assert!(
            !self.nesterov || momentum > T::zero(),
            "Sgd: Nesterov momentum requires a momentum > 0, got {momentum}"
        );
        self.momentum = momentum;
        self
    }

    /// Sets the dampening of the momentum (torch's `dampening`, default 0). Torch applies it
    /// from the second step on: the first step starts the buffer at the plain gradient.
    ///
    /// # Panics
    /// If it is non-zero while Nesterov momentum is on (torch requires zero dampening).
    #[must_use]
    #[track_caller]
    pub fn dampening(mut self, dampening: T) -> Self {
        assert!(
            !self.nesterov || dampening == T::zero(),
            "Sgd: Nesterov momentum requires zero dampening, got {dampening}"
        );
        self.dampening = dampening;
        self
    }

    /// Turns Nesterov momentum on or off (torch's `nesterov`, default off).
    ///
    /// Torch accepts Nesterov momentum only with a positive momentum and zero dampening; so
    /// set `.momentum(m)` first: `Sgd::new(0.1).momentum(0.9).nesterov(true)`.
    ///
    /// # Panics
    /// If `nesterov` is true while the momentum is zero or the dampening is non-zero.
    #[must_use]
    #[track_caller]
    pub fn nesterov(mut self, nesterov: bool) -> Self {
        assert!(
            !nesterov || (self.momentum > T::zero() && self.dampening == T::zero()),
            "Sgd: Nesterov momentum requires a momentum > 0 and zero dampening \
             (got momentum {}, dampening {}); call .momentum(m) before .nesterov(true)",
            self.momentum,
            self.dampening
        );
        self.nesterov = nesterov;
        self
    }

    /// Sets the L2 penalty added to the gradient (torch's `weight_decay`, default 0).
    ///
    /// # Panics
    /// If `weight_decay` is negative or NaN.
    #[must_use]
    #[track_caller]
    pub fn weight_decay(mut self, weight_decay: T) -> Self {
        check_non_negative(weight_decay, "Sgd", "weight_decay");
        self.weight_decay = weight_decay;
        self
    }
}

/// The scalars one SGD step applies to every element.
#[derive(Clone, Copy)]
struct SgdStep<T> {
    lr: T,
    weight_decay: T,
    momentum: T,
    one_minus_dampening: T,
    nesterov: bool,
    /// Whether the momentum buffer starts now (torch's `buf is None`).
    first: bool,
}

/// Plain SGD on one element: `p -= lr * (g + wd * p)`.
#[inline]
fn sgd_element<T: Real>(p: &mut T, g: T, k: &SgdStep<T>) {
    let g = with_l2(g, *p, k.weight_decay);
    *p -= k.lr * g;
}

/// SGD with momentum on one element and its buffer `b`.
#[inline]
fn sgd_momentum_element<T: Real>(p: &mut T, g: T, b: &mut T, k: &SgdStep<T>) {
    let g = with_l2(g, *p, k.weight_decay);
    // Torch starts the buffer as a copy of the first gradient, without dampening.
    *b = if k.first {
        g
    } else {
        *b * k.momentum + k.one_minus_dampening * g
    };
    // Nesterov looks ahead along the updated buffer; classical momentum steps along it.
    let direction = if k.nesterov { g + k.momentum * *b } else { *b };
    *p -= k.lr * direction;
}

impl<T: Real> Optimizer<T> for Sgd<T> {
    /// `Some(lr)` without momentum or weight decay.
    fn plain_sgd_rate(&self) -> Option<T> {
        (self.momentum == T::zero() && self.weight_decay == T::zero()).then_some(self.lr)
    }

    fn step(&mut self, params: &mut [&mut [T]], grads: &[&[T]]) {
        let mut k = SgdStep {
            lr: self.lr,
            weight_decay: self.weight_decay,
            momentum: self.momentum,
            one_minus_dampening: one_minus(self.dampening),
            nesterov: self.nesterov,
            first: false,
        };
        if self.momentum == T::zero() {
            // Torch keeps no buffer without momentum; neither do we. The weight-decay test is
            // hoisted out of the element loop (inside it, it compiled to a compare and branch
            // per vector, which halved the loop's speed): without decay, `p -= lr * g`.
            if k.weight_decay == T::zero() {
                let lr = k.lr;
                fast(|| {
                    for (p, g) in params.iter_mut().zip(grads) {
                        for (p, &g) in p.iter_mut().zip(g.iter()) {
                            *p -= lr * g;
                        }
                    }
                });
            } else {
                fast(|| {
                    for (p, g) in params.iter_mut().zip(grads) {
                        for (p, &g) in p.iter_mut().zip(g.iter()) {
                            sgd_element(p, g, &k);
                        }
                    }
                });
            }
            return;
        }
        self.buffers.fit(params, 1);
        k.first = self.buffers.step == 0;
        self.buffers.step += 1;
        fast(|| {
            for_each_element(params, grads, &mut self.buffers.tensors, |p, g, b| {
                sgd_momentum_element(p, g, b, &k)
            })
        });
    }
}

// ---------------------------------------------------------------------------------------------
// Adam and AdamW
// ---------------------------------------------------------------------------------------------

/// Hyperparameters shared by [`Adam`] and [`AdamW`]; they differ only in how weight decay acts.
#[derive(Clone, Copy, Debug)]
struct AdamConfig<T> {
    lr: T,
    beta1: T,
    beta2: T,
    eps: T,
    weight_decay: T,
}

/// The scalars one Adam step applies to every element, computed once per step.
#[derive(Clone, Copy, Debug)]
struct AdamStep<T> {
    one_minus_beta1: T,
    beta2: T,
    one_minus_beta2: T,
    /// `1 / sqrt(1 - beta2^t)`.
    inv_bias_correction2_sqrt: T,
    eps: T,
    /// `lr / (1 - beta1^t)`.
    step_size: T,
    /// Weight decay added to the gradient (Adam), or 0.
    l2: T,
    /// Factor `1 - lr * weight_decay` the parameter is scaled by first (AdamW), or `None`.
    decay: Option<T>,
    /// Moments smaller than this in magnitude are stored as zero: the smallest normal number
    /// where that cannot change an update beyond its last place, or 0 (no flushing) where it
    /// could, as with `eps = 0` (see [`AdamConfig::flush_threshold`]).
    flush_below: T,
}

impl<T: Real> AdamConfig<T> {
    /// Defaults of `torch.optim.Adam` (`weight_decay` is overridden by AdamW).
    #[track_caller]
    fn new(optimizer: &str, lr: T) -> Self {
        check_non_negative(lr, optimizer, "learning rate");
        Self {
            lr,
            beta1: T::cast(0.9),
            beta2: T::cast(0.999),
            eps: T::cast(1e-8),
            weight_decay: T::zero(),
        }
    }

    /// Sets both betas, checked as torch checks them.
    #[track_caller]
    fn betas(&mut self, optimizer: &str, beta1: T, beta2: T) {
        for (i, beta) in [beta1, beta2].into_iter().enumerate() {
            assert!(
                beta >= T::zero() && beta < T::one(),
                "{optimizer}: invalid beta parameter at index {i}: {beta} (torch requires 0 <= beta < 1)"
            );
        }
        self.beta1 = beta1;
        self.beta2 = beta2;
    }

    /// The scalars of the step whose `beta1^t` and `beta2^t` are `powers`, in `f64` as
    /// torch's Python-float arithmetic, then rounded to `T`. `decoupled` selects AdamW's decay
    /// of the parameter over Adam's L2 term.
    fn step(&self, powers: [f64; 2], decoupled: bool) -> AdamStep<T> {
        let bias_correction1 = 1.0 - powers[0];
        let bias_correction2 = 1.0 - powers[1];
        let inv_bias_correction2_sqrt = 1.0 / bias_correction2.sqrt();
        let decays = self.weight_decay != T::zero();
        AdamStep {
            one_minus_beta1: one_minus(self.beta1),
            beta2: self.beta2,
            one_minus_beta2: one_minus(self.beta2),
            inv_bias_correction2_sqrt: T::cast(inv_bias_correction2_sqrt),
            eps: self.eps,
            step_size: T::cast(self.lr.widen() / bias_correction1),
            l2: if decoupled {
                T::zero()
            } else {
                self.weight_decay
            },
            decay: (decoupled && decays)
                .then(|| T::cast(1.0 - self.lr.widen() * self.weight_decay.widen())),
            flush_below: self.flush_threshold(inv_bias_correction2_sqrt),
        }
    }

    /// Below what magnitude a step may store a moment as zero (see [`adam_element`]).
    ///
    /// A flushed second moment `v < MIN_NORMAL` takes less than `sqrt(MIN_NORMAL) * c` (with
    /// `c = 1 / sqrt(1 - beta2^t)`) out of the denominator `sqrt(v) * c + eps`. Where that is
    /// at most `eps * EPSILON / 4`, under half a unit in the last place of `eps`, the
    /// denominator rounds to `eps` with the moment or without it. A flushed first moment then
    /// changes the update by less than `step_size * MIN_NORMAL / eps`, at most
    /// `sqrt(MIN_NORMAL) * EPSILON / 4` (3e-27 in `f32`) of the step size. Otherwise (a tiny
    /// or zero `eps`, where `m / sqrt(v)` of two subnormal moments can be of order one)
    /// nothing is flushed, and the moments are kept as torch keeps them. The default
    /// `eps = 1e-8` flushes with a margin of some 90 in `f32`.
    fn flush_threshold(&self, inv_bias_correction2_sqrt: f64) -> T {
        let v_share = T::MIN_NORMAL.widen().sqrt() * inv_bias_correction2_sqrt;
        if self.eps.widen() * T::default_epsilon().widen() / 4.0 >= v_share {
            T::MIN_NORMAL
        } else {
            T::zero()
        }
    }
}

/// Adam (or AdamW) on one element and its moments. `L2` and `NEAR_START` are the step's
/// invariants (`k.l2 != 0`, and which end torch's `lerp` computes from), made compile-time so
/// that the element loop has no branch and vectorises.
#[inline(always)]
fn adam_element<T: Real, const L2: bool, const NEAR_START: bool>(
    p: &mut T,
    g: T,
    m: &mut T,
    v: &mut T,
    k: &AdamStep<T>,
) {
    // AdamW: decay the parameter itself, outside the moments (a factor of exactly 1 for Adam).
    *p *= k.decay.unwrap_or(T::one());
    let g = if L2 { g + k.l2 * *p } else { g };
    // First moment: torch's `exp_avg.lerp_(grad, 1 - beta1)`, i.e. beta1 * m + (1 - beta1) * g,
    // computed from the end torch's CPU kernel computes it from.
    let w = k.one_minus_beta1;
    *m = if NEAR_START {
        *m + w * (g - *m)
    } else {
        g - (g - *m) * (T::one() - w)
    };
    // Second moment: torch's `exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)`.
    *v = *v * k.beta2 + k.one_minus_beta2 * g * g;
    // A moment that has decayed below the smallest normal number (a unit whose gradient has
    // been zero for hundreds of steps, as a dead ReLU's) is stored as zero. Kept subnormal, as
    // torch keeps it, it would go through every later step's arithmetic at the cost of a
    // microcode assist per instruction (about 150 cycles each on x86): measured, a third of
    // the digits workload's step time. `flush_below` is 0 where `eps` is too small for this
    // to leave the update unchanged (see `AdamConfig::flush_threshold`).
    *m = flush_below(*m, k.flush_below);
    *v = flush_below(*v, k.flush_below);
    // eps is added after the bias correction of sqrt(v), not under the square root. Torch
    // divides by sqrt(1 - beta2^t); multiplying by its reciprocal (computed once, in f64)
    // differs by at most an ulp and saves a division per element, the loop's costliest
    // instruction after the one division that remains.
    let denom = v.sqrt() * k.inv_bias_correction2_sqrt + k.eps;
    *p -= k.step_size * (*m / denom);
}

/// `x`, or zero where `|x| < threshold`. A comparison and a select: no arithmetic on `x`, so
/// no assist, and the element loop stays branch-free.
#[inline(always)]
fn flush_below<T: Real>(x: T, threshold: T) -> T {
    if x.abs() < threshold { T::zero() } else { x }
}

/// Every element of every tensor through [`adam_element`], for one choice of invariants.
#[inline(always)]
fn adam_elements<T: Real, const L2: bool, const NEAR_START: bool>(
    params: &mut [&mut [T]],
    grads: &[&[T]],
    state: &mut [Runs<T>],
    k: &AdamStep<T>,
) {
    for ((p, g), s) in params.iter_mut().zip(grads).zip(state) {
        // The first moments, then the second (see `State::tensors`).
        let (m, v) = s.pair_mut();
        for (((p, &g), m), v) in p.iter_mut().zip(g.iter()).zip(m).zip(v) {
            adam_element::<T, L2, NEAR_START>(p, g, m, v, k);
        }
    }
}

crate::kernels::multiversion! {
    /// One Adam step's element loops, with the step's invariants hoisted out of them.
    fn adam_update<T: Real>(
        params: &mut [&mut [T]],
        grads: &[&[T]],
        state: &mut [Runs<T>],
        k: &AdamStep<T>,
    ) {
        // Torch skips the L2 term when the decay is zero (so an infinite parameter does not
        // turn the gradient into NaN); `lerp` rounds from the nearer end.
        let near_start = k.one_minus_beta1.abs() < T::cast(0.5);
        match (k.l2 != T::zero(), near_start) {
            (false, true) => adam_elements::<T, false, true>(params, grads, state, k),
            (false, false) => adam_elements::<T, false, false>(params, grads, state, k),
            (true, true) => adam_elements::<T, true, true>(params, grads, state, k),
            (true, false) => adam_elements::<T, true, false>(params, grads, state, k),
        }
    }
}

/// One Adam or AdamW step over every tensor. `next` carries the step's constants from the
/// previous call: they are computed one step ahead, at the end of each step, so that their
/// `f64` square root and divisions (tens of cycles of latency, a sixth of a small network's
/// step) are off the next step's critical path.
fn adam_step<T: Real>(
    config: &AdamConfig<T>,
    decoupled: bool,
    state: &mut State<T>,
    next: &mut Option<AdamStep<T>>,
    params: &mut [&mut [T]],
    grads: &[&[T]],
) {
    state.fit(params, 2);
    state.step += 1;
    let betas = [config.beta1.widen(), config.beta2.widen()];
    state.powers[0] *= betas[0];
    state.powers[1] *= betas[1];
    // After a restart of the state (`fit`), what was computed ahead is for the old run.
    let k = match *next {
        Some(k) if state.step > 1 => k,
        _ => config.step(state.powers, decoupled),
    };
    adam_update(params, grads, &mut state.tensors, &k);
    let ahead = [state.powers[0] * betas[0], state.powers[1] * betas[1]];
    *next = Some(config.step(ahead, decoupled));
}

/// Adam with L2 weight decay added to the gradient, as
/// `torch.optim.Adam(params, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0)`
/// (`amsgrad=False`, `decoupled_weight_decay=False`).
///
/// Per element, at step `t` (from 1), with moments `m`, `v` starting at zero:
///
/// ```text
/// g = g + weight_decay * p                         if weight_decay != 0
/// m = beta1 * m + (1 - beta1) * g
/// v = beta2 * v + (1 - beta2) * g * g
/// p = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
/// ```
///
/// Defaults (as torch's): `betas = (0.9, 0.999)`, `eps = 1e-8`, `weight_decay = 0`. For weight
/// decay that bypasses the moments use [`AdamW`]. State: two scalars per parameter element.
#[derive(Clone, Debug)]
pub struct Adam<T: Real> {
    config: AdamConfig<T>,
    state: State<T>,
    /// The next step's constants, computed at the end of the previous step; dropped by the
    /// builders, which may be called between steps.
    next: Option<AdamStep<T>>,
}

impl<T: Real> Adam<T> {
    /// Adam with learning rate `lr` (torch's default is `1e-3`) and torch's other defaults.
    ///
    /// # Panics
    /// If `lr` is negative or NaN.
    #[track_caller]
    pub fn new(lr: T) -> Self {
        Self {
            config: AdamConfig::new("Adam", lr),
            state: State::default(),
            next: None,
        }
    }

    /// Sets the decay rates of the two moments (torch's `betas`, default `(0.9, 0.999)`).
    ///
    /// # Panics
    /// Unless `0 <= beta < 1` for both.
    #[must_use]
    #[track_caller]
    pub fn betas(mut self, beta1: T, beta2: T) -> Self {
        self.config.betas("Adam", beta1, beta2);
        self.state.rebase_powers(beta1, beta2);
        self.next = None;
        self
    }

    /// Sets the term added to the denominator (torch's `eps`, default `1e-8`).
    ///
    /// # Panics
    /// If `eps` is negative or NaN.
    #[must_use]
    #[track_caller]
    pub fn eps(mut self, eps: T) -> Self {
        check_non_negative(eps, "Adam", "eps");
        self.config.eps = eps;
        self.next = None;
        self
    }

    /// Sets the L2 penalty added to the gradient before the moments (torch's `weight_decay`,
    /// default 0).
    ///
    /// # Panics
    /// If `weight_decay` is negative or NaN.
    #[must_use]
    #[track_caller]
    pub fn weight_decay(mut self, weight_decay: T) -> Self {
        check_non_negative(weight_decay, "Adam", "weight_decay");
        self.config.weight_decay = weight_decay;
        self.next = None;
        self
    }
}

impl<T: Real> Optimizer<T> for Adam<T> {
    fn step(&mut self, params: &mut [&mut [T]], grads: &[&[T]]) {
        adam_step(
            &self.config,
            false,
            &mut self.state,
            &mut self.next,
            params,
            grads,
        );
    }
}

/// Adam with decoupled weight decay, as
/// `torch.optim.AdamW(params, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2)`
/// (`amsgrad=False`).
///
/// Per element, at step `t` (from 1), with moments `m`, `v` starting at zero:
///
/// ```text
/// p = p * (1 - lr * weight_decay)
/// m = beta1 * m + (1 - beta1) * g
/// v = beta2 * v + (1 - beta2) * g * g
/// p = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
/// ```
///
/// Defaults (as torch's): `betas = (0.9, 0.999)`, `eps = 1e-8` and, unlike [`Adam`],
/// `weight_decay = 1e-2`. State: two scalars per parameter element.
#[derive(Clone, Debug)]
pub struct AdamW<T: Real> {
    config: AdamConfig<T>,
    state: State<T>,
    /// The next step's constants, computed at the end of the previous step; dropped by the
    /// builders, which may be called between steps.
    next: Option<AdamStep<T>>,
}

impl<T: Real> AdamW<T> {
    /// AdamW with learning rate `lr` (torch's default is `1e-3`) and torch's other defaults,
    /// including `weight_decay = 1e-2`.
    ///
    /// # Panics
    /// If `lr` is negative or NaN.
    #[track_caller]
    pub fn new(lr: T) -> Self {
        let config = AdamConfig {
            weight_decay: T::cast(1e-2),
            ..AdamConfig::new("AdamW", lr)
        };
        Self {
            config,
            state: State::default(),
            next: None,
        }
    }

    /// Sets the decay rates of the two moments (torch's `betas`, default `(0.9, 0.999)`).
    ///
    /// # Panics
    /// Unless `0 <= beta < 1` for both.
    #[must_use]
    #[track_caller]
    pub fn betas(mut self, beta1: T, beta2: T) -> Self {
        self.config.betas("AdamW", beta1, beta2);
        self.state.rebase_powers(beta1, beta2);
        self.next = None;
        self
    }

    /// Sets the term added to the denominator (torch's `eps`, default `1e-8`).
    ///
    /// # Panics
    /// If `eps` is negative or NaN.
    #[must_use]
    #[track_caller]
    pub fn eps(mut self, eps: T) -> Self {
        check_non_negative(eps, "AdamW", "eps");
        self.config.eps = eps;
        self.next = None;
        self
    }

    /// Sets the decoupled weight decay: each step first scales parameters by
    /// `1 - lr * weight_decay` (torch's `weight_decay`, default `1e-2`).
    ///
    /// # Panics
    /// If `weight_decay` is negative or NaN.
    #[must_use]
    #[track_caller]
    pub fn weight_decay(mut self, weight_decay: T) -> Self {
        check_non_negative(weight_decay, "AdamW", "weight_decay");
        self.config.weight_decay = weight_decay;
        self.next = None;
        self
    }
}

impl<T: Real> Optimizer<T> for AdamW<T> {
    fn step(&mut self, params: &mut [&mut [T]], grads: &[&[T]]) {
        adam_step(
            &self.config,
            true,
            &mut self.state,
            &mut self.next,
            params,
            grads,
        );
    }
}

// ---------------------------------------------------------------------------------------------
// RMSprop
// ---------------------------------------------------------------------------------------------

/// RMSprop, as `torch.optim.RMSprop(params, lr, alpha=0.99, eps=1e-8, weight_decay=0,
/// momentum=0, centered=False)`.
///
/// Per element, with `s` (square average), `a` (gradient average) and `b` (momentum buffer)
/// starting at zero:
///
/// ```text
/// g = g + weight_decay * p                         if weight_decay != 0
/// s = alpha * s + (1 - alpha) * g * g
/// a = alpha * a + (1 - alpha) * g                  if centered
/// d = sqrt(s - a * a) + eps   if centered,   else  d = sqrt(s) + eps
/// b = momentum * b + g / d,   p = p - lr * b       if momentum > 0
/// p = p - lr * g / d                               otherwise
/// ```
///
/// Defaults (as torch's): `alpha = 0.99`, `eps = 1e-8`, `weight_decay = 0`, `momentum = 0`,
/// `centered = false`; torch's default learning rate is `1e-2`. State: three scalars per
/// parameter element (the unused ones stay zero).
#[derive(Clone, Debug)]
pub struct RmsProp<T: Real> {
    lr: T,
    alpha: T,
    eps: T,
    weight_decay: T,
    momentum: T,
    centered: bool,
    state: State<RmsSlot<T>>,
}

/// One element's RMSprop state: torch's `square_avg`, `grad_avg` and `momentum_buffer`.
#[derive(Clone, Copy, Debug, Default)]
struct RmsSlot<T> {
    square_avg: T,
    grad_avg: T,
    buffer: T,
}

impl<T: Real> RmsProp<T> {
    /// RMSprop with learning rate `lr` and torch's other defaults.
    ///
    /// # Panics
    /// If `lr` is negative or NaN.
    #[track_caller]
    pub fn new(lr: T) -> Self {
        check_non_negative(lr, "RmsProp", "learning rate");
        Self {
            lr,
            alpha: T::cast(0.99),
            eps: T::cast(1e-8),
            weight_decay: T::zero(),
            momentum: T::zero(),
            centered: false,
            state: State::default(),
        }
    }

    /// Sets the smoothing constant of the averages (torch's `alpha`, default `0.99`).
    ///
    /// # Panics
    /// If `alpha` is negative or NaN (torch checks only `alpha >= 0`).
    #[must_use]
    #[track_caller]
    pub fn alpha(mut self, alpha: T) -> Self {
        check_non_negative(alpha, "RmsProp", "alpha");
        self.alpha = alpha;
        self
    }

    /// Sets the term added to the denominator (torch's `eps`, default `1e-8`).
    ///
    /// # Panics
    /// If `eps` is negative or NaN.
    #[must_use]
    #[track_caller]
    pub fn eps(mut self, eps: T) -> Self {
        check_non_negative(eps, "RmsProp", "eps");
        self.eps = eps;
        self
    }

    /// Sets the L2 penalty added to the gradient (torch's `weight_decay`, default 0).
    ///
    /// # Panics
    /// If `weight_decay` is negative or NaN.
    #[must_use]
    #[track_caller]
    pub fn weight_decay(mut self, weight_decay: T) -> Self {
        check_non_negative(weight_decay, "RmsProp", "weight_decay");
        self.weight_decay = weight_decay;
        self
    }

    /// Sets the momentum factor (torch's `momentum`, default 0).
    ///
    /// # Panics
    /// If `momentum` is negative or NaN.
    #[must_use]
    #[track_caller]
    pub fn momentum(mut self, momentum: T) -> Self {
        check_non_negative(momentum, "RmsProp", "momentum");
        self.momentum = momentum;
        self
    }

    /// Normalises by an estimate of the gradient's variance instead of its second moment
    /// (torch's `centered`, default off).
    #[must_use]
    pub fn centered(mut self, centered: bool) -> Self {
        self.centered = centered;
        self
    }
}

/// The scalars one RMSprop step applies to every element.
#[derive(Clone, Copy)]
struct RmsStep<T> {
    lr: T,
    alpha: T,
    one_minus_alpha: T,
    eps: T,
    weight_decay: T,
    momentum: T,
    centered: bool,
}

/// RMSprop on one element and its state.
#[inline]
fn rmsprop_element<T: Real>(p: &mut T, g: T, s: &mut RmsSlot<T>, k: &RmsStep<T>) {
    let g = with_l2(g, *p, k.weight_decay);
    // Torch's `square_avg.mul_(alpha).addcmul_(grad, grad, value=1 - alpha)`.
    s.square_avg = s.square_avg * k.alpha + k.one_minus_alpha * g * g;
    let root = if k.centered {
        // Torch's `grad_avg.lerp_(grad, 1 - alpha)`; the variance estimate is not clamped at
        // zero, as torch does not clamp it either.
        s.grad_avg = lerp(s.grad_avg, g, k.one_minus_alpha);
        (s.square_avg - s.grad_avg * s.grad_avg).sqrt()
    } else {
        s.square_avg.sqrt()
    };
    let denom = root + k.eps;
    if k.momentum > T::zero() {
        // The buffer accumulates the normalised gradient: torch's `buf.mul_(m).addcdiv_(g, avg)`.
        s.buffer = s.buffer * k.momentum + g / denom;
        *p -= k.lr * s.buffer;
    } else {
        *p -= k.lr * (g / denom);
    }
}

impl<T: Real> Optimizer<T> for RmsProp<T> {
    fn step(&mut self, params: &mut [&mut [T]], grads: &[&[T]]) {
        self.state.fit(params, 1);
        self.state.step += 1;
        let k = RmsStep {
            lr: self.lr,
            alpha: self.alpha,
            one_minus_alpha: one_minus(self.alpha),
            eps: self.eps,
            weight_decay: self.weight_decay,
            momentum: self.momentum,
            centered: self.centered,
        };
        fast(|| {
            for_each_element(params, grads, &mut self.state.tensors, |p, g, s| {
                rmsprop_element(p, g, s, &k)
            })
        });
    }
}

/// One step of `optimizer` over every parameter tensor of `net`, given its gradients: the
/// flat view of [`Network::tensors`](crate::Network::tensors) (`TENSORS` entries, the
/// network's `TENSORS`) handed to [`Optimizer::step`]. What `train_step` does after the
/// backward pass.
#[doc(hidden)]
pub fn optimizer_step<N, O, const TENSORS: usize>(net: &mut N, grads: &N::Grads, optimizer: &mut O)
where
    N: crate::Network,
    O: Optimizer<N::Scalar>,
{
    let mut params: [&mut [N::Scalar]; TENSORS] =
        core::array::from_fn(|_| -> &mut [N::Scalar] { &mut [] });
    let mut slices: [&[N::Scalar]; TENSORS] = [&[]; TENSORS];
    net.tensors(grads, &mut params, &mut slices, &mut 0);
    optimizer.step(&mut params, &slices);
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_relative_eq;

    /// One step of `opt` on a single one-element tensor.
    fn step1<O: Optimizer<f64>>(opt: &mut O, p: &mut f64, g: f64) {
        let mut tensor = [*p];
        opt.step(&mut [&mut tensor], &[&[g]]);
        *p = tensor[0];
    }

    #[test]
    fn sgd_plain_step_is_p_minus_lr_g() {
        let mut opt = Sgd::new(0.1);
        let mut p = 1.0;
        step1(&mut opt, &mut p, 0.5);
        assert_relative_eq!(p, 1.0 - 0.1 * 0.5, epsilon = 1e-15);
        // Without momentum no state is kept.
        assert!(opt.buffers.tensors.is_empty());
    }

    #[test]
    fn sgd_weight_decay_adds_wd_p_to_the_gradient() {
        let mut opt = Sgd::new(0.1).weight_decay(0.2);
        let mut p = 2.0;
        step1(&mut opt, &mut p, 0.5);
        // g = 0.5 + 0.2 * 2 = 0.9
        assert_relative_eq!(p, 2.0 - 0.1 * 0.9, epsilon = 1e-15);
    }

    #[test]
    fn sgd_momentum_with_dampening_over_two_steps() {
        let mut opt = Sgd::new(0.1).momentum(0.9).dampening(0.1);
        let mut p = 1.0;
        // Step 1: the buffer is the gradient, undampened: b = 0.5, p = 1 - 0.05.
        step1(&mut opt, &mut p, 0.5);
        assert_relative_eq!(p, 0.95, epsilon = 1e-15);
        // Step 2: b = 0.9 * 0.5 + 0.9 * 0.2 = 0.63, p = 0.95 - 0.063.
        step1(&mut opt, &mut p, 0.2);
        assert_relative_eq!(p, 0.887, epsilon = 1e-15);
    }

    #[test]
    fn sgd_nesterov_over_two_steps() {
        let mut opt = Sgd::new(0.1).momentum(0.9).nesterov(true);
        let mut p = 1.0;
        // Step 1: b = 0.5, direction = 0.5 + 0.9 * 0.5 = 0.95, p = 1 - 0.095.
        step1(&mut opt, &mut p, 0.5);
        assert_relative_eq!(p, 0.905, epsilon = 1e-15);
        // Step 2: b = 0.45 + 0.2 = 0.65, direction = 0.2 + 0.585 = 0.785, p = 0.905 - 0.0785.
        step1(&mut opt, &mut p, 0.2);
        assert_relative_eq!(p, 0.8265, epsilon = 1e-15);
    }

    #[test]
    fn adam_first_step_moves_by_lr_times_sign() {
        // m = 0.1 g, v = 0.001 g^2: after bias correction m/(sqrt(v)) = g / |g|.
        let mut opt = Adam::new(0.1);
        let mut p = 1.0;
        step1(&mut opt, &mut p, 0.5);
        assert_relative_eq!(p, 1.0 - 0.1 * 0.5 / (0.5 + 1e-8), epsilon = 1e-15);
    }

    #[test]
    fn adam_second_step_by_hand() {
        let mut opt = Adam::new(0.1).betas(0.5, 0.75).eps(0.01);
        let mut p = 1.0;
        step1(&mut opt, &mut p, 1.0);
        // m = 0.5, v = 0.25; bc1 = 0.5, bc2 = 0.25: p = 1 - 0.2 * 0.5 / (0.5 / 0.5 + 0.01).
        let p1 = 1.0 - 0.2 * 0.5 / (1.0 + 0.01);
        assert_relative_eq!(p, p1, epsilon = 1e-15);
        step1(&mut opt, &mut p, -2.0);
        // m = 0.25 - 1 = -0.75, v = 0.1875 + 1 = 1.1875; bc1 = 0.75, bc2 = 0.4375.
        let p2 = p1 - (0.1 / 0.75) * -0.75 / (1.1875f64.sqrt() / 0.4375f64.sqrt() + 0.01);
        assert_relative_eq!(p, p2, epsilon = 1e-15);
    }

    #[test]
    fn adam_weight_decay_is_l2_and_adamw_decays_the_parameter() {
        // Adam: g = 0.5 + 0.1 * 1 = 0.6 feeds the moments; the first step still moves by lr.
        let mut adam = Adam::new(0.1).weight_decay(0.1);
        let mut p = 1.0;
        step1(&mut adam, &mut p, 0.5);
        assert_relative_eq!(p, 1.0 - 0.1 * 0.6 / (0.6 + 1e-8), epsilon = 1e-15);
        // AdamW: p = 1 * (1 - 0.1 * 0.1) first, then the plain Adam step on g = 0.5.
        let mut adamw = AdamW::new(0.1).weight_decay(0.1);
        let mut p = 1.0;
        step1(&mut adamw, &mut p, 0.5);
        assert_relative_eq!(p, 0.99 - 0.1 * 0.5 / (0.5 + 1e-8), epsilon = 1e-15);
    }

    #[test]
    fn adamw_default_weight_decay_is_one_hundredth() {
        let mut opt = AdamW::new(0.1);
        let mut p = 2.0;
        step1(&mut opt, &mut p, 0.5);
        assert_relative_eq!(
            p,
            2.0 * (1.0 - 0.1 * 0.01) - 0.1 * 0.5 / (0.5 + 1e-8),
            epsilon = 1e-15
        );
    }

    #[test]
    fn rmsprop_first_step_by_hand() {
        // s = 0.01 g^2 = 0.0025, d = 0.05 + eps.
        let mut opt = RmsProp::new(0.01);
        let mut p = 1.0;
        step1(&mut opt, &mut p, 0.5);
        assert_relative_eq!(p, 1.0 - 0.01 * 0.5 / (0.05 + 1e-8), epsilon = 1e-15);
    }

    #[test]
    fn rmsprop_centered_momentum_weight_decay_over_two_steps() {
        let mut opt = RmsProp::new(0.01)
            .alpha(0.9)
            .momentum(0.5)
            .centered(true)
            .weight_decay(0.5);
        let mut p = 1.0;
        // Step 1: g = 0.5 + 0.5 = 1; s = 0.1, a = 0.1, d = sqrt(0.1 - 0.01) + eps;
        // b = 1 / d; p = 1 - 0.01 b.
        step1(&mut opt, &mut p, 0.5);
        let d1 = 0.09f64.sqrt() + 1e-8;
        let b1 = 1.0 / d1;
        let p1 = 1.0 - 0.01 * b1;
        assert_relative_eq!(p, p1, epsilon = 1e-14);
        // Step 2: g = -1 + 0.5 p1; s = 0.09 + 0.1 g^2; a = 0.09 + 0.1 g.
        step1(&mut opt, &mut p, -1.0);
        let g = -1.0 + 0.5 * p1;
        let (s, a) = (0.09 + 0.1 * g * g, 0.09 + 0.1 * g);
        let b2 = 0.5 * b1 + g / ((s - a * a).sqrt() + 1e-8);
        assert_relative_eq!(p, p1 - 0.01 * b2, epsilon = 1e-14);
    }

    #[test]
    fn state_is_per_tensor_and_per_element() {
        // Stepping two tensors together equals stepping each with its own optimizer.
        let grads_a = [[0.5, -1.0, 2.0], [0.1, 0.3, -0.2]];
        let grads_b = [[3.0], [-4.0]];
        let mut together = (
            Adam::new(0.1),
            RmsProp::new(0.01).momentum(0.9).centered(true),
        );
        let mut alone_a = together.clone();
        let mut alone_b = together.clone();
        let (mut a, mut b) = ([1.0, 2.0, 3.0], [-1.0]);
        let (mut a_alone, mut b_alone) = (a, b);
        for (ga, gb) in grads_a.iter().zip(&grads_b) {
            together.0.step(&mut [&mut a, &mut b], &[ga, gb]);
            together.1.step(&mut [&mut a, &mut b], &[ga, gb]);
            alone_a.0.step(&mut [&mut a_alone], &[ga]);
            alone_a.1.step(&mut [&mut a_alone], &[ga]);
            alone_b.0.step(&mut [&mut b_alone], &[gb]);
            alone_b.1.step(&mut [&mut b_alone], &[gb]);
        }
        assert_eq!(a, a_alone);
        assert_eq!(b, b_alone);
        // Two moments per element, each tensor's in one allocation.
        let lens: Vec<usize> = together
            .0
            .state
            .tensors
            .iter()
            .map(|t| t.len() * t.count)
            .collect();
        assert_eq!(lens, [6, 2]);
    }

    #[test]
    fn adam_moments_are_flushed_not_kept_subnormal() {
        // One gradient, then zeros: the first moment decays as 0.9^t and leaves f32's normal
        // range after about 800 steps; the second (0.999^t) stays normal.
        let mut opt = Adam::new(1e-3f32);
        let mut reference = Adam::new(1e-3f64);
        let (mut p, mut q) = ([0.5f32, -0.25], [0.5f64, -0.25]);
        opt.step(&mut [&mut p], &[&[1e-3, -2e-3]]);
        reference.step(&mut [&mut q], &[&[1e-3, -2e-3]]);
        let mut was_tiny = false;
        for _ in 0..2000 {
            opt.step(&mut [&mut p], &[&[0.0, 0.0]]);
            reference.step(&mut [&mut q], &[&[0.0, 0.0]]);
            let state = &opt.state.tensors[0];
            let both = state.run(0).iter().chain(state.run(1));
            assert!(both.clone().all(|x| !x.is_subnormal()), "{state:?}");
            was_tiny |= reference.state.tensors[0].run(0)[0].abs() < f32::MIN_POSITIVE as f64;
        }
        assert!(was_tiny, "the test never reached the subnormal range");
        let (m, v) = (opt.state.tensors[0].run(0), opt.state.tensors[0].run(1));
        assert_eq!(m, [0.0, 0.0]);
        assert!(v.iter().all(|x| x.is_normal()));
        // The parameters still follow the unflushed trajectory (computed in f64).
        for (&p, &q) in p.iter().zip(&q) {
            assert_relative_eq!(p as f64, q, max_relative = 1e-6);
        }
    }

    /// With `eps = 0` a tiny, steady gradient makes both moments tiny (`v` subnormal in
    /// `f32`) while `m / sqrt(v)` stays near 1: torch steps by about `lr`. Flushing `v` alone
    /// would divide by zero.
    #[test]
    fn adam_without_eps_keeps_tiny_moments() {
        for decoupled in [false, true] {
            let mut p = [1.0f32];
            let mut adam = Adam::new(0.1f32).eps(0.0);
            let mut adamw = AdamW::new(0.1f32).eps(0.0).weight_decay(0.0);
            for _ in 0..3 {
                if decoupled {
                    adamw.step(&mut [&mut p], &[&[1e-20]]);
                } else {
                    adam.step(&mut [&mut p], &[&[1e-20]]);
                }
            }
            // Three steps of about lr each; subnormal `v` keeps only two or three digits.
            assert!((p[0] - 0.7).abs() < 0.01, "{p:?}");
        }
    }

    /// A builder called between steps (`opt = opt.eps(..)`) takes effect on the next step:
    /// the constants computed ahead of it are dropped, and the bias corrections use the new
    /// betas to the power of the step, as torch's do.
    #[test]
    fn adam_builders_between_steps_take_effect() {
        let mut opt = Adam::new(0.1).betas(0.5, 0.75).eps(0.01);
        let mut p = 1.0;
        step1(&mut opt, &mut p, 1.0);
        let p1 = 1.0 - 0.2 * 0.5 / (1.0 + 0.01);
        opt = opt.betas(0.6, 0.8).eps(0.1);
        step1(&mut opt, &mut p, -2.0);
        // m = 0.5 + 0.4 * (-2 - 0.5) = -0.5, v = 0.25 * 0.8 + 0.2 * 4 = 1;
        // bc1 = 1 - 0.6^2 = 0.64, bc2 = 1 - 0.8^2 = 0.36.
        let p2 = p1 - (0.1 / 0.64) * -0.5 / (1.0 / 0.36f64.sqrt() + 0.1);
        assert_relative_eq!(p, p2, epsilon = 1e-15);

        let mut opt = AdamW::new(0.1).weight_decay(0.0);
        let mut p = 1.0;
        step1(&mut opt, &mut p, 1.0);
        assert_relative_eq!(p, 1.0 - 0.1 / (1.0 + 1e-8), epsilon = 1e-15);
        opt = opt.weight_decay(0.5);
        let mut undecayed = AdamW::new(0.1).weight_decay(0.0);
        let mut q = 1.0;
        step1(&mut undecayed, &mut q, 1.0);
        let mut q_decayed = q * (1.0 - 0.1 * 0.5);
        step1(&mut undecayed, &mut q_decayed, 1.0);
        step1(&mut opt, &mut p, 1.0);
        // The second step decays the parameter by 1 - lr * 0.5 before the same Adam step.
        assert_relative_eq!(p, q_decayed, epsilon = 1e-15);
    }

    /// Every run of a tensor's state starts on a cache line (for values that divide one),
    /// in the original and in a clone, and a clone keeps the values.
    #[test]
    fn state_runs_start_on_cache_lines() {
        for len in [1, 5, 16, 17, 100] {
            let mut runs = Runs::<f32>::zeroed(len, 2);
            for (i, x) in runs.pair_mut().0.iter_mut().enumerate() {
                *x = i as f32;
            }
            runs.pair_mut().1.fill(-1.0);
            // Clones land at other offsets from a line; shift some allocations between them.
            let mut clones = Vec::new();
            for pad in 0..16 {
                clones.push((vec![0u8; 4 * pad + 1], runs.clone()));
            }
            for copy in std::iter::once(&runs).chain(clones.iter().map(|(_, c)| c)) {
                for i in 0..2 {
                    assert_eq!(copy.run(i).as_ptr() as usize % 64, 0, "len {len} run {i}");
                    assert_eq!(copy.run(i).len(), len);
                }
                assert!(copy.run(0).iter().enumerate().all(|(i, &x)| x == i as f32));
                assert!(copy.run(1).iter().all(|&x| x == -1.0));
            }
        }
        // Values of 12 bytes do not divide a line: no alignment, no slack.
        let runs = Runs::<[f32; 3]>::zeroed(7, 1);
        assert_eq!(runs.buf.len(), 7);
        assert_eq!(runs.clone().run(0), runs.run(0));
    }

    #[test]
    fn sgd_momentum_buffers_are_per_tensor() {
        let mut opt = Sgd::new(1.0).momentum(0.5);
        let (mut a, mut b) = ([0.0f32; 2], [0.0f32]);
        opt.step(&mut [&mut a, &mut b], &[&[1.0, 2.0], &[4.0]]);
        opt.step(&mut [&mut a, &mut b], &[&[0.0, 0.0], &[0.0]]);
        // Buffers after step 2: half of each element's first gradient.
        let buffers: Vec<&[f32]> = opt.buffers.tensors.iter().map(|t| t.run(0)).collect();
        assert_eq!(buffers, [&[0.5, 1.0][..], &[2.0]]);
        assert_eq!(a, [-1.5, -3.0]);
        assert_eq!(b, [-6.0]);
    }

    #[test]
    fn state_is_reallocated_only_when_the_shape_changes() {
        let mut opt = Adam::new(0.1f32);
        let mut a = [1.0f32; 4];
        opt.step(&mut [&mut a], &[&[1.0; 4]]);
        let before = opt.state.tensors[0].run(0).as_ptr();
        opt.step(&mut [&mut a], &[&[1.0; 4]]);
        assert_eq!(opt.state.tensors[0].run(0).as_ptr(), before);
        assert_eq!(opt.state.step, 2);
        let mut b = [1.0f32; 2];
        opt.step(&mut [&mut b], &[&[1.0; 2]]);
        assert_eq!(opt.state.step, 1);
        // A restart steps as a fresh optimizer does (not with the constants computed ahead
        // for the old run's third step).
        let mut fresh_b = [1.0f32; 2];
        Adam::new(0.1f32).step(&mut [&mut fresh_b], &[&[1.0; 2]]);
        assert_eq!(b, fresh_b);
    }

    #[test]
    fn defaults_are_torchs() {
        let adam = Adam::new(1e-3f64);
        assert_eq!((adam.config.beta1, adam.config.beta2), (0.9, 0.999));
        assert_eq!((adam.config.eps, adam.config.weight_decay), (1e-8, 0.0));
        let adamw = AdamW::new(1e-3f64);
        assert_eq!((adamw.config.beta1, adamw.config.beta2), (0.9, 0.999));
        assert_eq!((adamw.config.eps, adamw.config.weight_decay), (1e-8, 1e-2));
        let rms = RmsProp::new(1e-2f64);
        assert_eq!(
            (rms.alpha, rms.eps, rms.weight_decay, rms.momentum),
            (0.99, 1e-8, 0.0, 0.0)
        );
        assert!(!rms.centered);
        let sgd = Sgd::new(1e-3f64);
        assert_eq!(
            (sgd.momentum, sgd.dampening, sgd.weight_decay),
            (0.0, 0.0, 0.0)
        );
        assert!(!sgd.nesterov);
    }

    #[test]
    fn lerp_matches_both_branches() {
        assert_eq!(lerp(1.0, 3.0, 0.25), 1.5);
        assert_eq!(lerp(1.0, 3.0, 0.75), 2.5);
    }

    #[test]
    #[should_panic(expected = "call .momentum(m) before .nesterov(true)")]
    fn nesterov_without_momentum_panics() {
        let _ = Sgd::new(0.1f32).nesterov(true);
    }

    #[test]
    #[should_panic(expected = "Nesterov momentum requires zero dampening")]
    fn nesterov_with_dampening_panics() {
        let _ = Sgd::new(0.1f32).momentum(0.9).nesterov(true).dampening(0.1);
    }

    #[test]
    #[should_panic(expected = "Sgd: invalid learning rate -0.1")]
    fn negative_learning_rate_panics() {
        let _ = Sgd::new(-0.1f32);
    }

    #[test]
    #[should_panic(expected = "invalid beta parameter at index 1: 1")]
    fn beta_of_one_panics() {
        let _ = Adam::new(0.1f32).betas(0.9, 1.0);
    }

    #[test]
    #[should_panic(expected = "RmsProp: invalid weight_decay NaN")]
    fn nan_weight_decay_panics() {
        let _ = RmsProp::new(0.1f64).weight_decay(f64::NAN);
    }
}
