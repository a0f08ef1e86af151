//! Torch's `nn.Conv2d` and `nn.Conv1d` on shaped samples: each sample a feature map, not a
//! time step.
//!
//! A sample is one column of features in row-major, channel-first order: element `(c, h, w)`
//! of a `(C, H, W)` map is row `c H W + h W + w` (of a `(C, L)` sequence, `c L + l`), so a
//! batch of `B` maps is a `C H W x B` matrix, as every other layer's batch is. A convolution
//! reads the map as torch does: zero padding `PH`, `PW`, strides `SH`, `SW`, dilations `DH`,
//! `DW`, and `G` groups (input channels split into `G` groups of `CIN / G`, output channels
//! into `G` groups of `COUT / G`, group `g`'s outputs seeing only group `g`'s inputs).
//!
//! Each sample is computed by im2col: one group's receptive fields unfolded into a stack
//! buffer `U` of `CK x HO WO` (`CK = CIN / G KH KW`, row `(ci KH + kh) KW + kw`, the weight's
//! column order), then one product per group with the layer floor's strided kernels, every
//! other operand read in place: the output of group `g` is `Y_g^T = U^T W_g^T`, written into
//! the sample's column (its `(o, p)` at `o HO WO + p` is the column-major `HO WO x COUT / G`
//! matrix `Y_g^T`). Backward, `dW_g += dY_g U^T` and `dU = W_g^T dY_g` (the same buffer,
//! reused), folded back onto the input's gradient. The buffer is per sample, never per batch:
//! in an unoptimised build every local has its slot on the stack, and a batch's would not fit.
//!
//! A 3x3 convolution with stride 1, padding 1, dilation 1 and one group (torch's usual
//! `Conv2d(c, d, 3, padding=1)`) in `f32` on maps the SIMD floor has register blocks for
//! (width 8 or 4) skips im2col: the kernels of `simd/conv.rs` (through `Kernels::conv3x3`,
//! `conv3x3_input`, `conv3x3_weight`) convolve each sample directly from a zero-padded copy,
//! and each answers `false` where it does not apply, so im2col stays the path of every other
//! shape, of `f64` and of processors without AVX2 and FMA. Measured on the digits conv
//! network's training step (callgrind): 20.0 M instructions by im2col, 9.7 M direct.
//!
//! The weight is an `COUT x CK` matrix whose column `(ci KH + kh) KW + kw` is torch's
//! `weight[:, ci, kh, kw]`; read as `[COUT, CK]` and put in row-major order (as the weight
//! files do) it is torch's `[COUT, CIN / G, KH, KW]` tensor. The geometry is passed to each
//! kernel as const generics (the macro computes them all, types cannot) and checked at
//! compile time: sizes that disagree do not compile.
//!
//! ```
//! use nn_runtime::Conv2d;
//! use nn_runtime::init::Init;
//! use nn_runtime::nalgebra::SMatrix;
//!
//! // nn.Conv2d(1, 4, 3, padding=1) on 5 x 5 maps, a batch of 2: CK = 1 * 3 * 3.
//! type Block = Conv2d<f32, 4, 1, 3, 3, 9, true>;
//! let mut conv = Block::zeros();
//! conv.reset(&mut Init::new(0));
//! let x = SMatrix::<f32, 25, 2>::from_fn(|r, c| (r + c) as f32 * 0.1);
//! //                       CIN G  HI WI HO WO SH SW PH PW DH DW NI  NO   B
//! let y = conv.forward::<1, 1, 5, 5, 5, 5, 1, 1, 1, 1, 1, 1, 25, 100, 2>(&x);
//! let mut grads = Block::zeros();
//! let dx = conv.backward::<1, 1, 5, 5, 5, 5, 1, 1, 1, 1, 1, 1, 25, 100, 2>(&x, &y, &mut grads);
//! assert_eq!(dx.shape(), (25, 2));
//! ```
//!
//! ```compile_fail,E0080
//! // HO is (5 + 2 * 1 - 2 - 1) / 1 + 1 = 5, not 4.
//! use nn_runtime::Conv2d;
//! let x = nn_runtime::nalgebra::SMatrix::<f32, 25, 1>::zeros();
//! let _ = Conv2d::<f32, 4, 1, 3, 3, 9, true>::zeros()
//!     .forward::<1, 1, 5, 5, 4, 5, 1, 1, 1, 1, 1, 1, 25, 80, 1>(&x);
//! ```

