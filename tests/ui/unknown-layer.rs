// A misspelt layer name: the error lists the known layers and suggests the closest.
use nn_runtime::prelude::*;

network! {
    struct N {
        Linear(2, 8),
        Relu_,
        Linear(8, 1),
    }
}

fn main() {}
