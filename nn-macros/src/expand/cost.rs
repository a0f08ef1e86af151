//! Cost facts as consts: operations per sample and bytes, for users who must budget a
//! real-time loop. Counted by the layer table's convention (see `layers::Cost`), layer by
//! layer, for the code that is actually generated: the backward pass stops where the chain
//! rule does, and a nested network's backward recomputes its forward pass.

use proc_macro2::{Literal, TokenStream};
use quote::quote;

use crate::layers::Flops;
use crate::model::{Layer, Op, Size, has_params, sum};

/// Operations of the forward pass of `layers`, per sample.
pub fn forward(layers: &[Layer]) -> TokenStream {
    sum(layers.iter().map(|layer| match &layer.op {
        Op::Table(kind, _) => flops(&kind.cost.forward, layer),
        Op::Nested(net) => quote!(<#net as ::nn_runtime::__private::Network>::FLOPS_FORWARD),
        // f(x), then the addition of x.
        Op::Residual(inner) => sum([forward(inner), layer.output.tokens()].into_iter()),
    }))
}

/// Operations of the backward pass of `layers`, per sample; with `input_grad`, down to the
/// gradient of the input.
pub fn backward(layers: &[Layer], input_grad: bool) -> TokenStream {
    sum(layers.iter().enumerate().map(|(j, layer)| {
        let pass_down = input_grad || has_params(&layers[..j]);
        match &layer.op {
            Op::Table(kind, _) => {
                let params = if kind.params.is_some() {
                    flops(&kind.cost.backward_params, layer)
                } else {
                    quote!(0)
                };
                let input = if pass_down {
                    flops(&kind.cost.backward_input, layer)
                } else {
                    quote!(0)
                };
                sum([params, input].into_iter())
            }
            Op::Nested(net) => {
                quote!(<#net as ::nn_runtime::__private::Network>::FLOPS_NESTED_BACKWARD)
            }
            Op::Residual(inner) if pass_down || has_params(inner) => {
                // The block's own chain, then the sum of its two paths' gradients.
                let merge = if pass_down {
                    layer.output.tokens()
                } else {
                    quote!(0)
                };
                sum([backward(inner, pass_down), merge].into_iter())
            }
            Op::Residual(_) => quote!(0),
        }
    }))
}

/// Scalars of every layer's output kept for the backward pass, per sample.
pub fn activations(layers: &[Layer]) -> TokenStream {
    sum(layers.iter().map(|layer| match &layer.op {
        Op::Nested(net) => quote!(<#net as ::nn_runtime::__private::Network>::ACTIVATION_BYTES
            / <<#net as ::nn_runtime::__private::Network>::Scalar as ::nn_runtime::__private::Real>::BYTES),
        Op::Residual(inner) => sum([activations(inner), layer.output.tokens()].into_iter()),
        Op::Table(..) => layer.output.tokens(),
    }))
}

/// `per_weight * in * out + per_output * out` for a layer, folded where its sizes are known.
fn flops(f: &Flops, layer: &Layer) -> TokenStream {
    match (&layer.input, &layer.output) {
        (Size::Known(i), Size::Known(o)) => {
            let n = Literal::usize_unsuffixed(f.per_weight * i * o + f.per_output * o);
            quote!(#n)
        }
        (input, output) => {
            let (i, o) = (input.tokens(), output.tokens());
            let (w, b) = (
                Literal::usize_unsuffixed(f.per_weight),
                Literal::usize_unsuffixed(f.per_output),
            );
            quote!((#w * #i * #o + #b * #o))
        }
    }
}
