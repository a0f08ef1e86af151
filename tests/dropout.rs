//! `Dropout(p)`: its statistics, its modes, its key, and its gradients by finite differences.
//!
//! The semantics under test: in training mode (`gradients`, `train_step`) each element is kept
//! with probability `1 - p` and scaled by `1 / (1 - p)`, or set to 0; the mask comes from a
//! counter-based key the network holds (not torch's generator, so there is no torch fixture),
//! the same key gives the same mask, `gradients(&self)` leaves the key as it is, and
//! `train_step` advances it. In inference mode (`forward`, `forward_batch`) dropout is the
//! identity.
//!
//! The probe: the network `{ Linear(N, N), Dropout(p) }` with `l0.weight` the identity and
//! `l0.bias` zero, on a batch of [`B`] samples of ones, so that the dropout's input is exactly
//! 1 everywhere and its output is the mask times the scale. The training-mode output is read
//! through the loss: `nn_testkit::modes::Capture` wraps `Mse` (target 0) and keeps the output
//! `gradients` passed to it. For p in {0.1, 0.5, 0.9}:
//!
//! - every output element is exactly 0 or `1 / (1 - p)` (to 4 units in the last place), and the
//!   fraction kept, over `N * B` = 4096 elements, is within 4 standard deviations
//!   (`sqrt(p (1 - p) / 4096)`) of `1 - p` (a false failure about once in 16000 runs of a
//!   correct implementation, but the key is fixed, so the outcome is too); the mask is not one
//!   pattern repeated over samples or over features;
//! - the backward pass uses the forward pass's mask: under `Mse` with target 0,
//!   `grads.l0.bias[i] = sum_b 2 / (N B) y[i, b] dy/dz = sum_b 2 / (N B) y[i, b]^2` (with the
//!   input 1, `dy/dz = y`);
//! - `forward_batch` of the ones is exactly the ones;
//! - `gradients` twice, and on a clone, give the same mask; after a `train_step` (with
//!   `Sgd::new(0.0)`, so the weights stay the identity) the mask differs, and each step's mask
//!   differs from the last.
//!
//! Finite differences: `{ Linear(4, 6), Dropout(0.3), Tanh, Linear(6, 2) }` in `f64`, every
//! parameter perturbed by `+-H` and the training-mode loss recomputed by `gradients` (its key
//! does not change, so neither does the mask), against the analytic gradients, with the
//! tolerances of tests/conv_fd.rs.

use approx::relative_eq;
use nn_runtime::Tensors;
use nn_runtime::prelude::*;
use nn_testkit::fixtures::named_gradients;
use nn_testkit::gradcheck::{Report, check_params};
use nn_testkit::modes::{Capture, Seen};
use nn_testkit::rng::SplitMix64;

/// Features of the probe.
const N: usize = 32;

/// Samples of the probe.
const B: usize = 128;

/// How many standard deviations the kept fraction may be from `1 - p`.
const SIGMAS: f64 = 4.0;

/// The scaled value of a kept element may differ from `1 / (1 - p)` by this many units in the
/// last place (it may be computed as `x * (1 / (1 - p))` or `x / (1 - p)`).
const SCALE_ULPS: f64 = 4.0;

/// What the probe needs of a `{ Linear(N, N), Dropout(p) }` network.
trait Probe: Clone + Network<Scalar = f64> {
    /// The drop probability it was declared with.
    const P: f64;
    /// `zeros`, then the identity as `l0.weight`.
    fn identity() -> Self;
    /// The training-mode output on the ones (captured from `gradients`) and `grads.l0.bias`.
    fn train_output(&self) -> (Seen, [f64; N]);
    /// `forward_batch` of the ones.
    fn eval_output(&self) -> SMatrix<f64, N, B>;
    /// One `train_step` with `Sgd::new(0.0)` on the ones (target 0); its captured output.
    fn step(&mut self, opt: &mut Sgd<f64>) -> Seen;
}

macro_rules! probe {
    ($net:ident, $p:literal) => {
        network! {
            struct $net: f64 { Linear(32, 32), Dropout($p) }
        }

        impl Probe for $net {
            const P: f64 = $p;

            fn identity() -> Self {
                let mut net = $net::zeros();
                net.l0.weight = SMatrix::identity();
                net
            }

            fn train_output(&self) -> (Seen, [f64; N]) {
                let capture = Capture::new(Mse);
                let ones = SMatrix::<f64, N, B>::repeat(1.0);
                let (_, grads) = self.gradients(&ones, &SMatrix::zeros(), &capture);
                (capture.only(), grads.l0.bias.into())
            }

            fn eval_output(&self) -> SMatrix<f64, N, B> {
                self.forward_batch(&SMatrix::<f64, N, B>::repeat(1.0))
            }

            fn step(&mut self, opt: &mut Sgd<f64>) -> Seen {
                let capture = Capture::new(Mse);
                let ones = SMatrix::<f64, N, B>::repeat(1.0);
                self.train_step(&ones, &SMatrix::zeros(), &capture, opt);
                capture.only()
            }
        }
    };
}

probe!(Drop10, 0.1);
probe!(Drop50, 0.5);
probe!(Drop90, 0.9);

/// The mask of an output: which elements were kept.
fn mask(seen: &Seen) -> Vec<bool> {
    seen.values.iter().map(|&v| v != 0.0).collect()
}

