#!/usr/bin/env python3
"""Writes PyTorch reference results for a sequence network of causal convolutions.

What it writes
    tests/fixtures/sequence/causal_conv_<f32|f64>.json, in the format of the other sequence
    fixtures (scripts/torch_sequence.py's docstring; the differences are below), for the
    network, positions 0 to 4 as nn.Sequential names them,

        Conv1d(1, 8, 3), Tanh, Conv1d(8, 8, 3, dilation = 2), Tanh, Linear(8, 1)

    stepped one time step at a time: each causal Conv1d(in, out, k, dilation=d) is torch's
    nn.Conv1d(in, out, k, dilation=d) over the sequence left-padded by (k - 1) d steps, the
    padding being the inputs its state buffered (a previous window's last inputs); Tanh and the
    Linear apply at every step. In torch:

        class Net(nn.Module):
            def forward(self, x, state):               # x (L, N, 1), batch_first=False
                for each layer:
                    conv:   padded = cat(state[l][..., 1:], x as (N, C, L))     # (N, C, P + L)
                            y = conv(padded); final[l] = padded[..., -SPAN:]
                    Tanh:   y = tanh(x)
                    Linear: y = linear(x)                                       # (L, N, OUT)

    With the same parameters, a non-zero initial state, WINDOWS windows of STEPS steps for
    BATCH streams, and what torch computed, exactly as torch_sequence.py does: outputs, final
    state, loss nn.MSELoss(), gradients of every parameter and of the initial state on the first
    window; then Adam(lr=0.01) over the windows, the state carried detached. tests/
    sequence_torch.rs declares the network with `network!` (a row of its table) and compares
    all of it.

How to run
    python3 scripts/torch_causal_conv.py      (from any directory; needs torch, CPU only)

    Deterministic as torch_sequence.py (whose constants and helpers it uses): a torch.Generator
    seeded from the CRC-32 of the name, one CPU thread, floats by Python's repr, values drawn
    once in float64 and rounded for the float32 file. Torch's own random init is never used.

Values
    Parameters uniform in +-1/sqrt(fan_in), torch's default init (kaiming_uniform_(a=sqrt(5))
    for a weight, whose bound is 1/sqrt(fan_in), and the same bound for a bias), fan_in
    in_channels * kernel_size for a convolution and in_features for the Linear. Initial
    buffers uniform in +-0.9 (the second convolution's inputs are tanh's, within +-1), inputs
    standard normal, targets standard normal times 0.5.

State (what differs from the recurrent fixtures)
    A causal convolution's state is its last SPAN = (k - 1) d + 1 inputs, our `ConvState`: a
    ring buffer of SPAN slots and the slot `next` the next step writes. The fixtures hold each
    convolution's buffer under "l{position}.buffer" (the state field `l{position}` and its
    `buffer`) as a list [SPAN][C][N], its inputs OLDEST FIRST: entry s is the input SPAN - s
    steps back, channel c, stream n (= torch's padded[n, c, P + L - SPAN + s] at the end of a
    window of L steps, P = SPAN - 1). That is how our ring holds them when `next` is 0; the test
    reads ours from `next` around (nn_testkit::fixtures::oldest_first) and sets state0 with
    `next` 0 (set_ring). Entry 0, the oldest input, is read by no later step (a step reaches
    SPAN - 1 back): torch's padding is entries 1 to SPAN - 1, state0's entry 0 is drawn all
    the same (its gradient in "state_grads" is 0, which checks that we do not read it either).
    The gradient of the initial state has the same layout.

JSON layout (one object), as torch_sequence.py's except
    conv          one record per convolution: {"position", "in_channels", "out_channels",
                  "kernel_size", "dilation", "bias", "span"} (instead of "recurrent")
    torch         the torch modules, one string
    state0, final_state, state_grads, train.final_state
                  {"l0.buffer": [SPAN][C][N], "l2.buffer": ...}, oldest first (see State)
    params, grads "0.weight" [8][1][3], "0.bias" [8], "2.weight" [8][8][3], "2.bias" [8],
                  "4.weight" [1][8], "4.bias" [1]: nested as torch's shape
"""

