#!/usr/bin/env python3
"""Writes PyTorch reference results for layer normalisation: nn.LayerNorm over the last axis of
each sample, in whole networks.

What it writes
    tests/fixtures/norm/<config>_<f32|f64>.json, one file per entry of CONFIGS below and dtype,
    in the format of tests/fixtures/conv (scripts/torch_conv.py, whose machinery this script
    reuses: the forward pass with its margins, the training run, the tolerance probe, the JSON
    writer). Each holds one `nn.Sequential` network (the layers as `network!` spells them, and as
    torch does), its parameters, a batch of BATCH inputs and targets, and what torch computed:
    the outputs, the loss nn.MSELoss(), the gradient of every parameter, then TRAIN_STEPS steps
    of Adam(lr=0.01) on the same batch (each step's loss, before its update, and the parameters
    after the last). tests/norm_torch.rs declares the same networks with `network!` (a row of
    its table per file), loads the parameters by name and compares all of it.

How to run
    python3 scripts/torch_norm.py      (from any directory; needs torch, CPU only)

    Made with torch 2.15.0; each file records the version that wrote it. Deterministic, as
    torch_conv.py: every value from a torch.Generator seeded from the CRC-32 of the
    configuration's name (or "<name>/<attempt>"), one CPU thread, floats written by Python's
    repr; values drawn once in float64, the float32 file holding them rounded to float32.

Layers
    `LayerNorm(n, eps = e, elementwise_affine = a, bias = b)` is torch's
    nn.LayerNorm(n, eps=e, elementwise_affine=a, bias=b) (defaults 1e-5, True, True): an int
    normalized_shape, so it normalises the last axis, of n features. A sample is a column of
    flat features, channel first and row-major when shaped (`Unflatten(c, h, w)` is
    nn.Unflatten(1, (c, h, w)), `Flatten` nn.Flatten()), so the last axis is contiguous: after
    Unflatten(2, 3, 4), LayerNorm(4) normalises each of the 6 runs of 4 consecutive features on
    its own; on flat features LayerNorm(n) normalises the whole sample. Its state_dict holds
    "{i}.weight" [n] (with elementwise_affine) and "{i}.bias" [n] (with elementwise_affine and
    bias), i the layer's position.

Values
    Linear parameters uniform in +-1/sqrt(in_features), torch's default bound, drawn from the
    seeded generator in state_dict order. A LayerNorm's weight is drawn uniform in [0.5, 1.5) and
    its bias in +-0.5, not torch's initial 1 and 0, so that a weight or bias applied to the
    wrong feature, or not at all, changes the results. Inputs standard normal, targets standard
    normal times 0.5.

Margins and Adam
    As torch_conv.py: every ReLU input in every forward pass the fixture holds (both dtypes and
    the exact float64 run at the float32 values) is at least MARGIN = 1e-4 from 0, and every
    gradient entry fed to Adam, at every step, is at least GRAD_FLOOR = 1e-6 in magnitude; the
    generator is reseeded from "<name>/<attempt>" until both hold. (A LayerNorm's input gradient
    sums to zero over each normalised group, so a Linear before it has bias gradients that sum to
    zero over the group, entries of both signs: the floor keeps each away from zero.) The probe
    (torch's float32 results against the exact ones at the same inputs) is printed and asserted
    below half the float32 tolerance of tests/norm_torch.rs in every category.

JSON layout
    As tests/fixtures/conv (see torch_conv.py): name, torch_version, command, dtype, layers,
    torch, shapes, in_features, out_features, batch, seed, margins ({"relu", "maxpool_gap",
    "maxpool_zero_windows"}, null where the network has no such layer), layout, loss_fn, names,
    param_shapes, params, xs, ys, outputs, loss, grads, train. A network here may start with a
    Linear rather than Unflatten; xs[b] is sample b's flat features either way.
"""

import math
import zlib
from pathlib import Path

import torch
from torch import nn

