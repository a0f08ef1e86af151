//! Torch's pooling layers on shaped samples: `nn.MaxPool2d`, `nn.AvgPool2d`,
//! `nn.AdaptiveAvgPool2d(1)` and their 1-D forms, forward and backward.
//!
//! Samples are laid out as the shaped convolutions' ([`conv2d`](super::conv2d)): one column of
//! a batch, element `(c, h, w)` of a `(C, H, W)` map at row `c H W + h W + w` (`c L + l` in
//! 1-D). The pools have no parameters, so they are free functions; the geometry is passed as
//! const generics (kernel `KH x KW`, strides `SH`, `SW`, padding `PH`, `PW`; dilation 1, floor
//! mode, as torch's defaults) and checked at compile time, torch's rules included: padding at
//! most half the kernel, output sizes `(HI + 2 PH - KH) / SH + 1`.
//!
//! * Max pooling pads with `-inf`: a window's maximum is over its real inputs. Its backward
//!   pass recomputes each window's argmax from the input (nothing is cached) and adds the
//!   window's gradient there; of equal maxima the first in scan order (row by row) wins, and
//!   a NaN wins over any number, as in torch's CPU kernel.
//! * Average pooling counts the padding (`count_include_pad=True`, torch's default): every
//!   window's sum is divided by `KH KW`, and its gradient is spread back in equal shares.
//! * Adaptive average pooling to `(1, 1)` (or 1) is the global mean of each channel.
//!
//! Everything is loops over the static sizes: no allocation, no branch on data but max's
//! comparisons.

use super::ops::{build, zeroed};
use crate::real::Real;
use core::mem::MaybeUninit;
use nalgebra::SMatrix;

/// A pool's shape and geometry, known at compile time: built and checked in a `const` block
/// by each function.
#[derive(Clone, Copy)]
struct Window {
    c: usize,
    hi: usize,
    wi: usize,
    ho: usize,
    wo: usize,
    kh: usize,
    kw: usize,
    sh: usize,
    sw: usize,
    ph: usize,
    pw: usize,
}

impl Window {
    /// This geometry, after asserting torch's rules and that the sizes passed beside each
    /// other agree (in a `const` block: a wrong type fails to compile with the message).
    const fn checked(self, ni: usize, no: usize) -> Self {
        assert!(
            self.kh >= 1 && self.kw >= 1,
            "pool: kernel must be at least 1"
        );
        assert!(
            self.sh >= 1 && self.sw >= 1,
            "pool: stride must be at least 1"
        );
        assert!(
            2 * self.ph <= self.kh && 2 * self.pw <= self.kw,
            "pool: padding must be at most half the kernel size (torch's rule)"
        );
        assert!(
            self.hi + 2 * self.ph >= self.kh && self.wi + 2 * self.pw >= self.kw,
            "pool: the kernel is larger than the padded input"
        );
        assert!(
            self.ho == (self.hi + 2 * self.ph - self.kh) / self.sh + 1,
            "pool: HO must be (HI + 2 PH - KH) / SH + 1"
        );
        assert!(
            self.wo == (self.wi + 2 * self.pw - self.kw) / self.sw + 1,
            "pool: WO must be (WI + 2 PW - KW) / SW + 1"
        );
        assert!(
            ni == self.c * self.hi * self.wi,
            "pool: NI must be C * HI * WI"
        );
        assert!(
            no == self.c * self.ho * self.wo,
            "pool: NO must be C * HO * WO"
        );
        self
    }

    /// The real input rows (or columns) of output row `o`: those of `[o s - p, o s - p + k)`
    /// inside `[0, n)`. Never empty: the padding is at most half the kernel.
    #[inline(always)]
    fn span(o: usize, s: usize, p: usize, k: usize, n: usize) -> core::ops::Range<usize> {
        let start = (o * s).max(p) - p;
        let end = (o * s + k).min(p + n) - p;
        start..end
    }

