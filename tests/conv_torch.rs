//! PyTorch parity of the shaped layers (`Unflatten`, `Flatten`, `Conv2d`, `Conv1d` over a
//! sample's length, and the pooling layers `MaxPool2d`, `AvgPool2d`, `AdaptiveAvgPool2d`,
//! `MaxPool1d`, `AvgPool1d`) in whole networks, in `f32` and `f64`, on the fixtures
//! `tests/fixtures/conv/*.json` written by `scripts/torch_conv.py` (its docstring states the
//! layout of every field, the torch module of every layer and how the data are kept off ReLU's
//! kink and off ties of a max-pool window).
//!
//! Each row of the table below declares a network with `network!`; the fixture of the same
//! dtype and layer list holds torch's `nn.Sequential` of the same layers, its parameters (by
//! `state_dict` name, nested as torch's shapes), a batch of 5 samples (each sample's flat
//! features, channel first and row-major, one column per sample here) and targets, and what
//! torch computed. For each row this test
//!
//! - checks the network's tensors against the fixture: `state_dict` names in order
//!   (`Tensors::visit`), torch's shape for each (`[out, in / groups, kh, kw]` for a `Conv2d`
//!   weight), `IN` and `OUT`;
//! - loads the parameters by name (`nn_testkit::fixtures::set_tensors`, through `Tensors`);
//! - compares `forward_batch` of the batch, and `forward` of each sample alone, with torch's
//!   outputs;
//! - compares the loss (`Mse`, torch's `nn.MSELoss()`: the mean over every sample and output)
//!   and every parameter's gradient by name from `gradients`;
//! - trains 5 steps of `train_step` with `Adam::new(0.01)` on the same batch (torch's
//!   `Adam(lr=0.01)`, whose class and arguments the fixture states) and compares each step's
//!   loss and the parameters after the last step.
//!
//! The gradient struct has no `Tensors` impl; gradients are read by name through
//! `Network::tensors` (the optimizers' flat view, each gradient beside its parameter), whose
//! order `nn_testkit::fixtures::named_gradients` checks against `Tensors::visit`'s, tensor by
//! tensor. Every fixture must be matched by a row and every row by a fixture, every name of a
//! fixture's parameters must be one of the network's tensors and vice versa, and the number of
//! comparisons is asserted, so nothing goes unchecked silently.
//!
//! The matching of fixtures and rows, the comparisons within the tolerances and the report of
//! every mismatch are `nn_testkit::parity`'s (shared with the other parity tests); this file
//! holds the tolerances, the table and what its checks compare.

use nn_runtime::prelude::*;
use nn_testkit::parity::{Suite, Tolerances, run_table};

// ------------------------------------------------------------------------------------------------
// Tolerances: `|ours - torch| <= REL * |torch| + ABS`.

/// Relative tolerance in `f32`: about 84 units in the last place. A convolution's output is a
/// sum of at most 36 products (`in / groups * kh * kw`, here up to `4 * 3 * 2` and `2 * 3 * 3`),
/// a pooled value a mean of a few of them, and a weight's gradient a sum over the batch and
/// every output position (up to `5 * 64` terms); each is summed in another order than torch's
/// kernels (im2col and a blocked GEMM, or its direct kernels), so the results differ by a few
/// units in the last place of the terms, times a small factor, and no more: nothing here is
/// iterated.
const F32_REL: f64 = 1e-5;

/// Absolute floor in `f32`, for values near zero: a gradient entry or an output is a sum of
/// terms of both signs, and its rounding error is `f32::EPSILON` (1.2e-7) times the terms'
/// magnitude, not the small result's, so a relative test alone would fail on correct values.
/// `1e-6` decides only for values below `ABS / REL = 0.1`. Measured by the script (printed when
/// it runs): torch's own `f32` results, against the exact (`f64`) results at the same `f32`
/// inputs, use at most 0.04 of this tolerance in every category, the trained parameters
/// included.
const F32_ABS: f64 = 1e-6;

/// Relative tolerance in `f64`: about `4.5e5` units in the last place, the same reasoning.
const F64_REL: f64 = 1e-10;

/// Absolute floor in `f64`, as [`F32_ABS`]: terms of order 1 round at about `2.2e-16`, so
/// `1e-12` leaves a wide margin and decides only below `1e-2`.
const F64_ABS: f64 = 1e-12;

// The parameters after five Adam steps use the same tolerances, for the reasons
// tests/sequence_torch.rs gives. Adam's step is `lr m / (sqrt(v) + eps)`, about `lr g / |g|` on
// the first step: it divides by the gradient's own size, so a gradient entry's relative error
// becomes an absolute error of the parameter of about `lr` times it, whatever the entry's
// size; a gradient entry that is a cancellation down to its own rounding would make its
// parameter's trajectory a matter of rounding, and no tolerance short of `lr` could hold. The
// fixtures avoid that rather than the tolerance: the script reseeds until every gradient entry
// fed to Adam, at every step, in both dtypes, is at least `1e-6` in magnitude (far above
// Adam's `eps` of `1e-8` and above a gradient's `f32` rounding, about `1e-9` here; no exact
// zeros either, so no ReLU unit is dead over the batch), and its comparison of torch's `f32`
// trajectory with the exact one uses at most 0.04 of the tolerance for the trained
// parameters. The optimizer fixtures' replay (tests/optim_parity.rs) checks the update rule
// itself; this test checks that `train_step` feeds it the right gradients, in the right
// order, once per step. If a change of the generated summation order ever pushes a trained
// parameter past the tolerance while every gradient passes, widen the trained parameters'
// floor alone (to about `lr * ABS / min|g|`) and say so here.

