//! Optimizers with `torch.optim`'s update rules and defaults.
//!
//! An optimizer sees a network as a list of parameter tensors, each a flat slice, given in the
//! same order at every step; so one implementation serves every generated network. Its state
//! (moments, momentum buffers) is allocated on the first step and reused afterwards: one
//! optimizer value serves one network.

use crate::real::Real;

/// An update rule applied to every parameter tensor of one network.
pub trait Optimizer<T: Real> {
    /// Applies one optimisation step. `params[i]` and `grads[i]` are the same tensor, flattened
    /// (same length); the list has the same lengths in the same order at every call.
    fn step(&mut self, params: &mut [&mut [T]], grads: &[&[T]]);
}

/// Stochastic gradient descent, as `torch.optim.SGD`. PLACEHOLDER: being implemented.
#[derive(Clone, Debug)]
pub struct Sgd<T: Real> {
    lr: T,
}

impl<T: Real> Sgd<T> {
    /// SGD with learning rate `lr`.
    pub fn new(lr: T) -> Self {
        Self { lr }
    }
}

impl<T: Real> Optimizer<T> for Sgd<T> {
    fn step(&mut self, params: &mut [&mut [T]], grads: &[&[T]]) {
        for (p, g) in params.iter_mut().zip(grads) {
            for (p, g) in p.iter_mut().zip(g.iter()) {
                *p -= self.lr * *g;
            }
        }
    }
}

/// PLACEHOLDER
pub type Adam<T> = Sgd<T>;
/// PLACEHOLDER
pub type AdamW<T> = Sgd<T>;
/// PLACEHOLDER
pub type RmsProp<T> = Sgd<T>;
