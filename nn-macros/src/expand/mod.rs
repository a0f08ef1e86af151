//! Code generation from the checked model.
//!
//! The expansion is the two structs, then one anonymous `const _: () = { ... };` block holding
//! everything else: inside it the runtime is imported once as `__nn` (the one place its path is
//! written for code, see [`rt`]), and private helper items cannot collide with the user's.
//! Every generated item carries rustdoc stating its shapes.

mod compiled;
mod docs;
mod methods;
mod passes;
mod sequence;
mod structs;

use proc_macro2::TokenStream;
use quote::quote;

use crate::model::Network;

/// The runtime's items for generated code, by absolute path.
const RUNTIME: &str = "::nn_runtime::__private";

/// The name the runtime is imported under inside the generated block. Names starting with
/// `__` are reserved (the checker rejects them in declarations), so it cannot shadow the user's.
pub fn rt() -> TokenStream {
    quote!(__nn)
}

/// The runtime's path where the import is not in scope (the struct definitions).
pub fn rt_absolute() -> TokenStream {
    RUNTIME.parse().unwrap_or_default()
}

/// The whole expansion of a valid network: its structs, and their impls in one block.
pub fn network(model: &Network) -> TokenStream {
    let (rt, absolute) = (rt(), rt_absolute());
    let structs = structs::definitions(model);
    let impls = methods::impls(model);
    let checks = methods::size_checks(model);
    let weights = compiled::items(model);
    quote! {
        #structs
        // Activations' constants are printed to full precision, which clippy would take for
        // the user's approximation of a named constant (GELU's 1/sqrt(2)).
        #[allow(clippy::approx_constant)]
        const _: () = {
            use #absolute as #rt;
            #impls
            #weights
        };
        #checks
    }
}