import torch_conv as conv
from make_optim_fixtures import dumps

ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = ROOT / "tests" / "fixtures" / "norm"
COMMAND = "python3 scripts/torch_norm.py"
BATCH = conv.BATCH
LAYOUT = (
    "xs, ys, outputs: lists of samples, each the sample's flat features, xs[b][c*H*W + h*W + w] "
    "= torch x[b, c, h, w] after an Unflatten (one column per sample on the Rust side); "
    "parameters nested as their torch shape"
)

# name -> [(layer as network! spells it, the torch module)].
CONFIGS = {
    # Flat features, torch's defaults, a smooth activation after: 4 -> 6 -> 6 -> 6 -> 2.
    "layernorm": [
        ("Linear(4, 6)", "nn.Linear(4, 6)"),
        ("LayerNorm(6)", "nn.LayerNorm(6)"),
        ("Tanh", "nn.Tanh()"),
        ("Linear(6, 2)", "nn.Linear(6, 2)"),
    ],
    # No affine parameters, another eps, ReLU after (inputs kept off 0): 4 -> 6 -> 6 -> 6 -> 2.
    "layernorm_plain": [
        ("Linear(4, 6)", "nn.Linear(4, 6)"),
        (
            "LayerNorm(6, eps = 0.001, elementwise_affine = false)",
            "nn.LayerNorm(6, eps=0.001, elementwise_affine=False)",
        ),
        ("ReLU", "nn.ReLU()"),
        ("Linear(6, 2)", "nn.Linear(6, 2)"),
    ],
    # The last axis of shaped samples, six groups of four: 24 -> 2x3x4 -> 2x3x4 -> 24 -> 2.
    "layernorm_shaped": [
        ("Unflatten(2, 3, 4)", "nn.Unflatten(1, (2, 3, 4))"),
        ("LayerNorm(4)", "nn.LayerNorm(4)"),
        ("Flatten", "nn.Flatten()"),
        ("Linear(24, 2)", "nn.Linear(24, 2)"),
    ],
    # A weight without a bias, straight into a Linear: 3 -> 8 -> 8 -> 1.
    "layernorm_no_bias": [
        ("Linear(3, 8)", "nn.Linear(3, 8)"),
        ("LayerNorm(8, bias = false)", "nn.LayerNorm(8, bias=False)"),
        ("Linear(8, 1)", "nn.Linear(8, 1)"),
    ],
}


def in_features(layers):
    """A sample's flat features: the first Linear's in_features, or what the Unflatten reads."""
    first = conv.build_modules(layers)[0]
    if isinstance(first, nn.Unflatten):
        assert first.dim == 1
        return math.prod(first.unflattened_size)
    assert isinstance(first, nn.Linear), "networks start with Linear or Unflatten"
    return first.in_features


def shapes_after(layers):
    """The shape of a sample after each layer, from a probe batch of one, each LayerNorm's
    normalized_shape checked against the last axis it reads."""
    net = nn.Sequential(*conv.build_modules(layers)).to(torch.float64)
    features = in_features(layers)
    h = torch.zeros((1, features), dtype=torch.float64)
    shapes = []
    for position, module in enumerate(net):
        if isinstance(module, nn.Linear):
            assert h.shape[1:] == (module.in_features,), f"layer {position}: {layers[position]}"
        if isinstance(module, nn.LayerNorm):
            assert len(module.normalized_shape) == 1, "an int normalized_shape"
            assert h.shape[-1] == module.normalized_shape[0], f"layer {position}: last axis"
        h = module(h)
        shapes.append(list(h.shape[1:]))
    return features, shapes


