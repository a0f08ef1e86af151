// A batch norm's channels must be its input's; BatchNorm2d needs an image; dropout's p is a
// probability; batch statistics are not supported in a sequence network yet.
use nn_runtime::prelude::*;

network! {
    struct N {
        Unflatten(8, 4, 4),
        Conv2d(8, 8, 3, padding = 1),
        BatchNorm2d(16),
        Flatten,
        BatchNorm2d(128),
        Dropout(1.5),
        Linear(128, 2),
    }

    struct S {
        GRU(2, 4),
        BatchNorm1d(4),
        Linear(4, 1),
    }
}

fn main() {}
