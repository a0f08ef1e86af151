#!/usr/bin/env python3
"""Writes PyTorch reference results for networks with batch normalisation (`BatchNorm1d` on
flat features and after `Unflatten(c, l)`, `BatchNorm2d` after a `Conv2d`), in training and in
inference mode.

What it writes
    tests/fixtures/norm/bn_<config>_<f32|f64>.json, one file per entry of CONFIGS below and
    dtype. Each holds one `nn.Sequential` network (the layers as `network!` spells them, and as
    torch does), its whole state (parameters, running statistics, num_batches_tracked), a batch
    of BATCH inputs and targets, and what torch computed:

    - in TRAINING mode (`model.train()`: each BatchNorm normalises by the batch's mean and biased
      variance over samples and positions), on a deep copy of the model so that this pass does
      not move the running statistics the training below starts from: the outputs, the loss
      nn.MSELoss() and the gradient of every parameter;
    - in INFERENCE mode (`model.eval()`: the running statistics), the outputs at the initial
      state;
    - TRAIN_STEPS steps of Adam(lr=0.01) on the same batch in training mode, each step's loss
      (before its update); then the whole state after the last step (parameters, running_mean,
      running_var with torch's momentum and the UNBIASED variance, num_batches_tracked + 5) and
      the inference-mode outputs of the batch with that state.

    tests/norm_bn_torch.rs declares the same networks with `network!` (a row of its table per
    file), loads the state by name and compares all of it: training mode through `gradients`
    and `train_step` (the loss passed to them also sees the training-mode outputs), inference
    mode through `forward_batch`.

How to run
    python3 scripts/torch_norm_bn.py      (from any directory; needs torch, CPU only)

    Each file records the torch version that wrote it. The output is deterministic and rewrites
    the fixtures bit for bit (run it twice and `cmp`): every value comes from a torch.Generator
    seeded from the CRC-32 of the configuration's name (or "<name>/<attempt>", see Margins),
    torch runs on one CPU thread, floats are written by Python's repr. Values are drawn once per
    configuration in float64; the float32 file holds the same values rounded to float32. Torch's
    own random init is never used.

Values
    Linear and Conv2d parameters uniform in +-1/sqrt(fan_in) (torch's default bound). Every
    BatchNorm's state is moved off torch's initial (weight 1, bias 0, running_mean 0,
    running_var 1, num_batches_tracked 0), so that a swapped or ignored tensor shows:
    weight uniform in [0.5, 1.5], bias in [-0.5, 0.5], running_mean in [-0.5, 0.5],
    running_var in [0.5, 2], num_batches_tracked INITIAL_COUNT. Inputs standard normal, targets
    0.5 x standard normal.

The bias in front of a BatchNorm (the pinned parameters)
    A Linear's or Conv2d's bias that feeds a BatchNorm directly adds the same constant to every
    sample of its channel, which the training-mode normalisation subtracts again: its gradient
    is exactly 0, and what a float computation returns is rounding noise (about 1e-9 in float32
    here). Adam divides a gradient by its own size (`m / (sqrt(v) + eps)`), so such a bias
    moves by up to about lr per step in a direction rounding decides, in float32 as in any
    other implementation; in float64 by about lr * 1e-16 / eps = 1e-10, still near the
    tolerance. Nothing in training mode depends on it, but the running mean does (the batch
    mean includes it) and so do the inference outputs. The fixture therefore records such
    parameters ("pinned") with their values after every step ("train.trajectory"); the test
    checks each step's move is at most a few lr and then sets the parameter to torch's value
    before the next step, so everything downstream compares at the full tolerance. The
    gradients the fixture records for them are torch's noise, at most "zero_grad_noise" in
    magnitude (asserted below 1e-7 in float32, 1e-14 in float64: the test's absolute floors
    are 1e-6 and 1e-12).

Margins
    ReLU's derivative jumps at 0: every ReLU input, in every pass (the recorded training pass,
    the TRAIN_STEPS steps, and both inference passes) and in both dtypes and the exact run
    below, is at least MARGIN from 0; every gradient fed to Adam, at every step, except the
    pinned parameters', is at least GRAD_FLOOR in magnitude (see tests/conv_torch.rs for why
    Adam needs that). A draw that fails is replaced by the next attempt's seed.

Tolerance probe
    As scripts/torch_conv.py: torch's float32 results are compared with the exact results
    (float64 at the same float32 inputs, its pinned parameters pinned to the float32 run's
    trajectory, as the test pins ours) as a fraction of the test's float32 tolerance
    1e-5 |x| + 1e-6, printed per category, and asserted below 0.5.

Layout of a file (besides the self-describing header fields)
    names          the floating state_dict entries in order (parameters and running stats)
    param_names    the learnable ones (those with gradients), in order
    count_names    the integer ones (num_batches_tracked)
    param_shapes   name -> torch shape, for every floating entry
    state          name -> value, every floating entry (nested as its torch shape)
    counts         name -> int
    pinned         the parameters pinned as above; zero_grad_noise the largest |torch grad| of them
    xs, ys         lists of samples, each the sample's flat features (channel first, row-major)
    train_outputs  the training-mode outputs; loss, grads: their loss and gradients
    eval_outputs   the inference-mode outputs at the initial state
    train          {"optimizer": "Adam", "args": {"lr": 0.01}, "steps", "losses", "state" and
                   "counts" after the last step, "eval_outputs" with them, "trajectory": pinned
                   name -> [its value after each step], "smallest_grad"}
"""

