//! The causal convolution block (`CausalConv1d`) against central finite differences in `f64`
//! over windows of [`STEPS`] steps (every parameter, every step's input, and the initial ring
//! buffer, every slot), against torch's definition (a direct, non-streaming convolution of the
//! left-padded sequence, from the tensors by name), `step` against `step_only`, the carry's
//! contract at every step of a window, `f32` against `f64`, and its names, pairing,
//! initialisation and zeros.

use nalgebra::SMatrix;
use nn_runtime::__private::ConvCache;
use nn_runtime::heap::zeroed;
use nn_runtime::init::Init;
use nn_runtime::tensors::Tensors;
use nn_runtime::{CausalConv1d, ConvState};

/// Steps in a window: several times the widest span below, so the ring wraps around often.
const STEPS: usize = 11;
/// Streams in a batch: more than one, so a mix-up of columns shows.
const B: usize = 2;

/// A deterministic matrix with entries in `[-scale, scale)`.
fn matrix<const R: usize, const C: usize>(salt: u32, scale: f64) -> SMatrix<f64, R, C> {
    SMatrix::from_fn(|r, c| {
        let i = (r * C + c) as u32 + salt.wrapping_mul(7919);
        let u = (i.wrapping_mul(2654435761).wrapping_add(salt) % 1000) as f64 / 500.0 - 1.0;
        u * scale
    })
}

/// Every parameter in `Tensors` order, flat.
fn flat<S: Tensors<f64>>(s: &S) -> Vec<f64> {
    let mut all = Vec::new();
    s.visit("", &mut |_, _, data| all.extend_from_slice(data));
    all
}

/// Adds `by` to the parameter at flat position `at`.
fn nudge<S: Tensors<f64>>(s: &mut S, at: usize, by: f64) {
    let mut seen = 0;
    s.visit_mut("", &mut |_, _, data| {
        if (seen..seen + data.len()).contains(&at) {
            data[at - seen] += by;
        }
        seen += data.len();
    });
}

fn close(got: f64, want: f64) -> bool {
    (got - want).abs() <= 1e-7 + 1e-6 * want.abs()
}

