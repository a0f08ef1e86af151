//! Finite-difference checks, in `f64`, of the backward pass `network!` derives for every
//! activation layer and for activations the user writes: closures as layers and named
//! definitions (`activation Swish(beta = 1.0) = |x| ..;`).
//!
//! Each network is `{ Linear(8, 8), ACT }` measured as in `nn_testkit::activations`: `l0.weight
//! = X`, `l0.bias = 0`, the 8 x 8 identity as input, and the loss `Probe`, `L = sum(dY * Y)`, for
//! a fixed upstream gradient `dY`. Every entry of `l0.weight` (so every `x` of `X`), of `l0.bias`
//! and of a PReLU's slopes is moved by `+-H`, `L` recomputed through `forward_batch`, and the
//! central difference compared with `gradients`. For the user-defined activations, `Y` is also
//! compared with the closure evaluated here.
//!
//! `X` is uniform in `[-8, 8]` (both sides of every kink below, 6 of ReLU6 included), drawn by
//! SplitMix64 with every draw within [`KINK_MARGIN`] of one of the activation's kinks (a point
//! where it, or its derivative, jumps) drawn again: a step of `H` then never straddles a kink.
//! Torch's conventions at the kinks themselves are pinned by `tests/activations_torch.rs`.

use approx::relative_eq;
use nn_runtime::prelude::*;
use nn_testkit::activation_net;
use nn_testkit::activations::{ActivationNet, N, Probe, Square, position};
use nn_testkit::rng::SplitMix64 as Rng;

// ------------------------------------------------------------------------------------------------
// Tolerances, by the reasoning of tests/gradcheck.rs.

/// Step of the central difference `(L(p + H) - L(p - H)) / 2H`. Its truncation error is
/// `H^2 |f'''| |dy| / 6`, below `1e-11` for these activations on `[-8, 8]` (`|f'''|` is a few
/// units at most, e.g. `beta^2` for Softplus(beta = 2)); its rounding error is about
/// `eps S / H`, `S` the sum of the terms `|dy * y|` of `L` (see [`EPSILON`]), which dominates.
/// `1e-6` is near the optimum `eps^(1/3)` and far below [`KINK_MARGIN`].
const H: f64 = 1e-6;

/// Absolute tolerance per unit of `S = max(1, sum |dy * y|)`: `L` is a sum of 64 terms, rounded
/// at about `eps S`, so the difference of two such sums divided by `2H` errs by about
/// `2.2e-16 S / 1e-6 = 2e-10 S`. `1e-8` leaves a margin of about 50x (each case prints the
/// fraction of its tolerance it used) while catching a wrong gradient of `1e-8 S` and up.
const EPSILON: f64 = 1e-8;

/// Relative tolerance, which decides for the larger gradients, as in tests/gradcheck.rs: their
/// error of about `1e-10 S` is a relative error around `1e-8` or less. A wrong derivative (a
/// missing factor, a wrong constant, the wrong branch) is off by far more.
const MAX_RELATIVE: f64 = 1e-6;

/// How far every `x` stays from a kink of its activation.
const KINK_MARGIN: f64 = 1e-3;

/// Range of `X`.
const X_RANGE: (f64, f64) = (-8.0, 8.0);

/// The slopes a PReLU is checked with (the first ones for a PReLU with fewer): of either sign,
/// 0 and above 1 among them, none torch's default.
const SLOPES: [f64; N] = [0.3, -0.5, 0.0, 1.0, 1.5, 0.1, -0.05, 2.0];

// ------------------------------------------------------------------------------------------------
// The table.

/// Checks one network: `(name, kinks, reference, seed)` to the fraction of its tolerance used.
type Check = fn(&str, &[f64], Option<fn(f64) -> f64>, u64) -> f64;

/// One network to check.
struct Row {
    /// The network's name.
    net: &'static str,
    /// The activation as written (`stringify!`).
    layer: &'static str,
    /// Checks it; returns the fraction of its tolerance used.
    check: Check,
    /// Where the activation or its derivative jumps: `X` keeps [`KINK_MARGIN`] away.
    kinks: &'static [f64],
    /// The activation written here, for a user-defined one: `Y` is compared with it.
    reference: Option<fn(f64) -> f64>,
}

