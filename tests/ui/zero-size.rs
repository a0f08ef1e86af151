// A layer size of zero.
use nn_runtime::prelude::*;

network! {
    struct N {
        Linear(2, 0),
        ReLU,
        Linear(0, 1),
    }
}

fn main() {}
