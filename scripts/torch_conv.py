#!/usr/bin/env python3
"""Writes PyTorch reference results for shaped networks: convolutions and pooling over a
sample's features given a shape by `Unflatten`.

What it writes
    tests/fixtures/conv/<config>_<f32|f64>.json, one file per entry of CONFIGS below and dtype.
    Each holds one `nn.Sequential` network (the layers as `network!` spells them, and as torch
    does), its parameters, a batch of BATCH inputs and targets, and what torch computed: the
    outputs, the loss nn.MSELoss(), the gradient of every parameter, then TRAIN_STEPS steps of
    Adam(lr=0.01) on the same batch (each step's loss, before its update, and the parameters
    after the last). tests/conv_torch.rs declares the same networks with `network!` (a row of
    its table per file), loads the parameters by name and compares all of it.

How to run
    python3 scripts/torch_conv.py      (from any directory; needs torch, CPU only)

    Made with torch 2.15.0; each file records the version that wrote it. The output is
    deterministic and rewrites the fixtures bit for bit (run it twice and `cmp`): every value
    comes from a torch.Generator seeded from the CRC-32 of the configuration's name (or
    "<name>/<attempt>", see Margins), torch runs on one CPU thread, floats are written by
    Python's repr (the shortest decimal that round-trips: each is the exact float32 or float64
    value). Values are drawn once per configuration in float64; the float32 file holds the same
    values rounded to float32. Torch's own random init is never used.

Layers
    `Unflatten(c, h, w)` is torch's nn.Unflatten(1, (c, h, w)) and `Unflatten(c, l)` its
    nn.Unflatten(1, (c, l)): a sample's flat features read row-major, channel first (feature
    c H W + h W + w is element (c, h, w), as torch's x.view(N, C, H, W)). `Flatten` is
    nn.Flatten() (start_dim=1), the inverse. `Conv2d`, `Conv1d`, `MaxPool2d`, `AvgPool2d`,
    `AdaptiveAvgPool2d`, `MaxPool1d`, `AvgPool1d`, `AdaptiveAvgPool1d` take torch's arguments
    (positional in torch's order, or by torch's keyword names) and torch's defaults: a pooling
    stride defaults to its kernel size; AvgPool counts the zero padding in its average
    (count_include_pad=True) and does not round up (ceil_mode=False). A `Conv1d` after
    `Unflatten(c, l)` is torch's plain nn.Conv1d over the length (not the causal sequence
    layer). Each file lists the layers both ways and the shape after every layer.

Values
    Parameters uniform in +-1/sqrt(fan_in), torch's default init (kaiming_uniform_(a=sqrt(5))
    for a weight, whose bound is 1/sqrt(fan_in), and the same bound for a bias), fan_in
    (in_channels / groups) * prod(kernel_size) for a convolution and in_features for a Linear,
    but drawn from the seeded generator in state_dict order. Inputs standard normal, targets
    standard normal times 0.5.

Margins
    ReLU has a kink at 0 and a max-pool window's gradient goes to its largest entry, so both
    are kept off their ties. In every forward pass the fixture holds (the first, and that of
    every training step, in both dtypes and in the exact float64 run at the float32 values;
    "exact" as in torch_sequence.py: the float32 values computed in float64):
    every ReLU input is at least MARGIN from 0, and in every MaxPool window the largest entry
    exceeds the second largest by at least MARGIN, except in a window that the ReLU before it
    made all zeros (every ReLU input below -MARGIN, so the gradient it passes back is 0 whichever
    entry counts as the maximum; their number is recorded). All of it is asserted; the
    generator is reseeded from "<name>/<attempt>" until it holds. MARGIN is 1e-4: torch's
    float32 values differ from the exact ones by about 1e-6 (printed), so no ReLU or max-pool
    window here can take another branch in our float32 results than in torch's.

Adam
    Adam's step lr m / (sqrt(v) + eps) is about lr g / |g| on the first step: it divides by the
    gradient's own size, so a gradient entry as small as its own rounding (or as eps = 1e-8)
    would make its parameter's trajectory a matter of rounding. Every gradient entry fed to Adam,
    at every step, in both dtypes and in the exact run, is at least GRAD_FLOOR = 1e-6 in
    magnitude (no exact zeros either: no ReLU unit is dead over the whole batch), far above
    eps and above the float32 rounding of a gradient (about 1e-9 here); the seed search
    enforces it with the margins. The probe printed (torch's float32 trajectory against the
    exact one) shows what is left; the script asserts that it stays below half the float32
    tolerance in every category.

Layout
    xs, ys, outputs    lists of BATCH samples, each the sample's flat features: xs[b][f] is
                       torch's x[b].reshape(-1)[f], i.e. x[b, c, h, w] at f = c H W + h W + w
                       (x[b, c, l] at f = c L + l). On the Rust side sample b is column b of an
                       SMatrix<T, FEATURES, B> (nn_testkit::fixtures::samples).
    params, grads      state_dict name -> value nested as torch's shape: "{i}.weight"
                       [out][in/groups][kh][kw] for a Conv2d, [out][in/groups][k] for a Conv1d,
                       [out][in] for a Linear; "{i}.bias" [out]; i the layer's position.

JSON layout (one object)
    name, torch_version, command, dtype ("float32" | "float64")
    layers         the layer list as `network!` spells it
    torch          the same layers as torch modules
    shapes         the shape of a sample after each layer ([C, H, W], [C, L] or [F])
    in_features, out_features, batch
    seed           the name the generator was seeded from (CRC-32)
    margins        {"relu": the smallest |ReLU input|, "maxpool_gap": the smallest gap between
                   a max-pool window's two largest entries, "maxpool_zero_windows": windows the
                   ReLU made all zeros}, over every forward pass of this dtype (null where the
                   network has no such layer)
    layout         a sentence on the layout above
    loss_fn        {"name": "Mse", "torch": "nn.MSELoss()"}
    names          the state_dict names in order
    param_shapes   state_dict name -> torch's shape
    params         the parameters
    xs, ys         the batch
    outputs        net(xs)
    loss           nn.MSELoss()(outputs, ys): the mean over every sample and output
    grads          state_dict name -> gradient of `loss`
    train          {"optimizer": "Adam", "args": {"lr": 0.01}, "steps": TRAIN_STEPS, "losses":
                   [each step's loss, before its update], "params": after the last step,
                   "smallest_grad": the smallest |gradient entry| fed to Adam}
"""

