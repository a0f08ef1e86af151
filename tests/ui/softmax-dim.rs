// Softmax runs over each sample's features: dim 1 (or -1) of a batch (N, features).
use nn_runtime::prelude::*;

network! {
    struct N {
        Linear(2, 8),
        Softmax(dim = 0),
        Linear(8, 2),
        LogSoftmax(2),
    }
}

fn main() {}