use super::heap::Zeroable;
use super::init::Init;
use super::ops::{build, strided_product, zeroed};
use super::tensors::{Tensors, Visitor, VisitorMut};
use crate::real::Real;
use core::mem::MaybeUninit;
use nalgebra::{SMatrix, SVector};

/// The parameters of torch's `nn.Conv2d(CIN, COUT, (KH, KW), groups=G, bias=BIAS)` (strides,
/// padding and dilation are the kernels' const generics), with `CING = CIN / G` input
/// channels per group and `CK = CING KH KW`.
///
/// A generated network holds one per `Conv2d` layer, its gradient struct another. Without
/// `BIAS` the bias stays zero and is neither named, initialised nor paired with a gradient.
#[derive(Clone, Debug, PartialEq)]
pub struct Conv2d<
    T: Real,
    const COUT: usize,
    const CING: usize,
    const KH: usize,
    const KW: usize,
    const CK: usize,
    const BIAS: bool,
> {
    /// The weight, `COUT x CK`: column `(ci KH + kh) KW + kw` is torch's
    /// `weight[:, ci, kh, kw]`. Read as `[COUT, CK]` and made row-major (as [`Tensors`] and
    /// the weight files do), the data is torch's `[COUT, CIN / G, KH, KW]` tensor.
    pub weight: SMatrix<T, COUT, CK>,
    /// The bias, one entry per output channel, as `nn.Conv2d.bias` (zero without `BIAS`).
    pub bias: SVector<T, COUT>,
}

/// The parameters of torch's `nn.Conv1d(CIN, COUT, K, groups=G, bias=BIAS)` on whole
/// sequences (`(C, L)` samples; the streaming, causal form is
/// [`CausalConv1d`](super::conv::CausalConv1d)), with `CING = CIN / G` and `CK = CING K`.
///
/// The same block as [`Conv2d`] with a kernel one row high: the weight's column `ci K + k` is
/// torch's `weight[:, ci, k]`, its data made row-major torch's `[COUT, CIN / G, K]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Conv1d<
    T: Real,
    const COUT: usize,
    const CING: usize,
    const K: usize,
    const CK: usize,
    const BIAS: bool,
> {
    /// The weight, `COUT x CK`: column `ci K + k` is torch's `weight[:, ci, k]`.
    pub weight: SMatrix<T, COUT, CK>,
    /// The bias, one entry per output channel, as `nn.Conv1d.bias` (zero without `BIAS`).
    pub bias: SVector<T, COUT>,
}

/// A convolution's shape and geometry, all of it known at compile time: built and checked
/// in a `const` block by each kernel, then folded into the loops.
#[derive(Clone, Copy)]
struct Geometry {
    cin: usize,
    cout: usize,
    groups: usize,
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
    dh: usize,
    dw: usize,
}

/// Torch's output length of one axis: `(n + 2 p - d (k - 1) - 1) / s + 1`, or `None` where
/// the dilated kernel does not fit in the padded input.
const fn out_len(n: usize, k: usize, s: usize, p: usize, d: usize) -> Option<usize> {
    let span = d * (k - 1) + 1;
    if n + 2 * p < span {
        None
    } else {
        Some((n + 2 * p - span) / s + 1)
    }
}

/// Whether a `Conv2d` may take the direct 3x3 kernels (`Kernels::conv3x3` and
/// `conv3x3_input`): a 3x3 kernel, stride 1, padding 1, dilation 1 and one group, so that the
/// maps keep their size. The kernels answer `false` for the map sizes and scalar types they
/// have no register blocks for, and im2col runs. Decided from the const geometry, so that
/// for every other convolution the branch folds away.
const fn direct3x3(groups: usize, k: [usize; 8]) -> bool {
    let [kh, kw, sh, sw, ph, pw, dh, dw] = k;
    let same = kh == 3 && kw == 3 && sh == 1 && sw == 1 && ph == 1 && pw == 1;
    same && dh == 1 && dw == 1 && groups == 1
}

