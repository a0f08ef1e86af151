//! The code `network!` generates compiles without a single warning: networks of every layer
//! kind, `f32` and `f64`, public and private, with doc comments and attributes, used through
//! every generated method and every loss. This file passes if it compiles; the tests also check
//! that what runs gives finite values of the promised shapes.
//!
//! `missing_docs` only looks at items reachable from outside the crate, so the public networks
//! live in a public module: every generated public item (struct, `Grads` struct, fields,
//! consts, methods) must carry documentation.
#![deny(warnings)]
#![deny(missing_docs)]
#![deny(unused)]
#![deny(clippy::all)]

use nn_runtime::prelude::*;

/// Public networks: everything generated for them must be documented.
pub mod public {
    use nn_runtime::prelude::*;

    include!("no_std/src/every_kind.rs");

    network! {
        /// Weights compiled in (`PRETRAINED`, `pretrained`, `fill_pretrained` must be
        /// documented), with a batch norm's `I64` count among them.
        #[weights("tests/fixtures/compiled/conv_bn.safetensors")]
        pub struct Compiled {
            Unflatten(1, 6, 6), Conv2d(1, 3, 3), BatchNorm2d(3), ReLU, Flatten, Linear(48, 2)
        }
    }

    network! {
        /// Visible in the crate only: not part of the public API, so no docs are required of it,
        /// yet it must not warn either.
        pub(crate) struct CrateOnly { Linear(2, 3), Tanh, Linear(3, 2) }
    }
}

network! {
    /// A private network used only through `forward`: the other generated items (constants,
    /// constructors, training methods, the `Grads` struct) must not warn as dead code.
    struct ForwardOnly { Linear(3, 2), ReLU, Linear(2, 1) }
}

network! {
    // No doc comment at all on a private network.
    struct Undocumented: f64 { Linear(2, 2), Sigmoid }
}

network! {
    /// A private network never used, with the lint allowed as a user would.
    #[allow(dead_code)]
    struct NeverUsed { Linear(1, 1) }
}

network! {
    /// A single layer: input and output sizes from one `Linear`.
    struct Single: f64 { Linear(4, 2) }
}

network! {
    /// A private network with compiled weights used only through its `const`: the other
    /// constructors must not warn as dead code.
    #[weights = "tests/fixtures/compiled/wide64.safetensors"]
    struct CompiledConstOnly: f64 { Linear(3, 4), LayerNorm(4), Tanh, Linear(4, 2) }
}

/// Asserts every element of `m` is finite.
fn assert_finite<T: Real, const R: usize, const C: usize>(m: &SMatrix<T, R, C>) {
    assert!(m.iter().all(|x| x.is_finite()), "not finite: {m}");
}

/// Trains `$net` on `$xs`/`$ys` with `$loss` for a few steps of `$opt`, checking that every
/// loss is finite and that the last loss is below the first.
macro_rules! trains {
    ($net:expr, $xs:expr, $ys:expr, $loss:expr, $opt:expr) => {{
        let mut net = $net;
        let mut opt = $opt;
        let first = net.train_step($xs, $ys, $loss, &mut opt);
        let mut last = first;
        for _ in 0..50 {
            last = net.train_step($xs, $ys, $loss, &mut opt);
            assert!(last.is_finite(), "loss {last}");
        }
        assert!(first.is_finite(), "loss {first}");
        assert!(last < first, "loss went from {first} to {last}");
        net
    }};
}

#[test]
fn consts() {
    assert_eq!((public::Xor::IN, public::Xor::OUT), (2, 1));
    assert_eq!(public::Xor::PARAMS, 2 * 8 + 8 + 8 + 1);
    assert_eq!((public::AllKinds64::IN, public::AllKinds64::OUT), (3, 3));
    assert_eq!(
        public::AllKinds64::PARAMS,
        (3 * 5 + 5) + (5 * 4 + 4) + (4 * 4 + 4) + (4 * 6 + 6) + (6 * 3 + 3)
    );
    assert_eq!((public::AllKinds32::IN, public::AllKinds32::OUT), (4, 3));
    assert_eq!((Single::IN, Single::OUT, Single::PARAMS), (4, 2, 10));
    assert_eq!(public::CrateOnly::PARAMS, 2 * 3 + 3 + 3 * 2 + 2);
}

