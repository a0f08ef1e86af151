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
    // Inlined, so that in a network's AVX2 copy of `train_step` this loop is compiled for AVX2
    // too (called out of line, it was the portable build).
    #[inline(always)]
    fn value_and_grad<const R: usize, const B: usize>(
        &self,
        output: &SMatrix<T, R, B>,
        target: &SMatrix<T, R, B>,
    ) -> (T, SMatrix<T, R, B>) {
        let batch = T::cast(B as f64);
        let (logits, probs) = (output.as_slice(), target.as_slice());
        // log-sum-exp shifted by each sample's maximum, so no exponent overflows; each
        // exponential is computed once and kept (in `grad`) for the softmax of the gradient.
        // The shifts first, then every exponential in one loop, which vectorises: `fast_exp`
        // is branch-free arithmetic (within an ulp of `exp`), where `f32::exp` is a scalar
        // call per element, 6% of a digits training step.
        let mut grad = SMatrix::<T, R, B>::zeros();
        let mut max = [T::zero(); B];
        for ((m, z), e) in max
            .iter_mut()
            .zip(logits.chunks_exact(R))
            .zip(grad.as_mut_slice().chunks_exact_mut(R))
        {
            // A compare and select (`f32::max` is a slower NaN-aware sequence); a NaN logit
            // still makes the loss NaN, through its exponential.
            *m = z.iter().fold(z[0], |m, &z| if z > m { z } else { m });
            e.iter_mut().zip(z).for_each(|(e, &z)| *e = z - *m);
        }
        for e in grad.as_mut_slice() {
            *e = e.fast_exp();
        }
        // Per class, summed over the samples: sum_b t (z - lse). Kept per class rather than in
        // one running total, so the additions form R short independent chains (a vector
        // operation per sample) instead of one chain R * B additions long.
        let mut terms = [T::zero(); R];
        let inv_batch = T::one() / batch;
        for (((e, z), t), &max) in grad
            .as_mut_slice()
            .chunks_exact_mut(R)
            .zip(logits.chunks_exact(R))
            .zip(probs.chunks_exact(R))
            .zip(&max)
        {
            let sum_exp = e.iter().fold(T::zero(), |s, &e| s + e);
            let lse = max + crate::real::math::ln(sum_exp);
            let mut mass = T::zero();
            for ((term, &t), &z) in terms.iter_mut().zip(t).zip(z) {
                *term += t * (z - lse);
                mass += t;
            }
            // d/dz_r of -sum_k t_k (z_k - lse) = mass * softmax_r - t_r, over the batch. Torch
            // divides each exponential by the sum; one reciprocal per sample instead differs
            // by an ulp and spares a division per class.
            let inv_sum = T::one() / sum_exp;
            for (g, &t) in e.iter_mut().zip(t) {
                *g = (mass * (*g * inv_sum) - t) * inv_batch;
            }
        }
        let total = terms.iter().fold(T::zero(), |sum, &term| sum + term);
        (-total / batch, grad)
    }
}

/// Implements [`Loss`] for `$loss`, the mean over every element of `$term(output, target)`,
/// a closure giving the term and its derivative in the output (see [`elementwise_mean`]).
macro_rules! elementwise_loss {
    ($loss:ty, $term:expr) => {
        impl<T: Real> Loss<T> for $loss {
            fn value_and_grad<const R: usize, const B: usize>(
                &self,
                output: &SMatrix<T, R, B>,
                target: &SMatrix<T, R, B>,
            ) -> (T, SMatrix<T, R, B>) {
                elementwise_mean(output, target, $term)
            }
        }
    };
}

/// Binary cross-entropy on logits, as `nn.BCEWithLogitsLoss()`:
/// `(max(x, 0) - x * t + log(1 + exp(-|x|))).mean()` over every element, stable for any `x`.
#[derive(Clone, Copy, Debug, Default)]
pub struct BceWithLogits;

elementwise_loss!(BceWithLogits, |x: T, t: T| {
    // `libm`'s exp and ln_1p (see `real`), the same bits with std and without.
    let tail = (-x.abs()).libm_exp().libm_ln_1p();
    let term = x.max(T::zero()) - x * t + tail;
    (term, sigmoid(x) - t)
});

/// Hinge loss for targets of `+1` or `-1`, as
/// `torch.clamp(1 - output * target, min=0).mean()` over every element.
///
/// Its gradient follows PyTorch's `clamp` backward: the margin term passes its gradient where
/// `1 - output * target >= 0`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Hinge;

elementwise_loss!(Hinge, |y: T, t: T| {
    let margin = T::one() - y * t;
    // Zero divided by the element count is zero, as torch's gradient is there.
    let slope = if margin >= T::zero() { -t } else { T::zero() };
    (margin.max(T::zero()), slope)
});

/// The mean over every element of a loss whose terms each depend on one output and its
/// target: `term(y, t)` gives the term and its derivative in `y`, both divided here by the
/// number of elements. The terms are summed in column-major order.
#[inline]
fn elementwise_mean<T: Real, const R: usize, const B: usize>(
    output: &SMatrix<T, R, B>,
    target: &SMatrix<T, R, B>,
    mut term: impl FnMut(T, T) -> (T, T),
) -> (T, SMatrix<T, R, B>) {
    let n = T::cast((R * B) as f64);
    let mut total = T::zero();
    let grad = output.zip_map(target, |y, t| {
        let (value, slope) = term(y, t);
        total += value;
        slope / n
    });
    (total / n, grad)
}

/// The logistic function, computed without overflow for large `|x|`.
fn sigmoid<T: Real>(x: T) -> T {
    if x >= T::zero() {
        T::one() / (T::one() + (-x).libm_exp())
    } else {
        let e = x.libm_exp();
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
