// An argument given by position cannot be given again by keyword.
use nn_runtime::prelude::*;

network! {
    struct N { Linear(2, out_features = 8, in_features = 2), ReLU, Linear(8, 1) }
}

fn main() {}
