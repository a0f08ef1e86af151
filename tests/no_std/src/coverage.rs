//! Networks of every layer kind, declared in this `#![no_std]` crate with the runtime's `std`
//! off: the code `network!` generates for each compiles without `std`, `alloc` or a warning.
//! (The declarations of the root package's `tests/deny_warnings.rs`.)

use nn_runtime::prelude::*;

include!("every_kind.rs");

network! {
    /// A network nesting another as a layer.
    pub struct Nesting { Linear(3, 2), Tanh, Xor, Sigmoid }
}
