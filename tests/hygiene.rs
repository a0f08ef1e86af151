//! Networks declared through a user's `macro_rules!`, whose tokens carry that macro's
//! hygiene: the generated code must still see its own variables.

use nn_runtime::prelude::*;
macro_rules! declare { ($name:ident: $($layer:tt)*) => { network! { pub struct $name { $($layer)* } } }; }
declare!(Net: Linear(2, 8), ReLU, Residual(Linear(8, 8), Tanh), Linear(8, 1));
macro_rules! declare_inner {
    ($a:literal, $b:literal) => {
        network! { pub struct Inner { Linear($a, $b), Sigmoid } }
    };
}
declare_inner!(8, 4);
network! { pub struct Outer { Linear(3, 8), Inner, Linear(4, 2) } }
#[test]
fn declared_through_macro_rules() {
    let mut n = Net::seeded(0);
    let xs = SMatrix::<f32, 2, 3>::zeros();
    let ys = SMatrix::<f32, 1, 3>::zeros();
    n.train_step(&xs, &ys, &Mse, &mut Adam::new(0.01));
    let _ = n.forward(&SVector::zeros());
    let mut o = Outer::seeded(1);
    let x = SMatrix::<f32, 3, 2>::zeros();
    o.train_step(&x, &SMatrix::<f32, 2, 2>::zeros(), &Mse, &mut Sgd::new(0.1));
}
