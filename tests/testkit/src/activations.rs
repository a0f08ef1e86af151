//! What the activation tests share (`tests/activations_torch.rs`, `tests/activations_fd.rs`):
//! the probe that measures an activation through a whole network, and the reader of the
//! PyTorch fixture `tests/fixtures/activations/activations.json` written by
//! `scripts/torch_activations.py`.
//!
//! # The probe
//!
//! An activation `ACT` is measured in the network `{ Linear(8, 8), ACT }` with a batch of
//! [`N`] = 8 samples: `l0.weight = X` (the 8 x 8 matrix of pre-activation values, one column
//! per sample), `l0.bias = 0`, and the 8 x 8 identity as input. The activation's input is then
//! exactly `X` (`X I + 0` rounds nowhere), so `forward_batch` returns `ACT(X)`. Under the loss
//! [`Probe`], `L = sum(dY * Y)` with `dY` passed as the target, the gradient reaching the
//! activation's output is `dY`, and `grads.l0.weight = dL/dX I^T` is, element by element,
//! the activation's vector-Jacobian product `dX` (exact again: one product by 1 and zeros).
//! A PReLU's slopes are the second layer's `weight` (`l1.weight`), their gradient
//! `grads.l1.weight`.

use crate::fixtures::{list, load, number};
use nn_runtime::prelude::*;
use serde_json::Value;

/// Features and samples of the probe: `X` is `N x N`.
pub const N: usize = 8;

/// An `N x N` matrix: features by samples.
pub type Square<T> = SMatrix<T, N, N>;

/// A vector of `N` features (a bias).
pub type Column<T> = SVector<T, N>;

/// The loss `L = sum(target * output)` (every element, no mean), whose gradient with respect to
/// the output is `target` itself: passing an upstream gradient `dY` as the target makes the
/// backward pass start from `dY`, so the gradients it returns are vector-Jacobian products
/// with `dY`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Probe;

impl<T: Real> Loss<T> for Probe {
    fn value_and_grad<const R: usize, const B: usize>(
        &self,
        output: &SMatrix<T, R, B>,
        target: &SMatrix<T, R, B>,
    ) -> (T, SMatrix<T, R, B>) {
        (output.dot(target), *target)
    }
}

/// What the probe reads from one backward pass.
#[derive(Clone, Debug)]
pub struct Vjp<T: Real> {
    /// The loss [`Probe`] returned, `sum(dY * Y)`.
    pub loss: T,
    /// `grads.l0.weight`: `dX`.
    pub dx: Square<T>,
    /// `grads.l0.bias`: the row sums of `dX`.
    pub dbias: Column<T>,
    /// `grads.l1.weight` of a PReLU, in order; empty for an activation without parameters.
    pub dslopes: Vec<T>,
}

/// A network `{ Linear(8, 8), ACT }` as the probe uses it. Implement it with
/// [`activation_net!`](crate::activation_net).
pub trait ActivationNet: Clone {
    /// The network's scalar type.
    type T: Real;
    /// `Self::zeros()`.
    fn zeros() -> Self;
    /// `Self::seeded(seed)`: PyTorch's init, for checking a PReLU's initial slopes.
    fn seeded(seed: u64) -> Self;
    /// `l0.weight`, where `X` goes.
    fn input_weight(&mut self) -> &mut Square<Self::T>;
    /// `l0.bias`, zero for the probe.
    fn input_bias(&mut self) -> &mut Column<Self::T>;
    /// A PReLU's slopes `l1.weight`; empty for an activation without parameters.
    fn slopes(&mut self) -> &mut [Self::T];
    /// `forward_batch` of the identity: `ACT(X)`.
    fn output(&self) -> Square<Self::T>;
    /// `gradients` of the identity under [`Probe`] with target `dy`.
    fn vjp(&self, dy: &Square<Self::T>) -> Vjp<Self::T>;

    /// The probe for `x`: zeros, `l0.weight = x`, and the slopes `slopes` if given (their count
    /// must be the network's).
    fn probe(x: &Square<Self::T>, slopes: Option<&[Self::T]>) -> Self {
        let mut net = Self::zeros();
        *net.input_weight() = *x;
        *net.input_bias() = Column::zeros();
        if let Some(slopes) = slopes {
            let ours = net.slopes();
            assert_eq!(ours.len(), slopes.len(), "number of PReLU slopes");
            ours.copy_from_slice(slopes);
        }
        net
    }
}

/// Implements [`ActivationNet`] for a network `{ Linear(8, 8), ACT }` declared with
/// `network!`: `activation_net!(Name: f32)`, or `activation_net!(Name: f64, l1)` when the
/// activation has parameters in the field `l1` (a PReLU's slopes, `l1.weight`).
#[macro_export]
macro_rules! activation_net {
    ($net:ident : $t:ident $(, $field:ident)?) => {
        impl $crate::activations::ActivationNet for $net {
            type T = $t;
            fn zeros() -> Self {
                $net::zeros()
            }
            fn seeded(seed: u64) -> Self {
                $net::seeded(seed)
            }
            fn input_weight(&mut self) -> &mut $crate::activations::Square<$t> {
                &mut self.l0.weight
            }
            fn input_bias(&mut self) -> &mut $crate::activations::Column<$t> {
                &mut self.l0.bias
            }
            fn slopes(&mut self) -> &mut [$t] {
                let slopes: ::core::option::Option<&mut [$t]> =
                    ::core::option::Option::None $(.or(::core::option::Option::Some(self.$field.weight.as_mut_slice())))?;
                slopes.unwrap_or(&mut [])
            }
            fn output(&self) -> $crate::activations::Square<$t> {
                self.forward_batch(&$crate::activations::Square::<$t>::identity())
            }
            fn vjp(
                &self,
                dy: &$crate::activations::Square<$t>,
            ) -> $crate::activations::Vjp<$t> {
                let identity = $crate::activations::Square::<$t>::identity();
                let (loss, grads) = self.gradients(&identity, dy, &$crate::activations::Probe);
                #[allow(unused_mut)]
                let mut dslopes = ::std::vec::Vec::new();
                $(dslopes.extend_from_slice(grads.$field.weight.as_slice());)?
                $crate::activations::Vjp {
                    loss,
                    dx: grads.l0.weight,
                    dbias: grads.l0.bias,
                    dslopes,
                }
            }
        }
    };
}

