//! The scalar types a network can be declared over.
//!
//! [`Real`] and its fast scalar functions, and [`math`], the names generated code calls them by.
//!
//! # Where the math comes from
//!
//! Every transcendental function the runtime and the generated code compute comes from the
//! runtime's own polynomials (`exp` and `tanh` in `f32`, see [`Real::fast_exp`] and
//! [`Real::fast_tanh`]) or from the [`libm`] crate (a port of FreeBSD's and musl's msun), never
//! from the standard library's `f32::exp` and kin, which call the target's C library: so results
//! are the same bits on every target with the same kernels, and with the `std` feature or
//! without it.
//!
//! Accuracy, against the exact value rounded to the type, in units in the last place (ulp);
//! each is tested in this module against `f64` references:
//!
//! | function | `f32` | `f64` |
//! |---|---|---|
//! | `exp` | own polynomial, 1 ulp | `libm::exp`, < 1 ulp |
//! | `tanh` | own rational, 8 ulp | `libm::tanh`, a few ulp |
//! | `sigmoid`, `softplus` | 3 and 4 ulp (from `exp`, `ln_1p`) | a few ulp |
//! | `ln`, `ln_1p`, `exp_m1`, `sin`, `cos` | `libm`, < 1 ulp | `libm`, < 1 ulp |
//! | `powf` | `libm::powf`, < 1 ulp | `libm::pow`, < 1 ulp |
//! | `erf` | `libm::erff`, < 1 ulp | `libm::erf`, < 1 ulp |
//! | `powi` | repeated squaring, a rounding per multiply | the same |
//! | `sqrt` | correctly rounded (IEEE), in both builds | the same |
//!
//! (`libm`'s functions are the msun ones whose documented bounds are under 1 ulp; `sqrt` is
//! the one operation IEEE 754 requires correctly rounded, so the processor's instruction, which
//! std's and nalgebra's `sqrt` use, and `libm::sqrt` agree to the bit.)

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
    RealField + Copy + Default + core::fmt::Debug + core::fmt::Display + Kernels + Libm + 'static
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
    /// `libm`'s `tanh`.
    #[inline(always)]
    fn fast_tanh(self) -> Self {
        Libm::libm_tanh(self)
    }

    /// `exp(self)`, as the generated code's cross-entropy computes it: for `f32` Cephes'
    /// polynomial (within 1 unit in the last place, subnormal results included), branch-free
    /// so that loops over it vectorise (the C library's `expf` is a scalar call); for `f64`
    /// `libm`'s `exp`.
    #[inline(always)]
    fn fast_exp(self) -> Self {
        Libm::libm_exp(self)
    }

    /// The logistic sigmoid `1 / (1 + exp(-self))`, as the generated code computes it: through
    /// [`fast_exp`](Real::fast_exp), so branch-free and vectorisable for `f32`, and the standard
    /// library's `exp` for `f64`.
    ///
    /// Formed as `1 / (1 + e)` for `self >= 0` and `e / (1 + e)` below, with `e = exp(-|self|)`:
    /// the same function, but the exponential never overflows, so a large negative input
    /// gives its tiny (subnormal, down to 0 near `-104` in `f32`) value rather than 0.
    /// Accuracy: within 3 units in the last place of the exact value for `f32` (1 of `exp`,
    /// the rest from one division and one multiplication) wherever the result is normal;
    /// within 1 unit of the smallest subnormal below that. For `f64` a few units of the
    /// standard library's `exp`.
    #[inline(always)]
    fn fast_sigmoid(self) -> Self {
        let e = (-self.abs()).fast_exp();
        let s = Self::one() / (Self::one() + e);
        if self >= Self::zero() { s } else { e * s }
    }

    /// `softplus(self) = ln(1 + exp(self))`, torch's `nn.Softplus()` with `beta = 1`, computed
    /// as `max(self, 0) + ln_1p(exp(-|self|))` so that it never overflows: `softplus(100)` is
    /// `100`, not infinity, and `softplus(-100)` is `exp(-100)`, not 0 from `ln(1 + tiny)`.
    ///
    /// The exponential is [`fast_exp`](Real::fast_exp) (branch-free for `f32`), the logarithm
    /// `libm`'s `ln_1p`. Accuracy: within 4 units in the last place of the exact
    /// value for `f32` where the result is normal (1 of `exp`, 1 of `ln_1p`, the final
    /// addition), within 1 unit of the smallest subnormal where it is not; for `f64`, a few
    /// units.
    #[inline(always)]
    fn softplus(self) -> Self {
        let zero = Self::zero();
        let e = (-self.abs()).fast_exp();
        self.max(zero) + Libm::libm_ln_1p(e)
    }

    /// The error function `erf(self) = 2/sqrt(pi) * integral of exp(-t^2) from 0 to self`,
    /// which GELU's exact form (torch's default `approximate='none'`) needs and which the
    /// standard library does not offer on stable Rust: `libm`'s `erff` for `f32` and `erf`
    /// for `f64` (ports of FreeBSD's msun), each within 1 unit in the last place.
    fn erf(self) -> Self {
        Libm::libm_erf(self)
    }
}

