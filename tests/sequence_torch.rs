//! PyTorch parity of the sequence layers (the recurrent `GRU`, `LSTM`, `RNN` and the causal
//! `Conv1d`) over sequences, in `f32` and `f64`, on the fixtures
//! `tests/fixtures/sequence/*.json` written by `scripts/torch_sequence.py` (its docstring
//! states the layout of every field) and `scripts/torch_causal_conv.py` (the same format; its
//! docstring states what differs: the state's parts).
//!
//! Most rows of the table below declare `{ RECURRENT, Linear(5, 2) }` with `network!`: torch's
//! module whose forward is `y, final = rnn(x, state); return head(y)`, the `Linear` applied at
//! every time step. The causal convolution's rows declare `{ Conv1d(1, 8, 3), Tanh,
//! Conv1d(8, 8, 3, dilation = 2), Tanh, Linear(8, 1) }`: in torch each `nn.Conv1d` over the
//! sequence left-padded by its state's buffered inputs. A fixture holds that network's
//! parameters (by `state_dict` name), a non-zero initial state for 3 streams, 5 windows of 8
//! steps of inputs and targets, and what torch computed. For each row this test
//!
//! - loads the parameters by name (`nn_testkit::fixtures::set_tensors`, through `Tensors`) and
//!   the initial state into `{Name}State::<3>`, each part of the state under the fixture's key
//!   the row names: `state.l0.h[k]`, and `state.l0.c[k]` for an LSTM (layer `k`'s `H x 3`
//!   matrix, column `j` torch's batch index `j`); a convolution's `state.l{p}` (its ring
//!   buffer, which the fixtures list oldest first: the initial state is set with the ring at
//!   slot 0, and states are compared read from the ring's position around, see [`part`]);
//! - runs the first window through `step_batch` from the initial state and compares the output
//!   at every step and the final state; and each stream alone through `step` (a batch of 1),
//!   from its column of the initial state, against the same outputs;
//! - compares the window's loss (`Mse`, the mean over the steps of the per-step mean: torch's
//!   `nn.MSELoss()` over the `(L, N, OUT)` output) and every parameter's gradient by name from
//!   `sequence_gradients` and from `sequence_gradients_and_state`, and the latter's gradient of
//!   the initial state;
//! - trains with `Adam(lr = 0.01)` (built from the fixture's `torch.optim` arguments) over the
//!   5 windows by `train_sequence`, the state carried from window to window, and compares each
//!   window's loss, the parameters after the last window and the carried state.
//!
//! The gradient struct has no `Tensors` impl; gradients are read by name through
//! `Network::tensors` (the optimizers' flat view, each gradient beside its parameter), whose
//! order `nn_testkit::fixtures::named_gradients` checks against `Tensors::visit`'s, tensor by
//! tensor. Every fixture must be matched by a row and every row by a fixture, every name of a
//! fixture's parameter maps by one of the network's tensors and vice versa, and the number of
//! comparisons is asserted, so nothing goes unchecked silently.
//!
//! The matching of fixtures and rows, the comparisons within the tolerances and the report of
//! every mismatch are `nn_testkit::parity`'s (shared with the other parity tests); this file
//! holds the tolerances, the table and what its checks compare.

use nn_runtime::prelude::*;
use nn_testkit::fixtures::{
    list, matrix, named_gradients, named_tensors, number, oldest_first, set_layers, set_ring,
    set_tensors,
};
use nn_testkit::optim::from_torch;
use nn_testkit::parity::{Checker, Dtype, Parity, Row, Suite, Tolerances, run_table};
use serde_json::Value;
use std::collections::BTreeSet;

// ------------------------------------------------------------------------------------------------
// Tolerances: `|ours - torch| <= REL * |torch| + ABS`.

/// Relative tolerance in `f32`: about 84 units in the last place. A recurrent step is a few
/// small matrix-vector products (sums of 3 or 5 products) and a gate nonlinearity, each
/// rounded; eight steps and the backward pass through them compound those roundings, summed
/// in another order than torch's kernels and with another `tanh`/`sigmoid` (the runtime's
/// `fast_tanh` and `fast_sigmoid`, within a few units), but they stay a few units in the last
/// place times a small factor: the gates saturate and the recurrent weights are below 1/sqrt(5)
/// in magnitude, so errors do not grow from step to step.
const F32_REL: f64 = 1e-5;