/// `Name [LAYER] kinks [..];` declares `network! { struct Name: f64 { Linear(8, 8), LAYER } }`
/// and its row; `Name [PReLU] kinks [0.0] slopes l1;` also names the field of a PReLU's slopes.
macro_rules! rows {
    ($($net:ident [$($layer:tt)*] kinks [$($kink:expr),*] $(slopes $field:ident)?;)*) => {
        $(
            network! {
                struct $net: f64 {
                    Linear(8, 8),
                    $($layer)*
                }
            }
            activation_net!($net: f64 $(, $field)?);
        )*
        /// The builtin activations, one network each.
        const BUILTIN: &[Row] = &[$(
            Row {
                net: stringify!($net),
                layer: stringify!($($layer)*),
                check: check::<$net>,
                kinks: &[$($kink),*],
                reference: None,
            },
        )*];
    };
}

rows! {
    Relu [ReLU] kinks [0.0];
    LeakyRelu [LeakyReLU(0.2)] kinks [0.0];
    Sigmoid [Sigmoid] kinks [];
    Tanh [Tanh] kinks [];
    Elu [ELU] kinks [0.0];
    EluAlpha [ELU(alpha = 0.5)] kinks [0.0];
    Selu [SELU] kinks [0.0];
    Celu [CELU] kinks [0.0];
    CeluAlpha [CELU(alpha = 2.0)] kinks [0.0];
    Gelu [GELU] kinks [];
    GeluTanh [GELU(approximate = "tanh")] kinks [];
    Silu [SiLU] kinks [];
    Mish [Mish] kinks [];
    // The linear branch starts above x = threshold / beta (20, outside X's range; 2.5).
    Softplus [Softplus] kinks [20.0];
    SoftplusArgs [Softplus(beta = 2.0, threshold = 5.0)] kinks [2.5];
    Softsign [Softsign] kinks [0.0];
    Hardtanh [Hardtanh] kinks [-1.0, 1.0];
    HardtanhBounds [Hardtanh(-2.0, 3.0)] kinks [-2.0, 3.0];
    Relu6 [ReLU6] kinks [0.0, 6.0];
    Hardsigmoid [Hardsigmoid] kinks [-3.0, 3.0];
    Hardswish [Hardswish] kinks [-3.0, 3.0];
    LogSigmoid [LogSigmoid] kinks [];
    Tanhshrink [Tanhshrink] kinks [];
    Prelu [PReLU] kinks [0.0] slopes l1;
    PreluEach [PReLU(8)] kinks [0.0] slopes l1;
    PreluInit [PReLU(init = 0.1)] kinks [0.0] slopes l1;
    Softmax [Softmax(dim = 1)] kinks [];
    LogSoftmax [LogSoftmax(dim = 1)] kinks [];
}

// User-defined activations: closures as layers.

network! {
    /// SiLU written as a closure.
    struct ClosureSilu: f64 {
        Linear(8, 8),
        |x| x * sigmoid(x),
    }
}

network! {
    /// Piecewise, continuous with its derivative at 0.5 (0.25 and slope 1 on both sides).
    struct ClosurePiecewise: f64 {
        Linear(8, 8),
        |x| if x > 0.5 { x * x } else { x - 0.25 },
    }
}

network! {
    /// Mish written as a smooth composite.
    struct ClosureMish: f64 {
        Linear(8, 8),
        |x| x * tanh(softplus(x)),
    }
}

network! {
    /// A smooth composite with a method call: `sqrt(x^2 + 1) - 1`.
    struct ClosureSqrt: f64 {
        Linear(8, 8),
        |x| (x * x + 1.0).sqrt() - 1.0,
    }
}

network! {
    /// The other functions of the expression language, smooth on `X`'s range (`ln` and `powf`
    /// of arguments kept above 1).
    struct ClosureFunctions: f64 {
        Linear(8, 8),
        |x| exp(-0.1 * x * x) + ln(1.0 + x * x) + sin(x) * cos(0.5 * x) + erf(0.5 * x)
            + 0.01 * powi(x, 3) + powf(x * x + 1.0, 0.75) + ln_1p(0.5 * x * x)
            + exp_m1(-0.1 * x * x),
    }
}

network! {
    /// The kinked functions of the expression language: `abs` at 0, `min` at 1, `max` at -2.
    struct ClosureKinks: f64 {
        Linear(8, 8),
        |x| abs(x) * 0.5 + min(x, 1.0) + max(x * 0.25, -0.5),
    }
}

