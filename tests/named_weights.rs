//! A model whose submodules are named, as real PyTorch models name them (`self.encoder`,
//! `self.head`), loads by those names: `name: Layer(..)` names the field and the `state_dict`
//! prefix; a stacked LSTM loads layer by layer; a convolutional `nn.Sequential` loads by its
//! indices. The fixtures are models trained in PyTorch (scripts/torch_weights.py).

use nn_runtime::prelude::*;
use serde_json::Value;

network! {
    /// The encoder: an `nn.Sequential` in PyTorch, so its layers are numbered inside it.
    pub struct NamedEncoder { Linear(3, 6), Tanh, Linear(6, 4) }
}

network! {
    /// `Named` of scripts/torch_weights.py: `self.encoder`, `self.act`, `self.head`.
    pub struct Named { encoder: NamedEncoder, act: ReLU, head: Linear(4, 2) }
}

const TORCH_NAMED: &[u8] = include_bytes!("fixtures/weights/named_torch.safetensors");

fn record() -> Value {
    serde_json::from_str(include_str!("fixtures/weights/named_torch_outputs.json")).unwrap()
}

#[test]
fn named_submodules_load_and_give_pytorchs_outputs() {
    let net = Named::from_safetensors_bytes(TORCH_NAMED).unwrap();
    let record = record();
    let inputs = record["inputs"].as_array().unwrap();
    let outputs = record["outputs"].as_array().unwrap();
    let mut worst = 0f32;
    for (x, want) in inputs.iter().zip(outputs) {
        let x = SVector::<f32, 3>::from_fn(|r, _| x[r].as_f64().unwrap() as f32);
        let got = net.forward(&x);
        for r in 0..2 {
            let want = want[r].as_f64().unwrap() as f32;
            let diff = (got[r] - want).abs();
            worst = worst.max(diff);
            assert!(
                diff <= 1e-6,
                "input {x:?} output {r}: ours {}, PyTorch {want}",
                got[r]
            );
        }
    }
    println!("max abs diff vs PyTorch (named submodules): {worst:e}");
}

#[test]
fn fields_and_tensor_names_follow_the_declared_names() {
    let net = Named::from_safetensors_bytes(TORCH_NAMED).unwrap();
    let record = record();
    nn_testkit::fixtures::assert_tensor_names(&net, &record);
    // The fields are the declared names: `net.head` is the head's `Linear`.
    assert_eq!(net.head.weight.shape(), (2, 4));
    assert_eq!(net.encoder.l2.weight.shape(), (4, 6));
    // Saved again, the file has torch's names, and loads back to the same network.
    let again = Named::from_safetensors_bytes(&net.to_safetensors_bytes()).unwrap();
    assert_eq!(again, net);
}

#[test]
fn a_file_with_positional_names_is_an_error_naming_the_tensor() {
    // The same tensors under nn.Sequential's numbers instead of the names: not this model.
    let net = Named::seeded(1);
    let mut renamed = Vec::new();
    nn_runtime::Tensors::visit(&net, "", &mut |name, _, _| renamed.push(name.to_string()));
    assert!(
        renamed
            .iter()
            .all(|n| !n.starts_with('0') && !n.starts_with('2'))
    );
    #[allow(dead_code)]
    mod positional {
        use nn_runtime::prelude::*;
        network! { pub struct Seq { Linear(3, 6), Tanh, Linear(6, 4), ReLU, Linear(4, 2) } }
    }
    let bytes = positional::Seq::seeded(1).to_safetensors_bytes();
    let error = Named::from_safetensors_bytes(&bytes)
        .unwrap_err()
        .to_string();
    assert!(error.contains("encoder.0.weight"), "{error}");
}

network! {
    /// `Rnn` of scripts/torch_weights.py: `self.rnn = nn.LSTM(2, 6, num_layers=3)`,
    /// `self.head = nn.Linear(6, 1)`, applied at each time step.
    pub struct RnnHead { rnn: LSTM(2, 6, num_layers = 3), head: Linear(6, 1) }
}

network! {
    /// The same LSTM with one layer fewer: a file of the 3-layer model has a tensor too many,
    /// and this model's file lacks the third layer.
    pub struct RnnTwo { rnn: LSTM(2, 6, num_layers = 2), head: Linear(6, 1) }
}

const TORCH_RNN: &[u8] = include_bytes!("fixtures/weights/rnn_torch.safetensors");

