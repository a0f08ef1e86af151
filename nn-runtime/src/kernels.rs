//! Matrix kernels the generated forward and backward passes call.
//!
//! Shapes follow the convention of the whole crate: one column per sample, so a batch of `B`
//! inputs of a `Linear(IN, OUT)` layer is an `IN x B` matrix.

use crate::layer::Linear;
use crate::real::Real;
use nalgebra::SMatrix;

/// `z = W x + b` for every column of `x`.
#[inline]
pub fn linear_forward<T: Real, const IN: usize, const OUT: usize, const B: usize>(
    layer: &Linear<T, IN, OUT>,
    x: &SMatrix<T, IN, B>,
) -> SMatrix<T, OUT, B> {
    let mut z = layer.weight * x;
    for mut column in z.column_iter_mut() {
        column += &layer.bias;
    }
    z
}

/// Gradients of a `Linear` layer's parameters from its input `x` and the gradient `dz` of the
/// loss with respect to its output: `dW = dz x^T`, `db = sum of dz's columns`. Overwrites `grad`.
#[inline]
pub fn linear_backward_params<T: Real, const IN: usize, const OUT: usize, const B: usize>(
    x: &SMatrix<T, IN, B>,
    dz: &SMatrix<T, OUT, B>,
    grad: &mut Linear<T, IN, OUT>,
) {
    dz.mul_to(&x.transpose(), &mut grad.weight);
    grad.bias = dz.column_sum();
}

/// Like [`linear_backward_params`], and also returns the gradient passed to the layer below:
/// `dx = W^T dz`.
#[inline]
pub fn linear_backward<T: Real, const IN: usize, const OUT: usize, const B: usize>(
    layer: &Linear<T, IN, OUT>,
    x: &SMatrix<T, IN, B>,
    dz: &SMatrix<T, OUT, B>,
    grad: &mut Linear<T, IN, OUT>,
) -> SMatrix<T, IN, B> {
    linear_backward_params(x, dz, grad);
    layer.weight.tr_mul(dz)
}
