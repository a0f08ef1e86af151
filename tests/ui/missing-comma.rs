// Two layers without a comma between them.
use nn_runtime::prelude::*;

network! {
    struct N {
        Linear(2, 8)
        ReLU,
        Linear(8, 1),
    }
}

fn main() {}
