//! The macro's front end as a function on `proc_macro2` tokens, apart from the `#[proc_macro]`
//! entry point: the unit tests call it outside a compiler, and the dev-only crate
//! `tests/macro-front` compiles this file (and every module it uses) into a library that the
//! fuzzers and their replay test call, since a proc-macro crate cannot export functions.

use crate::{ast, definitions, errors, fallback, validate};

/// The whole macro on `proc_macro2` tokens: parse, check, generate. Never panics; every
/// mistake in `input` comes back as `compile_error!`s (with a stub of the struct where there
/// is a header).
pub fn expand(input: proc_macro2::TokenStream) -> proc_macro2::TokenStream {
    let input = match syn::parse2::<ast::Input>(input) {
        Ok(input) => input,
        // Without a header there is no name to stand in for: only the error.
        Err(error) => return error.to_compile_error(),
    };
    // Mistakes in a definition are reported once, where it is written.
    let mut errors = errors::Errors::default();
    let definitions = definitions::check(input.definitions, &mut errors);
    let mut output = match errors.finish(()) {
        Ok(()) => proc_macro2::TokenStream::new(),
        Err(errors) => errors.to_compile_error(),
    };
    for network in input.networks {
        let header = fallback::Header::of(&network);
        output.extend(match validate::check(network, &definitions) {
            Ok(model) => crate::expand::network(&model),
            Err(errors) => fallback::stub(&header, errors),
        });
    }
    output
}