impl Geometry {
    /// This geometry, after asserting that the sizes passed beside each other agree (in a
    /// `const` block, so a wrong type fails to compile with the message).
    const fn checked(self, ck: usize, ni: usize, no: usize) -> Self {
        assert!(
            self.groups >= 1,
            "convolution: G (groups) must be at least 1"
        );
        assert!(
            self.cin.is_multiple_of(self.groups) && self.cout.is_multiple_of(self.groups),
            "convolution: CIN and COUT must be multiples of G (groups)"
        );
        assert!(
            self.kh >= 1 && self.kw >= 1,
            "convolution: kernel must be at least 1"
        );
        assert!(
            self.sh >= 1 && self.sw >= 1 && self.dh >= 1 && self.dw >= 1,
            "convolution: stride and dilation must be at least 1"
        );
        assert!(
            ck == self.cin / self.groups * self.kh * self.kw,
            "convolution: CK must be CIN / G * KH * KW (and CING must be CIN / G)"
        );
        assert!(
            ni == self.cin * self.hi * self.wi,
            "convolution: NI must be CIN * HI * WI"
        );
        assert!(
            no == self.cout * self.ho * self.wo,
            "convolution: NO must be COUT * HO * WO"
        );
        match out_len(self.hi, self.kh, self.sh, self.ph, self.dh) {
            Some(ho) => assert!(
                ho == self.ho,
                "convolution: HO must be (HI + 2 PH - DH (KH - 1) - 1) / SH + 1"
            ),
            None => panic!("convolution: the kernel is taller than the padded input"),
        }
        match out_len(self.wi, self.kw, self.sw, self.pw, self.dw) {
            Some(wo) => assert!(
                wo == self.wo,
                "convolution: WO must be (WI + 2 PW - DW (KW - 1) - 1) / SW + 1"
            ),
            None => panic!("convolution: the kernel is wider than the padded input"),
        }
        self
    }

    /// Input channels per group.
    #[inline(always)]
    const fn cing(&self) -> usize {
        self.cin / self.groups
    }

    /// Output channels per group.
    #[inline(always)]
    const fn coutg(&self) -> usize {
        self.cout / self.groups
    }

    /// Output positions per channel, `HO WO`.
    #[inline(always)]
    const fn positions(&self) -> usize {
        self.ho * self.wo
    }

    /// Rows of the unfolded input, `CIN / G KH KW`.
    #[inline(always)]
    const fn ck(&self) -> usize {
        self.cing() * self.kh * self.kw
    }

    /// Calls `f(row, input_row, out_rows)` for each row of the unfolded input of group `g`
    /// and each output row `ho` whose receptive row is inside the input: `row` the unfolded
    /// row `c HO WO + ho WO` starts at, `input_row` the start of the input row it reads,
    /// `kw` the kernel column. Rows in the padding are skipped (zero in `U`, no gradient).
    #[inline(always)]
    fn for_each_row(&self, g: usize, mut f: impl FnMut(usize, usize, usize)) {
        let p = self.positions();
        for ci in 0..self.cing() {
            let plane = (g * self.cing() + ci) * self.hi * self.wi;
            for kh in 0..self.kh {
                for kw in 0..self.kw {
                    let c = (ci * self.kh + kh) * self.kw + kw;
                    for ho in 0..self.ho {
                        let h = ho * self.sh + kh * self.dh;
                        if h >= self.ph && h - self.ph < self.hi {
                            f(c * p + ho * self.wo, plane + (h - self.ph) * self.wi, kw);
                        }
                    }
                }
            }
        }
    }

    /// The input column of output column `wo` at kernel column `kw`, or `None` in the padding.
    #[inline(always)]
    fn column(&self, wo: usize, kw: usize) -> Option<usize> {
        let w = wo * self.sw + kw * self.dw;
        (w >= self.pw && w - self.pw < self.wi).then(|| w - self.pw)
    }

    /// im2col of group `g` of one sample `x`: `u[c HO WO + p]` the input under kernel entry
    /// `c` at output position `p`, zero in the padding.
    #[inline(always)]
    fn unfold<T: Real>(&self, x: &[T], g: usize, u: &mut [T]) {
        u.fill(T::zero());
        self.for_each_row(g, |at, row, kw| {
            for wo in 0..self.wo {
                if let Some(w) = self.column(wo, kw) {
                    u[at + wo] = x[row + w];
                }
            }
        });
    }