/// The functions of the [`libm`] crate a scalar type has, under one name each: what
/// [`Real`]'s and [`math`]'s functions call, so that neither the standard library's (the C
/// library's) functions nor nalgebra's (which are std's with std, libm's without) decide a
/// result. A hidden supertrait of [`Real`], as [`Kernels`] is; its methods are prefixed so as
/// not to clash with nalgebra's `exp`, `sqrt`... on a `T: Real`.
#[doc(hidden)]
pub trait Libm: Sized {
    /// `e^x`.
    fn libm_exp(self) -> Self;
    /// `tanh(x)`.
    fn libm_tanh(self) -> Self;
    /// The natural logarithm.
    fn libm_ln(self) -> Self;
    /// `ln(1 + x)`.
    fn libm_ln_1p(self) -> Self;
    /// `e^x - 1`.
    fn libm_exp_m1(self) -> Self;
    /// The sine.
    fn libm_sin(self) -> Self;
    /// The cosine.
    fn libm_cos(self) -> Self;
    /// `x^c`.
    fn libm_powf(self, c: Self) -> Self;
    /// The error function.
    fn libm_erf(self) -> Self;
    /// The square root, correctly rounded.
    fn libm_sqrt(self) -> Self;
}

/// Implements [`Libm`] for a float type from one `libm` function per method.
macro_rules! libm_impl {
    ($t:ty: $($method:ident($($arg:ident),*) = $f:ident;)*) => {
        impl Libm for $t {
            $(
                #[inline(always)]
                fn $method(self $(, $arg: $t)*) -> $t {
                    libm::$f(self $(, $arg)*)
                }
            )*
        }
    };
}

libm_impl! { f32:
    libm_exp() = expf; libm_tanh() = tanhf; libm_ln() = logf; libm_ln_1p() = log1pf;
    libm_exp_m1() = expm1f; libm_sin() = sinf; libm_cos() = cosf; libm_powf(c) = powf;
    libm_erf() = erff; libm_sqrt() = sqrtf;
}

