//! Torch's `nn.Dropout(p)` in training: each element zeroed with probability `p`, the others
//! scaled by `1 / (1 - p)`.
//!
//! The mask is counter-based: whether element `i` of a batch is kept is a pure function of a
//! step's `key`, the layer's number and `i` (a SplitMix64 hash of the three), not a draw from
//! a generator's state. So the backward pass recomputes the forward pass's mask instead of
//! keeping it ([`dropout_backward`]), a network stays a plain value (its [`DropoutKey`] is a
//! counter), two dropout layers of one network (different `layer`s) drop independently, and a
//! step replays exactly given its key. Each step takes a new key ([`DropoutKey::advance`]).
//!
//! ```
//! use nn_runtime::DropoutKey;
//! use nn_runtime::layer::dropout::{dropout, dropout_backward};
//! use nn_runtime::nalgebra::SMatrix;
//!
//! let mut steps = DropoutKey::seeded(7);
//! let x = SMatrix::<f32, 16, 4>::from_element(1.0);
//! let y = dropout(&x, 0.5, steps.key(), 0);
//! assert!(y.iter().all(|&v| v == 0.0 || v == 2.0));
//! // The gradient goes through exactly the elements kept.
//! let dx = dropout_backward(SMatrix::<f32, 16, 4>::from_element(1.0), 0.5, steps.key(), 0);
//! assert_eq!(dx, y);
//! steps.advance(); // the next step drops others
//! ```

use super::heap::Zeroable;
use crate::real::Real;
use nalgebra::SMatrix;

/// SplitMix64's increment, `2^64` divided by the golden ratio.
const GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

