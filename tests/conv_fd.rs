//! Finite-difference checks of the gradients of shaped networks (`Unflatten`, `Conv2d`,
//! `Conv1d` over a sample's length, max, average and adaptive average pooling, `Flatten`), in
//! `f64`.
//!
//! For each network below (the four of `tests/conv_torch.rs`, whose options between them cover
//! padding, stride, dilation, groups, rectangular kernels, pairs, `bias = false`, and both
//! dimensions of every pooling layer), `gradients` gives, on a batch of 1 and of 3 samples,
//! the `Mse` loss and the gradient of every parameter. Every scalar of every parameter tensor
//! (the weight and bias of every convolution and `Linear`, reached by `state_dict` name
//! through `Tensors`; gradients through `Network::tensors`, paired by
//! `nn_testkit::fixtures::named_gradients`) is perturbed by `+-H`, the loss recomputed
//! through the public `forward_batch`, and the central difference compared with the analytic
//! entry.
//!
//! The tolerances are those of `tests/gradcheck.rs`, for the same reasons: the step
//! `H = 1e-6` makes the central difference's truncation error `H^2 |L'''| / 6` negligible (the
//! loss is piecewise a composition of products, `tanh` and means), its rounding error is
//! about `eps |L| / H = 2e-10 |L|`; an entry passes within `EPSILON * max(1, |L|)` absolutely
//! or `MAX_RELATIVE` relatively. A transposed kernel, a wrong stride or padding offset, a
//! group reading the wrong channels, a mean over the wrong count or a maximum routed to the
//! wrong entry is off by far more.
//!
//! ReLU has a kink at 0 and a max-pool window's gradient jumps where its two largest entries
//! tie. A reference forward pass written here from the parameters by name ([`reference`],
//! independent of the generated code; its outputs are compared with `forward_batch`'s) lists
//! every ReLU input and every max-pool window; the data are drawn from a seed for which every
//! ReLU input lies at least [`KINK_MARGIN`] from 0 and every window's largest entry exceeds
//! its second by as much (a window the ReLU before it made all zeros is exempt: its entries'
//! ReLU inputs are all below `-KINK_MARGIN`, so the gradient it passes back is 0 whichever
//! entry counts as the maximum). A step of `H` moves those values by well under `1e-5`, so no
//! difference straddles a kink or a tie. The test searches seeds from 0 deterministically, as
//! `tests/sequence_fd.rs` does, and fails if none of the first 100 will do, rather than
//! skipping entries.

use approx::relative_eq;
use nn_runtime::Tensors;
use nn_runtime::prelude::*;
use nn_testkit::fixtures::{Named, named_gradients, named_tensors};
use nn_testkit::gradcheck::{Report, check_params};
use nn_testkit::rng::SplitMix64;

/// How far a ReLU input must stay from 0, and a max-pool window's largest entry above its
/// second.
const KINK_MARGIN: f64 = 1e-4;

/// Seeds tried, from 0, for data that keep [`KINK_MARGIN`].
const SEEDS: u64 = 100;

// ------------------------------------------------------------------------------------------------
// The checker (as tests/sequence_fd.rs).

// ------------------------------------------------------------------------------------------------
// The reference forward pass.

/// One layer as the reference computes it. A 1-D layer over `(C, L)` is the 2-D layer over
/// `(C, 1, L)` with a kernel, stride, padding and dilation of 1, 1, 0 and 1 along the height.
#[derive(Clone, Copy, Debug)]
enum Op {
    /// torch's `Conv2d` / `Conv1d`; parameters `{position}.weight` (`[out, in / groups, kh, kw]`,
    /// or `[out, in / groups, kw]` for 1-D) and `{position}.bias`.
    Conv {
        position: usize,
        cin: usize,
        cout: usize,
        kernel: (usize, usize),
        stride: (usize, usize),
        padding: (usize, usize),
        dilation: (usize, usize),
        groups: usize,
        bias: bool,
        one_d: bool,
    },
    Relu,
    Tanh,
    /// Max pooling, padded with `-inf`.
    MaxPool {
        kernel: (usize, usize),
        stride: (usize, usize),
        padding: (usize, usize),
    },
    /// Average pooling, the zero padding counted (torch's `count_include_pad=True`).
    AvgPool {
        kernel: (usize, usize),
        stride: (usize, usize),
        padding: (usize, usize),
    },
    /// Adaptive average pooling to one value per channel.
    AdaptiveAvgPool1,
    Flatten,
    /// `{position}.weight` `[out, in]`, `{position}.bias`.
    Linear {
        position: usize,
        inp: usize,
        out: usize,
    },
}

