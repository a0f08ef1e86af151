// Each layer's name names a field and a `state_dict` prefix, so it must be unique.
use nn_runtime::prelude::*;

network! {
    struct N { hidden: Linear(2, 8), ReLU, hidden: Linear(8, 1) }
}

fn main() {}
