//! Handwritten digits: a 64-64-10 network learns to read 8x8 images of the digits 0-9.
//!
//! The data (1797 images, `examples/data/digits.csv.gz`, UCI, CC BY 4.0: see
//! `examples/data/README.md`) is split 80/20 by a fixed seed; the features are standardised
//! with statistics of the training side only; the network trains on shuffled minibatches of 32
//! with Adam and cross-entropy, showing a progress bar per epoch with the loss and accuracy.
//! At the end it prints the test accuracy and writes a PNG chart of the training loss and test
//! accuracy per epoch to `target/digits.png`.
//!
//! Run it with `cargo run --release --example digits` (a second or two).

use nn_data_examples as common;
use nn_runtime::data::{Dataset, StandardScaler, train_test_split};
use nn_runtime::prelude::*;
use std::error::Error;

network! {
    /// 8x8 pixels in, one logit per digit out.
    pub struct Digits {
        Linear(64, 64),
        ReLU,
        Linear(64, 10),
    }
}

/// The seed of the split, the initial weights and the shuffling.
pub const SEED: u64 = 0;
/// Epochs of training.
pub const EPOCHS: usize = 30;
/// Samples per minibatch.
pub const BATCH: usize = 32;

/// The trained network, its history, and its final test accuracy.
pub struct Outcome {
    /// The network after training.
    pub net: Digits,
    /// Loss and accuracy per epoch.
    pub history: common::History,
    /// Accuracy on the held-out 20 %.
    pub test_accuracy: f64,
    /// Number of training and test samples.
    pub sizes: (usize, usize),
}

/// Loads the data, trains for `epochs` epochs (with progress bars if `progress`), and
/// evaluates on the test split.
pub fn run(epochs: usize, progress: bool) -> Result<Outcome, Box<dyn Error>> {
    let table = common::load("digits.csv.gz")?;
    let split = train_test_split(&table.rows, &table.labels, 0.2, SEED)?;
    let scaler = StandardScaler::fit(&split.train_x)?;
    let (mut train_x, mut test_x) = (split.train_x, split.test_x);
    scaler.transform(&mut train_x)?;
    scaler.transform(&mut test_x)?;
    let train = Dataset::<f32, 64, 10>::classification(&train_x, &split.train_y)?;
    let test = Dataset::<f32, 64, 10>::classification(&test_x, &split.test_y)?;

    let mut net = Digits::seeded(SEED);
    let mut opt = Adam::new(1e-3);
    let history = common::fit::<_, 64, 10, BATCH>(
        &mut net,
        &train,
        &test,
        epochs,
        SEED,
        progress,
        |net, xs, ys| net.train_step(xs, ys, &CrossEntropy, &mut opt),
        |net, xs| net.forward_batch(xs),
    );
    let test_accuracy = test
        .evaluate::<BATCH, _>(&CrossEntropy, |xs| net.forward_batch(xs))
        .accuracy
        .unwrap_or(0.0);
    Ok(Outcome {
        net,
        history,
        test_accuracy,
        sizes: (train.len(), test.len()),
    })
}

#[cfg_attr(test, allow(dead_code))]
fn main() -> Result<(), Box<dyn Error>> {
    let started = std::time::Instant::now();
    let outcome = run(EPOCHS, true)?;
    let (train, test) = outcome.sizes;
    println!(
        "trained {} parameters on {train} images for {EPOCHS} epochs in {:.1} s",
        Digits::PARAMS,
        started.elapsed().as_secs_f64()
    );

    std::fs::create_dir_all(common::output_dir())?;
    let path = common::output_dir().join("digits.png");
    common::chart(
        &outcome.history,
        "8x8 digits: Linear(64, 64), ReLU, Linear(64, 10)",
        &path,
    )?;
    println!("chart of loss and accuracy per epoch: {}", path.display());

    // A few test images and what the network reads in them.
    let table = common::load("digits.csv.gz")?;
    let split = train_test_split(&table.rows, &table.labels, 0.2, SEED)?;
    let scaler = StandardScaler::fit(&split.train_x)?;
    println!("\nfirst test images, as the network reads them:");
    for (pixels, label) in split.test_x.iter().zip(&split.test_y).take(3) {
        let mut x = pixels.clone();
        scaler.transform_row(&mut x)?;
        let logits = outcome.net.forward(&SVector::from_column_slice(&x));
        let guess = logits.argmax().0;
        for line in common::ascii_digit(pixels) {
            println!("    {line}");
        }
        println!("  label {label}, read as {guess}\n");
    }
    println!(
        "test accuracy: {:.2} % on {test} held-out images",
        100.0 * outcome.test_accuracy
    );
    Ok(())
}

/// The example as a test: the same code, with its seed and epochs, reaches the accuracy the
/// example promises.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_reach_96_percent() {
        let outcome = run(EPOCHS, false).unwrap();
        assert_eq!(outcome.sizes, (1437, 360));
        assert_eq!(outcome.history.test_accuracy.len(), EPOCHS);
        println!(
            "digits: test accuracy {:.2} %",
            100.0 * outcome.test_accuracy
        );
        assert!(
            outcome.test_accuracy >= 0.96,
            "test accuracy {}",
            outcome.test_accuracy
        );
        // Training lowered the loss.
        let loss = &outcome.history.train_loss;
        assert!(loss[loss.len() - 1] < loss[0] / 10.0, "{loss:?}");
    }
}
