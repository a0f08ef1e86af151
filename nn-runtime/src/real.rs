//! The scalar types a network can be declared over.

use crate::simd::Kernels;
use nalgebra::RealField;

/// A floating-point scalar a network computes in: `f32` (the default) or `f64`.
///
/// It adds to nalgebra's [`RealField`] the conversions the runtime needs to state constants
/// (learning rates, init bounds) once, in `f64`, and use them at either precision.
///
/// Scalar math only. The SIMD kernels a type has are the hidden supertrait `Kernels` of the
/// floor below, so that the layer operations, generic over `T: Real`, reach them without a
/// bound of their own.
pub trait Real:
    RealField + Copy + Default + core::fmt::Debug + core::fmt::Display + Kernels + 'static
{
    /// Number of bytes of one scalar (4 for `f32`, 8 for `f64`).
    const BYTES: usize;
    /// The smallest positive normal number (`f32::MIN_POSITIVE`, `f64::MIN_POSITIVE`).
    const MIN_NORMAL: Self;
    /// Converts from `f64`, rounding to nearest where `Self` is narrower.
    fn cast(x: f64) -> Self;
    /// Converts to `f64` exactly.
    fn widen(self) -> f64;

    /// `tanh(self)`, as the generated code computes it: for `f32` a rational approximation
    /// within 8 units in the last place (5e-7 relative) of the exact value, branch-free so that loops over
    /// it vectorise (the C library's `tanhf` is a scalar call of about 8 ns); for `f64` the
    /// standard library's.
    #[inline(always)]
    fn fast_tanh(self) -> Self {
        self.tanh()
    }

    /// `exp(self)`, as the generated code's cross-entropy computes it: for `f32` Cephes'
    /// polynomial (within 1 unit in the last place, subnormal results included), branch-free
    /// so that loops over it vectorise (the C library's `expf` is a scalar call); for `f64`
    /// the standard library's.
    #[inline(always)]
    fn fast_exp(self) -> Self {
        self.exp()
    }
}

impl Real for f32 {
    const BYTES: usize = 4;
    const MIN_NORMAL: f32 = f32::MIN_POSITIVE;

    /// Eigen's rational approximation of `tanh` (`ptanh_float`): clamped at `+-7.9053111`,
    /// where `tanh` rounds to `+-1` in `f32`, and `x` itself below `4e-4`, where `tanh(x)`
    /// rounds to `x`.
    #[inline(always)]
    #[allow(clippy::excessive_precision)] // Eigen's coefficients, as published
    fn fast_tanh(self) -> f32 {
        let tiny = self.abs() < 4e-4;
        let c = self.clamp(-7.905_311, 7.905_311);
        let x2 = c * c;
        let mut p = x2 * -2.760_768_5e-16 + 2.000_187_9e-13;
        p = p * x2 + -8.604_671_5e-11;
        p = p * x2 + 5.122_297e-8;
        p = p * x2 + 1.485_722_4e-5;
        p = p * x2 + 6.372_619_3e-4;
        p = p * x2 + 4.893_524_6e-3;
        p *= c;
        let mut q = x2 * 1.198_258_4e-6 + 1.185_347e-4;
        q = q * x2 + 2.268_434_6e-3;
        q = q * x2 + 4.893_525e-3;
        if tiny { self } else { p / q }
    }