import math
import zlib
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from make_optim_fixtures import dumps

ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = ROOT / "tests" / "fixtures" / "conv"
COMMAND = "python3 scripts/torch_conv.py"
BATCH = 5
TRAIN_STEPS = 5
LR = 0.01
MARGIN = 1e-4
# Every gradient entry fed to Adam, at every step, is at least this large (see Adam below).
GRAD_FLOOR = 1e-6
ATTEMPTS = 200
DTYPES = {torch.float32: "f32", torch.float64: "f64"}
LAYOUT = (
    "xs, ys, outputs: lists of samples, each the sample's flat features, xs[b][c*H*W + h*W + w] "
    "= torch x[b, c, h, w] (one column per sample on the Rust side); parameters nested as their "
    "torch shape"
)

# name -> [(layer as network! spells it, the torch module)]. Sizes chained by hand; `main`
# asserts each Linear's in_features against the flattened shape before it.
CONFIGS = {
    # Padding, ReLU, max pooling, a rectangular kernel with stride and padding pairs, Tanh,
    # average pooling, Flatten: 1x8x8 -> 4x8x8 -> 4x4x4 -> 6x4x2 -> 6x2x1 -> 12 -> 3.
    "conv2d_pools": [
        ("Unflatten(1, 8, 8)", "nn.Unflatten(1, (1, 8, 8))"),
        ("Conv2d(1, 4, 3, padding = 1)", "nn.Conv2d(1, 4, 3, padding=1)"),
        ("ReLU", "nn.ReLU()"),
        ("MaxPool2d(2)", "nn.MaxPool2d(2)"),
        (
            "Conv2d(4, 6, (3, 2), stride = (1, 2), padding = (1, 0))",
            "nn.Conv2d(4, 6, (3, 2), stride=(1, 2), padding=(1, 0))",
        ),
        ("Tanh", "nn.Tanh()"),
        ("AvgPool2d(2)", "nn.AvgPool2d(2)"),
        ("Flatten", "nn.Flatten()"),
        ("Linear(12, 3)", "nn.Linear(12, 3)"),
    ],
    # Groups, dilation, no bias, adaptive average pooling: 4x5x5 -> 6x1x1 -> 6x1x1 -> 6 -> 2.
    "conv2d_groups_dilation": [
        ("Unflatten(4, 5, 5)", "nn.Unflatten(1, (4, 5, 5))"),
        (
            "Conv2d(4, 6, 3, groups = 2, dilation = 2, bias = false)",
            "nn.Conv2d(4, 6, 3, groups=2, dilation=2, bias=False)",
        ),
        ("ReLU", "nn.ReLU()"),
        ("AdaptiveAvgPool2d(1)", "nn.AdaptiveAvgPool2d(1)"),
        ("Flatten", "nn.Flatten()"),
        ("Linear(6, 2)", "nn.Linear(6, 2)"),
    ],
    # One-dimensional: stride and padding, max pooling, a 1-wide kernel, average pooling with
    # stride and zero padding counted: 2x12 -> 4x6 -> 4x3 -> 4x3 -> 4x3 -> 12 -> 2.
    "conv1d_pools": [
        ("Unflatten(2, 12)", "nn.Unflatten(1, (2, 12))"),
        ("Conv1d(2, 4, 3, stride = 2, padding = 1)", "nn.Conv1d(2, 4, 3, stride=2, padding=1)"),
        ("ReLU", "nn.ReLU()"),
        ("MaxPool1d(2)", "nn.MaxPool1d(2)"),
        ("Conv1d(4, 4, 1)", "nn.Conv1d(4, 4, 1)"),
        ("AvgPool1d(3, stride = 1, padding = 1)", "nn.AvgPool1d(3, stride=1, padding=1)"),
        ("Flatten", "nn.Flatten()"),
        ("Linear(12, 2)", "nn.Linear(12, 2)"),
    ],
    # Stride without padding (the last row and column unread) straight into adaptive average
    # pooling over 2x2: 3x6x6 -> 4x2x2 -> 4x1x1 -> 4 -> 1.
    "conv2d_stride_adaptive": [
        ("Unflatten(3, 6, 6)", "nn.Unflatten(1, (3, 6, 6))"),
        ("Conv2d(3, 4, 3, stride = 2)", "nn.Conv2d(3, 4, 3, stride=2)"),
        ("AdaptiveAvgPool2d(1)", "nn.AdaptiveAvgPool2d(1)"),
        ("Flatten", "nn.Flatten()"),
        ("Linear(4, 1)", "nn.Linear(4, 1)"),
    ],
    # Padding by words: "same" (2x5x5 -> 3x5x5), "valid" with a rectangular kernel (-> 2x3x5),
    # then max pooling with padding and a stride smaller than its kernel (-> 2x4x6):
    # 2x5x5 -> 3x5x5 -> 2x3x5 -> 2x4x6 -> 2x1x1 -> 2 -> 2.
    "conv2d_padding_words": [
        ("Unflatten(2, 5, 5)", "nn.Unflatten(1, (2, 5, 5))"),
        ('Conv2d(2, 3, 3, padding = "same")', "nn.Conv2d(2, 3, 3, padding='same')"),
        ("Tanh", "nn.Tanh()"),
        ('Conv2d(3, 2, (3, 1), padding = "valid")', "nn.Conv2d(3, 2, (3, 1), padding='valid')"),
        ("MaxPool2d(2, stride = 1, padding = 1)", "nn.MaxPool2d(2, stride=1, padding=1)"),
        ("AdaptiveAvgPool2d(1)", "nn.AdaptiveAvgPool2d(1)"),
        ("Flatten", "nn.Flatten()"),
        ("Linear(2, 2)", "nn.Linear(2, 2)"),
    ],
    # One-dimensional with dilation, depthwise groups and no bias, into the global average:
    # 4x9 -> 4x5 -> 4x1 -> 4 -> 1.
    "conv1d_dilation_groups": [
        ("Unflatten(4, 9)", "nn.Unflatten(1, (4, 9))"),
        (
            "Conv1d(4, 4, 3, dilation = 2, groups = 4, bias = false)",
            "nn.Conv1d(4, 4, 3, dilation=2, groups=4, bias=False)",
        ),
        ("Tanh", "nn.Tanh()"),
        ("AdaptiveAvgPool1d(1)", "nn.AdaptiveAvgPool1d(1)"),
        ("Flatten", "nn.Flatten()"),
        ("Linear(4, 1)", "nn.Linear(4, 1)"),
    ],
}

