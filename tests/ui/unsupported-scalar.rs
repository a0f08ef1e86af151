// A scalar type other than `f32` or `f64`.
use nn_runtime::prelude::*;

network! {
    struct N: f16 {
        Linear(2, 8),
        ReLU,
        Linear(8, 1),
    }
}

fn main() {}
