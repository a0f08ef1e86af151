// `l1` is the field an unnamed layer at position 1 gets: a named layer cannot take it.
use nn_runtime::prelude::*;

network! {
    struct N { Linear(2, 8), l1: ReLU, Linear(8, 1) }
}

fn main() {}
