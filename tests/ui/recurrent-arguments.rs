// A recurrent layer's flags and choices are torch's: bias is true or false, nonlinearity
// "tanh" or "relu", and keywords torch has that network! does not (batch_first) are named.
use nn_runtime::prelude::*;

network! {
    struct N {
        GRU(3, 5, bias = 1),
        RNN(5, 4, nonlinearity = "sigmoid"),
        LSTM(4, 2, batch_first = true),
    }
}

fn main() {}