/// The checks of one block type: `Conv<IN, OUT, K, IK, DIL, SPAN, BIAS>` in `f64`.
macro_rules! checks {
    ($m:ident, $in:literal, $out:literal, $k:literal, $dil:literal, $bias:literal, $next:literal) => {
        // A span of 1 (a single tap) makes every position modulo it 0, as it should be.
        #[allow(clippy::modulo_one)]
        mod $m {
            use super::*;

            const IN: usize = $in;
            const OUT: usize = $out;
            const K: usize = $k;
            const DIL: usize = $dil;
            const SPAN: usize = (K - 1) * DIL + 1;
            type Conv = CausalConv1d<f64, IN, OUT, K, { IN * K }, DIL, SPAN, $bias>;
            type State = ConvState<f64, IN, SPAN, B>;
            type Cache = ConvCache<f64, IN, K, B>;
            type X = SMatrix<f64, IN, B>;
            type Y = SMatrix<f64, OUT, B>;

            /// A block, a non-zero initial state (every slot, the ring at `$next`), a window of
            /// inputs and the loss's weights.
            fn data(seed: u64) -> (Conv, State, Vec<X>, Vec<Y>) {
                let mut conv = Conv::zeros();
                conv.reset(&mut Init::new(seed));
                let mut initial = State::zeros();
                for (s, slot) in initial.buffer.iter_mut().enumerate() {
                    *slot = matrix(90 + s as u32, 0.8);
                }
                initial.next = $next;
                let xs = (0..STEPS).map(|t| matrix(10 + t as u32, 1.5)).collect();
                let ws = (0..STEPS).map(|t| matrix(50 + t as u32, 1.0)).collect();
                (conv, initial, xs, ws)
            }

            /// The loss of steps `from..` of the window from `state` (the state before step
            /// `from`): `sum_t <w_t, y_t> + |y_t|^2 / 2`, run with `step_only`.
            fn loss(conv: &Conv, xs: &[X], ws: &[Y], state: &State, from: usize) -> f64 {
                let mut state = state.clone();
                (from..xs.len())
                    .map(|t| {
                        let y = conv.step_only(&xs[t], &mut state);
                        y.dot(&ws[t]) + 0.5 * y.norm_squared()
                    })
                    .sum()
            }

            /// torch's definition, from the tensors by name: `nn.Conv1d(IN, OUT, K,
            /// dilation=DIL)` over the sequence left-padded by `SPAN - 1` steps, the padding
            /// the initial buffer read from `next + 1` around (oldest first).
            fn direct(conv: &Conv, initial: &State, xs: &[X]) -> Vec<Y> {
                let mut weight = Vec::new();
                let mut bias = vec![0.0; OUT];
                conv.visit("", &mut |name, shape, data| match name {
                    "weight" => {
                        assert_eq!(shape, [OUT, IN, K]);
                        weight = data.to_vec();
                    }
                    "bias" => bias = data.to_vec(),
                    other => panic!("unexpected tensor {other}"),
                });
                // [o][i][k] of the [OUT, IN, K] tensor: the OUT x IN K matrix's (o, i K + k).
                let w = |o: usize, i: usize, k: usize| weight[(i * K + k) * OUT + o];
                let padded: Vec<X> = (0..SPAN - 1)
                    .map(|p| initial.buffer[(initial.next + 1 + p) % SPAN])
                    .chain(xs.iter().copied())
                    .collect();
                (0..xs.len())
                    .map(|t| {
                        Y::from_fn(|o, b| {
                            let mut sum = bias[o];
                            for i in 0..IN {
                                for k in 0..K {
                                    sum += w(o, i, k) * padded[t + k * DIL][(i, b)];
                                }
                            }
                            sum
                        })
                    })
                    .collect()
            }

            /// `step` and `step_only` agree exactly; both are torch's convolution of the
            /// padded sequence, from the given state and from the zero state (zero padding).
            #[test]
            fn steps_are_the_causal_convolution() {
                let (conv, initial, xs, _) = data(1);
                for start in [initial.clone(), State::zeros()] {
                    let want = direct(&conv, &start, &xs);
                    let (mut state, mut other) = (start.clone(), start.clone());
                    let mut cache = Cache::zeros();
                    for (t, x) in xs.iter().enumerate() {
                        let y = conv.step(x, &mut state, &mut cache);
                        assert_eq!(y, conv.step_only(x, &mut other), "step {t}");
                        assert!((y - want[t]).amax() < 1e-12, "step {t}: {y} vs {}", want[t]);
                        // The cache holds the taps torch multiplies at this step.
                        assert_eq!(cache.taps[K - 1], *x);
                        assert_eq!(cache.slot, (start.next + t) % SPAN);
                    }
                    assert_eq!(state, other);
                    // The ring holds the last SPAN inputs, oldest first from `next`.
                    assert_eq!(state.next, (start.next + STEPS) % SPAN);
                    for s in 0..SPAN {
                        assert_eq!(state.buffer[(state.next + s) % SPAN], xs[STEPS - SPAN + s]);
                    }
                }
            }

            /// BPTT through `step` and `step_backward` against central differences: every
            /// parameter, every step's input, every slot of the initial buffer.
            #[test]
            fn gradients_agree_with_finite_differences() {
                let (conv, initial, xs, ws) = data(2);
                let mut state = initial.clone();
                let mut caches: Vec<Cache> = (0..STEPS).map(|_| Cache::zeros()).collect();
                let mut dys = Vec::new();
                for t in 0..STEPS {
                    let y = conv.step(&xs[t], &mut state, &mut caches[t]);
                    dys.push(ws[t] + y);
                }
                let mut grads = Conv::zeros();
                let mut carry = State::zeros();
                let mut dxs = vec![X::zeros(); STEPS];
                for t in (0..STEPS).rev() {
                    dxs[t] = conv.step_backward(&caches[t], &dys[t], &mut carry, &mut grads);
                }

                let eps = 1e-6;
                let analytic = flat(&grads);
                assert_eq!(analytic.len(), Conv::PARAMS);
                for (i, &got) in analytic.iter().enumerate() {
                    let (mut plus, mut minus) = (conv.clone(), conv.clone());
                    nudge(&mut plus, i, eps);
                    nudge(&mut minus, i, -eps);
                    let want = (loss(&plus, &xs, &ws, &initial, 0)
                        - loss(&minus, &xs, &ws, &initial, 0))
                        / (2.0 * eps);
                    assert!(close(got, want), "parameter {i}: {got} vs {want}");
                    assert!(want.abs() > 1e-6, "parameter {i} does not move the loss");
                }
                if !$bias {
                    assert!(grads.bias.iter().all(|&b| b == 0.0));
                }

                for t in 0..STEPS {
                    for i in 0..IN * B {
                        let (mut plus, mut minus) = (xs.clone(), xs.clone());
                        plus[t][i] += eps;
                        minus[t][i] -= eps;
                        let want = (loss(&conv, &plus, &ws, &initial, 0)
                            - loss(&conv, &minus, &ws, &initial, 0))
                            / (2.0 * eps);
                        assert!(
                            close(dxs[t][i], want),
                            "x[{t}][{i}]: {} vs {want}",
                            dxs[t][i]
                        );
                    }
                }

                // The final carry is the initial buffer's gradient, in its layout; the slot
                // `next` (overwritten by the first step unread) has none.
                assert_eq!(carry.next, initial.next);
                let mut read = 0;
                for s in 0..SPAN {
                    for i in 0..IN * B {
                        let (mut plus, mut minus) = (initial.clone(), initial.clone());
                        plus.buffer[s][i] += eps;
                        minus.buffer[s][i] -= eps;
                        let want = (loss(&conv, &xs, &ws, &plus, 0)
                            - loss(&conv, &xs, &ws, &minus, 0))
                            / (2.0 * eps);
                        let got = carry.buffer[s][i];
                        assert!(close(got, want), "buffer[{s}][{i}]: {got} vs {want}");
                        if s == initial.next {
                            assert_eq!(got, 0.0, "the unread slot");
                        } else {
                            read += usize::from(want.abs() > 1e-6);
                        }
                    }
                }
                assert_eq!(
                    read,
                    (SPAN - 1) * IN * B,
                    "every padded input moves the loss"
                );
            }

            /// The contract step by step: after `step_backward` for steps `L - 1` down to
            /// `t`, `carry` is the gradient of the loss of steps `t..` with respect to the
            /// state before step `t` (slot by slot, in its layout), and each `dx` was complete
            /// when returned. Checked by central differences at every `t`.
            #[test]
            fn the_carry_is_the_gradient_of_the_state_before_each_step() {
                let (conv, initial, xs, ws) = data(3);
                let mut state = initial.clone();
                let mut before = Vec::new();
                let mut caches: Vec<Cache> = (0..STEPS).map(|_| Cache::zeros()).collect();
                let mut dys = Vec::new();
                for t in 0..STEPS {
                    before.push(state.clone());
                    let y = conv.step(&xs[t], &mut state, &mut caches[t]);
                    dys.push(ws[t] + y);
                }
                let mut grads = Conv::zeros();
                // Any starting position: only the caches say where the ring was.
                let mut carry = State::zeros();
                carry.next = 1;
                let eps = 1e-6;
                for t in (0..STEPS).rev() {
                    conv.step_backward(&caches[t], &dys[t], &mut carry, &mut grads);
                    assert_eq!(carry.next, before[t].next % SPAN, "step {t}: position");
                    for s in 0..SPAN {
                        for i in 0..IN * B {
                            let (mut plus, mut minus) = (before[t].clone(), before[t].clone());
                            plus.buffer[s][i] += eps;
                            minus.buffer[s][i] -= eps;
                            let want = (loss(&conv, &xs, &ws, &plus, t)
                                - loss(&conv, &xs, &ws, &minus, t))
                                / (2.0 * eps);
                            let got = carry.buffer[s][i];
                            assert!(
                                close(got, want),
                                "step {t}, slot {s} [{i}]: {got} vs {want}"
                            );
                        }
                    }
                }
            }

            /// Starting the carry from the gradient with respect to the final state continues
            /// a window: two halves backpropagated apart, the first half's carry starting from
            /// the second's final carry, give the whole window's gradients.
            #[test]
            fn windows_chain_through_the_carry() {
                let (conv, initial, xs, ws) = data(4);
                let mut state = initial.clone();
                let mut caches: Vec<Cache> = (0..STEPS).map(|_| Cache::zeros()).collect();
                let dys: Vec<Y> = (0..STEPS)
                    .map(|t| ws[t] + conv.step(&xs[t], &mut state, &mut caches[t]))
                    .collect();
                let (mut whole, mut carry) = (Conv::zeros(), State::zeros());
                let mut dxs = Vec::new();
                for t in (0..STEPS).rev() {
                    dxs.push(conv.step_backward(&caches[t], &dys[t], &mut carry, &mut whole));
                }
                let half = STEPS / 2;
                let (mut first, mut second, mut split) =
                    (Conv::zeros(), Conv::zeros(), State::zeros());
                let mut split_dxs = Vec::new();
                for t in (half..STEPS).rev() {
                    split_dxs.push(conv.step_backward(
                        &caches[t],
                        &dys[t],
                        &mut split,
                        &mut second,
                    ));
                }
                for t in (0..half).rev() {
                    split_dxs.push(conv.step_backward(&caches[t], &dys[t], &mut split, &mut first));
                }
                assert_eq!(split, carry);
                assert_eq!(split_dxs, dxs);
                for ((w, a), b) in flat(&whole).iter().zip(flat(&first)).zip(flat(&second)) {
                    assert!((w - (a + b)).abs() < 1e-12);
                }
            }
        }
    };
}

