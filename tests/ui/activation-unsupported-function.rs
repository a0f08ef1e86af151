// A function outside the expression language: the error names it, lists what is supported and
// suggests the closest.
use nn_runtime::prelude::*;

network! {
    struct N {
        Linear(2, 8),
        |x| x * tanh(x) + atanh(x),
        Linear(8, 1),
    }
}

fn main() {}
