//! Batch normalisation's passes and dropout's kernels allocate nothing, proven with a counting
//! global allocator: `BatchNorm`'s `train_forward`, `eval_forward`, `backward`,
//! `backward_params` and `update_running` (flat and on maps, with and without `AFFINE`), and
//! `dropout`, `dropout_backward` and `DropoutKey`.
//!
//! One test function only: the counter is global, and tests in one binary run in parallel.

use nalgebra::SMatrix;
use nn_runtime::__private::*;
use nn_runtime::init::Init;

#[path = "common/counting.rs"]
mod counting;
use counting::allocations;

/// A training step and an inference pass of `BatchNorm<f32, C, AFFINE>` on `N = C S`
/// features, a batch of `B`, returning a value that depends on every result.
macro_rules! batch_norm {
    ($c:literal, $s:literal, $b:literal, $affine:literal) => {{
        const N: usize = $c * $s;
        let mut bn = BatchNorm::<f32, $c, $affine>::zeros();
        bn.reset(&mut Init::new(1));
        let mut grads = BatchNorm::<f32, $c, $affine>::zeros();
        let x = SMatrix::<f32, N, $b>::from_fn(|r, c| ((r * 3 + c) as f32 * 0.37).sin());
        let dy = SMatrix::<f32, N, $b>::from_fn(|r, c| ((r + 5 * c) as f32 * 0.11).cos());
        move || {
            let (y, stats) = bn.train_forward::<N, $s, $b>(&x, 1e-5);
            let dx = bn.backward::<N, $s, $b>(&x, &dy, &stats, &mut grads);
            bn.backward_params::<N, $s, $b>(&x, &dy, &stats, &mut grads);
            bn.update_running(&stats, 0.1, $s * $b);
            let z = bn.eval_forward::<N, $s, $b>(&x, 1e-5);
            std::hint::black_box(y.sum() + dx.sum() + z.sum() + grads.weight.sum())
        }
    }};
}

#[test]
fn batch_norm_and_dropout_allocate_nothing() {
    let mut flat = batch_norm!(16, 1, 32, true);
    let mut maps = batch_norm!(8, 49, 4, true);
    let mut plain = batch_norm!(3, 25, 1, false);
    let x = SMatrix::<f32, 64, 16>::from_element(1.0);
    let dy = SMatrix::<f64, 10, 3>::from_element(2.0);
    let mut steps = DropoutKey::seeded(3);
    // Warm up (any lazily initialised state of the test harness), then count.
    flat();
    let n = allocations(|| {
        flat();
        maps();
        plain();
        let y = dropout(&x, 0.25f32, steps.key(), 2);
        let dx = dropout_backward(dy, 0.5f64, steps.key(), 0);
        steps.advance();
        std::hint::black_box(y.sum() as f64 + dx.sum());
    });
    assert_eq!(n, 0, "batch norm or dropout allocated {n} times");
}
