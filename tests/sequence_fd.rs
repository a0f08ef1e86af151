//! Finite-difference checks of the gradients sequence networks compute over a window of time
//! steps (backpropagation through time), in `f64`.
//!
//! For each network below (GRU, LSTM and RNN, one and two stacked layers, a `Linear` after;
//! two causal convolutions; a causal convolution feeding a GRU),
//! `sequence_gradients_and_state` gives, over a window of [`STEPS`] steps of a batch of
//! [`BATCH`] streams from a random non-zero initial state, the `Mse` loss (the mean over the
//! steps of the per-step loss), the gradient of every parameter and the gradient of the initial
//! state (`h`, and `c` for an LSTM; every slot of a causal convolution's ring buffer, the ring
//! starting mid-way round, the gradient laid out as the state). Every scalar of every parameter
//! tensor and of the initial state is perturbed by `+-H` and the loss recomputed
//! independently, step by step through the public `step_batch` and `Mse::value_and_grad`; the
//! central difference is compared with the analytic entry. Parameters are reached by
//! `state_dict` name through `Tensors` (their gradients through `Network::tensors`, paired by
//! `nn_testkit::fixtures::named_gradients`), so every tensor the layer has is checked, whatever
//! its field layout.
//!
//! The tolerances are those of `tests/gradcheck.rs`, for the same reasons: the step `H = 1e-6`
//! makes the central difference's truncation error `H^2 |L'''| / 6` negligible (the losses are
//! compositions of `tanh`, `sigmoid` and products, smooth, of modest third derivative over a
//! window of 10 steps with weights below 0.5) and its rounding error about
//! `eps |L| / H = 2e-10 |L|`; an entry passes within `EPSILON * max(1, |L|)` absolutely or
//! `MAX_RELATIVE` relatively. A wrong gate order, a missing factor through the recurrence, or a
//! gradient that stops one step early is off by far more.
//!
//! ReLU has a kink at 0: the ReLU network asserts, through a reference forward pass written here
//! from the parameters by name (also compared with `step_batch`'s outputs), that every
//! pre-activation of every layer, step and stream lies at least [`KINK_MARGIN`] from 0, far more
//! than a step of `H` moves it, so no difference straddles the kink; its data are drawn from a
//! seed that satisfies this (the test searches seeds from 0 deterministically and fails if none
//! of the first 100 does, rather than skipping entries).

use approx::relative_eq;
use nn_runtime::Tensors;
use nn_runtime::prelude::*;
use nn_testkit::fixtures::{Named, named_gradients, named_tensors};
use nn_testkit::gradcheck::{H, Report, check_params};
use nn_testkit::rng::SplitMix64;

/// How far a ReLU pre-activation must stay from 0.
const KINK_MARGIN: f64 = 1e-4;

/// Time steps per window: long enough that gradients flow back through many recurrences.
const STEPS: usize = 10;

/// Streams per batch.
const BATCH: usize = 2;

/// A ReLU RNN's pre-activations `W_ih x + b_ih + W_hh h + b_hh` over a window, every layer,
/// step and stream, and the last layer's outputs, computed here from the parameters by name
/// (`{prefix}weight_ih_l{k}` etc.), independently of the generated code.
fn relu_reference<const IN: usize, const HID: usize, const K: usize>(
    params: &[Named<f64>],
    prefix: &str,
    xs: &[SMatrix<f64, IN, BATCH>],
    h0: &[SMatrix<f64, HID, BATCH>; K],
) -> (Vec<f64>, Vec<SMatrix<f64, HID, BATCH>>) {
    let get = |name: String| -> Option<&Named<f64>> { params.iter().find(|t| t.name == name) };
    let mut pre = Vec::new();
    let mut inputs: Vec<Vec<f64>> = xs.iter().map(|x| x.as_slice().to_vec()).collect();
    let mut width = IN;
    let mut last = Vec::new();
    for (k, h_start) in h0.iter().enumerate() {
        let w_ih = get(format!("{prefix}weight_ih_l{k}")).expect("weight_ih");
        let w_hh = get(format!("{prefix}weight_hh_l{k}")).expect("weight_hh");
        let b_ih = get(format!("{prefix}bias_ih_l{k}"));
        let b_hh = get(format!("{prefix}bias_hh_l{k}"));
        assert_eq!(w_ih.shape, [HID, width], "weight_ih_l{k} shape");
        let mut h = *h_start;
        let mut outputs = Vec::new();
        last.clear();
        for x in &inputs {
            let mut next = SMatrix::<f64, HID, BATCH>::zeros();
            for j in 0..BATCH {
                for i in 0..HID {
                    // Column-major: (r, c) of an R x C tensor at c * R + r.
                    let mut a = 0.0;
                    for c in 0..width {
                        a += w_ih.values[c * HID + i] * x[j * width + c];
                    }
                    for c in 0..HID {
                        a += w_hh.values[c * HID + i] * h[(c, j)];
                    }
                    a += b_ih.map_or(0.0, |b| b.values[i]) + b_hh.map_or(0.0, |b| b.values[i]);
                    pre.push(a);
                    next[(i, j)] = a.max(0.0);
                }
            }
            h = next;
            outputs.push(h.as_slice().to_vec());
            last.push(h);
        }
        inputs = outputs;
        width = HID;
    }
    (pre, last)
}

