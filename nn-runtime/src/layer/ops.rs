//! Matrix kernels the generated forward and backward passes call.
//!
//! Shapes follow the convention of the whole crate: one column per sample, so a batch of `B`
//! inputs of a `Linear(IN, OUT)` layer is an `IN x B` matrix.
//!
//! Each product is chosen per layer at compile time by its sizes: below [`GEMM_MIN_FLOPS`]
//! plain loops over compile-time sizes (fully unrolled, best for the tiniest layers, such as
//! xor's); above it the SIMD kernels of the floor below (`simd`, through its `Kernels` trait:
//! for `f32` where the processor has AVX2 and FMA), which handle every shape in whole
//! vectors: odd row counts by masked stores, a batch of one by matrix-vector kernels, `W^T` by
//! packing or by dot products along its rows. A single sample through a small layer goes to
//! the constant-size kernels of `simd/gemv.rs` instead, inlined into the network's code. The
//! condition is on const generics, so each monomorphised kernel keeps only one branch.
//!
//! With a plain SGD optimizer, `train_step` calls [`linear_backward_sgd`] and
//! [`linear_update_sgd`]: the step `W -= lr dz x^T` is the weight-gradient product itself,
//! scaled by `-lr` and added onto the weights, so no gradient is stored or read back.

use super::Linear;
use crate::real::Real;
use nalgebra::{SMatrix, SVector};

/// Products with at least this many multiply-adds go to the SIMD kernels. Below it (xor's
/// layers: 64 multiply-adds at most) the call, its feature test and its bounds checks cost
/// more than the compiler's fully unrolled code for the constant sizes.
pub const GEMM_MIN_FLOPS: usize = 128;

/// Whether an `m x k` by `k x n` product is large enough for the SIMD kernels.
const fn large(m: usize, k: usize, n: usize) -> bool {
    m * k * n >= GEMM_MIN_FLOPS
}

/// Whether a `Linear(IN, OUT)` layer run on a batch of `B` takes the constant-size kernels of
/// `simd/gemv.rs`: a single sample through a small layer.
const fn one_small(out: usize, input: usize, batch: usize) -> bool {
    batch == 1 && crate::simd::gemv_fits(out, input)
}

/// Whether the weight gradient of a `Linear(IN, OUT)` layer on a batch of `B` is better
/// formed transposed, `dW^T = x dz^T`, in a temporary on the stack. Under 16 outputs fill
/// part of one 16-row block of the GEMM kernel (10 of 16 rows for a 10-class output layer), and
/// the rows of `dz` must first be copied into a zero-padded panel; the transposed product's
/// rows are the `IN` inputs, whole blocks of `x` read in place. Measured on digits' output
/// layer (`10 x 32` by `32 x 32`): 430 ns as `dz x^T`, 300 ns transposed and copied back.
const fn weight_grad_transposed(out: usize, input: usize, batch: usize) -> bool {
    out < 16
        && input.is_multiple_of(16)
        && input * out <= 4096
        && batch > 1
        && large(input, batch, out)
}

/// `W = alpha dz x^T`, or `W += alpha dz x^T` with `add`, formed transposed by the SIMD
/// kernels in a temporary and copied back; `false`, with nothing done, where there are no such
/// kernels (see [`weight_grad_transposed`]).
///
/// A function of its own, not inlined by force: the `IN x OUT` temporary must only exist in
/// the frames of the layers that take this path. In an unoptimised build every local of a
/// function has a stack slot even in a branch that is never taken, and inlined into the
/// caller's branch the temporary of a `784 x 512` layer (1.6 MB) would overflow a small stack.
#[inline]
fn weight_grad_via_transpose<T: Real, const IN: usize, const OUT: usize, const B: usize>(
    x: &[T],
    dz: &[T],
    w: &mut [T],
    alpha: T,
    add: bool,
) -> bool {
    let mut t = SMatrix::<T, IN, OUT>::zeros();
    // x is `IN x B` with contiguous columns; dz^T's element (b, r) is dz[r + b * OUT].
    let (a, b, c) = ((x, (1, IN)), (dz, (OUT, 1)), (t.as_mut_slice(), IN));
    // `large` holds, as `weight_grad_transposed` requires: a test of constants, folded away.
    let done = product((IN, B, OUT), a, b, c, alpha, false);
    if done {
        // W[r, i] = t[i, r].
        for (r, column) in t.as_slice().chunks_exact(IN).enumerate() {
            for (i, &g) in column.iter().enumerate() {
                let at = r + i * OUT;
                w[at] = if add { w[at] + g } else { g };
            }
        }
    }
    done
}

