//! `GRU`, `LSTM` and `RNN(input_size, hidden_size)`, with `num_layers`, `bias` and RNN's
//! `nonlinearity`: torch's recurrent layers, stepped one time step at a time.
//!
//! Their parameters are one runtime block (`Gru`, `Lstm`, `Rnn`) with torch's tensors and
//! names (`{i}.weight_ih_l{k}` ...). Their state (the hidden state, and an LSTM's cell state,
//! per layer) is a field of the network's generated `{Name}State`; the forward step reads the
//! previous state and leaves the new one, keeping what the backward step needs; the backward
//! step adds this step's parameter gradients and carries the gradient with respect to the
//! state back to the previous step, which is backpropagation through time.

use super::TensorSpec;
use proc_macro2::{Span, TokenStream};
use quote::quote;

use super::{
    Access, ArgKind, ArgSpec, Entry, Equations, Kind, Lines, Params, Role, Site, StateSpec, Value,
    size,
};
use crate::model::{Count, Layer, Scalar, Size};

/// Which recurrent layer.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Cell {
    Gru,
    Lstm,
    /// torch's `RNN`, with `nonlinearity = "relu"` when true.
    Rnn {
        relu: bool,
    },
}

impl Cell {
    /// Gates per hidden unit: the rows of `weight_ih` are this many times `hidden_size`.
    fn gates(self) -> usize {
        match self {
            Cell::Gru => 3,
            Cell::Lstm => 4,
            Cell::Rnn { .. } => 1,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Cell::Gru => "GRU",
            Cell::Lstm => "LSTM",
            Cell::Rnn { .. } => "RNN",
        }
    }
}

const SIZES: [ArgSpec<'static>; 3] = [
    ArgSpec {
        name: "input_size",
        kind: ArgKind::Size,
    },
    ArgSpec {
        name: "hidden_size",
        kind: ArgKind::Size,
    },
    ArgSpec {
        name: "num_layers",
        kind: ArgKind::OptionalSize { default: 1 },
    },
];

const BIAS: ArgSpec<'static> = ArgSpec {
    name: "bias",
    kind: ArgKind::Bool { default: true },
};

/// `GRU(input_size, hidden_size, num_layers = 1, bias = true)`.
pub const GRU: Entry<'static> = Entry {
    name: "GRU",
    args: &[SIZES[0], SIZES[1], SIZES[2], BIAS],
    build: |args| build(Cell::Gru, &args, 3),
};

/// `LSTM(input_size, hidden_size, num_layers = 1, bias = true)`.
pub const LSTM: Entry<'static> = Entry {
    name: "LSTM",
    args: &[SIZES[0], SIZES[1], SIZES[2], BIAS],
    build: |args| build(Cell::Lstm, &args, 3),
};

/// `RNN(input_size, hidden_size, num_layers = 1, nonlinearity = "tanh", bias = true)`, in
/// torch's order.
pub const RNN: Entry<'static> = Entry {
    name: "RNN",
    args: &[
        SIZES[0],
        SIZES[1],
        SIZES[2],
        ArgSpec {
            name: "nonlinearity",
            kind: ArgKind::Choice {
                default: "tanh",
                choices: &["tanh", "relu"],
            },
        },
        BIAS,
    ],
    build: |args| {
        let relu = matches!(args.get(3), Some(Value::Str(s)) if s == "relu");
        build(Cell::Rnn { relu }, &args, 4)
    },
};

/// The layer from its checked arguments; `bias` is argument `bias_at`.
fn build(cell: Cell, args: &[Value], bias_at: usize) -> Box<dyn Kind> {
    let ((input, span), (hidden, out_span)) = (size(args, 0), size(args, 1));
    let layers = match args.get(2) {
        Some(Value::Size(n, _)) => *n,
        _ => 1,
    };
    let bias = !matches!(args.get(bias_at), Some(Value::Bool(false)));
    Box::new(Recurrent {
        cell,
        input,
        hidden,
        layers,
        bias,
        span,
        out_span,
    })
}

