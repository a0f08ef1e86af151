//! Adam and AdamW: one implementation, the weight-decay rule a parameter of it.

use super::{Flat, Lazy, Optimizer, Space, State, check_non_negative, one_minus};
use crate::real::Real;

/// Hyperparameters shared by [`Adam`] and [`AdamW`]; they differ only in how weight decay acts.
#[derive(Clone, Copy, Debug)]
struct AdamConfig<T> {
    lr: T,
    beta1: T,
    beta2: T,
    eps: T,
    weight_decay: T,
}

/// The scalars one Adam step applies to every element, computed once per step.
#[derive(Clone, Copy, Debug)]
struct AdamStep<T> {
    one_minus_beta1: T,
    beta2: T,
    one_minus_beta2: T,
    /// `1 / sqrt(1 - beta2^t)`.
    inv_bias_correction2_sqrt: T,
    eps: T,
    /// `lr / (1 - beta1^t)`.
    step_size: T,
    /// Weight decay added to the gradient (Adam), or 0.
    l2: T,
    /// Factor `1 - lr * weight_decay` the parameter is scaled by first (AdamW), or `None`.
    decay: Option<T>,
    /// Moments smaller than this in magnitude are stored as zero: the smallest normal number
    /// where that cannot change an update beyond its last place, or 0 (no flushing) where it
    /// could, as with `eps = 0` (see [`AdamConfig::flush_threshold`]).
    flush_below: T,
}

impl<T: Real> AdamConfig<T> {
    /// Defaults of `torch.optim.Adam` (`weight_decay` is overridden by AdamW).
    #[track_caller]
    fn new(optimizer: &str, lr: T) -> Self {
        check_non_negative(lr, optimizer, "learning rate");
        Self {
            lr,
            beta1: T::cast(0.9),
            beta2: T::cast(0.999),
            eps: T::cast(1e-8),
            weight_decay: T::zero(),
        }
    }

    /// Sets both betas, checked as torch checks them.
    #[track_caller]
    fn betas(&mut self, optimizer: &str, beta1: T, beta2: T) {
        for (i, beta) in [beta1, beta2].into_iter().enumerate() {
            assert!(
                beta >= T::zero() && beta < T::one(),
                "{optimizer}: invalid beta parameter at index {i}: {beta} (torch requires 0 <= beta < 1)"
            );
        }
        self.beta1 = beta1;
        self.beta2 = beta2;
    }

    /// The scalars of the step whose `beta1^t` and `beta2^t` are `powers`, in `f64` as
    /// torch's Python-float arithmetic, then rounded to `T`. `decoupled` selects AdamW's decay
    /// of the parameter over Adam's L2 term.
    fn step(&self, powers: [f64; 2], decoupled: bool) -> AdamStep<T> {
        let bias_correction1 = 1.0 - powers[0];
        let bias_correction2 = 1.0 - powers[1];
        let inv_bias_correction2_sqrt = 1.0 / libm::sqrt(bias_correction2);
        let decays = self.weight_decay != T::zero();
        AdamStep {
            one_minus_beta1: one_minus(self.beta1),
            beta2: self.beta2,
            one_minus_beta2: one_minus(self.beta2),
            inv_bias_correction2_sqrt: T::cast(inv_bias_correction2_sqrt),
            eps: self.eps,
            step_size: T::cast(self.lr.widen() / bias_correction1),
            l2: if decoupled {
                T::zero()
            } else {
                self.weight_decay
            },
            decay: (decoupled && decays)
                .then(|| T::cast(1.0 - self.lr.widen() * self.weight_decay.widen())),
            flush_below: self.flush_threshold(inv_bias_correction2_sqrt),
        }
    }

