//! The parameter block of a PReLU layer: its learnable slopes.
//!
//! PReLU is the first activation that learns, so it is the first parameter block that is not a
//! [`Linear`](super::Linear): generated networks hold it as a field, their gradient structs
//! another, and it names its tensor for `state_dict` and pairs it with its gradient for the
//! optimizers exactly as `Linear` does. Its forward and backward steps are the generic
//! `map_param`, `chain_param` and `chain_param_only` kernels (private to the crate, exported
//! to generated code only).

use super::heap::Zeroable;
use super::tensors::{Tensors, Visitor, VisitorMut};
use crate::real::Real;
use nalgebra::SVector;

/// The slopes of torch's `nn.PReLU(num_parameters=P)`: `weight` of shape `[P]`, one slope per
/// feature, or with `P = 1` one slope shared by every feature.
///
/// `PReLU(x) = x` for `x >= 0` and `a x` below, where `a` is the feature's slope. The slopes
/// are learned like any weight, so the block carries them in the same shape and under the same
/// name (`weight`) as torch, for weight files to load both ways; a generated network holds one
/// per PReLU layer, and its gradient struct another, whose `weight` is then the gradient.
#[derive(Clone, Debug, PartialEq)]
pub struct PRelu<T: Real, const P: usize> {
    /// The slopes for negative inputs, one per feature (or one in all with `P = 1`), as
    /// `nn.PReLU.weight`.
    pub weight: SVector<T, P>,
}

impl<T: Real, const P: usize> PRelu<T, P> {
    /// Number of scalars in the block: `P`, for the generated parameter counts.
    pub const PARAMS: usize = P;

    /// A block whose slopes are all zero (plain ReLU): the gradient struct's starting value,
    /// and the network's before [`reset`](Self::reset).
    pub fn zeros() -> Self {
        Self {
            weight: SVector::zeros(),
        }
    }

    /// Sets every slope to `init`, in place: torch's initialisation, which draws nothing
    /// (`nn.PReLU(init=0.25)` by default), so a network initialised from a seed stays in step
    /// with torch's random stream.
    pub fn reset(&mut self, init: T) {
        self.weight.fill(init);
    }

    /// Puts the weight into `params[*at]`, beside its gradient (from `gradients`) in
    /// `grads[*at]`, advancing `at` by one: the flat view an optimizer works on, as the
    /// generated `Network::tensors` assembles it layer by layer (see `Linear::pair`).
    #[doc(hidden)]
    #[inline]
    pub fn pair<'a>(
        &'a mut self,
        gradients: &'a Self,
        params: &mut [&'a mut [T]],
        grads: &mut [&'a [T]],
        at: &mut usize,
    ) {
        params[*at] = self.weight.as_mut_slice();
        grads[*at] = gradients.weight.as_slice();
        *at += 1;
    }
}

impl<T: Real, const P: usize> crate::tensors::FlatTensors for PRelu<T, P> {
    type Scalar = T;

    /// The weight, as [`pair`](PRelu::pair).
    fn for_each_tensor_mut(&mut self, f: &mut impl FnMut(&mut [T])) {
        f(self.weight.as_mut_slice());
    }
}

impl<T: Real, const P: usize> Default for PRelu<T, P> {
    /// All zero, as [`zeros`](PRelu::zeros): what a gradient struct starts from.
    fn default() -> Self {
        Self::zeros()
    }
}

// SAFETY: a `PRelu` of `f32` or `f64` is one `SVector`, an array of floats, and no padding
// (an array of floats has none, nor has a struct of one field of that alignment): all-zero
// bytes are 0.0 in every float.
unsafe impl<const P: usize> Zeroable for PRelu<f32, P> {}
// SAFETY: as above.
unsafe impl<const P: usize> Zeroable for PRelu<f64, P> {}

impl<T: Real, const P: usize> Tensors<T> for PRelu<T, P> {
    /// One tensor, `{prefix}weight` of shape `[P]`, as in torch's `state_dict`.
    fn visit(&self, prefix: &str, f: &mut Visitor<T>) {
        crate::tensors::named(format_args!("{prefix}weight"), |name| {
            f(name, &[P], self.weight.as_slice())
        });
    }

