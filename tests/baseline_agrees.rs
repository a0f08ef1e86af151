//! The hand-written baselines of `benches/baseline/` do the same math as the generated
//! networks they are benchmarked against: from the same weights, one step (and a few more)
//! gives the same loss and the same updated parameters, and their kernels and `tanh` are
//! checked against plain definitions.

use nn_baseline as baseline;
use nn_baseline::Dense;
use nn_baseline::workloads::*;
use nn_runtime::Conv2d;
use nn_runtime::prelude::*;

/// Relative tolerance on losses and parameters after a step.
const REL: f32 = 1e-4;

/// `got` and `want` agree to `REL` relative (absolute `REL * 1e-3` for values near zero).
fn assert_close(what: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let scale = g.abs().max(w.abs()).max(1e-3);
        assert!(
            (g - w).abs() <= REL * scale,
            "{what}[{i}]: baseline {g} vs generated {w}"
        );
    }
}

/// The updates `after - before` agree to 1e-3 of the largest update of the tensor: a check
/// of the gradients themselves, which a small learning rate hides in the parameters.
fn assert_same_update(what: &str, before: &[f32], got: &[f32], want: &[f32]) {
    let du_got: Vec<f32> = got.iter().zip(before).map(|(a, b)| a - b).collect();
    let du_want: Vec<f32> = want.iter().zip(before).map(|(a, b)| a - b).collect();
    let largest = du_want.iter().fold(0.0f32, |m, d| m.max(d.abs()));
    assert!(largest > 0.0, "{what}: the step changed nothing");
    for (i, (g, w)) in du_got.iter().zip(&du_want).enumerate() {
        assert!(
            (g - w).abs() <= 1e-3 * largest,
            "{what}[{i}]: baseline update {g} vs generated {w} (largest {largest})"
        );
    }
}

/// A generated layer's weight in the baseline's row-major order, and its bias.
fn flat<const IN: usize, const OUT: usize>(l: &Linear<f32, IN, OUT>) -> (Vec<f32>, Vec<f32>) {
    let mut base = Dense {
        w: [[0.0; IN]; OUT],
        b: [0.0; OUT],
    };
    copy_layer(l, &mut base);
    (base.w.as_flattened().to_vec(), base.b.to_vec())
}

/// Compares a baseline layer with a generated one, and their updates from `before`.
fn compare_layer<const IN: usize, const OUT: usize>(
    what: &str,
    before: &Linear<f32, IN, OUT>,
    base: &Dense<IN, OUT>,
    net: &Linear<f32, IN, OUT>,
) {
    let (w0, b0) = flat(before);
    let (w, b) = flat(net);
    assert_close(&format!("{what}.weight"), base.w.as_flattened(), &w);
    assert_close(&format!("{what}.bias"), &base.b, &b);
    assert_same_update(&format!("{what}.weight"), &w0, base.w.as_flattened(), &w);
    assert_same_update(&format!("{what}.bias"), &b0, &base.b, &b);
}

/// Runs `f` on a thread with a large stack: the mnist network and its temporaries are
/// hundreds of kilobytes each, and tests build without optimisation.
fn big_stack(f: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
        .stack_size(256 << 20)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap();
}

#[test]
fn xor_step_agrees() {
    let (xs, ys) = xor_data();
    let init = XorNet::seeded(SEED);
    let mut net = init.clone();
    let mut base = xor_base(&net);
    let (mut opt, mut base_opt) = (Adam::new(XOR_LR), baseline::Adam::new(XOR_LR));
    for step in 0..3 {
        let before = net.clone();
        let want = net.train_step(&*xs, &*ys, &Mse, &mut opt);
        let got = base.train_step::<baseline::Mse, _>(rows(&xs), rows(&ys), &mut base_opt);
        assert_close(&format!("loss {step}"), &[got], &[want]);
        compare_layer(&format!("step {step} l0"), &before.l0, &base.l0, &net.l0);
        compare_layer(&format!("step {step} l2"), &before.l2, &base.l2, &net.l2);
    }
    assert_ne!(net.l0, init.l0);
}

#[test]
fn digits_step_agrees() {
    let (xs, ys) = digits_data();
    let mut net = DigitsNet::seeded(SEED);
    let mut base = digits_base(&net);
    let (mut opt, mut base_opt) = (Adam::new(DIGITS_LR), baseline::Adam::new(DIGITS_LR));
    for step in 0..3 {
        let before = net.clone();
        let want = net.train_step(&*xs, &*ys, &CrossEntropy, &mut opt);
        let got = base.train_step::<baseline::CrossEntropy, _>(rows(&xs), rows(&ys), &mut base_opt);
        assert_close(&format!("loss {step}"), &[got], &[want]);
        compare_layer(&format!("step {step} l0"), &before.l0, &base.l0, &net.l0);
        compare_layer(&format!("step {step} l2"), &before.l2, &base.l2, &net.l2);
    }
}

