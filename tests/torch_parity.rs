//! End-to-end parity of `network!` networks with PyTorch.
//!
//! Every `tests/fixtures/network/*.json` (written by `scripts/make_network_fixtures.py`) holds an
//! `nn.Sequential` network's weights, a batch of inputs and targets, and what torch computed from
//! them: the outputs, the loss, the gradient of every parameter and, for every optimizer
//! configuration of `scripts/make_optim_fixtures.py`, the losses of five full-batch training
//! steps and the weights after them. Each fixture also holds, for every loss kind of
//! [`LOSS_KINDS`] (not only the one its network trains with), targets suited to that loss, its
//! value and the gradient of every parameter. Each test below declares the same layers with
//! `network!` (checked against the fixture's layer list), loads the weights, and compares all of
//! it.
//!
//! The fixtures store matrices as torch does, row-major nested lists `[out][in]`, and batches as
//! lists of samples; nalgebra is column-major and a batch here is one column per sample, so every
//! value is placed by its `(row, col)` index, never by its position in a flat slice.
//!
//! Every comparison is counted and each test asserts its count, so a fixture that lost its
//! gradients or a training run cannot pass by comparing nothing. Each test prints, per category,
//! the largest relative error, the largest absolute error and the largest fraction of the
//! tolerance used (run with `--nocapture`).

use approx::relative_eq;
use nn_runtime::prelude::*;
use nn_testkit::fixtures::{fixture_names, list, load, matrix, samples, torch_value, vector};
use nn_testkit::optim::from_torch;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

// ------------------------------------------------------------------------------------------------
// Tolerances.

/// Relative tolerance in `f32`: about 84 units in the last place (`f32::EPSILON` is `1.19e-7`).
/// The forward and backward passes sum a handful of products in a different order than torch's
/// kernels, and the optimizers may round where torch's kernels fuse; five training steps
/// accumulate a few such roundings, far below this.
const F32_MAX_RELATIVE: f64 = 1e-5;

/// Absolute floor in `f32`, for values near zero. A gradient entry or a trained parameter can be
/// a small difference of much larger terms (a bias gradient summing samples of opposite signs, a
/// weight that training moved across zero): its rounding error is that of the terms, about
/// `f32::EPSILON` times their magnitude (terms here are of order 1, so a few `1e-7`), not that of
/// the small result, so a relative test alone would fail on correct values. `1e-6` is about
/// 8 units in the last place at 1, and only decides for values below `1e-6 / 1e-5 = 0.1` in
/// magnitude; any real mistake (a wrong slope, a missing factor, a transposed index, a wrong
/// optimizer rule) moves values by orders of magnitude more. Measured: where the floor decides,
/// ours and torch's differ by up to `3e-7` (trained parameters of the tanh network), so a floor
/// of `1e-7` would reject correct results.
const F32_EPSILON: f64 = 1e-6;

/// Relative tolerance in `f64`: about `4.5e5` units in the last place (`f64::EPSILON` is
/// `2.2e-16`), ample for the same reordering and five steps of accumulation.
const F64_MAX_RELATIVE: f64 = 1e-10;

/// Absolute floor in `f64`, for values near zero, by the same reasoning as [`F32_EPSILON`]:
/// terms of order 1 round at about `1e-16`, so `1e-13` leaves a wide margin and only decides for
/// values below `1e-13 / 1e-10 = 1e-3` in magnitude.
const F64_EPSILON: f64 = 1e-13;

/// The tolerance for the scalar type `T`, chosen by its size.
fn tolerance<T: Real>() -> (f64, f64) {
    match T::BYTES {
        4 => (F32_MAX_RELATIVE, F32_EPSILON),
        8 => (F64_MAX_RELATIVE, F64_EPSILON),
        n => panic!("no tolerance for a {n}-byte scalar"),
    }
}

/// The fixture's name for the dtype of `T`.
fn dtype<T: Real>() -> &'static str {
    match T::BYTES {
        4 => "float32",
        8 => "float64",
        n => panic!("no dtype for a {n}-byte scalar"),
    }
}

// ------------------------------------------------------------------------------------------------
// What every fixture must hold.

