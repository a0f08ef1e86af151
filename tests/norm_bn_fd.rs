//! Finite-difference checks of the TRAINING-mode gradients of networks with `BatchNorm1d` and
//! `BatchNorm2d`, in `f64`: the three networks of `tests/norm_bn_torch.rs` (on flat features
//! with ReLU after it, after `Unflatten(c, l)` without affine parameters, after a `Conv2d`).
//!
//! For each network, on a batch of 3 and of 6 samples, `gradients` gives the `Mse` loss of the
//! training pass (batch statistics) and the gradient of every parameter (by `state_dict` name,
//! paired through `Network::tensors` by `nn_testkit::modes::parameter_gradients`, which also
//! returns the running statistics as tensors without a gradient). Every scalar of every
//! parameter is perturbed by `+-H` and the loss recomputed by `gradients` on the perturbed
//! network (`gradients(&self)` moves no running statistic, checked), and the central
//! difference compared with the analytic entry, with the tolerances of `tests/gradcheck.rs` as
//! `tests/conv_fd.rs` states them. The batch statistics make every sample's output depend on
//! every other sample's input: a backward pass that treats the mean or the variance as
//! constants, or divides by `n - 1`, is off by far more. The bias in front of a BatchNorm has
//! a gradient of exactly 0, which the check confirms within its absolute tolerance.
//!
//! The running statistics do not enter the training pass: perturbing any element of
//! `running_mean` or `running_var` leaves the training loss bit for bit as it was, while it does
//! move the inference output (`forward_batch`).
//!
//! ReLU has a kink at 0. For the network with a ReLU, a reference training pass written here
//! from the parameters by name (independent of the generated code; its outputs are compared
//! with the ones the loss sees, through `nn_testkit::modes::Capture`) gives every ReLU input;
//! the data are drawn from the first seed for which each is at least [`KINK_MARGIN`] from 0.

use approx::relative_eq;
use nn_runtime::Tensors;
use nn_runtime::prelude::*;
use nn_testkit::fixtures::{Named, element, named_tensors};
use nn_testkit::gradcheck::{H, Report, set_scalar};
use nn_testkit::modes::{Capture, parameter_gradients};
use nn_testkit::rng::SplitMix64;

/// How far a ReLU input must stay from 0.
const KINK_MARGIN: f64 = 1e-4;

/// Seeds tried, from 0, for data that keep [`KINK_MARGIN`].
const SEEDS: u64 = 100;

// ------------------------------------------------------------------------------------------------
// The checker (as tests/conv_fd.rs).

/// Checks every parameter of `net` (the tensors named in `analytic`; the others, the running
/// statistics, must leave `loss` exactly as it is when perturbed).
fn check_params<N: Tensors<f64> + Clone>(
    report: &mut Report,
    net: &N,
    loss: impl Fn(&N) -> f64,
    analytic: &[Named<f64>],
) {
    let at = loss(net);
    let tensors = named_tensors(net);
    let mut probe = net.clone();
    let mut gradients = analytic.iter();
    for (t, tensor) in tensors.iter().enumerate() {
        let grad = analytic.iter().find(|g| g.name == tensor.name);
        for (i, &original) in tensor.values.iter().enumerate() {
            let what = format!("{}{}", tensor.name, element(&tensor.shape, i));
            let (up, down) = (original + H, original - H);
            set_scalar(&mut probe, t, i, up);
            let loss_up = loss(&probe);
            set_scalar(&mut probe, t, i, down);
            let loss_down = loss(&probe);
            set_scalar(&mut probe, t, i, original);
            match grad {
                Some(grad) => {
                    report.entry(what, grad.values[i], up, down, (loss_up, loss_down), at)
                }
                None => assert!(
                    loss_up == at && loss_down == at,
                    "{what}: a running statistic moved the training loss: {loss_up:e}, \
                     {loss_down:e}, {at:e}"
                ),
            }
        }
        if grad.is_some() {
            let next = gradients.next().expect("a gradient for every parameter");
            assert_eq!(next.name, tensor.name, "gradient order");
            assert_eq!(
                next.values.len(),
                tensor.values.len(),
                "{}: size",
                tensor.name
            );
        }
    }
    assert!(
        gradients.next().is_none(),
        "gradients of tensors the network lacks"
    );
    assert_eq!(named_tensors(&probe), tensors, "the probe was restored");
}