import math
import zlib
from pathlib import Path

import torch
from torch import nn

from make_optim_fixtures import dumps
from torch_sequence import BATCH, DTYPES, LR, OUT_DIR, ROOT, STEPS, WINDOWS, ours, probe, tensors

COMMAND = "python3 scripts/torch_causal_conv.py"
NAME = "causal_conv"
# position -> (in_channels, out_channels, kernel_size, dilation)
CONVS = {0: (1, 8, 3, 1), 2: (8, 8, 3, 2)}
LAYERS = ["Conv1d(1, 8, 3)", "Tanh", "Conv1d(8, 8, 3, dilation = 2)", "Tanh", "Linear(8, 1)"]
TORCH = (
    "nn.Conv1d(1, 8, 3) over the sequence left-padded by 2 steps, nn.Tanh(), "
    "nn.Conv1d(8, 8, 3, dilation=2) over it left-padded by 4 steps, nn.Tanh(), nn.Linear(8, 1)"
)
IN, OUT = 1, 1
LAYOUT = (
    "matrices are row-major nested lists indexed (row, column) as our SMatrix; a time step's "
    "batch has one column per stream: xs[t][i][j] = torch x[t, j, i]; a convolution's state "
    "l{p}.buffer[s][c][j] is its input SPAN - s steps back (oldest first), channel c, stream j; "
    "parameters nested as their torch shape"
)


def span(position):
    _, _, k, d = CONVS[position]
    return (k - 1) * d + 1


def key(position):
    return f"l{position}.buffer"


class Net(nn.Module):
    """The five layers under nn.Sequential's names, stepped causally over a window."""

    def __init__(self, dtype):
        super().__init__()
        for position, (cin, cout, k, d) in CONVS.items():
            self.add_module(str(position), nn.Conv1d(cin, cout, k, dilation=d, dtype=dtype))
        self.add_module("1", nn.Tanh())
        self.add_module("3", nn.Tanh())
        self.add_module("4", nn.Linear(8, OUT, dtype=dtype))

    def forward(self, x, state):
        """x (L, N, IN); state {key: (N, C, SPAN) oldest first}; returns (L, N, OUT) and the
        final state."""
        final = {}
        h = x
        for position in range(5):
            layer = self._modules[str(position)]
            if position in CONVS:
                padded = torch.cat([state[key(position)][:, :, 1:], h.permute(1, 2, 0)], dim=2)
                final[key(position)] = padded[:, :, -span(position):]
                h = layer(padded).permute(2, 0, 1)
            else:
                h = layer(h)
        return h, final


def draw():
    """Every value, in float64: parameters (state_dict order), state0, windows."""
    gen = torch.Generator().manual_seed(zlib.crc32(NAME.encode()))
    params = {}
    for name, value in Net(torch.float64).state_dict().items():
        position = int(name.split(".")[0])
        if position in CONVS:
            cin, _, k, _ = CONVS[position]
            fan_in = cin * k
        else:
            fan_in = 8  # the Linear's in_features, for its weight and its bias
        bound = 1.0 / math.sqrt(fan_in)
        params[name] = (torch.rand(value.shape, generator=gen, dtype=torch.float64) * 2 - 1) * bound
    state0 = {}
    for position, (cin, _, _, _) in CONVS.items():
        shape = (BATCH, cin, span(position))
        state0[key(position)] = (torch.rand(shape, generator=gen, dtype=torch.float64) * 2 - 1) * 0.9
    windows = []
    for _ in range(WINDOWS):
        xs = torch.randn((STEPS, BATCH, IN), generator=gen, dtype=torch.float64)
        ys = 0.5 * torch.randn((STEPS, BATCH, OUT), generator=gen, dtype=torch.float64)
        windows.append((xs, ys))
    return params, state0, windows


def build(params, dtype):
    net = Net(dtype)
    with torch.no_grad():
        for name, p in net.state_dict().items():
            p.copy_(params[name].to(dtype))
    return net


