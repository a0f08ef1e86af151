//! Optimizers with `torch.optim`'s update rules and defaults.
//!
//! An optimizer sees a network as a list of parameter tensors, each a flat slice, given in the
//! same order at every step; so one implementation serves every generated network. Its state
//! (moments, momentum buffers) is zeroed on the first step and reused afterwards: one
//! optimizer value serves one network.
//!
//! # Where the state lives
//!
//! Each optimizer has a second type parameter, the space of its state, [`Lazy`] by default:
//!
//! - [`Lazy`] (what `Adam::new(lr)` makes): with the `std` feature, allocated on the heap on
//!   the first step (each run of values on a cache line). Without `std` there is no heap: a
//!   step that needs state panics, naming `with_state`; plain [`Sgd`] (no momentum) needs none.
//! - [`Flat`] (what `.with_state(buffer)` makes): a buffer the caller gives, an array owned by
//!   the optimizer (`[T; N]`) or a borrowed slice (`&mut [T]`), of at least
//!   `STATE_PER_PARAM * PARAMS` scalars (`Adam::<f32>::STATE_PER_PARAM` is 2, a network's
//!   `PARAMS` its number of parameters). No heap: the form for `#![no_std]` crates, and
//!   available with `std` too.
//!
//! Both feed the same update rules, element for element, so the numbers are the same bits.
//!
//! ```
//! use nn_runtime::{Adam, Optimizer, Sgd};
//!
//! let mut p = [1.0f32, -2.0];
//! // Two moments per parameter, in an array the optimizer owns: no heap.
//! let mut adam = Adam::new(0.1f32).with_state([0.0; Adam::<f32>::STATE_PER_PARAM * 2]);
//! // A momentum buffer per parameter, borrowed.
//! let mut buffer = [0.0f32; 2];
//! let mut sgd = Sgd::new(0.1f32).momentum(0.9).with_state(&mut buffer[..]);
//! for _ in 0..3 {
//!     let g = p.map(|p| 2.0 * p);
//!     adam.step(&mut [&mut p], &[&g]);
//!     sgd.step(&mut [&mut p], &[&g]);
//! }
//! assert!(p[0].abs() < 1.0 && p[1].abs() < 2.0);
//! ```
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
//! naming it; [`Optimizer::step`] allocates only on the first call (with [`Lazy`] state), and
//! panics only where its state has no room: a [`Flat`] buffer too short for the network, or
//! [`Lazy`] state without `std`.
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

    /// The learning rate the next [`step`](Self::step) uses: torch's `param_group["lr"]`.
    fn lr(&self) -> T;

    /// Sets the learning rate of the next and later steps, keeping every other
    /// hyperparameter and all state (moments, momentum buffers, the step count), as assigning
    /// torch's `param_group["lr"]` does: what the [learning-rate
    /// schedulers](crate::lr_scheduler) call between steps. A network's `train_step` asks for
    /// the rate at every step, so its fused SGD path sees the new rate at once.
    ///
    /// Unchecked, as torch's assignment is (the constructors check the first rate).
    fn set_lr(&mut self, lr: T);

    /// The learning rate when this optimizer's step is plain gradient descent, `p -= lr * g`
    /// for every element, with no state: a network's `train_step` then folds the update into
    /// its backward pass (each layer's parameters change as soon as their gradient is known,
    /// after the gradient for the layer below was taken from the old weights, and no gradient
    /// is stored) instead of calling [`step`](Self::step). `None`, the default, for every
    /// other rule.
    fn plain_sgd_rate(&self) -> Option<T> {
        None
    }

    /// The clipping a network's training step applies to the whole gradient struct after the
    /// backward pass and before [`step`](Self::step); an optimizer that answers `Some` must
    /// answer `None` to [`plain_sgd_rate`](Self::plain_sgd_rate). `None`, the default, for
    /// every optimizer but [`Clipped`](crate::clip::Clipped).
    fn gradient_clip(&self) -> Option<crate::clip::Clip<T>> {
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

/// Per-element optimizer state for every tensor of one network, in the space `P`, and the
/// step count.
///
/// Torch keeps a `step` per tensor; all tensors here step together, so one count serves all.
#[derive(Clone, Debug)]
struct State<P> {
    /// Steps taken since the state was (re)started (torch's `state["step"]`).
    step: u64,
    /// `beta1^step` and `beta2^step` for Adam's bias corrections, kept as running products in
    /// `f64` rather than two `powf` calls a step (which cost as much as a whole small step).
    powers: [f64; 2],
    /// The values, for each tensor in the order of `params` `per_element` runs of one value
    /// per parameter element (all first moments, then all second moments), so that each
    /// quantity is contiguous and the element loops load whole vectors of it.
    space: P,
}

impl<P> State<P> {
    /// No step taken yet, the values in `space`.
    fn new(space: P) -> Self {
        Self {
            step: 0,
            powers: [1.0; 2],
            space,
        }
    }

    /// Makes the state match the shape of `params`, zero-initialised as torch's `zeros_like`,
    /// restarting the step count when it had to start over (see [`Space`]).
    fn fit<T: Real>(&mut self, params: &[&mut [T]], per_element: usize)
    where
        P: Space<T>,
    {
        if self.space.fit(params, per_element) {
            self.step = 0;
            self.powers = [1.0; 2];
        }
    }

    /// After a change of betas mid-run, `beta^step` for the new betas, as torch computes its
    /// bias corrections from the betas of the step (`1 - beta1 ** step`), not from a product
    /// over the betas of past steps.
    fn rebase_powers<T: Real>(&mut self, beta1: T, beta2: T) {
        let step = self.step as f64;
        self.powers = [
            libm::pow(beta1.widen(), step),
            libm::pow(beta2.widen(), step),
        ];
    }
}

/// Where an optimizer keeps its state: [`Lazy`] (on the heap, from the first step, with
/// `std`) or [`Flat`] (a buffer the caller gives). Sealed: the element loops rely on what the
/// two promise.
pub trait Space<T>: sealed::Sealed {
    /// Makes room for `per_element` runs of values for each tensor of `params`, zeroed,
    /// unless the room is already of that shape (every step after the first). `true` when it
    /// (re)started: on the first step, or when a caller breaks the same-list contract, where
    /// starting over (as a fresh torch optimizer would) beats mixing one tensor's moments
    /// into another's.
    #[doc(hidden)]
    fn fit(&mut self, params: &[&mut [T]], per_element: usize) -> bool;

    /// The runs, tensor by tensor, in the order `fit` was given them.
    #[doc(hidden)]
    fn cursor(&mut self) -> Cursor<'_, T>;
}

mod sealed {
    /// Only the runtime's spaces are [`Space`](super::Space)s.
    pub trait Sealed {}
}

/// The state of the tensors of one step, handed out one tensor at a time by [`Space::cursor`].
#[doc(hidden)]
pub enum Cursor<'a, T> {
    /// [`Lazy`]'s, one buffer per tensor.
    #[cfg(feature = "std")]
    Heap(core::slice::IterMut<'a, Runs<T>>),
    /// [`Flat`]'s: what is left of the buffer, tensors one after the other.
    Flat(&'a mut [T]),
}

impl<'a, T> Cursor<'a, T> {
    /// The next tensor's runs of `len` values, `per_element` of them: a slice holding them
    /// all, and the distance between the starts of consecutive runs. `None` past the end.
    #[inline(always)]
    fn next(&mut self, len: usize, per_element: usize) -> Option<Region<'a, T>> {
        match self {
            #[cfg(feature = "std")]
            Cursor::Heap(tensors) => tensors.next().map(|runs| runs.region()),
            Cursor::Flat(rest) => {
                let size = len * per_element;
                if rest.len() < size {
                    return None;
                }
                let (values, tail) = core::mem::take(rest).split_at_mut(size);
                *rest = tail;
                Some(Region {
                    values,
                    stride: len,
                    len,
                })
            }
        }
    }
}

/// One tensor's state: runs of `len` values, `stride` apart, in `values`.
struct Region<'a, T> {
    values: &'a mut [T],
    stride: usize,
    len: usize,
}

