//! The testkit's by-name access to parameters and gradients (`nn_testkit::fixtures`:
//! `set_tensors`, `named_tensors`, `named_gradients`), which the sequence parity tests use for
//! recurrent layers, checked here on networks whose fields are known: a nested network, a named
//! layer and a PReLU, so that the names, the column-major order and the pairing of each
//! gradient with its parameter are the fields'.

use nn_runtime::prelude::*;
use nn_testkit::fixtures::{named_gradients, named_tensors, set_tensors};
use nn_testkit::rng::SplitMix64;
use serde_json::json;

network! {
    struct Inner: f64 { Linear(3, 4), Tanh }
}

network! {
    struct Outer: f64 { Inner, PReLU(4), head: Linear(4, 2) }
}

#[test]
fn set_tensors_places_torch_nested_lists_by_row_and_column() {
    let mut net = Outer::zeros();
    let w: Vec<Vec<f64>> = (0..4)
        .map(|r| (0..3).map(|c| (10 * r + c) as f64).collect())
        .collect();
    let state = json!({
        "0.0.weight": w,
        "0.0.bias": [1.0, 2.0, 3.0, 4.0],
        "1.weight": [0.1, 0.2, 0.3, 0.4],
        "head.weight": [[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0]],
        "head.bias": [-1.0, -2.0],
    });
    set_tensors(&mut net, &state, "state");
    for r in 0..4 {
        for c in 0..3 {
            assert_eq!(net.l0.l0.weight[(r, c)], (10 * r + c) as f64);
        }
    }
    assert_eq!(net.head.weight[(1, 2)], 7.0);
    assert_eq!(net.l1.weight[3], 0.4);
    let names: Vec<String> = named_tensors(&net).into_iter().map(|t| t.name).collect();
    assert_eq!(
        names,
        [
            "0.0.weight",
            "0.0.bias",
            "1.weight",
            "head.weight",
            "head.bias"
        ]
    );
}

#[test]
#[should_panic(expected = "tensors the network does not have")]
fn set_tensors_refuses_an_extra_tensor() {
    let mut net = Inner::zeros();
    let state = json!({
        "0.weight": vec![vec![0.0; 3]; 4],
        "0.bias": vec![0.0; 4],
        "2.weight": [0.0],
    });
    set_tensors(&mut net, &state, "state");
}

#[test]
fn named_gradients_pairs_each_gradient_with_its_parameter() {
    let mut rng = SplitMix64::new(7);
    let net = Outer::seeded(3);
    let xs: SMatrix<f64, 3, 5> = rng.matrix(-1.0, 1.0);
    let ys: SMatrix<f64, 2, 5> = rng.matrix(-1.0, 1.0);
    let (_, grads) = net.gradients(&xs, &ys, &Mse);
    let named = named_gradients(&net, &grads);
    let expected: Vec<(&str, Vec<usize>, &[f64])> = vec![
        ("0.0.weight", vec![4, 3], grads.l0.l0.weight.as_slice()),
        ("0.0.bias", vec![4], grads.l0.l0.bias.as_slice()),
        ("1.weight", vec![4], grads.l1.weight.as_slice()),
        ("head.weight", vec![2, 4], grads.head.weight.as_slice()),
        ("head.bias", vec![2], grads.head.bias.as_slice()),
    ];
    assert_eq!(named.len(), expected.len());
    for (ours, (name, shape, values)) in named.iter().zip(expected) {
        assert_eq!(ours.name, name);
        assert_eq!(ours.shape, shape, "{name}");
        assert_eq!(ours.values, values, "{name}");
    }
}
