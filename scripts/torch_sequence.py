#!/usr/bin/env python3
"""Writes PyTorch reference results for recurrent networks (GRU, LSTM, RNN) over sequences.

What it writes
    tests/fixtures/sequence/<config>_<f32|f64>.json, one file per entry of CONFIGS below and
    dtype. Each holds one network `{ RECURRENT, Linear(H, OUT) }`, i.e. the torch module

        class Net(nn.Module):                   # children named "0" and "1", as nn.Sequential
            def forward(self, x, state):
                y, final = self[0](x, state)    # nn.GRU / nn.LSTM / nn.RNN, batch_first=False
                return head(y), final        # nn.Linear at every time step of (L, N, H)

    its parameters, a non-zero initial state, WINDOWS windows of STEPS time steps of inputs and
    targets for BATCH streams, and what torch computed: on the first window from the initial
    state, the outputs at every step, the final state, the loss nn.MSELoss() over the whole
    (L, N, OUT) output, the gradient of every parameter and of the initial state; then
    Adam(lr=0.01) trained over the WINDOWS windows in turn, one optimizer step per window, the
    state carried from window to window detached (truncated backpropagation through time):
    each window's loss (before its update), the parameters and the carried state at the end.
    tests/sequence_torch.rs declares the same networks with `network!`, loads the parameters
    and the initial state, and compares all of it. (The same folder holds causal_conv_*.json,
    from scripts/torch_causal_conv.py: the same format for a network of causal convolutions,
    whose docstring states what differs.)

How to run
    python3 scripts/torch_sequence.py      (from any directory; needs torch, CPU only)

    Made with torch 2.15.0; each file records the version that wrote it. The output is
    deterministic and rewrites the fixtures bit for bit (run it twice and `cmp`): every value
    comes from a torch.Generator seeded from the CRC-32 of the configuration's name, torch runs
    on one CPU thread, floats are written by Python's repr (the shortest decimal that
    round-trips: each is the exact float32 or float64 value). The values are drawn once per
    configuration in float64; the float32 file holds the same values rounded to float32.
    Torch's own random init is never used: every parameter is drawn here and recorded.

Values
    Parameters uniform in +-1/sqrt(hidden_size), as torch's default init of its recurrent
    layers (and +-1/sqrt(in_features) for the Linear head), but from the seeded generator.
    Initial state h0 uniform in +-0.9, c0 uniform in +-1.5, inputs standard normal, targets
    standard normal times 0.5.
    ReLU RNNs: every pre-activation W_ih x + b_ih + W_hh h + b_hh of every layer, step, stream
    and window (with the parameters each window is trained from) is at least RELU_MARGIN away
    from 0, where ReLU has its kink (asserted; the generator is reseeded from
    "<name>/<attempt>" until it holds). A pre-activation exactly at 0 would pin torch's
    convention ReLU'(0) = 0; one within rounding of 0 would make the comparison a coin toss.

Layout
    Our batch of B streams at one time step is an `SMatrix<T, N, B>`, one column per stream
    (torch's batch index n is our column j). Every matrix is written as torch writes a 2-D
    tensor, a row-major nested list [rows][columns], and read by (row, column) on the Rust
    side (nn_testkit::fixtures::matrix):
        xs[t][i][j]   input feature i of stream j at step t       = torch x[t, j, i]
                      (torch's x is (L, N, IN), batch_first=False)
        ys, outputs   likewise [L][OUT][B]                        = torch y[t, j, o]
        h[k][i][j]    hidden unit i of stream j in layer k        = torch h[k, j, i]
                      (torch's h0 / h_n are (num_layers, N, H)); our `state.l0.h[k][(i, j)]`
        c[k][i][j]    the LSTM's cell state, the same layout      = torch c[k, j, i]
    Parameters and gradients are keyed by state_dict name and nested as torch's shape:
    "0.weight_ih_l0" [G*H][in], "0.weight_hh_l0" [G*H][H], "0.bias_ih_l0", "0.bias_hh_l0"
    [G*H] (G = 3 for GRU, gates r, z, n; 4 for LSTM, gates i, f, g, o; 1 for RNN), then
    "1.weight" [OUT][H], "1.bias" [OUT]. Entry [r][c] is our tensor's element (r, c), which
    `Tensors::visit` stores at c * rows + r (column-major).

JSON layout (one object)
    name, torch_version, command, dtype ("float32" | "float64")
    layers        the layer list as `network!` spells it, e.g. ["GRU(3, 5)", "Linear(5, 2)"]
    torch         the recurrent module as torch spells it
    recurrent     {"kind": "GRU" | "LSTM" | "RNN", "input_size", "hidden_size", "num_layers",
                  "bias", "nonlinearity" (RNN only)}
    seed          the name the generator was seeded from (CRC-32): the configuration's name,
                  or "<name>/<attempt>" if a ReLU pre-activation came too close to 0
    steps, batch  STEPS, BATCH
    layout        a sentence on the layout above
    loss_fn       {"name": "Mse", "torch": "nn.MSELoss()"}
    params        state_dict name -> value (see Layout)
    state0        the initial state: {"h": [K][H][B]} (and "c" for an LSTM)
    windows       WINDOWS objects {"xs": [L][IN][B], "ys": [L][OUT][B]}; the first is the one
                  the gradients are taken on
    outputs       net(windows[0].xs, state0), [L][OUT][B]
    final_state   the state after windows[0] from state0, as state0
    loss          nn.MSELoss()(outputs, windows[0].ys): the mean over every step, stream and
                  output (our per-step Mse averaged over the steps is the same number)
    grads         state_dict name -> gradient of `loss`
    state_grads   the gradient of `loss` with respect to state0, as state0
    train         {"optimizer": "Adam", "args": {"lr": 0.01}, "losses": [WINDOWS losses, each
                  before its window's update], "params": the parameters after the last window,
                  "final_state": the state carried out of the last window (computed in its
                  forward pass, before its update)}
"""

