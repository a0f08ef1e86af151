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
    combined: Option<syn::Error>,
}

impl Errors {
    /// Records `error`, keeping every earlier one.
    pub fn push(&mut self, error: syn::Error) {
        match &mut self.combined {
            Some(combined) => combined.combine(error),
            None => self.combined = Some(error),
        }
    }

    /// Records `message` at `span`.
    pub fn at(&mut self, span: Span, message: impl Display) {
        self.push(syn::Error::new(span, message));
    }

    /// Records `message` over all of `tokens` (the whole layer, not just its first token).
    pub fn over(&mut self, tokens: impl ToTokens, message: impl Display) {
        self.push(syn::Error::new_spanned(tokens, message));
    }

    /// `Ok(value)` when nothing was recorded, else every recorded error.
    pub fn finish<T>(self, value: T) -> syn::Result<T> {
        match self.combined {
            Some(error) => Err(error),
            None => Ok(value),
        }
    }
}
