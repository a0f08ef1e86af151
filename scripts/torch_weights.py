#!/usr/bin/env python3
"""Moves the seed XOR network's weights between PyTorch and this project, by safetensors files.

What it does
    Without arguments: trains the seed network in PyTorch, exactly as examples/xor.rs trains it
    here (nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 1)), nn.MSELoss(),
    torch.optim.Adam(lr=0.01), 1000 full-batch epochs on the 4 XOR inputs, torch.manual_seed(0)),
    and writes
        tests/fixtures/weights/xor_torch.safetensors    its state_dict, by
            safetensors.torch.save_file(model.state_dict(), path): tensors 0.weight [8, 2],
            0.bias [8], 2.weight [1, 8], 2.bias [1], float32, row-major
        tests/fixtures/weights/xor_torch_outputs.json   the trained network's outputs on the 4
            XOR inputs and a few others (tests/weights.rs loads the file into an `Xor` and
            compares its outputs with these, to 1e-6)
    and, to pin the names of nested and residual parts, an untrained float64 network
        nn.Sequential(nn.Sequential(nn.Linear(3, 4), nn.Tanh()),
                      Residual(nn.Linear(4, 4), nn.ReLU()), nn.Linear(4, 2))
    (`network! { struct Big: f64 { Enc, Residual(Linear(4, 4), ReLU), Linear(4, 2) } }` with
    `Enc` = `Linear(3, 4), Tanh`; `Residual` below is an nn.Sequential whose forward adds its
    input, so its layers are named 1.0, 1.1, ... as network! names them) in
        tests/fixtures/weights/big_torch.safetensors     tensors 0.0.weight, 0.0.bias,
            1.0.weight, 1.0.bias, 2.weight, 2.bias, float64
        tests/fixtures/weights/big_torch_outputs.json    its outputs on a few inputs (compared
            in tests/weights.rs to 1e-12)

    and, to pin the names of submodules that a real model names (`self.encoder`, `self.head`),
    a float32 model `Named` with submodules encoder = nn.Sequential(nn.Linear(3, 6), nn.Tanh(),
    nn.Linear(6, 4)), act = nn.ReLU(), head = nn.Linear(4, 2), trained 20 Adam steps on seeded
    random data (`network! { struct Named { encoder: NamedEncoder, act: ReLU, head: Linear(4, 2) } }`
    with `NamedEncoder` = `Linear(3, 6), Tanh, Linear(6, 4)`), in
        tests/fixtures/weights/named_torch.safetensors   tensors encoder.0.weight, encoder.0.bias,
            encoder.2.weight, encoder.2.bias, head.weight, head.bias, float32
        tests/fixtures/weights/rnn_torch.safetensors     a 3-layer LSTM and a Linear head by
            attribute name (rnn.weight_ih_l0 ... rnn.bias_hh_l2, head.weight, head.bias);
        tests/fixtures/weights/rnn_torch_outputs.json    its outputs over a 12-step sequence;
        tests/fixtures/weights/named_torch_outputs.json  its outputs on a few inputs (compared
            in tests/weights.rs to 1e-6)

    and, for a convolutional network, a float32
        nn.Sequential(nn.Unflatten(1, (1, 8, 8)), nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(),
                      nn.MaxPool2d(2), nn.Conv2d(4, 8, 3, padding=1), nn.ReLU(),
                      nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10))
    trained 10 Adam(lr=0.01) steps with cross-entropy on seeded random 8x8 images and labels
    (`network! { struct ConvTorch { Unflatten(1, 8, 8), Conv2d(1, 4, 3, padding = 1), ReLU,
    MaxPool2d(2), Conv2d(4, 8, 3, padding = 1), ReLU, AdaptiveAvgPool2d(1), Flatten,
    Linear(8, 10) } }`), in
        tests/fixtures/weights/conv_torch.safetensors    tensors 1.weight [4, 1, 3, 3], 1.bias,
            4.weight [8, 4, 3, 3], 4.bias, 8.weight [10, 8], 8.bias, float32
        tests/fixtures/weights/conv_torch_outputs.json   its logits on a few images (each one
            list of 64 pixels, row-major; compared in tests/named_weights.rs to 1e-5)

    With --check PATH: loads PATH, a safetensors file written by this project (for example by
    `cargo run --release --example torch_roundtrip`, which writes target/xor_finetuned.safetensors),
    into the same nn.Sequential with load_state_dict(strict=True), so any missing, extra or
    misshapen tensor is an error, and prints its outputs on the same inputs. If the outputs
    our side computed are beside the file (PATH with `.outputs.json` for `.safetensors`, as the
    example writes them) or given by --expected JSON, it prints them too, side by side, with
    the largest absolute difference, and exits non-zero if that exceeds 1e-6.

How to run (from any directory; needs torch, CPU only, and the safetensors Python package)
    python3 scripts/torch_weights.py                   # rewrite the fixtures
    python3 scripts/torch_weights.py --check target/xor_finetuned.safetensors

    Made with torch 2.15.0 and safetensors 0.8.0 (Python); the fixture records the torch version.
    tests/fixtures/weights/roundtrip_check.txt is the recorded output of the --check run.
"""