/// Absolute floor in `f32`, for values near zero: a gradient entry is a sum over 8 steps and 3
/// streams of terms of order 0.01 to 1, often of both signs, and an output or state a sum of
/// products; their rounding error is `f32::EPSILON` (1.2e-7) times the terms' magnitude, not the
/// small result's, so a relative test alone would fail on correct values. `1e-6` decides only
/// for values below `ABS / REL = 0.1`. Measured by the script (printed when it runs): torch's
/// own `f32` results, against the exact (`f64`) results at the same `f32` inputs, use at most
/// 0.04 of this tolerance in every category, including the trained parameters below.
const F32_ABS: f64 = 1e-6;

/// Relative tolerance in `f64`: about `4.5e5` units in the last place, the same reasoning.
const F64_REL: f64 = 1e-10;

/// Absolute floor in `f64`, as [`F32_ABS`]: terms of order 1 round at about `2.2e-16`, so
/// `1e-12` leaves a wide margin and decides only below `1e-2`.
const F64_ABS: f64 = 1e-12;

// The parameters after five Adam windows use the same tolerances, which needs a word. Adam's
// step is `lr m / (sqrt(v) + eps)`, about `lr g / |g|` on the first step: it divides by the
// gradient's own size, so a gradient entry's relative error becomes an absolute error of the
// parameter of about `lr` times it (times up to 5 steps), whatever the entry's size. A correct
// gradient has a small relative error where it is not much smaller than the terms it sums
// (`f32`: 1e-6 relative gives `0.05 * 1e-6`, far inside `ABS`), but an entry that is a
// cancellation down to its own rounding would make its parameter's trajectory a matter of
// rounding (a sign flip moves it by `2 lr`), and no tolerance short of `lr` could hold. The
// fixtures avoid that rather than the tolerance: the script prints the smallest gradient entry
// fed to Adam per case (6.6e-8 at the least, in `lstm_2layers`, beside the ReLU network's exact
// zeros, from units that never fire, which Adam leaves at zero), and its comparison of torch's
// `f32` trajectory with the exact one (the same windows computed in `f64` from the same `f32`
// values), the evidence that no trajectory here hangs on rounding, uses at most 0.03 of the
// tolerance for the trained parameters. The optimizer fixtures' replay (tests/optim_parity.rs) checks the update
// rule itself with the same `REL`; this test checks that `train_sequence` feeds it the right
// gradients, in the right order, once per window. If a change of the macro's summation order
// ever pushes a trained parameter past the tolerance while every gradient passes, widen the
// trained parameters' floor alone (to about `lr * ABS / min|g|`) and say so here.

/// The tolerances above, per dtype.
const TOLERANCES: Tolerances = Tolerances {
    f32: (F32_REL, F32_ABS),
    f64: (F64_REL, F64_ABS),
};

/// Time steps per window, as `STEPS` in `torch_sequence.py`.
const STEPS: usize = 8;
/// Streams per batch, as `BATCH`.
const BATCH: usize = 3;
/// Training windows, as `WINDOWS`.
const WINDOWS: usize = 5;

// ------------------------------------------------------------------------------------------------
// Comparing.

/// This test's own comparison, beside [`Checker`]'s.
trait SequenceChecks {
    /// A state part against the fixtures' `[K][H][B]`: a recurrent layer's state, one matrix
    /// per stacked layer, or a causal convolution's buffer oldest first (see [`part`]).
    fn layers<T: Real, const H: usize, const B: usize, const K: usize>(
        &mut self,
        category: &'static str,
        what: &str,
        ours: &[SMatrix<T, H, B>; K],
        torch: &Value,
    );
}

impl SequenceChecks for Checker {
    fn layers<T: Real, const H: usize, const B: usize, const K: usize>(
        &mut self,
        category: &'static str,
        what: &str,
        ours: &[SMatrix<T, H, B>; K],
        torch: &Value,
    ) {
        for (k, layer) in list(torch, what, K).iter().enumerate() {
            self.matrix(category, &format!("{what}[{k}]"), &ours[k], layer);
        }
    }
}

/// Any of our optimizers, so that the fixture's `torch.optim` class and arguments choose it.
struct AnyOptimizer<T: Real>(Box<dyn Optimizer<T>>);

impl<T: Real> Optimizer<T> for AnyOptimizer<T> {
    fn step(&mut self, params: &mut [&mut [T]], grads: &[&[T]]) {
        self.0.step(params, grads);
    }

    fn lr(&self) -> T {
        self.0.lr()
    }

    fn set_lr(&mut self, lr: T) {
        self.0.set_lr(lr);
    }
}

