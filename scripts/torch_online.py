#!/usr/bin/env python3
"""Writes PyTorch references for the online-learning kit: learning-rate schedules and clipping.

What it writes
    tests/fixtures/online/schedulers.json   every torch.optim.lr_scheduler case in SCHEDULES:
                                            the learning rate at epochs 0..STEPS
    tests/fixtures/online/clip_f32.json     a small model's gradients before and after
    tests/fixtures/online/clip_f64.json     clip_grad_norm_ / clip_grad_value_, in each dtype

    `tests/online_torch.rs` replays both.

How to run
    python3 scripts/torch_online.py        (from any directory; needs torch, CPU only)

    Made with torch 2.15.0; each file records the version that wrote it. The output is
    deterministic (a seeded torch.Generator, fixed formulas); rerunning rewrites the committed
    files bit for bit.

Schedules (schedulers.json: {"torch_version", "steps", "cases": [...]})
    Each case: name, class (the torch class name), base_lr, args (keyword arguments besides
    the optimizer, only those given), metrics (ReduceLROnPlateau only: the value passed to each
    step) and lrs: STEPS + 1 floats, optimizer.param_groups[0]["lr"] after construction and
    after each scheduler.step(), as Python floats (the optimizer is SGD on one float64 scalar,
    stepped before each scheduler step as torch asks). lr_bits, metric_bits and base_lr_bits
    repeat those doubles as their IEEE-754 bits ("0x..." hex strings), for a bit-exact
    comparison that does not depend on a JSON reader's decimal conversion.

Clipping (clip_<dtype>.json)
    The model is `nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 2))` (declared in the
    test as `Linear(3, 5), Tanh, Linear(5, 2)`), its weights drawn by the generator, scaled up
    so the gradients are large; the loss is nn.MSELoss() on a batch of 4.
        names     the state_dict names, in order
        weights   {name: nested list in torch's shape}
        xs, ys    the batch, one sample per row
        grads     {name: gradient}, after loss.backward(), before any clipping
        cases     list of {kind: "norm" | "value", max_norm, norm_type (2.0 or "inf") |
                  clip_value, total_norm (norm cases: what clip_grad_norm_ returned),
                  grads: {name: gradient after clipping}}; each case clips a fresh copy of
                  `grads`. Norm cases clip at half and at twice the norm (below and above).
    Values are exact float32/float64 values, written as the shortest decimal that round-trips
    through a double.
"""

import json
import math
import struct
from pathlib import Path

import torch
from torch import nn
from torch.optim import lr_scheduler

ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = ROOT / "tests" / "fixtures" / "online"
STEPS = 50


def plateau_metrics():
    """A loss that falls, stalls, wobbles within the threshold and falls again: several
    reductions, bad epochs during cooldown, and improvements that are too small to count."""
    metrics = []
    for i in range(STEPS):
        if i < 8:
            metrics.append(1.0 / (1 + i))
        elif i < 20:
            metrics.append(0.125 + 1e-6 * (i % 3))
        elif i < 26:
            metrics.append(0.1 - 0.01 * (i - 20))
        else:
            metrics.append(0.05 + 0.004 * ((i * 7) % 5))
    return metrics


def accuracies():
    """An accuracy (higher is better) that rises, then stalls: for mode='max'."""
    return [min(0.9, 0.5 + 0.03 * i) - 0.002 * (i % 4) for i in range(STEPS)]


# (name, class, base_lr, args, metrics or None)
SCHEDULES = [
    ("step_default_gamma", "StepLR", 0.1, {"step_size": 7}, None),
    ("step_gamma", "StepLR", 0.3, {"step_size": 3, "gamma": 0.5}, None),
    ("multistep", "MultiStepLR", 0.1, {"milestones": [10, 25, 25, 40]}, None),
    ("multistep_zero_gamma", "MultiStepLR", 0.05, {"milestones": [30, 0, 5], "gamma": 0.7}, None),
    ("exponential", "ExponentialLR", 0.1, {"gamma": 0.9}, None),
    ("exponential_slow", "ExponentialLR", 0.3, {"gamma": 0.99}, None),
    ("cosine_full", "CosineAnnealingLR", 0.1, {"T_max": 50}, None),
    ("cosine_past_t_max", "CosineAnnealingLR", 0.1, {"T_max": 10, "eta_min": 0.001}, None),
    ("cosine_t_max_1", "CosineAnnealingLR", 0.2, {"T_max": 1, "eta_min": 0.01}, None),
    ("cosine_t_max_3", "CosineAnnealingLR", 0.05, {"T_max": 3}, None),
    ("linear_default", "LinearLR", 0.1, {}, None),
    ("linear_warmup", "LinearLR", 0.01, {"start_factor": 0.25, "total_iters": 10}, None),
    ("linear_decay", "LinearLR", 0.2, {"start_factor": 1.0, "end_factor": 0.1, "total_iters": 20}, None),
    (
        "plateau_min_rel",
        "ReduceLROnPlateau",
        0.1,
        {"factor": 0.5, "patience": 3, "cooldown": 2},
        plateau_metrics(),
    ),
    (
        "plateau_min_abs",
        "ReduceLROnPlateau",
        0.1,
        {"patience": 2, "threshold": 0.01, "threshold_mode": "abs", "min_lr": 0.0005},
        plateau_metrics(),
    ),
    (
        "plateau_max_rel",
        "ReduceLROnPlateau",
        0.05,
        {"mode": "max", "factor": 0.3, "patience": 1, "threshold": 0.05, "cooldown": 1},
        accuracies(),
    ),
    (
        "plateau_max_abs_eps",
        "ReduceLROnPlateau",
        0.05,
        {"mode": "max", "patience": 0, "threshold": 0.001, "threshold_mode": "abs",
         "min_lr": 0.0049, "eps": 1e-4},
        accuracies(),
    ),
    ("plateau_default", "ReduceLROnPlateau", 0.1, {}, plateau_metrics()),
]