CONVS = (nn.Conv1d, nn.Conv2d)
MAXPOOLS = (nn.MaxPool1d, nn.MaxPool2d)


def build_modules(layers):
    return [eval(expr, {"nn": nn}) for _, expr in layers]  # literal module expressions


def in_shape(layers):
    """A sample's shape after the first layer, the Unflatten."""
    first = build_modules(layers)[0]
    assert isinstance(first, nn.Unflatten) and first.dim == 1, "networks start with Unflatten"
    return list(first.unflattened_size)


def shapes_after(layers):
    """The shape of a sample after each layer, from a probe batch of one."""
    net = nn.Sequential(*build_modules(layers)).to(torch.float64)
    features = math.prod(in_shape(layers))
    h = torch.zeros((1, features), dtype=torch.float64)
    shapes = []
    for position, module in enumerate(net):
        if isinstance(module, nn.Linear):
            assert h.shape[1:] == (module.in_features,), f"layer {position}: {layers[position]}"
        h = module(h)
        shapes.append(list(h.shape[1:]))
    return features, shapes


def draw(name, layers):
    """Every value of a configuration, in float64: parameters (state_dict order), xs, ys."""
    gen = torch.Generator().manual_seed(zlib.crc32(name.encode()))
    net = nn.Sequential(*build_modules(layers)).to(torch.float64)
    params = {}
    for key, value in net.state_dict().items():
        module = net[int(key.split(".")[0])]
        if isinstance(module, CONVS):
            fan_in = module.in_channels // module.groups * math.prod(module.kernel_size)
        else:
            assert isinstance(module, nn.Linear), key
            fan_in = module.in_features
        bound = 1.0 / math.sqrt(fan_in)
        params[key] = (torch.rand(value.shape, generator=gen, dtype=torch.float64) * 2 - 1) * bound
    features, shapes = shapes_after(layers)
    xs = torch.randn((BATCH, features), generator=gen, dtype=torch.float64)
    ys = 0.5 * torch.randn((BATCH, math.prod(shapes[-1])), generator=gen, dtype=torch.float64)
    return params, xs, ys


