// powf's exponent and powi's must be constants; an if needs an else.
use nn_runtime::prelude::*;

network! {
    struct N {
        Linear(2, 8),
        |x| x.powf(x) + x.powi(2.5),
        |x| if x > 0.0 { x },
        Linear(8, 1),
    }
}

fn main() {}
