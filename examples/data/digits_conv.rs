//! Handwritten digits by a small convolutional network: the 8x8 images of `digits.rs`, read as
//! images instead of as 64 unrelated numbers.
//!
//! The data (1797 images, `examples/data/digits.csv.gz`, UCI, CC BY 4.0: see
//! `examples/data/README.md`) is split 80/20 by the same seed as `digits.rs`, so the two
//! examples are tested on the same 360 images. The pixels are scaled to `[0, 1]` (divided by
//! 16): a convolution shares its weights across positions, so every pixel gets the same
//! scaling, not a per-pixel standardisation. The training side is augmented with its four
//! copies shifted by one pixel up, down, left and right (the pixel pushed off the edge
//! dropped, the new row or column blank): 1437 images become 7185. The network trains on
//! shuffled minibatches of 32 with cross-entropy and Adam, at a learning rate of 3e-3 for
//! [`EPOCHS`] - [`FINE_EPOCHS`] epochs and then, with a fresh Adam, at 3e-4 for the last
//! [`FINE_EPOCHS`] (a step decay of the rate), with a progress bar per epoch.
//!
//! At the end it prints the test accuracy, and writes PNGs of the training loss and test
//! accuracy per epoch (`target/digits_conv.png`) and of the test digits it misreads
//! (`target/digits_conv_errors.png`). It fails (exit status 1) below [`GOOD_ACCURACY`] on the
//! held-out images, so CI's run of it is a test (`digits.rs`'s 64-64-10 MLP reaches 97.8 %).
//!
//! Run it with `cargo run --release --example digits_conv` (several seconds; in a debug build,
//! minutes).

use nn_data_examples as common;
use nn_runtime::data::{Dataset, train_test_split};
use nn_runtime::prelude::*;
use std::error::Error;

network! {
    /// 8x8 pixels in, one logit per digit out: two 3x3 convolutions at 8x8, a 2x2 max-pool,
    /// one at 4x4, another pool, and a linear read-out of the 32 2x2 maps.
    pub struct DigitsConv {
        Unflatten(1, 8, 8),
        Conv2d(1, 16, 3, padding = 1),
        ReLU,
        Conv2d(16, 16, 3, padding = 1),
        ReLU,
        MaxPool2d(2),
        Conv2d(16, 32, 3, padding = 1),
        ReLU,
        MaxPool2d(2),
        Flatten,
        Linear(128, 10),
    }
}

/// The seed of the split (as `digits.rs`), the initial weights and the shuffling.
pub const SEED: u64 = 0;
/// Epochs of training, the last [`FINE_EPOCHS`] of them at a tenth of the learning rate.
pub const EPOCHS: usize = 20;
/// Epochs at the lower learning rate, at the end.
pub const FINE_EPOCHS: usize = 8;
/// Adam's learning rate, then a tenth of it.
pub const LR: f32 = 3e-3;
/// Samples per minibatch.
pub const BATCH: usize = 32;
/// The test accuracy the example must reach.
pub const GOOD_ACCURACY: f64 = 0.985;
/// The shifts `(down, right)` of each training image the network trains on, itself first.
pub const SHIFTS: [(isize, isize); 5] = [(0, 0), (1, 0), (-1, 0), (0, 1), (0, -1)];

/// An 8x8 image moved `down` rows and `right` columns (either may be negative), blank where
/// nothing moved in.
pub fn shifted(pixels: &[f32], down: isize, right: isize) -> Vec<f32> {
    let mut out = vec![0.0; 64];
    for y in 0..8 {
        for x in 0..8 {
            let (from_y, from_x) = (y - down, x - right);
            if (0..8).contains(&from_y) && (0..8).contains(&from_x) {
                out[(y * 8 + x) as usize] = pixels[(from_y * 8 + from_x) as usize];
            }
        }
    }
    out
}

/// Pixels from 0..16 to 0..1.
fn scaled(pixels: &[f32]) -> Vec<f32> {
    pixels.iter().map(|p| p / 16.0).collect()
}

/// The trained network, its history, and its test results.
pub struct Outcome {
    /// The network after training.
    pub net: DigitsConv,
    /// Loss and accuracy per epoch.
    pub history: common::History,
    /// Accuracy on the held-out 20 %.
    pub test_accuracy: f64,
    /// The held-out images the network misreads.
    pub errors: Vec<common::Reading>,
    /// Number of training images (before the shifts) and test images.
    pub sizes: (usize, usize),
}

