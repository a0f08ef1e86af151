// PReLU has one slope, or one per feature: 3 slopes cannot serve 8 features.
use nn_runtime::prelude::*;

network! {
    struct N {
        Linear(2, 8),
        PReLU(3),
        Linear(8, 1),
    }
}

fn main() {}