fn statistics<Net: Probe>() {
    let p = Net::P;
    let scale = 1.0 / (1.0 - p);
    let net = Net::identity();
    let (seen, dbias) = net.train_output();
    assert_eq!((seen.rows, seen.batch), (N, B), "p = {p}: output shape");

    // Each element 0 or the scale.
    for (i, &v) in seen.values.iter().enumerate() {
        let ok = v == 0.0 || (v - scale).abs() <= SCALE_ULPS * f64::EPSILON * scale;
        assert!(
            ok,
            "p = {p}: element {i} is {v:e}, neither 0 nor 1 / (1 - p) = {scale:e}"
        );
    }

    // The kept fraction.
    let n = (N * B) as f64;
    let kept = mask(&seen).iter().filter(|&&k| k).count() as f64;
    let sigma = (p * (1.0 - p) / n).sqrt();
    let off = (kept / n - (1.0 - p)) / sigma;
    println!(
        "p = {p}: kept {kept} of {n} ({:.4}), {off:+.2} standard deviations",
        kept / n
    );
    assert!(
        off.abs() <= SIGMAS,
        "p = {p}: kept fraction {} is {off:.2} standard deviations from {}",
        kept / n,
        1.0 - p
    );

    // Not one pattern repeated over samples, nor over features.
    let column = |b: usize| (0..N).map(|r| seen.at(r, b) != 0.0).collect::<Vec<_>>();
    let row = |r: usize| (0..B).map(|b| seen.at(r, b) != 0.0).collect::<Vec<_>>();
    assert!(
        (1..B).any(|b| column(b) != column(0)),
        "p = {p}: every sample has one mask"
    );
    assert!(
        (1..N).any(|r| row(r) != row(0)),
        "p = {p}: every feature has one mask"
    );

    // The backward pass drops what the forward pass dropped.
    for (i, &d) in dbias.iter().enumerate() {
        let expected: f64 = (0..B).map(|b| 2.0 / n * seen.at(i, b).powi(2)).sum();
        assert!(
            relative_eq!(d, expected, epsilon = 1e-15, max_relative = 1e-12),
            "p = {p}: grads.l0.bias[{i}] {d:e}, from the forward pass's mask {expected:e}"
        );
    }

    // Inference: the identity, exactly.
    assert_eq!(
        net.eval_output(),
        SMatrix::<f64, N, B>::repeat(1.0),
        "p = {p}: forward_batch"
    );
}

fn key<Net: Probe>() {
    let p = Net::P;
    let mut net = Net::identity();
    let (first, _) = net.train_output();
    let (again, _) = net.train_output();
    assert!(first == again, "p = {p}: gradients twice, two masks");
    let (cloned, _) = net.clone().train_output();
    assert!(first == cloned, "p = {p}: a clone, another mask");

    // Training advances the key; the weights stay the identity (lr 0).
    let mut opt = Sgd::new(0.0);
    let mut previous = first.clone();
    for step in 0..3 {
        let seen = net.step(&mut opt);
        let ones = SMatrix::<f64, N, B>::repeat(1.0);
        assert_eq!(net.eval_output(), ones, "lr 0 moved the weights");
        if step > 0 {
            assert!(
                mask(&seen) != mask(&previous),
                "p = {p}: step {step}: the same mask"
            );
        }
        previous = seen;
    }
    let (after, _) = net.train_output();
    assert!(
        mask(&after) != mask(&first),
        "p = {p}: train_step left the mask as it was"
    );
    let (after_again, _) = net.train_output();
    assert!(
        after == after_again,
        "p = {p}: after training, gradients twice, two masks"
    );
}

#[test]
fn kept_fraction_and_scale() {
    statistics::<Drop10>();
    statistics::<Drop50>();
    statistics::<Drop90>();
}

#[test]
fn the_key_fixes_the_mask_and_training_advances_it() {
    key::<Drop10>();
    key::<Drop50>();
    key::<Drop90>();
}

// ------------------------------------------------------------------------------------------------
// Finite differences (the checker as tests/conv_fd.rs).

network! {
    /// Dropout between two layers, a smooth activation after it.
    struct DropFd: f64 { Linear(4, 6), Dropout(0.3), Tanh, Linear(6, 2) }
}

fn finite_differences<const BATCH: usize>(seed: u64) {
    let name = format!("DropFd B={BATCH}");
    let mut rng = SplitMix64::new(seed);
    let mut net = DropFd::zeros();
    net.visit_mut("", &mut |_, _, data| {
        for v in data.iter_mut() {
            *v = rng.uniform(-0.5, 0.5);
        }
    });
    let xs: SMatrix<f64, 4, BATCH> = rng.matrix(-1.5, 1.5);
    let ys: SMatrix<f64, 2, BATCH> = rng.matrix(-1.0, 1.0);

    let loss = |n: &DropFd| n.gradients(&xs, &ys, &Mse).0;
    let (value, grads) = net.gradients(&xs, &ys, &Mse);
    assert_eq!(
        loss(&net),
        value,
        "{name}: the training loss changed between two calls"
    );
    // Dropout is on in training and off in inference (with 30 elements, some are dropped
    // unless the mask is wrong: 0.7^30 = 2e-5).
    let inference = Mse.value(&net.forward_batch(&xs), &ys);
    assert!(
        BATCH < 5 || (value - inference).abs() > 1e-6,
        "{name}: training loss {value:e} equals the inference loss {inference:e}: nothing dropped?"
    );
    let named = named_gradients(&net, &grads);
    let mut report = Report::default();
    check_params(&mut report, &net, loss, &named);
    report.assert(&name, <DropFd as Network>::PARAMS);
}

#[test]
fn gradients_match_central_differences() {
    finite_differences::<1>(1);
    finite_differences::<5>(2);
}
