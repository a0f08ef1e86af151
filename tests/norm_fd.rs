//! Finite-difference checks of the gradients of networks with `LayerNorm` (torch's
//! `nn.LayerNorm` over the last axis of each sample), in `f64`.
//!
//! For each network below (the four of `tests/norm_torch.rs`: torch's defaults on flat
//! features, no affine parameters with another `eps` and a ReLU after, the last axis of shaped
//! samples in six groups of four, a weight without a bias), `gradients` gives, on a batch of 1
//! and of 3 samples, the `Mse` loss and the gradient of every parameter. Every scalar of every
//! parameter tensor (each LayerNorm's weight and bias where it has them, each `Linear`'s, reached
//! by `state_dict` name through `Tensors`; gradients through `Network::tensors`, paired by
//! `nn_testkit::fixtures::named_gradients`) is perturbed by `+-H`, the loss recomputed through
//! the public `forward_batch`, and the central difference compared with the analytic entry. The
//! gradient of a `Linear` before a LayerNorm checks the LayerNorm's input gradient on the way.
//!
//! The tolerances are those of `tests/gradcheck.rs`, for the same reasons: the step
//! `H = 1e-6` makes the central difference's truncation error `H^2 |L'''| / 6` negligible (the
//! loss is piecewise smooth: products, `tanh`, means, a square root away from zero), its
//! rounding error is about `eps |L| / H = 2e-10 |L|`; an entry passes within
//! `EPSILON * max(1, |L|)` absolutely or `MAX_RELATIVE` relatively. A group read at the wrong
//! offset, a variance divided by `G - 1`, a missing term of the input gradient or a weight
//! applied to the wrong feature is off by far more.
//!
//! ReLU has a kink at 0. A reference forward pass written here from the parameters by name
//! ([`reference`], independent of the generated code and of the runtime's kernel; its outputs
//! are compared with `forward_batch`'s) lists every ReLU input; the data are drawn from a seed
//! for which every ReLU input lies at least [`KINK_MARGIN`] from 0, so no difference straddles
//! the kink. The test searches seeds from 0 deterministically, as `tests/conv_fd.rs` does, and
//! fails if none of the first 100 will do, rather than skipping entries.

use approx::relative_eq;
use nn_runtime::Tensors;
use nn_runtime::prelude::*;
use nn_testkit::fixtures::{Named, named_gradients, named_tensors};
use nn_testkit::gradcheck::{Report, check_params};
use nn_testkit::rng::SplitMix64;

/// How far a ReLU input must stay from 0.
const KINK_MARGIN: f64 = 1e-4;

/// Seeds tried, from 0, for data that keep [`KINK_MARGIN`].
const SEEDS: u64 = 100;

// ------------------------------------------------------------------------------------------------
// The checker (as tests/sequence_fd.rs).

// ------------------------------------------------------------------------------------------------
// The reference forward pass.

/// One layer as the reference computes it, on a sample's flat features (channel first and
/// row-major when shaped, so a LayerNorm's groups are runs of consecutive features).
#[derive(Clone, Copy, Debug)]
enum Op {
    /// torch's `LayerNorm(g, eps, elementwise_affine = affine, bias)` over the last axis:
    /// parameters `{position}.weight` and `{position}.bias` (`[g]`), as it has them.
    LayerNorm {
        position: usize,
        g: usize,
        eps: f64,
        affine: bool,
        bias: bool,
    },
    Relu,
    Tanh,
    /// `{position}.weight` `[out, in]`, `{position}.bias`.
    Linear {
        position: usize,
        inp: usize,
        out: usize,
    },
}

/// What the reference saw on its way: every ReLU input.
#[derive(Debug, Default)]
struct Kinks {
    relu: Vec<f64>,
}

impl Kinks {
    /// The smallest distance from the kink (infinite if there is none).
    fn distance(&self) -> f64 {
        self.relu
            .iter()
            .map(|v| v.abs())
            .fold(f64::INFINITY, f64::min)
    }
}

/// A tensor by `state_dict` name, its shape checked.
fn tensor<'a>(params: &'a [Named<f64>], name: &str, shape: &[usize]) -> &'a Named<f64> {
    let t = params
        .iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("no tensor {name}"));
    assert_eq!(t.shape, shape, "{name}: shape");
    t
}

/// The `state_dict` names the layers' parameters must have, in order.
fn param_names(ops: &[Op]) -> Vec<String> {
    let mut names = Vec::new();
    for op in ops {
        match *op {
            Op::LayerNorm {
                position,
                affine: true,
                bias,
                ..
            } => {
                names.push(format!("{position}.weight"));
                if bias {
                    names.push(format!("{position}.bias"));
                }
            }
            Op::Linear { position, .. } => {
                names.push(format!("{position}.weight"));
                names.push(format!("{position}.bias"));
            }
            _ => {}
        }
    }
    names
}

