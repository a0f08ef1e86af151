#!/usr/bin/env python3
"""Writes PyTorch reference results for whole networks, for end-to-end parity tests.

What it writes
    tests/fixtures/network/<arch>.json, one file per entry of ARCHS below. Each holds an
    `nn.Sequential` network's weights, a batch of inputs and targets, torch's outputs, loss and
    gradients, and for each optimizer configuration the losses of five training steps and the
    weights after them. It also holds, for every loss kind of LOSSES (not only the one the
    network trains with), targets for it, the loss and the gradient of every parameter. A Rust
    test (tests/torch_parity.rs) declares the same layers with `network!`, loads the weights,
    and compares everything.

How to run
    python3 scripts/make_network_fixtures.py      (from any directory; needs torch, CPU only)

    Made with torch 2.15.0; each file records the version that wrote it. The output is
    deterministic: every value comes from a torch.Generator seeded from the arch's name (the
    targets of the `losses` map from one seeded from the arch's and the loss's names).
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
        Hinge         torch.clamp(1 - out * t, min=0).mean(), targets +-1; every margin
                      1 - out * t is kept at least 1e-4 away from 0, where clamp's gradient
                      would be a convention (asserted)
      These are the definitions documented in nn-runtime/src/loss.rs. Cross-entropy on a
      network with one output is identically 0 (one class always has probability 1), so its
      value and gradients there are a smoke test only; the networks with several outputs are
      the ones that check it.
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
    losses         every loss kind, by our loss name ("Mse", "CrossEntropy", "BceWithLogits",
                   "Hinge") -> {"torch": the torch expression, "ys": targets for that loss (a
                   list of samples), "loss": its value on `outputs`, "grads": state_dict name
                   -> gradient of that loss at `weights`}. The entry of the network's own loss
                   (loss_fn.name) reuses `ys`, so it repeats `loss` and `grads`; the others
                   draw their targets from a generator seeded from "<arch>/<loss name>".
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


# Our loss name -> the targets appropriate to it, for the `losses` map.
TARGETS = {
    "Mse": targets_mse,
    "CrossEntropy": targets_probabilities,
    "BceWithLogits": targets_soft_binary,
    "Hinge": targets_sign,
}
assert TARGETS.keys() == LOSSES.keys()


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
    # Several outputs in f32, so that cross-entropy (identically 0 on one output) is checked on
    # three networks, and MSE's mean over every element (not only over the batch) in training.
    "tanh_leaky_relu_mse": (
        ["Linear(3, 6)", "Tanh", "Linear(6, 5)", "LeakyReLU(0.05)", "Linear(5, 4)"],
        "Mse",
        targets_mse,
        torch.float32,
        1.0,
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


def check_targets(what, loss_name, outputs, ys):
    """Asserts that `ys` suit `loss_name` and, for the hinge, that no margin is near 0."""
    if loss_name == "CrossEntropy":
        sums = ys.sum(dim=1)
        assert (ys >= 0).all() and torch.allclose(sums, torch.ones_like(sums)), what
    elif loss_name == "BceWithLogits":
        assert ((ys >= 0) & (ys <= 1)).all(), what
    elif loss_name == "Hinge":
        assert ((ys == 1) | (ys == -1)).all(), what
        # clamp's gradient at exactly zero margin is a convention; keep the fixture off it.
        margins = 1 - outputs.detach() * ys
        assert (margins.abs() > 1e-4).all(), f"{what}: a margin is too close to 0"


def loss_entry(name, net, xs, outputs, loss_name, ys):
    """The `losses` entry of one loss kind: its targets, value and parameter gradients."""
    loss_fn, loss_torch = LOSSES[loss_name]
    check_targets(f"{name}/{loss_name}", loss_name, outputs, ys)
    net.zero_grad()
    loss = loss_fn(net(xs), ys)
    loss.backward()
    entry = {
        "torch": loss_torch,
        "ys": tolist(ys),
        "loss": loss.item(),
        "grads": {n: tolist(p.grad) for n, p in net.named_parameters()},
    }
    net.zero_grad()
    return entry


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
    check_targets(name, loss_name, outputs, ys)
    if loss_name == "Hinge":
        margins = 1 - outputs.detach() * ys
        assert (margins < 0).any() and (margins > 0).any(), f"{name}: one side of the clamp unused"
    grads = {n: tolist(p.grad) for n, p in net.named_parameters()}

    trains = {
        config: train(net, loss_fn, xs, ys, optimizer, args)
        for config, (optimizer, args, _dtype) in CONFIGS.items()
        if not config.endswith("_f64")
    }

    losses = {}
    for kind, make in TARGETS.items():
        if kind == loss_name:
            kind_ys = ys
        else:
            kind_gen = torch.Generator().manual_seed(zlib.crc32(f"{name}/{kind}".encode()))
            kind_ys = make(kind_gen, (BATCH, n_out), dtype)
        losses[kind] = loss_entry(name, net, xs, outputs, kind, kind_ys)
    own = losses[loss_name]
    assert own["loss"] == loss.item() and own["grads"] == grads, f"{name}: own loss differs"

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
        "losses": losses,
    }


def main():
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    for name, arch in ARCHS.items():
        path = OUT_DIR / f"{name}.json"
        path.write_text(dumps(run(name, *arch)) + "\n")
        print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
