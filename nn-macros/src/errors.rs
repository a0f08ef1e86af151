//! An error collector: every phase reports all the mistakes it finds, not just the first.
//!
//! Modelled on serde_derive's `Ctxt`: errors are pushed as they are found and combined into one
//! `syn::Error`, whose `to_compile_error` emits one `compile_error!` per message, each on the
//! span of the offending token.

use std::fmt::Display;

use proc_macro2::Span;
use quote::ToTokens;

/// The mistakes found so far in one declaration.
#[derive(Default)]
pub struct Errors {
    found: Vec<syn::Error>,
}

impl Errors {
    /// Records `error`, keeping every earlier one.
    pub fn push(&mut self, error: syn::Error) {
        self.found.push(error);
    }

    /// Whether nothing has been recorded.
    pub fn is_empty(&self) -> bool {
        self.found.is_empty()
    }

    /// Records `message` at `span`.
    pub fn at(&mut self, span: Span, message: impl Display) {
        self.push(syn::Error::new(span, message));
    }

    /// Records `message` over all of `tokens` (the whole layer, not just its first token).
    pub fn over(&mut self, tokens: impl ToTokens, message: impl Display) {
        self.push(syn::Error::new_spanned(tokens, message));
    }

    /// `Ok(value)` when nothing was recorded, else every recorded error, in the order of
    /// their places in the source (each phase finds its own kind of mistake, but the user
    /// reads the declaration top to bottom).
    pub fn finish<T>(self, value: T) -> syn::Result<T> {
        let mut found = self.found;
        // Stable: errors at one place (or where the compiler gives no places) keep their order.
        found.sort_by_key(|e| {
            let start = e.span().start();
            (start.line, start.column)
        });
        let mut errors = found.into_iter();
        match errors.next() {
            None => Ok(value),
            Some(mut first) => {
                first.extend(errors);
                Err(first)
            }
        }
    }
}
