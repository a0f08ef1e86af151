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
//! # Weights compiled into the binary
//!
//! `#[weights("path.safetensors")]` on a network (or `#[weights = ".."]`), the path relative to
//! the crate's manifest directory, compiles a PyTorch `state_dict` file into the program. The
//! macro reads the file when it expands and checks every tensor against the declaration (name,
//! PyTorch's shape, dtype `F32`/`F64` as the network computes, `I64` for a batch norm's
//! `num_batches_tracked`, nothing missing and nothing extra): each mismatch is a compile error
//! on the attribute that names the tensor. The network then has `pretrained()` and
//! `fill_pretrained(&mut self)`, and, with at most 65 536 parameters, the `const PRETRAINED`,
//! decoded at compile time so the weights sit in read-only memory. None of them parses,
//! allocates or opens a file at run time: the file is embedded by `include_bytes!` (so cargo
//! rebuilds when it changes) and each tensor read from the offset the macro found. A network
//! nesting another network declared with `network!` cannot take the attribute (the macro does
//! not see the nested one's tensors): load it with `from_safetensors_bytes(include_bytes!(..))`.
//!
//! ```
//! use nn_runtime::prelude::*;
//!
//! network! {
//!     /// Linear, PReLU, Linear, with weights trained in PyTorch.
//!     #[weights("../tests/fixtures/compiled/mlp.safetensors")]
//!     pub struct Mlp { Linear(4, 8), PReLU, Linear(8, 3) }
//! }
//!
//! static NET: Mlp = Mlp::PRETRAINED; // in read-only memory
//! let y = NET.forward(&SVector::from([0.5, -1.0, 0.25, 2.0]));
//! assert_eq!(Mlp::pretrained(), NET);
//! assert!(y.iter().all(|v| v.is_finite()));
//! ```
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
//! 6. optimizers, [`optim`], gradient clipping, [`clip`], and learning-rate schedules,
//!    [`lr_scheduler`];
//! 7. weights, [`weights`], and datasets, `data` (with `std`).
//!
//! # Without the standard library
//!
//! The default feature `std` can be turned off (`default-features = false`): the crate is
//! then `#![no_std]` and uses no `alloc` either, for microcontrollers and other targets
//! without a heap. Networks, `forward`, `forward_batch`, `gradients`, `train_step`, every
//! loss and optimizer, and sequence stepping (`step`, `step_batch`, `process_block`) work
//! the same, bit for bit (the scalar math is `libm`'s or the runtime's own in both builds,
//! and the processor's features are detected by the same code). What needs a heap or files
//! needs `std`:
//!
//! - `boxed_zeros`, `boxed_seeded` and `heap::boxed_zeroed` (a network on the heap);
//! - `train_sequence` and `sequence_gradients` (backpropagation through time keeps every
//!   step of an unbounded window);
//! - the optimizers' lazily allocated state: without `std`, an optimizer that keeps state
//!   (Adam, AdamW, RmsProp, Sgd with momentum) is given its space, a buffer of
//!   `STATE_PER_PARAM * PARAMS` scalars, with `with_state` (see [`optim`]);
//! - weight files (`load_safetensors`, `save_safetensors`), `to_safetensors_bytes` and the
//!   boxed loaders, and the data helpers, `data`. Weights load from bytes without `std`
//!   (`from_safetensors_bytes`, `fill_from_safetensors_bytes`: the runtime's own reader needs
//!   no allocator) and are written into a caller's buffer with `write_safetensors_into`.
//!
//! Without `std` the training step builds the gradient struct on the stack, where with `std`
//! it reuses a heap buffer: fine for the small networks of embedded users, but a network of
//! millions of parameters needs `std` (or a large stack).
#![cfg_attr(not(feature = "std"), no_std)]
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

pub mod clip;
pub mod lr_scheduler;

#[cfg(feature = "std")]
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
pub use tensors::{FlatTensors, Tensors};

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
    pub use crate::__if_std as if_std;
    pub use crate::__nested_impl as nested_impl;
    pub use crate::__network_consts as network_consts;
    pub use crate::__zeros as zeros;
    #[cfg(feature = "std")]
    pub use crate::heap::boxed_zeroed;
    pub use crate::heap::{Scratch, Tape, Zeroable, assert_zeroable, zero_in_place, zeroed};
    pub use crate::init::Init;
    pub use crate::layer::Linear;
    pub use crate::layer::compiled;
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
    #[cfg(feature = "std")]
    pub use crate::net::boxed_seeded;
    pub use crate::net::{Frozen, Nested, Network, skip_tensors};
    pub use crate::optim::{Optimizer, optimizer_step};
    pub use crate::real::{Real, math};
    pub use crate::simd::{Kernels, has_avx2_fma, simd};
    pub use crate::tensors::{
        CountVisitor, CountVisitorMut, FlatTensors, Tensors, Visitor, VisitorMut, with_prefix,
    };
    pub use const_format::concatcp;
    pub use core::{concat, stringify};
    pub use nalgebra::{SMatrix, SVector};
}
