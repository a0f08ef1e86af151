//! Gradient clipping, as `torch.nn.utils.clip_grad_norm_` and `clip_grad_value_`.
//!
//! The functions work in place on anything whose tensors [`FlatTensors`] lists: a network's
//! gradient struct (`NameGrads`, from `gradients` or `gradients_into`), or a single parameter
//! block. They allocate nothing and never panic. To clip inside `train_step` (and
//! `train_sequence`), wrap the optimizer in [`Clipped`]: the gradients are then clipped after
//! the backward pass and before any update.
//!
//! ```
//! use nn_runtime::clip::{NormType, clip_grad_norm, clip_grad_norm_with, clip_grad_value};
//! use nn_runtime::prelude::*;
//!
//! network! {
//!     /// A small network.
//!     pub struct Net { Linear(2, 4), Tanh, Linear(4, 1) }
//! }
//!
//! let net = Net::seeded(0);
//! let xs = SMatrix::<f32, 2, 3>::from_fn(|r, c| (r + 2 * c) as f32);
//! let ys = SMatrix::<f32, 1, 3>::from_element(10.0);
//! let (_, mut grads) = net.gradients(&xs, &ys, &Mse);
//! let norm = clip_grad_norm(&mut grads, 0.5); // the norm before clipping
//! assert!(norm > 0.5);
//! let after = clip_grad_norm_with(&mut grads, f32::INFINITY, NormType::L2);
//! assert!((after - 0.5).abs() < 1e-5);
//! clip_grad_value(&mut grads, 0.1);
//! assert!(clip_grad_norm_with(&mut grads, 1.0, NormType::Inf) <= 0.1);
//! ```
//!
//! A loop written out as torch's (`backward`, clip, `step`) hands the clipped gradients to the
//! optimizer through the flat view [`Network::tensors`](crate::Network::tensors), in arrays
//! of the network's `TENSORS` (a constant, so nothing is allocated):
//!
//! ```
//! use nn_runtime::clip::clip_grad_norm;
//! use nn_runtime::prelude::*;
//!
//! network! {
//!     /// A small network.
//!     pub struct Net { Linear(2, 4), Tanh, Linear(4, 1) }
//! }
//!
//! let mut net = Net::seeded(0);
//! let mut opt = Adam::new(0.01);
//! let mut grads = Net::zero_grads();
//! let xs = SMatrix::<f32, 2, 3>::from_fn(|r, c| (r + 2 * c) as f32);
//! let ys = SMatrix::<f32, 1, 3>::from_element(10.0);
//! for _ in 0..3 {
//!     net.gradients_into(&xs, &ys, &Mse, &mut grads);
//!     clip_grad_norm(&mut grads, 1.0);
//!     const TENSORS: usize = <Net as Network>::TENSORS;
//!     let mut params: [&mut [f32]; TENSORS] = core::array::from_fn(|_| Default::default());
//!     let mut slices: [&[f32]; TENSORS] = [&[]; TENSORS];
//!     net.tensors(&grads, &mut params, &mut slices, &mut 0);
//!     opt.step(&mut params, &slices);
//! }
//! ```

use crate::optim::Optimizer;
use crate::real::Real;
use crate::tensors::FlatTensors;

/// Which norm [`clip_grad_norm_with`] measures: torch's `norm_type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum NormType {
    /// The Euclidean norm, torch's default `norm_type=2.0`.
    #[default]
    L2,
    /// The largest magnitude, `norm_type=float('inf')`.
    Inf,
}

/// `torch.nn.utils.clip_grad_norm_(parameters, max_norm)`: scales every gradient by
/// `min(1, max_norm / (total_norm + 1e-6))`, where `total_norm` is the L2 norm of all the
/// gradients taken together; returns `total_norm`, measured before clipping.
///
/// See [`clip_grad_norm_with`] for the order of operations and the infinity norm.
pub fn clip_grad_norm<T: Real, G: FlatTensors<Scalar = T>>(grads: &mut G, max_norm: T) -> T {
    clip_grad_norm_with(grads, max_norm, NormType::L2)
}

