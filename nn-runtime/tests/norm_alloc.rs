//! `LayerNorm`'s forward and backward passes allocate nothing, proven with a counting global
//! allocator: `forward`, `backward` and `backward_params`, over one group and several, with
//! and without the affine parameters, at batch one and above, in both precisions.
//!
//! One test function only: the counter is global, and tests in one binary run in parallel.

use nalgebra::SMatrix;
use nn_runtime::LayerNorm;
use nn_runtime::init::Init;

#[path = "common/counting.rs"]
mod counting;
use counting::allocations;

/// `LayerNorm<T, G, AFFINE, BIAS>` on `N` features, a batch of `B`: forward, backward and
/// backward_params, returning a value that depends on every result.
macro_rules! norm {
    ($t:ty, $g:literal, $affine:literal, $bias:literal, $n:literal, $b:literal) => {{
        type Norm = LayerNorm<$t, $g, $affine, $bias>;
        let mut norm = Norm::zeros();
        norm.reset(&mut Init::new(1));
        let mut grads = Norm::zeros();
        let x = SMatrix::<$t, $n, $b>::from_fn(|r, c| ((r * r + 3 * c) % 7) as $t * 0.1);
        let dy = SMatrix::<$t, $n, $b>::from_fn(|r, c| (r + c) as $t * 0.01);
        move || {
            let y = norm.forward(&x, 1e-5);
            let dx = norm.backward(&x, &dy, 1e-5, &mut grads);
            norm.backward_params(&x, &dy, 1e-5, &mut grads);
            std::hint::black_box((y.sum() + dx.sum() + grads.weight.sum()) as f64)
        }
    }};
}

#[test]
fn layer_norm_allocates_nothing() {
    let mut runs: Vec<Box<dyn FnMut() -> f64 + Send>> = vec![
        Box::new(norm!(f32, 6, true, true, 6, 1)),
        Box::new(norm!(f32, 6, true, true, 6, 8)),
        Box::new(norm!(f32, 4, true, false, 24, 5)),
        Box::new(norm!(f32, 16, false, false, 256, 8)),
        Box::new(norm!(f64, 8, true, true, 8, 3)),
        Box::new(norm!(f64, 4, false, true, 12, 1)),
    ];
    // Once to warm up, then counted.
    std::thread::Builder::new()
        .stack_size(16 << 20)
        .spawn(move || {
            for run in &mut runs {
                run();
            }
            for (i, run) in runs.iter_mut().enumerate() {
                assert_eq!(allocations(|| _ = run()), 0, "run {i} allocated");
            }
        })
        .expect("spawn")
        .join()
        .expect("nothing allocated");
}