impl<'a, T> Region<'a, T> {
    /// The first run, for optimizers with one value per element.
    #[inline(always)]
    fn first(self) -> &'a mut [T] {
        &mut self.values[..self.len]
    }

    /// The first two runs, for optimizers with two values per element.
    #[inline(always)]
    fn pair(self) -> (&'a mut [T], &'a mut [T]) {
        let (first, second) = self.values.split_at_mut(self.stride);
        (&mut first[..self.len], &mut second[..self.len])
    }

    /// The first three runs, for optimizers with three values per element.
    #[inline(always)]
    fn triple(self) -> (&'a mut [T], &'a mut [T], &'a mut [T]) {
        let (first, rest) = self.values.split_at_mut(self.stride);
        let (second, third) = rest.split_at_mut(self.stride);
        let len = self.len;
        (&mut first[..len], &mut second[..len], &mut third[..len])
    }
}

/// An optimizer's state kept on the heap, allocated on the first step (the default, what
/// `Adam::new(lr)` and the other `new`s make). With the `std` feature only: without it, this
/// holds nothing, and a step that needs state panics, naming `with_state` (plain [`Sgd`],
/// without momentum, needs none).
#[cfg(feature = "std")]
#[derive(Clone, Debug)]
pub struct Lazy<T>(Vec<Runs<T>>);

