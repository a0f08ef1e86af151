// The file's last Linear is 8 -> 1; the declaration's is 8 -> 2: weight and bias both differ.
use nn_runtime::prelude::*;

network! {
    #[weights("../../../../tests/ui/weights/xor.safetensors")]
    pub struct Xor { Linear(2, 8), ReLU, Linear(8, 2) }
}

fn main() {
    let _ = Xor::PRETRAINED;
}