    /// Calls `f(plane, at, rows, columns)` for every output element of a batch: `plane` the
    /// index of its channel's first input in the batch's flat input, `at` its own index in
    /// the batch's flat output, `rows` and `columns` its window's real inputs.
    #[inline(always)]
    fn each(
        &self,
        batch: usize,
        mut f: impl FnMut(usize, usize, core::ops::Range<usize>, core::ops::Range<usize>),
    ) {
        let (ni, no) = (self.c * self.hi * self.wi, self.c * self.ho * self.wo);
        for b in 0..batch {
            for c in 0..self.c {
                let plane = b * ni + c * self.hi * self.wi;
                for ho in 0..self.ho {
                    let rows = Self::span(ho, self.sh, self.ph, self.kh, self.hi);
                    for wo in 0..self.wo {
                        let columns = Self::span(wo, self.sw, self.pw, self.kw, self.wi);
                        let at = b * no + (c * self.ho + ho) * self.wo + wo;
                        f(plane, at, rows.clone(), columns);
                    }
                }
            }
        }
    }

    /// The index (in the batch's flat input) of the window's maximum, and the maximum: the
    /// first in scan order of equal ones, a NaN over any number (torch's CPU kernel).
    #[inline(always)]
    fn argmax<T: Real>(
        &self,
        x: &[T],
        plane: usize,
        rows: core::ops::Range<usize>,
        columns: core::ops::Range<usize>,
    ) -> (usize, T) {
        let mut best = T::cast(f64::NEG_INFINITY);
        let mut index = plane + rows.start * self.wi + columns.start;
        for h in rows {
            for w in columns.clone() {
                let at = plane + h * self.wi + w;
                let v = x[at];
                #[allow(clippy::eq_op)]
                let nan = v != v;
                if v > best || nan {
                    best = v;
                    index = at;
                }
            }
        }
        (index, best)
    }

    /// Max pooling of a batch of `batch` samples: every element of `y` written.
    #[inline(always)]
    fn max<T: Real>(&self, x: &[T], y: &mut [MaybeUninit<T>], batch: usize) {
        self.each(batch, |plane, at, rows, columns| {
            y[at].write(self.argmax(x, plane, rows, columns).1);
        });
    }

    /// Whether the windows tile the input: each input in exactly one window (no padding,
    /// strides equal to the kernel, nothing left over at the edges), as `MaxPool2d(2)` on
    /// even maps.
    const fn tiles(&self) -> bool {
        self.sh == self.kh
            && self.sw == self.kw
            && self.ph == 0
            && self.pw == 0
            && self.hi == self.ho * self.sh
            && self.wi == self.wo * self.sw
    }

    /// [`max_backward`](Self::max_backward) where the windows [`tiles`](Self::tiles): each
    /// input written once, the window's gradient at its argmax and zero elsewhere, so `dx`
    /// is never zeroed first.
    #[inline(always)]
    fn max_backward_tiled<T: Real>(
        &self,
        x: &[T],
        dy: &[T],
        dx: &mut [MaybeUninit<T>],
        batch: usize,
    ) {
        self.each(batch, |plane, at, rows, columns| {
            let (index, _) = self.argmax(x, plane, rows.clone(), columns.clone());
            let g = dy[at];
            for h in rows {
                for w in columns.clone() {
                    let i = plane + h * self.wi + w;
                    dx[i].write(if i == index { g } else { T::zero() });
                }
            }
        });
    }

    /// Max pooling's backward pass: each window's gradient added at its argmax.
    #[inline(always)]
    fn max_backward<T: Real>(&self, x: &[T], dy: &[T], dx: &mut [T], batch: usize) {
        self.each(batch, |plane, at, rows, columns| {
            let (index, _) = self.argmax(x, plane, rows, columns);
            dx[index] += dy[at];
        });
    }

