//! PyTorch parity of the shaped layers (`Unflatten`, `Flatten`, `Conv2d`, `Conv1d` over a
//! sample's length, and the pooling layers `MaxPool2d`, `AvgPool2d`, `AdaptiveAvgPool2d`,
//! `MaxPool1d`, `AvgPool1d`) in whole networks, in `f32` and `f64`, on the fixtures
//! `tests/fixtures/conv/*.json` written by `scripts/torch_conv.py` (its docstring states the
//! layout of every field, the torch module of every layer and how the data are kept off ReLU's
//! kink and off ties of a max-pool window).
//!
//! Each row of the table below declares a network with `network!`; the fixture of the same
//! dtype and layer list holds torch's `nn.Sequential` of the same layers, its parameters (by
//! `state_dict` name, nested as torch's shapes), a batch of 5 samples (each sample's flat
//! features, channel first and row-major, one column per sample here) and targets, and what
//! torch computed. For each row this test
//!
//! - checks the network's tensors against the fixture: `state_dict` names in order
//!   (`Tensors::visit`), torch's shape for each (`[out, in / groups, kh, kw]` for a `Conv2d`
//!   weight), `IN` and `OUT`;
//! - loads the parameters by name (`nn_testkit::fixtures::set_tensors`, through `Tensors`);
//! - compares `forward_batch` of the batch, and `forward` of each sample alone, with torch's
//!   outputs;
//! - compares the loss (`Mse`, torch's `nn.MSELoss()`: the mean over every sample and output)
//!   and every parameter's gradient by name from `gradients`;
//! - trains 5 steps of `train_step` with `Adam::new(0.01)` on the same batch (torch's
//!   `Adam(lr=0.01)`, whose class and arguments the fixture states) and compares each step's
//!   loss and the parameters after the last step.
//!
//! The gradient struct has no `Tensors` impl; gradients are read by name through
//! `Network::tensors` (the optimizers' flat view, each gradient beside its parameter), whose
//! order `nn_testkit::fixtures::named_gradients` checks against `Tensors::visit`'s, tensor by
//! tensor. Every fixture must be matched by a row and every row by a fixture, every name of a
//! fixture's parameters must be one of the network's tensors and vice versa, and the number of
//! comparisons is asserted, so nothing goes unchecked silently.

use nn_runtime::prelude::*;
use nn_testkit::fixtures::{
    Named, assert_tensor_names, column_major, element, fixture_names, list, load, named_gradients,
    named_tensors, number, samples, set_tensors,
};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

// ------------------------------------------------------------------------------------------------
// Tolerances: `|ours - torch| <= REL * |torch| + ABS`.

/// Relative tolerance in `f32`: about 84 units in the last place. A convolution's output is a
/// sum of at most 36 products (`in / groups * kh * kw`, here up to `4 * 3 * 2` and `2 * 3 * 3`),
/// a pooled value a mean of a few of them, and a weight's gradient a sum over the batch and
/// every output position (up to `5 * 64` terms); each is summed in another order than torch's
/// kernels (im2col and a blocked GEMM, or its direct kernels), so the results differ by a few
/// units in the last place of the terms, times a small factor, and no more: nothing here is
/// iterated.
const F32_REL: f64 = 1e-5;

/// Absolute floor in `f32`, for values near zero: a gradient entry or an output is a sum of
/// terms of both signs, and its rounding error is `f32::EPSILON` (1.2e-7) times the terms'
/// magnitude, not the small result's, so a relative test alone would fail on correct values.
/// `1e-6` decides only for values below `ABS / REL = 0.1`. Measured by the script (printed when
/// it runs): torch's own `f32` results, against the exact (`f64`) results at the same `f32`
/// inputs, use at most 0.04 of this tolerance in every category, the trained parameters
/// included.
const F32_ABS: f64 = 1e-6;

/// Relative tolerance in `f64`: about `4.5e5` units in the last place, the same reasoning.
const F64_REL: f64 = 1e-10;

/// Absolute floor in `f64`, as [`F32_ABS`]: terms of order 1 round at about `2.2e-16`, so
/// `1e-12` leaves a wide margin and decides only below `1e-2`.
const F64_ABS: f64 = 1e-12;

