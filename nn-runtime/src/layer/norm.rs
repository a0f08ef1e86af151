//! Torch's `nn.LayerNorm(normalized_shape)` over the last axis of each sample: its parameter
//! block and its forward and backward passes.
//!
//! A sample is one column of `N` features, row-major and channel first when it has a shape, so
//! its last axis is contiguous: the column is `N / G` consecutive groups of `G` features, and
//! each group is normalised on its own (flat features are one group, `G = N`):
//!
//! ```text
//! mean = sum_k x_k / G,   var = sum_k (x_k - mean)^2 / G   (biased, as torch)
//! x̂_k = (x_k - mean) / sqrt(var + eps),   y_k = x̂_k w_k + b_k
//! ```
//!
//! with `w` and `b` the learnable `weight` and `bias` of `G` entries each, shared by every group
//! and every sample (`elementwise_affine = true`, `bias = true`, torch's defaults); without
//! `AFFINE` there is neither, without `BIAS` no `b`. The backward pass recomputes each group's
//! mean and variance from the input (two passes over `G` numbers, cheaper to redo than to
//! keep), and with `g_k = dy_k w_k` (`dy_k` without `AFFINE`)
//!
//! ```text
//! dx_k = (g_k - mean_j g_j - x̂_k mean_j g_j x̂_j) / sqrt(var + eps)
//! dw_k = sum over samples and groups of dy_k x̂_k,   db_k = sum of dy_k
//! ```
//!
//! Nothing allocates, nor is there a buffer: each group is read where it is.
//!
//! ```
//! use nn_runtime::LayerNorm;
//! use nn_runtime::init::Init;
//! use nn_runtime::nalgebra::SMatrix;
//!
//! // nn.LayerNorm(4) after nn.Unflatten(1, (3, 4)): 12 features, 3 groups of 4; a batch of 2.
//! let mut norm = LayerNorm::<f32, 4, true, true>::zeros();
//! norm.reset(&mut Init::new(0));
//! let x = SMatrix::<f32, 12, 2>::from_fn(|r, c| (r * r + c) as f32 * 0.1);
//! let y = norm.forward(&x, 1e-5);
//! let mut grads = LayerNorm::zeros();
//! let dx = norm.backward(&x, &y, 1e-5, &mut grads);
//! assert_eq!(dx.shape(), (12, 2));
//! ```
//!
//! ```compile_fail,E0080
//! // 10 features are not groups of 4.
//! use nn_runtime::LayerNorm;
//! let x = nn_runtime::nalgebra::SMatrix::<f32, 10, 1>::zeros();
//! let _ = LayerNorm::<f32, 4, true, true>::zeros().forward(&x, 1e-5);
//! ```

use super::heap::Zeroable;
use super::init::Init;
use super::tensors::{Tensors, Visitor, VisitorMut};
use crate::real::{Real, math};
use nalgebra::{SMatrix, SVector};

/// The parameters of torch's `nn.LayerNorm(G, elementwise_affine=AFFINE, bias=BIAS)`:
/// `weight` and `bias` of shape `[G]`, one entry per feature of a group (the normalised last
/// axis), shared by every group of every sample. `eps` is the kernels' argument.
///
/// A generated network holds one per `LayerNorm` layer, its gradient struct another. A tensor
/// the layer does not have (both without `AFFINE`, the bias without `BIAS`) stays zero and is
/// neither named, initialised nor paired with a gradient.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerNorm<T: Real, const G: usize, const AFFINE: bool, const BIAS: bool> {
    /// The scale of each normalised feature, as `nn.LayerNorm.weight` (zero, and unused,
    /// without `AFFINE`).
    pub weight: SVector<T, G>,
    /// The shift of each normalised feature, as `nn.LayerNorm.bias` (zero, and unused,
    /// without `AFFINE` and `BIAS`).
    pub bias: SVector<T, G>,
}

