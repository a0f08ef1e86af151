//! Stochastic gradient descent.

use super::{
    Flat, Lazy, Optimizer, Space, State, check_non_negative, for_each_element, one_minus, setters,
    with_l2,
};
use crate::real::Real;
use crate::simd::simd;

/// Stochastic gradient descent with optional momentum, Nesterov momentum and L2 weight decay,
/// as `torch.optim.SGD(params, lr, momentum=0, dampening=0, weight_decay=0, nesterov=False)`.
///
/// Per element, with gradient `g`, parameter `p` and momentum buffer `b`:
///
/// ```text
/// g = g + weight_decay * p                        if weight_decay != 0
/// b = g                                           on the first step     } if momentum != 0
/// b = momentum * b + (1 - dampening) * g          on later steps        }
/// g = g + momentum * b   if nesterov,   else  g = b                     }
/// p = p - lr * g
/// ```
///
/// The first step copies the gradient into the buffer undampened, as torch does. Defaults (as
/// torch's): `momentum = 0`, `dampening = 0`, `nesterov = false`, `weight_decay = 0`. State:
/// one buffer element per parameter element when momentum is non-zero, nothing otherwise
/// (without `std`, give it space with [`with_state`](Sgd::with_state) to use momentum).
#[derive(Clone, Debug)]
pub struct Sgd<T: Real, S = Lazy<T>> {
    lr: T,
    momentum: T,
    dampening: T,
    nesterov: bool,
    weight_decay: T,
    /// Torch's `momentum_buffer`s; zeroed on the first step with a non-zero momentum.
    buffers: State<S>,
}

impl<T: Real> Sgd<T> {
    /// SGD with learning rate `lr` and torch's other defaults.
    ///
    /// # Panics
    /// If `lr` is negative or NaN (torch raises `ValueError`).
    #[track_caller]
    pub fn new(lr: T) -> Self {
        check_non_negative(lr, "Sgd", "learning rate");
        Self {
            lr,
            momentum: T::zero(),
            dampening: T::zero(),
            nesterov: false,
            weight_decay: T::zero(),
            buffers: State::new(Lazy::default()),
        }
    }

    /// The same optimizer with its momentum buffers in `buffer` rather than on the heap: an
    /// array it owns (`[T; N]`) or a borrowed slice (`&mut [T]`), of at least
    /// `Sgd::<T>::STATE_PER_PARAM * PARAMS` scalars (see [`Flat`]). How it keeps momentum
    /// without `std`; plain SGD needs no state and no buffer.
    pub fn with_state<B: AsMut<[T]>>(self, buffer: B) -> Sgd<T, Flat<B>> {
        Sgd {
            lr: self.lr,
            momentum: self.momentum,
            dampening: self.dampening,
            nesterov: self.nesterov,
            weight_decay: self.weight_decay,
            buffers: State::new(Flat::new(buffer)),
        }
    }
}

impl<T: Real, S> Sgd<T, S> {
    /// Values of state per parameter element (the momentum buffer's): what a
    /// [`with_state`](Sgd::with_state) buffer holds per parameter.
    pub const STATE_PER_PARAM: usize = 1;

