//! The causal, streaming form of torch's `nn.Conv1d`: one output per time step from the last
//! few inputs, kept in a ring buffer between calls.
//!
//! A sequence network's input has no length axis: each call is one time step. A
//! `Conv1d(IN, OUT, K, dilation = DIL)` layer in such a network sees, at step `t`, the inputs
//! `x[t - (K - 1) DIL], ..., x[t - DIL], x[t]` (its `K` taps, `DIL` steps apart) and returns
//!
//! ```text
//! y[t] = b + sum over k < K of W[:, :, k] x[t - (K - 1 - k) DIL]
//! ```
//!
//! which is torch's `nn.Conv1d(IN, OUT, K, dilation=DIL)` applied to the whole sequence
//! left-padded by `(K - 1) DIL` steps: with zeros for a zero initial state, and with the
//! inputs the state buffered otherwise (a previous window's last inputs). Nothing of the future
//! is read, so the layer can run one sample at a time, as a recurrent layer does.
//!
//! The last `SPAN = (K - 1) DIL + 1` inputs are the layer's state ([`ConvState`]), a ring
//! buffer of `SPAN` slots: each step writes its input over the oldest and advances the ring's
//! position, so no step moves data. As the recurrent blocks, [`CausalConv1d`] has
//! [`step`](CausalConv1d::step), which keeps the step's taps in a [`ConvCache`],
//! [`step_only`](CausalConv1d::step_only) for inference, and
//! [`step_backward`](CausalConv1d::step_backward), run on the caches in reverse with a
//! `carry` (another [`ConvState`]) that takes the gradient with respect to the buffer from
//! each step to the one before.
//!
//! The weight is stored as an `OUT x IN K` matrix whose column `i K + k` is torch's
//! `weight[:, i, k]`: one product with the `K` taps stacked (`IN K` rows, input channel major)
//! is the whole step, through the layer floor's product kernels as `Linear`'s, and the
//! column-major data read as `[OUT, IN K]` and put in row-major order is torch's `[OUT, IN, K]`
//! tensor, so weight files load both ways. `IK = IN K` and `SPAN` are passed beside `IN`, `K`
//! and `DIL` because types cannot compute them, and every method asserts at compile time that
//! they agree.
//!
//! Everything here is loops over the static sizes and index arithmetic on the ring's
//! position: no allocation and no branch on data.
//!
//! A window of backpropagation through time, as generated code runs it:
//!
//! ```
//! use nn_runtime::__private::ConvCache;
//! use nn_runtime::init::Init;
//! use nn_runtime::nalgebra::SMatrix;
//! use nn_runtime::{CausalConv1d, ConvState};
//!
//! // nn.Conv1d(2, 4, 3, dilation=2): IK = 2 * 3, SPAN = (3 - 1) * 2 + 1; two streams.
//! type Block = CausalConv1d<f32, 2, 4, 3, 6, 2, 5, true>;
//! let mut conv = Block::zeros();
//! conv.reset(&mut Init::new(0));
//! let xs = [SMatrix::<f32, 2, 2>::from_element(0.5); 7];
//! let mut state = ConvState::zeros();
//! let mut caches = [(); 7].map(|_| ConvCache::zeros());
//! let mut dys = [SMatrix::<f32, 4, 2>::zeros(); 7];
//! for ((x, cache), dy) in xs.iter().zip(&mut caches).zip(&mut dys) {
//!     let y = conv.step(x, &mut state, cache);
//!     *dy = y * 2.0; // d/dy of |y|^2, the loss of this example
//! }
//! let mut grads = Block::zeros();
//! let mut carry = ConvState::zeros();
//! for (cache, dy) in caches.iter().zip(&dys).rev() {
//!     let _dx = conv.step_backward(cache, dy, &mut carry, &mut grads);
//! }
//! // `grads` holds the window's parameter gradients, `carry` those of the initial buffer.
//! assert!(grads.weight.amax() > 0.0);
//! ```
//!
//! Sizes that disagree do not compile:
//!
//! ```compile_fail,E0080
//! // SPAN is (K - 1) DIL + 1: 4 is not (3 - 1) * 2 + 1.
//! let _ = nn_runtime::CausalConv1d::<f32, 2, 4, 3, 6, 2, 4, true>::zeros();
//! ```

use super::heap::Zeroable;
use super::init::Init;
use super::ops::{product_add, row_sums_add, start, transposed_product, weight_grad_add};
use super::tensors::{Tensors, Visitor, VisitorMut};
use crate::real::Real;
use nalgebra::{SMatrix, SVector};

