// Channels that don't divide by groups.
use nn_runtime::prelude::*;

network! {
    struct N {
        Unflatten(3, 8, 8),
        Conv2d(3, 4, 3, groups = 2),
    }
}

fn main() {}
