// LeakyReLU's slope is a number.
use nn_runtime::prelude::*;

network! {
    struct N { Linear(2, 8), LeakyReLU(slope), Linear(8, 1) }
}

fn main() {}
