//! Learning-rate schedules with `torch.optim.lr_scheduler`'s names, arguments, defaults and
//! formulas.
//!
//! A scheduler is built from the optimizer it drives and then stepped once per epoch (or per
//! batch, as the user chooses), after the optimizer's step, as in torch:
//!
//! ```
//! use nn_runtime::lr_scheduler::{LrScheduler, StepLR};
//! use nn_runtime::{Optimizer, Sgd};
//!
//! let mut opt = Sgd::new(0.1f64);
//! let mut scheduler = StepLR::new(&opt, 2).gamma(0.5);
//! let mut rates = Vec::new();
//! for _ in 0..5 {
//!     rates.push(opt.lr()); // ... net.train_step(&xs, &ys, &loss, &mut opt) ...
//!     scheduler.step(&mut opt);
//! }
//! assert_eq!(rates, [0.1, 0.1, 0.05, 0.05, 0.025]);
//! ```
//!
//! Each schedule computes as torch 2.x's `get_lr` does: recursively ("chainable"), each rate
//! from the previous one, in `f64` as Python floats, with torch's expressions in torch's order,
//! so that the `f64` sequence is torch's bit for bit (`tests/online_torch.rs` checks 50 steps of
//! each against torch). The rate is then written into the optimizer with
//! [`Optimizer::set_lr`], rounded to its scalar type.
//!
//! The previous rate is the scheduler's own `f64` value, not the optimizer's rounded one (an
//! `f32` optimizer would otherwise drift from torch's sequence), unless the optimizer's rate
//! was changed since the scheduler last wrote it (by the user, or by another scheduler
//! stepping the same optimizer): then, as torch reads `param_group["lr"]`, the optimizer's
//! rate is the previous one, so schedules chain as torch's do.
//!
//! The constructors check their arguments as torch's do (and a few that torch would only
//! fail on later, such as a zero `step_size`) and panic with a message naming them; `step`
//! never panics and allocates nothing. Nothing here allocates: a [`MultiStepLR`] borrows its
//! milestones.

use crate::optim::Optimizer;
use crate::real::Real;

/// A schedule that changes the learning rate once per [`step`](LrScheduler::step), of any
/// optimizer at either precision. ([`ReduceLROnPlateau`], whose step takes a metric, has the
/// same methods as inherent ones.)
pub trait LrScheduler {
    /// Advances the schedule by one epoch and writes the new rate into `optimizer`: torch's
    /// `scheduler.step()`, called after the optimizer's step.
    fn step<T: Real>(&mut self, optimizer: &mut impl Optimizer<T>);

    /// The rate the schedule computed last, in `f64` as torch keeps it: torch's
    /// `get_last_lr()[0]`.
    fn last_lr(&self) -> f64;

    /// Epochs stepped since construction: torch's `last_epoch`.
    fn last_epoch(&self) -> usize;
}

/// What every schedule keeps: the starting rate, the last rate in `f64`, and the epoch.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Progress {
    /// Torch's `base_lrs[0]` (`initial_lr`): the optimizer's rate at construction.
    base_lr: f64,
    /// The rate written last, in `f64`.
    lr: f64,
    /// Torch's `last_epoch`.
    epoch: usize,
}

impl Progress {
    /// Starts at the optimizer's rate, epoch 0 (torch's constructor ends at `last_epoch = 0`).
    fn new<T: Real>(optimizer: &impl Optimizer<T>) -> Self {
        let lr = optimizer.lr().widen();
        Self {
            base_lr: lr,
            lr,
            epoch: 0,
        }
    }

    /// The rate to compute from: our `f64` rate if the optimizer still holds it (rounded),
    /// else the optimizer's, which someone else set.
    fn current<T: Real>(&self, optimizer: &impl Optimizer<T>) -> f64 {
        let held = optimizer.lr();
        if held == T::cast(self.lr) {
            self.lr
        } else {
            held.widen()
        }
    }

    /// Records `lr` and writes it into the optimizer.
    fn write<T: Real>(&mut self, optimizer: &mut impl Optimizer<T>, lr: f64) {
        self.lr = lr;
        optimizer.set_lr(T::cast(lr));
    }