import argparse
import json
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = ROOT / "tests" / "fixtures" / "weights"
WEIGHTS = OUT_DIR / "xor_torch.safetensors"
OUTPUTS = OUT_DIR / "xor_torch_outputs.json"
TOLERANCE = 1e-6

XOR_INPUTS = [[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]
XOR_TARGETS = [[0.0], [1.0], [1.0], [0.0]]
# Inputs off the training set, so that every unit's weights matter in the comparison.
OTHER_INPUTS = [[0.5, 0.5], [0.25, 0.75], [-1.0, 2.0], [2.0, -1.0], [3.0, 3.0], [-0.5, -0.25]]
INPUTS = XOR_INPUTS + OTHER_INPUTS


class Residual(nn.Sequential):
    """network!'s `Residual(layers...)`: `x + layers(x)`. Being an nn.Sequential, its layers are
    named by their index inside it (`1.0.weight` for the first layer of a block at index 1)."""

    def forward(self, x):
        return x + super().forward(x)


def big_network():
    """`Big` of tests/weights.rs: a nested network, a residual block and a layer, in float64."""
    return nn.Sequential(
        nn.Sequential(nn.Linear(3, 4), nn.Tanh()),
        Residual(nn.Linear(4, 4), nn.ReLU()),
        nn.Linear(4, 2),
    ).double()


BIG_INPUTS = [[0.5, -1.0, 2.0], [0.0, 0.0, 0.0], [-1.5, 0.25, 1.0], [3.0, 2.0, -2.0]]


def export(stem, model, inputs, dtype, what):
    """Writes `stem`_torch.safetensors (the model's state_dict) and `stem`_torch_outputs.json
    (its tensor names, and its outputs on `inputs`)."""
    save_file(model.state_dict(), str(OUT_DIR / f"{stem}_torch.safetensors"))
    with torch.no_grad():
        outputs = model(torch.tensor(inputs, dtype=dtype)).tolist()
    record = {
        "torch_version": torch.__version__,
        "what": what,
        "names": list(model.state_dict().keys()),
        "inputs": inputs,
        "outputs": outputs,
    }
    (OUT_DIR / f"{stem}_torch_outputs.json").write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {stem}_torch.safetensors and {stem}_torch_outputs.json ({', '.join(record['names'])})")


def export_big():
    torch.manual_seed(1)
    what = ("nn.Sequential(nn.Sequential(Linear(3, 4), Tanh), Residual(Linear(4, 4), ReLU), "
            "Linear(4, 2)), float64, torch.manual_seed(1) default init")
    export("big", big_network(), BIG_INPUTS, torch.float64, what)


class Named(nn.Module):
    """`Named` of tests/weights.rs: submodules by attribute name, as real models are written."""

    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(3, 6), nn.Tanh(), nn.Linear(6, 4))
        self.act = nn.ReLU()
        self.head = nn.Linear(4, 2)

    def forward(self, x):
        return self.head(self.act(self.encoder(x)))