/// A recurrent layer.
struct Recurrent {
    cell: Cell,
    input: usize,
    hidden: usize,
    layers: usize,
    bias: bool,
    span: Span,
    out_span: Span,
}

impl Recurrent {
    /// The const generic arguments `T, IN, H, GH, L, REST`.
    fn generics(&self, scalar: Scalar) -> TokenStream {
        let (t, input, hidden) = (scalar.tokens(), self.input, self.hidden);
        let (gh, layers, rest) = (self.cell.gates() * hidden, self.layers, self.layers - 1);
        quote!(#t, #input, #hidden, #gh, #layers, #rest)
    }

    /// Operations of one step of one layer with `input` inputs, per sample: the gate
    /// products (a multiply-add each) and a few operations per gate.
    fn step_flops(&self, input: usize) -> usize {
        let gh = self.cell.gates() * self.hidden;
        2 * gh * (input + self.hidden) + 4 * gh
    }

    fn flops(&self) -> usize {
        self.step_flops(self.input) + (self.layers - 1) * self.step_flops(self.hidden)
    }
}

impl Kind for Recurrent {
    fn torch(&self) -> String {
        let mut text = format!("nn.{}({}, {}", self.cell.name(), self.input, self.hidden);
        if self.layers > 1 {
            text.push_str(&format!(", num_layers={}", self.layers));
        }
        if let Cell::Rnn { relu: true } = self.cell {
            text.push_str(", nonlinearity='relu'");
        }
        if !self.bias {
            text.push_str(", bias=False");
        }
        format!("`{text})`")
    }

    fn declared_input(&self) -> Option<Size> {
        Some(Size::Known(self.input))
    }

    fn input_span(&self) -> Option<Span> {
        Some(self.span)
    }

    fn output_span(&self) -> Option<Span> {
        Some(self.out_span)
    }

    fn output(&self, _input: &Size) -> Size {
        Size::Known(self.hidden)
    }

    fn flat_only(&self) -> bool {
        true
    }

    fn params(&self) -> Option<&dyn Params> {
        Some(self)
    }