#[test]
fn forward_only() {
    let net = ForwardOnly {
        l0: Linear::default(),
        l2: Linear::default(),
        ..ForwardOnly::zeros()
    };
    let y: SVector<f32, 1> = net.forward(&SVector::from([1.0, 2.0, 3.0]));
    assert_eq!(y, SVector::from([0.0]));
}

#[test]
fn forward_and_forward_batch_agree() {
    let net = public::AllKinds64::seeded(7);
    let xs = SMatrix::<f64, 3, 5>::from_fn(|r, c| (r as f64 - 1.0) * 0.7 + c as f64 * 0.3);
    let batch: SMatrix<f64, 3, 5> = net.forward_batch(&xs);
    assert_finite(&batch);
    for (c, x) in xs.column_iter().enumerate() {
        let y: SVector<f64, 3> = net.forward(&x.into_owned());
        assert_eq!(y, batch.column(c).into_owned());
    }
    // The final Identity after Linear leaves an unbounded output; the f32 net ends in ReLU.
    let net32 = public::AllKinds32::seeded(7);
    let y: SVector<f32, 3> = net32.forward(&SVector::from([0.5, -1.0, 2.0, 0.0]));
    assert_finite(&y);
    assert!(y.iter().all(|&v| v >= 0.0));
}

#[test]
fn zeros_give_zero_output_and_grads_mirror_params() {
    let net = public::Xor::zeros();
    let y: SVector<f32, 1> = net.forward(&SVector::from([1.0, 0.0]));
    assert_eq!(y, SVector::<f32, 1>::zeros());
    let seeded = public::Xor::seeded(1);
    assert_ne!(seeded, net);
    assert_eq!(seeded.clone(), seeded);
    assert_eq!(public::Xor::seeded(1), seeded);

    let (xs, ys) = nn_testkit::xor::xor_data();
    let (loss, grads): (f32, public::XorGrads) = seeded.gradients(&xs, &ys, &Mse);
    assert!(loss.is_finite() && loss > 0.0);
    let _: &SMatrix<f32, 8, 2> = &grads.l0.weight;
    let _: &SVector<f32, 8> = &grads.l0.bias;
    let _: &SMatrix<f32, 1, 8> = &grads.l2.weight;
    let _: &SVector<f32, 1> = &grads.l2.bias;
    assert_finite(&grads.l0.weight);
    assert_finite(&grads.l2.weight);
    assert_ne!(grads.clone(), public::XorGrads::zeros());
    assert!(!format!("{grads:?}").is_empty());
}

#[test]
fn the_activation_family_trains() {
    let xs = SMatrix::<f32, 4, 6>::from_fn(|r, c| ((r * 7 + c * 3) % 5) as f32 * 0.4 - 0.8);
    let labels = [0, 1, 2, 1, 0, 2];
    let classes: SMatrix<f32, 3, 6> = one_hot(&labels).expect("labels below 3");
    let net = trains!(
        public::Family32::seeded(5),
        &xs,
        &classes,
        &Mse,
        Adam::new(0.01)
    );
    let y: SVector<f32, 3> = net.forward(&SVector::from([0.5, -1.0, 2.0, 0.0]));
    assert!(
        (y.sum() - 1.0).abs() < 1e-5,
        "softmax output sums to {}",
        y.sum()
    );

    let xs = xs.fixed_rows::<3>(0).into_owned().cast::<f64>();
    let net = trains!(
        public::Family64::seeded(5),
        &xs,
        &classes.cast::<f64>(),
        &Mse,
        Sgd::new(0.1)
    );
    let y: SVector<f64, 3> = net.forward(&SVector::from([0.5, -1.0, 2.0]));
    let total: f64 = y.iter().map(|v| v.exp()).sum();
    assert!(
        (total - 1.0).abs() < 1e-12,
        "log-softmax exponentials sum to {total}"
    );
}

#[test]
fn compiled_weights_run() {
    let net = public::Compiled::pretrained();
    assert_eq!(net, public::Compiled::PRETRAINED);
    assert_finite(&net.forward(&SVector::from_fn(|r, _| r as f32 * 0.1)));
    let y = CompiledConstOnly::PRETRAINED.forward(&SVector::from([0.5, -1.0, 2.0]));
    assert_finite(&y);
}