// K = 3 with dilation 1 and 2, IN != OUT, the ring starting mid-way; without bias; a single
// tap (SPAN 1: the ring is the current input alone); two taps three steps apart.
checks!(k3_d1, 3, 2, 3, 1, true, 1);
checks!(k3_d2, 3, 2, 3, 2, true, 3);
checks!(k3_d2_no_bias, 2, 4, 3, 2, false, 0);
checks!(k1, 3, 2, 1, 1, true, 0);
checks!(k2_d3, 2, 3, 2, 3, true, 2);

/// Names, shapes and order are torch's `state_dict`'s; data is the fields' own, the weight's
/// column `i K + k` torch's `weight[:, i, k]`.
#[test]
fn tensors_are_named_as_torch_names_them() {
    type C = CausalConv1d<f32, 3, 4, 2, 6, 5, 6, true>;
    let mut conv = C::zeros();
    conv.weight[(1, 2 * 2 + 1)] = 7.0; // torch's weight[1, 2, 1]
    conv.bias[3] = 5.0;
    let mut seen = Vec::new();
    conv.visit("2.", &mut |name, shape, data| {
        seen.push((name.to_string(), shape.to_vec(), data.to_vec()))
    });
    assert_eq!(seen.len(), C::TENSORS);
    assert_eq!(seen[0].0, "2.weight");
    assert_eq!(seen[0].1, [4, 3, 2]);
    assert_eq!(seen[1].0, "2.bias");
    assert_eq!(seen[1].1, [4]);
    // Row-major as [OUT, IN K], the data is torch's [OUT, IN, K] order.
    let data = &seen[0].2;
    let row_major: Vec<f32> = (0..4)
        .flat_map(|o| (0..6).map(move |c| (o, c)))
        .map(|(o, c)| data[c * 4 + o])
        .collect();
    assert_eq!(row_major[3 * 2 + 2 * 2 + 1], 7.0);
    assert_eq!(row_major.iter().filter(|&&v| v != 0.0).count(), 1);
    assert_eq!(seen[1].2[3], 5.0);
    conv.visit_mut("", &mut |name, _, data| {
        if name == "bias" {
            data[3] = 8.0;
        }
    });
    assert_eq!(conv.bias[3], 8.0);

    let mut names = Vec::new();
    CausalConv1d::<f64, 2, 3, 3, 6, 1, 3, false>::zeros().visit("", &mut |name, shape, _| {
        names.push((name.to_string(), shape.to_vec()))
    });
    assert_eq!(names, [("weight".to_string(), vec![3, 2, 3])]);
}

