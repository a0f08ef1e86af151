//! The network struct and its gradient struct, field for field the same shapes.

use proc_macro2::TokenStream;
use quote::quote;

use super::docs;
use crate::model::Network;

/// `struct Name { pub l0: Linear<..>, ... }` and `struct NameGrads { ... }`.
pub fn definitions(model: &Network) -> TokenStream {
    let Network {
        attrs, vis, ident, ..
    } = model;
    let grads = model.grads_ident();
    let summary = docs::struct_summary(model);
    let params = fields(model, "Parameters of");
    let grad_fields = fields(
        model,
        "Gradient of the loss with respect to the parameters of",
    );
    let grads_doc = format!(
        " Gradients of a loss with respect to every parameter of [`{ident}`], field for field the \
         same shapes, as returned by [`{ident}::gradients`]."
    );
    quote! {
        #(#attrs)*
        #[doc = #summary]
        #[derive(::core::clone::Clone, ::core::fmt::Debug, ::core::cmp::PartialEq)]
        #vis struct #ident { #params }

        #[doc = #grads_doc]
        #[derive(::core::clone::Clone, ::core::fmt::Debug, ::core::cmp::PartialEq)]
        #vis struct #grads { #grad_fields }
    }
}

/// One public field per layer with parameters, typed by the layer table.
fn fields(model: &Network, what: &str) -> TokenStream {
    let scalar = model.scalar.tokens();
    model
        .param_layers()
        .filter_map(|layer| {
            let spec = layer.kind.params?;
            let field = layer.field();
            let ty = (spec.ty)(&scalar, layer.input, layer.output);
            let doc = docs::field(layer, what);
            Some(quote!(#[doc = #doc] pub #field: #ty,))
        })
        .collect()
}
