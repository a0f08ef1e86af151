//! Proof that `nn-runtime` trains networks without the standard library and without `alloc`.
//!
//! This crate is `#![no_std]` and depends on `nn-runtime` with its default `std` feature off
//! (the workspace's `nn-runtime` dependency has it off; every other member turns it on). It
//! declares two networks, trains them through the public API with every optimizer, each
//! keeping its state in a buffer rather than on a heap, and returns the bits of what came out:
//! [`run`]. The unit test below compares them with `tests/fixtures/no_std_bits.txt`; the root
//! package's `tests/no_std_bits.rs` runs the same [`run`] with `std` on and compares them with
//! the same file, so both builds are held to the same bits. That test writes the file, from
//! the `std` build, when `UPDATE_FIXTURES=1` is set.
//!
//! CI (`.ci/run`) builds and tests this crate alone, and checks with `cargo tree` that no
//! `std` feature and no std-only crate is in its build.
#![no_std]
#![deny(warnings, missing_docs, unused)]

pub mod coverage;

use nn_runtime::prelude::*;
use nn_runtime::real::math;

network! {
    /// Two features to one output through two hidden layers.
    pub struct Regressor { Linear(2, 8), Tanh, Linear(8, 8), GELU, Linear(8, 1) }

    /// A GRU over two features per step, read out by a linear layer.
    pub struct Recurrent { GRU(2, 4), Linear(4, 1) }
}

/// Samples per batch.
const BATCH: usize = 16;

/// Steps of the sequence `process_block` runs.
const SEQUENCE: usize = 8;

/// How many values [`run`] returns.
pub const VALUES: usize = 12 + 4 + SEQUENCE + 1 + 3 + 1;

/// What each value of [`run`] is, in order (the fixture file's labels).
pub const LABELS: [&str; VALUES] = [
    "regressor adam first loss",
    "regressor adam last loss",
    "regressor sgd momentum first loss",
    "regressor sgd momentum last loss",
    "regressor plain sgd first loss",
    "regressor plain sgd last loss",
    "regressor gradients loss",
    "regressor gradient of the last bias",
    "recurrent adamw first loss",
    "recurrent adamw last loss",
    "recurrent rmsprop first loss",
    "recurrent rmsprop last loss",
    "regressor output 0",
    "regressor output 1",
    "regressor output 2",
    "regressor output 3",
    "recurrent process_block 0",
    "recurrent process_block 1",
    "recurrent process_block 2",
    "recurrent process_block 3",
    "recurrent process_block 4",
    "recurrent process_block 5",
    "recurrent process_block 6",
    "recurrent process_block 7",
    "recurrent step after the block",
    "coverage: shaped (conv, batch norm, pools, layer norm, dropout) adam last loss",
    "coverage: family32 (every activation) rmsprop last loss",
    "coverage: amp (residual lstm) process_block last output",
    "regressor written to safetensors bytes and read back: output 0",
];

/// Inputs spread over `[-1, 1]^2` and the target `sin(2 x0) x1 + 0.3`, computed with the
/// runtime's own math (core has no `sin`).
fn data() -> (SMatrix<f32, 2, BATCH>, SMatrix<f32, 1, BATCH>) {
    let xs = SMatrix::<f32, 2, BATCH>::from_fn(|r, c| {
        let k = (c * 7 + r * 5) % BATCH;
        k as f32 / (BATCH - 1) as f32 * 2.0 - 1.0
    });
    let ys =
        SMatrix::<f32, 1, BATCH>::from_fn(|_, c| math::sin(2.0 * xs[(0, c)]) * xs[(1, c)] + 0.3);
    (xs, ys)
}

/// Trains `steps` steps, returning the first and the last step's loss (before its update).
fn train<O: Optimizer<f32>>(
    steps: usize,
    mut step: impl FnMut(&mut O) -> f32,
    optimizer: &mut O,
) -> [f32; 2] {
    let first = step(optimizer);
    let mut last = first;
    for _ in 1..steps {
        last = step(optimizer);
    }
    [first, last]
}

