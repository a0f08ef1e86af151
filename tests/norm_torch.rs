//! PyTorch parity of `LayerNorm` (torch's `nn.LayerNorm` over the last axis of each sample) in
//! whole networks, in `f32` and `f64`, on the fixtures `tests/fixtures/norm/*.json` written by
//! `scripts/torch_norm.py` (its docstring, and `scripts/torch_conv.py`'s whose format and
//! machinery it shares, state the layout of every field, the torch module of every layer and
//! how the data are kept off ReLU's kink).
//!
//! The four networks cover torch's defaults on flat features (one group, `G = N`), another
//! `eps` without the affine parameters (a ReLU after), the last axis of shaped samples (after
//! `Unflatten(2, 3, 4)`, six groups of four features each normalised on its own) and a weight
//! without a bias. The LayerNorm's weight and bias in the fixtures are drawn away from torch's
//! initial 1 and 0, so a parameter applied to the wrong feature, or not at all, is caught.
//!
//! Each row of the table below declares a network with `network!`; the fixture of the same
//! dtype and layer list holds torch's `nn.Sequential` of the same layers, its parameters (by
//! `state_dict` name, nested as torch's shapes), a batch of 5 samples (each sample's flat
//! features, one column per sample here) and targets, and what torch computed. For each row
//! this test
//!
//! - checks the network's tensors against the fixture: `state_dict` names in order
//!   (`Tensors::visit`; `{i}.weight` and `{i}.bias` of a LayerNorm only where it has them),
//!   torch's shape for each (`[G]`), `IN` and `OUT`;
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
//!
//! Besides, [`fields_are_the_runtime_block`] pins each LayerNorm's field type
//! (`LayerNorm<T, G, AFFINE, BIAS>`) and checks torch's initialisation (weight 1, bias 0,
//! nothing drawn from the seed).

use nn_runtime::LayerNorm;
use nn_runtime::prelude::*;
use nn_testkit::parity::{Suite, Tolerances, run_table};

// ------------------------------------------------------------------------------------------------
// Tolerances: `|ours - torch| <= REL * |torch| + ABS`.

/// Relative tolerance in `f32`: about 84 units in the last place. A LayerNorm output is a
/// group's deviation from its mean (a sum of at most 8 terms) divided by its standard deviation
/// (another such sum, and a square root), scaled and shifted; its input gradient the same
/// terms with two more means of at most 8 products; a weight's or bias's gradient a sum over
/// the batch and the groups (up to `5 * 6` terms). Each is summed in another order than
/// torch's kernels (which take the moments by Welford's method), so the results differ by a
/// few units in the last place of the terms, times a small factor, and no more: nothing here
/// is iterated.
const F32_REL: f64 = 1e-5;

/// Absolute floor in `f32`, for values near zero: a gradient entry or an output is a sum of
/// terms of both signs, and its rounding error is `f32::EPSILON` (1.2e-7) times the terms'
/// magnitude, not the small result's, so a relative test alone would fail on correct values.
/// `1e-6` decides only for values below `ABS / REL = 0.1`. Measured by the script (printed when
/// it runs): torch's own `f32` results, against the exact (`f64`) results at the same `f32`
/// inputs, use at most 0.06 of this tolerance in every category, the trained parameters
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
// trajectory with the exact one uses at most 0.03 of the tolerance for the trained
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

