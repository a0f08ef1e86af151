//! PyTorch parity of every activation layer, value and vector-Jacobian product, in `f32` and
//! `f64`, on the fixture `tests/fixtures/activations/activations.json` written by
//! `scripts/torch_activations.py`.
//!
//! Each row of the table below declares `{ Linear(8, 8), ACT }` with `network!`. The fixture
//! holds, per (layer, dtype), a matrix `X` of pre-activation values (the activation's kinks and
//! thresholds exactly, saturation at +-100, +-20, +-10, seeded random values), an upstream
//! gradient `dY`, and torch's `Y = ACT(X)` and `dX`. The probe of `nn_testkit::activations`
//! makes `X` the activation's exact input (`l0.weight = X`, `l0.bias = 0`, identity input), so
//! `forward_batch` gives our `Y` and `grads.l0.weight` under the loss `Probe` our `dX`; a
//! PReLU's slope gradient is `grads.l1.weight`. Every case of the fixture must be matched by a
//! row of the table and every row by a case: none is skipped silently.
//!
//! At a kink torch's derivative is a convention (listed in the script's docstring); the
//! fixture holds X exactly at each kink, so these tests pin torch's conventions too.

use nn_runtime::prelude::*;
use nn_testkit::activation_net;
use nn_testkit::activations::{ActivationNet, Case, N, Probe, load_fixture, position, squash};
use std::collections::BTreeMap;

// ------------------------------------------------------------------------------------------------
// Tolerances: `|ours - torch| <= REL * |torch| + ABS`.

/// Relative tolerance in `f32`: about 84 units in the last place. One activation is a few
/// operations, each rounded once; torch's kernels (vectorised Sleef polynomials) and ours
/// (libm, or the runtime's `fast_tanh` / `fast_exp`, within 8 and 1 units) round differently,
/// by a few units, not more.
const F32_REL: f64 = 1e-5;

/// Absolute floor in `f32`. Where an activation saturates or cancels, its value or derivative
/// is a small difference of terms of order 1, e.g. `1 - y^2` for tanh near `y = +-1`,
/// `x - tanh(x)` for Tanhshrink at small `x`, `0.5 (1 + tanh(..))` for GELU's tanh form far
/// left: each is rounded to the unit in the last place of the terms (`f32::EPSILON` is
/// `1.2e-7` at 1), not of the small result, and two different but equally accurate libm or
/// vectorised implementations of `tanh`, `exp` or `erf` land on different sides of it. Such a
/// value's relative error says nothing; its absolute error is a few `1e-7` (times the upstream
/// gradient's magnitude, for `dX`; `dY` is standard normal here). The floor only decides for
/// values below `ABS / REL = 0.1`; a real mistake (a wrong slope, constant or branch) is orders
/// of magnitude larger. Measured: torch's own `f32` results use at most 0.7 of this tolerance
/// against the exact (float64) values at the same inputs, the worst being
/// GELU(approximate = "tanh")'s `dX` at `x = -5` (torch `-3.03e-6`, exact `-2.33e-6`); the
/// existing `Tanh`, whose `f32` derivative is `1 - y^2` of the runtime's `fast_tanh`, uses 0.4.
const F32_ABS: f64 = 1e-6;

/// Relative tolerance in `f64`: about `4.5e5` units in the last place, the same reasoning.
const F64_REL: f64 = 1e-10;

/// Absolute floor in `f64`, as [`F32_ABS`]: cancellations round at about `2.2e-16` times terms
/// of order 1, so `1e-12` leaves a wide margin and decides only below `1e-2`.
const F64_ABS: f64 = 1e-12;

/// The relative tolerance of `dX` for `layer`. One exception: torch's `Hardsigmoid` gradient
/// multiplies by `one_sixth(1.0f / 6.0f)` (aten's `hardsigmoid_backward`), the `f32` value of
/// 1/6, in every dtype; in `f64` that is 3.0e-8 relative off the exact 1/6 our derived
/// derivative uses (its forward divides by 6 exactly), so the `f64` comparison allows 3.5e-8.
/// `hardsigmoid_gradient_is_exactly_a_sixth` pins ours to the exact value instead.
fn dx_rel(layer: &str, rel: f64) -> f64 {
    if layer == "Hardsigmoid" {
        rel.max(3.5e-8)
    } else {
        rel
    }
}

