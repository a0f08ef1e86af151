// An activation is a closure of one plain variable.
use nn_runtime::prelude::*;

network! {
    struct N {
        Linear(2, 8),
        |x, y| x * y,
        |z: f32| z,
        move |x| x,
        Linear(8, 1),
    }
}

fn main() {}
