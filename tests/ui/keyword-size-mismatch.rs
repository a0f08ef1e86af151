// Sizes given by keyword are checked like positional ones, on the offending literal.
use nn_runtime::prelude::*;

network! {
    struct N { Linear(in_features = 2, out_features = 8), ReLU, Linear(in_features = 4, out_features = 1) }
}

fn main() {}