/// One sample's output through `ops` from its flat features `x`, computed directly from the
/// definitions with the parameters by name (column-major, as `Tensors` stores them: element
/// `[o][i]` of a `Linear` weight of `OUT` rows at `i * OUT + o`).
fn reference(ops: &[Op], params: &[Named<f64>], x: &[f64], kinks: &mut Kinks) -> Vec<f64> {
    let mut s = x.to_vec();
    for &op in ops {
        s = match op {
            Op::LayerNorm {
                position,
                g,
                eps,
                affine,
                bias,
            } => {
                assert_eq!(s.len() % g, 0, "layer norm {position}: groups of {g}");
                let weight = affine.then(|| tensor(params, &format!("{position}.weight"), &[g]));
                let b = (affine && bias).then(|| tensor(params, &format!("{position}.bias"), &[g]));
                let mut out = Vec::with_capacity(s.len());
                for group in s.chunks(g) {
                    // The biased variance, as torch.
                    let mean = group.iter().sum::<f64>() / g as f64;
                    let var = group.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / g as f64;
                    for (k, v) in group.iter().enumerate() {
                        let normalised = (v - mean) / (var + eps).sqrt();
                        out.push(
                            normalised * weight.map_or(1.0, |w| w.values[k])
                                + b.map_or(0.0, |b| b.values[k]),
                        );
                    }
                }
                out
            }
            Op::Relu => {
                kinks.relu.extend_from_slice(&s);
                s.iter().map(|&v| v.max(0.0)).collect()
            }
            Op::Tanh => s.iter().map(|&v| v.tanh()).collect(),
            Op::Linear { position, inp, out } => {
                assert_eq!(s.len(), inp, "linear {position}: features");
                let weight = tensor(params, &format!("{position}.weight"), &[out, inp]);
                let bias = tensor(params, &format!("{position}.bias"), &[out]);
                (0..out)
                    .map(|o| {
                        bias.values[o]
                            + (0..inp)
                                .map(|i| weight.values[i * out + o] * s[i])
                                .sum::<f64>()
                    })
                    .collect()
            }
        };
    }
    s
}

/// torch's `LayerNorm(g)` at `position`: `eps = 1e-5`, weight and bias.
const fn layer_norm(position: usize, g: usize) -> Op {
    Op::LayerNorm {
        position,
        g,
        eps: 1e-5,
        affine: true,
        bias: true,
    }
}

// ------------------------------------------------------------------------------------------------
// The networks.

