//! The five workloads of issue 4, the three amp workloads and the two conv workloads (see
//! `benches/baseline/src/workloads.rs`), and `freeze` (a frozen body against the same network
//! training whole, see [`freeze`]), each a criterion group of two functions measured in
//! the same run: `generated` (a `network!` network through
//! its public API) and `baseline` (the hand-written code of the `nn-baseline` crate in
//! `benches/baseline/`), so each figure is a ratio. Run with
//! `cargo bench -p nn-benches --bench workloads`, or `scripts/bench.sh` for the table.
//!
//! Training workloads train continuously on one fixed batch and every [`RESET_EVERY`] steps
//! go back to the initial weights and a fresh optimizer (outside the timed region): every
//! measured step is one of the first steps of a training run from the same start, for both
//! implementations alike, so neither drifts into a different numeric regime (saturated
//! softmax, subnormal Adam moments) over the millions of steps criterion runs.

use criterion::{Criterion, criterion_group, criterion_main};
use nn_runtime::prelude::*;
use std::hint::black_box;
use std::time::{Duration, Instant};

use nn_baseline as baseline;
use nn_baseline::workloads::*;

/// Training steps between resets to the initial weights.
const RESET_EVERY: u64 = 1000;

/// A training run: its state and the steps since it was last reset.
struct Run<T> {
    state: T,
    since_reset: u64,
}

impl<T> Run<T> {
    fn new(state: T) -> Self {
        Run {
            state,
            since_reset: 0,
        }
    }

    /// Runs `iters` steps and returns the time they took, resetting (untimed) every
    /// [`RESET_EVERY`] steps.
    fn time(
        &mut self,
        iters: u64,
        mut reset: impl FnMut(&mut T),
        mut step: impl FnMut(&mut T),
    ) -> Duration {
        let mut total = Duration::ZERO;
        let mut left = iters;
        while left > 0 {
            if self.since_reset == RESET_EVERY {
                reset(&mut self.state);
                self.since_reset = 0;
            }
            let chunk = left.min(RESET_EVERY - self.since_reset);
            let start = Instant::now();
            for _ in 0..chunk {
                step(&mut self.state);
            }
            total += start.elapsed();
            self.since_reset += chunk;
            left -= chunk;
        }
        total
    }
}

fn xor(c: &mut Criterion) {
    let (xs, ys) = xor_data();
    let init = XorNet::seeded(SEED);
    let mut group = c.benchmark_group("xor");

    let mut run = Run::new((init.clone(), Adam::new(XOR_LR)));
    group.bench_function("generated", |b| {
        b.iter_custom(|iters| {
            run.time(
                iters,
                |(net, opt)| (*net, *opt) = (init.clone(), Adam::new(XOR_LR)),
                |(net, opt)| {
                    black_box(net.train_step(black_box(&*xs), black_box(&*ys), &Mse, opt));
                },
            )
        })
    });

    let init_base = xor_base(&init);
    let (bx, by) = (rows(&xs), rows(&ys));
    let mut run = Run::new((xor_base(&init), baseline::Adam::new(XOR_LR)));
    group.bench_function("baseline", |b| {
        b.iter_custom(|iters| {
            run.time(
                iters,
                |(base, opt)| {
                    (base.l0, base.l2) = (init_base.l0.clone(), init_base.l2.clone());
                    base.clear_state();
                    *opt = baseline::Adam::new(XOR_LR);
                },
                |(base, opt)| {
                    black_box(base.train_step::<baseline::Mse, _>(
                        black_box(bx),
                        black_box(by),
                        opt,
                    ));
                },
            )
        })
    });
    group.finish();
}

fn digits(c: &mut Criterion) {
    let (xs, ys) = digits_data();
    let init = DigitsNet::seeded(SEED);
    let mut group = c.benchmark_group("digits");

    let mut run = Run::new((init.clone(), Adam::new(DIGITS_LR)));
    group.bench_function("generated", |b| {
        b.iter_custom(|iters| {
            run.time(
                iters,
                |(net, opt)| (*net, *opt) = (init.clone(), Adam::new(DIGITS_LR)),
                |(net, opt)| {
                    black_box(net.train_step(black_box(&*xs), black_box(&*ys), &CrossEntropy, opt));
                },
            )
        })
    });

    let init_base = digits_base(&init);
    let (bx, by) = (rows(&xs), rows(&ys));
    let mut run = Run::new((digits_base(&init), baseline::Adam::new(DIGITS_LR)));
    group.bench_function("baseline", |b| {
        b.iter_custom(|iters| {
            run.time(
                iters,
                |(base, opt)| {
                    (base.l0, base.l2) = (init_base.l0.clone(), init_base.l2.clone());
                    base.clear_state();
                    *opt = baseline::Adam::new(DIGITS_LR);
                },
                |(base, opt)| {
                    black_box(base.train_step::<baseline::CrossEntropy, _>(
                        black_box(bx),
                        black_box(by),
                        opt,
                    ));
                },
            )
        })
    });
    group.finish();
}

