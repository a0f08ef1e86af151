//! The network struct and its gradient struct, field for field the same shapes.

use proc_macro2::TokenStream;
use quote::quote;

use super::docs;
use crate::model::{Layer, Network, Op};

/// `struct Name { pub l0: Linear<..>, ... }` and `struct NameGrads { ... }`.
pub fn definitions(model: &Network) -> TokenStream {
    let Network {
        attrs, vis, ident, ..
    } = model;
    let grads = model.grads_ident();
    let summary = docs::struct_summary(model);
    let params = fields(model, Role::Params);
    let grad_fields = fields(model, Role::Grads);
    let field_types: Vec<_> = model
        .param_layers()
        .into_iter()
        .map(|l| field_type(model, l, Role::Params))
        .collect();
    let grad_types: Vec<_> = model
        .param_layers()
        .into_iter()
        .map(|l| field_type(model, l, Role::Grads))
        .collect();
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
            /// Where `train_step` keeps the gradients between steps: not part of the network's
            /// value (clones start without it, comparisons ignore it). To build a network from
            /// parts, end the struct literal with `..Name::zeros()`.
            #[doc(hidden)]
            pub __scratch: ::nn_runtime::__private::Scratch<#grads>,
        }

        // SAFETY: made of `Linear`s of floats, nested networks and `Scratch`, all `Zeroable`
        // (which the assertion below makes the compiler confirm, field by field).
        unsafe impl ::nn_runtime::__private::Zeroable for #ident {}
        const _: fn() = || {
            fn zeroable<T: ::nn_runtime::__private::Zeroable>() {}
            #(zeroable::<#field_types>();)*
            #(zeroable::<#grad_types>();)*
        };

        #[doc = #grads_doc]
        #[derive(::core::clone::Clone, ::core::fmt::Debug, ::core::cmp::PartialEq)]
        #vis struct #grads { #grad_fields }

        // SAFETY: as above.
        unsafe impl ::nn_runtime::__private::Zeroable for #grads {}
    }
}

/// Which of the two structs a field belongs to.
#[derive(Clone, Copy)]
pub enum Role {
    /// The network's parameters.
    Params,
    /// Their gradients.
    Grads,
}

/// One public field per layer with parameters (nested ones included), typed by the layer table
/// or by the nested network.
fn fields(model: &Network, role: Role) -> TokenStream {
    model
        .param_layers()
        .into_iter()
        .map(|layer| {
            let field = layer.field();
            let ty = field_type(model, layer, role);
            let doc = docs::field(layer, role);
            quote!(#[doc = #doc] pub #field: #ty,)
        })
        .collect()
}

/// The type of a layer's parameters (or of their gradients).
pub fn field_type(model: &Network, layer: &Layer, role: Role) -> TokenStream {
    match (&layer.op, role) {
        (Op::Table(kind, _), _) => match kind.params {
            Some(spec) => (spec.ty)(
                &model.scalar.tokens(),
                &layer.input.tokens(),
                &layer.output.tokens(),
            ),
            None => quote!(()),
        },
        (Op::Nested(net), Role::Params) => quote!(#net),
        (Op::Nested(net), Role::Grads) => quote!(<#net as ::nn_runtime::__private::Network>::Grads),
        (Op::Residual(_), _) => quote!(()),
    }
}
