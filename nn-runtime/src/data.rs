//! From rows of numbers to the fixed-size batches a network trains on.
//!
//! A generated network takes a batch as an `IN x B` matrix with one column per sample, `B` a
//! constant. This module turns plain rows (`&[[T; IN]]`, `&[Vec<T>]`, `&[&[T]]`) and labels into
//! such batches, shuffled by a seed, and carries the chores around it: a seeded train/test
//! split ([`train_test_split`]), standardisation fitted on the training rows
//! ([`StandardScaler`]), and evaluation over a whole data set ([`Dataset::evaluate`]).
//!
//! # The last partial batch
//!
//! When the number of samples is not a multiple of `B`, the last batch is filled up to `B`
//! columns by *repeating samples from the start of the same epoch's order* (which are real
//! samples, already seen this epoch), and [`Batch::len`] says how many columns are new. So:
//!
//! - training on every batch is correct as it stands: the loss is the mean over `B` real
//!   samples, a few of which get a second update this epoch (as if the epoch were a few
//!   samples longer), and no made-up zeros pull the network anywhere;
//! - metrics count only the first `len` columns ([`Batch::correct`] and [`Dataset::evaluate`]
//!   do), so each sample counts exactly once;
//! - [`Batches::drop_last`] skips the partial batch instead, as `DataLoader(drop_last=True)`.
//!
//! A data set smaller than `B` gives one batch whose samples repeat as often as needed.
//!
//! ```
//! use nn_runtime::data::{Dataset, StandardScaler, train_test_split};
//! use nn_runtime::prelude::*;
//!
//! network! { pub struct Net { Linear(2, 8), ReLU, Linear(8, 2) } }
//!
//! // Points above or below the line y = x, labelled 1 or 0.
//! let rows: Vec<[f32; 2]> = (0..100)
//!     .map(|i| [(i % 10) as f32, (i / 10) as f32 + 0.5])
//!     .collect();
//! let labels: Vec<usize> = rows.iter().map(|r| usize::from(r[1] > r[0])).collect();
//!
//! let split = train_test_split(&rows, &labels, 0.2, 7)?;
//! let scaler = StandardScaler::fit(&split.train_x)?;
//! let (mut train_x, mut test_x) = (split.train_x, split.test_x);
//! scaler.transform(&mut train_x)?;
//! scaler.transform(&mut test_x)?;
//! let train = Dataset::<f32, 2, 2>::classification(&train_x, &split.train_y)?;
//! let test = Dataset::<f32, 2, 2>::classification(&test_x, &split.test_y)?;
//!
//! let mut net = Net::seeded(0);
//! let mut opt = Adam::new(0.05);
//! for epoch in 0..50 {
//!     for batch in train.batches::<16>().shuffled(epoch) {
//!         net.train_step(&batch.xs, &batch.ys, &CrossEntropy, &mut opt);
//!     }
//! }
//! let result = test.evaluate::<16, _>(&CrossEntropy, |xs| net.forward_batch(xs));
//! assert!(result.accuracy.unwrap() > 0.9, "{result:?}");
//! # Ok::<(), nn_runtime::data::DataError>(())
//! ```

use crate::loss::Loss;
use crate::real::Real;
use nalgebra::SMatrix;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use std::fmt;

/// Why rows, labels or targets could not be used.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum DataError {
    /// There are not as many labels (or target rows) as feature rows.
    LengthMismatch {
        /// Number of feature rows.
        rows: usize,
        /// Number of labels or target rows.
        targets: usize,
    },
    /// A feature row does not have the expected number of values.
    RowLength {
        /// The row's index.
        row: usize,
        /// The number of features expected.
        expected: usize,
        /// The row's length.
        found: usize,
    },
    /// A regression target row does not have the expected number of values.
    TargetLength {
        /// The row's index.
        row: usize,
        /// The number of outputs expected.
        expected: usize,
        /// The target row's length.
        found: usize,
    },
    /// A class label is not below the number of classes.
    Label {
        /// The row's index.
        row: usize,
        /// The label.
        label: usize,
        /// The number of classes (the network's outputs).
        classes: usize,
    },
    /// A scaler was fitted on no rows.
    NoRows,
    /// A test fraction outside `(0, 1)` or one that leaves either side of the split empty.
    Fraction {
        /// The fraction asked for.
        fraction: f64,
        /// The number of rows to split.
        rows: usize,
    },
}