    /// Below what magnitude a step may store a moment as zero (see [`adam_element`]).
    ///
    /// A flushed second moment `v < MIN_NORMAL` takes less than `sqrt(MIN_NORMAL) * c` (with
    /// `c = 1 / sqrt(1 - beta2^t)`) out of the denominator `sqrt(v) * c + eps`. Where that is
    /// at most `eps * EPSILON / 4`, under half a unit in the last place of `eps`, the
    /// denominator rounds to `eps` with the moment or without it. A flushed first moment then
    /// changes the update by less than `step_size * MIN_NORMAL / eps`, at most
    /// `sqrt(MIN_NORMAL) * EPSILON / 4` (3e-27 in `f32`) of the step size. Otherwise (a tiny
    /// or zero `eps`, where `m / sqrt(v)` of two subnormal moments can be of order one)
    /// nothing is flushed, and the moments are kept as torch keeps them. The default
    /// `eps = 1e-8` flushes with a margin of some 90 in `f32`.
    fn flush_threshold(&self, inv_bias_correction2_sqrt: f64) -> T {
        let v_share = libm::sqrt(T::MIN_NORMAL.widen()) * inv_bias_correction2_sqrt;
        if self.eps.widen() * T::default_epsilon().widen() / 4.0 >= v_share {
            T::MIN_NORMAL
        } else {
            T::zero()
        }
    }
}

/// Adam (or AdamW) on one element and its moments. `L2` and `NEAR_START` are the step's
/// invariants (`k.l2 != 0`, and which end torch's `lerp` computes from), made compile-time so
/// that the element loop has no branch and vectorises.
#[inline(always)]
fn adam_element<T: Real, const L2: bool, const NEAR_START: bool>(
    p: &mut T,
    g: T,
    m: &mut T,
    v: &mut T,
    k: &AdamStep<T>,
) {
    // AdamW: decay the parameter itself, outside the moments (a factor of exactly 1 for Adam).
    *p *= k.decay.unwrap_or(T::one());
    let g = if L2 { g + k.l2 * *p } else { g };
    // First moment: torch's `exp_avg.lerp_(grad, 1 - beta1)`, i.e. beta1 * m + (1 - beta1) * g,
    // computed from the end torch's CPU kernel computes it from.
    let w = k.one_minus_beta1;
    *m = if NEAR_START {
        *m + w * (g - *m)
    } else {
        g - (g - *m) * (T::one() - w)
    };
    // Second moment: torch's `exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)`.
    *v = *v * k.beta2 + k.one_minus_beta2 * g * g;
    // A moment that has decayed below the smallest normal number (a unit whose gradient has
    // been zero for hundreds of steps, as a dead ReLU's) is stored as zero. Kept subnormal, as
    // torch keeps it, it would go through every later step's arithmetic at the cost of a
    // microcode assist per instruction (about 150 cycles each on x86): measured, a third of
    // the digits workload's step time. `flush_below` is 0 where `eps` is too small for this
    // to leave the update unchanged (see `AdamConfig::flush_threshold`).
    *m = flush_below(*m, k.flush_below);
    *v = flush_below(*v, k.flush_below);
    // eps is added after the bias correction of sqrt(v), not under the square root. Torch
    // divides by sqrt(1 - beta2^t); multiplying by its reciprocal (computed once, in f64)
    // differs by at most an ulp and saves a division per element, the loop's costliest
    // instruction after the one division that remains.
    let denom = nalgebra::ComplexField::sqrt(*v) * k.inv_bias_correction2_sqrt + k.eps;
    *p -= k.step_size * (*m / denom);
}

/// `x`, or zero where `|x| < threshold`. A comparison and a select: no arithmetic on `x`, so
/// no assist, and the element loop stays branch-free.
#[inline(always)]
fn flush_below<T: Real>(x: T, threshold: T) -> T {
    if x.abs() < threshold { T::zero() } else { x }
}

/// Every element of every tensor through [`adam_element`], for one choice of invariants.
#[inline(always)]
fn adam_elements<T: Real, const L2: bool, const NEAR_START: bool>(
    params: &mut [&mut [T]],
    grads: &[&[T]],
    state: &mut impl Space<T>,
    k: &AdamStep<T>,
) {
    let mut cursor = state.cursor();
    for (p, g) in params.iter_mut().zip(grads) {
        // The first moments, then the second (see `State::space`).
        let Some(s) = cursor.next(p.len(), 2) else {
            break;
        };
        let (m, v) = s.pair();
        for (((p, &g), m), v) in p.iter_mut().zip(g.iter()).zip(m).zip(v) {
            adam_element::<T, L2, NEAR_START>(p, g, m, v, k);
        }
    }
}

