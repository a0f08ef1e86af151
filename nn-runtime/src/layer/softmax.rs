//! Softmax and log-softmax over each sample, forward and backward: the kernels of torch's
//! `nn.Softmax(dim=-1)` and `nn.LogSoftmax(dim=-1)` layers.
//!
//! Unlike an elementwise activation (`map`, `chain`), each output depends on the whole sample,
//! so the generated code calls these per layer instead of writing a per-element expression.
//! A sample is a column (the crate's convention), and each column is independent.
//!
//! Numerically stable: every exponential is taken of `x - max(column)`, at most 0, so none
//! overflows and the largest term is exactly 1; inputs of `+-100` (or `+-1e30`) give finite
//! outputs. The exponentials are [`Real::fast_exp`] (branch-free for `f32`, so the loops
//! vectorise). The backward passes are Jacobian-vector products from the forward pass's
//! output, which the generated code keeps anyway: no input, no second exponential for
//! softmax. Everything is on the stack; nothing allocates.

use crate::real::Real;
use nalgebra::SMatrix;

/// The largest entry of a column (its first, for a column of one).
#[inline(always)]
fn column_max<T: Real, const R: usize>(column: &[T; R]) -> T {
    column[1..].iter().fold(column[0], |m, &v| m.max(v))
}

/// `softmax(x)` of each column: `exp(x_r - m) / sum_k exp(x_k - m)` with `m` the column's
/// largest entry, so that each output column is positive and sums to 1 (to rounding).
///
/// Force-inlined, as `map` is, so that it is compiled with the caller's target features inside
/// the generated code's hot loop.
#[inline(always)]
pub fn softmax<T: Real, const R: usize, const C: usize>(x: &SMatrix<T, R, C>) -> SMatrix<T, R, C> {
    let mut y = *x;
    if R == 0 {
        return y;
    }
    let (columns, _) = y.as_mut_slice().as_chunks_mut::<R>();
    for column in columns {
        let m = column_max(column);
        let mut sum = T::zero();
        for v in column.iter_mut() {
            *v = (*v - m).fast_exp();
            sum += *v;
        }
        // One division, not a reciprocal and R products: correctly rounded quotients, and the
        // largest term divided by a sum of at least 1 cannot overflow.
        for v in column.iter_mut() {
            *v /= sum;
        }
    }
    y
}

/// The gradient of the loss with respect to softmax's input, from `dy` (with respect to its
/// output) and `y`, the output [`softmax`] gave: per column `dx = y * (dy - sum_r dy_r y_r)`,
/// the product of softmax's Jacobian `diag(y) - y y^T` with `dy`, without forming it.
///
/// `dy` by value: it is dead after this step, so it is updated in place. Force-inlined.
#[inline(always)]
pub fn softmax_backward<T: Real, const R: usize, const C: usize>(
    dy: SMatrix<T, R, C>,
    y: &SMatrix<T, R, C>,
) -> SMatrix<T, R, C> {
    let mut dx = dy;
    if R == 0 {
        return dx;
    }
    let (gradients, _) = dx.as_mut_slice().as_chunks_mut::<R>();
    let (outputs, _) = y.as_slice().as_chunks::<R>();
    for (g, y) in gradients.iter_mut().zip(outputs) {
        let dot = g.iter().zip(y).fold(T::zero(), |s, (&g, &y)| s + g * y);
        for (g, &y) in g.iter_mut().zip(y) {
            *g = y * (*g - dot);
        }
    }
    dx
}

/// `log(softmax(x))` of each column, computed directly as `x_r - m - ln(sum_k exp(x_k - m))`
/// with `m` the column's largest entry: no logarithm of an underflowed 0, so a very negative
/// entry keeps its finite log-probability (what `NLLLoss` after it needs).
///
/// The logarithm is the standard library's, once per column. Force-inlined.
#[inline(always)]
pub fn log_softmax<T: Real, const R: usize, const C: usize>(
    x: &SMatrix<T, R, C>,
) -> SMatrix<T, R, C> {
    let mut y = *x;
    if R == 0 {
        return y;
    }
    let (columns, _) = y.as_mut_slice().as_chunks_mut::<R>();
    for column in columns {
        let m = column_max(column);
        let sum = column
            .iter()
            .fold(T::zero(), |s, &v| s + (v - m).fast_exp());
        // The sum is at least 1 (the largest term is exp(0)), so its logarithm is finite.
        let shift = m + crate::real::math::ln(sum);
        for v in column.iter_mut() {
            *v -= shift;
        }
    }
    y
}

