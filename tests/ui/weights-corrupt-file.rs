// Bytes that are not a safetensors file: an error that says so, not a panic of the macro.
use nn_runtime::prelude::*;

network! {
    #[weights("../../../../tests/ui/weights/corrupt.safetensors")]
    pub struct Xor { Linear(2, 8), ReLU, Linear(8, 1) }
}

fn main() {
    let _ = Xor::PRETRAINED;
}
