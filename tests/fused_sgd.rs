//! `train_step` with plain SGD folds the update into the backward pass (no gradient stored, each
//! layer stepped right after the gradient for the layer below was taken from its old weights);
//! every other optimizer takes gradients first and then calls `Optimizer::step`. Both must give
//! the same losses and parameters as an optimizer doing `p -= lr * g` by hand, at a batch of one
//! (the constant-size kernels) and larger batches, through residual blocks, and for a network
//! nesting another (which always takes the general path).

use nn_runtime::Tensors;
use nn_runtime::prelude::*;

network! {
    /// The online workload's shape: whole vectors, and a 4-output layer.
    struct Online { Linear(16, 32), Tanh, Linear(32, 32), Tanh, Linear(32, 4) }
}

network! {
    /// Sizes that are not multiples of 8, a residual block, ReLU.
    struct Odd { Linear(5, 13), ReLU, Residual(Linear(13, 13), Tanh), Linear(13, 3) }
}

network! {
    /// A network nesting another.
    struct Outer { Odd, Sigmoid, Linear(3, 2) }
}

const LR: f32 = 0.05;

/// A deterministic matrix with entries in [-1, 1).
fn matrix<const R: usize, const C: usize>(salt: u32) -> SMatrix<f32, R, C> {
    SMatrix::from_fn(|r, c| {
        let i = (r * C + c) as u32;
        (i.wrapping_mul(2654435761).wrapping_add(salt) % 1000) as f32 / 500.0 - 1.0
    })
}

/// Every parameter of `net`, flattened in state_dict order.
fn flat<N: Tensors<f32>>(net: &N) -> Vec<f32> {
    let mut all = Vec::new();
    net.visit("", &mut |_, _, tensor| all.extend_from_slice(tensor));
    all
}

/// `p -= lr * g` written out by hand, and not declared plain SGD: `train_step` takes the
/// general path with it (gradients stored, then `step`).
struct ByHand(f32);

impl Optimizer<f32> for ByHand {
    fn step(&mut self, params: &mut [&mut [f32]], grads: &[&[f32]]) {
        for (p, g) in params.iter_mut().zip(grads) {
            for (p, &g) in p.iter_mut().zip(g.iter()) {
                *p -= self.0 * g;
            }
        }
    }
}

/// Asserts that two parameter lists agree to a few ulp of the larger magnitude.
fn assert_close(got: &[f32], want: &[f32], what: &str) {
    assert_eq!(got.len(), want.len());
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= 1e-6 * (1.0 + w.abs()),
            "{what}: parameter {i}: {g} vs {w}"
        );
    }
}

/// Three steps with `Sgd` (fused) against three with [`ByHand`] (general path): same losses,
/// same parameters.
macro_rules! check {
    ($net:ty, $in:literal, $out:literal, $batch:literal, $what:literal) => {{
        let xs = matrix::<$in, $batch>(1);
        let ys = matrix::<$out, $batch>(2);
        let mut fused = <$net>::seeded(7);
        let mut general = fused.clone();
        let (mut sgd, mut by_hand) = (Sgd::new(LR), ByHand(LR));
        for step in 0..3 {
            let loss = fused.train_step(&xs, &ys, &Mse, &mut sgd);
            let want = general.train_step(&xs, &ys, &Mse, &mut by_hand);
            assert!(
                (loss - want).abs() <= 1e-6 * want.abs(),
                "{} step {step}",
                $what
            );
            assert_close(&flat(&fused), &flat(&general), $what);
        }
        assert_ne!(
            flat(&fused),
            flat(&<$net>::seeded(7)),
            "{}: nothing learned",
            $what
        );
    }};
}

#[test]
fn plain_sgd_train_step_equals_gradients_then_update() {
    check!(Online, 16, 4, 1, "online, batch 1");
    check!(Online, 16, 4, 6, "online, batch 6");
    check!(Odd, 5, 3, 1, "odd sizes, batch 1");
    check!(Odd, 5, 3, 9, "odd sizes, batch 9");
    check!(Outer, 5, 2, 1, "nested, batch 1");
    check!(Outer, 5, 2, 4, "nested, batch 4");
}

#[test]
fn only_plain_sgd_is_fused() {
    assert_eq!(Sgd::new(0.1f32).plain_sgd_rate(), Some(0.1));
    assert_eq!(Sgd::new(0.1f32).momentum(0.9).plain_sgd_rate(), None);
    assert_eq!(Sgd::new(0.1f32).weight_decay(0.01).plain_sgd_rate(), None);
    assert_eq!(Adam::new(0.1f32).plain_sgd_rate(), None);
    assert_eq!(AdamW::new(0.1f32).plain_sgd_rate(), None);
    assert_eq!(RmsProp::new(0.1f32).plain_sgd_rate(), None);
}