/// `torch.nn.utils.clip_grad_norm_(parameters, max_norm, norm_type)` with the L2 or the
/// infinity norm; returns the total norm before clipping.
///
/// As torch 2.x computes it (`_get_total_norm`, `_clip_grads_with_norm_`):
///
/// ```text
/// n_i        = ||g_i||                 each tensor's norm, rounded to T
/// total_norm = ||(n_1, n_2, ...)||     the norm of those norms, rounded to T
/// clip_coef  = (1 / (total_norm + 1e-6)) * max_norm      in T (torch's `max_norm / tensor`)
/// g_i        = g_i * min(clip_coef, 1)                   every element, even when the min is 1
/// ```
///
/// The L2 sums of squares run in `f64` and round once (torch's `f32` kernels sum in several
/// `f32` lanes, so torch and we agree within a few units in the last place, not always
/// exactly). Like torch with `error_if_nonfinite=False`, a NaN or infinite norm is returned
/// and applied as it is (an infinite norm scales every gradient to zero, NaN makes them all
/// NaN), and a negative `max_norm` is not refused. Allocates nothing.
pub fn clip_grad_norm_with<T: Real, G: FlatTensors<Scalar = T>>(
    grads: &mut G,
    max_norm: T,
    norm_type: NormType,
) -> T {
    let total = total_norm(grads, norm_type);
    let one = T::one();
    let coef = one / (total + T::cast(1e-6)) * max_norm;
    // torch.clamp(max=1.0) keeps a NaN; `min` would drop it.
    let coef = if coef > one { one } else { coef };
    grads.for_each_tensor_mut(&mut |tensor| {
        for g in tensor {
            *g *= coef;
        }
    });
    total
}

/// The total norm of every tensor of `grads`, as [`clip_grad_norm_with`] measures it, without
/// clipping (torch's `torch.nn.utils.get_total_norm`).
pub fn total_norm<T: Real, G: FlatTensors<Scalar = T>>(grads: &mut G, norm_type: NormType) -> T {
    match norm_type {
        NormType::L2 => {
            let mut squares = 0.0f64;
            grads.for_each_tensor_mut(&mut |tensor| {
                let norm = T::cast(libm::sqrt(sum_of_squares(tensor)));
                squares += norm.widen() * norm.widen();
            });
            T::cast(libm::sqrt(squares))
        }
        NormType::Inf => {
            let mut largest = T::zero();
            grads.for_each_tensor_mut(&mut |tensor| {
                for &g in tensor.iter() {
                    largest = nan_max(largest, g.abs());
                }
            });
            largest
        }
    }
}

/// `sum(x^2)` in `f64`.
fn sum_of_squares<T: Real>(tensor: &[T]) -> f64 {
    tensor.iter().map(|&x| x.widen() * x.widen()).sum()
}

/// The larger of `a` and `b`, or NaN if either is, as torch's `max` reduction propagates NaN.
fn nan_max<T: Real>(a: T, b: T) -> T {
    // `b` is NaN exactly when it is unordered with itself; a NaN `a` stays (`b > a` fails).
    if b.partial_cmp(&b).is_none() || b > a {
        b
    } else {
        a
    }
}

/// `torch.nn.utils.clip_grad_value_(parameters, clip_value)`: clamps every gradient element
/// to `[-clip_value, clip_value]`, in place.
///
/// As torch's `clamp_min_` then `clamp_max_`: a NaN element stays NaN, and a negative
/// `clip_value` (not refused, as torch does not) sets every element to `clip_value`.
/// Allocates nothing.
pub fn clip_grad_value<T: Real, G: FlatTensors<Scalar = T>>(grads: &mut G, clip_value: T) {
    let low = -clip_value;
    grads.for_each_tensor_mut(&mut |tensor| {
        for g in tensor {
            let raised = if *g < low { low } else { *g };
            *g = if raised > clip_value {
                clip_value
            } else {
                raised
            };
        }
    });
}