#[test]
fn shaped_networks_train_and_infer() {
    let xs = SMatrix::<f32, 36, 6>::from_fn(|r, c| ((r * 5 + c * 3) as f32 * 0.37).sin());
    let labels = [0, 1, 2, 1, 0, 2];
    let classes: SMatrix<f32, 3, 6> = one_hot(&labels).expect("labels below 3");
    let net = trains!(
        public::Shaped::seeded(3),
        &xs,
        &classes,
        &CrossEntropy,
        Adam::new(0.01)
    );
    assert_finite(&net.forward_batch(&xs));
    let xs = SMatrix::<f64, 16, 4>::from_fn(|r, c| ((r + 2 * c) as f64 * 0.3).cos());
    let ys = SMatrix::<f64, 1, 4>::from_fn(|_, c| c as f64 * 0.25);
    let net = trains!(public::Shaped1d::seeded(4), &xs, &ys, &Mse, Sgd::new(0.05));
    assert_finite(&net.forward_batch(&xs));
}

#[test]
fn sequence_networks_step_and_train_through_time() {
    let net = public::Amp::seeded(1);
    let mut state = public::AmpState::zeros();
    let mut out = [0.0f32; 16];
    let input: Vec<f32> = (0..16).map(|t| (t as f32 * 0.4).sin()).collect();
    net.process_block(&input, &mut out, &mut state);
    assert!(out.iter().all(|y| y.is_finite()));
    let y: SVector<f32, 1> = net.step(&SVector::from([0.5]), &mut state);
    assert_finite(&y);

    let xs: Vec<SMatrix<f64, 3, 2>> = (0..6)
        .map(|t| SMatrix::from_fn(|r, c| ((t * 3 + r + 2 * c) as f64 * 0.3).sin()))
        .collect();
    let ys: Vec<SMatrix<f64, 2, 2>> = (0..6)
        .map(|t| SMatrix::from_fn(|r, c| ((t + r + c) as f64 * 0.2).cos()))
        .collect();
    let mut net = public::Recurrent64::seeded(2);
    let mut opt = Adam::new(0.01);
    let mut first = None;
    let mut last = 0.0;
    for _ in 0..30 {
        let mut state = public::Recurrent64State::<2>::zeros();
        last = net.train_sequence(&xs, &ys, &Mse, &mut opt, &mut state);
        first.get_or_insert(last);
    }
    assert!(last < first.unwrap_or(0.0), "{first:?} -> {last}");
    let (value, grads, initial) =
        net.sequence_gradients_and_state(&xs, &ys, &Mse, &public::Recurrent64State::zeros());
    assert!(value.is_finite());
    assert_finite(&grads.l1.first.weight_ih);
    assert_finite(&initial.l1.h[1]);
}

#[test]
fn every_loss_trains_f32() {
    let xs = SMatrix::<f32, 4, 6>::from_fn(|r, c| ((r * 7 + c * 3) % 5) as f32 * 0.4 - 0.8);
    let labels = [0, 1, 2, 1, 0, 2];
    let classes: SMatrix<f32, 3, 6> = one_hot(&labels).expect("labels below 3");
    let binary = classes.map(|p| if p > 0.5 { 1.0 } else { 0.0 });
    let signs = classes.map(|p| if p > 0.5 { 1.0 } else { -1.0 });
    let regression = SMatrix::<f32, 3, 6>::from_fn(|r, c| (r as f32 - c as f32) * 0.1);

    let net = || public::AllKinds32::seeded(3);
    trains!(net(), &xs, &regression, &Mse, Sgd::new(0.05).momentum(0.9));
    trains!(net(), &xs, &classes, &CrossEntropy, Adam::new(0.01));
    trains!(net(), &xs, &binary, &BceWithLogits, AdamW::new(0.01));
    trains!(net(), &xs, &signs, &Hinge, RmsProp::new(0.001));
}

#[test]
fn every_loss_trains_f64() {
    let xs = SMatrix::<f64, 3, 4>::from_fn(|r, c| (r as f64 + 1.0) * (c as f64 - 1.5) * 0.3);
    let classes: SMatrix<f64, 3, 4> = one_hot(&[2, 0, 1, 2]).expect("labels below 3");
    let binary = classes.map(|p| if p > 0.5 { 1.0 } else { 0.0 });
    let signs = classes.map(|p| if p > 0.5 { 1.0 } else { -1.0 });
    let regression = SMatrix::<f64, 3, 4>::from_fn(|r, c| (r as f64 * c as f64) * 0.05);

    let net = || public::AllKinds64::seeded(11);
    let sgd = Sgd::new(0.05)
        .momentum(0.9)
        .dampening(0.0)
        .nesterov(true)
        .weight_decay(1e-4);
    let trained = [
        trains!(net(), &xs, &regression, &Mse, sgd),
        trains!(
            net(),
            &xs,
            &classes,
            &CrossEntropy,
            Adam::new(0.01).betas(0.9, 0.99).eps(1e-8).weight_decay(0.0)
        ),
        trains!(
            net(),
            &xs,
            &binary,
            &BceWithLogits,
            AdamW::new(0.01).weight_decay(0.01)
        ),
        trains!(
            net(),
            &xs,
            &signs,
            &Hinge,
            RmsProp::new(0.001)
                .alpha(0.9)
                .eps(1e-8)
                .momentum(0.5)
                .centered(true)
        ),
    ];
    for net in &trained {
        assert_finite(&net.forward_batch(&xs));
    }
}