/// A PyTorch LSTM of three layers with a head, saved by torch, loads every layer by its names
/// and steps through a sequence as torch runs it.
#[test]
fn a_stacked_pytorch_lstm_loads_by_name_and_steps_as_torch() {
    let net = RnnHead::from_safetensors_bytes(TORCH_RNN).unwrap();
    let record: Value =
        serde_json::from_str(include_str!("fixtures/weights/rnn_torch_outputs.json")).unwrap();
    let mut names = Vec::new();
    nn_runtime::Tensors::visit(&net, "", &mut |name, _, _| names.push(name.to_string()));
    let expected: Vec<&str> = record["names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    assert_eq!(names, expected);
    // Every layer holds torch's values, the third included.
    assert_ne!(net.rnn.rest[1].weight_ih, SMatrix::<f32, 24, 6>::zeros());
    let mut state = RnnHeadState::zeros();
    let mut worst = 0f32;
    for (x, want) in record["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .zip(record["outputs"].as_array().unwrap())
    {
        let x = SVector::<f32, 2>::from_fn(|r, _| x[r].as_f64().unwrap() as f32);
        let got = net.step(&x, &mut state)[0];
        let want = want[0].as_f64().unwrap() as f32;
        worst = worst.max((got - want).abs());
        assert!((got - want).abs() <= 1e-5, "ours {got}, PyTorch {want}");
    }
    println!("max abs diff vs PyTorch (3-layer LSTM over 12 steps): {worst:e}");
}

/// A missing layer is an error naming its first tensor, never a silently zero layer; an extra
/// one is an error too.
#[test]
fn a_missing_or_extra_lstm_layer_is_an_error_naming_the_tensor() {
    let two = RnnTwo::seeded(1).to_safetensors_bytes();
    let error = RnnHead::from_safetensors_bytes(&two)
        .unwrap_err()
        .to_string();
    assert!(error.contains("rnn.weight_ih_l2"), "{error}");
    // The two-layer model's error names one of the third layer's tensors it has no place for.
    let error = RnnTwo::from_safetensors_bytes(TORCH_RNN)
        .unwrap_err()
        .to_string();
    assert!(error.contains("`rnn.") && error.contains("_l2`"), "{error}");
}

network! {
    /// `conv_network()` of scripts/torch_weights.py: `nn.Sequential(nn.Unflatten(1, (1, 8, 8)),
    /// nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 8, 3,
    /// padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10))`: the
    /// layers with parameters at indices 1, 4 and 8, as in torch's `state_dict`.
    pub struct ConvTorch {
        Unflatten(1, 8, 8),
        Conv2d(1, 4, 3, padding = 1),
        ReLU,
        MaxPool2d(2),
        Conv2d(4, 8, 3, padding = 1),
        ReLU,
        AdaptiveAvgPool2d(1),
        Flatten,
        Linear(8, 10),
    }
}

const TORCH_CONV: &[u8] = include_bytes!("fixtures/weights/conv_torch.safetensors");

/// A convolutional network PyTorch trained and saved loads by its `state_dict` names (each
/// convolution's weight `[out, in, 3, 3]`) and gives PyTorch's logits, one image at a time and
/// as a batch; saved again, the file loads back to the same network.
#[test]
fn a_pytorch_conv_net_loads_and_gives_pytorchs_outputs() {
    let net = ConvTorch::from_safetensors_bytes(TORCH_CONV).unwrap();
    let record: Value =
        serde_json::from_str(include_str!("fixtures/weights/conv_torch_outputs.json")).unwrap();
    nn_testkit::fixtures::assert_tensor_names(&net, &record);
    let mut shapes = Vec::new();
    nn_runtime::Tensors::visit(&net, "", &mut |name, shape, _| {
        shapes.push((name.to_string(), shape.to_vec()))
    });
    assert_eq!(shapes[0], ("1.weight".to_string(), vec![4, 1, 3, 3]));
    assert_eq!(shapes[2], ("4.weight".to_string(), vec![8, 4, 3, 3]));

    let inputs = record["inputs"].as_array().unwrap();
    let outputs = record["outputs"].as_array().unwrap();
    assert_eq!((inputs.len(), outputs.len()), (6, 6));
    let value = |v: &Value| v.as_f64().unwrap() as f32;
    let xs = SMatrix::<f32, 64, 6>::from_fn(|r, c| value(&inputs[c][r]));
    let want = SMatrix::<f32, 10, 6>::from_fn(|r, c| value(&outputs[c][r]));
    let batch = net.forward_batch(&xs);
    let mut worst = 0f32;
    for c in 0..6 {
        let alone = net.forward(&xs.column(c).into_owned());
        for r in 0..10 {
            for (how, got) in [("alone", alone[r]), ("in the batch", batch[(r, c)])] {
                let diff = (got - want[(r, c)]).abs();
                worst = worst.max(diff);
                assert!(
                    diff <= 1e-5,
                    "image {c} {how}, logit {r}: ours {got}, PyTorch {}",
                    want[(r, c)]
                );
            }
        }
    }
    println!("max abs diff vs PyTorch (conv net): {worst:e}");
    // The images are told apart: the logits are not one constant column.
    assert_ne!(want.column(0), want.column(1));

    let again = ConvTorch::from_safetensors_bytes(&net.to_safetensors_bytes()).unwrap();
    assert_eq!(again, net);
}
