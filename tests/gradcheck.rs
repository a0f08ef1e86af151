//! Finite-difference gradient checks of the backward pass `network!` derives at compile time.
//!
//! Every scalar of every parameter of every network below is perturbed by `+-H`, the loss is
//! recomputed through the public `forward_batch`, and the central difference is compared with the
//! analytic gradient `gradients` returns. The networks cover every layer kind (an activation before
//! the first `Linear`, two `Linear`s in a row, stacked activations, an activation after the last
//! `Linear`), every loss, and batches of 1 and 5 samples, all in f64.
//!
//! Kinks (ReLU and LeakyReLU at 0, the hinge at margin 0) have no derivative, so every test
//! asserts that no input of a kinked function lies within [`KINK_MARGIN`] of its kink: a parameter
//! step of `H` moves any pre-activation here by well under `1e-5`, so the finite difference never
//! straddles a kink. A reference forward pass written by hand from the public parameters provides
//! those pre-activations, and is also compared with `forward_batch`.

use approx::relative_eq;
use nn_runtime::prelude::*;

/// Step of the central difference `(L(p + H) - L(p - H)) / 2H`.
///
/// Its truncation error is `H^2 |L'''| / 6`, about `1e-13` for these smooth losses; its rounding
/// error is about `eps |L| / H = 2.2e-16 |L| / 1e-6`, about `2e-10 |L|`, which dominates.
/// `1e-6` is near the optimum `eps^(1/3)` and keeps the step far below [`KINK_MARGIN`].
const H: f64 = 1e-6;

/// Absolute tolerance per unit of loss: an entry passes if it is within
/// `EPSILON * max(1, |L|)` of the finite difference, `L` the loss at the unperturbed point, since
/// the difference's own error grows with `|L|` (see [`H`]). Measured errors stay below `3e-10`
/// per unit of loss, so `1e-8` leaves a margin of about 30x (each test prints the fraction of its
/// tolerance it used) while still catching a wrong gradient of size `1e-8 |L|` and up.
const EPSILON: f64 = 1e-8;

/// Relative tolerance, which decides for the larger gradients: their error of about `1e-10 |L|`
/// is a relative error around `1e-8` or less, so `1e-6` leaves a similar margin. A genuine mistake
/// in a chain-rule step (a missing factor, a wrong slope, a transposed product, a sum where a
/// mean is due) is off by far more than that.
const MAX_RELATIVE: f64 = 1e-6;

/// How far the input of a kinked function must stay from its kink.
const KINK_MARGIN: f64 = 1e-4;

// ------------------------------------------------------------------------------------------------
// The checker.

/// One parameter tensor as the checker sees it: a name, its number of rows (to print a matrix
/// index) and its scalars in nalgebra's column-major order.
type Tensor<'a> = (&'static str, usize, &'a mut [f64]);

/// An analytic gradient entry that disagrees with the finite difference.
#[derive(Debug)]
struct Mismatch {
    /// Which scalar, e.g. `l2.weight[(1, 3)]`.
    param: String,
    analytic: f64,
    numeric: f64,
}

/// The outcome of one gradient check.
#[derive(Debug, Default)]
struct Report {
    /// Number of scalars perturbed.
    checked: usize,
    /// Largest `|analytic - numeric|` seen.
    max_abs_err: f64,
    /// Largest `|analytic - numeric|` as a fraction of what the tolerances allow for that entry,
    /// `max(EPSILON * max(1, |L|), MAX_RELATIVE * max(|analytic|, |numeric|))`: the inverse of
    /// the safety margin left.
    worst_fraction: f64,
    mismatches: Vec<Mismatch>,
}

