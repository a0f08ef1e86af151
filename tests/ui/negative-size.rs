// Sizes are counts of features.
use nn_runtime::prelude::*;

network! {
    struct N { Linear(-2, 8) }
}

fn main() {}
