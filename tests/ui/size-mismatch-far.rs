// The mismatch is found across shape-keeping layers: the producer named is the last Linear.
use nn_runtime::prelude::*;

network! {
    struct N { Linear(3, 8), ReLU, Tanh, Sigmoid, Linear(6, 1) }
}

fn main() {}