/// The parameters of torch's `nn.Conv1d(IN, OUT, K, dilation=DIL, bias=BIAS)`, run causally
/// one time step at a time (`IK = IN K`, `SPAN = (K - 1) DIL + 1`).
///
/// `y[t] = b + sum_k W[:, :, k] x[t - (K - 1 - k) DIL]`: torch's convolution of the sequence
/// left-padded by `SPAN - 1` steps (see the [module](self)). A generated network holds one per
/// causal `Conv1d` layer, its gradient struct another. Without `BIAS` the bias stays zero and
/// is neither named, initialised nor paired with a gradient.
#[derive(Clone, Debug, PartialEq)]
pub struct CausalConv1d<
    T: Real,
    const IN: usize,
    const OUT: usize,
    const K: usize,
    const IK: usize,
    const DIL: usize,
    const SPAN: usize,
    const BIAS: bool,
> {
    /// The weight, `OUT x IN K`: column `i K + k` is torch's `weight[:, i, k]`, the weights of
    /// input channel `i` at tap `k` (tap `K - 1` the current input, tap `k` the input
    /// `(K - 1 - k) DIL` steps back). Read as `[OUT, IN K]` and made row-major (as
    /// [`Tensors`] and the weight files do), the data is torch's `[OUT, IN, K]` tensor.
    pub weight: SMatrix<T, OUT, IK>,
    /// The bias, one entry per output channel, as `nn.Conv1d.bias` (zero without `BIAS`).
    pub bias: SVector<T, OUT>,
}

/// The state of a causal convolution between two time steps: its last `SPAN` inputs, in a
/// ring buffer of `SPAN` slots, each an `IN x B` matrix with one column per stream.
///
/// The next step writes its input into slot `next` and moves `next` on by one (modulo
/// `SPAN`); so slot `(next + s) % SPAN` holds the input from `SPAN - s` steps back: read from
/// `next` around, the buffer is the last `SPAN` inputs, oldest first. The oldest, in slot
/// `next` itself, is overwritten before anything reads it: a step reads `SPAN - 1` inputs
/// back at most. The others are torch's left padding of the next window, oldest first
/// (`(next + 1 + p) % SPAN` holds its entry `p`, of `SPAN - 1`).
///
/// Generated code keeps one per causal convolution in the network's state (zero, the zero
/// padding, at first); the backward pass uses another as its `carry`, holding the gradient
/// with respect to each slot's value, in the same layout (see
/// [`step_backward`](CausalConv1d::step_backward)).
#[derive(Clone, Debug, PartialEq)]
pub struct ConvState<T: Real, const IN: usize, const SPAN: usize, const B: usize> {
    /// The ring buffer: the last `SPAN` inputs, the oldest in slot `next`.
    pub buffer: [SMatrix<T, IN, B>; SPAN],
    /// The ring's position: the slot the next step writes its input into, which holds the
    /// oldest input. Any value is read modulo `SPAN`.
    pub next: usize,
}

/// What [`CausalConv1d::step`] keeps for [`CausalConv1d::step_backward`]: the `K` inputs the
/// step multiplied by the weight, and where in the ring it wrote its own input.
#[derive(Clone, Debug, PartialEq)]
pub struct ConvCache<T: Real, const IN: usize, const K: usize, const B: usize> {
    /// Tap `k`'s input, `x[t - (K - 1 - k) DIL]` (tap `K - 1` the step's own input).
    pub taps: [SMatrix<T, IN, B>; K],
    /// The ring slot the step wrote its input into: the backward step adds the taps'
    /// gradients to the slots they were read from, relative to it.
    pub slot: usize,
}

impl<T: Real, const IN: usize, const SPAN: usize, const B: usize> ConvState<T, IN, SPAN, B> {
    /// The zero state, every slot zero and the ring at slot 0: torch's zero padding, and a
    /// backward pass's carry before the window's last step.
    pub fn zeros() -> Self {
        Self {
            buffer: [SMatrix::zeros(); SPAN],
            next: 0,
        }
    }
}

impl<T: Real, const IN: usize, const SPAN: usize, const B: usize> Default
    for ConvState<T, IN, SPAN, B>
{
    /// All zero, as [`zeros`](ConvState::zeros).
    fn default() -> Self {
        Self::zeros()
    }
}

impl<T: Real, const IN: usize, const K: usize, const B: usize> ConvCache<T, IN, K, B> {
    /// An all-zero cache, to be overwritten by the first step that uses it: generated code
    /// keeps one per time step of a training window.
    pub fn zeros() -> Self {
        Self {
            taps: [SMatrix::zeros(); K],
            slot: 0,
        }
    }
}