/// `C = alpha A B`, or `C += alpha A B` with `accumulate`, by the SIMD kernels (`A` and `B`
/// each a slice with its strides, `C` a slice with its column stride), where the product is
/// [`large`] enough for them; `false`, with nothing done, otherwise.
#[inline(always)]
fn product<T: Real>(
    (m, k, n): (usize, usize, usize),
    (a, a_strides): (&[T], (usize, usize)),
    (b, b_strides): (&[T], (usize, usize)),
    (c, ldc): (&mut [T], usize),
    alpha: T,
    accumulate: bool,
) -> bool {
    large(m, k, n)
        && T::gemm(
            (m, k, n),
            a,
            a_strides,
            b,
            b_strides,
            c,
            ldc,
            alpha,
            accumulate,
        )
}

/// `C = A B`, or `C += A B` with `accumulate`, for matrices given as slices with strides (the
/// layout of [`product`]: `A(i, p)` at `a[i rsa + p csa]`, `B(p, j)` at `b[p rsb + j csb]`,
/// `C(i, j)` at `c[i + j ldc]`): by the SIMD kernels where the product is [`large`] enough,
/// by portable loops otherwise. The im2col products of the shaped convolutions, whose
/// operands are a sample's column read as a matrix, a group's rows of the weight, or its
/// transpose, all in place.
#[inline(always)]
pub(crate) fn strided_product<T: Real>(
    (m, k, n): (usize, usize, usize),
    (a, (rsa, csa)): (&[T], (usize, usize)),
    (b, (rsb, csb)): (&[T], (usize, usize)),
    (c, ldc): (&mut [T], usize),
    accumulate: bool,
) {
    if product(
        (m, k, n),
        (a, (rsa, csa)),
        (b, (rsb, csb)),
        (c, ldc),
        T::one(),
        accumulate,
    ) {
        return;
    }
    for j in 0..n {
        let column = &mut c[j * ldc..][..m];
        if !accumulate {
            column.fill(T::zero());
        }
        for p in 0..k {
            let bv = b[p * rsb + j * csb];
            if rsa == 1 {
                // A's column p is contiguous: an axpy the compiler vectorises.
                let a_column = &a[p * csa..][..m];
                for (c, &av) in column.iter_mut().zip(a_column) {
                    *c += av * bv;
                }
            } else {
                for (i, c) in column.iter_mut().enumerate() {
                    *c += a[i * rsa + p * csa] * bv;
                }
            }
        }
    }
}

/// `W = alpha dz x^T`, or `W += alpha dz x^T` with `add`, by whichever SIMD kernel fits the
/// layer's sizes (see [`one_small`], [`weight_grad_transposed`], [`large`]); `false`, with
/// nothing done, where none does: the weight gradient with `alpha = 1`, or a fused SGD step
/// with `alpha = -lr` and `add`.
#[inline(always)]
fn weight_product<T: Real, const IN: usize, const OUT: usize, const B: usize>(
    x: &SMatrix<T, IN, B>,
    dz: &SMatrix<T, OUT, B>,
    weight: &mut SMatrix<T, OUT, IN>,
    alpha: T,
    add: bool,
) -> bool {
    let (x_all, dz_all) = (x.as_slice(), dz.as_slice());
    if one_small(OUT, IN, B) {
        T::outer::<OUT, IN>(dz_all, x_all, weight.as_mut_slice(), alpha, add)
    } else if weight_grad_transposed(OUT, IN, B) {
        let w = weight.as_mut_slice();
        weight_grad_via_transpose::<T, IN, OUT, B>(x_all, dz_all, w, alpha, add)
    } else {
        // x^T is read in place: element (b, i) of x^T is x[i + b * IN].
        let (a, b, c) = (
            (dz_all, (1, OUT)),
            (x_all, (IN, 1)),
            (weight.as_mut_slice(), OUT),
        );
        product((OUT, B, IN), a, b, c, alpha, add)
    }
}