    /// One epoch: `next(current rate, new epoch)` gives the new rate.
    fn advance<T: Real>(
        &mut self,
        optimizer: &mut impl Optimizer<T>,
        next: impl Fn(f64, usize) -> f64,
    ) {
        let current = self.current(optimizer);
        self.epoch += 1;
        let lr = next(current, self.epoch);
        self.write(optimizer, lr);
    }
}

/// Implements [`LrScheduler`] for a schedule whose struct has a `progress` field and an
/// inherent `next_lr(&self, lr, epoch) -> f64`.
macro_rules! scheduler {
    ($name:ident $(<$a:lifetime>)?) => {
        impl$(<$a>)? LrScheduler for $name$(<$a>)? {
            fn step<T: Real>(&mut self, optimizer: &mut impl Optimizer<T>) {
                let this = *self;
                self.progress.advance(optimizer, |lr, epoch| this.next_lr(lr, epoch));
            }

            fn last_lr(&self) -> f64 {
                self.progress.lr
            }

            fn last_epoch(&self) -> usize {
                self.progress.epoch
            }
        }
    };
}

/// Panics, naming the schedule and the argument, unless `ok`.
#[track_caller]
fn check(ok: bool, scheduler: &str, message: core::fmt::Arguments) {
    assert!(ok, "{scheduler}: {message}");
}

/// `torch.optim.lr_scheduler.StepLR(optimizer, step_size, gamma=0.1)`: the rate times `gamma`
/// every `step_size` epochs.
///
/// ```text
/// lr_e = lr_{e-1} * gamma   if e % step_size == 0
/// lr_e = lr_{e-1}           otherwise
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepLR {
    progress: Progress,
    step_size: usize,
    gamma: f64,
}

impl StepLR {
    /// The schedule of `optimizer` (from its current rate), with torch's `gamma = 0.1`.
    ///
    /// # Panics
    /// If `step_size` is 0 (torch fails with a division by zero at the first step).
    #[track_caller]
    pub fn new<T: Real>(optimizer: &impl Optimizer<T>, step_size: usize) -> Self {
        check(
            step_size > 0,
            "StepLR",
            format_args!("step_size must be at least 1"),
        );
        Self {
            progress: Progress::new(optimizer),
            step_size,
            gamma: 0.1,
        }
    }

    /// Sets the factor (torch's `gamma`, default 0.1).
    #[must_use]
    pub fn gamma(mut self, gamma: f64) -> Self {
        self.gamma = gamma;
        self
    }

    fn next_lr(&self, lr: f64, epoch: usize) -> f64 {
        if epoch.is_multiple_of(self.step_size) {
            lr * self.gamma
        } else {
            lr
        }
    }
}

scheduler!(StepLR);

/// `torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones, gamma=0.1)`: the rate times
/// `gamma` at each milestone epoch (`gamma^k` where a milestone is listed `k` times, as torch
/// counts them).
///
/// ```text
/// lr_e = lr_{e-1} * gamma^count(e in milestones)   if e is a milestone
/// lr_e = lr_{e-1}                                  otherwise
/// ```
///
/// The milestones are borrowed, so the schedule allocates nothing; they need not be sorted.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MultiStepLR<'a> {
    progress: Progress,
    milestones: &'a [usize],
    gamma: f64,
}

impl<'a> MultiStepLR<'a> {
    /// The schedule of `optimizer` with torch's `gamma = 0.1`.
    ///
    /// It takes the optimizer mutably because torch's constructor applies epoch 0: a
    /// milestone at 0 scales the rate at once (see [`with_gamma`](Self::with_gamma) to set
    /// `gamma` before that happens).
    pub fn new<T: Real>(optimizer: &mut impl Optimizer<T>, milestones: &'a [usize]) -> Self {
        Self::with_gamma(optimizer, milestones, 0.1)
    }