// SAFETY: two nalgebra arrays of `f32`, of one alignment, so no padding: all-zero bytes are
// 0.0 in every float.
unsafe impl<const G: usize, const AFFINE: bool, const BIAS: bool> Zeroable
    for LayerNorm<f32, G, AFFINE, BIAS>
{
}
// SAFETY: as above, of `f64`.
unsafe impl<const G: usize, const AFFINE: bool, const BIAS: bool> Zeroable
    for LayerNorm<f64, G, AFFINE, BIAS>
{
}

impl<T: Real, const G: usize, const AFFINE: bool, const BIAS: bool> Default
    for LayerNorm<T, G, AFFINE, BIAS>
{
    /// All zero, as [`zeros`](LayerNorm::zeros): what a gradient struct starts from.
    fn default() -> Self {
        Self::zeros()
    }
}

/// The mean of a group and the reciprocal of its standard deviation, `1 / sqrt(var + eps)`,
/// the variance biased (divided by `G`) and taken about the mean (two passes).
#[inline(always)]
fn moments<T: Real, const G: usize>(x: &[T; G], eps: T) -> (T, T) {
    let n = T::cast(G as f64);
    let mean = x.iter().fold(T::zero(), |s, &v| s + v) / n;
    let var = x.iter().fold(T::zero(), |s, &v| {
        let d = v - mean;
        s + d * d
    }) / n;
    (mean, T::one() / math::sqrt(var + eps))
}

impl<T: Real, const G: usize, const AFFINE: bool, const BIAS: bool> LayerNorm<T, G, AFFINE, BIAS> {
    /// A group has at least one feature (evaluated where a method is used, so a wrong type
    /// fails to compile, with this message).
    const SIZES: () = assert!(G >= 1, "LayerNorm: G (normalized_shape) must be at least 1");

    /// Number of scalars in the block, for the generated parameter counts: `2 G` (weight and
    /// bias), `G` without `BIAS`, none without `AFFINE`.
    pub const PARAMS: usize = match (AFFINE, BIAS) {
        (true, true) => 2 * G,
        (true, false) => G,
        (false, _) => 0,
    };

    /// Number of tensors [`pair`](Self::pair) and [`Tensors`] give: the weight and the bias,
    /// the weight alone without `BIAS`, none without `AFFINE`.
    pub const TENSORS: usize = match (AFFINE, BIAS) {
        (true, true) => 2,
        (true, false) => 1,
        (false, _) => 0,
    };

    /// A block whose parameters are all zero: the gradient struct's starting value, and the
    /// network's before [`reset`](Self::reset).
    pub fn zeros() -> Self {
        let () = Self::SIZES;
        Self {
            weight: SVector::zeros(),
            bias: SVector::zeros(),
        }
    }

    /// Torch's initialisation, in place: the weight 1, the bias 0 (where the layer has them).
    /// It draws nothing from `init`, as torch draws nothing, so a network initialised from a
    /// seed stays in step with torch's random stream whatever layers surround this one.
    pub fn reset(&mut self, init: &mut Init) {
        let () = Self::SIZES;
        let _ = init;
        if AFFINE {
            self.weight.fill(T::one());
            if BIAS {
                self.bias.fill(T::zero());
            }
        }
    }

