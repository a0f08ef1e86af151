//! The parameter blocks of PyTorch's recurrent layers, `nn.GRU`, `nn.LSTM` and `nn.RNN`, and
//! their step-by-step forward and backward passes.
//!
//! A recurrent layer is the first that keeps state between calls: each call is one time step,
//! which reads the state the previous step left ([`HiddenState`], or [`LstmState`] with its
//! cell), replaces it, and returns the top layer's new hidden state. Generated code runs a
//! sequence as a loop of [`step`](Gru::step)s, each leaving in a cache ([`GruCache`],
//! [`LstmCache`], [`RnnCache`]) what its backward step needs, and backpropagates through time
//! by calling [`step_backward`](Gru::step_backward) on those caches in reverse, a `carry`
//! taking the state's gradient from each step to the one before. Inference, where nothing is
//! cached, calls [`step_only`](Gru::step_only): the per-sample audio path.
//!
//! The parameters are torch's, under torch's names and shapes (`weight_ih_l0`, `[GH, IN]`, ...)
//! and with torch's gate order in the rows, so weight files load both ways. One time step of
//! a batch of `B` independent streams takes an `IN x B` input, one column per stream, as every
//! layer of the crate does; the state holds one `H x B` matrix per layer.
//!
//! The sizes are const generics, and stable Rust cannot compute one from another in a type:
//! the gate rows `GH` (3H, 4H or H) and the number of upper layers `REST` (`L - 1`) are passed
//! beside `H` and `L`, and every method asserts at compile time that they agree.
//!
//! Everything here is loops over the static sizes, no allocation and no branch on data: the
//! compiler unrolls and vectorises them, under the AVX2 target of the generated entry points.
//! The products go through the layer floor's kernels, as `Linear`'s do (for `f32`, the
//! constant-size AVX2 kernels at batch one, the general ones above); `step`, `step_only` and
//! `step_backward` are force-inlined in optimised builds, so that they are compiled inside
//! the caller's AVX2 copy.
//!
//! A window of backpropagation through time, as generated code runs it:
//!
//! ```
//! use nn_runtime::__private::LstmCache;
//! use nn_runtime::init::Init;
//! use nn_runtime::nalgebra::SMatrix;
//! use nn_runtime::{Lstm, LstmState};
//!
//! // nn.LSTM(2, 8, num_layers=2): GH = 4 * 8, REST = 2 - 1; two streams.
//! type Block = Lstm<f32, 2, 8, 32, 2, 1, true>;
//! let mut lstm = Block::zeros();
//! lstm.reset(&mut Init::new(0));
//! let xs = [SMatrix::<f32, 2, 2>::from_element(0.5); 4];
//! let mut state = LstmState::zeros();
//! let mut caches = [(); 4].map(|_| LstmCache::zeros());
//! let mut dys = [SMatrix::<f32, 8, 2>::zeros(); 4];
//! for ((x, cache), dy) in xs.iter().zip(&mut caches).zip(&mut dys) {
//!     let y = lstm.step(x, &mut state, cache);
//!     *dy = y * 2.0; // d/dy of |y|^2, the loss of this example
//! }
//! let mut grads = Block::zeros();
//! let mut carry = LstmState::zeros();
//! for (cache, dy) in caches.iter().zip(&dys).rev() {
//!     let _dx = lstm.step_backward(cache, dy, &mut carry, &mut grads);
//! }
//! // `grads` holds the window's parameter gradients, `carry` those of the initial state.
//! assert!(grads.first.weight_hh.amax() > 0.0);
//! ```
//!
//! Sizes that disagree do not compile:
//!
//! ```compile_fail
//! // A GRU's gate rows are 3 H: 8 is not 3 * 4.
//! let _ = nn_runtime::Gru::<f32, 1, 4, 8, 1, 0, true>::zeros();
//! ```

use super::heap::Zeroable;
use super::init::Init;
use super::ops::{product_add, row_sums_add, start, transposed_product, weight_grad_add};
use super::tensors::{Tensors, Visitor, VisitorMut};
use crate::real::{Real, math};
use nalgebra::{SMatrix, SVector};

/// The parameters of one layer of a recurrent stack: what torch stores as `weight_ih_l{k}`,
/// `weight_hh_l{k}`, `bias_ih_l{k}` and `bias_hh_l{k}`.
///
/// `IN` is the layer's input size (the stack's input for layer 0, `H` above it), `GH` the
/// number of gate rows: the gates stacked as torch stacks them (GRU `r, z, n`; LSTM
/// `i, f, g, o`; RNN one), `H` rows each. Without biases (`bias=False`) the two bias vectors
/// stay zero and are neither named, initialised nor paired with a gradient.
#[derive(Clone, Debug, PartialEq)]
pub struct CellLayer<T: Real, const IN: usize, const H: usize, const GH: usize> {
    /// The input-to-gates weight, `GH x IN`, as `weight_ih_l{k}`.
    pub weight_ih: SMatrix<T, GH, IN>,
    /// The hidden-to-gates weight, `GH x H`, as `weight_hh_l{k}`.
    pub weight_hh: SMatrix<T, GH, H>,
    /// The input side's gate bias, as `bias_ih_l{k}` (zero without biases).
    pub bias_ih: SVector<T, GH>,
    /// The hidden side's gate bias, as `bias_hh_l{k}` (zero without biases). GRU's candidate
    /// gate needs it apart from `bias_ih`: it is scaled by the reset gate.
    pub bias_hh: SVector<T, GH>,
}

// SAFETY: a `CellLayer` of `f32` or `f64` is four nalgebra arrays of that float, all of one
// alignment, so there is no padding: all-zero bytes are 0.0 in every float.
unsafe impl<const IN: usize, const H: usize, const GH: usize> Zeroable
    for CellLayer<f32, IN, H, GH>
{
}
// SAFETY: as above.
unsafe impl<const IN: usize, const H: usize, const GH: usize> Zeroable
    for CellLayer<f64, IN, H, GH>
{
}

impl<T: Real, const IN: usize, const H: usize, const GH: usize> Default
    for CellLayer<T, IN, H, GH>
{
    /// All zero, as [`zeros`](CellLayer::zeros).
    fn default() -> Self {
        Self::zeros()
    }
}

