//! The bottom floor: the SIMD kernels and their dispatch on the processor's features.
//!
//! Everything above reaches the kernels through [`Kernels`], implemented for `f32` by the
//! AVX2/FMA kernels of [`gemm`] and [`gemv`] and for `f64` by nothing (every method answers
//! `false` and the caller runs its portable loops). Whether the processor has those features
//! is asked in one place only, [`has_avx2_fma`], so that every kernel and every
//! multiversioned loop agree on it.

mod gemm;
mod gemv;
#[cfg(target_arch = "x86_64")]
mod x86;

pub(crate) use gemv::fits as gemv_fits;

/// Whether this processor has AVX2 and FMA, for the generated code's choice between its two
/// compiled copies and for every kernel here (std caches the answer: after the first call
/// this is a load and a test).
#[inline(always)]
pub fn has_avx2_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Runs `f` compiled for AVX2 and FMA where the processor has them: `f` is inlined into a
/// function with those target features, so its loops get 8-lane vectors and fused
/// multiply-adds even in a crate built with default flags. The optimizers' element loops run
/// through it.
#[inline(always)]
pub(crate) fn fast<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx2,fma")]
        #[inline]
        fn with_avx2_fma<R>(f: impl FnOnce() -> R) -> R {
            f()
        }
        if has_avx2_fma() {
            // SAFETY: `with_avx2_fma` is only unsafe to call because of its target features,
            // and the processor has AVX2 and FMA, as just checked.
            return unsafe { with_avx2_fma(f) };
        }
    }
    f()
}

/// Defines a function whose body is compiled twice, for AVX2 and FMA and for the portable
/// instruction set, and runs the first where the processor has those features. Unlike
/// [`fast`], it does not depend on the optimizer inlining a closure.
macro_rules! multiversion {
    (
        $(#[$meta:meta])*
        $vis:vis fn $name:ident<$($generic:ident: $bound:path),*>($($arg:ident: $ty:ty),* $(,)?) $body:block
    ) => {
        $(#[$meta])*
        $vis fn $name<$($generic: $bound),*>($($arg: $ty),*) {
            #[inline(always)]
            fn body<$($generic: $bound),*>($($arg: $ty),*) $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2,fma")]
                fn avx2<$($generic: $bound),*>($($arg: $ty),*) {
                    body($($arg),*)
                }
                if $crate::simd::has_avx2_fma() {
                    // SAFETY: `avx2` is only unsafe to call because of its target features,
                    // and the processor has AVX2 and FMA, as just checked.
                    return unsafe { avx2($($arg),*) };
                }
            }
            body($($arg),*)
        }
    };
}
pub(crate) use multiversion;

/// The SIMD kernels a scalar type has, as the layer operations call them: each method returns
/// `false`, doing nothing, where this scalar type or this processor has no such kernel, and
/// the caller then runs its portable loops. The defaults are that answer, so a type without
/// kernels (`f64`) implements this trait with an empty block.
///
/// A separate trait from [`Real`](crate::real::Real), which is scalar math only; `Real` has it
/// as a supertrait, so that code generic over `T: Real` reaches the kernels with no bound of
/// its own.
#[doc(hidden)]
pub trait Kernels: Sized {
    /// `C = alpha A B` (or `C += alpha A B`) by the kernels of `gemm.rs`; see `gemm::sgemm`
    /// for the layout (`A` and `B` with any strides, so transposes are read in place).
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn gemm(
        shape: (usize, usize, usize),
        a: &[Self],
        a_strides: (usize, usize),
        b: &[Self],
        b_strides: (usize, usize),
        c: &mut [Self],
        ldc: usize,
        alpha: Self,
        accumulate: bool,
    ) -> bool {
        let _ = (shape, a, a_strides, b, b_strides, c, ldc, alpha, accumulate);
        false
    }

    /// `y = A x + y` for an `M x K` matrix `A` with contiguous columns, by the constant-size
    /// kernels of `gemv.rs`.
    #[inline(always)]
    fn gemv<const M: usize, const K: usize>(a: &[Self], x: &[Self], y: &mut [Self]) -> bool {
        let _ = (a, x, y);
        false
    }

    /// `y = A^T x` for an `M x K` matrix `A` with contiguous columns.
    #[inline(always)]
    fn gemv_t<const M: usize, const K: usize>(a: &[Self], x: &[Self], y: &mut [Self]) -> bool {
        let _ = (a, x, y);
        false
    }

    /// `y = A^T x`, then `A += alpha x v^T`, in one pass over an `M x K` matrix `A`.
    #[inline(always)]
    fn gemv_t_outer<const M: usize, const K: usize>(
        a: &mut [Self],
        x: &[Self],
        v: &[Self],
        y: &mut [Self],
        alpha: Self,
    ) -> bool {
        let _ = (a, x, v, y, alpha);
        false
    }

    /// `A = alpha u v^T` or `A += alpha u v^T` for an `M x K` matrix `A`.
    #[inline(always)]
    fn outer<const M: usize, const K: usize>(
        u: &[Self],
        v: &[Self],
        a: &mut [Self],
        alpha: Self,
        add: bool,
    ) -> bool {
        let _ = (u, v, a, alpha, add);
        false
    }
}

/// `f32`: the AVX2/FMA kernels, where the processor has them.
impl Kernels for f32 {
    #[inline(always)]
    fn gemm(
        shape: (usize, usize, usize),
        a: &[f32],
        a_strides: (usize, usize),
        b: &[f32],
        b_strides: (usize, usize),
        c: &mut [f32],
        ldc: usize,
        alpha: f32,
        accumulate: bool,
    ) -> bool {
        gemm::sgemm(shape, a, a_strides, b, b_strides, c, ldc, alpha, accumulate)
    }
    #[inline(always)]
    fn gemv<const M: usize, const K: usize>(a: &[f32], x: &[f32], y: &mut [f32]) -> bool {
        gemv::gemv::<M, K>(a, x, y)
    }
    #[inline(always)]
    fn gemv_t<const M: usize, const K: usize>(a: &[f32], x: &[f32], y: &mut [f32]) -> bool {
        gemv::gemv_t::<M, K>(a, x, y)
    }
    #[inline(always)]
    fn gemv_t_outer<const M: usize, const K: usize>(
        a: &mut [f32],
        x: &[f32],
        v: &[f32],
        y: &mut [f32],
        alpha: f32,
    ) -> bool {
        gemv::gemv_t_outer::<M, K>(a, x, v, y, alpha)
    }
    #[inline(always)]
    fn outer<const M: usize, const K: usize>(
        u: &[f32],
        v: &[f32],
        a: &mut [f32],
        alpha: f32,
        add: bool,
    ) -> bool {
        gemv::outer::<M, K>(u, v, a, alpha, add)
    }
}

/// `f64`: no kernels; the layer operations' portable loops serve it.
impl Kernels for f64 {}
