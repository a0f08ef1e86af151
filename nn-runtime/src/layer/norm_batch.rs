//! Torch's batch normalisation (`nn.BatchNorm1d`, `nn.BatchNorm2d`): its block of parameters
//! and running statistics, and its kernels in training and in inference.
//!
//! A sample is one column of `N = C S` features, channel-major: channel `c`'s `S` positions
//! are rows `c S .. c S + S` (`S = 1` for `BatchNorm1d` on flat features, `S = L` on `(C, L)`
//! sequences, `S = H W` for `BatchNorm2d` on `(C, H, W)` maps: the layout every shaped layer
//! uses). Each channel is normalised over the batch's `B` samples and its `S` positions, so
//! over `n = B S` values:
//!
//! - in training ([`BatchNorm::train_forward`]) by the batch's own mean and biased variance,
//!   returned as [`BnStats`] for the backward pass ([`BatchNorm::backward`], through those
//!   statistics) and for [`BatchNorm::update_running`], which folds them into the running
//!   statistics as torch does;
//! - in inference ([`BatchNorm::eval_forward`]) by the running statistics, a fixed affine map.
//!
//! `y = (x - mean) / sqrt(var + eps) * weight + bias`, the last two only with `AFFINE`.
//!
//! ```
//! use nn_runtime::BatchNorm;
//! use nn_runtime::init::Init;
//! use nn_runtime::nalgebra::SMatrix;
//!
//! // nn.BatchNorm2d(2) on 2 x 3 maps (S = 6 positions per channel), a batch of 4.
//! let mut bn = BatchNorm::<f32, 2, true>::zeros();
//! bn.reset(&mut Init::new(0));
//! let x = SMatrix::<f32, 12, 4>::from_fn(|r, c| (r * 4 + c) as f32 * 0.1);
//! //                               N  S  B
//! let (y, stats) = bn.train_forward::<12, 6, 4>(&x, 1e-5);
//! bn.update_running(&stats, 0.1, 6 * 4);
//! let mut grads = BatchNorm::<f32, 2, true>::zeros();
//! let dx = bn.backward::<12, 6, 4>(&x, &y, &stats, &mut grads);
//! assert_eq!(bn.num_batches_tracked, 1);
//! let _ = (dx, bn.eval_forward::<12, 6, 4>(&x, 1e-5));
//! ```
//!
//! ```compile_fail,E0080
//! // 12 features are not 2 channels of 5 positions.
//! use nn_runtime::BatchNorm;
//! let x = nn_runtime::nalgebra::SMatrix::<f32, 12, 1>::zeros();
//! let _ = BatchNorm::<f32, 2, true>::zeros().eval_forward::<12, 5, 1>(&x, 1e-5);
//! ```

use super::heap::Zeroable;
use super::init::Init;
use super::tensors::{CountVisitor, CountVisitorMut, Tensors, Visitor, VisitorMut};
use crate::real::{Real, math};
use nalgebra::{SMatrix, SVector};

/// The state of torch's `nn.BatchNorm1d(C, affine=AFFINE)` or `nn.BatchNorm2d(C, ...)`: the
/// learned per-channel scale and shift, and the running statistics inference uses.
///
/// A generated network holds one per batch-norm layer, its gradient struct another, whose
/// `weight` and `bias` are then the gradients (its running statistics and count stay unused).
/// Without `AFFINE` there is no scale nor shift: `weight` and `bias` stay zero and are neither
/// named, initialised, paired with a gradient nor read.
///
/// The names and shapes are torch's `state_dict`'s, so weight files load both ways, the
/// integer `num_batches_tracked` included (an `I64` scalar, through
/// [`Tensors::visit_counts`]).
#[derive(Clone, Debug, PartialEq)]
pub struct BatchNorm<T: Real, const C: usize, const AFFINE: bool> {
    /// The scale `gamma`, one per channel, as `nn.BatchNorm*.weight` (zero without `AFFINE`).
    pub weight: SVector<T, C>,
    /// The shift `beta`, one per channel, as `nn.BatchNorm*.bias` (zero without `AFFINE`).
    pub bias: SVector<T, C>,
    /// The running mean of each channel, as the buffer `running_mean`: what inference
    /// normalises by.
    pub running_mean: SVector<T, C>,
    /// The running (unbiased) variance of each channel, as the buffer `running_var`.
    pub running_var: SVector<T, C>,
    /// How many training batches have updated the running statistics, as the buffer
    /// `num_batches_tracked` (torch's cumulative average, `momentum=None`, divides by it).
    pub num_batches_tracked: i64,
}

/// What a training forward pass computed of its batch, per channel, and its backward pass and
/// the running statistics' update need: kept in the generated forward pass's cache.
#[derive(Clone, Debug, PartialEq)]
pub struct BnStats<T: Real, const C: usize> {
    /// The batch mean of each channel, over its `n = B S` values.
    pub mean: SVector<T, C>,
    /// The batch variance of each channel, biased (divided by `n`), as normalisation uses it.
    pub var: SVector<T, C>,
    /// `1 / sqrt(var + eps)`, the factor each centred value was multiplied by.
    pub inv_std: SVector<T, C>,
}

