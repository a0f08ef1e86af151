//! Code generation from the checked model.
//!
//! Every path in the output is absolute (`::nn_runtime::__private::...`), so the generated code
//! works whatever the user has imported, and every generated item carries rustdoc stating its
//! shapes.

mod cost;
mod docs;
mod methods;
mod passes;
mod structs;

use proc_macro2::TokenStream;
use quote::quote;

use crate::model::Network;

/// The whole expansion of a valid network: its structs and their methods.
pub fn network(model: &Network) -> TokenStream {
    let structs = structs::definitions(model);
    let methods = methods::impls(model);
    quote!(#structs #methods)
}
