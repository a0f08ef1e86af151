// A network without layers.
use nn_runtime::prelude::*;

network! {
    struct N {}
}

fn main() {}