import copy
import math
import zlib
from pathlib import Path

import torch
from torch import nn

from make_optim_fixtures import dumps

ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = ROOT / "tests" / "fixtures" / "norm"
COMMAND = "python3 scripts/torch_norm_bn.py"
BATCH = 6
TRAIN_STEPS = 5
LR = 0.01
MARGIN = 1e-4
GRAD_FLOOR = 1e-6
INITIAL_COUNT = 7
ATTEMPTS = 200
DTYPES = {torch.float32: "f32", torch.float64: "f64"}
NOISE_LIMIT = {torch.float32: 1e-7, torch.float64: 1e-14}
LAYOUT = (
    "xs, ys, outputs: lists of samples, each the sample's flat features, xs[b][c*H*W + h*W + w] "
    "= torch x[b, c, h, w] (one column per sample on the Rust side); tensors nested as their "
    "torch shape"
)

CONFIGS = {
    # BatchNorm1d on flat features between two Linear layers, ReLU after it: 4 -> 6 -> 2.
    "linear": [
        ("Linear(4, 6)", "nn.Linear(4, 6)"),
        ("BatchNorm1d(6)", "nn.BatchNorm1d(6)"),
        ("ReLU", "nn.ReLU()"),
        ("Linear(6, 2)", "nn.Linear(6, 2)"),
    ],
    # BatchNorm1d over (C, L) = (2, 5): statistics per channel over samples and positions,
    # without affine parameters, with another momentum: 10 -> 2x5 -> 10 -> 3.
    "unflatten": [
        ("Unflatten(2, 5)", "nn.Unflatten(1, (2, 5))"),
        (
            "BatchNorm1d(2, momentum = 0.3, affine = false)",
            "nn.BatchNorm1d(2, momentum=0.3, affine=False)",
        ),
        ("Flatten", "nn.Flatten()"),
        ("Linear(10, 3)", "nn.Linear(10, 3)"),
    ],
    # BatchNorm2d after a convolution, another eps: 1x6x6 -> 3x4x4 -> 3x1x1 -> 3 -> 2.
    "conv2d": [
        ("Unflatten(1, 6, 6)", "nn.Unflatten(1, (1, 6, 6))"),
        ("Conv2d(1, 3, 3)", "nn.Conv2d(1, 3, 3)"),
        ("BatchNorm2d(3, eps = 0.001)", "nn.BatchNorm2d(3, eps=0.001)"),
        ("Tanh", "nn.Tanh()"),
        ("AdaptiveAvgPool2d(1)", "nn.AdaptiveAvgPool2d(1)"),
        ("Flatten", "nn.Flatten()"),
        ("Linear(3, 2)", "nn.Linear(3, 2)"),
    ],
}

BNS = (nn.BatchNorm1d, nn.BatchNorm2d)


def build_modules(layers):
    return [eval(expr, {"nn": nn}) for _, expr in layers]  # literal module expressions


def shapes_after(layers):
    """Input features and the shape of a sample after each layer (a probe batch in eval mode)."""
    net = nn.Sequential(*build_modules(layers)).to(torch.float64).eval()
    first = net[0]
    features = (
        math.prod(first.unflattened_size) if isinstance(first, nn.Unflatten) else first.in_features
    )
    h = torch.zeros((2, features), dtype=torch.float64)
    shapes = []
    for position, module in enumerate(net):
        if isinstance(module, nn.Linear):
            assert h.shape[1:] == (module.in_features,), f"layer {position}: {layers[position]}"
        h = module(h)
        shapes.append(list(h.shape[1:]))
    return features, shapes


def pinned_names(net):
    """The biases that feed a BatchNorm directly: their training-mode gradient is exactly 0."""
    names = []
    for position in range(len(net) - 1):
        module, following = net[position], net[position + 1]
        if isinstance(following, BNS) and getattr(module, "bias", None) is not None:
            names.append(f"{position}.bias")
    return names