/// A clipping rule, for [`Clipped`]: what [`clip_grad_norm_with`] or [`clip_grad_value`] does.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Clip<T> {
    /// [`clip_grad_norm_with`]`(grads, max_norm, norm_type)`.
    Norm {
        /// Torch's `max_norm`.
        max_norm: T,
        /// Torch's `norm_type`.
        norm_type: NormType,
    },
    /// [`clip_grad_value`]`(grads, clip_value)`.
    Value(T),
}

impl<T: Real> Clip<T> {
    /// Applies the rule to `grads`; returns the total norm before clipping for
    /// [`Clip::Norm`], `None` for [`Clip::Value`].
    pub fn apply<G: FlatTensors<Scalar = T>>(self, grads: &mut G) -> Option<T> {
        match self {
            Clip::Norm {
                max_norm,
                norm_type,
            } => Some(clip_grad_norm_with(grads, max_norm, norm_type)),
            Clip::Value(clip_value) => {
                clip_grad_value(grads, clip_value);
                None
            }
        }
    }
}

/// An optimizer whose `train_step` (and `train_sequence`) clips the gradients first: torch's
/// `loss.backward(); clip_grad_norm_(model.parameters(), max_norm); optimizer.step()` as one
/// `net.train_step(&xs, &ys, &loss, &mut Clipped::norm(Adam::new(1e-3), max_norm))`.
///
/// The network's training step asks every optimizer for its [`Optimizer::gradient_clip`];
/// this one answers with its rule, and the step clips the whole gradient struct after the
/// backward pass, before the update. It never offers the fused SGD path
/// ([`Optimizer::plain_sgd_rate`] is `None`), which would update each layer before the
/// gradients of the layers below, and so the total norm, are known. Its learning rate is the
/// wrapped optimizer's, so a [scheduler](crate::lr_scheduler) drives it as it would the
/// optimizer itself.
///
/// ```
/// use nn_runtime::clip::Clipped;
/// use nn_runtime::prelude::*;
///
/// network! {
///     /// A small network.
///     pub struct Net { Linear(2, 4), Tanh, Linear(4, 1) }
/// }
///
/// let mut net = Net::seeded(0);
/// let xs = SMatrix::<f32, 2, 3>::from_fn(|r, c| (r + 2 * c) as f32);
/// let ys = SMatrix::<f32, 1, 3>::from_element(10.0);
/// // Plain SGD with rate 1 and every gradient clipped to [-0.01, 0.01]: no parameter moves
/// // by more than 0.01.
/// let mut opt = Clipped::value(Sgd::new(1.0), 0.01);
/// let before = net.clone();
/// net.train_step(&xs, &ys, &Mse, &mut opt);
/// assert!((net.l0.weight - before.l0.weight).amax() <= 0.01 + 1e-7);
/// ```
#[derive(Clone, Debug)]
pub struct Clipped<O, T> {
    /// The optimizer that applies the clipped gradients.
    pub optimizer: O,
    /// The rule applied before each of its steps.
    pub clip: Clip<T>,
}

impl<O: Optimizer<T>, T: Real> Clipped<O, T> {
    /// `optimizer` with the gradients clipped by `clip` before each step.
    pub fn new(optimizer: O, clip: Clip<T>) -> Self {
        Self { optimizer, clip }
    }

    /// `optimizer` with the gradients' total L2 norm clipped to `max_norm`
    /// ([`clip_grad_norm`]).
    pub fn norm(optimizer: O, max_norm: T) -> Self {
        Self::new(
            optimizer,
            Clip::Norm {
                max_norm,
                norm_type: NormType::L2,
            },
        )
    }

    /// `optimizer` with every gradient element clamped to `[-clip_value, clip_value]`
    /// ([`clip_grad_value`]).
    pub fn value(optimizer: O, clip_value: T) -> Self {
        Self::new(optimizer, Clip::Value(clip_value))
    }
}