    fn visit_mut(&mut self, prefix: &str, f: &mut VisitorMut<T>) {
        crate::tensors::named(format_args!("{prefix}weight"), |name| {
            f(name, &[P], self.weight.as_mut_slice())
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::heap::zeroed;
    use crate::layer::ops::{chain_param, chain_param_only, map_param};
    use nalgebra::SMatrix;

    /// A deterministic matrix with entries in `[-scale, scale)`, none within `0.01` of 0 (the
    /// kink of PReLU, where a finite difference straddles it).
    fn matrix<const R: usize, const C: usize>(salt: u32, scale: f64) -> SMatrix<f64, R, C> {
        SMatrix::from_fn(|r, c| {
            let i = (r * C + c) as u32;
            let u = (i.wrapping_mul(2654435761).wrapping_add(salt) % 1000) as f64 / 500.0 - 1.0;
            let u = if u.abs() < 0.01 { 0.5 } else { u };
            u * scale
        })
    }

    fn prelu(x: f64, a: f64) -> f64 {
        if x >= 0.0 { x } else { a * x }
    }

    /// PReLU's derivatives with respect to the input and to the slope.
    fn prelu_d(x: f64, a: f64) -> (f64, f64) {
        if x >= 0.0 { (1.0, 0.0) } else { (a, x) }
    }

    /// A smooth function of both, so every element's derivatives are nonzero.
    fn smooth(x: f64, a: f64) -> f64 {
        a * x * x + a.sin() * x
    }

    fn smooth_d(x: f64, a: f64) -> (f64, f64) {
        (2.0 * a * x + a.sin(), x * x + a.cos() * x)
    }

    /// `dx` and `dw` of [`chain_param`] (and `dw` of [`chain_param_only`]) against central
    /// differences of `L = sum(g * map_param(x, w, f))` in `f64`, for one parameter per row or
    /// one in all.
    fn check<const R: usize, const C: usize, const P: usize>(
        f: fn(f64, f64) -> f64,
        d: fn(f64, f64) -> (f64, f64),
    ) {
        let x = matrix::<R, C>(1, 2.0);
        let g = matrix::<R, C>(2, 1.0);
        let w = SVector::<f64, P>::from_fn(|k, _| 0.25 + 0.1 * k as f64);
        let loss = |x: &SMatrix<f64, R, C>, w: &SVector<f64, P>| {
            map_param(x, w, f).component_mul(&g).sum()
        };
        let mut dw = SVector::<f64, P>::from_element(123.0); // overwritten, not added to
        let dx = chain_param(g, &x, &w, &mut dw, d);
        let mut dw_only = SVector::<f64, P>::from_element(-7.0);
        chain_param_only(&g, &x, &w, &mut dw_only, |x, a| d(x, a).1);
        assert_eq!(dw, dw_only);
        let h = 1e-6;
        for i in 0..R * C {
            let (mut plus, mut minus) = (x, x);
            plus[i] += h;
            minus[i] -= h;
            let want = (loss(&plus, &w) - loss(&minus, &w)) / (2.0 * h);
            assert!(
                (dx[i] - want).abs() <= 1e-8,
                "dx[{i}] = {} vs {want}",
                dx[i]
            );
        }
        for k in 0..P {
            let (mut plus, mut minus) = (w, w);
            plus[k] += h;
            minus[k] -= h;
            let want = (loss(&x, &plus) - loss(&x, &minus)) / (2.0 * h);
            assert!(
                (dw[k] - want).abs() <= 1e-7,
                "dw[{k}] = {} vs {want}",
                dw[k]
            );
        }
    }

    #[test]
    fn kernels_agree_with_finite_differences() {
        check::<5, 3, 5>(prelu, prelu_d);
        check::<5, 3, 1>(prelu, prelu_d);
        check::<4, 6, 4>(smooth, smooth_d);
        check::<4, 6, 1>(smooth, smooth_d);
        check::<1, 2, 1>(smooth, smooth_d);
    }

    /// Each element takes its row's slope, or the one shared slope.
    #[test]
    fn map_param_picks_the_row_slope() {
        let x = SMatrix::<f32, 2, 2>::new(-1.0, 2.0, -4.0, -8.0);
        let per_row = map_param(&x, &SVector::from([0.5, 0.25]), |x, a| {
            if x >= 0.0 { x } else { a * x }
        });
        assert_eq!(per_row, SMatrix::<f32, 2, 2>::new(-0.5, 2.0, -1.0, -2.0));
        let shared = map_param(
            &x,
            &SVector::from([0.5]),
            |x, a| if x >= 0.0 { x } else { a * x },
        );
        assert_eq!(shared, SMatrix::<f32, 2, 2>::new(-0.5, 2.0, -2.0, -4.0));
    }

    #[test]
    fn names_shapes_and_order_follow_torch() {
        let mut block = PRelu::<f32, 3> {
            weight: SVector::from([0.1, 0.2, 0.3]),
        };
        let mut seen = Vec::new();
        block.visit("4.", &mut |name, shape, data| {
            seen.push((name.to_string(), shape.to_vec(), data.to_vec()))
        });
        assert_eq!(
            seen,
            [("4.weight".to_string(), vec![3], vec![0.1, 0.2, 0.3])]
        );
        block.visit_mut("", &mut |name, shape, data| {
            assert_eq!((name, shape), ("weight", &[3][..]));
            data[1] = 9.0;
        });
        assert_eq!(block.weight[1], 9.0);
        let mut shared = Vec::new();
        PRelu::<f64, 1>::zeros().visit("act.", &mut |name, shape, _| {
            shared.push((name.to_string(), shape.to_vec()))
        });
        assert_eq!(shared, [("act.weight".to_string(), vec![1])]);
    }

    #[test]
    fn zeros_default_zeroed_and_reset() {
        let zero = PRelu::<f32, 4>::zeros();
        assert_eq!(zero, PRelu::default());
        assert_eq!(zero, zeroed::<PRelu<f32, 4>>());
        assert_eq!(PRelu::<f64, 2>::zeros(), zeroed());
        let mut block = zero;
        block.reset(0.25);
        assert_eq!(block.weight, SVector::from([0.25; 4]));
        assert_eq!(PRelu::<f32, 4>::PARAMS, 4);
    }

    #[test]
    fn pair_puts_the_weight_beside_its_gradient() {
        let mut block = PRelu::<f32, 2>::zeros();
        block.reset(0.25);
        let grad = PRelu::<f32, 2> {
            weight: SVector::from([1.0, 2.0]),
        };
        let mut params: [&mut [f32]; 2] = [&mut [], &mut []];
        let mut grads: [&[f32]; 2] = [&[], &[]];
        let mut at = 1;
        block.pair(&grad, &mut params, &mut grads, &mut at);
        assert_eq!(at, 2);
        assert_eq!(params[1], [0.25, 0.25]);
        assert_eq!(grads[1], [1.0, 2.0]);
        assert!(params[0].is_empty() && grads[0].is_empty());
        params[1][0] = 0.5;
        assert_eq!(block.weight[0], 0.5);
    }
}