// A named activation with a parameter: its default and an explicit value.
network! {
    activation Swish(beta = 1.0) = |x| x * sigmoid(beta * x);

    /// Swish with its default beta.
    struct SwishDefault: f64 {
        Linear(8, 8),
        Swish,
    }

    /// Swish with beta = 2.
    struct SwishTwo: f64 {
        Linear(8, 8),
        Swish(beta = 2.0),
    }
}

activation_net!(ClosureSilu: f64);
activation_net!(ClosurePiecewise: f64);
activation_net!(ClosureMish: f64);
activation_net!(ClosureSqrt: f64);
activation_net!(ClosureFunctions: f64);
activation_net!(ClosureKinks: f64);
activation_net!(SwishDefault: f64);
activation_net!(SwishTwo: f64);

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

fn softplus(x: f64) -> f64 {
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}

/// The user-defined activations, each with the function it writes (but for `erf`, which Rust's
/// standard library lacks).
fn user_defined() -> Vec<Row> {
    vec![
        Row {
            net: "ClosureSilu",
            layer: "|x| x * sigmoid(x)",
            check: check::<ClosureSilu>,
            kinks: &[],
            reference: Some(|x| x * sigmoid(x)),
        },
        Row {
            net: "ClosurePiecewise",
            layer: "|x| if x > 0.5 { x * x } else { x - 0.25 }",
            check: check::<ClosurePiecewise>,
            kinks: &[0.5],
            reference: Some(|x| if x > 0.5 { x * x } else { x - 0.25 }),
        },
        Row {
            net: "ClosureMish",
            layer: "|x| x * tanh(softplus(x))",
            check: check::<ClosureMish>,
            kinks: &[],
            reference: Some(|x| x * softplus(x).tanh()),
        },
        Row {
            net: "ClosureSqrt",
            layer: "|x| (x * x + 1.0).sqrt() - 1.0",
            check: check::<ClosureSqrt>,
            kinks: &[],
            reference: Some(|x| (x * x + 1.0).sqrt() - 1.0),
        },
        Row {
            net: "ClosureFunctions",
            layer: "|x| exp(..) + ln(..) + sin(..) * cos(..) + erf(..) + powi(..) + powf(..) \
                    + ln_1p(..) + exp_m1(..)",
            check: check::<ClosureFunctions>,
            kinks: &[],
            reference: None,
        },
        Row {
            net: "ClosureKinks",
            layer: "|x| abs(x) * 0.5 + min(x, 1.0) + max(x * 0.25, -0.5)",
            check: check::<ClosureKinks>,
            kinks: &[0.0, 1.0, -2.0],
            reference: Some(|x| x.abs() * 0.5 + x.min(1.0) + (x * 0.25).max(-0.5)),
        },
        Row {
            net: "SwishDefault",
            layer: "Swish (activation Swish(beta = 1.0) = |x| x * sigmoid(beta * x))",
            check: check::<SwishDefault>,
            kinks: &[],
            reference: Some(|x| x * sigmoid(x)),
        },
        Row {
            net: "SwishTwo",
            layer: "Swish(beta = 2.0)",
            check: check::<SwishTwo>,
            kinks: &[],
            reference: Some(|x| x * sigmoid(2.0 * x)),
        },
    ]
}

// ------------------------------------------------------------------------------------------------
// The check.

/// `X` uniform in [`X_RANGE`], every entry at least [`KINK_MARGIN`] from every kink (a draw too
/// close is drawn again: still deterministic), then `dY` uniform in `[-1, 1]`.
fn data(kinks: &[f64], seed: u64) -> (Square<f64>, Square<f64>) {
    let mut rng = Rng::new(seed);
    let x = Square::from_fn(|_, _| {
        loop {
            let v = rng.uniform(X_RANGE.0, X_RANGE.1);
            if kinks.iter().all(|k| (v - k).abs() > KINK_MARGIN) {
                break v;
            }
        }
    });
    let dy = rng.matrix(-1.0, 1.0);
    (x, dy)
}

