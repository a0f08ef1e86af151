//! The seed experiment: PyTorch's classic 2-8-1 ReLU network learning XOR with MSE and Adam
//! (lr 0.01) for 1000 full-batch epochs.
//!
//! Run it with `cargo run --release --example xor`.

use nn_runtime::prelude::*;

network! {
    /// The classic XOR network: 2 inputs, 8 hidden ReLU units, 1 output.
    pub struct Xor {
        Linear(2, 8),
        ReLU,
        Linear(8, 1),
    }
}

/// The seed this example trains from.
pub const SEED: u64 = 42;

/// The four XOR inputs, one column each, and their targets.
pub fn xor_data() -> (SMatrix<f32, 2, 4>, SMatrix<f32, 1, 4>) {
    let xs = SMatrix::<f32, 2, 4>::from_columns(&[
        SVector::from([0.0, 0.0]),
        SVector::from([0.0, 1.0]),
        SVector::from([1.0, 0.0]),
        SVector::from([1.0, 1.0]),
    ]);
    let ys = SMatrix::<f32, 1, 4>::from_row_slice(&[0.0, 1.0, 1.0, 0.0]);
    (xs, ys)
}

/// Trains a fresh network from `seed` for `epochs` epochs, calling `report(epoch, loss)` with the
/// loss before each update. Returns the network and its final loss.
pub fn train(seed: u64, epochs: usize, mut report: impl FnMut(usize, f32)) -> (Xor, f32) {
    let (xs, ys) = xor_data();
    let mut net = Xor::seeded(seed);
    let mut opt = Adam::new(0.01);
    for epoch in 0..epochs {
        let loss = net.train_step(&xs, &ys, &Mse, &mut opt);
        report(epoch, loss);
    }
    let final_loss = Mse.value(&net.forward_batch(&xs), &ys);
    (net, final_loss)
}

fn main() {
    let (net, final_loss) = train(SEED, 1000, |epoch, loss| {
        if epoch % 100 == 0 {
            println!("epoch {epoch:>4}  loss {loss:.6}");
        }
    });
    println!("final loss {final_loss:.6}\n");
    println!("  x1   x2 | target | prediction");
    let (xs, ys) = xor_data();
    for (x, y) in xs.column_iter().zip(ys.iter()) {
        let prediction = net.forward(&x.into_owned());
        println!(
            "{:>4} {:>4} | {:>6} | {:>10.4}",
            x[0], x[1], y, prediction[0]
        );
    }
}