// The parameters after five Adam steps use the same tolerances, for the reasons
// tests/sequence_torch.rs gives. Adam's step is `lr m / (sqrt(v) + eps)`, about `lr g / |g|` on
// the first step: it divides by the gradient's own size, so a gradient entry's relative error
// becomes an absolute error of the parameter of about `lr` times it, whatever the entry's
// size; a gradient entry that is a cancellation down to its own rounding would make its
// parameter's trajectory a matter of rounding, and no tolerance short of `lr` could hold. The
// fixtures avoid that rather than the tolerance: the script reseeds until every gradient entry
// fed to Adam, at every step, in both dtypes, is at least `1e-6` in magnitude (far above
// Adam's `eps` of `1e-8` and above a gradient's `f32` rounding, about `1e-9` here; no exact
// zeros either, so no ReLU unit is dead over the batch), and its comparison of torch's `f32`
// trajectory with the exact one uses at most 0.04 of the tolerance for the trained
// parameters. The optimizer fixtures' replay (tests/optim_parity.rs) checks the update rule
// itself; this test checks that `train_step` feeds it the right gradients, in the right
// order, once per step. If a change of the generated summation order ever pushes a trained
// parameter past the tolerance while every gradient passes, widen the trained parameters'
// floor alone (to about `lr * ABS / min|g|`) and say so here.

/// `(REL, ABS)` for a fixture's dtype.
fn tolerance(dtype: &str) -> (f64, f64) {
    match dtype {
        "float32" => (F32_REL, F32_ABS),
        "float64" => (F64_REL, F64_ABS),
        other => panic!("no tolerance for dtype {other}"),
    }
}

/// Samples per batch, as `BATCH` in `torch_conv.py`.
const BATCH: usize = 5;
/// Adam steps, as `TRAIN_STEPS`.
const TRAIN_STEPS: usize = 5;
/// Adam's learning rate, as `LR`.
const LR: f64 = 0.01;

// ------------------------------------------------------------------------------------------------
// Comparing.

/// Every comparison of one case, and every mismatch, so that one failure lists them all.
struct Checker {
    case: String,
    rel: f64,
    abs: f64,
    count: usize,
    /// Per category: the largest fraction of the tolerance used.
    used: BTreeMap<&'static str, f64>,
    mismatches: Vec<String>,
}

impl Checker {
    fn new(case: &str, dtype: &str) -> Self {
        let (rel, abs) = tolerance(dtype);
        Self {
            case: case.to_string(),
            rel,
            abs,
            count: 0,
            used: BTreeMap::new(),
            mismatches: Vec::new(),
        }
    }

    /// One value; `torch` is already read as the case's dtype and widened.
    fn scalar(&mut self, category: &'static str, what: &dyn Fn() -> String, ours: f64, torch: f64) {
        self.count += 1;
        let allowed = self.rel * torch.abs() + self.abs;
        let diff = (ours - torch).abs();
        let used = self.used.entry(category).or_default();
        *used = used.max(diff / allowed);
        // A NaN on either side fails.
        if diff.is_nan() || diff > allowed {
            self.mismatches.push(format!(
                "{}: {category}: {}: ours {ours:e}, torch {torch:e}, |diff| {diff:.3e} > allowed \
                 {allowed:.3e}",
                self.case,
                what()
            ));
        }
    }

    /// A batch (one column per sample) against torch's list of samples, by (sample, feature).
    fn samples<T: Real, const R: usize, const B: usize>(
        &mut self,
        category: &'static str,
        what: &str,
        ours: &SMatrix<T, R, B>,
        torch: &Value,
    ) {
        let torch = samples::<T, R, B>(torch, what);
        for b in 0..B {
            for r in 0..R {
                let at = || format!("{what} sample {b} feature {r}");
                self.scalar(category, &at, ours[(r, b)].widen(), torch[(r, b)].widen());
            }
        }
    }

    /// Tensors by name against a `state_dict`-like map, which must hold exactly their names.
    fn named<T: Real>(
        &mut self,
        category: &'static str,
        what: &str,
        ours: &[Named<T>],
        torch: &Value,
    ) {
        let map = torch
            .as_object()
            .unwrap_or_else(|| panic!("{}: {what}: expected a map of tensors", self.case));
        let theirs: BTreeSet<&str> = map.keys().map(String::as_str).collect();
        let names: BTreeSet<&str> = ours.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, theirs, "{}: {what}: tensor names", self.case);
        for tensor in ours {
            let name = &tensor.name;
            let values = column_major::<T>(&map[name], &tensor.shape, &format!("{what}.{name}"));
            assert_eq!(values.len(), tensor.values.len(), "{what}.{name}: size");
            for (i, (ours, torch)) in tensor.values.iter().zip(&values).enumerate() {
                let at = || format!("{what}.{name}{}", element(&tensor.shape, i));
                self.scalar(category, &at, ours.widen(), torch.widen());
            }
        }
    }
}

