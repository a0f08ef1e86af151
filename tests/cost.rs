//! The cost-fact consts against counts made by hand (a multiply-add counts 2, any other
//! operation or elementary function 1; see `FLOPS_FORWARD`'s documentation).

use nn_runtime::prelude::*;

network! {
    /// The seed network.
    pub struct Xor { Linear(2, 8), ReLU, Linear(8, 1) }
}

network! {
    /// The `infer` workload's network.
    pub struct Infer { Linear(16, 32), Tanh, Linear(32, 32), Tanh, Linear(32, 4) }
}

network! {
    /// `Xor` nested, for the nested rule.
    pub struct Outer { Xor, LeakyReLU, Linear(1, 3) }
}

network! {
    /// A residual block, in f64.
    pub struct Skip: f64 { Linear(4, 6), Residual(Linear(6, 6), Sigmoid), Linear(6, 2) }
}

#[test]
fn xor_costs_match_a_hand_count() {
    // forward: W0 x (2 per weight: 2*2*8), ReLU (1 per unit: 8), W2 h (2*8*1)
    assert_eq!(Xor::FLOPS_FORWARD, 32 + 8 + 16);
    // backward: layer 2's dW, db (2*8 + 1) and dx (2*8); ReLU' (2 per unit: 16); layer 0's
    // dW, db (2*2*8 + 8) and no dx: nothing below it learns.
    assert_eq!(Xor::FLOPS_BACKWARD, 17 + 16 + 16 + 40);
    assert_eq!(Xor::FLOPS_TRAIN, 56 + 89);
    assert_eq!(Xor::PARAM_BYTES, 33 * 4);
    assert_eq!(Xor::GRAD_BYTES, 33 * 4);
    // the outputs of the three layers: 8 + 8 + 1 floats
    assert_eq!(Xor::ACTIVATION_BYTES, 17 * 4);
    assert_eq!(Xor::optimizer_state_bytes(2), 2 * 33 * 4);
}

#[test]
fn infer_costs_match_a_hand_count() {
    assert_eq!(
        Infer::PARAMS,
        (16 * 32 + 32) + (32 * 32 + 32) + (32 * 4 + 4)
    );
    // 2*16*32 + 32 (tanh) + 2*32*32 + 32 (tanh) + 2*32*4
    assert_eq!(Infer::FLOPS_FORWARD, 1024 + 32 + 2048 + 32 + 256);
    // layer 4: 260 + 256; tanh: 3*32; layer 2: 2080 + 2048; tanh: 96; layer 0: 1024 + 32
    assert_eq!(
        Infer::FLOPS_BACKWARD,
        260 + 256 + 96 + 2080 + 2048 + 96 + 1056
    );
    assert_eq!(Infer::ACTIVATION_BYTES, (32 + 32 + 32 + 32 + 4) * 4);
    assert_eq!(Infer::PARAM_BYTES, 1732 * 4);
}

#[test]
fn nested_and_residual_costs_compose() {
    assert_eq!(Outer::FLOPS_FORWARD, Xor::FLOPS_FORWARD + 2 + 2 * 3);
    // Linear(1, 3): 2*3 + 3 and dx 2*3; LeakyReLU': 2; Xor through __backward: its forward
    // again (56) and its backward down to its input (89 + layer 0's dx, 2*2*8).
    assert_eq!(Outer::FLOPS_BACKWARD, 9 + 6 + 2 + 56 + 89 + 32);
    assert_eq!(Outer::ACTIVATION_BYTES, Xor::ACTIVATION_BYTES + (1 + 3) * 4);
    // Residual: f(x) is Linear(6, 6) then Sigmoid (4 per unit), plus the addition (6).
    assert_eq!(
        Skip::FLOPS_FORWARD,
        2 * 4 * 6 + (2 * 6 * 6 + 4 * 6 + 6) + 2 * 6 * 2
    );
    // Linear(6, 2): 2*12 + 2 and dx 24; the block: Sigmoid' 3*6, Linear(6, 6) dW, db, dx
    // (72 + 6 + 72), the merge (6); Linear(4, 6): 48 + 6.
    assert_eq!(Skip::FLOPS_BACKWARD, 26 + 24 + 18 + 150 + 6 + 54);
    assert_eq!(Skip::ACTIVATION_BYTES, (6 + 6 + 6 + 6 + 2) * 8);
}
