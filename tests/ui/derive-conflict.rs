// The generated struct already derives Clone, Debug and PartialEq.
use nn_runtime::prelude::*;

network! {
    #[derive(Clone)]
    struct N { Linear(2, 8) }
}

fn main() {}
