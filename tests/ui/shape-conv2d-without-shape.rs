// Conv2d needs a (c, h, w) shape: features straight from a Linear have none.
use nn_runtime::prelude::*;

network! {
    struct N {
        Linear(2, 64),
        Conv2d(1, 4, 3),
    }
}

fn main() {}