/// Our optimizer for a fixture's `train` entry, through the public builders (only the
/// arguments torch was given, so torch's defaults are checked too).
fn optimizer<T: Real>(case: &str, train: &Value) -> AnyOptimizer<T> {
    let class = train["optimizer"]
        .as_str()
        .unwrap_or_else(|| panic!("{case}: no optimizer class"));
    assert_eq!(class, "Adam", "{case}: the fixtures train with Adam");
    let args = train["args"]
        .as_object()
        .unwrap_or_else(|| panic!("{case}: no optimizer arguments"));
    AnyOptimizer(from_torch(case, class, args))
}

/// Asserts that a state in the fixture has exactly the tensors `keys` (`h`, and `c` for an
/// LSTM; `l{position}.buffer` per causal convolution).
fn assert_state_keys(case: &str, what: &str, state: &Value, keys: &[&str]) {
    let theirs: BTreeSet<&str> = state
        .as_object()
        .unwrap_or_else(|| panic!("{case}: {what}: expected a state object"))
        .keys()
        .map(String::as_str)
        .collect();
    let ours: BTreeSet<&str> = keys.iter().copied().collect();
    assert_eq!(theirs, ours, "{case}: {what}: state tensors");
}

// ------------------------------------------------------------------------------------------------
// The table: one network per (layers, dtype).

/// One part of a network's state, by kind: `layers` a recurrent layer's `[SMatrix<T, H, B>;
/// K]` (one matrix per stacked layer, `h` or an LSTM's `c`), listed `[K][H][B]` as it is held;
/// `ring` a causal convolution's `ConvState`, listed `[SPAN][IN][B]` oldest first
/// (`nn_testkit::fixtures::oldest_first`: the ring read from its position `next` around, so
/// that states compare whatever slot the ring has reached; the fixtures' initial state is set
/// with `next` at 0, where the ring holds its inputs in that order).
macro_rules! part {
    // The part's matrices in the fixtures' order.
    (read layers, $s:expr, $($p:ident).+) => {
        $s $(.$p)+.clone()
    };
    (read ring, $s:expr, $($p:ident).+) => {
        oldest_first(&$s $(.$p)+)
    };
    // Sets the part from the fixtures' list.
    (set layers, $s:expr, $v:expr, $what:expr, $($p:ident).+) => {
        set_layers(&mut $s $(.$p)+, $v, $what)
    };
    (set ring, $s:expr, $v:expr, $what:expr, $($p:ident).+) => {
        set_ring(&mut $s $(.$p)+, $v, $what)
    };
    // Copies stream `j` of `start` into the one-stream state `one`.
    (column layers, $one:expr, $start:expr, $j:expr, $($p:ident).+) => {
        for (o, s) in $one $(.$p)+.iter_mut().zip(&$start $(.$p)+) {
            o.set_column(0, &s.column($j));
        }
    };
    (column ring, $one:expr, $start:expr, $j:expr, $($p:ident).+) => {
        for (o, s) in $one $(.$p)+.buffer.iter_mut().zip(&$start $(.$p)+.buffer) {
            o.set_column(0, &s.column($j));
        }
        $one $(.$p)+.next = $start $(.$p)+.next;
    };
    // The part's size against the fixture's description of its layer: a recurrent layer's
    // `num_layers`, a convolution's span (`conv[..].span`, found by its state key).
    (describe layers, $fixture:expr, $key:expr, $s:expr, $($p:ident).+) => {
        assert_eq!($fixture["recurrent"]["num_layers"], $s $(.$p)+.len(), "{}: num_layers", $key)
    };
    (describe ring, $fixture:expr, $key:expr, $s:expr, $($p:ident).+) => {{
        let layer = $fixture["conv"]
            .as_array()
            .and_then(|all| {
                all.iter()
                    .find(|c| format!("l{}.buffer", c["position"]) == $key)
            })
            .unwrap_or_else(|| panic!("{}: no conv record", $key));
        assert_eq!(layer["span"], $s $(.$p)+.buffer.len(), "{}: span", $key);
    }};
}

