//! Runtime of the `network!` compiler.
//!
//! The [`network!`] macro turns a PyTorch-style layer list into a concrete struct whose forward
//! and backward passes are straight-line code. Everything that is not specific to one network
//! lives here: the [`Real`] scalar trait, the [`Linear`] parameter block, [losses](loss),
//! [optimizers](optim), seeded [initialisers](init) and the kernels generated code calls.
//!
//! ```
//! use nn_runtime::prelude::*;
//!
//! network! {
//!     /// The classic XOR network.
//!     pub struct Xor { Linear(2, 8), ReLU, Linear(8, 1) }
//! }
//!
//! let mut net = Xor::seeded(1);
//! let xs = SMatrix::<f32, 2, 4>::from_columns(&[
//!     SVector::from([0.0, 0.0]),
//!     SVector::from([0.0, 1.0]),
//!     SVector::from([1.0, 0.0]),
//!     SVector::from([1.0, 1.0]),
//! ]);
//! let ys = SMatrix::<f32, 1, 4>::from_row_slice(&[0.0, 1.0, 1.0, 0.0]);
//! let mut opt = Adam::new(0.01);
//! let first = net.train_step(&xs, &ys, &Mse, &mut opt);
//! for _ in 0..1000 {
//!     net.train_step(&xs, &ys, &Mse, &mut opt);
//! }
//! let (last, _grads) = net.gradients(&xs, &ys, &Mse);
//! assert!(last < first);
//! ```
//!
//! # Activations
//!
//! PyTorch's activations are layers under torch's names (`GELU`, `SiLU`, `ELU(alpha = 0.5)`,
//! `PReLU`, `Softmax(dim = 1)`, ...), and any elementwise function written as a closure is one
//! too: the macro derives its derivative. A named activation is defined at the top of a
//! `network!` and used by name by every network declared in it (the README's example):
//!
//! ```
//! use nn_runtime::prelude::*;
//!
//! network! {
//!     /// Swish with a slope: `x * sigmoid(beta * x)`.
//!     activation Swish(beta = 1.0) = |x| x * sigmoid(beta * x);
//!
//!     /// A small controller.
//!     pub struct Controller {
//!         Linear(4, 16),
//!         Swish(beta = 2.0),
//!         Linear(16, 16),
//!         |x| if x > 0.0 { x } else { 0.1 * exp_m1(x) },
//!         Linear(16, 2),
//!         Tanh,
//!     }
//!
//!     /// Another network of the same invocation, with Swish's default slope.
//!     pub struct Smaller { Linear(4, 8), Swish, Linear(8, 2) }
//! }
//!
//! let mut net = Controller::seeded(3);
//! let xs = SMatrix::<f32, 4, 8>::from_fn(|r, c| ((r * 5 + c) as f32 * 0.7).sin());
//! let ys = SMatrix::<f32, 2, 8>::from_fn(|r, c| ((r + 2 * c) as f32 * 0.3).cos() * 0.5);
//! let mut opt = Adam::new(0.01);
//! let first = net.train_step(&xs, &ys, &Mse, &mut opt);
//! for _ in 0..200 {
//!     net.train_step(&xs, &ys, &Mse, &mut opt);
//! }
//! assert!(net.gradients(&xs, &ys, &Mse).0 < first);
//! let _ = Smaller::seeded(0).forward(&SVector::from([0.0, 1.0, 2.0, 3.0]));
//! ```
//!
//! The generated docs of each network show its forward equations and the backward equations
//! the macro derived for it.
//!
//! # Floors
//!
//! The modules are built in floors, each using only itself and the floors below it (the test
//! `tests/floors.rs` holds them to it), so that each can be read, and changed, knowing only
//! what is under it:
//!
//! 1. `simd`, the SIMD kernels and the one check of the processor's features;
//! 2. scalar math, [`real`];
//! 3. the `Linear`, `PRelu`, recurrent (`Gru`, `Lstm`, `Rnn`), causal convolution
//!    (`CausalConv1d`), shaped convolution (`Conv2d`, `Conv1d`), batch-norm (`BatchNorm`) and
//!    layer-norm (`LayerNorm`) blocks and their operations, dropout's kernels and `DropoutKey`,
//!    and the pools, [`layer`], with [`init`], [`heap`], [`tensors`];
//! 4. what every generated network is, [`net`];
//! 5. losses, [`loss`];
//! 6. optimizers, [`optim`];
//! 7. weight files and datasets, [`weights`] and [`data`].
#![warn(missing_docs)]
#![warn(clippy::undocumented_unsafe_blocks, clippy::missing_safety_doc)]