def state_lists(state):
    """Buffers (N, C, SPAN) as our lists [SPAN][C][N]."""
    return {name: value.detach().permute(2, 1, 0).tolist() for name, value in state.items()}


def run(params, state0, windows, dtype):
    """torch's results in one dtype (the float64 draws rounded to it), as torch_sequence.run."""
    net = build(params, dtype)
    state0 = {name: value.to(dtype) for name, value in state0.items()}
    windows = [(xs.to(dtype), ys.to(dtype)) for xs, ys in windows]
    mse = nn.MSELoss()

    xs, ys = windows[0]
    start = {name: value.clone().requires_grad_() for name, value in state0.items()}
    net.zero_grad()
    outputs, final = net(xs, start)
    loss = mse(outputs, ys)
    loss.backward()
    record = {
        "outputs": ours(outputs),
        "final_state": state_lists(final),
        "loss": loss.item(),
        "grads": tensors({name: p.grad for name, p in net.named_parameters()}),
        "state_grads": state_lists({name: value.grad for name, value in start.items()}),
    }
    for name, grad in start.items():
        assert grad.grad[:, :, 0].abs().max().item() == 0.0, f"{name}: the oldest entry is read"

    opt = torch.optim.Adam(net.parameters(), lr=LR, foreach=False)
    state = {name: value.clone() for name, value in state0.items()}
    losses = []
    smallest = math.inf
    for xs, ys in windows:
        opt.zero_grad()
        outputs, final = net(xs, state)
        loss = mse(outputs, ys)
        loss.backward()
        smallest = min([smallest] + [p.grad.abs().min().item() for p in net.parameters()])
        opt.step()
        losses.append(loss.item())
        state = {name: value.detach() for name, value in final.items()}
    record["train"] = {
        "optimizer": "Adam",
        "args": {"lr": LR},
        "losses": losses,
        "params": tensors(dict(net.named_parameters())),
        "final_state": state_lists(state),
    }
    return record, smallest


def main():
    torch.set_num_threads(1)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    params, state0, windows = draw()
    results = {dtype: run(params, state0, windows, dtype) for dtype in DTYPES}
    # The exact results at the float32 inputs: the float32 draws, computed in float64.
    rounded = lambda t: t.to(torch.float32).to(torch.float64)  # noqa: E731
    exact, _ = run(
        {name: rounded(value) for name, value in params.items()},
        {name: rounded(value) for name, value in state0.items()},
        [(rounded(xs), rounded(ys)) for xs, ys in windows],
        torch.float64,
    )
    probe(NAME, results[torch.float32][0], exact)
    conv = [
        {
            "position": position,
            "in_channels": cin,
            "out_channels": cout,
            "kernel_size": k,
            "dilation": d,
            "bias": True,
            "span": span(position),
        }
        for position, (cin, cout, k, d) in CONVS.items()
    ]
    for dtype, suffix in DTYPES.items():
        record, smallest = results[dtype]
        print(f"  {NAME} {suffix}: smallest |gradient| fed to Adam {smallest:.2e}")
        file = {
            "name": f"{NAME}_{suffix}",
            "torch_version": torch.__version__,
            "command": COMMAND,
            "dtype": str(dtype).removeprefix("torch."),
            "layers": LAYERS,
            "torch": TORCH,
            "conv": conv,
            "seed": NAME,
            "steps": STEPS,
            "batch": BATCH,
            "layout": LAYOUT,
            "loss_fn": {"name": "Mse", "torch": "nn.MSELoss()"},
            "params": tensors({name: value.to(dtype) for name, value in params.items()}),
            "state0": state_lists({name: value.to(dtype) for name, value in state0.items()}),
            "windows": [
                {"xs": ours(xs.to(dtype)), "ys": ours(ys.to(dtype))} for xs, ys in windows
            ],
            **record,
        }
        path = OUT_DIR / f"{NAME}_{suffix}.json"
        path.write_text(dumps(file) + "\n")
        print(f"wrote {path.relative_to(ROOT)} ({path.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