    /// Puts the weight and the bias (those the layer has) into `params[*at..]`, each beside
    /// its gradient (from `gradients`) in `grads[*at..]`, advancing `at` by
    /// [`TENSORS`](Self::TENSORS): the flat view an optimizer works on, in the order of
    /// [`Tensors`] (see `Linear::pair`). A tensor the layer does not have is left out, so no
    /// optimizer moves it off zero.
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
            *at += 1;
            if BIAS {
                params[*at] = self.bias.as_mut_slice();
                grads[*at] = gradients.bias.as_slice();
                *at += 1;
            }
        }
    }

    /// `N` is a whole number of groups of `G` (checked at compile time where a kernel is
    /// used with it).
    const fn groups<const N: usize>() {
        assert!(
            N.is_multiple_of(G),
            "LayerNorm: the features N must be a multiple of G (normalized_shape)"
        );
    }

    /// The forward pass of a batch of `B` samples of `N` features, one column each: each
    /// group of `G` consecutive features normalised by its own mean and biased variance
    /// (`eps` added to the variance), then scaled by `weight` and shifted by `bias` where the
    /// layer has them. `N` must be a multiple of `G` (checked at compile time). Allocates
    /// nothing.
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub fn forward<const N: usize, const B: usize>(
        &self,
        x: &SMatrix<T, N, B>,
        eps: T,
    ) -> SMatrix<T, N, B> {
        let () = Self::SIZES;
        const { Self::groups::<N>() };
        let mut y = *x;
        let (groups, _) = y.as_mut_slice().as_chunks_mut::<G>();
        for group in groups {
            let (mean, rstd) = moments(group, eps);
            for (k, v) in group.iter_mut().enumerate() {
                let h = (*v - mean) * rstd;
                *v = match (AFFINE, BIAS) {
                    (true, true) => h * self.weight[k] + self.bias[k],
                    (true, false) => h * self.weight[k],
                    (false, _) => h,
                };
            }
        }
        y
    }

    /// The backward pass of a batch, from its input `x` and the loss's gradient `dy` with
    /// respect to its output: overwrites `grads` with the parameters' gradients (summed over
    /// the batch and the groups; a tensor the layer does not have left zero), as `Linear`'s
    /// backward does, and returns the input's. Each group's mean and variance are recomputed
    /// from `x`; `eps` must be the forward pass's. Allocates nothing.
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub fn backward<const N: usize, const B: usize>(
        &self,
        x: &SMatrix<T, N, B>,
        dy: &SMatrix<T, N, B>,
        eps: T,
        grads: &mut Self,
    ) -> SMatrix<T, N, B> {
        let mut dx = SMatrix::<T, N, B>::zeros();
        self.backward_into(x, dy, eps, grads, Some(dx.as_mut_slice()));
        dx
    }

    /// [`backward`](Self::backward) without the input's gradient: for a first layer, which
    /// has nothing below it to pass one to.
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub fn backward_params<const N: usize, const B: usize>(
        &self,
        x: &SMatrix<T, N, B>,
        dy: &SMatrix<T, N, B>,
        eps: T,
        grads: &mut Self,
    ) {
        self.backward_into(x, dy, eps, grads, None);
    }

    /// The backward pass, the input's gradient written into `dx` where given.
    #[inline(always)]
    fn backward_into<const N: usize, const B: usize>(
        &self,
        x: &SMatrix<T, N, B>,
        dy: &SMatrix<T, N, B>,
        eps: T,
        grads: &mut Self,
        mut dx: Option<&mut [T]>,
    ) {
        let () = Self::SIZES;
        const { Self::groups::<N>() };
        grads.weight = SVector::zeros();
        grads.bias = SVector::zeros();
        if !AFFINE && dx.is_none() {
            return;
        }
        let n = T::cast(G as f64);
        let (xs, _) = x.as_slice().as_chunks::<G>();
        let (dys, _) = dy.as_slice().as_chunks::<G>();
        for (i, (x, dy)) in xs.iter().zip(dys).enumerate() {
            let (mean, rstd) = moments(x, eps);
            if AFFINE {
                let (dw, db) = (grads.weight.as_mut_slice(), grads.bias.as_mut_slice());
                for (k, (&x, &dy)) in x.iter().zip(dy).enumerate() {
                    dw[k] += dy * (x - mean) * rstd;
                    if BIAS {
                        db[k] += dy;
                    }
                }
            }
            if let Some(dx) = dx.as_deref_mut() {
                // g = dy w, the gradient with respect to x̂; its mean, and that of g x̂.
                let g = |k: usize| {
                    if AFFINE {
                        dy[k] * self.weight[k]
                    } else {
                        dy[k]
                    }
                };
                let (mut sum, mut dot) = (T::zero(), T::zero());
                for (k, &x) in x.iter().enumerate() {
                    sum += g(k);
                    dot += g(k) * (x - mean) * rstd;
                }
                let (mean_g, mean_gh) = (sum / n, dot / n);
                for (k, d) in dx[i * G..][..G].iter_mut().enumerate() {
                    *d = (g(k) - mean_g - (x[k] - mean) * rstd * mean_gh) * rstd;
                }
            }
        }
    }
}

