//! Fine-tuning the head of a network on a device: the body's layers are frozen, so each
//! training step computes the head's gradient only (the backward pass stops at the head) and
//! the optimizer leaves the body bit-identical. Then the input sensitivities of the tuned
//! network: its Jacobian at a point, and one vector-Jacobian product.
//!
//! Run it with `cargo run --release --example fine_tune`; `-- all` trains every layer
//! instead, and a second argument sets the number of steps (the driver of the callgrind
//! comparison in BENCHMARKS.md: `valgrind --tool=callgrind target/release/examples/fine_tune
//! frozen 200` against `... all 200`).

use nn_runtime::prelude::*;

network! {
    /// A deep MLP: 64 features in, 10 classes out.
    pub struct Deep {
        Linear(64, 128), ReLU, Linear(128, 128), ReLU, Linear(128, 128), ReLU,
        Linear(128, 64), ReLU, head: Linear(64, 10)
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let all = args.next().is_some_and(|a| a == "all");
    let steps: usize = args.next().map_or(Ok(2000), |s| s.parse())?;

    let mut net = Deep::boxed_seeded(1);
    if !all {
        // By index, or by name: the head stays the only layer that trains.
        for layer in [0, 2, 4, 6] {
            net.freeze(layer)?;
        }
        println!(
            "frozen: layers 0, 2, 4, 6; head frozen: {}",
            net.is_frozen("head")?
        );
    }
    let body = net.l0.clone();

    // A fixed batch of 32 samples and one-hot targets.
    let xs = SMatrix::<f32, 64, 32>::from_fn(|r, c| ((r * 31 + c * 17) % 97) as f32 / 97.0);
    let ys = SMatrix::<f32, 10, 32>::from_fn(|r, c| f32::from(u8::from(r == c % 10)));
    let mut opt = Adam::new(1e-3);
    let first = net.train_step(&xs, &ys, &CrossEntropy, &mut opt);
    let mut last = first;
    for _ in 1..steps {
        last = net.train_step(&xs, &ys, &CrossEntropy, &mut opt);
    }
    println!("loss {first:.4} -> {last:.4} after {steps} steps");
    println!("first layer unchanged: {}", net.l0 == body);

    // How each class's logit moves with each input feature, at the first sample.
    let x: SVector<f32, 64> = xs.column(0).into();
    let jacobian = net.jacobian(&x);
    let saliency = net.input_gradient(
        &x,
        &SVector::<f32, 10>::from_fn(|r, _| f32::from(u8::from(r == 0))),
    );
    println!(
        "d logit0 / d x: largest {:.4}, agrees with the Jacobian's row 0: {}",
        saliency.amax(),
        (saliency - jacobian.row(0).transpose()).amax() < 1e-5
    );
    Ok(())
}
