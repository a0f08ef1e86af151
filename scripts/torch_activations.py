#!/usr/bin/env python3
"""Writes PyTorch reference values and gradients of every activation layer `network!` knows.

What it writes
    tests/fixtures/activations/activations.json: for each configuration of CASES below (every
    activation, several with non-default arguments), in float32 and in float64, an 8 x 8 matrix
    X of pre-activation values, an upstream gradient dY, torch's output Y = act(X) and the
    vector-Jacobian product dX = dY . dact/dX from autograd (`y.backward(dy)`), and for PReLU
    the slopes used and their gradient. tests/activations_torch.rs declares `{ Linear(8, 8),
    ACT }` with `network!` for each case, sets l0.weight = X and l0.bias = 0, feeds the 8 x 8
    identity so that the activation's input is exactly X, and compares Y with `forward_batch`
    and dX with `grads.l0.weight` under a loss whose gradient is dY (nn_testkit::activations).

How to run
    python3 scripts/torch_activations.py      (from any directory; needs torch, CPU only)

    Made with torch 2.15.0; the file records the version that wrote it. The output is
    deterministic and rewrites the fixture bit for bit: every random value comes from a
    torch.Generator seeded from the CRC-32 of the case's layer string, torch runs on one CPU
    thread, and floats are written by Python's repr (the shortest decimal that round-trips,
    i.e. every digit needed; each is the exact float32 or float64 value). Running it twice and
    comparing the files with `cmp` shows it.

Layout: a sample is a column
    Our batch is an `SMatrix<T, 8, 8>` with one column per sample (rows = features), which
    nalgebra stores column-major. Torch's batch is the (B, 8) = (samples, features) tensor, its
    transpose. Every matrix in the fixture (x, dy, y, dx) is one flat list of 64 numbers in
    nalgebra's column-major order: entry i is row (feature) i % 8 of column (sample) i // 8,
    `SMatrix::from_column_slice` on the Rust side. That list is also torch's (B, 8) tensor
    flattened row-major (`t.reshape(-1)`), so the script builds each (B, 8) tensor straight
    from it. Softmax and LogSoftmax run over each sample's 8 features: torch's dim=1 of (B, 8),
    our rows within a column. PReLU(8) has one slope per feature (torch's channel dim=1).

Choice of X
    Per case, X holds, at positions given by a seeded permutation:
    - the saturation values +-100, +-20, +-10 and 0, in every case;
    - the activation's kinks and thresholds exactly (EXTRA below): e.g. +-3 for Hardsigmoid and
      Hardswish, the Hardtanh bounds, 0 and 6 for ReLU6, x = threshold / beta and values on
      either side of it for Softplus, +-1e-3 for ELU, CELU, SELU, Tanhshrink, GELU;
    - for Softmax and LogSoftmax besides, whole columns (samples): all features equal, one
      feature dominating by 100, features spread over +-100;
    - standard normal values times 3 for the rest.
    The values are drawn once per configuration in float64; the float32 case uses them rounded
    to float32, and both cases share the upstream gradient dY (standard normal, rounded likewise).
    Torch's derivative at a kink is a convention; these fixtures pin torch's (measured with
    torch 2.15.0): ReLU'(0) = 0, LeakyReLU'(0) = slope, PReLU'(0) = slope (and d/dslope = 0),
    ELU'(0) = alpha, CELU'(0) = 1, SELU'(0) = scale * alpha, Hardtanh' = 0 at both bounds,
    ReLU6' = 0 at 0 and 6, Hardsigmoid' = 0 at +-3, Hardswish'(-3) = 0 and Hardswish'(3) = 1,
    Softplus at beta * x == threshold takes the log1p branch (its linear branch is for
    beta * x > threshold, strictly), Softsign'(0) = 1.

JSON layout (one object)
    torch_version  torch.__version__ of the run
    command        how to rewrite the file
    layout         the sentence above on how a matrix is flattened
    rows, batch    8, 8
    cases          a list, each case an object:
        layer      the layer as `network!` spells it, e.g. "ELU(alpha = 0.5)"
        torch      the torch module, e.g. "nn.ELU(alpha=0.5)"
        dtype      "float32" | "float64"
        x, dy, y, dx   64 numbers each, column-major (see above)
        PReLU only:
        init_weight    the slopes as torch's constructor initialises them (num_parameters
                       numbers), for checking our init
        weight         the slopes used for y and dx (for PReLU(8) a non-default vector,
                       SLOPES_8, so that each feature's slope matters)
        dweight        their gradient, dL/dslope for L = sum(dy * y)
"""