/// `f(x)` for every element of `x`: an elementwise activation's forward pass. Force-inlined
/// (nalgebra's `map` is only a hint) so that it is compiled with the caller's target features:
/// in a large AVX2 entry point the optimizer left `map` a call to portable code.
#[inline(always)]
pub fn map<T: Real, const R: usize, const C: usize>(
    x: &SMatrix<T, R, C>,
    f: impl Fn(T) -> T,
) -> SMatrix<T, R, C> {
    // Written once, straight from `x`: copying `x` first and mapping in place cost a
    // whole-batch copy (and the optimizer left two more moves of the result in the passes).
    // Slices, not nalgebra's iterators, which step by strides the loop cannot see through.
    build(|y| {
        y.iter_mut()
            .zip(x.as_slice())
            .for_each(|(v, &a)| _ = v.write(f(a)));
    })
}

/// `y` filled with zeros, as the initialised slice it then is.
#[inline(always)]
pub(crate) fn zeroed<T: Real>(y: &mut [core::mem::MaybeUninit<T>]) -> &mut [T] {
    y.fill(core::mem::MaybeUninit::new(T::zero()));
    // SAFETY: every element was just written, and `MaybeUninit<T>` has `T`'s layout.
    unsafe { &mut *(core::ptr::from_mut(y) as *mut [T]) }
}

/// A matrix whose every element `write` sets, through the slice of its elements in
/// column-major order, never zeroed or copied first.
#[inline(always)]
pub(crate) fn build<T: Real, const R: usize, const C: usize>(
    write: impl FnOnce(&mut [core::mem::MaybeUninit<T>]),
) -> SMatrix<T, R, C> {
    // nalgebra's `Matrix` is `repr(C)` around its `ArrayStorage`, a `repr(transparent)`
    // `[[T; R]; C]`: the matrix is exactly its `R C` elements.
    const { assert!(core::mem::size_of::<SMatrix<T, R, C>>() == R * C * core::mem::size_of::<T>()) };
    let mut y = core::mem::MaybeUninit::<SMatrix<T, R, C>>::uninit();
    // SAFETY: the matrix is `R C` contiguous `T`s (asserted above, and aligned as `T`), and a
    // `MaybeUninit<T>` has `T`'s layout; the slice borrows `y` only for `write`.
    let elements = unsafe {
        core::slice::from_raw_parts_mut(y.as_mut_ptr().cast::<core::mem::MaybeUninit<T>>(), R * C)
    };
    write(elements);
    // SAFETY: `write` initialises every element (its callers zip the whole slice with an
    // input of the same length), and a `T: Real` has no invalid bit patterns.
    unsafe { y.assume_init() }
}

/// `dy * f'` element by element, with `f'` computed by `d` from each element of `at` (the
/// activation's input or output): an elementwise activation's chain-rule step. Force-inlined
/// as [`map`] is.
#[inline(always)]
pub fn chain<T: Real, const R: usize, const C: usize>(
    dy: SMatrix<T, R, C>,
    at: &SMatrix<T, R, C>,
    d: impl Fn(T) -> T,
) -> SMatrix<T, R, C> {
    // Written once into a fresh matrix: updating `dy` in place cost two whole-batch moves of
    // it in the passes (callgrind: a `memcpy` of the batch for each).
    build(|dx| {
        dx.iter_mut()
            .zip(dy.as_slice().iter().zip(at.as_slice()))
            .for_each(|(g, (&y, &a))| _ = g.write(y * d(a)));
    })
}