/// Compares `analytic` (one slice per tensor, in the order `params` lists the tensors) with the
/// central differences of `loss`, perturbing every scalar of every tensor `params` exposes.
///
/// Panics only if `analytic` does not have the shape `params` gives; a disagreement in value is
/// returned as a [`Mismatch`], so callers (and the tests of this checker) can inspect it.
fn check_gradients<N: Clone>(
    net: &N,
    loss: impl Fn(&N) -> f64,
    params: impl for<'a> Fn(&'a mut N) -> Vec<Tensor<'a>>,
    analytic: &[&[f64]],
) -> Report {
    let mut probe = net.clone();
    let shapes: Vec<(&'static str, usize, usize)> = params(&mut probe)
        .iter()
        .map(|(name, rows, values)| (*name, *rows, values.len()))
        .collect();
    assert_eq!(
        shapes.len(),
        analytic.len(),
        "the analytic gradient has {} tensors, the network {}",
        analytic.len(),
        shapes.len()
    );
    let epsilon = EPSILON * loss(net).abs().max(1.0);
    let mut report = Report::default();
    for (t, &(name, rows, len)) in shapes.iter().enumerate() {
        assert_eq!(
            analytic[t].len(),
            len,
            "gradient of {name} has {} scalars, the parameter {len}",
            analytic[t].len()
        );
        for (i, &a) in analytic[t].iter().enumerate() {
            let original = params(&mut probe)[t].2[i];
            // The step actually taken is `up - down` as rounded, not exactly `2 H`.
            let (up, down) = (original + H, original - H);
            params(&mut probe)[t].2[i] = up;
            let loss_up = loss(&probe);
            params(&mut probe)[t].2[i] = down;
            let loss_down = loss(&probe);
            params(&mut probe)[t].2[i] = original;
            let numeric = (loss_up - loss_down) / (up - down);
            let err = (a - numeric).abs();
            report.checked += 1;
            report.max_abs_err = report.max_abs_err.max(err);
            let allowed = epsilon.max(MAX_RELATIVE * a.abs().max(numeric.abs()));
            report.worst_fraction = report.worst_fraction.max(err / allowed);
            let ok = a.is_finite()
                && relative_eq!(a, numeric, epsilon = epsilon, max_relative = MAX_RELATIVE);
            if !ok {
                let param = if len > rows {
                    format!("{name}[({}, {})]", i % rows, i / rows)
                } else {
                    format!("{name}[{i}]")
                };
                report.mismatches.push(Mismatch {
                    param,
                    analytic: a,
                    numeric,
                });
            }
        }
        // The probe must come back unchanged, or later tensors are checked at another point.
        assert_eq!(
            params(&mut probe)[t].2,
            params(&mut net.clone())[t].2,
            "restoring {name}"
        );
    }
    report
}

/// Panics with every mismatch of `report`, labelled by `what`.
fn assert_report(what: &str, report: &Report, expected_scalars: usize) {
    assert_eq!(
        report.checked, expected_scalars,
        "{what}: checked {} scalars, the network has {expected_scalars}",
        report.checked
    );
    let listing: String = report
        .mismatches
        .iter()
        .map(|m| {
            format!(
                "  {}: analytic {:e}, numeric {:e}, ratio {}\n",
                m.param,
                m.analytic,
                m.numeric,
                m.analytic / m.numeric
            )
        })
        .collect();
    assert!(
        report.mismatches.is_empty(),
        "{what}: {} of {} gradient entries disagree with central differences \
         (epsilon {EPSILON:e} x max(1, |loss|), max_relative {MAX_RELATIVE:e}):\n{listing}",
        report.mismatches.len(),
        report.checked,
    );
}

// ------------------------------------------------------------------------------------------------
// The networks under test, and a hand-written reference forward pass for each.

network! {
    /// Smooth activations only: Tanh and Sigmoid between Linears.
    struct Smooth: f64 {
        Linear(3, 5),
        Tanh,
        Linear(5, 4),
        Sigmoid,
        Linear(4, 3),
    }
}

network! {
    /// An activation before the first Linear; LeakyReLU with its default slope and with 0.2.
    struct Leaky: f64 {
        Sigmoid,
        Linear(4, 6),
        LeakyReLU,
        Linear(6, 5),
        LeakyReLU(0.2),
        Linear(5, 3),
    }
}

network! {
    /// ReLU, two Linears in a row, Identity and Tanh stacked, Identity last.
    struct Stacked: f64 {
        Linear(2, 6),
        ReLU,
        Linear(6, 5),
        Linear(5, 4),
        Identity,
        Tanh,
        Linear(4, 3),
        Identity,
    }
}

network! {
    /// Kinked activations before the first Linear, two activations in a row, one after the last
    /// Linear.
    struct Ends: f64 {
        LeakyReLU(0.2),
        ReLU,
        Identity,
        Linear(3, 4),
        Tanh,
        Sigmoid,
        Linear(4, 3),
        Sigmoid,
    }
}

network! {
    /// A single Linear: the chain rule stops right after the loss.
    struct Single: f64 {
        Linear(4, 3),
    }
}

/// `W x + b` for every column of `x`, written independently of the runtime's kernel.
fn linear<const I: usize, const O: usize, const B: usize>(
    layer: &Linear<f64, I, O>,
    x: &SMatrix<f64, I, B>,
) -> SMatrix<f64, O, B> {
    SMatrix::from_fn(|r, b| {
        layer.bias[r]
            + (0..I)
                .map(|c| layer.weight[(r, c)] * x[(c, b)])
                .sum::<f64>()
    })
}

fn leaky<const R: usize, const B: usize>(slope: f64, x: &SMatrix<f64, R, B>) -> SMatrix<f64, R, B> {
    x.map(|v| if v > 0.0 { v } else { slope * v })
}

fn sigmoid<const R: usize, const B: usize>(x: &SMatrix<f64, R, B>) -> SMatrix<f64, R, B> {
    x.map(|v| 1.0 / (1.0 + (-v).exp()))
}

fn tanh<const R: usize, const B: usize>(x: &SMatrix<f64, R, B>) -> SMatrix<f64, R, B> {
    x.map(f64::tanh)
}

/// What the generic checks need from a network with `I` inputs and `O` outputs.
trait CheckedNet<const I: usize, const O: usize>: Clone {
    type Grads;
    /// `Self::PARAMS`.
    const SCALARS: usize;
    /// Every parameter tensor, in declaration order.
    fn param_tensors(net: &mut Self) -> Vec<Tensor<'_>>;
    /// Every gradient tensor, in the same order.
    fn grad_tensors(grads: &Self::Grads) -> Vec<&[f64]>;
    fn forward<const B: usize>(&self, xs: &SMatrix<f64, I, B>) -> SMatrix<f64, O, B>;
    fn gradients<L: Loss<f64>, const B: usize>(
        &self,
        xs: &SMatrix<f64, I, B>,
        ys: &SMatrix<f64, O, B>,
        loss: &L,
    ) -> (f64, Self::Grads);
    /// The output computed by hand, and every value fed to a ReLU or LeakyReLU.
    fn reference<const B: usize>(&self, xs: &SMatrix<f64, I, B>) -> (SMatrix<f64, O, B>, Vec<f64>);
}

/// Implements [`CheckedNet`]'s plumbing for a generated network; `reference` is written by hand.
macro_rules! checked_net {
    ($net:ident, $grads:ident, [$($field:ident),*], |$this:ident, $xs:ident| $reference:block) => {
        impl CheckedNet<{ $net::IN }, { $net::OUT }> for $net {
            type Grads = $grads;
            const SCALARS: usize = $net::PARAMS;
            fn param_tensors(net: &mut Self) -> Vec<Tensor<'_>> {
                vec![$(
                    (concat!(stringify!($field), ".weight"), net.$field.weight.nrows(),
                        net.$field.weight.as_mut_slice()),
                    (concat!(stringify!($field), ".bias"), net.$field.bias.nrows(),
                        net.$field.bias.as_mut_slice()),
                )*]
            }
            fn grad_tensors(grads: &$grads) -> Vec<&[f64]> {
                vec![$(grads.$field.weight.as_slice(), grads.$field.bias.as_slice(),)*]
            }
            fn forward<const B: usize>(
                &self,
                xs: &SMatrix<f64, { $net::IN }, B>,
            ) -> SMatrix<f64, { $net::OUT }, B> {
                self.forward_batch(xs)
            }
            fn gradients<L: Loss<f64>, const B: usize>(
                &self,
                xs: &SMatrix<f64, { $net::IN }, B>,
                ys: &SMatrix<f64, { $net::OUT }, B>,
                loss: &L,
            ) -> (f64, $grads) {
                $net::gradients(self, xs, ys, loss)
            }
            fn reference<const B: usize>(
                &self,
                xs: &SMatrix<f64, { $net::IN }, B>,
            ) -> (SMatrix<f64, { $net::OUT }, B>, Vec<f64>) {
                let ($this, $xs) = (self, xs);
                $reference
            }
        }
    };
}