    /// Average pooling (the padding counted) of a batch of `batch` samples.
    #[inline(always)]
    fn avg<T: Real>(&self, x: &[T], y: &mut [T], batch: usize) {
        let scale = T::one() / T::cast((self.kh * self.kw) as f64);
        self.each(batch, |plane, at, rows, columns| {
            let mut sum = T::zero();
            for h in rows {
                for w in columns.clone() {
                    sum += x[plane + h * self.wi + w];
                }
            }
            y[at] = sum * scale;
        });
    }

    /// Average pooling's backward pass: each window's gradient spread over its `KH KW`
    /// entries (those in the padding dropped).
    #[inline(always)]
    fn avg_backward<T: Real>(&self, dy: &[T], dx: &mut [T], batch: usize) {
        let scale = T::one() / T::cast((self.kh * self.kw) as f64);
        self.each(batch, |plane, at, rows, columns| {
            let share = dy[at] * scale;
            for h in rows {
                for w in columns.clone() {
                    dx[plane + h * self.wi + w] += share;
                }
            }
        });
    }
}

/// The 2-D geometry of the const generics, checked.
macro_rules! window2d {
    () => {
        const {
            Window {
                c: C,
                hi: HI,
                wi: WI,
                ho: HO,
                wo: WO,
                kh: KH,
                kw: KW,
                sh: SH,
                sw: SW,
                ph: PH,
                pw: PW,
            }
            .checked(NI, NO)
        }
    };
}

/// The 1-D geometry of the const generics, as a map one row high, checked.
macro_rules! window1d {
    () => {
        const {
            Window {
                c: C,
                hi: 1,
                wi: LI,
                ho: 1,
                wo: LO,
                kh: 1,
                kw: K,
                sh: 1,
                sw: S,
                ph: 0,
                pw: P,
            }
            .checked(NI, NO)
        }
    };
}

/// Torch's `nn.MaxPool2d((KH, KW), (SH, SW), (PH, PW))` on a batch of `B` maps `(C, HI, WI)`,
/// one column each: returns the `(C, HO, WO)` maxima, the padding `-inf`.
#[inline]
pub fn max_pool2d<
    T: Real,
    const C: usize,
    const HI: usize,
    const WI: usize,
    const HO: usize,
    const WO: usize,
    const KH: usize,
    const KW: usize,
    const SH: usize,
    const SW: usize,
    const PH: usize,
    const PW: usize,
    const NI: usize,
    const NO: usize,
    const B: usize,
>(
    x: &SMatrix<T, NI, B>,
) -> SMatrix<T, NO, B> {
    // Every output written: not zeroed first (callgrind counted the batch's `memset`).
    build(
        #[inline(always)]
        |y| window2d!().max(x.as_slice(), y, B),
    )
}

/// The gradient of [`max_pool2d`] with respect to its input `x`, from the loss's gradient
/// `dy` with respect to its output: each window's gradient goes to the input that was its
/// maximum (recomputed from `x`; the first of equal ones), summed where windows overlap.
#[inline]
pub fn max_pool2d_backward<
    T: Real,
    const C: usize,
    const HI: usize,
    const WI: usize,
    const HO: usize,
    const WO: usize,
    const KH: usize,
    const KW: usize,
    const SH: usize,
    const SW: usize,
    const PH: usize,
    const PW: usize,
    const NI: usize,
    const NO: usize,
    const B: usize,
>(
    x: &SMatrix<T, NI, B>,
    dy: &SMatrix<T, NO, B>,
) -> SMatrix<T, NI, B> {
    let window = window2d!();
    build(
        #[inline(always)]
        |dx| {
            if const { window2d!().tiles() } {
                window.max_backward_tiled(x.as_slice(), dy.as_slice(), dx, B);
            } else {
                window.max_backward(x.as_slice(), dy.as_slice(), zeroed(dx), B);
            }
        },
    )
}

/// Torch's `nn.AvgPool2d((KH, KW), (SH, SW), (PH, PW))` on a batch of `B` maps `(C, HI, WI)`:
/// each window's sum over `KH KW`, the padding counted as zeros (`count_include_pad=True`).
#[inline]
pub fn avg_pool2d<
    T: Real,
    const C: usize,
    const HI: usize,
    const WI: usize,
    const HO: usize,
    const WO: usize,
    const KH: usize,
    const KW: usize,
    const SH: usize,
    const SW: usize,
    const PH: usize,
    const PW: usize,
    const NI: usize,
    const NO: usize,
    const B: usize,
