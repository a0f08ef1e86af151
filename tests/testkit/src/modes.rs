//! What the tests of layers with a training and an inference mode share (`BatchNorm1d`,
//! `BatchNorm2d`, `Dropout`: `tests/norm_bn_torch.rs`, `tests/norm_bn_fd.rs`,
//! `tests/dropout.rs`).
//!
//! - [`Capture`], a loss that delegates to another and keeps the output it was given: the
//!   training-mode output, which `gradients` and `train_step` compute but do not return
//!   (`forward_batch` is the inference pass).
//! - [`parameter_gradients`]: every gradient by its parameter's `state_dict` name, when
//!   [`Tensors::visit`](nn_runtime::Tensors::visit) also lists tensors that are not parameters
//!   (running statistics), so that the one-to-one pairing of
//!   [`named_gradients`](crate::fixtures::named_gradients) does not hold.

use crate::fixtures::Named;
use nn_runtime::prelude::*;
use std::cell::RefCell;
use std::collections::BTreeMap;

/// An output a [`Capture`] saw: `rows x batch`, column-major (sample `b`, feature `r` at
/// `b * rows + r`), widened to `f64` exactly.
#[derive(Clone, Debug, PartialEq)]
pub struct Seen {
    /// Features per sample.
    pub rows: usize,
    /// Samples.
    pub batch: usize,
    /// The values.
    pub values: Vec<f64>,
}

impl Seen {
    /// Feature `r` of sample `b`.
    pub fn at(&self, r: usize, b: usize) -> f64 {
        self.values[b * self.rows + r]
    }
}

/// A loss that is `inner`, and records every output it is given (the last one is what
/// `gradients` or `train_step` computed in training mode).
#[derive(Debug, Default)]
pub struct Capture<L> {
    /// The loss it delegates to.
    pub inner: L,
    seen: RefCell<Vec<Seen>>,
}

impl<L> Capture<L> {
    /// A capture of `inner`, empty.
    pub fn new(inner: L) -> Self {
        Self {
            inner,
            seen: RefCell::new(Vec::new()),
        }
    }

    /// Every output seen, in order, and forgets them.
    pub fn take(&self) -> Vec<Seen> {
        std::mem::take(&mut *self.seen.borrow_mut())
    }

    /// The one output seen since the last `take` (panics if there were none or several: a
    /// pass that evaluates its loss twice would be worth knowing about), and forgets it.
    pub fn only(&self) -> Seen {
        let mut seen = self.take();
        assert_eq!(seen.len(), 1, "the loss was evaluated {} times", seen.len());
        seen.pop().unwrap()
    }
}

impl<T: Real, L: Loss<T>> Loss<T> for Capture<L> {
    fn value_and_grad<const R: usize, const B: usize>(
        &self,
        output: &SMatrix<T, R, B>,
        target: &SMatrix<T, R, B>,
    ) -> (T, SMatrix<T, R, B>) {
        self.seen.borrow_mut().push(Seen {
            rows: R,
            batch: B,
            values: output.iter().map(|v| v.widen()).collect(),
        });
        self.inner.value_and_grad(output, target)
    }
}

/// The gradients of `grads`, each under the `state_dict` name of its parameter, in
/// [`Tensors::visit`](nn_runtime::Tensors::visit) order, and the names `visit` lists that have
/// no gradient (buffers such as `running_mean`).
///
/// [`Network::tensors`] (the optimizers' flat view) lists each parameter beside its gradient;
/// each of its tensors is matched with the tensor `visit` gives at the same address and length,
/// so a gradient cannot be put under another tensor's name. A tensor of the optimizer's view
/// that `visit` does not list fails.
pub fn parameter_gradients<N: Network + Clone>(
    net: &N,
    grads: &N::Grads,
) -> (Vec<Named<N::Scalar>>, Vec<String>) {
    let mut copy = net.clone();
    let mut visited = Vec::new();
    copy.visit("", &mut |name, shape, data| {
        visited.push((
            name.to_string(),
            shape.to_vec(),
            data.as_ptr() as usize,
            data.len(),
        ))
    });
    let mut params: Vec<&mut [N::Scalar]> = std::iter::repeat_with(Default::default)
        .take(N::TENSORS)
        .collect();
    let mut views: Vec<&[N::Scalar]> = vec![&[]; N::TENSORS];
    let mut at = 0;
    copy.tensors(grads, &mut params, &mut views, &mut at);
    assert_eq!(at, N::TENSORS, "Network::tensors filled {at} of TENSORS");
    let mut by_address: BTreeMap<(usize, usize), &[N::Scalar]> = BTreeMap::new();
    for (param, grad) in params.iter().zip(&views) {
        assert_eq!(param.len(), grad.len(), "a gradient's size");
        let previous = by_address.insert((param.as_ptr() as usize, param.len()), grad);
        assert!(previous.is_none(), "Network::tensors lists a tensor twice");
    }
    let mut named = Vec::new();
    let mut without = Vec::new();
    for (name, shape, ptr, len) in visited {
        match by_address.remove(&(ptr, len)) {
            Some(grad) => named.push(Named {
                name,
                shape,
                values: grad.to_vec(),
            }),
            None => without.push(name),
        }
    }
    assert!(
        by_address.is_empty(),
        "Network::tensors lists {} tensors Tensors::visit does not",
        by_address.len()
    );
    (named, without)
}
