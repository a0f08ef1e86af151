//! The bottom floor: the SIMD kernels and their dispatch on the processor's features.
//!
//! Everything above reaches the kernels through [`Kernels`], implemented for `f32` by the
//! AVX2/FMA kernels of [`gemm`] and [`gemv`] and for `f64` by nothing (every method answers
//! `false` and the caller runs its portable loops). Whether the processor has those features
//! is asked in one place only, [`has_avx2_fma`], so that every kernel and every
//! multiversioned loop agree on it.

// The kernels are x86 code; elsewhere `f32` has no kernels, as `f64` has none.
#[cfg(target_arch = "x86_64")]
mod conv;
#[cfg(target_arch = "x86_64")]
mod gemm;
#[cfg(target_arch = "x86_64")]
mod gemv;
#[cfg(target_arch = "x86_64")]
mod x86;

use core::mem::MaybeUninit;

/// Whether an `M x K` layer at batch one takes the constant-size kernels of `gemv.rs`: small
/// enough that unrolled code stays small (at most 64 rows, 4096 weights), large enough to be
/// worth the feature check.
pub(crate) const fn gemv_fits(m: usize, k: usize) -> bool {
    m <= 64 && m * k <= 4096 && m * k >= 64
}

/// Whether this processor has AVX2 and FMA, for the generated code's choice between its two
/// compiled copies and for every kernel here. The answer is cached: after the first call this
/// is a load and a test.
///
/// The runtime's own detection (see `detect`), not std's `is_x86_feature_detected!`, which
/// exists only with std: the same test in the `std` and `no_std` builds, so that both run the
/// same kernels and give the same bits.
#[inline(always)]
pub fn has_avx2_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        detect::avx2_fma()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// AVX2 and FMA detection by `cpuid`, on `core::arch` alone.
#[cfg(target_arch = "x86_64")]
mod detect {
    use core::arch::x86_64::{__cpuid, __cpuid_count, _xgetbv};
    use core::sync::atomic::{AtomicU8, Ordering};

    /// Not asked yet; the processor has both features; it lacks one (or the OS does not save
    /// the AVX registers).
    const UNKNOWN: u8 = 0;
    const YES: u8 = 1;
    const NO: u8 = 2;

    /// The answer, once known. Racing first calls all compute the same answer, so a relaxed
    /// store and load suffice.
    static ANSWER: AtomicU8 = AtomicU8::new(UNKNOWN);

    /// Whether the processor has AVX2 and FMA and the OS saves the AVX registers.
    #[inline(always)]
    pub(super) fn avx2_fma() -> bool {
        match ANSWER.load(Ordering::Relaxed) {
            UNKNOWN => first_call(),
            answer => answer == YES,
        }
    }

    /// Asks the processor, and caches the answer.
    #[cold]
    #[inline(never)]
    fn first_call() -> bool {
        let yes = ask();
        ANSWER.store(if yes { YES } else { NO }, Ordering::Relaxed);
        yes
    }

    /// The test std's `is_x86_feature_detected!("avx2")` and `("fma")` make: leaf 1's FMA
    /// (ECX bit 12), OSXSAVE (bit 27) and AVX (bit 28); the OS saving the SSE and AVX state
    /// (XCR0 bits 1 and 2, read by `xgetbv` only once OSXSAVE says the instruction exists);
    /// leaf 7's AVX2 (EBX bit 5).
    fn ask() -> bool {
        // `cpuid` exists on every x86_64 processor; leaf 0 gives the highest leaf there is.
        let max_leaf = __cpuid(0).eax;
        if max_leaf < 7 {
            return false;
        }
        let ecx = __cpuid(1).ecx;
        let (fma, osxsave, avx) = (bit(ecx, 12), bit(ecx, 27), bit(ecx, 28));
        if !(fma && osxsave && avx) {
            return false;
        }
        // SAFETY: `xgetbv` exists where OSXSAVE is set, as just checked; that is all the
        // `xsave` target feature of `xcr0` asks.
        let os_saves_avx = unsafe { xcr0() } & 0b110 == 0b110;
        os_saves_avx && bit(__cpuid_count(7, 0).ebx, 5)
    }

    /// Whether bit `n` of `word` is set.
    fn bit(word: u32, n: u32) -> bool {
        word >> n & 1 == 1
    }

    /// The extended control register XCR0: which register states the OS saves.
    ///
    /// # Safety
    /// Only where `cpuid` reports OSXSAVE: elsewhere `xgetbv` is an invalid instruction.
    #[target_feature(enable = "xsave")]
    unsafe fn xcr0() -> u64 {
        // SAFETY: the caller has seen OSXSAVE, so the instruction exists and XCR0 is readable.
        unsafe { _xgetbv(0) }
    }

    #[cfg(all(test, feature = "std"))]
    mod tests {
        /// The same answer as std's detection, on this machine, cached or not.
        #[test]
        fn agrees_with_std() {
            let std = std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma");
            assert_eq!(super::ask(), std);
            assert_eq!(super::avx2_fma(), std);
            assert_eq!(super::avx2_fma(), std);
        }
    }
}

