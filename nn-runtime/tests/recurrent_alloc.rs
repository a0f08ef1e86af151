//! The recurrent blocks' and the causal convolution's time steps allocate nothing, proven with a
//! counting global allocator: `step`, `step_only` and `step_backward` of `Gru`, `Lstm`, `Rnn`
//! and `CausalConv1d`, at batch one (the constant-size kernels) and above (the general ones),
//! one layer and two (for the recurrent blocks).
//!
//! One test function only: the counter is global, and tests in one binary run in parallel.

use nalgebra::SMatrix;
use nn_runtime::__private::{ConvCache, GruCache, LstmCache, RnnCache};
use nn_runtime::init::Init;
use nn_runtime::{CausalConv1d, ConvState, Gru, HiddenState, Lstm, LstmState, Rnn};

#[path = "common/counting.rs"]
mod counting;
use counting::allocations;

/// Runs a window forward (`step` and `step_only`) and backward through a block, returning a
/// value that depends on every result so that nothing is optimised away.
macro_rules! window {
    ($ty:ty, $state:ident, $cache:ident, $in:literal, $h:literal, $l:literal, $b:literal) => {{
        let mut net = <$ty>::zeros();
        net.reset(&mut Init::new(1));
        let mut grads = <$ty>::zeros();
        let mut state = $state::<f32, $h, $l, $b>::zeros();
        let mut other = state.clone();
        let mut caches = [$cache::zeros(), $cache::zeros(), $cache::zeros()];
        let x = SMatrix::<f32, $in, $b>::from_fn(|r, c| (r + 2 * c) as f32 * 0.1);
        let dh = SMatrix::<f32, $h, $b>::from_element(0.5);
        move || {
            let mut sum = 0.0;
            for cache in &mut caches {
                sum += net.step(&x, &mut state, cache).sum();
                sum += net.step_only(&x, &mut other).sum();
            }
            let mut carry = $state::zeros();
            for cache in caches.iter().rev() {
                sum += net.step_backward(cache, &dh, &mut carry, &mut grads).sum();
            }
            std::hint::black_box(sum)
        }
    }};
}

/// [`window!`] for a causal convolution `Conv1d(IN, OUT, K, dilation = DIL)` (the ring starting
/// mid-way, so that it wraps within the window).
macro_rules! conv_window {
    ($in:literal, $out:literal, $k:literal, $dil:literal, $b:literal) => {{
        const SPAN: usize = ($k - 1) * $dil + 1;
        type Conv = CausalConv1d<f32, $in, $out, $k, { $in * $k }, $dil, SPAN, true>;
        let mut net = Conv::zeros();
        net.reset(&mut Init::new(1));
        let mut grads = Conv::zeros();
        let mut state = ConvState::<f32, $in, SPAN, $b>::zeros();
        state.next = SPAN / 2;
        let mut other = state.clone();
        let mut caches: [ConvCache<f32, $in, $k, $b>; 3] = Default::default();
        let x = SMatrix::<f32, $in, $b>::from_fn(|r, c| (r + 2 * c) as f32 * 0.1);
        let dy = SMatrix::<f32, $out, $b>::from_element(0.5);
        move || {
            let mut sum = 0.0;
            for cache in &mut caches {
                sum += net.step(&x, &mut state, cache).sum();
                sum += net.step_only(&x, &mut other).sum();
            }
            let mut carry = ConvState::zeros();
            for cache in caches.iter().rev() {
                sum += net.step_backward(cache, &dy, &mut carry, &mut grads).sum();
            }
            std::hint::black_box(sum)
        }
    }};
}

#[test]
fn time_steps_allocate_nothing() {
    let mut runs: Vec<Box<dyn FnMut() -> f32>> = vec![
        Box::new(window!(Gru<f32, 1, 16, 48, 1, 0, true>, HiddenState, GruCache, 1, 16, 1, 1)),
        Box::new(window!(Gru<f32, 3, 8, 24, 2, 1, false>, HiddenState, GruCache, 3, 8, 2, 4)),
        Box::new(window!(Lstm<f32, 1, 16, 64, 1, 0, true>, LstmState, LstmCache, 1, 16, 1, 1)),
        Box::new(window!(Lstm<f32, 4, 16, 64, 2, 1, true>, LstmState, LstmCache, 4, 16, 2, 8)),
        Box::new(
            window!(Rnn<f32, 2, 16, 16, 1, 0, true, false>, HiddenState, RnnCache, 2, 16, 1, 1),
        ),
        Box::new(
            window!(Rnn<f32, 2, 16, 16, 2, 1, true, true>, HiddenState, RnnCache, 2, 16, 2, 3),
        ),
        Box::new(conv_window!(1, 8, 3, 1, 1)),
        Box::new(conv_window!(8, 8, 3, 2, 1)),
        Box::new(conv_window!(8, 16, 3, 2, 4)),
    ];
    // Once to warm up (the processor's features are detected on first use), then counted.
    for run in &mut runs {
        run();
    }
    for (i, run) in runs.iter_mut().enumerate() {
        assert_eq!(allocations(|| _ = run()), 0, "block {i} allocated");
    }
}
