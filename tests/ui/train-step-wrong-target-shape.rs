// Targets must have the network's output size and the batch's number of columns.
use nn_runtime::prelude::*;

network! {
    struct N { Linear(2, 8), ReLU, Linear(8, 1) }
}

fn main() {
    let mut net = N::seeded(0);
    let xs = SMatrix::<f32, 2, 4>::zeros();
    let ys = SMatrix::<f32, 2, 4>::zeros();
    net.train_step(&xs, &ys, &Mse, &mut Adam::new(0.01));
}