/// The tolerances above, per dtype.
const TOLERANCES: Tolerances = Tolerances {
    f32: (F32_REL, F32_ABS),
    f64: (F64_REL, F64_ABS),
};

/// Samples per batch, as `BATCH` in `torch_conv.py`.
const BATCH: usize = 5;
/// Adam steps, as `TRAIN_STEPS`.
const TRAIN_STEPS: usize = 5;
/// Adam's learning rate, as `LR`.
const LR: f64 = 0.01;

// ------------------------------------------------------------------------------------------------
// The table: one network per (layers, dtype).

// The rows: `Name: f32 [LAYERS];` declares the network, its check and its row
// (`nn_testkit::feed_forward_parity_table!`).
use nn_testkit::feed_forward_parity_table as table;

table! {
    // Padding, ReLU, max pooling, a (3, 2) kernel with stride and padding pairs, Tanh, average
    // pooling: 1x8x8 -> 4x8x8 -> 4x4x4 -> 6x4x2 -> 6x2x1 -> 12 -> 3.
    Pools32: f32 [
        Unflatten(1, 8, 8), Conv2d(1, 4, 3, padding = 1), ReLU, MaxPool2d(2),
        Conv2d(4, 6, (3, 2), stride = (1, 2), padding = (1, 0)), Tanh, AvgPool2d(2), Flatten,
        Linear(12, 3)
    ];
    Pools64: f64 [
        Unflatten(1, 8, 8), Conv2d(1, 4, 3, padding = 1), ReLU, MaxPool2d(2),
        Conv2d(4, 6, (3, 2), stride = (1, 2), padding = (1, 0)), Tanh, AvgPool2d(2), Flatten,
        Linear(12, 3)
    ];
    // Groups, dilation, no bias, adaptive average pooling: 4x5x5 -> 6x1x1 -> 6x1x1 -> 6 -> 2.
    Groups32: f32 [
        Unflatten(4, 5, 5), Conv2d(4, 6, 3, groups = 2, dilation = 2, bias = false), ReLU,
        AdaptiveAvgPool2d(1), Flatten, Linear(6, 2)
    ];
    Groups64: f64 [
        Unflatten(4, 5, 5), Conv2d(4, 6, 3, groups = 2, dilation = 2, bias = false), ReLU,
        AdaptiveAvgPool2d(1), Flatten, Linear(6, 2)
    ];
    // One-dimensional, with stride, padding, a 1-wide kernel and zero padding counted in the
    // average: 2x12 -> 4x6 -> 4x3 -> 4x3 -> 4x3 -> 12 -> 2.
    Pools1d32: f32 [
        Unflatten(2, 12), Conv1d(2, 4, 3, stride = 2, padding = 1), ReLU, MaxPool1d(2),
        Conv1d(4, 4, 1), AvgPool1d(3, stride = 1, padding = 1), Flatten, Linear(12, 2)
    ];
    Pools1d64: f64 [
        Unflatten(2, 12), Conv1d(2, 4, 3, stride = 2, padding = 1), ReLU, MaxPool1d(2),
        Conv1d(4, 4, 1), AvgPool1d(3, stride = 1, padding = 1), Flatten, Linear(12, 2)
    ];
    // A stride that leaves the last row and column unread, into adaptive average pooling over
    // 2x2: 3x6x6 -> 4x2x2 -> 4x1x1 -> 4 -> 1.
    Stride32: f32 [
        Unflatten(3, 6, 6), Conv2d(3, 4, 3, stride = 2), AdaptiveAvgPool2d(1), Flatten,
        Linear(4, 1)
    ];
    Stride64: f64 [
        Unflatten(3, 6, 6), Conv2d(3, 4, 3, stride = 2), AdaptiveAvgPool2d(1), Flatten,
        Linear(4, 1)
    ];
    // Padding by words, "same" and "valid" (a rectangular kernel), then max pooling with
    // padding and a stride smaller than its kernel: 2x5x5 -> 3x5x5 -> 2x3x5 -> 2x4x6 -> 2 -> 2.
    Words32: f32 [
        Unflatten(2, 5, 5), Conv2d(2, 3, 3, padding = "same"), Tanh,
        Conv2d(3, 2, (3, 1), padding = "valid"), MaxPool2d(2, stride = 1, padding = 1),
        AdaptiveAvgPool2d(1), Flatten, Linear(2, 2)
    ];
    Words64: f64 [
        Unflatten(2, 5, 5), Conv2d(2, 3, 3, padding = "same"), Tanh,
        Conv2d(3, 2, (3, 1), padding = "valid"), MaxPool2d(2, stride = 1, padding = 1),
        AdaptiveAvgPool2d(1), Flatten, Linear(2, 2)
    ];
    // One-dimensional with dilation, depthwise groups and no bias: 4x9 -> 4x5 -> 4 -> 1.
    Depthwise32: f32 [
        Unflatten(4, 9), Conv1d(4, 4, 3, dilation = 2, groups = 4, bias = false), Tanh,
        AdaptiveAvgPool1d(1), Flatten, Linear(4, 1)
    ];
    Depthwise64: f64 [
        Unflatten(4, 9), Conv1d(4, 4, 3, dilation = 2, groups = 4, bias = false), Tanh,
        AdaptiveAvgPool1d(1), Flatten, Linear(4, 1)
    ];
}

// ------------------------------------------------------------------------------------------------
// The test.

#[test]
fn every_shaped_network_matches_torch() {
    run_table(
        TABLE,
        &Suite {
            dir: "conv",
            prefix: "",
            sizes: &[("batch", BATCH)],
            loss: "Mse",
            script: "scripts/torch_conv.py",
            tolerances: TOLERANCES,
        },
    );
}
