//! Networks built from networks, and residual blocks: their gradients against central finite
//! differences (through the generic `Network::tensors` view, so nested parameters are covered
//! without naming them), and both kinds learning a small task.

use approx::relative_eq;
use nn_runtime::prelude::*;

network! {
    /// A small encoder, used below as one layer of other networks.
    pub struct Encoder: f64 { Linear(3, 6), Tanh, Linear(6, 4) }
}

network! {
    /// `Encoder` between two layers of its own.
    pub struct Composed: f64 { Linear(2, 3), Sigmoid, Encoder, LeakyReLU(0.3), Linear(4, 2) }
}

network! {
    /// Residual blocks, one nested in another, and one at the very start.
    pub struct Skips: f64 {
        Residual(Tanh),
        Linear(3, 5),
        Residual(Linear(5, 5), Tanh, Linear(5, 5)),
        Sigmoid,
        Residual(Residual(Linear(5, 5), Sigmoid), Linear(5, 5)),
        Linear(5, 2),
    }
}

network! {
    /// A composed network whose nested network starts it, with a residual block after.
    pub struct Both: f64 { Encoder, Residual(Linear(4, 4), Tanh), Linear(4, 1) }
}

/// Runs `f` on scalar `i` of parameter tensor `t` of `net`.
fn with_param<N: Network<Scalar = f64>>(net: &mut N, t: usize, i: usize, f: impl FnOnce(&mut f64)) {
    let grads = N::zero_grads();
    let mut params: Vec<&mut [f64]> = (0..N::TENSORS).map(|_| -> &mut [f64] { &mut [] }).collect();
    let mut slices: Vec<&[f64]> = vec![&[]; N::TENSORS];
    net.tensors(&grads, &mut params, &mut slices, &mut 0);
    f(&mut params[t][i]);
}

/// The gradient tensors of `grads`, flattened, in declaration order.
fn flatten<N: Network<Scalar = f64> + Clone>(net: &N, grads: &N::Grads) -> Vec<Vec<f64>> {
    let mut probe = net.clone();
    let mut params: Vec<&mut [f64]> = (0..N::TENSORS).map(|_| -> &mut [f64] { &mut [] }).collect();
    let mut slices: Vec<&[f64]> = vec![&[]; N::TENSORS];
    let mut at = 0;
    probe.tensors(grads, &mut params, &mut slices, &mut at);
    assert_eq!(at, N::TENSORS);
    slices.iter().map(|s| s.to_vec()).collect()
}

/// Compares every analytic gradient with the central difference of `loss`; returns the number
/// of scalars checked. Step and tolerances as in `gradcheck.rs`: with `h = 1e-6` in f64 the
/// rounding error is about `2e-10 * |loss|`, far below the tolerances.
fn check<N: Network<Scalar = f64> + Clone>(
    net: &N,
    analytic: &N::Grads,
    loss: impl Fn(&N) -> f64,
) -> usize {
    let h = 1e-6;
    let epsilon = 1e-8 * loss(net).abs().max(1.0);
    let mut probe = net.clone();
    let mut checked = 0;
    for (t, tensor) in flatten(net, analytic).iter().enumerate() {
        for (i, &a) in tensor.iter().enumerate() {
            let mut original = 0.0;
            with_param(&mut probe, t, i, |p| {
                original = *p;
                *p = original + h;
            });
            let up = loss(&probe);
            with_param(&mut probe, t, i, |p| *p = original - h);
            let down = loss(&probe);
            with_param(&mut probe, t, i, |p| *p = original);
            let numeric = (up - down) / (2.0 * h);
            assert!(
                relative_eq!(a, numeric, epsilon = epsilon, max_relative = 1e-6),
                "tensor {t} scalar {i}: analytic {a}, numeric {numeric}"
            );
            checked += 1;
        }
    }
    checked
}

/// A batch of `B` inputs spread over [-1.5, 1.5], deterministic.
fn inputs<const I: usize, const B: usize>(salt: f64) -> SMatrix<f64, I, B> {
    SMatrix::from_fn(|r, c| ((r * 7 + c * 13) as f64 + salt).sin() * 1.5)
}

#[test]
fn composed_network_gradients_match_finite_differences() {
    let net = Composed::seeded(3);
    let xs = inputs::<2, 5>(0.3);
    let ys = inputs::<2, 5>(1.1);
    let (_, grads) = net.gradients(&xs, &ys, &Mse);
    let checked = check(&net, &grads, |n| Mse.value(&n.forward_batch(&xs), &ys));
    assert_eq!(checked, Composed::PARAMS);
    assert_eq!(
        Composed::PARAMS,
        (3 * 2 + 3) + Encoder::PARAMS + (2 * 4 + 2)
    );
    // The nested network's gradients are reachable by path, like its parameters.
    assert_eq!(grads.l2.l0.weight.shape(), net.l2.l0.weight.shape());
}

#[test]
fn residual_gradients_match_finite_differences() {
    let net = Skips::seeded(5);
    let xs = inputs::<3, 4>(0.7);
    let labels = [0, 1, 1, 0];
    let ys: SMatrix<f64, 2, 4> = one_hot(&labels).unwrap();
    let (_, grads) = net.gradients(&xs, &ys, &CrossEntropy);
    let checked = check(&net, &grads, |n| {
        CrossEntropy.value(&n.forward_batch(&xs), &ys)
    });
    assert_eq!(checked, Skips::PARAMS);
    // Block parameters are named by their place, as nn.Sequential's state_dict names them.
    assert_eq!(net.l2_0.weight.shape(), (5, 5));
    assert_eq!(net.l4_0_0.weight.shape(), (5, 5));
}