impl<O: Optimizer<T>, T: Real> Optimizer<T> for Clipped<O, T> {
    /// The wrapped optimizer's step, on gradients the network's training step has clipped.
    fn step(&mut self, params: &mut [&mut [T]], grads: &[&[T]]) {
        self.optimizer.step(params, grads);
    }

    fn lr(&self) -> T {
        self.optimizer.lr()
    }

    fn set_lr(&mut self, lr: T) {
        self.optimizer.set_lr(lr);
    }

    /// `None`: the update must wait for every gradient (see [`Clipped`]).
    fn plain_sgd_rate(&self) -> Option<T> {
        None
    }

    fn gradient_clip(&self) -> Option<Clip<T>> {
        Some(self.clip)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Linear;

    /// A `Linear(2, 1)` gradient: weight `[3, 4]`, bias `[12]`; norms 5 and 12, total 13.
    fn grads() -> Linear<f64, 2, 1> {
        let mut g = Linear::<f64, 2, 1>::zeros();
        g.weight[(0, 0)] = 3.0;
        g.weight[(0, 1)] = 4.0;
        g.bias[0] = 12.0;
        g
    }

    #[test]
    fn norm_is_the_norm_of_the_tensor_norms() {
        let mut g = grads();
        assert_eq!(clip_grad_norm(&mut g, 26.0), 13.0);
        // Above the norm: the coefficient clamps to 1, nothing changes.
        assert_eq!(g, grads());
        assert_eq!(clip_grad_norm(&mut g, 6.5), 13.0);
        let coef = 1.0 / (13.0 + 1e-6) * 6.5;
        assert_eq!(g.bias[0], 12.0 * coef);
    }

    #[test]
    fn inf_norm_is_the_largest_magnitude() {
        let mut g = grads();
        g.weight[(0, 1)] = -20.0;
        assert_eq!(clip_grad_norm_with(&mut g, 1.0, NormType::Inf), 20.0);
        assert!((g.weight[(0, 1)] + 1.0).abs() < 1e-6);
    }

    #[test]
    fn nan_propagates_as_in_torch() {
        let mut g = grads();
        g.weight[(0, 0)] = f64::NAN;
        assert!(clip_grad_norm_with(&mut g.clone(), 1.0, NormType::Inf).is_nan());
        assert!(clip_grad_norm(&mut g, 1.0).is_nan());
        assert!(g.bias[0].is_nan());
        let mut g = grads();
        g.weight[(0, 0)] = f64::NAN;
        clip_grad_value(&mut g, 1.0);
        assert!(g.weight[(0, 0)].is_nan());
        assert_eq!((g.weight[(0, 1)], g.bias[0]), (1.0, 1.0));
    }

    #[test]
    fn value_clamps_each_element() {
        let mut g = grads();
        g.weight[(0, 0)] = -3.0;
        clip_grad_value(&mut g, 3.5);
        assert_eq!(
            (g.weight[(0, 0)], g.weight[(0, 1)], g.bias[0]),
            (-3.0, 3.5, 3.5)
        );
        // Torch's clamp_min_ then clamp_max_ with min > max: everything becomes max.
        clip_grad_value(&mut g, -1.0);
        assert_eq!((g.weight[(0, 0)], g.bias[0]), (-1.0, -1.0));
    }

    #[test]
    fn clipped_keeps_the_rate_and_refuses_fusion() {
        let mut opt = Clipped::norm(crate::Sgd::new(0.1f64), 1.0);
        assert_eq!(opt.plain_sgd_rate(), None);
        opt.set_lr(0.05);
        assert_eq!((opt.lr(), opt.optimizer.lr()), (0.05, 0.05));
        assert_eq!(
            Clip::Value(2.0).apply(&mut grads()),
            None,
            "value clipping measures no norm"
        );
    }
}