/// SplitMix64's finaliser: a bijection of `u64` whose every output bit depends on every
/// input bit.
#[inline(always)]
const fn mix(z: u64) -> u64 {
    let z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    let z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The SplitMix64 state of the stream of layer `layer` under `key`: both hashed, so that
/// neighbouring keys and neighbouring layers start unrelated streams.
#[inline(always)]
const fn stream(key: u64, layer: u64) -> u64 {
    mix(mix(key ^ 0x6a09_e667_f3bc_c909)
        .wrapping_add(layer)
        .wrapping_mul(GAMMA)
        ^ 0xbb67_ae85_84ca_a73b)
}

/// Zeroes each element of `data` with probability `p` and scales the others by
/// `1 / (1 - p)`: element `i` is kept where the `i`-th output of SplitMix64 from
/// `stream(key, layer)`, read as a uniform `u` in `[0, 1)` (its top 53 bits over `2^53`), is
/// at least `p`.
#[inline(always)]
fn apply<T: Real>(data: &mut [T], p: T, key: u64, layer: u64) {
    let p = p.widen();
    debug_assert!(
        (0.0..=1.0).contains(&p),
        "dropout: p must be in [0, 1], not {p}"
    );
    let p = p.clamp(0.0, 1.0);
    if p <= 0.0 {
        return;
    }
    // u = k / 2^53 >= p exactly where the integer k >= ceil(p 2^53); p = 1 keeps none.
    let threshold = libm::ceil(p * (1u64 << 53) as f64) as u64;
    // Kept only where p < 1, so never infinite; a dropped element is zero, not 0 * scale.
    let scale = T::cast(1.0 / (1.0 - p));
    let state = stream(key, layer);
    for (i, v) in data.iter_mut().enumerate() {
        let h = mix(state.wrapping_add((i as u64).wrapping_add(1).wrapping_mul(GAMMA)));
        *v = if h >> 11 >= threshold {
            *v * scale
        } else {
            T::zero()
        };
    }
}

/// Torch's `F.dropout(x, p, training=True)` on a batch (`R` features by `C` samples): each
/// element `(r, c)` kept with probability `1 - p` and scaled by `1 / (1 - p)`, the others
/// zero, so every element's expectation is unchanged.
///
/// Whether `(r, c)` is kept is a pure function of `(key, layer, c R + r)` (see the
/// [module](self)); `p = 0` returns `x`, `p = 1` zeros (never NaN, even where `x` is infinite
/// or NaN: dropped elements are set to zero, not multiplied by it). `p` must be in `[0, 1]`
/// (checked in debug builds; clamped otherwise). Allocates nothing.
#[cfg_attr(not(debug_assertions), inline(always))]
pub fn dropout<T: Real, const R: usize, const C: usize>(
    x: &SMatrix<T, R, C>,
    p: T,
    key: u64,
    layer: u64,
) -> SMatrix<T, R, C> {
    let mut y = *x;
    apply(y.as_mut_slice(), p, key, layer);
    y
}

/// The backward pass of [`dropout`] with the same `p`, `key` and `layer`: the output's
/// gradient `dy` through the forward pass's mask and scale (zero where the element was
/// dropped, `dy / (1 - p)` where kept), the mask recomputed rather than stored. Allocates
/// nothing.
#[cfg_attr(not(debug_assertions), inline(always))]
pub fn dropout_backward<T: Real, const R: usize, const C: usize>(
    dy: SMatrix<T, R, C>,
    p: T,
    key: u64,
    layer: u64,
) -> SMatrix<T, R, C> {
    let mut dx = dy;
    apply(dx.as_mut_slice(), p, key, layer);
    dx
}

/// The dropout step counter a network with dropout layers keeps: each training step draws its
/// masks from [`key`](Self::key), then [`advance`](Self::advance)s, so successive steps drop
/// different elements while every step stays reproducible from the counter.
///
/// Like a network's `Scratch`, it is not part of the network's value: comparisons ignore it
/// (a trained network equals its reloaded copy, whose counter starts again), so
/// `PartialEq` is always true. All-zero is a valid counter, the [`Default`] one.
#[derive(Clone, Copy, Debug, Default)]
pub struct DropoutKey(pub u64);

impl DropoutKey {
    /// A counter started from `seed`, hashed: streams of different seeds start far apart on
    /// the counter's cycle, so seeds `s` and `s + 1` do not share steps.
    pub fn seeded(seed: u64) -> Self {
        Self(mix(seed ^ 0x3c6e_f372_fe94_f82b))
    }

    /// The current step's key for [`dropout`] and [`dropout_backward`]: a hash of the
    /// counter, so consecutive steps, whose counters differ by one, get unrelated masks.
    pub fn key(&self) -> u64 {
        mix(self.0.wrapping_add(GAMMA))
    }

    /// Moves on to the next step (wrapping after `2^64` steps).
    pub fn advance(&mut self) {
        self.0 = self.0.wrapping_add(1);
    }
}

impl PartialEq for DropoutKey {
    /// Always true: the counter is not part of a network's value (see [`DropoutKey`]).
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

// SAFETY: one `u64`, for which all-zero bytes are 0.
unsafe impl Zeroable for DropoutKey {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::heap::zeroed;

    /// The kept fraction of a million elements (a 1000 x 10 batch through 100 layers: a
    /// million at once would not fit a test thread's stack) is within four standard
    /// deviations of `1 - p`, and every kept element is scaled by `1 / (1 - p)`.
    #[test]
    fn keeps_one_minus_p_and_scales() {
        const R: usize = 1000;
        const C: usize = 10;
        const LAYERS: u64 = 100;
        let x = SMatrix::<f64, R, C>::from_element(3.0);
        for (p, seed) in [(0.1, 1), (0.5, 2), (0.9, 3)] {
            let key = DropoutKey::seeded(seed).key();
            let scaled = 3.0 * (1.0 / (1.0 - p)); // as torch: x times the scale
            let mut kept = 0usize;
            for layer in 0..LAYERS {
                let y = dropout(&x, p, key, layer);
                kept += y.iter().filter(|&&v| v != 0.0).count();
                assert!(y.iter().all(|&v| v == 0.0 || v == scaled), "p = {p}");
            }
            let n = (R * C) as f64 * LAYERS as f64;
            let sd = (n * p * (1.0 - p)).sqrt();
            let kept = kept as f64;
            assert!(
                (kept - n * (1.0 - p)).abs() <= 4.0 * sd,
                "p = {p}: kept {kept} of {n}"
            );
        }
    }

    /// Neighbouring elements, rows and columns are independent enough that each row and each
    /// column keeps about its share too (a hash with structure would not).
    #[test]
    fn rows_and_columns_each_keep_their_share() {
        const R: usize = 16;
        const C: usize = 2048;
        let x = SMatrix::<f32, R, C>::from_element(1.0);
        let y = dropout(&x, 0.5, 0, 0);
        let sd_row = (C as f64 * 0.25).sqrt();
        for r in 0..R {
            let kept = y.row(r).iter().filter(|&&v| v != 0.0).count() as f64;
            assert!(
                (kept - C as f64 * 0.5).abs() <= 5.0 * sd_row,
                "row {r}: {kept}"
            );
        }
        // Pairs of neighbours: both kept about a quarter of the time.
        let data = y.as_slice();
        let both = data
            .windows(2)
            .filter(|w| w[0] != 0.0 && w[1] != 0.0)
            .count() as f64;
        let n = (data.len() - 1) as f64;
        assert!((both / n - 0.25).abs() < 0.01, "{}", both / n);
    }

    #[test]
    fn the_key_and_the_layer_decide_the_mask() {
        let x = SMatrix::<f32, 32, 8>::from_fn(|r, c| (r * 8 + c) as f32 + 1.0);
        let a = dropout(&x, 0.3, 42, 1);
        assert_eq!(a, dropout(&x, 0.3, 42, 1));
        assert_ne!(a, dropout(&x, 0.3, 43, 1));
        assert_ne!(a, dropout(&x, 0.3, 42, 2));
        // A mask depends on the element's place, not its value.
        let ones = dropout(&SMatrix::<f32, 32, 8>::from_element(1.0), 0.3, 42, 1);
        for i in 0..x.len() {
            assert_eq!(a[i] == 0.0, ones[i] == 0.0);
        }
        // Element (r, c) is counter c R + r: the same in a wider batch.
        let wide = dropout(&SMatrix::<f32, 32, 16>::from_element(1.0), 0.3, 42, 1);
        assert_eq!(wide.columns(0, 8), ones);
    }

    /// The masks of consecutive steps, of neighbouring layers and of neighbouring raw keys are
    /// independent: both kept about `(1 - p)^2` of the time.
    #[test]
    fn neighbouring_steps_layers_and_keys_drop_independently() {
        let x = SMatrix::<f32, 16, 512>::from_element(1.0);
        let overlap = |a: &SMatrix<f32, 16, 512>, b: &SMatrix<f32, 16, 512>| {
            let both = a
                .iter()
                .zip(b.iter())
                .filter(|(a, b)| **a != 0.0 && **b != 0.0);
            both.count() as f64 / a.len() as f64
        };
        // Four standard deviations of a fraction of 8192 draws of probability 1/4.
        let tolerance = 4.0 * (0.25f64 * 0.75 / 8192.0).sqrt();
        let mut steps = DropoutKey::default();
        for _ in 0..20 {
            let here = dropout(&x, 0.5, steps.key(), 0);
            assert!((overlap(&here, &dropout(&x, 0.5, steps.key(), 1)) - 0.25).abs() < tolerance);
            let raw = steps.0;
            let (a, b) = (dropout(&x, 0.5, raw, 0), dropout(&x, 0.5, raw + 1, 0));
            assert!((overlap(&a, &b) - 0.25).abs() < tolerance);
            steps.advance();
            let next = dropout(&x, 0.5, steps.key(), 0);
            assert!((overlap(&here, &next) - 0.25).abs() < tolerance);
        }
    }

    #[test]
    fn backward_uses_the_forward_mask() {
        let x = SMatrix::<f64, 20, 10>::from_fn(|r, c| (r as f64 - c as f64) * 0.5 + 0.25);
        let dy = SMatrix::<f64, 20, 10>::from_fn(|r, c| (r * 10 + c) as f64 + 1.0);
        for p in [0.0, 0.2, 0.7, 1.0] {
            let y = dropout(&x, p, 5, 3);
            let dx = dropout_backward(dy, p, 5, 3);
            for i in 0..x.len() {
                let kept = y[i] != 0.0;
                assert_eq!(dx[i] != 0.0, kept, "p = {p}, element {i}");
                if kept {
                    assert_eq!(dx[i], dy[i] * (1.0 / (1.0 - p)));
                    assert_eq!(y[i], x[i] * (1.0 / (1.0 - p)));
                }
            }
        }
    }

    #[test]
    fn p_zero_keeps_everything_and_p_one_drops_everything_without_nan() {
        let x = SMatrix::<f32, 4, 3>::from_fn(|r, c| match (r, c) {
            (0, 0) => f32::INFINITY,
            (1, 1) => f32::NAN,
            _ => (r + c) as f32,
        });
        let same = dropout(&x, 0.0, 9, 9);
        assert!(
            same.iter()
                .zip(x.iter())
                .all(|(a, b)| a == b || a.is_nan() && b.is_nan())
        );
        let none = dropout(&x, 1.0, 9, 9);
        assert_eq!(none, SMatrix::<f32, 4, 3>::zeros());
        assert_eq!(
            dropout_backward(x, 1.0, 9, 9),
            SMatrix::<f32, 4, 3>::zeros()
        );
    }

    #[test]
    fn keys_advance_compare_equal_and_start_zero() {
        let mut steps = DropoutKey::seeded(1);
        let first = steps.key();
        steps.advance();
        let second = steps.key();
        assert_ne!(first, second);
        assert_eq!(steps.0, DropoutKey::seeded(1).0 + 1);
        // Consecutive keys differ in about half their bits.
        assert!((16..=48).contains(&(first ^ second).count_ones()));
        assert_ne!(DropoutKey::seeded(1).key(), DropoutKey::seeded(2).key());
        assert_eq!(DropoutKey::seeded(1), DropoutKey::seeded(2)); // not part of the value
        assert_eq!(zeroed::<DropoutKey>().0, DropoutKey::default().0);
        let mut last = DropoutKey(u64::MAX);
        last.advance();
        assert_eq!(last.0, 0);
    }
}