/// `Conv2d(cin, cout, kernel, stride, padding, dilation, groups, bias)` at `position`.
#[allow(clippy::too_many_arguments)]
const fn conv2d(
    position: usize,
    cin: usize,
    cout: usize,
    kernel: (usize, usize),
    stride: (usize, usize),
    padding: (usize, usize),
    dilation: (usize, usize),
    groups: usize,
    bias: bool,
) -> Op {
    Op::Conv {
        position,
        cin,
        cout,
        kernel,
        stride,
        padding,
        dilation,
        groups,
        bias,
        one_d: false,
    }
}

/// `Conv1d(cin, cout, kernel, stride, padding, dilation, groups, bias)` at `position`.
#[allow(clippy::too_many_arguments)]
const fn conv1d(
    position: usize,
    cin: usize,
    cout: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
    dilation: usize,
    groups: usize,
    bias: bool,
) -> Op {
    Op::Conv {
        position,
        cin,
        cout,
        kernel: (1, kernel),
        stride: (1, stride),
        padding: (0, padding),
        dilation: (1, dilation),
        groups,
        bias,
        one_d: true,
    }
}

/// What the reference saw on its way: every ReLU input, and every max-pool window's gap
/// between its two largest entries (but windows of zeros made by a ReLU, counted apart).
#[derive(Debug, Default)]
struct Kinks {
    relu: Vec<f64>,
    gaps: Vec<f64>,
    zero_windows: usize,
}

impl Kinks {
    /// The smallest distance from a kink or a tie (infinite if there is none).
    fn distance(&self) -> f64 {
        self.relu
            .iter()
            .map(|v| v.abs())
            .chain(self.gaps.iter().copied())
            .fold(f64::INFINITY, f64::min)
    }
}

/// One sample: `data[(c H + y) W + x]`, channel first and row-major, as `Unflatten` reads a
/// sample's features.
struct Sample {
    c: usize,
    h: usize,
    w: usize,
    data: Vec<f64>,
}

impl Sample {
    fn at(&self, c: usize, y: isize, x: isize) -> Option<f64> {
        let inside = (0..self.h as isize).contains(&y) && (0..self.w as isize).contains(&x);
        inside.then(|| self.data[(c * self.h + y as usize) * self.w + x as usize])
    }
}

