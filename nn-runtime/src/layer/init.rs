//! Seeded initialisers.
//!
//! One [`Init`] draws every parameter of a network in declaration order (each layer's weight in
//! row-major order, then its bias), so `Net::seeded(s)` is reproducible across runs and machines:
//! ChaCha8 is a portable generator whose stream is fixed by its seed.

use crate::real::Real;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A reproducible source of initial parameter values.
pub struct Init {
    rng: ChaCha8Rng,
}

impl Init {
    /// A generator whose whole stream is determined by `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    /// A value drawn uniformly from `[-bound, bound)`; `0` when `bound` is `0`.
    pub fn uniform<T: Real>(&mut self, bound: f64) -> T {
        if bound > 0.0 {
            T::cast(self.rng.random_range(-bound..bound))
        } else {
            T::zero()
        }
    }

    /// PyTorch's default bound for `nn.Linear` with `fan_in` inputs: `1 / sqrt(fan_in)`.
    ///
    /// `nn.Linear.reset_parameters` uses `kaiming_uniform_(a = sqrt(5))`, whose bound
    /// `gain * sqrt(3 / fan_in)` with `gain = sqrt(2 / (1 + 5))` simplifies to this; the bias uses
    /// the same bound.
    pub fn linear_bound(fan_in: usize) -> f64 {
        if fan_in == 0 {
            0.0
        } else {
            1.0 / libm::sqrt(fan_in as f64)
        }
    }
}
