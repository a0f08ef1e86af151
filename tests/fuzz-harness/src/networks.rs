//! The networks whose loaders the weights fuzzer feeds: between them every kind of tensor a
//! file can hold (f32 and f64, nested and named prefixes, convolution kernels, recurrent gates,
//! BatchNorm's running statistics and its I64 count). Four of them are the models of
//! `scripts/torch_weights.py`, so the PyTorch-written files of `tests/fixtures/weights/` load
//! into them and seed the fuzzer with valid files.

use nn_runtime::prelude::*;

network! {
    /// An f32 MLP: `xor_torch.safetensors`.
    pub struct Xor { Linear(2, 8), ReLU, Linear(8, 1) }
}

network! {
    /// An f64 encoder, nested in `Big`.
    pub struct Enc: f64 { Linear(3, 4), Tanh }
}

network! {
    /// f64 with a nested network and a residual block: `big_torch.safetensors`.
    pub struct Big: f64 { Enc, Residual(Linear(4, 4), ReLU), Linear(4, 2) }
}

network! {
    /// The encoder of `Named`, numbered inside its own prefix.
    pub struct NamedEncoder { Linear(3, 6), Tanh, Linear(6, 4) }
}

network! {
    /// Named layers around a nested network: `named_torch.safetensors`.
    pub struct Named { encoder: NamedEncoder, act: ReLU, head: Linear(4, 2) }
}

network! {
    /// A convolutional network: `conv_torch.safetensors`.
    pub struct ConvTorch {
        Unflatten(1, 8, 8),
        Conv2d(1, 4, 3, padding = 1),
        ReLU,
        MaxPool2d(2),
        Conv2d(4, 8, 3, padding = 1),
        ReLU,
        AdaptiveAvgPool2d(1),
        Flatten,
        Linear(8, 10),
    }
}

network! {
    /// Convolutions with BatchNorm (running statistics and the I64 `num_batches_tracked`),
    /// grouped convolution and LayerNorm, in f64.
    pub struct ConvBn: f64 {
        Unflatten(1, 6, 6),
        Conv2d(1, 4, 3, padding = 1),
        BatchNorm2d(4),
        ReLU,
        MaxPool2d(2),
        Conv2d(4, 4, 3, padding = "same", groups = 2),
        AdaptiveAvgPool2d(1),
        Flatten,
        LayerNorm(4),
        BatchNorm1d(4),
        Linear(4, 3),
    }
}

network! {
    /// A stacked LSTM under a name: `rnn_torch.safetensors`.
    pub struct RnnHead { rnn: LSTM(2, 6, num_layers = 3), head: Linear(6, 1) }
}

network! {
    /// A stacked GRU without biases, an RNN and a PReLU.
    pub struct Stacked { GRU(2, 5, num_layers = 2, bias = false), RNN(5, 4), PReLU, Linear(4, 2) }
}
