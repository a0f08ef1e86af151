#!/usr/bin/env python3
"""Writes PyTorch reference trajectories for nn-runtime's optimizers.

What it writes
    tests/fixtures/optim/<config>.json, one file per entry of CONFIGS below. Each holds a few
    parameter tensors, the gradients fed to a `torch.optim` optimizer over STEPS steps and the
    parameters after each step. `tests/optim_parity.rs` replays the gradients
    through our optimizer and compares every parameter after every step.

How to run
    python3 scripts/make_optim_fixtures.py        (from any directory; needs torch, CPU only)

    Made with torch 2.15.0; each file records the version that wrote it. The output is
    deterministic: every value comes from a torch.Generator seeded from the config's name.

Semantics
    Optimizers run with foreach=False (torch's single-tensor loop; CPU's default anyway),
    maximize=False and amsgrad=False. The gradient fed at each step depends on the current
    parameters, `2 * (p - target) + 0.1 * noise`, with `target` fixed per tensor and `noise`
    drawn fresh at each step, so the trajectory is that of a noisy quadratic.

JSON layout (one object)
    name           the config name (the file stem)
    torch_version  torch.__version__ of the run
    dtype          "float32" or "float64": the dtype of every tensor
    optimizer      "SGD" | "Adam" | "AdamW" | "RMSprop" (the torch.optim class)
    args           the keyword arguments given to that class, besides params and foreach=False;
                   `lr` is always given, other hyperparameters only where they differ from
                   torch's defaults (so the replay also checks our defaults). `betas` is a list.
    param_group    torch's resolved hyperparameters (opt.param_groups[0]), for reference
    shapes         the shape of each parameter tensor
    layout         how tensors are flattened (see below)
    initial        parameters before the first step, one flat list per tensor
    steps          STEPS objects {"grads": [...], "params": [...]}: the gradient fed at that
                   step and the parameters after it, one flat list per tensor

    Tensors are flattened row-major (torch's `reshape(-1)`). nalgebra stores matrices
    column-major, but every optimizer rule is elementwise, so the Rust side treats the lists as
    flat slices and never reshapes them. Values are the exact float32/float64 values, written
    as the shortest decimal that round-trips through a double.
"""

import json
import zlib
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = ROOT / "tests" / "fixtures" / "optim"
STEPS = 5
SHAPES = [[3, 2], [3], [1, 3], [1]]

# name -> (torch.optim class name, keyword arguments, dtype)
CONFIGS = {
    "sgd_plain": ("SGD", {"lr": 0.1}, torch.float32),
    "sgd_momentum": ("SGD", {"lr": 0.05, "momentum": 0.9}, torch.float32),
    "sgd_momentum_nesterov_wd": (
        "SGD",
        {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 1e-2},
        torch.float32,
    ),
    "sgd_momentum_dampening": (
        "SGD",
        {"lr": 0.05, "momentum": 0.9, "dampening": 0.1},
        torch.float32,
    ),
    "adam_default": ("Adam", {"lr": 1e-3}, torch.float32),
    "adam_betas_eps_wd": (
        "Adam",
        {"lr": 1e-2, "betas": (0.8, 0.95), "eps": 1e-6, "weight_decay": 1e-2},
        torch.float32,
    ),
    "adamw_default": ("AdamW", {"lr": 1e-3}, torch.float32),
    "adamw_decay": ("AdamW", {"lr": 1e-2, "weight_decay": 0.1}, torch.float32),
    "rmsprop_default": ("RMSprop", {"lr": 1e-2}, torch.float32),
    "rmsprop_centered": ("RMSprop", {"lr": 1e-2, "centered": True}, torch.float32),
    "rmsprop_momentum_centered_wd": (
        "RMSprop",
        {"lr": 1e-2, "alpha": 0.9, "momentum": 0.5, "centered": True, "weight_decay": 1e-2},
        torch.float32,
    ),
    # The f64 path: same rules, tolerance 1e-10.
    "sgd_momentum_nesterov_wd_f64": (
        "SGD",
        {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 1e-2},
        torch.float64,
    ),
    "adam_betas_eps_wd_f64": (
        "Adam",
        {"lr": 1e-2, "betas": (0.8, 0.95), "eps": 1e-6, "weight_decay": 1e-2},
        torch.float64,
    ),
    "adamw_decay_f64": ("AdamW", {"lr": 1e-2, "weight_decay": 0.1}, torch.float64),
    "rmsprop_momentum_centered_wd_f64": (
        "RMSprop",
        {"lr": 1e-2, "alpha": 0.9, "momentum": 0.5, "centered": True, "weight_decay": 1e-2},
        torch.float64,
    ),
}


def dumps(value, indent=""):
    """JSON with one line per list of numbers, so fixtures stay readable and diff well."""
    inner = indent + " "
    if isinstance(value, dict):
        items = [f"{inner}{json.dumps(k)}: {dumps(v, inner)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + indent + "}"
    if isinstance(value, list) and any(isinstance(v, (list, dict)) for v in value):
        items = [inner + dumps(v, inner) for v in value]
        return "[\n" + ",\n".join(items) + "\n" + indent + "]"
    return json.dumps(value)


def flat(t):
    """A tensor as a flat row-major list of Python floats (exact for float32 and float64)."""
    return t.detach().reshape(-1).tolist()


def jsonable(value):
    """Hyperparameters as JSON values (tuples become lists, tensors numbers)."""
    if isinstance(value, (tuple, list)):
        return [jsonable(v) for v in value]
    if isinstance(value, torch.Tensor):
        return value.item()
    return value


def run(name, optimizer, args, dtype):
    gen = torch.Generator().manual_seed(zlib.crc32(name.encode()))
    params = [torch.randn(s, generator=gen, dtype=dtype).requires_grad_() for s in SHAPES]
    targets = [torch.randn(s, generator=gen, dtype=dtype) for s in SHAPES]
    opt = getattr(torch.optim, optimizer)(params, foreach=False, **args)
    initial = [flat(p) for p in params]
    steps = []
    for _ in range(STEPS):
        grads = []
        with torch.no_grad():
            for p, target in zip(params, targets):
                noise = torch.randn(p.shape, generator=gen, dtype=dtype)
                p.grad = 2 * (p - target) + 0.1 * noise
                grads.append(flat(p.grad))
        opt.step()
        steps.append({"grads": grads, "params": [flat(p) for p in params]})
    group = {k: jsonable(v) for k, v in opt.param_groups[0].items() if k != "params"}
    return {
        "name": name,
        "torch_version": torch.__version__,
        "dtype": str(dtype).removeprefix("torch."),
        "optimizer": optimizer,
        "args": {k: jsonable(v) for k, v in args.items()},
        "param_group": group,
        "shapes": SHAPES,
        "layout": "row-major flattening of each torch tensor (reshape(-1)); rules are elementwise",
        "initial": initial,
        "steps": steps,
    }


def main():
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    for name, (optimizer, args, dtype) in CONFIGS.items():
        path = OUT_DIR / f"{name}.json"
        path.write_text(dumps(run(name, optimizer, args, dtype)) + "\n")
        print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