/// `f(x, a)` for every element of `x`, with `a` the element's parameter in `w`: its row's
/// (`w[r]`) where there is one per feature (`P == R`), the only one (`w[0]`) where `P == 1`.
/// An elementwise activation with learnable parameters (PReLU) in the forward pass.
/// Force-inlined as [`map`] is.
///
/// The macro only generates `P == 1` or `P == R`; anything else fails to compile here.
#[inline(always)]
pub fn map_param<T: Real, const R: usize, const C: usize, const P: usize>(
    x: &SMatrix<T, R, C>,
    w: &SVector<T, P>,
    f: impl Fn(T, T) -> T,
) -> SMatrix<T, R, C> {
    const { assert!(P == 1 || P == R, "one parameter in all, or one per row") };
    let mut y = *x;
    if R == 0 {
        return y;
    }
    let (columns, _) = y.as_mut_slice().as_chunks_mut::<R>();
    if P == 1 {
        let a = w[0];
        columns.iter_mut().flatten().for_each(|v| *v = f(*v, a));
    } else {
        let w = w.as_slice();
        for column in columns {
            column.iter_mut().zip(w).for_each(|(v, &a)| *v = f(*v, a));
        }
    }
    y
}

/// The gradient of a parameterised elementwise step (see [`map_param`]) with respect to its
/// parameters, from `dy` and, per element, `fa`, the derivative with respect to the parameter
/// that `each(x, a, dy)` returns after whatever else it does: `dw[k] = sum of dy fa` over
/// every element (all rows and samples) that uses parameter `k`. Overwrites `dw`.
#[inline(always)]
fn param_grad<T: Real, const R: usize, const C: usize, const P: usize>(
    x: &SMatrix<T, R, C>,
    w: &SVector<T, P>,
    dw: &mut SVector<T, P>,
    dy: &mut SMatrix<T, R, C>,
    each: impl Fn(T, T, &mut T) -> T,
) {
    const { assert!(P == 1 || P == R, "one parameter in all, or one per row") };
    if R == 0 {
        *dw = SVector::zeros();
        return;
    }
    let (inputs, _) = x.as_slice().as_chunks::<R>();
    let (gradients, _) = dy.as_mut_slice().as_chunks_mut::<R>();
    // Summed in a local of constant size (registers), stored once: the gradient is
    // overwritten, as `linear_backward_params` overwrites its own.
    let mut sum = [T::zero(); P];
    if P == 1 {
        let a = w[0];
        let mut s = T::zero();
        for (g, &x) in gradients.iter_mut().flatten().zip(inputs.iter().flatten()) {
            s += each(x, a, g);
        }
        sum[0] = s;
    } else {
        let w = w.as_slice();
        for (gc, xc) in gradients.iter_mut().zip(inputs) {
            for (((g, &x), &a), s) in gc.iter_mut().zip(xc).zip(w).zip(sum.iter_mut()) {
                *s += each(x, a, g);
            }
        }
    }
    *dw = SVector::from(sum);
}

/// The chain-rule step of a parameterised elementwise activation (see [`map_param`]): with
/// `(fx, fa) = d(x, a)` its derivatives with respect to the input and to the parameter at each
/// element, returns `dx = dy * fx` element by element and overwrites `dw` with the sum of
/// `dy * fa` over every element that uses each parameter (all rows with `P == 1`, row `r` for
/// parameter `r` otherwise, over all samples). Both from one call of `d`, which for PReLU
/// shares its one comparison.
///
/// `dy` by value, updated in place into `dx`. Force-inlined as [`chain`] is.
#[inline(always)]
pub fn chain_param<T: Real, const R: usize, const C: usize, const P: usize>(
    dy: SMatrix<T, R, C>,
    x: &SMatrix<T, R, C>,
    w: &SVector<T, P>,
    dw: &mut SVector<T, P>,
    d: impl Fn(T, T) -> (T, T),
) -> SMatrix<T, R, C> {
    let mut dx = dy;
    param_grad(x, w, dw, &mut dx, |x, a, g| {
        let (fx, fa) = d(x, a);
        let dyv = *g;
        *g = dyv * fx;
        dyv * fa
    });
    dx
}