/// Trains both networks with every optimizer, each keeping its state in a buffer, and returns
/// the bits of the losses, the outputs, and a sequence's outputs (see [`LABELS`]).
pub fn run() -> [u32; VALUES] {
    let (xs, ys) = data();
    let mut values = [0.0f32; VALUES];

    // Adam over state in an array it owns: two moments per parameter.
    let mut net = Regressor::seeded(7);
    let mut adam =
        Adam::new(0.01f32).with_state([0.0f32; Adam::<f32>::STATE_PER_PARAM * Regressor::PARAMS]);
    let losses = train(60, |o| net.train_step(&xs, &ys, &Mse, o), &mut adam);
    values[0..2].copy_from_slice(&losses);
    // SGD with Nesterov momentum over a borrowed buffer.
    let mut buffer = [0.0f32; Sgd::<f32>::STATE_PER_PARAM * Regressor::PARAMS];
    let mut sgd = Sgd::new(0.05f32)
        .momentum(0.9)
        .nesterov(true)
        .with_state(&mut buffer[..]);
    let losses = train(20, |o| net.train_step(&xs, &ys, &Mse, o), &mut sgd);
    values[2..4].copy_from_slice(&losses);
    // Plain SGD keeps no state: no buffer (and the step folds the update into the backward
    // pass).
    let mut plain = Sgd::new(0.02f32);
    let losses = train(10, |o| net.train_step(&xs, &ys, &Mse, o), &mut plain);
    values[4..6].copy_from_slice(&losses);
    let (loss, grads) = net.gradients(&xs, &ys, &Mse);
    values[6] = loss;
    values[7] = grads.l4.bias[0];

    // The GRU network, trained on the same batch as one time step from the zero state.
    let mut rnn = Recurrent::seeded(11);
    let mut adamw = AdamW::new(0.02f32)
        .weight_decay(0.05)
        .with_state([0.0f32; AdamW::<f32>::STATE_PER_PARAM * Recurrent::PARAMS]);
    let losses = train(30, |o| rnn.train_step(&xs, &ys, &Mse, o), &mut adamw);
    values[8..10].copy_from_slice(&losses);
    let mut state = [0.0f32; RmsProp::<f32>::STATE_PER_PARAM * Recurrent::PARAMS];
    let mut rmsprop = RmsProp::new(0.005f32)
        .momentum(0.5)
        .centered(true)
        .with_state(&mut state[..]);
    let losses = train(30, |o| rnn.train_step(&xs, &ys, &Mse, o), &mut rmsprop);
    values[10..12].copy_from_slice(&losses);

    // Inference: single samples through the regressor, a sequence through the GRU.
    for (i, value) in values[12..16].iter_mut().enumerate() {
        *value = net.forward(&xs.column(3 * i).into_owned())[0];
    }
    let inputs: [SVector<f32, 2>; SEQUENCE] = core::array::from_fn(|t| xs.column(t).into_owned());
    let mut outputs = [SVector::<f32, 1>::zeros(); SEQUENCE];
    let mut hidden = RecurrentState::zeros();
    rnn.process_block(&inputs, &mut outputs, &mut hidden);
    for (value, output) in values[16..16 + SEQUENCE].iter_mut().zip(&outputs) {
        *value = output[0];
    }
    values[16 + SEQUENCE] = rnn.step(&inputs[0], &mut hidden)[0];
    values[17 + SEQUENCE..VALUES - 1].copy_from_slice(&coverage());
    values[VALUES - 1] = reloaded(&net, &xs.column(0).into_owned());

    values.map(f32::to_bits)
}

/// Writes `net` as a safetensors file into a buffer on the stack, reads it back into a new
/// network, and returns its output for `x` (NaN if either step failed): weights in and out
/// without a heap.
fn reloaded(net: &Regressor, x: &SVector<f32, 2>) -> f32 {
    let mut buffer = [0u8; 2048];
    let Ok(len) = nn_runtime::weights::write_safetensors_into(net, &mut buffer) else {
        return f32::NAN;
    };
    match Regressor::from_safetensors_bytes(&buffer[..len]) {
        Ok(back) => back.forward(x)[0],
        Err(_) => f32::NAN,
    }
}

/// The other layer kinds, with the runtime's `std` off: a convolutional network with batch
/// norm and dropout trained by Adam, every activation trained by RMSprop, an LSTM amp model
/// run over a block.
fn coverage() -> [f32; 3] {
    use coverage::{Amp, Family32, Shaped};
    let wave = |r: usize, c: usize, k: f32| math::sin((r * 3 + c * 5) as f32 * k);
    let xs = SMatrix::<f32, 36, 4>::from_fn(|r, c| wave(r, c, 0.37));
    let ys = SMatrix::<f32, 3, 4>::from_fn(|r, c| wave(r, c, 0.11));
    let mut shaped = Shaped::seeded(3);
    let mut adam =
        Adam::new(0.01f32).with_state([0.0f32; Adam::<f32>::STATE_PER_PARAM * Shaped::PARAMS]);
    let [_, shaped_loss] = train(5, |o| shaped.train_step(&xs, &ys, &Mse, o), &mut adam);

    let xs = SMatrix::<f32, 4, 8>::from_fn(|r, c| wave(r, c, 0.23));
    let ys = SMatrix::<f32, 3, 8>::from_fn(|r, c| 0.5 + 0.4 * wave(r, c, 0.31));
    let mut family = Family32::seeded(5);
    let mut state = [0.0f32; RmsProp::<f32>::STATE_PER_PARAM * Family32::PARAMS];
    let mut rmsprop = RmsProp::new(0.01f32).with_state(&mut state[..]);
    let [_, family_loss] = train(5, |o| family.train_step(&xs, &ys, &Mse, o), &mut rmsprop);

    let amp = Amp::seeded(9);
    let input: [f32; 32] = core::array::from_fn(|t| wave(t, 0, 0.2));
    let mut output = [0.0f32; 32];
    amp.process_block(&input, &mut output, &mut coverage::AmpState::zeros());
    [shaped_loss, family_loss, output[31]]
}

/// The values of a fixture file (`label 0x3f800000` per line, `#` comments), in order; `None`
/// where a line does not parse or the count is not [`VALUES`].
pub fn parse_fixture(text: &str) -> Option<[u32; VALUES]> {
    let mut values = [0u32; VALUES];
    let mut count = 0;
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (_, hex) = line.rsplit_once(' ')?;
        *values.get_mut(count)? = u32::from_str_radix(hex.strip_prefix("0x")?, 16).ok()?;
        count += 1;
    }
    (count == VALUES).then_some(values)
}

#[cfg(test)]
mod tests {
    /// The no_std build's bits are the fixture's, which the std build wrote and checks too.
    #[test]
    fn run_matches_the_fixture() {
        let text = include_str!("../../fixtures/no_std_bits.txt");
        let want = super::parse_fixture(text).expect("a malformed tests/fixtures/no_std_bits.txt");
        let got = super::run();
        for (i, (got, want)) in got.iter().zip(&want).enumerate() {
            assert_eq!(
                got,
                want,
                "{}: {} against the fixture's {} (regenerate with UPDATE_FIXTURES=1 cargo test --test no_std_bits)",
                super::LABELS[i],
                f32::from_bits(*got),
                f32::from_bits(*want)
            );
        }
    }
}
