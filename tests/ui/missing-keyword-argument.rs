// A size left out while others are given by keyword is named.
use nn_runtime::prelude::*;

network! {
    struct N { Linear(in_features = 2), ReLU, Linear(8, 1) }
}

fn main() {}
