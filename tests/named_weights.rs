//! A model whose submodules are named, as real PyTorch models name them (`self.encoder`,
//! `self.head`), loads by those names: `name: Layer(..)` names the field and the `state_dict`
//! prefix. The fixture is a model trained in PyTorch (scripts/torch_weights.py).

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