checked_net!(Smooth, SmoothGrads, [l0, l2, l4], |net, xs| {
    let h = sigmoid(&linear(&net.l2, &tanh(&linear(&net.l0, xs))));
    (linear(&net.l4, &h), Vec::new())
});

checked_net!(Leaky, LeakyGrads, [l1, l3, l5], |net, xs| {
    let z1 = linear(&net.l1, &sigmoid(xs));
    let z3 = linear(&net.l3, &leaky(0.01, &z1));
    let out = linear(&net.l5, &leaky(0.2, &z3));
    (out, z1.iter().chain(z3.iter()).copied().collect())
});

checked_net!(Stacked, StackedGrads, [l0, l2, l3, l6], |net, xs| {
    let z0 = linear(&net.l0, xs);
    let h = linear(&net.l3, &linear(&net.l2, &leaky(0.0, &z0)));
    (linear(&net.l6, &tanh(&h)), z0.iter().copied().collect())
});

checked_net!(Ends, EndsGrads, [l3, l6], |net, xs| {
    // The kinks before the first Linear see only the fixed input, which no step moves; they
    // are still kept away from 0 so that both branches are well defined.
    let leaked = leaky(0.2, xs);
    let h = sigmoid(&tanh(&linear(&net.l3, &leaky(0.0, &leaked))));
    let kinks = xs.iter().chain(leaked.iter()).copied().collect();
    (sigmoid(&linear(&net.l6, &h)), kinks)
});