libm_impl! { f64:
    libm_exp() = exp; libm_tanh() = tanh; libm_ln() = log; libm_ln_1p() = log1p;
    libm_exp_m1() = expm1; libm_sin() = sin; libm_cos() = cos; libm_powf(c) = pow;
    libm_erf() = erf; libm_sqrt() = sqrt;
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

/// The scalar functions generated code calls, one name each, as
/// `__nn::math::erf(x)`: free functions generic over [`Real`], so that the macro writes the same
/// tokens at either precision and never meets an ambiguity between nalgebra's traits
/// ([`ComplexField`](nalgebra::ComplexField) and [`RealField`] both reach some of these names)
/// or a method the standard library may add to `f32` later (`erf` is one, unstable today).
///
/// Where the runtime has its own fast form (`exp`, `tanh`, `sigmoid`, `softplus`) these are it,
/// so an activation the macro writes through `math` vectorises like the built-in ones; each
/// states its accuracy. The others are `libm`'s (see the module docs), within an ulp.
pub mod math {
    use super::{Libm, Real};
    use nalgebra::ComplexField;

    /// `e^x` by [`Real::fast_exp`]: within 1 ulp for `f32`, branch-free; `libm`'s for `f64`.
    #[inline(always)]
    pub fn exp<T: Real>(x: T) -> T {
        x.fast_exp()
    }

    /// The natural logarithm (`libm`'s), NaN below 0: for activations
    /// and losses written as formulas.
    #[inline(always)]
    pub fn ln<T: Real>(x: T) -> T {
        Libm::libm_ln(x)
    }

    /// The square root (correctly rounded: the processor's instruction with std, `libm`'s without, the same bits), NaN below 0: for formulas such as GELU's
    /// `sqrt(2 / pi)`.
    #[inline(always)]
    pub fn sqrt<T: Real>(x: T) -> T {
        <T as ComplexField>::sqrt(x)
    }

    /// `tanh(x)` by [`Real::fast_tanh`]: within 8 ulp for `f32`, branch-free; `libm`'s for `f64`.
    #[inline(always)]
    pub fn tanh<T: Real>(x: T) -> T {
        x.fast_tanh()
    }

    /// The logistic sigmoid by [`Real::fast_sigmoid`]: within 3 ulp for `f32`, branch-free,
    /// no overflow at any input.
    #[inline(always)]
    pub fn sigmoid<T: Real>(x: T) -> T {
        x.fast_sigmoid()
    }

    /// `ln(1 + e^x)` by [`Real::softplus`]: within 4 ulp for `f32`, no overflow at any input.
    #[inline(always)]
    pub fn softplus<T: Real>(x: T) -> T {
        x.softplus()
    }

    /// The error function by [`Real::erf`] (`libm`): within 1 ulp. For GELU's exact form.
    #[inline(always)]
    pub fn erf<T: Real>(x: T) -> T {
        Real::erf(x)
    }

    /// The sine (`libm`'s), for periodic activations such as SIREN's.
    #[inline(always)]
    pub fn sin<T: Real>(x: T) -> T {
        Libm::libm_sin(x)
    }

    /// The cosine (`libm`'s), the sine's derivative.
    #[inline(always)]
    pub fn cos<T: Real>(x: T) -> T {
        Libm::libm_cos(x)
    }

    /// The absolute value (exact), named here so generated code has one spelling for it.
    #[inline(always)]
    pub fn abs<T: Real>(x: T) -> T {
        <T as ComplexField>::abs(x)
    }

    /// `ln(1 + x)` (`libm`'s), accurate for small `x` where `ln(1 + x)` would lose it.
    #[inline(always)]
    pub fn ln_1p<T: Real>(x: T) -> T {
        Libm::libm_ln_1p(x)
    }

    /// `e^x - 1` (`libm`'s), accurate for small `x` where `exp(x) - 1` would lose it (ELU, SELU
    /// below 0).
    #[inline(always)]
    pub fn exp_m1<T: Real>(x: T) -> T {
        Libm::libm_exp_m1(x)
    }

    /// `x^n` for an integer `n` (repeated squaring, as std's `powi`: exact for small `n` up to a
    /// few roundings).
    #[inline(always)]
    pub fn powi<T: Real>(x: T, n: i32) -> T {
        // compiler-rt's `__powisf2`, which std's `powi` calls: square-and-multiply on the bits
        // of `|n|`, then the reciprocal for a negative `n`. Written here so that the `std`
        // and `no_std` builds (nalgebra's `powi` is std's with std, `libm`'s `pow` without)
        // multiply in the same order.
        let mut base = x;
        let mut bits = n.unsigned_abs();
        let mut result = T::one();
        loop {
            if bits & 1 == 1 {
                result *= base;
            }
            bits >>= 1;
            if bits == 0 {
                break;
            }
            base *= base;
        }
        if n < 0 { T::one() / result } else { result }
    }

    /// `x^c` for a real exponent `c` (`libm`'s), NaN for negative `x` and non-integer `c`.
    #[inline(always)]
    pub fn powf<T: Real>(x: T, c: T) -> T {
        Libm::libm_powf(x, c)
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
        // `f64` is libm's exp, within an ulp of the correctly rounded value (std's, here).
        assert_eq!(1.0f64.fast_exp(), libm::exp(1.0));
        let ulps = 1.0f64.fast_exp().to_bits() as i64 - 1.0f64.exp().to_bits() as i64;
        assert!(ulps.abs() <= 1, "{ulps} ulp");
    }

    /// The error of `got` against `exact` (computed in `f64`), in units in the last place of
    /// `f32` where `exact` rounds to a normal `f32`; where it is subnormal, in units of the
    /// smallest subnormal (an absolute error: there is no relative accuracy left to have).
    fn ulps(got: f32, exact: f64) -> u64 {
        let rounded = exact as f32;
        if got == rounded {
            return 0;
        }
        if (exact.abs()) < f32::MIN_POSITIVE as f64 {
            let smallest = f32::from_bits(1) as f64;
            return ((got as f64 - exact).abs() / smallest).ceil() as u64;
        }
        assert_eq!(
            got.is_sign_negative(),
            rounded.is_sign_negative(),
            "{got} vs {exact}"
        );
        (got.to_bits() as i64 - rounded.to_bits() as i64).unsigned_abs()
    }

    /// The worst error of `fast` against `exact` over `n + 1` points evenly from `lo` to `hi`.
    fn worst(
        lo: f32,
        hi: f32,
        n: u32,
        fast: impl Fn(f32) -> f32,
        exact: impl Fn(f64) -> f64,
    ) -> u64 {
        (0..=n)
            .map(|i| {
                let x = lo + (hi - lo) * (i as f32 / n as f32);
                let e = ulps(fast(x), exact(x as f64));
                assert!(e < 1000, "x = {x}: {} vs {}", fast(x), exact(x as f64));
                e
            })
            .max()
            .unwrap()
    }

    /// `ln(1 + e^x)` in `f64`, stable: the reference for `softplus`.
    fn softplus64(x: f64) -> f64 {
        x.max(0.0) + (-x.abs()).exp().ln_1p()
    }

    #[test]
    fn fast_sigmoid_is_within_a_few_ulp() {
        let exact = |x: f64| 1.0 / (1.0 + (-x).exp());
        let e = worst(-110.0, 110.0, 2_000_000, Real::fast_sigmoid, exact);
        assert!(e <= 3, "worst error {e} ulp");
        let e = worst(-1e-3, 1e-3, 100_000, Real::fast_sigmoid, exact);
        assert!(e <= 3, "worst error {e} ulp near 0");
        assert_eq!(0.0f32.fast_sigmoid(), 0.5);
        assert_eq!(f32::INFINITY.fast_sigmoid(), 1.0);
        assert_eq!(f32::NEG_INFINITY.fast_sigmoid(), 0.0);
        assert!(f32::NAN.fast_sigmoid().is_nan());
        assert!((-100.0f32).fast_sigmoid() > 0.0, "subnormal, not 0");
        let x = 3.5f64;
        assert!((x.fast_sigmoid() - exact(x)).abs() <= 1e-15);
        assert!(((-700.0f64).fast_sigmoid() / (-700.0f64).exp() - 1.0).abs() < 1e-14);
    }

    #[test]
    fn softplus_is_within_a_few_ulp_and_never_overflows() {
        let e = worst(-110.0, 110.0, 2_000_000, Real::softplus, softplus64);
        assert!(e <= 4, "worst error {e} ulp");
        let e = worst(-1e-3, 1e-3, 100_000, Real::softplus, softplus64);
        assert!(e <= 4, "worst error {e} ulp near 0");
        // Large inputs: the input itself, not infinity.
        assert_eq!(100.0f32.softplus(), 100.0);
        assert_eq!(1e30f32.softplus(), 1e30);
        assert_eq!(f32::INFINITY.softplus(), f32::INFINITY);
        // Large negative inputs: e^x, not 0 (subnormal in f32, within 1 smallest subnormal).
        let tiny = (-100.0f32).softplus();
        assert!(tiny > 0.0);
        let smallest = f32::from_bits(1) as f64;
        assert!((tiny as f64 - (-100.0f64).exp()).abs() <= smallest);
        assert!(((-100.0f64).softplus() / (-100.0f64).exp() - 1.0).abs() < 1e-15);
        assert!(((-80.0f32).softplus() as f64 / (-80.0f64).exp() - 1.0).abs() < 1e-6);
        assert_eq!(100.0f64.softplus(), 100.0);
        assert_eq!(1000.0f64.softplus(), 1000.0);
        assert!(f32::NAN.softplus().is_nan());
        assert!((0.0f64.softplus() - core::f64::consts::LN_2).abs() < 1e-16);
    }

    #[test]
    fn erf_is_within_an_ulp_of_libm_in_f64() {
        let e = worst(-10.0, 10.0, 2_000_000, Real::erf, libm::erf);
        assert!(e <= 1, "worst error {e} ulp");
        assert_eq!(Real::erf(100.0f32), 1.0);
        assert_eq!(Real::erf(-100.0f32), -1.0);
        assert_eq!(Real::erf(0.0f32), 0.0);
        assert_eq!(Real::erf(0.5f64), libm::erf(0.5));
        // A value known to 17 digits: erf(1) = 0.8427007929497149.
        assert!((Real::erf(1.0f64) - 0.842_700_792_949_714_9).abs() < 1e-16);
    }

    /// Each function of `math` against its `f64` reference, over a sweep to `|x| = 100` where
    /// its domain allows, in `f32` ulps.
    #[test]
    fn math_functions_agree_with_f64() {
        use super::math;
        let all = |f: fn(f32) -> f32, g: fn(f64) -> f64, tolerance: u64| {
            let e = worst(-100.0, 100.0, 400_000, f, g);
            assert!(e <= tolerance, "worst error {e} ulp");
        };
        let positive = |f: fn(f32) -> f32, g: fn(f64) -> f64, tolerance: u64| {
            let e = worst(1e-6, 100.0, 400_000, f, g);
            assert!(e <= tolerance, "worst error {e} ulp");
        };
        all(math::exp, f64::exp, 1);
        all(math::tanh, f64::tanh, 8);
        all(math::sigmoid, |x| 1.0 / (1.0 + (-x).exp()), 3);
        all(math::softplus, softplus64, 4);
        all(math::erf, libm::erf, 1);
        all(math::sin, f64::sin, 1);
        all(math::cos, f64::cos, 1);
        all(math::abs, f64::abs, 0);
        all(math::exp_m1, f64::exp_m1, 1);
        positive(math::ln, f64::ln, 1);
        positive(math::sqrt, f64::sqrt, 0);
        positive(math::ln_1p, f64::ln_1p, 1);
        let e = worst(-0.999, 100.0, 400_000, math::ln_1p, f64::ln_1p);
        assert!(e <= 1, "ln_1p: worst error {e} ulp");
        for n in -3..=5 {
            let e = worst(0.1, 10.0, 10_000, |x| math::powi(x, n), |x| x.powi(n));
            assert!(e <= 4, "powi {n}: worst error {e} ulp");
        }
        for c in [-1.5f32, 0.5, 2.5] {
            let e = worst(
                0.1,
                10.0,
                10_000,
                |x| math::powf(x, c),
                |x| x.powf(c as f64),
            );
            assert!(e <= 1, "powf {c}: worst error {e} ulp");
        }
        // In f64 each is its reference (or the runtime's f64 form).
        assert_eq!(math::exp(1.25f64), 1.25f64.exp());
        assert_eq!(math::tanh(1.25f64), 1.25f64.tanh());
        assert_eq!(math::ln(1.25f64), 1.25f64.ln());
        assert_eq!(math::powi(1.25f64, 3), 1.25f64.powi(3));
        assert_eq!(math::powf(1.25f64, 0.3), 1.25f64.powf(0.3));
    }
}
