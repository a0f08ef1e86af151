//! Loss functions: a value and its gradient with respect to the network's output.
//!
//! Every loss takes the output and the target as `R x B` matrices (one column per sample) and
//! returns the batch mean, as PyTorch's default `reduction='mean'` does.

use crate::real::Real;
use nalgebra::SMatrix;

/// A loss: a scalar function of a batch of outputs and targets of the same shape.
pub trait Loss<T: Real> {
    /// The loss of `output` against `target`.
    fn value<const R: usize, const B: usize>(
        &self,
        output: &SMatrix<T, R, B>,
        target: &SMatrix<T, R, B>,
    ) -> T {
        self.value_and_grad(output, target).0
    }

    /// The loss and its gradient with respect to `output` (same shape as `output`).
    fn value_and_grad<const R: usize, const B: usize>(
        &self,
        output: &SMatrix<T, R, B>,
        target: &SMatrix<T, R, B>,
    ) -> (T, SMatrix<T, R, B>);
}

/// Mean squared error over every element, as `nn.MSELoss()`:
/// `((output - target) ** 2).mean()`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Mse;

impl<T: Real> Loss<T> for Mse {
    fn value_and_grad<const R: usize, const B: usize>(
        &self,
        output: &SMatrix<T, R, B>,
        target: &SMatrix<T, R, B>,
    ) -> (T, SMatrix<T, R, B>) {
        let n = T::cast((R * B) as f64);
        let diff = output - target;
        let value = diff.norm_squared() / n;
        let scale = T::cast(2.0) / n;
        (value, diff * scale)
    }
}

/// Cross-entropy on logits with a fused, numerically stable softmax, as
/// `nn.CrossEntropyLoss()(output.T, target.T)` with class-probability targets:
/// `-(target * log_softmax(output, dim=classes)).sum(dim=classes).mean()`.
///
/// Each column of `output` holds one sample's logits, each column of `target` that sample's
/// class probabilities (one-hot for hard labels: see [`one_hot`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct CrossEntropy;

impl<T: Real> Loss<T> for CrossEntropy {
    fn value_and_grad<const R: usize, const B: usize>(
        &self,
        output: &SMatrix<T, R, B>,
        target: &SMatrix<T, R, B>,
    ) -> (T, SMatrix<T, R, B>) {
        let batch = T::cast(B as f64);
        let mut total = T::zero();
        let mut grad = SMatrix::<T, R, B>::zeros();
        for b in 0..B {
            let logits = output.column(b);
            let probs = target.column(b);
            // log-sum-exp shifted by the maximum, so no exponent overflows; each exponential
            // is computed once and kept for the softmax of the gradient.
            let max = logits.max();
            let mut exps = [T::zero(); R];
            let mut sum_exp = T::zero();
            for (e, &z) in exps.iter_mut().zip(logits.iter()) {
                *e = (z - max).exp();
                sum_exp += *e;
            }
            let lse = max + sum_exp.ln();
            let mass = probs.sum();
            for r in 0..R {
                total -= probs[r] * (logits[r] - lse);
                // d/dz_r of -sum_k t_k (z_k - lse) = mass * softmax_r - t_r
                grad[(r, b)] = (mass * (exps[r] / sum_exp) - probs[r]) / batch;
            }
        }
        (total / batch, grad)
    }
}

/// Binary cross-entropy on logits, as `nn.BCEWithLogitsLoss()`:
/// `(max(x, 0) - x * t + log(1 + exp(-|x|))).mean()` over every element, stable for any `x`.
#[derive(Clone, Copy, Debug, Default)]
pub struct BceWithLogits;

impl<T: Real> Loss<T> for BceWithLogits {
    fn value_and_grad<const R: usize, const B: usize>(
        &self,
        output: &SMatrix<T, R, B>,
        target: &SMatrix<T, R, B>,
    ) -> (T, SMatrix<T, R, B>) {
        let n = T::cast((R * B) as f64);
        let mut total = T::zero();
        let grad = output.zip_map(target, |x, t| {
            total += x.max(T::zero()) - x * t + (-x.abs()).exp().ln_1p();
            (sigmoid(x) - t) / n
        });
        (total / n, grad)
    }
}

/// Hinge loss for targets of `+1` or `-1`, as
/// `torch.clamp(1 - output * target, min=0).mean()` over every element.
///
/// Its gradient follows PyTorch's `clamp` backward: the margin term passes its gradient where
/// `1 - output * target >= 0`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Hinge;

impl<T: Real> Loss<T> for Hinge {
    fn value_and_grad<const R: usize, const B: usize>(
        &self,
        output: &SMatrix<T, R, B>,
        target: &SMatrix<T, R, B>,
    ) -> (T, SMatrix<T, R, B>) {
        let n = T::cast((R * B) as f64);
        let mut total = T::zero();
        let grad = output.zip_map(target, |y, t| {
            let margin = T::one() - y * t;
            total += margin.max(T::zero());
            if margin >= T::zero() {
                -t / n
            } else {
                T::zero()
            }
        });
        (total / n, grad)
    }
}

/// The logistic function, computed without overflow for large `|x|`.
fn sigmoid<T: Real>(x: T) -> T {
    if x >= T::zero() {
        T::one() / (T::one() + (-x).exp())
    } else {
        let e = x.exp();
        e / (T::one() + e)
    }
}

/// One-hot encodes class labels into a `CLASSES x B` target matrix for [`CrossEntropy`].
///
/// Returns `None` if any label is not below `CLASSES`.
pub fn one_hot<T: Real, const CLASSES: usize, const B: usize>(
    labels: &[usize; B],
) -> Option<SMatrix<T, CLASSES, B>> {
    let mut target = SMatrix::<T, CLASSES, B>::zeros();
    for (b, &label) in labels.iter().enumerate() {
        if label >= CLASSES {
            return None;
        }
        target[(label, b)] = T::one();
    }
    Some(target)
}
