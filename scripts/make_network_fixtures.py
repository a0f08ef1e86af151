#!/usr/bin/env python3
"""Writes PyTorch reference results for whole networks, for end-to-end parity tests.

What it writes
    tests/fixtures/network/<arch>.json, one file per entry of ARCHS below. Each holds an
    `nn.Sequential` network's weights, a batch of inputs and targets, torch's outputs, loss and
    gradients, and for each optimizer configuration the losses of five training steps and the
    weights after them. A Rust test can declare the same layers with `network!`, load the
    weights, and compare everything.

How to run
    python3 scripts/make_network_fixtures.py      (from any directory; needs torch, CPU only)

    Made with torch 2.15.0; each file records the version that wrote it. The output is
    deterministic: every value comes from a torch.Generator seeded from the arch's name.
    The optimizer configurations are those of scripts/make_optim_fixtures.py (imported from
    it), without the `_f64` duplicates: each runs at the network's own dtype.

Conventions
    - Weights are initialised as nn.Linear does by default (weight and bias uniform in
      +-1/sqrt(fan_in)), but drawn from the seeded generator.
    - One batch of B = 5 samples; `xs`, `ys` and `outputs` are lists of samples (B lists of
      IN, OUT, OUT numbers). On the Rust side one sample is one column of an `IN x B` matrix.
    - Losses are the batch mean, as torch's reduction='mean':
        Mse           nn.MSELoss()
        CrossEntropy  nn.CrossEntropyLoss() on logits, with class-probability targets of the
                      output's shape (each target row sums to 1)
        BceWithLogits nn.BCEWithLogitsLoss() with soft targets in [0, 1]
        Hinge         torch.clamp(1 - out * t, min=0).mean(), targets +-1
    - Training uses the whole batch at every step, as `train_step(&xs, &ys, &loss, &mut opt)`:
      opt.zero_grad(); loss = loss_fn(net(xs), ys); loss.backward(); opt.step(). The recorded
      loss of a step is the one computed before its update.
    - Optimizers run with foreach=False (torch's single-tensor loop), maximize=False and
      amsgrad=False.

JSON layout (one object)
    name, torch_version, dtype ("float32" | "float64")
    layers         the layer list as `network!` spells it, e.g. ["Linear(2, 8)", "ReLU", ...]
    loss_fn        {"name": our loss type, "torch": the torch expression}
    batch          B
    weights        state_dict name -> value: "0.weight" as nested row-major lists [out][in]
                   (torch's layout, and our SMatrix<T, OUT, IN> indexed (row, col)),
                   "0.bias" as a list [out]
    xs, ys         inputs and targets, lists of samples
    outputs        net(xs), a list of samples
    loss           loss_fn(outputs, ys)
    grads          state_dict name -> gradient of `loss`, same layout as `weights`
    train          config name -> {"optimizer", "args" (as in the optim fixtures),
                   "losses": [5 losses, before each update], "state_dict": weights after}
"""

import copy
import zlib
from pathlib import Path

import torch
from torch import nn

from make_optim_fixtures import CONFIGS, dumps

ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = ROOT / "tests" / "fixtures" / "network"
BATCH = 5
TRAIN_STEPS = 5


def hinge(out, t):
    return torch.clamp(1 - out * t, min=0).mean()


# Our loss name -> (the torch loss, the expression it documents)
LOSSES = {
    "Mse": (nn.MSELoss(), "nn.MSELoss()"),
    "CrossEntropy": (nn.CrossEntropyLoss(), "nn.CrossEntropyLoss() with probability targets"),
    "BceWithLogits": (nn.BCEWithLogitsLoss(), "nn.BCEWithLogitsLoss()"),
    "Hinge": (hinge, "torch.clamp(1 - out * t, min=0).mean()"),
}


def targets_mse(gen, shape, dtype):
    return torch.randn(shape, generator=gen, dtype=dtype)


def targets_probabilities(gen, shape, dtype):
    # Soft class probabilities: each sample's row sums to 1.
    return torch.softmax(2 * torch.randn(shape, generator=gen, dtype=dtype), dim=1)


def targets_soft_binary(gen, shape, dtype):
    return torch.rand(shape, generator=gen, dtype=dtype)


def targets_sign(gen, shape, dtype):
    z = torch.randn(shape, generator=gen, dtype=dtype)
    return torch.where(z >= 0, 1.0, -1.0).to(dtype)