impl fmt::Display for DataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DataError::LengthMismatch { rows, targets } => write!(
                f,
                "{rows} feature rows but {targets} labels or targets; there must be one per row"
            ),
            DataError::RowLength {
                row,
                expected,
                found,
            } => write!(f, "row {row} has {found} features, expected {expected}"),
            DataError::TargetLength {
                row,
                expected,
                found,
            } => write!(
                f,
                "target row {row} has {found} values, expected {expected}"
            ),
            DataError::Label {
                row,
                label,
                classes,
            } => write!(
                f,
                "row {row} has label {label}, but there are only {classes} classes (0..{classes})"
            ),
            DataError::NoRows => write!(f, "cannot fit a scaler on no rows"),
            DataError::Fraction { fraction, rows } => write!(
                f,
                "a test fraction of {fraction} of {rows} rows leaves the train or the test set \
                 empty; use a fraction in (0, 1) and at least 2 rows"
            ),
        }
    }
}

impl std::error::Error for DataError {}

/// The feature rows of a dataset with `targets` targets or labels, as arrays of `IN`: an error
/// if there are not as many rows as targets, or a row is not `IN` long (the length is checked
/// first, as every constructor reports it).
fn feature_rows<T: Real, R: AsRef<[T]>, const IN: usize>(
    features: &[R],
    targets: usize,
) -> Result<Vec<[T; IN]>, DataError> {
    if features.len() != targets {
        return Err(DataError::LengthMismatch {
            rows: features.len(),
            targets,
        });
    }
    fixed_rows(features, |row, found| DataError::RowLength {
        row,
        expected: IN,
        found,
    })
}

/// The rows of `rows` as arrays of `N`, or the first row of another length.
fn fixed_rows<T: Real, R: AsRef<[T]>, const N: usize>(
    rows: &[R],
    error: impl Fn(usize, usize) -> DataError,
) -> Result<Vec<[T; N]>, DataError> {
    rows.iter()
        .enumerate()
        .map(|(i, row)| {
            let row = row.as_ref();
            <[T; N]>::try_from(row).map_err(|_| error(i, row.len()))
        })
        .collect()
}

/// Samples held for batching: `IN` features and `OUT` targets each, and for a classification
/// set its labels.
///
/// Built from rows by [`classification`](Dataset::classification) (labels, one-hot encoded
/// into `OUT` classes for [`CrossEntropy`](crate::CrossEntropy)) or
/// [`regression`](Dataset::regression) (target rows). Iterate over it by
/// [`batches`](Dataset::batches).
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset<T, const IN: usize, const OUT: usize> {
    features: Vec<[T; IN]>,
    targets: Vec<[T; OUT]>,
    labels: Option<Vec<usize>>,
}

impl<T: Real, const IN: usize, const OUT: usize> Dataset<T, IN, OUT> {
    /// A classification set: `features` holds one row of `IN` values per sample, `labels` its
    /// class, below `OUT`; the targets are the labels one-hot encoded.
    pub fn classification<R: AsRef<[T]>>(
        features: &[R],
        labels: &[usize],
    ) -> Result<Self, DataError> {
        let features = feature_rows(features, labels.len())?;
        let targets = labels
            .iter()
            .enumerate()
            .map(|(row, &label)| {
                if label >= OUT {
                    return Err(DataError::Label {
                        row,
                        label,
                        classes: OUT,
                    });
                }
                let mut target = [T::zero(); OUT];
                target[label] = T::one();
                Ok(target)
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            features,
            targets,
            labels: Some(labels.to_vec()),
        })
    }

    /// A regression set: `features` holds one row of `IN` values per sample, `targets` one row
    /// of `OUT` values.
    pub fn regression<R: AsRef<[T]>, S: AsRef<[T]>>(
        features: &[R],
        targets: &[S],
    ) -> Result<Self, DataError> {
        Ok(Self {
            features: feature_rows(features, targets.len())?,
            targets: fixed_rows(targets, |row, found| DataError::TargetLength {
                row,
                expected: OUT,
                found,
            })?,
            labels: None,
        })
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.features.len()
    }

    /// Whether there are no samples.
    pub fn is_empty(&self) -> bool {
        self.features.is_empty()
    }

    /// The feature rows.
    pub fn features(&self) -> &[[T; IN]] {
        &self.features
    }

