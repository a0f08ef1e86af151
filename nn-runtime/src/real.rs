//! The scalar types a network can be declared over.

use nalgebra::RealField;

/// A floating-point scalar a network computes in: `f32` (the default) or `f64`.
///
/// It adds to nalgebra's [`RealField`] the conversions the runtime needs to state constants
/// (learning rates, init bounds) once, in `f64`, and use them at either precision.
pub trait Real:
    RealField + Copy + Default + core::fmt::Debug + core::fmt::Display + 'static
{
    /// Number of bytes of one scalar (4 for `f32`, 8 for `f64`).
    const BYTES: usize;
    /// Converts from `f64`, rounding to nearest where `Self` is narrower.
    fn cast(x: f64) -> Self;
    /// Converts to `f64` exactly.
    fn widen(self) -> f64;

    /// `C = A B` (or `C += A B`) by the blocked SIMD kernel for large layers; see
    /// `gemm::sgemm` for the layout. Returns `false`, doing nothing, where this scalar type or
    /// processor has no such kernel, and the caller uses nalgebra's product.
    #[doc(hidden)]
    #[allow(clippy::too_many_arguments)]
    fn gemm(
        _shape: (usize, usize, usize),
        _a: &[Self],
        _lda: usize,
        _b: &[Self],
        _b_strides: (usize, usize),
        _c: &mut [Self],
        _ldc: usize,
        _accumulate: bool,
    ) -> bool {
        false
    }
}

impl Real for f32 {
    const BYTES: usize = 4;
    fn gemm(
        shape: (usize, usize, usize),
        a: &[f32],
        lda: usize,
        b: &[f32],
        b_strides: (usize, usize),
        c: &mut [f32],
        ldc: usize,
        accumulate: bool,
    ) -> bool {
        crate::gemm::sgemm(shape, a, lda, b, b_strides, c, ldc, accumulate)
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
    #[inline(always)]
    fn cast(x: f64) -> Self {
        x
    }
    #[inline(always)]
    fn widen(self) -> f64 {
        self
    }
}
