// A weights file that is not there: the error names the path tried, on the attribute's string.
use nn_runtime::prelude::*;

network! {
    #[weights("tests/ui/weights/no-such-file.safetensors")]
    pub struct Xor { Linear(2, 8), ReLU, Linear(8, 1) }
}

fn main() {
    let _ = Xor::pretrained();
}
