// A convolution's in_channels must be the channels of its input.
use nn_runtime::prelude::*;

network! {
    struct N {
        Unflatten(1, 8, 8),
        Conv2d(3, 4, 3),
    }
}

fn main() {}