/// Asserts that the network's tensors have torch's shapes (`param_shapes`), so that a tensor
/// read by [`column_major`] is laid out as torch's (a shape of the same size but other axes
/// would otherwise pass the size checks).
fn assert_shapes<T: Real>(case: &str, ours: &[Named<T>], fixture: &Value) {
    let shapes = fixture["param_shapes"]
        .as_object()
        .unwrap_or_else(|| panic!("{case}: no param_shapes"));
    assert_eq!(ours.len(), shapes.len(), "{case}: number of tensors");
    for tensor in ours {
        let theirs: Vec<usize> = shapes
            .get(&tensor.name)
            .and_then(Value::as_array)
            .unwrap_or_else(|| panic!("{case}: no shape for {}", tensor.name))
            .iter()
            .map(|n| n.as_u64().expect("a shape is a list of sizes") as usize)
            .collect();
        assert_eq!(tensor.shape, theirs, "{case}: {}: shape", tensor.name);
    }
}

/// Asserts that the fixture trained with `Adam(lr=0.01)` for [`TRAIN_STEPS`] steps, as the
/// test does with `Adam::new(0.01)`.
fn assert_training(case: &str, train: &Value) {
    assert_eq!(train["optimizer"], "Adam", "{case}: optimizer");
    let args = train["args"]
        .as_object()
        .unwrap_or_else(|| panic!("{case}: no optimizer arguments"));
    let keys: Vec<&str> = args.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        ["lr"],
        "{case}: Adam's arguments (torch's defaults otherwise)"
    );
    assert_eq!(number(&args["lr"], "lr"), LR, "{case}: lr");
    assert_eq!(train["steps"], TRAIN_STEPS, "{case}: steps");
}

// ------------------------------------------------------------------------------------------------
// The table: one network per (layers, dtype).

/// One row of the table.
struct Row {
    /// The network's name.
    net: &'static str,
    /// `"float32"` or `"float64"`.
    dtype: &'static str,
    /// The layer list as written in the row (`stringify!`), compared without whitespace.
    layers: &'static str,
    /// Compares the network with its fixture; returns the number of comparisons it must have
    /// made.
    check: fn(&Value, &mut Checker) -> usize,
}

/// A network whose check the table generates.
trait Parity {
    /// Compares the network with `fixture`; returns the number of comparisons expected.
    fn check(fixture: &Value, check: &mut Checker) -> usize;
}

macro_rules! dtype_name {
    (f32) => {
        "float32"
    };
    (f64) => {
        "float64"
    };
}

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
                    let case = check.case.clone();
                    assert_eq!(fixture["in_features"], $net::IN, "{case}: IN");
                    assert_eq!(fixture["out_features"], $net::OUT, "{case}: OUT");

                    let mut net = $net::zeros();
                    assert_tensor_names(&net, fixture);
                    assert_shapes(&case, &named_tensors(&net), fixture);
                    set_tensors(&mut net, &fixture["params"], "params");
                    assert_eq!(
                        named_tensors(&net).iter().map(|t| t.values.len()).sum::<usize>(),
                        <$net as Network>::PARAMS,
                        "{case}: PARAMS and the tensors' sizes"
                    );

                    type X = SMatrix<$t, { $net::IN }, BATCH>;
                    type Y = SMatrix<$t, { $net::OUT }, BATCH>;
                    let xs: X = samples(&fixture["xs"], "xs");
                    let ys: Y = samples(&fixture["ys"], "ys");

                    // The batch at once, and each sample alone.
                    let outputs = net.forward_batch(&xs);
                    check.samples("outputs", "outputs", &outputs, &fixture["outputs"]);
                    let torch = samples::<$t, { $net::OUT }, BATCH>(&fixture["outputs"], "outputs");
                    for b in 0..BATCH {
                        let x: SVector<$t, { $net::IN }> = xs.column(b).into_owned();
                        let y = net.forward(&x);
                        for o in 0..$net::OUT {
                            let at = || format!("sample {b} alone: output {o}");
                            check.scalar("forward", &at, y[o].widen(), torch[(o, b)].widen());
                        }
                    }

                    // Loss and gradients.
                    let torch_loss = <$t as Real>::cast(number(&fixture["loss"], "loss")).widen();
                    let (loss, grads) = net.gradients(&xs, &ys, &Mse);
                    check.scalar("loss", &|| "loss".into(), loss.widen(), torch_loss);
                    let named = named_gradients(&net, &grads);
                    check.named("gradients", "grads", &named, &fixture["grads"]);

                    // Adam on the same batch.
                    let train = &fixture["train"];
                    assert_training(&case, train);
                    let mut opt = Adam::<$t>::new(0.01);
                    let losses = list(&train["losses"], "train.losses", TRAIN_STEPS);
                    for (step, torch) in losses.iter().enumerate() {
                        let ours = net.train_step(&xs, &ys, &Mse, &mut opt);
                        let torch = <$t as Real>::cast(number(torch, "losses")).widen();
                        let at = || format!("step {step} loss");
                        check.scalar("train losses", &at, ours.widen(), torch);
                    }
                    check.named("train params", "train.params", &named_tensors(&net), &train["params"]);

                    let params = <$net as Network>::PARAMS;
                    // outputs by forward_batch and by forward, loss, gradients, step losses,
                    // trained parameters.
                    2 * $net::OUT * BATCH + 1 + params + TRAIN_STEPS + params
                }
            }
        )*

        const TABLE: &[Row] = &[$(
            Row {
                net: stringify!($net),
                dtype: dtype_name!($t),
                layers: stringify!($($layer)*),
                check: <$net as Parity>::check,
            },
        )*];
    };
}

