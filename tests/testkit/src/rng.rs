//! Deterministic test values: SplitMix64, a tiny fixed generator, so that test data does not
//! depend on another crate or change with one.

use nn_runtime::prelude::*;

/// SplitMix64 (Steele, Lea and Flood): the same stream for the same seed, everywhere.
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// The generator whose first draw is the state `seed` advanced once.
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[lo, hi)` from the top 53 bits of a draw.
    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `[lo, hi)` in `f32`, from the top 24 bits of a draw.
    pub fn uniform_f32(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * ((self.next_u64() >> 40) as f32 / (1u64 << 24) as f32)
    }

    /// A draw reduced modulo `n` (nearly uniform below `n` for small `n`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// A matrix of entries uniform in `[lo, hi)`, drawn in `f64` column by column.
    pub fn matrix<T: Real, const R: usize, const C: usize>(
        &mut self,
        lo: f64,
        hi: f64,
    ) -> SMatrix<T, R, C> {
        SMatrix::from_fn(|_, _| T::cast(self.uniform(lo, hi)))
    }
}
