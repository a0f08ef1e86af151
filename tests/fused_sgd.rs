//! `train_step` with plain SGD folds the update into the backward pass (no gradient stored, each
//! layer stepped right after the gradient for the layer below was taken from its old weights);
//! every other optimizer takes gradients first and then calls `Optimizer::step`. Both must give
//! the same losses and parameters as an optimizer doing `p -= lr * g` by hand, at a batch of one
//! (the constant-size kernels) and larger batches, through residual blocks, and for a network
//! nesting another (which always takes the general path), in `f32` (the AVX2 kernels) and
//! `f64` (nalgebra's products).

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

network! {
    /// The online shape in `f64`.
    struct Online64: f64 { Linear(16, 32), Tanh, Linear(32, 32), Tanh, Linear(32, 4) }
}

network! {
    /// The odd sizes in `f64`.
    struct Odd64: f64 { Linear(5, 13), ReLU, Residual(Linear(13, 13), Tanh), Linear(13, 3) }
}

const LR: f64 = 0.05;

/// A deterministic matrix with entries in [-1, 1).
fn matrix<T: Real, const R: usize, const C: usize>(salt: u32) -> SMatrix<T, R, C> {
    SMatrix::from_fn(|r, c| {
        let i = (r * C + c) as u32;
        T::cast((i.wrapping_mul(2654435761).wrapping_add(salt) % 1000) as f64 / 500.0 - 1.0)
    })
}

/// Every parameter of `net`, flattened in state_dict order.
fn flat<T: Real, N: Tensors<T>>(net: &N) -> Vec<T> {
    let mut all = Vec::new();
    net.visit("", &mut |_, _, tensor| all.extend_from_slice(tensor));
    all
}

/// `p -= lr * g` written out by hand, and not declared plain SGD: `train_step` takes the
/// general path with it (gradients stored, then `step`).
struct ByHand<T>(T);

impl<T: Real> Optimizer<T> for ByHand<T> {
    fn step(&mut self, params: &mut [&mut [T]], grads: &[&[T]]) {
        for (p, g) in params.iter_mut().zip(grads) {
            for (p, &g) in p.iter_mut().zip(g.iter()) {
                *p -= self.0 * g;
            }
        }
    }

    fn lr(&self) -> T {
        self.0
    }

    fn set_lr(&mut self, lr: T) {
        self.0 = lr;
    }
}

/// Asserts that two parameter lists agree to a few ulp (`tolerance`) of the larger magnitude.
fn assert_close<T: Real>(got: &[T], want: &[T], tolerance: f64, what: &str) {
    assert_eq!(got.len(), want.len());
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs().widen() <= tolerance * (1.0 + w.abs().widen()),
            "{what}: parameter {i}: {g} vs {w}"
        );
    }
}

/// Three steps with `Sgd` (fused) against three with [`ByHand`] (general path): same losses,
/// same parameters.
macro_rules! check {
    ($net:ty, $t:ty, $tolerance:expr, $in:literal, $out:literal, $batch:literal, $what:literal) => {{
        let xs = matrix::<$t, $in, $batch>(1);
        let ys = matrix::<$t, $out, $batch>(2);
        let mut fused = <$net>::seeded(7);
        let mut general = fused.clone();
        let lr = <$t as Real>::cast(LR);
        let (mut sgd, mut by_hand) = (Sgd::new(lr), ByHand(lr));
        for step in 0..3 {
            let loss = fused.train_step(&xs, &ys, &Mse, &mut sgd);
            let want = general.train_step(&xs, &ys, &Mse, &mut by_hand);
            assert!(
                (loss - want).abs().widen() <= $tolerance * want.abs().widen(),
                "{} step {step}",
                $what
            );
            assert_close(&flat(&fused), &flat(&general), $tolerance, $what);
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
    check!(Online, f32, 1e-6, 16, 4, 1, "online, batch 1");
    check!(Online, f32, 1e-6, 16, 4, 6, "online, batch 6");
    check!(Odd, f32, 1e-6, 5, 3, 1, "odd sizes, batch 1");
    check!(Odd, f32, 1e-6, 5, 3, 9, "odd sizes, batch 9");
    check!(Outer, f32, 1e-6, 5, 2, 1, "nested, batch 1");
    check!(Outer, f32, 1e-6, 5, 2, 4, "nested, batch 4");
}

#[test]
fn plain_sgd_train_step_equals_gradients_then_update_in_f64() {
    check!(Online64, f64, 1e-14, 16, 4, 1, "online f64, batch 1");
    check!(Online64, f64, 1e-14, 16, 4, 6, "online f64, batch 6");
    check!(Odd64, f64, 1e-14, 5, 3, 1, "odd sizes f64, batch 1");
    check!(Odd64, f64, 1e-14, 5, 3, 9, "odd sizes f64, batch 9");
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
