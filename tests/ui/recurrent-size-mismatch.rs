// A recurrent layer's input size is checked against the layer before, like Linear's.
use nn_runtime::prelude::*;

network! {
    struct N {
        Linear(2, 8),
        LSTM(4, 16),
        Linear(16, 1),
    }
}

fn main() {}
