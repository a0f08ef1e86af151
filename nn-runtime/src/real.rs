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
}

impl Real for f32 {
    const BYTES: usize = 4;
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
