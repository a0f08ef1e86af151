// Keyword arguments take torch's names; a near miss gets a suggestion.
use nn_runtime::prelude::*;

network! {
    struct N { Linear(2, 8), LeakyReLU(negative_slop = 0.2), Linear(8, 1) }
}

fn main() {}
