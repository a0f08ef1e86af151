// Unflatten's shape must hold exactly the features it gets.
use nn_runtime::prelude::*;

network! {
    struct N {
        Linear(2, 60),
        Unflatten(1, 8, 8),
    }
}

fn main() {}