impl<T: Real, const C: usize> BnStats<T, C> {
    /// All zero: a cache's starting value.
    pub fn zeros() -> Self {
        Self {
            mean: SVector::zeros(),
            var: SVector::zeros(),
            inv_std: SVector::zeros(),
        }
    }
}

impl<T: Real, const C: usize> Default for BnStats<T, C> {
    /// All zero, as [`zeros`](BnStats::zeros).
    fn default() -> Self {
        Self::zeros()
    }
}

// SAFETY: four arrays of `f32` and an `i64` (and, if the compiler pads, padding, which may
// hold any bytes): all-zero bytes are 0.0 in every float and 0 in the integer.
unsafe impl<const C: usize, const AFFINE: bool> Zeroable for BatchNorm<f32, C, AFFINE> {}
// SAFETY: as above, of `f64`.
unsafe impl<const C: usize, const AFFINE: bool> Zeroable for BatchNorm<f64, C, AFFINE> {}
// SAFETY: three arrays of `f32`, of one alignment, so no padding: all-zero bytes are 0.0.
unsafe impl<const C: usize> Zeroable for BnStats<f32, C> {}
// SAFETY: as above, of `f64`.
unsafe impl<const C: usize> Zeroable for BnStats<f64, C> {}

impl<T: Real, const C: usize, const AFFINE: bool> Default for BatchNorm<T, C, AFFINE> {
    /// All zero, as [`zeros`](BatchNorm::zeros): what a gradient struct starts from.
    fn default() -> Self {
        Self::zeros()
    }
}

/// Asserts, at compile time where `N` and `S` are known, that a sample of `N` features is `C`
/// channels of `S` positions.
macro_rules! check_sizes {
    ($n:ident, $s:ident) => {
        const {
            assert!(C >= 1, "BatchNorm: C (channels) must be at least 1");
            assert!(
                $s >= 1,
                "BatchNorm: S (positions per channel) must be at least 1"
            );
            assert!(
                $n == C * $s,
                "BatchNorm: N (features per sample) must be C * S (channels times positions)"
            );
        }
    };
}

impl<T: Real, const C: usize, const AFFINE: bool> BatchNorm<T, C, AFFINE> {
    /// Number of learned scalars, for the generated parameter counts: `2 C` with `AFFINE`
    /// (weight and bias), else none. The running statistics are not learned.
    pub const PARAMS: usize = if AFFINE { 2 * C } else { 0 };

    /// Number of tensors [`pair`](Self::pair) gives the optimizer: weight and bias with
    /// `AFFINE`, else none. ([`Tensors`] names the running statistics besides.)
    pub const TENSORS: usize = if AFFINE { 2 } else { 0 };

    /// A block whose every value is zero: the gradient struct's starting value, and the
    /// network's before [`reset`](Self::reset).
    pub fn zeros() -> Self {
        Self {
            weight: SVector::zeros(),
            bias: SVector::zeros(),
            running_mean: SVector::zeros(),
            running_var: SVector::zeros(),
            num_batches_tracked: 0,
        }
    }

    /// Torch's initialisation, in place: weight 1 and bias 0 (with `AFFINE`; without, both
    /// stay as they are, zero), running mean 0, running variance 1, no batch tracked.
    ///
    /// It draws nothing from `init` (nor does torch's), so the layers after it draw what they
    /// would in torch; `init` is taken so every block resets alike.
    pub fn reset(&mut self, init: &mut Init) {
        let _ = init;
        if AFFINE {
            self.weight.fill(T::one());
            self.bias.fill(T::zero());
        }
        self.running_mean.fill(T::zero());
        self.running_var.fill(T::one());
        self.num_batches_tracked = 0;
    }

