// As in Python, positional arguments come before keyword arguments.
use nn_runtime::prelude::*;

network! {
    struct N { Linear(in_features = 2, 8), ReLU, Linear(8, 1) }
}

fn main() {}
