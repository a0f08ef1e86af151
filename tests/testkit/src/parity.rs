//! The PyTorch-parity harness of the whole-network tests (`tests/conv_torch.rs`,
//! `tests/norm_torch.rs`, `tests/norm_bn_torch.rs`, `tests/sequence_torch.rs`).
//!
//! Each of those files declares a table of networks with `network!`, one [`Row`] per network
//! (its name, dtype, layer list and check, a [`Parity`] impl its `table!` macro generates), and
//! calls [`run_table`] with a [`Suite`]: what differs between the files (the fixture
//! directory, the fixtures' sizes and loss, the script that writes them, the tolerances).
//! [`run_table`] matches every fixture to exactly one row and every row to exactly one fixture
//! (by dtype and layer list), runs each row's check with a [`Checker`], asserts the number of
//! comparisons the check says it must have made, and fails once at the end, listing every
//! value that disagrees with torch together with the tolerances, so that nothing goes
//! unchecked silently and one failure shows them all.
//!
//! A comparison passes when `|ours - torch| <= REL * |torch| + ABS`, with the `(REL, ABS)` of
//! the fixture's dtype; each test file states its tolerances and why they suffice.

use crate::fixtures::{Named, column_major, element, fixture_names, load, matrix, number, samples};
use nn_runtime::prelude::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

// ------------------------------------------------------------------------------------------------
// Comparing.

/// `(REL, ABS)` per dtype: a value passes when `|ours - torch| <= REL * |torch| + ABS`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tolerances {
    /// `(REL, ABS)` for the `float32` fixtures.
    pub f32: (f64, f64),
    /// `(REL, ABS)` for the `float64` fixtures.
    pub f64: (f64, f64),
}

impl Tolerances {
    /// `(REL, ABS)` for a fixture's dtype (`"float32"` or `"float64"`).
    pub fn of(&self, dtype: &str) -> (f64, f64) {
        match dtype {
            "float32" => self.f32,
            "float64" => self.f64,
            other => panic!("no tolerance for dtype {other}"),
        }
    }
}

/// Every comparison of one case, and every mismatch, so that one failure lists them all.
///
/// A test file's own kinds of comparison (a captured output, a state part) are free functions
/// or extension traits over [`Checker::scalar`] and [`Checker::matrix`].
#[derive(Debug)]
pub struct Checker {
    case: String,
    rel: f64,
    abs: f64,
    count: usize,
    /// Per category: the largest fraction of the tolerance used.
    used: BTreeMap<&'static str, f64>,
    mismatches: Vec<String>,
}

impl Checker {
    /// A checker of the case (fixture) `case` with the tolerance `(rel, abs)`.
    pub fn new(case: &str, (rel, abs): (f64, f64)) -> Self {
        Self {
            case: case.to_string(),
            rel,
            abs,
            count: 0,
            used: BTreeMap::new(),
            mismatches: Vec::new(),
        }
    }

    /// The case's name, which every message starts with.
    pub fn case(&self) -> &str {
        &self.case
    }

    /// The number of comparisons made so far.
    pub fn count(&self) -> usize {
        self.count
    }