#[test]
fn small_private_networks_train() {
    let xs = SMatrix::<f64, 2, 3>::from_fn(|r, c| r as f64 - c as f64 * 0.5);
    let ys = SMatrix::<f64, 2, 3>::from_fn(|r, c| if r == c % 2 { 0.9 } else { 0.1 });
    trains!(Undocumented::seeded(0), &xs, &ys, &Mse, Adam::new(0.05));

    let xs = SMatrix::<f64, 4, 1>::from([[1.0, -1.0, 0.5, 2.0]]);
    let ys = SMatrix::<f64, 2, 1>::from([[1.0, -1.0]]);
    trains!(Single::zeros(), &xs, &ys, &Hinge, Sgd::new(0.1));

    let xs = SMatrix::<f32, 2, 2>::identity();
    let ys = SMatrix::<f32, 2, 2>::from([[0.0, 1.0], [1.0, 0.0]]);
    let net = trains!(
        public::CrateOnly::seeded(5),
        &xs,
        &ys,
        &CrossEntropy,
        Adam::new(0.05)
    );
    let (loss, grads) = net.gradients(&xs, &ys, &CrossEntropy);
    assert!(loss.is_finite());
    assert_finite(&grads.l0.weight);
    assert_finite(&grads.l2.bias);
}

#[test]
fn freezing_and_input_sensitivities() {
    let xs = SMatrix::<f32, 36, 6>::from_fn(|r, c| ((r * 5 + c * 3) as f32 * 0.37).sin());
    let labels = [0, 1, 2, 1, 0, 2];
    let classes: SMatrix<f32, 3, 6> = one_hot(&labels).expect("labels below 3");
    let mut net = public::Shaped::seeded(3);
    net.freeze(1).expect("the first convolution");
    net.freeze("2").expect("the batch norm");
    assert_eq!(net.is_frozen(2), Ok(true));
    let before = net.l1.clone();
    let mut opt = Adam::new(0.01);
    for _ in 0..3 {
        assert!(
            net.train_step(&xs, &classes, &CrossEntropy, &mut opt)
                .is_finite()
        );
    }
    assert_eq!(net.l1, before);
    net.unfreeze(1).expect("the first convolution");
    net.unfreeze_all();
    let x: SVector<f32, 36> = xs.column(0).into();
    assert_finite(&net.jacobian(&x));
    assert_finite(&net.input_gradient(&x, &SVector::from([1.0, 0.0, 0.0])));
    let err = net.freeze(99).expect_err("no layer 99");
    assert!(!err.to_string().is_empty());

    // A sequence network freezes too: its GRU stays as it was, its gradient zero.
    let mut net = public::Recurrent64::seeded(2);
    let gru = net.l1.clone();
    let xs: Vec<SMatrix<f64, 3, 2>> = (0..4)
        .map(|t| SMatrix::from_fn(|r, c| ((t * 3 + r + 2 * c) as f64 * 0.3).sin()))
        .collect();
    let ys: Vec<SMatrix<f64, 2, 2>> = (0..4)
        .map(|t| SMatrix::from_fn(|r, c| ((t + r + c) as f64 * 0.2).cos()))
        .collect();
    net.freeze(1).expect("the GRU");
    net.freeze(2).expect("the Tanh, to no effect");
    let mut opt = Adam::new(0.01);
    let mut state = public::Recurrent64State::<2>::zeros();
    assert!(
        net.train_sequence(&xs, &ys, &Mse, &mut opt, &mut state)
            .is_finite()
    );
    assert_eq!(net.l1, gru);
    let (_, grads) = net.sequence_gradients(&xs, &ys, &Mse, &public::Recurrent64State::zeros());
    assert_eq!(grads.l1, public::Recurrent64::zero_grads().l1);
}