/// `pair` gives `TENSORS` tensors, in `Tensors` order, `PARAMS` scalars in all, each beside
/// its gradient.
#[test]
fn pair_gives_every_tensor_beside_its_gradient() {
    macro_rules! case {
        ($ty:ty, $tensors:literal, $params:expr) => {{
            assert_eq!(<$ty>::TENSORS, $tensors);
            assert_eq!(<$ty>::PARAMS, $params);
            let mut block = <$ty>::zeros();
            let mut grads = <$ty>::zeros();
            grads.reset(&mut Init::new(99));
            let mut lens = Vec::new();
            block.visit("", &mut |_, _, data| lens.push(data.len()));
            let mut expected = Vec::new();
            grads.visit("", &mut |_, _, data| expected.push(data.to_vec()));
            let mut p: Vec<&mut [f32]> = (0..$tensors + 1).map(|_| &mut [][..]).collect();
            let mut g: Vec<&[f32]> = vec![&[]; $tensors + 1];
            let mut at = 1;
            block.pair(&grads, &mut p, &mut g, &mut at);
            assert_eq!(at, $tensors + 1);
            assert!(p[0].is_empty() && g[0].is_empty());
            assert_eq!(p[1..].iter().map(|s| s.len()).collect::<Vec<_>>(), lens);
            assert_eq!(lens.iter().sum::<usize>(), $params);
            for (g, want) in g[1..].iter().zip(&expected) {
                assert_eq!(*g, &want[..]);
            }
        }};
    }
    case!(CausalConv1d<f32, 1, 8, 3, 3, 1, 3, true>, 2, 8 * 3 + 8);
    case!(CausalConv1d<f32, 8, 8, 3, 24, 2, 5, true>, 2, 8 * 24 + 8);
    case!(CausalConv1d<f32, 4, 2, 5, 20, 1, 5, false>, 1, 2 * 20);
}

