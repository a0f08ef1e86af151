// An f64 network cannot take the file's F32 tensors: every tensor is reported.
use nn_runtime::prelude::*;

network! {
    #[weights = "../../../../tests/ui/weights/xor.safetensors"]
    pub struct Xor: f64 { Linear(2, 8), ReLU, Linear(8, 1) }
}

fn main() {
    let _ = Xor::pretrained();
}
