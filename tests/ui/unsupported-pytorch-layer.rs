// A PyTorch module `network!` does not have is named as such, not taken for a nested network.
use nn_runtime::prelude::*;

network! {
    struct N { Linear(2, 8), GroupNorm, Linear(8, 1) }
}

fn main() {}
