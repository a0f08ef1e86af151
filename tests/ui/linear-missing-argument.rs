// `Linear` states both of its sizes.
use nn_runtime::prelude::*;

network! {
    struct N {
        Linear(2, 8),
        ReLU,
        Linear(8),
    }
}

fn main() {}