impl<T: Real, const IN: usize, const H: usize, const GH: usize> CellLayer<T, IN, H, GH> {
    /// A layer whose parameters are all zero: a gradient's starting value.
    pub fn zeros() -> Self {
        Self {
            weight_ih: SMatrix::zeros(),
            weight_hh: SMatrix::zeros(),
            bias_ih: SVector::zeros(),
            bias_hh: SVector::zeros(),
        }
    }

    /// Draws every parameter uniform in `+-bound`, in torch's order: `weight_ih` row-major,
    /// `weight_hh` row-major, then (with `bias`) `bias_ih`, `bias_hh`.
    fn reset(&mut self, init: &mut Init, bound: f64, bias: bool) {
        for r in 0..GH {
            for c in 0..IN {
                self.weight_ih[(r, c)] = init.uniform(bound);
            }
        }
        for r in 0..GH {
            for c in 0..H {
                self.weight_hh[(r, c)] = init.uniform(bound);
            }
        }
        if bias {
            for r in 0..GH {
                self.bias_ih[r] = init.uniform(bound);
            }
            for r in 0..GH {
                self.bias_hh[r] = init.uniform(bound);
            }
        }
    }

    /// Each tensor beside its gradient, from `params[*at]` on (see `Linear::pair`).
    fn pair<'a>(
        &'a mut self,
        gradients: &'a Self,
        bias: bool,
        params: &mut [&'a mut [T]],
        grads: &mut [&'a [T]],
        at: &mut usize,
    ) {
        params[*at] = self.weight_ih.as_mut_slice();
        grads[*at] = gradients.weight_ih.as_slice();
        params[*at + 1] = self.weight_hh.as_mut_slice();
        grads[*at + 1] = gradients.weight_hh.as_slice();
        *at += 2;
        if bias {
            params[*at] = self.bias_ih.as_mut_slice();
            grads[*at] = gradients.bias_ih.as_slice();
            params[*at + 1] = self.bias_hh.as_mut_slice();
            grads[*at + 1] = gradients.bias_hh.as_slice();
            *at += 2;
        }
    }

    /// Calls `f` on each tensor, in the order of [`pair`](Self::pair).
    fn for_each_tensor_mut(&mut self, bias: bool, f: &mut impl FnMut(&mut [T])) {
        f(self.weight_ih.as_mut_slice());
        f(self.weight_hh.as_mut_slice());
        if bias {
            f(self.bias_ih.as_mut_slice());
            f(self.bias_hh.as_mut_slice());
        }
    }

    /// Calls `f` for each tensor of layer `k`, under torch's name.
    fn visit(&self, prefix: &str, k: usize, bias: bool, f: &mut Visitor<T>) {
        crate::tensors::named(format_args!("{prefix}weight_ih_l{k}"), |name| {
            f(name, &[GH, IN], self.weight_ih.as_slice())
        });
        crate::tensors::named(format_args!("{prefix}weight_hh_l{k}"), |name| {
            f(name, &[GH, H], self.weight_hh.as_slice())
        });
        if bias {
            crate::tensors::named(format_args!("{prefix}bias_ih_l{k}"), |name| {
                f(name, &[GH], self.bias_ih.as_slice())
            });
            crate::tensors::named(format_args!("{prefix}bias_hh_l{k}"), |name| {
                f(name, &[GH], self.bias_hh.as_slice())
            });
        }
    }

    /// As [`visit`](Self::visit), with mutable data.
    fn visit_mut(&mut self, prefix: &str, k: usize, bias: bool, f: &mut VisitorMut<T>) {
        crate::tensors::named(format_args!("{prefix}weight_ih_l{k}"), |name| {
            f(name, &[GH, IN], self.weight_ih.as_mut_slice())
        });
        crate::tensors::named(format_args!("{prefix}weight_hh_l{k}"), |name| {
            f(name, &[GH, H], self.weight_hh.as_mut_slice())
        });
        if bias {
            crate::tensors::named(format_args!("{prefix}bias_ih_l{k}"), |name| {
                f(name, &[GH], self.bias_ih.as_mut_slice())
            });
            crate::tensors::named(format_args!("{prefix}bias_hh_l{k}"), |name| {
                f(name, &[GH], self.bias_hh.as_mut_slice())
            });
        }
    }

    /// `W_ih x + b_ih`, the input side of the gates (GRU keeps the two sides apart).
    #[inline(always)]
    fn input_side<const B: usize>(&self, x: &SMatrix<T, IN, B>, bias: bool) -> SMatrix<T, GH, B> {
        let mut acc = start(&self.bias_ih, bias);
        product_add(&self.weight_ih, x, &mut acc);
        acc
    }

    /// `W_hh h + b_hh`, the hidden side of the gates.
    #[inline(always)]
    fn hidden_side<const B: usize>(&self, h: &SMatrix<T, H, B>, bias: bool) -> SMatrix<T, GH, B> {
        let mut acc = start(&self.bias_hh, bias);
        product_add(&self.weight_hh, h, &mut acc);
        acc
    }

    /// `W_ih x + b_ih + W_hh h + b_hh`, both sides in one accumulator (LSTM, RNN).
    #[inline(always)]
    fn both_sides<const B: usize>(
        &self,
        x: &SMatrix<T, IN, B>,
        h: &SMatrix<T, H, B>,
        bias: bool,
    ) -> SMatrix<T, GH, B> {
        let mut acc = SMatrix::<T, GH, B>::zeros();
        if bias {
            for col in acc.data.0.iter_mut() {
                for ((a, bi), bh) in col
                    .iter_mut()
                    .zip(&self.bias_ih.data.0[0])
                    .zip(&self.bias_hh.data.0[0])
                {
                    *a = *bi + *bh;
                }
            }
        }
        product_add(&self.weight_ih, x, &mut acc);
        product_add(&self.weight_hh, h, &mut acc);
        acc
    }

    /// Adds this step's parameter gradients to `self` (a gradient block): `d_ih x^T` to
    /// `weight_ih`, `d_hh h^T` to `weight_hh`, and the batch sums of `d_ih`, `d_hh` to the
    /// biases (with `bias`). `d_ih`, `d_hh` are the gradients of the two sides' sums.
    #[inline(always)]
    fn accumulate<const B: usize>(
        &mut self,
        d_ih: &SMatrix<T, GH, B>,
        d_hh: &SMatrix<T, GH, B>,
        x: &SMatrix<T, IN, B>,
        h: &SMatrix<T, H, B>,
        bias: bool,
    ) {
        weight_grad_add(x, d_ih, &mut self.weight_ih);
        weight_grad_add(h, d_hh, &mut self.weight_hh);
        if bias {
            row_sums_add(&mut self.bias_ih, d_ih);
            row_sums_add(&mut self.bias_hh, d_hh);
        }
    }
}

/// `H x B` matrices, one per layer: the part of a recurrent state every kind has.
type PerLayer<T, const H: usize, const L: usize, const B: usize> = [SMatrix<T, H, B>; L];

/// The hidden state of a GRU or RNN stack between two time steps: one `H x B` matrix per
/// layer, a column per stream, as torch's `h_n` of shape `[L, B, H]` holds it.
///
/// Generated code keeps one per stateful layer in the network's state; the backward pass uses
/// another as its `carry`, holding the gradient with respect to the state.
#[derive(Clone, Debug, PartialEq)]
pub struct HiddenState<T: Real, const H: usize, const L: usize, const B: usize> {
    /// Each layer's hidden state, layer 0 first.
    pub h: PerLayer<T, H, L, B>,
}

impl<T: Real, const H: usize, const L: usize, const B: usize> HiddenState<T, H, L, B> {
    /// The zero state: torch's default `h_0`, and a backward pass's carry before the window's
    /// last step.
    pub fn zeros() -> Self {
        Self {
            h: [SMatrix::zeros(); L],
        }
    }
}

/// The state of an LSTM stack between two time steps: hidden and cell state, one `H x B`
/// matrix each per layer, as torch's `(h_n, c_n)`.
///
/// As [`HiddenState`], it is both the network's state and the backward pass's carry.
#[derive(Clone, Debug, PartialEq)]
pub struct LstmState<T: Real, const H: usize, const L: usize, const B: usize> {
    /// Each layer's hidden state (its output), layer 0 first.
    pub h: PerLayer<T, H, L, B>,
    /// Each layer's cell state, layer 0 first.
    pub c: PerLayer<T, H, L, B>,
}

impl<T: Real, const H: usize, const L: usize, const B: usize> LstmState<T, H, L, B> {
    /// The zero state: torch's default `(h_0, c_0)`, and a backward pass's carry before the
    /// window's last step.
    pub fn zeros() -> Self {
        Self {
            h: [SMatrix::zeros(); L],
            c: [SMatrix::zeros(); L],
        }
    }
}

/// What [`Gru::step`] keeps for [`Gru::step_backward`]: each layer's input and previous hidden
/// state, its activated gates `r, z, n`, and `W_hn h + b_hn` (the candidate's hidden side,
/// which the reset gate scales).
#[derive(Clone, Debug, PartialEq)]
pub struct GruCache<
    T: Real,
    const IN: usize,
    const H: usize,
    const GH: usize,
    const L: usize,
    const REST: usize,
    const B: usize,
> {
    /// The step's input, layer 0's input.
    pub x: SMatrix<T, IN, B>,
    /// The inputs of layers 1 and up: the new hidden states of the layers below.
    pub inputs: [SMatrix<T, H, B>; REST],
    /// Each layer's hidden state before the step.
    pub h: [SMatrix<T, H, B>; L],
    /// Each layer's activated gates, `r, z, n` stacked.
    pub gates: [SMatrix<T, GH, B>; L],
    /// Each layer's `W_hn h + b_hn`.
    pub hn: [SMatrix<T, H, B>; L],
}

/// What [`Lstm::step`] keeps for [`Lstm::step_backward`]: each layer's input, previous hidden
/// and cell state, activated gates `i, f, g, o`, and `tanh` of the new cell state.
#[derive(Clone, Debug, PartialEq)]
pub struct LstmCache<
    T: Real,
    const IN: usize,
    const H: usize,
    const GH: usize,
    const L: usize,
    const REST: usize,
    const B: usize,
> {
    /// The step's input, layer 0's input.
    pub x: SMatrix<T, IN, B>,
    /// The inputs of layers 1 and up: the new hidden states of the layers below.
    pub inputs: [SMatrix<T, H, B>; REST],
    /// Each layer's hidden state before the step.
    pub h: [SMatrix<T, H, B>; L],
    /// Each layer's cell state before the step.
    pub c: [SMatrix<T, H, B>; L],
    /// Each layer's activated gates, `i, f, g, o` stacked.
    pub gates: [SMatrix<T, GH, B>; L],
    /// Each layer's `tanh(c')`.
    pub tanh_c: [SMatrix<T, H, B>; L],
}

/// What [`Rnn::step`] keeps for [`Rnn::step_backward`]: each layer's input, previous hidden
/// state and new hidden state (the activation's output, from which its derivative follows).
#[derive(Clone, Debug, PartialEq)]
pub struct RnnCache<
    T: Real,
    const IN: usize,
    const H: usize,
    const GH: usize,
    const L: usize,
    const REST: usize,
    const B: usize,
> {
    /// The step's input, layer 0's input.
    pub x: SMatrix<T, IN, B>,
    /// The inputs of layers 1 and up: the new hidden states of the layers below.
    pub inputs: [SMatrix<T, H, B>; REST],
    /// Each layer's hidden state before the step.
    pub h: [SMatrix<T, H, B>; L],
    /// Each layer's new hidden state, the activation's output.
    pub gates: [SMatrix<T, GH, B>; L],
}

macro_rules! state_impls {
    ($name:ident) => {
        impl<T: Real, const H: usize, const L: usize, const B: usize> Default
            for $name<T, H, L, B>
        {
            /// All zero, as `zeros`.
            fn default() -> Self {
                Self::zeros()
            }
        }
        // SAFETY: arrays of nalgebra matrices of `f32`, all of one alignment, so no padding:
        // all-zero bytes are 0.0 in every float.
        unsafe impl<const H: usize, const L: usize, const B: usize> Zeroable
            for $name<f32, H, L, B>
        {
        }
        // SAFETY: as above, of `f64`.
        unsafe impl<const H: usize, const L: usize, const B: usize> Zeroable
            for $name<f64, H, L, B>
        {
        }
    };
}

state_impls!(HiddenState);
state_impls!(LstmState);

macro_rules! cache_impls {
    ($name:ident, $($field:ident),*) => {
        impl<
            T: Real,
            const IN: usize,
            const H: usize,
            const GH: usize,
            const L: usize,
            const REST: usize,
            const B: usize,
        > $name<T, IN, H, GH, L, REST, B>
        {
            /// An all-zero cache, to be overwritten by the first step that uses it: generated
            /// code keeps one per time step of a training window.
            pub fn zeros() -> Self {
                Self {
                    x: SMatrix::zeros(),
                    inputs: [SMatrix::zeros(); REST],
                    $($field: [SMatrix::zeros(); L],)*
                }
            }
        }
        impl<
            T: Real,
            const IN: usize,
            const H: usize,
            const GH: usize,
            const L: usize,
            const REST: usize,
            const B: usize,
        > Default for $name<T, IN, H, GH, L, REST, B>
        {
            /// All zero, as `zeros`.
            fn default() -> Self {
                Self::zeros()
            }
        }
        // SAFETY: arrays of nalgebra matrices of `f32`, all of one alignment, so no padding:
        // all-zero bytes are 0.0 in every float.
        unsafe impl<
            const IN: usize,
            const H: usize,
            const GH: usize,
            const L: usize,
            const REST: usize,
            const B: usize,
        > Zeroable for $name<f32, IN, H, GH, L, REST, B>
        {
        }
        // SAFETY: as above, of `f64`.
        unsafe impl<
            const IN: usize,
            const H: usize,
            const GH: usize,
            const L: usize,
            const REST: usize,
            const B: usize,
        > Zeroable for $name<f64, IN, H, GH, L, REST, B>
        {
        }
    };
}

cache_impls!(GruCache, h, gates, hn);
cache_impls!(LstmCache, h, c, gates, tanh_c);
cache_impls!(RnnCache, h, gates);

/// Declares a recurrent stack's struct and what every kind has alike: the size checks,
/// counts, zeros, torch's initialisation, the optimizer's pairing and the tensors' names.
macro_rules! stack {
    (
        $(#[$doc:meta])*
        $name:ident, gates = $gates:literal $(, const $extra:ident: bool)?
    ) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq)]
        pub struct $name<
            T: Real,
            const IN: usize,
            const H: usize,
            const GH: usize,
            const L: usize,
            const REST: usize,
            const BIAS: bool,
            $(const $extra: bool,)?
        > {
            /// Layer 0, which reads the input: torch's `*_l0` tensors.
            pub first: CellLayer<T, IN, H, GH>,
            /// Layers 1 to `L - 1`, each reading the new hidden state of the layer below:
            /// torch's `*_l1` and up.
            pub rest: [CellLayer<T, H, H, GH>; REST],
        }