/// Every fixture in `tests/fixtures/network`, each with its test below.
const ARCHS: [&str; 5] = [
    "relu_mse",
    "tanh_sigmoid_cross_entropy",
    "leaky_relu_bce_f64",
    "relu_hinge",
    "tanh_leaky_relu_mse",
];

/// The loss kinds every fixture must hold in its `losses` map, by our loss type's name, each
/// with the categories its value and its gradients are reported under. A fixture with one
/// missing or one extra fails, so no loss goes unchecked on any network.
///
/// Cross-entropy on a network with a single output is identically 0 (one class always has
/// probability 1), so there it is a smoke test only; `tanh_sigmoid_cross_entropy`,
/// `leaky_relu_bce_f64` (`f64`) and `tanh_leaky_relu_mse` have several outputs and check it.
const LOSS_KINDS: [LossKind; 4] = [
    LossKind {
        name: "Mse",
        loss: "Mse loss",
        grads: "Mse grads",
    },
    LossKind {
        name: "CrossEntropy",
        loss: "CrossEntropy loss",
        grads: "CrossEntropy grads",
    },
    LossKind {
        name: "BceWithLogits",
        loss: "BceWithLogits loss",
        grads: "BceWithLogits grads",
    },
    LossKind {
        name: "Hinge",
        loss: "Hinge loss",
        grads: "Hinge grads",
    },
];

/// One loss kind of [`LOSS_KINDS`].
struct LossKind {
    /// Our loss type's name, the key of the fixture's `losses` map.
    name: &'static str,
    /// The category its value is reported under.
    loss: &'static str,
    /// The category its parameter gradients are reported under.
    grads: &'static str,
}

/// Samples per batch, as `BATCH` in `make_network_fixtures.py`.
const BATCH: usize = 5;

/// Training steps per optimizer configuration, as `TRAIN_STEPS` in `make_network_fixtures.py`.
const TRAIN_STEPS: usize = 5;

/// The optimizer configurations every fixture must train with: those of
/// `make_optim_fixtures.py` without the `_f64` duplicates (each runs at the network's dtype).
/// A fixture with one missing or one extra fails, so none is skipped silently.
const CONFIGS: [&str; 11] = [
    "sgd_plain",
    "sgd_momentum",
    "sgd_momentum_nesterov_wd",
    "sgd_momentum_dampening",
    "adam_default",
    "adam_betas_eps_wd",
    "adamw_default",
    "adamw_decay",
    "rmsprop_default",
    "rmsprop_centered",
    "rmsprop_momentum_centered_wd",
];

// ------------------------------------------------------------------------------------------------
// Reading fixtures.

/// Sets one `Linear` layer's weight and bias from a state_dict-like map (`"0.weight"`, ...).
fn set_linear<T: Real, const IN: usize, const OUT: usize>(
    layer: &mut Linear<T, IN, OUT>,
    state: &Value,
    index: &str,
) {
    let weight = format!("{index}.weight");
    let bias = format!("{index}.bias");
    layer.weight = matrix(&state[&weight], &weight);
    layer.bias = vector(&state[&bias], &bias);
}

/// Asserts that a state_dict-like map holds exactly the tensors of the `Linear` layers at
/// `indices`, so that no tensor of the fixture goes unchecked.
fn assert_names(state: &Value, what: &str, indices: &[&str]) {
    let names: BTreeSet<&str> = state
        .as_object()
        .unwrap_or_else(|| panic!("{what}: expected a map of tensors"))
        .keys()
        .map(String::as_str)
        .collect();
    let expected: Vec<String> = indices
        .iter()
        .flat_map(|i| [format!("{i}.weight"), format!("{i}.bias")])
        .collect();
    let expected: BTreeSet<&str> = expected.iter().map(String::as_str).collect();
    assert_eq!(names, expected, "{what}: tensor names");
}