>(
    x: &SMatrix<T, NI, B>,
) -> SMatrix<T, NO, B> {
    let mut y = SMatrix::<T, NO, B>::zeros();
    window2d!().avg(x.as_slice(), y.as_mut_slice(), B);
    y
}

/// The gradient of [`avg_pool2d`] with respect to its input, from the loss's gradient `dy`
/// with respect to its output (the pool is linear: its input is not needed): each window's
/// gradient over `KH KW`, added to each of its real inputs.
#[inline]
pub fn avg_pool2d_backward<
    T: Real,
    const C: usize,
    const HI: usize,
    const WI: usize,
    const HO: usize,
    const WO: usize,
    const KH: usize,
    const KW: usize,
    const SH: usize,
    const SW: usize,
    const PH: usize,
    const PW: usize,
    const NI: usize,
    const NO: usize,
    const B: usize,
>(
    dy: &SMatrix<T, NO, B>,
) -> SMatrix<T, NI, B> {
    let mut dx = SMatrix::<T, NI, B>::zeros();
    window2d!().avg_backward(dy.as_slice(), dx.as_mut_slice(), B);
    dx
}

/// The mean of each of `C` channels of `N` values each, for a batch of `B` (`NI = C N`).
#[inline(always)]
fn channel_means<T: Real, const C: usize, const N: usize, const NI: usize, const B: usize>(
    x: &SMatrix<T, NI, B>,
) -> SMatrix<T, C, B> {
    const {
        assert!(
            NI == C * N,
            "adaptive pool: NI must be C times the map's size"
        )
    };
    let scale = T::one() / T::cast(N as f64);
    let mut y = SMatrix::<T, C, B>::zeros();
    for (yc, xc) in y
        .as_mut_slice()
        .chunks_exact_mut(C)
        .zip(x.as_slice().chunks_exact(NI))
    {
        for (m, plane) in yc.iter_mut().zip(xc.chunks_exact(N)) {
            *m = plane.iter().fold(T::zero(), |s, &v| s + v) * scale;
        }
    }
    y
}

/// The gradient of [`channel_means`]: each channel's gradient over `N`, to each of its values.
#[inline(always)]
fn channel_means_backward<
    T: Real,
    const C: usize,
    const N: usize,
    const NI: usize,
    const B: usize,
>(
    dy: &SMatrix<T, C, B>,
) -> SMatrix<T, NI, B> {
    const {
        assert!(
            NI == C * N,
            "adaptive pool: NI must be C times the map's size"
        )
    };
    let scale = T::one() / T::cast(N as f64);
    let mut dx = SMatrix::<T, NI, B>::zeros();
    let columns = dx.as_mut_slice().chunks_exact_mut(NI);
    for (dxc, dyc) in columns.zip(dy.as_slice().chunks_exact(C)) {
        for (plane, &d) in dxc.chunks_exact_mut(N).zip(dyc) {
            plane.fill(d * scale);
        }
    }
    dx
}

/// Torch's `nn.AdaptiveAvgPool2d(1)` on a batch of `B` maps `(C, H, W)` with `HW = H W`: the
/// global average of each channel, a `(C, 1, 1)` output (`C` rows per sample).
#[inline]
pub fn adaptive_avg_pool2d_1<
    T: Real,
    const C: usize,
    const HW: usize,
    const NI: usize,
    const B: usize,
>(
    x: &SMatrix<T, NI, B>,
) -> SMatrix<T, C, B> {
    channel_means::<T, C, HW, NI, B>(x)
}

/// The gradient of [`adaptive_avg_pool2d_1`] with respect to its input, from `dy`: each
/// channel's gradient over `HW`, to each of its positions.
#[inline]
pub fn adaptive_avg_pool2d_1_backward<
    T: Real,
    const C: usize,
    const HW: usize,
    const NI: usize,
    const B: usize,
