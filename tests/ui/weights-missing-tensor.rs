// The file holds Linear(2, 8), ReLU, Linear(8, 1): a third Linear's tensors are not in it.
// (trybuild builds this file in target/tests/trybuild/nn-workspace, its manifest directory.)
use nn_runtime::prelude::*;

network! {
    #[weights("../../../../tests/ui/weights/xor.safetensors")]
    pub struct Xor { Linear(2, 8), ReLU, Linear(8, 1), ReLU, Linear(1, 1) }
}

fn main() {
    let _ = Xor::pretrained();
}
