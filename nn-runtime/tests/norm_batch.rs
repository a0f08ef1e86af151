//! `BatchNorm` inside a network, through the weight files: its running statistics as `F32`
//! tensors and its `num_batches_tracked` as an `I64` scalar, by torch's `state_dict` names,
//! saved and loaded back; and a file without the count is an error naming it.
//!
//! The network is written by hand (what `network!` generates for `Linear(2, 6),
//! BatchNorm1d(6), Unflatten(1, (2, 3)), BatchNorm1d(2, affine=False)`), so this tests the
//! runtime alone.

use nalgebra::SMatrix;
use nn_runtime::heap::Zeroable;
use nn_runtime::init::Init;
use nn_runtime::tensors::{CountVisitor, CountVisitorMut, Visitor, VisitorMut};
use nn_runtime::weights::{Error, from_safetensors_bytes, to_safetensors_bytes};
use nn_runtime::{BatchNorm, Linear, Network, Tensors};
use safetensors::{Dtype, SafeTensors};

#[derive(Clone, Debug, PartialEq)]
struct Net {
    l0: Linear<f32, 2, 6>,
    l1: BatchNorm<f32, 6, true>,
    l3: BatchNorm<f32, 2, false>,
}

// SAFETY: every field is `Zeroable`.
unsafe impl Zeroable for Net {}

impl Tensors<f32> for Net {
    fn visit(&self, prefix: &str, f: &mut Visitor<f32>) {
        self.l0.visit(&format!("{prefix}0."), f);
        self.l1.visit(&format!("{prefix}1."), f);
        self.l3.visit(&format!("{prefix}3."), f);
    }

    fn visit_mut(&mut self, prefix: &str, f: &mut VisitorMut<f32>) {
        self.l0.visit_mut(&format!("{prefix}0."), f);
        self.l1.visit_mut(&format!("{prefix}1."), f);
        self.l3.visit_mut(&format!("{prefix}3."), f);
    }

    fn visit_counts(&self, prefix: &str, f: &mut CountVisitor) {
        self.l1.visit_counts(&format!("{prefix}1."), f);
        self.l3.visit_counts(&format!("{prefix}3."), f);
    }

    fn visit_counts_mut(&mut self, prefix: &str, f: &mut CountVisitorMut) {
        self.l1.visit_counts_mut(&format!("{prefix}1."), f);
        self.l3.visit_counts_mut(&format!("{prefix}3."), f);
    }
}

impl Network for Net {
    type Scalar = f32;
    type Grads = Net;
    const IN: usize = 2;
    const OUT: usize = 6;
    const PARAMS: usize = 18 + 12;
    const TENSORS: usize = 4;
    const FLOPS_FORWARD: usize = 0;
    const FLOPS_BACKWARD: usize = 0;
    const FLOPS_NESTED_BACKWARD: usize = 0;
    const ACTIVATION_BYTES: usize = 0;

    fn reset(&mut self, init: &mut Init) {
        self.l0.reset(init);
        self.l1.reset(init);
        self.l3.reset(init);
    }

    fn tensors<'a>(
        &'a mut self,
        gradients: &'a Self::Grads,
        params: &mut [&'a mut [f32]],
        grads: &mut [&'a [f32]],
        at: &mut usize,
    ) {
        self.l0.pair(&gradients.l0, params, grads, at);
        self.l1.pair(&gradients.l1, params, grads, at);
        self.l3.pair(&gradients.l3, params, grads, at);
    }
}

/// A network after three training batches: running statistics off their initial values, and
/// counts 3.
fn trained() -> Net {
    let mut net = Net::init(&mut Init::new(4));
    for step in 0..3 {
        let x = SMatrix::<f32, 2, 5>::from_fn(|r, c| ((r * 5 + c + step) as f32 * 0.7).sin());
        let h = net.l0.weight * x;
        let (h, stats) = net.l1.train_forward::<6, 1, 5>(&h, 1e-5);
        net.l1.update_running(&stats, 0.1, 5);
        let (_, stats) = net.l3.train_forward::<6, 3, 5>(&h, 1e-5);
        net.l3.update_running(&stats, 0.1, 15);
    }
    net
}

#[test]
fn running_statistics_and_counts_go_through_a_weight_file() {
    let net = trained();
    assert_eq!(net.l1.num_batches_tracked, 3);
    let bytes = to_safetensors_bytes(&net);
    let file = SafeTensors::deserialize(&bytes).unwrap();
    let mut names: Vec<(String, Dtype, Vec<usize>)> = file
        .tensors()
        .into_iter()
        .map(|(name, view)| (name, view.dtype(), view.shape().to_vec()))
        .collect();
    names.sort();
    let expected: Vec<(String, Dtype, Vec<usize>)> = [
        ("0.bias", Dtype::F32, vec![6]),
        ("0.weight", Dtype::F32, vec![6, 2]),
        ("1.bias", Dtype::F32, vec![6]),
        ("1.num_batches_tracked", Dtype::I64, vec![]),
        ("1.running_mean", Dtype::F32, vec![6]),
        ("1.running_var", Dtype::F32, vec![6]),
        ("1.weight", Dtype::F32, vec![6]),
        ("3.num_batches_tracked", Dtype::I64, vec![]),
        ("3.running_mean", Dtype::F32, vec![2]),
        ("3.running_var", Dtype::F32, vec![2]),
    ]
    .into_iter()
    .map(|(n, d, s)| (n.to_string(), d, s))
    .collect();
    assert_eq!(names, expected);
    assert_eq!(
        file.tensor("3.num_batches_tracked").unwrap().data(),
        3i64.to_le_bytes()
    );

    let back: Net = from_safetensors_bytes(&bytes).unwrap();
    assert_eq!(back, net);
    assert_ne!(
        back.l1.running_var,
        Net::init(&mut Init::new(4)).l1.running_var
    );
}

#[test]
fn a_file_without_the_count_names_it() {
    let net = trained();
    let bytes = to_safetensors_bytes(&net);
    let file = SafeTensors::deserialize(&bytes).unwrap();
    let kept: Vec<(String, safetensors::tensor::TensorView<'_>)> = file
        .tensors()
        .into_iter()
        .filter(|(name, _)| name != "3.num_batches_tracked")
        .collect();
    let without = safetensors::serialize(kept, None).unwrap();
    let err = from_safetensors_bytes::<Net>(&without).unwrap_err();
    assert!(
        matches!(&err, Error::MissingTensor { name } if name == "3.num_batches_tracked"),
        "{err}"
    );
}
