//! The classic XOR problem: PyTorch's 2-8-1 ReLU network and the four samples.

use nn_runtime::prelude::*;

network! {
    /// The classic XOR network, as `examples/xor.rs` declares it and as PyTorch's
    /// `nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 1))`.
    pub struct Xor {
        Linear(2, 8),
        ReLU,
        Linear(8, 1),
    }
}

/// The four XOR inputs, one column each, and their targets.
pub fn xor_data() -> (SMatrix<f32, 2, 4>, SMatrix<f32, 1, 4>) {
    let xs = SMatrix::<f32, 2, 4>::from_columns(&[
        SVector::from([0.0, 0.0]),
        SVector::from([0.0, 1.0]),
        SVector::from([1.0, 0.0]),
        SVector::from([1.0, 1.0]),
    ]);
    let ys = SMatrix::<f32, 1, 4>::from_row_slice(&[0.0, 1.0, 1.0, 0.0]);
    (xs, ys)
}