NAMED_INPUTS = [[0.5, -1.0, 2.0], [0.0, 0.0, 0.0], [-1.5, 0.25, 1.0], [3.0, 2.0, -2.0], [1.0, 1.0, 1.0]]


def export_named():
    torch.manual_seed(2)
    model = Named()
    xs, ys = torch.randn(16, 3), torch.randn(16, 2)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(20):
        opt.zero_grad()
        nn.functional.mse_loss(model(xs), ys).backward()
        opt.step()
    what = ("Named: encoder = Sequential(Linear(3, 6), Tanh, Linear(6, 4)), act = ReLU, "
            "head = Linear(4, 2); 20 Adam(lr=0.01) steps on randn data, torch.manual_seed(2)")
    export("named", model, NAMED_INPUTS, torch.float32, what)


class Rnn(nn.Module):
    """`RnnHead` of tests/named_weights.rs: a 3-layer LSTM and a head, by attribute name, as an
    audio or control model is written; forward over a (L, N, 2) sequence."""

    def __init__(self):
        super().__init__()
        self.rnn = nn.LSTM(2, 6, num_layers=3)
        self.head = nn.Linear(6, 1)

    def forward(self, x):
        return self.head(self.rnn(x)[0])


def export_rnn():
    """rnn_torch.safetensors (rnn.weight_ih_l0 ... rnn.bias_hh_l2, head.weight, head.bias) and
    rnn_torch_outputs.json: the outputs over a sequence of 12 steps of one stream, from the
    zero state."""
    torch.manual_seed(3)
    model = Rnn()
    xs, ys = torch.randn(10, 4, 2), torch.randn(10, 4, 1)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(20):
        opt.zero_grad()
        nn.functional.mse_loss(model(xs), ys).backward()
        opt.step()
    inputs = torch.randn(12, 1, 2)
    save_file(model.state_dict(), str(OUT_DIR / "rnn_torch.safetensors"))
    with torch.no_grad():
        outputs = model(inputs)[:, 0, :].tolist()
    record = {
        "torch_version": torch.__version__,
        "what": "Rnn: rnn = LSTM(2, 6, num_layers=3), head = Linear(6, 1); 20 Adam(lr=0.01) "
        "steps on randn (10, 4, 2) sequences, torch.manual_seed(3); outputs over 12 steps of one "
        "stream from the zero state",
        "names": list(model.state_dict().keys()),
        "inputs": inputs[:, 0, :].tolist(),
        "outputs": outputs,
    }
    (OUT_DIR / "rnn_torch_outputs.json").write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote rnn_torch.safetensors and rnn_torch_outputs.json ({', '.join(record['names'])})")


def conv_network():
    """`ConvTorch` of tests/named_weights.rs: a small convolutional network on 8x8 images, each
    sample a row of 64 pixels (row-major) that Unflatten makes a (1, 8, 8) map."""
    return nn.Sequential(
        nn.Unflatten(1, (1, 8, 8)),
        nn.Conv2d(1, 4, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(4, 8, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 10),
    )


def export_conv():
    """conv_torch.safetensors and conv_torch_outputs.json: the conv network after 10 Adam steps
    on random data, and its logits on 6 other random images (pixels uniform in [0, 1))."""
    torch.manual_seed(4)
    model = conv_network()
    xs, labels = torch.rand(32, 64), torch.randint(0, 10, (32,))
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(10):
        opt.zero_grad()
        nn.functional.cross_entropy(model(xs), labels).backward()
        opt.step()
    inputs = torch.rand(6, 64).tolist()
    what = ("nn.Sequential(Unflatten(1, (1, 8, 8)), Conv2d(1, 4, 3, padding=1), ReLU, MaxPool2d(2), "
            "Conv2d(4, 8, 3, padding=1), ReLU, AdaptiveAvgPool2d(1), Flatten, Linear(8, 10)), float32; "
            "10 Adam(lr=0.01) steps of cross_entropy on rand (32, 64) images and randint labels, "
            "torch.manual_seed(4); inputs: each image's 64 pixels, row-major")
    export("conv", model, inputs, torch.float32, what)


def xor_network():
    """The seed network, as examples/xor.rs declares it with `network!`."""
    return nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 1))