/// Loads the data, trains for `epochs` epochs (the last `fine` at a tenth of [`LR`]; with
/// progress bars if `progress`), and evaluates on the test split.
pub fn run(epochs: usize, fine: usize, progress: bool) -> Result<Outcome, Box<dyn Error>> {
    let table = common::load("digits.csv.gz")?;
    let split = train_test_split(&table.rows, &table.labels, 0.2, SEED)?;
    let (mut train_x, mut train_y) = (Vec::new(), Vec::new());
    for (down, right) in SHIFTS {
        for (pixels, &label) in split.train_x.iter().zip(&split.train_y) {
            train_x.push(scaled(&shifted(pixels, down, right)));
            train_y.push(label);
        }
    }
    let test_x: Vec<Vec<f32>> = split.test_x.iter().map(|p| scaled(p)).collect();
    let train = Dataset::<f32, 64, 10>::classification(&train_x, &train_y)?;
    let test = Dataset::<f32, 64, 10>::classification(&test_x, &split.test_y)?;

    let mut net = DigitsConv::seeded(SEED);
    // A step decay of the rate: a fresh Adam at a tenth of it for the last `fine` epochs.
    let (mut coarse, mut fine_opt) = (Adam::new(LR), Adam::new(LR / 10.0));
    let coarse_steps = epochs.saturating_sub(fine) * train.len().div_ceil(BATCH);
    let mut steps = 0;
    let history = common::fit::<_, 64, 10, BATCH>(
        &mut net,
        &train,
        &test,
        epochs,
        SEED,
        progress,
        |net, xs, ys| {
            steps += 1;
            let opt = if steps <= coarse_steps {
                &mut coarse
            } else {
                &mut fine_opt
            };
            net.train_step(xs, ys, &CrossEntropy, opt)
        },
        |net, xs| net.forward_batch(xs),
    );
    let test_accuracy = test
        .evaluate::<BATCH, _>(&CrossEntropy, |xs| net.forward_batch(xs))
        .accuracy
        .unwrap_or(0.0);
    let errors = split
        .test_x
        .iter()
        .zip(&test_x)
        .zip(&split.test_y)
        .filter_map(|((pixels, x), &label)| {
            let guess = net.forward(&SVector::from_column_slice(x)).argmax().0;
            (guess != label).then(|| common::Reading {
                pixels: pixels.clone(),
                label,
                guess,
            })
        })
        .collect();
    Ok(Outcome {
        net,
        history,
        test_accuracy,
        errors,
        sizes: (split.train_x.len(), test.len()),
    })
}

fn main() -> Result<(), Box<dyn Error>> {
    let started = std::time::Instant::now();
    let outcome = run(EPOCHS, FINE_EPOCHS, true)?;
    let (train, test) = outcome.sizes;
    println!(
        "trained {} parameters on {train} images and their {} shifted copies for {EPOCHS} \
         epochs in {:.1} s",
        DigitsConv::PARAMS,
        train * (SHIFTS.len() - 1),
        started.elapsed().as_secs_f64()
    );

    std::fs::create_dir_all(common::output_dir())?;
    let path = common::output_dir().join("digits_conv.png");
    common::chart(
        &outcome.history,
        "8x8 digits: 3 Conv2d(3x3), 2 MaxPool2d(2), Linear(128, 10)",
        &path,
    )?;
    println!("chart of loss and accuracy per epoch: {}", path.display());
    let path = common::output_dir().join("digits_conv_errors.png");
    let title = format!(
        "the {} test digits DigitsConv misreads",
        outcome.errors.len()
    );
    common::digit_gallery(&outcome.errors, &title, &path)?;
    println!("the misread test digits: {}", path.display());

    println!("\nmisread test images:");
    for reading in &outcome.errors {
        for line in common::ascii_digit(&reading.pixels) {
            println!("    {line}");
        }
        println!("  label {}, read as {}\n", reading.label, reading.guess);
    }
    println!(
        "test accuracy: {:.2} % on {test} held-out images ({} misread)",
        100.0 * outcome.test_accuracy,
        outcome.errors.len()
    );
    if outcome.test_accuracy < GOOD_ACCURACY {
        return Err(format!(
            "the test accuracy {:.2} % is below {:.1} %",
            100.0 * outcome.test_accuracy,
            100.0 * GOOD_ACCURACY
        )
        .into());
    }
    Ok(())
}
