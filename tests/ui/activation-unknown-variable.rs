// A name the expression does not know: the error lists the names it may use.
use nn_runtime::prelude::*;

network! {
    activation Scaled(gain = 2.0) = |x| gain * x + bias;

    struct N {
        Linear(2, 8),
        Scaled,
        Linear(8, 1),
    }
}

fn main() {}
