// A valid network given an input of the wrong size: the type checker rejects the call.
use nn_runtime::prelude::*;

network! {
    struct Xor {
        Linear(2, 8),
        ReLU,
        Linear(8, 1),
    }
}

fn main() {
    let net = Xor::seeded(0);
    let _y = net.forward(&SVector::<f32, 3>::zeros());
}
