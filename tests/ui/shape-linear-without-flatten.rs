// Linear takes flat features: after a convolution it needs Flatten.
use nn_runtime::prelude::*;

network! {
    struct N {
        Unflatten(1, 8, 8),
        Conv2d(1, 2, 3),
        Linear(72, 10),
    }
}

fn main() {}
