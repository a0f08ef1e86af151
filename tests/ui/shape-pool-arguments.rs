// Pooling padding at most half the kernel; the global average pools to 1; padding "same"
// needs stride 1; a 2-D size has at most one value per axis.
use nn_runtime::prelude::*;

network! {
    struct N {
        Unflatten(1, 8, 8),
        MaxPool2d(2, padding = 2),
        AdaptiveAvgPool2d(2),
        Conv2d(1, 4, 3, stride = 2, padding = "same"),
        Conv2d(1, 4, (3, 3, 3)),
    }
}

fn main() {}