checked_net!(Single, SingleGrads, [l0], |net, xs| {
    (linear(&net.l0, xs), Vec::new())
});

// ------------------------------------------------------------------------------------------------
// Data.

// SplitMix64: a tiny, fixed generator, so the test data never changes.
use nn_testkit::rng::SplitMix64 as Rng;

/// Asserts that no value lies within [`KINK_MARGIN`] of `kink`.
fn assert_away_from(what: &str, kink: f64, values: impl IntoIterator<Item = f64>) {
    for v in values {
        assert!(
            (v - kink).abs() > KINK_MARGIN,
            "{what}: {v} is within {KINK_MARGIN} of the kink at {kink}; pick another seed"
        );
    }
}

// ------------------------------------------------------------------------------------------------
// The checks.

/// Checks `net.gradients(xs, ys, loss)` against central differences of the loss of
/// `forward_batch`, after checking that the loss value it returns is that loss.
fn check_loss<N, L, const I: usize, const O: usize, const B: usize>(
    what: &str,
    net: &N,
    xs: &SMatrix<f64, I, B>,
    ys: &SMatrix<f64, O, B>,
    loss: &L,
) -> Report
where
    N: CheckedNet<I, O>,
    L: Loss<f64>,
{
    let (value, grads) = net.gradients(xs, ys, loss);
    let expected = loss.value(&net.forward(xs), ys);
    assert!(
        relative_eq!(value, expected, epsilon = 1e-14, max_relative = 1e-14),
        "{what}: gradients returned loss {value}, the loss of forward_batch is {expected}"
    );
    let report = check_gradients(
        net,
        |n| loss.value(&n.forward(xs), ys),
        N::param_tensors,
        &N::grad_tensors(&grads),
    );
    println!(
        "{what}: loss {value:.6}, {} scalars, max abs err {:.2e}, worst err / tolerance {:.3}",
        report.checked, report.max_abs_err, report.worst_fraction
    );
    assert_report(what, &report, N::SCALARS);
    report
}