import math
import zlib
from pathlib import Path

import torch
from torch import nn

from make_optim_fixtures import dumps

ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = ROOT / "tests" / "fixtures" / "sequence"
COMMAND = "python3 scripts/torch_sequence.py"
STEPS = 8
BATCH = 3
WINDOWS = 5
OUT = 2
LR = 0.01
# Far above the float32 difference between our pre-activations and torch's (about 1e-6 after
# five windows), so no ReLU takes another branch than torch's.
RELU_MARGIN = 1e-3
DTYPES = {torch.float32: "f32", torch.float64: "f64"}
LAYOUT = (
    "matrices are row-major nested lists indexed (row, column) as our SMatrix; a time step's "
    "batch has one column per stream: xs[t][i][j] = torch x[t, j, i], h[k][i][j] = torch "
    "h[k, j, i]; parameters nested as their torch shape"
)

# name -> (recurrent layer as network! spells it, torch expression, keyword arguments)
CONFIGS = {
    "gru": ("GRU(3, 5)", "nn.GRU(3, 5)", dict(kind="GRU")),
    "lstm": ("LSTM(3, 5)", "nn.LSTM(3, 5)", dict(kind="LSTM")),
    "lstm_2layers": (
        "LSTM(3, 5, num_layers = 2)",
        "nn.LSTM(3, 5, num_layers=2)",
        dict(kind="LSTM", num_layers=2),
    ),
    "rnn": ("RNN(3, 5)", "nn.RNN(3, 5)", dict(kind="RNN")),
    "rnn_relu_2layers": (
        'RNN(3, 5, nonlinearity = "relu", num_layers = 2)',
        "nn.RNN(3, 5, nonlinearity='relu', num_layers=2)",
        dict(kind="RNN", nonlinearity="relu", num_layers=2),
    ),
    "gru_no_bias": (
        "GRU(3, 5, bias = false)",
        "nn.GRU(3, 5, bias=False)",
        dict(kind="GRU", bias=False),
    ),
}
INPUT = 3
HIDDEN = 5
GATES = {"GRU": 3, "LSTM": 4, "RNN": 1}


def recurrent_args(kwargs):
    """The full argument record of a configuration, torch's defaults filled in."""
    args = {
        "kind": kwargs["kind"],
        "input_size": INPUT,
        "hidden_size": HIDDEN,
        "num_layers": kwargs.get("num_layers", 1),
        "bias": kwargs.get("bias", True),
    }
    if kwargs["kind"] == "RNN":
        args["nonlinearity"] = kwargs.get("nonlinearity", "tanh")
    return args


