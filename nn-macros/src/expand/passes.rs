//! The forward pass and the backward pass, as straight-line code.
//!
//! Variables are numbered by layer: `x{i}` is the input of layer `i` (so `x0` is the batch and
//! `x{n}` the output) and `d{i}` the gradient of the loss with respect to `x{i}`. The backward
//! pass walks the layers in reverse and asks the layer table for each one's chain-rule step:
//! the chain rule applied at compile time.

use proc_macro2::{Ident, TokenStream};
use quote::{format_ident, quote};

use crate::layers::Site;
use crate::model::{Layer, Network};

/// `let x1 = ...; let x2 = ...; ...` from `x0` (a reference to the batch), and the variable
/// holding the output.
pub fn forward(model: &Network) -> (TokenStream, Ident) {
    let statements = model.layers.iter().map(|layer| {
        let site = site(model, layer);
        let output = &site.output;
        let value = (layer.kind.forward)(&site);
        quote!(let #output = #value;)
    });
    let output = format_ident!("x{}", model.layers.len());
    (statements.collect(), output)
}

/// The chain rule from `d{n}` (the loss gradient) down to the first layer with parameters,
/// writing every parameter gradient into `grads`.
pub fn backward(model: &Network) -> TokenStream {
    model
        .layers
        .iter()
        .rev()
        .filter(|layer| layer.kind.params.is_some() || model.needs_input_grad(layer.index))
        .map(|layer| (layer.kind.backward)(&site(model, layer)))
        .collect()
}

/// What the layer table needs to emit layer `i`'s code.
fn site(model: &Network, layer: &Layer) -> Site {
    let i = layer.index;
    let input = format_ident!("x{i}");
    // `x0` is already a reference to the caller's batch; later inputs are local values.
    let input_ref = if i == 0 {
        quote!(#input)
    } else {
        quote!(&#input)
    };
    let field = layer.field();
    Site {
        scalar: model.scalar.tokens(),
        input,
        input_ref,
        output: format_ident!("x{}", i + 1),
        grad_output: format_ident!("d{}", i + 1),
        grad_input: model.needs_input_grad(i).then(|| format_ident!("d{i}")),
        param: quote!(self.#field),
        grad: quote!(grads.#field),
        numbers: layer.numbers.clone(),
    }
}
