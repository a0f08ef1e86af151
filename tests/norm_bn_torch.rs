//! PyTorch parity of `BatchNorm1d` (on flat features and after `Unflatten(c, l)`) and
//! `BatchNorm2d` (after a `Conv2d`) in whole networks, in `f32` and `f64`, in TRAINING and in
//! INFERENCE mode, on the fixtures `tests/fixtures/norm/bn_*.json` written by
//! `scripts/torch_norm_bn.py` (its docstring states the layout of every field, how the state
//! is drawn off torch's initial values and how ReLU's inputs are kept off its kink).
//!
//! The modes: `gradients` and `train_step` run the training pass (each BatchNorm normalises by
//! the batch's mean and biased variance over samples and positions); `train_step` then moves
//! `running_mean` and `running_var` by torch's momentum, with the UNBIASED variance, and adds
//! 1 to `num_batches_tracked`; `gradients(&self)` moves nothing. `forward` and
//! `forward_batch` run the inference pass (the running statistics).
//!
//! For each row of the table below (a network declared with `network!`, matched with the
//! fixture of the same dtype and layer list), this test
//!
//! - checks the network's floating tensors against the fixture: `state_dict` names in order
//!   (`Tensors::visit`: parameters and running statistics), torch's shapes, `IN`, `OUT`, and
//!   `PARAMS` against the learnable tensors alone;
//! - loads the whole state by name: the floating tensors through `Tensors::visit_mut`
//!   (`nn_testkit::fixtures::set_tensors`), `num_batches_tracked` through
//!   `Tensors::visit_counts_mut`;
//! - compares `forward_batch` of the batch, and `forward` of each sample alone, with torch's
//!   `model.eval()` outputs;
//! - runs `gradients` with `Mse` wrapped in `nn_testkit::modes::Capture` (which keeps the
//!   output the loss was given): compares the training-mode outputs with torch's
//!   `model.train()` outputs, the loss, and every parameter's gradient by name (the running
//!   statistics have none); and checks that `gradients` left the whole state as it was;
//! - trains 5 steps of `train_step` with `Adam::new(0.01)` on the same batch, comparing each
//!   step's loss (each step's loss sees one output, of the right shape), then the whole state
//!   after the last step (parameters, `running_mean`, `running_var`, and
//!   `num_batches_tracked` = initial + 5) and the inference outputs with it.
//!
//! A bias that feeds a BatchNorm directly (`0.bias` of `Linear(4, 6), BatchNorm1d(6)`, `1.bias`
//! of `Conv2d(1, 3, 3), BatchNorm2d(3)`, the fixture's `pinned`) has a gradient of exactly 0
//! in training mode, which any float computation returns as rounding noise; Adam divides by
//! the gradient's own size, so its trajectory is noise too, up to `lr` per step (the script's
//! docstring has the numbers). Its gradient is compared with 0 at the absolute floor; after each
//! step the test checks that it moved by at most [`PINNED_MOVE`] `lr` and sets it to torch's
//! value after that step, so that the running means and the inference outputs, which do
//! depend on it, compare at the full tolerance.
//!
//! Every fixture must be matched by a row and every row by a fixture, and the number of
//! comparisons is asserted, so nothing goes unchecked silently.
//!
//! The matching of fixtures and rows, the comparisons within the tolerances and the report of
//! every mismatch are `nn_testkit::parity`'s (shared with the other parity tests); this file
//! holds the tolerances, the table and what its checks compare.

use nn_runtime::Tensors;
use nn_runtime::prelude::*;
use nn_testkit::fixtures::{
    Named, assert_tensor_names, column_major, element, list, named_tensors, number, samples,
    set_tensors,
};
use nn_testkit::modes::{Capture, Seen, parameter_gradients};
use nn_testkit::parity::{
    Checker, Dtype, Parity, Row, Suite, Tolerances, assert_adam_training, assert_shapes, run_table,
};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

// ------------------------------------------------------------------------------------------------
// Tolerances: `|ours - torch| <= REL * |torch| + ABS`, as tests/conv_torch.rs.

/// Relative tolerance in `f32`, as tests/conv_torch.rs: about 84 units in the last place. A
/// batch normalisation adds a mean and a variance over at most 96 values (6 samples x 16
/// positions) and a division by `sqrt(var + eps)`; its backward pass two more such sums. Each is
/// summed in another order than torch's kernels, so results differ by a few units in the last
/// place of the terms, times a small factor. The script measures torch's own `f32` results
/// against the exact ones at the same inputs: at most 0.06 of this tolerance in every
/// category (printed when it runs).
const F32_REL: f64 = 1e-5;

/// Absolute floor in `f32`, for values near zero (sums of terms of both signs), as
/// tests/conv_torch.rs. Also the bound on the pinned biases' gradients (torch's: at most
/// 5.2e-8).
const F32_ABS: f64 = 1e-6;

