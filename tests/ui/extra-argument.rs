// `Linear` takes exactly two sizes.
use nn_runtime::prelude::*;

network! {
    struct N { Linear(2, 8, 3) }
}

fn main() {}
