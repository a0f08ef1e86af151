// An activation without arguments, given one.
use nn_runtime::prelude::*;

network! {
    struct N {
        Linear(2, 8),
        Sigmoid(1),
        Linear(8, 1),
    }
}

fn main() {}