    /// Cephes' `expf`: `exp(x) = 2^n exp(r)` with `n = round(x / ln 2)` and `|r| <= ln 2 / 2`,
    /// `r` by Cody and Waite's two-part `ln 2` (the first part's product with `n` is exact),
    /// `exp(r)` by a degree-7 polynomial. `2^n` is applied as two factors `2^(n/2)`, so that
    /// subnormal results (down to `x = -104`, where `exp` rounds to 0) round once, correctly
    /// scaled. Plain multiplies and adds, no `mul_add`: in the portable build that is a libm
    /// call.
    #[inline(always)]
    #[allow(clippy::excessive_precision)] // Cephes' coefficients, as published
    fn fast_exp(self) -> f32 {
        // Above this `exp` overflows; below -104 it rounds to 0. A NaN passes through `clamp`.
        const OVERFLOW: f32 = 88.722_84;
        let x = self.clamp(-104.0, OVERFLOW);
        // Round to nearest by adding and removing 1.5 * 2^23 (|x / ln 2| < 2^22): two adds,
        // where `round` would be a call in the portable build.
        const SHIFT: f32 = 12_582_912.0;
        let shifted = x * core::f32::consts::LOG2_E + SHIFT;
        let n = shifted - SHIFT;
        let r = x - n * 0.693_359_375 - n * -2.121_944_4e-4;
        let mut y = 1.987_569_15e-4f32;
        y = y * r + 1.398_199_950_7e-3;
        y = y * r + 8.333_451_907_3e-3;
        y = y * r + 4.166_579_589_4e-2;
        y = y * r + 1.666_666_545_9e-1;
        y = y * r + 5.000_000_120_1e-1;
        y = y * (r * r) + r + 1.0;
        // n in [-150, 128] as an integer: the low bits of `shifted`, whose last place is 1
        // (a float-to-int conversion does not vectorise: it saturates). Each half of n is in
        // [-75, 64], a normal power of two; wrapping arithmetic only matters for a NaN, whose
        // result is NaN through `y` whatever the power.
        let n = (shifted.to_bits() as i32).wrapping_sub(SHIFT.to_bits() as i32);
        let half = n >> 1;
        let power = |k: i32| f32::from_bits((k.wrapping_add(127) as u32) << 23);
        let result = y * power(half) * power(n - half);
        if self > OVERFLOW {
            f32::INFINITY
        } else {
            result
        }
    }

    #[inline(always)]
    fn cast(x: f64) -> Self {
        x as f32
    }
    #[inline(always)]
    fn widen(self) -> f64 {
        self as f64
    }
}

impl Real for f64 {
    const BYTES: usize = 8;
    const MIN_NORMAL: f64 = f64::MIN_POSITIVE;
    #[inline(always)]
    fn cast(x: f64) -> Self {
        x
    }
    #[inline(always)]
    fn widen(self) -> f64 {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::Real;

    /// The approximation against `tanh` computed in `f64`, in units in the last place, over
    /// a dense sweep of the whole useful range and beyond.
    #[test]
    fn fast_tanh_is_within_a_few_ulp() {
        let mut worst = 0u32;
        for i in -2_000_000..=2_000_000 {
            let x = i as f32 * 5e-6; // -10 ..= 10
            let (fast, exact) = (x.fast_tanh(), (x as f64).tanh() as f32);
            let ulps = (fast.to_bits() as i64 - exact.to_bits() as i64).unsigned_abs() as u32;
            worst = worst.max(ulps);
        }
        assert!(worst <= 8, "worst error {worst} ulp");
        assert_eq!(f32::INFINITY.fast_tanh(), 1.0);
        assert_eq!((-1e30f32).fast_tanh(), -1.0);
        assert_eq!(0.0f32.fast_tanh(), 0.0);
    }

    /// The approximation against `exp` computed in `f64`: within 1 ulp over the whole range
    /// of normal results, within 1 unit of the smallest subnormal below it, and the limits.
    #[test]
    fn fast_exp_is_within_a_few_ulp() {
        let mut worst = 0u32;
        let mut worst_subnormal = 0.0f64;
        for i in -4_000_000..=3_500_000 {
            let x = i as f32 * 2.6e-5; // -104 ..= 91
            let fast = x.fast_exp();
            let exact = (x as f64).exp();
            if exact >= f32::MIN_POSITIVE as f64 && exact <= f32::MAX as f64 {
                let ulps = (fast.to_bits() as i64 - (exact as f32).to_bits() as i64).unsigned_abs();
                worst = worst.max(ulps as u32);
            } else if exact < f32::MIN_POSITIVE as f64 {
                worst_subnormal = worst_subnormal.max((fast as f64 - exact).abs());
            } else {
                assert_eq!(fast, f32::INFINITY, "exp({x}) overflows");
            }
        }
        assert!(worst <= 1, "worst error {worst} ulp");
        let smallest = f32::from_bits(1) as f64;
        assert!(
            worst_subnormal <= smallest,
            "worst subnormal error {worst_subnormal}"
        );
        assert_eq!(0.0f32.fast_exp(), 1.0);
        assert_eq!(f32::NEG_INFINITY.fast_exp(), 0.0);
        assert_eq!((-200.0f32).fast_exp(), 0.0);
        assert_eq!(f32::INFINITY.fast_exp(), f32::INFINITY);
        assert!(f32::NAN.fast_exp().is_nan());
        assert_eq!(1.0f64.fast_exp(), 1.0f64.exp());
    }
}
