// The file has a second Linear the declaration lacks: an error, as from_safetensors_bytes.
use nn_runtime::prelude::*;

network! {
    #[weights("../../../../tests/ui/weights/xor.safetensors")]
    pub struct Xor { Linear(2, 8), ReLU }
}

fn main() {}