def outputs_of(model):
    with torch.no_grad():
        return [row[0] for row in model(torch.tensor(INPUTS, dtype=torch.float32)).tolist()]


def train_and_export():
    torch.manual_seed(0)
    model = xor_network()
    xs = torch.tensor(XOR_INPUTS)
    ys = torch.tensor(XOR_TARGETS)
    loss_fn = nn.MSELoss()
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(1000):
        opt.zero_grad()
        loss = loss_fn(model(xs), ys)
        loss.backward()
        opt.step()
    with torch.no_grad():
        final_loss = loss_fn(model(xs), ys).item()

    OUT_DIR.mkdir(parents=True, exist_ok=True)
    save_file(model.state_dict(), str(WEIGHTS))
    record = {
        "torch_version": torch.__version__,
        "what": "nn.Sequential(Linear(2, 8), ReLU, Linear(8, 1)) trained on XOR: MSELoss, "
        "Adam(lr=0.01), 1000 full-batch epochs, torch.manual_seed(0)",
        "final_loss": final_loss,
        "inputs": INPUTS,
        "outputs": outputs_of(model),
    }
    OUTPUTS.write_text(json.dumps(record, indent=1) + "\n")
    print(f"final loss {final_loss:.6g}")
    print(f"wrote {WEIGHTS.relative_to(ROOT)} and {OUTPUTS.relative_to(ROOT)}")
    export_big()
    export_named()
    export_rnn()
    export_conv()


def check(path, expected_path):
    state = load_file(str(path))
    model = xor_network()
    model.load_state_dict(state, strict=True)
    print(f"torch {torch.__version__} loaded {path} with load_state_dict(strict=True):")
    for name, tensor in state.items():
        print(f"  {name:<9} {str(tensor.dtype):<14} {list(tensor.shape)}")
    ours = None
    if expected_path is None:
        sibling = Path(str(path).removesuffix(".safetensors") + ".outputs.json")
        expected_path = sibling if sibling.exists() else None
    if expected_path is not None:
        record = json.loads(Path(expected_path).read_text())
        if record["inputs"] != INPUTS:
            sys.exit(f"{expected_path}: its inputs are not this script's inputs")
        ours = record["outputs"]
    theirs = outputs_of(model)

    print()
    if ours is None:
        print("      x1      x2 | PyTorch")
        for x, t in zip(INPUTS, theirs):
            print(f"{x[0]:>8} {x[1]:>7} | {t:>12.8f}")
        return
    print(f"outputs on the same inputs (ours from {expected_path}):")
    print("      x1      x2 |         ours |      PyTorch |  abs diff")
    worst = 0.0
    for x, o, t in zip(INPUTS, ours, theirs):
        worst = max(worst, abs(o - t))
        print(f"{x[0]:>8} {x[1]:>7} | {o:>12.8f} | {t:>12.8f} | {abs(o - t):.1e}")
    verdict = "match" if worst <= TOLERANCE else "DIFFER"
    print(f"\nmax abs diff {worst:.3e}: outputs {verdict} (tolerance {TOLERANCE:g})")
    if worst > TOLERANCE:
        sys.exit(1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", metavar="PATH", help="load a safetensors file we wrote")
    parser.add_argument("--expected", metavar="JSON", help="our outputs, to print beside torch's")
    args = parser.parse_args()
    if args.check:
        check(args.check, args.expected)
    else:
        train_and_export()


if __name__ == "__main__":
    main()