table! {
    // Padding, ReLU, max pooling, a (3, 2) kernel with stride and padding pairs, Tanh, average
    // pooling: 1x8x8 -> 4x8x8 -> 4x4x4 -> 6x4x2 -> 6x2x1 -> 12 -> 3.
    Pools32: f32 [
        Unflatten(1, 8, 8), Conv2d(1, 4, 3, padding = 1), ReLU, MaxPool2d(2),
        Conv2d(4, 6, (3, 2), stride = (1, 2), padding = (1, 0)), Tanh, AvgPool2d(2), Flatten,
        Linear(12, 3)
    ];
    Pools64: f64 [
        Unflatten(1, 8, 8), Conv2d(1, 4, 3, padding = 1), ReLU, MaxPool2d(2),
        Conv2d(4, 6, (3, 2), stride = (1, 2), padding = (1, 0)), Tanh, AvgPool2d(2), Flatten,
        Linear(12, 3)
    ];
    // Groups, dilation, no bias, adaptive average pooling: 4x5x5 -> 6x1x1 -> 6x1x1 -> 6 -> 2.
    Groups32: f32 [
        Unflatten(4, 5, 5), Conv2d(4, 6, 3, groups = 2, dilation = 2, bias = false), ReLU,
        AdaptiveAvgPool2d(1), Flatten, Linear(6, 2)
    ];
    Groups64: f64 [
        Unflatten(4, 5, 5), Conv2d(4, 6, 3, groups = 2, dilation = 2, bias = false), ReLU,
        AdaptiveAvgPool2d(1), Flatten, Linear(6, 2)
    ];
    // One-dimensional, with stride, padding, a 1-wide kernel and zero padding counted in the
    // average: 2x12 -> 4x6 -> 4x3 -> 4x3 -> 4x3 -> 12 -> 2.
    Pools1d32: f32 [
        Unflatten(2, 12), Conv1d(2, 4, 3, stride = 2, padding = 1), ReLU, MaxPool1d(2),
        Conv1d(4, 4, 1), AvgPool1d(3, stride = 1, padding = 1), Flatten, Linear(12, 2)
    ];
    Pools1d64: f64 [
        Unflatten(2, 12), Conv1d(2, 4, 3, stride = 2, padding = 1), ReLU, MaxPool1d(2),
        Conv1d(4, 4, 1), AvgPool1d(3, stride = 1, padding = 1), Flatten, Linear(12, 2)
    ];
    // A stride that leaves the last row and column unread, into adaptive average pooling over
    // 2x2: 3x6x6 -> 4x2x2 -> 4x1x1 -> 4 -> 1.
    Stride32: f32 [
        Unflatten(3, 6, 6), Conv2d(3, 4, 3, stride = 2), AdaptiveAvgPool2d(1), Flatten,
        Linear(4, 1)
    ];
    Stride64: f64 [
        Unflatten(3, 6, 6), Conv2d(3, 4, 3, stride = 2), AdaptiveAvgPool2d(1), Flatten,
        Linear(4, 1)
    ];
    // Padding by words, "same" and "valid" (a rectangular kernel), then max pooling with
    // padding and a stride smaller than its kernel: 2x5x5 -> 3x5x5 -> 2x3x5 -> 2x4x6 -> 2 -> 2.
    Words32: f32 [
        Unflatten(2, 5, 5), Conv2d(2, 3, 3, padding = "same"), Tanh,
        Conv2d(3, 2, (3, 1), padding = "valid"), MaxPool2d(2, stride = 1, padding = 1),
        AdaptiveAvgPool2d(1), Flatten, Linear(2, 2)
    ];
    Words64: f64 [
        Unflatten(2, 5, 5), Conv2d(2, 3, 3, padding = "same"), Tanh,
        Conv2d(3, 2, (3, 1), padding = "valid"), MaxPool2d(2, stride = 1, padding = 1),
        AdaptiveAvgPool2d(1), Flatten, Linear(2, 2)
    ];
    // One-dimensional with dilation, depthwise groups and no bias: 4x9 -> 4x5 -> 4 -> 1.
    Depthwise32: f32 [
        Unflatten(4, 9), Conv1d(4, 4, 3, dilation = 2, groups = 4, bias = false), Tanh,
        AdaptiveAvgPool1d(1), Flatten, Linear(4, 1)
    ];
    Depthwise64: f64 [
        Unflatten(4, 9), Conv1d(4, 4, 3, dilation = 2, groups = 4, bias = false), Tanh,
        AdaptiveAvgPool1d(1), Flatten, Linear(4, 1)
    ];
}