crate::simd::multiversion! {
    /// One Adam step's element loops, with the step's invariants hoisted out of them.
    fn adam_update<T: Real, S: Space<T>>(
        params: &mut [&mut [T]],
        grads: &[&[T]],
        state: &mut S,
        k: &AdamStep<T>,
    ) {
        // Torch skips the L2 term when the decay is zero (so an infinite parameter does not
        // turn the gradient into NaN); `lerp` rounds from the nearer end.
        let near_start = k.one_minus_beta1.abs() < T::cast(0.5);
        match (k.l2 != T::zero(), near_start) {
            (false, true) => adam_elements::<T, false, true>(params, grads, state, k),
            (false, false) => adam_elements::<T, false, false>(params, grads, state, k),
            (true, true) => adam_elements::<T, true, true>(params, grads, state, k),
            (true, false) => adam_elements::<T, true, false>(params, grads, state, k),
        }
    }
}

/// What Adam and AdamW are but for their names and defaults: the hyperparameters, the state
/// and the constants of the next step, and the step itself. `DECOUPLED` selects AdamW's decay
/// of the parameter over Adam's L2 term: AdamW is Adam with decoupled weight decay, and
/// nothing else.
#[derive(Clone, Debug)]
struct AdamCore<T: Real, const DECOUPLED: bool, S> {
    config: AdamConfig<T>,
    state: State<S>,
    /// The next step's constants, computed at the end of the previous step; dropped by the
    /// builders, which may be called between steps.
    next: Option<AdamStep<T>>,
}

impl<T: Real, const DECOUPLED: bool> AdamCore<T, DECOUPLED, Lazy<T>> {
    /// Torch's defaults but for `weight_decay` (where Adam and AdamW differ).
    #[track_caller]
    fn new(lr: T, weight_decay: T) -> Self {
        Self {
            config: AdamConfig {
                weight_decay,
                ..AdamConfig::new(Self::NAME, lr)
            },
            state: State::new(Lazy::default()),
            next: None,
        }
    }
}

impl<T: Real, const DECOUPLED: bool, S> AdamCore<T, DECOUPLED, S> {
    /// The name the panics of the builders give, as the user wrote it.
    const NAME: &str = if DECOUPLED { "AdamW" } else { "Adam" };

    /// The same hyperparameters, the state (from no step) in `space`.
    fn with_space<Q>(self, space: Q) -> AdamCore<T, DECOUPLED, Q> {
        AdamCore {
            config: self.config,
            state: State::new(space),
            next: None,
        }
    }

    #[track_caller]
    fn betas(&mut self, beta1: T, beta2: T) {
        self.config.betas(Self::NAME, beta1, beta2);
        self.state.rebase_powers(beta1, beta2);
        self.next = None;
    }

    #[track_caller]
    fn eps(&mut self, eps: T) {
        check_non_negative(eps, Self::NAME, "eps");
        self.config.eps = eps;
        self.next = None;
    }

    #[track_caller]
    fn weight_decay(&mut self, weight_decay: T) {
        check_non_negative(weight_decay, Self::NAME, "weight_decay");
        self.config.weight_decay = weight_decay;
        self.next = None;
    }