/// Checks `net` on inputs uniform in `[-1, 1]` with every loss: MSE, cross-entropy with one-hot
/// and with soft targets, BCE with logits with targets in `[0, 1]`, and hinge with `+-1` targets
/// (where the hinge's inactive side is reachable, `expect_inactive_hinge` asks that both sides be
/// exercised).
fn check_every_loss<N, const I: usize, const O: usize, const B: usize>(
    name: &str,
    net: &N,
    data_seed: u64,
    expect_inactive_hinge: bool,
) where
    N: CheckedNet<I, O>,
{
    let mut rng = Rng::new(data_seed);
    let xs: SMatrix<f64, I, B> = rng.matrix(-1.0, 1.0);

    // The reference pass agrees with forward_batch, and keeps every kink at a distance.
    let (reference, kinked) = net.reference(&xs);
    let out = net.forward(&xs);
    assert!(
        relative_eq!(out, reference, epsilon = 1e-12, max_relative = 1e-12),
        "{name}: forward_batch {out} differs from the reference forward pass {reference}"
    );
    assert_away_from(name, 0.0, kinked.iter().copied());
    if !kinked.is_empty() {
        // Both sides of the kink are exercised, so both branches of the derivative are checked.
        assert!(kinked.iter().any(|&v| v > 0.0) && kinked.iter().any(|&v| v < 0.0));
    }

    let what = |loss: &str| format!("{name} B={B} {loss}");

    let ys: SMatrix<f64, O, B> = rng.matrix(-1.0, 1.0);
    check_loss(&what("Mse"), net, &xs, &ys, &Mse);

    let labels: [usize; B] = std::array::from_fn(|_| rng.below(O));
    let one_hot: SMatrix<f64, O, B> = one_hot(&labels).expect("labels below O");
    check_loss(
        &what("CrossEntropy one-hot"),
        net,
        &xs,
        &one_hot,
        &CrossEntropy,
    );

    let mut soft: SMatrix<f64, O, B> = rng.matrix(0.05, 1.0);
    for mut column in soft.column_iter_mut() {
        let sum = column.sum();
        column /= sum;
    }
    check_loss(&what("CrossEntropy soft"), net, &xs, &soft, &CrossEntropy);

    // Targets anywhere in [0, 1], the ends included.
    let mut probs: SMatrix<f64, O, B> = rng.matrix(0.0, 1.0);
    probs[0] = 0.0;
    if O * B > 1 {
        probs[1] = 1.0;
    }
    check_loss(&what("BceWithLogits"), net, &xs, &probs, &BceWithLogits);

    // Hinge: the target agrees in sign with the output for even entries (margin 1 - |y|, which is
    // negative where |y| > 1) and disagrees for odd ones (margin 1 + |y|).
    let signs: SMatrix<f64, O, B> = SMatrix::from_fn(|r, b| {
        let y = out[(r, b)];
        let agree = if y > 0.0 { 1.0 } else { -1.0 };
        if (r + b) % 2 == 0 { agree } else { -agree }
    });
    let margins: Vec<f64> = out
        .zip_map(&signs, |y, t| 1.0 - y * t)
        .iter()
        .copied()
        .collect();
    assert_away_from(&what("Hinge margin"), 0.0, margins.iter().copied());
    assert!(margins.iter().any(|&m| m > 0.0));
    if expect_inactive_hinge {
        assert!(
            margins.iter().any(|&m| m < 0.0),
            "{name}: no output has |y| > 1, the hinge's flat side is not exercised: {out}"
        );
    }
    check_loss(&what("Hinge"), net, &xs, &signs, &Hinge);
}

/// Multiplies the last layer's weight and bias, so that some outputs exceed 1 in magnitude and
/// the hinge's flat side is reached.
fn widen<const R: usize, const C: usize>(layer: &mut Linear<f64, C, R>, factor: f64) {
    layer.weight *= factor;
    layer.bias *= factor;
}

#[test]
fn smooth_tanh_sigmoid() {
    let net = Smooth::seeded(1);
    check_every_loss::<_, 3, 3, 1>("Smooth", &net, 10, false);
    check_every_loss::<_, 3, 3, 5>("Smooth", &net, 11, false);
    let mut wide = net.clone();
    widen(&mut wide.l4, 6.0);
    check_every_loss::<_, 3, 3, 5>("Smooth widened", &wide, 12, true);
}