# arch name -> (layers as network! spells them, loss, target maker, dtype, input scale)
ARCHS = {
    "relu_mse": (["Linear(2, 8)", "ReLU", "Linear(8, 1)"], "Mse", targets_mse, torch.float32, 1.0),
    "tanh_sigmoid_cross_entropy": (
        ["Linear(4, 6)", "Tanh", "Linear(6, 5)", "Sigmoid", "Linear(5, 3)"],
        "CrossEntropy",
        targets_probabilities,
        torch.float32,
        1.0,
    ),
    "leaky_relu_bce_f64": (
        ["Linear(3, 5)", "LeakyReLU(0.1)", "Linear(5, 2)"],
        "BceWithLogits",
        targets_soft_binary,
        torch.float64,
        1.0,
    ),
    # Inputs scaled up so that one sample already sits past the margin (1 - out * t < 0) and
    # gets no gradient, exercising both sides of the clamp from the first step.
    "relu_hinge": (
        ["Linear(3, 4)", "ReLU", "Linear(4, 1)"],
        "Hinge",
        targets_sign,
        torch.float32,
        12.0,
    ),
}


def module(layer, gen, dtype):
    """The torch module for one layer as `network!` spells it, Linear weights from `gen`."""
    name, _, args = layer.partition("(")
    args = [float(a) for a in args.rstrip(")").split(",")] if args else []
    if name == "Linear":
        fan_in, fan_out = int(args[0]), int(args[1])
        linear = nn.Linear(fan_in, fan_out, dtype=dtype)
        bound = 1.0 / fan_in**0.5
        with torch.no_grad():
            # Row-major weight first, then bias, as nn.Linear's default init but seeded.
            for param in (linear.weight, linear.bias):
                param.copy_((torch.rand(param.shape, generator=gen, dtype=dtype) * 2 - 1) * bound)
        return linear
    if name == "LeakyReLU":
        return nn.LeakyReLU(args[0])
    return {"ReLU": nn.ReLU, "Tanh": nn.Tanh, "Sigmoid": nn.Sigmoid}[name]()


def tolist(t):
    return t.detach().tolist()


def state_dict(net):
    return {name: tolist(value) for name, value in net.state_dict().items()}


def train(net, loss_fn, xs, ys, optimizer, args):
    net = copy.deepcopy(net)
    opt = getattr(torch.optim, optimizer)(net.parameters(), foreach=False, **args)
    losses = []
    for _ in range(TRAIN_STEPS):
        opt.zero_grad()
        loss = loss_fn(net(xs), ys)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return {
        "optimizer": optimizer,
        "args": {k: list(v) if isinstance(v, tuple) else v for k, v in args.items()},
        "losses": losses,
        "state_dict": state_dict(net),
    }


def run(name, layers, loss_name, make_targets, dtype, input_scale):
    gen = torch.Generator().manual_seed(zlib.crc32(name.encode()))
    net = nn.Sequential(*[module(layer, gen, dtype) for layer in layers])
    n_in = net[0].in_features
    n_out = [m for m in net if isinstance(m, nn.Linear)][-1].out_features
    xs = input_scale * torch.randn((BATCH, n_in), generator=gen, dtype=dtype)
    ys = make_targets(gen, (BATCH, n_out), dtype)
    loss_fn, loss_torch = LOSSES[loss_name]

    net.zero_grad()
    outputs = net(xs)
    loss = loss_fn(outputs, ys)
    loss.backward()
    if loss_name == "Hinge":
        # clamp's gradient at exactly zero margin is a convention; keep the fixture off it.
        margins = 1 - outputs.detach() * ys
        assert (margins.abs() > 1e-4).all(), f"{name}: a margin is too close to 0"
        assert (margins < 0).any() and (margins > 0).any(), f"{name}: one side of the clamp unused"
    grads = {n: tolist(p.grad) for n, p in net.named_parameters()}

    trains = {
        config: train(net, loss_fn, xs, ys, optimizer, args)
        for config, (optimizer, args, _dtype) in CONFIGS.items()
        if not config.endswith("_f64")
    }
    return {
        "name": name,
        "torch_version": torch.__version__,
        "dtype": str(dtype).removeprefix("torch."),
        "layers": layers,
        "loss_fn": {"name": loss_name, "torch": loss_torch},
        "batch": BATCH,
        "weights": state_dict(net),
        "xs": tolist(xs),
        "ys": tolist(ys),
        "outputs": tolist(outputs),
        "loss": loss.item(),
        "grads": grads,
        "train": trains,
    }


def main():
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    for name, arch in ARCHS.items():
        path = OUT_DIR / f"{name}.json"
        path.write_text(dumps(run(name, *arch)) + "\n")
        print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
