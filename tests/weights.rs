//! Weights in and out as safetensors files: round trips, the exact file layout PyTorch uses,
//! parity with a network trained and saved by PyTorch, and one test per way a file can be
//! wrong, each asserting the exact error.

use nn_runtime::prelude::*;
use nn_runtime::weights::{self, Error};
use nn_testkit::rng::SplitMix64;
use nn_testkit::xor::Xor;
use serde_json::Value;
use std::collections::BTreeMap;

network! {
    /// An f64 encoder, nested in `Big`.
    pub struct Enc: f64 { Linear(3, 4), Tanh }
}

network! {
    /// A nested network, a residual block and a plain layer.
    pub struct Big: f64 { Enc, Residual(Linear(4, 4), ReLU), Linear(4, 2) }
}

network! {
    /// `Xor`'s layers in f64: the same tensor names and shapes, another dtype.
    pub struct Xor64: f64 { Linear(2, 8), ReLU, Linear(8, 1) }
}

network! {
    /// f32 with a residual block inside a residual block.
    pub struct Deep { Linear(2, 3), Residual(Residual(Linear(3, 3), Tanh), Linear(3, 3)), Linear(3, 1) }
}

const TORCH_XOR: &[u8] = include_bytes!("fixtures/weights/xor_torch.safetensors");

/// One tensor of a safetensors file, read by hand from its header: dtype, shape, data bytes.
type Entry = (String, Vec<usize>, Vec<u8>);

/// Parses a safetensors file without the library: 8 bytes little-endian header length, a JSON
/// header `{name: {dtype, shape, data_offsets}}`, then the data.
fn read_by_hand(bytes: &[u8]) -> BTreeMap<String, Entry> {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let data = &bytes[8 + n..];
    header
        .as_object()
        .unwrap()
        .iter()
        .filter(|(name, _)| *name != "__metadata__")
        .map(|(name, info)| {
            let shape = info["shape"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_u64().unwrap() as usize)
                .collect();
            let offsets = info["data_offsets"].as_array().unwrap();
            let (s, e) = (
                offsets[0].as_u64().unwrap() as usize,
                offsets[1].as_u64().unwrap() as usize,
            );
            let entry = (
                info["dtype"].as_str().unwrap().to_string(),
                shape,
                data[s..e].to_vec(),
            );
            (name.clone(), entry)
        })
        .collect()
}

/// Writes a safetensors file by hand from `(name, dtype, shape, data)`, so that the error tests
/// can build files our writer never would.
fn write_by_hand(tensors: &[(&str, &str, Vec<usize>, Vec<u8>)]) -> Vec<u8> {
    let mut header = serde_json::Map::new();
    let mut data = Vec::new();
    for (name, dtype, shape, bytes) in tensors {
        let start = data.len();
        data.extend_from_slice(bytes);
        header.insert(
            name.to_string(),
            serde_json::json!({"dtype": dtype, "shape": shape, "data_offsets": [start, data.len()]}),
        );
    }
    let header = serde_json::to_vec(&Value::Object(header)).unwrap();
    let mut file = (header.len() as u64).to_le_bytes().to_vec();
    file.extend_from_slice(&header);
    file.extend_from_slice(&data);
    file
}

/// `Xor`'s tensors as `write_by_hand` takes them, F32, each filled with `value`.
fn xor_tensors(value: f32) -> Vec<(&'static str, &'static str, Vec<usize>, Vec<u8>)> {
    let f32s = |n: usize| value.to_le_bytes().repeat(n);
    vec![
        ("0.weight", "F32", vec![8, 2], f32s(16)),
        ("0.bias", "F32", vec![8], f32s(8)),
        ("2.weight", "F32", vec![1, 8], f32s(8)),
        ("2.bias", "F32", vec![1], f32s(1)),
    ]
}

fn f32_at(bytes: &[u8], i: usize) -> f32 {
    f32::from_le_bytes(bytes[4 * i..4 * i + 4].try_into().unwrap())
}

fn f64_at(bytes: &[u8], i: usize) -> f64 {
    f64::from_le_bytes(bytes[8 * i..8 * i + 8].try_into().unwrap())
}

/// A path under the system's temporary directory, unique to this test process.
fn temp_path(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("nn-weights-{}-{name}", std::process::id()))
}