fn mnist(c: &mut Criterion) {
    let (xs, ys) = mnist_data();
    // 400 KB of parameters: kept on the heap (benchmarks run on the main thread's 8 MiB stack,
    // which `seeded` and `train_step` may use for temporaries).
    let init = Box::new(MnistNet::seeded(SEED));
    let mut group = c.benchmark_group("mnist");
    group.sample_size(30);

    let mut run = Run::new((Box::new(MnistNet::seeded(SEED)), Sgd::new(MNIST_LR)));
    group.bench_function("generated", |b| {
        b.iter_custom(|iters| {
            run.time(
                iters,
                |(net, _)| {
                    net.l0.weight.copy_from(&init.l0.weight);
                    net.l0.bias.copy_from(&init.l0.bias);
                    net.l2.weight.copy_from(&init.l2.weight);
                    net.l2.bias.copy_from(&init.l2.bias);
                },
                |(net, opt)| {
                    black_box(net.train_step(black_box(&*xs), black_box(&*ys), &CrossEntropy, opt));
                },
            )
        })
    });

    let init_base = mnist_base(&init);
    let (bx, by) = (rows(&xs), rows(&ys));
    let mut run = Run::new((mnist_base(&init), baseline::Sgd { lr: MNIST_LR }));
    group.bench_function("baseline", |b| {
        b.iter_custom(|iters| {
            run.time(
                iters,
                |(base, _)| {
                    base.l0.clone_from(&init_base.l0);
                    base.l2.clone_from(&init_base.l2);
                },
                |(base, opt)| {
                    black_box(base.train_step::<baseline::CrossEntropy, _>(
                        black_box(bx),
                        black_box(by),
                        opt,
                    ));
                },
            )
        })
    });
    group.finish();
}

fn infer(c: &mut Criterion) {
    let (x, _) = tanh_data();
    let net = TanhNet::seeded(SEED);
    let x: SVector<f32, 16> = *x;
    let mut group = c.benchmark_group("infer");
    group.bench_function("generated", |b| {
        b.iter(|| black_box(net.forward(black_box(&x))))
    });
    let base = tanh_base(&net);
    let bx = &rows(&x)[0];
    group.bench_function("baseline", |b| {
        b.iter(|| black_box(base.forward(black_box(bx))))
    });
    group.finish();
}

fn online(c: &mut Criterion) {
    let (xs, ys) = tanh_data();
    let init = TanhNet::seeded(SEED);
    let mut group = c.benchmark_group("online");

    let mut run = Run::new((init.clone(), Sgd::new(ONLINE_LR)));
    group.bench_function("generated", |b| {
        b.iter_custom(|iters| {
            run.time(
                iters,
                |(net, _)| *net = init.clone(),
                |(net, opt)| {
                    black_box(net.train_step(black_box(&*xs), black_box(&*ys), &Mse, opt));
                },
            )
        })
    });

    let init_base = tanh_base(&init);
    let (bx, by) = (rows(&xs), rows(&ys));
    let mut run = Run::new((tanh_base(&init), baseline::Sgd { lr: ONLINE_LR }));
    group.bench_function("baseline", |b| {
        b.iter_custom(|iters| {
            run.time(
                iters,
                |(base, _)| {
                    (base.l0, base.l2, base.l4) = (
                        init_base.l0.clone(),
                        init_base.l2.clone(),
                        init_base.l4.clone(),
                    );
                },
                |(base, opt)| {
                    black_box(base.train_step::<baseline::Mse, _>(
                        black_box(bx),
                        black_box(by),
                        opt,
                    ));
                },
            )
        })
    });
    group.finish();
}

