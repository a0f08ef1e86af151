// A nested network's tensors are known to the compiler only, not to the macro.
use nn_runtime::prelude::*;

network! {
    pub struct Inner { Linear(2, 8), ReLU }
}

network! {
    #[weights("../../../../tests/ui/weights/xor.safetensors")]
    pub struct Outer { Inner, Linear(8, 1) }
}

fn main() {}
