//! RMSprop.

use super::{
    Flat, Lazy, Optimizer, Space, State, check_non_negative, lerp, one_minus, setters, with_l2,
};
use crate::real::Real;
use crate::simd::simd;

/// RMSprop, as `torch.optim.RMSprop(params, lr, alpha=0.99, eps=1e-8, weight_decay=0,
/// momentum=0, centered=False)`.
///
/// Per element, with `s` (square average), `a` (gradient average) and `b` (momentum buffer)
/// starting at zero:
///
/// ```text
/// g = g + weight_decay * p                         if weight_decay != 0
/// s = alpha * s + (1 - alpha) * g * g
/// a = alpha * a + (1 - alpha) * g                  if centered
/// d = sqrt(s - a * a) + eps   if centered,   else  d = sqrt(s) + eps
/// b = momentum * b + g / d,   p = p - lr * b       if momentum > 0
/// p = p - lr * g / d                               otherwise
/// ```
///
/// Defaults (as torch's): `alpha = 0.99`, `eps = 1e-8`, `weight_decay = 0`, `momentum = 0`,
/// `centered = false`; torch's default learning rate is `1e-2`. State: three scalars per
/// parameter element (the unused ones stay zero).
#[derive(Clone, Debug)]
pub struct RmsProp<T: Real, S = Lazy<T>> {
    lr: T,
    alpha: T,
    eps: T,
    weight_decay: T,
    momentum: T,
    centered: bool,
    /// Three runs per tensor: torch's `square_avg`, `grad_avg` and `momentum_buffer`.
    state: State<S>,
}

impl<T: Real> RmsProp<T> {
    /// RMSprop with learning rate `lr` and torch's other defaults.
    ///
    /// # Panics
    /// If `lr` is negative or NaN.
    #[track_caller]
    pub fn new(lr: T) -> Self {
        check_non_negative(lr, "RmsProp", "learning rate");
        Self {
            lr,
            alpha: T::cast(0.99),
            eps: T::cast(1e-8),
            weight_decay: T::zero(),
            momentum: T::zero(),
            centered: false,
            state: State::new(Lazy::default()),
        }
    }

    /// The same optimizer with its state in `buffer` rather than on the heap: an array it
    /// owns (`[T; N]`) or a borrowed slice (`&mut [T]`), of at least
    /// `RmsProp::<T>::STATE_PER_PARAM * PARAMS` scalars (see [`Flat`]). How it keeps state
    /// without `std`.
    pub fn with_state<B: AsMut<[T]>>(self, buffer: B) -> RmsProp<T, Flat<B>> {
        RmsProp {
            lr: self.lr,
            alpha: self.alpha,
            eps: self.eps,
            weight_decay: self.weight_decay,
            momentum: self.momentum,
            centered: self.centered,
            state: State::new(Flat::new(buffer)),
        }
    }
}

impl<T: Real, S> RmsProp<T, S> {
    /// Values of state per parameter element (square average, gradient average, momentum
    /// buffer; the unused ones stay zero): what a [`with_state`](RmsProp::with_state) buffer
    /// holds per parameter.
    pub const STATE_PER_PARAM: usize = 3;

    setters! {
        /// Sets the smoothing constant of the averages (torch's `alpha`, default `0.99`).
        ///
        /// # Panics
        /// If `alpha` is negative or NaN (torch checks only `alpha >= 0`).
        fn alpha(self, T) { check_non_negative(alpha, "RmsProp", "alpha") }

        /// Sets the term added to the denominator (torch's `eps`, default `1e-8`).
        ///
        /// # Panics
        /// If `eps` is negative or NaN.
        fn eps(self, T) { check_non_negative(eps, "RmsProp", "eps") }

        /// Sets the L2 penalty added to the gradient (torch's `weight_decay`, default 0).
        ///
        /// # Panics
        /// If `weight_decay` is negative or NaN.
        fn weight_decay(self, T) { check_non_negative(weight_decay, "RmsProp", "weight_decay") }

        /// Sets the momentum factor (torch's `momentum`, default 0).
        ///
        /// # Panics
        /// If `momentum` is negative or NaN.
        fn momentum(self, T) { check_non_negative(momentum, "RmsProp", "momentum") }

        /// Normalises by an estimate of the gradient's variance instead of its second moment
        /// (torch's `centered`, default off).
        fn centered(self, bool) {}
    }
}