    setters! {
        /// Sets the momentum factor (torch's `momentum`, default 0).
        ///
        /// # Panics
        /// If `momentum` is negative or NaN, or zero while Nesterov momentum is on.
        fn momentum(self, T) {
            check_non_negative(momentum, "Sgd", "momentum");
            assert!(
                !self.nesterov || momentum > T::zero(),
                "Sgd: Nesterov momentum requires a momentum > 0, got {momentum}"
            );
        }

        /// Sets the dampening of the momentum (torch's `dampening`, default 0). Torch applies
        /// it from the second step on: the first step starts the buffer at the plain gradient.
        ///
        /// # Panics
        /// If it is non-zero while Nesterov momentum is on (torch requires zero dampening).
        fn dampening(self, T) {
            assert!(
                !self.nesterov || dampening == T::zero(),
                "Sgd: Nesterov momentum requires zero dampening, got {dampening}"
            );
        }

        /// Turns Nesterov momentum on or off (torch's `nesterov`, default off).
        ///
        /// Torch accepts Nesterov momentum only with a positive momentum and zero dampening;
        /// so set `.momentum(m)` first: `Sgd::new(0.1).momentum(0.9).nesterov(true)`.
        ///
        /// # Panics
        /// If `nesterov` is true while the momentum is zero or the dampening is non-zero.
        fn nesterov(self, bool) {
            assert!(
                !nesterov || (self.momentum > T::zero() && self.dampening == T::zero()),
                "Sgd: Nesterov momentum requires a momentum > 0 and zero dampening \
                 (got momentum {}, dampening {}); call .momentum(m) before .nesterov(true)",
                self.momentum,
                self.dampening
            );
        }

        /// Sets the L2 penalty added to the gradient (torch's `weight_decay`, default 0).
        ///
        /// # Panics
        /// If `weight_decay` is negative or NaN.
        fn weight_decay(self, T) { check_non_negative(weight_decay, "Sgd", "weight_decay") }
    }
}

/// The scalars one SGD step applies to every element.
#[derive(Clone, Copy)]
struct SgdStep<T> {
    lr: T,
    weight_decay: T,
    momentum: T,
    one_minus_dampening: T,
    nesterov: bool,
    /// Whether the momentum buffer starts now (torch's `buf is None`).
    first: bool,
}

/// Plain SGD on one element: `p -= lr * (g + wd * p)`.
#[inline]
fn sgd_element<T: Real>(p: &mut T, g: T, k: &SgdStep<T>) {
    let g = with_l2(g, *p, k.weight_decay);
    *p -= k.lr * g;
}

/// SGD with momentum on one element and its buffer `b`.
#[inline]
fn sgd_momentum_element<T: Real>(p: &mut T, g: T, b: &mut T, k: &SgdStep<T>) {
    let g = with_l2(g, *p, k.weight_decay);
    // Torch starts the buffer as a copy of the first gradient, without dampening.
    *b = if k.first {
        g
    } else {
        *b * k.momentum + k.one_minus_dampening * g
    };
    // Nesterov looks ahead along the updated buffer; classical momentum steps along it.
    let direction = if k.nesterov { g + k.momentum * *b } else { *b };
    *p -= k.lr * direction;
}

impl<T: Real, S: Space<T>> Optimizer<T> for Sgd<T, S> {
    /// `Some(lr)` without momentum or weight decay.
    fn plain_sgd_rate(&self) -> Option<T> {
        (self.momentum == T::zero() && self.weight_decay == T::zero()).then_some(self.lr)
    }

    fn lr(&self) -> T {
        self.lr
    }

    fn set_lr(&mut self, lr: T) {
        self.lr = lr;
    }

