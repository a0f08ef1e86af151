//! Freezing layers: the optimizer leaves a frozen layer's parameters bit-identical (every
//! optimizer, with weight decay and momentum, and the fused SGD step), `gradients` leaves its
//! fields zero and the others as they were, training the head of a frozen body equals training
//! the head alone on the body's outputs, unfreezing resumes training, and a layer the network
//! does not have is an error naming it.

use approx::relative_eq;
use nn_runtime::prelude::*;
use nn_runtime::{LayerRef, UnknownLayer};

network! {
    /// The body of the fine-tuned networks below.
    struct Body: f64 { Linear(4, 8), Tanh, Linear(8, 6), Tanh }
}

network! {
    /// A body of plain layers and a named head: freezing 0 and 2 leaves the head training.
    struct Deep: f64 { Linear(4, 8), Tanh, Linear(8, 6), Tanh, head: Linear(6, 3) }
}

network! {
    /// The same with the body nested, frozen by its name.
    struct Tuned: f64 { body: Body, head: Linear(6, 3) }
}

network! {
    /// The head alone.
    struct Head: f64 { Linear(6, 3) }
}

network! {
    /// A residual block in the middle, frozen as a whole; a layer below it keeps training.
    struct Blocks: f64 {
        Linear(4, 5), ReLU, Residual(Linear(5, 5), Tanh), Sigmoid, Linear(5, 2)
    }
}

/// A batch of 5 samples and targets for 3 outputs, deterministic.
fn batch() -> (SMatrix<f64, 4, 5>, SMatrix<f64, 3, 5>) {
    let xs = SMatrix::from_fn(|r, c| ((r * 5 + c) as f64 * 0.37).sin());
    let ys = SMatrix::from_fn(|r, c| ((r + 2 * c) as f64 * 0.61).cos());
    (xs, ys)
}

/// Every parameter of `net` by `state_dict` name, as bits.
fn bits<N: Network<Scalar = f64>>(net: &N) -> Vec<(String, Vec<u64>)> {
    let mut out = Vec::new();
    net.visit("", &mut |name, _, data| {
        out.push((name.to_owned(), data.iter().map(|v| v.to_bits()).collect()));
    });
    out
}

/// Trains `Deep` with layers 0 and 2 frozen for 50 steps of `opt`: those stay bit-identical,
/// the head moves.
fn frozen_body_stays<O: Optimizer<f64>>(mut opt: O, what: &str) {
    let (xs, ys) = batch();
    let mut net = Deep::seeded(1);
    net.freeze(0).expect("layer 0");
    net.freeze(2).expect("layer 2");
    let before = bits(&net);
    for _ in 0..50 {
        net.train_step(&xs, &ys, &Mse, &mut opt);
    }
    let after = bits(&net);
    for ((name, old), (_, new)) in before.iter().zip(&after) {
        if name.starts_with("head.") {
            assert_ne!(old, new, "{what}: {name} trained");
        } else {
            assert_eq!(old, new, "{what}: {name} frozen");
        }
    }
}

#[test]
fn frozen_parameters_stay_bit_identical_with_every_optimizer() {
    frozen_body_stays(Sgd::new(0.1), "plain SGD (fused)");
    frozen_body_stays(Sgd::new(0.1).weight_decay(0.1), "SGD, weight decay");
    frozen_body_stays(
        Sgd::new(0.1).momentum(0.9).nesterov(true).weight_decay(0.1),
        "SGD, Nesterov momentum, weight decay",
    );
    frozen_body_stays(Sgd::new(0.1).momentum(0.9).dampening(0.5), "SGD, dampening");
    frozen_body_stays(Adam::new(0.01).weight_decay(0.1), "Adam, weight decay");
    frozen_body_stays(AdamW::new(0.01).weight_decay(0.1), "AdamW");
    frozen_body_stays(
        RmsProp::new(0.01)
            .momentum(0.5)
            .centered(true)
            .weight_decay(0.1),
        "RMSprop, centered, momentum, weight decay",
    );
}

/// The body's outputs for `xs`, by a `Body` holding `Deep`'s first two layers.
fn body_of(net: &Deep, xs: &SMatrix<f64, 4, 5>) -> SMatrix<f64, 6, 5> {
    let body = Body {
        l0: net.l0.clone(),
        l2: net.l2.clone(),
        ..Body::zeros()
    };
    body.forward_batch(xs)
}

/// Trains the head of `Deep` (body frozen) and a `Head` fed with the body's outputs with
/// equal optimizers, and compares the heads.
fn head_matches<O: Optimizer<f64>>(make: impl Fn() -> O, what: &str) {
    let (xs, ys) = batch();
    let mut net = Deep::seeded(2);
    net.freeze(0).expect("layer 0");
    net.freeze("2").expect("layer 2 by its prefix");
    let features = body_of(&net, &xs);
    let mut head = Head {
        l0: net.head.clone(),
        ..Head::zeros()
    };
    let (mut opt_net, mut opt_head) = (make(), make());
    for step in 0..40 {
        let a = net.train_step(&xs, &ys, &Mse, &mut opt_net);
        let b = head.train_step(&features, &ys, &Mse, &mut opt_head);
        assert!(
            relative_eq!(a, b, epsilon = 1e-14, max_relative = 1e-12),
            "{what}: loss at step {step}: {a} against {b}"
        );
    }
    assert!(
        relative_eq!(
            net.head.weight,
            head.l0.weight,
            epsilon = 1e-14,
            max_relative = 1e-12
        ),
        "{what}: weights"
    );
    assert!(
        relative_eq!(
            net.head.bias,
            head.l0.bias,
            epsilon = 1e-14,
            max_relative = 1e-12
        ),
        "{what}: biases"
    );
}

