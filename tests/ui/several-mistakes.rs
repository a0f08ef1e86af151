// Several mistakes in one declaration: every one is reported, each on its own token, and the
// code below that uses the network adds no errors of its own.
use nn_runtime::prelude::*;

network! {
    /// A network with six mistakes.
    pub struct N {
        Linear(2, 8),
        Linear(4, 16),
        Relu_,
        Linear(16, 0),
        Sigmoid(1),
        Linear(3),
        Tanh
        Linear(4, 1),
    }
}

fn main() {
    let mut n = N::seeded(0);
    let y: SVector<f32, 1> = n.forward(&SVector::<f32, 2>::zeros());
    let xs = SMatrix::<f32, 2, 4>::zeros();
    let ys = SMatrix::<f32, 1, 4>::zeros();
    let loss: f32 = n.train_step(&xs, &ys, &Mse, &mut Adam::new(0.01));
    let (_value, _grads): (f32, ()) = n.gradients(&xs, &ys, &Mse);
    println!("{} {} {} {y} {loss}", N::IN, N::OUT, N::PARAMS);
}
