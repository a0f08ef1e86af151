// A `Linear` whose input size differs from what the layer before it produces.
use nn_runtime::prelude::*;

network! {
    struct N {
        Linear(2, 8),
        ReLU,
        Linear(4, 1),
    }
}

fn main() {}