class Net(nn.Module):
    """The recurrent layer at position 0, nn.Linear at position 1, as nn.Sequential names them."""

    def __init__(self, args, dtype):
        super().__init__()
        kind = args["kind"]
        extra = {"nonlinearity": args["nonlinearity"]} if kind == "RNN" else {}
        rnn = getattr(nn, kind)(
            INPUT, HIDDEN, num_layers=args["num_layers"], bias=args["bias"], dtype=dtype, **extra
        )
        self.add_module("0", rnn)
        self.add_module("1", nn.Linear(HIDDEN, OUT, dtype=dtype))
        self.lstm = kind == "LSTM"

    def forward(self, x, state):
        rnn, head = self._modules["0"], self._modules["1"]
        y, final = rnn(x, state["h"] if not self.lstm else (state["h"], state["c"]))
        if self.lstm:
            final = {"h": final[0], "c": final[1]}
        else:
            final = {"h": final}
        return head(y), final


def draw(name, args):
    """Every value of a configuration, in float64: parameters (state_dict order), state0,
    windows."""
    gen = torch.Generator().manual_seed(zlib.crc32(name.encode()))
    shapes = Net(args, torch.float64).state_dict()
    params = {}
    for key, value in shapes.items():
        # torch's bound is 1/sqrt(hidden_size) for the recurrent layer and 1/sqrt(in_features)
        # for the Linear head, whose input is the hidden state: the same number.
        bound = 1.0 / math.sqrt(HIDDEN)
        params[key] = (torch.rand(value.shape, generator=gen, dtype=torch.float64) * 2 - 1) * bound
    k = args["num_layers"]
    state0 = {"h": (torch.rand((k, BATCH, HIDDEN), generator=gen, dtype=torch.float64) * 2 - 1) * 0.9}
    if args["kind"] == "LSTM":
        state0["c"] = (torch.rand((k, BATCH, HIDDEN), generator=gen, dtype=torch.float64) * 2 - 1) * 1.5
    windows = []
    for _ in range(WINDOWS):
        xs = torch.randn((STEPS, BATCH, INPUT), generator=gen, dtype=torch.float64)
        ys = 0.5 * torch.randn((STEPS, BATCH, OUT), generator=gen, dtype=torch.float64)
        windows.append((xs, ys))
    return params, state0, windows


def build(args, params, dtype):
    net = Net(args, dtype)
    with torch.no_grad():
        for key, p in net.state_dict().items():
            p.copy_(params[key].to(dtype))
    return net


def relu_preactivations(net, x, state):
    """Every pre-activation of a ReLU RNN over the window `x` from `state`, layer by layer, by
    torch's equation h' = relu(W_ih x + b_ih + W_hh h + b_hh)."""
    rnn = net._modules["0"]
    found = []
    inputs = x
    for k in range(rnn.num_layers):
        w_ih, w_hh = getattr(rnn, f"weight_ih_l{k}"), getattr(rnn, f"weight_hh_l{k}")
        b = 0
        if rnn.bias:
            b = getattr(rnn, f"bias_ih_l{k}") + getattr(rnn, f"bias_hh_l{k}")
        h = state["h"][k]
        outputs = []
        for t in range(x.shape[0]):
            a = inputs[t] @ w_ih.T + h @ w_hh.T + b
            found.append(a.detach())
            h = torch.relu(a)
            outputs.append(h)
        inputs = torch.stack(outputs)
    return torch.cat([a.reshape(-1) for a in found])


def ours(t):
    """A torch (..., N, F) tensor as our nested lists [..][F][N] (see Layout)."""
    return t.detach().transpose(-1, -2).tolist()


def state_lists(state):
    return {key: ours(value) for key, value in state.items()}


def tensors(named):
    return {key: value.detach().tolist() for key, value in named.items()}