/// Checks `Net`'s gradients of `l0.weight`, `l0.bias` and a PReLU's slopes against central
/// differences of the loss of `forward_batch`, at `X` drawn from `seed` away from `kinks`;
/// panics with every mismatch. Returns the largest fraction of the tolerance used.
fn check<Net: ActivationNet<T = f64>>(
    name: &str,
    kinks: &[f64],
    reference: Option<fn(f64) -> f64>,
    seed: u64,
) -> f64 {
    let (x, dy) = data(kinks, seed);
    for &k in kinks {
        if (X_RANGE.0..X_RANGE.1).contains(&k) {
            assert!(
                x.iter().any(|&v| v < k) && x.iter().any(|&v| v > k),
                "{name}: X lies on one side of the kink at {k}; pick another seed"
            );
        }
    }
    let mut net = Net::probe(&x, None);
    let slopes = net.slopes().len();
    net.slopes().copy_from_slice(&SLOPES[..slopes]);

    let y = net.output();
    if let Some(f) = reference {
        for i in 0..N * N {
            let (feature, sample) = position(i);
            assert!(
                relative_eq!(y[i], f(x[i]), epsilon = 1e-14, max_relative = 1e-12),
                "{name}: y[{i}] (feature {feature}, sample {sample}) at x = {:e}: ours {:e}, \
                 the closure written here {:e}",
                x[i],
                y[i],
                f(x[i])
            );
        }
    }
    let loss = |n: &Net| Probe.value(&n.output(), &dy);
    let vjp = net.vjp(&dy);
    assert!(
        relative_eq!(vjp.loss, loss(&net), epsilon = 1e-14, max_relative = 1e-14),
        "{name}: gradients returned loss {}, the loss of forward_batch is {}",
        vjp.loss,
        loss(&net)
    );
    assert_eq!(
        vjp.dslopes.len(),
        slopes,
        "{name}: number of slope gradients"
    );

    let scale = dy.component_mul(&y).abs().sum().max(1.0);
    let epsilon = EPSILON * scale;
    let mut used: f64 = 0.0;
    let mut checked = 0;
    let mut mismatches = Vec::new();
    // Every scalar of every tensor: `place` reaches it in a network, `analytic` is its gradient.
    let mut check_scalar = |what: String, place: &dyn Fn(&mut Net) -> &mut f64, analytic: f64| {
        let mut probe = net.clone();
        let original = *place(&mut probe);
        // The step actually taken is `up - down` as rounded, not exactly `2 H`.
        let (up, down) = (original + H, original - H);
        *place(&mut probe) = up;
        let loss_up = loss(&probe);
        *place(&mut probe) = down;
        let loss_down = loss(&probe);
        let numeric = (loss_up - loss_down) / (up - down);
        let err = (analytic - numeric).abs();
        checked += 1;
        used = used.max(err / epsilon.max(MAX_RELATIVE * analytic.abs().max(numeric.abs())));
        let ok = analytic.is_finite()
            && relative_eq!(
                analytic,
                numeric,
                epsilon = epsilon,
                max_relative = MAX_RELATIVE
            );
        if !ok {
            mismatches.push(format!(
                "  {what}: analytic {analytic:e}, numeric {numeric:e}, ratio {}",
                analytic / numeric
            ));
        }
    };
    for i in 0..N * N {
        let (feature, sample) = position(i);
        check_scalar(
            format!(
                "dx[{i}] (feature {feature}, sample {sample}) at x = {:e}",
                x[i]
            ),
            &|n: &mut Net| &mut n.input_weight()[i],
            vjp.dx[i],
        );
    }
    for r in 0..N {
        check_scalar(
            format!("l0.bias[{r}]"),
            &|n: &mut Net| &mut n.input_bias()[r],
            vjp.dbias[r],
        );
    }
    for k in 0..slopes {
        check_scalar(
            format!("l1.weight[{k}]"),
            &|n: &mut Net| &mut n.slopes()[k],
            vjp.dslopes[k],
        );
    }
    assert_eq!(checked, N * N + N + slopes, "{name}: scalars checked");
    println!(
        "{name}: L = {:.6}, S = {scale:.3}, {checked} scalars, worst err / tolerance {used:.3}",
        vjp.loss
    );
    assert!(
        mismatches.is_empty(),
        "{name}: {} of {checked} gradient entries disagree with central differences \
         (epsilon {EPSILON:e} x {scale:.3}, max_relative {MAX_RELATIVE:e}):\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
    used
}

fn run(rows: &[Row], first_seed: u64) {
    for (seed, row) in (first_seed..).zip(rows) {
        let name = format!("{} [{}]", row.net, row.layer);
        (row.check)(&name, row.kinks, row.reference, seed);
    }
}

#[test]
fn builtin_activations_match_central_differences() {
    assert_eq!(BUILTIN.len(), 28, "one row per builtin configuration");
    run(BUILTIN, 100);
}

#[test]
fn user_defined_activations_match_central_differences() {
    run(&user_defined(), 200);
}