    /// col2im, adding: the gradient `du` of group `g`'s unfolded input added onto the
    /// sample's input gradient `dx` (an input under several kernel entries gets each).
    #[inline(always)]
    fn fold_add<T: Real>(&self, du: &[T], g: usize, dx: &mut [T]) {
        self.for_each_row(g, |at, row, kw| {
            for wo in 0..self.wo {
                if let Some(w) = self.column(wo, kw) {
                    dx[row + w] += du[at + wo];
                }
            }
        });
    }

    /// The forward pass of a batch: `y` (`NO x B`, column-major) from `x` (`NI x B`), the
    /// weight's data (`COUT x CK`, column-major) and the bias, `u` the `CK HO WO` buffer.
    #[inline(always)]
    fn forward<T: Real>(
        &self,
        weight: &[T],
        bias: Option<&[T]>,
        x: &[T],
        y: &mut [T],
        u: &mut [T],
    ) {
        let (p, ck, coutg) = (self.positions(), self.ck(), self.coutg());
        let (ni, no) = (self.cin * self.hi * self.wi, self.cout * p);
        for (xc, yc) in x.chunks_exact(ni).zip(y.chunks_exact_mut(no)) {
            for (o, row) in yc.chunks_exact_mut(p).enumerate() {
                row.fill(bias.map_or(T::zero(), |b| b[o]));
            }
            for g in 0..self.groups {
                self.unfold(xc, g, u);
                // Y_g^T (P x COUT/G) += U^T (P x CK) W_g^T (CK x COUT/G), W_g^T read in place.
                strided_product(
                    (p, ck, coutg),
                    (u, (1, p)),
                    (&weight[g * coutg..], (self.cout, 1)),
                    (&mut yc[g * coutg * p..], p),
                    true,
                );
            }
        }
    }

    /// The bias's gradient of a batch, overwriting `db`: the sum of `dy` over the batch and
    /// each output channel's positions.
    #[inline(always)]
    fn bias_grad<T: Real>(&self, dy: &[T], db: &mut [T]) {
        let (p, no) = (self.positions(), self.cout * self.positions());
        db.fill(T::zero());
        for dyc in dy.chunks_exact(no) {
            for (d, row) in db.iter_mut().zip(dyc.chunks_exact(p)) {
                *d += row.iter().fold(T::zero(), |s, &v| s + v);
            }
        }
    }

    /// The backward pass of a batch: overwrites `dw` (and `db`) with the parameters'
    /// gradients, and `dx`, where asked for, with the input's; `u` the `CK HO WO` buffer.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn backward<T: Real>(
        &self,
        weight: &[T],
        x: &[T],
        dy: &[T],
        dw: &mut [T],
        db: Option<&mut [T]>,
        mut dx: Option<&mut [T]>,
        u: &mut [T],
    ) {
        let (p, ck, coutg) = (self.positions(), self.ck(), self.coutg());
        let (ni, no) = (self.cin * self.hi * self.wi, self.cout * p);
        dw.fill(T::zero());
        if let Some(db) = db {
            self.bias_grad(dy, db);
        }
        if let Some(dx) = dx.as_deref_mut() {
            dx.fill(T::zero());
        }
        for (b, (xc, dyc)) in x.chunks_exact(ni).zip(dy.chunks_exact(no)).enumerate() {
            for g in 0..self.groups {
                let dyg = &dyc[g * coutg * p..];
                self.unfold(xc, g, u);
                // dW_g (COUT/G x CK) += dY_g (COUT/G x P) U^T (P x CK).
                strided_product(
                    (coutg, p, ck),
                    (dyg, (p, 1)),
                    (u, (1, p)),
                    (&mut dw[g * coutg..], self.cout),
                    true,
                );
                if let Some(dx) = dx.as_deref_mut() {
                    // dU^T (P x CK) = dY_g^T (P x COUT/G) W_g (COUT/G x CK), into U's buffer.
                    strided_product(
                        (p, coutg, ck),
                        (dyg, (1, p)),
                        (&weight[g * coutg..], (1, self.cout)),
                        (u, p),
                        false,
                    );
                    self.fold_add(u, g, &mut dx[b * ni..][..ni]);
                }
            }
        }
    }
}