def draw(name, layers):
    """Every value of a configuration, in float64: parameters (state_dict order), xs, ys."""
    gen = torch.Generator().manual_seed(zlib.crc32(name.encode()))
    net = nn.Sequential(*conv.build_modules(layers)).to(torch.float64)
    uniform = lambda shape, lo, hi: (  # noqa: E731
        lo + (hi - lo) * torch.rand(shape, generator=gen, dtype=torch.float64)
    )
    params = {}
    for key, value in net.state_dict().items():
        module = net[int(key.split(".")[0])]
        if isinstance(module, nn.LayerNorm):
            lo, hi = (0.5, 1.5) if key.endswith(".weight") else (-0.5, 0.5)
        else:
            assert isinstance(module, nn.Linear), key
            bound = 1.0 / math.sqrt(module.in_features)
            lo, hi = -bound, bound
        params[key] = uniform(value.shape, lo, hi)
    features, shapes = shapes_after(layers)
    xs = torch.randn((BATCH, features), generator=gen, dtype=torch.float64)
    ys = 0.5 * torch.randn((BATCH, math.prod(shapes[-1])), generator=gen, dtype=torch.float64)
    return params, xs, ys



def main():
    torch.set_num_threads(1)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    for name, layers in CONFIGS.items():
        features, shapes = shapes_after(layers)
        for attempt in range(conv.ATTEMPTS):
            seed_name = name if attempt == 0 else f"{name}/{attempt}"
            params, xs, ys = draw(seed_name, layers)
            results = {
                dtype: conv.run(layers, params, xs, ys, dtype) for dtype in conv.DTYPES
            }
            # The exact results at the float32 inputs: the float32 draws, computed in float64.
            rounded = lambda t: t.to(torch.float32).to(torch.float64)  # noqa: E731
            exact, exact_margins = conv.run(
                layers,
                {key: rounded(value) for key, value in params.items()},
                rounded(xs),
                rounded(ys),
                torch.float64,
            )
            all_margins = [m for _, m in results.values()] + [exact_margins]
            records = [r for r, _ in results.values()] + [exact]
            smallest = min(r["train"]["smallest_grad"] for r in records)
            if all(m.ok() for m in all_margins) and smallest >= conv.GRAD_FLOOR:
                break
            worst = min(m.relu for m in all_margins)
            print(
                f"  {name}: seed {seed_name!r} rejected: nearest ReLU kink {worst:.2e} (at "
                f"least {conv.MARGIN:.0e} needed), smallest |gradient| fed to Adam "
                f"{smallest:.2e} (at least {conv.GRAD_FLOOR:.0e} needed)"
            )
        else:
            raise SystemExit(f"{name}: no seed of {conv.ATTEMPTS} keeps the margins")
        used = conv.probe(name, results[torch.float32][0], exact)
        assert used < 0.5, f"{name}: torch's own float32 results use {used:.2f} of the tolerance"
        net = conv.build(layers, params, torch.float64)
        for dtype, suffix in conv.DTYPES.items():
            record, margins = results[dtype]
            print(
                f"  {name} {suffix}: margins {margins.record()}, smallest |gradient| fed to "
                f"Adam {record['train']['smallest_grad']:.2e}"
            )
            file = {
                "name": f"{name}_{suffix}",
                "torch_version": torch.__version__,
                "command": COMMAND,
                "dtype": str(dtype).removeprefix("torch."),
                "layers": [ours for ours, _ in layers],
                "torch": [expr for _, expr in layers],
                "shapes": shapes,
                "in_features": features,
                "out_features": math.prod(shapes[-1]),
                "batch": BATCH,
                "seed": seed_name,
                "margins": margins.record(),
                "layout": LAYOUT,
                "loss_fn": {"name": "Mse", "torch": "nn.MSELoss()"},
                "names": list(params),
                "param_shapes": {key: list(p.shape) for key, p in net.state_dict().items()},
                "params": conv.tensors({key: value.to(dtype) for key, value in params.items()}),
                "xs": xs.to(dtype).tolist(),
                "ys": ys.to(dtype).tolist(),
                **record,
            }
            path = OUT_DIR / f"{name}_{suffix}.json"
            path.write_text(dumps(file) + "\n")
            print(f"wrote {path.relative_to(ROOT)} ({path.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