/// `(REL, ABS)` for the scalar type `T`.
fn tolerance<T: Real>() -> (f64, f64) {
    match T::BYTES {
        4 => (F32_REL, F32_ABS),
        8 => (F64_REL, F64_ABS),
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
// The table: one network per (layer, dtype).

/// One row of the table.
struct Row {
    /// The network's name.
    net: &'static str,
    /// `"float32"` or `"float64"`.
    dtype: &'static str,
    /// The activation as written in the row (`stringify!`), compared without whitespace.
    layer: &'static str,
    /// Compares the network with a case of the fixture.
    check: fn(&Case, &mut Report),
}

/// `Name: f32 [LAYER];` declares `network! { struct Name: f32 { Linear(8, 8), LAYER } }` and
/// its row; `Name: f32 [PReLU] slopes l1;` also names the field of the PReLU's slopes.
macro_rules! table {
    ($($net:ident : $t:ident [$($layer:tt)*] $(slopes $field:ident)?;)*) => {
        $(
            network! {
                struct $net: $t {
                    Linear(8, 8),
                    $($layer)*
                }
            }
            activation_net!($net: $t $(, $field)?);
        )*
        const TABLE: &[Row] = &[$(
            Row {
                net: stringify!($net),
                dtype: dtype_name!($t),
                layer: stringify!($($layer)*),
                check: check::<$net>,
            },
        )*];
    };
}

macro_rules! dtype_name {
    (f32) => {
        "float32"
    };
    (f64) => {
        "float64"
    };
}

table! {
    // name            dtype  layer
    Relu32:            f32    [ReLU];
    Relu64:            f64    [ReLU];
    LeakyRelu32:       f32    [LeakyReLU(0.2)];
    LeakyRelu64:       f64    [LeakyReLU(0.2)];
    Sigmoid32:         f32    [Sigmoid];
    Sigmoid64:         f64    [Sigmoid];
    Tanh32:            f32    [Tanh];
    Tanh64:            f64    [Tanh];
    Elu32:             f32    [ELU];
    Elu64:             f64    [ELU];
    EluAlpha32:        f32    [ELU(alpha = 0.5)];
    EluAlpha64:        f64    [ELU(alpha = 0.5)];
    Selu32:            f32    [SELU];
    Selu64:            f64    [SELU];
    Celu32:            f32    [CELU];
    Celu64:            f64    [CELU];
    CeluAlpha32:       f32    [CELU(alpha = 2.0)];
    CeluAlpha64:       f64    [CELU(alpha = 2.0)];
    Gelu32:            f32    [GELU];
    Gelu64:            f64    [GELU];
    GeluTanh32:        f32    [GELU(approximate = "tanh")];
    GeluTanh64:        f64    [GELU(approximate = "tanh")];
    Silu32:            f32    [SiLU];
    Silu64:            f64    [SiLU];
    Mish32:            f32    [Mish];
    Mish64:            f64    [Mish];
    Softplus32:        f32    [Softplus];
    Softplus64:        f64    [Softplus];
    SoftplusArgs32:    f32    [Softplus(beta = 2.0, threshold = 5.0)];
    SoftplusArgs64:    f64    [Softplus(beta = 2.0, threshold = 5.0)];
    Softsign32:        f32    [Softsign];
    Softsign64:        f64    [Softsign];
    Hardtanh32:        f32    [Hardtanh];
    Hardtanh64:        f64    [Hardtanh];
    HardtanhBounds32:  f32    [Hardtanh(-2.0, 3.0)];
    HardtanhBounds64:  f64    [Hardtanh(-2.0, 3.0)];
    Relu6x32:          f32    [ReLU6];
    Relu6x64:          f64    [ReLU6];
    Hardsigmoid32:     f32    [Hardsigmoid];
    Hardsigmoid64:     f64    [Hardsigmoid];
    Hardswish32:       f32    [Hardswish];
    Hardswish64:       f64    [Hardswish];
    LogSigmoid32:      f32    [LogSigmoid];
    LogSigmoid64:      f64    [LogSigmoid];
    Tanhshrink32:      f32    [Tanhshrink];
    Tanhshrink64:      f64    [Tanhshrink];
    Prelu32:           f32    [PReLU] slopes l1;
    Prelu64:           f64    [PReLU] slopes l1;
    PreluEach32:       f32    [PReLU(8)] slopes l1;
    PreluEach64:       f64    [PReLU(8)] slopes l1;
    PreluInit32:       f32    [PReLU(init = 0.1)] slopes l1;
    PreluInit64:       f64    [PReLU(init = 0.1)] slopes l1;
    Softmax32:         f32    [Softmax(dim = 1)];
    Softmax64:         f64    [Softmax(dim = 1)];
    LogSoftmax32:      f32    [LogSoftmax(dim = 1)];
    LogSoftmax64:      f64    [LogSoftmax(dim = 1)];
}

// ------------------------------------------------------------------------------------------------
// Comparing.

/// Every comparison of one test run, and every mismatch, so that one failure lists them all.
#[derive(Default)]
struct Report {
    count: usize,
    /// Per case: the largest fraction of the tolerance used.
    used: BTreeMap<String, f64>,
    mismatches: Vec<String>,
}

impl Report {
    /// Compares one value: `case` and `what` name it, `allowed` is its tolerance.
    fn compare(
        &mut self,
        case: &str,
        what: &dyn Fn() -> String,
        ours: f64,
        torch: f64,
        allowed: f64,
    ) {
        self.count += 1;
        let diff = (ours - torch).abs();
        let used = self.used.entry(case.to_string()).or_default();
        *used = used.max(diff / allowed);
        // A NaN on either side fails.
        if diff.is_nan() || diff > allowed {
            self.mismatches.push(format!(
                "{case}: {}: ours {ours:e}, torch {torch:e}, |diff| {diff:.3e} > allowed {allowed:.3e}",
                what()
            ));
        }
    }
}

/// Compares `net`'s `Y`, `dX` and (for a PReLU) slope gradient with `case`.
fn check<Net: ActivationNet>(case: &Case, report: &mut Report) {
    let name = case.name();
    let (rel, abs) = tolerance::<Net::T>();
    // torch's values, read as the case's dtype and widened exactly (see fixtures::torch_value).
    let theirs = |v: f64| <Net::T as Real>::cast(v).widen();

    let x = Case::matrix::<Net::T>(&case.x);
    let dy = Case::matrix::<Net::T>(&case.dy);
    let slopes: Option<Vec<Net::T>> = case.prelu.as_ref().map(|p| {
        p.weight
            .iter()
            .map(|&w| <Net::T as Real>::cast(w))
            .collect()
    });
    let mut net = Net::probe(&x, slopes.as_deref());
    assert_eq!(
        net.slopes().len(),
        case.prelu.as_ref().map_or(0, |p| p.weight.len()),
        "{name}: the network's slopes and the fixture's differ in number"
    );
    let y = net.output();
    let vjp = net.vjp(&dy);

    for i in 0..N * N {
        let (feature, sample) = position(i);
        let at = |what: &'static str| {
            move || {
                format!(
                    "{what}[{i}] (feature {feature}, sample {sample}) at x = {:e}",
                    case.x[i]
                )
            }
        };
        let torch_y = theirs(case.y[i]);
        report.compare(
            &name,
            &at("y"),
            y[i].widen(),
            torch_y,
            rel * torch_y.abs() + abs,
        );
        let torch_dx = theirs(case.dx[i]);
        report.compare(
            &name,
            &at("dx"),
            vjp.dx[i].widen(),
            torch_dx,
            dx_rel(&case.layer, rel) * torch_dx.abs() + abs,
        );
    }

    if let Some(prelu) = &case.prelu {
        // Our initial slopes are torch's (`seeded` applies PyTorch's init).
        let mut init = Net::seeded(0);
        for (k, &w) in prelu.init_weight.iter().enumerate() {
            let what = || format!("initial slope [{k}]");
            report.compare(&name, &what, init.slopes()[k].widen(), theirs(w), 0.0);
        }
        // A slope's gradient is a sum over the samples (and, for a single slope, over the
        // features) of `x dy` where `x <= 0`, summed in another order than torch's: its rounding
        // is relative to the sum of the terms' magnitudes, not to the (possibly cancelled) sum.
        let slopes = prelu.weight.len();
        assert_eq!(
            vjp.dslopes.len(),
            slopes,
            "{name}: number of slope gradients"
        );
        for (k, &torch_dw) in prelu.dweight.iter().enumerate() {
            let magnitude: f64 = (0..N * N)
                .filter(|&i| slopes == 1 || position(i).0 == k)
                .filter(|&i| case.x[i] <= 0.0)
                .map(|i| (theirs(case.x[i]) * theirs(case.dy[i])).abs())
                .sum();
            let what = || format!("dweight[{k}] (sum of |x dy| {magnitude:e})");
            let torch_dw = theirs(torch_dw);
            report.compare(
                &name,
                &what,
                vjp.dslopes[k].widen(),
                torch_dw,
                rel * magnitude + abs,
            );
        }
    }
}

// ------------------------------------------------------------------------------------------------
// The test.

#[test]
fn every_activation_matches_torch() {
    let fixture = load_fixture();
    println!(
        "fixture by torch {} ({}), {} cases",
        fixture.torch_version,
        fixture.command,
        fixture.cases.len()
    );

    // Every case has exactly one row and every row exactly one case.
    let key = |dtype: &str, layer: &str| (dtype.to_string(), squash(layer));
    let mut rows: BTreeMap<(String, String), &Row> = BTreeMap::new();
    for row in TABLE {
        let previous = rows.insert(key(row.dtype, row.layer), row);
        assert!(
            previous.is_none(),
            "{} and {} are the same row ({} {})",
            previous.unwrap().net,
            row.net,
            row.layer,
            row.dtype
        );
    }
    let mut unmatched_cases = Vec::new();
    let mut matched = BTreeMap::new();
    for case in &fixture.cases {
        match rows.get(&key(&case.dtype, &case.layer)) {
            Some(row) => {
                let previous = matched.insert(row.net, case.name());
                assert!(
                    previous.is_none(),
                    "{} appears twice in the fixture",
                    case.name()
                );
            }
            None => unmatched_cases.push(case.name()),
        }
    }
    let unmatched_rows: Vec<String> = TABLE
        .iter()
        .filter(|row| !matched.contains_key(row.net))
        .map(|row| format!("{} ({} {})", row.net, row.layer, row.dtype))
        .collect();
    assert!(
        unmatched_cases.is_empty() && unmatched_rows.is_empty(),
        "fixture cases without a network in the table: {unmatched_cases:?}\n\
         networks in the table without a fixture case (rerun scripts/torch_activations.py?): \
         {unmatched_rows:?}"
    );
    assert!(
        TABLE
            .iter()
            .all(|row| [dtype::<f32>(), dtype::<f64>()].contains(&row.dtype)),
        "a row of an unknown dtype"
    );

    let mut report = Report::default();
    let mut expected = 0;
    for case in &fixture.cases {
        let row = rows[&key(&case.dtype, &case.layer)];
        (row.check)(case, &mut report);
        expected += 2 * N * N + case.prelu.as_ref().map_or(0, |p| 2 * p.weight.len());
    }

    for (case, used) in &report.used {
        println!("  {case:<48} tolerance used {used:.3}");
    }
    assert!(
        report.mismatches.is_empty(),
        "{} of {} comparisons disagree with torch (|ours - torch| <= REL |torch| + ABS, \
         f32: REL {F32_REL:e} ABS {F32_ABS:e}, f64: REL {F64_REL:e} ABS {F64_ABS:e}):\n{}",
        report.mismatches.len(),
        report.count,
        report.mismatches.join("\n")
    );
    assert_eq!(report.count, expected, "number of comparisons made");
}

network! {
    struct HardsigmoidProbe: f64 { Linear(1, 1), Hardsigmoid }
}

/// Our `Hardsigmoid` gradient inside (-3, 3) is exactly a sixth of the upstream gradient in
/// `f64` (torch's is the `f32` value of 1/6; see [`dx_rel`]).
#[test]
fn hardsigmoid_gradient_is_exactly_a_sixth() {
    let mut net = HardsigmoidProbe::zeros();
    net.l0.weight[(0, 0)] = 1.0;
    for x in [-2.5, -1.0, 0.0, 0.75, 2.9] {
        let xs = SMatrix::<f64, 1, 1>::new(x);
        let (_, grads) = net.gradients(&xs, &SMatrix::<f64, 1, 1>::new(1.0), &Probe);
        assert_eq!(grads.l0.bias[0], 1.0 / 6.0, "at x = {x}");
    }
}