/// What the test does with one part of a network's state, by kind: `layers` a recurrent
/// layer's `[SMatrix<f64, H, B>; K]` (`h`, an LSTM's `c`), `ring` a causal convolution's
/// `ConvState` (its buffer, every slot; the ring's position is not a number to differentiate).
macro_rules! fd_part {
    // Pushes `(name, rows, scalars)` for each of the part's matrices.
    (slices layers, $out:ident, $name:literal, $s:expr, $($p:ident).+) => {
        for (k, m) in $s $(.$p)+.iter_mut().enumerate() {
            $out.push((format!("{}[{k}]", $name), m.nrows(), m.as_mut_slice()));
        }
    };
    (slices ring, $out:ident, $name:literal, $s:expr, $($p:ident).+) => {
        for (k, m) in $s $(.$p)+.buffer.iter_mut().enumerate() {
            $out.push((format!("{}.buffer[{k}]", $name), m.nrows(), m.as_mut_slice()));
        }
    };
    // Where a drawn state starts: a ring mid-way round (its last slot), so that the gradient's
    // layout is checked against a position that is not 0.
    (start layers, $s:expr, $($p:ident).+) => {};
    (start ring, $s:expr, $($p:ident).+) => {
        $s $(.$p)+.next = $s $(.$p)+.buffer.len() - 1;
    };
    // The state's gradient is laid out as the state: a ring's at the state's position.
    (layout layers, $d:expr, $s:expr, $($p:ident).+) => {};
    (layout ring, $d:expr, $s:expr, $($p:ident).+) => {
        assert_eq!(
            $d $(.$p)+.next,
            $s $(.$p)+.next % $s $(.$p)+.buffer.len(),
            "the state gradient's ring position"
        );
    };
}