    /// The target rows (one-hot for a classification set).
    pub fn targets(&self) -> &[[T; OUT]] {
        &self.targets
    }

    /// The class labels of a classification set; `None` for a regression set.
    pub fn labels(&self) -> Option<&[usize]> {
        self.labels.as_deref()
    }

    /// One epoch of batches of `B` samples, in order; chain
    /// [`shuffled`](Batches::shuffled) to shuffle and [`drop_last`](Batches::drop_last) to
    /// skip the partial batch (see the [module docs](self) for how it is filled otherwise).
    pub fn batches<const B: usize>(&self) -> Batches<'_, T, IN, OUT, B> {
        Batches {
            data: self,
            order: (0..self.len()).collect(),
            next: 0,
            drop_last: false,
        }
    }

    /// Runs `predict` over every sample in batches of `B` and returns the mean `loss` over the
    /// samples and, for a classification set, the accuracy (the fraction of samples whose
    /// largest output is their label).
    ///
    /// Padding columns of the last batch are computed but not counted. The mean is exact for
    /// every loss of this crate: each is a mean over samples, so it is evaluated per sample.
    pub fn evaluate<const B: usize, L: Loss<T>>(
        &self,
        loss: &L,
        mut predict: impl FnMut(&SMatrix<T, IN, B>) -> SMatrix<T, OUT, B>,
    ) -> Evaluation<T> {
        let mut total = 0.0;
        let mut correct = 0;
        for batch in self.batches::<B>() {
            let outputs = predict(&batch.xs);
            for b in 0..batch.len {
                let output = outputs.fixed_columns::<1>(b).into_owned();
                let target = batch.ys.fixed_columns::<1>(b).into_owned();
                total += loss.value(&output, &target).widen();
            }
            correct += batch.correct(&outputs);
        }
        let n = self.len().max(1) as f64;
        Evaluation {
            loss: T::cast(total / n),
            accuracy: self.labels.is_some().then(|| correct as f64 / n),
            samples: self.len(),
        }
    }
}

/// What [`Dataset::evaluate`] measured.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Evaluation<T> {
    /// The mean loss over the samples.
    pub loss: T,
    /// For a classification set, the fraction of samples classified correctly.
    pub accuracy: Option<f64>,
    /// The number of samples.
    pub samples: usize,
}

/// One epoch of batches over a [`Dataset`], from [`Dataset::batches`].
#[derive(Clone, Debug)]
pub struct Batches<'a, T, const IN: usize, const OUT: usize, const B: usize> {
    data: &'a Dataset<T, IN, OUT>,
    order: Vec<usize>,
    next: usize,
    drop_last: bool,
}

impl<T: Real, const IN: usize, const OUT: usize, const B: usize> Batches<'_, T, IN, OUT, B> {
    /// Shuffles the order of the samples by `seed` (ChaCha8, so the same seed gives the same
    /// order on every machine). Use a different seed each epoch, e.g. `seed + epoch`.
    pub fn shuffled(mut self, seed: u64) -> Self {
        self.order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
        self
    }

    /// Whether to skip the last batch when it would be partial (default `false`: it is filled
    /// by repeating samples, see the [module docs](self)).
    pub fn drop_last(mut self, drop: bool) -> Self {
        self.drop_last = drop;
        self
    }

    /// The sample indices this epoch visits, in order.
    pub fn order(&self) -> &[usize] {
        &self.order
    }
}

