//! Zero allocation in steady state, proven with a counting global allocator: once a network and
//! its optimizer exist and one step has run, `forward`, `forward_batch`, `gradients`,
//! `gradients_into` and `train_step` with every optimizer allocate nothing; so do a sequence
//! network's `step`, `step_batch`, `process_block` and `train_sequence` (after its first window);
//! so do gradient clipping (alone and through `Clipped` in `train_step`) and every
//! learning-rate scheduler's step.

// The runtime's counting allocator (per thread, so the harness's own allocations and other
// tests' do not count).
#[path = "../nn-runtime/tests/common/counting.rs"]
mod counting;
use counting::allocations;

use nn_runtime::prelude::*;

network! {
    /// Small: the seed network.
    pub struct Small { Linear(2, 8), ReLU, Linear(8, 1) }
}

network! {
    /// Large enough for the blocked kernel, with every activation and a residual block.
    pub struct Large { Linear(64, 64), Tanh, Residual(Linear(64, 64), ReLU), Sigmoid, Linear(64, 10) }
}

network! {
    /// A nested network.
    pub struct Outer { Small, LeakyReLU, Linear(1, 3) }
}

network! {
    /// A user-defined activation with a named constant.
    activation Swish(beta = 1.0) = |x| x * sigmoid(beta * x);

    /// The activation family: derived derivatives, a learned slope, softmax's product.
    pub struct Family {
        PReLU,
        Linear(4, 16),
        GELU,
        Swish(beta = 2.0),
        PReLU(16),
        Mish,
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

/// Runs every hot-path entry point of a network once to warm up, then again counting.
macro_rules! assert_steady_state_allocates_nothing {
    ($net:ty, $in:literal, $out:literal, $batch:literal, $loss:expr, $($opt:expr),+) => {{
        let xs = SMatrix::<f32, $in, $batch>::from_fn(|r, c| ((r * 3 + c) as f32 * 0.37).sin());
        let ys = SMatrix::<f32, $out, $batch>::from_fn(|r, c| if (r + c) % 3 == 0 { 1.0 } else { 0.0 });
        let x = SVector::<f32, $in>::from_fn(|r, _| r as f32 * 0.1);
        $({
            let mut net = <$net>::seeded(1);
            let mut grads = <$net>::seeded(2).gradients(&xs, &ys, &$loss).1;
            let mut opt = $opt;
            let mut run = || {
                std::hint::black_box(net.forward(&x));
                std::hint::black_box(net.forward_batch(&xs));
                std::hint::black_box(net.gradients(&xs, &ys, &$loss));
                std::hint::black_box(net.gradients_into(&xs, &ys, &$loss, &mut grads));
                std::hint::black_box(net.train_step(&xs, &ys, &$loss, &mut opt));
            };
            run(); // the first step makes the optimizer's state and the gradient space
            let count = allocations(|| for _ in 0..3 { run() });
            assert_eq!(count, 0, "{} with {}", stringify!($net), stringify!($opt));
        })+
    }};
}

#[test]
fn steady_state_steps_allocate_nothing() {
    // The counter must see allocations at all, or the assertions below prove nothing.
    assert!(allocations(|| drop(std::hint::black_box(vec![1u8; 10]))) >= 1);
    // And the first step of a fresh network and optimizer does allocate (their state).
    let mut fresh = Small::seeded(0);
    let mut adam = Adam::new(0.01);
    let (xs, ys) = (SMatrix::<f32, 2, 4>::zeros(), SMatrix::<f32, 1, 4>::zeros());
    assert!(
        allocations(|| {
            std::hint::black_box(fresh.train_step(&xs, &ys, &Mse, &mut adam));
        }) >= 1
    );

    assert_steady_state_allocates_nothing!(
        Small,
        2,
        1,
        4,
        Mse,
        Sgd::new(0.1),
        Sgd::new(0.1)
            .momentum(0.9)
            .nesterov(true)
            .weight_decay(1e-4),
        Adam::new(0.01),
        AdamW::new(0.01),
        RmsProp::new(0.01).momentum(0.5).centered(true)
    );
    assert_steady_state_allocates_nothing!(
        Large,
        64,
        10,
        32,
        CrossEntropy,
        Sgd::new(0.1),
        Sgd::new(0.1).momentum(0.9),
        Adam::new(0.001),
        AdamW::new(0.001).weight_decay(0.1),
        RmsProp::new(0.001)
    );
    assert_steady_state_allocates_nothing!(
        Outer,
        2,
        3,
        5,
        BceWithLogits,
        Adam::new(0.01),
        Sgd::new(0.1)
    );
    assert_steady_state_allocates_nothing!(Small, 2, 1, 1, Hinge, Adam::new(0.01));
    assert_steady_state_allocates_nothing!(Family, 4, 3, 8, Mse, Adam::new(0.01), Sgd::new(0.1));
    // One sample: the constant-size kernels, with and without the fused SGD step.
    assert_steady_state_allocates_nothing!(Large, 64, 10, 1, Mse, Sgd::new(0.01), Adam::new(0.001));
    assert_steady_state_allocates_nothing!(
        Shaped,
        36,
        3,
        8,
        CrossEntropy,
        Adam::new(0.01),
        Sgd::new(0.1)
    );
    sequence_steps_and_windows_allocate_nothing();
    clipping_and_schedules_allocate_nothing();
    frozen_steps_and_sensitivities_allocate_nothing();
}

/// Clipping (the free functions, and `Clipped` in `train_step` and `train_sequence`) and every
/// scheduler's step allocate nothing. Called from the one test function.
fn clipping_and_schedules_allocate_nothing() {
    use nn_runtime::clip::{
        Clipped, NormType, clip_grad_norm, clip_grad_norm_with, clip_grad_value,
    };
    use nn_runtime::lr_scheduler::{
        CosineAnnealingLR, ExponentialLR, LinearLR, LrScheduler, MultiStepLR, ReduceLROnPlateau,
        StepLR,
    };

    let xs = SMatrix::<f32, 64, 8>::from_fn(|r, c| ((r * 3 + c) as f32 * 0.37).sin());
    let ys = SMatrix::<f32, 10, 8>::from_fn(|r, c| if (r + c) % 3 == 0 { 1.0 } else { 0.0 });
    let mut net = Large::seeded(1);
    let mut grads = net.gradients(&xs, &ys, &Mse).1;
    let count = allocations(|| {
        std::hint::black_box(clip_grad_norm(&mut grads, 0.5));
        std::hint::black_box(clip_grad_norm_with(&mut grads, 0.1, NormType::Inf));
        clip_grad_value(&mut grads, 0.01);
    });
    assert_eq!(count, 0, "clip_grad_norm, clip_grad_value");

    let mut sgd = Clipped::norm(Sgd::new(0.1), 1.0);
    let mut adam = Clipped::value(Adam::new(0.01), 0.1);
    net.train_step(&xs, &ys, &Mse, &mut sgd);
    net.train_step(&xs, &ys, &Mse, &mut adam);
    let count = allocations(|| {
        std::hint::black_box(net.train_step(&xs, &ys, &Mse, &mut sgd));
        std::hint::black_box(net.train_step(&xs, &ys, &Mse, &mut adam));
    });
    assert_eq!(count, 0, "train_step with Clipped");

    let mut opt = Sgd::new(0.1f32);
    let milestones = [3, 5, 5];
    let mut step = StepLR::new(&opt, 2);
    let mut multi = MultiStepLR::new(&mut opt, &milestones);
    let mut exponential = ExponentialLR::new(&opt, 0.9);
    let mut cosine = CosineAnnealingLR::new(&opt, 4).eta_min(1e-3);
    let mut linear = LinearLR::warmup(&mut opt);
    let mut plateau = ReduceLROnPlateau::new(&opt).patience(1);
    let count = allocations(|| {
        for epoch in 0..10 {
            step.step(&mut opt);
            multi.step(&mut opt);
            exponential.step(&mut opt);
            cosine.step(&mut opt);
            linear.step(&mut opt);
            plateau.step(&mut opt, 1.0 / (1 + epoch % 3) as f64);
        }
    });
    assert_eq!(count, 0, "scheduler steps");
    std::hint::black_box(opt.lr());
}

/// Training with frozen layers (the optimizer skipping their tensors, the fused SGD step
/// skipping them, the backward pass stopping early), freezing itself, and the input
/// sensitivities allocate nothing once the first step has run.
fn frozen_steps_and_sensitivities_allocate_nothing() {
    let (xs, ys) = (
        SMatrix::<f32, 64, 8>::from_fn(|r, c| (r as f32 - c as f32) / 64.0),
        SMatrix::<f32, 10, 8>::from_fn(|r, c| ((r + c) % 2) as f32),
    );
    let mut net = Large::boxed_seeded(3);
    let mut adam = Adam::new(0.001).weight_decay(0.01);
    let mut sgd = Sgd::new(0.01);
    let mut momentum = Sgd::new(0.01).momentum(0.9);
    net.freeze(0).expect("layer 0");
    net.freeze(2).expect("layer 2");
    // First steps: the gradients' space and the optimizers' state.
    net.train_step(&xs, &ys, &Mse, &mut adam);
    net.train_step(&xs, &ys, &Mse, &mut momentum);
    let x = SVector::<f32, 64>::from_fn(|r, _| r as f32 / 64.0);
    let dy = SVector::<f32, 10>::from_fn(|r, _| r as f32);
    let count = allocations(|| {
        for _ in 0..3 {
            std::hint::black_box(net.train_step(&xs, &ys, &Mse, &mut adam));
            std::hint::black_box(net.train_step(&xs, &ys, &Mse, &mut sgd));
            std::hint::black_box(net.train_step(&xs, &ys, &Mse, &mut momentum));
        }
        net.unfreeze(2).expect("layer 2");
        std::hint::black_box(net.train_step(&xs, &ys, &Mse, &mut adam));
        net.freeze("2").expect("layer 2 by its prefix");
        std::hint::black_box(net.jacobian(&x));
        std::hint::black_box(net.input_gradient(&x, &dy));
        std::hint::black_box(net.input_gradient_batch(&xs, &ys));
    });
    assert_eq!(count, 0, "allocations with frozen layers");
}

network! {
    /// The amp model: an LSTM with a skip connection.
    pub struct Amp { Residual(LSTM(1, 16), Linear(16, 1)) }
}

network! {
    /// A stacked GRU and an RNN before a head.
    pub struct Stacked { GRU(2, 8, num_layers = 2), RNN(8, 4), Linear(4, 2) }
}

/// Stepping (one stream, several, the audio block form) and training through time allocate
/// nothing once a state and its first window exist; shorter windows reuse that space. Called
/// from the one test function.
fn sequence_steps_and_windows_allocate_nothing() {
    let amp = Amp::seeded(1);
    let mut state = AmpState::zeros();
    let input: Vec<f32> = (0..256).map(|t| (t as f32 * 0.05).sin()).collect();
    let mut output = vec![0.0f32; 256];
    let count = allocations(|| {
        std::hint::black_box(amp.step(&SVector::from([0.25]), &mut state));
        amp.process_block(&input, &mut output, &mut state);
    });
    assert_eq!(count, 0, "step and process_block");

    let mut net = Stacked::seeded(2);
    let mut streams = StackedState::<4>::zeros();
    let xs: Vec<SMatrix<f32, 2, 4>> = (0..32)
        .map(|t| SMatrix::from_fn(|r, c| ((t * 2 + r + c) as f32 * 0.3).sin()))
        .collect();
    let ys: Vec<SMatrix<f32, 2, 4>> = (0..32)
        .map(|t| SMatrix::from_fn(|r, c| ((t + r * c) as f32 * 0.1).cos()))
        .collect();
    let count = allocations(|| {
        std::hint::black_box(net.step_batch(&xs[0], &mut streams));
    });
    assert_eq!(count, 0, "step_batch");

    let mut adam = Adam::new(0.01);
    let mut window = |net: &mut Stacked, state: &mut StackedState<4>, len: usize| {
        net.train_sequence(&xs[..len], &ys[..len], &Mse, &mut adam, state)
    };
    // The first window makes the optimizer's state, the gradients' space and the tape.
    window(&mut net, &mut streams, 32);
    let count = allocations(|| {
        for len in [32, 16, 8, 32] {
            std::hint::black_box(window(&mut net, &mut streams, len));
        }
    });
    assert_eq!(count, 0, "train_sequence");
    // Clipped (a norm over every step's summed gradients) through time, too.
    let mut clipped = nn_runtime::clip::Clipped::norm(Adam::new(0.01), 0.5);
    net.train_sequence(&xs, &ys, &Mse, &mut clipped, &mut streams);
    let count = allocations(|| {
        std::hint::black_box(net.train_sequence(&xs, &ys, &Mse, &mut clipped, &mut streams));
    });
    assert_eq!(count, 0, "train_sequence with Clipped");
    let (xs1, ys1) = (xs[0], ys[0]);
    let mut grads = Stacked::seeded(3).gradients(&xs1, &ys1, &Mse).1;
    let count = allocations(|| {
        std::hint::black_box(net.gradients_into(&xs1, &ys1, &Mse, &mut grads));
    });
    assert_eq!(count, 0, "gradients_into");
}