    /// Puts the weight and the bias (with `AFFINE`; without, nothing) into `params[*at..]`,
    /// each beside its gradient (from `gradients`) in `grads[*at..]`, advancing `at` by
    /// [`TENSORS`](Self::TENSORS): the flat view an optimizer works on (see `Linear::pair`).
    /// The running statistics are left out: no optimizer moves them.
    #[doc(hidden)]
    #[inline]
    pub fn pair<'a>(
        &'a mut self,
        gradients: &'a Self,
        params: &mut [&'a mut [T]],
        grads: &mut [&'a [T]],
        at: &mut usize,
    ) {
        if AFFINE {
            params[*at] = self.weight.as_mut_slice();
            grads[*at] = gradients.weight.as_slice();
            params[*at + 1] = self.bias.as_mut_slice();
            grads[*at + 1] = gradients.bias.as_slice();
            *at += 2;
        }
    }

    /// The scale of channel `c`: its weight with `AFFINE`, else 1.
    #[inline(always)]
    fn gamma(&self, c: usize) -> T {
        if AFFINE { self.weight[c] } else { T::one() }
    }

    /// The shift of channel `c`: its bias with `AFFINE`, else 0.
    #[inline(always)]
    fn beta(&self, c: usize) -> T {
        if AFFINE { self.bias[c] } else { T::zero() }
    }

    /// The training forward pass of a batch of `B` samples of `N = C S` features: each
    /// channel normalised by the batch's mean and biased variance over its `n = B S` values,
    /// `y = (x - mean) inv_std weight + bias` with `inv_std = 1 / sqrt(var + eps)` (no weight
    /// nor bias without `AFFINE`), as torch's `BatchNorm` in `train()` mode.
    ///
    /// Returns the output and the batch's [`BnStats`], which the backward pass and
    /// [`update_running`](Self::update_running) take. Sums run per sample first, then across
    /// the batch, and the variance is taken about the mean (two passes), so large maps lose
    /// little precision. Allocates nothing. `N == C S` is checked at compile time.
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub fn train_forward<const N: usize, const S: usize, const B: usize>(
        &self,
        x: &SMatrix<T, N, B>,
        eps: T,
    ) -> (SMatrix<T, N, B>, BnStats<T, C>) {
        check_sizes!(N, S);
        let n = T::cast((B * S) as f64);
        let data = x.as_slice();
        let mut mean = SVector::<T, C>::zeros();
        for sample in data.chunks_exact(N) {
            for (m, channel) in mean.iter_mut().zip(sample.chunks_exact(S)) {
                *m += channel.iter().fold(T::zero(), |s, &v| s + v);
            }
        }
        mean /= n;
        let mut var = SVector::<T, C>::zeros();
        for sample in data.chunks_exact(N) {
            for (c, channel) in sample.chunks_exact(S).enumerate() {
                let m = mean[c];
                var[c] += channel
                    .iter()
                    .fold(T::zero(), |s, &v| s + (v - m) * (v - m));
            }
        }
        var /= n;
        let inv_std = var.map(|v| T::one() / math::sqrt(v + eps));
        let mut y = SMatrix::<T, N, B>::zeros();
        for (out, sample) in y
            .as_mut_slice()
            .chunks_exact_mut(N)
            .zip(data.chunks_exact(N))
        {
            for (c, (o, channel)) in out
                .chunks_exact_mut(S)
                .zip(sample.chunks_exact(S))
                .enumerate()
            {
                let (m, scale, shift) = (mean[c], inv_std[c] * self.gamma(c), self.beta(c));
                for (o, &v) in o.iter_mut().zip(channel) {
                    *o = (v - m) * scale + shift;
                }
            }
        }
        (y, BnStats { mean, var, inv_std })
    }

    /// The gradient with respect to the input of [`eval_forward`](Self::eval_forward), a
    /// per-channel affine map: `dx = dy * weight / sqrt(running_var + eps)`. What the input
    /// sensitivities (`jacobian`, `input_gradient`) of a network in inference mode use.
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub fn eval_backward<const N: usize, const S: usize, const B: usize>(
        &self,
        dy: &SMatrix<T, N, B>,
        eps: T,
    ) -> SMatrix<T, N, B> {
        check_sizes!(N, S);
        let mut dx = *dy;
        for sample in dx.as_mut_slice().chunks_exact_mut(N) {
            for (c, channel) in sample.chunks_exact_mut(S).enumerate() {
                let scale = self.gamma(c) / math::sqrt(self.running_var[c] + eps);
                channel.iter_mut().for_each(|d| *d *= scale);
            }
        }
        dx
    }

    /// The inference forward pass: each channel normalised by the running statistics,
    /// `y = (x - running_mean) / sqrt(running_var + eps) weight + bias`, as torch's
    /// `BatchNorm` in `eval()` mode. A fixed per-channel affine map; nothing about the batch
    /// is computed, so samples do not affect each other. Allocates nothing. `N == C S` is
    /// checked at compile time.
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub fn eval_forward<const N: usize, const S: usize, const B: usize>(
        &self,
        x: &SMatrix<T, N, B>,
        eps: T,
    ) -> SMatrix<T, N, B> {
        check_sizes!(N, S);
        let mut scale = SVector::<T, C>::zeros();
        let mut shift = SVector::<T, C>::zeros();
        for c in 0..C {
            scale[c] = self.gamma(c) / math::sqrt(self.running_var[c] + eps);
            shift[c] = self.beta(c) - self.running_mean[c] * scale[c];
        }
        let mut y = SMatrix::<T, N, B>::zeros();
        for (out, sample) in y
            .as_mut_slice()
            .chunks_exact_mut(N)
            .zip(x.as_slice().chunks_exact(N))
        {
            for (c, (o, channel)) in out
                .chunks_exact_mut(S)
                .zip(sample.chunks_exact(S))
                .enumerate()
            {
                let (a, b) = (scale[c], shift[c]);
                for (o, &v) in o.iter_mut().zip(channel) {
                    *o = v * a + b;
                }
            }
        }
        y
    }

    /// Per channel, `sum(dy)` and `sum(dy xhat)` over the batch and the positions, with
    /// `xhat = (x - mean) inv_std` recomputed from the stats: the bias's and the weight's
    /// gradients (with `AFFINE`), and what the input's gradient needs.
    #[inline(always)]
    fn sums<const N: usize, const S: usize, const B: usize>(
        x: &SMatrix<T, N, B>,
        dy: &SMatrix<T, N, B>,
        stats: &BnStats<T, C>,
    ) -> (SVector<T, C>, SVector<T, C>) {
        let mut sum_dy = SVector::<T, C>::zeros();
        let mut sum_dy_xhat = SVector::<T, C>::zeros();
        for (sample, grad) in x
            .as_slice()
            .chunks_exact(N)
            .zip(dy.as_slice().chunks_exact(N))
        {
            for (c, (channel, d)) in sample.chunks_exact(S).zip(grad.chunks_exact(S)).enumerate() {
                let (m, k) = (stats.mean[c], stats.inv_std[c]);
                let (mut a, mut b) = (T::zero(), T::zero());
                for (&v, &g) in channel.iter().zip(d) {
                    a += g;
                    b += g * (v - m) * k;
                }
                sum_dy[c] += a;
                sum_dy_xhat[c] += b;
            }
        }
        (sum_dy, sum_dy_xhat)
    }

    /// The backward pass of [`train_forward`](Self::train_forward), through the batch
    /// statistics (each input moves every output of its channel through the mean and the
    /// variance): returns the input's gradient
    /// `dx = weight inv_std (dy - mean(dy) - xhat mean(dy xhat))`, per channel over its
    /// `n = B S` values, with `xhat = (x - mean) inv_std` (weight 1 without `AFFINE`).
    ///
    /// With `AFFINE` it OVERWRITES (does not add to) `grads.weight` with `sum(dy xhat)` and
    /// `grads.bias` with `sum(dy)`; without, `grads` is untouched. `x` and `stats` are the
    /// forward pass's. Allocates nothing. `N == C S` is checked at compile time.
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub fn backward<const N: usize, const S: usize, const B: usize>(
        &self,
        x: &SMatrix<T, N, B>,
        dy: &SMatrix<T, N, B>,
        stats: &BnStats<T, C>,
        grads: &mut Self,
    ) -> SMatrix<T, N, B> {
        check_sizes!(N, S);
        let (sum_dy, sum_dy_xhat) = Self::sums::<N, S, B>(x, dy, stats);
        let inv_n = T::one() / T::cast((B * S) as f64);
        let mut dx = SMatrix::<T, N, B>::zeros();
        for ((out, sample), grad) in dx
            .as_mut_slice()
            .chunks_exact_mut(N)
            .zip(x.as_slice().chunks_exact(N))
            .zip(dy.as_slice().chunks_exact(N))
        {
            for (c, ((o, channel), d)) in out
                .chunks_exact_mut(S)
                .zip(sample.chunks_exact(S))
                .zip(grad.chunks_exact(S))
                .enumerate()
            {
                let (m, k) = (stats.mean[c], stats.inv_std[c]);
                let scale = self.gamma(c) * k;
                let (mean_dy, mean_dy_xhat) = (sum_dy[c] * inv_n, sum_dy_xhat[c] * inv_n);
                for ((o, &v), &g) in o.iter_mut().zip(channel).zip(d) {
                    *o = scale * (g - mean_dy - (v - m) * k * mean_dy_xhat);
                }
            }
        }
        if AFFINE {
            grads.weight = sum_dy_xhat;
            grads.bias = sum_dy;
        }
        dx
    }

    /// The parameters' part of [`backward`](Self::backward) alone, for a first layer whose
    /// input needs no gradient: OVERWRITES `grads.weight` and `grads.bias` with `AFFINE`,
    /// does nothing without. Allocates nothing. `N == C S` is checked at compile time.
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub fn backward_params<const N: usize, const S: usize, const B: usize>(
        &self,
        x: &SMatrix<T, N, B>,
        dy: &SMatrix<T, N, B>,
        stats: &BnStats<T, C>,
        grads: &mut Self,
    ) {
        check_sizes!(N, S);
        if AFFINE {
            let (sum_dy, sum_dy_xhat) = Self::sums::<N, S, B>(x, dy, stats);
            grads.weight = sum_dy_xhat;
            grads.bias = sum_dy;
        }
    }

    /// Folds a training batch's statistics into the running ones, as torch does after each
    /// training forward pass: `running_mean = (1 - m) running_mean + m mean`,
    /// `running_var = (1 - m) running_var + m var n / (n - 1)` (the unbiased variance), and
    /// one more batch tracked. `n` is the number of values each channel's statistics were
    /// taken over, `B S`.
    ///
    /// `m` is torch's `momentum` (0.1 by default); for `momentum=None`, torch's cumulative
    /// average, pass `1 / (num_batches_tracked + 1)`. With `n = 1`, where torch refuses to
    /// train, the variance is taken as it is (zero), so the running variance stays finite.
    pub fn update_running(&mut self, stats: &BnStats<T, C>, momentum: T, n: usize) {
        let keep = T::one() - momentum;
        let unbiased = if n > 1 {
            T::cast(n as f64 / (n - 1) as f64)
        } else {
            T::one()
        };
        for c in 0..C {
            self.running_mean[c] = keep * self.running_mean[c] + momentum * stats.mean[c];
            self.running_var[c] = keep * self.running_var[c] + momentum * stats.var[c] * unbiased;
        }
        self.num_batches_tracked = self.num_batches_tracked.saturating_add(1);
    }
}

impl<T: Real, const C: usize, const AFFINE: bool> crate::tensors::FlatTensors
    for BatchNorm<T, C, AFFINE>
{
    type Scalar = T;

    /// With `AFFINE` the weight and the bias, as [`pair`](BatchNorm::pair); never the running
    /// statistics, which no optimizer moves.
    fn for_each_tensor_mut(&mut self, f: &mut impl FnMut(&mut [T])) {
        if AFFINE {
            f(self.weight.as_mut_slice());
            f(self.bias.as_mut_slice());
        }
    }
}

impl<T: Real, const C: usize, const AFFINE: bool> Tensors<T> for BatchNorm<T, C, AFFINE> {
    /// As torch's `state_dict`: with `AFFINE` `{prefix}weight` and `{prefix}bias`, then
    /// `{prefix}running_mean` and `{prefix}running_var`, each of shape `[C]`.
    fn visit(&self, prefix: &str, f: &mut Visitor<T>) {
        if AFFINE {
            crate::tensors::named(format_args!("{prefix}weight"), |name| {
                f(name, &[C], self.weight.as_slice())
            });
            crate::tensors::named(format_args!("{prefix}bias"), |name| {
                f(name, &[C], self.bias.as_slice())
            });
        }
        crate::tensors::named(format_args!("{prefix}running_mean"), |name| {
            f(name, &[C], self.running_mean.as_slice())
        });
        crate::tensors::named(format_args!("{prefix}running_var"), |name| {
            f(name, &[C], self.running_var.as_slice())
        });
    }