#[test]
fn mnist_step_agrees() {
    big_stack(|| {
        let (xs, ys) = mnist_data();
        let mut net = Box::new(MnistNet::seeded(SEED));
        let mut base = mnist_base(&net);
        let (mut opt, mut base_opt) = (Sgd::new(MNIST_LR), baseline::Sgd { lr: MNIST_LR });
        for step in 0..2 {
            let before = net.clone();
            let want = net.train_step(&*xs, &*ys, &CrossEntropy, &mut opt);
            let got =
                base.train_step::<baseline::CrossEntropy, _>(rows(&xs), rows(&ys), &mut base_opt);
            assert_close(&format!("loss {step}"), &[got], &[want]);
            compare_layer(&format!("step {step} l0"), &before.l0, &base.l0, &net.l0);
            compare_layer(&format!("step {step} l2"), &before.l2, &base.l2, &net.l2);
        }
    });
}

#[test]
fn online_step_agrees() {
    let (xs, ys) = tanh_data();
    let mut net = TanhNet::seeded(SEED);
    let mut base = tanh_base(&net);
    let (mut opt, mut base_opt) = (Sgd::new(ONLINE_LR), baseline::Sgd { lr: ONLINE_LR });
    for step in 0..3 {
        let before = net.clone();
        let want = net.train_step(&*xs, &*ys, &Mse, &mut opt);
        let got = base.train_step::<baseline::Mse, _>(rows(&xs), rows(&ys), &mut base_opt);
        assert_close(&format!("loss {step}"), &[got], &[want]);
        compare_layer(&format!("step {step} l0"), &before.l0, &base.l0, &net.l0);
        compare_layer(&format!("step {step} l2"), &before.l2, &base.l2, &net.l2);
        compare_layer(&format!("step {step} l4"), &before.l4, &base.l4, &net.l4);
    }
}

#[test]
fn infer_forward_agrees() {
    let net = TanhNet::seeded(SEED);
    let base = tanh_base(&net);
    let mut s = Stream::new(9);
    for _ in 0..100 {
        let x: SVector<f32, 16> = *s.matrix(-3.0, 3.0);
        let want = net.forward(&x);
        let got = base.forward(&rows(&x)[0]);
        assert_close("forward", &got, want.as_slice());
    }
}

/// The amp workloads' step baselines give the generated `step`'s output at every sample of a
/// few thousand, from the same weights and a zero state, and the same state at the end.
#[test]
fn amp_steps_agree() {
    let signal = amp_signal(4000);
    let net = AmpLstm::seeded(SEED);
    let base = amp_lstm_base(&net);
    let (mut state, mut stream) = (
        AmpLstmState::zeros(),
        baseline::recurrent::LstmStream::default(),
    );
    for (t, &x) in signal.iter().enumerate() {
        let want = net.step(&SVector::from([x]), &mut state)[0];
        let got = base.step(x, &mut stream);
        assert_close(&format!("lstm output {t}"), &[got], &[want]);
    }
    assert_close("lstm h", &stream.h, state.l0.h[0].as_slice());
    assert_close("lstm c", &stream.c, state.l0.c[0].as_slice());

    let net = AmpGru::seeded(SEED);
    let base = amp_gru_base(&net);
    let (mut state, mut h) = (AmpGruState::zeros(), [0.0; 16]);
    for (t, &x) in signal.iter().enumerate() {
        let want = net.step(&SVector::from([x]), &mut state)[0];
        let got = base.step(x, &mut h);
        assert_close(&format!("gru output {t}"), &[got], &[want]);
    }
    assert_close("gru h", &h, state.l0.h[0].as_slice());
}