/// The scalars one RMSprop step applies to every element.
#[derive(Clone, Copy)]
struct RmsStep<T> {
    lr: T,
    alpha: T,
    one_minus_alpha: T,
    eps: T,
    weight_decay: T,
    momentum: T,
    centered: bool,
}

/// RMSprop on one element and its state.
#[inline]
fn rmsprop_element<T: Real>(p: &mut T, g: T, s: [&mut T; 3], k: &RmsStep<T>) {
    let [square_avg, grad_avg, buffer] = s;
    let g = with_l2(g, *p, k.weight_decay);
    // Torch's `square_avg.mul_(alpha).addcmul_(grad, grad, value=1 - alpha)`.
    *square_avg = *square_avg * k.alpha + k.one_minus_alpha * g * g;
    let root = if k.centered {
        // Torch's `grad_avg.lerp_(grad, 1 - alpha)`; the variance estimate is not clamped at
        // zero, as torch does not clamp it either.
        *grad_avg = lerp(*grad_avg, g, k.one_minus_alpha);
        nalgebra::ComplexField::sqrt(*square_avg - *grad_avg * *grad_avg)
    } else {
        nalgebra::ComplexField::sqrt(*square_avg)
    };
    let denom = root + k.eps;
    if k.momentum > T::zero() {
        // The buffer accumulates the normalised gradient: torch's `buf.mul_(m).addcdiv_(g, avg)`.
        *buffer = *buffer * k.momentum + g / denom;
        *p -= k.lr * *buffer;
    } else {
        *p -= k.lr * (g / denom);
    }
}

impl<T: Real, S: Space<T>> Optimizer<T> for RmsProp<T, S> {
    fn lr(&self) -> T {
        self.lr
    }

    fn set_lr(&mut self, lr: T) {
        self.lr = lr;
    }

    fn step(&mut self, params: &mut [&mut [T]], grads: &[&[T]]) {
        self.state.fit(params, 3);
        self.state.step += 1;
        let k = RmsStep {
            lr: self.lr,
            alpha: self.alpha,
            one_minus_alpha: one_minus(self.alpha),
            eps: self.eps,
            weight_decay: self.weight_decay,
            momentum: self.momentum,
            centered: self.centered,
        };
        let mut cursor = self.state.space.cursor();
        simd(|| {
            for (p, g) in params.iter_mut().zip(grads) {
                let Some(s) = cursor.next(p.len(), 3) else {
                    break;
                };
                let (squares, means, buffers) = s.triple();
                let state = squares.iter_mut().zip(means).zip(buffers);
                for ((p, &g), ((s, a), b)) in p.iter_mut().zip(g.iter()).zip(state) {
                    rmsprop_element(p, g, [s, a, b], &k);
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::tests::trajectory;

    #[test]
    fn rmsprop_centered_momentum_weight_decay_over_two_steps() {
        let opt = RmsProp::new(0.01)
            .alpha(0.9)
            .momentum(0.5)
            .centered(true)
            .weight_decay(0.5);
        // Step 1: g = 0.5 + 0.5 = 1; s = 0.1, a = 0.1, d = sqrt(0.1 - 0.01) + eps;
        // b = 1 / d; p = 1 - 0.01 b.
        let d1 = 0.09f64.sqrt() + 1e-8;
        let b1 = 1.0 / d1;
        let p1 = 1.0 - 0.01 * b1;
        // Step 2: g = -1 + 0.5 p1; s = 0.09 + 0.1 g^2; a = 0.09 + 0.1 g.
        let g = -1.0 + 0.5 * p1;
        let (s, a) = (0.09 + 0.1 * g * g, 0.09 + 0.1 * g);
        let b2 = 0.5 * b1 + g / ((s - a * a).sqrt() + 1e-8);
        trajectory(opt, 1.0, &[(0.5, p1), (-1.0, p1 - 0.01 * b2)], 1e-14);
    }

    #[test]
    #[should_panic(expected = "RmsProp: invalid weight_decay NaN")]
    fn nan_weight_decay_panics() {
        let _ = RmsProp::new(0.1f64).weight_decay(f64::NAN);
    }

    #[test]
    fn defaults_are_torchs() {
        let rms = RmsProp::new(1e-2f64);
        assert_eq!(
            (rms.alpha, rms.eps, rms.weight_decay, rms.momentum),
            (0.99, 1e-8, 0.0, 0.0)
        );
        assert!(!rms.centered);
    }
}