/// `Name / NameState: f32 [LAYERS] { "key" => kind field.path, .. };` declares
/// `network! { struct Name: f32 { LAYERS } }`, its row and its check, `NameState` being the
/// state type `network!` generates for it, and each `"key" => kind path` a part of that state:
/// the fixtures' key for it (in `state0`, `final_state`, `state_grads` and
/// `train.final_state`), its [kind](part), and where it is in the state (`l0.h`, `l2`).
macro_rules! table {
    ($(
        $net:ident / $state:ident : $t:ident [$($layer:tt)*]
            { $($key:literal => $kind:ident $($place:ident).+),+ $(,)? };
    )*) => {
        $(
            network! {
                struct $net: $t { $($layer)* }
            }

            impl Parity for $net {
                fn check(fixture: &Value, check: &mut Checker) -> usize {
                    let case = check.case().to_string();
                    let keys: &[&str] = &[$($key),+];
                    for what in ["state0", "final_state", "state_grads"] {
                        assert_state_keys(&case, what, &fixture[what], keys);
                    }
                    assert_state_keys(
                        &case,
                        "train.final_state",
                        &fixture["train"]["final_state"],
                        keys,
                    );

                    // The initial state, a fresh value each time it is needed.
                    let initial = || {
                        let mut state = $state::<BATCH>::zeros();
                        $(part!(
                            set $kind,
                            state,
                            &fixture["state0"][$key],
                            concat!("state0.", $key),
                            $($place).+
                        );)+
                        state
                    };
                    let mut state_len = 0;
                    $(
                        part!(describe $kind, fixture, $key, initial(), $($place).+);
                        state_len += part!(read $kind, initial(), $($place).+)
                            .iter()
                            .map(|m| m.len())
                            .sum::<usize>();
                    )+

                    let mut net = $net::zeros();
                    set_tensors(&mut net, &fixture["params"], "params");
                    assert_eq!(
                        named_tensors(&net).iter().map(|t| t.values.len()).sum::<usize>(),
                        <$net as Network>::PARAMS,
                        "{case}: PARAMS and the tensors' sizes"
                    );

                    type X = SMatrix<$t, { $net::IN }, BATCH>;
                    type Y = SMatrix<$t, { $net::OUT }, BATCH>;
                    let windows: Vec<([X; STEPS], [Y; STEPS])> =
                        list(&fixture["windows"], "windows", WINDOWS)
                            .iter()
                            .enumerate()
                            .map(|(w, window)| {
                                let xs = list(&window["xs"], "xs", STEPS);
                                let ys = list(&window["ys"], "ys", STEPS);
                                (
                                    std::array::from_fn(|t| {
                                        matrix(&xs[t], &format!("windows[{w}].xs[{t}]"))
                                    }),
                                    std::array::from_fn(|t| {
                                        matrix(&ys[t], &format!("windows[{w}].ys[{t}]"))
                                    }),
                                )
                            })
                            .collect();
                    let (xs, ys) = &windows[0];
                    let outputs = list(&fixture["outputs"], "outputs", STEPS);

                    // The first window, step by step, from the initial state: every stream at
                    // once.
                    let mut state = initial();
                    for t in 0..STEPS {
                        let y = net.step_batch(&xs[t], &mut state);
                        check.matrix("outputs", &format!("outputs[{t}]"), &y, &outputs[t]);
                    }
                    let last = &fixture["final_state"];
                    $(check.layers(
                        "final state",
                        concat!("final_state.", $key),
                        &part!(read $kind, state, $($place).+),
                        &last[$key],
                    );)+

                    // Each stream alone, through `step`, from its column of the initial state.
                    let start = initial();
                    for j in 0..BATCH {
                        let mut one = $state::<1>::zeros();
                        $(part!(column $kind, one, start, j, $($place).+);)+
                        for t in 0..STEPS {
                            let x: SVector<$t, { $net::IN }> = xs[t].column(j).into_owned();
                            let y = net.step(&x, &mut one);
                            let torch = matrix::<$t, { $net::OUT }, BATCH>(&outputs[t], "outputs");
                            for o in 0..$net::OUT {
                                let at = || format!("stream {j} alone: outputs[{t}][{o}]");
                                check.scalar("step", &at, y[o].widen(), torch[(o, j)].widen());
                            }
                        }
                    }

                    // Loss and gradients of the first window.
                    let torch_loss = <$t as Real>::cast(number(&fixture["loss"], "loss")).widen();
                    let (loss, grads) = net.sequence_gradients(xs, ys, &Mse, &initial());
                    check.scalar("loss", &|| "loss".into(), loss.widen(), torch_loss);
                    let named = named_gradients(&net, &grads);
                    check.named("gradients", "grads", &named, &fixture["grads"]);

                    let (loss, grads, dstate) =
                        net.sequence_gradients_and_state(xs, ys, &Mse, &initial());
                    let what = || "loss (sequence_gradients_and_state)".to_string();
                    check.scalar("loss", &what, loss.widen(), torch_loss);
                    let named = named_gradients(&net, &grads);
                    check.named("gradients", "grads (with state)", &named, &fixture["grads"]);
                    let dlast = &fixture["state_grads"];
                    $(check.layers(
                        "state gradients",
                        concat!("state_grads.", $key),
                        &part!(read $kind, dstate, $($place).+),
                        &dlast[$key],
                    );)+

                    // Adam over the windows, the state carried.
                    let train = &fixture["train"];
                    let mut opt = optimizer::<$t>(&case, train);
                    let losses = list(&train["losses"], "train.losses", WINDOWS);
                    let mut state = initial();
                    for (w, (xs, ys)) in windows.iter().enumerate() {
                        let ours = net.train_sequence(xs, ys, &Mse, &mut opt, &mut state);
                        let torch = <$t as Real>::cast(number(&losses[w], "losses")).widen();
                        let at = || format!("window {w} loss");
                        check.scalar("train losses", &at, ours.widen(), torch);
                    }
                    check.named("train params", "train.params", &named_tensors(&net), &train["params"]);
                    let carried = &train["final_state"];
                    $(check.layers(
                        "train state",
                        concat!("train.final_state.", $key),
                        &part!(read $kind, state, $($place).+),
                        &carried[$key],
                    );)+

                    let params = <$net as Network>::PARAMS;
                    let outputs = STEPS * $net::OUT * BATCH;
                    // outputs by step_batch and by step, final state, 2 x (loss and gradients),
                    // initial-state gradients, window losses, trained parameters, carried state.
                    2 * outputs + state_len + 2 * (1 + params) + state_len + WINDOWS + params
                        + state_len
                }
            }
        )*

        const TABLE: &[Row] = &[$(
            Row {
                net: stringify!($net),
                dtype: <$t as Dtype>::NAME,
                layers: stringify!($($layer)*),
                check: <$net as Parity>::check,
            },
        )*];
    };
}