/// Like [`chain_param`] but only the parameters' gradient, overwriting `dw`, with `d(x, a)`
/// the derivative with respect to the parameter alone: for a parameterised activation with
/// nothing below it to pass a gradient to (the first layer of a network not nested in
/// another), so no `dx` is formed.
#[inline(always)]
pub fn chain_param_only<T: Real, const R: usize, const C: usize, const P: usize>(
    dy: &SMatrix<T, R, C>,
    x: &SMatrix<T, R, C>,
    w: &SVector<T, P>,
    dw: &mut SVector<T, P>,
    d: impl Fn(T, T) -> T,
) {
    const { assert!(P == 1 || P == R, "one parameter in all, or one per row") };
    let mut sum = [T::zero(); P];
    if R != 0 {
        let (inputs, _) = x.as_slice().as_chunks::<R>();
        let (gradients, _) = dy.as_slice().as_chunks::<R>();
        if P == 1 {
            let a = w[0];
            let mut s = T::zero();
            for (&g, &x) in gradients.iter().flatten().zip(inputs.iter().flatten()) {
                s += g * d(x, a);
            }
            sum[0] = s;
        } else {
            let w = w.as_slice();
            for (gc, xc) in gradients.iter().zip(inputs) {
                for (((&g, &x), &a), s) in gc.iter().zip(xc).zip(w).zip(sum.iter_mut()) {
                    *s += g * d(x, a);
                }
            }
        }
    }
    *dw = SVector::from(sum);
}

/// `z = W x + b` for every column of `x`.
#[inline(always)]
pub fn linear_forward<T: Real, const IN: usize, const OUT: usize, const B: usize>(
    layer: &Linear<T, IN, OUT>,
    x: &SMatrix<T, IN, B>,
) -> SMatrix<T, OUT, B> {
    let mut z = SMatrix::<T, OUT, B>::from_fn(|r, _| layer.bias[r]);
    // The bias is already in z, so the product adds to it: bias fused, no second pass.
    product_add(&layer.weight, x, &mut z);
    z
}

/// An `R x B` accumulator holding `bias` in every column, or zero: the start of a product
/// whose bias is fused (a recurrent layer's gates, a causal convolution's output).
#[inline(always)]
pub(crate) fn start<T: Real, const R: usize, const B: usize>(
    bias: &SVector<T, R>,
    with_bias: bool,
) -> SMatrix<T, R, B> {
    if with_bias {
        SMatrix::from_data(nalgebra::ArrayStorage([bias.data.0[0]; B]))
    } else {
        SMatrix::zeros()
    }
}

/// `b += d 1`: a bias's gradient, summed over the streams (added, for a bias whose gradient
/// accumulates over the steps of a window).
#[inline(always)]
pub(crate) fn row_sums_add<T: Real, const R: usize, const B: usize>(
    b: &mut SVector<T, R>,
    d: &SMatrix<T, R, B>,
) {
    for d in &d.data.0 {
        for (b, &d) in b.data.0[0].iter_mut().zip(d) {
            *b += d;
        }
    }
}

/// `z += W x` for every column of `x`, by whichever kernel fits the sizes (see
/// [`one_small`], [`large`]), or by portable loops: the product of a `Linear` layer's forward
/// pass, and of a recurrent layer's gates.
#[inline(always)]
pub(crate) fn product_add<T: Real, const IN: usize, const OUT: usize, const B: usize>(
    weight: &SMatrix<T, OUT, IN>,
    x: &SMatrix<T, IN, B>,
    z: &mut SMatrix<T, OUT, B>,
) {
    let (w, x_all) = (weight.as_slice(), x.as_slice());
    let done = if one_small(OUT, IN, B) {
        T::gemv::<OUT, IN>(w, x_all, z.as_mut_slice())
    } else {
        let (a, b, c) = ((w, (1, OUT)), (x_all, (1, IN)), (z.as_mut_slice(), OUT));
        product((OUT, IN, B), a, b, c, T::one(), true)
    };
    if !done {
        // Column by column: z[:, b] += W[:, i] x[i, b], each W[:, i] contiguous, so the inner
        // loop runs along OUT in full vectors.
        for (zc, xc) in z
            .as_mut_slice()
            .chunks_exact_mut(OUT)
            .zip(x_all.chunks_exact(IN))
        {
            for (wc, &xi) in w.chunks_exact(OUT).zip(xc) {
                for (z, &wv) in zc.iter_mut().zip(wc) {
                    *z += wv * xi;
                }
            }
        }
    }
}