def build(layers, params, dtype):
    net = nn.Sequential(*build_modules(layers)).to(dtype)
    with torch.no_grad():
        for key, p in net.state_dict().items():
            p.copy_(params[key].to(dtype))
    return net


class Margins:
    """The closest any ReLU input came to 0 and any max-pool window to a tie."""

    def __init__(self):
        self.relu = math.inf
        self.gap = math.inf
        self.zero_windows = 0
        self.has_relu = False
        self.has_maxpool = False

    def record(self):
        return {
            "relu": self.relu if self.has_relu else None,
            "maxpool_gap": self.gap if self.has_maxpool else None,
            "maxpool_zero_windows": self.zero_windows if self.has_maxpool else None,
        }

    def ok(self):
        return self.relu >= MARGIN and self.gap >= MARGIN


def windows(pool, x):
    """Every window of the max pool `pool` over `x` (N, C, *spatial), as (N, C, entries,
    windows), padded with -inf as torch pads a max pool."""
    if isinstance(pool, nn.MaxPool1d):
        x = x.unsqueeze(2)
        one = lambda v: v if isinstance(v, int) else v[0]  # noqa: E731
        kernel, stride, padding, dilation = (
            (1, one(pool.kernel_size)), (1, one(pool.stride)), (0, one(pool.padding)),
            (1, one(pool.dilation))
        )
    else:
        pair = lambda v: (v, v) if isinstance(v, int) else tuple(v)  # noqa: E731
        kernel, stride, padding, dilation = (
            pair(pool.kernel_size), pair(pool.stride), pair(pool.padding), pair(pool.dilation)
        )
    assert not pool.ceil_mode
    n, c = x.shape[:2]
    x = F.pad(x, (padding[1], padding[1], padding[0], padding[0]), value=-math.inf)
    cols = F.unfold(x, kernel, dilation=dilation, stride=stride)  # (N, C * k, windows)
    return cols.reshape(n, c, kernel[0] * kernel[1], -1)


