//! The forward pass and the backward pass, as straight-line code.
//!
//! Variables are numbered by position: `x{i}` is the input of layer `i` (so `x0` is the batch
//! and `x{n}` the output) and `d{i}` the gradient of the loss with respect to `x{i}`; inside a
//! residual block at position `i` they are `x{i}_{j}` and `d{i}_{j}`. The backward pass walks
//! the layers in reverse and asks the layer table for each one's chain-rule step: the chain
//! rule applied at compile time.

use proc_macro2::{Ident, TokenStream};
use quote::{format_ident, quote, quote_spanned};

use crate::layers::Site;
use crate::model::{Layer, Network, Op, has_params};

/// `let x1 = ...; let x2 = ...; ...` from `x0` (a reference to the batch), and the variable
/// holding the output.
pub fn forward(model: &Network) -> (TokenStream, Ident) {
    let code = forward_chain(model, &model.layers, "");
    (code, x("", model.layers.len()))
}

/// The chain rule from `d{n}` (the gradient of the output) down to the first layer with
/// parameters, writing every parameter gradient into `grads`; with `input_grad`, on down to
/// `d0`, the gradient with respect to the input (what a network nesting this one needs).
pub fn backward(model: &Network, input_grad: bool) -> TokenStream {
    backward_chain(model, &model.layers, "", input_grad, None)
}

/// The chain rule from `d{n}` down to the first layer with parameters, with a plain SGD step of
/// rate `rate` (an expression) fused in: each layer's parameters are updated in place as soon
/// as the gradient for the layer below has been taken from them, and no gradient is stored.
/// Only for networks that nest no other network.
pub fn backward_sgd(model: &Network, rate: &TokenStream) -> TokenStream {
    backward_chain(model, &model.layers, "", false, Some(rate))
}

/// The activation variable `j` of the chain with variable prefix `prefix`.
fn x(prefix: &str, j: usize) -> Ident {
    format_ident!("x{prefix}{j}")
}

/// The gradient variable `j` of the chain with variable prefix `prefix`.
fn d(prefix: &str, j: usize) -> Ident {
    format_ident!("d{prefix}{j}")
}

/// A chain's first variable is a reference already (to the batch, or to the block's input);
/// the others are values.
fn reference(prefix: &str, j: usize) -> TokenStream {
    let var = x(prefix, j);
    if j == 0 { quote!(#var) } else { quote!(&#var) }
}

fn forward_chain(model: &Network, layers: &[Layer], prefix: &str) -> TokenStream {
    layers
        .iter()
        .enumerate()
        .map(|(j, layer)| {
            let (input, output) = (reference(prefix, j), x(prefix, j + 1));
            match &layer.op {
                Op::Table(kind, numbers) => {
                    let value = (kind.forward)(&site(model, layer, numbers, prefix, j, false));
                    quote!(let #output = #value;)
                }
                Op::Nested(net) => {
                    let (field, nested) = (layer.field(), nested(model, layer, net));
                    let call =
                        quote_spanned!(at(net)=> #nested::nested_forward(&self.#field, #input));
                    quote!(let #output = #call;)
                }
                Op::Residual(inner) => {
                    let inner_prefix = format!("{prefix}{j}_");
                    let (first, last) = (x(&inner_prefix, 0), x(&inner_prefix, inner.len()));
                    let body = forward_chain(model, inner, &inner_prefix);
                    // y = x + f(x)
                    quote!(let #first = #input; #body let #output = #last + #input;)
                }
            }
        })
        .collect()
}

fn backward_chain(
    model: &Network,
    layers: &[Layer],
    prefix: &str,
    input_grad: bool,
    sgd_rate: Option<&TokenStream>,
) -> TokenStream {
    layers
        .iter()
        .enumerate()
        .rev()
        .map(|(j, layer)| {
            // A layer passes a gradient down only if something below it learns (or the
            // caller asked for the input's gradient): the chain rule stops where it is unused.
            let pass_down = input_grad || has_params(&layers[..j]);
            if !(pass_down || layer.has_params()) {
                return TokenStream::new();
            }
            let (input, grad_output) = (reference(prefix, j), d(prefix, j + 1));
            let grad_input = d(prefix, j);
            match &layer.op {
                Op::Table(kind, numbers) => {
                    let mut site = site(model, layer, numbers, prefix, j, pass_down);
                    site.sgd_rate = sgd_rate.cloned();
                    (kind.backward)(&site)
                }
                Op::Nested(net) => {
                    let (field, nested) = (layer.field(), nested(model, layer, net));
                    let call = quote_spanned!(at(net)=>
                        #nested::nested_backward(&self.#field, #input, &#grad_output, &mut grads.#field)
                    );
                    if pass_down {
                        quote!(let #grad_input = #call;)
                    } else {
                        quote!(let _ = #call;)
                    }
                }
                Op::Residual(inner) => {
                    let inner_prefix = format!("{prefix}{j}_");
                    let (first, last) = (d(&inner_prefix, 0), d(&inner_prefix, inner.len()));
                    let body = backward_chain(model, inner, &inner_prefix, pass_down, sgd_rate);
                    // Both paths of y = x + f(x) carry the gradient: dx = dy + f'(x)^T dy.
                    let merge =
                        pass_down.then(|| quote!(let #grad_input = #first + &#grad_output;));
                    quote!(let #last = #grad_output; #body #merge)
                }
            }
        })
        .collect()
}

/// `<Net as Nested<T, IN, OUT>>` for a nested layer: the nested network seen with the scalar
/// type and sizes the surrounding network gives it.
pub fn nested(model: &Network, layer: &Layer, net: &Ident) -> TokenStream {
    let (scalar, input, output) = (
        model.scalar.tokens(),
        layer.input.tokens(),
        layer.output.tokens(),
    );
    quote_spanned!(at(net)=> <#net as ::nn_runtime::__private::Nested<#scalar, #input, #output>>)
}

/// A span with the macro's own hygiene, located at a nested network's name: code that
/// involves that network reports its type errors (a different scalar type, say) on the user's
/// token, while its variables still resolve as the macro's.
pub fn at(net: &Ident) -> proc_macro2::Span {
    proc_macro2::Span::call_site().located_at(net.span())
}

/// What the layer table needs to emit the code of table layer `j` of a chain.
fn site(
    model: &Network,
    layer: &Layer,
    numbers: &[f64],
    prefix: &str,
    j: usize,
    pass_down: bool,
) -> Site {
    let field = layer.field();
    Site {
        scalar: model.scalar.tokens(),
        input: x(prefix, j),
        input_ref: reference(prefix, j),
        output: x(prefix, j + 1),
        grad_output: d(prefix, j + 1),
        grad_input: pass_down.then(|| d(prefix, j)),
        param: quote!(self.#field),
        grad: quote!(grads.#field),
        sgd_rate: None,
        numbers: numbers.to_vec(),
    }
}
