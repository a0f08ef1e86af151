//! A network too large for a thread's stack: Linear(784, 512) ReLU Linear(512, 256) ReLU
//! Linear(256, 10) has 2.1 MB of f32 parameters, more than a 2 MiB stack. It must construct on
//! the heap, train and infer in a thread with a 2 MiB stack, its gradients and optimizer state
//! on the heap too.

use nn_runtime::prelude::*;

network! {
    /// The large network of the speed issue.
    pub struct Wide { Linear(784, 512), ReLU, Linear(512, 256), ReLU, Linear(256, 10) }
}

const STACK: usize = 2 * 1024 * 1024;

#[test]
fn constructs_trains_and_infers_in_a_two_mebibyte_stack() {
    const {
        assert!(
            Wide::PARAMS * 4 > STACK,
            "the network must not fit the stack for this test to mean anything"
        )
    };
    let outcome = std::thread::Builder::new()
        .stack_size(STACK)
        .spawn(|| {
            let mut net = Wide::boxed_seeded(3);
            let xs = SMatrix::<f32, 784, 16>::from_fn(|r, c| ((r * 31 + c * 7) % 17) as f32 / 17.0);
            let labels: [usize; 16] = std::array::from_fn(|i| i % 10);
            let ys: SMatrix<f32, 10, 16> = one_hot(&labels).unwrap();
            let mut opt = Adam::new(1e-3);
            let first = net.train_step(&xs, &ys, &CrossEntropy, &mut opt);
            let mut last = first;
            for _ in 0..5 {
                last = net.train_step(&xs, &ys, &CrossEntropy, &mut opt);
            }
            let mut grads = WideGrads::boxed_zeros();
            let value = net.gradients_into(&xs, &ys, &CrossEntropy, &mut grads);
            let y = net.forward(&xs.column(0).into_owned());
            (first, last, value, y, grads.l0.weight.amax())
        })
        .unwrap()
        .join();
    let (first, last, value, y, largest_gradient) =
        outcome.expect("the 2 MiB thread overflowed or panicked");
    assert!(
        last < first,
        "training did not reduce the loss: {first} -> {last}"
    );
    assert!(value.is_finite() && y.iter().all(|v| v.is_finite()));
    assert!(largest_gradient > 0.0);
}

#[test]
fn boxed_and_stack_constructors_agree() {
    // The same seed gives the same parameters whichever way the network is built (checked on
    // a big thread, where the by-value form fits).
    std::thread::Builder::new()
        .stack_size(64 * 1024 * 1024)
        .spawn(|| {
            let boxed = Wide::boxed_seeded(9);
            assert_eq!(*boxed, Wide::seeded(9));
            assert_eq!(*Wide::boxed_zeros(), Wide::zeros());
        })
        .unwrap()
        .join()
        .unwrap();
}

/// The blocked kernel (used for these sizes in f32) against the same network in f64, which
/// uses nalgebra's product: gradients agree to f32 precision.
#[test]
fn large_f32_layers_agree_with_f64() {
    network! { pub struct Big32 { Linear(96, 80), Tanh, Linear(80, 40) } }
    network! { pub struct Big64: f64 { Linear(96, 80), Tanh, Linear(80, 40) } }
    let a = Big32::seeded(4);
    let mut b = Big64::zeros();
    b.l0.weight = a.l0.weight.cast();
    b.l0.bias = a.l0.bias.cast();
    b.l2.weight = a.l2.weight.cast();
    b.l2.bias = a.l2.bias.cast();
    let xs = SMatrix::<f32, 96, 24>::from_fn(|r, c| ((r + 2 * c) as f32 * 0.13).cos());
    let ys = SMatrix::<f32, 40, 24>::from_fn(|r, c| ((r * c) as f32 * 0.05).sin());
    let (la, ga) = a.gradients(&xs, &ys, &Mse);
    let (lb, gb) = b.gradients(&xs.cast(), &ys.cast(), &Mse);
    assert!((la as f64 - lb).abs() <= 1e-5 * lb.abs());
    let close = |x: f32, y: f64| (x as f64 - y).abs() <= 1e-4 * (y.abs() + 1e-3);
    assert!(
        ga.l0
            .weight
            .iter()
            .zip(gb.l0.weight.iter())
            .all(|(x, y)| close(*x, *y))
    );
    assert!(
        ga.l2
            .weight
            .iter()
            .zip(gb.l2.weight.iter())
            .all(|(x, y)| close(*x, *y))
    );
    let out = a.forward_batch(&xs);
    let expected = b.forward_batch(&xs.cast());
    assert!(out.iter().zip(expected.iter()).all(|(x, y)| close(*x, *y)));
}
