// An f32 network does not take f64 data.
use nn_runtime::prelude::*;

network! {
    struct N { Linear(2, 1) }
}

fn main() {
    let net = N::zeros();
    let _ = net.forward(&SVector::<f64, 2>::zeros());
}