/// Checks a fixture's header against the network declared here: name, dtype, batch, loss, and
/// the layer list (compared without whitespace, as `stringify!` spaces tokens its own way).
fn check_header<T: Real>(fixture: &Value, name: &str, layers: &[&str], loss: &str) {
    let squash = |s: &str| s.split_whitespace().collect::<String>();
    assert_eq!(fixture["name"], name, "{name}: name");
    assert_eq!(fixture["dtype"], dtype::<T>(), "{name}: dtype");
    assert_eq!(fixture["batch"], BATCH, "{name}: batch");
    assert_eq!(fixture["loss_fn"]["name"], loss, "{name}: loss");
    let theirs: Vec<String> = list(&fixture["layers"], "layers", layers.len())
        .iter()
        .map(|l| squash(l.as_str().expect("layer names are strings")))
        .collect();
    let ours: Vec<String> = layers.iter().map(|l| squash(l)).collect();
    assert_eq!(ours, theirs, "{name}: layers");
}

// ------------------------------------------------------------------------------------------------
// Optimizers from torch's keyword arguments.

/// Any of our optimizers, so one training loop serves every configuration.
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

/// Our optimizer for the training configuration `config` of a network fixture, whose entry
/// states the `torch.optim` class and its keyword arguments.
///
/// Panics on a configuration not in [`CONFIGS`], on one whose class or arguments differ from
/// those in `tests/fixtures/optim/<config>.json`, on an unknown class and on any argument it
/// does not pass on: an argument left out would make the comparison meaningless. Only the
/// arguments torch was given are set, so torch's defaults are checked as well.
fn optimizer<T: Real>(config: &str, entry: &Value) -> AnyOptimizer<T> {
    assert!(
        CONFIGS.contains(&config),
        "unknown optimizer configuration {config}"
    );
    let class = entry["optimizer"]
        .as_str()
        .unwrap_or_else(|| panic!("{config}: no optimizer class"));
    let args: &Map<String, Value> = entry["args"]
        .as_object()
        .unwrap_or_else(|| panic!("{config}: no args"));
    // The same configuration as the optimizer fixtures, which tests/optim_parity.rs
    // replays step by step.
    let reference = load("optim", config);
    assert_eq!(reference["optimizer"], class, "{config}: optimizer class");
    assert_eq!(&reference["args"], &entry["args"], "{config}: arguments");

    AnyOptimizer(from_torch(config, class, args))
}

// ------------------------------------------------------------------------------------------------
// Comparing.

/// The worst agreement seen in one category of comparisons.
#[derive(Clone, Copy, Debug, Default)]
struct Worst {
    count: usize,
    /// Largest `|ours - torch| / max(|ours|, |torch|)` (0 where both are 0).
    relative: f64,
    /// The same, over the values large enough for the relative test to decide
    /// (`max(|ours|, |torch|) >= epsilon / max_relative`); below that the floor decides, and a
    /// tiny value's relative error says little.
    relative_large: f64,
    /// Largest `|ours - torch|`.
    absolute: f64,
    /// Largest `|ours - torch| / max(epsilon, max_relative * max(|ours|, |torch|))`: the
    /// fraction of the tolerance used; above 1 is a mismatch.
    used: f64,
}

/// Compares our values with torch's, counting every comparison and collecting every mismatch,
/// so that one failing test reports all of them at once.
struct Checker {
    name: &'static str,
    max_relative: f64,
    epsilon: f64,
    count: usize,
    categories: BTreeMap<&'static str, Worst>,
    mismatches: Vec<String>,
}

impl Checker {
    fn new<T: Real>(name: &'static str) -> Self {
        let (max_relative, epsilon) = tolerance::<T>();
        Self {
            name,
            max_relative,
            epsilon,
            count: 0,
            categories: BTreeMap::new(),
            mismatches: Vec::new(),
        }
    }

    fn scalar(&mut self, category: &'static str, what: &dyn Fn() -> String, ours: f64, torch: f64) {
        self.count += 1;
        let diff = (ours - torch).abs();
        let scale = ours.abs().max(torch.abs());
        let worst = self.categories.entry(category).or_default();
        worst.count += 1;
        if scale > 0.0 {
            worst.relative = worst.relative.max(diff / scale);
        }
        if scale >= self.epsilon / self.max_relative {
            worst.relative_large = worst.relative_large.max(diff / scale);
        }
        worst.absolute = worst.absolute.max(diff);
        // NaN never compares, so a NaN on either side is a mismatch below.
        worst.used = worst
            .used
            .max(diff / self.epsilon.max(self.max_relative * scale));
        if !relative_eq!(
            ours,
            torch,
            epsilon = self.epsilon,
            max_relative = self.max_relative
        ) {
            self.mismatches.push(format!(
                "{category}: {}: ours {ours:e}, torch {torch:e}, \
                 |diff| {diff:.3e}, relative {:.3e}",
                what(),
                diff / scale,
            ));
        }
    }

