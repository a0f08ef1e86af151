//! Named access to parameter tensors, by PyTorch's `state_dict` names.
//!
//! Weight I/O and anything else that must see parameters by name goes through [`Tensors`]:
//! [`Linear`](crate::Linear) names its weight and bias, and every generated network names its
//! layers' tensors as `nn.Sequential` would (`0.weight`, `2.bias`, `1.0.weight` inside a block
//! or a nested network at position 1). Not a hot path: names are built by [`with_prefix`], on
//! the stack, so that naming needs no heap (the runtime works without `alloc`).

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

/// Bytes of a name [`named`] builds on the stack. Longer names (nesting some dozens of levels
/// deep) go to the heap with `std`; without it they panic.
const NAME_BYTES: usize = 256;

/// Calls `f` with the formatted name `args` (`format_args!("{prefix}weight")`), written in a
/// buffer on the stack: how every block names its tensors, with or without a heap.
///
/// # Panics
/// Without the `std` feature, if the name is longer than 256 bytes.
pub fn named<R>(args: core::fmt::Arguments, f: impl FnOnce(&str) -> R) -> R {
    let mut buf = NameBuf {
        bytes: [0; NAME_BYTES],
        len: 0,
    };
    if core::fmt::Write::write_fmt(&mut buf, args).is_ok() {
        // Only whole `str`s were copied in, so the bytes are valid UTF-8.
        return f(core::str::from_utf8(&buf.bytes[..buf.len]).unwrap_or_default());
    }
    #[cfg(feature = "std")]
    return f(&std::fmt::format(args));
    #[cfg(not(feature = "std"))]
    panic!("tensor name `{args}` is longer than {NAME_BYTES} bytes");
}

/// Calls `f` with `prefix` followed by `name` (`"1." + "weight"`), built on the stack as
/// [`named`] builds it: what generated networks call for the prefixes of their layers.
///
/// # Panics
/// Without the `std` feature, if the two together are longer than 256 bytes.
#[inline]
pub fn with_prefix<R>(prefix: &str, name: &str, f: impl FnOnce(&str) -> R) -> R {
    named(format_args!("{prefix}{name}"), f)
}

/// The stack buffer of [`named`]: fails, rather than truncating, when a name does not fit.
struct NameBuf {
    bytes: [u8; NAME_BYTES],
    len: usize,
}

impl core::fmt::Write for NameBuf {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let end = self.len + s.len();
        let slot = self.bytes.get_mut(self.len..end).ok_or(core::fmt::Error)?;
        slot.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

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
        named(format_args!("{prefix}weight"), |name| {
            f(name, &[OUT, IN], self.weight.as_slice())
        });
        named(format_args!("{prefix}bias"), |name| {
            f(name, &[OUT], self.bias.as_slice())
        });
    }

    fn visit_mut(&mut self, prefix: &str, f: &mut VisitorMut<T>) {
        named(format_args!("{prefix}weight"), |name| {
            f(name, &[OUT, IN], self.weight.as_mut_slice())
        });
        named(format_args!("{prefix}bias"), |name| {
            f(name, &[OUT], self.bias.as_mut_slice())
        });
    }
}
