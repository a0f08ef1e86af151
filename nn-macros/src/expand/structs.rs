//! The network struct and its gradient struct, field for field the same shapes.

use proc_macro2::TokenStream;
use quote::quote;

use super::{docs, rt_absolute};
use crate::layers::Role;
use crate::model::Network;

/// `struct Name { pub l0: Linear<..>, ... }` and `struct NameGrads { ... }`.
pub fn definitions(model: &Network) -> TokenStream {
    let Network {
        attrs, vis, ident, ..
    } = model;
    let (rt, grads) = (rt_absolute(), model.grads_ident());
    let summary = docs::struct_summary(model);
    let (params, grad_fields) = (fields(model, Role::Params), fields(model, Role::Grads));
    let state = super::sequence::state_struct(model);
    let words = model.frozen_words();
    // The key dropout masks are drawn from, advanced by every `train_step`.
    let dropout = model.drops().then(|| {
        quote! {
            /// The key of the dropout masks, advanced by `train_step`; not part of the value.
            #[doc(hidden)]
            pub __dropout: #rt::DropoutKey,
        }
    });
    let grads_doc = format!(
        " Gradients of a loss with respect to every parameter of [`{ident}`], field for field \
         the same shapes, as returned by [`{ident}::gradients`]."
    );
    quote! {
        #(#attrs)*
        #[doc = #summary]
        #[derive(::core::clone::Clone, ::core::fmt::Debug, ::core::cmp::PartialEq)]
        #vis struct #ident {
            #params
            /// `train_step`'s reusable gradients; not part of the value (end a literal with `..Name::zeros()`).
            #[doc(hidden)]
            pub __scratch: #rt::Scratch<#grads>,
            /// Which layers are frozen (`freeze`); not part of the value.
            #[doc(hidden)]
            pub __frozen: #rt::Frozen<#words>,
            #dropout
        }

        #[doc = #grads_doc]
        #[derive(::core::clone::Clone, ::core::fmt::Debug, ::core::cmp::PartialEq)]
        #vis struct #grads { #grad_fields }

        #state
    }
}

/// One public field per layer with parameters (those inside blocks included), typed and
/// documented by the layer table.
fn fields(model: &Network, role: Role) -> TokenStream {
    model
        .param_layers()
        .into_iter()
        .filter_map(|layer| {
            let params = layer.kind.params()?;
            let (field, ty) = (&layer.field, params.ty(layer, model.scalar, role));
            let doc = params.doc(layer, role);
            Some(quote!(#[doc = #doc] pub #field: #ty,))
        })
        .collect()
}

/// The distinct field types of both structs, for the assertion that all are `Zeroable`.
pub fn field_types(model: &Network) -> Vec<TokenStream> {
    let mut types: Vec<TokenStream> = Vec::new();
    for layer in model.param_layers() {
        for role in [Role::Params, Role::Grads] {
            if let Some(ty) = layer.kind.params().map(|p| p.ty(layer, model.scalar, role))
                && !types.iter().any(|t| t.to_string() == ty.to_string())
            {
                types.push(ty);
            }
        }
    }
    types
}
