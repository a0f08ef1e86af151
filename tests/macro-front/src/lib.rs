//! nn-macros' front end as an ordinary library: `expand` runs the `network!` macro (parse,
//! check, generate) on `proc_macro2` tokens, outside a compiler.
//!
//! A proc-macro crate can export nothing but its macros, so this crate compiles the very same
//! source files with `#[path]` (as `serde_derive_internals` shares `serde_derive`'s): what the
//! fuzzers exercise is the macro's code, not a copy. The directory modules (`expand/mod.rs`,
//! `expr/mod.rs`, `layers/mod.rs`) find their submodules next to themselves, as in nn-macros.
//! nn-macros' `#[cfg(test)] mod tests` lives in its lib.rs, which is not compiled here.
//! Outside a proc-macro, proc_macro2 falls back to its own implementation of tokens by itself.

#[path = "../../../nn-macros/src/ast.rs"]
mod ast;
#[path = "../../../nn-macros/src/compiled.rs"]
mod compiled;
#[path = "../../../nn-macros/src/definitions.rs"]
mod definitions;
#[path = "../../../nn-macros/src/errors.rs"]
mod errors;
#[path = "../../../nn-macros/src/expand/mod.rs"]
mod expand;
#[path = "../../../nn-macros/src/expr/mod.rs"]
mod expr;
#[path = "../../../nn-macros/src/fallback.rs"]
mod fallback;
#[path = "../../../nn-macros/src/front.rs"]
mod front;
#[path = "../../../nn-macros/src/layers/mod.rs"]
mod layers;
#[path = "../../../nn-macros/src/model.rs"]
mod model;
#[path = "../../../nn-macros/src/validate.rs"]
mod validate;

pub use front::expand;
