// A named activation's constants are numbers; an override names one of them.
use nn_runtime::prelude::*;

network! {
    activation Swish(beta = "one") = |x| x * sigmoid(beta * x);
    activation Gained(gain = 1.0) = |x| gain * x;

    struct N {
        Linear(2, 8),
        Gained(gian = 2.0),
        Linear(8, 1),
    }
}

fn main() {}
