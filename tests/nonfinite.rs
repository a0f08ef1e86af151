//! The real-time contract's promise about bad numbers: a NaN or an infinity in an input, a
//! target or a parameter never panics (not even a `debug_assert!`: this file runs in debug in
//! CI) and never leads to undefined behaviour; NaN propagates to what it touches, as in
//! PyTorch, so a control loop sees it instead of a plausible number.
//!
//! Every hot call is run on inputs with NaN, +inf, -inf and the largest finite values:
//! `forward`, `forward_batch`, `gradients`, `gradients_into`, `train_step` with every
//! optimizer and every loss, and a sequence network's `step`, `step_batch`, `process_block`
//! and `train_sequence`. Where every layer of a network propagates NaN, a NaN feature must
//! make every output NaN (a `Linear` mixes every feature into every output).

use nn_runtime::prelude::*;

network! {
    /// Every layer propagates NaN (ReLU included, as torch's does).
    pub struct Mlp { Linear(4, 8), ReLU, Linear(8, 8), Tanh, Linear(8, 8), GELU, Linear(8, 3) }
}

network! {
    /// The activation family: branches, a learned slope, softmax's product.
    pub struct Family {
        PReLU,
        Linear(4, 16),
        Hardswish,
        ReLU6,
        Mish,
        LeakyReLU(0.1),
        |x| if x > 0.0 { x } else { 0.1 * exp_m1(x) },
        Linear(16, 3),
        LogSoftmax(dim = 1),
    }
}

network! {
    /// Convolution, pooling, batch statistics, layer normalisation and dropout.
    pub struct Shaped {
        Unflatten(1, 6, 6),
        Conv2d(1, 4, 3, padding = 1),
        BatchNorm2d(4),
        ReLU,
        MaxPool2d(2),
        Conv2d(4, 4, 3, padding = "same", groups = 2),
        AdaptiveAvgPool2d(1),
        Flatten,
        LayerNorm(4),
        Dropout(0.25),
        Linear(4, 3),
    }
}

network! {
    /// A nested residual block in f64.
    pub struct Deep: f64 { Linear(4, 8), Residual(Linear(8, 8), SiLU), Softplus, Linear(8, 3), Softmax(dim = 1) }
}

network! {
    /// Recurrent cells and a causal convolution stack.
    pub struct Stream { GRU(1, 8), LSTM(8, 8), Linear(8, 1) }
}

network! {
    /// A temporal convolution network (causal, dilated).
    pub struct Tcn { Conv1d(1, 4, 3), Tanh, Conv1d(4, 4, 3, dilation = 2), Linear(4, 1) }
}

/// The values that must not break anything.
const BAD: [f64; 5] = [
    f64::NAN,
    f64::INFINITY,
    f64::NEG_INFINITY,
    f64::MAX,
    -f64::MAX,
];

/// `true` for NaN, whatever the scalar type.
fn nan<T: Real>(x: T) -> bool {
    x.widen().is_nan()
}

/// Runs every batch-level hot call of a network on inputs and targets holding `bad` at one
/// place, with every loss and optimizer; returns the forward outputs for the caller to check.
macro_rules! run_hot_calls {
    ($net:ty, $t:ty, $in:literal, $out:literal, $batch:literal, $bad:expr) => {{
        let bad = <$t as Real>::cast($bad);
        let mut xs = SMatrix::<$t, $in, $batch>::from_fn(|r, c| {
            <$t>::from(((r * 3 + c) as f32 * 0.37).sin())
        });
        xs[(1, 0)] = bad;
        let ys =
            SMatrix::<$t, $out, $batch>::from_fn(|r, c| if (r + c) % 3 == 0 { 1.0 } else { 0.0 });
        let mut bad_ys = ys;
        bad_ys[(0, 1)] = bad;
        let x = xs.column(0).into_owned();
        let net = <$net>::seeded(1);
        let single = net.forward(&x);
        let batch = net.forward_batch(&xs);
        let mut grads = <$net>::seeded(2).gradients(&xs, &ys, &Mse).1;
        for (xs, ys) in [
            (&xs, &ys),
            (
                &xs.map(|v| {
                    if nan(v) || v.widen().is_infinite() {
                        <$t>::from(0.5f32)
                    } else {
                        v
                    }
                }),
                &bad_ys,
            ),
        ] {
            let _ = net.gradients(xs, ys, &Mse);
            let _ = net.gradients(xs, ys, &CrossEntropy);
            let _ = net.gradients(xs, ys, &BceWithLogits);
            let _ = net.gradients(xs, ys, &Hinge);
            let _ = net.gradients_into(xs, ys, &Mse, &mut grads);
            let mut trained = net.clone();
            let mut sgd = Sgd::new(0.1);
            let mut momentum = Sgd::new(0.1)
                .momentum(0.9)
                .nesterov(true)
                .weight_decay(1e-4);
            let mut adam = Adam::new(0.01);
            let mut adamw = AdamW::new(0.01);
            let mut rmsprop = RmsProp::new(0.01).momentum(0.5).centered(true);
            for _ in 0..2 {
                let _ = trained.train_step(xs, ys, &Mse, &mut sgd);
                let _ = trained.train_step(xs, ys, &CrossEntropy, &mut momentum);
                let _ = trained.train_step(xs, ys, &BceWithLogits, &mut adam);
                let _ = trained.train_step(xs, ys, &Hinge, &mut adamw);
                let _ = trained.train_step(xs, ys, &Mse, &mut rmsprop);
            }
            // A network whose parameters went bad still runs.
            let _ = trained.forward_batch(xs);
        }
        (single, batch)
    }};
}