/// Declares a network and its test:
/// `mod name { Net / NetState: [LAYERS] { "name" => kind field.path, .. } }`, each
/// `"name" => kind path` a part of the state (its name in messages, its [kind](fd_part), where
/// it is: `l0.h`, `l2`). With `relu`, the test asserts the pre-activations' distance from the
/// kink (of the ReLU RNN at position 0, whose state is `l0.h`).
macro_rules! fd_test {
    (
        $(#[$doc:meta])*
        mod $m:ident {
            $net:ident / $state:ident: [$($layer:tt)*]
                { $($name:literal => $kind:ident $($place:ident).+),+ $(,)? }
                $(relu $relu:ident)?
        }
    ) => {
        mod $m {
            use super::*;

            network! {
                $(#[$doc])*
                struct $net: f64 { $($layer)* }
            }

            type X = SMatrix<f64, { $net::IN }, BATCH>;
            type Y = SMatrix<f64, { $net::OUT }, BATCH>;

            /// Every scalar of the state, one slice per matrix, with its name and row count, in
            /// the order of the parts.
            fn slices(state: &mut $state<BATCH>) -> Vec<(String, usize, &mut [f64])> {
                let mut out: Vec<(String, usize, &mut [f64])> = Vec::new();
                $(fd_part!(slices $kind, out, $name, state, $($place).+);)+
                out
            }

            /// The loss over the window from `state`, step by step through `step_batch`.
            fn loss(net: &$net, xs: &[X; STEPS], ys: &[Y; STEPS], state: &$state<BATCH>) -> f64 {
                let mut state = state.clone();
                let mut total = 0.0;
                for (x, y) in xs.iter().zip(ys) {
                    let out = net.step_batch(x, &mut state);
                    total += Mse.value_and_grad(&out, y).0;
                }
                total / STEPS as f64
            }

            /// The network, initial state and window drawn from `seed`.
            fn draw(seed: u64) -> ($net, $state<BATCH>, [X; STEPS], [Y; STEPS]) {
                let mut rng = SplitMix64::new(seed);
                let mut net = $net::zeros();
                net.visit_mut("", &mut |_, _, data| {
                    for v in data.iter_mut() {
                        *v = rng.uniform(-0.5, 0.5);
                    }
                });
                let mut state = $state::<BATCH>::zeros();
                for (_, _, s) in slices(&mut state) {
                    for v in s.iter_mut() {
                        *v = rng.uniform(-0.8, 0.8);
                    }
                }
                $(fd_part!(start $kind, state, $($place).+);)+
                let xs: [X; STEPS] = std::array::from_fn(|_| rng.matrix(-1.5, 1.5));
                let ys: [Y; STEPS] = std::array::from_fn(|_| rng.matrix(-1.0, 1.0));
                (net, state, xs, ys)
            }

            /// The nearest ReLU pre-activation's distance from 0 (infinite without ReLU), after
            /// checking the reference's last-layer outputs against `step_batch`'s state.
            #[allow(unused_variables, unreachable_code)]
            fn kink_distance(net: &$net, state: &$state<BATCH>, xs: &[X; STEPS]) -> f64 {
                $(
                    let _ = stringify!($relu);
                    let params = named_tensors(net);
                    let (pre, last) = relu_reference(&params, "0.", &xs[..], &state.l0.h);
                    let mut ours = state.clone();
                    let last_layer = state.l0.h.len() - 1;
                    for (t, x) in xs.iter().enumerate() {
                        net.step_batch(x, &mut ours);
                        let diff = (ours.l0.h[last_layer] - last[t]).abs().max();
                        assert!(diff < 1e-12, "reference and step_batch differ by {diff:e} at step {t}");
                    }
                    return pre.iter().fold(f64::INFINITY, |m, a| m.min(a.abs()));
                )?
                f64::INFINITY
            }

            #[test]
            fn gradients_match_central_differences() {
                let name = stringify!($net);
                let seed = (0..100)
                    .find(|&seed| {
                        let (net, state, xs, _) = draw(seed);
                        kink_distance(&net, &state, &xs) >= KINK_MARGIN
                    })
                    .unwrap_or_else(|| panic!("{name}: no seed keeps ReLU inputs off the kink"));
                let (net, state, xs, ys) = draw(seed);

                let (value, grads, dstate) =
                    net.sequence_gradients_and_state(&xs, &ys, &Mse, &state);
                let at = loss(&net, &xs, &ys, &state);
                assert!(
                    relative_eq!(value, at, epsilon = 1e-14, max_relative = 1e-12),
                    "{name}: sequence_gradients_and_state's loss {value:e}, step_batch's {at:e}"
                );
                // `sequence_gradients` gives the same loss and parameter gradients.
                let (value2, grads2) = net.sequence_gradients(&xs, &ys, &Mse, &state);
                assert!(relative_eq!(value, value2, epsilon = 1e-14, max_relative = 1e-12));
                let (named, named2) = (named_gradients(&net, &grads), named_gradients(&net, &grads2));
                for (a, b) in named.iter().zip(&named2) {
                    assert_eq!(a.name, b.name);
                    for (x, y) in a.values.iter().zip(&b.values) {
                        assert!(
                            relative_eq!(*x, *y, epsilon = 1e-14, max_relative = 1e-12),
                            "{name}: {}: sequence_gradients {y:e}, with state {x:e}", a.name
                        );
                    }
                }

                let mut report = Report::default();
                check_params(&mut report, &net, |n| loss(n, &xs, &ys, &state), &named);

                // The initial state, scalar by scalar.
                let mut dstate = dstate;
                $(fd_part!(layout $kind, dstate, state, $($place).+);)+
                let analytic: Vec<(String, usize, Vec<f64>)> = slices(&mut dstate)
                    .into_iter()
                    .map(|(what, rows, s)| (what, rows, s.to_vec()))
                    .collect();
                let mut probe = state.clone();
                let mut state_len = 0;
                for (m, (what, rows, grad)) in analytic.iter().enumerate() {
                    for (i, &a) in grad.iter().enumerate() {
                        let original = slices(&mut probe)[m].2[i];
                        let (up, down) = (original + H, original - H);
                        slices(&mut probe)[m].2[i] = up;
                        let loss_up = loss(&net, &xs, &ys, &probe);
                        slices(&mut probe)[m].2[i] = down;
                        let loss_down = loss(&net, &xs, &ys, &probe);
                        slices(&mut probe)[m].2[i] = original;
                        report.entry(
                            format!("{what}[{}][{}]", i % rows, i / rows),
                            a,
                            up,
                            down,
                            (loss_up, loss_down),
                            at,
                        );
                        state_len += 1;
                    }
                }
                assert_eq!(
                    state_len,
                    slices(&mut state.clone()).iter().map(|(_, _, s)| s.len()).sum::<usize>()
                );
                report.assert(&format!("{name} (seed {seed})"), <$net as Network>::PARAMS + state_len);
            }
        }
    };
}

fd_test! {
    /// One GRU layer.
    mod gru { Gru / GruState: [GRU(3, 4), Linear(4, 2)] { "h0" => layers l0.h } }
}

fd_test! {
    /// Two stacked GRU layers without biases.
    mod gru_2layers_no_bias {
        Gru2 / Gru2State: [GRU(3, 4, num_layers = 2, bias = false), Linear(4, 2)]
            { "h0" => layers l0.h }
    }
}

fd_test! {
    /// One LSTM layer.
    mod lstm {
        Lstm / LstmState: [LSTM(3, 4), Linear(4, 2)] { "h0" => layers l0.h, "c0" => layers l0.c }
    }
}

fd_test! {
    /// Two stacked LSTM layers.
    mod lstm_2layers {
        Lstm2 / Lstm2State: [LSTM(3, 4, num_layers = 2), Linear(4, 2)]
            { "h0" => layers l0.h, "c0" => layers l0.c }
    }
}

fd_test! {
    /// One tanh RNN layer.
    mod rnn { Rnn / RnnState: [RNN(3, 4), Linear(4, 2)] { "h0" => layers l0.h } }
}

fd_test! {
    /// Two stacked tanh RNN layers.
    mod rnn_2layers {
        Rnn2 / Rnn2State: [RNN(3, 4, num_layers = 2), Linear(4, 2)] { "h0" => layers l0.h }
    }
}

fd_test! {
    /// Two stacked ReLU RNN layers, every pre-activation kept off the kink.
    mod rnn_relu_2layers {
        RnnRelu2 / RnnRelu2State: [RNN(3, 4, nonlinearity = "relu", num_layers = 2), Linear(4, 2)]
            { "h0" => layers l0.h } relu relu
    }
}

fd_test! {
    /// Two causal convolutions, the second dilated and without bias, `IN != OUT` in each: a
    /// ring of 3 slots and one of 4 (`(2 - 1) 3 + 1`), each starting mid-way round, every slot
    /// of both initial buffers checked (the oldest slot, which no step reads, has gradient 0).
    mod causal_conv {
        CausalConv / CausalConvState: [
            Conv1d(2, 4, 3), Tanh, Conv1d(4, 3, 2, dilation = 3, bias = false), Tanh, Linear(3, 2)
        ] { "l0" => ring l0, "l2" => ring l2 }
    }
}

fd_test! {
    /// A dilated causal convolution feeding a GRU: two kinds of state in one network, the
    /// GRU's input gradient going on back through the convolution's ring.
    mod causal_conv_gru {
        CausalConvGru / CausalConvGruState: [
            Conv1d(3, 4, 3, dilation = 2), Tanh, GRU(4, 3), Linear(3, 2)
        ] { "l0" => ring l0, "h2" => layers l2.h }
    }
}