/// An optimizer's state kept on the heap (with the `std` feature): this build has none, so
/// an optimizer that keeps state needs [`Flat`] space, from its `with_state`.
#[cfg(not(feature = "std"))]
#[derive(Clone, Debug)]
pub struct Lazy<T>(core::marker::PhantomData<T>);

impl<T> Default for Lazy<T> {
    fn default() -> Self {
        Lazy(Default::default())
    }
}

impl<T> sealed::Sealed for Lazy<T> {}

#[cfg(feature = "std")]
impl<T: Copy + Default> Space<T> for Lazy<T> {
    fn fit(&mut self, params: &[&mut [T]], per_element: usize) -> bool {
        let fits = self.0.len() == params.len()
            && self
                .0
                .iter()
                .zip(params)
                .all(|(s, p)| s.len() == p.len() && s.count == per_element);
        if !fits {
            self.0.clear();
            self.0
                .extend(params.iter().map(|p| Runs::zeroed(p.len(), per_element)));
        }
        !fits
    }

    fn cursor(&mut self) -> Cursor<'_, T> {
        Cursor::Heap(self.0.iter_mut())
    }
}

#[cfg(not(feature = "std"))]
impl<T: Copy + Default> Space<T> for Lazy<T> {
    #[track_caller]
    fn fit(&mut self, params: &[&mut [T]], per_element: usize) -> bool {
        let needed = per_element * params.iter().map(|p| p.len()).sum::<usize>();
        assert!(
            needed == 0,
            "optimizer state: without the `std` feature there is no heap for the {needed} \
             values of this optimizer's state; give it space with `.with_state(buffer)`"
        );
        false
    }

    fn cursor(&mut self) -> Cursor<'_, T> {
        Cursor::Flat(&mut [])
    }
}

/// An optimizer's state in a buffer the caller gives (what `.with_state(buffer)` makes): an
/// array the optimizer owns (`[T; N]`), or a borrowed slice or array (`&mut [T]`,
/// `&mut [T; N]`), of at least `STATE_PER_PARAM * PARAMS` scalars. No heap: how an optimizer
/// keeps state without `std`.
///
/// The buffer's contents on entry do not matter: the first step zeroes what it uses. Tensors
/// lie one after the other, each tensor's runs (first moments, then second...) one after
/// the other.
#[derive(Clone, Debug)]
pub struct Flat<B> {
    buf: B,
    /// The shape the values were zeroed for: tensors, parameters, values per parameter.
    shape: Option<(usize, usize, usize)>,
}