/// Every tensor of the LSTM model in the baseline's layout, by name.
fn lstm_tensors(p: &baseline::recurrent::LstmParams) -> [(&'static str, Vec<f32>); 6] {
    [
        ("weight_hh (transposed)", p.wt.as_flattened().to_vec()),
        ("weight_ih", p.wx.to_vec()),
        ("bias_ih", p.bi.to_vec()),
        ("bias_hh", p.bh.to_vec()),
        ("l1.weight", p.ow.to_vec()),
        ("l1.bias", p.ob.to_vec()),
    ]
}

/// amp_lstm_window's baseline: from the same weights, three consecutive windows of truncated
/// BPTT (the state carried between them) give the generated `train_sequence`'s loss, updated
/// parameters and carried state.
#[test]
fn amp_window_agrees() {
    let (xs, ys) = amp_window();
    let (mx, my) = (amp_window_matrices(&xs), amp_window_matrices(&ys));
    let mut net = AmpLstm::seeded(SEED);
    let mut base = amp_lstm_window_base(&net);
    let mut state = AmpLstmState::<AMP_BATCH>::zeros();
    let (mut opt, mut base_opt) = (Adam::new(AMP_LR), baseline::Adam::new(AMP_LR));
    for window in 0..3 {
        let before = amp_lstm_params(&net);
        let want = net.train_sequence(&mx, &my, &Mse, &mut opt, &mut state);
        let got = base.train_window(&xs, &ys, &mut base_opt);
        assert_close(&format!("loss {window}"), &[got], &[want]);
        let after = amp_lstm_params(&net);
        let tensors = lstm_tensors(&before).into_iter();
        let tensors = tensors.zip(lstm_tensors(&base.p)).zip(lstm_tensors(&after));
        for (((name, before), (_, got)), (_, want)) in tensors {
            let what = format!("window {window} {name}");
            assert_close(&what, &got, &want);
            assert_same_update(&what, &before, &got, &want);
        }
        for b in 0..AMP_BATCH {
            let stream = &base.state[b];
            let what = format!("window {window} stream {b}");
            assert_close(
                &format!("{what} h"),
                &stream.h,
                state.l0.h[0].column(b).as_slice(),
            );
            assert_close(
                &format!("{what} c"),
                &stream.c,
                state.l0.c[0].column(b).as_slice(),
            );
        }
    }
}

/// A generated convolution's weight as the baseline stores it (`[out][in 9]`), and its bias.
fn conv_dense<const CING: usize, const CK: usize, const COUT: usize>(
    l: &Conv2d<f32, COUT, CING, 3, 3, CK, true>,
) -> Dense<CK, COUT> {
    let mut base = Dense {
        w: [[0.0; CK]; COUT],
        b: [0.0; COUT],
    };
    copy_conv(l, &mut base);
    base
}

/// Compares a baseline convolution with a generated one, and their updates from `before`.
fn compare_conv<const CING: usize, const CK: usize, const COUT: usize>(
    what: &str,
    before: &Conv2d<f32, COUT, CING, 3, 3, CK, true>,
    base: &Dense<CK, COUT>,
    net: &Conv2d<f32, COUT, CING, 3, 3, CK, true>,
) {
    let (before, want) = (conv_dense(before), conv_dense(net));
    let (w0, w) = (before.w.as_flattened(), want.w.as_flattened());
    assert_close(&format!("{what}.weight"), base.w.as_flattened(), w);
    assert_close(&format!("{what}.bias"), &base.b, &want.b);
    assert_same_update(&format!("{what}.weight"), w0, base.w.as_flattened(), w);
    assert_same_update(&format!("{what}.bias"), &before.b, &base.b, &want.b);
}

/// The conv workload's baseline: from the same weights, three Adam steps give the generated
/// network's losses and updated parameters, every convolution's included.
#[test]
fn conv_step_agrees() {
    // In a debug build the batch's activations and the kernels' temporaries of both sides
    // overflow the test thread's stack.
    big_stack(|| {
        let (xs, ys) = conv_data();
        let init = DigitsConv::seeded(SEED);
        let mut net = init.clone();
        let mut base = conv_base(&net);
        let (mut opt, mut base_opt) = (Adam::new(CONV_LR), baseline::Adam::new(CONV_LR));
        for step in 0..3 {
            let before = net.clone();
            let want = net.train_step(&*xs, &*ys, &CrossEntropy, &mut opt);
            let got =
                base.train_step::<baseline::CrossEntropy, _>(rows(&xs), rows(&ys), &mut base_opt);
            assert_close(&format!("loss {step}"), &[got], &[want]);
            compare_conv(&format!("step {step} l1"), &before.l1, &base.c1, &net.l1);
            compare_conv(&format!("step {step} l3"), &before.l3, &base.c3, &net.l3);
            compare_conv(&format!("step {step} l6"), &before.l6, &base.c6, &net.l6);
            compare_layer(
                &format!("step {step} l10"),
                &before.l10,
                &base.l10,
                &net.l10,
            );
        }
        assert_ne!(net.l1, init.l1);
    });
}

/// The conv workload's single-sample forward baseline gives the generated `forward`'s logits.
#[test]
fn conv_forward_agrees() {
    big_stack(|| {
        let mut net = DigitsConv::seeded(SEED);
        // A few steps first, so the weights are not only their initial draw.
        let (xs, ys) = conv_data();
        let mut opt = Adam::new(0.01);
        for _ in 0..5 {
            net.train_step(&*xs, &*ys, &CrossEntropy, &mut opt);
        }
        let base = conv_base(&net);
        let mut s = Stream::new(10);
        for _ in 0..50 {
            let x: SVector<f32, 64> = *s.matrix(0.0, 1.0);
            let want = net.forward(&x);
            let got = base.forward(&rows(&x)[0]);
            assert_close("forward", &got, want.as_slice());
        }
    });
}

#[test]
fn tanh_is_within_a_few_ulp() {
    let mut worst = 0.0f64;
    let mut x = -10.0f32;
    while x <= 10.0 {
        let exact = (x as f64).tanh();
        let got = baseline::tanh(x) as f64;
        // Error in units of f32's epsilon relative to the exact value.
        let err =
            (got - exact).abs() / (exact.abs().max(f32::MIN_POSITIVE as f64) * f32::EPSILON as f64);
        worst = worst.max(err);
        x += 1.0 / 4096.0;
    }
    for x in [
        0.0f32,
        1e-30,
        -1e-30,
        3e-4,
        -3.9e-4,
        1e-3,
        1e6,
        -1e6,
        f32::MAX,
    ] {
        let exact = (x as f64).tanh();
        let got = baseline::tanh(x) as f64;
        assert!(
            (got - exact).abs() <= 4.0 * f32::EPSILON as f64 * exact.abs(),
            "tanh({x}) = {got}, expected {exact}"
        );
    }
    println!("baseline tanh: worst error {worst:.2} ulp on [-10, 10]");
    assert!(worst <= 4.0, "tanh is off by {worst} ulp");
}

/// The blocked kernels, with and without AVX2, against the definition in `f64`.
#[test]
fn gemm_kernels_match_the_definition() {
    let mut s = Stream::new(5);
    let mut values = |len: usize| -> Vec<f32> { (0..len).map(|_| s.uniform(-1.0, 1.0)).collect() };
    for &(m, n, k) in &[
        (1, 1, 1),
        (5, 7, 3),
        (4, 3, 16),
        (13, 11, 37),
        (128, 64, 784),
        (33, 9, 300),
    ] {
        // dot_nt: C[j][i] = act(bias[i] + sum_p A[i][p] B[j][p]).
        let (lda, ldb, ldc) = (k + 2, k + 1, m + 3);
        let (a, b, bias) = (values(m * lda), values(n * ldb), values(m));
        for relu in [false, true] {
            let mut want = vec![0.0f32; n * ldc];
            for j in 0..n {
                for i in 0..m {
                    let mut sum = bias[i] as f64;
                    for p in 0..k {
                        sum += a[i * lda + p] as f64 * b[j * ldb + p] as f64;
                    }
                    want[j * ldc + i] = if relu { sum.max(0.0) } else { sum } as f32;
                }
            }
            let mut fast = vec![0.0f32; n * ldc];
            let mut portable = vec![0.0f32; n * ldc];
            baseline::gemm::dot_nt((m, n, k), &a, lda, &b, ldb, &bias, relu, &mut fast, ldc);
            baseline::gemm::dot_nt_portable(
                (m, n, k),
                &a,
                lda,
                &b,
                ldb,
                &bias,
                relu,
                &mut portable,
                ldc,
            );
            for (what, got) in [("dot_nt", &fast), ("dot_nt_portable", &portable)] {
                for (idx, (g, w)) in got.iter().zip(&want).enumerate() {
                    assert!(
                        (g - w).abs() <= 1e-4 * (1.0 + w.abs()),
                        "{what} {m}x{n}x{k} [{idx}]: {g} vs {w}"
                    );
                }
            }
        }
        // axpy_nn: C[j][i] += alpha * sum_p A[p][i] B[p][j], B read transposed.
        let (lda, ldc) = (m + 1, m + 2);
        let (a, b, c0) = (values(k * lda), values(n * k), values(n * ldc));
        let alpha = -0.5;
        let mut want = c0.clone();
        for j in 0..n {
            for i in 0..m {
                let mut sum = 0.0f64;
                for p in 0..k {
                    sum += a[p * lda + i] as f64 * b[p * n + j] as f64;
                }
                want[j * ldc + i] = (c0[j * ldc + i] as f64 + alpha as f64 * sum) as f32;
            }
        }
        let (mut fast, mut portable) = (c0.clone(), c0.clone());
        baseline::gemm::axpy_nn((m, n, k), &a, lda, &b, (n, 1), alpha, &mut fast, ldc);
        baseline::gemm::axpy_nn_portable((m, n, k), &a, lda, &b, (n, 1), alpha, &mut portable, ldc);
        for (what, got) in [("axpy_nn", &fast), ("axpy_nn_portable", &portable)] {
            for (idx, (g, w)) in got.iter().zip(&want).enumerate() {
                assert!(
                    (g - w).abs() <= 1e-4 * (1.0 + w.abs()),
                    "{what} {m}x{n}x{k} [{idx}]: {g} vs {w}"
                );
            }
        }
    }
}