/// NaN in one feature of a sample makes that sample's every output NaN, and leaves the other
/// samples of the batch alone (no batch statistics at inference).
macro_rules! assert_nan_propagates {
    ($net:ty, $t:ty, $in:literal, $out:literal) => {{
        for bad in BAD {
            let (single, batch) = run_hot_calls!($net, $t, $in, $out, 5, bad);
            if bad.is_nan() {
                let what = stringify!($net);
                assert!(single.iter().all(|&v| nan(v)), "{what}: forward {single}");
                assert!(
                    batch.column(0).iter().all(|&v| nan(v)),
                    "{what}: forward_batch {batch}"
                );
                assert!(
                    batch.column(1).iter().all(|&v| !nan(v)),
                    "{what}: other samples {batch}"
                );
            }
        }
    }};
}

#[test]
fn feed_forward_hot_calls_take_nan_and_infinities() {
    assert_nan_propagates!(Mlp, f32, 4, 3);
    assert_nan_propagates!(Family, f32, 4, 3);
    assert_nan_propagates!(Shaped, f32, 36, 3);
    assert_nan_propagates!(Deep, f64, 4, 3);
}

#[test]
fn a_nan_loss_is_reported_not_hidden() {
    let mut net = Mlp::seeded(3);
    let mut xs = SMatrix::<f32, 4, 2>::from_fn(|r, c| (r + c) as f32 * 0.1);
    xs[(2, 1)] = f32::NAN;
    let ys = SMatrix::<f32, 3, 2>::zeros();
    let mut opt = Adam::new(0.01);
    assert!(net.gradients(&xs, &ys, &Mse).0.is_nan());
    assert!(net.train_step(&xs, &ys, &Mse, &mut opt).is_nan());
    // As in torch, a NaN gradient poisons the parameters it reaches: the step is not skipped.
    assert!(net.l0.weight.iter().any(|w| w.is_nan()));
}

#[test]
fn sequence_hot_calls_take_nan_and_infinities() {
    for bad in BAD {
        let bad = bad as f32;
        let stream = Stream::seeded(1);
        let tcn = Tcn::seeded(2);
        let mut state = StreamState::zeros();
        let mut tcn_state = TcnState::zeros();
        let mut input = [0.25f32; 16];
        input[3] = bad;
        let mut output = [0.0f32; 16];
        stream.process_block(&input, &mut output, &mut state);
        if bad.is_nan() {
            // The recurrence carries the NaN forward: every later sample is NaN.
            assert!(
                output[3..].iter().all(|v| v.is_nan()),
                "GRU/LSTM: {output:?}"
            );
            assert!(
                output[..3].iter().all(|v| !v.is_nan()),
                "GRU/LSTM: {output:?}"
            );
        }
        tcn.process_block(&input, &mut output, &mut tcn_state);
        if bad.is_nan() {
            // The causal receptive field is 1 + 2 + 4 = 7 samples: NaN reaches 7 outputs,
            // then leaves the ring buffer.
            assert!(output[3..10].iter().all(|v| v.is_nan()), "TCN: {output:?}");
            assert!(output[10..].iter().all(|v| !v.is_nan()), "TCN: {output:?}");
        }
        let _ = stream.step(&SVector::from([bad]), &mut state);
        let mut streams = StreamState::<3>::zeros();
        let _ = stream.step_batch(&SMatrix::<f32, 1, 3>::from_element(bad), &mut streams);

        let xs: Vec<SMatrix<f32, 1, 3>> = (0..8)
            .map(|t| {
                SMatrix::from_fn(|_, c| {
                    if t == 2 && c == 0 {
                        bad
                    } else {
                        (t + c) as f32 * 0.1
                    }
                })
            })
            .collect();
        let ys: Vec<SMatrix<f32, 1, 3>> = (0..8)
            .map(|t| SMatrix::from_element(t as f32 * 0.05))
            .collect();
        let mut trained = stream.clone();
        let mut opt = Adam::new(0.01);
        let mut streams = StreamState::<3>::zeros();
        let loss = trained.train_sequence(&xs, &ys, &Mse, &mut opt, &mut streams);
        if bad.is_nan() {
            assert!(loss.is_nan(), "train_sequence hid a NaN: {loss}");
        }
        let _ = trained.sequence_gradients(&xs, &ys, &Mse, &StreamState::<3>::zeros());
        let mut tcn_trained = tcn.clone();
        let _ = tcn_trained.train_sequence(
            &xs,
            &ys,
            &Mse,
            &mut Sgd::new(0.1),
            &mut TcnState::<3>::zeros(),
        );
    }
}
