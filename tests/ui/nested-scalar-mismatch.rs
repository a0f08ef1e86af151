// An f64 network cannot be nested in an f32 one.
use nn_runtime::prelude::*;

network! {
    pub struct Inner: f64 { Linear(2, 4) }
}

network! {
    pub struct Outer { Inner, Linear(4, 1) }
}

fn main() {}
