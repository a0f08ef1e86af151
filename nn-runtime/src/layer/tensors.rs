//! Named access to parameter tensors, by PyTorch's `state_dict` names.
//!
//! Weight I/O and anything else that must see parameters by name goes through [`Tensors`]:
//! [`Linear`](crate::Linear) names its weight and bias, and every generated network names its
//! layers' tensors as `nn.Sequential` would (`0.weight`, `2.bias`, `1.0.weight` inside a block
//! or a nested network at position 1). Not a hot path: names are built as strings.

use crate::real::Real;

/// A parameter tensor's shape as PyTorch states it: `[out, in]` for a weight, `[out, in, k]`
/// for a convolution's, `[out]` for a bias.
pub type Shape<'a> = &'a [usize];

/// What [`Tensors::visit`] calls for each tensor: `f(name, shape, data)`.
pub type Visitor<'a, T> = dyn FnMut(&str, Shape, &[T]) + 'a;

/// What [`Tensors::visit_mut`] calls for each tensor, with mutable data.
pub type VisitorMut<'a, T> = dyn FnMut(&str, Shape, &mut [T]) + 'a;

/// What [`Tensors::visit_counts`] calls for each integer count: `f(name, value)`.
///
/// A count is a scalar `i64` buffer of torch's `state_dict` (shape `[]`, dtype `I64`), such as
/// BatchNorm's `num_batches_tracked`: not a float, so not something [`Visitor`] can carry, yet
/// part of the state a weight file must hold for torch to load it strictly.
pub type CountVisitor<'a> = dyn FnMut(&str, i64) + 'a;

/// What [`Tensors::visit_counts_mut`] calls for each integer count, with a mutable value.
pub type CountVisitorMut<'a> = dyn FnMut(&str, &mut i64) + 'a;

/// Something that holds named parameter tensors.
///
/// Data slices are in nalgebra's column-major order: element `(r, c)` of an `R x C` weight is
/// at `c * R + r`. For a one-dimensional tensor that is simply its order. A tensor of more
/// axes `[R, a, b, ..]` is an `R x (a b ..)` matrix whose columns are its other axes in
/// row-major order (a convolution's `[OUT, IN, K]` weight: column `i K + k` is `[:, i, k]`).
pub trait Tensors<T: Real> {
    /// Calls `f(name, shape, data)` for every tensor, in declaration order, each name prefixed
    /// by `prefix` (e.g. `"2."`).
    fn visit(&self, prefix: &str, f: &mut Visitor<T>);

    /// Like [`visit`](Tensors::visit), with mutable data.
    fn visit_mut(&mut self, prefix: &str, f: &mut VisitorMut<T>);

    /// Calls `f(name, value)` for every integer count (a scalar `i64` buffer, shape `[]`, such
    /// as BatchNorm's `num_batches_tracked`), in declaration order, each name prefixed by
    /// `prefix`. Counts are not parameters: no optimizer sees them, but weight files save and
    /// load them beside the float tensors, as torch's `state_dict` holds them.
    ///
    /// The default visits nothing: most blocks have no count.
    fn visit_counts(&self, prefix: &str, f: &mut CountVisitor) {
        let _ = (prefix, f);
    }

    /// Like [`visit_counts`](Tensors::visit_counts), with mutable values.
    fn visit_counts_mut(&mut self, prefix: &str, f: &mut CountVisitorMut) {
        let _ = (prefix, f);
    }
}

/// Every tensor an optimizer sees, each as a flat mutable slice, unnamed and in the order of
/// [`Network::tensors`](crate::Network::tensors): what gradient clipping
/// ([`clip`](crate::clip)) works on, without allocating and without a tensor count known to the
/// caller.
///
/// Implemented by every runtime parameter block (its gradient is a block of the same type) and
/// by every gradient struct `network!` generates (`NameGrads`), field after field. A block
/// leaves out what its `pair` leaves out (a bias the layer does not have, running
/// statistics), so exactly the gradients an optimizer applies are visited.
pub trait FlatTensors {
    /// The scalar type of every tensor.
    type Scalar: Real;

    /// Calls `f` on each tensor, in order.
    fn for_each_tensor_mut(&mut self, f: &mut impl FnMut(&mut [Self::Scalar]));
}

impl<T: Real, const IN: usize, const OUT: usize> FlatTensors for super::Linear<T, IN, OUT> {
    type Scalar = T;

    /// The weight, then the bias, as [`pair`](super::Linear::pair).
    fn for_each_tensor_mut(&mut self, f: &mut impl FnMut(&mut [T])) {
        f(self.weight.as_mut_slice());
        f(self.bias.as_mut_slice());
    }
}

impl<T: Real, const IN: usize, const OUT: usize> Tensors<T> for super::Linear<T, IN, OUT> {
    fn visit(&self, prefix: &str, f: &mut Visitor<T>) {
        f(
            &format!("{prefix}weight"),
            &[OUT, IN],
            self.weight.as_slice(),
        );
        f(&format!("{prefix}bias"), &[OUT], self.bias.as_slice());
    }

    fn visit_mut(&mut self, prefix: &str, f: &mut VisitorMut<T>) {
        f(
            &format!("{prefix}weight"),
            &[OUT, IN],
            self.weight.as_mut_slice(),
        );
        f(&format!("{prefix}bias"), &[OUT], self.bias.as_mut_slice());
    }
}
