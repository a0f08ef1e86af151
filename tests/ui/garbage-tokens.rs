// Tokens that are not a layer.
use nn_runtime::prelude::*;

network! {
    struct N { Linear(2, 8), => 42, Linear(8, 1) }
}

fn main() {}