def draw(name, layers):
    """The floating state (state_dict order), the counts, xs, ys; floats in float64."""
    gen = torch.Generator().manual_seed(zlib.crc32(name.encode()))
    net = nn.Sequential(*build_modules(layers)).to(torch.float64)
    uniform = lambda shape, lo, hi: lo + (hi - lo) * torch.rand(  # noqa: E731
        shape, generator=gen, dtype=torch.float64
    )
    state, counts = {}, {}
    for key, value in net.state_dict().items():
        position, field = key.split(".")
        module = net[int(position)]
        if isinstance(module, BNS):
            if field == "num_batches_tracked":
                counts[key] = INITIAL_COUNT
                continue
            lo, hi = {
                "weight": (0.5, 1.5),
                "bias": (-0.5, 0.5),
                "running_mean": (-0.5, 0.5),
                "running_var": (0.5, 2.0),
            }[field]
            state[key] = uniform(value.shape, lo, hi)
            continue
        if isinstance(module, nn.Conv2d):
            fan_in = module.in_channels // module.groups * math.prod(module.kernel_size)
        else:
            assert isinstance(module, nn.Linear), key
            fan_in = module.in_features
        bound = 1.0 / math.sqrt(fan_in)
        state[key] = uniform(value.shape, -bound, bound)
    features, shapes = shapes_after(layers)
    xs = torch.randn((BATCH, features), generator=gen, dtype=torch.float64)
    ys = 0.5 * torch.randn((BATCH, math.prod(shapes[-1])), generator=gen, dtype=torch.float64)
    return state, counts, xs, ys


def build(layers, state, counts, dtype):
    net = nn.Sequential(*build_modules(layers)).to(dtype)
    with torch.no_grad():
        for key, p in net.state_dict().items():
            if key in counts:
                p.fill_(counts[key])
            else:
                p.copy_(state[key].to(dtype))
    return net


class Margins:
    """The closest any ReLU input came to 0."""

    def __init__(self):
        self.relu = math.inf
        self.has_relu = False

    def record(self):
        return {"relu": self.relu if self.has_relu else None}

    def ok(self):
        return self.relu >= MARGIN


def forward(net, x, margins):
    """net(x), layer by layer, recording the margin of every ReLU input."""
    h = x
    for module in net:
        if isinstance(module, nn.ReLU):
            margins.has_relu = True
            margins.relu = min(margins.relu, h.detach().abs().min().item())
        h = module(h)
    return h


def tensors(named):
    return {key: value.detach().tolist() for key, value in named.items()}


def split_state(net):
    """The floating state_dict entries and the integer ones."""
    state, counts = {}, {}
    for key, value in net.state_dict().items():
        if value.dtype == torch.int64:
            counts[key] = int(value.item())
        else:
            state[key] = value.detach().tolist()
    return state, counts


def run(layers, state, counts, xs, ys, dtype, pin=None):
    """torch's results in one dtype (the float64 draws rounded to it), and the margins. `pin`:
    name -> values after each step, to which those parameters are set after each step."""
    net = build(layers, state, counts, dtype)
    pinned = pinned_names(net)
    xs, ys = xs.to(dtype), ys.to(dtype)
    mse = nn.MSELoss()
    margins = Margins()

    # Training mode, on a copy: its forward pass updates the copy's running statistics.
    probe = copy.deepcopy(net).train()
    probe.zero_grad()
    outputs = forward(probe, xs, margins)
    loss = mse(outputs, ys)
    loss.backward()
    grads = {key: p.grad for key, p in probe.named_parameters()}
    noise = max([grads[key].abs().max().item() for key in pinned], default=0.0)
    assert noise < NOISE_LIMIT[dtype], f"gradient of a bias before a BatchNorm: {noise:e}"
    record = {
        "train_outputs": outputs.detach().tolist(),
        "loss": loss.item(),
        "grads": tensors(grads),
    }
    net.eval()
    with torch.no_grad():
        record["eval_outputs"] = forward(net, xs, margins).tolist()
    assert split_state(net) == split_state(build(layers, state, counts, dtype)), "state moved"

    net.train()
    opt = torch.optim.Adam(net.parameters(), lr=LR, foreach=False)
    losses = []
    smallest = math.inf
    trajectory = {key: [] for key in pinned}
    params = dict(net.named_parameters())
    for step in range(TRAIN_STEPS):
        opt.zero_grad()
        loss = mse(forward(net, xs, margins), ys)
        loss.backward()
        smallest = min(
            [smallest]
            + [p.grad.abs().min().item() for key, p in params.items() if key not in pinned]
        )
        opt.step()
        losses.append(loss.item())
        with torch.no_grad():
            for key in pinned:
                if pin is not None:
                    params[key].copy_(torch.tensor(pin[key][step], dtype=dtype))
                trajectory[key].append(params[key].detach().tolist())
    net.eval()
    with torch.no_grad():
        eval_outputs = forward(net, xs, margins).tolist()
    after, after_counts = split_state(net)
    record["train"] = {
        "optimizer": "Adam",
        "args": {"lr": LR},
        "steps": TRAIN_STEPS,
        "losses": losses,
        "state": after,
        "counts": after_counts,
        "eval_outputs": eval_outputs,
        "trajectory": trajectory,
        "smallest_grad": smallest,
    }
    return record, margins, noise


