//! The shaped convolutions' and the pools' forward and backward passes allocate nothing,
//! proven with a counting global allocator: `Conv2d` and `Conv1d` (`forward`, `backward`,
//! `backward_params`) at batch one and above, the digits network's sizes among them, and
//! every pool.
//!
//! One test function only: the counter is global, and tests in one binary run in parallel.

use nalgebra::SMatrix;
use nn_runtime::__private::*;
use nn_runtime::init::Init;
use nn_runtime::{Conv1d, Conv2d};

#[path = "common/counting.rs"]
mod counting;
use counting::allocations;

/// `Conv2d(CIN, COUT, 3, padding = 1)` on `H x H` maps, a batch of `B`: forward, backward
/// and backward_params, returning a value that depends on every result.
macro_rules! conv2d {
    ($cin:literal, $cout:literal, $h:literal, $b:literal) => {{
        type Conv = Conv2d<f32, $cout, $cin, 3, 3, { $cin * 9 }, true>;
        const NI: usize = $cin * $h * $h;
        const NO: usize = $cout * $h * $h;
        let mut conv = Conv::zeros();
        conv.reset(&mut Init::new(1));
        let mut grads = Conv::zeros();
        let x = SMatrix::<f32, NI, $b>::from_fn(|r, c| (r + 2 * c) as f32 * 0.01);
        let dy = SMatrix::<f32, NO, $b>::from_element(0.5);
        move || {
            let y = conv.forward::<$cin, 1, $h, $h, $h, $h, 1, 1, 1, 1, 1, 1, NI, NO, $b>(&x);
            let dx = conv.backward::<$cin, 1, $h, $h, $h, $h, 1, 1, 1, 1, 1, 1, NI, NO, $b>(
                &x, &dy, &mut grads,
            );
            conv.backward_params::<$cin, 1, $h, $h, $h, $h, 1, 1, 1, 1, 1, 1, NI, NO, $b>(
                &x, &dy, &mut grads,
            );
            std::hint::black_box(y.sum() + dx.sum() + grads.weight.sum())
        }
    }};
}

#[test]
fn shaped_layers_allocate_nothing() {
    let conv1d = {
        type Conv = Conv1d<f32, 6, 2, 3, 6, false>;
        let mut conv = Conv::zeros();
        conv.reset(&mut Init::new(2));
        let mut grads = Conv::zeros();
        let x = SMatrix::<f32, 40, 3>::from_fn(|r, c| (r * 3 + c) as f32 * 0.01);
        let dy = SMatrix::<f32, 24, 3>::from_element(0.5);
        move || {
            let y = conv.forward::<4, 2, 10, 4, 2, 1, 2, 40, 24, 3>(&x);
            let dx = conv.backward::<4, 2, 10, 4, 2, 1, 2, 40, 24, 3>(&x, &dy, &mut grads);
            conv.backward_params::<4, 2, 10, 4, 2, 1, 2, 40, 24, 3>(&x, &dy, &mut grads);
            std::hint::black_box(y.sum() + dx.sum() + grads.weight.sum())
        }
    };
    let pools = {
        let x = SMatrix::<f32, 64, 4>::from_fn(|r, c| ((r * 7 + c * 3) % 11) as f32);
        let dy = SMatrix::<f32, 16, 4>::from_element(0.5);
        let dg = SMatrix::<f32, 4, 4>::from_element(0.5);
        move || {
            let mut sum = max_pool2d::<f32, 4, 4, 4, 2, 2, 2, 2, 2, 2, 0, 0, 64, 16, 4>(&x).sum();
            sum += max_pool2d_backward::<f32, 4, 4, 4, 2, 2, 2, 2, 2, 2, 0, 0, 64, 16, 4>(&x, &dy)
                .sum();
            sum += avg_pool2d::<f32, 4, 4, 4, 2, 2, 2, 2, 2, 2, 0, 0, 64, 16, 4>(&x).sum();
            sum +=
                avg_pool2d_backward::<f32, 4, 4, 4, 2, 2, 2, 2, 2, 2, 0, 0, 64, 16, 4>(&dy).sum();
            sum += adaptive_avg_pool2d_1::<f32, 4, 16, 64, 4>(&x).sum();
            sum += adaptive_avg_pool2d_1_backward::<f32, 4, 16, 64, 4>(&dg).sum();
            sum += max_pool1d::<f32, 4, 16, 4, 4, 4, 0, 64, 16, 4>(&x).sum();
            sum += max_pool1d_backward::<f32, 4, 16, 4, 4, 4, 0, 64, 16, 4>(&x, &dy).sum();
            sum += avg_pool1d::<f32, 4, 16, 4, 4, 4, 0, 64, 16, 4>(&x).sum();
            sum += avg_pool1d_backward::<f32, 4, 16, 4, 4, 4, 0, 64, 16, 4>(&dy).sum();
            sum += adaptive_avg_pool1d_1::<f32, 4, 16, 64, 4>(&x).sum();
            sum += adaptive_avg_pool1d_1_backward::<f32, 4, 16, 64, 4>(&dg).sum();
            std::hint::black_box(sum)
        }
    };
    let mut runs: Vec<Box<dyn FnMut() -> f32 + Send>> = vec![
        Box::new(conv2d!(1, 16, 8, 1)),
        Box::new(conv2d!(1, 16, 8, 8)),
        Box::new(conv2d!(16, 32, 4, 1)),
        Box::new(conv2d!(16, 32, 4, 8)),
        Box::new(conv2d!(2, 3, 5, 2)),
        Box::new(conv1d),
        Box::new(pools),
    ];
    // On a thread with a large stack (whole batches live on it in an unoptimised build); once
    // to warm up (the processor's features are detected on first use), then counted.
    std::thread::Builder::new()
        .stack_size(64 << 20)
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
