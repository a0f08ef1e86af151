//! `Softmax(dim = 1)` and `LogSoftmax(dim = 1)` over each sample's features, as torch's on a
//! `(N, features)` batch. Not elementwise: each output depends on every feature of its
//! sample, so the backward pass is the Jacobian-vector product, which needs only the cached
//! output: `dx = y (dy - <dy, y>)` for softmax, `dx = dy - exp(y) sum(dy)` for log-softmax.

use proc_macro2::TokenStream;
use quote::quote;

use super::{ArgKind, ArgSpec, Entry, Equations, Kind, Lines, Site};
use crate::model::{Count, Layer};

/// `dim`: a sample's features are dimension 1 (or -1) of torch's `(N, features)` batch.
const DIM: &[ArgSpec<'static>] = &[ArgSpec {
    name: "dim",
    kind: ArgKind::Dim {
        allowed: &[1, -1],
        why: "it runs over each sample's features, dimension 1 (or -1) of a batch `(N, features)`",
    },
}];

/// `Softmax(dim = 1)`.
pub const SOFTMAX: Entry<'static> = Entry {
    name: "Softmax",
    args: DIM,
    build: |_| Box::new(Softmax { log: false }),
};

/// `LogSoftmax(dim = 1)`.
pub const LOG_SOFTMAX: Entry<'static> = Entry {
    name: "LogSoftmax",
    args: DIM,
    build: |_| Box::new(Softmax { log: true }),
};

/// A softmax or log-softmax layer.
struct Softmax {
    log: bool,
}

impl Kind for Softmax {
    fn torch(&self) -> String {
        let name = if self.log { "LogSoftmax" } else { "Softmax" };
        format!("`nn.{name}(dim=1)`")
    }

    fn flat_only(&self) -> bool {
        true
    }

    fn forward(&self, s: &Site) -> TokenStream {
        let (rt, input) = (s.rt, &s.input_ref);
        match self.log {
            false => s.bind(quote!(#rt::softmax(#input))),
            true => s.bind(quote!(#rt::log_softmax(#input))),
        }
    }

    fn backward(&self, s: &Site) -> TokenStream {
        let Some(dx) = &s.grad_input else {
            return TokenStream::new();
        };
        let (rt, dy, y) = (s.rt, &s.grad_output, &s.output_ref);
        match self.log {
            false => quote!(let #dx = #rt::softmax_backward(#dy, #y);),
            true => quote!(let #dx = #rt::log_softmax_backward(#dy, #y);),
        }
    }

    // Per feature: the max (a comparison), a subtract, an exp, the sum's add, and a divide
    // (softmax) or a subtract (log-softmax, whose one log per sample is not counted).
    fn forward_flops(&self, layer: &Layer) -> Count {
        layer.output.count().scaled(5)
    }

    // Per feature: the dot product or sum (a multiply-add), then a subtract and a multiply.
    fn backward_flops(&self, layer: &Layer, pass_down: bool) -> Count {
        layer.output.count().scaled(if pass_down { 4 } else { 0 })
    }

    fn equations(&self, eq: &Equations) -> Lines {
        let (input, output) = (&eq.input, &eq.output);
        if self.log {
            Lines {
                forward: vec![format!(
                    "{output} = {input} - ln(Σ exp({input})) per sample (log-softmax)"
                )],
                backward: vec![format!(
                    "δ{input} = δ{output} - exp({output}) Σ δ{output} per sample"
                )],
            }
        } else {
            Lines {
                forward: vec![format!(
                    "{output} = exp({input}) / Σ exp({input}) per sample (softmax)"
                )],
                backward: vec![format!(
                    "δ{input} = {output} ⊙ (δ{output} - ⟨δ{output}, {output}⟩) per sample"
                )],
            }
        }
    }
}
