//! Weights compiled into the binary (`#[weights("file.safetensors")]`): the `const PRETRAINED`
//! and `pretrained()` equal what `from_safetensors_bytes` loads from the same file, and the
//! networks compute what PyTorch computed with those weights (tests/fixtures/compiled/, made
//! by scripts/torch_compiled_weights.py), for an MLP with PReLU, named layers and a residual
//! block, a convolution with a batch norm (running statistics and an `I64` count), an `f64`
//! network with a layer norm, and a two-layer GRU.

use nn_runtime::prelude::*;
use serde_json::Value;

network! {
    /// Linear, PReLU, Linear.
    #[weights("tests/fixtures/compiled/mlp.safetensors")]
    pub struct Mlp { Linear(4, 8), PReLU, Linear(8, 3) }

    /// Named layers around a residual block (`enc.weight`, `2.0.weight`, `head.weight`).
    #[weights = "tests/fixtures/compiled/named.safetensors"]
    pub struct Named { enc: Linear(3, 6), Tanh, Residual(Linear(6, 6), ReLU), head: Linear(6, 2) }

    /// A convolution and a batch norm, whose count is an `I64` scalar in the file.
    #[weights("tests/fixtures/compiled/conv_bn.safetensors")]
    pub struct ConvBn {
        Unflatten(1, 6, 6), Conv2d(1, 3, 3), BatchNorm2d(3), ReLU, Flatten, Linear(48, 2)
    }

    /// `f64`, with a layer norm.
    #[weights("tests/fixtures/compiled/wide64.safetensors")]
    pub struct Wide64: f64 { Linear(3, 4), LayerNorm(4), Tanh, Linear(4, 2) }

    /// A sequence network: a two-layer GRU (`first` and `rest[0]`) and a head.
    #[weights("tests/fixtures/compiled/gru.safetensors")]
    pub struct GruNet { GRU(2, 4, num_layers = 2), Linear(4, 1) }
}

/// In a `static`: the weights are decoded at compile time and sit in read-only memory.
static MLP: Mlp = Mlp::PRETRAINED;

/// The same file, loaded at run time.
macro_rules! loaded {
    ($net:ty, $file:literal) => {
        <$net>::from_safetensors_bytes(include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/compiled/",
            $file
        )))
        .unwrap()
    };
}

/// Torch's record of network `stem`: its inputs and outputs, one list per sample.
fn record(stem: &str) -> (Vec<Vec<f64>>, Vec<Vec<f64>>) {
    let text = include_str!("fixtures/compiled/outputs.json");
    let all: Value = serde_json::from_str(text).unwrap();
    let rows = |key: &str| -> Vec<Vec<f64>> {
        all[stem][key]
            .as_array()
            .unwrap()
            .iter()
            .map(|row| {
                row.as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_f64().unwrap())
                    .collect()
            })
            .collect()
    };
    (rows("inputs"), rows("outputs"))
}

/// Asserts `ours` is within `tolerance` of torch's `theirs`, element by element.
fn assert_close(ours: &[f64], theirs: &[f64], tolerance: f64, what: &str) {
    assert_eq!(ours.len(), theirs.len(), "{what}");
    for (a, b) in ours.iter().zip(theirs) {
        assert!(
            (a - b).abs() <= tolerance,
            "{what}: {ours:?} vs torch's {theirs:?}"
        );
    }
}

/// The outputs of an `f32` network with `forward` on every recorded input, against torch's.
macro_rules! agrees_with_torch {
    ($net:expr, $ty:ty, $stem:literal) => {{
        let (inputs, outputs) = record($stem);
        for (x, y) in inputs.iter().zip(&outputs) {
            let x = SVector::<f32, { <$ty>::IN }>::from_iterator(x.iter().map(|&v| v as f32));
            let ours: Vec<f64> = $net.forward(&x).iter().map(|&v| f64::from(v)).collect();
            assert_close(&ours, y, 1e-5, $stem);
        }
    }};
}

#[test]
fn the_const_and_pretrained_equal_the_loader() {
    let mlp: Mlp = loaded!(Mlp, "mlp.safetensors");
    assert_eq!(Mlp::PRETRAINED, mlp);
    assert_eq!(MLP, mlp);
    assert_eq!(Mlp::pretrained(), mlp);
    assert_ne!(mlp, Mlp::zeros());

    let named: Named = loaded!(Named, "named.safetensors");
    assert_eq!(Named::PRETRAINED, named);
    assert_eq!(Named::pretrained(), named);

    let conv: ConvBn = loaded!(ConvBn, "conv_bn.safetensors");
    assert_eq!(ConvBn::PRETRAINED, conv);
    assert_eq!(ConvBn::pretrained(), conv);
    // The count came through, as torch left it after three batches.
    assert_eq!(ConvBn::PRETRAINED.l2.num_batches_tracked, 3);

    let wide: Wide64 = loaded!(Wide64, "wide64.safetensors");
    assert_eq!(Wide64::PRETRAINED, wide);
    assert_eq!(Wide64::pretrained(), wide);

    let gru: GruNet = loaded!(GruNet, "gru.safetensors");
    assert_eq!(GruNet::PRETRAINED, gru);
    assert_eq!(GruNet::pretrained(), gru);
}

#[test]
fn fill_pretrained_overwrites_a_network_on_the_heap() {
    let mut net = ConvBn::boxed_seeded(7);
    net.fill_pretrained();
    assert_eq!(*net, ConvBn::PRETRAINED);
}

#[test]
fn compiled_networks_compute_what_torch_computed() {
    agrees_with_torch!(MLP, Mlp, "mlp");
    agrees_with_torch!(Named::PRETRAINED, Named, "named");
    agrees_with_torch!(ConvBn::pretrained(), ConvBn, "conv_bn");

    let (inputs, outputs) = record("wide64");
    for (x, y) in inputs.iter().zip(&outputs) {
        let ours = Wide64::PRETRAINED.forward(&SVector::from_iterator(x.iter().copied()));
        assert_close(ours.as_slice(), y, 1e-12, "wide64");
    }

    let (inputs, outputs) = record("gru");
    let (net, mut state) = (GruNet::PRETRAINED, GruNetState::zeros());
    for (x, y) in inputs.iter().zip(&outputs) {
        let x = SVector::from_iterator(x.iter().map(|&v| v as f32));
        let ours = f64::from(net.step(&x, &mut state)[0]);
        assert_close(&[ours], y, 1e-5, "gru");
    }
}