import zlib
from pathlib import Path

import torch
from torch import nn

from make_optim_fixtures import dumps

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "fixtures" / "activations" / "activations.json"
COMMAND = "python3 scripts/torch_activations.py"
ROWS = 8
BATCH = 8
DTYPES = [torch.float32, torch.float64]
LAYOUT = (
    "each matrix is a flat list of rows * batch numbers in nalgebra's column-major order: "
    "entry i is feature i % rows of sample i // rows (torch's (batch, rows) tensor flattened "
    "row-major)"
)

# Saturation values and 0, in every case.
COMMON = [0.0, 100.0, -100.0, 20.0, -20.0, 10.0, -10.0]

# Slopes for PReLU(8): one per feature, of either sign, 0 and above 1 among them.
SLOPES_8 = [0.25, -0.5, 0.0, 1.0, 1.5, 0.1, -0.05, 2.0]

SMALL = [1e-3, -1e-3]

# Softmax's whole columns: all features equal; one dominating by 100; spread over +-100.
SOFTMAX_COLUMNS = [
    [0.5] * ROWS,
    [100.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
    [-100.0, 100.0, -20.0, 20.0, -10.0, 10.0, 0.0, 1e-3],
]

# (layer as network! spells it, torch expression, module factory, extra special values,
#  whole columns). The layer string is also the key the Rust tests find a case by.
CASES = [
    ("ReLU", "nn.ReLU()", lambda: nn.ReLU(), SMALL, []),
    ("LeakyReLU(0.2)", "nn.LeakyReLU(0.2)", lambda: nn.LeakyReLU(0.2), SMALL, []),
    ("Sigmoid", "nn.Sigmoid()", lambda: nn.Sigmoid(), [-50.0, 50.0], []),
    ("Tanh", "nn.Tanh()", lambda: nn.Tanh(), [-5.0, 5.0] + SMALL, []),
    ("ELU", "nn.ELU()", lambda: nn.ELU(), SMALL, []),
    ("ELU(alpha = 0.5)", "nn.ELU(alpha=0.5)", lambda: nn.ELU(alpha=0.5), SMALL, []),
    ("SELU", "nn.SELU()", lambda: nn.SELU(), SMALL, []),
    ("CELU", "nn.CELU()", lambda: nn.CELU(), SMALL, []),
    ("CELU(alpha = 2.0)", "nn.CELU(alpha=2.0)", lambda: nn.CELU(alpha=2.0), SMALL, []),
    ("GELU", "nn.GELU()", lambda: nn.GELU(), SMALL + [-5.0, 5.0], []),
    (
        'GELU(approximate = "tanh")',
        "nn.GELU(approximate='tanh')",
        lambda: nn.GELU(approximate="tanh"),
        SMALL + [-5.0, 5.0],
        [],
    ),
    ("SiLU", "nn.SiLU()", lambda: nn.SiLU(), SMALL + [-50.0, 50.0], []),
    ("Mish", "nn.Mish()", lambda: nn.Mish(), SMALL + [-50.0, 50.0], []),
    # Default threshold 20: x = 20 takes the log1p branch, 20.5 the linear one.
    ("Softplus", "nn.Softplus()", lambda: nn.Softplus(), [19.5, 20.5, -50.0, 50.0], []),
    # threshold / beta = 2.5: log1p branch at 2.5 exactly (2 * 2.5 = 5 exactly, not > 5).
    (
        "Softplus(beta = 2.0, threshold = 5.0)",
        "nn.Softplus(beta=2.0, threshold=5.0)",
        lambda: nn.Softplus(beta=2.0, threshold=5.0),
        [2.5, 2.499, 2.501, 2.0, 3.0, -2.5],
        [],
    ),
    ("Softsign", "nn.Softsign()", lambda: nn.Softsign(), SMALL, []),
    ("Hardtanh", "nn.Hardtanh()", lambda: nn.Hardtanh(), [-1.0, 1.0, -0.999, 0.999], []),
    (
        "Hardtanh(-2.0, 3.0)",
        "nn.Hardtanh(-2.0, 3.0)",
        lambda: nn.Hardtanh(-2.0, 3.0),
        [-2.0, 3.0, -1.0, 1.0, -2.001, 3.001],
        [],
    ),
    ("ReLU6", "nn.ReLU6()", lambda: nn.ReLU6(), [6.0, 5.999, 6.001] + SMALL, []),
    ("Hardsigmoid", "nn.Hardsigmoid()", lambda: nn.Hardsigmoid(), [-3.0, 3.0, -2.999, 2.999], []),
    ("Hardswish", "nn.Hardswish()", lambda: nn.Hardswish(), [-3.0, 3.0, -2.999, 2.999], []),
    ("LogSigmoid", "nn.LogSigmoid()", lambda: nn.LogSigmoid(), [-50.0, 50.0] + SMALL, []),
    ("Tanhshrink", "nn.Tanhshrink()", lambda: nn.Tanhshrink(), SMALL + [1e-2, -1e-2], []),
    ("PReLU", "nn.PReLU()", lambda: nn.PReLU(), SMALL, []),
    ("PReLU(8)", "nn.PReLU(8)", lambda: nn.PReLU(8), SMALL, []),
    ("PReLU(init = 0.1)", "nn.PReLU(init=0.1)", lambda: nn.PReLU(init=0.1), SMALL, []),
    ("Softmax(dim = 1)", "nn.Softmax(dim=1)", lambda: nn.Softmax(dim=1), [], SOFTMAX_COLUMNS),
    (
        "LogSoftmax(dim = 1)",
        "nn.LogSoftmax(dim=1)",
        lambda: nn.LogSoftmax(dim=1),
        [],
        SOFTMAX_COLUMNS,
    ),
]


def draw(layer, extra, columns):
    """X and dY for one configuration, in float64, as flat column-major lists (see Layout)."""
    gen = torch.Generator().manual_seed(zlib.crc32(layer.encode()))
    n = ROWS * BATCH
    fixed = [v for column in columns for v in column]
    special = COMMON + extra
    free = n - len(fixed)
    assert len(special) <= free, layer
    randoms = (3.0 * torch.randn(free - len(special), generator=gen, dtype=torch.float64)).tolist()
    pool = special + randoms
    order = torch.randperm(free, generator=gen).tolist()
    x = fixed + [pool[i] for i in order]
    dy = torch.randn(n, generator=gen, dtype=torch.float64).tolist()
    return x, dy


def flat(t):
    """A (B, 8) tensor as the flat list of its values, row-major: our column-major matrix."""
    values = t.detach().reshape(-1).tolist()
    assert all(v == v and abs(v) != float("inf") for v in values), "non-finite value"
    return values


def run(layer, torch_expr, make, extra, columns, dtype):
    x64, dy64 = draw(layer, extra, columns)
    x = torch.tensor(x64, dtype=torch.float64).to(dtype).reshape(BATCH, ROWS)
    dy = torch.tensor(dy64, dtype=torch.float64).to(dtype).reshape(BATCH, ROWS)
    module = make().to(dtype)
    case = {"layer": layer, "torch": torch_expr, "dtype": str(dtype).removeprefix("torch.")}
    prelu = isinstance(module, nn.PReLU)
    if prelu:
        # As `nn.PReLU(init=.., dtype=torch.float64)` makes it: `.to(float64)` of a float32
        # module would carry float32's rounding of `init` (0.1 -> 0.10000000149011612).
        with torch.no_grad():
            module.weight.fill_(module.init)
        init = flat(module.weight)
        if module.num_parameters == ROWS:
            with torch.no_grad():
                module.weight.copy_(torch.tensor(SLOPES_8, dtype=dtype))
    x.requires_grad_()
    y = module(x)
    y.backward(dy)
    case.update({"x": flat(x), "dy": flat(dy), "y": flat(y), "dx": flat(x.grad)})
    if prelu:
        case.update(
            {"init_weight": init, "weight": flat(module.weight), "dweight": flat(module.weight.grad)}
        )
    # Every special value made it into X exactly, in float64.
    if dtype == torch.float64:
        assert all(v in case["x"] for v in COMMON + extra), layer
    return case


def main():
    torch.set_num_threads(1)
    layers = [c[0] for c in CASES]
    assert len(set(layers)) == len(layers), "duplicate layer strings"
    cases = [run(*c, dtype) for c in CASES for dtype in DTYPES]
    record = {
        "torch_version": torch.__version__,
        "command": COMMAND,
        "layout": LAYOUT,
        "rows": ROWS,
        "batch": BATCH,
        "cases": cases,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(dumps(record) + "\n")
    print(f"wrote {OUT.relative_to(ROOT)}: {len(cases)} cases")


if __name__ == "__main__":
    main()