/// The digits conv network (`examples/data/digits_conv.rs`): one Adam training step on a
/// batch of 32 with cross-entropy (`conv`), and one single-sample forward (`conv_infer`).
fn conv(c: &mut Criterion) {
    let (xs, ys) = conv_data();
    let init = DigitsConv::seeded(SEED);
    let mut group = c.benchmark_group("conv");

    let mut run = Run::new((init.clone(), Adam::new(CONV_LR)));
    group.bench_function("generated", |b| {
        b.iter_custom(|iters| {
            run.time(
                iters,
                |(net, opt)| (*net, *opt) = (init.clone(), Adam::new(CONV_LR)),
                |(net, opt)| {
                    black_box(net.train_step(black_box(&*xs), black_box(&*ys), &CrossEntropy, opt));
                },
            )
        })
    });

    let init_base = conv_base(&init);
    let (bx, by) = (rows(&xs), rows(&ys));
    let mut run = Run::new((conv_base(&init), baseline::Adam::new(CONV_LR)));
    group.bench_function("baseline", |b| {
        b.iter_custom(|iters| {
            run.time(
                iters,
                |(base, opt)| {
                    (base.c1, base.c3) = (init_base.c1.clone(), init_base.c3.clone());
                    (base.c6, base.l10) = (init_base.c6.clone(), init_base.l10.clone());
                    base.clear_state();
                    *opt = baseline::Adam::new(CONV_LR);
                },
                |(base, opt)| {
                    black_box(base.train_step::<baseline::CrossEntropy, _>(
                        black_box(bx),
                        black_box(by),
                        opt,
                    ));
                },
            )
        })
    });
    group.finish();

    let x: SVector<f32, 64> = xs.column(0).into_owned();
    let mut group = c.benchmark_group("conv_infer");
    group.bench_function("generated", |b| {
        b.iter(|| black_box(init.forward(black_box(&x))))
    });
    let bx = &rows(&x)[0];
    group.bench_function("baseline", |b| {
        b.iter(|| black_box(init_base.forward(black_box(bx))))
    });
    group.finish();
}

/// Samples the amp step workloads cycle through (a tenth of a second at 48 kHz).
const AMP_SAMPLES: usize = 4800;

/// `LSTM(1, 16), Linear(16, 1)` and `GRU(1, 16), Linear(16, 1)`: one time step of one stream,
/// the per-sample cost of an audio effect. Each iteration takes the next sample of a
/// stretch of audio (the state carried on, as in a callback).
fn amp_step(c: &mut Criterion) {
    let signal = amp_signal(AMP_SAMPLES);
    let mut next = {
        let mut t = 0;
        move || {
            t = (t + 1) % AMP_SAMPLES;
            signal[t]
        }
    };

    let net = AmpLstm::seeded(SEED);
    let mut group = c.benchmark_group("amp_lstm_step");
    let mut state = AmpLstmState::zeros();
    group.bench_function("generated", |b| {
        b.iter(|| black_box(net.step(&SVector::from([black_box(next())]), &mut state)))
    });
    let base = amp_lstm_base(&net);
    let mut stream = baseline::recurrent::LstmStream::default();
    group.bench_function("baseline", |b| {
        b.iter(|| black_box(base.step(black_box(next()), &mut stream)))
    });
    group.finish();

    let net = AmpGru::seeded(SEED);
    let mut group = c.benchmark_group("amp_gru_step");
    let mut state = AmpGruState::zeros();
    group.bench_function("generated", |b| {
        b.iter(|| black_box(net.step(&SVector::from([black_box(next())]), &mut state)))
    });
    let base = amp_gru_base(&net);
    let mut h = [0.0; 16];
    group.bench_function("baseline", |b| {
        b.iter(|| black_box(base.step(black_box(next()), &mut h)))
    });
    group.finish();
}