    fn step(&mut self, params: &mut [&mut [T]], grads: &[&[T]]) {
        let mut k = SgdStep {
            lr: self.lr,
            weight_decay: self.weight_decay,
            momentum: self.momentum,
            one_minus_dampening: one_minus(self.dampening),
            nesterov: self.nesterov,
            first: false,
        };
        if self.momentum == T::zero() {
            // Torch keeps no buffer without momentum; neither do we. The weight-decay test is
            // hoisted out of the element loop (inside it, it compiled to a compare and branch
            // per vector, which halved the loop's speed): without decay, `p -= lr * g`.
            if k.weight_decay == T::zero() {
                let lr = k.lr;
                simd(|| {
                    for (p, g) in params.iter_mut().zip(grads) {
                        for (p, &g) in p.iter_mut().zip(g.iter()) {
                            *p -= lr * g;
                        }
                    }
                });
            } else {
                simd(|| {
                    for (p, g) in params.iter_mut().zip(grads) {
                        for (p, &g) in p.iter_mut().zip(g.iter()) {
                            sgd_element(p, g, &k);
                        }
                    }
                });
            }
            return;
        }
        self.buffers.fit(params, 1);
        k.first = self.buffers.step == 0;
        self.buffers.step += 1;
        let buffers = &mut self.buffers.space;
        for_each_element(params, grads, buffers, &k, sgd_momentum_element);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::tests::trajectory;

    #[test]
    fn sgd_plain_step_is_p_minus_lr_g() {
        let (opt, _) = trajectory(Sgd::new(0.1), 1.0, &[(0.5, 1.0 - 0.1 * 0.5)], 1e-15);
        // Without momentum no state is kept.
        assert!(opt.buffers.space.0.is_empty());
    }

    #[test]
    fn sgd_weight_decay_adds_wd_p_to_the_gradient() {
        // g = 0.5 + 0.2 * 2 = 0.9
        let opt = Sgd::new(0.1).weight_decay(0.2);
        trajectory(opt, 2.0, &[(0.5, 2.0 - 0.1 * 0.9)], 1e-15);
    }

    #[test]
    fn sgd_momentum_with_dampening_over_two_steps() {
        // Step 1: the buffer is the gradient, undampened: b = 0.5, p = 1 - 0.05.
        // Step 2: b = 0.9 * 0.5 + 0.9 * 0.2 = 0.63, p = 0.95 - 0.063.
        let opt = Sgd::new(0.1).momentum(0.9).dampening(0.1);
        trajectory(opt, 1.0, &[(0.5, 0.95), (0.2, 0.887)], 1e-15);
    }

    #[test]
    fn sgd_nesterov_over_two_steps() {
        // Step 1: b = 0.5, direction = 0.5 + 0.9 * 0.5 = 0.95, p = 1 - 0.095.
        // Step 2: b = 0.45 + 0.2 = 0.65, direction = 0.2 + 0.585 = 0.785, p = 0.905 - 0.0785.
        let opt = Sgd::new(0.1).momentum(0.9).nesterov(true);
        trajectory(opt, 1.0, &[(0.5, 0.905), (0.2, 0.8265)], 1e-15);
    }

    #[test]
    fn sgd_momentum_buffers_are_per_tensor() {
        let mut opt = Sgd::new(1.0).momentum(0.5);
        let (mut a, mut b) = ([0.0f32; 2], [0.0f32]);
        opt.step(&mut [&mut a, &mut b], &[&[1.0, 2.0], &[4.0]]);
        opt.step(&mut [&mut a, &mut b], &[&[0.0, 0.0], &[0.0]]);
        // Buffers after step 2: half of each element's first gradient.
        let buffers: Vec<&[f32]> = opt.buffers.space.0.iter().map(|t| t.run(0)).collect();
        assert_eq!(buffers, [&[0.5, 1.0][..], &[2.0]]);
        assert_eq!(a, [-1.5, -3.0]);
        assert_eq!(b, [-6.0]);
    }

    #[test]
    #[should_panic(expected = "call .momentum(m) before .nesterov(true)")]
    fn nesterov_without_momentum_panics() {
        let _ = Sgd::new(0.1f32).nesterov(true);
    }

    #[test]
    #[should_panic(expected = "Nesterov momentum requires zero dampening")]
    fn nesterov_with_dampening_panics() {
        let _ = Sgd::new(0.1f32).momentum(0.9).nesterov(true).dampening(0.1);
    }

    #[test]
    #[should_panic(expected = "Sgd: invalid learning rate -0.1")]
    fn negative_learning_rate_panics() {
        let _ = Sgd::new(-0.1f32);
    }

    #[test]
    fn defaults_are_torchs() {
        let sgd = Sgd::new(1e-3f64);
        assert_eq!(
            (sgd.momentum, sgd.dampening, sgd.weight_decay),
            (0.0, 0.0, 0.0)
        );
        assert!(!sgd.nesterov);
    }
}
