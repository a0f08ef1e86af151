// `struct` must be followed by the network's name.
use nn_runtime::prelude::*;

network! {
    pub struct { Linear(2, 8) }
}

fn main() {}