    fn state(&self, _layer: &Layer, scalar: Scalar) -> Option<StateSpec> {
        let rt = crate::expand::rt_absolute();
        let (t, hidden, layers) = (scalar.tokens(), self.hidden, self.layers);
        let generics = self.generics(scalar);
        let (ty, cache, what) = match self.cell {
            Cell::Lstm => (
                quote!(#rt::LstmState<#t, #hidden, #layers, __B>),
                quote!(#rt::LstmCache<#generics, __B>),
                "hidden state `h[k]` and cell state `c[k]`",
            ),
            Cell::Gru => (
                quote!(#rt::HiddenState<#t, #hidden, #layers, __B>),
                quote!(#rt::GruCache<#generics, __B>),
                "hidden state `h[k]`",
            ),
            Cell::Rnn { .. } => (
                quote!(#rt::HiddenState<#t, #hidden, #layers, __B>),
                quote!(#rt::RnnCache<#generics, __B>),
                "hidden state `h[k]`",
            ),
        };
        let doc = format!(
            " The {what} of each of its {layers} layer(s), `{hidden} x B` (one column per stream), \
             as torch's `h_0`/`c_0` of shape `(num_layers, B, {hidden})`."
        );
        Some(StateSpec { ty, cache, doc })
    }

    // The step: the previous state in, the new one left, what the backward step needs kept.
    fn forward(&self, s: &Site) -> TokenStream {
        super::step_forward(s, self.state(s.layer, s.scalar))
    }

    // Backpropagation through one step: parameters' gradients added, the state's carried back.
    fn backward(&self, s: &Site) -> TokenStream {
        super::step_backward(s)
    }

    fn forward_flops(&self, _layer: &Layer) -> Count {
        Count::known(self.flops())
    }

    // The weight gradients and the gradients of the input and state: about twice the forward.
    fn backward_flops(&self, _layer: &Layer, _pass_down: bool) -> Count {
        Count::known(2 * self.flops())
    }

    // The output, and per layer its input, previous state and gates.
    fn activations(&self, layer: &Layer) -> Count {
        let per_layer = (self.cell.gates() + 3) * self.hidden;
        Count::sum([layer.output.count(), Count::known(per_layer * self.layers)])
    }

    fn equations(&self, eq: &Equations) -> Lines {
        let (input, output, f) = (&eq.input, &eq.output, &eq.field);
        let name = self.cell.name();
        let mut backward = vec![format!(
            "∂L/∂{f}.* += this step's share, from δ{output} and the state's gradient δstate.{f} carried back from the next step (backpropagation through time); δstate.{f} becomes the previous step's"
        )];
        if eq.pass_down {
            backward.push(format!(
                "δ{input} = the {name} step's gradient of its input"
            ));
        }
        Lines {
            forward: vec![format!(
                "{output} = h_t, the new hidden state of {name} stepped from state.{f} on {input}; state.{f} is updated"
            )],
            backward,
        }
    }
}

impl Params for Recurrent {
    fn ty(&self, _: &Layer, scalar: Scalar, _: Role) -> TokenStream {
        let rt = crate::expand::rt_absolute();
        let (generics, bias) = (self.generics(scalar), self.bias);
        match self.cell {
            Cell::Gru => quote!(#rt::Gru<#generics, #bias>),
            Cell::Lstm => quote!(#rt::Lstm<#generics, #bias>),
            Cell::Rnn { relu } => quote!(#rt::Rnn<#generics, #bias, #relu>),
        }
    }

    fn count(&self, _: &Layer) -> Count {
        let gh = self.cell.gates() * self.hidden;
        let bias = if self.bias { 2 * gh } else { 0 };
        let first = gh * (self.input + self.hidden) + bias;
        let rest = (self.layers - 1) * (gh * 2 * self.hidden + bias);
        Count::known(first + rest)
    }

    fn tensors(&self) -> Count {
        Count::known(self.layers * if self.bias { 4 } else { 2 })
    }

    fn reset(&self, place: &TokenStream) -> TokenStream {
        quote!(#place.reset(init);)
    }

    fn visit(&self, _: &Layer, _: Scalar, place: &TokenStream, access: Access) -> TokenStream {
        super::visit_block(place, access)
    }

    fn doc(&self, layer: &Layer, role: Role) -> String {
        let what = match role {
            Role::Params => "Parameters of",
            Role::Grads => "Gradient of the loss with respect to the parameters of",
        };
        let p = &layer.prefix;
        let bias = if self.bias {
            format!(", `{p}.bias_ih_l{{k}}`, `{p}.bias_hh_l{{k}}`")
        } else {
            String::new()
        };
        format!(
            " {what} layer `{p}`, `{}`: layer 0 in `first`, layer k > 0 in `rest[k - 1]`; \
             `state_dict` names `{p}.weight_ih_l{{k}}`, `{p}.weight_hh_l{{k}}`{bias}.",
            layer.source
        )
    }

    // Layer 0 in `first`, layer k > 0 in `rest[k - 1]`, each as torch names them.
    fn tensor_list(&self, _: &Layer) -> Option<Vec<TensorSpec>> {
        let (h, gh) = (self.hidden, self.cell.gates() * self.hidden);
        let mut list = Vec::new();
        for k in 0..self.layers {
            let cell = match k {
                0 => quote!(.first),
                _ => {
                    let i = proc_macro2::Literal::usize_unsuffixed(k - 1);
                    quote!(.rest[#i])
                }
            };
            let input = if k == 0 { self.input } else { h };
            list.push(TensorSpec::float(
                format!("weight_ih_l{k}"),
                vec![gh, input],
                quote!(#cell.weight_ih),
            ));
            list.push(TensorSpec::float(
                format!("weight_hh_l{k}"),
                vec![gh, h],
                quote!(#cell.weight_hh),
            ));
            if self.bias {
                list.push(TensorSpec::float(
                    format!("bias_ih_l{k}"),
                    vec![gh],
                    quote!(#cell.bias_ih),
                ));
                list.push(TensorSpec::float(
                    format!("bias_hh_l{k}"),
                    vec![gh],
                    quote!(#cell.bias_hh),
                ));
            }
        }
        Some(list)
    }
}
