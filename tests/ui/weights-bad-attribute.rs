// The attribute takes one string, the path; and a network takes one such attribute.
use nn_runtime::prelude::*;

network! {
    #[weights(42)]
    pub struct A { Linear(2, 8), ReLU, Linear(8, 1) }

    #[weights("../../../../tests/ui/weights/xor.safetensors")]
    #[weights("../../../../tests/ui/weights/xor.safetensors")]
    pub struct B { Linear(2, 8), ReLU, Linear(8, 1) }
}

fn main() {}
