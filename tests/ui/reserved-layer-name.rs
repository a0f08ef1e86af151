// Names starting with `__` belong to the generated code.
use nn_runtime::prelude::*;

network! {
    struct N { __hidden: Linear(2, 8), ReLU, Linear(8, 1) }
}

fn main() {}