/// Samples per batch, as `BATCH` in `torch_conv.py` (and so `torch_norm.py`).
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
    // Flat features (one group of 6), torch's defaults, Tanh after: 4 -> 6 -> 6 -> 6 -> 2.
    Norm32: f32 [Linear(4, 6), LayerNorm(6), Tanh, Linear(6, 2)];
    Norm64: f64 [Linear(4, 6), LayerNorm(6), Tanh, Linear(6, 2)];
    // No weight or bias, another eps, ReLU after: 4 -> 6 -> 6 -> 6 -> 2.
    Plain32: f32 [
        Linear(4, 6), LayerNorm(6, eps = 0.001, elementwise_affine = false), ReLU, Linear(6, 2)
    ];
    Plain64: f64 [
        Linear(4, 6), LayerNorm(6, eps = 0.001, elementwise_affine = false), ReLU, Linear(6, 2)
    ];
    // The last axis of shaped samples, six groups of four, first in the network (no input
    // gradient): 24 -> 2x3x4 -> 2x3x4 -> 24 -> 2.
    Shaped32: f32 [Unflatten(2, 3, 4), LayerNorm(4), Flatten, Linear(24, 2)];
    Shaped64: f64 [Unflatten(2, 3, 4), LayerNorm(4), Flatten, Linear(24, 2)];
    // A weight without a bias, straight into a Linear: 3 -> 8 -> 8 -> 1.
    NoBias32: f32 [Linear(3, 8), LayerNorm(8, bias = false), Linear(8, 1)];
    NoBias64: f64 [Linear(3, 8), LayerNorm(8, bias = false), Linear(8, 1)];
}

network! {
    /// [`Norm64`] without its LayerNorm: the same draws from a seed, if the LayerNorm draws
    /// none.
    struct Unnormed64: f64 { Linear(4, 6), Tanh, Linear(6, 2) }
}

/// Each LayerNorm's field is the runtime block with torch's `normalized_shape` as `G` and its
/// `elementwise_affine` and `bias` as `AFFINE` and `BIAS`, in the network and in its gradient
/// struct; a seeded network starts it at torch's weight 1 and bias 0, drawing nothing (the
/// layers around it get the parameters they would get without it).
#[test]
fn fields_are_the_runtime_block() {
    let norm = Norm64::seeded(3);
    let _: &LayerNorm<f64, 6, true, true> = &norm.l1;
    assert_eq!(norm.l1.weight, SVector::from([1.0; 6]));
    assert_eq!(norm.l1.bias, SVector::<f64, 6>::zeros());
    let unnormed = Unnormed64::seeded(3);
    assert_eq!(
        (norm.l0.clone(), norm.l3.clone()),
        (unnormed.l0, unnormed.l2)
    );
    let _: &LayerNorm<f32, 6, true, true> = &Norm32::zeros().l1;

    let plain = Plain32::seeded(3);
    let _: &LayerNorm<f32, 6, false, true> = &plain.l1;
    let _: &LayerNorm<f64, 6, false, true> = &Plain64::zeros().l1;
    let shaped = Shaped64::seeded(3);
    let _: &LayerNorm<f64, 4, true, true> = &shaped.l1;
    assert_eq!(shaped.l1.weight, SVector::from([1.0; 4]));
    let _: &LayerNorm<f32, 4, true, true> = &Shaped32::zeros().l1;
    let no_bias = NoBias32::seeded(3);
    let _: &LayerNorm<f32, 8, true, false> = &no_bias.l1;
    assert_eq!(no_bias.l1.weight, SVector::from([1.0; 8]));
    let _: &LayerNorm<f64, 8, true, false> = &NoBias64::zeros().l1;

    let xs = SMatrix::<f64, 4, 2>::from_fn(|r, c| (r + 2 * c) as f64 * 0.3 - 0.5);
    let ys = SMatrix::<f64, 2, 2>::from_element(0.25);
    let (_, grads) = norm.gradients(&xs, &ys, &Mse);
    let _: &LayerNorm<f64, 6, true, true> = &grads.l1;
}

// ------------------------------------------------------------------------------------------------
// The test.

#[test]
fn every_layer_norm_network_matches_torch() {
    run_table(
        TABLE,
        &Suite {
            // tests/fixtures/norm holds the batch norms' fixtures too; ours start with `layernorm`.
            dir: "norm",
            prefix: "layernorm",
            sizes: &[("batch", BATCH)],
            loss: "Mse",
            script: "scripts/torch_norm.py",
            tolerances: TOLERANCES,
        },
    );
}