#[test]
fn leaky_relu_default_and_explicit_slope_after_an_input_activation() {
    let net = Leaky::seeded(2);
    check_every_loss::<_, 4, 3, 1>("Leaky", &net, 20, false);
    check_every_loss::<_, 4, 3, 5>("Leaky", &net, 21, false);
    let mut wide = net.clone();
    widen(&mut wide.l5, 8.0);
    check_every_loss::<_, 4, 3, 5>("Leaky widened", &wide, 22, true);
}

#[test]
fn relu_linear_linear_identity_tanh() {
    let net = Stacked::seeded(3);
    check_every_loss::<_, 2, 3, 1>("Stacked", &net, 30, false);
    check_every_loss::<_, 2, 3, 5>("Stacked", &net, 31, false);
    let mut wide = net.clone();
    widen(&mut wide.l6, 8.0);
    check_every_loss::<_, 2, 3, 5>("Stacked widened", &wide, 32, true);
}

#[test]
fn activations_before_the_first_and_after_the_last_linear() {
    // The output is a sigmoid, in (0, 1): the hinge's flat side cannot be reached.
    let net = Ends::seeded(4);
    check_every_loss::<_, 3, 3, 1>("Ends", &net, 40, false);
    check_every_loss::<_, 3, 3, 5>("Ends", &net, 41, false);
}

#[test]
fn single_linear() {
    let net = Single::seeded(5);
    check_every_loss::<_, 4, 3, 1>("Single", &net, 50, false);
    check_every_loss::<_, 4, 3, 5>("Single", &net, 51, false);
    let mut wide = net.clone();
    widen(&mut wide.l0, 4.0);
    check_every_loss::<_, 4, 3, 5>("Single widened", &wide, 52, true);
}

/// The losses on their own, with the output matrix as the "network": logits far from 0 (where an
/// unstable softmax or log(1 + e^x) would overflow), and the hinge on both sides of its kink.
#[test]
fn losses_alone_including_large_logits() {
    fn check<L: Loss<f64>>(
        what: &str,
        loss: &L,
        out: &SMatrix<f64, 3, 4>,
        target: &SMatrix<f64, 3, 4>,
    ) {
        let (value, grad) = loss.value_and_grad(out, target);
        assert!(value.is_finite(), "{what}: loss {value}");
        assert_eq!(
            value,
            loss.value(out, target),
            "{what}: value and value_and_grad differ"
        );
        let report = check_gradients(
            out,
            |o| loss.value(o, target),
            |o| vec![("output", 3, o.as_mut_slice())],
            &[grad.as_slice()],
        );
        println!(
            "{what}: loss {value:.6}, max abs err {:.2e}, worst err / tolerance {:.3}",
            report.max_abs_err, report.worst_fraction
        );
        assert_report(what, &report, 12);
    }

    let mut rng = Rng::new(60);
    let small: SMatrix<f64, 3, 4> = rng.matrix(-2.0, 2.0);
    // Logits of magnitude up to 60 in each column, with different gaps between them.
    let large = SMatrix::<f64, 3, 4>::from_columns(&[
        SVector::from([60.0, 58.5, -40.0]),
        SVector::from([-55.0, -59.0, -57.5]),
        SVector::from([45.0, -45.0, 44.0]),
        SVector::from([0.5, 50.0, -50.0]),
    ]);
    let real: SMatrix<f64, 3, 4> = rng.matrix(-1.0, 1.0);
    let hard: SMatrix<f64, 3, 4> = one_hot(&[0, 2, 1, 1]).unwrap();
    let mut soft: SMatrix<f64, 3, 4> = rng.matrix(0.05, 1.0);
    for mut column in soft.column_iter_mut() {
        let sum = column.sum();
        column /= sum;
    }
    let probs: SMatrix<f64, 3, 4> = rng.matrix(0.0, 1.0);
    let signs: SMatrix<f64, 3, 4> =
        SMatrix::from_fn(|r, b| if (r * 3 + b) % 2 == 0 { 1.0 } else { -1.0 });

    for (name, out) in [("small", &small), ("large", &large)] {
        check(&format!("Mse {name}"), &Mse, out, &real);
        check(
            &format!("CrossEntropy one-hot {name}"),
            &CrossEntropy,
            out,
            &hard,
        );
        check(
            &format!("CrossEntropy soft {name}"),
            &CrossEntropy,
            out,
            &soft,
        );
        check(
            &format!("BceWithLogits {name}"),
            &BceWithLogits,
            out,
            &probs,
        );
        let margins = out.zip_map(&signs, |y, t| 1.0 - y * t);
        assert_away_from(name, 0.0, margins.iter().copied());
        check(&format!("Hinge {name}"), &Hinge, out, &signs);
    }
    // Both sides of the hinge occur above.
    let margins = large.zip_map(&signs, |y, t| 1.0 - y * t);
    assert!(margins.iter().any(|&m| m > 0.0) && margins.iter().any(|&m| m < 0.0));
}