// ------------------------------------------------------------------------------------------------
// The test.

/// `layers` without whitespace, so that a fixture's list and `stringify!` (which spaces tokens
/// its own way) compare equal.
fn squash(layers: &str) -> String {
    layers.split_whitespace().collect()
}

#[test]
fn every_shaped_network_matches_torch() {
    // Every fixture has exactly one row and every row exactly one fixture.
    let mut rows: BTreeMap<(String, String), &Row> = BTreeMap::new();
    for row in TABLE {
        let previous = rows.insert((row.dtype.to_string(), squash(row.layers)), row);
        assert!(
            previous.is_none(),
            "{} and {} are the same row",
            previous.unwrap().net,
            row.net
        );
    }
    let mut matched: BTreeMap<&str, (String, Value)> = BTreeMap::new();
    let mut unmatched_fixtures = Vec::new();
    for name in fixture_names("conv") {
        let fixture = load("conv", &name);
        assert_eq!(fixture["name"], name.as_str(), "{name}: name");
        assert_eq!(fixture["batch"], BATCH, "{name}: batch");
        assert_eq!(fixture["loss_fn"]["name"], "Mse", "{name}: loss");
        let layers: Vec<&str> = fixture["layers"]
            .as_array()
            .unwrap_or_else(|| panic!("{name}: no layer list"))
            .iter()
            .map(|l| l.as_str().expect("layers are strings"))
            .collect();
        let dtype = fixture["dtype"]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: no dtype"))
            .to_string();
        match rows.get(&(dtype, squash(&layers.join(",")))) {
            Some(row) => {
                let previous = matched.insert(row.net, (name.clone(), fixture));
                assert!(
                    previous.is_none(),
                    "{} matches two fixtures: {} and {name}",
                    row.net,
                    previous.unwrap().0
                );
            }
            None => unmatched_fixtures.push(name),
        }
    }
    let unmatched_rows: Vec<&str> = TABLE
        .iter()
        .filter(|row| !matched.contains_key(row.net))
        .map(|row| row.net)
        .collect();
    assert!(
        unmatched_fixtures.is_empty() && unmatched_rows.is_empty(),
        "fixtures without a network in the table: {unmatched_fixtures:?}\n\
         networks in the table without a fixture (rerun scripts/torch_conv.py?): \
         {unmatched_rows:?}"
    );
    assert_eq!(matched.len(), TABLE.len(), "every fixture case matched");

    let mut mismatches = Vec::new();
    let mut total = 0;
    for row in TABLE {
        let (name, fixture) = &matched[row.net];
        let mut check = Checker::new(name, row.dtype);
        let expected = (row.check)(fixture, &mut check);
        println!("{name} ({}): {} comparisons", row.net, check.count);
        for (category, used) in &check.used {
            println!("  {category:<16} tolerance used {used:.3}");
        }
        assert_eq!(check.count, expected, "{name}: number of comparisons made");
        total += check.count;
        mismatches.extend(check.mismatches);
    }
    assert!(
        mismatches.is_empty(),
        "{} of {total} comparisons disagree with torch (|ours - torch| <= REL |torch| + ABS, \
         f32: REL {F32_REL:e} ABS {F32_ABS:e}, f64: REL {F64_REL:e} ABS {F64_ABS:e}):\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}