/// `W += dz x^T`, by whichever kernel fits the sizes, or by portable loops: a weight gradient
/// accumulated over the steps of a sequence (a recurrent layer's).
#[inline(always)]
pub(crate) fn weight_grad_add<T: Real, const IN: usize, const OUT: usize, const B: usize>(
    x: &SMatrix<T, IN, B>,
    dz: &SMatrix<T, OUT, B>,
    weight: &mut SMatrix<T, OUT, IN>,
) {
    if !weight_product(x, dz, weight, T::one(), true) {
        let (x_all, dz_all) = (x.as_slice(), dz.as_slice());
        // dW[:, i] += sum_b dz[:, b] x[i, b], along contiguous columns.
        for (i, dw) in weight.as_mut_slice().chunks_exact_mut(OUT).enumerate() {
            for (b, dzc) in dz_all.chunks_exact(OUT).enumerate() {
                let xi = x_all[b * IN + i];
                dw.iter_mut().zip(dzc).for_each(|(w, &d)| *w += d * xi);
            }
        }
    }
}

/// Gradients of a `Linear` layer's parameters from its input `x` and the gradient `dz` of the
/// loss with respect to its output: `dW = dz x^T`, `db = sum of dz's columns`. Overwrites `grad`.
#[inline(always)]
pub fn linear_backward_params<T: Real, const IN: usize, const OUT: usize, const B: usize>(
    x: &SMatrix<T, IN, B>,
    dz: &SMatrix<T, OUT, B>,
    grad: &mut Linear<T, IN, OUT>,
) {
    let (x_all, dz_all) = (x.as_slice(), dz.as_slice());
    if !weight_product(x, dz, &mut grad.weight, T::one(), false) {
        // dW[:, i] = sum_b dz[:, b] x[i, b]: the first sample writes, the others add.
        for (i, dw) in grad.weight.as_mut_slice().chunks_exact_mut(OUT).enumerate() {
            for (b, dzc) in dz_all.chunks_exact(OUT).enumerate() {
                let xi = x_all[b * IN + i];
                if b == 0 {
                    dw.iter_mut().zip(dzc).for_each(|(w, &d)| *w = d * xi);
                } else {
                    dw.iter_mut().zip(dzc).for_each(|(w, &d)| *w += d * xi);
                }
            }
        }
    }
    grad.bias = column_sum(dz);
}

/// The sum of the columns of `m`, in a local accumulator of constant size (held in registers,
/// one vector addition per column, where summing into the gradient's memory was not).
#[inline(always)]
fn column_sum<T: Real, const R: usize, const C: usize>(m: &SMatrix<T, R, C>) -> SVector<T, R> {
    let mut sum = [T::zero(); R];
    let (columns, _) = m.as_slice().as_chunks::<R>();
    for column in columns {
        for (s, &x) in sum.iter_mut().zip(column) {
            *s += x;
        }
    }
    SVector::from(sum)
}

/// Like [`linear_backward_params`], and also returns the gradient passed to the layer below:
/// `dx = W^T dz`.
#[inline(always)]
pub fn linear_backward<T: Real, const IN: usize, const OUT: usize, const B: usize>(
    layer: &Linear<T, IN, OUT>,
    x: &SMatrix<T, IN, B>,
    dz: &SMatrix<T, OUT, B>,
    grad: &mut Linear<T, IN, OUT>,
) -> SMatrix<T, IN, B> {
    linear_backward_params(x, dz, grad);
    linear_input_grad(layer, dz)
}

