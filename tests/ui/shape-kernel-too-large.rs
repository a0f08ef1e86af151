// A kernel larger than its padded input.
use nn_runtime::prelude::*;

network! {
    struct N {
        Unflatten(1, 4, 4),
        Conv2d(1, 2, 5, padding = 0),
        Flatten,
        Linear(2, 1),
    }
}

fn main() {}
