// Two commas in a row.
use nn_runtime::prelude::*;

network! {
    struct N { Linear(2, 8),, Linear(8, 1) }
}

fn main() {}