#[test]
fn f32_round_trip_through_bytes_and_files() {
    let net = Xor::seeded(3);
    let back = Xor::from_safetensors_bytes(&net.to_safetensors_bytes()).unwrap();
    assert_eq!(back, net);

    let path = temp_path("xor.safetensors");
    net.save_safetensors(&path).unwrap();
    let loaded = Xor::load_safetensors(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(loaded, net);
    // The free functions are the same thing.
    assert_eq!(
        weights::to_safetensors_bytes(&net),
        net.to_safetensors_bytes()
    );
}

#[test]
fn f64_round_trip_of_a_nested_network_and_residual_block() {
    let net = Big::seeded(5);
    let bytes = net.to_safetensors_bytes();
    assert_eq!(Big::from_safetensors_bytes(&bytes).unwrap(), net);

    // Named as PyTorch names nn.Sequential(nn.Sequential(Linear, Tanh), Residual(Sequential(
    // Linear, ReLU)), Linear): the nested and residual parts one level down.
    let file = read_by_hand(&bytes);
    let names: Vec<(&str, &str, &[usize])> = file
        .iter()
        .map(|(name, (dtype, shape, _))| (name.as_str(), dtype.as_str(), shape.as_slice()))
        .collect();
    assert_eq!(
        names,
        [
            ("0.0.bias", "F64", &[4][..]),
            ("0.0.weight", "F64", &[4, 3][..]),
            ("1.0.bias", "F64", &[4][..]),
            ("1.0.weight", "F64", &[4, 4][..]),
            ("2.bias", "F64", &[2][..]),
            ("2.weight", "F64", &[2, 4][..]),
        ]
    );
    // Row-major: element (r, c) of a [rows, cols] weight at r * cols + c.
    let weight = &file["0.0.weight"].2;
    for r in 0..4 {
        for c in 0..3 {
            assert_eq!(f64_at(weight, r * 3 + c), net.l0.l0.weight[(r, c)]);
        }
    }
    let bias = &file["2.bias"].2;
    assert_eq!(
        [f64_at(bias, 0), f64_at(bias, 1)],
        [net.l2.bias[0], net.l2.bias[1]]
    );
}

network! {
    /// PReLU's slopes among Linear layers: one shared, one per feature.
    struct Slopes { PReLU, Linear(3, 4), PReLU(4, init = 0.1), Linear(4, 2) }
}

#[test]
fn prelu_slopes_round_trip_under_torchs_names() {
    let mut net = Slopes::seeded(2);
    assert_eq!(net.l0.weight[0], 0.25, "torch's default init");
    assert_eq!(net.l2.weight, SVector::<f32, 4>::repeat(0.1));
    net.l2.weight[3] = -0.5;
    let bytes = net.to_safetensors_bytes();
    assert_eq!(Slopes::from_safetensors_bytes(&bytes).unwrap(), net);
    let file = read_by_hand(&bytes);
    let names: Vec<(&str, &[usize])> = file
        .iter()
        .map(|(name, (_, shape, _))| (name.as_str(), shape.as_slice()))
        .collect();
    // As `nn.Sequential(nn.PReLU(), nn.Linear(3, 4), nn.PReLU(4, init=0.1), nn.Linear(4, 2))`.
    assert_eq!(
        names,
        [
            ("0.weight", &[1][..]),
            ("1.bias", &[4][..]),
            ("1.weight", &[4, 3][..]),
            ("2.weight", &[4][..]),
            ("3.bias", &[2][..]),
            ("3.weight", &[2, 4][..]),
        ]
    );
    assert_eq!(f32_at(&file["2.weight"].2, 3), -0.5);
}

#[test]
fn f32_round_trip_of_nested_residual_blocks() {
    let net = Deep::seeded(9);
    let bytes = net.to_safetensors_bytes();
    assert_eq!(Deep::from_safetensors_bytes(&bytes).unwrap(), net);
    let names: Vec<String> = read_by_hand(&bytes).into_keys().collect();
    assert_eq!(
        names,
        [
            "0.bias",
            "0.weight",
            "1.0.0.bias",
            "1.0.0.weight",
            "1.1.bias",
            "1.1.weight",
            "2.bias",
            "2.weight"
        ]
    );
}

/// The PyTorch side of the parity tests: inputs and torch's outputs for them.
fn torch_outputs() -> (Vec<[f32; 2]>, Vec<f32>) {
    let text = include_str!("fixtures/weights/xor_torch_outputs.json");
    let record: Value = serde_json::from_str(text).unwrap();
    let inputs = record["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| [x[0].as_f64().unwrap() as f32, x[1].as_f64().unwrap() as f32])
        .collect();
    let outputs = record["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|y| y.as_f64().unwrap() as f32)
        .collect();
    (inputs, outputs)
}

#[test]
fn a_network_trained_and_saved_by_pytorch_gives_pytorchs_outputs() {
    // Weights compiled into the test binary: no file system needed.
    let net = Xor::from_safetensors_bytes(TORCH_XOR).unwrap();
    let (inputs, expected) = torch_outputs();
    assert_eq!(inputs.len(), 10);
    let mut worst = 0f32;
    for (x, want) in inputs.iter().zip(&expected) {
        let got = net.forward(&SVector::from(*x))[0];
        worst = worst.max((got - want).abs());
        assert!(
            (got - want).abs() <= 1e-6,
            "input {x:?}: ours {got}, PyTorch {want}"
        );
    }
    println!(
        "max abs diff vs PyTorch over {} inputs: {worst:e}",
        inputs.len()
    );
    // The batch path agrees too.
    let xs = SMatrix::<f32, 2, 10>::from_fn(|r, c| inputs[c][r]);
    let batch = net.forward_batch(&xs);
    for (c, want) in expected.iter().enumerate() {
        assert!((batch[c] - want).abs() <= 1e-6);
    }
}

#[test]
fn nested_and_residual_parts_load_by_pytorchs_module_tree_names() {
    // PyTorch's nn.Sequential(nn.Sequential(Linear, Tanh), Residual(Linear, ReLU), Linear), with
    // Residual an nn.Sequential that adds its input (scripts/torch_weights.py), in float64.
    let net = Big::from_safetensors_bytes(include_bytes!("fixtures/weights/big_torch.safetensors"))
        .unwrap();
    let record: Value =
        serde_json::from_str(include_str!("fixtures/weights/big_torch_outputs.json")).unwrap();
    nn_testkit::fixtures::assert_tensor_names(&net, &record);
    let inputs = record["inputs"].as_array().unwrap();
    let outputs = record["outputs"].as_array().unwrap();
    let mut worst = 0f64;
    for (x, want) in inputs.iter().zip(outputs) {
        let x = SVector::<f64, 3>::from_fn(|r, _| x[r].as_f64().unwrap());
        let got = net.forward(&x);
        for r in 0..2 {
            let diff = (got[r] - want[r].as_f64().unwrap()).abs();
            worst = worst.max(diff);
            assert!(
                diff <= 1e-12,
                "input {x:?} output {r}: ours {}, PyTorch {}",
                got[r],
                want[r]
            );
        }
    }
    println!("max abs diff vs PyTorch (f64, nested + residual): {worst:e}");
}

#[test]
fn what_we_save_is_what_pytorch_saves() {
    // Loading torch's file and saving it again gives torch's tensors, byte for byte: same
    // names, dtype, shapes and row-major data (only torch's {"format": "pt"} metadata and the
    // order of the tensors in the file may differ).
    let net = Xor::from_safetensors_bytes(TORCH_XOR).unwrap();
    assert_eq!(
        read_by_hand(&net.to_safetensors_bytes()),
        read_by_hand(TORCH_XOR)
    );
    let file = read_by_hand(TORCH_XOR);
    assert_eq!(f32_at(&file["0.weight"].2, 1), net.l0.weight[(0, 1)]);
    assert_eq!(f32_at(&file["0.weight"].2, 2), net.l0.weight[(1, 0)]);
}

#[test]
fn missing_tensor() {
    let mut tensors = xor_tensors(0.5);
    tensors.retain(|t| t.0 != "2.bias");
    let err = Xor::from_safetensors_bytes(&write_by_hand(&tensors)).unwrap_err();
    assert!(
        matches!(&err, Error::MissingTensor { name } if name == "2.bias"),
        "{err:?}"
    );
    assert_eq!(err.to_string(), "tensor `2.bias` is missing from the file");
    // A file of a smaller network: the first tensor it lacks.
    network! { pub struct Half { Linear(2, 8), ReLU } }
    let err = Xor::from_safetensors_bytes(&Half::seeded(1).to_safetensors_bytes()).unwrap_err();
    assert!(
        matches!(&err, Error::MissingTensor { name } if name == "2.weight"),
        "{err:?}"
    );
}

#[test]
fn unexpected_tensor() {
    let mut tensors = xor_tensors(0.5);
    tensors.push(("4.weight", "F32", vec![1, 1], vec![0; 4]));
    let err = Xor::from_safetensors_bytes(&write_by_hand(&tensors)).unwrap_err();
    assert!(
        matches!(&err, Error::UnexpectedTensor { name } if name == "4.weight"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "the file has a tensor `4.weight` that the network does not have"
    );
}

#[test]
fn wrong_shape() {
    // A weight saved transposed, [in, out]: the same number of values, the wrong shape.
    let mut tensors = xor_tensors(0.5);
    tensors[0].2 = vec![2, 8];
    let err = Xor::from_safetensors_bytes(&write_by_hand(&tensors)).unwrap_err();
    match &err {
        Error::WrongShape {
            name,
            expected,
            found,
        } => {
            assert_eq!(name, "0.weight");
            assert_eq!(expected, &[8, 2]);
            assert_eq!(found, &[2, 8]);
        }
        other => panic!("expected WrongShape, got {other:?}"),
    }
    assert_eq!(
        err.to_string(),
        "tensor `0.weight` has shape [2, 8] in the file, but the network expects [8, 2]"
    );
}

#[test]
fn wrong_dtype() {
    // An f64 network's file into an f32 network of the same layers.
    let bytes = Xor64::seeded(2).to_safetensors_bytes();
    let err = Xor::from_safetensors_bytes(&bytes).unwrap_err();
    match &err {
        Error::WrongDtype {
            name,
            expected,
            found,
        } => {
            assert_eq!(name, "0.weight");
            assert_eq!(expected, "F32");
            assert_eq!(found, "F64");
        }
        other => panic!("expected WrongDtype, got {other:?}"),
    }
    assert_eq!(
        err.to_string(),
        "tensor `0.weight` has dtype F64 in the file, but the network expects F32"
    );
    // And the other way round, and half precision, which we do not convert silently.
    let err = Xor64::from_safetensors_bytes(TORCH_XOR).unwrap_err();
    assert!(
        matches!(&err, Error::WrongDtype { expected, found, .. } if expected == "F64" && found == "F32")
    );
    let mut tensors = xor_tensors(0.5);
    tensors[3] = ("2.bias", "F16", vec![1], vec![0; 2]);
    let err = Xor::from_safetensors_bytes(&write_by_hand(&tensors)).unwrap_err();
    assert!(
        matches!(&err, Error::WrongDtype { name, found, .. } if name == "2.bias" && found == "F16")
    );
}

#[test]
fn truncated_file() {
    let bytes = Xor::seeded(1).to_safetensors_bytes();
    // Cut in the data, in the header, and in the length prefix.
    for cut in [bytes.len() - 1, bytes.len() - 40, 20, 7, 1] {
        let err = Xor::from_safetensors_bytes(&bytes[..cut]).unwrap_err();
        assert!(
            matches!(err, Error::Corrupt { .. }),
            "cut at {cut}: {err:?}"
        );
        assert!(
            err.to_string()
                .starts_with("not a valid safetensors file: ")
        );
    }
}

#[test]
fn garbage_bytes() {
    let err = Xor::from_safetensors_bytes(b"definitely not a safetensors file").unwrap_err();
    assert!(matches!(err, Error::Corrupt { .. }), "{err:?}");
    // A valid length prefix and a header that is not JSON.
    let mut bytes = 4u64.to_le_bytes().to_vec();
    bytes.extend_from_slice(b"{{{{");
    let err = Xor::from_safetensors_bytes(&bytes).unwrap_err();
    assert!(matches!(err, Error::Corrupt { .. }), "{err:?}");
}

#[test]
fn empty_bytes() {
    let err = Xor::from_safetensors_bytes(&[]).unwrap_err();
    assert!(matches!(err, Error::Corrupt { .. }), "{err:?}");
}

#[test]
fn missing_file_is_an_io_error_naming_the_path() {
    let path = temp_path("does-not-exist.safetensors");
    let err = Xor::load_safetensors(&path).unwrap_err();
    assert!(
        matches!(&err, Error::Io { path: p, .. } if *p == path),
        "{err:?}"
    );
    assert!(err.to_string().contains("does-not-exist.safetensors"));
    assert!(std::error::Error::source(&err).is_some());
}

#[test]
fn never_half_loaded() {
    // Every tensor but the last is right: loading fails as a whole.
    let mut tensors = xor_tensors(0.5);
    tensors[3].2 = vec![2];
    tensors[3].3 = vec![0; 8];
    let bytes = write_by_hand(&tensors);
    let err = Xor::from_safetensors_bytes(&bytes).unwrap_err();
    assert!(matches!(err, Error::WrongShape { .. }), "{err:?}");
    // Filling an existing network leaves it as it was.
    let mut net = Xor::seeded(4);
    let before = net.clone();
    assert!(net.fill_from_safetensors_bytes(&bytes).is_err());
    assert_eq!(net, before);
    // An unexpected extra tensor is found after every expected one checked out: still nothing
    // written.
    let mut tensors = xor_tensors(0.5);
    tensors.push(("extra", "F32", vec![1], vec![0; 4]));
    assert!(
        net.fill_from_safetensors_bytes(&write_by_hand(&tensors))
            .is_err()
    );
    assert_eq!(net, before);
    // And a good file fills every parameter.
    net.fill_from_safetensors_bytes(&write_by_hand(&xor_tensors(0.5)))
        .unwrap();
    assert!(
        net.l0
            .weight
            .iter()
            .chain(net.l2.bias.iter())
            .all(|&v| v == 0.5)
    );
}

#[test]
fn no_bytes_make_it_panic() {
    // Deterministic pseudo-random mutations of a valid file and random strings: each load
    // returns Ok or Err, never panics. (A splitmix64 generator keeps the test data fixed.)
    let mut rng = SplitMix64::new(0x9e37_79b9_7f4a_7c15);
    let mut next = move || rng.next_u64();
    let valid = Xor::seeded(0).to_safetensors_bytes();
    let mut outcomes = [0usize; 2];
    for _ in 0..3000 {
        let mut bytes = valid.clone();
        for _ in 0..1 + next() % 4 {
            let at = (next() % bytes.len() as u64) as usize;
            bytes[at] = next() as u8;
        }
        if next() % 4 == 0 {
            bytes.truncate((next() % bytes.len() as u64) as usize);
        }
        outcomes[Xor::from_safetensors_bytes(&bytes).is_ok() as usize] += 1;
    }
    for len in 0..200 {
        let bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        assert!(Xor::from_safetensors_bytes(&bytes).is_err());
    }
    // Both outcomes happen: mutations in the data load (other values), others are caught.
    assert!(outcomes[0] > 0 && outcomes[1] > 0, "{outcomes:?}");
}

network! {
    /// 2.1 MB of f32 parameters: more than a 2 MiB thread stack.
    pub struct Wide { Linear(784, 512), ReLU, Linear(512, 256), ReLU, Linear(256, 10) }
}

#[test]
fn a_network_too_large_for_the_stack_saves_and_loads_on_the_heap() {
    let same = std::thread::Builder::new()
        .stack_size(2 * 1024 * 1024)
        .spawn(|| {
            let net = Wide::boxed_seeded(3);
            let bytes = net.to_safetensors_bytes();
            let back: Box<Wide> = weights::from_safetensors_bytes_boxed(&bytes).unwrap();
            let mut filled = Wide::boxed_zeros();
            filled.fill_from_safetensors_bytes(&bytes).unwrap();
            // A wrong file leaves it as it was, and is an error, on the heap too.
            let err = weights::from_safetensors_bytes_boxed::<Wide>(&bytes[..100]).unwrap_err();
            assert!(matches!(err, Error::Corrupt { .. }));
            (bytes.len(), *back == *net && *filled == *net)
        })
        .unwrap()
        .join()
        .unwrap();
    assert!(same.1);
    assert!(same.0 > Wide::PARAMS * 4);
}

network! {
    /// A convolution with batch statistics: running statistics and an integer count saved.
    struct Normed { Unflatten(1, 4, 4), Conv2d(1, 2, 3, padding = 1), BatchNorm2d(2), ReLU, Flatten, Linear(32, 2) }
}

#[test]
fn batch_norm_buffers_and_count_round_trip_under_torchs_names() {
    let mut net = Normed::seeded(4);
    let xs = SMatrix::<f32, 16, 3>::from_fn(|r, c| ((r * 3 + c) as f32 * 0.7).sin());
    let ys = SMatrix::<f32, 2, 3>::from_fn(|r, c| (r + c) as f32 * 0.1);
    let mut opt = Adam::new(0.01);
    for _ in 0..3 {
        net.train_step(&xs, &ys, &Mse, &mut opt);
    }
    assert_eq!(net.l2.num_batches_tracked, 3);
    assert_ne!(net.l2.running_var, SVector::<f32, 2>::repeat(1.0));
    let bytes = net.to_safetensors_bytes();
    let file = read_by_hand(&bytes);
    assert_eq!(file["2.num_batches_tracked"].0, "I64");
    assert_eq!(file["2.running_mean"].1, [2]);
    let back = Normed::from_safetensors_bytes(&bytes).unwrap();
    assert_eq!(back, net);
    assert_eq!(back.l2.num_batches_tracked, 3);
    // Inference uses the running statistics: the same outputs after the round trip.
    assert_eq!(back.forward_batch(&xs), net.forward_batch(&xs));
}
