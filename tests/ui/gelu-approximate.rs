// GELU's approximate is "none" or "tanh", as torch's.
use nn_runtime::prelude::*;

network! {
    struct N {
        Linear(2, 8),
        GELU(approximate = "fast"),
        ELU(alpha = "one"),
        Linear(8, 1),
    }
}

fn main() {}
