#!/usr/bin/env python3
"""Weights files for `#[weights("..")]` (weights compiled into the binary) and torch's outputs.

What it does
    Writes, for tests/compiled_weights.rs, one safetensors file per network, by
    safetensors.torch.save_file(model.state_dict(), path), and torch's outputs on a few inputs:
        tests/fixtures/compiled/mlp.safetensors       Linear(4, 8), PReLU, Linear(8, 3), float32
        tests/fixtures/compiled/named.safetensors     enc: Linear(3, 6), Tanh,
            Residual(Linear(6, 6), ReLU), head: Linear(6, 2), float32: tensors enc.weight,
            enc.bias, 2.0.weight, 2.0.bias, head.weight, head.bias
        tests/fixtures/compiled/conv_bn.safetensors   Unflatten(1, 6, 6), Conv2d(1, 3, 3),
            BatchNorm2d(3), ReLU, Flatten, Linear(48, 2), float32, after 3 training-mode forward
            passes (so the running statistics are not the defaults and 2.num_batches_tracked,
            an I64 of shape [], is 3); outputs in eval mode
        tests/fixtures/compiled/wide64.safetensors    Linear(3, 4), LayerNorm(4), Tanh,
            Linear(4, 2), float64
        tests/fixtures/compiled/gru.safetensors       GRU(2, 4, num_layers = 2), Linear(4, 1),
            float32 (tensors 0.weight_ih_l0 .. 0.bias_hh_l1, 1.weight, 1.bias); outputs over a
            5-step sequence from a zero state
        tests/fixtures/compiled/outputs.json          every network's inputs and outputs
    and, for the UI cases of tests/ui/weights-*.rs (their compile errors):
        tests/ui/weights/xor.safetensors              Linear(2, 8), ReLU, Linear(8, 1), float32
        tests/ui/weights/corrupt.safetensors          bytes that are not a safetensors file
    Every model's parameters come from torch.manual_seed, so a rerun rewrites the same bytes.

How to run (from any directory; needs torch, CPU only, and the safetensors Python package)
    python3 scripts/torch_compiled_weights.py
"""

import json
from collections import OrderedDict
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = ROOT / "tests" / "fixtures" / "compiled"
UI_DIR = ROOT / "tests" / "ui" / "weights"


class Residual(nn.Sequential):
    """network!'s `Residual(layers...)`: `x + layers(x)`, its layers named 2.0, 2.1, ..."""

    def forward(self, x):
        return x + super().forward(x)


class Gru(nn.Module):
    """GRU(2, 4, num_layers=2) then Linear(4, 1), named 0.* and 1.* as network! names them."""

    def __init__(self):
        super().__init__()
        self.add_module("0", nn.GRU(2, 4, num_layers=2))
        self.add_module("1", nn.Linear(4, 1))

    def forward(self, xs):
        hidden, _ = getattr(self, "0")(xs)
        return getattr(self, "1")(hidden)


def seeded_inputs(seed, count, features, dtype=torch.float32):
    """`count` inputs of `features` values, reproducible."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(count, features, generator=generator, dtype=dtype)


def save(model, stem):
    """The model's state_dict as `stem`.safetensors (contiguous copies, as torch saves)."""
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(OUT_DIR / f"{stem}.safetensors"))


def mlp():
    torch.manual_seed(10)
    model = nn.Sequential(nn.Linear(4, 8), nn.PReLU(), nn.Linear(8, 3))
    with torch.no_grad():
        model[1].weight.fill_(0.2)
    return model, seeded_inputs(11, 5, 4)


def named():
    torch.manual_seed(20)
    model = nn.Sequential(OrderedDict([
        ("enc", nn.Linear(3, 6)),
        ("1", nn.Tanh()),
        ("2", Residual(nn.Linear(6, 6), nn.ReLU())),
        ("head", nn.Linear(6, 2)),
    ]))
    return model, seeded_inputs(21, 5, 3)


def conv_bn():
    torch.manual_seed(30)
    model = nn.Sequential(
        nn.Unflatten(1, (1, 6, 6)), nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3), nn.ReLU(),
        nn.Flatten(), nn.Linear(48, 2))
    model.train()
    with torch.no_grad():
        for step in range(3):
            model(seeded_inputs(31 + step, 8, 36) * 2.0 + 0.5)
    model.eval()
    return model, seeded_inputs(35, 4, 36)


def wide64():
    torch.manual_seed(40)
    model = nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4), nn.Tanh(), nn.Linear(4, 2)).double()
    with torch.no_grad():
        model[1].weight.uniform_(0.5, 1.5)
        model[1].bias.uniform_(-0.5, 0.5)
    return model, seeded_inputs(41, 5, 3, torch.float64)


def gru():
    torch.manual_seed(50)
    return Gru(), seeded_inputs(51, 5, 2)


def outputs(model, inputs, sequence=False):
    with torch.no_grad():
        if sequence:
            # One sequence of len(inputs) steps, batch 1: torch's (L, N, H_in) layout.
            return model(inputs.unsqueeze(1)).squeeze(1)
        return model(inputs)


def main():
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    UI_DIR.mkdir(parents=True, exist_ok=True)
    record = {"torch": torch.__version__.split("+")[0]}
    for stem, make, sequence in [
        ("mlp", mlp, False), ("named", named, False), ("conv_bn", conv_bn, False),
        ("wide64", wide64, False), ("gru", gru, True),
    ]:
        model, inputs = make()
        save(model, stem)
        record[stem] = {
            "inputs": inputs.tolist(),
            "outputs": outputs(model, inputs, sequence).tolist(),
        }
    (OUT_DIR / "outputs.json").write_text(json.dumps(record, indent=1) + "\n")

    torch.manual_seed(60)
    xor = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 1))
    save_file({k: v.contiguous() for k, v in xor.state_dict().items()},
              str(UI_DIR / "xor.safetensors"))
    (UI_DIR / "corrupt.safetensors").write_bytes(b"this is not a safetensors file\n")


if __name__ == "__main__":
    main()