    /// The schedule of `optimizer` with factor `gamma`.
    pub fn with_gamma<T: Real>(
        optimizer: &mut impl Optimizer<T>,
        milestones: &'a [usize],
        gamma: f64,
    ) -> Self {
        let mut progress = Progress::new(optimizer);
        let schedule = Self {
            progress,
            milestones,
            gamma,
        };
        if milestones.contains(&0) {
            let lr = schedule.next_lr(progress.lr, 0);
            progress.write(optimizer, lr);
        }
        Self {
            progress,
            ..schedule
        }
    }

    fn next_lr(&self, lr: f64, epoch: usize) -> f64 {
        let count = self.milestones.iter().filter(|&&m| m == epoch).count();
        if count == 0 {
            lr
        } else {
            // Python's `gamma ** count` is C's pow, as is `powf`.
            lr * libm::pow(self.gamma, count as f64)
        }
    }
}

scheduler!(MultiStepLR<'a>);

/// `torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma)`: the rate times `gamma` every
/// epoch.
///
/// ```text
/// lr_e = lr_{e-1} * gamma
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ExponentialLR {
    progress: Progress,
    gamma: f64,
}

impl ExponentialLR {
    /// The schedule of `optimizer` with factor `gamma` (torch has no default).
    pub fn new<T: Real>(optimizer: &impl Optimizer<T>, gamma: f64) -> Self {
        Self {
            progress: Progress::new(optimizer),
            gamma,
        }
    }

    fn next_lr(&self, lr: f64, _: usize) -> f64 {
        lr * self.gamma
    }
}

scheduler!(ExponentialLR);

/// `torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max, eta_min=0.0)`: half a cosine
/// from the starting rate `base` down to `eta_min` over `t_max` epochs, then back up over the
/// next `t_max`, and so on, by torch's recursive form:
///
/// ```text
/// lr_e = lr_{e-1} + (base - eta_min) (1 - cos(pi / t_max)) / 2
///                                                  if (e - 1 - t_max) % (2 t_max) == 0
/// lr_e = (1 + cos(pi e / t_max)) / (1 + cos(pi (e - 1) / t_max)) (lr_{e-1} - eta_min) + eta_min
///                                                  otherwise
/// ```
///
/// (the first form at the epochs just after each minimum, where the ratio's denominator is
/// zero). Without outside changes to the rate this is `eta_min + (base - eta_min) (1 +
/// cos(pi e / t_max)) / 2`, up to rounding. Torch's special case for resuming from a
/// `last_epoch` is not needed: a schedule here always starts at epoch 0.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CosineAnnealingLR {
    progress: Progress,
    t_max: usize,
    eta_min: f64,
}

impl CosineAnnealingLR {
    /// The schedule of `optimizer` over `t_max` epochs (torch's `T_max`), with torch's
    /// `eta_min = 0`.
    ///
    /// # Panics
    /// If `t_max` is 0 (torch fails with a division by zero at the first step).
    #[track_caller]
    pub fn new<T: Real>(optimizer: &impl Optimizer<T>, t_max: usize) -> Self {
        check(
            t_max > 0,
            "CosineAnnealingLR",
            format_args!("T_max must be at least 1"),
        );
        Self {
            progress: Progress::new(optimizer),
            t_max,
            eta_min: 0.0,
        }
    }

    /// Sets the lowest rate (torch's `eta_min`, default 0).
    #[must_use]
    pub fn eta_min(mut self, eta_min: f64) -> Self {
        self.eta_min = eta_min;
        self
    }

    fn next_lr(&self, lr: f64, epoch: usize) -> f64 {
        use core::f64::consts::PI;
        let (e, t_max, eta_min) = (epoch as i64, self.t_max as i64, self.eta_min);
        let base = self.progress.base_lr;
        // Python's `%` with a positive divisor is never negative: `rem_euclid`.
        if (e - 1 - t_max).rem_euclid(2 * t_max) == 0 {
            lr + (base - eta_min) * (1.0 - libm::cos(PI / t_max as f64)) / 2.0
        } else {
            (1.0 + libm::cos(PI * e as f64 / t_max as f64))
                / (1.0 + libm::cos(PI * (e - 1) as f64 / t_max as f64))
                * (lr - eta_min)
                + eta_min
        }
    }
}