    /// One value; `torch` is already read as the case's dtype and widened. `category` groups
    /// the comparisons for the report of the tolerance used; `what` names the value in a
    /// mismatch's message (only built on a mismatch).
    pub fn scalar(
        &mut self,
        category: &'static str,
        what: &dyn Fn() -> String,
        ours: f64,
        torch: f64,
    ) {
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
    pub fn samples<T: Real, const R: usize, const B: usize>(
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

    /// A matrix against torch's nested list `[R][C]`, by `(row, column)`.
    pub fn matrix<T: Real, const R: usize, const C: usize>(
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

    /// Tensors by name against a `state_dict`-like map, which must hold exactly their names.
    pub fn named<T: Real>(
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
pub fn assert_shapes<T: Real>(case: &str, ours: &[Named<T>], fixture: &Value) {
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

/// Asserts that the fixture's `train` entry trained with `Adam(lr=lr)`, torch's defaults
/// otherwise, for `steps` steps: what a test that trains with `Adam::new(lr)` for `steps`
/// steps compares with.
pub fn assert_adam_training(case: &str, train: &Value, lr: f64, steps: usize) {
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
    assert_eq!(number(&args["lr"], "lr"), lr, "{case}: lr");
    assert_eq!(train["steps"], steps, "{case}: steps");
}

// ------------------------------------------------------------------------------------------------
// The table.

/// One row of a test's table: a network declared with `network!`.
#[derive(Clone, Copy, Debug)]
pub struct Row {
    /// The network's name.
    pub net: &'static str,
    /// `"float32"` or `"float64"` ([`Dtype::NAME`] of its scalar).
    pub dtype: &'static str,
    /// The layer list as written in the row (`stringify!`), compared without whitespace.
    pub layers: &'static str,
    /// Compares the network with its fixture; returns the number of comparisons it must have
    /// made.
    pub check: fn(&Value, &mut Checker) -> usize,
}

/// A network whose check a test's `table!` macro generates.
pub trait Parity {
    /// Compares the network with `fixture`; returns the number of comparisons expected.
    fn check(fixture: &Value, check: &mut Checker) -> usize;
}

/// The fixtures' name of a scalar type, as torch's dtype: `<f32 as Dtype>::NAME` is
/// `"float32"`.
pub trait Dtype {
    /// torch's name of the dtype.
    const NAME: &'static str;
}

impl Dtype for f32 {
    const NAME: &'static str = "float32";
}

impl Dtype for f64 {
    const NAME: &'static str = "float64";
}

/// What differs between the parity tests: where the fixtures are, what every fixture must
/// state, who writes them, and the tolerances.
#[derive(Clone, Copy, Debug)]
pub struct Suite<'a> {
    /// The folder `tests/fixtures/<dir>`.
    pub dir: &'a str,
    /// Only the fixtures whose name starts with this (`""` for all), where the folder holds
    /// other tests' fixtures too.
    pub prefix: &'a str,
    /// Sizes every fixture must state, `(key, value)`, asserted in this order (`batch`, and
    /// a sequence's `steps`).
    pub sizes: &'a [(&'a str, usize)],
    /// The name every fixture's `loss_fn` must have (`"Mse"`).
    pub loss: &'a str,
    /// The script to rerun when a row has no fixture (`scripts/torch_conv.py`).
    pub script: &'a str,
    /// The tolerances per dtype.
    pub tolerances: Tolerances,
}

/// `layers` without whitespace, so that a fixture's list and `stringify!` (which spaces tokens
/// its own way) compare equal.
fn squash(layers: &str) -> String {
    layers.split_whitespace().collect()
}

/// Runs a parity test: matches every fixture of `suite` with exactly one row of `table` (the
/// same dtype and layer list) and every row with exactly one fixture, asserts each fixture's
/// name, sizes and loss, runs each row's check (printing its number of comparisons and the
/// largest fraction of the tolerance used per category), asserts that number, and fails at the
/// end if any value disagreed with torch, listing them all with the tolerances. Its own
/// assertions report the caller's line.
#[track_caller]
pub fn run_table(table: &[Row], suite: &Suite) {
    // Every fixture has exactly one row and every row exactly one fixture.
    let mut rows: BTreeMap<(String, String), &Row> = BTreeMap::new();
    for row in table {
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
    for name in fixture_names(suite.dir)
        .into_iter()
        .filter(|n| n.starts_with(suite.prefix))
    {
        let fixture = load(suite.dir, &name);
        assert_eq!(fixture["name"], name.as_str(), "{name}: name");
        for &(key, size) in suite.sizes {
            assert_eq!(fixture[key], size, "{name}: {key}");
        }
        assert_eq!(fixture["loss_fn"]["name"], suite.loss, "{name}: loss");
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
    let unmatched_rows: Vec<&str> = table
        .iter()
        .filter(|row| !matched.contains_key(row.net))
        .map(|row| row.net)
        .collect();
    assert!(
        unmatched_fixtures.is_empty() && unmatched_rows.is_empty(),
        "fixtures without a network in the table: {unmatched_fixtures:?}\n\
         networks in the table without a fixture (rerun {}?): {unmatched_rows:?}",
        suite.script
    );
    assert_eq!(matched.len(), table.len(), "every fixture case matched");

    let mut mismatches = Vec::new();
    let mut total = 0;
    for row in table {
        let (name, fixture) = &matched[row.net];
        let mut check = Checker::new(name, suite.tolerances.of(row.dtype));
        let expected = (row.check)(fixture, &mut check);
        println!("{name} ({}): {} comparisons", row.net, check.count);
        // Aligned, with room for the longest category.
        let width = check
            .used
            .keys()
            .map(|c| c.len() + 2)
            .max()
            .unwrap_or(0)
            .max(16);
        for (category, used) in &check.used {
            println!("  {category:<width$} tolerance used {used:.3}");
        }
        assert_eq!(check.count, expected, "{name}: number of comparisons made");
        total += check.count;
        mismatches.extend(check.mismatches);
    }
    let Tolerances {
        f32: (f32_rel, f32_abs),
        f64: (f64_rel, f64_abs),
    } = suite.tolerances;
    assert!(
        mismatches.is_empty(),
        "{} of {total} comparisons disagree with torch (|ours - torch| <= REL |torch| + ABS, \
         f32: REL {f32_rel:e} ABS {f32_abs:e}, f64: REL {f64_rel:e} ABS {f64_abs:e}):\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}

/// `Name: f32 [LAYERS];` rows of a feed-forward parity table: each declares
/// `network! { struct Name: f32 { LAYERS } }`, its [`Parity`] check and its [`Row`], and the
/// macro ends with `const TABLE: &[Row]` for [`run_table`]. The check compares, with the
/// fixture: `IN`, `OUT`, the tensors' names and torch's shapes, `forward_batch` and `forward`
/// of each sample, the `Mse` loss, every gradient by name, and each step's loss and the
/// parameters after `TRAIN_STEPS` steps of `Adam::new(0.01)`; it returns the number of
/// comparisons it must have made.
///
/// Items it takes from the calling file: `nn_runtime::prelude::*` (`network!`, `SMatrix`,
/// `SVector`, `Real`, `Network`, `Mse`, `Adam`) and the constants `BATCH`, `LR` and
/// `TRAIN_STEPS` of the file's fixture script. (tests/conv_torch.rs and tests/norm_torch.rs
/// had the same 81 lines each.)
#[macro_export]
macro_rules! feed_forward_parity_table {
    ($($net:ident : $t:ident [$($layer:tt)*];)*) => {
        $(
            network! {
                struct $net: $t { $($layer)* }
            }

            impl $crate::parity::Parity for $net {
                fn check(fixture: &$crate::__serde_json::Value, check: &mut $crate::parity::Checker) -> usize {
                    let case = check.case().to_string();
                    assert_eq!(fixture["in_features"], $net::IN, "{case}: IN");
                    assert_eq!(fixture["out_features"], $net::OUT, "{case}: OUT");

                    let mut net = $net::zeros();
                    $crate::fixtures::assert_tensor_names(&net, fixture);
                    $crate::parity::assert_shapes(&case, &$crate::fixtures::named_tensors(&net), fixture);
                    $crate::fixtures::set_tensors(&mut net, &fixture["params"], "params");
                    assert_eq!(
                        $crate::fixtures::named_tensors(&net).iter().map(|t| t.values.len()).sum::<usize>(),
                        <$net as Network>::PARAMS,
                        "{case}: PARAMS and the tensors' sizes"
                    );

                    type X = SMatrix<$t, { $net::IN }, BATCH>;
                    type Y = SMatrix<$t, { $net::OUT }, BATCH>;
                    let xs: X = $crate::fixtures::samples(&fixture["xs"], "xs");
                    let ys: Y = $crate::fixtures::samples(&fixture["ys"], "ys");

                    // The batch at once, and each sample alone.
                    let outputs = net.forward_batch(&xs);
                    check.samples("outputs", "outputs", &outputs, &fixture["outputs"]);
                    let torch = $crate::fixtures::samples::<$t, { $net::OUT }, BATCH>(&fixture["outputs"], "outputs");
                    for b in 0..BATCH {
                        let x: SVector<$t, { $net::IN }> = xs.column(b).into_owned();
                        let y = net.forward(&x);
                        for o in 0..$net::OUT {
                            let at = || format!("sample {b} alone: output {o}");
                            check.scalar("forward", &at, y[o].widen(), torch[(o, b)].widen());
                        }
                    }

                    // Loss and gradients.
                    let torch_loss = <$t as Real>::cast($crate::fixtures::number(&fixture["loss"], "loss")).widen();
                    let (loss, grads) = net.gradients(&xs, &ys, &Mse);
                    check.scalar("loss", &|| "loss".into(), loss.widen(), torch_loss);
                    let named = $crate::fixtures::named_gradients(&net, &grads);
                    check.named("gradients", "grads", &named, &fixture["grads"]);

                    // Adam on the same batch.
                    let train = &fixture["train"];
                    $crate::parity::assert_adam_training(&case, train, LR, TRAIN_STEPS);
                    let mut opt = Adam::<$t>::new(0.01);
                    let losses = $crate::fixtures::list(&train["losses"], "train.losses", TRAIN_STEPS);
                    for (step, torch) in losses.iter().enumerate() {
                        let ours = net.train_step(&xs, &ys, &Mse, &mut opt);
                        let torch = <$t as Real>::cast($crate::fixtures::number(torch, "losses")).widen();
                        let at = || format!("step {step} loss");
                        check.scalar("train losses", &at, ours.widen(), torch);
                    }
                    check.named("train params", "train.params", &$crate::fixtures::named_tensors(&net), &train["params"]);

                    let params = <$net as Network>::PARAMS;
                    // outputs by forward_batch and by forward, loss, gradients, step losses,
                    // trained parameters.
                    2 * $net::OUT * BATCH + 1 + params + TRAIN_STEPS + params
                }
            }
        )*

        const TABLE: &[$crate::parity::Row] = &[$(
            $crate::parity::Row {
                net: stringify!($net),
                dtype: <$t as $crate::parity::Dtype>::NAME,
                layers: stringify!($($layer)*),
                check: <$net as $crate::parity::Parity>::check,
            },
        )*];
    };
}