#[test]
fn training_the_head_of_a_frozen_body_is_training_the_head_alone() {
    head_matches(|| Adam::new(0.01).weight_decay(0.01), "Adam");
    head_matches(|| Sgd::new(0.05), "plain SGD (fused)");
    head_matches(|| Sgd::new(0.05).momentum(0.9), "SGD with momentum");
}

#[test]
fn a_nested_body_freezes_by_its_name() {
    let (xs, ys) = batch();
    let mut net = Tuned::seeded(3);
    net.freeze("body").expect("the nested body");
    assert_eq!(net.is_frozen(0), Ok(true));
    assert_eq!(net.is_frozen("head"), Ok(false));
    let features = net.body.forward_batch(&xs);
    let mut head = Head {
        l0: net.head.clone(),
        ..Head::zeros()
    };
    let before = bits(&net.body);
    let (mut a, mut b) = (Adam::new(0.01), Adam::new(0.01));
    for _ in 0..30 {
        net.train_step(&xs, &ys, &Mse, &mut a);
        head.train_step(&features, &ys, &Mse, &mut b);
    }
    assert_eq!(bits(&net.body), before, "the body is frozen");
    assert!(relative_eq!(
        net.head.weight,
        head.l0.weight,
        epsilon = 1e-14,
        max_relative = 1e-12
    ));
}

/// `gradients` with frozen layers: theirs are zero, every other one as without freezing
/// (the pass goes down through a frozen layer to a trainable one below it, by its input-only
/// step or, for a block, by its whole step).
#[test]
fn gradients_of_frozen_layers_are_zero_and_the_others_unchanged() {
    let (xs, _) = batch();
    let ys = SMatrix::<f64, 2, 5>::from_fn(|r, c| (r + c) as f64 * 0.1);
    let mut net = Blocks::seeded(4);
    let (_, all) = net.gradients(&xs, &ys, &Mse);
    net.freeze(2).expect("the block");
    let (_, some) = net.gradients(&xs, &ys, &Mse);
    assert_eq!(some.l2_0, Linear::zeros(), "the block's layer");
    assert_eq!(some.l0, all.l0, "below the block");
    assert_eq!(some.l4, all.l4, "above the block");
    // `gradients_into` over stale values clears them too.
    let mut into = all.clone();
    net.gradients_into(&xs, &ys, &Mse, &mut into);
    assert_eq!(into, some);

    let mut deep = Deep::seeded(5);
    let (xs, ys) = batch();
    let (_, all) = deep.gradients(&xs, &ys, &Mse);
    deep.freeze(2).expect("the middle Linear");
    let (_, some) = deep.gradients(&xs, &ys, &Mse);
    assert_eq!(some.l2, Linear::zeros());
    assert_eq!(
        some.l0, all.l0,
        "through the frozen Linear's input-only step"
    );
    assert_eq!(some.head, all.head);
}

#[test]
fn unfreezing_resumes_training() {
    let (xs, ys) = batch();
    let mut net = Deep::seeded(6);
    let mut opt = Adam::new(0.01);
    net.freeze(0).expect("layer 0");
    for _ in 0..5 {
        net.train_step(&xs, &ys, &Mse, &mut opt);
    }
    let frozen = net.l0.clone();
    net.unfreeze(0).expect("layer 0");
    assert_eq!(net.is_frozen(0), Ok(false));
    for _ in 0..5 {
        net.train_step(&xs, &ys, &Mse, &mut opt);
    }
    assert_ne!(net.l0, frozen, "layer 0 trains again");
    // And `unfreeze_all` lets every layer train.
    net.freeze(0).expect("layer 0");
    net.freeze("head").expect("the head");
    net.unfreeze_all();
    assert_eq!(net.is_frozen("head"), Ok(false));
}

#[test]
fn unknown_layers_are_errors_naming_what_was_asked() {
    let mut net = Deep::zeros();
    let err = net.freeze(5).expect_err("Deep has layers 0 to 4");
    assert_eq!(
        err,
        UnknownLayer {
            network: "Deep",
            layer: LayerRef::Index(5),
            layers: 5,
        }
    );
    assert_eq!(
        err.to_string(),
        "network `Deep` has no layer 5: its layers are 0 to 4"
    );
    let err = net.unfreeze("haed").expect_err("no such name");
    assert_eq!(err.layer, LayerRef::Name("haed"));
    assert!(err.to_string().contains("no layer named `haed`"), "{err}");
    assert!(
        net.is_frozen("4").is_err(),
        "a named layer's prefix is its name"
    );
    // Nothing changed, and a parameter-free layer may be frozen, to no effect.
    assert_eq!(net.is_frozen(4), Ok(false));
    net.freeze(1).expect("the Tanh");
    assert_eq!(net.is_frozen(1), Ok(true));
}

#[test]
fn networks_start_trainable_and_compare_without_their_frozen_flags() {
    let mut net = Deep::seeded(7);
    assert!((0..5).all(|i| net.is_frozen(i) == Ok(false)));
    let copy = net.clone();
    net.freeze(0).expect("layer 0");
    assert_eq!(net, copy, "equality ignores which layers are frozen");
    assert_eq!(net.clone().is_frozen(0), Ok(true), "a clone keeps them");
}
