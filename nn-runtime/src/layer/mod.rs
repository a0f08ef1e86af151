//! The layer floor: the parameter block of a fully connected layer and what works on it.
//!
//! Above the kernels and the scalar math, below losses, optimizers and networks: the
//! [`Linear`] block itself, the operations generated code runs on it (forward, backward, fused
//! SGD step; with the elementwise kernels of activations, private to the crate, exported to
//! generated code only), its seeded
//! [initialisation](init), the heap helpers that build large blocks in place ([`heap`]), and
//! the names of its tensors ([`tensors`]). Beside it, the slopes of a PReLU layer
//! ([`prelu`], the block [`PRelu`](prelu::PRelu)), the per-sample kernels of the softmax
//! layers (private to the crate, exported to generated code only), and the recurrent layers
//! ([`recurrent`]: [`Gru`](recurrent::Gru), [`Lstm`](recurrent::Lstm), [`Rnn`](recurrent::Rnn),
//! their states and their time steps forward and backward), and the causal convolution of
//! sequence networks ([`conv`]: [`CausalConv1d`](conv::CausalConv1d), its ring-buffer state
//! and its time steps), and the shaped convolutions of feature maps ([`conv2d`]:
//! [`Conv2d`](conv2d::Conv2d), [`Conv1d`](conv2d::Conv1d), forward and backward by im2col) and the pools that go with them ([`pool`]: max, average and
//! global average, 2-D and 1-D, free functions), and batch normalisation ([`norm_batch`]:
//! [`BatchNorm`](norm_batch::BatchNorm), its running statistics, its training and inference
//! passes), and dropout's counter-based masks ([`dropout`]: the kernels and the step counter
//! [`DropoutKey`](dropout::DropoutKey)),
//! and layer normalisation over each sample's last axis ([`norm`]: [`LayerNorm`](norm::LayerNorm), its parameters and both passes).

pub mod compiled;
pub mod conv;
pub mod conv2d;
pub mod dropout;
pub mod heap;
pub mod init;
pub mod norm;
pub mod norm_batch;
pub(crate) mod ops;
pub mod pool;
pub mod prelu;
pub mod recurrent;
pub(crate) mod softmax;
pub mod tensors;

use crate::real::Real;
use heap::Zeroable;
use init::Init;
use nalgebra::{SMatrix, SVector};

/// The weight and bias of one `Linear(IN, OUT)` layer, stored as PyTorch stores them.
///
/// Generated networks hold one `Linear` per `Linear` layer; their gradient structs hold another
/// with the same shapes, whose fields are then the gradients of the loss with respect to them.
///
/// The weight starts on a cache line (`align(64)`, weight first). The kernels load and store
/// its columns as 8-float vectors; where `OUT` is a multiple of 8 none of them straddles two
/// lines. Were the weight placed anywhere a multiple of 4 bytes, as its `f32`s alone would
/// allow, a network on the stack would straddle lines with half of those vectors in some runs
/// of a program and none in others: measured, the online workload's step took 175 ns or
/// 195-215 ns depending on where the stack happened to start.
#[derive(Clone, Debug, PartialEq)]
#[repr(C, align(64))]
pub struct Linear<T: Real, const IN: usize, const OUT: usize> {
    /// The weight, `OUT x IN` (out features by in features, as `nn.Linear.weight`).
    pub weight: SMatrix<T, OUT, IN>,
    /// The bias, one entry per output feature (as `nn.Linear.bias`).
    pub bias: SVector<T, OUT>,
}

impl<T: Real, const IN: usize, const OUT: usize> Linear<T, IN, OUT> {
    /// Number of scalars in the weight and bias together.
    pub const PARAMS: usize = OUT * IN + OUT;

    /// A layer whose weight and bias are all zero.
    pub fn zeros() -> Self {
        Self {
            weight: SMatrix::zeros(),
            bias: SVector::zeros(),
        }
    }

    /// PyTorch's default `nn.Linear` initialisation: weight and bias uniform in
    /// `+-1/sqrt(IN)`, drawn from `init` (weight in row-major order, then bias).
    pub fn seeded(init: &mut Init) -> Self {
        let mut layer = Self::zeros();
        layer.reset(init);
        layer
    }

    /// Re-initialises this layer in place, exactly as [`seeded`](Self::seeded) would, without
    /// a temporary: a large layer on the heap never passes through the stack.
    pub fn reset(&mut self, init: &mut Init) {
        let bound = Init::linear_bound(IN);
        for r in 0..OUT {
            for c in 0..IN {
                self.weight[(r, c)] = init.uniform(bound);
            }
        }
        for r in 0..OUT {
            self.bias[r] = init.uniform(bound);
        }
    }
}

// SAFETY: a `Linear` of `f32` or `f64` is floats and padding (after the bias, from
// `align(64)`): all-zero bytes are 0.0 in every float, and padding may hold any bytes.
unsafe impl<const IN: usize, const OUT: usize> Zeroable for Linear<f32, IN, OUT> {}
// SAFETY: as above.
unsafe impl<const IN: usize, const OUT: usize> Zeroable for Linear<f64, IN, OUT> {}

impl<T: Real, const IN: usize, const OUT: usize> Default for Linear<T, IN, OUT> {
    fn default() -> Self {
        Self::zeros()
    }
}

impl<T: Real, const IN: usize, const OUT: usize> Linear<T, IN, OUT> {
    /// Puts the weight and the bias into `params[*at..]`, each beside its gradient (from
    /// `gradients`) in `grads[*at..]`, advancing `at`: the flat view an optimizer works on, as
    /// the generated `Network::tensors` assembles it layer by layer.
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
        params[*at + 1] = self.bias.as_mut_slice();
        grads[*at + 1] = gradients.bias.as_slice();
        *at += 2;
    }
}