impl<T: Real, const IN: usize, const K: usize, const B: usize> Default for ConvCache<T, IN, K, B> {
    /// All zero, as [`zeros`](ConvCache::zeros).
    fn default() -> Self {
        Self::zeros()
    }
}

// SAFETY: an array of nalgebra matrices of `f32` and a `usize`: all-zero bytes are 0.0 in
// every float and 0 in the integer (a valid ring position), and any padding between them may
// hold any bytes.
unsafe impl<const IN: usize, const SPAN: usize, const B: usize> Zeroable
    for ConvState<f32, IN, SPAN, B>
{
}
// SAFETY: as above, of `f64`.
unsafe impl<const IN: usize, const SPAN: usize, const B: usize> Zeroable
    for ConvState<f64, IN, SPAN, B>
{
}
// SAFETY: as for `ConvState`: matrices of `f32` and a `usize` slot, 0 a valid one.
unsafe impl<const IN: usize, const K: usize, const B: usize> Zeroable for ConvCache<f32, IN, K, B> {}
// SAFETY: as above, of `f64`.
unsafe impl<const IN: usize, const K: usize, const B: usize> Zeroable for ConvCache<f64, IN, K, B> {}

// SAFETY: a `CausalConv1d` of `f32` or `f64` is two nalgebra arrays of that float, of one
// alignment, so there is no padding: all-zero bytes are 0.0 in every float.
unsafe impl<
    const IN: usize,
    const OUT: usize,
    const K: usize,
    const IK: usize,
    const DIL: usize,
    const SPAN: usize,
    const BIAS: bool,
> Zeroable for CausalConv1d<f32, IN, OUT, K, IK, DIL, SPAN, BIAS>
{
}
// SAFETY: as above, of `f64`.
unsafe impl<
    const IN: usize,
    const OUT: usize,
    const K: usize,
    const IK: usize,
    const DIL: usize,
    const SPAN: usize,
    const BIAS: bool,
> Zeroable for CausalConv1d<f64, IN, OUT, K, IK, DIL, SPAN, BIAS>
{
}

impl<
    T: Real,
    const IN: usize,
    const OUT: usize,
    const K: usize,
    const IK: usize,
    const DIL: usize,
    const SPAN: usize,
    const BIAS: bool,
> Default for CausalConv1d<T, IN, OUT, K, IK, DIL, SPAN, BIAS>
{
    /// All zero, as [`zeros`](CausalConv1d::zeros): what a gradient struct starts from.
    fn default() -> Self {
        Self::zeros()
    }
}

impl<
    T: Real,
    const IN: usize,
    const OUT: usize,
    const K: usize,
    const IK: usize,
    const DIL: usize,
    const SPAN: usize,
    const BIAS: bool,