scheduler!(CosineAnnealingLR);

/// `torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=1/3, end_factor=1.0,
/// total_iters=5)`: the rate times a factor going linearly from `start_factor` to `end_factor`
/// over `total_iters` epochs, then constant: a warm-up with the defaults.
///
/// Torch's constructor applies epoch 0 (the rate becomes `base * start_factor` at once), so
/// this one takes the optimizer mutably, with every argument; [`warmup`](Self::warmup) has
/// torch's defaults. Then, recursively:
///
/// ```text
/// lr_e = lr_{e-1} * (1 + (end - start) / (total_iters start + (e - 1) (end - start)))
///                                                            for 1 <= e <= total_iters
/// lr_e = lr_{e-1}                                            after
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LinearLR {
    progress: Progress,
    start_factor: f64,
    end_factor: f64,
    total_iters: usize,
}

impl LinearLR {
    /// Torch's defaults: `start_factor = 1/3`, `end_factor = 1`, `total_iters = 5`.
    pub fn warmup<T: Real>(optimizer: &mut impl Optimizer<T>) -> Self {
        Self::new(optimizer, 1.0 / 3.0, 1.0, 5)
    }

    /// The schedule of `optimizer`; sets its rate to `start_factor` times the current one.
    ///
    /// # Panics
    /// As torch, unless `0 < start_factor <= 1` and `0 <= end_factor <= 1`.
    #[track_caller]
    pub fn new<T: Real>(
        optimizer: &mut impl Optimizer<T>,
        start_factor: f64,
        end_factor: f64,
        total_iters: usize,
    ) -> Self {
        check(
            start_factor > 0.0 && start_factor <= 1.0,
            "LinearLR",
            format_args!(
                "start_factor {start_factor}: expected to be greater than 0 and less or equal to 1"
            ),
        );
        check(
            (0.0..=1.0).contains(&end_factor),
            "LinearLR",
            format_args!("end_factor {end_factor}: expected to be between 0 and 1"),
        );
        let mut progress = Progress::new(optimizer);
        let lr = progress.lr * start_factor;
        progress.write(optimizer, lr);
        Self {
            progress,
            start_factor,
            end_factor,
            total_iters,
        }
    }

    fn next_lr(&self, lr: f64, epoch: usize) -> f64 {
        if epoch > self.total_iters {
            return lr;
        }
        let (start, end) = (self.start_factor, self.end_factor);
        lr * (1.0
            + (end - start)
                / (self.total_iters as f64 * start + (epoch - 1) as f64 * (end - start)))
    }
}

scheduler!(LinearLR);

/// Whether [`ReduceLROnPlateau`] looks for a falling or a rising metric (torch's `mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Mode {
    /// A loss: lower is better (`"min"`, the default).
    #[default]
    Min,
    /// An accuracy: higher is better (`"max"`).
    Max,
}

/// How [`ReduceLROnPlateau`]'s `threshold` measures an improvement (torch's `threshold_mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ThresholdMode {
    /// Relative to the best value (`"rel"`, the default): better than `best (1 -+ threshold)`.
    #[default]
    Rel,
    /// Absolute (`"abs"`): better than `best -+ threshold`.
    Abs,
}

/// `torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode='min', factor=0.1,
/// patience=10, threshold=1e-4, threshold_mode='rel', cooldown=0, min_lr=0, eps=1e-8)`: the
/// rate times `factor` once the metric has not improved for more than `patience` epochs.
///
/// Each [`step`](Self::step) takes the epoch's metric. As torch, per step:
///
/// ```text
/// improved = metric better than best by threshold    (mode, threshold_mode)
/// if improved: best = metric, bad = 0   else: bad += 1
/// if cooling down: cooldown_counter -= 1, bad = 0
/// if bad > patience:
///     new = max(lr * factor, min_lr);  if lr - new > eps: lr = new
///     cooldown_counter = cooldown, bad = 0
/// ```
///
/// Builder methods are named after torch's keyword arguments.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ReduceLROnPlateau {
    progress: Progress,
    mode: Mode,
    factor: f64,
    patience: usize,
    threshold: f64,
    threshold_mode: ThresholdMode,
    cooldown: usize,
    min_lr: f64,
    eps: f64,
    /// The best metric so far (torch's `best`, starting at the worst value of the mode).
    best: f64,
    /// Epochs without improvement (torch's `num_bad_epochs`).
    bad_epochs: usize,
    /// Epochs of cooldown left (torch's `cooldown_counter`).
    cooldown_counter: usize,
}