impl<B> Flat<B> {
    /// State in `buf`, zeroed on the first step.
    pub fn new(buf: B) -> Self {
        Self { buf, shape: None }
    }

    /// The buffer back.
    pub fn into_inner(self) -> B {
        self.buf
    }
}

impl<B> sealed::Sealed for Flat<B> {}

impl<T: Copy + Default, B: AsMut<[T]>> Space<T> for Flat<B> {
    /// Checks only the number of tensors and of parameters, without allocating a list of
    /// lengths: a caller that keeps both but moves parameters between tensors breaks the
    /// same-list contract unnoticed.
    #[track_caller]
    fn fit(&mut self, params: &[&mut [T]], per_element: usize) -> bool {
        let total = params.iter().map(|p| p.len()).sum::<usize>();
        let shape = (params.len(), total, per_element);
        if self.shape == Some(shape) {
            return false;
        }
        let buf = self.buf.as_mut();
        let needed = total * per_element;
        assert!(
            buf.len() >= needed,
            "optimizer state: the buffer holds {} values, this network needs {needed} \
             ({per_element} per parameter, {total} parameters)",
            buf.len()
        );
        buf[..needed].fill(T::default());
        self.shape = Some(shape);
        true
    }

    fn cursor(&mut self) -> Cursor<'_, T> {
        Cursor::Flat(self.buf.as_mut())
    }
}

/// The state of one tensor: `count` runs of `len` values each, zeroed, every run starting on
/// a cache line where the size of `S` allows it.
///
/// The element loops load and store whole vectors of each run; a vector that straddles two
/// cache lines costs about twice as much, and whether a `Vec` from the allocator starts on a
/// 32-byte boundary differs from one program (and one run) to the next. So the buffer is a
/// line longer than needed and the runs start at its first line boundary.
#[cfg(feature = "std")]
#[doc(hidden)]
#[derive(Debug)]
pub struct Runs<S> {
    buf: Vec<S>,
    /// Index in `buf` of the first run's first value.
    start: usize,
    /// Distance between the starts of consecutive runs: `len`, rounded up to whole lines.
    stride: usize,
    len: usize,
    count: usize,
}

#[cfg(feature = "std")]
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

#[cfg(feature = "std")]
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

    /// Every run, as the element loops take them.
    #[inline(always)]
    fn region(&mut self) -> Region<'_, S> {
        let end = self.start + self.stride * self.count;
        Region {
            values: &mut self.buf[self.start..end],
            stride: self.stride,
            len: self.len,
        }
    }

    /// The first two runs.
    #[cfg(test)]
    fn pair_mut(&mut self) -> (&mut [S], &mut [S]) {
        self.region().pair()
    }
}

#[cfg(feature = "std")]
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

