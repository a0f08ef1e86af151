//! The macro's front end as a function on `proc_macro2` tokens, apart from the `#[proc_macro]`
//! entry point: the unit tests call it outside a compiler, and the dev-only crate
//! `tests/macro-front` compiles this file (and every module it uses) into a library that the
//! fuzzers and their replay test call, since a proc-macro crate cannot export functions.

use crate::{ast, definitions, errors, fallback, validate};

/// The whole macro on `proc_macro2` tokens: parse, check, generate. Never panics; every
/// mistake in `input` comes back as `compile_error!`s (with a stub of the struct where there
/// is a header).
pub fn expand(input: proc_macro2::TokenStream) -> proc_macro2::TokenStream {
    if let Err(error) = check_depth(&input) {
        return error.to_compile_error();
    }
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

/// How many tokens one path through a declaration may hold: see [`check_depth`].
const MAX_DEPTH: usize = 96;

/// Rejects a declaration whose parse would recurse deeper than the compiler's stack allows.
///
/// Parsing, checking and differentiating an expression recurse once per level of its tree,
/// and a few hundred levels (`|x| x.exp().exp()..`, `((((x))))`, `Residual(Residual(..))`)
/// overflow the stack: an abort, not an error. The tree's depth is bounded by the tokens on a
/// path from the top of the declaration to a token: at each enclosing bracket, every token of
/// the layer, argument or definition (between commas or semicolons) holding it. Real
/// declarations stay far below the limit; the fuzzers found the ones that do not.
fn check_depth(input: &proc_macro2::TokenStream) -> syn::Result<()> {
    use proc_macro2::TokenTree;
    // An explicit stack, as recursion here would overflow on the very inputs it guards against.
    let mut pending = vec![(input.clone(), 0)];
    while let Some((stream, above)) = pending.pop() {
        let tokens: Vec<TokenTree> = stream.into_iter().collect();
        let separator =
            |t: &TokenTree| matches!(t, TokenTree::Punct(p) if matches!(p.as_char(), ',' | ';'));
        for segment in tokens.split(separator) {
            let depth = above + segment.len();
            if depth > MAX_DEPTH {
                return Err(syn::Error::new(
                    segment[MAX_DEPTH.saturating_sub(above).min(segment.len() - 1)].span(),
                    format!(
                        "declaration nested too deeply: more than {MAX_DEPTH} tokens from the \
                         top to here; split a long expression into a named `activation` or \
                         several layers"
                    ),
                ));
            }
            for token in segment {
                if let TokenTree::Group(group) = token {
                    pending.push((group.stream(), depth));
                }
            }
        }
    }
    Ok(())
}