/// torch's order of draws (the `[OUT, IN, K]` weight row-major, then the bias), its bound
/// `1/sqrt(IN K)`, and no bias drawn or set without one.
#[test]
fn reset_draws_in_torch_order_within_the_bound() {
    let mut conv = CausalConv1d::<f64, 2, 3, 4, 8, 1, 4, true>::zeros();
    conv.reset(&mut Init::new(5));
    let bound = 1.0 / 8f64.sqrt();
    let mut init = Init::new(5);
    for o in 0..3 {
        for i in 0..2 {
            for k in 0..4 {
                assert_eq!(conv.weight[(o, i * 4 + k)], init.uniform::<f64>(bound));
            }
        }
    }
    for o in 0..3 {
        assert_eq!(conv.bias[o], init.uniform::<f64>(bound));
    }
    let all = flat(&conv);
    assert!(all.iter().all(|p| p.abs() <= bound));
    assert!(all.iter().any(|p| p.abs() > 0.8 * bound));

    let mut bare = CausalConv1d::<f64, 2, 3, 4, 8, 1, 4, false>::zeros();
    bare.reset(&mut Init::new(5));
    assert!(bare.bias.iter().all(|&b| b == 0.0));
    assert_eq!(
        bare.weight, conv.weight,
        "the weight's draws come first either way"
    );
}