/// The output size of a window of `kernel` (dilated) sliding by `stride` over `size` padded
/// by `padding` on both sides.
fn out_size(size: usize, kernel: usize, stride: usize, padding: usize, dilation: usize) -> usize {
    (size + 2 * padding - dilation * (kernel - 1) - 1) / stride + 1
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
            Op::Conv { position, bias, .. } => {
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

/// One sample's output through `ops` from its flat features `x`, read as `input` `(C, H, W)`
/// (`(C, 1, L)` for 1-D), computed directly from the definitions with the parameters by name
/// (column-major, as `Tensors` stores them: element `[o][rest..]` of a tensor of `OUT` rows at
/// `rest * OUT + o`, `rest` the row-major index of the other axes).
fn reference(
    ops: &[Op],
    input: (usize, usize, usize),
    params: &[Named<f64>],
    x: &[f64],
    kinks: &mut Kinks,
) -> Vec<f64> {
    let (c, h, w) = input;
    assert_eq!(x.len(), c * h * w, "input features");
    let mut s = Sample {
        c,
        h,
        w,
        data: x.to_vec(),
    };
    let mut previous: Option<Op> = None;
    for &op in ops {
        s = match op {
            Op::Conv {
                position,
                cin,
                cout,
                kernel: (kh, kw),
                stride: (sh, sw),
                padding: (ph, pw),
                dilation: (dh, dw),
                groups,
                bias,
                one_d,
            } => {
                assert_eq!(s.c, cin, "conv {position}: channels");
                let (ig, og) = (cin / groups, cout / groups);
                let shape: Vec<usize> = if one_d {
                    vec![cout, ig, kw]
                } else {
                    vec![cout, ig, kh, kw]
                };
                let weight = tensor(params, &format!("{position}.weight"), &shape);
                let b = bias.then(|| tensor(params, &format!("{position}.bias"), &[cout]));
                let (oh, ow) = (out_size(s.h, kh, sh, ph, dh), out_size(s.w, kw, sw, pw, dw));
                let mut data = vec![0.0; cout * oh * ow];
                for o in 0..cout {
                    let g = o / og;
                    for oy in 0..oh {
                        for ox in 0..ow {
                            let mut sum = b.map_or(0.0, |b| b.values[o]);
                            for i in 0..ig {
                                for ky in 0..kh {
                                    for kx in 0..kw {
                                        let y = (oy * sh + ky * dh) as isize - ph as isize;
                                        let xx = (ox * sw + kx * dw) as isize - pw as isize;
                                        if let Some(v) = s.at(g * ig + i, y, xx) {
                                            let rest = (i * kh + ky) * kw + kx;
                                            sum += weight.values[rest * cout + o] * v;
                                        }
                                    }
                                }
                            }
                            data[(o * oh + oy) * ow + ox] = sum;
                        }
                    }
                }
                Sample {
                    c: cout,
                    h: oh,
                    w: ow,
                    data,
                }
            }
            Op::Relu => {
                kinks.relu.extend_from_slice(&s.data);
                Sample {
                    data: s.data.iter().map(|&v| v.max(0.0)).collect(),
                    ..s
                }
            }
            Op::Tanh => Sample {
                data: s.data.iter().map(|&v| v.tanh()).collect(),
                ..s
            },
            Op::MaxPool {
                kernel: (kh, kw),
                stride: (sh, sw),
                padding: (ph, pw),
            }
            | Op::AvgPool {
                kernel: (kh, kw),
                stride: (sh, sw),
                padding: (ph, pw),
            } => {
                let max = matches!(op, Op::MaxPool { .. });
                let (oh, ow) = (out_size(s.h, kh, sh, ph, 1), out_size(s.w, kw, sw, pw, 1));
                let mut data = vec![0.0; s.c * oh * ow];
                for ch in 0..s.c {
                    for oy in 0..oh {
                        for ox in 0..ow {
                            let mut entries = Vec::new();
                            for ky in 0..kh {
                                for kx in 0..kw {
                                    let y = (oy * sh + ky) as isize - ph as isize;
                                    let xx = (ox * sw + kx) as isize - pw as isize;
                                    entries.extend(s.at(ch, y, xx));
                                }
                            }
                            data[(ch * oh + oy) * ow + ox] = if max {
                                entries.sort_by(|a, b| b.total_cmp(a));
                                if entries.len() > 1 {
                                    if entries[0] == 0.0 && entries[1] == 0.0 {
                                        assert!(
                                            matches!(previous, Some(Op::Relu)),
                                            "a tie of zeros not made by a ReLU"
                                        );
                                        kinks.zero_windows += 1;
                                    } else {
                                        kinks.gaps.push(entries[0] - entries[1]);
                                    }
                                }
                                entries[0]
                            } else {
                                // Padding counts as zeros: the divisor is the whole window.
                                entries.iter().sum::<f64>() / (kh * kw) as f64
                            };
                        }
                    }
                }
                Sample {
                    c: s.c,
                    h: oh,
                    w: ow,
                    data,
                }
            }
            Op::AdaptiveAvgPool1 => {
                let n = s.h * s.w;
                Sample {
                    c: s.c,
                    h: 1,
                    w: 1,
                    data: s
                        .data
                        .chunks(n)
                        .map(|ch| ch.iter().sum::<f64>() / n as f64)
                        .collect(),
                }
            }
            Op::Flatten => Sample {
                c: s.data.len(),
                h: 1,
                w: 1,
                data: s.data,
            },
            Op::Linear { position, inp, out } => {
                assert_eq!(s.data.len(), inp, "linear {position}: features");
                let weight = tensor(params, &format!("{position}.weight"), &[out, inp]);
                let bias = tensor(params, &format!("{position}.bias"), &[out]);
                let data = (0..out)
                    .map(|o| {
                        bias.values[o]
                            + (0..inp)
                                .map(|i| weight.values[i * out + o] * s.data[i])
                                .sum::<f64>()
                    })
                    .collect();
                Sample {
                    c: out,
                    h: 1,
                    w: 1,
                    data,
                }
            }
        };
        previous = Some(op);
    }
    s.data
}

// ------------------------------------------------------------------------------------------------
// The networks.

/// Declares a network and its test:
/// `mod name { Net: [LAYERS] input: (C, H, W), ops: [REFERENCE OPS] }`, the ops the same
/// layers as the reference computes them (positions as `nn.Sequential` numbers the layers,
/// `Unflatten` at 0 given as `input`).
macro_rules! fd_test {
    (
        $(#[$doc:meta])*
        mod $m:ident {
            $net:ident: [$($layer:tt)*]
            input: $input:expr,
            ops: [$($op:expr),+ $(,)?] $(,)?
        }
    ) => {
        mod $m {
            use super::*;

            network! {
                $(#[$doc])*
                struct $net: f64 { $($layer)* }
            }

            const INPUT: (usize, usize, usize) = $input;
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
                    let out = reference(OPS, INPUT, &params, &x, &mut kinks);
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
                    .unwrap_or_else(|| {
                        panic!("{name}: no seed keeps ReLU inputs and max-pool windows off ties")
                    });
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
                    "{name}: seed {seed}, nearest kink or tie {:.2e}, {} ReLU inputs, {} max-pool \
                     windows ({} all zeros)",
                    seen.distance(),
                    seen.relu.len(),
                    seen.gaps.len() + seen.zero_windows,
                    seen.zero_windows
                );

                // Every convolution's and Linear's weight and bias, by torch's names.
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
    /// Padding, ReLU, max pooling, a (3, 2) kernel with stride and padding pairs, Tanh,
    /// average pooling: 1x8x8 -> 4x8x8 -> 4x4x4 -> 6x4x2 -> 6x2x1 -> 12 -> 3.
    mod pools {
        Pools: [
            Unflatten(1, 8, 8), Conv2d(1, 4, 3, padding = 1), ReLU, MaxPool2d(2),
            Conv2d(4, 6, (3, 2), stride = (1, 2), padding = (1, 0)), Tanh, AvgPool2d(2), Flatten,
            Linear(12, 3)
        ]
        input: (1, 8, 8),
        ops: [
            conv2d(1, 1, 4, (3, 3), (1, 1), (1, 1), (1, 1), 1, true),
            Op::Relu,
            Op::MaxPool { kernel: (2, 2), stride: (2, 2), padding: (0, 0) },
            conv2d(4, 4, 6, (3, 2), (1, 2), (1, 0), (1, 1), 1, true),
            Op::Tanh,
            Op::AvgPool { kernel: (2, 2), stride: (2, 2), padding: (0, 0) },
            Op::Flatten,
            Op::Linear { position: 8, inp: 12, out: 3 },
        ],
    }
}

fd_test! {
    /// Groups, dilation, no bias, adaptive average pooling: 4x5x5 -> 6x1x1 -> 6 -> 2.
    mod groups {
        Groups: [
            Unflatten(4, 5, 5), Conv2d(4, 6, 3, groups = 2, dilation = 2, bias = false), ReLU,
            AdaptiveAvgPool2d(1), Flatten, Linear(6, 2)
        ]
        input: (4, 5, 5),
        ops: [
            conv2d(1, 4, 6, (3, 3), (1, 1), (0, 0), (2, 2), 2, false),
            Op::Relu,
            Op::AdaptiveAvgPool1,
            Op::Flatten,
            Op::Linear { position: 5, inp: 6, out: 2 },
        ],
    }
}

fd_test! {
    /// One-dimensional, with stride, padding, a 1-wide kernel and zero padding counted in the
    /// average: 2x12 -> 4x6 -> 4x3 -> 4x3 -> 4x3 -> 12 -> 2.
    mod pools_1d {
        Pools1d: [
            Unflatten(2, 12), Conv1d(2, 4, 3, stride = 2, padding = 1), ReLU, MaxPool1d(2),
            Conv1d(4, 4, 1), AvgPool1d(3, stride = 1, padding = 1), Flatten, Linear(12, 2)
        ]
        input: (2, 1, 12),
        ops: [
            conv1d(1, 2, 4, 3, 2, 1, 1, 1, true),
            Op::Relu,
            Op::MaxPool { kernel: (1, 2), stride: (1, 2), padding: (0, 0) },
            conv1d(4, 4, 4, 1, 1, 0, 1, 1, true),
            Op::AvgPool { kernel: (1, 3), stride: (1, 1), padding: (0, 1) },
            Op::Flatten,
            Op::Linear { position: 7, inp: 12, out: 2 },
        ],
    }
}

fd_test! {
    /// A stride that leaves the last row and column unread, into adaptive average pooling over
    /// 2x2: 3x6x6 -> 4x2x2 -> 4x1x1 -> 4 -> 1.
    mod stride {
        Stride: [
            Unflatten(3, 6, 6), Conv2d(3, 4, 3, stride = 2), AdaptiveAvgPool2d(1), Flatten,
            Linear(4, 1)
        ]
        input: (3, 6, 6),
        ops: [
            conv2d(1, 3, 4, (3, 3), (2, 2), (0, 0), (1, 1), 1, true),
            Op::AdaptiveAvgPool1,
            Op::Flatten,
            Op::Linear { position: 4, inp: 4, out: 1 },
        ],
    }
}