>(
    dy: &SMatrix<T, C, B>,
) -> SMatrix<T, NI, B> {
    channel_means_backward::<T, C, HW, NI, B>(dy)
}

/// Torch's `nn.MaxPool1d(K, S, P)` on a batch of `B` sequences `(C, LI)`: the `(C, LO)`
/// maxima, the padding `-inf`.
#[inline]
pub fn max_pool1d<
    T: Real,
    const C: usize,
    const LI: usize,
    const LO: usize,
    const K: usize,
    const S: usize,
    const P: usize,
    const NI: usize,
    const NO: usize,
    const B: usize,
>(
    x: &SMatrix<T, NI, B>,
) -> SMatrix<T, NO, B> {
    build(
        #[inline(always)]
        |y| window1d!().max(x.as_slice(), y, B),
    )
}

/// The gradient of [`max_pool1d`] with respect to its input `x`, as [`max_pool2d_backward`].
#[inline]
pub fn max_pool1d_backward<
    T: Real,
    const C: usize,
    const LI: usize,
    const LO: usize,
    const K: usize,
    const S: usize,
    const P: usize,
    const NI: usize,
    const NO: usize,
    const B: usize,
>(
    x: &SMatrix<T, NI, B>,
    dy: &SMatrix<T, NO, B>,
) -> SMatrix<T, NI, B> {
    let mut dx = SMatrix::<T, NI, B>::zeros();
    window1d!().max_backward(x.as_slice(), dy.as_slice(), dx.as_mut_slice(), B);
    dx
}

/// Torch's `nn.AvgPool1d(K, S, P)` on a batch of `B` sequences `(C, LI)`: each window's sum
/// over `K`, the padding counted as zeros.
#[inline]
pub fn avg_pool1d<
    T: Real,
    const C: usize,
    const LI: usize,
    const LO: usize,
    const K: usize,
    const S: usize,
    const P: usize,
    const NI: usize,
    const NO: usize,
    const B: usize,
>(
    x: &SMatrix<T, NI, B>,
) -> SMatrix<T, NO, B> {
    let mut y = SMatrix::<T, NO, B>::zeros();
    window1d!().avg(x.as_slice(), y.as_mut_slice(), B);
    y
}

/// The gradient of [`avg_pool1d`] with respect to its input, from `dy` alone, as
/// [`avg_pool2d_backward`].
#[inline]
pub fn avg_pool1d_backward<
    T: Real,
    const C: usize,
    const LI: usize,
    const LO: usize,
    const K: usize,
    const S: usize,
    const P: usize,
    const NI: usize,
    const NO: usize,
    const B: usize,
>(
    dy: &SMatrix<T, NO, B>,
) -> SMatrix<T, NI, B> {
    let mut dx = SMatrix::<T, NI, B>::zeros();
    window1d!().avg_backward(dy.as_slice(), dx.as_mut_slice(), B);
    dx
}

/// Torch's `nn.AdaptiveAvgPool1d(1)` on a batch of `B` sequences `(C, L)`: the mean of each
/// channel, a `(C, 1)` output.
#[inline]
pub fn adaptive_avg_pool1d_1<
    T: Real,
    const C: usize,
    const L: usize,
    const NI: usize,
    const B: usize,
>(
    x: &SMatrix<T, NI, B>,
) -> SMatrix<T, C, B> {
    channel_means::<T, C, L, NI, B>(x)
}

/// The gradient of [`adaptive_avg_pool1d_1`] with respect to its input, from `dy`.
#[inline]
pub fn adaptive_avg_pool1d_1_backward<
    T: Real,
    const C: usize,
    const L: usize,
    const NI: usize,
    const B: usize,
>(
    dy: &SMatrix<T, C, B>,
) -> SMatrix<T, NI, B> {
    channel_means_backward::<T, C, L, NI, B>(dy)
}