    /// One step over every tensor. `next` carries the step's constants from the previous
    /// call: they are computed one step ahead, at the end of each step, so that their `f64`
    /// square root and divisions (tens of cycles of latency, a sixth of a small network's
    /// step) are off the next step's critical path.
    fn step(&mut self, params: &mut [&mut [T]], grads: &[&[T]])
    where
        S: Space<T>,
    {
        let (config, state) = (&self.config, &mut self.state);
        state.fit(params, 2);
        state.step += 1;
        let betas = [config.beta1.widen(), config.beta2.widen()];
        state.powers[0] *= betas[0];
        state.powers[1] *= betas[1];
        // After a restart of the state (`fit`), what was computed ahead is for the old run.
        let k = match self.next {
            Some(k) if state.step > 1 => k,
            _ => config.step(state.powers, DECOUPLED),
        };
        adam_update(params, grads, &mut state.space, &k);
        let ahead = [state.powers[0] * betas[0], state.powers[1] * betas[1]];
        self.next = Some(config.step(ahead, DECOUPLED));
    }
}

/// Defines one of the two public optimizers over [`AdamCore`]: the type, its builders and its
/// [`Optimizer`] implementation, all forwarding to the core. Only the documentation differs
/// (and `new`, written out for each, whose defaults differ).
macro_rules! adam_optimizer {
    (
        $(#[$meta:meta])*
        $name:ident, decoupled: $decoupled:literal, weight_decay: $(#[$weight_decay:meta])*
    ) => {
        $(#[$meta])*
        #[derive(Clone, Debug)]
        pub struct $name<T: Real, S = Lazy<T>>(AdamCore<T, $decoupled, S>);

        impl<T: Real> $name<T> {
            /// The same optimizer with its state in `buffer` rather than on the heap: an array
            /// it owns (`[T; N]`) or a borrowed slice (`&mut [T]`), of at least
            #[doc = concat!("`", stringify!($name), "::<T>::STATE_PER_PARAM * PARAMS` scalars")]
            /// (see [`Flat`]). How it keeps state without `std`.
            pub fn with_state<B: AsMut<[T]>>(self, buffer: B) -> $name<T, Flat<B>> {
                $name(self.0.with_space(Flat::new(buffer)))
            }
        }

        impl<T: Real, S> $name<T, S> {
            /// Values of state per parameter element (the two moments): what a
            /// [`with_state`](Self::with_state) buffer holds per parameter.
            pub const STATE_PER_PARAM: usize = 2;

            /// Sets the decay rates of the two moments (torch's `betas`, default
            /// `(0.9, 0.999)`).
            ///
            /// # Panics
            /// Unless `0 <= beta < 1` for both.
            #[must_use]
            #[track_caller]
            pub fn betas(mut self, beta1: T, beta2: T) -> Self {
                self.0.betas(beta1, beta2);
                self
            }

            /// Sets the term added to the denominator (torch's `eps`, default `1e-8`).
            ///
            /// # Panics
            /// If `eps` is negative or NaN.
            #[must_use]
            #[track_caller]
            pub fn eps(mut self, eps: T) -> Self {
                self.0.eps(eps);
                self
            }

            $(#[$weight_decay])*
            ///
            /// # Panics
            /// If `weight_decay` is negative or NaN.
            #[must_use]
            #[track_caller]
            pub fn weight_decay(mut self, weight_decay: T) -> Self {
                self.0.weight_decay(weight_decay);
                self
            }
        }

        impl<T: Real, S: Space<T>> Optimizer<T> for $name<T, S> {
            fn step(&mut self, params: &mut [&mut [T]], grads: &[&[T]]) {
                self.0.step(params, grads);
            }

            fn lr(&self) -> T {
                self.0.config.lr
            }

            /// Also drops the next step's precomputed constants (its step size and AdamW's
            /// decay factor depend on the rate).
            fn set_lr(&mut self, lr: T) {
                self.0.config.lr = lr;
                self.0.next = None;
            }
        }
    };
}

adam_optimizer! {
    /// Adam with L2 weight decay added to the gradient, as
    /// `torch.optim.Adam(params, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0)`
    /// (`amsgrad=False`, `decoupled_weight_decay=False`).
    ///
    /// Per element, at step `t` (from 1), with moments `m`, `v` starting at zero:
    ///
    /// ```text
    /// g = g + weight_decay * p                         if weight_decay != 0
    /// m = beta1 * m + (1 - beta1) * g
    /// v = beta2 * v + (1 - beta2) * g * g
    /// p = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
    /// ```
    ///
    /// Defaults (as torch's): `betas = (0.9, 0.999)`, `eps = 1e-8`, `weight_decay = 0`. For
    /// weight decay that bypasses the moments use [`AdamW`]. State: two scalars per parameter
    /// element.
    Adam, decoupled: false, weight_decay:
    /// Sets the L2 penalty added to the gradient before the moments (torch's `weight_decay`,
    /// default 0).
}

adam_optimizer! {
    /// Adam with decoupled weight decay, as
    /// `torch.optim.AdamW(params, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2)`
    /// (`amsgrad=False`).
    ///
    /// Per element, at step `t` (from 1), with moments `m`, `v` starting at zero:
    ///
    /// ```text
    /// p = p * (1 - lr * weight_decay)
    /// m = beta1 * m + (1 - beta1) * g
    /// v = beta2 * v + (1 - beta2) * g * g
    /// p = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
    /// ```
    ///
    /// Defaults (as torch's): `betas = (0.9, 0.999)`, `eps = 1e-8` and, unlike [`Adam`],
    /// `weight_decay = 1e-2`. State: two scalars per parameter element.
    AdamW, decoupled: true, weight_decay:
    /// Sets the decoupled weight decay: each step first scales parameters by
    /// `1 - lr * weight_decay` (torch's `weight_decay`, default `1e-2`).
}

impl<T: Real> Adam<T> {
    /// Adam with learning rate `lr` (torch's default is `1e-3`) and torch's other defaults.
    ///
    /// # Panics
    /// If `lr` is negative or NaN.
    #[track_caller]
    pub fn new(lr: T) -> Self {
        Self(AdamCore::new(lr, T::zero()))
    }
}

impl<T: Real> AdamW<T> {
    /// AdamW with learning rate `lr` (torch's default is `1e-3`) and torch's other defaults,
    /// including `weight_decay = 1e-2`.
    ///
    /// # Panics
    /// If `lr` is negative or NaN.
    #[track_caller]
    pub fn new(lr: T) -> Self {
        Self(AdamCore::new(lr, T::cast(1e-2)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::RmsProp;
    use crate::optim::tests::{step1, trajectory};
    use approx::assert_relative_eq;

    #[test]
    fn adam_second_step_by_hand() {
        // m = 0.5, v = 0.25; bc1 = 0.5, bc2 = 0.25: p = 1 - 0.2 * 0.5 / (0.5 / 0.5 + 0.01).
        let p1 = 1.0 - 0.2 * 0.5 / (1.0 + 0.01);
        // m = 0.25 - 1 = -0.75, v = 0.1875 + 1 = 1.1875; bc1 = 0.75, bc2 = 0.4375.
        let p2 = p1 - (0.1 / 0.75) * -0.75 / (1.1875f64.sqrt() / 0.4375f64.sqrt() + 0.01);
        let opt = Adam::new(0.1).betas(0.5, 0.75).eps(0.01);
        trajectory(opt, 1.0, &[(1.0, p1), (-2.0, p2)], 1e-15);
    }

    #[test]
    fn adam_weight_decay_is_l2_and_adamw_decays_the_parameter() {
        // Adam: g = 0.5 + 0.1 * 1 = 0.6 feeds the moments; the first step still moves by lr.
        let adam = Adam::new(0.1).weight_decay(0.1);
        trajectory(adam, 1.0, &[(0.5, 1.0 - 0.1 * 0.6 / (0.6 + 1e-8))], 1e-15);
        // AdamW: p = 1 * (1 - 0.1 * 0.1) first, then the plain Adam step on g = 0.5.
        let adamw = AdamW::new(0.1).weight_decay(0.1);
        trajectory(adamw, 1.0, &[(0.5, 0.99 - 0.1 * 0.5 / (0.5 + 1e-8))], 1e-15);
    }

    #[test]
    fn adamw_default_weight_decay_is_one_hundredth() {
        let p1 = 2.0 * (1.0 - 0.1 * 0.01) - 0.1 * 0.5 / (0.5 + 1e-8);
        trajectory(AdamW::new(0.1), 2.0, &[(0.5, p1)], 1e-15);
    }

    #[test]
    fn state_is_per_tensor_and_per_element() {
        // Stepping two tensors together equals stepping each with its own optimizer.
        let grads_a = [[0.5, -1.0, 2.0], [0.1, 0.3, -0.2]];
        let grads_b = [[3.0], [-4.0]];
        let mut together = (
            Adam::new(0.1),
            RmsProp::new(0.01).momentum(0.9).centered(true),
        );
        let mut alone_a = together.clone();
        let mut alone_b = together.clone();
        let (mut a, mut b) = ([1.0, 2.0, 3.0], [-1.0]);
        let (mut a_alone, mut b_alone) = (a, b);
        for (ga, gb) in grads_a.iter().zip(&grads_b) {
            together.0.step(&mut [&mut a, &mut b], &[ga, gb]);
            together.1.step(&mut [&mut a, &mut b], &[ga, gb]);
            alone_a.0.step(&mut [&mut a_alone], &[ga]);
            alone_a.1.step(&mut [&mut a_alone], &[ga]);
            alone_b.0.step(&mut [&mut b_alone], &[gb]);
            alone_b.1.step(&mut [&mut b_alone], &[gb]);
        }
        assert_eq!(a, a_alone);
        assert_eq!(b, b_alone);
        // Two moments per element, each tensor's in one allocation.
        let lens: Vec<usize> = together
            .0
            .0
            .state
            .space
            .0
            .iter()
            .map(|t| t.len() * t.count)
            .collect();
        assert_eq!(lens, [6, 2]);
    }

    #[test]
    fn adam_moments_are_flushed_not_kept_subnormal() {
        // One gradient, then zeros: the first moment decays as 0.9^t and leaves f32's normal
        // range after about 800 steps; the second (0.999^t) stays normal.
        let mut opt = Adam::new(1e-3f32);
        let mut reference = Adam::new(1e-3f64);
        let (mut p, mut q) = ([0.5f32, -0.25], [0.5f64, -0.25]);
        opt.step(&mut [&mut p], &[&[1e-3, -2e-3]]);
        reference.step(&mut [&mut q], &[&[1e-3, -2e-3]]);
        let mut was_tiny = false;
        for _ in 0..2000 {
            opt.step(&mut [&mut p], &[&[0.0, 0.0]]);
            reference.step(&mut [&mut q], &[&[0.0, 0.0]]);
            let state = &opt.0.state.space.0[0];
            let both = state.run(0).iter().chain(state.run(1));
            assert!(both.clone().all(|x| !x.is_subnormal()), "{state:?}");
            was_tiny |= reference.0.state.space.0[0].run(0)[0].abs() < f32::MIN_POSITIVE as f64;
        }
        assert!(was_tiny, "the test never reached the subnormal range");
        let (m, v) = (opt.0.state.space.0[0].run(0), opt.0.state.space.0[0].run(1));
        assert_eq!(m, [0.0, 0.0]);
        assert!(v.iter().all(|x| x.is_normal()));
        // The parameters still follow the unflushed trajectory (computed in f64).
        for (&p, &q) in p.iter().zip(&q) {
            assert_relative_eq!(p as f64, q, max_relative = 1e-6);
        }
    }

    /// With `eps = 0` a tiny, steady gradient makes both moments tiny (`v` subnormal in
    /// `f32`) while `m / sqrt(v)` stays near 1: torch steps by about `lr`. Flushing `v` alone
    /// would divide by zero.
    #[test]
    fn adam_without_eps_keeps_tiny_moments() {
        for decoupled in [false, true] {
            let mut p = [1.0f32];
            let mut adam = Adam::new(0.1f32).eps(0.0);
            let mut adamw = AdamW::new(0.1f32).eps(0.0).weight_decay(0.0);
            for _ in 0..3 {
                if decoupled {
                    adamw.step(&mut [&mut p], &[&[1e-20]]);
                } else {
                    adam.step(&mut [&mut p], &[&[1e-20]]);
                }
            }
            // Three steps of about lr each; subnormal `v` keeps only two or three digits.
            assert!((p[0] - 0.7).abs() < 0.01, "{p:?}");
        }
    }

    /// A builder called between steps (`opt = opt.eps(..)`) takes effect on the next step:
    /// the constants computed ahead of it are dropped, and the bias corrections use the new
    /// betas to the power of the step, as torch's do.
    #[test]
    fn adam_builders_between_steps_take_effect() {
        let p1 = 1.0 - 0.2 * 0.5 / (1.0 + 0.01);
        // m = 0.5 + 0.4 * (-2 - 0.5) = -0.5, v = 0.25 * 0.8 + 0.2 * 4 = 1;
        // bc1 = 1 - 0.6^2 = 0.64, bc2 = 1 - 0.8^2 = 0.36.
        let p2 = p1 - (0.1 / 0.64) * -0.5 / (1.0 / 0.36f64.sqrt() + 0.1);
        let opt = Adam::new(0.1).betas(0.5, 0.75).eps(0.01);
        let (opt, p) = trajectory(opt, 1.0, &[(1.0, p1)], 1e-15);
        trajectory(opt.betas(0.6, 0.8).eps(0.1), p, &[(-2.0, p2)], 1e-15);

        let opt = AdamW::new(0.1).weight_decay(0.0);
        let (opt, p) = trajectory(opt, 1.0, &[(1.0, 1.0 - 0.1 / (1.0 + 1e-8))], 1e-15);
        // The second step decays the parameter by 1 - lr * 0.5 before the same Adam step.
        let mut undecayed = AdamW::new(0.1).weight_decay(0.0);
        let mut q = 1.0;
        step1(&mut undecayed, &mut q, 1.0);
        let mut q_decayed = q * (1.0 - 0.1 * 0.5);
        step1(&mut undecayed, &mut q_decayed, 1.0);
        trajectory(opt.weight_decay(0.5), p, &[(1.0, q_decayed)], 1e-15);
    }

    #[test]
    fn state_is_reallocated_only_when_the_shape_changes() {
        let mut opt = Adam::new(0.1f32);
        let mut a = [1.0f32; 4];
        opt.step(&mut [&mut a], &[&[1.0; 4]]);
        let before = opt.0.state.space.0[0].run(0).as_ptr();
        opt.step(&mut [&mut a], &[&[1.0; 4]]);
        assert_eq!(opt.0.state.space.0[0].run(0).as_ptr(), before);
        assert_eq!(opt.0.state.step, 2);
        let mut b = [1.0f32; 2];
        opt.step(&mut [&mut b], &[&[1.0; 2]]);
        assert_eq!(opt.0.state.step, 1);
        // A restart steps as a fresh optimizer does (not with the constants computed ahead
        // for the old run's third step).
        let mut fresh_b = [1.0f32; 2];
        Adam::new(0.1f32).step(&mut [&mut fresh_b], &[&[1.0; 2]]);
        assert_eq!(b, fresh_b);
    }

    #[test]
    #[should_panic(expected = "invalid beta parameter at index 1: 1")]
    fn beta_of_one_panics() {
        let _ = Adam::new(0.1f32).betas(0.9, 1.0);
    }

    #[test]
    fn defaults_are_torchs() {
        let adam = Adam::new(1e-3f64);
        assert_eq!((adam.0.config.beta1, adam.0.config.beta2), (0.9, 0.999));
        assert_eq!((adam.0.config.eps, adam.0.config.weight_decay), (1e-8, 0.0));
        let adamw = AdamW::new(1e-3f64);
        assert_eq!((adamw.0.config.beta1, adamw.0.config.beta2), (0.9, 0.999));
        assert_eq!(
            (adamw.0.config.eps, adamw.0.config.weight_decay),
            (1e-8, 1e-2)
        );
    }
}