mod simd;

pub mod real;

pub mod layer;
#[doc(inline)]
pub use layer::{heap, init, tensors};

pub mod net;

pub mod loss;

pub mod optim;

pub mod data;
pub mod weights;

pub use layer::Linear;
pub use layer::conv::{CausalConv1d, ConvState};
pub use layer::conv2d::{Conv1d, Conv2d};
pub use layer::dropout::DropoutKey;
pub use layer::norm::LayerNorm;
pub use layer::norm_batch::{BatchNorm, BnStats};
pub use layer::prelu::PRelu;
pub use layer::recurrent::{CellLayer, Gru, HiddenState, Lstm, LstmState, Rnn};
pub use loss::{BceWithLogits, CrossEntropy, Hinge, Loss, Mse, one_hot};
pub use nalgebra;
pub use net::{LayerRef, Network, UnknownLayer};
pub use nn_macros::network;
pub use optim::{Adam, AdamW, Optimizer, RmsProp, Sgd};
pub use real::Real;
pub use tensors::Tensors;

/// Everything a user of `network!` needs in scope: the macro, nalgebra's static aliases, losses,
/// optimizers and traits.
pub mod prelude {
    pub use crate::layer::Linear;
    pub use crate::loss::{BceWithLogits, CrossEntropy, Hinge, Loss, Mse, one_hot};
    pub use crate::net::{LayerRef, Network, UnknownLayer};
    pub use crate::optim::{Adam, AdamW, Optimizer, RmsProp, Sgd};
    pub use crate::real::Real;
    pub use crate::weights::SafeTensorsExt;
    pub use nalgebra::{SMatrix, SVector};
    pub use nn_macros::network;
}

/// Items the generated code refers to by absolute path. Not a stable API.
#[doc(hidden)]
pub mod __private {
    pub use crate::__constructors as constructors;
    pub use crate::__freeze_methods as freeze_methods;
    pub use crate::__nested_impl as nested_impl;
    pub use crate::__network_consts as network_consts;
    pub use crate::__zeros as zeros;
    pub use crate::heap::{
        Scratch, Tape, Zeroable, assert_zeroable, boxed_zeroed, zero_in_place, zeroed,
    };
    pub use crate::init::Init;
    pub use crate::layer::Linear;
    pub use crate::layer::conv::{CausalConv1d, ConvCache, ConvState};
    pub use crate::layer::conv2d::{Conv1d, Conv2d};
    pub use crate::layer::dropout::{DropoutKey, dropout, dropout_backward};
    pub use crate::layer::norm::LayerNorm;
    pub use crate::layer::norm_batch::{BatchNorm, BnStats};
    pub use crate::layer::ops::*;
    pub use crate::layer::pool::*;
    pub use crate::layer::prelu::PRelu;
    pub use crate::layer::recurrent::{
        CellLayer, Gru, GruCache, HiddenState, Lstm, LstmCache, LstmState, Rnn, RnnCache,
    };
    pub use crate::layer::softmax::*;
    pub use crate::loss::Loss;
    pub use crate::net::{Frozen, Nested, Network, boxed_seeded, skip_tensors};
    pub use crate::optim::{Optimizer, optimizer_step};
    pub use crate::real::{Real, math};
    pub use crate::simd::{Kernels, has_avx2_fma, simd};
    pub use crate::tensors::{CountVisitor, CountVisitorMut, Tensors, Visitor, VisitorMut};
    pub use const_format::concatcp;
    pub use core::{concat, stringify};
    pub use nalgebra::{SMatrix, SVector};
}