table! {
    // name / state type            dtype  layers; state parts: fixture key => kind, place
    Gru32 / Gru32State:             f32    [GRU(3, 5), Linear(5, 2)] { "h" => layers l0.h };
    Gru64 / Gru64State:             f64    [GRU(3, 5), Linear(5, 2)] { "h" => layers l0.h };
    Lstm32 / Lstm32State:           f32    [LSTM(3, 5), Linear(5, 2)]
        { "h" => layers l0.h, "c" => layers l0.c };
    Lstm64 / Lstm64State:           f64    [LSTM(3, 5), Linear(5, 2)]
        { "h" => layers l0.h, "c" => layers l0.c };
    Lstm2x32 / Lstm2x32State:       f32    [LSTM(3, 5, num_layers = 2), Linear(5, 2)]
        { "h" => layers l0.h, "c" => layers l0.c };
    Lstm2x64 / Lstm2x64State:       f64    [LSTM(3, 5, num_layers = 2), Linear(5, 2)]
        { "h" => layers l0.h, "c" => layers l0.c };
    Rnn32 / Rnn32State:             f32    [RNN(3, 5), Linear(5, 2)] { "h" => layers l0.h };
    Rnn64 / Rnn64State:             f64    [RNN(3, 5), Linear(5, 2)] { "h" => layers l0.h };
    RnnRelu2x32 / RnnRelu2x32State: f32    [RNN(3, 5, nonlinearity = "relu", num_layers = 2), Linear(5, 2)]
        { "h" => layers l0.h };
    RnnRelu2x64 / RnnRelu2x64State: f64    [RNN(3, 5, nonlinearity = "relu", num_layers = 2), Linear(5, 2)]
        { "h" => layers l0.h };
    GruNoBias32 / GruNoBias32State: f32    [GRU(3, 5, bias = false), Linear(5, 2)]
        { "h" => layers l0.h };
    GruNoBias64 / GruNoBias64State: f64    [GRU(3, 5, bias = false), Linear(5, 2)]
        { "h" => layers l0.h };
    CausalConv32 / CausalConv32State: f32
        [Conv1d(1, 8, 3), Tanh, Conv1d(8, 8, 3, dilation = 2), Tanh, Linear(8, 1)]
        { "l0.buffer" => ring l0, "l2.buffer" => ring l2 };
    CausalConv64 / CausalConv64State: f64
        [Conv1d(1, 8, 3), Tanh, Conv1d(8, 8, 3, dilation = 2), Tanh, Linear(8, 1)]
        { "l0.buffer" => ring l0, "l2.buffer" => ring l2 };
}

// ------------------------------------------------------------------------------------------------
// The test.

#[test]
fn every_sequence_network_matches_torch() {
    run_table(
        TABLE,
        &Suite {
            dir: "sequence",
            prefix: "",
            sizes: &[("steps", STEPS), ("batch", BATCH)],
            loss: "Mse",
            script: "scripts/torch_sequence.py",
            tolerances: TOLERANCES,
        },
    );
}