def values(record):
    """Every number of a record by a path, for the tolerance probe."""
    if isinstance(record, dict):
        for key, value in record.items():
            for path, v in values(value):
                yield (key,) + path, v
    elif isinstance(record, list):
        for value in record:
            yield from values(value)
    elif isinstance(record, float):
        yield (), record


def probe(name, f32, exact, pinned):
    """How far torch's float32 results are from the exact results, as a fraction of the test's
    float32 tolerance 1e-5 |exact| + 1e-6, per category (pinned parameters' gradients and
    trajectories, which are noise by construction, left out). Printed; returned."""
    worst = {}
    for (path, a), (path2, b) in zip(values(f32), values(exact), strict=True):
        assert path == path2
        if path[-1] == "smallest_grad" or "args" in path or "trajectory" in path:
            continue
        if path[0] == "grads" and path[1] in pinned:
            continue
        category = " ".join(path[:2]) if path[0] == "train" else path[0]
        used = abs(a - b) / (1e-5 * abs(b) + 1e-6)
        worst[category] = max(worst.get(category, 0.0), used)
    print(f"  {name}: torch f32 vs exact, fraction of (1e-5 |x| + 1e-6) used:")
    for category, used in sorted(worst.items()):
        print(f"    {category:<24} {used:.3f}")
    return max(worst.values())


def main():
    torch.set_num_threads(1)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    for name, layers in CONFIGS.items():
        features, shapes = shapes_after(layers)
        for attempt in range(ATTEMPTS):
            seed_name = name if attempt == 0 else f"{name}/{attempt}"
            state, counts, xs, ys = draw(seed_name, layers)
            results = {dtype: run(layers, state, counts, xs, ys, dtype) for dtype in DTYPES}
            f32 = results[torch.float32][0]
            # The exact results at the float32 inputs, pinned to the float32 trajectory.
            rounded = lambda t: t.to(torch.float32).to(torch.float64)  # noqa: E731
            exact, exact_margins, _ = run(
                layers,
                {key: rounded(value) for key, value in state.items()},
                counts,
                rounded(xs),
                rounded(ys),
                torch.float64,
                pin=f32["train"]["trajectory"],
            )
            all_margins = [m for _, m, _ in results.values()] + [exact_margins]
            records = [r for r, _, _ in results.values()] + [exact]
            smallest = min(r["train"]["smallest_grad"] for r in records)
            if all(m.ok() for m in all_margins) and smallest >= GRAD_FLOOR:
                break
            worst = min(m.relu for m in all_margins)
            print(
                f"  {name}: seed {seed_name!r} rejected: nearest ReLU input {worst:.2e}, "
                f"smallest |gradient| fed to Adam {smallest:.2e}"
            )
        else:
            raise SystemExit(f"{name}: no seed of {ATTEMPTS} keeps the margins")
        net = build(layers, state, counts, torch.float64)
        pinned = pinned_names(net)
        used = probe(name, f32, exact, pinned)
        assert used < 0.5, f"{name}: torch's own float32 results use {used:.2f} of the tolerance"
        names = [key for key, v in net.state_dict().items() if v.dtype != torch.int64]
        for dtype, suffix in DTYPES.items():
            record, margins, noise = results[dtype]
            print(
                f"  {name} {suffix}: margins {margins.record()}, smallest |gradient| fed to "
                f"Adam {record['train']['smallest_grad']:.2e}, pinned {pinned} noise {noise:.1e}"
            )
            file = {
                "name": f"bn_{name}_{suffix}",
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
                "names": names,
                "param_names": [key for key, _ in net.named_parameters()],
                "count_names": list(counts),
                "param_shapes": {key: list(net.state_dict()[key].shape) for key in names},
                "state": tensors({key: value.to(dtype) for key, value in state.items()}),
                "counts": counts,
                "pinned": pinned,
                "zero_grad_noise": noise,
                "xs": xs.to(dtype).tolist(),
                "ys": ys.to(dtype).tolist(),
                **record,
            }
            path = OUT_DIR / f"bn_{name}_{suffix}.json"
            path.write_text(dumps(file) + "\n")
            print(f"wrote {path.relative_to(ROOT)} ({path.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