/// Runs `f` compiled for AVX2 and FMA where the processor has them: `f` is inlined into a
/// function with those target features, so its loops get 8-lane vectors and fused
/// multiply-adds even in a crate built with default flags. The optimizers' element loops and
/// the generated networks' entry points run through it; the latter pass closures marked
/// `#[inline(always)]`, so that inlining them does not depend on the optimizer's judgement.
///
/// It takes `FnMut`, not `FnOnce`: a closure that borrows its captures is called through
/// `FnOnce` by way of a shim, which is not force-inlined. With the body inlined into it, the
/// shim was large and left a call, compiled for the portable instruction set: the AVX2 entry
/// only jumped to portable code (measured: a batch-one forward at 1.64x its baseline, 0.96x
/// through `FnMut`).
#[inline(always)]
pub fn simd<R>(mut f: impl FnMut() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx2,fma")]
        #[inline]
        fn with_avx2_fma<R>(mut f: impl FnMut() -> R) -> R {
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
/// [`simd`], it does not depend on the optimizer inlining a closure.
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

/// `true` after running `$kernel` where the processor has AVX2 and FMA, having asserted
/// `$lengths_fit` (the operands' lengths against the kernel's shape); `false`, with nothing
/// run, elsewhere. The two conditions every batch-one kernel's `unsafe` call rests on, tested
/// in one place. A macro rather than a function taking a closure, so that the kernel call
/// stays a direct call, inlined as before into the generated network's AVX2 copy.
#[cfg(target_arch = "x86_64")]
macro_rules! on_avx2_fma {
    ($lengths_fit:expr, $kernel:expr) => {
        if has_avx2_fma() {
            assert!($lengths_fit);
            $kernel;
            true
        } else {
            false
        }
    };
}

/// Defines [`Kernels`] from one list of its methods, each with its signature and its `f32`
/// body: the trait, whose default bodies answer `false` (no kernel), and its implementation
/// for `f32`, so that each signature is written once.
macro_rules! kernels {
    ($(
        $(#[$doc:meta])*
        fn $name:ident$(<$(const $c:ident: usize),* $(,)?>)?($($arg:ident: $ty:ty),* $(,)?) $f32:block
    )*) => {
        /// The SIMD kernels a scalar type has, as the layer operations call them: each method
        /// returns `false`, doing nothing, where this scalar type or this processor has no such
        /// kernel, and the caller then runs its portable loops. The defaults are that answer,
        /// so a type without kernels (`f64`) implements this trait with an empty block.
        ///
        /// A separate trait from [`Real`](crate::real::Real), which is scalar math only;
        /// `Real` has it as a supertrait, so that code generic over `T: Real` reaches the
        /// kernels with no bound of its own.
        #[doc(hidden)]
        pub trait Kernels: Sized {
            $(
                $(#[$doc])*
                #[inline(always)]
                #[allow(clippy::too_many_arguments)]
                fn $name$(<$(const $c: usize),*>)?($($arg: $ty),*) -> bool {
                    let _ = ($($arg),*);
                    false
                }
            )*
        }

        /// `f32`: the AVX2/FMA kernels, where the processor has them.
        #[cfg(target_arch = "x86_64")]
        impl Kernels for f32 {
            $(
                #[inline(always)]
                fn $name$(<$(const $c: usize),*>)?($($arg: $ty),*) -> bool $f32
            )*
        }
    };
}

kernels! {
    /// `C = alpha A B` (or `C += alpha A B`) by the kernels of `gemm.rs`; see `gemm::sgemm`
    /// for the layout (`A` and `B` with any strides, so transposes are read in place).
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
    ) {
        gemm::sgemm(shape, a, a_strides, b, b_strides, c, ldc, alpha, accumulate)
    }

    /// `y = A x + y` for an `M x K` matrix `A` with contiguous columns, by the constant-size
    /// kernels of `gemv.rs` (the bias is already in `y`).
    fn gemv<const M: usize, const K: usize>(a: &[Self], x: &[Self], y: &mut [Self]) {
        on_avx2_fma!(
            a.len() >= const { M * K } && x.len() >= K && y.len() >= M,
            // SAFETY: run only with AVX2 and FMA present and the lengths asserted, which is
            // all the kernel requires.
            unsafe { gemv::gemv::<M, K>(a.as_ptr(), x.as_ptr(), y.as_mut_ptr()) }
        )
    }

    /// `y = A^T x` for an `M x K` matrix `A` with contiguous columns (`y` has `K` entries, `x`
    /// `M`): the input gradient `W^T dz`.
    fn gemv_t<const M: usize, const K: usize>(a: &[Self], x: &[Self], y: &mut [Self]) {
        on_avx2_fma!(
            a.len() >= const { M * K } && x.len() >= M && y.len() >= K,
            // SAFETY: as in `gemv`: the features present, the lengths asserted.
            unsafe { gemv::gemv_t::<M, K>(a.as_ptr(), x.as_ptr(), y.as_mut_ptr()) }
        )
    }

    /// `y = A^T x` and then `A += alpha x v^T`, in one pass over an `M x K` matrix `A` (`x`
    /// has `M` entries, `v` and `y` `K`): a layer's input gradient `W^T dz` from the old
    /// weights and an SGD step `W -= lr dz x^T`, each column of `W` loaded once for both.
    /// Only for `M` a multiple of 8 (whole vectors); `false` otherwise, and the caller runs
    /// `gemv_t` and `outer`.
    fn gemv_t_outer<const M: usize, const K: usize>(
        a: &mut [Self],
        x: &[Self],
        v: &[Self],
        y: &mut [Self],
        alpha: Self,
    ) {
        M.is_multiple_of(8)
            && on_avx2_fma!(
                a.len() >= const { M * K } && x.len() >= M && v.len() >= K && y.len() >= K,
                // SAFETY: as in `gemv`: the features present, the lengths asserted (and `M`
                // a multiple of 8, as the kernel's whole vectors need).
                unsafe {
                    let (a, y) = (a.as_mut_ptr(), y.as_mut_ptr());
                    gemv::gemv_t_outer::<M, K>(a, x.as_ptr(), v.as_ptr(), y, alpha)
                }
            )
    }

    /// The forward pass of a batch through a 3x3 convolution with stride 1, padding 1,
    /// dilation 1 and one group, by the direct kernels of `conv.rs` (`y` overwritten: `bias`,
    /// if not empty, plus the correlation; `x` and `y` whole samples of `NI = CI H W` and
    /// `CO H W` floats; the weight `CO x CI 9`, column-major). Only where
    /// `conv::fits(CO, H, W)`: `false` otherwise (`y` untouched), and the caller runs im2col.
    /// `y` may start uninitialised: the kernel writes every element before it returns `true`.
    fn conv3x3<const CI: usize, const CO: usize, const H: usize, const W: usize, const NI: usize>(
        w: &[Self],
        bias: &[Self],
        x: &[Self],
        y: &mut [MaybeUninit<Self>],
    ) {
        conv::fits(CO, H, W)
            && on_avx2_fma!(
                true,
                // SAFETY: the features present and the shape fitting, as just tested; the
                // kernel checks the lengths.
                unsafe { conv::forward::<CI, CO, H, W, NI>(w, bias, x, y) }
            )
    }

    /// The input's gradient of a batch through the convolution of [`conv3x3`](Self::conv3x3)
    /// (`dx` overwritten, every element, so it may start uninitialised; `dy` and `dx` whole samples of `NO = CO H W` and `CI H W` floats;
    /// `CK = CI 9`). Only where `conv::fits(CI, H, W)`: `false` otherwise.
    fn conv3x3_input<
        const CI: usize,
        const CO: usize,
        const H: usize,
        const W: usize,
        const NO: usize,
        const CK: usize,
    >(
        w: &[Self],
        dy: &[Self],
        dx: &mut [MaybeUninit<Self>],
    ) {
        conv::fits(CI, H, W)
            && on_avx2_fma!(
                true,
                // SAFETY: as in `conv3x3`.
                unsafe { conv::backward_input::<CI, CO, H, W, NO, CK>(w, dy, dx) }
            )
    }

    /// The weight's gradient of a batch through the convolution of
    /// [`conv3x3`](Self::conv3x3): `dw` (`CO x CI 9`, column-major) overwritten with the sum
    /// over the batch and the positions; `x` and `dy` whole samples of `NI = CI H W` and
    /// `NO = CO H W` floats. Only where `conv::fits_weight(CO, H, W)`: `false` otherwise.
    fn conv3x3_weight<
        const CI: usize,
        const CO: usize,
        const H: usize,
        const W: usize,
        const NI: usize,
        const NO: usize,
    >(
        x: &[Self],
        dy: &[Self],
        dw: &mut [Self],
    ) {
        conv::fits_weight(CO, H, W)
            && on_avx2_fma!(
                true,
                // SAFETY: as in `conv3x3`.
                unsafe { conv::backward_weight::<CI, CO, H, W, NI, NO>(x, dy, dw) }
            )
    }

    /// `A = alpha u v^T`, or `A += alpha u v^T` with `add`, for an `M x K` matrix `A` (`u` has
    /// `M` entries, `v` `K`): the weight gradient `dz x^T` of one sample, or with
    /// `alpha = -lr` an SGD step on the weights.
    fn outer<const M: usize, const K: usize>(
        u: &[Self],
        v: &[Self],
        a: &mut [Self],
        alpha: Self,
        add: bool,
    ) {
        on_avx2_fma!(
            a.len() >= const { M * K } && u.len() >= M && v.len() >= K,
            // SAFETY: as in `gemv`: the features present, the lengths asserted.
            unsafe { gemv::outer::<M, K>(u.as_ptr(), v.as_ptr(), a.as_mut_ptr(), alpha, add) }
        )
    }
}

/// `f32` on other processors: no kernels, the portable loops.
#[cfg(not(target_arch = "x86_64"))]
impl Kernels for f32 {}

/// `f64`: no kernels; the layer operations' portable loops serve it.
impl Kernels for f64 {}