impl<T: Real, const G: usize, const AFFINE: bool, const BIAS: bool> crate::tensors::FlatTensors
    for LayerNorm<T, G, AFFINE, BIAS>
{
    type Scalar = T;

    /// The weight and the bias, those the layer has, as [`pair`](LayerNorm::pair).
    fn for_each_tensor_mut(&mut self, f: &mut impl FnMut(&mut [T])) {
        if AFFINE {
            f(self.weight.as_mut_slice());
            if BIAS {
                f(self.bias.as_mut_slice());
            }
        }
    }
}

impl<T: Real, const G: usize, const AFFINE: bool, const BIAS: bool> Tensors<T>
    for LayerNorm<T, G, AFFINE, BIAS>
{
    /// As torch's `state_dict`: with `AFFINE`, `{prefix}weight` of shape `[G]`, and with
    /// `BIAS` too `{prefix}bias` of shape `[G]`; without `AFFINE` nothing.
    fn visit(&self, prefix: &str, f: &mut Visitor<T>) {
        if AFFINE {
            crate::tensors::named(format_args!("{prefix}weight"), |name| {
                f(name, &[G], self.weight.as_slice())
            });
            if BIAS {
                crate::tensors::named(format_args!("{prefix}bias"), |name| {
                    f(name, &[G], self.bias.as_slice())
                });
            }
        }
    }

    fn visit_mut(&mut self, prefix: &str, f: &mut VisitorMut<T>) {
        if AFFINE {
            crate::tensors::named(format_args!("{prefix}weight"), |name| {
                f(name, &[G], self.weight.as_mut_slice())
            });
            if BIAS {
                crate::tensors::named(format_args!("{prefix}bias"), |name| {
                    f(name, &[G], self.bias.as_mut_slice())
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::heap::zeroed;

    /// A deterministic matrix with entries in `[-scale, scale) + shift`.
    fn matrix<const R: usize, const C: usize>(
        salt: u32,
        scale: f64,
        shift: f64,
    ) -> SMatrix<f64, R, C> {
        SMatrix::from_fn(|r, c| {
            let i = (r * C + c) as u32;
            let u = (i.wrapping_mul(2654435761).wrapping_add(salt) % 1000) as f64 / 500.0 - 1.0;
            u * scale + shift
        })
    }

    /// A block with weight and bias off their initial values (where the layer has them).
    fn block<const G: usize, const AFFINE: bool, const BIAS: bool>()
    -> LayerNorm<f64, G, AFFINE, BIAS> {
        let mut norm = LayerNorm::zeros();
        norm.reset(&mut Init::new(0));
        norm.visit_mut("", &mut |name, _, data| {
            for (k, v) in data.iter_mut().enumerate() {
                *v += if name == "weight" { 0.3 } else { -0.2 } + 0.17 * k as f64;
            }
        });
        norm
    }

    /// The layer computed from its definition, one sample at a time, in `f64`, with vectors:
    /// each run of `g` features normalised by its mean and biased variance.
    fn reference(
        x: &[f64],
        g: usize,
        eps: f64,
        weight: Option<&[f64]>,
        bias: Option<&[f64]>,
    ) -> Vec<f64> {
        assert_eq!(x.len() % g, 0);
        let mut y = Vec::new();
        for group in x.chunks(g) {
            let mean = group.iter().sum::<f64>() / g as f64;
            let var = group.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / g as f64;
            for (k, v) in group.iter().enumerate() {
                let h = (v - mean) / (var + eps).sqrt();
                y.push(h * weight.map_or(1.0, |w| w[k]) + bias.map_or(0.0, |b| b[k]));
            }
        }
        y
    }

    /// `forward` against [`reference`] (both precisions), and `backward` (the input's gradient
    /// and the parameters') against central differences of `L = sum(c * forward(x))` in
    /// `f64`; `backward_params` against `backward`; `grads` overwritten, not added to.
    fn check<
        const G: usize,
        const N: usize,
        const B: usize,
        const AFFINE: bool,
        const BIAS: bool,
    >(
        eps: f64,
    ) {
        let norm = block::<G, AFFINE, BIAS>();
        let x = matrix::<N, B>(1, 2.0, 0.7);
        let c = matrix::<N, B>(2, 1.0, 0.1);
        let weight = AFFINE.then_some(norm.weight.as_slice());
        let bias = (AFFINE && BIAS).then_some(norm.bias.as_slice());

        let y = norm.forward(&x, eps);
        let y32 = {
            let mut norm32 = LayerNorm::<f32, G, AFFINE, BIAS>::zeros();
            norm32.weight = norm.weight.map(|v| v as f32);
            norm32.bias = norm.bias.map(|v| v as f32);
            norm32.forward(&x.map(|v| v as f32), eps as f32)
        };
        for b in 0..B {
            let column: Vec<f64> = x.column(b).iter().copied().collect();
            let want = reference(&column, G, eps, weight, bias);
            for (r, want) in want.iter().enumerate() {
                assert!(
                    (y[(r, b)] - want).abs() <= 1e-13,
                    "y[({r}, {b})] {} vs {want}",
                    y[(r, b)]
                );
                let err = (y32[(r, b)] as f64 - want).abs();
                assert!(
                    err <= 2e-6 * want.abs().max(1.0),
                    "f32 y[({r}, {b})] off by {err:e}"
                );
            }
        }

        let mut grads = LayerNorm::<f64, G, AFFINE, BIAS> {
            weight: SVector::from_element(123.0),
            bias: SVector::from_element(-7.0),
        };
        let dx = norm.backward(&x, &c, eps, &mut grads);
        let mut only = LayerNorm::<f64, G, AFFINE, BIAS> {
            weight: SVector::from_element(5.0),
            bias: SVector::from_element(5.0),
        };
        norm.backward_params(&x, &c, eps, &mut only);
        assert_eq!(grads, only, "backward_params' gradients are backward's");
        if !AFFINE {
            assert_eq!(grads, LayerNorm::zeros(), "no parameters, no gradients");
        } else if !BIAS {
            assert_eq!(
                grads.bias,
                SVector::<f64, G>::zeros(),
                "no bias, no gradient"
            );
        }

        let loss = |n: &LayerNorm<f64, G, AFFINE, BIAS>, x: &SMatrix<f64, N, B>| {
            n.forward(x, eps).component_mul(&c).sum()
        };
        let h = 1e-6;
        let close = |analytic: f64, numeric: f64, what: &str| {
            assert!(
                (analytic - numeric).abs() <= 1e-8 + 1e-6 * numeric.abs(),
                "{what}: analytic {analytic:e}, numeric {numeric:e}"
            );
        };
        for i in 0..N * B {
            let (mut plus, mut minus) = (x, x);
            plus[i] += h;
            minus[i] -= h;
            close(
                dx[i],
                (loss(&norm, &plus) - loss(&norm, &minus)) / (2.0 * h),
                &format!("dx[{i}]"),
            );
        }
        // Every tensor the layer has, through `Tensors` as an optimizer would see it.
        let mut named = Vec::new();
        grads.visit("", &mut |name, _, data| {
            named.push((name.to_string(), data.to_vec()))
        });
        assert_eq!(named.len(), LayerNorm::<f64, G, AFFINE, BIAS>::TENSORS);
        for (t, (name, analytic)) in named.iter().enumerate() {
            for k in 0..G {
                let moved = |step: f64| {
                    let mut probe = norm.clone();
                    let mut at = 0;
                    probe.visit_mut("", &mut |_, _, data| {
                        if at == t {
                            data[k] += step;
                        }
                        at += 1;
                    });
                    loss(&probe, &x)
                };
                close(
                    analytic[k],
                    (moved(h) - moved(-h)) / (2.0 * h),
                    &format!("d{name}[{k}]"),
                );
            }
        }
        // Each group's input gradient sums to zero: the layer ignores a shift of its group.
        for group in dx.as_slice().chunks(G) {
            assert!(group.iter().sum::<f64>().abs() <= 1e-12);
        }
    }

    #[test]
    fn kernels_agree_with_the_definition_and_finite_differences() {
        check::<6, 6, 3, true, true>(1e-5);
        check::<4, 12, 2, true, true>(1e-5);
        check::<4, 12, 1, true, false>(1e-5);
        check::<6, 6, 3, true, false>(1e-5);
        check::<4, 12, 2, false, true>(1e-3);
        check::<6, 6, 1, false, false>(1e-3);
        check::<1, 3, 2, true, true>(1e-5);
    }

    /// A group of one feature is its own mean: `x̂ = 0`, the output the bias, no gradient.
    #[test]
    fn a_group_of_one_is_its_bias() {
        let norm = block::<1, true, true>();
        let x = matrix::<3, 2>(3, 2.0, 0.0);
        assert_eq!(
            norm.forward(&x, 1e-5),
            SMatrix::<f64, 3, 2>::from_element(norm.bias[0])
        );
        let mut grads = LayerNorm::zeros();
        let dx = norm.backward(&x, &SMatrix::from_element(1.0), 1e-5, &mut grads);
        assert_eq!(dx, SMatrix::<f64, 3, 2>::zeros());
        assert_eq!((grads.weight[0], grads.bias[0]), (0.0, 6.0));
    }

    /// A constant group normalises to 0 (its variance 0, `eps` keeping it finite).
    #[test]
    fn a_constant_group_is_finite() {
        let norm = LayerNorm::<f32, 4, false, false>::zeros();
        let x = SMatrix::<f32, 8, 1>::from_fn(|r, _| if r < 4 { 3.0 } else { r as f32 });
        let y = norm.forward(&x, 1e-5);
        assert!(y.iter().all(|v| v.is_finite()));
        assert_eq!(y.fixed_rows::<4>(0), SMatrix::<f32, 4, 1>::zeros());
        let mut grads = LayerNorm::zeros();
        let dx = norm.backward(&x, &SMatrix::from_element(1.0), 1e-5, &mut grads);
        assert!(dx.iter().all(|v| v.is_finite()));
    }

    #[test]
    fn names_shapes_and_order_follow_torch() {
        fn names<const AFFINE: bool, const BIAS: bool>() -> Vec<(String, Vec<usize>, Vec<f32>)> {
            let mut norm = LayerNorm::<f32, 3, AFFINE, BIAS> {
                weight: SVector::from([0.1, 0.2, 0.3]),
                bias: SVector::from([0.4, 0.5, 0.6]),
            };
            let mut seen = Vec::new();
            norm.visit("2.", &mut |name, shape, data| {
                seen.push((name.to_string(), shape.to_vec(), data.to_vec()))
            });
            let mut count = 0;
            norm.visit_mut("", &mut |_, _, data| {
                data[0] = 9.0;
                count += 1;
            });
            assert_eq!(count, LayerNorm::<f32, 3, AFFINE, BIAS>::TENSORS);
            assert_eq!(
                seen.iter().map(|(_, _, data)| data.len()).sum::<usize>(),
                LayerNorm::<f32, 3, AFFINE, BIAS>::PARAMS
            );
            assert_eq!(norm.weight[0], if AFFINE { 9.0 } else { 0.1 });
            assert_eq!(norm.bias[0], if AFFINE && BIAS { 9.0 } else { 0.4 });
            seen
        }
        let weight = ("2.weight".to_string(), vec![3], vec![0.1, 0.2, 0.3]);
        let bias = ("2.bias".to_string(), vec![3], vec![0.4, 0.5, 0.6]);
        assert_eq!(names::<true, true>(), [weight.clone(), bias]);
        assert_eq!(names::<true, false>(), [weight]);
        assert_eq!(names::<false, true>(), []);
        assert_eq!(names::<false, false>(), []);
        assert_eq!(LayerNorm::<f64, 5, true, true>::PARAMS, 10);
        assert_eq!(LayerNorm::<f64, 5, true, false>::PARAMS, 5);
        assert_eq!(LayerNorm::<f64, 5, false, true>::PARAMS, 0);
    }

    #[test]
    fn zeros_default_zeroed_and_reset() {
        let zero = LayerNorm::<f32, 4, true, true>::zeros();
        assert_eq!(zero, LayerNorm::default());
        assert_eq!(zero, zeroed::<LayerNorm<f32, 4, true, true>>());
        assert_eq!(LayerNorm::<f64, 2, false, false>::zeros(), zeroed());
        let mut init = Init::new(7);
        let mut block = zero;
        block.bias.fill(0.5);
        block.reset(&mut init);
        assert_eq!(block.weight, SVector::from([1.0; 4]));
        assert_eq!(block.bias, SVector::<f32, 4>::zeros());
        // Nothing drawn: the stream is where a fresh one starts.
        assert_eq!(init.uniform::<f64>(1.0), Init::new(7).uniform::<f64>(1.0));
        let mut plain = LayerNorm::<f32, 4, false, true>::zeros();
        plain.reset(&mut init);
        assert_eq!(plain, LayerNorm::zeros(), "no parameters to set");
        let mut no_bias = LayerNorm::<f32, 4, true, false>::zeros();
        no_bias.reset(&mut init);
        assert_eq!(no_bias.weight, SVector::from([1.0; 4]));
    }

    #[test]
    fn pair_puts_each_tensor_beside_its_gradient() {
        let mut block = LayerNorm::<f32, 2, true, true>::zeros();
        block.reset(&mut Init::new(0));
        let grad = LayerNorm::<f32, 2, true, true> {
            weight: SVector::from([1.0, 2.0]),
            bias: SVector::from([3.0, 4.0]),
        };
        let mut params: [&mut [f32]; 3] = [&mut [], &mut [], &mut []];
        let mut grads: [&[f32]; 3] = [&[], &[], &[]];
        let mut at = 1;
        block.pair(&grad, &mut params, &mut grads, &mut at);
        assert_eq!(at, 3);
        assert_eq!((&*params[1], grads[1]), (&[1.0, 1.0][..], &[1.0, 2.0][..]));
        assert_eq!((&*params[2], grads[2]), (&[0.0, 0.0][..], &[3.0, 4.0][..]));
        params[2][1] = 0.5;
        assert_eq!(block.bias[1], 0.5);
        // The tensors a layer does not have are left out.
        let (mut no_bias, zero) = (
            LayerNorm::<f32, 2, true, false>::zeros(),
            LayerNorm::zeros(),
        );
        let (mut plain, none) = (
            LayerNorm::<f32, 2, false, true>::zeros(),
            LayerNorm::zeros(),
        );
        let mut params: [&mut [f32]; 1] = [&mut []];
        let mut grads: [&[f32]; 1] = [&[]];
        let mut at = 0;
        plain.pair(&none, &mut params, &mut grads, &mut at);
        assert_eq!(at, 0);
        no_bias.pair(&zero, &mut params, &mut grads, &mut at);
        assert_eq!(at, 1);
    }
}