/// Implements what [`Conv2d`] and [`Conv1d`] share: everything but the kernels.
macro_rules! block {
    ($name:ident, $torch:literal, [$($k:ident),+], [$($shape:expr),+]) => {
        // SAFETY: two nalgebra arrays of `f32`, of one alignment, so no padding: all-zero
        // bytes are 0.0 in every float.
        unsafe impl<const COUT: usize, const CING: usize, $(const $k: usize,)+ const CK: usize,
            const BIAS: bool> Zeroable for $name<f32, COUT, CING, $($k,)+ CK, BIAS> {}
        // SAFETY: as above, of `f64`.
        unsafe impl<const COUT: usize, const CING: usize, $(const $k: usize,)+ const CK: usize,
            const BIAS: bool> Zeroable for $name<f64, COUT, CING, $($k,)+ CK, BIAS> {}

        impl<T: Real, const COUT: usize, const CING: usize, $(const $k: usize,)+ const CK: usize,
            const BIAS: bool> Default for $name<T, COUT, CING, $($k,)+ CK, BIAS>
        {
            /// All zero, as [`zeros`](Self::zeros): what a gradient struct starts from.
            fn default() -> Self {
                Self::zeros()
            }
        }

        impl<T: Real, const COUT: usize, const CING: usize, $(const $k: usize,)+ const CK: usize,
            const BIAS: bool> $name<T, COUT, CING, $($k,)+ CK, BIAS>
        {
            /// `CK` is the product of `CING` and the kernel's sizes (evaluated where a method
            /// is used, so a wrong type fails to compile, with this message).
            const SIZES: () = {
                assert!(COUT >= 1 && CING >= 1, concat!($torch, ": channels must be at least 1"));
                assert!(CK == CING $(* $k)+, concat!($torch, ": CK must be CING times the kernel's size"));
            };

            /// Number of scalars in the block, for the generated parameter counts: the
            /// weight's `COUT CK`, and with `BIAS` the bias's `COUT`.
            pub const PARAMS: usize = COUT * CK + if BIAS { COUT } else { 0 };

            /// Number of tensors [`pair`](Self::pair) and [`Tensors`] give: the weight, and
            /// with `BIAS` the bias.
            pub const TENSORS: usize = if BIAS { 2 } else { 1 };

            /// A block whose parameters are all zero: the gradient struct's starting value,
            /// and the network's before [`reset`](Self::reset).
            pub fn zeros() -> Self {
                let () = Self::SIZES;
                Self {
                    weight: SMatrix::zeros(),
                    bias: SVector::zeros(),
                }
            }

            /// Torch's default initialisation, in place: `kaiming_uniform_(a = sqrt(5))` on
            /// the weight and the matching bias bound, both uniform in `+-1/sqrt(CK)` (the
            /// fan-in, `CIN / G` times the kernel's size), drawn from `init` in torch's order:
            /// the weight as its tensor row-major, then the bias. So one seed gives one
            /// network whatever layers surround it. Without `BIAS` the bias is neither drawn
            /// nor touched.
            pub fn reset(&mut self, init: &mut Init) {
                let () = Self::SIZES;
                let bound = Init::linear_bound(CK);
                for o in 0..COUT {
                    for c in 0..CK {
                        // Row-major [o][ci][kh][kw] is column (ci KH + kh) KW + kw of row o.
                        self.weight[(o, c)] = init.uniform(bound);
                    }
                }
                if BIAS {
                    for o in 0..COUT {
                        self.bias[o] = init.uniform(bound);
                    }
                }
            }

            /// Puts the weight (and with `BIAS` the bias) into `params[*at..]`, each beside
            /// its gradient (from `gradients`) in `grads[*at..]`, advancing `at` by
            /// [`TENSORS`](Self::TENSORS): the flat view an optimizer works on, in the order
            /// of [`Tensors`] (see `Linear::pair`). Without `BIAS` the bias is left out, so no
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

        impl<T: Real, const COUT: usize, const CING: usize, $(const $k: usize,)+ const CK: usize,
            const BIAS: bool> crate::tensors::FlatTensors for $name<T, COUT, CING, $($k,)+ CK, BIAS>
        {
            type Scalar = T;

            /// The weight, and with `BIAS` the bias, as `pair`.
            fn for_each_tensor_mut(&mut self, f: &mut impl FnMut(&mut [T])) {
                f(self.weight.as_mut_slice());
                if BIAS {
                    f(self.bias.as_mut_slice());
                }
            }
        }

        impl<T: Real, const COUT: usize, const CING: usize, $(const $k: usize,)+ const CK: usize,
            const BIAS: bool> Tensors<T> for $name<T, COUT, CING, $($k,)+ CK, BIAS>
        {
            /// As torch's `state_dict`: `{prefix}weight` of torch's shape (its data the
            /// `COUT x CK` matrix, column-major, which the weight files make row-major as
            /// `[COUT, CK]`: torch's order), and with `BIAS` `{prefix}bias` of shape `[COUT]`.
            fn visit(&self, prefix: &str, f: &mut Visitor<T>) {
                crate::tensors::named(format_args!("{prefix}weight"), |name| f(name, &[$($shape),+], self.weight.as_slice()));
                if BIAS {
                    crate::tensors::named(format_args!("{prefix}bias"), |name| f(name, &[COUT], self.bias.as_slice()));
                }
            }

            fn visit_mut(&mut self, prefix: &str, f: &mut VisitorMut<T>) {
                crate::tensors::named(format_args!("{prefix}weight"), |name| f(name, &[$($shape),+], self.weight.as_mut_slice()));
                if BIAS {
                    crate::tensors::named(format_args!("{prefix}bias"), |name| f(name, &[COUT], self.bias.as_mut_slice()));
                }
            }
        }
    };
}

block!(Conv2d, "Conv2d", [KH, KW], [COUT, CING, KH, KW]);
block!(Conv1d, "Conv1d", [K], [COUT, CING, K]);

impl<
    T: Real,
    const COUT: usize,
    const CING: usize,
    const KH: usize,
    const KW: usize,
    const CK: usize,
    const BIAS: bool,
> Conv2d<T, COUT, CING, KH, KW, CK, BIAS>
{
    /// The forward pass of a batch of `B` maps `(CIN, HI, WI)`, one column each: returns the
    /// `(COUT, HO, WO)` maps, torch's `nn.Conv2d` with strides `SH`, `SW`, zero padding `PH`,
    /// `PW`, dilations `DH`, `DW` and `G` groups (`NI = CIN HI WI`, `NO = COUT HO WO`, `HO`
    /// and `WO` torch's output sizes, all checked at compile time). Allocates nothing; its
    /// only temporary is one sample's unfolded input, `CK x HO WO`, on the stack.
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub fn forward<
        const CIN: usize,
        const G: usize,
        const HI: usize,
        const WI: usize,
        const HO: usize,
        const WO: usize,
        const SH: usize,
        const SW: usize,
        const PH: usize,
        const PW: usize,
        const DH: usize,
        const DW: usize,
        const NI: usize,
        const NO: usize,
        const B: usize,
    >(
        &self,
        x: &SMatrix<T, NI, B>,
    ) -> SMatrix<T, NO, B> {
        let () = Self::SIZES;
        let geometry = const {
            assert!(CIN == CING * G, "Conv2d: CING must be CIN / G");
            Geometry {
                cin: CIN,
                cout: COUT,
                groups: G,
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
                dh: DH,
                dw: DW,
            }
            .checked(CK, NI, NO)
        };
        let direct = const { direct3x3(G, [KH, KW, SH, SW, PH, PW, DH, DW]) };
        let (w, bias) = (self.weight.as_slice(), self.bias.as_slice());
        let bias = if BIAS { bias } else { &[] };
        // The direct kernels where they apply (every output written, so the output is not
        // zeroed first: callgrind counted the batch's `memset`), im2col otherwise.
        build(|y| {
            if !(direct && T::conv3x3::<CIN, COUT, HI, WI, NI>(w, bias, x.as_slice(), y)) {
                let mut u = [[[T::zero(); WO]; HO]; CK];
                let u = u.as_flattened_mut().as_flattened_mut();
                let bias = BIAS.then_some(bias);
                geometry.forward(w, bias, x.as_slice(), zeroed(y), u);
            }
        })
    }

    /// The backward pass of a batch, from its input `x` and the loss's gradient `dy` with
    /// respect to its output: overwrites `grads` with the parameters' gradients (summed over
    /// the batch and the positions; the bias's left zero without `BIAS`), as `Linear`'s
    /// backward does, and returns the input's. The geometry as in [`forward`](Self::forward).
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub fn backward<
        const CIN: usize,
        const G: usize,
        const HI: usize,
        const WI: usize,
        const HO: usize,
        const WO: usize,
        const SH: usize,
        const SW: usize,
        const PH: usize,
        const PW: usize,
        const DH: usize,
        const DW: usize,
        const NI: usize,
        const NO: usize,
        const B: usize,
    >(
        &self,
        x: &SMatrix<T, NI, B>,
        dy: &SMatrix<T, NO, B>,
        grads: &mut Self,
    ) -> SMatrix<T, NI, B> {
        // Not zeroed first where the direct kernel writes every element (see `forward`).
        build(|dx| {
            self.backward_into::<CIN, G, HI, WI, HO, WO, SH, SW, PH, PW, DH, DW, NI, NO, B>(
                x,
                dy,
                grads,
                Some(dx),
            )
        })
    }

    /// [`backward`](Self::backward) without the input's gradient: for a first layer, which
    /// has nothing below it to pass one to.
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub fn backward_params<
        const CIN: usize,
        const G: usize,
        const HI: usize,
        const WI: usize,
        const HO: usize,
        const WO: usize,
        const SH: usize,
        const SW: usize,
        const PH: usize,
        const PW: usize,
        const DH: usize,
        const DW: usize,
        const NI: usize,
        const NO: usize,
        const B: usize,
    >(
        &self,
        x: &SMatrix<T, NI, B>,
        dy: &SMatrix<T, NO, B>,
        grads: &mut Self,
    ) {
        self.backward_into::<CIN, G, HI, WI, HO, WO, SH, SW, PH, PW, DH, DW, NI, NO, B>(
            x, dy, grads, None,
        );
    }

    /// The backward pass, the input's gradient written into `dx` where given.
    #[inline(always)]
    fn backward_into<
        const CIN: usize,
        const G: usize,
        const HI: usize,
        const WI: usize,
        const HO: usize,
        const WO: usize,
        const SH: usize,
        const SW: usize,
        const PH: usize,
        const PW: usize,
        const DH: usize,
        const DW: usize,
        const NI: usize,
        const NO: usize,
        const B: usize,
    >(
        &self,
        x: &SMatrix<T, NI, B>,
        dy: &SMatrix<T, NO, B>,
        grads: &mut Self,
        dx: Option<&mut [MaybeUninit<T>]>,
    ) {
        let () = Self::SIZES;
        let geometry = const {
            assert!(CIN == CING * G, "Conv2d: CING must be CIN / G");
            Geometry {
                cin: CIN,
                cout: COUT,
                groups: G,
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
                dh: DH,
                dw: DW,
            }
            .checked(CK, NI, NO)
        };
        let mut dx = dx;
        grads.bias = SVector::zeros();
        let db = BIAS.then_some(grads.bias.as_mut_slice());
        let (w, dw) = (self.weight.as_slice(), grads.weight.as_mut_slice());
        let (xs, dys) = (x.as_slice(), dy.as_slice());
        if const { direct3x3(G, [KH, KW, SH, SW, PH, PW, DH, DW]) }
            && T::conv3x3_weight::<CIN, COUT, HI, WI, NI, NO>(xs, dys, dw)
            && dx
                .as_deref_mut()
                .is_none_or(|into| T::conv3x3_input::<CIN, COUT, HI, WI, NO, CK>(w, dys, into))
        {
            if let Some(db) = db {
                geometry.bias_grad(dys, db);
            }
            return;
        }
        let mut u = [[[T::zero(); WO]; HO]; CK];
        let u = u.as_flattened_mut().as_flattened_mut();
        geometry.backward(w, xs, dys, dw, db, dx.map(zeroed), u);
    }
}

impl<
    T: Real,
    const COUT: usize,
    const CING: usize,
    const K: usize,
    const CK: usize,
    const BIAS: bool,
> Conv1d<T, COUT, CING, K, CK, BIAS>
{
    /// The geometry of a `(CIN, LI)` input as a `(CIN, 1, LI)` map under a `1 x K` kernel.
    #[allow(clippy::too_many_arguments)]
    const fn geometry(
        cin: usize,
        g: usize,
        li: usize,
        lo: usize,
        s: usize,
        p: usize,
        d: usize,
        ni: usize,
        no: usize,
    ) -> Geometry {
        assert!(cin == CING * g, "Conv1d: CING must be CIN / G");
        Geometry {
            cin,
            cout: COUT,
            groups: g,
            hi: 1,
            wi: li,
            ho: 1,
            wo: lo,
            kh: 1,
            kw: K,
            sh: 1,
            sw: s,
            ph: 0,
            pw: p,
            dh: 1,
            dw: d,
        }
        .checked(CK, ni, no)
    }

    /// The forward pass of a batch of `B` sequences `(CIN, LI)`, one column each: returns the
    /// `(COUT, LO)` outputs, torch's `nn.Conv1d` with stride `S`, zero padding `P`, dilation
    /// `D` and `G` groups (`NI = CIN LI`, `NO = COUT LO`, `LO` torch's output length, all
    /// checked at compile time). Allocates nothing; its only temporary is one sample's
    /// unfolded input, `CK x LO`, on the stack.
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub fn forward<
        const CIN: usize,
        const G: usize,
        const LI: usize,
        const LO: usize,
        const S: usize,
        const P: usize,
        const D: usize,
        const NI: usize,
        const NO: usize,
        const B: usize,
    >(
        &self,
        x: &SMatrix<T, NI, B>,
    ) -> SMatrix<T, NO, B> {
        let () = Self::SIZES;
        let geometry = const { Self::geometry(CIN, G, LI, LO, S, P, D, NI, NO) };
        let mut y = SMatrix::<T, NO, B>::zeros();
        let mut u = [[T::zero(); LO]; CK];
        let bias = BIAS.then_some(self.bias.as_slice());
        let u = u.as_flattened_mut();
        geometry.forward(
            self.weight.as_slice(),
            bias,
            x.as_slice(),
            y.as_mut_slice(),
            u,
        );
        y
    }

    /// The backward pass of a batch: overwrites `grads` with the parameters' gradients and
    /// returns the input's, as [`Conv2d::backward`]. The geometry as in
    /// [`forward`](Self::forward).
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub fn backward<
        const CIN: usize,
        const G: usize,
        const LI: usize,
        const LO: usize,
        const S: usize,
        const P: usize,
        const D: usize,
        const NI: usize,
        const NO: usize,
        const B: usize,
    >(
        &self,
        x: &SMatrix<T, NI, B>,
        dy: &SMatrix<T, NO, B>,
        grads: &mut Self,
    ) -> SMatrix<T, NI, B> {
        let mut dx = SMatrix::<T, NI, B>::zeros();
        self.backward_into::<CIN, G, LI, LO, S, P, D, NI, NO, B>(
            x,
            dy,
            grads,
            Some(dx.as_mut_slice()),
        );
        dx
    }

    /// [`backward`](Self::backward) without the input's gradient: for a first layer.
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub fn backward_params<
        const CIN: usize,
        const G: usize,
        const LI: usize,
        const LO: usize,
        const S: usize,
        const P: usize,
        const D: usize,
        const NI: usize,
        const NO: usize,
        const B: usize,
    >(
        &self,
        x: &SMatrix<T, NI, B>,
        dy: &SMatrix<T, NO, B>,
        grads: &mut Self,
    ) {
        self.backward_into::<CIN, G, LI, LO, S, P, D, NI, NO, B>(x, dy, grads, None);
    }

    /// The backward pass, the input's gradient written into `dx` where given.
    #[inline(always)]
    fn backward_into<
        const CIN: usize,
        const G: usize,
        const LI: usize,
        const LO: usize,
        const S: usize,
        const P: usize,
        const D: usize,
        const NI: usize,
        const NO: usize,
        const B: usize,
    >(
        &self,
        x: &SMatrix<T, NI, B>,
        dy: &SMatrix<T, NO, B>,
        grads: &mut Self,
        dx: Option<&mut [T]>,
    ) {
        let () = Self::SIZES;
        let geometry = const { Self::geometry(CIN, G, LI, LO, S, P, D, NI, NO) };
        let mut u = [[T::zero(); LO]; CK];
        let u = u.as_flattened_mut();
        grads.bias = SVector::zeros();
        let db = BIAS.then_some(grads.bias.as_mut_slice());
        let (w, dw) = (self.weight.as_slice(), grads.weight.as_mut_slice());
        geometry.backward(w, x.as_slice(), dy.as_slice(), dw, db, dx, u);
    }
}
