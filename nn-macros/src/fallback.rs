//! What the macro emits when the declaration has mistakes: the errors, plus a stand-in struct
//! so that the rest of the user's crate still resolves the name and the user sees the real
//! mistakes rather than a cascade of "cannot find type" errors.

use proc_macro2::TokenStream;
use quote::quote;

/// `compile_error!`s for every mistake, and a stand-in struct with the network's name and the
/// generated API's method names, which never runs (the crate does not compile).
pub fn stub(header: &Header, errors: syn::Error) -> TokenStream {
    let errors = errors.to_compile_error();
    let Header {
        vis,
        ident,
        docs,
        weights,
    } = header;
    // With `#[weights]`, its constructors too, so uses of them add no errors of their own.
    let pretrained = weights.then(|| {
        quote! {
            /// Stand-in: the declaration has errors.
            pub const PRETRAINED: Self = Self {};
            /// Stand-in: the declaration has errors.
            pub fn pretrained() -> Self { Self {} }
            /// Stand-in: the declaration has errors.
            pub fn fill_pretrained(&mut self) {}
        }
    });
    quote! {
        #errors
        #(#docs)*
        #vis struct #ident {}

        #[allow(dead_code, unused_variables, clippy::all)]
        impl #ident {
            /// Stand-in: the declaration has errors.
            pub const IN: usize = 0;
            /// Stand-in: the declaration has errors.
            pub const OUT: usize = 0;
            /// Stand-in: the declaration has errors.
            pub const PARAMS: usize = 0;
            /// Stand-in: the declaration has errors.
            pub fn zeros() -> Self { Self {} }
            /// Stand-in: the declaration has errors.
            pub fn seeded(seed: u64) -> Self { Self {} }
            #pretrained
            /// Stand-in: the declaration has errors.
            pub fn forward<X, Y>(&self, x: X) -> Y { ::core::unreachable!() }
            /// Stand-in: the declaration has errors.
            pub fn forward_batch<X, Y>(&self, x: X) -> Y { ::core::unreachable!() }
            /// Stand-in: the declaration has errors.
            pub fn gradients<X, Y, L, G>(&self, xs: X, ys: Y, loss: L) -> G { ::core::unreachable!() }
            /// Stand-in: the declaration has errors.
            pub fn train_step<X, Y, L, O, T>(&mut self, xs: X, ys: Y, loss: L, optimizer: O) -> T {
                ::core::unreachable!()
            }
        }
    }
}

/// The parts of a declaration the stand-in needs, kept before the declaration is checked.
pub struct Header {
    /// The struct's visibility.
    pub vis: syn::Visibility,
    /// The struct's name.
    pub ident: syn::Ident,
    /// The user's doc comments (other attributes are left out: they may be the mistake).
    pub docs: Vec<syn::Attribute>,
    /// Whether it asks for compiled weights (`#[weights(..)]`).
    pub weights: bool,
}

impl Header {
    /// Takes the header of a parsed declaration.
    pub fn of(input: &crate::ast::NetworkInput) -> Self {
        let docs = input
            .attrs
            .iter()
            .filter(|a| a.path().is_ident("doc"))
            .cloned()
            .collect();
        Self {
            vis: input.vis.clone(),
            ident: input.ident.clone(),
            docs,
            weights: input.weights.is_some(),
        }
    }
}
