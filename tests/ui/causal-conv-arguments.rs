// The causal streaming Conv1d steps one sample at a time and pads the past itself.
use nn_runtime::prelude::*;

network! {
    struct N {
        Conv1d(1, 8, 3, stride = 2),
        Conv1d(8, 8, 3, padding = 1),
        Conv1d(8, 4, 3, dilation = 0),
    }
}

fn main() {}
