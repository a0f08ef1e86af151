//! The generated code's own identifiers never collide with the user's names: networks named
//! every single capital letter (the letters generic parameters are usually named with), networks
//! named like the runtime's public items, and such networks nested in one another, all compile
//! without warnings and train.
#![deny(warnings)]

use nn_runtime::nalgebra::SMatrix as Matrix;

/// Declares a 2-3-1 network for each name, and a test that trains it one step and runs it.
macro_rules! networks {
    ($($name:ident)*) => {
        $(
            nn_runtime::network! {
                /// A network named like something the generated code could use.
                pub struct $name { Linear(2, 3), Tanh, Linear(3, 1) }
            }
        )*

        /// Every network above trains and infers, giving finite values.
        pub fn train_each() -> usize {
            let xs = Matrix::<f32, 2, 4>::from_fn(|r, c| (r + 2 * c) as f32 * 0.25);
            let ys = Matrix::<f32, 1, 4>::from_fn(|_, c| c as f32 * 0.5);
            let mut trained = 0;
            $(
                let mut net = $name::seeded(7);
                let mut opt = nn_runtime::Adam::new(0.01);
                let before = net.train_step(&xs, &ys, &nn_runtime::Mse, &mut opt);
                let after = net.train_step(&xs, &ys, &nn_runtime::Mse, &mut opt);
                assert!(before.is_finite() && after.is_finite(), stringify!($name));
                assert!(net.forward(&xs.column(0).into_owned())[0].is_finite());
                assert_eq!(<$name>::IN + <$name>::OUT, 3);
                trained += 1;
            )*
            trained
        }
    };
}

/// Single capital letters.
mod letters {
    use super::Matrix;
    networks!(A B C D E F G H I J K L M N O P Q R S T U V W X Y Z);
}

/// The runtime's public names, in a module where they are not imported: the user's type is the
/// only one of that name in scope, and the generated code must still find the runtime's.
mod runtime_names {
    use super::Matrix;
    networks!(Linear Loss Real Network SMatrix SVector Mse Adam Sgd Optimizer Tensors Init Scratch Nested Zeroable Grads Cache BatchNorm BnStats DropoutKey Tape HiddenState CellLayer LayerRef UnknownLayer Frozen);
}

/// Networks named `B`, `L` and `O` (the letters of a batch, loss and optimizer) nested in
/// networks named `T` and `IN`, with a residual block, by scalar type `f64`.
mod nested {
    use nn_runtime::network;

    network! { pub struct B: f64 { Linear(2, 4), ReLU } }
    network! { pub struct L: f64 { Linear(4, 4), Tanh } }
    network! { pub struct O: f64 { B, Residual(L), Linear(4, 1) } }
    network! { pub struct T: f64 { O, Sigmoid } }
}

/// User items named like the activation engine's functions and the runtime's activation
/// items, in scope where activations are declared: the generated code still reaches the
/// runtime's.
mod activation_names {
    #![allow(dead_code, non_camel_case_types)]
    pub struct PRelu;
    pub struct Softmax;
    pub mod math {}
    pub fn sigmoid(_: f32) -> f32 {
        f32::NAN
    }
    pub fn exp(_: f32) -> f32 {
        f32::NAN
    }
    pub struct map;
    pub struct chain;

    nn_runtime::network! {
        activation Swish(beta = 1.0) = |x| x * sigmoid(beta * x);

        /// Every activation kind, beside items of the engine's names.
        pub struct Uses { PReLU, Linear(2, 3), Swish, GELU, |x| exp(-x * x), PReLU(3), Linear(3, 2), Softmax }
    }
}

#[test]
fn activations_beside_items_of_their_names_train() {
    let mut net = activation_names::Uses::seeded(3);
    let xs = Matrix::<f32, 2, 5>::from_fn(|r, c| (r as f32 - c as f32) * 0.3);
    let ys = Matrix::<f32, 2, 5>::from_fn(|r, c| ((r + c) % 2) as f32);
    let mut opt = nn_runtime::Adam::new(0.01);
    let first = net.train_step(&xs, &ys, &nn_runtime::Mse, &mut opt);
    let mut last = first;
    for _ in 0..50 {
        last = net.train_step(&xs, &ys, &nn_runtime::Mse, &mut opt);
    }
    assert!(last.is_finite() && last < first, "{first} -> {last}");
}

#[test]
fn networks_named_like_generic_parameters_train() {
    assert_eq!(letters::train_each(), 26);
}

#[test]
fn networks_named_like_runtime_items_train() {
    assert_eq!(runtime_names::train_each(), 26);
}

#[test]
fn networks_named_like_generic_parameters_nest() {
    let mut net = nested::T::seeded(3);
    let xs = Matrix::<f64, 2, 5>::from_fn(|r, c| (r as f64 - c as f64) * 0.3);
    let ys = Matrix::<f64, 1, 5>::from_fn(|_, c| (c % 2) as f64);
    let mut opt = nn_runtime::Sgd::new(0.1);
    let first = net.train_step(&xs, &ys, &nn_runtime::Mse, &mut opt);
    let mut last = first;
    for _ in 0..50 {
        last = net.train_step(&xs, &ys, &nn_runtime::Mse, &mut opt);
    }
    assert!(last < first, "{first} -> {last}");
}