def run(name, args, params, state0, windows, dtype):
    """torch's results for one configuration in one dtype (the float64 draws rounded to it)."""
    net = build(args, params, dtype)
    state0 = {key: value.to(dtype) for key, value in state0.items()}
    windows = [(xs.to(dtype), ys.to(dtype)) for xs, ys in windows]
    mse = nn.MSELoss()
    relu = args.get("nonlinearity") == "relu"

    # The first window from state0: outputs, final state, loss, gradients.
    xs, ys = windows[0]
    start = {key: value.clone().requires_grad_() for key, value in state0.items()}
    net.zero_grad()
    outputs, final = net(xs, start)
    loss = mse(outputs, ys)
    loss.backward()
    margins = []
    if relu:
        margins.append(relu_preactivations(net, xs, state0).abs().min().item())
    record = {
        "outputs": ours(outputs),
        "final_state": state_lists(final),
        "loss": loss.item(),
        "grads": tensors({key: p.grad for key, p in net.named_parameters()}),
        "state_grads": state_lists({key: value.grad for key, value in start.items()}),
    }

    # Adam over the windows, the state carried detached.
    opt = torch.optim.Adam(net.parameters(), lr=LR, foreach=False)
    state = {key: value.clone() for key, value in state0.items()}
    losses = []
    smallest = math.inf
    for xs, ys in windows:
        if relu:
            margins.append(relu_preactivations(net, xs, state).abs().min().item())
        opt.zero_grad()
        outputs, final = net(xs, state)
        loss = mse(outputs, ys)
        loss.backward()
        smallest = min([smallest] + [p.grad.abs().min().item() for p in net.parameters()])
        opt.step()
        losses.append(loss.item())
        state = {key: value.detach() for key, value in final.items()}
    record["train"] = {
        "optimizer": "Adam",
        "args": {"lr": LR},
        "losses": losses,
        "params": tensors(dict(net.named_parameters())),
        "final_state": state_lists(state),
    }
    margin = min(margins) if margins else math.inf
    return record, margin, smallest


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
    inputs, as a fraction of the tests' float32 tolerance REL |exact| + ABS, per category: the
    room our float32 results, rounded differently, can expect to need. Printed only."""
    worst = {}
    for (path, a), (path2, b) in zip(values(f32), values(exact), strict=True):
        assert path == path2
        category = " ".join(path[:2]) if path[0] == "train" else path[0]
        used = abs(a - b) / (1e-5 * abs(b) + 1e-6)
        worst[category] = max(worst.get(category, 0.0), used)
    print(f"  {name}: torch f32 vs exact, fraction of (1e-5 |x| + 1e-6) used:")
    for category, used in sorted(worst.items()):
        print(f"    {category:<24} {used:.3f}")


def main():
    torch.set_num_threads(1)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    for name, (layer, torch_expr, kwargs) in CONFIGS.items():
        args = recurrent_args(kwargs)
        attempt = 0
        while True:
            seed_name = name if attempt == 0 else f"{name}/{attempt}"
            params, state0, windows = draw(seed_name, args)
            results = {dtype: run(name, args, params, state0, windows, dtype) for dtype in DTYPES}
            margin = min(margin for _, margin, _ in results.values())
            if margin >= RELU_MARGIN:
                if margin < math.inf:
                    print(f"  {name}: ReLU pre-activations at least {margin:.2e} from 0")
                break
            print(f"  {name}: a ReLU pre-activation {margin:.2e} from 0 with seed {seed_name!r}")
            attempt += 1
        # The exact results at the float32 inputs: the float32 draws, computed in float64.
        rounded = {key: value.to(torch.float32).to(torch.float64) for key, value in params.items()}
        exact, _, _ = run(
            name,
            args,
            rounded,
            {key: value.to(torch.float32).to(torch.float64) for key, value in state0.items()},
            [(xs.to(torch.float32).to(torch.float64), ys.to(torch.float32).to(torch.float64))
             for xs, ys in windows],
            torch.float64,
        )
        probe(name, results[torch.float32][0], exact)
        for dtype, suffix in DTYPES.items():
            record, _, smallest = results[dtype]
            # Adam's step lr m / (sqrt(v) + eps) is about lr g / |g|: a gradient as small as its
            # own rounding would make a parameter's trajectory a matter of rounding.
            print(f"  {name} {suffix}: smallest |gradient| fed to Adam {smallest:.2e}")
            file = {
                "name": f"{name}_{suffix}",
                "torch_version": torch.__version__,
                "command": COMMAND,
                "dtype": str(dtype).removeprefix("torch."),
                "layers": [layer, f"Linear({HIDDEN}, {OUT})"],
                "torch": torch_expr,
                "recurrent": args,
                "seed": seed_name,
                "steps": STEPS,
                "batch": BATCH,
                "layout": LAYOUT,
                "loss_fn": {"name": "Mse", "torch": "nn.MSELoss()"},
                "params": tensors({key: value.to(dtype) for key, value in params.items()}),
                "state0": state_lists({key: value.to(dtype) for key, value in state0.items()}),
                "windows": [
                    {"xs": ours(xs.to(dtype)), "ys": ours(ys.to(dtype))} for xs, ys in windows
                ],
                **record,
            }
            path = OUT_DIR / f"{name}_{suffix}.json"
            path.write_text(dumps(file) + "\n")
            print(f"wrote {path.relative_to(ROOT)} ({path.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
