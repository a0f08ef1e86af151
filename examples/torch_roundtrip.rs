//! Weights from PyTorch and back: load a network PyTorch trained, fine-tune it here, save it
//! for PyTorch.
//!
//! 1. `scripts/torch_weights.py` trained the XOR network in PyTorch and saved it with
//!    `safetensors.torch.save_file(model.state_dict(), "tests/fixtures/weights/xor_torch.safetensors")`.
//! 2. This example loads that file into the same network declared with `network!`, checks
//!    that it computes what PyTorch computed, fine-tunes it for 200 Adam steps towards soft
//!    targets (0.1 and 0.9 instead of 0 and 1), and saves it to
//!    `target/xor_finetuned.safetensors`, with its outputs beside it in
//!    `target/xor_finetuned.outputs.json`.
//! 3. PyTorch loads the file back and compares:
//!    `python3 scripts/torch_weights.py --check target/xor_finetuned.safetensors`
//!    which does, in Python:
//!
//!    ```python
//!    from safetensors.torch import load_file
//!    model = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 1))
//!    model.load_state_dict(load_file("target/xor_finetuned.safetensors"), strict=True)
//!    ```
//!
//!    Its recorded output is `tests/fixtures/weights/roundtrip_check.txt`.
//!
//! Run it with `cargo run --release --example torch_roundtrip`.

use nn_runtime::prelude::*;
use std::error::Error;
use std::path::Path;

network! {
    /// The classic XOR network, as examples/xor.rs declares it and as PyTorch's
    /// `nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 1))`.
    pub struct Xor {
        Linear(2, 8),
        ReLU,
        Linear(8, 1),
    }
}

fn main() -> Result<(), Box<dyn Error>> {
    // The workspace's root: this package is its examples/ folder.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .ok_or("the examples package has no parent folder")?;
    let fixtures = root.join("tests/fixtures/weights");

    // 1. PyTorch's network and PyTorch's outputs.
    let mut net = Xor::load_safetensors(fixtures.join("xor_torch.safetensors"))?;
    let record: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(
        fixtures.join("xor_torch_outputs.json"),
    )?)?;
    let inputs: Vec<[f32; 2]> = serde_json::from_value(record["inputs"].clone())?;
    let torch: Vec<f32> = serde_json::from_value(record["outputs"].clone())?;
    let outputs = |net: &Xor| -> Vec<f32> {
        inputs
            .iter()
            .map(|x| net.forward(&SVector::from(*x))[0])
            .collect()
    };
    let loaded = outputs(&net);
    let diff = loaded
        .iter()
        .zip(&torch)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max);
    println!("loaded xor_torch.safetensors (trained by PyTorch)");
    println!(
        "max abs diff from PyTorch's outputs on {} inputs: {diff:.1e}",
        inputs.len()
    );

    // 2. Fine-tune here: soft targets 0.1 / 0.9.
    let xs = SMatrix::<f32, 2, 4>::from_fn(|r, c| inputs[c][r]);
    let ys = SMatrix::<f32, 1, 4>::from_row_slice(&[0.1, 0.9, 0.9, 0.1]);
    let mut opt = Adam::new(0.01);
    let first = net.train_step(&xs, &ys, &Mse, &mut opt);
    for _ in 1..200 {
        net.train_step(&xs, &ys, &Mse, &mut opt);
    }
    let last = Mse.value(&net.forward_batch(&xs), &ys);
    println!("fine-tuned 200 Adam steps towards 0.1 / 0.9: loss {first:.5} -> {last:.2e}");

    // 3. Save for PyTorch, with our outputs beside the file for the check.
    let out = root.join("target");
    std::fs::create_dir_all(&out)?;
    let path = out.join("xor_finetuned.safetensors");
    net.save_safetensors(&path)?;
    let tuned = outputs(&net);
    let json = serde_json::json!({
        "what": "outputs of target/xor_finetuned.safetensors computed by examples/torch_roundtrip.rs",
        "inputs": inputs,
        "outputs": tuned,
    });
    std::fs::write(
        out.join("xor_finetuned.outputs.json"),
        serde_json::to_string_pretty(&json)? + "\n",
    )?;

    println!("\n      x1      x2 |  PyTorch's | loaded here | fine-tuned here");
    for ((x, t), (l, f)) in inputs.iter().zip(&torch).zip(loaded.iter().zip(&tuned)) {
        println!(
            "{:>8} {:>7} | {t:>10.6} | {l:>11.6} | {f:>15.6}",
            x[0], x[1]
        );
    }
    // Shown relative to the working directory when inside it, as the command to copy.
    let shown = std::env::current_dir()
        .ok()
        .and_then(|cwd| path.strip_prefix(cwd).ok().map(Path::to_path_buf))
        .unwrap_or_else(|| path.clone());
    println!("\nsaved {}", shown.display());
    println!(
        "check it in PyTorch: python3 scripts/torch_weights.py --check {}",
        shown.display()
    );
    Ok(())
}
