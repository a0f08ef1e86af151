// Networks of every layer kind, declared once for the two crates that must compile them
// without a warning: the root package's `tests/deny_warnings.rs` (with std) and this crate's
// `coverage` module (without). `include!`d by both, so the two lists cannot drift apart.

network! {
    /// The classic XOR network, `f32`.
    pub struct Xor {
        Linear(2, 8),
        ReLU,
        Linear(8, 1),
    }
}

network! {
    /// Every layer kind, `f64`, with an activation before the first `Linear` and a trailing
    /// comma.
    #[doc(alias = "every_kind")]
    #[must_use]
    pub struct AllKinds64: f64 {
        Tanh,
        Linear(3, 5),
        ReLU,
        Linear(5, 4),
        LeakyReLU,
        Linear(4, 4),
        LeakyReLU(0.2),
        Linear(4, 6),
        Sigmoid,
        Identity,
        Linear(6, 3),
    }
}

network! {
    /// Every layer kind, `f32`, with a negative slope and an integer slope.
    pub struct AllKinds32: f32 {
        Identity,
        Linear(4, 6),
        Sigmoid,
        Linear(6, 6),
        LeakyReLU(-0.5),
        Linear(6, 5),
        LeakyReLU(2),
        Linear(5, 3),
        Tanh,
        Linear(3, 3),
        ReLU,
    }
}

network! {
    /// Swish with its slope as a named constant.
    activation Swish(beta = 1.0) = |x| x * sigmoid(beta * x);
    /// A constant derivative: its generated closures take no variable.
    activation Doubled = |x| 2.0 * x;

    /// Every activation of PyTorch's family, `f32`, with a learned slope first (so its
    /// backward pass passes nothing down) and user-defined ones.
    pub struct Family32 {
        PReLU,
        Linear(4, 6),
        ELU(alpha = 0.5),
        SELU,
        CELU,
        GELU,
        GELU(approximate = "tanh"),
        SiLU,
        Mish,
        Softplus(beta = 2.0, threshold = 5.0),
        Softsign,
        Linear(6, 6),
        Hardtanh(-2.0, 2.0),
        ReLU6,
        Hardsigmoid,
        Hardswish,
        LogSigmoid,
        Tanhshrink,
        PReLU(6, init = 0.1),
        Swish,
        Swish(beta = 2.0),
        Doubled,
        |x| if x > 0.5 { x * x } else { x - 0.25 },
        |z| { let s = sigmoid(z); z * s + 1.0 },
        Linear(6, 3),
        Softmax(dim = 1),
    }

    /// The same family in `f64`, ending in a log-softmax.
    pub struct Family64: f64 {
        Linear(3, 4),
        |x| max(x, 0.0) + 0.1 * min(x, 0.0),
        Swish(beta = 0.5),
        Linear(4, 3),
        LogSoftmax(-1),
    }
}

network! {
    /// Shapes, normalisation and dropout, `f32`.
    pub struct Shaped {
        Unflatten(1, 6, 6),
        Conv2d(1, 4, 3, padding = 1),
        BatchNorm2d(4),
        ReLU,
        MaxPool2d(2),
        Conv2d(4, 4, (3, 1), padding = "valid", bias = false),
        AvgPool2d((1, 3)),
        Flatten,
        LayerNorm(4, elementwise_affine = false),
        Dropout(0.25),
        Linear(4, 3),
    }

    /// One-dimensional shapes, `f64`.
    pub struct Shaped1d: f64 {
        Unflatten(2, 8),
        Conv1d(2, 3, 3, stride = 2, padding = 1),
        BatchNorm1d(3, affine = false),
        Tanh,
        MaxPool1d(2),
        AdaptiveAvgPool1d(1),
        Flatten,
        Linear(3, 1),
    }
}

network! {
    /// An amp model: an LSTM with a skip connection, one input, one output.
    pub struct Amp { Residual(LSTM(1, 8), Linear(8, 1)) }

    /// Every recurrent kind, `f64`, stacked, without biases, with activations between.
    pub struct Recurrent64: f64 {
        Linear(3, 4),
        GRU(4, 6, num_layers = 2),
        Tanh,
        RNN(6, 5, nonlinearity = "relu", bias = false),
        LSTM(5, 3, num_layers = 2, bias = false),
        Linear(3, 2),
    }
}