        impl<
            T: Real,
            const IN: usize,
            const H: usize,
            const GH: usize,
            const L: usize,
            const REST: usize,
            const BIAS: bool,
            $(const $extra: bool,)?
        > $name<T, IN, H, GH, L, REST, BIAS, $($extra)?>
        {
            /// The sizes passed beside each other agree (evaluated where a method is used,
            /// so a wrong type fails to compile, with this message).
            const SIZES: () = {
                assert!(
                    GH == $gates * H,
                    concat!(
                        stringify!($name),
                        ": GH must be ",
                        stringify!($gates),
                        " * H (the gate rows)"
                    )
                );
                assert!(
                    REST + 1 == L,
                    concat!(stringify!($name), ": REST must be L - 1 (and L at least 1)")
                );
            };

            /// Number of scalars in the block, for the generated parameter counts: the two
            /// weights of every layer, and with `BIAS` its two biases.
            pub const PARAMS: usize = GH * IN
                + GH * H
                + REST * 2 * GH * H
                + if BIAS { 2 * GH * L } else { 0 };

            /// Number of tensors [`pair`](Self::pair) and [`Tensors`] give: two weights per
            /// layer, and with `BIAS` two biases.
            pub const TENSORS: usize = L * (if BIAS { 4 } else { 2 });

            /// A block whose parameters are all zero: the gradient struct's starting value,
            /// and the network's before [`reset`](Self::reset).
            pub fn zeros() -> Self {
                let () = Self::SIZES;
                Self {
                    first: CellLayer::zeros(),
                    rest: core::array::from_fn(|_| CellLayer::zeros()),
                }
            }

            /// Torch's default initialisation, in place: every parameter uniform in
            /// `+-1/sqrt(H)`, drawn from `init` in torch's parameter order (`weight_ih_l0`
            /// row-major, `weight_hh_l0`, `bias_ih_l0`, `bias_hh_l0`, then layer 1, ...), so
            /// that one seed gives one network whatever layers surround it. Without `BIAS`
            /// the biases are neither drawn nor touched: torch has none to draw.
            pub fn reset(&mut self, init: &mut Init) {
                let () = Self::SIZES;
                let bound = Init::linear_bound(H);
                self.first.reset(init, bound, BIAS);
                for layer in &mut self.rest {
                    layer.reset(init, bound, BIAS);
                }
            }

            /// Puts every tensor into `params[*at..]`, each beside its gradient (from
            /// `gradients`) in `grads[*at..]`, advancing `at` by [`TENSORS`](Self::TENSORS):
            /// the flat view an optimizer works on, in the order of [`Tensors`] (see
            /// `Linear::pair`). Without `BIAS` the biases are left out, so no optimizer moves
            /// them off zero.
            #[doc(hidden)]
            #[inline]
            pub fn pair<'a>(
                &'a mut self,
                gradients: &'a Self,
                params: &mut [&'a mut [T]],
                grads: &mut [&'a [T]],
                at: &mut usize,
            ) {
                self.first.pair(&gradients.first, BIAS, params, grads, at);
                for (layer, gradient) in self.rest.iter_mut().zip(&gradients.rest) {
                    layer.pair(gradient, BIAS, params, grads, at);
                }
            }
        }

        impl<
            T: Real,
            const IN: usize,
            const H: usize,
            const GH: usize,
            const L: usize,
            const REST: usize,
            const BIAS: bool,
            $(const $extra: bool,)?
        > Default for $name<T, IN, H, GH, L, REST, BIAS, $($extra)?>
        {
            /// All zero, as `zeros`: what a gradient struct starts from.
            fn default() -> Self {
                Self::zeros()
            }
        }

        // SAFETY: `CellLayer`s of `f32` (each `Zeroable`, see there) in a struct and an array,
        // all of one alignment, so no padding: all-zero bytes are 0.0 in every float.
        unsafe impl<
            const IN: usize,
            const H: usize,
            const GH: usize,
            const L: usize,
            const REST: usize,
            const BIAS: bool,
            $(const $extra: bool,)?
        > Zeroable for $name<f32, IN, H, GH, L, REST, BIAS, $($extra)?>
        {
        }
        // SAFETY: as above, of `f64`.
        unsafe impl<
            const IN: usize,
            const H: usize,
            const GH: usize,
            const L: usize,
            const REST: usize,
            const BIAS: bool,
            $(const $extra: bool,)?
        > Zeroable for $name<f64, IN, H, GH, L, REST, BIAS, $($extra)?>
        {
        }

        impl<
            T: Real,
            const IN: usize,
            const H: usize,
            const GH: usize,
            const L: usize,
            const REST: usize,
            const BIAS: bool,
            $(const $extra: bool,)?
        > crate::tensors::FlatTensors for $name<T, IN, H, GH, L, REST, BIAS, $($extra)?>
        {
            type Scalar = T;

            /// Every layer's tensors, layer 0 first, as `pair`.
            fn for_each_tensor_mut(&mut self, f: &mut impl FnMut(&mut [T])) {
                self.first.for_each_tensor_mut(BIAS, f);
                for layer in &mut self.rest {
                    layer.for_each_tensor_mut(BIAS, f);
                }
            }
        }

        impl<
            T: Real,
            const IN: usize,
            const H: usize,
            const GH: usize,
            const L: usize,
            const REST: usize,
            const BIAS: bool,
            $(const $extra: bool,)?
        > Tensors<T> for $name<T, IN, H, GH, L, REST, BIAS, $($extra)?>
        {
            /// Per layer `k`, as torch's `state_dict`: `{prefix}weight_ih_l{k}` `[GH, IN_k]`,
            /// `{prefix}weight_hh_l{k}` `[GH, H]`, and with `BIAS` `{prefix}bias_ih_l{k}`,
            /// `{prefix}bias_hh_l{k}` `[GH]`.
            fn visit(&self, prefix: &str, f: &mut Visitor<T>) {
                self.first.visit(prefix, 0, BIAS, f);
                for (k, layer) in self.rest.iter().enumerate() {
                    layer.visit(prefix, k + 1, BIAS, f);
                }
            }

            fn visit_mut(&mut self, prefix: &str, f: &mut VisitorMut<T>) {
                self.first.visit_mut(prefix, 0, BIAS, f);
                for (k, layer) in self.rest.iter_mut().enumerate() {
                    layer.visit_mut(prefix, k + 1, BIAS, f);
                }
            }
        }
    };
}

