// A nested network's output size is checked against the next layer, naming both networks.
use nn_runtime::prelude::*;

network! {
    pub struct Encoder { Linear(4, 8), Tanh, Linear(8, 6) }
}

network! {
    pub struct Classifier { Encoder, ReLU, Linear(16, 3) }
}

fn main() {
    let _ = Classifier::seeded(0);
}