/// Declares a network and its test: `mod name { Net: [LAYERS] ops: [REFERENCE OPS] }`, the ops
/// the same layers as the reference computes them (positions as `nn.Sequential` numbers the
/// layers; `Unflatten` and `Flatten` leave a sample's flat features as they are, so they have
/// no op).
macro_rules! fd_test {
    (
        $(#[$doc:meta])*
        mod $m:ident {
            $net:ident: [$($layer:tt)*]
            ops: [$($op:expr),+ $(,)?] $(,)?
        }
    ) => {
        mod $m {
            use super::*;

            network! {
                $(#[$doc])*
                struct $net: f64 { $($layer)* }
            }

            const OPS: &[Op] = &[$($op),+];

            /// The network and a batch drawn from `seed`: parameters uniform in `+-0.5`,
            /// inputs in `+-1.5`, targets in `+-1`.
            fn draw<const B: usize>(
                seed: u64,
            ) -> ($net, SMatrix<f64, { $net::IN }, B>, SMatrix<f64, { $net::OUT }, B>) {
                let mut rng = SplitMix64::new(seed);
                let mut net = $net::zeros();
                net.visit_mut("", &mut |_, _, data| {
                    for v in data.iter_mut() {
                        *v = rng.uniform(-0.5, 0.5);
                    }
                });
                let xs = rng.matrix(-1.5, 1.5);
                let ys = rng.matrix(-1.0, 1.0);
                (net, xs, ys)
            }

            /// The reference's outputs (checked against `forward_batch`) and what it saw.
            fn kinks<const B: usize>(
                net: &$net,
                xs: &SMatrix<f64, { $net::IN }, B>,
            ) -> Kinks {
                let params = named_tensors(net);
                let mut kinks = Kinks::default();
                let ours = net.forward_batch(xs);
                for b in 0..B {
                    let x: Vec<f64> = xs.column(b).iter().copied().collect();
                    let out = reference(OPS, &params, &x, &mut kinks);
                    assert_eq!(out.len(), $net::OUT, "reference outputs");
                    for (o, &r) in out.iter().enumerate() {
                        assert!(
                            relative_eq!(ours[(o, b)], r, epsilon = 1e-12, max_relative = 1e-12),
                            "sample {b} output {o}: forward_batch {:e}, reference {r:e}",
                            ours[(o, b)]
                        );
                    }
                }
                kinks
            }

            fn check<const B: usize>() {
                let name = format!("{} B={B}", stringify!($net));
                let seed = (0..SEEDS)
                    .find(|&seed| {
                        let (net, xs, _) = draw::<B>(seed);
                        kinks(&net, &xs).distance() >= KINK_MARGIN
                    })
                    .unwrap_or_else(|| panic!("{name}: no seed keeps ReLU inputs off 0"));
                let (net, xs, ys) = draw::<B>(seed);
                let seen = kinks(&net, &xs);
                if !seen.relu.is_empty() {
                    // Both sides of the kink, so both branches of ReLU's derivative are checked.
                    assert!(
                        seen.relu.iter().any(|&v| v > 0.0) && seen.relu.iter().any(|&v| v < 0.0),
                        "{name}: ReLU inputs of one sign only"
                    );
                }
                println!(
                    "{name}: seed {seed}, nearest kink {:.2e}, {} ReLU inputs",
                    seen.distance(),
                    seen.relu.len(),
                );

                // Every LayerNorm's and Linear's weight and bias, by torch's names.
                let names: Vec<String> =
                    named_tensors(&net).into_iter().map(|t| t.name).collect();
                assert_eq!(names, param_names(OPS), "{name}: tensors");

                let loss = |n: &$net| Mse.value(&n.forward_batch(&xs), &ys);
                let (value, grads) = net.gradients(&xs, &ys, &Mse);
                let at = loss(&net);
                assert!(
                    relative_eq!(value, at, epsilon = 1e-14, max_relative = 1e-12),
                    "{name}: gradients' loss {value:e}, forward_batch's {at:e}"
                );
                let named = named_gradients(&net, &grads);
                let mut report = Report::default();
                check_params(&mut report, &net, loss, &named);
                report.assert(&format!("{name} (seed {seed})"), <$net as Network>::PARAMS);
            }

            #[test]
            fn gradients_match_central_differences() {
                check::<1>();
                check::<3>();
            }
        }
    };
}

fd_test! {
    /// Flat features (one group of 6), torch's defaults, Tanh after: 4 -> 6 -> 6 -> 6 -> 2.
    mod defaults {
        Defaults: [Linear(4, 6), LayerNorm(6), Tanh, Linear(6, 2)]
        ops: [
            Op::Linear { position: 0, inp: 4, out: 6 },
            layer_norm(1, 6),
            Op::Tanh,
            Op::Linear { position: 3, inp: 6, out: 2 },
        ],
    }
}

fd_test! {
    /// No weight or bias, another eps, ReLU after: 4 -> 6 -> 6 -> 6 -> 2.
    mod plain {
        Plain: [
            Linear(4, 6), LayerNorm(6, eps = 0.001, elementwise_affine = false), ReLU,
            Linear(6, 2)
        ]
        ops: [
            Op::Linear { position: 0, inp: 4, out: 6 },
            Op::LayerNorm { position: 1, g: 6, eps: 0.001, affine: false, bias: true },
            Op::Relu,
            Op::Linear { position: 3, inp: 6, out: 2 },
        ],
    }
}

fd_test! {
    /// The last axis of shaped samples, six groups of four, first in the network:
    /// 24 -> 2x3x4 -> 2x3x4 -> 24 -> 2.
    mod shaped {
        Shaped: [Unflatten(2, 3, 4), LayerNorm(4), Flatten, Linear(24, 2)]
        ops: [
            layer_norm(1, 4),
            Op::Linear { position: 3, inp: 24, out: 2 },
        ],
    }
}

fd_test! {
    /// A weight without a bias, straight into a Linear: 3 -> 8 -> 8 -> 1.
    mod no_bias {
        NoBias: [Linear(3, 8), LayerNorm(8, bias = false), Linear(8, 1)]
        ops: [
            Op::Linear { position: 0, inp: 3, out: 8 },
            Op::LayerNorm { position: 1, g: 8, eps: 1e-5, affine: true, bias: false },
            Op::Linear { position: 2, inp: 8, out: 1 },
        ],
    }
}