/// One window of truncated backpropagation through time of the LSTM model: 64 steps of 8
/// streams forward, MSE, backward through time, Adam; the state carried from window to
/// window, and reset with the weights.
fn amp_window(c: &mut Criterion) {
    let (xs, ys) = nn_baseline::workloads::amp_window();
    let (mx, my) = (amp_window_matrices(&xs), amp_window_matrices(&ys));
    let init = AmpLstm::seeded(SEED);
    let mut group = c.benchmark_group("amp_lstm_window");

    let mut run = Run::new((
        init.clone(),
        Adam::new(AMP_LR),
        AmpLstmState::<AMP_BATCH>::zeros(),
    ));
    group.bench_function("generated", |b| {
        b.iter_custom(|iters| {
            run.time(
                iters,
                |(net, opt, state)| {
                    (*net, *opt) = (init.clone(), Adam::new(AMP_LR));
                    state.l0 = AmpLstmState::<AMP_BATCH>::zeros().l0;
                },
                |(net, opt, state)| {
                    black_box(net.train_sequence(black_box(&mx), black_box(&my), &Mse, opt, state));
                },
            )
        })
    });

    let init_base = amp_lstm_params(&init);
    let mut run = Run::new((amp_lstm_window_base(&init), baseline::Adam::new(AMP_LR)));
    group.bench_function("baseline", |b| {
        b.iter_custom(|iters| {
            run.time(
                iters,
                |(base, opt)| {
                    base.p = init_base.clone();
                    base.clear_state();
                    *opt = baseline::Adam::new(AMP_LR);
                },
                |(base, opt)| {
                    black_box(base.train_window(black_box(&xs), black_box(&ys), opt));
                },
            )
        })
    });
    group.finish();
}

network! {
    /// The activation workload's network with the builtin SiLU.
    struct BuiltinSwish { Linear(16, 32), SiLU, Linear(32, 32), SiLU, Linear(32, 4) }
}

network! {
    /// The same network with SiLU written as a closure, derived by the macro.
    struct UserSwish {
        Linear(16, 32),
        |x| x * sigmoid(x),
        Linear(32, 32),
        |x| x * sigmoid(x),
        Linear(32, 4),
    }
}

/// A user-defined activation against the builtin it equals: one Adam training step of the
/// same network on the same batch from the same weights, `user` (the closure) and `builtin`
/// (`SiLU`) measured in one run.
fn activation(c: &mut Criterion) {
    let (xs, ys) = tanh_data();
    let mut group = c.benchmark_group("activation");
    let init = UserSwish::seeded(SEED);
    let mut run = Run::new((init.clone(), Adam::new(0.001)));
    group.bench_function("user", |b| {
        b.iter_custom(|iters| {
            run.time(
                iters,
                |(net, opt)| (*net, *opt) = (init.clone(), Adam::new(0.001)),
                |(net, opt)| {
                    black_box(net.train_step(black_box(&*xs), black_box(&*ys), &Mse, opt));
                },
            )
        })
    });
    let init = BuiltinSwish::seeded(SEED);
    let mut run = Run::new((init.clone(), Adam::new(0.001)));
    group.bench_function("builtin", |b| {
        b.iter_custom(|iters| {
            run.time(
                iters,
                |(net, opt)| (*net, *opt) = (init.clone(), Adam::new(0.001)),
                |(net, opt)| {
                    black_box(net.train_step(black_box(&*xs), black_box(&*ys), &Mse, opt));
                },
            )
        })
    });
    group.finish();
}

network! {
    /// freeze: a deep MLP on the digits batch, four hidden layers.
    pub struct DeepDigits {
        Linear(64, 128), ReLU, Linear(128, 128), ReLU, Linear(128, 128), ReLU,
        Linear(128, 64), ReLU, head: Linear(64, 10)
    }
}

/// Fine-tuning the head: `generated` is a training step of [`DeepDigits`] with every layer
/// but the head frozen (the backward pass computes the head's gradient and stops), `baseline`
/// the same network with every layer training; both Adam on the digits batch, so the ratio
/// is what freezing saves.
fn freeze(c: &mut Criterion) {
    let (xs, ys) = digits_data();
    let trainable = DeepDigits::seeded(SEED);
    let mut frozen = trainable.clone();
    for layer in [0, 2, 4, 6] {
        frozen.freeze(layer).expect("a layer of DeepDigits");
    }
    let mut group = c.benchmark_group("freeze");
    for (name, init) in [("generated", frozen), ("baseline", trainable)] {
        let mut run = Run::new((init.clone(), Adam::new(DIGITS_LR)));
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                run.time(
                    iters,
                    |(net, opt)| (*net, *opt) = (init.clone(), Adam::new(DIGITS_LR)),
                    |(net, opt)| {
                        black_box(net.train_step(
                            black_box(&*xs),
                            black_box(&*ys),
                            &CrossEntropy,
                            opt,
                        ));
                    },
                )
            })
        });
    }
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = workloads;
    config = config();
    targets = xor, digits, mnist, infer, online, activation, amp_step, amp_window, conv, freeze
}
criterion_main!(workloads);