    /// `ours` against torch's row-major nested lists `[R][C]`, entry by `(row, col)`. Torch's
    /// values are read as `T` (see [`torch_value`]), as in the other comparisons below.
    fn matrix<T: Real, const R: usize, const C: usize>(
        &mut self,
        category: &'static str,
        what: &str,
        ours: &SMatrix<T, R, C>,
        torch: &Value,
    ) {
        let torch = matrix::<T, R, C>(torch, what);
        for r in 0..R {
            for c in 0..C {
                let at = || format!("{what}[{r}][{c}]");
                self.scalar(category, &at, ours[(r, c)].widen(), torch[(r, c)].widen());
            }
        }
    }

    /// `ours` against a flat list.
    fn vector<T: Real, const R: usize>(
        &mut self,
        category: &'static str,
        what: &str,
        ours: &SVector<T, R>,
        torch: &Value,
    ) {
        let torch = vector::<T, R>(torch, what);
        for r in 0..R {
            let at = || format!("{what}[{r}]");
            self.scalar(category, &at, ours[r].widen(), torch[r].widen());
        }
    }

    /// A batch `ours` (one column per sample) against torch's list of samples.
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

    /// One `Linear` layer's weight and bias against a state_dict-like map.
    fn linear<T: Real, const IN: usize, const OUT: usize>(
        &mut self,
        category: &'static str,
        prefix: &str,
        ours: &Linear<T, IN, OUT>,
        state: &Value,
        index: &str,
    ) {
        let weight = format!("{index}.weight");
        let bias = format!("{index}.bias");
        self.matrix(
            category,
            &format!("{prefix}{weight}"),
            &ours.weight,
            &state[&weight],
        );
        self.vector(
            category,
            &format!("{prefix}{bias}"),
            &ours.bias,
            &state[&bias],
        );
    }

    /// Prints the worst agreement per category, then fails on any mismatch or on a number of
    /// comparisons other than `expected`.
    fn finish(self, expected: usize) {
        let mut report = format!(
            "{}: {} comparisons (max_relative {:e}, epsilon {:e})\n",
            self.name, self.count, self.max_relative, self.epsilon
        );
        for (category, w) in &self.categories {
            writeln!(
                report,
                "  {category:<19} {:>4} values  max relative {:.2e} (where it decides {:.2e})  \
                 max absolute {:.2e}  tolerance used {:.3}",
                w.count, w.relative, w.relative_large, w.absolute, w.used
            )
            .unwrap();
        }
        println!("{report}");
        assert!(
            self.mismatches.is_empty(),
            "{}: {} of {} comparisons disagree with torch:\n{}",
            self.name,
            self.mismatches.len(),
            self.count,
            self.mismatches.join("\n")
        );
        assert_eq!(
            self.count, expected,
            "{}: number of comparisons made",
            self.name
        );
    }
}

// ------------------------------------------------------------------------------------------------
// The tests.

/// Every network fixture has a test below, and every optimizer configuration of the optimizer
/// fixtures (but the `_f64` duplicates, which the networks replace by running at their own
/// dtype) is required of every network fixture: a fixture or configuration added later cannot
/// go untested.
#[test]
fn every_fixture_and_configuration_is_covered() {
    let archs: BTreeSet<String> = ARCHS.iter().map(|s| s.to_string()).collect();
    assert_eq!(fixture_names("network"), archs, "network fixtures");
    let configs: BTreeSet<String> = fixture_names("optim")
        .into_iter()
        .filter(|name| !name.ends_with("_f64"))
        .collect();
    let required: BTreeSet<String> = CONFIGS.iter().map(|s| s.to_string()).collect();
    assert_eq!(configs, required, "optimizer configurations");
}