/// Calls `update(param, grad, state, k)` on every element of every tensor, `k` the step's
/// constants, `state` the element's one value in `space`, in a loop compiled for AVX2 and
/// FMA where the processor has them (see [`simd`]).
///
/// Mismatched lengths are a broken contract; zipping stops at the shorter list rather than
/// panicking, since a training loop must never panic inside `step`.
#[inline(always)]
fn for_each_element<T: Real, K>(
    params: &mut [&mut [T]],
    grads: &[&[T]],
    space: &mut impl Space<T>,
    k: &K,
    update: impl Fn(&mut T, T, &mut T, &K),
) {
    let mut cursor = space.cursor();
    simd(|| {
        for (p, g) in params.iter_mut().zip(grads) {
            let Some(s) = cursor.next(p.len(), 1) else {
                break;
            };
            for ((p, &g), s) in p.iter_mut().zip(g.iter()).zip(s.first()) {
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
/// network's `TENSORS`) handed to [`Optimizer::step`], after the gradients are clipped in
/// place where the optimizer asks for it ([`Optimizer::gradient_clip`]). What `train_step`
/// does after the backward pass.
#[doc(hidden)]
pub fn optimizer_step<N, O, const TENSORS: usize>(
    net: &mut N,
    grads: &mut N::Grads,
    optimizer: &mut O,
) where
    N: crate::net::Network,
    N::Grads: crate::tensors::FlatTensors<Scalar = N::Scalar>,
    O: Optimizer<N::Scalar>,
{
    if let Some(clip) = optimizer.gradient_clip() {
        clip.apply(grads);
    }
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

    /// Steps `heap` and `flat` (the same optimizer over heap and buffer state) on two tensors
    /// for a few steps, and asserts the parameters are the same bits after each.
    fn same_bits<A: Optimizer<f32>, B: Optimizer<f32>>(mut heap: A, mut flat: B) {
        let (mut a, mut b) = ([0.5f32, -1.0, 2.0, 0.25, -0.75], [0.1f32, -0.2, 0.3]);
        let (mut a2, mut b2) = (a, b);
        for step in 0..20 {
            let ga = a.map(|x| x * 0.9 - 0.1 * step as f32);
            let gb = b.map(|x| 1.0 - x * x);
            heap.step(&mut [&mut a, &mut b], &[&ga, &gb]);
            flat.step(&mut [&mut a2, &mut b2], &[&ga, &gb]);
            assert_eq!(a.map(f32::to_bits), a2.map(f32::to_bits), "step {step}");
            assert_eq!(b.map(f32::to_bits), b2.map(f32::to_bits), "step {step}");
        }
    }

    /// Every update rule gives the same bits over [`Lazy`] and [`Flat`] state, the buffer
    /// owned or borrowed, its contents on entry ignored.
    #[test]
    fn flat_state_steps_as_heap_state() {
        const PARAMS: usize = 8;
        let adam = || Adam::new(0.05f32).betas(0.8, 0.99).weight_decay(0.01);
        same_bits(adam(), adam().with_state([7.0f32; 2 * PARAMS]));
        let adamw = || AdamW::new(0.05f32).betas(0.3, 0.9);
        let mut buffer = [f32::NAN; 2 * PARAMS + 3];
        same_bits(adamw(), adamw().with_state(&mut buffer[..]));
        let rms = || RmsProp::new(0.01f32).momentum(0.5).centered(true);
        same_bits(rms(), rms().with_state([0.0f32; 3 * PARAMS]));
        let sgd = || {
            Sgd::new(0.1f32)
                .momentum(0.9)
                .dampening(0.1)
                .weight_decay(0.1)
        };
        same_bits(sgd(), sgd().with_state([0.0f32; PARAMS]));
        let nesterov = || Sgd::new(0.1f32).momentum(0.9).nesterov(true);
        same_bits(nesterov(), nesterov().with_state(&mut [1.0f32; PARAMS]));
        assert_eq!(
            [
                Adam::<f32>::STATE_PER_PARAM,
                AdamW::<f32>::STATE_PER_PARAM,
                RmsProp::<f32>::STATE_PER_PARAM,
                Sgd::<f32>::STATE_PER_PARAM
            ],
            [2, 2, 3, 1]
        );
    }

    /// A new shape restarts buffer state as it restarts heap state: the same step as a fresh
    /// optimizer.
    #[test]
    fn flat_state_restarts_on_a_new_shape() {
        let mut opt = Adam::new(0.1f32).with_state([0.0f32; 8]);
        let mut a = [1.0f32; 4];
        opt.step(&mut [&mut a], &[&[1.0; 4]]);
        opt.step(&mut [&mut a], &[&[1.0; 4]]);
        let mut b = [1.0f32; 2];
        opt.step(&mut [&mut b], &[&[1.0; 2]]);
        let mut fresh = [1.0f32; 2];
        Adam::new(0.1f32).step(&mut [&mut fresh], &[&[1.0; 2]]);
        assert_eq!(b, fresh);
    }

    #[test]
    #[should_panic(expected = "the buffer holds 7 values, this network needs 8")]
    fn flat_state_too_short_panics() {
        let mut opt = Adam::new(0.1f32).with_state([0.0f32; 7]);
        opt.step(&mut [&mut [1.0f32; 4]], &[&[1.0; 4]]);
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
