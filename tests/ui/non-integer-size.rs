// Sizes are whole numbers.
use nn_runtime::prelude::*;

network! {
    struct N { Linear(2.5, 8) }
}

fn main() {}