/// The value an element of the tensor `name` of `shape` gets in a draw: a BatchNorm's weight
/// (the only one-dimensional `weight` here) around 1, its running variance positive, everything
/// else in `+-0.5`.
fn draw_value(rng: &mut SplitMix64, name: &str, shape: &[usize]) -> f64 {
    if name.ends_with("running_var") {
        rng.uniform(0.5, 2.0)
    } else if name.ends_with(".weight") && shape.len() == 1 {
        rng.uniform(0.5, 1.5)
    } else {
        rng.uniform(-0.5, 0.5)
    }
}

/// The ReLU inputs, and the outputs, of `Linear(4, 6), BatchNorm1d(6), ReLU, Linear(6, 2)` in
/// training mode, from the parameters by name: the reference for [`linear`]'s margin.
fn linear_reference(params: &[Named<f64>], xs: &[Vec<f64>]) -> (Vec<f64>, Vec<Vec<f64>>) {
    let get = |name: &str| &params.iter().find(|t| t.name == name).unwrap().values;
    let (w0, b0, gamma, beta, w3, b3) = (
        get("0.weight"),
        get("0.bias"),
        get("1.weight"),
        get("1.bias"),
        get("3.weight"),
        get("3.bias"),
    );
    // Column-major: element (o, i) of an OUT x IN weight at i * OUT + o.
    let h: Vec<Vec<f64>> = xs
        .iter()
        .map(|x| {
            (0..6)
                .map(|o| b0[o] + (0..4).map(|i| w0[i * 6 + o] * x[i]).sum::<f64>())
                .collect()
        })
        .collect();
    let n = xs.len() as f64;
    let mut relu_inputs = Vec::new();
    let mut normalised = vec![vec![0.0; 6]; xs.len()];
    for f in 0..6 {
        let mean = h.iter().map(|s| s[f]).sum::<f64>() / n;
        let var = h.iter().map(|s| (s[f] - mean).powi(2)).sum::<f64>() / n;
        for (b, s) in h.iter().enumerate() {
            let v = gamma[f] * (s[f] - mean) / (var + 1e-5).sqrt() + beta[f];
            relu_inputs.push(v);
            normalised[b][f] = v.max(0.0);
        }
    }
    let outputs = normalised
        .iter()
        .map(|a| {
            (0..2)
                .map(|o| b3[o] + (0..6).map(|i| w3[i * 2 + o] * a[i]).sum::<f64>())
                .collect()
        })
        .collect();
    (relu_inputs, outputs)
}

// ------------------------------------------------------------------------------------------------
// The networks.