#[test]
fn nested_network_first_then_residual() {
    let net = Both::seeded(8);
    let xs = inputs::<3, 6>(2.0);
    let ys = inputs::<1, 6>(0.1).map(|v| if v > 0.0 { 1.0 } else { 0.0 });
    let (_, grads) = net.gradients(&xs, &ys, &BceWithLogits);
    let checked = check(&net, &grads, |n| {
        BceWithLogits.value(&n.forward_batch(&xs), &ys)
    });
    assert_eq!(checked, Both::PARAMS);
    assert_eq!((Both::IN, Both::OUT), (Encoder::IN, 1));
}

#[test]
fn a_residual_block_adds_its_input() {
    let mut net = Skips::seeded(1);
    let x = inputs::<3, 1>(0.5);
    let sigmoid = |v: f64| 1.0 / (1.0 + (-v).exp());
    // Written out by hand: each block is x + f(x).
    let manual = |net: &Skips| {
        let h = x + x.map(f64::tanh);
        let h = net.l1.weight * h + net.l1.bias;
        let h = h
            + (net.l2_2.weight * (net.l2_0.weight * h + net.l2_0.bias).map(f64::tanh)
                + net.l2_2.bias);
        let h = h.map(sigmoid);
        let inner = h + (net.l4_0_0.weight * h + net.l4_0_0.bias).map(sigmoid);
        let h = h + (net.l4_1.weight * inner + net.l4_1.bias);
        net.l5.weight * h + net.l5.bias
    };
    assert!(relative_eq!(net.forward(&x), manual(&net), epsilon = 1e-12));
    // With a block's last layer zero, f(x) = 0 and the block passes its input unchanged.
    net.l2_2 = Linear::zeros();
    let h = net.l1.weight * (x + x.map(f64::tanh)) + net.l1.bias;
    assert!(relative_eq!(net.forward(&x), manual(&net), epsilon = 1e-12));
    assert!(relative_eq!(
        manual(&net),
        {
            let h = h.map(sigmoid);
            let inner = h + (net.l4_0_0.weight * h + net.l4_0_0.bias).map(sigmoid);
            net.l5.weight * (h + (net.l4_1.weight * inner + net.l4_1.bias)) + net.l5.bias
        },
        epsilon = 1e-12
    ));
}

network! {
    /// An f32 feature extractor for the training test.
    pub struct Features { Linear(2, 8), Tanh }
}

network! {
    /// XOR through a nested network and a residual block.
    pub struct XorDeep { Features, Residual(Linear(8, 8), ReLU), Linear(8, 1) }
}

#[test]
fn composed_and_residual_networks_learn_xor() {
    let (xs, ys) = nn_testkit::xor::xor_data();
    let mut net = XorDeep::seeded(7);
    let mut opt = Adam::new(0.01);
    let first = net.train_step(&xs, &ys, &Mse, &mut opt);
    for _ in 0..1000 {
        net.train_step(&xs, &ys, &Mse, &mut opt);
    }
    let last = Mse.value(&net.forward_batch(&xs), &ys);
    assert!(last < 0.01 && last < first / 10.0, "loss {first} -> {last}");
    // Every parameter moved, nested ones included.
    let fresh = XorDeep::seeded(7);
    assert_ne!(net.l0.l0.weight, fresh.l0.l0.weight);
    assert_ne!(net.l1_0.weight, fresh.l1_0.weight);
    assert_ne!(net.l2.bias, fresh.l2.bias);
}

#[test]
fn nested_networks_draw_from_one_seeded_stream() {
    let a = XorDeep::seeded(11);
    assert_eq!(a, XorDeep::seeded(11));
    // The nested network is initialised from the same stream, not restarted from the seed.
    assert_ne!(
        a.l0.l0.weight,
        Features::seeded(11).l0.weight.map(|v| v + 1.0)
    );
    assert_eq!(a.l0, {
        let mut init = nn_runtime::init::Init::new(11);
        <Features as Network>::init(&mut init)
    });
}

#[test]
fn tensors_are_named_as_pytorch_names_them() {
    use nn_runtime::Tensors;
    let mut names = Vec::new();
    Skips::seeded(0).visit("", &mut |name, shape, data| {
        assert_eq!(shape.iter().product::<usize>(), data.len(), "{name}");
        names.push(format!("{name} {shape:?}"));
    });
    assert_eq!(
        names,
        [
            "1.weight [5, 3]",
            "1.bias [5]",
            "2.0.weight [5, 5]",
            "2.0.bias [5]",
            "2.2.weight [5, 5]",
            "2.2.bias [5]",
            "4.0.0.weight [5, 5]",
            "4.0.0.bias [5]",
            "4.1.weight [5, 5]",
            "4.1.bias [5]",
            "5.weight [2, 5]",
            "5.bias [2]",
        ]
    );
    let mut nested = Vec::new();
    Composed::seeded(0).visit("", &mut |name, _, _| nested.push(name.to_string()));
    assert_eq!(
        nested,
        [
            "0.weight",
            "0.bias",
            "2.0.weight",
            "2.0.bias",
            "2.2.weight",
            "2.2.bias",
            "4.weight",
            "4.bias"
        ]
    );
    // visit_mut reaches the same storage.
    let mut net = Composed::zeros();
    net.visit_mut("", &mut |name, _, data| {
        if name == "2.2.bias" {
            data.fill(1.5);
        }
    });
    assert_eq!(net.l2.l2.bias, SVector::<f64, 4>::repeat(1.5));
}