/// The checker itself: it passes the true gradient and reports a wrong one, naming the entry.
#[test]
fn checker_catches_wrong_gradients() {
    let net = Stacked::seeded(3);
    let mut rng = Rng::new(70);
    let xs: SMatrix<f64, 2, 5> = rng.matrix(-1.0, 1.0);
    let ys: SMatrix<f64, 3, 5> = rng.matrix(-1.0, 1.0);
    assert_away_from("checker", 0.0, net.reference(&xs).1);
    let loss = |n: &Stacked| Mse.value(&n.forward_batch(&xs), &ys);
    let (_, grads) = net.gradients(&xs, &ys, &Mse);

    let right = check_gradients(
        &net,
        loss,
        Stacked::param_tensors,
        &Stacked::grad_tensors(&grads),
    );
    assert_eq!(right.checked, Stacked::PARAMS);
    assert!(right.mismatches.is_empty(), "{right:#?}");

    // The whole gradient 1% too large: the loss is below 1, so an entry is caught exactly when
    // 1% of it exceeds EPSILON, i.e. when it is above about 1e-6.
    assert!(loss(&net) < 1.0);
    let scaled: Vec<Vec<f64>> = Stacked::grad_tensors(&grads)
        .iter()
        .map(|t| t.iter().map(|g| g * 1.01).collect())
        .collect();
    let scaled: Vec<&[f64]> = scaled.iter().map(Vec::as_slice).collect();
    let above = |bound: f64| {
        Stacked::grad_tensors(&grads)
            .iter()
            .flat_map(|t| t.iter())
            .filter(|g| g.abs() > bound)
            .count()
    };
    assert!(
        above(2e-6) > Stacked::PARAMS / 2,
        "too few large gradients to test with"
    );
    let report = check_gradients(&net, loss, Stacked::param_tensors, &scaled);
    let caught = report.mismatches.len();
    assert!(
        (above(2e-6)..=above(0.5e-6)).contains(&caught),
        "{report:#?}"
    );

    // One entry off by 1e-5 (relative error far above MAX_RELATIVE): exactly that one is named.
    let mut one_off = grads.clone();
    one_off.l2.weight[(1, 3)] += 1e-5;
    let report = check_gradients(
        &net,
        loss,
        Stacked::param_tensors,
        &Stacked::grad_tensors(&one_off),
    );
    assert_eq!(report.mismatches.len(), 1, "{report:#?}");
    assert_eq!(report.mismatches[0].param, "l2.weight[(1, 3)]");
    assert_eq!(report.mismatches[0].analytic, one_off.l2.weight[(1, 3)]);

    // A plausible bug: the gradient of the first sample only, instead of the batch mean.
    let first = net
        .gradients(
            &xs.fixed_columns::<1>(0).into_owned(),
            &ys.fixed_columns::<1>(0).into_owned(),
            &Mse,
        )
        .1;
    let report = check_gradients(
        &net,
        loss,
        Stacked::param_tensors,
        &Stacked::grad_tensors(&first),
    );
    assert!(report.mismatches.len() > Stacked::PARAMS / 2, "{report:#?}");

    // A NaN is never accepted.
    let mut nan = grads;
    nan.l6.bias[0] = f64::NAN;
    let report = check_gradients(
        &net,
        loss,
        Stacked::param_tensors,
        &Stacked::grad_tensors(&nan),
    );
    assert_eq!(report.mismatches.len(), 1, "{report:#?}");
    assert_eq!(report.mismatches[0].param, "l6.bias[0]");
}