/// Declares a network and its test: `mod name { Net: [LAYERS] reference: R }`, with `R` `true`
/// for the network [`linear_reference`] computes (its ReLU inputs kept off 0).
macro_rules! fd_test {
    (
        $(#[$doc:meta])*
        mod $m:ident { $net:ident: [$($layer:tt)*] reference: $reference:expr $(,)? }
    ) => {
        mod $m {
            use super::*;

            network! {
                $(#[$doc])*
                struct $net: f64 { $($layer)* }
            }

            /// The network (every tensor drawn by [`draw_value`]) and a batch drawn from `seed`:
            /// inputs in `+-1.5`, targets in `+-1`.
            fn draw<const B: usize>(
                seed: u64,
            ) -> ($net, SMatrix<f64, { $net::IN }, B>, SMatrix<f64, { $net::OUT }, B>) {
                let mut rng = SplitMix64::new(seed);
                let mut net = $net::zeros();
                net.visit_mut("", &mut |name, shape, data| {
                    for v in data.iter_mut() {
                        *v = draw_value(&mut rng, name, shape);
                    }
                });
                let xs = rng.matrix(-1.5, 1.5);
                let ys = rng.matrix(-1.0, 1.0);
                (net, xs, ys)
            }

            /// The nearest ReLU input to 0 (infinite without the reference), the reference's
            /// outputs checked against the training-mode outputs the loss sees.
            fn margin<const B: usize>(
                net: &$net,
                xs: &SMatrix<f64, { $net::IN }, B>,
                ys: &SMatrix<f64, { $net::OUT }, B>,
            ) -> f64 {
                if !$reference {
                    return f64::INFINITY;
                }
                let samples: Vec<Vec<f64>> =
                    xs.column_iter().map(|c| c.iter().copied().collect()).collect();
                let (relu, outputs) = linear_reference(&named_tensors(net), &samples);
                let capture = Capture::new(Mse);
                net.gradients(xs, ys, &capture);
                let seen = capture.only();
                for (b, out) in outputs.iter().enumerate() {
                    for (o, &r) in out.iter().enumerate() {
                        let ours = seen.at(o, b);
                        assert!(
                            relative_eq!(ours, r, epsilon = 1e-12, max_relative = 1e-12),
                            "sample {b} output {o}: training pass {ours:e}, reference {r:e}"
                        );
                    }
                }
                assert!(
                    relu.iter().any(|&v| v > 0.0) && relu.iter().any(|&v| v < 0.0),
                    "ReLU inputs of one sign only"
                );
                relu.iter().map(|v| v.abs()).fold(f64::INFINITY, f64::min)
            }

            fn check<const B: usize>() {
                let name = format!("{} B={B}", stringify!($net));
                let seed = (0..SEEDS)
                    .find(|&seed| {
                        let (net, xs, ys) = draw::<B>(seed);
                        margin(&net, &xs, &ys) >= KINK_MARGIN
                    })
                    .unwrap_or_else(|| panic!("{name}: no seed keeps ReLU inputs off 0"));
                let (net, xs, ys) = draw::<B>(seed);
                println!("{name}: seed {seed}, nearest ReLU input {:.2e}", margin(&net, &xs, &ys));

                let loss = |n: &$net| n.gradients(&xs, &ys, &Mse).0;
                let before = named_tensors(&net);
                let (value, grads) = net.gradients(&xs, &ys, &Mse);
                assert_eq!(named_tensors(&net), before, "{name}: gradients moved the state");
                assert_eq!(loss(&net), value, "{name}: the training loss, twice");

                // The running statistics are read by inference alone.
                let (named, buffers) = parameter_gradients(&net, &grads);
                assert!(!buffers.is_empty(), "{name}: no running statistics");
                let mut moved = net.clone();
                moved.visit_mut("", &mut |n, _, data| {
                    if n.ends_with("running_mean") {
                        data.iter_mut().for_each(|v| *v += 0.25);
                    }
                });
                assert!(
                    moved.forward_batch(&xs) != net.forward_batch(&xs),
                    "{name}: the running mean does not reach forward_batch"
                );

                let mut report = Report::default();
                check_params(&mut report, &net, loss, &named);
                report.assert(&format!("{name} (seed {seed})"), <$net as Network>::PARAMS);
            }

            #[test]
            fn training_gradients_match_central_differences() {
                check::<3>();
                check::<6>();
            }
        }
    };
}

fd_test! {
    /// BatchNorm1d on flat features, ReLU after it: 4 -> 6 -> 2.
    mod linear {
        Linear: [Linear(4, 6), BatchNorm1d(6), ReLU, Linear(6, 2)]
        reference: true
    }
}

fd_test! {
    /// BatchNorm1d over (2, 5), without affine parameters, momentum 0.3: 10 -> 2x5 -> 10 -> 3.
    mod unflatten {
        Unflat: [
            Unflatten(2, 5), BatchNorm1d(2, momentum = 0.3, affine = false), Flatten,
            Linear(10, 3)
        ]
        reference: false
    }
}

fd_test! {
    /// BatchNorm2d after a convolution, eps 0.001: 1x6x6 -> 3x4x4 -> 3x1x1 -> 3 -> 2.
    mod conv2d {
        Conv: [
            Unflatten(1, 6, 6), Conv2d(1, 3, 3), BatchNorm2d(3, eps = 0.001), Tanh,
            AdaptiveAvgPool2d(1), Flatten, Linear(3, 2)
        ]
        reference: false
    }
}