stack! {
    /// The parameters of torch's `nn.GRU(IN, H, num_layers=L, bias=BIAS)` (`GH = 3 H`,
    /// `REST = L - 1`), and its time step.
    ///
    /// Per layer, with the gates `r, z, n` stacked in the weights' rows as torch stacks them:
    ///
    /// ```text
    /// r  = sigmoid(W_ir x + b_ir + W_hr h + b_hr)
    /// z  = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
    /// n  = tanh(W_in x + b_in + r * (W_hn h + b_hn))
    /// h' = (1 - z) * n + z * h
    /// ```
    ///
    /// Layer 0 reads the input `x`, layer `k > 0` the new `h'` of layer `k - 1`; the step's
    /// output is the top layer's `h'`. A generated network holds one per GRU layer, its
    /// gradient struct another.
    Gru, gates = 3
}

stack! {
    /// The parameters of torch's `nn.LSTM(IN, H, num_layers=L, bias=BIAS)` (`GH = 4 H`,
    /// `REST = L - 1`), and its time step.
    ///
    /// Per layer, with the gates `i, f, g, o` stacked in the weights' rows as torch stacks
    /// them, each gate's pre-activation `W_i. x + b_i. + W_h. h + b_h.`:
    ///
    /// ```text
    /// i, f, o = sigmoid(..),  g = tanh(..)
    /// c' = f * c + i * g
    /// h' = o * tanh(c')
    /// ```
    ///
    /// Layer 0 reads the input `x`, layer `k > 0` the new `h'` of layer `k - 1`; the step's
    /// output is the top layer's `h'`. A generated network holds one per LSTM layer, its
    /// gradient struct another.
    Lstm, gates = 4
}