> CausalConv1d<T, IN, OUT, K, IK, DIL, SPAN, BIAS>
{
    /// The sizes passed beside each other agree (evaluated where a method is used, so a wrong
    /// type fails to compile, with this message).
    const SIZES: () = {
        assert!(K >= 1, "CausalConv1d: K (kernel_size) must be at least 1");
        assert!(DIL >= 1, "CausalConv1d: DIL (dilation) must be at least 1");
        assert!(IK == IN * K, "CausalConv1d: IK must be IN * K");
        assert!(
            SPAN == (K - 1) * DIL + 1,
            "CausalConv1d: SPAN must be (K - 1) * DIL + 1 (the inputs a step sees)"
        );
    };

    /// Number of scalars in the block, for the generated parameter counts: the weight's
    /// `OUT IN K`, and with `BIAS` the bias's `OUT`.
    pub const PARAMS: usize = OUT * IK + if BIAS { OUT } else { 0 };

    /// Number of tensors [`pair`](Self::pair) and [`Tensors`] give: the weight, and with
    /// `BIAS` the bias.
    pub const TENSORS: usize = if BIAS { 2 } else { 1 };

    /// A block whose parameters are all zero: the gradient struct's starting value, and the
    /// network's before [`reset`](Self::reset).
    pub fn zeros() -> Self {
        let () = Self::SIZES;
        Self {
            weight: SMatrix::zeros(),
            bias: SVector::zeros(),
        }
    }

    /// Torch's default initialisation, in place: `kaiming_uniform_(a = sqrt(5))` on the
    /// weight and the matching bias bound, both uniform in `+-1/sqrt(IN K)` (the fan-in),
    /// drawn from `init` in torch's order: the weight as its `[OUT, IN, K]` tensor row-major,
    /// then the bias. So one seed gives one network whatever layers surround it. Without
    /// `BIAS` the bias is neither drawn nor touched.
    pub fn reset(&mut self, init: &mut Init) {
        let () = Self::SIZES;
        let bound = Init::linear_bound(IK);
        for o in 0..OUT {
            for c in 0..IK {
                // Row-major [o][i][k] is column i K + k of row o, in order.
                self.weight[(o, c)] = init.uniform(bound);
            }
        }
        if BIAS {
            for o in 0..OUT {
                self.bias[o] = init.uniform(bound);
            }
        }
    }

    /// Puts the weight (and with `BIAS` the bias) into `params[*at..]`, each beside its
    /// gradient (from `gradients`) in `grads[*at..]`, advancing `at` by
    /// [`TENSORS`](Self::TENSORS): the flat view an optimizer works on, in the order of
    /// [`Tensors`] (see `Linear::pair`). Without `BIAS` the bias is left out, so no optimizer
    /// moves it off zero.
    #[doc(hidden)]
    #[inline]
    pub fn pair<'a>(
        &'a mut self,
        gradients: &'a Self,
        params: &mut [&'a mut [T]],
        grads: &mut [&'a [T]],
        at: &mut usize,
    ) {
        params[*at] = self.weight.as_mut_slice();
        grads[*at] = gradients.weight.as_slice();
        *at += 1;
        if BIAS {
            params[*at] = self.bias.as_mut_slice();
            grads[*at] = gradients.bias.as_slice();
            *at += 1;
        }
    }

    /// The ring slot tap `k` reads when the step's own input is in slot `at`: `(K - 1 - k) DIL`
    /// slots back, around the ring.
    #[inline(always)]
    fn slot(at: usize, k: usize) -> usize {
        (at + SPAN - (K - 1 - k) * DIL) % SPAN
    }

    /// The taps stacked into one `IN K x B` matrix, row `i K + k` channel `i` of tap `k`: the
    /// weight's column order, so that the step is one product.
    #[inline(always)]
    fn stack<const B: usize>(taps: [&SMatrix<T, IN, B>; K]) -> SMatrix<T, IK, B> {
        let mut u = SMatrix::<T, IK, B>::zeros();
        for (k, tap) in taps.iter().enumerate() {
            for (column, source) in u.data.0.iter_mut().zip(&tap.data.0) {
                for (i, &value) in source.iter().enumerate() {
                    column[i * K + k] = value;
                }
            }
        }
        u
    }

    /// `b + W u`, the step's output from its stacked taps.
    #[inline(always)]
    fn apply<const B: usize>(&self, u: &SMatrix<T, IK, B>) -> SMatrix<T, OUT, B> {
        let mut y = start(&self.bias, BIAS);
        product_add(&self.weight, u, &mut y);
        y
    }

    /// Writes `x` into the ring and moves it on: returns the slot `x` went into.
    #[inline(always)]
    fn push<const B: usize>(x: &SMatrix<T, IN, B>, state: &mut ConvState<T, IN, SPAN, B>) -> usize {
        let at = state.next % SPAN;
        state.buffer[at] = *x;
        state.next = (at + 1) % SPAN;
        at
    }

    /// One time step of a batch of `B` streams (a column each): writes `x` into `state`'s
    /// ring (over the oldest input), writes into `cache` the `K` taps and the slot, what
    /// [`step_backward`](Self::step_backward) needs, and returns
    /// `b + sum_k W[:, :, k] x[t - (K - 1 - k) DIL]`.
    ///
    /// Allocates nothing; its arithmetic is exactly [`step_only`](Self::step_only)'s.
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub fn step<const B: usize>(
        &self,
        x: &SMatrix<T, IN, B>,
        state: &mut ConvState<T, IN, SPAN, B>,
        cache: &mut ConvCache<T, IN, K, B>,
    ) -> SMatrix<T, OUT, B> {
        let () = Self::SIZES;
        let at = Self::push(x, state);
        cache.slot = at;
        for (k, tap) in cache.taps.iter_mut().enumerate() {
            *tap = state.buffer[Self::slot(at, k)];
        }
        self.apply(&Self::stack(cache.taps.each_ref()))
    }

    /// One time step as [`step`](Self::step), keeping nothing for a backward pass: the
    /// inference path (per audio sample, say).
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub fn step_only<const B: usize>(
        &self,
        x: &SMatrix<T, IN, B>,
        state: &mut ConvState<T, IN, SPAN, B>,
    ) -> SMatrix<T, OUT, B> {
        let () = Self::SIZES;
        let at = Self::push(x, state);
        let buffer = &state.buffer;
        let taps: [&SMatrix<T, IN, B>; K] = core::array::from_fn(|k| &buffer[Self::slot(at, k)]);
        self.apply(&Self::stack(taps))
    }

    /// Backpropagation through one step, from what [`step`](Self::step) cached; the same
    /// contract as the recurrent blocks' `step_backward`.
    ///
    /// `dy` is the loss's gradient with respect to the step's output. On entry
    /// `carry.buffer[s]` holds the gradient of the later steps' loss with respect to slot `s`
    /// of the state this step produced (zero for a window's last step, or the gradient with
    /// respect to the window's final state); on exit, with respect to slot `s` of the state
    /// before the step, and `carry.next` is that state's `next`. To get there the step adds
    /// each tap's gradient `W[:, :, k]^T dy` to the slot the tap was read from; the slot it
    /// wrote its input into then holds the whole gradient of that input (its own tap's, and
    /// the later steps' that read it), which is returned, and the slot is cleared: before the
    /// step it held the oldest input, which nothing read. So calling this for the steps of a
    /// window in reverse is backpropagation through time: each `x[t]`'s gradient is returned
    /// by its own step, complete, and the last carry is the gradient with respect to the
    /// window's initial buffer, laid out as that state (its slot `next`, never read, is
    /// zero). Only the ring's position comes from the cache, so a carry may start at any
    /// `next`. The parameter gradients are added to `grads` (the caller zeroes them once per
    /// window). Allocates nothing.
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub fn step_backward<const B: usize>(
        &self,
        cache: &ConvCache<T, IN, K, B>,
        dy: &SMatrix<T, OUT, B>,
        carry: &mut ConvState<T, IN, SPAN, B>,
        grads: &mut Self,
    ) -> SMatrix<T, IN, B> {
        let () = Self::SIZES;
        let u = Self::stack(cache.taps.each_ref());
        weight_grad_add(&u, dy, &mut grads.weight);
        if BIAS {
            row_sums_add(&mut grads.bias, dy);
        }
        let du = transposed_product(&self.weight, dy);
        let at = cache.slot % SPAN;
        for k in 0..K {
            let slot = &mut carry.buffer[Self::slot(at, k)];
            for (target, source) in slot.data.0.iter_mut().zip(&du.data.0) {
                for (i, d) in target.iter_mut().enumerate() {
                    *d += source[i * K + k];
                }
            }
        }
        let dx = carry.buffer[at];
        carry.buffer[at] = SMatrix::zeros();
        carry.next = at;
        dx
    }
}

impl<
    T: Real,
    const IN: usize,
    const OUT: usize,
    const K: usize,
    const IK: usize,
    const DIL: usize,
    const SPAN: usize,
    const BIAS: bool,
> crate::tensors::FlatTensors for CausalConv1d<T, IN, OUT, K, IK, DIL, SPAN, BIAS>
{
    type Scalar = T;

    /// The weight, and with `BIAS` the bias, as [`pair`](CausalConv1d::pair).
    fn for_each_tensor_mut(&mut self, f: &mut impl FnMut(&mut [T])) {
        f(self.weight.as_mut_slice());
        if BIAS {
            f(self.bias.as_mut_slice());
        }
    }
}

impl<
    T: Real,
    const IN: usize,
    const OUT: usize,
    const K: usize,
    const IK: usize,
    const DIL: usize,
    const SPAN: usize,
    const BIAS: bool,
> Tensors<T> for CausalConv1d<T, IN, OUT, K, IK, DIL, SPAN, BIAS>
{
    /// As torch's `state_dict`: `{prefix}weight` of shape `[OUT, IN, K]` (its data the
    /// `OUT x IN K` matrix, column-major, which the weight files make row-major as
    /// `[OUT, IN K]`: torch's order), and with `BIAS` `{prefix}bias` of shape `[OUT]`.
    fn visit(&self, prefix: &str, f: &mut Visitor<T>) {
        crate::tensors::named(format_args!("{prefix}weight"), |name| {
            f(name, &[OUT, IN, K], self.weight.as_slice())
        });
        if BIAS {
            crate::tensors::named(format_args!("{prefix}bias"), |name| {
                f(name, &[OUT], self.bias.as_slice())
            });
        }
    }

    fn visit_mut(&mut self, prefix: &str, f: &mut VisitorMut<T>) {
        crate::tensors::named(format_args!("{prefix}weight"), |name| {
            f(name, &[OUT, IN, K], self.weight.as_mut_slice())
        });
        if BIAS {
            crate::tensors::named(format_args!("{prefix}bias"), |name| {
                f(name, &[OUT], self.bias.as_mut_slice())
            });
        }
    }
}