impl<T: Real, const IN: usize, const OUT: usize, const B: usize> Iterator
    for Batches<'_, T, IN, OUT, B>
{
    type Item = Batch<T, IN, OUT, B>;

    fn next(&mut self) -> Option<Self::Item> {
        let n = self.order.len();
        let remaining = n.saturating_sub(self.next);
        if remaining == 0 || B == 0 || (self.drop_last && remaining < B) {
            return None;
        }
        let len = remaining.min(B);
        let indices: [usize; B] = core::array::from_fn(|b| {
            if b < len {
                self.order[self.next + b]
            } else {
                // Padding: the epoch's first samples, cycling if the set is smaller than B.
                self.order[(b - len) % n]
            }
        });
        self.next += len;
        let xs = SMatrix::from_fn(|r, c| self.data.features[indices[c]][r]);
        let ys = SMatrix::from_fn(|r, c| self.data.targets[indices[c]][r]);
        Some(Batch {
            xs,
            ys,
            len,
            indices,
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let remaining = self.order.len().saturating_sub(self.next);
        let batches = match B {
            0 => 0,
            _ if self.drop_last => remaining / B,
            _ => remaining.div_ceil(B),
        };
        (batches, Some(batches))
    }
}

impl<T: Real, const IN: usize, const OUT: usize, const B: usize> ExactSizeIterator
    for Batches<'_, T, IN, OUT, B>
{
}

/// `B` samples as a network takes them: column `b` of `xs` and `ys` is sample `indices[b]`.
///
/// Only the first `len` columns are new this epoch; the rest (in the last batch only) repeat
/// earlier samples to fill the batch, see the [module docs](self).
#[derive(Clone, Debug, PartialEq)]
pub struct Batch<T, const IN: usize, const OUT: usize, const B: usize> {
    /// The features, `IN x B`.
    pub xs: SMatrix<T, IN, B>,
    /// The targets, `OUT x B` (one-hot columns for a classification set).
    pub ys: SMatrix<T, OUT, B>,
    /// How many columns, from the first, are samples new in this epoch: `B` but in the last
    /// batch.
    pub len: usize,
    /// The data set index of each column's sample.
    pub indices: [usize; B],
}

impl<T: Real, const IN: usize, const OUT: usize, const B: usize> Batch<T, IN, OUT, B> {
    /// How many of the first [`len`](Batch::len) columns of `outputs` have their largest value
    /// in the row where the target's is: correct classifications, for one-hot targets.
    pub fn correct(&self, outputs: &SMatrix<T, OUT, B>) -> usize {
        (0..self.len.min(B))
            .filter(|&b| argmax(outputs.column(b).iter()) == argmax(self.ys.column(b).iter()))
            .count()
    }
}

/// The index of the largest value (the first of equals); `None` if empty.
pub fn argmax<'a, T: Real>(values: impl IntoIterator<Item = &'a T>) -> Option<usize> {
    let mut best: Option<(usize, T)> = None;
    for (i, &v) in values.into_iter().enumerate() {
        if best.is_none_or(|(_, b)| v > b) {
            best = Some((i, v));
        }
    }
    best.map(|(i, _)| i)
}

/// Per-feature standardisation, `(x - mean) / std`, as scikit-learn's `StandardScaler`: fit
/// the mean and (population) standard deviation of each feature on the training rows, then
/// apply the same transform to training and test rows. A feature constant in the training rows
/// keeps a scale of 1 (it is only centred), so nothing is divided by zero.
#[derive(Clone, Debug, PartialEq)]
pub struct StandardScaler<T> {
    mean: Vec<T>,
    std: Vec<T>,
}

impl<T: Real> StandardScaler<T> {
    /// Fits the scaler on `rows`, which must be non-empty and all of one length.
    pub fn fit<R: AsRef<[T]>>(rows: &[R]) -> Result<Self, DataError> {
        let first = rows.first().ok_or(DataError::NoRows)?.as_ref().len();
        let mut sum = vec![0.0f64; first];
        for (i, row) in rows.iter().enumerate() {
            let row = row.as_ref();
            if row.len() != first {
                return Err(DataError::RowLength {
                    row: i,
                    expected: first,
                    found: row.len(),
                });
            }
            for (s, &v) in sum.iter_mut().zip(row) {
                *s += v.widen();
            }
        }
        let n = rows.len() as f64;
        let mean: Vec<f64> = sum.iter().map(|s| s / n).collect();
        let mut squares = vec![0.0f64; first];
        for row in rows {
            for ((s, &v), m) in squares.iter_mut().zip(row.as_ref()).zip(&mean) {
                *s += (v.widen() - m).powi(2);
            }
        }
        let std = squares
            .iter()
            .map(|s| {
                let std = (s / n).sqrt();
                T::cast(if std > 0.0 { std } else { 1.0 })
            })
            .collect();
        Ok(Self {
            mean: mean.into_iter().map(T::cast).collect(),
            std,
        })
    }

    /// The fitted mean of each feature.
    pub fn mean(&self) -> &[T] {
        &self.mean
    }

    /// The fitted scale of each feature (its standard deviation, or 1 where that was 0).
    pub fn std(&self) -> &[T] {
        &self.std
    }

    /// Standardises one row in place.
    pub fn transform_row(&self, row: &mut [T]) -> Result<(), DataError> {
        if row.len() != self.mean.len() {
            return Err(DataError::RowLength {
                row: 0,
                expected: self.mean.len(),
                found: row.len(),
            });
        }
        for ((v, &m), &s) in row.iter_mut().zip(&self.mean).zip(&self.std) {
            *v = (*v - m) / s;
        }
        Ok(())
    }

    /// Standardises every row in place; checks every row's length before changing any.
    pub fn transform<R: AsMut<[T]>>(&self, rows: &mut [R]) -> Result<(), DataError> {
        for (i, row) in rows.iter_mut().enumerate() {
            let found = row.as_mut().len();
            if found != self.mean.len() {
                return Err(DataError::RowLength {
                    row: i,
                    expected: self.mean.len(),
                    found,
                });
            }
        }
        for row in rows {
            self.transform_row(row.as_mut())?;
        }
        Ok(())
    }
}

/// The two sides of [`train_test_split`].
#[derive(Clone, Debug, PartialEq)]
pub struct Split<R, L> {
    /// The training rows.
    pub train_x: Vec<R>,
    /// Their labels or targets.
    pub train_y: Vec<L>,
    /// The test rows.
    pub test_x: Vec<R>,
    /// Their labels or targets.
    pub test_y: Vec<L>,
}

/// The indices `0..len` shuffled by `seed` and cut into `(train, test)`, the test side holding
/// `ceil(test_fraction * len)` of them (as scikit-learn rounds).
pub fn split_indices(
    len: usize,
    test_fraction: f64,
    seed: u64,
) -> Result<(Vec<usize>, Vec<usize>), DataError> {
    let bad = DataError::Fraction {
        fraction: test_fraction,
        rows: len,
    };
    if !(test_fraction > 0.0 && test_fraction < 1.0) {
        return Err(bad);
    }
    let test = (test_fraction * len as f64).ceil() as usize;
    if test == 0 || test >= len {
        return Err(bad);
    }
    let mut order: Vec<usize> = (0..len).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    let test_side = order.split_off(len - test);
    Ok((order, test_side))
}

/// Splits rows and their labels (or targets) at random, reproducibly by `seed`, into a
/// training and a test side, as scikit-learn's `train_test_split(x, y, test_size=...,
/// random_state=...)` (not the same shuffle, the same idea).
pub fn train_test_split<R: Clone, L: Clone>(
    rows: &[R],
    labels: &[L],
    test_fraction: f64,
    seed: u64,
) -> Result<Split<R, L>, DataError> {
    if rows.len() != labels.len() {
        return Err(DataError::LengthMismatch {
            rows: rows.len(),
            targets: labels.len(),
        });
    }
    let (train, test) = split_indices(rows.len(), test_fraction, seed)?;
    let pick = |indices: &[usize]| -> (Vec<R>, Vec<L>) {
        indices
            .iter()
            .map(|&i| (rows[i].clone(), labels[i].clone()))
            .unzip()
    };
    let (train_x, train_y) = pick(&train);
    let (test_x, test_y) = pick(&test);
    Ok(Split {
        train_x,
        train_y,
        test_x,
        test_y,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CrossEntropy, Mse};

    fn rows(n: usize) -> Vec<[f64; 2]> {
        (0..n).map(|i| [i as f64, 10.0 * i as f64]).collect()
    }

    #[test]
    fn batches_in_order_with_one_hot_targets() {
        let labels = [0, 2, 1, 2, 0];
        let data = Dataset::<f64, 2, 3>::classification(&rows(5), &labels).unwrap();
        let batches: Vec<_> = data.batches::<2>().collect();
        assert_eq!(batches.len(), 3);
        assert_eq!(batches[0].indices, [0, 1]);
        assert_eq!(
            batches[0].xs,
            SMatrix::<f64, 2, 2>::new(0.0, 1.0, 0.0, 10.0)
        );
        assert_eq!(
            batches[0].ys,
            SMatrix::<f64, 3, 2>::new(1.0, 0.0, 0.0, 0.0, 0.0, 1.0)
        );
        assert_eq!(batches[1].indices, [2, 3]);
        assert_eq!((batches[0].len, batches[1].len), (2, 2));
    }

    #[test]
    fn the_last_partial_batch_repeats_the_epochs_first_samples() {
        let data = Dataset::<f64, 2, 2>::classification(&rows(5), &[0, 1, 0, 1, 0]).unwrap();
        let last = data.batches::<4>().last().unwrap();
        assert_eq!(last.len, 1);
        assert_eq!(last.indices, [4, 0, 1, 2]);
        assert_eq!(
            last.xs.column(1),
            data.batches::<4>().next().unwrap().xs.column(0)
        );
        // Shuffled: padding comes from the shuffled order's start.
        let shuffled = data.batches::<4>().shuffled(3);
        let order = shuffled.order().to_vec();
        let last = shuffled.last().unwrap();
        assert_eq!(last.indices, [order[4], order[0], order[1], order[2]]);
        // drop_last skips it; size_hint agrees.
        assert_eq!(data.batches::<4>().len(), 2);
        assert_eq!(data.batches::<4>().drop_last(true).len(), 1);
        assert_eq!(data.batches::<4>().drop_last(true).count(), 1);
    }

    #[test]
    fn a_set_smaller_than_a_batch_cycles() {
        let data = Dataset::<f64, 2, 2>::classification(&rows(2), &[0, 1]).unwrap();
        let batches: Vec<_> = data.batches::<5>().collect();
        assert_eq!(batches.len(), 1);
        assert_eq!(batches[0].indices, [0, 1, 0, 1, 0]);
        assert_eq!(batches[0].len, 2);
        assert_eq!(data.batches::<5>().drop_last(true).count(), 0);
        let empty = Dataset::<f64, 2, 2>::classification(&Vec::<[f64; 2]>::new(), &[]).unwrap();
        assert!(empty.is_empty());
        assert_eq!(empty.batches::<4>().count(), 0);
    }

    #[test]
    fn every_sample_once_per_epoch_and_shuffling_is_seeded() {
        let data = Dataset::<f64, 2, 2>::classification(&rows(50), &[1; 50]).unwrap();
        let seen = |seed| {
            let mut seen: Vec<usize> = data
                .batches::<8>()
                .shuffled(seed)
                .flat_map(|b| b.indices[..b.len].to_vec())
                .collect();
            let order = seen.clone();
            seen.sort();
            assert_eq!(seen, (0..50).collect::<Vec<_>>());
            order
        };
        assert_eq!(seen(1), seen(1));
        assert_ne!(seen(1), seen(2));
        assert_ne!(seen(1), (0..50).collect::<Vec<_>>());
    }

    #[test]
    fn rows_of_any_kind_and_errors() {
        let vecs: Vec<Vec<f32>> = vec![vec![1.0, 2.0], vec![3.0, 4.0]];
        let slices: Vec<&[f32]> = vecs.iter().map(|v| v.as_slice()).collect();
        let a = Dataset::<f32, 2, 2>::classification(&vecs, &[0, 1]).unwrap();
        let b = Dataset::<f32, 2, 2>::classification(&slices, &[0, 1]).unwrap();
        assert_eq!(a, b);
        assert_eq!(
            Dataset::<f32, 3, 2>::classification(&vecs, &[0, 1]),
            Err(DataError::RowLength {
                row: 0,
                expected: 3,
                found: 2
            })
        );
        assert_eq!(
            Dataset::<f32, 2, 2>::classification(&vecs, &[0, 2]),
            Err(DataError::Label {
                row: 1,
                label: 2,
                classes: 2
            })
        );
        assert_eq!(
            Dataset::<f32, 2, 2>::classification(&vecs, &[0]),
            Err(DataError::LengthMismatch {
                rows: 2,
                targets: 1
            })
        );
        let err = Dataset::<f32, 2, 3>::regression(&vecs, &vecs).unwrap_err();
        assert_eq!(
            err,
            DataError::TargetLength {
                row: 0,
                expected: 3,
                found: 2
            }
        );
        assert_eq!(err.to_string(), "target row 0 has 2 values, expected 3");
    }

    #[test]
    fn regression_targets() {
        let xs = rows(3);
        let ys: Vec<[f64; 1]> = xs.iter().map(|r| [r[0] * 2.0]).collect();
        let data = Dataset::<f64, 2, 1>::regression(&xs, &ys).unwrap();
        assert_eq!(data.labels(), None);
        let batch = data.batches::<3>().next().unwrap();
        assert_eq!(batch.ys, SMatrix::<f64, 1, 3>::new(0.0, 2.0, 4.0));
        // A perfect predictor has zero loss and no accuracy to report.
        let eval = data.evaluate::<2, _>(&Mse, |xs| xs.fixed_rows::<1>(0) * 2.0);
        assert_eq!(eval.loss, 0.0);
        assert_eq!(eval.accuracy, None);
        assert_eq!(eval.samples, 3);
    }

    #[test]
    fn evaluate_counts_each_sample_once() {
        // 5 samples in batches of 4: the padding columns must not count.
        let labels = [0, 1, 1, 1, 0];
        let data = Dataset::<f64, 2, 2>::classification(&rows(5), &labels).unwrap();
        // Predicts class 1 for every sample: 3 of 5 correct.
        let eval = data.evaluate::<4, _>(&CrossEntropy, |_| {
            SMatrix::<f64, 2, 4>::from_fn(|r, _| r as f64)
        });
        assert_eq!(eval.accuracy, Some(0.6));
        // Each sample's loss: -log_softmax. Class 1: ln(1 + e^-1); class 0: ln(1 + e).
        let expected = (3.0 * (1.0 + (-1f64).exp()).ln() + 2.0 * (1.0 + 1f64.exp()).ln()) / 5.0;
        assert!((eval.loss - expected).abs() < 1e-12);
    }

    #[test]
    fn argmax_picks_the_first_largest() {
        assert_eq!(argmax(&[1.0, 3.0, 3.0, 2.0]), Some(1));
        assert_eq!(argmax::<f64>(&[]), None);
    }

    #[test]
    fn scaler_centres_and_scales_on_the_training_rows() {
        let train = vec![
            vec![1.0, 5.0, 2.0],
            vec![3.0, 5.0, 4.0],
            vec![5.0, 5.0, 9.0],
        ];
        let scaler = StandardScaler::fit(&train).unwrap();
        assert_eq!(scaler.mean(), [3.0, 5.0, 5.0]);
        assert_eq!(scaler.std()[1], 1.0, "a constant feature keeps scale 1");
        let mut scaled = train.clone();
        scaler.transform(&mut scaled).unwrap();
        for f in [0, 2] {
            let column: Vec<f64> = scaled.iter().map(|r| r[f]).collect();
            let mean = column.iter().sum::<f64>() / 3.0;
            let var = column.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 3.0;
            assert!(mean.abs() < 1e-12 && (var - 1.0).abs() < 1e-12);
        }
        assert!(scaled.iter().all(|r| r[1] == 0.0));
        // The test side uses the training statistics.
        let mut test = [[7.0, 5.0, 5.0]];
        scaler.transform(&mut test).unwrap();
        assert_eq!(test[0][0], 4.0 / (8.0f64 / 3.0).sqrt());
        // Errors, and no row changed when one is wrong.
        let mut bad = vec![vec![1.0, 2.0, 3.0], vec![1.0]];
        assert!(matches!(
            scaler.transform(&mut bad),
            Err(DataError::RowLength { row: 1, .. })
        ));
        assert_eq!(bad[0], [1.0, 2.0, 3.0]);
        assert_eq!(
            StandardScaler::<f64>::fit(&Vec::<Vec<f64>>::new()),
            Err(DataError::NoRows)
        );
    }

    #[test]
    fn split_is_seeded_disjoint_and_complete() {
        let xs = rows(10);
        let ys: Vec<usize> = (0..10).collect();
        let split = train_test_split(&xs, &ys, 0.25, 9).unwrap();
        assert_eq!((split.train_x.len(), split.test_x.len()), (7, 3));
        let mut all: Vec<usize> = split.train_y.iter().chain(&split.test_y).copied().collect();
        all.sort();
        assert_eq!(all, ys);
        for (x, &y) in split.train_x.iter().zip(&split.train_y) {
            assert_eq!(*x, xs[y], "rows stay with their labels");
        }
        assert_eq!(split, train_test_split(&xs, &ys, 0.25, 9).unwrap());
        assert_ne!(split, train_test_split(&xs, &ys, 0.25, 10).unwrap());
        for fraction in [0.0, 1.0, -0.5, f64::NAN] {
            assert!(matches!(
                split_indices(10, fraction, 0),
                Err(DataError::Fraction { .. })
            ));
        }
        assert!(split_indices(1, 0.5, 0).is_err());
        assert!(train_test_split(&xs, &ys[..3], 0.5, 0).is_err());
    }
}