def schedule(name, cls, base_lr, args, metrics):
    """The learning rate at epochs 0..STEPS of one schedule."""
    param = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.SGD([param], lr=base_lr)
    scheduler = getattr(lr_scheduler, cls)(opt, **args)
    lrs = [opt.param_groups[0]["lr"]]
    for epoch in range(STEPS):
        opt.step()
        if metrics is None:
            scheduler.step()
        else:
            scheduler.step(metrics[epoch])
        lrs.append(opt.param_groups[0]["lr"])
    case = {"name": name, "class": cls, "base_lr": base_lr, "args": args}
    if metrics is not None:
        case["metrics"] = metrics
    case["lrs"] = [float(lr) for lr in lrs]
    # The exact bits too: a JSON reader may round a decimal to a neighbouring double.
    case["lr_bits"] = [bits(lr) for lr in lrs]
    if metrics is not None:
        case["metric_bits"] = [bits(m) for m in metrics]
    case["base_lr_bits"] = bits(base_lr)
    return case


def bits(x):
    """The IEEE-754 bits of the double `x`, as a hex string."""
    return "0x%016x" % struct.unpack("<Q", struct.pack("<d", float(x)))[0]


def tolist(tensor):
    """Exact values as Python floats (a float32 widens exactly)."""
    return tensor.detach().to(torch.float64).tolist()


def clip_fixture(dtype):
    """Gradients of a small model before and after each clipping case."""
    gen = torch.Generator().manual_seed(20261130)
    model = nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 2)).to(dtype)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float64).to(dtype) * 2.0)
    xs = (torch.randn(4, 3, generator=gen, dtype=torch.float64) * 3.0).to(dtype)
    ys = (torch.randn(4, 2, generator=gen, dtype=torch.float64) * 5.0).to(dtype)
    loss = nn.MSELoss()(model(xs), ys)
    loss.backward()
    names = [name for name, _ in model.named_parameters()]
    grads = {name: p.grad.clone() for name, p in model.named_parameters()}
    l2 = float(nn.utils.get_total_norm(list(grads.values()), 2.0))
    largest = float(nn.utils.get_total_norm(list(grads.values()), math.inf))

    cases = []
    norm_cases = [(l2 * 0.5, 2.0), (l2 * 2.0, 2.0), (largest * 0.5, math.inf), (largest * 2.0, math.inf)]
    for max_norm, norm_type in norm_cases:
        for name, p in model.named_parameters():
            p.grad.copy_(grads[name])
        total = nn.utils.clip_grad_norm_(model.parameters(), max_norm, norm_type=norm_type)
        cases.append({
            "kind": "norm",
            "max_norm": max_norm,
            "norm_type": "inf" if math.isinf(norm_type) else norm_type,
            "total_norm": float(total),
            "grads": {name: tolist(p.grad) for name, p in model.named_parameters()},
        })
    for clip_value in [largest * 0.3, largest * 2.0]:
        for name, p in model.named_parameters():
            p.grad.copy_(grads[name])
        nn.utils.clip_grad_value_(model.parameters(), clip_value)
        cases.append({
            "kind": "value",
            "clip_value": clip_value,
            "grads": {name: tolist(p.grad) for name, p in model.named_parameters()},
        })
    return {
        "torch_version": torch.__version__,
        "dtype": str(dtype).removeprefix("torch."),
        "model": "Linear(3, 5), Tanh, Linear(5, 2); MSELoss",
        "names": names,
        "weights": {name: tolist(p) for name, p in model.named_parameters()},
        "xs": tolist(xs),
        "ys": tolist(ys),
        "loss": float(loss.detach()),
        "grads": {name: tolist(g) for name, g in grads.items()},
        "cases": cases,
    }


def write(name, value):
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    path = OUT_DIR / f"{name}.json"
    path.write_text(json.dumps(value, indent=1) + "\n")
    print(f"wrote {path.relative_to(ROOT)}")


def main():
    torch.use_deterministic_algorithms(True)
    write("schedulers", {
        "torch_version": torch.__version__,
        "steps": STEPS,
        "cases": [schedule(*case) for case in SCHEDULES],
    })
    write("clip_f32", clip_fixture(torch.float32))
    write("clip_f64", clip_fixture(torch.float64))


if __name__ == "__main__":
    main()