#[test]
fn zeros_default_and_zeroed_agree() {
    type C32 = CausalConv1d<f32, 3, 4, 3, 9, 2, 5, true>;
    type C64 = CausalConv1d<f64, 1, 8, 3, 3, 1, 3, false>;
    assert_eq!(C32::zeros(), C32::default());
    assert_eq!(C32::zeros(), zeroed::<C32>());
    assert_eq!(C64::zeros(), zeroed::<C64>());
    assert_eq!(ConvState::<f32, 3, 5, 2>::zeros(), zeroed());
    assert_eq!(ConvState::<f64, 3, 5, 2>::zeros(), Default::default());
    assert_eq!(ConvCache::<f32, 3, 3, 4>::zeros(), zeroed());
    assert_eq!(ConvCache::<f64, 3, 3, 4>::zeros(), Default::default());
}

/// The `f32` blocks take the SIMD kernels (constant-size at batch one, the general ones
/// above); the finite differences check the `f64` loops. Here the two precisions agree over a
/// window, forward and backward, gradients and carry included.
#[test]
fn f32_kernels_agree_with_f64_loops() {
    macro_rules! case {
        ($in:literal, $out:literal, $k:literal, $dil:literal, $b:literal) => {{
            fn case() {
                const SPAN: usize = ($k - 1) * $dil + 1;
                type C<T> = CausalConv1d<T, $in, $out, $k, { $in * $k }, $dil, SPAN, true>;
                let (mut n32, mut n64) = (C::<f32>::zeros(), C::<f64>::zeros());
                n32.reset(&mut Init::new(4));
                n64.reset(&mut Init::new(4));
                let (mut g32, mut g64) = (C::<f32>::zeros(), C::<f64>::zeros());
                let mut s64 = ConvState::<f64, $in, SPAN, $b>::zeros();
                for (s, slot) in s64.buffer.iter_mut().enumerate() {
                    *slot = matrix(70 + s as u32, 1.0);
                }
                let mut s32 = ConvState::<f32, $in, SPAN, $b> {
                    buffer: s64.buffer.map(|m| m.cast()),
                    next: 0,
                };
                let mut c32: Vec<_> = (0..STEPS).map(|_| ConvCache::zeros()).collect();
                let mut c64: Vec<_> = (0..STEPS).map(|_| ConvCache::zeros()).collect();
                for t in 0..STEPS {
                    let x: SMatrix<f64, $in, $b> = matrix(t as u32, 1.0);
                    let y64 = n64.step(&x, &mut s64, &mut c64[t]);
                    let y32 = n32.step(&x.cast(), &mut s32, &mut c32[t]);
                    assert!((y64 - y32.cast::<f64>()).amax() < 1e-5);
                }
                let (mut k32, mut k64) = (ConvState::zeros(), ConvState::zeros());
                for t in (0..STEPS).rev() {
                    let dy: SMatrix<f64, $out, $b> = matrix(20 + t as u32, 1.0);
                    let d64 = n64.step_backward(&c64[t], &dy, &mut k64, &mut g64);
                    let d32 = n32.step_backward(&c32[t], &dy.cast(), &mut k32, &mut g32);
                    assert!((d64 - d32.cast::<f64>()).amax() < 1e-4);
                }
                assert!((g64.weight - g32.weight.cast::<f64>()).amax() < 1e-4);
                assert!((g64.bias - g32.bias.cast::<f64>()).amax() < 1e-4);
                for (a, b) in k64.buffer.iter().zip(&k32.buffer) {
                    assert!((a - b.cast::<f64>()).amax() < 1e-4);
                }
            }
            case();
        }};
    }
    case!(1, 8, 3, 1, 1);
    case!(8, 8, 3, 2, 1);
    case!(8, 16, 3, 2, 4);
    case!(16, 32, 4, 3, 16);
}