def forward(net, x, margins):
    """net(x), layer by layer, recording the margins of every ReLU input and max-pool window."""
    h = x
    previous = None
    for module in net:
        if isinstance(module, nn.ReLU):
            margins.has_relu = True
            margins.relu = min(margins.relu, h.detach().abs().min().item())
        if isinstance(module, MAXPOOLS):
            margins.has_maxpool = True
            top = windows(module, h.detach()).topk(2, dim=2).values
            zero = (top[:, :, 0] == 0) & (top[:, :, 1] == 0)
            if zero.any():
                # Only the ReLU before can make a window all zeros (its inputs are then all
                # at most -MARGIN, checked there): the gradient passed back is 0 either way.
                assert isinstance(previous, nn.ReLU), "a tie of zeros not made by a ReLU"
                margins.zero_windows += int(zero.sum().item())
            gaps = (top[:, :, 0] - top[:, :, 1])[~zero]
            assert not gaps.isnan().any(), "a max-pool window of padding only"
            if gaps.numel():
                margins.gap = min(margins.gap, gaps.min().item())
        h = module(h)
        previous = module
    return h


def tensors(named):
    return {key: value.detach().tolist() for key, value in named.items()}


def run(layers, params, xs, ys, dtype):
    """torch's results in one dtype (the float64 draws rounded to it), and the margins."""
    net = build(layers, params, dtype)
    xs, ys = xs.to(dtype), ys.to(dtype)
    mse = nn.MSELoss()
    margins = Margins()

    net.zero_grad()
    outputs = forward(net, xs, margins)
    loss = mse(outputs, ys)
    loss.backward()
    record = {
        "outputs": outputs.detach().tolist(),
        "loss": loss.item(),
        "grads": tensors({key: p.grad for key, p in net.named_parameters()}),
    }

    opt = torch.optim.Adam(net.parameters(), lr=LR, foreach=False)
    losses = []
    smallest = math.inf
    for _ in range(TRAIN_STEPS):
        opt.zero_grad()
        loss = mse(forward(net, xs, margins), ys)
        loss.backward()
        smallest = min([smallest] + [p.grad.abs().min().item() for p in net.parameters()])
        opt.step()
        losses.append(loss.item())
    record["train"] = {
        "optimizer": "Adam",
        "args": {"lr": LR},
        "steps": TRAIN_STEPS,
        "losses": losses,
        "params": tensors(dict(net.named_parameters())),
        "smallest_grad": smallest,
    }
    return record, margins


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


def probe(name, f32, exact):
    """How far torch's float32 results are from the exact (float64) results at the same float32
    inputs, as a fraction of the tests' float32 tolerance 1e-5 |exact| + 1e-6, per category: the
    room our float32 results, rounded differently, can expect to need. Printed; returned."""
    worst = {}
    for (path, a), (path2, b) in zip(values(f32), values(exact), strict=True):
        assert path == path2
        if path[-1] == "smallest_grad" or "args" in path:
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
            params, xs, ys = draw(seed_name, layers)
            results = {dtype: run(layers, params, xs, ys, dtype) for dtype in DTYPES}
            # The exact results at the float32 inputs: the float32 draws, computed in float64.
            rounded = lambda t: t.to(torch.float32).to(torch.float64)  # noqa: E731
            exact, exact_margins = run(
                layers,
                {key: rounded(value) for key, value in params.items()},
                rounded(xs),
                rounded(ys),
                torch.float64,
            )
            all_margins = [m for _, m in results.values()] + [exact_margins]
            records = [r for r, _ in results.values()] + [exact]
            smallest = min(r["train"]["smallest_grad"] for r in records)
            if all(m.ok() for m in all_margins) and smallest >= GRAD_FLOOR:
                break
            worst = min(min(m.relu, m.gap) for m in all_margins)
            print(
                f"  {name}: seed {seed_name!r} rejected: nearest tie {worst:.2e} (at least "
                f"{MARGIN:.0e} needed), smallest |gradient| fed to Adam {smallest:.2e} (at least "
                f"{GRAD_FLOOR:.0e} needed)"
            )
        else:
            raise SystemExit(f"{name}: no seed of {ATTEMPTS} keeps the margins")
        used = probe(name, results[torch.float32][0], exact)
        assert used < 0.5, f"{name}: torch's own float32 results use {used:.2f} of the tolerance"
        net = build(layers, params, torch.float64)
        for dtype, suffix in DTYPES.items():
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
                "params": tensors({key: value.to(dtype) for key, value in params.items()}),
                "xs": xs.to(dtype).tolist(),
                "ys": ys.to(dtype).tolist(),
                **record,
            }
            path = OUT_DIR / f"{name}_{suffix}.json"
            path.write_text(dumps(file) + "\n")
            print(f"wrote {path.relative_to(ROOT)} ({path.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