stack! {
    /// The parameters of torch's `nn.RNN(IN, H, num_layers=L, nonlinearity, bias=BIAS)`
    /// (`GH = H`, `REST = L - 1`; `RELU` for `nonlinearity='relu'`), and its time step.
    ///
    /// Per layer: `h' = tanh(W_ih x + b_ih + W_hh h + b_hh)`, or `relu(..)` with `RELU`
    /// (whose derivative at 0 is 0, as torch's). Layer 0 reads the input `x`, layer `k > 0`
    /// the new `h'` of layer `k - 1`; the step's output is the top layer's `h'`.
    Rnn, gates = 1, const RELU: bool
}

impl<
    T: Real,
    const IN: usize,
    const H: usize,
    const GH: usize,
    const L: usize,
    const REST: usize,
    const BIAS: bool,
> Gru<T, IN, H, GH, L, REST, BIAS>
{
    /// One time step of a batch of `B` streams (a column each): updates `state` to the new
    /// hidden states, writes into `cache` what [`step_backward`](Self::step_backward) needs,
    /// and returns the top layer's new hidden state, the step's output.
    ///
    /// Allocates nothing; its arithmetic is exactly [`step_only`](Self::step_only)'s.
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub fn step<const B: usize>(
        &self,
        x: &SMatrix<T, IN, B>,
        state: &mut HiddenState<T, H, L, B>,
        cache: &mut GruCache<T, IN, H, GH, L, REST, B>,
    ) -> SMatrix<T, H, B> {
        let () = Self::SIZES;
        cache.x = *x;
        cache.h[0] = state.h[0];
        (state.h[0], cache.gates[0], cache.hn[0]) = Self::cell(&self.first, x, &state.h[0]);
        for (k, layer) in self.rest.iter().enumerate() {
            cache.inputs[k] = state.h[k];
            cache.h[k + 1] = state.h[k + 1];
            (state.h[k + 1], cache.gates[k + 1], cache.hn[k + 1]) =
                Self::cell(layer, &state.h[k], &state.h[k + 1]);
        }
        state.h[L - 1]
    }

    /// One time step as [`step`](Self::step), keeping nothing for a backward pass: the
    /// inference path (per audio sample, say), as fast as the arithmetic allows.
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub fn step_only<const B: usize>(
        &self,
        x: &SMatrix<T, IN, B>,
        state: &mut HiddenState<T, H, L, B>,
    ) -> SMatrix<T, H, B> {
        let () = Self::SIZES;
        state.h[0] = Self::cell(&self.first, x, &state.h[0]).0;
        for (k, layer) in self.rest.iter().enumerate() {
            state.h[k + 1] = Self::cell(layer, &state.h[k], &state.h[k + 1]).0;
        }
        state.h[L - 1]
    }

    /// Backpropagation through one step, from what [`step`](Self::step) cached.
    ///
    /// `dh` is the loss's gradient with respect to the step's output. On entry `carry` holds
    /// the gradient with respect to the state this step produced (from the later steps; zero
    /// for a window's last step); on exit, the gradient with respect to the state before it.
    /// So calling this for the steps of a window in reverse is backpropagation through time,
    /// and the last carry is the gradient with respect to the window's initial state. The
    /// parameter gradients are added to `grads` (the caller zeroes them once per window).
    /// Returns the gradient with respect to the step's input `x`. Allocates nothing.
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub fn step_backward<const B: usize>(
        &self,
        cache: &GruCache<T, IN, H, GH, L, REST, B>,
        dh: &SMatrix<T, H, B>,
        carry: &mut HiddenState<T, H, L, B>,
        grads: &mut Self,
    ) -> SMatrix<T, IN, B> {
        let () = Self::SIZES;
        let mut d = *dh;
        for k in (0..REST).rev() {
            let total = d + carry.h[k + 1];
            (d, carry.h[k + 1]) = Self::cell_backward(
                &self.rest[k],
                &mut grads.rest[k],
                &cache.inputs[k],
                &cache.h[k + 1],
                &cache.gates[k + 1],
                &cache.hn[k + 1],
                &total,
            );
        }
        let total = d + carry.h[0];
        let dx;
        (dx, carry.h[0]) = Self::cell_backward(
            &self.first,
            &mut grads.first,
            &cache.x,
            &cache.h[0],
            &cache.gates[0],
            &cache.hn[0],
            &total,
        );
        dx
    }

    /// One layer's step: the new hidden state, the activated gates, `W_hn h + b_hn`.
    #[inline(always)]
    #[allow(clippy::type_complexity)]
    fn cell<const I: usize, const B: usize>(
        p: &CellLayer<T, I, H, GH>,
        x: &SMatrix<T, I, B>,
        h: &SMatrix<T, H, B>,
    ) -> (SMatrix<T, H, B>, SMatrix<T, GH, B>, SMatrix<T, H, B>) {
        let gi = p.input_side(x, BIAS);
        let gh = p.hidden_side(h, BIAS);
        let mut gates = SMatrix::<T, GH, B>::zeros();
        let mut hn = SMatrix::<T, H, B>::zeros();
        let mut out = SMatrix::<T, H, B>::zeros();
        for b in 0..B {
            let (gi, gh, g) = (&gi.data.0[b], &gh.data.0[b], &mut gates.data.0[b]);
            for j in 0..2 * H {
                g[j] = math::sigmoid(gi[j] + gh[j]);
            }
            for j in 0..H {
                let n = math::tanh(gi[2 * H + j] + g[j] * gh[2 * H + j]);
                let z = g[H + j];
                g[2 * H + j] = n;
                hn.data.0[b][j] = gh[2 * H + j];
                out.data.0[b][j] = n + z * (h.data.0[b][j] - n);
            }
        }
        (out, gates, hn)
    }

    /// One layer's backward step, given `dh` (the gradient of its new hidden state, from
    /// above and from later steps): adds to `g`, returns the gradients of its input and of
    /// its previous hidden state.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn cell_backward<const I: usize, const B: usize>(
        p: &CellLayer<T, I, H, GH>,
        g: &mut CellLayer<T, I, H, GH>,
        x: &SMatrix<T, I, B>,
        h: &SMatrix<T, H, B>,
        gates: &SMatrix<T, GH, B>,
        hn: &SMatrix<T, H, B>,
        dh: &SMatrix<T, H, B>,
    ) -> (SMatrix<T, I, B>, SMatrix<T, H, B>) {
        let one = T::one();
        let mut d_ih = SMatrix::<T, GH, B>::zeros();
        let mut d_hh = SMatrix::<T, GH, B>::zeros();
        let mut d_prev = SMatrix::<T, H, B>::zeros();
        for b in 0..B {
            let gt = &gates.data.0[b];
            let (di, dhh) = (&mut d_ih.data.0[b], &mut d_hh.data.0[b]);
            for j in 0..H {
                let (r, z, n) = (gt[j], gt[H + j], gt[2 * H + j]);
                let d = dh.data.0[b][j];
                // Pre-activation gradients: n's, then z's and r's through it.
                let dn = d * (one - z) * (one - n * n);
                let dz = d * (h.data.0[b][j] - n) * z * (one - z);
                let dr = dn * hn.data.0[b][j] * r * (one - r);
                di[j] = dr;
                di[H + j] = dz;
                di[2 * H + j] = dn;
                dhh[j] = dr;
                dhh[H + j] = dz;
                dhh[2 * H + j] = dn * r;
                d_prev.data.0[b][j] = d * z;
            }
        }
        g.accumulate(&d_ih, &d_hh, x, h, BIAS);
        d_prev += transposed_product(&p.weight_hh, &d_hh);
        (transposed_product(&p.weight_ih, &d_ih), d_prev)
    }
}