/// Relative tolerance in `f64`, the same reasoning.
const F64_REL: f64 = 1e-10;

/// Absolute floor in `f64` (torch's pinned gradients: at most 5.6e-17).
const F64_ABS: f64 = 1e-12;

// The state after five Adam steps uses the same tolerances, for the reasons tests/conv_torch.rs
// gives: the script reseeds until every gradient fed to Adam (but the pinned biases') is at
// least 1e-6 in magnitude at every step, in both dtypes.

/// The tolerances above, per dtype.
const TOLERANCES: Tolerances = Tolerances {
    f32: (F32_REL, F32_ABS),
    f64: (F64_REL, F64_ABS),
};

/// Samples per batch, as `BATCH` in `torch_norm_bn.py`.
const BATCH: usize = 6;
/// Adam steps, as `TRAIN_STEPS`.
const TRAIN_STEPS: usize = 5;
/// Adam's learning rate, as `LR`.
const LR: f64 = 0.01;
/// How far, in units of `lr`, a pinned bias may move in one step: Adam's step is
/// `lr m / (sqrt(v) + eps)` with bias-corrected moments, at most `lr` on the first step and a
/// small multiple of it after (`(1 - beta1) / sqrt(1 - beta2)`, about 3.2, bounds any step).
const PINNED_MOVE: f64 = 4.0;

// ------------------------------------------------------------------------------------------------
// Comparing.

/// This test's own comparisons, beside [`Checker`]'s.
trait BatchNormChecks {
    /// A captured training-mode output against torch's list of samples.
    fn seen<T: Real>(&mut self, what: &str, ours: &Seen, rows: usize, torch: &Value);

    /// Gradients that are exactly 0 in exact arithmetic, against 0.
    fn zeros<T: Real>(&mut self, what: &str, ours: &Named<T>);
}

impl BatchNormChecks for Checker {
    fn seen<T: Real>(&mut self, what: &str, ours: &Seen, rows: usize, torch: &Value) {
        assert_eq!((ours.rows, ours.batch), (rows, BATCH), "{what}: shape");
        for (b, sample) in list(torch, what, BATCH).iter().enumerate() {
            for (r, x) in list(sample, what, rows).iter().enumerate() {
                let torch = <T as Real>::cast(number(x, what)).widen();
                let at = || format!("{what} sample {b} feature {r}");
                self.scalar("train outputs", &at, ours.at(r, b), torch);
            }
        }
    }

    fn zeros<T: Real>(&mut self, what: &str, ours: &Named<T>) {
        for (i, v) in ours.values.iter().enumerate() {
            let at = || format!("{what}.{}{}", ours.name, element(&ours.shape, i));
            self.scalar("zero gradients", &at, v.widen(), 0.0);
        }
    }
}

/// The fixture's list of strings `key`.
fn strings<'a>(fixture: &'a Value, key: &str) -> Vec<&'a str> {
    fixture[key]
        .as_array()
        .unwrap_or_else(|| panic!("no list {key}"))
        .iter()
        .map(|v| v.as_str().expect("a list of strings"))
        .collect()
}

/// A fixture map `name -> integer`.
fn count_map(map: &Value, what: &str) -> BTreeMap<String, i64> {
    map.as_object()
        .unwrap_or_else(|| panic!("{what}: expected a map of integers"))
        .iter()
        .map(|(k, v)| {
            let v = v
                .as_i64()
                .unwrap_or_else(|| panic!("{what}.{k}: {v} is not an integer"));
            (k.clone(), v)
        })
        .collect()
}

/// The integer tensors of `net` (`num_batches_tracked`) by name, through `visit_counts`.
fn counts<T: Real>(net: &impl Tensors<T>) -> BTreeMap<String, i64> {
    let mut out = BTreeMap::new();
    net.visit_counts("", &mut |name: &str, value: i64| {
        let previous = out.insert(name.to_string(), value);
        assert!(previous.is_none(), "visit_counts lists {name} twice");
    });
    out
}

/// Sets every integer tensor of `net` by name from the fixture map `map`, through
/// `visit_counts_mut`; panics on a name either side lacks.
fn set_counts<T: Real>(net: &mut impl Tensors<T>, map: &Value, what: &str) {
    let map = count_map(map, what);
    let mut seen = BTreeSet::new();
    net.visit_counts_mut("", &mut |name: &str, value: &mut i64| {
        *value = *map
            .get(name)
            .unwrap_or_else(|| panic!("{what}: no integer {name}"));
        seen.insert(name.to_string());
    });
    let extra: Vec<&String> = map.keys().filter(|k| !seen.contains(*k)).collect();
    assert!(
        extra.is_empty(),
        "{what}: integers the network lacks: {extra:?}"
    );
}