/// Declares a network with `network!` and a test comparing it with its fixture.
///
/// `linear` names each `Linear` layer's field and its `nn.Sequential` index (its `state_dict`
/// prefix); `comparisons` is the number of values the test must compare: `OUT * BATCH` outputs,
/// 1 loss, `PARAMS` gradients, per configuration `TRAIN_STEPS` losses and `PARAMS` parameters,
/// and per loss kind 1 loss and `PARAMS` gradients.
macro_rules! parity_test {
    (
        $(#[$doc:meta])*
        fn $test:ident for $net:ident: $t:ident { $($layer:ident $(($($arg:tt)*))?),+ $(,)? }
        loss: $loss:ident,
        linear: [$($field:ident = $index:literal),+ $(,)?],
        comparisons: $expected:expr $(,)?
    ) => {
        network! {
            $(#[$doc])*
            struct $net: $t { $($layer $(($($arg)*))?),+ }
        }

        #[test]
        fn $test() {
            let name = stringify!($test);
            let fixture = load("network", name);
            let layers = [$(stringify!($layer $(($($arg)*))?)),+];
            check_header::<$t>(&fixture, name, &layers, stringify!($loss));
            let indices = [$($index),+];
            assert_names(&fixture["weights"], "weights", &indices);
            assert_names(&fixture["grads"], "grads", &indices);

            let mut reference = $net::zeros();
            $(set_linear(&mut reference.$field, &fixture["weights"], $index);)+
            let xs = samples::<$t, { $net::IN }, BATCH>(&fixture["xs"], "xs");
            let ys = samples::<$t, { $net::OUT }, BATCH>(&fixture["ys"], "ys");

            let mut check = Checker::new::<$t>(name);

            // Forward pass, loss and backward pass at the fixture's weights.
            let outputs = reference.forward_batch(&xs);
            check.samples("outputs", "outputs", &outputs, &fixture["outputs"]);
            let (loss, grads) = reference.gradients(&xs, &ys, &$loss);
            let torch = torch_value::<$t>(&fixture["loss"], "loss");
            check.scalar("loss", &|| "loss".into(), loss.widen(), torch);
            $(check.linear("gradients", "grad ", &grads.$field, &fixture["grads"], $index);)+

            // Five full-batch training steps per optimizer configuration.
            let train = fixture["train"]
                .as_object()
                .unwrap_or_else(|| panic!("{name}: no train map"));
            let configs: BTreeSet<&str> = train.keys().map(String::as_str).collect();
            assert_eq!(configs, BTreeSet::from(CONFIGS), "{name}: optimizer configurations");
            for (config, entry) in train {
                let mut opt = optimizer::<$t>(config, entry);
                let mut net = reference.clone();
                let losses = list(&entry["losses"], "losses", TRAIN_STEPS);
                for (step, torch) in losses.iter().enumerate() {
                    let ours = net.train_step(&xs, &ys, &$loss, &mut opt);
                    let at = || format!("{config} step {step} loss");
                    let torch = torch_value::<$t>(torch, "losses");
                    check.scalar("train losses", &at, ours.widen(), torch);
                }
                let state = &entry["state_dict"];
                assert_names(state, config, &indices);
                let prefix = format!("{config} ");
                $(check.linear("train params", &prefix, &net.$field, state, $index);)+
            }

            // Every loss kind's value and gradients at the fixture's weights.
            let losses = fixture["losses"]
                .as_object()
                .unwrap_or_else(|| panic!("{name}: no losses map"));
            let kinds: BTreeSet<&str> = losses.keys().map(String::as_str).collect();
            let required: BTreeSet<&str> = LOSS_KINDS.iter().map(|k| k.name).collect();
            assert_eq!(kinds, required, "{name}: loss kinds");
            // The network's own loss reuses the fixture's targets (and so repeats its loss).
            let own = &losses[stringify!($loss)];
            assert_eq!(own["ys"], fixture["ys"], "{name}: targets of its own loss");
            assert_eq!(own["loss"], fixture["loss"], "{name}: value of its own loss");
            for kind in &LOSS_KINDS {
                let entry = &losses[kind.name];
                let what = format!("losses.{}", kind.name);
                let ys = samples::<$t, { $net::OUT }, BATCH>(&entry["ys"], &format!("{what}.ys"));
                let (loss, grads) = match kind.name {
                    "Mse" => reference.gradients(&xs, &ys, &Mse),
                    "CrossEntropy" => reference.gradients(&xs, &ys, &CrossEntropy),
                    "BceWithLogits" => reference.gradients(&xs, &ys, &BceWithLogits),
                    "Hinge" => reference.gradients(&xs, &ys, &Hinge),
                    other => panic!("{name}: no loss type for {other}"),
                };
                let torch = torch_value::<$t>(&entry["loss"], &format!("{what}.loss"));
                check.scalar(kind.loss, &|| format!("{what} loss"), loss.widen(), torch);
                assert_names(&entry["grads"], &format!("{what}.grads"), &indices);
                let prefix = format!("{what} grad ");
                $(check.linear(kind.grads, &prefix, &grads.$field, &entry["grads"], $index);)+
            }

            let expected: usize = $expected;
            // The count also follows from the network's shape; both must agree.
            let per_config = TRAIN_STEPS + $net::PARAMS;
            let per_loss = 1 + $net::PARAMS;
            assert_eq!(
                expected,
                $net::OUT * BATCH
                    + 1
                    + $net::PARAMS
                    + CONFIGS.len() * per_config
                    + LOSS_KINDS.len() * per_loss,
                "{name}: expected comparisons"
            );
            check.finish(expected);
        }
    };
}

parity_test! {
    /// ReLU network trained on MSE, `f32`.
    fn relu_mse for ReluMse: f32 { Linear(2, 8), ReLU, Linear(8, 1) }
    loss: Mse,
    linear: [l0 = "0", l2 = "2"],
    // 33 parameters: 5 outputs + 1 loss + 33 gradients + 11 configs * (5 losses + 33 params)
    // + 4 loss kinds * (1 loss + 33 gradients).
    comparisons: 593,
}

parity_test! {
    /// Tanh and Sigmoid hidden layers, cross-entropy on logits with soft targets, `f32`.
    fn tanh_sigmoid_cross_entropy for TanhSigmoidCe: f32 {
        Linear(4, 6), Tanh, Linear(6, 5), Sigmoid, Linear(5, 3)
    }
    loss: CrossEntropy,
    linear: [l0 = "0", l2 = "2", l4 = "4"],
    // 83 parameters: 15 outputs + 1 loss + 83 gradients + 11 configs * (5 losses + 83 params)
    // + 4 loss kinds * (1 loss + 83 gradients).
    comparisons: 1403,
}

parity_test! {
    /// LeakyReLU network, binary cross-entropy on logits with soft targets, `f64`.
    fn leaky_relu_bce_f64 for LeakyReluBce: f64 { Linear(3, 5), LeakyReLU(0.1), Linear(5, 2) }
    loss: BceWithLogits,
    linear: [l0 = "0", l2 = "2"],
    // 32 parameters: 10 outputs + 1 loss + 32 gradients + 11 configs * (5 losses + 32 params)
    // + 4 loss kinds * (1 loss + 32 gradients).
    comparisons: 582,
}

parity_test! {
    /// ReLU network on the hinge loss, with samples on both sides of the margin, `f32`.
    fn relu_hinge for ReluHinge: f32 { Linear(3, 4), ReLU, Linear(4, 1) }
    loss: Hinge,
    linear: [l0 = "0", l2 = "2"],
    // 21 parameters: 5 outputs + 1 loss + 21 gradients + 11 configs * (5 losses + 21 params)
    // + 4 loss kinds * (1 loss + 21 gradients).
    comparisons: 401,
}

parity_test! {
    /// Tanh and LeakyReLU hidden layers and four outputs, trained on MSE (a mean over every
    /// element, not only over the batch), `f32`. With several outputs it also checks
    /// cross-entropy, which one output makes identically 0.
    fn tanh_leaky_relu_mse for TanhLeakyReluMse: f32 {
        Linear(3, 6), Tanh, Linear(6, 5), LeakyReLU(0.05), Linear(5, 4)
    }
    loss: Mse,
    linear: [l0 = "0", l2 = "2", l4 = "4"],
    // 83 parameters: 20 outputs + 1 loss + 83 gradients + 11 configs * (5 losses + 83 params)
    // + 4 loss kinds * (1 loss + 83 gradients).
    comparisons: 1408,
}