impl<
    T: Real,
    const IN: usize,
    const H: usize,
    const GH: usize,
    const L: usize,
    const REST: usize,
    const BIAS: bool,
> Lstm<T, IN, H, GH, L, REST, BIAS>
{
    /// One time step of a batch of `B` streams (a column each): updates `state` to the new
    /// hidden and cell states, writes into `cache` what
    /// [`step_backward`](Self::step_backward) needs, and returns the top layer's new hidden
    /// state, the step's output.
    ///
    /// Allocates nothing; its arithmetic is exactly [`step_only`](Self::step_only)'s.
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub fn step<const B: usize>(
        &self,
        x: &SMatrix<T, IN, B>,
        state: &mut LstmState<T, H, L, B>,
        cache: &mut LstmCache<T, IN, H, GH, L, REST, B>,
    ) -> SMatrix<T, H, B> {
        let () = Self::SIZES;
        cache.x = *x;
        cache.h[0] = state.h[0];
        cache.c[0] = state.c[0];
        (state.h[0], state.c[0], cache.gates[0], cache.tanh_c[0]) =
            Self::cell(&self.first, x, &state.h[0], &state.c[0]);
        for (k, layer) in self.rest.iter().enumerate() {
            cache.inputs[k] = state.h[k];
            cache.h[k + 1] = state.h[k + 1];
            cache.c[k + 1] = state.c[k + 1];
            (
                state.h[k + 1],
                state.c[k + 1],
                cache.gates[k + 1],
                cache.tanh_c[k + 1],
            ) = Self::cell(layer, &state.h[k], &state.h[k + 1], &state.c[k + 1]);
        }
        state.h[L - 1]
    }

    /// One time step as [`step`](Self::step), keeping nothing for a backward pass: the
    /// inference path (per audio sample, say), as fast as the arithmetic allows.
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub fn step_only<const B: usize>(
        &self,
        x: &SMatrix<T, IN, B>,
        state: &mut LstmState<T, H, L, B>,
    ) -> SMatrix<T, H, B> {
        let () = Self::SIZES;
        (state.h[0], state.c[0], _, _) = Self::cell(&self.first, x, &state.h[0], &state.c[0]);
        for (k, layer) in self.rest.iter().enumerate() {
            (state.h[k + 1], state.c[k + 1], _, _) =
                Self::cell(layer, &state.h[k], &state.h[k + 1], &state.c[k + 1]);
        }
        state.h[L - 1]
    }

    /// Backpropagation through one step, from what [`step`](Self::step) cached.
    ///
    /// `dh` is the loss's gradient with respect to the step's output. On entry `carry` holds
    /// the gradients with respect to the hidden and cell states this step produced (from the
    /// later steps; zero for a window's last step); on exit, those with respect to the states
    /// before it. So calling this for the steps of a window in reverse is backpropagation
    /// through time, and the last carry is the gradient with respect to the window's initial
    /// state. The parameter gradients are added to `grads` (the caller zeroes them once per
    /// window). Returns the gradient with respect to the step's input `x`. Allocates nothing.
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub fn step_backward<const B: usize>(
        &self,
        cache: &LstmCache<T, IN, H, GH, L, REST, B>,
        dh: &SMatrix<T, H, B>,
        carry: &mut LstmState<T, H, L, B>,
        grads: &mut Self,
    ) -> SMatrix<T, IN, B> {
        let () = Self::SIZES;
        let mut d = *dh;
        for k in (0..REST).rev() {
            let total = d + carry.h[k + 1];
            (d, carry.h[k + 1], carry.c[k + 1]) = Self::cell_backward(
                &self.rest[k],
                &mut grads.rest[k],
                &cache.inputs[k],
                &cache.h[k + 1],
                &cache.c[k + 1],
                &cache.gates[k + 1],
                &cache.tanh_c[k + 1],
                &total,
                &carry.c[k + 1],
            );
        }
        let total = d + carry.h[0];
        let dx;
        (dx, carry.h[0], carry.c[0]) = Self::cell_backward(
            &self.first,
            &mut grads.first,
            &cache.x,
            &cache.h[0],
            &cache.c[0],
            &cache.gates[0],
            &cache.tanh_c[0],
            &total,
            &carry.c[0],
        );
        dx
    }

    /// One layer's step: the new hidden and cell states, the activated gates, `tanh(c')`.
    #[inline(always)]
    #[allow(clippy::type_complexity)]
    fn cell<const I: usize, const B: usize>(
        p: &CellLayer<T, I, H, GH>,
        x: &SMatrix<T, I, B>,
        h: &SMatrix<T, H, B>,
        c: &SMatrix<T, H, B>,
    ) -> (
        SMatrix<T, H, B>,
        SMatrix<T, H, B>,
        SMatrix<T, GH, B>,
        SMatrix<T, H, B>,
    ) {
        let a = p.both_sides(x, h, BIAS);
        let mut gates = SMatrix::<T, GH, B>::zeros();
        let mut tanh_c = SMatrix::<T, H, B>::zeros();
        let mut h_new = SMatrix::<T, H, B>::zeros();
        let mut c_new = SMatrix::<T, H, B>::zeros();
        for b in 0..B {
            let (a, g) = (&a.data.0[b], &mut gates.data.0[b]);
            // One pass over the hidden units, every gate of a unit together: a step's
            // latency is what a single stream waits for, and the four gates' independent
            // chains overlap.
            for j in 0..H {
                let i = math::sigmoid(a[j]);
                let f = math::sigmoid(a[H + j]);
                let gg = math::tanh(a[2 * H + j]);
                let o = math::sigmoid(a[3 * H + j]);
                let cn = f * c.data.0[b][j] + i * gg;
                let tc = math::tanh(cn);
                (g[j], g[H + j], g[2 * H + j], g[3 * H + j]) = (i, f, gg, o);
                c_new.data.0[b][j] = cn;
                tanh_c.data.0[b][j] = tc;
                h_new.data.0[b][j] = o * tc;
            }
        }
        (h_new, c_new, gates, tanh_c)
    }

    /// One layer's backward step, given `dh` and `dc` (the gradients of its new hidden and
    /// cell states): adds to `g`, returns the gradients of its input and of its previous
    /// hidden and cell states.
    #[inline(always)]
    #[allow(clippy::too_many_arguments, clippy::type_complexity)]
    fn cell_backward<const I: usize, const B: usize>(
        p: &CellLayer<T, I, H, GH>,
        g: &mut CellLayer<T, I, H, GH>,
        x: &SMatrix<T, I, B>,
        h: &SMatrix<T, H, B>,
        c: &SMatrix<T, H, B>,
        gates: &SMatrix<T, GH, B>,
        tanh_c: &SMatrix<T, H, B>,
        dh: &SMatrix<T, H, B>,
        dc: &SMatrix<T, H, B>,
    ) -> (SMatrix<T, I, B>, SMatrix<T, H, B>, SMatrix<T, H, B>) {
        let one = T::one();
        let mut da = SMatrix::<T, GH, B>::zeros();
        let mut dc_prev = SMatrix::<T, H, B>::zeros();
        for b in 0..B {
            let (gt, d_a) = (&gates.data.0[b], &mut da.data.0[b]);
            for j in 0..H {
                let (i, f, gg, o) = (gt[j], gt[H + j], gt[2 * H + j], gt[3 * H + j]);
                let (d, tc) = (dh.data.0[b][j], tanh_c.data.0[b][j]);
                // The new cell state's whole gradient: from later steps, and through h'.
                let dct = dc.data.0[b][j] + d * o * (one - tc * tc);
                d_a[j] = dct * gg * i * (one - i);
                d_a[H + j] = dct * c.data.0[b][j] * f * (one - f);
                d_a[2 * H + j] = dct * i * (one - gg * gg);
                d_a[3 * H + j] = d * tc * o * (one - o);
                dc_prev.data.0[b][j] = dct * f;
            }
        }
        g.accumulate(&da, &da, x, h, BIAS);
        (
            transposed_product(&p.weight_ih, &da),
            transposed_product(&p.weight_hh, &da),
            dc_prev,
        )
    }
}