/// One plain SGD step on a `Linear` layer's parameters, fused into its backward pass:
/// `W -= rate * dz x^T`, `b -= rate * (sum of dz's columns)`, the gradient summed first and
/// subtracted once, but never stored. It matches a stored gradient and a separate
/// [`Sgd`](crate::Sgd) step to a few units in the last place (one rounding may be saved, and
/// a batch's products may be summed in another order).
#[inline(always)]
pub fn linear_update_sgd<T: Real, const IN: usize, const OUT: usize, const B: usize>(
    layer: &mut Linear<T, IN, OUT>,
    x: &SMatrix<T, IN, B>,
    dz: &SMatrix<T, OUT, B>,
    rate: T,
) {
    let (x_all, dz_all) = (x.as_slice(), dz.as_slice());
    // The step -rate dW by the kernels (sums scaled once), added onto the weights.
    if !weight_product(x, dz, &mut layer.weight, -rate, true) {
        // One column of the gradient at a time, summed over the batch on the stack, then
        // subtracted: dW[:, i] = sum_b dz[:, b] x[i, b].
        for (i, w) in layer
            .weight
            .as_mut_slice()
            .chunks_exact_mut(OUT)
            .enumerate()
        {
            let mut g = [T::zero(); OUT];
            for (b, dzc) in dz_all.chunks_exact(OUT).enumerate() {
                let xi = x_all[b * IN + i];
                g.iter_mut().zip(dzc).for_each(|(g, &d)| *g += d * xi);
            }
            w.iter_mut().zip(&g).for_each(|(w, &g)| *w -= rate * g);
        }
    }
    // Through slices: nalgebra's element iterators compile to scalar loops with stride logic.
    let db = column_sum(dz);
    let bias = layer.bias.as_mut_slice();
    bias.iter_mut()
        .zip(db.as_slice())
        .for_each(|(b, &g)| *b -= rate * g);
}

/// [`linear_update_sgd`] for a layer whose input gradient the layer below needs: returns
/// `dx = W^T dz`, computed from the weights before the step.
#[inline(always)]
#[must_use]
pub fn linear_backward_sgd<T: Real, const IN: usize, const OUT: usize, const B: usize>(
    layer: &mut Linear<T, IN, OUT>,
    x: &SMatrix<T, IN, B>,
    dz: &SMatrix<T, OUT, B>,
    rate: T,
) -> SMatrix<T, IN, B> {
    if one_small(OUT, IN, B) {
        // One sample: the input gradient and the weight step in one pass over the weights.
        let mut dx = SMatrix::<T, IN, B>::zeros();
        let (w, dz_all) = (layer.weight.as_mut_slice(), dz.as_slice());
        if T::gemv_t_outer::<OUT, IN>(w, dz_all, x.as_slice(), dx.as_mut_slice(), -rate) {
            let bias = layer.bias.as_mut_slice();
            bias.iter_mut()
                .zip(dz_all)
                .for_each(|(b, &d)| *b -= rate * d);
            return dx;
        }
    }
    let dx = linear_input_grad(layer, dz);
    linear_update_sgd(layer, x, dz, rate);
    dx
}

/// The gradient a frozen `Linear` layer passes to the layer below, `dx = W^T dz`, without
/// the gradients of its parameters, which nothing would read.
#[inline(always)]
#[must_use]
pub fn linear_backward_input<T: Real, const IN: usize, const OUT: usize, const B: usize>(
    layer: &Linear<T, IN, OUT>,
    dz: &SMatrix<T, OUT, B>,
) -> SMatrix<T, IN, B> {
    linear_input_grad(layer, dz)
}

/// The gradient a `Linear` layer passes to the layer below: `dx = W^T dz`.
#[inline(always)]
fn linear_input_grad<T: Real, const IN: usize, const OUT: usize, const B: usize>(
    layer: &Linear<T, IN, OUT>,
    dz: &SMatrix<T, OUT, B>,
) -> SMatrix<T, IN, B> {
    transposed_product(&layer.weight, dz)
}