impl ReduceLROnPlateau {
    /// The schedule of `optimizer` with torch's defaults.
    pub fn new<T: Real>(optimizer: &impl Optimizer<T>) -> Self {
        Self {
            progress: Progress::new(optimizer),
            mode: Mode::Min,
            factor: 0.1,
            patience: 10,
            threshold: 1e-4,
            threshold_mode: ThresholdMode::Rel,
            cooldown: 0,
            min_lr: 0.0,
            eps: 1e-8,
            best: f64::INFINITY,
            bad_epochs: 0,
            cooldown_counter: 0,
        }
    }

    /// Sets whether lower or higher is better (torch's `mode`, default `Min`).
    #[must_use]
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self.best = match mode {
            Mode::Min => f64::INFINITY,
            Mode::Max => f64::NEG_INFINITY,
        };
        self
    }

    /// Sets the factor of each reduction (torch's `factor`, default 0.1).
    ///
    /// # Panics
    /// Unless `factor < 1`, as torch.
    #[must_use]
    #[track_caller]
    pub fn factor(mut self, factor: f64) -> Self {
        check(
            factor < 1.0,
            "ReduceLROnPlateau",
            format_args!("factor {factor}: should be < 1.0"),
        );
        self.factor = factor;
        self
    }

    /// Sets how many epochs without improvement are tolerated (torch's `patience`,
    /// default 10).
    #[must_use]
    pub fn patience(mut self, patience: usize) -> Self {
        self.patience = patience;
        self
    }

    /// Sets the least improvement that counts (torch's `threshold`, default `1e-4`).
    #[must_use]
    pub fn threshold(mut self, threshold: f64) -> Self {
        self.threshold = threshold;
        self
    }

    /// Sets how `threshold` is measured (torch's `threshold_mode`, default `Rel`).
    #[must_use]
    pub fn threshold_mode(mut self, threshold_mode: ThresholdMode) -> Self {
        self.threshold_mode = threshold_mode;
        self
    }

    /// Sets the epochs after a reduction during which bad epochs are not counted (torch's
    /// `cooldown`, default 0).
    #[must_use]
    pub fn cooldown(mut self, cooldown: usize) -> Self {
        self.cooldown = cooldown;
        self
    }

    /// Sets the lowest rate (torch's `min_lr`, default 0).
    #[must_use]
    pub fn min_lr(mut self, min_lr: f64) -> Self {
        self.min_lr = min_lr;
        self
    }

    /// Sets the smallest change of rate that is applied (torch's `eps`, default `1e-8`).
    #[must_use]
    pub fn eps(mut self, eps: f64) -> Self {
        self.eps = eps;
        self
    }

    /// Ends an epoch whose metric was `metric` (torch's `scheduler.step(metrics)`), reducing
    /// the optimizer's rate if the metric has stalled.
    pub fn step<T: Real>(&mut self, optimizer: &mut impl Optimizer<T>, metric: f64) {
        let lr = self.progress.current(optimizer);
        self.progress.epoch += 1;
        if self.is_better(metric) {
            self.best = metric;
            self.bad_epochs = 0;
        } else {
            self.bad_epochs += 1;
        }
        if self.cooldown_counter > 0 {
            self.cooldown_counter -= 1;
            self.bad_epochs = 0;
        }
        if self.bad_epochs > self.patience {
            let reduced = lr * self.factor;
            // Python's max(a, b) keeps `a` unless `b` is larger.
            let new_lr = if self.min_lr > reduced {
                self.min_lr
            } else {
                reduced
            };
            if lr - new_lr > self.eps {
                self.progress.write(optimizer, new_lr);
            }
            self.cooldown_counter = self.cooldown;
            self.bad_epochs = 0;
        }
    }

    /// Torch's `_is_better(a, best)`.
    fn is_better(&self, a: f64) -> bool {
        let (best, threshold) = (self.best, self.threshold);
        match (self.mode, self.threshold_mode) {
            (Mode::Min, ThresholdMode::Rel) => a < best * (1.0 - threshold),
            (Mode::Min, ThresholdMode::Abs) => a < best - threshold,
            (Mode::Max, ThresholdMode::Rel) => a > best * (threshold + 1.0),
            (Mode::Max, ThresholdMode::Abs) => a > best + threshold,
        }
    }

    /// The current rate, in `f64` (torch's `get_last_lr()[0]`).
    pub fn last_lr(&self) -> f64 {
        self.progress.lr
    }

    /// Epochs stepped (torch's `last_epoch`).
    pub fn last_epoch(&self) -> usize {
        self.progress.epoch
    }

    /// Epochs in a row without improvement (torch's `num_bad_epochs`).
    pub fn num_bad_epochs(&self) -> usize {
        self.bad_epochs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Sgd;

    #[test]
    fn step_lr_by_hand() {
        let mut opt = Sgd::new(1.0f64);
        let mut s = StepLR::new(&opt, 3).gamma(0.5);
        let lrs: Vec<f64> = (0..7)
            .map(|_| {
                s.step(&mut opt);
                opt.lr()
            })
            .collect();
        assert_eq!(lrs, [1.0, 1.0, 0.5, 0.5, 0.5, 0.25, 0.25]);
        assert_eq!(s.last_epoch(), 7);
    }

    #[test]
    fn an_outside_change_of_rate_is_followed() {
        let mut opt = Sgd::new(1.0f64);
        let mut s = ExponentialLR::new(&opt, 0.5);
        s.step(&mut opt);
        opt.set_lr(4.0);
        s.step(&mut opt);
        assert_eq!((opt.lr(), s.last_lr()), (2.0, 2.0));
    }

    #[test]
    fn an_f32_optimizer_follows_the_f64_sequence() {
        let mut opt = Sgd::new(0.1f32);
        let mut s = ExponentialLR::new(&opt, 0.9);
        let mut want = f64::from(0.1f32);
        for _ in 0..20 {
            s.step(&mut opt);
            want *= 0.9;
            assert_eq!((s.last_lr(), opt.lr()), (want, want as f32));
        }
    }

    #[test]
    fn linear_warmup_starts_at_a_third() {
        let mut opt = Sgd::new(0.3f64);
        let mut s = LinearLR::warmup(&mut opt);
        assert_eq!(opt.lr(), 0.3 * (1.0 / 3.0));
        for _ in 0..10 {
            s.step(&mut opt);
        }
        assert!((opt.lr() - 0.3).abs() < 1e-15);
    }

    #[test]
    fn plateau_waits_for_patience() {
        let mut opt = Sgd::new(1.0f64);
        let mut s = ReduceLROnPlateau::new(&opt).patience(1);
        for (metric, want) in [(1.0, 1.0), (1.0, 1.0), (1.0, 0.1), (0.5, 0.1)] {
            s.step(&mut opt, metric);
            assert_eq!(opt.lr(), want);
        }
    }

    #[test]
    #[should_panic(expected = "StepLR: step_size must be at least 1")]
    fn zero_step_size_panics() {
        let _ = StepLR::new(&Sgd::new(0.1f32), 0);
    }

    #[test]
    #[should_panic(expected = "LinearLR: start_factor 0")]
    fn zero_start_factor_panics() {
        let _ = LinearLR::new(&mut Sgd::new(0.1f32), 0.0, 1.0, 5);
    }

    #[test]
    #[should_panic(expected = "ReduceLROnPlateau: factor 1")]
    fn unit_factor_panics() {
        let _ = ReduceLROnPlateau::new(&Sgd::new(0.1f32)).factor(1.0);
    }
}