/// `layer` without whitespace, so that a fixture's `"ELU(alpha = 0.5)"` and
/// `stringify!(ELU(alpha = 0.5))` (which spaces tokens its own way) compare equal.
pub fn squash(layer: &str) -> String {
    layer.split_whitespace().collect()
}

/// The PyTorch fixture, as written by `scripts/torch_activations.py`.
#[derive(Clone, Debug)]
pub struct Fixture {
    /// `torch.__version__` of the run.
    pub torch_version: String,
    /// The script's command line.
    pub command: String,
    /// One entry per (configuration, dtype).
    pub cases: Vec<Case>,
}

/// One case of the fixture: a configuration in one dtype. Matrices are `N * N` numbers in
/// nalgebra's column-major order (entry `i` is feature `i % N` of sample `i / N`), kept as the
/// `f64` the JSON holds; [`Case::matrix`] reads them as `T`.
#[derive(Clone, Debug)]
pub struct Case {
    /// The layer as `network!` spells it, e.g. `ELU(alpha = 0.5)`.
    pub layer: String,
    /// The torch module, e.g. `nn.ELU(alpha=0.5)`.
    pub torch: String,
    /// `"float32"` or `"float64"`.
    pub dtype: String,
    /// The activation's input `X`.
    pub x: Vec<f64>,
    /// The upstream gradient `dY`.
    pub dy: Vec<f64>,
    /// torch's `Y = ACT(X)`.
    pub y: Vec<f64>,
    /// torch's `dX` (autograd's `y.backward(dy)`).
    pub dx: Vec<f64>,
    /// A PReLU's slopes, if the case has any.
    pub prelu: Option<PreluCase>,
}

/// A PReLU case's slopes.
#[derive(Clone, Debug)]
pub struct PreluCase {
    /// The slopes torch's constructor gives.
    pub init_weight: Vec<f64>,
    /// The slopes `y` and `dx` were computed with.
    pub weight: Vec<f64>,
    /// torch's gradient of those slopes.
    pub dweight: Vec<f64>,
}

impl Case {
    /// `"ELU(alpha = 0.5) [float32]"`, for messages.
    pub fn name(&self) -> String {
        format!("{} [{}]", self.layer, self.dtype)
    }

    /// A flat column-major list of this case (`x`, `dy`, ...) as a matrix of `T` (each value is
    /// exactly a value of the case's dtype, so the cast is exact for the right `T`).
    pub fn matrix<T: Real>(values: &[f64]) -> Square<T> {
        assert_eq!(values.len(), N * N, "a matrix has {} numbers", N * N);
        Square::from_iterator(values.iter().map(|&v| T::cast(v)))
    }
}

/// `(feature, sample)` of entry `i` of a column-major list.
pub fn position(i: usize) -> (usize, usize) {
    (i % N, i / N)
}

fn numbers(value: &Value, what: &str, len: Option<usize>) -> Vec<f64> {
    let items = match len {
        Some(len) => list(value, what, len),
        None => value
            .as_array()
            .unwrap_or_else(|| panic!("{what}: expected a list, got {value}")),
    };
    items.iter().map(|v| number(v, what)).collect()
}

fn string(value: &Value, what: &str) -> String {
    value
        .as_str()
        .unwrap_or_else(|| panic!("{what}: {value} is not a string"))
        .to_string()
}

/// Reads `tests/fixtures/activations/activations.json`. Panics, naming the case and the field,
/// on anything missing or misshapen, so a damaged fixture fails instead of testing less.
pub fn load_fixture() -> Fixture {
    let record = load("activations", "activations");
    assert_eq!(record["rows"], N, "fixture rows");
    assert_eq!(record["batch"], N, "fixture batch");
    let cases = record["cases"]
        .as_array()
        .expect("the fixture has a list of cases")
        .iter()
        .map(|c| {
            let layer = string(&c["layer"], "layer");
            let field = |key: &str| {
                let what = format!("{layer} [{}] {key}", c["dtype"]);
                numbers(&c[key], &what, Some(N * N))
            };
            let prelu = c.get("weight").map(|_| {
                let what = |key: &str| format!("{layer} [{}] {key}", c["dtype"]);
                let weight = numbers(&c["weight"], &what("weight"), None);
                let len = Some(weight.len());
                PreluCase {
                    init_weight: numbers(&c["init_weight"], &what("init_weight"), len),
                    dweight: numbers(&c["dweight"], &what("dweight"), len),
                    weight,
                }
            });
            Case {
                torch: string(&c["torch"], "torch"),
                dtype: string(&c["dtype"], "dtype"),
                x: field("x"),
                dy: field("dy"),
                y: field("y"),
                dx: field("dx"),
                prelu,
                layer,
            }
        })
        .collect();
    Fixture {
        torch_version: string(&record["torch_version"], "torch_version"),
        command: string(&record["command"], "command"),
        cases,
    }
}
