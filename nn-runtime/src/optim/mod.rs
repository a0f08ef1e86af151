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

mod adam;
mod rmsprop;
mod sgd;

pub use adam::{Adam, AdamW};
pub use rmsprop::RmsProp;
pub use sgd::Sgd;

use crate::real::Real;
use crate::simd::simd;

/// An update rule applied to every parameter tensor of one network.
pub trait Optimizer<T: Real> {
    /// Applies one optimisation step. `params[i]` and `grads[i]` are the same tensor, flattened
    /// (same length); the list has the same lengths in the same order at every call.
    ///
    /// An empty `grads[i]` means "leave tensor `i` alone this step": its parameters stay
    /// bit-identical and its state (moments, momentum buffer) is kept as it was, whatever the
    /// weight decay or momentum; this is how a network's frozen layers are skipped, and the
    /// set of skipped tensors may change from one step to the next. (Step counts are shared
    /// by all tensors, so a tensor that was skipped resumes with the step count of the others;
    /// torch counts its steps per tensor.) Every optimizer here honours this, since their
    /// element loops run over parameter and gradient together.
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

// Shared machinery: lazily allocated per-element state and the loop over every element.

/// Defines builder methods `fn field(mut self, field: Type) -> Self`, each of which runs its
/// check (a block that panics, naming the optimizer, on an argument torch would refuse) and
/// then sets the field of the same name: the shape every optimizer's builders share.
/// `#[track_caller]`, so that a panic points at the caller's builder chain.
macro_rules! setters {
    ($(
        $(#[$doc:meta])*
        fn $field:ident($this:ident, $ty:ty) $check:block
    )*) => {
        $(
            $(#[$doc])*
            #[must_use]
            #[track_caller]
            pub fn $field(mut $this, $field: $ty) -> Self {
                $check
                $this.$field = $field;
                $this
            }
        )*
    };
}
use setters;

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

/// Calls `update(param, grad, state, k)` on every element of every tensor, `k` the step's
/// constants, in a loop compiled
/// for AVX2 and FMA where the processor has them (see [`simd`]).
///
/// Mismatched lengths are a broken contract; zipping stops at the shorter list rather than
/// panicking, since a training loop must never panic inside `step`.
#[inline(always)]
fn for_each_element<T: Real, S, K>(
    params: &mut [&mut [T]],
    grads: &[&[T]],
    state: &mut [Runs<S>],
    k: &K,
    update: impl Fn(&mut T, T, &mut S, &K),
) {
    simd(|| {
        for ((p, g), s) in params.iter_mut().zip(grads).zip(state.iter_mut()) {
            for ((p, &g), s) in p.iter_mut().zip(g.iter()).zip(s.first_mut()) {
                update(p, g, s, k);
            }
        }
    });
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

/// One step of `optimizer` over every parameter tensor of `net`, given its gradients: the
/// flat view of [`Network::tensors`](crate::Network::tensors) (`TENSORS` entries, the
/// network's `TENSORS`) handed to [`Optimizer::step`]. What `train_step` does after the
/// backward pass.
#[doc(hidden)]
pub fn optimizer_step<N, O, const TENSORS: usize>(net: &mut N, grads: &N::Grads, optimizer: &mut O)
where
    N: crate::net::Network,
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

    /// One step of `opt` on a single one-element tensor.
    pub(super) fn step1<O: Optimizer<f64>>(opt: &mut O, p: &mut f64, g: f64) {
        let mut tensor = [*p];
        opt.step(&mut [&mut tensor], &[&[g]]);
        *p = tensor[0];
    }

    /// Steps `opt` on a single one-element tensor from `p`, one gradient at a time, and checks
    /// the parameter after each step against the `(gradient, expected)` pairs, to `epsilon`;
    /// returns the optimizer and the parameter, to step on or look into.
    pub(super) fn trajectory<O: Optimizer<f64>>(
        mut opt: O,
        mut p: f64,
        steps: &[(f64, f64)],
        epsilon: f64,
    ) -> (O, f64) {
        for (i, &(g, want)) in steps.iter().enumerate() {
            step1(&mut opt, &mut p, g);
            let close = approx::relative_eq!(p, want, epsilon = epsilon);
            assert!(close, "step {}: {p} against {want}", i + 1);
        }
        (opt, p)
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

    /// The first step of each optimizer with state, by hand.
    #[test]
    fn first_steps_by_hand() {
        // Adam: m = 0.1 g, v = 0.001 g^2: after bias correction m / sqrt(v) = g / |g|.
        let adam = 1.0 - 0.1 * 0.5 / (0.5 + 1e-8);
        trajectory(Adam::new(0.1), 1.0, &[(0.5, adam)], 1e-15);
        // RMSprop: s = 0.01 g^2 = 0.0025, d = 0.05 + eps.
        let rmsprop = 1.0 - 0.01 * 0.5 / (0.05 + 1e-8);
        trajectory(RmsProp::new(0.01), 1.0, &[(0.5, rmsprop)], 1e-15);
    }

    /// A tensor with an empty gradient is left bit-identical by every optimizer, with weight
    /// decay and momentum, while the others move.
    #[test]
    fn empty_gradient_skips_a_tensor() {
        fn check<O: Optimizer<f64> + Clone>(opt: O) {
            let (mut a, mut b) = ([1.0, -2.0], [0.5]);
            let mut opt = opt;
            opt.step(&mut [&mut a, &mut b], &[&[0.3, 0.1], &[0.2]]);
            let (a1, b1) = (a, b);
            for _ in 0..3 {
                opt.step(&mut [&mut a, &mut b], &[&[], &[0.2]]);
            }
            assert_eq!(a.map(f64::to_bits), a1.map(f64::to_bits));
            assert_ne!(b, b1);
        }
        check(Sgd::new(0.1).momentum(0.9).weight_decay(0.1));
        check(Sgd::new(0.1).weight_decay(0.1));
        check(Adam::new(0.1).weight_decay(0.1));
        check(AdamW::new(0.1));
        check(
            RmsProp::new(0.1)
                .momentum(0.5)
                .centered(true)
                .weight_decay(0.1),
        );
    }

    #[test]
    fn lerp_matches_both_branches() {
        assert_eq!(lerp(1.0, 3.0, 0.25), 1.5);
        assert_eq!(lerp(1.0, 3.0, 0.75), 2.5);
    }
}
