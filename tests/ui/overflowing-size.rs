// A size too large to be a static matrix is refused before any arithmetic overflows.
use nn_runtime::prelude::*;

network! {
    struct N { Linear(2, 99999999999999999999999) }
}

fn main() {}
