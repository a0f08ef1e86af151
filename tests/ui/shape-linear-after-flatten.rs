// A Linear after Flatten states the wrong number of features: the error names the number the
// shapes produce and tells the shapes that produced it.
use nn_runtime::prelude::*;

network! {
    struct N {
        Unflatten(1, 8, 8),
        Conv2d(1, 8, 3),
        MaxPool2d(2),
        Flatten,
        Linear(128, 10),
    }
}

fn main() {}