/// The gradient of the loss with respect to log-softmax's input, from `dy` (with respect to
/// its output) and `y`, the output [`log_softmax`] gave: per column
/// `dx = dy - exp(y) * sum_r dy_r`, the Jacobian `I - 1 softmax^T` (transposed) applied to `dy`,
/// since `exp(y)` is the softmax.
///
/// `dy` by value, updated in place. Force-inlined.
#[inline(always)]
pub fn log_softmax_backward<T: Real, const R: usize, const C: usize>(
    dy: SMatrix<T, R, C>,
    y: &SMatrix<T, R, C>,
) -> SMatrix<T, R, C> {
    let mut dx = dy;
    if R == 0 {
        return dx;
    }
    let (gradients, _) = dx.as_mut_slice().as_chunks_mut::<R>();
    let (outputs, _) = y.as_slice().as_chunks::<R>();
    for (g, y) in gradients.iter_mut().zip(outputs) {
        let sum = g.iter().fold(T::zero(), |s, &g| s + g);
        for (g, &y) in g.iter_mut().zip(y) {
            *g -= y.fast_exp() * sum;
        }
    }
    dx
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic matrix with entries in `[-scale, scale)`.
    fn matrix<const R: usize, const C: usize>(salt: u32, scale: f64) -> SMatrix<f64, R, C> {
        SMatrix::from_fn(|r, c| {
            let i = (r * C + c) as u32;
            let u = (i.wrapping_mul(2654435761).wrapping_add(salt) % 1000) as f64 / 500.0 - 1.0;
            u * scale
        })
    }

    /// Softmax of one column the plain way, in `f64`.
    fn plain_softmax(x: &[f64]) -> Vec<f64> {
        let e: Vec<f64> = x.iter().map(|v| v.exp()).collect();
        let s: f64 = e.iter().sum();
        e.iter().map(|v| v / s).collect()
    }

    #[test]
    fn softmax_agrees_with_the_plain_formula() {
        let x = matrix::<7, 5>(1, 3.0);
        let (y, ly) = (softmax(&x), log_softmax(&x));
        let (y32, ly32) = (softmax(&x.cast::<f32>()), log_softmax(&x.cast::<f32>()));
        for c in 0..5 {
            let column: Vec<f64> = x.column(c).iter().copied().collect();
            let want = plain_softmax(&column);
            let mut total = 0.0;
            for r in 0..7 {
                assert!((y[(r, c)] - want[r]).abs() <= 1e-15);
                assert!((ly[(r, c)] - want[r].ln()).abs() <= 1e-14);
                assert!((y32[(r, c)] as f64 - want[r]).abs() <= 1e-6 * want[r]);
                assert!((ly32[(r, c)] as f64 - want[r].ln()).abs() <= 1e-6);
                total += y[(r, c)];
            }
            assert!((total - 1.0).abs() <= 1e-15, "column {c} sums to {total}");
            let total32: f32 = y32.column(c).iter().sum();
            assert!(
                (total32 - 1.0).abs() <= 1e-6,
                "column {c} sums to {total32}"
            );
        }
    }

    /// Inputs of `+-100` and beyond: finite outputs, columns summing to 1, log-probabilities
    /// that stay finite where the probability underflows.
    #[test]
    fn large_inputs_stay_finite() {
        let x = SMatrix::<f32, 3, 3>::from_column_slice(&[
            100.0, -100.0, 0.0, //
            100.0, 100.0, 100.0, //
            -1e30, 1e30, -100.0,
        ]);
        let (y, ly) = (softmax(&x), log_softmax(&x));
        assert!(y.iter().chain(ly.iter()).all(|v| v.is_finite()), "{y} {ly}");
        for c in 0..3 {
            let total: f32 = y.column(c).iter().sum();
            assert!((total - 1.0).abs() <= 1e-6, "column {c} sums to {total}");
        }
        assert_eq!(y[(0, 0)], 1.0);
        assert_eq!(ly[(1, 0)], -200.0);
        assert!((y[(0, 1)] - 1.0 / 3.0).abs() <= 1e-7);
        assert_eq!(ly[(0, 2)], -2e30);
        let dx = softmax_backward(x, &y);
        let dlx = log_softmax_backward(x, &ly);
        assert!(dx.iter().chain(dlx.iter()).all(|v| v.is_finite()));
        let x = x.cast::<f64>() * 10.0;
        assert!(softmax(&x).iter().all(|v| v.is_finite()));
        assert!(log_softmax(&x).iter().all(|v| v.is_finite()));
    }

    /// Both backward passes against central differences of `L = sum(g * f(x))` in `f64`.
    #[test]
    fn backward_passes_agree_with_finite_differences() {
        let x = matrix::<6, 4>(2, 2.0);
        let g = matrix::<6, 4>(3, 1.0);
        let loss = |f: &dyn Fn(&SMatrix<f64, 6, 4>) -> SMatrix<f64, 6, 4>,
                    x: &SMatrix<f64, 6, 4>| { f(x).component_mul(&g).sum() };
        let dx = softmax_backward(g, &softmax(&x));
        let dlx = log_softmax_backward(g, &log_softmax(&x));
        let h = 1e-6;
        for i in 0..24 {
            let (mut plus, mut minus) = (x, x);
            plus[i] += h;
            minus[i] -= h;
            let want = (loss(&softmax, &plus) - loss(&softmax, &minus)) / (2.0 * h);
            assert!(
                (dx[i] - want).abs() <= 1e-8,
                "softmax {i}: {} vs {want}",
                dx[i]
            );
            let want = (loss(&log_softmax, &plus) - loss(&log_softmax, &minus)) / (2.0 * h);
            assert!(
                (dlx[i] - want).abs() <= 1e-8,
                "log_softmax {i}: {} vs {want}",
                dlx[i]
            );
        }
    }

    /// A column of one: softmax is 1, log-softmax 0, and no gradient passes.
    #[test]
    fn a_single_class_is_certain() {
        let x = SMatrix::<f32, 1, 3>::new(-5.0, 0.0, 7.0);
        assert_eq!(softmax(&x), SMatrix::<f32, 1, 3>::from_element(1.0));
        assert_eq!(log_softmax(&x), SMatrix::<f32, 1, 3>::zeros());
        assert_eq!(
            softmax_backward(x, &softmax(&x)),
            SMatrix::<f32, 1, 3>::zeros()
        );
        assert_eq!(
            log_softmax_backward(x, &log_softmax(&x)),
            SMatrix::<f32, 1, 3>::zeros()
        );
    }
}
