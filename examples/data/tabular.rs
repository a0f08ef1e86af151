//! Small tabular data sets: Fisher's iris (3 species from 4 measurements) or the Wisconsin
//! breast cancer set (malignant or benign from 30 measurements of cell nuclei).
//!
//! The same recipe as `examples/data/digits.rs`: a fixed-seed 80/20 split, features standardised
//! with the training side's statistics, shuffled minibatches, Adam and cross-entropy, a
//! progress bar per epoch, and the test accuracy at the end. Data: `examples/data/` (UCI,
//! CC BY 4.0, see its README).
//!
//! Run it with `cargo run --release --example tabular -- iris` or
//! `cargo run --release --example tabular -- breast_cancer`.

use nn_data_examples as common;
use nn_runtime::data::{Dataset, StandardScaler, train_test_split};
use nn_runtime::prelude::*;
use std::error::Error;

network! {
    /// 4 measurements in, one logit per iris species out.
    pub struct Iris { Linear(4, 16), ReLU, Linear(16, 3) }
}

network! {
    /// 30 measurements in, logits for malignant and benign out.
    pub struct Cancer { Linear(30, 32), ReLU, Linear(32, 2) }
}

/// The seed of the split, the initial weights and the shuffling.
pub const SEED: u64 = 0;

/// A data set this example knows, with its recipe.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Set {
    /// `examples/data/iris.csv`.
    Iris,
    /// `examples/data/breast_cancer.csv`.
    BreastCancer,
}

impl Set {
    /// The set named on the command line.
    pub fn parse(name: &str) -> Option<Set> {
        match name {
            "iris" => Some(Set::Iris),
            "breast_cancer" | "breast-cancer" => Some(Set::BreastCancer),
            _ => None,
        }
    }

    /// The file in `examples/data/`.
    pub fn file(self) -> &'static str {
        match self {
            Set::Iris => "iris.csv",
            Set::BreastCancer => "breast_cancer.csv",
        }
    }

    /// The test accuracy this example is expected to reach.
    pub fn target(self) -> f64 {
        match self {
            Set::Iris => 0.93,
            Set::BreastCancer => 0.95,
        }
    }
}

/// What a run reached.
pub struct Outcome {
    /// Loss and accuracy per epoch.
    pub history: common::History,
    /// Accuracy on the held-out 20 %.
    pub test_accuracy: f64,
    /// Number of training and test samples.
    pub sizes: (usize, usize),
    /// The class names from the file.
    pub classes: Vec<String>,
}

/// Splits, standardises and batches `set` for a network of `IN` inputs and `OUT` classes, and
/// trains `net` on it.
fn train<N, const IN: usize, const OUT: usize, const B: usize>(
    set: Set,
    net: &mut N,
    epochs: usize,
    progress: bool,
    lr: f32,
    step: impl Fn(&mut N, &SMatrix<f32, IN, B>, &SMatrix<f32, OUT, B>, &mut Adam<f32>) -> f32,
    predict: impl Fn(&N, &SMatrix<f32, IN, B>) -> SMatrix<f32, OUT, B>,
) -> Result<Outcome, Box<dyn Error>> {
    let table = common::load(set.file())?;
    let split = train_test_split(&table.rows, &table.labels, 0.2, SEED)?;
    let scaler = StandardScaler::fit(&split.train_x)?;
    let (mut train_x, mut test_x) = (split.train_x, split.test_x);
    scaler.transform(&mut train_x)?;
    scaler.transform(&mut test_x)?;
    let train = Dataset::<f32, IN, OUT>::classification(&train_x, &split.train_y)?;
    let test = Dataset::<f32, IN, OUT>::classification(&test_x, &split.test_y)?;

    let mut opt = Adam::new(lr);
    let history = common::fit::<N, IN, OUT, B>(
        net,
        &train,
        &test,
        epochs,
        SEED,
        progress,
        |net, xs, ys| step(net, xs, ys, &mut opt),
        &predict,
    );
    let test_accuracy = test
        .evaluate::<B, _>(&CrossEntropy, |xs| predict(net, xs))
        .accuracy
        .unwrap_or(0.0);
    Ok(Outcome {
        history,
        test_accuracy,
        sizes: (train.len(), test.len()),
        classes: table.class_names,
    })
}

/// Trains the network for `set` for `epochs` epochs (its default when `None`).
pub fn run(set: Set, epochs: Option<usize>, progress: bool) -> Result<Outcome, Box<dyn Error>> {
    match set {
        Set::Iris => train::<_, 4, 3, 16>(
            set,
            &mut Iris::seeded(SEED),
            epochs.unwrap_or(60),
            progress,
            0.01,
            |net, xs, ys, opt| net.train_step(xs, ys, &CrossEntropy, opt),
            |net, xs| net.forward_batch(xs),
        ),
        Set::BreastCancer => train::<_, 30, 2, 32>(
            set,
            &mut Cancer::seeded(SEED),
            epochs.unwrap_or(40),
            progress,
            1e-3,
            |net, xs, ys, opt| net.train_step(xs, ys, &CrossEntropy, opt),
            |net, xs| net.forward_batch(xs),
        ),
    }
}

#[cfg_attr(test, allow(dead_code))]
fn main() -> Result<(), Box<dyn Error>> {
    let name = std::env::args().nth(1).unwrap_or_default();
    let Some(set) = Set::parse(&name) else {
        eprintln!("usage: cargo run --release --example tabular -- <iris | breast_cancer>");
        std::process::exit(2);
    };
    let outcome = run(set, None, true)?;
    let (train, test) = outcome.sizes;
    println!(
        "{}: {train} training and {test} test samples, classes {}",
        set.file(),
        outcome.classes.join(", ")
    );
    println!(
        "test accuracy: {:.2} % (expected at least {:.0} %)",
        100.0 * outcome.test_accuracy,
        100.0 * set.target()
    );
    Ok(())
}

/// The example as a test: the same code, with its seed and epochs, reaches the accuracy the
/// example promises on iris and on breast cancer.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iris_reaches_93_percent() {
        let outcome = run(Set::Iris, None, false).unwrap();
        assert_eq!(outcome.sizes, (120, 30));
        assert_eq!(outcome.classes, ["setosa", "versicolor", "virginica"]);
        println!("iris: test accuracy {:.2} %", 100.0 * outcome.test_accuracy);
        assert!(outcome.test_accuracy >= Set::Iris.target());
    }

    #[test]
    fn breast_cancer_reaches_95_percent() {
        let outcome = run(Set::BreastCancer, None, false).unwrap();
        assert_eq!(outcome.sizes, (455, 114));
        println!(
            "breast_cancer: test accuracy {:.2} %",
            100.0 * outcome.test_accuracy
        );
        assert!(outcome.test_accuracy >= Set::BreastCancer.target());
    }
}
