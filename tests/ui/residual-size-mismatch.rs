// A residual block adds its input to its output, so its layers must keep the size.
use nn_runtime::prelude::*;

network! {
    struct N { Linear(2, 8), Residual(Linear(8, 4), ReLU), Linear(8, 1) }
}

fn main() {}