/// `W^T dz`, by whichever kernel fits the sizes, or by portable dot products: the gradient a
/// `Linear` layer passes to the layer below, and a recurrent layer to its input and its
/// previous state.
#[inline(always)]
pub(crate) fn transposed_product<T: Real, const IN: usize, const OUT: usize, const B: usize>(
    weight: &SMatrix<T, OUT, IN>,
    dz: &SMatrix<T, OUT, B>,
) -> SMatrix<T, IN, B> {
    let mut dx = SMatrix::<T, IN, B>::zeros();
    let (w, dz_all) = (weight.as_slice(), dz.as_slice());
    // A = W^T read in place: element (i, o) of W^T is w[o + i * OUT].
    let done = if one_small(OUT, IN, B) {
        T::gemv_t::<OUT, IN>(w, dz_all, dx.as_mut_slice())
    } else {
        let (a, b, c) = ((w, (OUT, 1)), (dz_all, (1, OUT)), (dx.as_mut_slice(), IN));
        product((IN, OUT, B), a, b, c, T::one(), false)
    };
    if !done {
        // dx[i, b] = W[:, i] . dz[:, b]: a dot product along contiguous columns.
        let columns = dx.as_mut_slice().chunks_exact_mut(IN);
        for (dxc, dzc) in columns.zip(dz_all.chunks_exact(OUT)) {
            for (d, wc) in dxc.iter_mut().zip(w.chunks_exact(OUT)) {
                *d = dot(wc, dzc);
            }
        }
    }
    dx
}

/// `a . b` with eight running sums, so that the loop vectorises (a single running sum is a
/// chain the compiler may not reorder).
#[inline(always)]
fn dot<T: Real>(a: &[T], b: &[T]) -> T {
    let mut sums = [T::zero(); 8];
    let (a8, b8) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail = a8
        .remainder()
        .iter()
        .zip(b8.remainder())
        .fold(T::zero(), |s, (&x, &y)| s + x * y);
    for (ca, cb) in a8.zip(b8) {
        for k in 0..8 {
            sums[k] += ca[k] * cb[k];
        }
    }
    let pairs = [
        sums[0] + sums[4],
        sums[1] + sums[5],
        sums[2] + sums[6],
        sums[3] + sums[7],
    ];
    (pairs[0] + pairs[2]) + (pairs[1] + pairs[3]) + tail
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic matrix with entries in [-1, 1).
    fn matrix<const R: usize, const C: usize>(salt: u32) -> SMatrix<f32, R, C> {
        SMatrix::from_fn(|r, c| {
            let i = (r * C + c) as u32;
            (i.wrapping_mul(2654435761).wrapping_add(salt) % 1000) as f32 / 500.0 - 1.0
        })
    }

    /// The weight gradient and the fused SGD step of a layer against `dz x^T` summed in
    /// `f64`, on shapes that take the transposed product (under 16 outputs) and one that
    /// does not.
    fn check<const IN: usize, const OUT: usize, const B: usize>() {
        let (x, dz) = (matrix::<IN, B>(1), matrix::<OUT, B>(2));
        let mut layer = Linear::<f32, IN, OUT> {
            weight: matrix(3),
            bias: matrix(4),
        };
        let before = layer.clone();
        let mut grad = Linear::<f32, IN, OUT>::zeros();
        linear_backward_params(&x, &dz, &mut grad);
        linear_update_sgd(&mut layer, &x, &dz, 0.5);
        for r in 0..OUT {
            for i in 0..IN {
                let want: f64 = (0..B).map(|b| dz[(r, b)] as f64 * x[(i, b)] as f64).sum();
                let got = grad.weight[(r, i)] as f64;
                assert!(
                    (got - want).abs() <= 1e-5 * (1.0 + want.abs()),
                    "{OUT}x{IN} b{B}"
                );
                let stepped = before.weight[(r, i)] as f64 - 0.5 * want;
                let got = layer.weight[(r, i)] as f64;
                assert!((got - stepped).abs() <= 1e-5 * (1.0 + stepped.abs()));
            }
        }
    }

    #[test]
    fn weight_gradients_match_the_definition() {
        assert!(weight_grad_transposed(10, 32, 32));
        assert!(!weight_grad_transposed(16, 32, 32));
        check::<32, 10, 32>();
        check::<16, 4, 8>();
        check::<48, 15, 3>();
        check::<128, 10, 64>();
        check::<32, 16, 32>();
        check::<17, 10, 32>();
    }
}