    fn visit_mut(&mut self, prefix: &str, f: &mut VisitorMut<T>) {
        if AFFINE {
            crate::tensors::named(format_args!("{prefix}weight"), |name| {
                f(name, &[C], self.weight.as_mut_slice())
            });
            crate::tensors::named(format_args!("{prefix}bias"), |name| {
                f(name, &[C], self.bias.as_mut_slice())
            });
        }
        crate::tensors::named(format_args!("{prefix}running_mean"), |name| {
            f(name, &[C], self.running_mean.as_mut_slice())
        });
        crate::tensors::named(format_args!("{prefix}running_var"), |name| {
            f(name, &[C], self.running_var.as_mut_slice())
        });
    }

    /// `{prefix}num_batches_tracked`, torch's `I64` scalar buffer.
    fn visit_counts(&self, prefix: &str, f: &mut CountVisitor) {
        crate::tensors::named(format_args!("{prefix}num_batches_tracked"), |name| {
            f(name, self.num_batches_tracked)
        });
    }

    fn visit_counts_mut(&mut self, prefix: &str, f: &mut CountVisitorMut) {
        crate::tensors::named(format_args!("{prefix}num_batches_tracked"), |name| {
            f(name, &mut self.num_batches_tracked)
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::heap::zeroed;

    /// A deterministic matrix with entries spread over about `[-scale, scale]`, different per
    /// channel so means and variances differ.
    fn matrix<const R: usize, const K: usize>(salt: u32, scale: f64) -> SMatrix<f64, R, K> {
        SMatrix::from_fn(|r, c| {
            let i = (r * K + c) as u32;
            let u = (i.wrapping_mul(2654435761).wrapping_add(salt) % 1000) as f64 / 500.0 - 1.0;
            u * scale + 0.3 * r as f64
        })
    }

    /// An affine block with distinct weights, biases and running statistics.
    fn block<const C: usize, const AFFINE: bool>() -> BatchNorm<f64, C, AFFINE> {
        let mut bn = BatchNorm::<f64, C, AFFINE>::zeros();
        if AFFINE {
            bn.weight = SVector::from_fn(|c, _| 0.5 + 0.3 * c as f64);
            bn.bias = SVector::from_fn(|c, _| -0.2 + 0.1 * c as f64);
        }
        bn.running_mean = SVector::from_fn(|c, _| 0.1 * c as f64 - 0.05);
        bn.running_var = SVector::from_fn(|c, _| 0.8 + 0.25 * c as f64);
        bn
    }

    /// The forward pass written the plain way: index by index, in `f64`.
    fn reference<const C: usize, const N: usize, const S: usize, const B: usize>(
        x: &SMatrix<f64, N, B>,
        w: &[f64],
        b: &[f64],
        eps: f64,
    ) -> (SMatrix<f64, N, B>, Vec<f64>, Vec<f64>) {
        let n = (B * S) as f64;
        let mut y = SMatrix::<f64, N, B>::zeros();
        let (mut means, mut vars) = (vec![], vec![]);
        for c in 0..C {
            let values: Vec<f64> = (0..B)
                .flat_map(|j| (0..S).map(move |s| (c * S + s, j)))
                .map(|at| x[at])
                .collect();
            let mean = values.iter().sum::<f64>() / n;
            let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
            for j in 0..B {
                for s in 0..S {
                    let at = (c * S + s, j);
                    y[at] = (x[at] - mean) / (var + eps).sqrt() * w[c] + b[c];
                }
            }
            means.push(mean);
            vars.push(var);
        }
        (y, means, vars)
    }

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol * (1.0 + b.abs())
    }

    fn forward_matches<const C: usize, const N: usize, const S: usize, const B: usize>() {
        let eps = 1e-5;
        let x = matrix::<N, B>(3, 2.0);
        let bn = block::<C, true>();
        let (y, stats) = bn.train_forward::<N, S, B>(&x, eps);
        let (want, means, vars) =
            reference::<C, N, S, B>(&x, bn.weight.as_slice(), bn.bias.as_slice(), eps);
        for i in 0..N * B {
            assert!(
                close(y[i], want[i], 1e-12),
                "y[{i}] = {} vs {}",
                y[i],
                want[i]
            );
        }
        for c in 0..C {
            assert!(close(stats.mean[c], means[c], 1e-12));
            assert!(close(stats.var[c], vars[c], 1e-12));
            assert!(close(stats.inv_std[c], 1.0 / (vars[c] + eps).sqrt(), 1e-12));
        }
        // Without AFFINE: weight 1, bias 0, whatever the (unused) fields hold.
        let mut plain = block::<C, false>();
        plain.weight.fill(7.0);
        plain.bias.fill(7.0);
        let (y, _) = plain.train_forward::<N, S, B>(&x, eps);
        let (want, _, _) = reference::<C, N, S, B>(&x, &[1.0; C], &[0.0; C], eps);
        for i in 0..N * B {
            assert!(close(y[i], want[i], 1e-12));
        }
        // Inference: the running statistics in place of the batch's.
        let y = bn.eval_forward::<N, S, B>(&x, eps);
        for c in 0..C {
            for j in 0..B {
                for s in 0..S {
                    let at = (c * S + s, j);
                    let want = (x[at] - bn.running_mean[c]) / (bn.running_var[c] + eps).sqrt()
                        * bn.weight[c]
                        + bn.bias[c];
                    assert!(close(y[at], want, 1e-12), "eval {at:?}");
                }
            }
        }
    }

    #[test]
    fn forward_passes_match_the_plain_formula() {
        forward_matches::<3, 3, 1, 5>(); // BatchNorm1d on flat features
        forward_matches::<2, 8, 4, 3>(); // on (C, L) or (C, H, W) maps
        forward_matches::<4, 36, 9, 2>();
        forward_matches::<1, 6, 6, 1>(); // one sample: statistics over its positions alone
    }

    /// The output of a training pass has, per channel, mean `bias` and variance
    /// `weight^2 var / (var + eps)`.
    #[test]
    fn training_output_is_normalised() {
        let x = matrix::<12, 7>(5, 3.0);
        let mut bn = BatchNorm::<f64, 3, true>::zeros();
        bn.reset(&mut Init::new(0));
        let (y, stats) = bn.train_forward::<12, 4, 7>(&x, 0.0);
        let (_, means, vars) = reference::<3, 12, 4, 7>(&y, &[1.0; 3], &[0.0; 3], 0.0);
        for c in 0..3 {
            assert!(means[c].abs() < 1e-12);
            assert!(close(vars[c], 1.0, 1e-12), "{}", vars[c]);
            assert!(stats.var[c] > 0.0);
        }
    }

    /// `backward`'s `dx`, `dweight` and `dbias` against central differences of
    /// `L = sum(g * train_forward(x))`, in `f64`.
    fn gradients_match<const C: usize, const N: usize, const S: usize, const B: usize>() {
        let eps = 1e-3;
        let x = matrix::<N, B>(7, 1.5);
        let g = matrix::<N, B>(11, 1.0);
        let bn = block::<C, true>();
        let loss = |bn: &BatchNorm<f64, C, true>, x: &SMatrix<f64, N, B>| {
            bn.train_forward::<N, S, B>(x, eps)
                .0
                .component_mul(&g)
                .sum()
        };
        let (_, stats) = bn.train_forward::<N, S, B>(&x, eps);
        let mut grads = BatchNorm::<f64, C, true>::zeros();
        grads.weight.fill(123.0); // overwritten, not added to
        grads.bias.fill(-9.0);
        let dx = bn.backward::<N, S, B>(&x, &g, &stats, &mut grads);
        let h = 1e-6;
        for i in 0..N * B {
            let (mut plus, mut minus) = (x, x);
            plus[i] += h;
            minus[i] -= h;
            let want = (loss(&bn, &plus) - loss(&bn, &minus)) / (2.0 * h);
            assert!(
                (dx[i] - want).abs() <= 1e-7,
                "dx[{i}] = {} vs {want}",
                dx[i]
            );
        }
        for c in 0..C {
            let (mut plus, mut minus) = (bn.clone(), bn.clone());
            plus.weight[c] += h;
            minus.weight[c] -= h;
            let want = (loss(&plus, &x) - loss(&minus, &x)) / (2.0 * h);
            assert!((grads.weight[c] - want).abs() <= 1e-7, "dweight[{c}]");
            let (mut plus, mut minus) = (bn.clone(), bn.clone());
            plus.bias[c] += h;
            minus.bias[c] -= h;
            let want = (loss(&plus, &x) - loss(&minus, &x)) / (2.0 * h);
            assert!((grads.bias[c] - want).abs() <= 1e-7, "dbias[{c}]");
        }
        // backward_params: the same parameter gradients, overwriting too.
        let mut only = BatchNorm::<f64, C, true>::zeros();
        only.weight.fill(5.0);
        only.bias.fill(5.0);
        bn.backward_params::<N, S, B>(&x, &g, &stats, &mut only);
        assert_eq!((only.weight, only.bias), (grads.weight, grads.bias));

        // Without AFFINE: dx as the affine block with weight 1 and bias 0; grads untouched.
        let plain = block::<C, false>();
        let mut unit = block::<C, true>();
        unit.weight.fill(1.0);
        unit.bias.fill(0.0);
        let (_, stats) = plain.train_forward::<N, S, B>(&x, eps);
        let mut untouched = BatchNorm::<f64, C, false>::zeros();
        untouched.weight.fill(3.0);
        let before = untouched.clone();
        let dx_plain = plain.backward::<N, S, B>(&x, &g, &stats, &mut untouched);
        plain.backward_params::<N, S, B>(&x, &g, &stats, &mut untouched);
        assert_eq!(untouched, before);
        let dx_unit = unit.backward::<N, S, B>(&x, &g, &stats, &mut grads);
        assert_eq!(dx_plain, dx_unit);
        for i in 0..N * B {
            let (mut plus, mut minus) = (x, x);
            plus[i] += h;
            minus[i] -= h;
            let want = (loss(&unit, &plus) - loss(&unit, &minus)) / (2.0 * h);
            assert!((dx_plain[i] - want).abs() <= 1e-7, "plain dx[{i}]");
        }
    }

    #[test]
    fn backward_agrees_with_finite_differences() {
        gradients_match::<3, 3, 1, 5>();
        gradients_match::<2, 8, 4, 3>();
        gradients_match::<3, 18, 6, 2>();
        gradients_match::<1, 5, 5, 1>();
    }

    #[test]
    fn update_running_follows_torch() {
        let mut bn = block::<3, true>();
        let stats = BnStats::<f64, 3> {
            mean: SVector::from([0.5, -1.0, 2.0]),
            var: SVector::from([0.25, 1.5, 4.0]),
            inv_std: SVector::zeros(),
        };
        let before = bn.clone();
        let (m, n) = (0.1, 12usize);
        bn.update_running(&stats, m, n);
        for c in 0..3 {
            let mean = (1.0 - m) * before.running_mean[c] + m * stats.mean[c];
            let var = (1.0 - m) * before.running_var[c] + m * stats.var[c] * 12.0 / 11.0;
            assert!(close(bn.running_mean[c], mean, 1e-15));
            assert!(close(bn.running_var[c], var, 1e-15));
        }
        assert_eq!(bn.num_batches_tracked, 1);
        assert_eq!((bn.weight, bn.bias), (before.weight, before.bias));
        // momentum=None: the cumulative average of the batches so far.
        let mut avg = BatchNorm::<f64, 1, false>::zeros();
        avg.reset(&mut Init::new(0));
        for (k, mean) in [1.0, 2.0, 6.0].into_iter().enumerate() {
            let stats = BnStats::<f64, 1> {
                mean: SVector::from([mean]),
                var: SVector::from([1.0]),
                inv_std: SVector::zeros(),
            };
            let m = 1.0 / (avg.num_batches_tracked + 1) as f64;
            avg.update_running(&stats, m, 2);
            assert_eq!(avg.num_batches_tracked, k as i64 + 1);
        }
        assert!(close(avg.running_mean[0], 3.0, 1e-15));
        assert!(close(avg.running_var[0], 2.0, 1e-15));
        // n = 1: no division by zero.
        avg.update_running(&BnStats::zeros(), 0.5, 1);
        assert!(avg.running_var[0].is_finite());
    }

    /// Training twice from the same state, running statistics then inference, in `f32`.
    #[test]
    fn a_training_step_then_inference_in_f32() {
        let x = matrix::<8, 4>(1, 1.0).map(|v| v as f32);
        let mut bn = BatchNorm::<f32, 2, true>::zeros();
        bn.reset(&mut Init::new(0));
        let (y, stats) = bn.train_forward::<8, 4, 4>(&x, 1e-5);
        bn.update_running(&stats, 0.1, 16);
        let eval = bn.eval_forward::<8, 4, 4>(&x, 1e-5);
        assert!(y.iter().chain(eval.iter()).all(|v| v.is_finite()));
        assert_ne!(y, eval);
        assert_eq!(bn.num_batches_tracked, 1);
    }

    #[test]
    fn names_shapes_and_order_follow_torch() {
        let mut bn = block::<3, true>();
        bn.num_batches_tracked = 42;
        let mut seen = Vec::new();
        bn.visit("1.", &mut |name, shape, data| {
            seen.push((name.to_string(), shape.to_vec(), data.to_vec()))
        });
        let names: Vec<&str> = seen.iter().map(|(n, _, _)| n.as_str()).collect();
        assert_eq!(
            names,
            ["1.weight", "1.bias", "1.running_mean", "1.running_var"]
        );
        assert!(
            seen.iter()
                .all(|(_, shape, data)| shape == &[3] && data.len() == 3)
        );
        assert_eq!(seen[2].2, bn.running_mean.as_slice());
        assert_eq!(seen[3].2, bn.running_var.as_slice());
        let mut counts = Vec::new();
        bn.visit_counts("1.", &mut |name, value| {
            counts.push((name.to_string(), value))
        });
        assert_eq!(counts, [("1.num_batches_tracked".to_string(), 42)]);
        bn.visit_counts_mut("", &mut |name, value| {
            assert_eq!(name, "num_batches_tracked");
            *value = 7;
        });
        assert_eq!(bn.num_batches_tracked, 7);
        bn.visit_mut("", &mut |name, _, data| {
            if name == "running_var" {
                data[2] = 9.0;
            }
        });
        assert_eq!(bn.running_var[2], 9.0);

        let mut plain = Vec::new();
        BatchNorm::<f32, 2, false>::zeros().visit("bn.", &mut |name, shape, _| {
            plain.push((name.to_string(), shape.to_vec()))
        });
        assert_eq!(
            plain,
            [
                ("bn.running_mean".to_string(), vec![2]),
                ("bn.running_var".to_string(), vec![2])
            ]
        );
        let mut count = 0;
        BatchNorm::<f32, 2, false>::zeros().visit_counts("", &mut |_, _| count += 1);
        assert_eq!(count, 1);
    }

    #[test]
    fn zeros_default_zeroed_reset_and_counts() {
        let zero = BatchNorm::<f32, 4, true>::zeros();
        assert_eq!(zero, BatchNorm::default());
        assert_eq!(zero, zeroed::<BatchNorm<f32, 4, true>>());
        assert_eq!(BatchNorm::<f64, 3, false>::zeros(), zeroed());
        assert_eq!(BnStats::<f32, 5>::zeros(), zeroed());
        assert_eq!(BnStats::<f64, 5>::zeros(), BnStats::default());

        // Reset draws nothing: the stream is where it was.
        let mut init = Init::new(9);
        let mut bn = zero;
        bn.num_batches_tracked = 5;
        bn.running_mean.fill(2.0);
        bn.reset(&mut init);
        assert_eq!(init.uniform::<f64>(1.0), Init::new(9).uniform::<f64>(1.0));
        assert_eq!(bn.weight, SVector::from([1.0; 4]));
        assert_eq!(bn.bias, SVector::<f32, 4>::zeros());
        assert_eq!(bn.running_mean, SVector::<f32, 4>::zeros());
        assert_eq!(bn.running_var, SVector::from([1.0; 4]));
        assert_eq!(bn.num_batches_tracked, 0);
        // Without AFFINE weight and bias are not touched: a loaded block equals a reset one.
        let mut plain = BatchNorm::<f32, 4, false>::zeros();
        plain.reset(&mut init);
        assert_eq!(
            (plain.weight, plain.bias),
            (SVector::zeros(), SVector::zeros())
        );
        assert_eq!(plain.running_var, SVector::from([1.0; 4]));

        assert_eq!(BatchNorm::<f32, 4, true>::PARAMS, 8);
        assert_eq!(BatchNorm::<f32, 4, false>::PARAMS, 0);
        assert_eq!(BatchNorm::<f32, 4, true>::TENSORS, 2);
        assert_eq!(BatchNorm::<f32, 4, false>::TENSORS, 0);
    }

    #[test]
    fn pair_puts_weight_and_bias_beside_their_gradients() {
        let mut bn = BatchNorm::<f32, 2, true>::zeros();
        bn.reset(&mut Init::new(0));
        let mut grads = BatchNorm::<f32, 2, true>::zeros();
        grads.weight = SVector::from([1.0, 2.0]);
        grads.bias = SVector::from([3.0, 4.0]);
        let mut params: [&mut [f32]; 3] = [&mut [], &mut [], &mut []];
        let mut slices: [&[f32]; 3] = [&[], &[], &[]];
        let mut at = 1;
        bn.pair(&grads, &mut params, &mut slices, &mut at);
        assert_eq!(at, 3);
        assert_eq!(
            (&*params[1], &*params[2]),
            (&[1.0, 1.0][..], &[0.0, 0.0][..])
        );
        assert_eq!((slices[1], slices[2]), (&[1.0, 2.0][..], &[3.0, 4.0][..]));
        params[2][1] = 0.5;
        assert_eq!(bn.bias[1], 0.5);

        let mut plain = BatchNorm::<f32, 2, false>::zeros();
        let plain_grads = BatchNorm::<f32, 2, false>::zeros();
        let mut params: [&mut [f32]; 1] = [&mut []];
        let mut slices: [&[f32]; 1] = [&[]];
        let mut at = 0;
        plain.pair(&plain_grads, &mut params, &mut slices, &mut at);
        assert_eq!(at, 0);
    }
}