/// Sets the tensor `name` of `net` from torch's nested list `value`; returns its old values.
fn set_named<T: Real>(net: &mut impl Tensors<T>, name: &str, value: &Value) -> Vec<T> {
    let mut old = None;
    net.visit_mut("", &mut |n, shape, data| {
        if n == name {
            old = Some(data.to_vec());
            let values = column_major::<T>(value, shape, name);
            assert_eq!(values.len(), data.len(), "{name}: size");
            data.copy_from_slice(&values);
        }
    });
    old.unwrap_or_else(|| panic!("no tensor {name}"))
}

// ------------------------------------------------------------------------------------------------
// The table: one network per (layers, dtype).

/// `Name: f32 [LAYERS];` declares `network! { struct Name: f32 { LAYERS } }`, its row and its
/// check.
macro_rules! table {
    ($($net:ident : $t:ident [$($layer:tt)*];)*) => {
        $(
            network! {
                struct $net: $t { $($layer)* }
            }

            impl Parity for $net {
                fn check(fixture: &Value, check: &mut Checker) -> usize {
                    let case = check.case().to_string();
                    assert_eq!(fixture["in_features"], $net::IN, "{case}: IN");
                    assert_eq!(fixture["out_features"], $net::OUT, "{case}: OUT");
                    let param_names = strings(fixture, "param_names");
                    let pinned = strings(fixture, "pinned");

                    // The whole state, by name.
                    let mut net = $net::zeros();
                    assert_tensor_names(&net, fixture);
                    assert_shapes(&case, &named_tensors(&net), fixture);
                    set_tensors(&mut net, &fixture["state"], "state");
                    set_counts(&mut net, &fixture["counts"], "counts");
                    let initial_counts = count_map(&fixture["counts"], "counts");
                    assert_eq!(counts(&net), initial_counts, "{case}: counts as set");
                    assert!(!initial_counts.is_empty(), "{case}: a num_batches_tracked");
                    let learnable: usize = named_tensors(&net)
                        .iter()
                        .filter(|t| param_names.contains(&t.name.as_str()))
                        .map(|t| t.values.len())
                        .sum();
                    assert_eq!(learnable, <$net as Network>::PARAMS, "{case}: PARAMS");
                    let floats: usize =
                        named_tensors(&net).iter().map(|t| t.values.len()).sum();
                    let state = named_tensors(&net);

                    type X = SMatrix<$t, { $net::IN }, BATCH>;
                    type Y = SMatrix<$t, { $net::OUT }, BATCH>;
                    let xs: X = samples(&fixture["xs"], "xs");
                    let ys: Y = samples(&fixture["ys"], "ys");

                    // Inference: the batch at once, and each sample alone.
                    let eval = &fixture["eval_outputs"];
                    check.samples("eval outputs", "eval_outputs", &net.forward_batch(&xs), eval);
                    let torch = samples::<$t, { $net::OUT }, BATCH>(eval, "eval_outputs");
                    for b in 0..BATCH {
                        let x: SVector<$t, { $net::IN }> = xs.column(b).into_owned();
                        let y = net.forward(&x);
                        for o in 0..$net::OUT {
                            let at = || format!("sample {b} alone: eval output {o}");
                            check.scalar("forward", &at, y[o].widen(), torch[(o, b)].widen());
                        }
                    }

                    // Training mode: outputs, loss, gradients; nothing moves.
                    let capture = Capture::new(Mse);
                    let (loss, grads) = net.gradients(&xs, &ys, &capture);
                    let seen = capture.only();
                    check.seen::<$t>("train_outputs", &seen, $net::OUT, &fixture["train_outputs"]);
                    let torch_loss = <$t as Real>::cast(number(&fixture["loss"], "loss")).widen();
                    check.scalar("loss", &|| "loss".into(), loss.widen(), torch_loss);
                    let (named, buffers) = parameter_gradients(&net, &grads);
                    let names: Vec<&str> = named.iter().map(|t| t.name.as_str()).collect();
                    assert_eq!(names, param_names, "{case}: the tensors with gradients");
                    let expected_buffers: Vec<&str> = strings(fixture, "names")
                        .into_iter()
                        .filter(|n| !param_names.contains(n))
                        .collect();
                    assert_eq!(buffers, expected_buffers, "{case}: the running statistics");
                    let (zero, other): (Vec<_>, Vec<_>) =
                        named.into_iter().partition(|t| pinned.contains(&t.name.as_str()));
                    let torch_grads: serde_json::Map<String, Value> = fixture["grads"]
                        .as_object()
                        .expect("grads")
                        .iter()
                        .filter(|(k, _)| !pinned.contains(&k.as_str()))
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect();
                    check.named("gradients", "grads", &other, &Value::Object(torch_grads));
                    assert_eq!(zero.len(), pinned.len(), "{case}: pinned gradients");
                    for t in &zero {
                        check.zeros("grads", t);
                    }
                    assert_eq!(named_tensors(&net), state, "{case}: gradients moved the state");
                    assert_eq!(counts(&net), initial_counts, "{case}: gradients moved a count");

                    // Adam on the same batch, in training mode.
                    let train = &fixture["train"];
                    assert_adam_training(&case, train, LR, TRAIN_STEPS);
                    let mut opt = Adam::<$t>::new(0.01);
                    let losses = list(&train["losses"], "train.losses", TRAIN_STEPS);
                    let trajectory = &train["trajectory"];
                    for (step, torch) in losses.iter().enumerate() {
                        let before: BTreeMap<String, Vec<$t>> = named_tensors(&net)
                            .into_iter()
                            .filter(|t| pinned.contains(&t.name.as_str()))
                            .map(|t| (t.name, t.values))
                            .collect();
                        let ours = net.train_step(&xs, &ys, &capture, &mut opt);
                        let seen = capture.only();
                        let shape = (seen.rows, seen.batch);
                        assert_eq!(shape, ($net::OUT, BATCH), "{case}: step output");
                        let torch = <$t as Real>::cast(number(torch, "losses")).widen();
                        let at = || format!("step {step} loss");
                        check.scalar("train losses", &at, ours.widen(), torch);
                        for name in &pinned {
                            let path = &trajectory[*name][step];
                            let moved = set_named(&mut net, name, path);
                            let pairs = moved.iter().zip(&before[*name]);
                            for (i, (after, before)) in pairs.enumerate() {
                                let step_size = (after.widen() - before.widen()).abs();
                                assert!(
                                    step_size <= PINNED_MOVE * LR,
                                    "{case}: step {step}: {name}[{i}] moved by {step_size:e}"
                                );
                            }
                        }
                    }
                    let ours = named_tensors(&net);
                    check.named("train state", "train.state", &ours, &train["state"]);
                    let after = counts(&net);
                    let torch = count_map(&train["counts"], "train.counts");
                    assert_eq!(after, torch, "{case}: counts");
                    for (name, initial) in &initial_counts {
                        assert_eq!(after[name], initial + TRAIN_STEPS as i64, "{case}: {name}");
                    }
                    let eval = &train["eval_outputs"];
                    let ours = net.forward_batch(&xs);
                    check.samples("train eval outputs", "train.eval_outputs", &ours, eval);

                    let params = <$net as Network>::PARAMS;
                    // Eval outputs by forward_batch and by forward, training outputs, loss,
                    // gradients, step losses, the state after training, eval outputs after.
                    let outputs = $net::OUT * BATCH;
                    3 * outputs + 1 + params + TRAIN_STEPS + floats + outputs
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
    // BatchNorm1d on flat features, ReLU after it: 4 -> 6 -> 2.
    Linear32: f32 [Linear(4, 6), BatchNorm1d(6), ReLU, Linear(6, 2)];
    Linear64: f64 [Linear(4, 6), BatchNorm1d(6), ReLU, Linear(6, 2)];
    // BatchNorm1d over (2, 5), per channel over samples and positions, without affine
    // parameters, momentum 0.3: 10 -> 2x5 -> 10 -> 3.
    Unflat32: f32 [
        Unflatten(2, 5), BatchNorm1d(2, momentum = 0.3, affine = false), Flatten, Linear(10, 3)
    ];
    Unflat64: f64 [
        Unflatten(2, 5), BatchNorm1d(2, momentum = 0.3, affine = false), Flatten, Linear(10, 3)
    ];
    // BatchNorm2d after a convolution, eps 0.001: 1x6x6 -> 3x4x4 -> 3x1x1 -> 3 -> 2.
    Conv32: f32 [
        Unflatten(1, 6, 6), Conv2d(1, 3, 3), BatchNorm2d(3, eps = 0.001), Tanh,
        AdaptiveAvgPool2d(1), Flatten, Linear(3, 2)
    ];
    Conv64: f64 [
        Unflatten(1, 6, 6), Conv2d(1, 3, 3), BatchNorm2d(3, eps = 0.001), Tanh,
        AdaptiveAvgPool2d(1), Flatten, Linear(3, 2)
    ];
}

// ------------------------------------------------------------------------------------------------
// The test.

#[test]
fn every_batch_norm_network_matches_torch() {
    run_table(
        TABLE,
        &Suite {
            // tests/fixtures/norm holds other normalisations' fixtures too; ours start with `bn_`.
            dir: "norm",
            prefix: "bn_",
            sizes: &[("batch", BATCH)],
            loss: "Mse",
            script: "scripts/torch_norm_bn.py",
            tolerances: TOLERANCES,
        },
    );
}