impl<
    T: Real,
    const IN: usize,
    const H: usize,
    const GH: usize,
    const L: usize,
    const REST: usize,
    const BIAS: bool,
    const RELU: bool,
> Rnn<T, IN, H, GH, L, REST, BIAS, RELU>
{
    /// One time step of a batch of `B` streams (a column each): updates `state` to the new
    /// hidden states, writes into `cache` what [`step_backward`](Self::step_backward) needs,
    /// and returns the top layer's new hidden state, the step's output.
    ///
    /// Allocates nothing; its arithmetic is exactly [`step_only`](Self::step_only)'s.
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub fn step<const B: usize>(
        &self,
        x: &SMatrix<T, IN, B>,
        state: &mut HiddenState<T, H, L, B>,
        cache: &mut RnnCache<T, IN, H, GH, L, REST, B>,
    ) -> SMatrix<T, H, B> {
        let () = Self::SIZES;
        cache.x = *x;
        cache.h[0] = state.h[0];
        (state.h[0], cache.gates[0]) = Self::cell(&self.first, x, &state.h[0]);
        for (k, layer) in self.rest.iter().enumerate() {
            cache.inputs[k] = state.h[k];
            cache.h[k + 1] = state.h[k + 1];
            (state.h[k + 1], cache.gates[k + 1]) = Self::cell(layer, &state.h[k], &state.h[k + 1]);
        }
        state.h[L - 1]
    }

    /// One time step as [`step`](Self::step), keeping nothing for a backward pass: the
    /// inference path (per audio sample, say), as fast as the arithmetic allows.
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub fn step_only<const B: usize>(
        &self,
        x: &SMatrix<T, IN, B>,
        state: &mut HiddenState<T, H, L, B>,
    ) -> SMatrix<T, H, B> {
        let () = Self::SIZES;
        state.h[0] = Self::cell(&self.first, x, &state.h[0]).0;
        for (k, layer) in self.rest.iter().enumerate() {
            state.h[k + 1] = Self::cell(layer, &state.h[k], &state.h[k + 1]).0;
        }
        state.h[L - 1]
    }

    /// Backpropagation through one step, from what [`step`](Self::step) cached.
    ///
    /// `dh` is the loss's gradient with respect to the step's output. On entry `carry` holds
    /// the gradient with respect to the state this step produced (from the later steps; zero
    /// for a window's last step); on exit, the gradient with respect to the state before it.
    /// So calling this for the steps of a window in reverse is backpropagation through time,
    /// and the last carry is the gradient with respect to the window's initial state. The
    /// parameter gradients are added to `grads` (the caller zeroes them once per window).
    /// Returns the gradient with respect to the step's input `x`. Allocates nothing.
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub fn step_backward<const B: usize>(
        &self,
        cache: &RnnCache<T, IN, H, GH, L, REST, B>,
        dh: &SMatrix<T, H, B>,
        carry: &mut HiddenState<T, H, L, B>,
        grads: &mut Self,
    ) -> SMatrix<T, IN, B> {
        let () = Self::SIZES;
        let mut d = *dh;
        for k in (0..REST).rev() {
            let total = d + carry.h[k + 1];
            (d, carry.h[k + 1]) = Self::cell_backward(
                &self.rest[k],
                &mut grads.rest[k],
                &cache.inputs[k],
                &cache.h[k + 1],
                &cache.gates[k + 1],
                &total,
            );
        }
        let total = d + carry.h[0];
        let dx;
        (dx, carry.h[0]) = Self::cell_backward(
            &self.first,
            &mut grads.first,
            &cache.x,
            &cache.h[0],
            &cache.gates[0],
            &total,
        );
        dx
    }

    /// One layer's step: the new hidden state, and the same as the gates' rows (`GH = H`).
    #[inline(always)]
    fn cell<const I: usize, const B: usize>(
        p: &CellLayer<T, I, H, GH>,
        x: &SMatrix<T, I, B>,
        h: &SMatrix<T, H, B>,
    ) -> (SMatrix<T, H, B>, SMatrix<T, GH, B>) {
        let zero = T::zero();
        let mut y = p.both_sides(x, h, BIAS);
        let mut out = SMatrix::<T, H, B>::zeros();
        for (y, out) in y.data.0.iter_mut().zip(&mut out.data.0) {
            for a in y.iter_mut() {
                *a = if RELU {
                    if *a > zero { *a } else { zero }
                } else {
                    math::tanh(*a)
                };
            }
            out.copy_from_slice(&y[..H]);
        }
        (out, y)
    }

    /// One layer's backward step, given `dh` (the gradient of its new hidden state): adds to
    /// `g`, returns the gradients of its input and of its previous hidden state.
    #[inline(always)]
    fn cell_backward<const I: usize, const B: usize>(
        p: &CellLayer<T, I, H, GH>,
        g: &mut CellLayer<T, I, H, GH>,
        x: &SMatrix<T, I, B>,
        h: &SMatrix<T, H, B>,
        y: &SMatrix<T, GH, B>,
        dh: &SMatrix<T, H, B>,
    ) -> (SMatrix<T, I, B>, SMatrix<T, H, B>) {
        let (zero, one) = (T::zero(), T::one());
        let mut da = SMatrix::<T, GH, B>::zeros();
        for b in 0..B {
            for j in 0..H {
                let (y, d) = (y.data.0[b][j], dh.data.0[b][j]);
                da.data.0[b][j] = if RELU {
                    // torch's: the derivative at 0 is 0.
                    if y > zero { d } else { zero }
                } else {
                    d * (one - y * y)
                };
            }
        }
        g.accumulate(&da, &da, x, h, BIAS);
        (
            transposed_product(&p.weight_ih, &da),
            transposed_product(&p.weight_hh, &da),
        )
    }
}
