// A named activation cannot take a builtin layer's name, nor be defined twice.
use nn_runtime::prelude::*;

network! {
    activation ReLU = |x| x;
    activation Swish = |x| x * sigmoid(x);
    activation Swish = |x| x;

    struct N {
        Linear(2, 8),
        Swish,
        Linear(8, 1),
    }
}

fn main() {}
